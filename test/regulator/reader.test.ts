import { expect } from "chai";
import { JsonRpcProvider, Network, getBytes, hexlify, id } from "ethers";
import { network } from "hardhat";

import { createBatchKey, type Recipient } from "../../src/crypto/envelope.js";
import { packBatch } from "../../src/ledger/codec.js";
import { LEDGER_TOPICS, decodeBatchRecorded } from "../../src/regulator/events.js";
import type { JsonRpcLike, RpcLog } from "../../src/regulator/logs.js";
import { LedgerReplay, RegulatorReader, type Discrepancy, type ReaderConfigInput } from "../../src/regulator/reader.js";
import { sealBatch, sealSingles, type SealedBatch } from "../../src/upload/sealing.js";
import { expectRejects } from "../helpers/errors.js";
import { MERCHANT_KEY, MERCHANT_PUB, REGULATOR_KEY, REGULATOR_PUB, card, detail } from "../helpers/ledger.js";
import { freePort } from "../helpers/processes.js";
import { editBatchData, relinked } from "../helpers/chain-versions.js";
import { M1, RECORDED_TOPIC, type TrafficFixture, deployTraffic, editingNode, inflatingAmounts } from "../helpers/traffic.js";

const { ethers, networkHelpers } = await network.create();
const regulatorOnly = [{ publicKey: REGULATOR_PUB, role: "regulator" as const }];

/** A ledger with an honest day of traffic for two merchants (36 records in 6 batches). */
async function ledgerWithTraffic() {
  return deployTraffic(ethers);
}
type Fixture = TrafficFixture;

async function read(f: Fixture, overrides: Partial<ReaderConfigInput> = {}, rpc?: JsonRpcLike) {
  const reader = await RegulatorReader.open({ ledger: f.address, privateKey: REGULATOR_KEY, ...overrides }, ethers.provider, { rpc });
  return reader.read();
}

/** Submits a (possibly tampered) batch for merchant 1 directly; returns its first record index. */
async function submit(f: Fixture, sealed: { envelope: Uint8Array; packed: Uint8Array }): Promise<bigint> {
  const books = await f.ledger.merchantBooks(M1);
  const tx = await f.ledger.connect(f.recorder1).recordBatch(M1, books.nextSequence, sealed.envelope, sealed.packed);
  await tx.wait();
  return (await f.ledger.chainHead())[0] - BigInt(unpackCount(sealed.packed)) + 1n;
}
const unpackCount = (packed: Uint8Array) => (packed[1] << 8) | packed[2];

/** Seals consumptions of 100 on cards 0..n-1 of merchant 1, ready to tamper with. */
const honest = (n: number, recipients: Recipient[] = regulatorOnly): Promise<SealedBatch> =>
  sealBatch(
    Array.from({ length: n }, (_, i) => detail(M1, 2, card(i), 100n, 900 + i)),
    recipients,
  );

const kinds = (ds: Discrepancy[]) => ds.map((d) => [d.kind, d.recordIndex]);

/** A node that passes every log through `edit` (return undefined to drop it). */
const editing = (edit: (log: RpcLog) => RpcLog | undefined): JsonRpcLike => editingNode(ethers, edit);

/** Every log of the ledger, as eth_getLogs returns them. */
const ledgerLogs = async (f: Fixture): Promise<RpcLog[]> =>
  (await ethers.provider.send("eth_getLogs", [{ address: f.address, fromBlock: "0x0", toBlock: "latest" }])) as RpcLog[];

/** Runs `logs` through a replay the way the indexer and supervisors do (no contract calls). */
async function replayOf(logs: RpcLog[], start: ConstructorParameters<typeof LedgerReplay>[1]): Promise<LedgerReplay> {
  const replay = new LedgerReplay({ privateKey: REGULATOR_KEY, keepRecords: false }, start);
  for (const log of logs) await replay.log(log);
  replay.finish();
  return replay;
}


describe("RegulatorReader", function () {
  describe("on an honest ledger", function () {
    it("decrypts and verifies every record and agrees with every contract figure", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const report = await read(f);
      expect(report.discrepancies).to.deep.equal([]);
      expect(report.ok).to.equal(true);
      expect([report.records, report.verified, report.batches, report.accounts]).to.deep.equal([36, 36, 6, 18]);
      const [count, head] = await f.ledger.chainHead();
      expect([report.chain.recordCount, report.chain.head]).to.deep.equal([count, head]);
      for (const m of report.merchants) {
        const c = await f.ledger.merchantBooks(m.merchantId);
        expect([BigInt(m.status), m.toppedUp, m.consumed, m.refunded, m.liability, BigInt(m.accountCount)]).to.deep.equal([
          c.status,
          c.toppedUp,
          c.consumed,
          c.refunded,
          c.liability,
          c.accountCount,
        ]);
      }
      expect(report.merchants.map((m) => m.status)).to.deep.equal([1, 2]);
    });

    it("returns each record's decrypted details when asked", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const seen: bigint[] = [];
      const reader = await RegulatorReader.open({ ledger: f.address, privateKey: REGULATOR_KEY, keepRecords: true }, ethers.provider, {
        onRecord: (r) => seen.push(r.recordIndex),
      });
      const report = await reader.read();
      expect(seen).to.deep.equal(Array.from({ length: 36 }, (_, i) => BigInt(i + 1)));
      const last = report.kept!.at(-1)!;
      expect(last.details).to.include({ kind: 2, orderRef: "ORD-2026-11-000404", memo: "yoga class" });
      expect(last.details!.amount).to.equal(9_000n);
      expect(last.problems).to.deep.equal([]);
    });

    it("verifies single-record ECIES ciphertexts", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      await submit(f, await sealSingles([detail(M1, 2, card(3), 50n, 1)], REGULATOR_PUB));
      const report = await read(f);
      expect(report.discrepancies).to.deep.equal([]);
      expect(report.verified).to.equal(37);
    });

    it("reads without a key: chain and books only", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const report = await read(f, { privateKey: undefined, compareAccounts: "none" });
      expect([report.ok, report.records, report.verified]).to.deep.equal([true, 36, 0]);
    });

    it("pages through a node that refuses large eth_getLogs ranges", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const ranges: number[] = [];
      const picky: JsonRpcLike = {
        send: async (method, params) => {
          const q = params[0] as { fromBlock: string; toBlock: string };
          const span = Number(BigInt(q.toBlock) - BigInt(q.fromBlock)) + 1;
          if (span > 2) throw Object.assign(new Error("query returned more than 10000 results"), { code: -32005 });
          ranges.push(span);
          return ethers.provider.send(method, params);
        },
      };
      const report = await read(f, { maxBlockRange: 64 }, picky);
      expect(report.ok).to.equal(true);
      expect(report.records).to.equal(36);
      expect(ranges.length).to.be.greaterThan(5);
      expect(Math.max(...ranges)).to.equal(2);
    });

    it("reads a range that starts mid-ledger, checking links from there on", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const [third] = (await f.ledger.queryFilter(f.ledger.filters.BatchRecorded())).slice(2);
      const report = await read(f, { fromBlock: third.blockNumber });
      expect(report.chain.startedMidway).to.equal(true);
      expect(report.discrepancies).to.deep.equal([]);
      expect(report.records).to.be.lessThan(36);
    });
  });

  describe("when a record was tampered with", function () {
    it("reports exactly the record whose ciphertext has one flipped byte", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const sealed = await honest(3);
      sealed.records[1].ciphertext[20] ^= 0x01;
      const first = await submit(f, { envelope: sealed.envelope, packed: packBatch(sealed.records) });
      const report = await read(f);
      expect(kinds(report.discrepancies)).to.deep.equal([["corrupt-ciphertext", first + 1n]]);
      expect(report.merchants.find((m) => m.merchantId === M1)!.badRecords).to.equal(1);
      expect(report.verified).to.equal(36 + 2);
    });

    it("reports exactly the record whose commitment has one flipped byte", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const sealed = await honest(3);
      sealed.records[2].commitment[0] ^= 0x80;
      const first = await submit(f, { envelope: sealed.envelope, packed: packBatch(sealed.records) });
      const report = await read(f);
      expect(kinds(report.discrepancies)).to.deep.equal([["commitment-mismatch", first + 2n]]);
    });

    it("reports exactly the records of a batch whose wrapped key has one flipped byte", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const sealed = await honest(2);
      // envelope: version, n, then address 20 | role 1 | length 2 | wrapped (FORMAT.md 4)
      sealed.envelope[2 + 20 + 1 + 2 + 40] ^= 0x01;
      const first = await submit(f, sealed);
      const report = await read(f);
      expect(kinds(report.discrepancies)).to.deep.equal([
        ["wrapped-key-corrupt", first],
        ["wrapped-key-corrupt", first + 1n],
      ]);
    });

    it("reports a decrypted amount or kind that differs from the on-chain one", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const sealed = await honest(2);
      sealed.records[0].amount = 99n; // sealed and committed: 100
      sealed.records[1].kind = 3; // sealed and committed: consumption
      const first = await submit(f, { envelope: sealed.envelope, packed: packBatch(sealed.records) });
      const report = await read(f);
      expect(kinds(report.discrepancies)).to.deep.equal([
        ["amount-mismatch", first],
        ["kind-mismatch", first + 1n],
      ]);
      expect(report.discrepancies[0].details).to.deep.equal({ onChain: 99n, decrypted: 100n });
    });

    it("reports the records of a batch the regulator cannot open (not a recipient)", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const sealed = await honest(2, [{ publicKey: MERCHANT_PUB, role: "regulator" }]);
      const first = await submit(f, sealed);
      const report = await read(f);
      expect(kinds(report.discrepancies)).to.deep.equal([
        ["wrong-key", first],
        ["wrong-key", first + 1n],
      ]);
    });

    it("reports an unknown ciphertext format and a corrupt single-record ciphertext", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const single = await sealSingles([detail(M1, 2, card(1), 5n, 1), detail(M1, 2, card(2), 5n, 2)], REGULATOR_PUB);
      single.records[0].ciphertext[0] = 0x07;
      single.records[1].ciphertext[60] ^= 0x01;
      const first = await submit(f, { envelope: single.envelope, packed: packBatch(single.records) });
      const report = await read(f);
      expect(kinds(report.discrepancies)).to.deep.equal([
        ["unsupported-format", first],
        ["corrupt-ciphertext", first + 1n],
      ]);
    });
  });

  describe("when the node's logs are wrong", function () {
    it("reports a break in the chain when a record's log is missing", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      let seen = 0;
      const dropFifth = editing((l) => (l.topics[0] === RECORDED_TOPIC && ++seen === 5 ? undefined : l));
      const report = await read(f, {}, dropFifth);
      const breaks = report.discrepancies.filter((d) => d.kind === "chain-break");
      expect(breaks.length).to.be.greaterThan(0);
      expect(breaks.some((d) => d.recordIndex === 6n)).to.equal(true);
      expect(report.discrepancies.some((d) => d.kind === "books-mismatch")).to.equal(true);
      expect(report.ok).to.equal(false);
    });

    it("reports a log whose amount was altered: amount, chain and books all disagree", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const inflate = editing(inflatingAmounts((position) => position === 3));
      const report = await read(f, {}, inflate);
      const at3 = report.discrepancies.filter((d) => d.recordIndex === 3n).map((d) => d.kind);
      expect(at3).to.include("amount-mismatch");
      expect(report.discrepancies.map((d) => d.kind)).to.include.members(["chain-break", "books-mismatch"]);
    });
  });

  describe("hash-chain versions", function () {
    it("verifies a version 2 chain: each batch linked, then its records", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const report = await read(f);
      expect([report.ok, report.chain.version, report.batches]).to.deep.equal([true, 2, 6]);
      const { chainId } = await ethers.provider.getNetwork();
      // The same logs re-linked by the ethers helpers give the heads the contract logged.
      const logs = await ledgerLogs(f);
      expect(relinked(logs, chainId, f.address, () => 2).map((l) => l.data)).to.deep.equal(logs.map((l) => l.data));
      const replay = await replayOf(logs, { chainId, ledger: f.address });
      expect([replay.chainVersion, replay.discrepancies, replay.verified]).to.deep.equal([2, [], 36]);
    });

    it("reports a BatchRecorded log whose envelope differs from the one linked as a chain break", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      // Two recipients: the regulator's wrapped key stays intact, so only the link can tell.
      const sealed = await honest(2, [...regulatorOnly, { publicKey: MERCHANT_PUB, role: "merchant" }]);
      await submit(f, sealed);
      const [batch] = (await f.ledger.queryFilter(f.ledger.filters.BatchRecorded(M1))).slice(-1);
      const tampered = editing((l) => {
        if (l.topics[0] !== LEDGER_TOPICS.BatchRecorded || l.transactionHash !== batch.transactionHash) return l;
        return editBatchData(l, ({ envelope }) => {
          const bytes = getBytes(envelope);
          bytes[bytes.length - 1] ^= 0x01; // the merchant's wrapped key, the envelope's last entry
          return { envelope: hexlify(bytes) };
        });
      });
      const honestReport = await read(f);
      expect(honestReport.discrepancies).to.deep.equal([]);
      const report = await read(f, {}, tampered);
      expect(kinds(report.discrepancies)).to.deep.equal([["chain-break", undefined]]);
      expect(report.discrepancies[0]).to.include({ merchantId: M1, txHash: batch.transactionHash });
      expect(report.discrepancies[0].details).to.include({ announced: batch.args.chainHead.toLowerCase(), chainVersion: 2 });
      // The records themselves still open and verify with the regulator's intact wrapped key.
      expect(report.verified).to.equal(36 + 2);
    });

    it("still verifies a version 1 chain (records linked, no batch links), found from its logs", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const { chainId } = await ethers.provider.getNetwork();
      const v1 = relinked(await ledgerLogs(f), chainId, f.address, () => 1);

      // Found from the logs, as the indexer and the supervisors' followers do.
      const found = await replayOf(v1, { chainId, ledger: f.address });
      expect([found.chainVersion, found.discrepancies, found.records, found.verified]).to.deep.equal([1, [], 36, 36]);
      const lastHead = decodeBatchRecorded(v1.filter((l) => l.topics[0] === LEDGER_TOPICS.BatchRecorded).at(-1)!).chainHead;
      expect(hexlify(found.head)).to.equal(hexlify(lastHead));
      // Told, as the regulator's reader does once it read the contract's genesis head.
      const told = await replayOf(v1, { chainId, ledger: f.address, version: 1 });
      expect([told.chainVersion, told.discrepancies, hexlify(told.head)]).to.deep.equal([1, [], hexlify(lastHead)]);
      // Its books are the same as the version 2 ledger's: only the links differ.
      const v2 = await replayOf(await ledgerLogs(f), { chainId, ledger: f.address });
      expect([...found.books.merchants.values()]).to.deep.equal([...v2.books.merchants.values()]);
    });

    it("reports every batch of a version 1 chain read as version 2, and the reverse", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const { chainId } = await ethers.provider.getNetwork();
      const logs = await ledgerLogs(f);
      const v1 = relinked(logs, chainId, f.address, () => 1);
      // Each break is reported once, then the replay goes on from the announced head.
      const asV2 = await replayOf(v1, { chainId, ledger: f.address, version: 2 });
      expect(asV2.discrepancies.map((d) => [d.kind, d.details?.chainVersion])).to.deep.equal(Array(6).fill(["chain-break", 2]));
      const asV1 = await replayOf(logs, { chainId, ledger: f.address, version: 1 });
      expect(asV1.discrepancies.map((d) => [d.kind, d.details?.chainVersion])).to.deep.equal(Array(6).fill(["chain-break", 1]));
    });

    it("reports a chain that changes rule midway at the first batch linked by the other rule", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const { chainId } = await ethers.provider.getNetwork();
      // Batches 1-3 linked by version 1, from batch 4 on by version 2 (from the version 1 head).
      const mixed = relinked(await ledgerLogs(f), chainId, f.address, (batch) => (batch < 3 ? 1 : 2));
      const replay = await replayOf(mixed, { chainId, ledger: f.address });
      expect(replay.chainVersion).to.equal(1);
      const batches = mixed.filter((l) => l.topics[0] === LEDGER_TOPICS.BatchRecorded).map(decodeBatchRecorded);
      expect(replay.discrepancies.map((d) => [d.kind, d.txHash])).to.deep.equal(batches.slice(3).map((b) => ["chain-break", b.txHash]));
    });

    it("finds no version in a chain that follows neither rule, and reports every batch", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const { chainId } = await ethers.provider.getNetwork();
      const garbled = (await ledgerLogs(f)).map((l) =>
        l.topics[0] === LEDGER_TOPICS.BatchRecorded ? editBatchData(l, ({ chainHead }) => ({ chainHead: id(chainHead) })) : l,
      );
      const replay = await replayOf(garbled, { chainId, ledger: f.address });
      expect(replay.chainVersion).to.equal(undefined);
      expect(replay.discrepancies.map((d) => [d.kind, d.details?.chainVersion])).to.deep.equal(Array(6).fill(["chain-break", "unknown"]));
    });

    it("refuses a ledger whose genesis head is of no version it knows with UNSUPPORTED_VERSION", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const { chainId } = await ethers.provider.getNetwork();
      // The genesis head is an immutable: swap it in the runtime code for a "version 3" one.
      const genesis = (await f.ledger.genesisHead()).slice(2);
      const v3 = id(`prepaid-ledger.chain.v3:${chainId}:${f.address}`).slice(2);
      const code = await ethers.provider.getCode(f.address);
      expect(code.split(genesis).length).to.be.greaterThan(1);
      await networkHelpers.setCode(f.address, code.split(genesis).join(v3));
      const e = await expectRejects(read(f), "UNSUPPORTED_VERSION");
      expect(e.details).to.deep.equal({ ledger: f.address, genesisHead: "0x" + v3, chainVersion: 2, supported: [2, 1] });
      expect(e.retryable).to.equal(false);
    });
  });

  describe("when the input is wrong", function () {
    it("throws WRONG_KEY for a key that opens none of the records", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const e = await expectRejects(read(f, { privateKey: MERCHANT_KEY }), "WRONG_KEY");
      expect(e.details).to.deep.equal({ records: 36, notForThisKey: 36 });
      expect(JSON.stringify(e.details)).not.to.include(MERCHANT_KEY.slice(2));
    });

    it("reports every wrong configuration field, and never echoes a key", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const e = await expectRejects(
        RegulatorReader.open({ ledger: "nope", privateKey: "0x1234secret", maxBlockRange: 0 } as never, ethers.provider),
        "INVALID_CONFIG",
      );
      expect((e.details.issues as { path: string }[]).map((i) => i.path).sort()).to.deep.equal(["ledger", "maxBlockRange", "privateKey"]);
      expect(e.message).not.to.include("1234secret");
      const range = await expectRejects(
        RegulatorReader.open({ ledger: f.address, fromBlock: 900, toBlock: 800 }, ethers.provider),
        "INVALID_CONFIG",
      );
      expect(range.details.issues).to.deep.equal([{ path: "fromBlock", message: "fromBlock is after toBlock" }]);
    });

    it("refuses an address with no contract", async function () {
      const [, , , , stranger] = await ethers.getSigners();
      await expectRejects(RegulatorReader.open({ ledger: stranger.address }, ethers.provider), "INVALID_CONFIG");
    });

    it("reports an unreachable node as a retryable RPC_ERROR", async function () {
      const port = await freePort(); // nothing listens there
      const provider = new JsonRpcProvider(`http://127.0.0.1:${port}`, Network.from(31337), { staticNetwork: true });
      try {
        const e = await expectRejects(
          RegulatorReader.open({ ledger: "0x5FbDB2315678afecb367f032d93F642f64180aa3" }, provider),
          "RPC_ERROR",
        );
        expect(e.retryable).to.equal(true);
      } finally {
        provider.destroy();
      }
    });

    it("gives up on a call the node never answers with a retryable TIMEOUT (rpcTimeoutMs)", async function () {
      const f = await networkHelpers.loadFixture(ledgerWithTraffic);
      const hanging: JsonRpcLike = {
        send: (method, params) => (method === "eth_getLogs" ? new Promise(() => undefined) : ethers.provider.send(method, params)),
      };
      const started = Date.now();
      const e = await expectRejects(read(f, { rpcTimeoutMs: 300 }, hanging), "TIMEOUT");
      expect(Date.now() - started).to.be.below(3_000);
      expect([e.retryable, e.shortMessage]).to.deep.equal([true, "eth_getLogs was not answered in time"]);
    });
  });
});
