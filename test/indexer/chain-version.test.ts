/**
 * The index over ledgers of either hash-chain version (docs/FORMAT.md 7). Only chain version 2
 * can be deployed, so a version 1 ledger is a node that serves a version 2 ledger's logs with
 * every BatchRecorded head re-linked by the version 1 rule (test/helpers/chain-versions.ts), and
 * answers `genesisHead()` and `chainHead()` with the version 1 heads. Records, envelopes and books are the contract's.
 */
import { join } from "node:path";

import { expect } from "chai";
import { Interface, hexlify, id } from "ethers";
import { network } from "hardhat";

import { Indexer } from "../../src/indexer/indexer.js";
import { getMeta } from "../../src/indexer/schema.js";
import { PREPAID_LEDGER_ABI } from "../../src/ledger/abi.js";
import { LEDGER_TOPICS, decodeBatchRecorded } from "../../src/regulator/events.js";
import type { RpcLog } from "../../src/regulator/logs.js";
import { Uploader } from "../../src/upload/uploader.js";
import { relinked } from "../helpers/chain-versions.js";
import { expectRejects } from "../helpers/errors.js";
import { REGULATOR_KEY, REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";
import { expectedGenesis } from "../helpers/records.js";
import { indexDb } from "../helpers/index-db.js";
import { indexExists } from "../../src/indexer/open.js";

const { ethers, networkHelpers } = await network.create();
const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);
const M = 3;

/** One merchant, 3 batches of 4 records; `more()` uploads 2 more batches. */
async function threeBatches() {
  const [admin, regulator, recorder] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const address = await ledger.getAddress();
  await ledger.connect(regulator).registerMerchant(M, recorder.address);
  const uploader = await Uploader.open(
    { ledger: address, merchantId: M, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir(), "j.jsonl"), batchSize: 4 },
    recorder,
  );
  await uploader.upload(openings(M, 8, 50_000n));
  await uploader.upload(Array.from({ length: 4 }, (_, i) => detail(M, 2, card(i), 1_000n, 100 + i)));
  const more = () => uploader.upload(Array.from({ length: 8 }, (_, i) => detail(M, 2, card(i), 500n, 200 + i)));
  const { chainId } = await ethers.provider.getNetwork();
  return { ledger, address, chainId, more };
}
type Fixture = Awaited<ReturnType<typeof threeBatches>>;

/**
 * A node serving the ledger as one of chain version `rule(batch)` logged it: each eth_getLogs
 * answer has its BatchRecorded heads re-linked over the ledger's whole history (so paging does
 * not matter), and `chainHead()` answers with the re-linked head.
 */
function olderLedgerNode(f: Fixture, rule: (batch: number) => 1 | 2) {
  const history = async () => {
    const all = (await ethers.provider.send("eth_getLogs", [{ address: f.address, fromBlock: "0x0", toBlock: "latest" }])) as RpcLog[];
    return relinked(all, f.chainId, f.address, rule);
  };
  const key = (l: RpcLog) => `${l.transactionHash}:${l.logIndex}`;
  return {
    send: async (method: string, params: unknown[]): Promise<unknown> => {
      if (method === "eth_getLogs") {
        const byKey = new Map((await history()).map((l) => [key(l), l]));
        const logs = (await ethers.provider.send(method, params)) as RpcLog[];
        return logs.map((l) => byKey.get(key(l)) ?? l);
      }
      const call = params[0] as { to?: string; data?: string } | undefined;
      if (method === "eth_call" && call?.to?.toLowerCase() === f.address.toLowerCase() && call.data === ledgerInterface.encodeFunctionData("chainHead")) {
        const real = ledgerInterface.decodeFunctionResult("chainHead", (await ethers.provider.send(method, params)) as string);
        const batches = (await history()).filter((l) => l.topics[0] === LEDGER_TOPICS.BatchRecorded).map(decodeBatchRecorded);
        const head = batches.length === 0 ? expectedGenesis(f.chainId, f.address, rule(0)) : hexlify(batches.at(-1)!.chainHead);
        return ledgerInterface.encodeFunctionResult("chainHead", [real[0], head]);
      }
      if (method === "eth_call" && call?.to?.toLowerCase() === f.address.toLowerCase() && call.data === ledgerInterface.encodeFunctionData("genesisHead")) {
        return ledgerInterface.encodeFunctionResult("genesisHead", [expectedGenesis(f.chainId, f.address, rule(0))]);
      }
      return ethers.provider.send(method, params);
    },
  };
}

/** The index's discrepancies: kind and transaction. */
const discrepancies = (indexer: Indexer) =>
  indexer.db.prepare(`SELECT kind, tx_hash AS "txHash" FROM discrepancies ORDER BY id`).all() as { kind: string; txHash: string }[];

describe("indexer: hash-chain versions", function () {
  this.timeout(60_000);

  it("indexes a version 2 ledger and records its version and genesis", async function () {
    const f = await networkHelpers.loadFixture(threeBatches);
    const indexer = await Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db: indexDb(tempDir("index-v2"), "i.sqlite") }, ethers.provider);
    const result = await indexer.sync();
    expect([result.records, result.discrepancies, result.matchesContract]).to.deep.equal([12, 0, true]);
    expect(getMeta(indexer.db, "chain_version")).to.equal("2");
    expect(getMeta(indexer.db, "genesis_head")).to.equal((await f.ledger.genesisHead()).toLowerCase());
    expect(indexer.queries().info().chainHead).to.equal((await f.ledger.chainHead())[1].toLowerCase());
    indexer.close();
  });

  it("indexes a version 1 ledger, and resumes it as version 1", async function () {
    const f = await networkHelpers.loadFixture(threeBatches);
    const node = olderLedgerNode(f, () => 1);
    const db = indexDb(tempDir("index-v1"), "i.sqlite");
    const first = await Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db }, node);
    const r1 = await first.sync();
    expect([r1.records, r1.discrepancies, r1.matchesContract]).to.deep.equal([12, 0, true]);
    expect(getMeta(first.db, "chain_version")).to.equal("1");
    expect(getMeta(first.db, "genesis_head")).to.equal(expectedGenesis(f.chainId, f.address, 1));
    expect(first.queries().totals().verified).to.equal(12);
    const v1Head = first.queries().info().chainHead;
    expect(v1Head).to.not.equal((await f.ledger.chainHead())[1].toLowerCase()); // not the deployed (version 2) head
    first.close();

    await f.more();
    const second = await Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db }, node);
    const r2 = await second.sync();
    expect([r2.records, r2.newRecords, r2.discrepancies, r2.matchesContract]).to.deep.equal([20, 8, 0, true]);
    expect(getMeta(second.db, "chain_version")).to.equal("1");
    expect(second.queries().totals().verified).to.equal(20);
    second.close();
  });

  it("keeps the version it found across a restart: batches linked by the other rule are chain breaks", async function () {
    const f = await networkHelpers.loadFixture(threeBatches);
    // Batches 1-3 by version 1; the two uploaded after the restart by version 2.
    const node = olderLedgerNode(f, (batch) => (batch < 3 ? 1 : 2));
    const db = indexDb(tempDir("index-mixed"), "i.sqlite");
    const first = await Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db }, node);
    expect((await first.sync()).discrepancies).to.equal(0);
    first.close();

    await f.more();
    const second = await Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db }, node);
    const r2 = await second.sync();
    const later = (await f.ledger.queryFilter(f.ledger.filters.BatchRecorded(M))).slice(3).map((e) => e.transactionHash);
    expect(discrepancies(second)).to.deep.equal(later.map((txHash) => ({ kind: "chain-break", txHash })));
    expect([r2.records, r2.discrepancies, getMeta(second.db, "chain_version")]).to.deep.equal([20, 2, "1"]);
    second.close();
  });

  it("refuses a ledger whose genesis is of no known version, before it makes a file", async function () {
    const f = await networkHelpers.loadFixture(threeBatches);
    const unknown = id("prepaid-ledger.chain.v3?");
    const node = {
      send: async (method: string, params: unknown[]): Promise<unknown> => {
        const call = params[0] as { to?: string; data?: string } | undefined;
        if (method === "eth_call" && call?.data === ledgerInterface.encodeFunctionData("genesisHead")) {
          return ledgerInterface.encodeFunctionResult("genesisHead", [unknown]);
        }
        return ethers.provider.send(method, params);
      },
    };
    const db = indexDb(tempDir("index-unknown"), "i.sqlite");
    const error = await expectRejects(Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db }, node), "UNSUPPORTED_VERSION");
    expect(error.details).to.deep.include({ genesisHead: unknown, supported: [2, 1] });
    expect(indexExists(db)).to.equal(false);
  });
});
