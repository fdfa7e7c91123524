import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import { JsonRpcProvider, Network, id } from "ethers";
import { network } from "hardhat";

import { Indexer, type IndexerConfigInput } from "../../src/indexer/indexer.js";
import { IndexQueries } from "../../src/indexer/queries.js";
import { indexExists, openIndex } from "../../src/indexer/open.js";
import type { JsonRpcLike, RpcLog } from "../../src/regulator/logs.js";
import { Uploader } from "../../src/upload/uploader.js";
import { expectRejects } from "../helpers/errors.js";
import { MERCHANT_KEY, REGULATOR_KEY, REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";
import { freePort } from "../helpers/processes.js";
import { indexDb, sqliteOnly } from "../helpers/index-db.js";

const { ethers, networkHelpers } = await network.create();

/** A ledger with 20 records of one merchant in 4 batches. */
async function ledgerWithRecords() {
  const [admin, regulator, recorder] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const address = await ledger.getAddress();
  await ledger.connect(regulator).registerMerchant(7, recorder.address);
  const uploader = await Uploader.open(
    { ledger: address, merchantId: 7, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir(), "j.jsonl"), batchSize: 5 },
    recorder,
  );
  await uploader.upload(openings(7, 10, 80_000n));
  await uploader.upload(Array.from({ length: 10 }, (_, i) => detail(7, 2, card(i), 1_000n, 50 + i)));
  uploader.close();
  return { ledger, address };
}

const freshDb = () => indexDb(tempDir("index-errors"), "index.sqlite");

async function sync(config: Partial<IndexerConfigInput> & { db: string; ledger: string }, rpc: JsonRpcLike = ethers.provider) {
  const indexer = await Indexer.open({ privateKey: REGULATOR_KEY, ...config }, rpc);
  try {
    return { result: await indexer.sync(), digest: indexer.queries().digest() };
  } finally {
    indexer.close();
  }
}

const digestOf = (db: string) => {
  const handle = openIndex(db, { readOnly: true });
  try {
    return new IndexQueries(handle).digest();
  } finally {
    handle.close();
  }
};

describe("indexer: bad input", function () {
  this.timeout(60_000);

  it("refuses a key that opens none of the records, and writes nothing", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithRecords);
    const db = freshDb();
    const empty = (() => {
      const handle = openIndex(db);
      handle.close();
      return digestOf(db);
    })();
    const e = await expectRejects(sync({ db, ledger: f.address, privateKey: MERCHANT_KEY }), "WRONG_KEY");
    expect(e.message).not.to.include(MERCHANT_KEY.slice(2));
    expect(digestOf(db)).to.equal(empty);
    // The right key then builds the index.
    expect((await sync({ db, ledger: f.address })).result.newRecords).to.equal(20);
  });

  it("refuses another key on an index built with the regulator's, and leaves it as it was", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithRecords);
    const db = freshDb();
    const { digest } = await sync({ db, ledger: f.address });
    await expectRejects(sync({ db, ledger: f.address, privateKey: MERCHANT_KEY }), "WRONG_KEY");
    await expectRejects(sync({ db, ledger: f.address, privateKey: undefined }), "WRONG_KEY");
    expect(digestOf(db)).to.equal(digest);
  });

  it("reports an unreachable node as RPC_ERROR and creates no database", async function () {
    const port = await freePort();
    const provider = new JsonRpcProvider(`http://127.0.0.1:${port}`, Network.from(31337), { staticNetwork: true });
    const db = freshDb();
    const e = await expectRejects(
      Indexer.open({ ledger: "0x" + "11".repeat(20), db, rpcTimeoutMs: 2_000 }, provider),
      "RPC_ERROR",
    );
    expect(e.retryable).to.equal(true);
    expect(indexExists(db)).to.equal(false);
    provider.destroy();
  });

  it("refuses an index of another ledger or another chain", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithRecords);
    const db = freshDb();
    const { digest } = await sync({ db, ledger: f.address });
    const [admin, regulator] = await ethers.getSigners();
    const other = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
    const e = await expectRejects(sync({ db, ledger: await other.getAddress() }), "INDEX_MISMATCH");
    expect(e.details.field).to.equal("ledger");
    const otherChain: JsonRpcLike = {
      send: async (method, params) => (method === "eth_chainId" ? "0xaa36a7" : ethers.provider.send(method, params)),
    };
    const c = await expectRejects(sync({ db, ledger: f.address }, otherChain), "INDEX_MISMATCH");
    expect(c.details.field).to.equal("chain_id");
    expect(digestOf(db)).to.equal(digest);
  });

  it("answers a bad query with a typed error and leaves the index as it was", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithRecords);
    const db = freshDb();
    const { digest } = await sync({ db, ledger: f.address });
    const handle = openIndex(db, { readOnly: true });
    try {
      const q = new IndexQueries(handle);
      const code = (fn: () => unknown) => {
        try {
          fn();
        } catch (e) {
          return (e as { code?: string }).code;
        }
        return "no error";
      };
      expect([
        code(() => q.merchant(999)),
        code(() => q.account(7, card(999))),
        code(() => q.record(21)),
        code(() => q.account(7, "0x1234")),
        code(() => q.records({ limit: 0 })),
        code(() => q.accounts(7, { offset: -1 })),
      ]).to.deep.equal(["NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "INVALID_ARGUMENT", "INVALID_ARGUMENT", "INVALID_ARGUMENT"]);
    } finally {
      handle.close();
    }
    expect(digestOf(db)).to.equal(digest);
  });

  it("refuses a file that is not an index", async function () {
    sqliteOnly(this); // a file; PostgreSQL: test/indexer/postgres.test.ts
    const f = await networkHelpers.loadFixture(ledgerWithRecords);
    const db = freshDb();
    writeFileSync(db, "merchant,balance\n1,100\n");
    await expectRejects(sync({ db, ledger: f.address }), "INDEX_CORRUPT");
    expect(() => openIndex(freshDb(), { mustExist: true })).to.throw(/run `prepaid sync` first/);
  });

  it("refuses an address without a contract, or a quorum of another ledger", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithRecords);
    await expectRejects(sync({ db: freshDb(), ledger: "0x" + "22".repeat(20) }), "INVALID_CONFIG");
    const [admin, regulator, , , , , , , , , s1] = await ethers.getSigners();
    const other = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
    const quorum = await ethers.deployContract("SupervisorQuorum", [admin.address, await other.getAddress(), [s1.address], 1, 0, 3_600]);
    const e = await expectRejects(sync({ db: freshDb(), ledger: f.address, quorum: await quorum.getAddress() }), "INVALID_CONFIG");
    expect(e.shortMessage).to.include("another ledger");
    await expectRejects(sync({ db: freshDb(), ledger: f.address, confirmations: -1 }), "INVALID_CONFIG");
  });

  it("stores a corrupted record as failed, with its discrepancy and an alert; every other figure stays right", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithRecords);
    // The node hands out record #13 with one ciphertext byte flipped.
    const corrupting: JsonRpcLike = {
      send: async (method, params) => {
        const out = await ethers.provider.send(method, params);
        if (method !== "eth_getLogs") return out;
        return (out as RpcLog[]).map((log) => {
          const index = log.data.length > 32 ? Number(BigInt("0x" + log.data.slice(2, 18))) : 0;
          if (log.topics.length !== 4 || index !== 13) return log;
          const at = 2 + 2 * 40;
          const flipped = (Number.parseInt(log.data.slice(at, at + 2), 16) ^ 1).toString(16).padStart(2, "0");
          return { ...log, data: log.data.slice(0, at) + flipped + log.data.slice(at + 2) };
        });
      },
    };
    const db = freshDb();
    const { result } = await sync({ db, ledger: f.address, maxBlockRange: 1 }, corrupting);
    const q = new IndexQueries(openIndex(db, { readOnly: true }));
    const bad = q.record(13);
    expect([bad.verification, bad.problems, bad.details]).to.deep.equal(["failed", ["corrupt-ciphertext"], null]);
    // The altered bytes also break the hash chain at the batch's announced head.
    expect(q.discrepancies().map((d) => [d.kind, d.recordIndex])).to.deep.equal([
      ["corrupt-ciphertext", 13],
      ["chain-break", null],
    ]);
    expect(q.records({ verification: "failed" }).map((r) => r.recordIndex)).to.deep.equal([13]);
    expect(q.alerts({ rule: "verification-failed" }).map((a) => a.recordIndex)).to.include(13);
    // The books come from the on-chain amounts, which the corruption did not touch.
    const c = await f.ledger.merchantBooks(7);
    expect([q.merchant(7).consumed, q.merchant(7).failedRecords]).to.deep.equal([Number(c.consumed), 1]);
    expect([q.account(7, bad.account).failedRecords, q.account(7, card(0)).failedRecords]).to.deep.equal([1, 0]);
    expect(result.newRecords).to.equal(20);
  });

  it("marks the index on a reorg deeper than its confirmations, keeps it readable, and repairs it", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithRecords);
    const db = freshDb();
    const snapshot = await ethers.provider.send("evm_snapshot", []);
    const [, regulator] = await ethers.getSigners();
    await (await f.ledger.connect(regulator).suspendMerchant(7, id("a"))).wait();
    await sync({ db, ledger: f.address });
    await ethers.provider.send("evm_revert", [snapshot]);
    await networkHelpers.mine(3);
    const e = await expectRejects(sync({ db, ledger: f.address }), "REORG_TOO_DEEP");
    expect([e.details.confirmations, e.retryable]).to.deep.equal([0, false]);
    expect(e.shortMessage).to.include("prepaid sync --repair");
    // Readable, and marked: the dead branch's suspension is still there, and the index says so.
    const handle = openIndex(db, { readOnly: true });
    const q = new IndexQueries(handle);
    expect(q.merchant(7).status).to.equal("suspended");
    expect(q.info().reorg).to.include({ confirmations: 0 });
    handle.close();
    // A second sync refuses again (the mark is stored), naming the repair.
    expect((await expectRejects(sync({ db, ledger: f.address }), "REORG_TOO_DEEP")).shortMessage).to.include("--repair");
    const indexer = await Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db }, ethers.provider);
    try {
      expect(await indexer.repair()).to.deep.equal({ rolledBackTo: null, rebuilt: true });
      const r = await indexer.sync();
      expect([r.records, r.matchesContract]).to.deep.equal([20, true]);
      expect(indexer.queries().merchant(7).status).to.equal("active");
      expect(indexer.queries().info().reorg).to.equal(null);
    } finally {
      indexer.close();
    }
  });
});
