/**
 * The index follows the chain it is on: reorgs made on anvil (`anvil_reorg`), within a round and
 * between rounds, shallower and deeper than the confirmations; and node faults (a fault proxy)
 * that must surface as the right errors.
 */
import { join } from "node:path";

import { expect } from "chai";

import { Indexer, type IndexerConfigInput } from "../../src/indexer/indexer.js";
import { IndexQueries } from "../../src/indexer/queries.js";
import type { JsonRpcLike } from "../../src/regulator/logs.js";
import { httpJsonRpc } from "../../src/rpc.js";
import { Uploader } from "../../src/upload/uploader.js";
import { expectRejects } from "../helpers/errors.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";
import { REGULATOR_KEY, REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";
import { blockNumber, mine, reorg, rpc, useReorgAnvil } from "../helpers/reorg.js";
import { indexDb } from "../helpers/index-db.js";

describe("indexer: reorgs and node faults (anvil)", function () {
  this.timeout(120_000);
  const chain = useReorgAnvil(["--accounts", "4"]);

  /** A new ledger with merchant 3 and 8 settled records (2 batches), then `mined` empty blocks. */
  async function ledger(mined = 4) {
    const { ethers } = chain.connection;
    const [admin, regulator, recorder] = await ethers.getSigners();
    const contract = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
    await contract.waitForDeployment();
    const address = await contract.getAddress();
    await (await contract.connect(regulator).registerMerchant(3, recorder.address)).wait();
    const uploader = await Uploader.open(
      { ledger: address, merchantId: 3, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir(), "j.jsonl"), batchSize: 4 },
      recorder,
    );
    await uploader.upload(openings(3, 8, 50_000n));
    await mine(chain.url, mined);
    /** Uploads `n` consumptions (one batch of 4 a block). */
    const consume = async (n: number, from = 0) =>
      uploader.upload(Array.from({ length: n }, (_, i) => detail(3, 2, card((from + i) % 8), 1_000n, 100 + from + i)));
    /** A transaction for the new branch: the regulator registers merchant `id`. */
    const register = async (id: number) => ({
      tx: { from: regulator.address, to: address, data: contract.interface.encodeFunctionData("registerMerchant", [id, admin.address]), gas: "0x30000" },
      block: 0,
    });
    return { contract, address, uploader, consume, register };
  }

  const open = (config: Partial<IndexerConfigInput> & { ledger: string; db: string }, rpcLike: JsonRpcLike = httpJsonRpc(chain.url)) =>
    Indexer.open({ privateKey: REGULATOR_KEY, ...config }, rpcLike);

  /** Every row that comes from a transaction is in a block of the node's current chain, and the books equal the contract's. */
  async function expectFollowsChain(q: IndexQueries, contract: Awaited<ReturnType<typeof ledger>>["contract"], merchants: number[]) {
    const db = (q as unknown as { db: import("../../src/indexer/schema.js").Database }).db;
    const rows = db
      .prepare(
        `SELECT tx_hash, block_number FROM records UNION SELECT tx_hash, block_number FROM batches
         UNION SELECT tx_hash, block_number FROM merchant_events`,
      )
      .all() as { tx_hash: string; block_number: number }[];
    for (const r of rows) {
      const receipt = await rpc<{ blockNumber: string } | null>(chain.url, "eth_getTransactionReceipt", [r.tx_hash]);
      expect(receipt, `row of ${r.tx_hash} at block ${r.block_number} is not on the chain`).not.to.equal(null);
      expect(Number(receipt!.blockNumber)).to.equal(Number(r.block_number));
    }
    const [count, head] = await contract.chainHead();
    expect([q.info().recordCount, q.info().chainHead]).to.deep.equal([Number(count), head.toLowerCase()]);
    for (const id of merchants) {
      const c = await contract.merchantBooks(id);
      const m = q.merchant(id);
      expect([m.recordCount, m.accountCount, m.consumed, m.nextSequence, m.status].map(String)).to.deep.equal(
        [c.recordCount, c.accountCount, c.consumed, c.nextSequence, c.status === 1n ? "active" : c.status === 2n ? "suspended" : "unknown"].map(String),
      );
    }
    const accounts = db.prepare("SELECT merchant_id, account, consumed, record_count FROM accounts").all() as Record<string, number | string>[];
    for (const a of accounts) {
      const c = await contract.accountBooks(Number(a.merchant_id), String(a.account));
      expect([Number(a.consumed), Number(a.record_count)]).to.deep.equal([Number(c.consumed), Number(c.recordCount)]);
    }
  }

  it("between rounds: rolls the unsettled rows of a dead branch back to the fork point and reads the new branch", async function () {
    const f = await ledger();
    await f.consume(8); // two blocks of 4 consumptions
    const db = indexDb(tempDir("index-reorg"), "i.sqlite");
    const latest = await blockNumber(chain.url);
    const a = await open({ ledger: f.address, db, confirmations: 3 });
    const r1 = await a.sync();
    expect([r1.settledBlock, r1.confirmedBlock, r1.records]).to.deep.equal([latest, latest - 3, 16]); // unsettled rows held
    a.close();
    // The two blocks of consumptions are replaced by one registering merchant 9, and an empty one.
    await reorg(chain.url, 2, [await f.register(9)]);
    const b = await open({ ledger: f.address, db, confirmations: 3 });
    try {
      const r2 = await b.sync();
      expect(r2.reorgs).to.have.length(1);
      expect(r2.reorgs[0].fork).to.equal(latest - 2);
      expect(r2.reorgs[0].rolledBackTo).to.be.at.most(latest - 2);
      expect([r2.records, r2.matchesContract]).to.deep.equal([8, true]);
      const q = b.queries();
      expect(q.merchant(9).status).to.equal("active");
      expect(q.count("batches")).to.equal(2);
      await expectFollowsChain(q, f.contract, [3, 9]);
      // The replay's state (books, hash chain) follows the rows: merchant 9's first records, on
      // the new branch, chain onto the head as it was rolled back.
      const [admin] = await chain.connection.ethers.getSigners();
      const nine = await Uploader.open(
        { ledger: f.address, merchantId: 9, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir(), "j9.jsonl"), batchSize: 4 },
        admin,
      );
      await nine.upload(openings(9, 4, 20_000n, 100));
      nine.close();
      const r3 = await b.sync();
      expect([r3.records, r3.matchesContract, r3.discrepancies]).to.deep.equal([12, true, 0]);
      await expectFollowsChain(b.queries(), f.contract, [3, 9]);
    } finally {
      b.close();
    }
  });

  it("within a round: logs read from a branch that dies before the round ends are never written", async function () {
    const f = await ledger();
    const db = indexDb(tempDir("index-reorg"), "i.sqlite");
    const first = await open({ ledger: f.address, db, confirmations: 0 });
    expect((await first.sync()).records).to.equal(8);
    first.close();
    await f.consume(8);
    // The node answers eth_getLogs from the old branch, then the chain reorganizes before the
    // indexer asks for the blocks' headers.
    const node = httpJsonRpc(chain.url);
    let reorged = false;
    const racing: JsonRpcLike = {
      send: async (method, params) => {
        const out = await node.send(method, params);
        if (method === "eth_getLogs" && !reorged) {
          reorged = true;
          await reorg(chain.url, 1, [await f.register(11)]);
        }
        return out;
      },
    };
    const indexer = await open({ ledger: f.address, db, confirmations: 0 }, racing);
    try {
      const r = await indexer.sync();
      expect(reorged).to.equal(true);
      expect([r.records, r.matchesContract]).to.deep.equal([12, true]);
      expect(indexer.queries().merchant(11).status).to.equal("active");
      await expectFollowsChain(indexer.queries(), f.contract, [3, 11]);
    } finally {
      indexer.close();
    }
  });

  it("deeper than the confirmations: marks the index, keeps it readable, and repair() makes it equal the contract", async function () {
    const f = await ledger();
    await f.consume(8);
    const db = indexDb(tempDir("index-reorg"), "i.sqlite");
    const a = await open({ ledger: f.address, db, confirmations: 0 });
    expect((await a.sync()).records).to.equal(16);
    await reorg(chain.url, 2, [await f.register(12)]);
    const e = await expectRejects(a.sync(), "REORG_TOO_DEEP");
    expect(e.shortMessage).to.include("--repair");
    const info = a.queries().info();
    expect(info.reorg).not.to.equal(null);
    expect(a.queries().totals().records).to.equal(16); // readable, as it was
    await expectRejects(a.sync(), "REORG_TOO_DEEP"); // stays marked
    expect((await a.repair()).rebuilt).to.equal(true);
    const r = await a.sync();
    expect([r.records, r.matchesContract]).to.deep.equal([8, true]);
    expect(a.queries().info().reorg).to.equal(null);
    await expectFollowsChain(a.queries(), f.contract, [3, 12]);
    a.close();
  });

  it("a truncated answer, a 502, a reset and an unknown block are retried: the sync completes and equals the contract", async function () {
    const f = await ledger(0);
    const proxy = await startFaultProxy({ target: chain.url });
    try {
      proxy.failNext("truncate", { method: "eth_getBlockByNumber" });
      proxy.failNext("unknownBlock", { method: "eth_getBlockByNumber" });
      proxy.failNext("http502", { method: "eth_blockNumber" });
      proxy.failNext("drop", { method: "eth_call" });
      proxy.failNext("truncate", { method: "eth_getLogs" });
      const indexer = await open({ ledger: f.address, db: indexDb(tempDir("index-reorg"), "i.sqlite") }, httpJsonRpc(proxy.url));
      const r = await indexer.sync();
      expect([r.records, r.matchesContract]).to.deep.equal([8, true]);
      expect(proxy.pendingForced()).to.equal(0);
      expect(Object.values(proxy.counts).reduce((a, b) => a + b, 0)).to.equal(5);
      await expectFollowsChain(indexer.queries(), f.contract, [3]);
      indexer.close();
    } finally {
      await proxy.stop();
    }
  });

  it("a never-answered eth_getLogs fails fast with a retryable TIMEOUT", async function () {
    const f = await ledger(0);
    const proxy = await startFaultProxy({ target: chain.url, hangMs: 20_000 });
    try {
      proxy.failNext("hang", { method: "eth_getLogs", count: 10 });
      const indexer = await open({ ledger: f.address, db: indexDb(tempDir("index-reorg"), "i.sqlite"), rpcTimeoutMs: 400 }, httpJsonRpc(proxy.url));
      const started = Date.now();
      const e = await expectRejects(indexer.sync(), "TIMEOUT");
      expect(Date.now() - started).to.be.below(5_000);
      expect(e.retryable).to.equal(true);
      expect(e.shortMessage).to.include("eth_getLogs");
      indexer.close();
    } finally {
      await proxy.stop();
    }
  });

  it("a node answering 502 to every eth_call is a retryable RPC_ERROR, never 'no state at that block'", async function () {
    const f = await ledger(0);
    const proxy = await startFaultProxy({ target: chain.url });
    try {
      const indexer = await open({ ledger: f.address, db: indexDb(tempDir("index-reorg"), "i.sqlite") }, httpJsonRpc(proxy.url));
      proxy.failNext("http502", { method: "eth_call", count: 50 });
      const e = await expectRejects(indexer.sync(), "RPC_ERROR");
      expect(e.retryable).to.equal(true);
      expect(proxy.counts.http502).to.be.greaterThan(0);
      // Once the node answers again, the next sync compares and finds the books equal.
      proxy.setRates({});
      while (proxy.pendingForced() > 0) await rpc(proxy.url, "eth_call", [{ to: f.address, data: "0x" }, "latest"]).catch(() => undefined);
      const r = await indexer.sync();
      expect([r.records, r.matchesContract]).to.deep.equal([8, true]);
      indexer.close();
    } finally {
      await proxy.stop();
    }
  });
});
