/**
 * The Uploader with batches in flight (src/upload/pipeline.ts): order, configuration, and what it
 * does when the ledger refuses a batch while the next one is already sent.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import { BrowserProvider, type Eip1193Provider } from "ethers";
import { network } from "hardhat";

import { Uploader, inFlightFor, type UploaderConfigInput } from "../../src/upload/uploader.js";
import { expectRejects } from "../helpers/errors.js";
import { REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const M = 1;

async function deployLedger() {
  const [admin, regulator, recorder, recorder2] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  await ledger.connect(regulator).registerMerchant(M, recorder.address);
  await ledger.connect(regulator).addRecorder(M, recorder2.address);
  await ledger.connect(recorder).acceptRecorder(M, recorder2.address);
  return { ledger, address: await ledger.getAddress(), recorder, recorder2 };
}

/** The node's provider, with a hook before each request (its method and params). */
function watched(before: (method: string, params: unknown[]) => Promise<void> | void): Eip1193Provider {
  return {
    request: async (args: { method: string; params?: unknown[] | object }) => {
      await before(args.method, (args.params ?? []) as unknown[]);
      return connection.provider.request(args as { method: string; params?: unknown[] });
    },
  };
}
type Fixture = Awaited<ReturnType<typeof deployLedger>>;

const config = (f: Fixture, overrides: Partial<UploaderConfigInput> = {}): UploaderConfigInput => ({
  ledger: f.address,
  merchantId: M,
  regulatorPublicKey: REGULATOR_PUB,
  journalPath: join(tempDir("pipeline"), "journal.jsonl"),
  preflight: false,
  batchSize: 2,
  ...overrides,
});

const lines = (path: string) =>
  readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { t: string; sequence?: string; to?: string });

/** The commitments of the Recorded logs, in ledger order. */
async function onChain(f: Fixture): Promise<string[]> {
  return (await f.ledger.queryFilter(f.ledger.filters.Recorded())).map((l) => l.topics[3]);
}

describe("Uploader with batches in flight", function () {
  it("defaults to 2 in flight without preflight, 1 with it, and refuses more than 1 with preflight", async function () {
    expect([inFlightFor({ preflight: false }), inFlightFor({ preflight: true }), inFlightFor({ preflight: false, inFlight: 4 })]).to.deep.equal([2, 1, 4]);
    const f = await networkHelpers.loadFixture(deployLedger);
    const e = await expectRejects(Uploader.open(config(f, { preflight: true, inFlight: 2 }), f.recorder), "INVALID_CONFIG");
    expect((e.details.issues as { path: string }[]).map((i) => i.path)).to.deep.equal(["inFlight"]);
    await expectRejects(Uploader.open(config(f, { inFlight: 17 }), f.recorder), "INVALID_CONFIG");
  });

  for (const inFlight of [2, 3]) {
    it(`lands every batch once, in sequence order, with ${inFlight} in flight`, async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const uploader = await Uploader.open(config(f, { inFlight }), f.recorder);
      const details = [...openings(M, 4), ...Array.from({ length: 9 }, (_, i) => detail(M, 2, card(i % 4), 100n + BigInt(i), 10 + i))];
      const records = await uploader.upload(details);
      expect(records.map((r) => r.recordIndex)).to.deep.equal(details.map((_, i) => BigInt(i + 1)));
      expect(records.map((r) => r.sequence)).to.deep.equal(details.map((_, i) => BigInt(1 + (i >> 1))));
      expect(await onChain(f)).to.deep.equal(records.map((r) => r.commitment));
      const done = lines(uploader.journal.path).filter((l) => l.t === "done").map((l) => l.sequence);
      expect(done).to.deep.equal(["1", "2", "3", "4", "5", "6", "7"]);
      // A retry returns the first outcome and sends nothing.
      expect((await uploader.upload(details)).map((r) => r.txHash)).to.deep.equal(records.map((r) => r.txHash));
      expect((await f.ledger.chainHead())[0]).to.equal(13n);
      uploader.close();
    });
  }

  it("asks where a batch landed only once the next one is sent, from its one BatchRecorded log", async function () {
    const f = await networkHelpers.loadFixture(deployLedger);
    const order: string[] = [];
    const signer = await new BrowserProvider(
      watched((method, params) => {
        if (method === "eth_sendTransaction") order.push("send");
        if (method === "eth_getTransactionReceipt") order.push("receipt");
        if (method === "eth_getLogs") {
          const topics = (params[0] as { topics?: (string | null)[] }).topics ?? [];
          if (topics.length === 3) order.push(`landing ${BigInt(topics[2]!)}`);
        }
      }),
    ).getSigner(f.recorder.address);
    const uploader = await Uploader.open(config(f, { inFlight: 3 }), signer);
    const details = [...openings(M, 4), ...Array.from({ length: 6 }, (_, i) => detail(M, 2, card(i % 4), 100n + BigInt(i), 10 + i))];
    const records = await uploader.upload(details);
    expect(records.map((r) => r.recordIndex)).to.deep.equal(details.map((_, i) => BigInt(i + 1)));
    // Five batches of two: each landing question comes after the next batch's send, and no receipt
    // of a whole batch is asked.
    const sends = (upTo: number) => order.slice(0, upTo).filter((o) => o === "send").length;
    for (let k = 1; k <= 5; k++) {
      const at = order.indexOf(`landing ${k}`);
      expect(at, `landing ${k} in ${order.join(", ")}`).to.be.greaterThan(-1);
      expect(sends(at), `sends before landing ${k}: ${order.join(", ")}`).to.equal(Math.min(k + 1, 5));
    }
    expect(order).to.not.include("receipt");
    uploader.close();
  });

  it("when another recorder takes a number mid-run, settles what was sent, then sends the rest; books each record once", async function () {
    const f = await networkHelpers.loadFixture(deployLedger);
    const other = await Uploader.open(config(f, { batchSize: 1 }), f.recorder2);
    await other.upload(openings(M, 4, 1_000n));
    let sends = 0;
    let intruded = false;
    const signer = await new BrowserProvider(
      watched(async (method) => {
        // Just before this uploader's third batch leaves, the other recorder books a batch: the
        // third batch's number (and every later one in flight) is now used.
        if (method === "eth_sendTransaction" && ++sends === 3 && !intruded) {
          intruded = true;
          await other.upload([detail(M, 2, card(3), 7n, 999)]);
        }
      }),
    ).getSigner(f.recorder.address);
    const cfg = config(f, { inFlight: 2 });
    const uploader = await Uploader.open(cfg, signer);
    const details = Array.from({ length: 10 }, (_, i) => detail(M, 2, card(i % 3), 10n + BigInt(i), 100 + i));
    const records = await uploader.upload(details);
    expect(intruded).to.equal(true);
    const chain = await onChain(f);
    expect(chain).to.have.length(4 + 1 + 10);
    // Every record once, where the uploader says it is (the batch whose number was taken moved
    // to a later number, behind the batch journaled after it, as the Settler renumbers).
    for (const r of records) expect(chain[Number(r.recordIndex) - 1], `record ${r.recordIndex}`).to.equal(r.commitment);
    expect(new Set(records.map((r) => r.recordIndex)).size).to.equal(10);
    expect(new Set(chain).size).to.equal(15);
    expect(lines(cfg.journalPath).some((l) => l.t === "moved")).to.equal(true);
    // A retry sends nothing.
    expect((await uploader.upload(details)).map((r) => r.txHash)).to.deep.equal(records.map((r) => r.txHash));
    expect((await f.ledger.chainHead())[0]).to.equal(15n);
    uploader.close();
    other.close();
  });

  describe("when the ledger refuses a batch in the middle", function () {
    it("journals it rejected, moves each later batch down one number, lands it, and books nothing twice", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      // A node-held key (eth_sendTransaction), as a merchant's wallet extension would give.
      const signer = await new BrowserProvider(connection.provider).getSigner(f.recorder.address);
      const cfg = config(f);
      const uploader = await Uploader.open(cfg, signer);
      await uploader.upload(openings(M, 2, 1_000n));
      const good = (n: number) => detail(M, 2, card(n % 2), 10n, 100 + n);
      // Batches 2..5: [good, good], [overdraw, good], [good, good], [good, good].
      const overdraw = detail(M, 2, card(0), 5_000n, 99);
      const details = [good(0), good(1), overdraw, good(2), good(3), good(4), good(5), good(6)];
      const e = await expectRejects(uploader.upload(details), "LEDGER_REVERTED");
      // Batch 3 was refused while batch 4 was in flight (its transaction reverted: the ledger
      // still expected 3); batch 4 moved down to 3 and landed. Batch 5 was never sealed.
      expect(e.details).to.include({ error: "LedgerInsufficientBalance", landed: 4, notLanded: 4 });
      let journal = lines(cfg.journalPath);
      expect(journal.filter((l) => l.t === "rejected").map((l) => l.sequence)).to.deep.equal(["3"]);
      expect(journal.filter((l) => l.t === "moved").map((l) => [l.sequence, l.to])).to.deep.equal([["4", "3"]]);
      expect(await onChain(f)).to.have.length(6);

      // The retry contract: landed records return their first outcome; the refused batch's
      // records were released, so they are sealed again (and refused again: the overdraw stays),
      // and the records never sent go out, moved down past the refusal as before.
      const again = await expectRejects(uploader.upload(details), "LEDGER_REVERTED");
      expect(again.details).to.include({ error: "LedgerInsufficientBalance", landed: 6, notLanded: 2 });
      journal = lines(cfg.journalPath);
      expect(journal.filter((l) => l.t === "rejected").map((l) => l.sequence)).to.deep.equal(["3", "4"]);
      expect(journal.filter((l) => l.t === "moved").map((l) => [l.sequence, l.to])).to.deep.equal([["4", "3"], ["5", "4"]]);

      const landed = [good(0), good(1), good(3), good(4), good(5), good(6)];
      const outcome = await uploader.upload(landed);
      const chain = await onChain(f);
      expect(chain).to.have.length(8);
      expect(outcome.map((r) => r.commitment)).to.deep.equal(chain.slice(2));
      expect(outcome.map((r) => r.sequence)).to.deep.equal([2n, 2n, 3n, 3n, 4n, 4n]);
      expect((await f.ledger.merchantBooks(M)).nextSequence).to.equal(5n);
      uploader.close();

      // After a restart: nothing pending, nothing resent; the next batch takes the next number.
      const restarted = await Uploader.open(cfg, signer);
      expect(await restarted.recover()).to.deep.equal([]);
      const [next] = await restarted.upload([good(7)]);
      expect(next.sequence).to.equal(5n);
      expect(await onChain(f)).to.have.length(9);
      restarted.close();
    });
  });
});
