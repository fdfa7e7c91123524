import { join } from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

import type { RecordDetails } from "../../src/crypto/details.js";
import { Indexer } from "../../src/indexer/indexer.js";
import type { AlertRow } from "../../src/indexer/queries.js";
import { RISK_RULES, parseRiskConfig, type RiskConfigInput } from "../../src/indexer/risk.js";
import { packBatch } from "../../src/ledger/codec.js";
import { sealBatch } from "../../src/upload/sealing.js";
import { Uploader } from "../../src/upload/uploader.js";
import { expectRejects } from "../helpers/errors.js";
import { REGULATOR_KEY, REGULATOR_PUB, card, detail, tempDir } from "../helpers/ledger.js";
import { indexDb } from "../helpers/index-db.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;
const DAY = 86_400;
/** The scenario's merchant, and a normal one beside it that must stay quiet. */
const RISKY = 1;
const NORMAL = 2;

/** A ledger, a quorum (no checkpoint yet) and two merchants with uploaders. */
async function twoMerchants() {
  const signers = await ethers.getSigners();
  const [admin, regulator, r1, r2] = signers;
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const ledgerAddress = await ledger.getAddress();
  const quorum = await ethers.deployContract("SupervisorQuorum", [
    admin.address,
    ledgerAddress,
    signers.slice(10, 13).map((s) => s.address),
    2,
    0,
    3_600,
  ]);
  await ledger.connect(regulator).registerMerchant(RISKY, r1.address);
  await ledger.connect(regulator).registerMerchant(NORMAL, r2.address);
  return { ledger, ledgerAddress, quorumAddress: await quorum.getAddress(), recorder1: r1, recorder2: r2 };
}

/** The fixture's chain, with uploaders (and journals) of its own: a reverted chain must not meet a used journal. */
async function scenario() {
  const f = await networkHelpers.loadFixture(twoMerchants);
  const dir = tempDir("risk");
  const open = (merchantId: number, signer: typeof f.recorder1) =>
    Uploader.open(
      { ledger: f.ledgerAddress, merchantId, regulatorPublicKey: REGULATOR_PUB, journalPath: join(dir, `${merchantId}.jsonl`) },
      signer,
    );
  const uploaders: Record<number, Uploader> = { [RISKY]: await open(RISKY, f.recorder1), [NORMAL]: await open(NORMAL, f.recorder2) };
  return { ...f, uploaders };
}
type Fixture = Awaited<ReturnType<typeof scenario>>;

let serial = 0;
const sale = (m: number, n: number, amount: bigint) => detail(m, 1, card(`${m}-${n}`), amount, ++serial);
const use = (m: number, n: number, amount: bigint) => detail(m, 2, card(`${m}-${n}`), amount, ++serial);
const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

async function upload(f: Fixture, merchantId: number, details: RecordDetails[]): Promise<void> {
  await f.uploaders[merchantId].upload(details);
}

/** Indexes the ledger into a fresh database with `risk` thresholds; returns the alerts. */
async function alerts(f: Fixture, risk: RiskConfigInput = {}): Promise<AlertRow[]> {
  const indexer = await Indexer.open(
    { ledger: f.ledgerAddress, quorum: f.quorumAddress, privateKey: REGULATOR_KEY, db: indexDb(tempDir("risk-index"), "i.sqlite"), risk },
    ethers.provider,
  );
  try {
    await indexer.sync();
    return indexer.queries().alerts();
  } finally {
    indexer.close();
  }
}

const ofRule = (all: AlertRow[], rule: string) => all.filter((a) => a.rule === rule);
const merchantsOf = (all: AlertRow[]) => [...new Set(all.map((a) => a.merchantId))];
/** Thresholds that keep the pending rule out of scenarios about other rules. */
const LONG_PENDING = { maxPendingSeconds: 365 * DAY };

describe("risk rules", function () {
  this.timeout(120_000);

  describe("liability-limit", function () {
    it("fires on a merchant owing more than the limit, not on the one below it", async function () {
      const f = await scenario();
      await upload(f, RISKY, range(0, 10).map((n) => sale(RISKY, n, 300_000n))); // ¥30,000
      await upload(f, NORMAL, range(0, 5).map((n) => sale(NORMAL, n, 300_000n))); // ¥15,000
      const found = ofRule(await alerts(f, { maxMerchantLiability: 2_000_000, ...LONG_PENDING }), "liability-limit");
      expect(found.map((a) => [a.merchantId, a.value, a.threshold])).to.deep.equal([[RISKY, 3_000_000, 2_000_000]]);
      expect(found[0].severity).to.equal("high");
      // The default limit (¥500,000) is far above both.
      expect(ofRule(await alerts(f, LONG_PENDING), "liability-limit")).to.deep.equal([]);
    });
  });

  describe("liability-growth", function () {
    it("fires when money keeps coming in and little service goes out", async function () {
      const f = await scenario();
      await upload(f, RISKY, range(0, 3).map((n) => sale(RISKY, n, 100_000n)));
      await upload(f, NORMAL, range(0, 3).map((n) => sale(NORMAL, n, 100_000n)));
      await time.increase(31 * DAY);
      // The last 30 days: RISKY sells ¥40,000 and serves ¥500; NORMAL sells ¥6,000 and serves ¥5,000.
      await upload(f, RISKY, range(10, 20).map((n) => sale(RISKY, n, 200_000n)));
      await upload(f, RISKY, [use(RISKY, 10, 50_000n)]);
      await upload(f, NORMAL, range(10, 3).map((n) => sale(NORMAL, n, 200_000n)));
      await upload(f, NORMAL, range(10, 3).map((n) => use(NORMAL, n, 160_000n)));
      await time.increase(DAY);
      await networkHelpers.mine();
      const found = ofRule(await alerts(f, LONG_PENDING), "liability-growth");
      expect(merchantsOf(found)).to.deep.equal([RISKY]);
      expect(found[0].value).to.equal(4_000_000 - 50_000);
    });

    it("stays quiet on a new merchant's first sales (less history than the window)", async function () {
      const f = await scenario();
      await upload(f, RISKY, range(0, 20).map((n) => sale(RISKY, n, 200_000n)));
      expect(ofRule(await alerts(f, LONG_PENDING), "liability-growth")).to.deep.equal([]);
    });
  });

  describe("topup-spike", function () {
    it("fires on a week of sales far above the weeks before", async function () {
      const f = await scenario();
      for (let week = 0; week < 5; week++) {
        await upload(f, RISKY, range(week * 100, 2).map((n) => sale(RISKY, n, 200_000n)));
        await upload(f, NORMAL, range(week * 100, 6).map((n) => sale(NORMAL, n, 200_000n)));
        await upload(f, NORMAL, range(week * 100, 6).map((n) => use(NORMAL, n, 150_000n)));
        await time.increase(7 * DAY);
      }
      // The last week: RISKY sells 25 cards (¥50,000) against ¥4,000 a week before; NORMAL as usual.
      await upload(f, RISKY, range(900, 25).map((n) => sale(RISKY, n, 200_000n)));
      await upload(f, NORMAL, range(900, 6).map((n) => sale(NORMAL, n, 200_000n)));
      await networkHelpers.mine();
      const found = ofRule(await alerts(f, LONG_PENDING), "topup-spike");
      expect(merchantsOf(found)).to.deep.equal([RISKY]);
      expect(found[0].value).to.equal(5_000_000);
    });
  });

  describe("dormant-merchant", function () {
    it("fires on a merchant that stopped serving while it still owes balances", async function () {
      const f = await scenario();
      await upload(f, RISKY, range(0, 5).map((n) => sale(RISKY, n, 100_000n)));
      await upload(f, RISKY, [use(RISKY, 0, 10_000n)]);
      await upload(f, NORMAL, range(0, 5).map((n) => sale(NORMAL, n, 100_000n)));
      for (let d = 0; d < 3; d++) {
        await time.increase(12 * DAY);
        await upload(f, NORMAL, [use(NORMAL, d, 10_000n)]);
      }
      const found = ofRule(await alerts(f, LONG_PENDING), "dormant-merchant");
      expect(merchantsOf(found)).to.deep.equal([RISKY]);
      expect(found[0].value).to.be.at.least(36 * DAY);
      expect(found[0].message).to.include("¥4,900.00");
    });
  });

  describe("card-limit", function () {
    it("fires on a card holding more than ¥5,000 (Beijing/Shanghai cap), not on one at the cap", async function () {
      const f = await scenario();
      await upload(f, RISKY, [sale(RISKY, 0, 300_000n), sale(RISKY, 1, 500_000n)]);
      await upload(f, RISKY, [detail(RISKY, 1, card(`${RISKY}-0`), 300_000n, ++serial)]); // ¥6,000 on card 0
      const found = ofRule(await alerts(f, LONG_PENDING), "card-limit");
      expect(found.map((a) => [a.merchantId, a.account, a.value, a.threshold])).to.deep.equal([
        [RISKY, card(`${RISKY}-0`).toLowerCase(), 600_000, 500_000],
      ]);
    });

    it("lists at most maxAlertsPerMerchant cards of a merchant, and counts the rest", async function () {
      const f = await scenario();
      await upload(f, RISKY, range(0, 4).map((n) => sale(RISKY, n, 510_000n + BigInt(n))));
      const found = ofRule(await alerts(f, { ...LONG_PENDING, maxAlertsPerMerchant: 2 }), "card-limit");
      expect(found.map((a) => [a.account, a.value])).to.deep.equal([
        [card(`${RISKY}-3`).toLowerCase(), 510_003],
        [card(`${RISKY}-2`).toLowerCase(), 510_002],
        [null, 2],
      ]);
      expect(found[2].message).to.include("2 more cards");
    });
  });

  describe("verification-failed", function () {
    it("names each record whose decrypted amount differs from the on-chain one", async function () {
      const f = await scenario();
      await upload(f, RISKY, [sale(RISKY, 0, 100_000n)]);
      await upload(f, NORMAL, [sale(NORMAL, 0, 100_000n)]);
      const sealed = await sealBatch([use(RISKY, 0, 1_000n), use(RISKY, 0, 2_000n)], [{ publicKey: REGULATOR_PUB, role: "regulator" }]);
      sealed.records[1].amount = 200n; // the merchant books less than it told the regulator
      const books = await f.ledger.merchantBooks(RISKY);
      await (await f.ledger.connect(f.recorder1).recordBatch(RISKY, books.nextSequence, sealed.envelope, packBatch(sealed.records))).wait();
      const found = ofRule(await alerts(f, LONG_PENDING), "verification-failed");
      expect(found.map((a) => [a.merchantId, a.recordIndex])).to.deep.equal([[RISKY, 4]]);
      expect(found[0].message).to.include("amount-mismatch");
    });
  });

  describe("pending-confirmation", function () {
    it("fires on records the supervisors have not confirmed for more than an hour", async function () {
      const f = await scenario();
      await upload(f, RISKY, [sale(RISKY, 0, 100_000n)]);
      expect(ofRule(await alerts(f), "pending-confirmation")).to.deep.equal([]);
      await time.increase(2 * 3_600);
      await networkHelpers.mine();
      const found = ofRule(await alerts(f), "pending-confirmation");
      expect(found.map((a) => [a.merchantId, a.recordIndex, a.severity])).to.deep.equal([[RISKY, 1, "low"]]);
    });
  });

  it("refuses bad thresholds, naming each", async function () {
    const e = await expectRejects(
      Promise.resolve().then(() => parseRiskConfig({ maxCardBalance: -1, spikeFactor: 0, nope: 1 })),
      "INVALID_CONFIG",
    );
    const paths = (e.details.issues as { path: string }[]).map((i) => i.path).sort();
    expect(paths).to.deep.equal(["(root)", "maxCardBalance", "spikeFactor"]);
    expect(parseRiskConfig({}).maxCardBalance).to.equal(500_000);
    expect(Object.keys(RISK_RULES).sort()).to.deep.equal(
      [
        "card-limit",
        "cooling-off-overdue",
        "custody-below-requirement",
        "dormant-merchant",
        "liability-growth",
        "liability-limit",
        "pending-confirmation",
        "topup-spike",
        "verification-failed",
        "winding-down-unpaid",
      ],
    );
  });
});
