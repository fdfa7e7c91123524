/**
 * Each merchant's custody, from the custody events: an index of a ledger without custody says
 * none is attached (and so does the CLI); custody attached after the index started is read from the first block (its
 * deposits before the attachment too) and the index's held, ratio and requirement equal the
 * contract's `custodyOf`; a reorg that drops a deposit rolls it back; an index of schema version 3
 * is upgraded in place and reads the custody events it lacks at its next sync.
 */
import { join } from "node:path";
import { PassThrough } from "node:stream";

import { expect } from "chai";

import { main } from "../../src/cli/main.js";
import { Indexer } from "../../src/indexer/indexer.js";
import type { IndexQueries } from "../../src/indexer/queries.js";
import { SCHEMA_VERSION, hasTable } from "../../src/indexer/schema.js";
import { openIndex } from "../../src/indexer/open.js";
import { httpJsonRpc } from "../../src/rpc.js";
import { tempDir } from "../helpers/ledger.js";
import { blockNumber, mine, reorg, useReorgAnvil } from "../helpers/reorg.js";
import { indexDb, sqliteOnly } from "../helpers/index-db.js";

const M = 7;

describe("indexer: each merchant's custody (custody events)", function () {
  this.timeout(120_000);
  const chain = useReorgAnvil(["--accounts", "10"]);

  async function deploy() {
    const signers = await chain.connection.ethers.getSigners();
    const [admin, regulator, recorder] = signers;
    const { ethers } = chain.connection;
    const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
    await ledger.waitForDeployment();
    const token = await ethers.deployContract("PrepaidTestToken", ["Test fen", "FEN"]);
    await token.waitForDeployment();
    const custody = await ethers.deployContract("MerchantCustody", [await token.getAddress(), await ledger.getAddress(), admin.address, regulator.address, 0]);
    await custody.waitForDeployment();
    await (await ledger.connect(regulator).registerMerchant(M, recorder.address)).wait();
    const deposit = async (amount: bigint) => {
      await (await token.connect(recorder).mint(recorder.address, amount)).wait();
      await (await token.connect(recorder).approve(await custody.getAddress(), amount)).wait();
      await (await custody.connect(recorder).deposit(M, amount)).wait();
    };
    return { ledger, custody, admin, regulator, recorder, deposit, address: (await ledger.getAddress()).toLowerCase() };
  }
  type Deployed = Awaited<ReturnType<typeof deploy>>;

  /** Runs the CLI in process, returning its exit code and stdout. */
  async function prepaid(args: string[]): Promise<{ code: number; stdout: string }> {
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on("data", (d: Buffer) => chunks.push(d));
    const code = await main(args, { stdout, stderr: new PassThrough(), env: {} });
    return { code, stdout: Buffer.concat(chunks).toString() };
  }

  const open = (ledger: string, db: string, confirmations = 0) => Indexer.open({ ledger, db, confirmations }, httpJsonRpc(chain.url));

  /** The index's custody of merchant M equals the contract's custodyOf (held, ratio, liability, required). */
  async function expectEqualsContract(q: IndexQueries, d: Deployed) {
    const view = q.custody(M);
    const c = await d.custody.custodyOf(M);
    expect(view.custody).to.equal((await d.custody.getAddress()).toLowerCase());
    expect([view.held, view.ratioBps, view.liability, view.required].map(BigInt)).to.deep.equal([c.held, c.ratioBps, c.liability, c.required]);
    return view;
  }

  it("says no custody is attached, then reads custody attached later from the first block", async function () {
    const d = await deploy();
    const db = indexDb(tempDir("index-custody"), "i.sqlite");
    const indexer = await open(d.address, db);
    try {
      await indexer.sync();
      expect(indexer.queries().custody(M).custody).to.equal(null);
      expect(indexer.queries().overview().custody.contract).to.equal(null);
      // The CLI says so too, in the merchant's section and under the merchants' table.
      const one = await prepaid(["merchant", String(M), "--db", db]);
      expect(one.code).to.equal(0);
      expect(one.stdout).to.include("\nCustody: no custody attached to the ledger.\n");
      const all = await prepaid(["merchants", "--db", db]);
      expect(all.stdout).to.include("Custody: no custody attached to the ledger.").and.not.include(" held ");
      const json = JSON.parse((await prepaid(["merchant", String(M), "--db", db, "--json"])).stdout) as { custody: { custody: string | null } };
      expect(json.custody.custody).to.equal(null);
      // Custody events before the ledger names the contract: a ratio and a deposit.
      await (await d.custody.connect(d.regulator).setCoverageRatio(M, 2_500)).wait();
      await d.deposit(1_000n);
      await indexer.sync();
      expect(indexer.queries().custody(M).custody).to.equal(null);
      await (await d.ledger.connect(d.admin).proposeCustody(await d.custody.getAddress())).wait();
      await d.deposit(500n);
      await indexer.sync();
      const view = await expectEqualsContract(indexer.queries(), d);
      expect(view.history.map((e) => [e.event, e.amount, e.heldAfter])).to.deep.equal([
        ["ratio-set", null, null],
        ["deposited", 1_000, 1_000],
        ["deposited", 500, 1_500],
      ]);
      expect(indexer.queries().alerts({ rule: "custody-below-requirement" })).to.deep.equal([]);
    } finally {
      indexer.close();
    }
  });

  it("a reorg that drops a deposit rolls it back", async function () {
    const d = await deploy();
    await (await d.ledger.connect(d.admin).proposeCustody(await d.custody.getAddress())).wait();
    await d.deposit(2_000n);
    await mine(chain.url, 4); // settled
    const db = indexDb(tempDir("index-custody"), "i.sqlite");
    const indexer = await open(d.address, db, 3);
    try {
      await indexer.sync();
      await d.deposit(300n);
      await indexer.sync();
      expect(indexer.queries().custody(M).held).to.equal(2_300);
      const head = await blockNumber(chain.url);
      await reorg(chain.url, 1); // the block of the second deposit is replaced by an empty one
      const r = await indexer.sync();
      expect(r.reorgs.map((x) => x.fork)).to.deep.equal([head - 1]);
      const view = await expectEqualsContract(indexer.queries(), d);
      expect(view.held).to.equal(2_000);
      expect(view.history.map((e) => e.event)).to.deep.equal(["deposited"]);
    } finally {
      indexer.close();
    }
  });

  it("an index of schema version 3 is upgraded in place and reads the custody events it lacks at its next sync", async function () {
    sqliteOnly(this); // an SQLite file of an older version: PostgreSQL indexes start at version 6
    const d = await deploy();
    await (await d.ledger.connect(d.admin).proposeCustody(await d.custody.getAddress())).wait();
    await (await d.custody.connect(d.regulator).setCoverageRatio(M, 10_000)).wait();
    await d.deposit(700n);
    const db = indexDb(tempDir("index-custody"), "i.sqlite");
    const first = await open(d.address, db);
    await first.sync();
    first.close();
    // Make it the index version 3 wrote: no custody table, no record of custody read.
    const raw = openIndex(db);
    raw.exec("DROP TABLE custody_events; DELETE FROM meta WHERE key = 'custody_read'; PRAGMA user_version = 3");
    raw.close();
    const readOnly = openIndex(db, { readOnly: true }); // an old index stays readable
    expect(hasTable(readOnly, "custody_events")).to.equal(false);
    readOnly.close();
    const indexer = await open(d.address, db);
    try {
      const upgraded = openIndex(db, { readOnly: true });
      expect(Number((upgraded.prepare("PRAGMA user_version").get() as { user_version: number }).user_version)).to.equal(SCHEMA_VERSION);
      upgraded.close();
      expect(indexer.queries().custody(M).custody).to.equal(null);
      await indexer.sync();
      const view = await expectEqualsContract(indexer.queries(), d);
      expect(view.history.map((e) => e.event)).to.deep.equal(["ratio-set", "deposited"]);
    } finally {
      indexer.close();
    }
  });
});
