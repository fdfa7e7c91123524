/**
 * The risk rules about the card holders' protection (docs/RISK.md), each in a scenario on the
 * in-process network with a normal merchant beside the risky one: `winding-down-unpaid` (a
 * merchant winding down for longer than allowed with balances still owed) and
 * `cooling-off-overdue` (a cooling-off return the merchant owes, past its due date).
 */
import { join } from "node:path";

import { expect } from "chai";
import { encodeBytes32String } from "ethers";
import { network } from "hardhat";

import { Indexer } from "../../src/indexer/indexer.js";
import type { AlertRow } from "../../src/indexer/queries.js";
import { RISK_RULES, parseRiskConfig, type RiskConfigInput } from "../../src/indexer/risk.js";
import { Uploader } from "../../src/upload/uploader.js";
import { REGULATOR_KEY, REGULATOR_PUB, card, detail, tempDir } from "../helpers/ledger.js";
import { OWING, PAID, closeUploaders, increaseTime, protectionScenario } from "../helpers/protection.js";
import { indexDb } from "../helpers/index-db.js";

const { ethers } = await network.create();
const DAY = 86_400;
const RISKY = 1;
const NORMAL = 2;

/** Indexes the ledger into a fresh database with `risk` thresholds; returns the alerts of `rule`. */
async function alerts(ledger: string, rule: string, risk: RiskConfigInput = {}): Promise<AlertRow[]> {
  const indexer = await Indexer.open({ ledger, privateKey: REGULATOR_KEY, db: indexDb(tempDir("risk-protection"), "i.sqlite"), risk }, ethers.provider);
  try {
    await indexer.sync();
    return indexer.queries().alerts({ rule });
  } finally {
    indexer.close();
  }
}

describe("risk rules: the card holders' protection", function () {
  this.timeout(180_000);

  it("has documented, configurable defaults", function () {
    const c = parseRiskConfig({});
    expect([c.windingDownMaxDays, c.windingDownMinLiability, c.coolingOffGraceDays]).to.deep.equal([30, 0, 0]);
    expect([RISK_RULES["winding-down-unpaid"], RISK_RULES["cooling-off-overdue"]]).to.deep.equal(["high", "high"]);
  });

  describe("winding-down-unpaid", function () {
    it("fires on a merchant winding down past the limit with balances owed, not on one that paid everyone back", async function () {
      const [admin, regulator, r1, r2] = await ethers.getSigners();
      const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
      const address = await ledger.getAddress();
      const dir = tempDir("risk-winding");
      const uploaders: Uploader[] = [];
      await ledger.connect(regulator).registerMerchant(RISKY, r1.address);
      await ledger.connect(regulator).registerMerchant(NORMAL, r2.address);
      const upload = async (m: number, signer: typeof r1, rows: ReturnType<typeof detail>[]) => {
        const u =
          uploaders[m] ??
          (uploaders[m] = await Uploader.open({ ledger: address, merchantId: m, regulatorPublicKey: REGULATOR_PUB, journalPath: join(dir, `${m}.jsonl`) }, signer));
        await u.upload(rows);
      };
      try {
        await upload(RISKY, r1, [detail(RISKY, 1, card("w1"), 300_000n, 1), detail(RISKY, 1, card("w2"), 200_000n, 2)]);
        await upload(NORMAL, r2, [detail(NORMAL, 1, card("w3"), 300_000n, 3)]);
        for (const m of [RISKY, NORMAL]) await ledger.connect(regulator).windDownMerchant(m, encodeBytes32String("exit"));
        // Both book refunds while winding down; only NORMAL pays everyone back.
        await upload(RISKY, r1, [detail(RISKY, 3, card("w1"), 300_000n, 4)]);
        await upload(NORMAL, r2, [detail(NORMAL, 3, card("w3"), 300_000n, 5)]);
        await increaseTime(ethers, 10 * DAY);
        expect(await alerts(address, "winding-down-unpaid"), "within the 30 days").to.deep.equal([]);
        await increaseTime(ethers, 21 * DAY);
        const found = await alerts(address, "winding-down-unpaid");
        expect(found.map((a) => [a.merchantId, a.severity, a.threshold])).to.deep.equal([[RISKY, "high", 30 * DAY]]);
        expect(found[0].value).to.be.greaterThan(31 * DAY - 60);
        expect(found[0].message).to.include("still owes its card holders ¥2,000.00");
        // Thresholds are configuration: a longer allowance, or a higher floor, keeps it quiet.
        expect(await alerts(address, "winding-down-unpaid", { windingDownMaxDays: 60 })).to.deep.equal([]);
        expect(await alerts(address, "winding-down-unpaid", { windingDownMinLiability: 200_000 })).to.deep.equal([]);
      } finally {
        for (const u of uploaders) u?.close();
      }
    });
  });

  describe("cooling-off-overdue", function () {
    it("fires on the card whose owed return is past its due date, not on returns paid or met", async function () {
      const s = await protectionScenario(ethers);
      try {
        const address = await s.ledger.getAddress();
        // D's return was asked 8 days ago and is due in 15: not overdue yet.
        expect(await alerts(address, "cooling-off-overdue")).to.deep.equal([]);
        await increaseTime(ethers, 8 * DAY);
        const due = (await s.custody.obligationOf(OWING, s.cards.D.account)).dueBy;
        const found = await alerts(address, "cooling-off-overdue");
        expect(found.map((a) => [a.merchantId, a.account, a.severity])).to.deep.equal([[OWING, s.cards.D.account, "high"]]);
        const now = (await ethers.provider.getBlock("latest"))!.timestamp;
        expect(found[0].value).to.equal(now - Number(due));
        expect(found[0].message).to.include("owes ¥800.00");
        // PAID's return was paid from custody, C's met by the merchant: neither is an alert.
        expect(found.some((a) => a.merchantId === PAID || a.account === s.cards.C.account)).to.equal(false);
        // A grace period is configuration.
        expect(await alerts(address, "cooling-off-overdue", { coolingOffGraceDays: 5 })).to.deep.equal([]);
        // Once the merchant pays, the alert goes away.
        await s.fund(s.recorders[OWING], 80_000n);
        await (await s.custody.connect(s.recorders[OWING]).meetObligation(OWING, s.cards.D.account)).wait();
        expect(await alerts(address, "cooling-off-overdue")).to.deep.equal([]);
      } finally {
        closeUploaders(s);
      }
    });
  });
});
