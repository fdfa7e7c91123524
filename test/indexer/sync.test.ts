import { join } from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

import { Indexer } from "../../src/indexer/indexer.js";
import type { JsonRpcLike } from "../../src/regulator/logs.js";
import { Uploader } from "../../src/upload/uploader.js";
import { REGULATOR_KEY, REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";
import { indexDb } from "../helpers/index-db.js";

const { ethers, networkHelpers } = await network.create();

/** One merchant uploading 5 batches of 4 records, one batch a block. */
async function fiveBatches() {
  const [admin, regulator, recorder] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const address = await ledger.getAddress();
  await ledger.connect(regulator).registerMerchant(3, recorder.address);
  const uploader = await Uploader.open(
    { ledger: address, merchantId: 3, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir(), "j.jsonl"), batchSize: 4 },
    recorder,
  );
  await uploader.upload(openings(3, 8, 50_000n));
  await uploader.upload(Array.from({ length: 12 }, (_, i) => detail(3, 2, card(i % 8), 1_000n, 100 + i)));
  uploader.close();
  return { ledger, address };
}

describe("indexer: following a chain", function () {
  this.timeout(60_000);

  it("reads to the head, keeps the rows of blocks less than `confirmations` deep as provisional, and settles them later", async function () {
    const f = await networkHelpers.loadFixture(fiveBatches);
    const db = indexDb(tempDir("index-sync"), "i.sqlite");
    const latest = await ethers.provider.getBlockNumber();
    const open = () => Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db, confirmations: 2 }, ethers.provider);
    const first = await open();
    const r1 = await first.sync();
    expect([r1.settledBlock, r1.confirmedBlock, r1.records]).to.deep.equal([latest, latest - 2, 20]);
    // The two unsettled blocks and the anchor keep their hashes; their pages keep an undo log.
    const kept = (first.db.prepare("SELECT block_number AS n FROM recent_blocks ORDER BY 1").all() as { n: number }[]).map((r) => Number(r.n));
    expect(kept).to.deep.equal([latest - 2, latest - 1, latest]);
    expect(first.queries().info().confirmedBlock).to.equal(latest - 2);
    first.close();
    await networkHelpers.mine(2);
    const second = await open();
    const r2 = await second.sync();
    expect([r2.settledBlock, r2.confirmedBlock, r2.records, r2.newRecords, r2.matchesContract]).to.deep.equal([latest + 2, latest, 20, 0, true]);
    const pruned = second.db.prepare("SELECT count(*) AS n FROM undo_log WHERE page_to <= ?").get(latest) as { n: number };
    expect(Number(pruned.n)).to.equal(0);
    const m = second.queries().merchant(3);
    const c = await f.ledger.merchantBooks(3);
    expect([m.recordCount, m.consumed, m.batches].map(BigInt)).to.deep.equal([c.recordCount, c.consumed, 5n]);
    second.close();
  });

  it("pages through a node that refuses wide eth_getLogs ranges, committing page by page", async function () {
    const f = await networkHelpers.loadFixture(fiveBatches);
    const spans: number[] = [];
    const picky: JsonRpcLike = {
      send: async (method, params) => {
        if (method === "eth_getLogs") {
          const q = params[0] as { fromBlock: string; toBlock: string };
          const span = Number(BigInt(q.toBlock) - BigInt(q.fromBlock)) + 1;
          if (span > 2) throw Object.assign(new Error("block range is too wide"), { code: -32005 });
          spans.push(span);
        }
        return ethers.provider.send(method, params);
      },
    };
    const indexer = await Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db: indexDb(tempDir("index-sync"), "i.sqlite") }, picky);
    const settled: number[] = [];
    const result = await indexer.sync({ onProgress: (p) => settled.push(p.settledBlock) });
    expect(result.records).to.equal(20);
    expect(Math.max(...spans)).to.equal(2);
    expect(settled.length).to.be.greaterThan(3);
    expect(settled).to.deep.equal([...settled].sort((a, b) => a - b));
    expect(indexer.queries().totals().verified).to.equal(20);
    indexer.close();
  });

  it("stops after the page being written when asked, and resumes from there", async function () {
    const f = await networkHelpers.loadFixture(fiveBatches);
    const db = indexDb(tempDir("index-sync"), "i.sqlite");
    const stop = new AbortController();
    const a = await Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db, maxBlockRange: 1 }, ethers.provider);
    const partial = await a.sync({ onProgress: (p) => p.records >= 4 && stop.abort(), signal: stop.signal });
    expect(partial.aborted).to.equal(true);
    expect(partial.records).to.be.within(4, 19);
    a.close();
    const b = await Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db, maxBlockRange: 1 }, ethers.provider);
    const rest = await b.sync();
    expect([rest.records, rest.newRecords + partial.newRecords, rest.matchesContract]).to.deep.equal([20, 20, true]);
    b.close();
  });
});
