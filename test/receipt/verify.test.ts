/**
 * Receipts against a chain: the uploader returns one per record (also when a resumed upload is
 * called again), `verifyReceipt` accepts each one, tells pending from confirmed, and refuses every
 * altered part of a receipt naming it, and a forged receipt as a record that does not exist.
 */
import { PassThrough } from "node:stream";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import { Wallet, getAddress } from "ethers";
import { network } from "hardhat";

import { main } from "../../src/cli/main.js";
import { isError } from "../../src/errors.js";
import {
  makeReceipt,
  matchRecord,
  pinpointHidden,
  receiptFromCompact,
  receiptToCompact,
  receiptToJson,
  verifyReceipt,
  type Receipt,
} from "../../src/receipt/index.js";
import { Uploader } from "../../src/upload/uploader.js";
import { expectRejects } from "../helpers/errors.js";
import { REGULATOR_PUB, card, tempDir } from "../helpers/ledger.js";
import { MERCHANT, deployWithQuorum, receiptRecords, serveRpc } from "../helpers/receipts.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;

async function landed() {
  const f = await deployWithQuorum(connection);
  const uploaded = await f.uploader.upload(receiptRecords());
  return { ...f, uploaded };
}

/** `r` with a change, the commitment left as it was (what a forger who edits one field gets). */
const edit = (r: Receipt, change: Partial<Receipt> | Partial<Receipt["details"]>, inDetails = false): Receipt =>
  inDetails ? { ...r, details: { ...r.details, ...(change as Partial<Receipt["details"]>) } } : { ...r, ...(change as Partial<Receipt>) };

describe("receipts against the chain", function () {
  this.timeout(120_000);

  describe("the uploader", function () {
    it("returns a receipt for every record: its index, block, commitment, salt and exactly the details given", async function () {
      const f = await networkHelpers.loadFixture(landed);
      const details = receiptRecords();
      expect(f.uploaded.map((u) => u.receipt.recordIndex)).to.deep.equal([1n, 2n, 3n, 4n]);
      for (const [i, u] of f.uploaded.entries()) {
        expect(u.receipt).to.deep.equal(
          makeReceipt({ chainId: f.chainId, ledger: f.ledgerAddress, recordIndex: u.recordIndex, blockNumber: u.blockNumber, salt: u.salt, details: details[i]! }),
        );
        expect([u.receipt.commitment, u.receipt.salt, u.receipt.ledger]).to.deep.equal([u.commitment, u.salt, getAddress(f.ledgerAddress)]);
      }
    });

    it("a resumed upload (a new uploader on the journal, the same records) returns the same receipts and books nothing twice", async function () {
      const f = await networkHelpers.loadFixture(landed);
      const again = await Uploader.open(
        { ledger: f.ledgerAddress, merchantId: MERCHANT, regulatorPublicKey: REGULATOR_PUB, journalPath: f.uploader.journal.path },
        f.recorder,
      );
      const before = (await f.ledger.getFunction("chainHead").staticCall())[0] as bigint;
      const second = await again.upload(receiptRecords());
      expect(second.map((u) => u.receipt)).to.deep.equal(f.uploaded.map((u) => u.receipt));
      expect((await f.ledger.getFunction("chainHead").staticCall())[0]).to.equal(before);
      // recover() has no plain details to put in a receipt: it returns where records landed only.
      expect((await again.recover()).every((r) => !("receipt" in r))).to.equal(true);
      again.close();
    });
  });

  describe("verifyReceipt", function () {
    it("accepts every receipt the uploader returned, with the card's balance now, pending until the quorum confirms", async function () {
      const f = await networkHelpers.loadFixture(landed);
      for (const u of f.uploaded) {
        const v = await verifyReceipt(u.receipt, ethers.provider, { quorum: f.quorumAddress, ledger: f.ledgerAddress });
        expect([v.valid, v.record.recordIndex, v.record.txHash, v.confirmation.status, v.confirmation.confirmedThrough]).to.deep.equal([true, u.recordIndex, u.txHash, "pending", 0n]);
        const books = await f.ledger.getFunction("accountBooks").staticCall(MERCHANT, u.receipt.details.account);
        expect(v.books.balance).to.equal(books.balance);
      }
      const alice = await verifyReceipt(f.uploaded[0]!.receipt, ethers.provider);
      expect(alice.books).to.deep.include({ toppedUp: 300_000n, consumed: 7_000n, refunded: 0n, balance: 293_000n });
      expect(alice.confirmation).to.deep.equal({ status: "unchecked", quorum: null, confirmedThrough: null });

      await f.confirmAll();
      const later = await f.uploader.upload([{ ...receiptRecords()[0]!, kind: 2, amount: 100n, orderRef: "GYM-later" }]);
      const confirmed = await verifyReceipt(f.uploaded[2]!.receipt, ethers.provider, { quorum: f.quorumAddress });
      expect([confirmed.confirmation.status, confirmed.confirmation.confirmedThrough, confirmed.books.balance]).to.deep.equal(["confirmed", 4n, 292_900n]);
      const pending = await verifyReceipt(later[0]!.receipt, ethers.provider, { quorum: f.quorumAddress });
      expect([pending.record.recordIndex, pending.confirmation.status]).to.deep.equal([5n, "pending"]);
    });

    it("refuses each altered part of a receipt, naming it", async function () {
      const f = await networkHelpers.loadFixture(landed);
      const r = f.uploaded[2]!.receipt; // alice's class, record 3
      const other = f.uploaded[1]!.receipt;
      const field = async (altered: Receipt, options = {}) => (await expectRejects(verifyReceipt(altered, ethers.provider, options), "RECEIPT_MISMATCH")).details.field;
      const cases: [string, Receipt, object?][] = [
        ["amount", edit(r, { amount: 70_000n }, true)],
        ["kind", edit(r, { kind: 3 }, true)],
        ["account", edit(r, { account: card("mallory") }, true)],
        ["merchantId", edit(r, { merchantId: 8 }, true)],
        ["details", edit(r, { memo: "yoga class x2" }, true)],
        ["details", edit(r, { orderRef: "GYM-20261126-00099" }, true)],
        ["details", edit(r, { time: r.details.time + 60 }, true)],
        ["details", edit(r, { salt: "0x" + "00".repeat(16) })],
        ["commitment", edit(r, { commitment: other.commitment })],
        ["recordIndex", edit(r, { recordIndex: 2n })],
        ["recordIndex", edit(r, { recordIndex: 4n })],
        ["blockNumber", edit(r, { blockNumber: r.blockNumber - 1 })],
        ["chainId", edit(r, { chainId: 1n })],
        ["ledger", edit(r, { ledger: getAddress(Wallet.createRandom().address) })],
        ["ledger", edit(r, { ledger: f.quorumAddress })],
        ["ledger", r, { ledger: Wallet.createRandom().address }],
      ];
      for (const [expected, altered, options] of cases) {
        expect(await field(altered, options), `${expected}: ${JSON.stringify(receiptToJson(altered))}`).to.equal(expected);
        // The same refusal from the compact string (what a QR code carries).
        expect(await field(receiptFromCompact(receiptToCompact(altered)), options)).to.equal(expected);
      }
      // A receipt whose details were changed and whose commitment was recomputed to match (self-consistent).
      const rebuilt = makeReceipt({ ...r, details: { ...r.details, memo: "yoga class x2" } });
      expect(await field(rebuilt)).to.equal("details");
      // A quorum of another ledger says the receipt names a ledger it does not supervise.
      const alien = await deployWithQuorum(connection);
      expect(await field(r, { quorum: alien.quorumAddress })).to.equal("ledger");
    });

    it("refuses a forged receipt: a record that does not exist is RECEIPT_NOT_FOUND", async function () {
      const f = await networkHelpers.loadFixture(landed);
      const r = f.uploaded[0]!.receipt;
      // Invented details at an index the ledger has, in a block without records (the ledger's deployment).
      const deployBlock = (await f.ledger.deploymentTransaction()!.wait())!.blockNumber;
      const forged = makeReceipt({ ...r, recordIndex: 3n, blockNumber: deployBlock, details: { ...r.details, amount: 900_000n, orderRef: "GYM-forged" } });
      await expectRejects(verifyReceipt(forged, ethers.provider), "RECEIPT_NOT_FOUND");
      // Invented details at the index and block of a real record: that record's parts disagree.
      const overwritten = makeReceipt({ ...r, recordIndex: 3n, blockNumber: f.uploaded[2]!.blockNumber, details: { ...r.details, amount: 900_000n, orderRef: "GYM-forged" } });
      expect((await expectRejects(verifyReceipt(overwritten, ethers.provider), "RECEIPT_MISMATCH")).details.field).to.equal("kind");
      const beyond = makeReceipt({ ...r, recordIndex: 99n });
      const e = await expectRejects(verifyReceipt(beyond, ethers.provider), "RECEIPT_NOT_FOUND");
      expect(e.details.recordCount).to.equal(4n);
      const nowhere = makeReceipt({ ...r, blockNumber: 10_000_000 });
      expect((await expectRejects(verifyReceipt(nowhere, ethers.provider), "RECEIPT_MISMATCH")).details.field).to.equal("blockNumber");
    });

    it("searches the ledger's history page by page, so a node that caps eth_getLogs ranges still answers", async function () {
      const f = await networkHelpers.loadFixture(landed);
      await networkHelpers.mine(50);
      const capped = {
        async send(method: string, params: unknown[]) {
          if (method === "eth_getLogs") {
            const q = params[0] as { fromBlock: string; toBlock: string };
            if (BigInt(q.toBlock) - BigInt(q.fromBlock) > 4n) throw new Error("block range too large: at most 5 blocks");
          }
          return ethers.provider.send(method, params);
        },
      };
      const r = f.uploaded[1]!.receipt;
      const moved = edit(r, { blockNumber: r.blockNumber + 40 });
      expect((await expectRejects(verifyReceipt(moved, capped), "RECEIPT_MISMATCH")).details.field).to.equal("blockNumber");
      await expectRejects(verifyReceipt(makeReceipt({ ...r, blockNumber: r.blockNumber + 40, details: { ...r.details, orderRef: "forged" } }), capped), "RECEIPT_NOT_FOUND");
      expect((await verifyReceipt(r, capped)).valid).to.equal(true);
    });

    it("the pure checks: matchRecord needs the logs only; pinpointHidden names the altered hidden part", async function () {
      const f = await networkHelpers.loadFixture(landed);
      const r = f.uploaded[3]!.receipt;
      expect(() => matchRecord(r, [])).to.throw().that.satisfies((e: unknown) => isError(e, "RECEIPT_NOT_FOUND"));
      const d = r.details;
      const hidden = { time: d.time, orderRef: d.orderRef, memo: d.memo };
      expect(pinpointHidden(edit(r, { memo: "x" }, true), hidden).details.field).to.equal("memo");
      expect(pinpointHidden(edit(r, { orderRef: "x" }, true), hidden).details.field).to.equal("orderRef");
      expect(pinpointHidden(edit(r, { time: 1 }, true), hidden).details.field).to.equal("time");
      expect(pinpointHidden(edit(r, { salt: "0x" + "11".repeat(16) }), hidden).details.field).to.equal("salt");
    });
  });

  describe("prepaid receipt", function () {
    /** Runs `prepaid args…` in-process; returns exit code and output. */
    async function prepaid(args: string[], cwd = tempDir("receipt-cli")) {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = "";
      let err = "";
      stdout.on("data", (d: Buffer) => (out += d.toString()));
      stderr.on("data", (d: Buffer) => (err += d.toString()));
      const code = await main(args, { stdout, stderr, env: { TZ: "UTC" }, cwd });
      return { code, stdout: out, stderr: err };
    }

    it("verify: valid (exit 0) from the compact string, a JSON file and JSON text; amounts in yuan, balance, confirmation", async function () {
      const f = await networkHelpers.loadFixture(landed);
      const rpc = await serveRpc(connection.provider);
      try {
        const r = f.uploaded[2]!.receipt;
        const dir = tempDir("receipt-cli");
        writeFileSync(join(dir, "receipt.json"), JSON.stringify(receiptToJson(r), null, 2));
        const flags = ["--rpc", rpc.url, "--quorum", f.quorumAddress];
        for (const arg of [receiptToCompact(r), "receipt.json", JSON.stringify(receiptToJson(r))]) {
          const run = await prepaid(["receipt", "verify", arg, ...flags], dir);
          expect(run.code, run.stderr).to.equal(0);
          expect(run.stdout).to.match(/^Receipt valid: the ledger booked exactly this consumption\./);
          expect(run.stdout).to.include("Consumption of ¥70.00").and.include("yoga class 瑜伽").and.include("¥2,930.00 now").and.include("pending: not yet confirmed");
        }
        await f.confirmAll();
        const json = await prepaid(["receipt", "verify", receiptToCompact(r), ...flags, "--json"]);
        expect(json.code).to.equal(0);
        const doc = JSON.parse(json.stdout) as { valid: boolean; books: { balance: string }; confirmation: { status: string }; receipt: unknown };
        expect([doc.valid, doc.books.balance, doc.confirmation.status]).to.deep.equal([true, "293000", "confirmed"]);
        expect(doc.receipt).to.deep.equal(JSON.parse(JSON.stringify(receiptToJson(r))));
        const text = await prepaid(["receipt", "verify", receiptToCompact(r), ...flags]);
        expect(text.stdout).to.include("CONFIRMED by the supervisors' quorum (records 1–4 confirmed)");
      } finally {
        await rpc.close();
      }
    });

    it("verify: NOT valid (exit 7) naming the part, on stdout; 3 when the node is down; 2 without --rpc", async function () {
      const f = await networkHelpers.loadFixture(landed);
      const rpc = await serveRpc(connection.provider);
      try {
        const r = f.uploaded[2]!.receipt;
        const amount = await prepaid(["receipt", "verify", receiptToCompact(edit(r, { amount: 70_000n }, true)), "--rpc", rpc.url]);
        expect(amount.code).to.equal(7);
        expect(amount.stdout).to.match(/^Receipt NOT valid: amount — /);
        expect(amount.stdout).to.include("Receipt says: ¥700.00").and.include("Ledger says:  ¥70.00");
        const forged = makeReceipt({ ...r, recordIndex: 9n, details: { ...r.details, orderRef: "forged" } });
        const notFound = await prepaid(["receipt", "verify", receiptToCompact(forged), "--rpc", rpc.url, "--json"]);
        expect(notFound.code).to.equal(7);
        expect(JSON.parse(notFound.stdout)).to.deep.include({ valid: false }).and.have.nested.property("error.code", "RECEIPT_NOT_FOUND");
        const garbage = await prepaid(["receipt", "verify", "PL1:not*base64", "--rpc", rpc.url]);
        expect([garbage.code, garbage.stdout.split("\n")[0]]).to.deep.equal([7, "Receipt NOT valid: encoding — The receipt's encoding is malformed: a character outside base64url"]);
        const missing = await prepaid(["receipt", "verify", "no-such-receipt.json", "--rpc", rpc.url, "--json"]);
        expect([missing.code, JSON.parse(missing.stdout).error.details.field]).to.deep.equal([7, "encoding"]);
        expect((await prepaid(["receipt", "verify", receiptToCompact(r)])).code).to.equal(2);
        expect((await prepaid(["receipt", "check", receiptToCompact(r)])).code).to.equal(2);
        await rpc.close();
        const down = await prepaid(["receipt", "verify", receiptToCompact(r), "--rpc", rpc.url]);
        expect([down.code, down.stdout]).to.deep.equal([3, ""]);
        expect(down.stderr).to.include("[RPC_ERROR]");
      } finally {
        await rpc.close();
      }
    });

    it("show: what the receipt says, offline (exit 0), and 7 when its commitment does not open", async function () {
      const f = await networkHelpers.loadFixture(landed);
      const r = f.uploaded[0]!.receipt;
      const run = await prepaid(["receipt", "show", receiptToCompact(r)]);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.include("Top-up of ¥3,000.00").and.include("GYM-20261126-00042").and.include("2026-11-18 11:06 UTC").and.include(`${receiptToCompact(r)} (${receiptToCompact(r).length} characters)`);
      const json = await prepaid(["receipt", "show", receiptToCompact(r), "--json"]);
      expect(JSON.parse(json.stdout)).to.deep.include({ compact: receiptToCompact(r), commitmentOpens: true });
      const altered = await prepaid(["receipt", "show", receiptToCompact(edit(r, { amount: 1n }, true))]);
      expect(altered.code).to.equal(7);
      expect(altered.stdout).to.include("does NOT open");
    });
  });
});
