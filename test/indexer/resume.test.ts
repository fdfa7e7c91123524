import { rmSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

import { runDay } from "../../scripts/lib/day.js";
import { IndexQueries } from "../../src/indexer/queries.js";
import { openIndex } from "../../src/indexer/open.js";
import { tempDir } from "../helpers/ledger.js";
import { startHardhatNode, startTs, type Running } from "../helpers/processes.js";
import { indexDb } from "../helpers/index-db.js";

const WORKER = "test/fixtures/indexer-worker.ts";

/** Resolves when `p` has committed block `block`, or rejects when it exits first. */
async function settled(p: Running, block: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const blocks = [...p.output().matchAll(/^page (\d+) /gm)].map((m) => Number(m[1]));
    if (blocks.some((b) => b >= block)) return;
    if (p.process.exitCode !== null) throw new Error(`the worker exited early: ${p.output()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`block ${block} not committed within 60 s: ${p.output()}`);
}

async function exited(p: Running): Promise<number> {
  const deadline = Date.now() + 120_000;
  while (p.process.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (p.process.exitCode === null) throw new Error(`the worker did not finish: ${p.output()}`);
  return p.process.exitCode;
}

describe("indexer: killed mid-sync and restarted", function () {
  this.timeout(300_000);
  let node: Awaited<ReturnType<typeof startHardhatNode>>;
  let args: (db: string) => string[];

  before(async function () {
    node = await startHardhatNode();
    const connection = await network.create({ network: "localhost", override: { url: node.url } });
    const day = await runDay(connection);
    args = (db) => [node.url, day.ledgerAddress, day.quorumAddress, db, "1"];
  });

  after(async function () {
    await node?.stop();
  });

  it("ends with a database identical to a clean sync (row counts and a hash of every table)", async function () {
    const dir = tempDir("index-resume");
    const cleanDb = indexDb(dir, "clean.sqlite");
    const clean = startTs(WORKER, args(cleanDb));
    expect(await exited(clean), clean.output()).to.equal(0);
    const cleanDigest = /done ([0-9a-f]{64})/.exec(clean.output())![1];
    const totalPages = (clean.output().match(/^page /gm) ?? []).length;
    expect(totalPages).to.be.greaterThan(20);

    const db = indexDb(dir, "killed.sqlite");
    // SIGKILL three times, early, midway and late, each while the worker holds after a commit or
    // is already writing the next page; then let a last run finish.
    const lastBlock = Number([...clean.output().matchAll(/^page (\d+) /gm)].at(-1)![1]);
    for (const at of [3, Math.floor(lastBlock / 2), lastBlock - 4]) {
      const run = startTs(WORKER, args(db), { PAGE_PAUSE_MS: "20" });
      await settled(run, at);
      run.process.kill("SIGKILL");
      await run.stop();
      expect(run.output()).not.to.include("done");
    }
    const last = startTs(WORKER, args(db));
    expect(await exited(last), last.output()).to.equal(0);
    // The resumed run read only what the killed ones had not committed.
    expect((last.output().match(/^page /gm) ?? []).length).to.be.lessThan(totalPages);

    const a = new IndexQueries(openIndex(cleanDb, { readOnly: true }));
    const b = new IndexQueries(openIndex(db, { readOnly: true }));
    expect(b.counts()).to.deep.equal(a.counts());
    expect(b.digest()).to.equal(a.digest());
    expect(/done ([0-9a-f]{64})/.exec(last.output())![1]).to.equal(cleanDigest);
    rmSync(dir, { recursive: true, force: true });
  });
});
