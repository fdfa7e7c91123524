import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import { BrowserProvider, hexlify, type Eip1193Provider } from "ethers";
import { network } from "hardhat";

import { openEnvelope, parseEnvelope } from "../../src/crypto/envelope.js";
import { Journal } from "../../src/upload/journal.js";
import { sealBatch } from "../../src/upload/sealing.js";
import { Uploader, type UploaderConfigInput } from "../../src/upload/uploader.js";
import { expectRejects } from "../helpers/errors.js";
import { MERCHANT_KEY, MERCHANT_PUB, REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const M = 1;

async function deployLedger() {
  const [admin, regulator, recorder, recorder2, stranger] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  await ledger.connect(regulator).registerMerchant(M, recorder.address);
  await ledger.connect(regulator).addRecorder(M, recorder2.address);
  await ledger.connect(recorder).acceptRecorder(M, recorder2.address);
  return { ledger, address: await ledger.getAddress(), admin, regulator, recorder, recorder2, stranger };
}
type Fixture = Awaited<ReturnType<typeof deployLedger>>;

function config(f: Fixture, overrides: Partial<UploaderConfigInput> = {}): UploaderConfigInput {
  return {
    ledger: f.address,
    merchantId: M,
    regulatorPublicKey: REGULATOR_PUB,
    journalPath: join(tempDir(), "journal.jsonl"),
    ...overrides,
  };
}


const journalLines = (path: string) =>
  readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { t: string; sequence?: string });

describe("Uploader", function () {
  describe("when everything is right", function () {
    it("uploads records and returns what identifies each on chain", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const uploader = await Uploader.open(config(f), f.recorder);
      const details = [...openings(M, 3), detail(M, 2, card(0), 7_000n, 10), detail(M, 3, card(1), 1_000n, 11)];
      const records = await uploader.upload(details);

      expect(records.map((r) => r.recordIndex)).to.deep.equal([1n, 2n, 3n, 4n, 5n]);
      expect(records.every((r) => r.sequence === 1n && r.merchantId === M)).to.equal(true);
      const logs = await f.ledger.queryFilter(f.ledger.filters.Recorded());
      expect(logs.map((l) => [l.transactionHash, l.topics[1], l.topics[3]])).to.deep.equal(
        records.map((r) => [r.txHash, r.account, r.commitment]),
      );
      expect((await f.ledger.accountBooks(M, card(0))).balance).to.equal(93_000n);
      expect((await f.ledger.accountBooks(M, card(1))).refunded).to.equal(1_000n);
      expect(records.every((r) => /^0x[0-9a-f]{32}$/.test(r.salt))).to.equal(true);
    });

    it("cuts batches of batchSize with consecutive sequence numbers", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const uploader = await Uploader.open(config(f, { batchSize: 3 }), f.recorder);
      const records = await uploader.upload(openings(M, 7));
      expect(records.map((r) => r.sequence)).to.deep.equal([1n, 1n, 1n, 2n, 2n, 2n, 3n]);
      expect((await f.ledger.merchantBooks(M)).nextSequence).to.equal(4n);
      const journal = journalLines(uploader.journal.path);
      expect(journal.filter((l) => l.t === "done").map((l) => l.sequence)).to.deep.equal(["1", "2", "3"]);
    });

    for (const preflight of [true, false]) {
      it(`splits a batch that would pass the 2^24 gas cap (preflight ${preflight})`, async function () {
        const f = await networkHelpers.loadFixture(deployLedger);
        const uploader = await Uploader.open(config(f, { batchSize: 700, preflight }), f.recorder);
        const records = await uploader.upload(openings(M, 700));
        const sequences = new Set(records.map((r) => r.sequence));
        expect(sequences.size).to.be.greaterThan(1);
        expect((await f.ledger.chainHead())[0]).to.equal(700n);
        expect((await f.ledger.merchantBooks(M)).accountCount).to.equal(700n);
      });
    }

    it("without preflight, sends 1,000 consumptions in one transaction (the gas bound fits them)", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const uploader = await Uploader.open(config(f, { batchSize: 1_000, preflight: false }), f.recorder);
      await uploader.upload(openings(M, 500, 1_000_000n));
      const consumptions = Array.from({ length: 1_000 }, (_, i) => detail(M, 2, card(i % 500), 100n, 1_000 + i));
      const records = await uploader.upload(consumptions);
      expect(new Set(records.map((r) => r.sequence)).size).to.equal(1);
      expect((await f.ledger.chainHead())[0]).to.equal(1_500n);
    });

    for (const mode of ["batch", "single"] as const) {
      it(`without preflight, the gas bound covers the costliest records (${mode} mode)`, async function () {
        const f = await networkHelpers.loadFixture(deployLedger);
        const uploader = await Uploader.open(config(f, { batchSize: 60, preflight: false, mode }), f.recorder);
        // Longest strings (255 UTF-8 bytes each), so the longest ciphertexts; top-ups that open
        // accounts (a fresh storage word each), then consumptions and refunds of them.
        const longest = (d: ReturnType<typeof detail>) => ({ ...d, orderRef: "R".repeat(255), memo: "\u00e9".repeat(127) + "m" });
        const opening = openings(M, 60, 1_000_000n).map(longest);
        const spending = opening.map((d, i) => longest(detail(M, i % 2 === 0 ? 2 : 3, d.account, 1_000n, 100 + i)));
        const records = await uploader.upload([...opening, ...spending]);
        expect(records).to.have.length(120);
        expect((await f.ledger.chainHead())[0]).to.equal(120n);
        for (const txHash of new Set(records.map((r) => r.txHash))) {
          const receipt = await ethers.provider.getTransactionReceipt(txHash);
          const tx = await ethers.provider.getTransaction(txHash);
          expect(receipt!.status).to.equal(1);
          expect(receipt!.gasUsed < tx!.gasLimit, "bound above the gas used").to.equal(true);
        }
      });
    }

    it("wraps the batch key for the merchant too when it gives its key", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const uploader = await Uploader.open(config(f, { merchantPublicKey: MERCHANT_PUB }), f.recorder);
      await uploader.upload(openings(M, 2));
      const [batch] = await f.ledger.queryFilter(f.ledger.filters.BatchRecorded(M));
      const envelope = ethers.getBytes(batch.args.envelope);
      expect(parseEnvelope(envelope).map((e) => e.role)).to.deep.equal(["regulator", "merchant"]);
      expect(await openEnvelope(MERCHANT_KEY, envelope)).to.have.length(32);
    });

    it("uploads single ECIES records in single mode", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const uploader = await Uploader.open(config(f, { mode: "single" }), f.recorder);
      await uploader.upload(openings(M, 2));
      const [batch] = await f.ledger.queryFilter(f.ledger.filters.BatchRecorded(M));
      expect(batch.args.envelope).to.equal("0x");
      const [log] = await f.ledger.queryFilter(f.ledger.filters.Recorded());
      expect(log.data.slice(2 + 30, 2 + 32)).to.equal("01"); // byte 15: ciphertext format 0x01
    });
  });

  describe("when the input is wrong", function () {
    it("reports every wrong configuration field by path, and creates nothing", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const journalPath = join(tempDir(), "never.jsonl");
      const e = await expectRejects(
        Uploader.open(
          { ledger: "0x1234", merchantId: 0, regulatorPublicKey: "0xnope", journalPath, batchSize: 0, mode: "fast" } as never,
          f.recorder,
        ),
        "INVALID_CONFIG",
      );
      const paths = (e.details.issues as { path: string }[]).map((i) => i.path).sort();
      expect(paths).to.deep.equal(["batchSize", "ledger", "merchantId", "mode", "regulatorPublicKey"]);
      expect(existsSync(journalPath)).to.equal(false);
    });

    it("refuses an address with no contract", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const e = await expectRejects(Uploader.open(config(f, { ledger: f.stranger.address }), f.recorder), "INVALID_CONFIG");
      expect(e.details.ledger).to.equal(f.stranger.address);
    });

    it("refuses another ledger's journal", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const first = await Uploader.open(config(f), f.recorder);
      first.close();
      const other = await ethers.deployContract("PrepaidLedger", [f.admin.address, f.regulator.address, 0, 3_600]);
      const e = await expectRejects(
        Uploader.open(config(f, { ledger: await other.getAddress(), journalPath: first.journal.path }), f.recorder),
        "INVALID_CONFIG",
      );
      expect(e.details.field).to.equal("ledger");
    });

    it("refuses details of another merchant or out of range, before anything is written", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const uploader = await Uploader.open(config(f), f.recorder);
      const e = await expectRejects(uploader.upload([detail(M, 1, card(0), 5n), detail(2, 1, card(1), 5n)]), "INVALID_ARGUMENT");
      expect(e.details).to.include({ index: 1, merchantId: 2, expected: M });
      await expectRejects(uploader.upload([detail(M, 1, card(0), 0n)]), "INVALID_ARGUMENT");
      await expectRejects(uploader.upload([{ ...detail(M, 1, card(0), 5n), account: "0x12" }]), "INVALID_ARGUMENT");
      expect(journalLines(uploader.journal.path).map((l) => l.t)).to.deep.equal(["header"]);
      expect((await f.ledger.chainHead())[0]).to.equal(0n);
    });

    it("preflights: a batch the ledger would refuse is never journaled or sent", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const uploader = await Uploader.open(config(f), f.recorder);
      await uploader.upload(openings(M, 1, 500n));
      const e = await expectRejects(uploader.upload([detail(M, 2, card(0), 501n, 1)]), "LEDGER_REVERTED");
      expect(e.details.error).to.equal("LedgerInsufficientBalance");
      expect(e.details.args).to.deep.equal({ account: card(0), balance: 500n, needed: 501n });
      expect(e.details).to.include({ landed: 0, notLanded: 1 });
      expect(journalLines(uploader.journal.path).filter((l) => l.t === "batch")).to.have.length(1);
      const books = await f.ledger.merchantBooks(M);
      expect([books.recordCount, books.nextSequence]).to.deep.equal([1n, 2n]);
      // The sequence number was not used up: the next good batch is #2.
      const [next] = await uploader.upload([detail(M, 2, card(0), 500n, 2)]);
      expect(next.sequence).to.equal(2n);
    });

    it("reports a suspended merchant's refusal with the ledger's error", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await f.ledger.connect(f.regulator).suspendMerchant(M, ethers.ZeroHash);
      const uploader = await Uploader.open(config(f), f.recorder);
      const e = await expectRejects(uploader.upload(openings(M, 2)), "LEDGER_REVERTED");
      expect(e.details).to.include({ error: "LedgerMerchantSuspended", landed: 0, notLanded: 2 });
      expect(e.details.args).to.deep.equal({ merchantId: BigInt(M) });
    });

    it("without preflight, keeps a refused batch in the journal as rejected and never resends it", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const uploader = await Uploader.open(config(f, { preflight: false }), f.recorder);
      await uploader.upload(openings(M, 1, 500n));
      const e = await expectRejects(uploader.upload([detail(M, 2, card(0), 900n, 1)]), "LEDGER_REVERTED");
      expect(e.details.error).to.equal("LedgerInsufficientBalance");
      const lines = journalLines(uploader.journal.path);
      expect(lines.filter((l) => l.t === "rejected").map((l) => l.sequence)).to.deep.equal(["2"]);
      expect(await uploader.recover()).to.deep.equal([]);
      const [next] = await uploader.upload([detail(M, 2, card(0), 100n, 2)]);
      expect(next.sequence).to.equal(2n);
      expect((await f.ledger.merchantBooks(M)).recordCount).to.equal(2n);
    });
  });

  describe("when it crashed or the node failed", function () {
    /** Journals a sealed batch as a crashed uploader would have, before sending it. */
    async function journalOnly(f: Fixture, path: string, sequence: bigint, count: number, from = 0) {
      const { chainId } = await ethers.provider.getNetwork();
      const journal = Journal.open(path, { chainId: chainId.toString(), ledger: f.address.toLowerCase(), merchantId: M });
      const sealed = await sealBatch(openings(M, count, 1_000n, from), [{ publicKey: REGULATOR_PUB, role: "regulator" }]);
      journal.append({
        t: "batch",
        sequence: sequence.toString(),
        envelope: hexlify(sealed.envelope),
        packed: hexlify(sealed.packed),
        count,
        salts: sealed.salts.map((s) => hexlify(s)),
      });
      journal.close();
      return sealed;
    }

    it("sends a batch that was journaled but never sent", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const cfg = config(f);
      await journalOnly(f, cfg.journalPath, 1n, 3);
      const uploader = await Uploader.open(cfg, f.recorder);
      const recovered = await uploader.recover();
      expect(recovered.map((r) => r.recordIndex)).to.deep.equal([1n, 2n, 3n]);
      expect((await f.ledger.chainHead())[0]).to.equal(3n);
      expect(await uploader.recover()).to.deep.equal([]);
    });

    it("does not resend a batch that landed before the crash", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const cfg = config(f);
      const sealed = await journalOnly(f, cfg.journalPath, 1n, 3);
      // The crashed process had sent it; it landed, but "done" never reached the journal.
      const tx = await f.ledger.connect(f.recorder).recordBatch(M, 1, sealed.envelope, sealed.packed);
      const uploader = await Uploader.open(cfg, f.recorder);
      const recovered = await uploader.recover();
      expect(recovered.map((r) => [r.recordIndex, r.txHash])).to.deep.equal([1n, 2n, 3n].map((i) => [i, tx.hash]));
      expect((await f.ledger.chainHead())[0]).to.equal(3n);
      // upload() recovers first, then goes on with the next number.
      const [next] = await uploader.upload([detail(M, 2, card(0), 10n, 9)]);
      expect([next.sequence, next.recordIndex]).to.deep.equal([2n, 4n]);
    });

    it("moves a batch whose number another recorder took, and books it once", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const cfg = config(f);
      await journalOnly(f, cfg.journalPath, 1n, 2);
      const other = await Uploader.open(config(f), f.recorder2);
      await other.upload(openings(M, 3, 1_000n, 100));
      const uploader = await Uploader.open(cfg, f.recorder);
      const recovered = await uploader.recover();
      expect(recovered.map((r) => r.sequence)).to.deep.equal([2n, 2n]);
      expect((await f.ledger.chainHead())[0]).to.equal(5n);
      expect(journalLines(cfg.journalPath).some((l) => l.t === "moved" && l.sequence === "1")).to.equal(true);
    });

    it("after losing the node's answer to a send, finds the landed batch instead of sending it twice", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      let dropNextSendAnswer = true;
      const flaky: Eip1193Provider = {
        request: async (args) => {
          const result = await connection.provider.request(args);
          if (args.method === "eth_sendTransaction" && dropNextSendAnswer) {
            dropNextSendAnswer = false;
            throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
          }
          return result;
        },
      };
      const signer = await new BrowserProvider(flaky).getSigner(f.recorder.address);
      const uploader = await Uploader.open(config(f), signer);
      // The uploader asks the chain whether the number was used, and finds its batch there.
      const records = await uploader.upload(openings(M, 4));
      expect(dropNextSendAnswer).to.equal(false);
      expect(records.map((r) => r.recordIndex)).to.deep.equal([1n, 2n, 3n, 4n]);
      expect(await uploader.recover()).to.deep.equal([]);
      expect((await f.ledger.chainHead())[0]).to.equal(4n); // and was not sent again
    });
  });
});
