import { expect } from "chai";
import { network } from "hardhat";

import { MERCHANTS, SUSPENDED, runDay } from "../../scripts/lib/day.js";
import { CLOSING_COVERED, CLOSING_SHORT } from "../../scripts/lib/exit.js";
import { startHardhatNode, startTs } from "../helpers/processes.js";

async function finished(p: ReturnType<typeof startTs>, ms: number) {
  const deadline = Date.now() + ms;
  while (p.process.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (p.process.exitCode === null) {
    await p.stop();
    throw new Error(`timed out: ${p.output()}`);
  }
  return p.process.exitCode;
}

const hardhatRun = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  startTs("node_modules/hardhat/dist/src/cli.js", ["run", "scripts/main-job.ts", ...args], env);

describe("main job: a realistic day", function () {
  this.timeout(240_000);

  it("books the day, suspends one merchant, and the regulator verifies every figure", async function () {
    const connection = await network.create();
    const day = await runDay(connection);
    const { report } = day;
    expect(report.discrepancies).to.deep.equal([]);
    // The evening's claims and the morning's cooling-off return are settlements: records too.
    const ledger = await connection.ethers.getContractAt("PrepaidLedger", day.ledgerAddress);
    const settled = await ledger.queryFilter(ledger.filters.Settled(), 0);
    expect(report.settlements).to.equal(settled.length).and.to.be.greaterThan(0);
    expect(report.records).to.equal(day.uploaded.length + settled.length);
    expect(report.verified).to.equal(report.records);
    expect(day.refused.map((r) => [r.merchantId, r.error])).to.deep.equal([[SUSPENDED, "LedgerMerchantSuspended"]]);

    expect(report.merchants.map((m) => m.merchantId)).to.deep.equal(MERCHANTS.map((m) => m.id));
    for (const m of report.merchants) {
      const c = await ledger.merchantBooks(m.merchantId);
      expect(BigInt(m.status)).to.equal(m.merchantId === CLOSING_SHORT || m.merchantId === CLOSING_COVERED ? 4n : 1n);
      expect([BigInt(m.status), BigInt(m.accountCount), BigInt(m.recordCount), m.toppedUp, m.consumed, m.refunded, m.liability]).to.deep.equal([
        c.status,
        c.accountCount,
        c.recordCount,
        c.toppedUp,
        c.consumed,
        c.refunded,
        c.liability,
      ]);
      expect(m.recordCount).to.equal(
        day.uploaded.filter((r) => r.merchantId === m.merchantId).length + settled.filter((l) => Number(l.args.merchantId) === m.merchantId).length,
      );
    }
    // The supervisors confirmed the books at noon, and again at the end of the day with the
    // evening's settlements: every record is final.
    const quorum = await connection.ethers.getContractAt("SupervisorQuorum", day.quorumAddress);
    const final = await quorum.lastFinal();
    expect(final).to.equal(BigInt(report.records));
    expect(report.confirmation).to.deep.include({ finalRecordCount: final, confirmed: report.records, pending: 0 });
    expect(await quorum.status(final)).to.equal(2n);
    // Every uploaded record is the one the chain holds at its index.
    const logs = await ledger.queryFilter(ledger.filters.Recorded());
    expect(logs.map((l) => l.topics[3])).to.deep.equal(day.uploaded.map((r) => r.commitment));
  });

  it("runs as a script on the in-process network", async function () {
    const run = hardhatRun([]);
    expect(await finished(run, 120_000), run.output()).to.equal(0);
    expect(run.output()).to.include("Supervision report");
    expect(run.output()).to.include("matches the contract");
    expect(run.output()).to.include("Refused upload: merchant 103");
    expect(run.output()).to.match(/Confirmation: records 1–\d+ confirmed by the supervisors' quorum/);
  });

  it("runs against a hardhat node (--network localhost), twice: the second deploy is Ignition's no-op", async function () {
    const node = await startHardhatNode();
    try {
      const env = { LOCALHOST_RPC_URL: node.url };
      const first = hardhatRun(["--network", "localhost"], env);
      expect(await finished(first, 120_000), first.output()).to.equal(0);
      const address = /ledger at (0x[0-9a-fA-F]{40})/.exec(first.output())![1];
      const second = hardhatRun(["--network", "localhost"], env);
      expect(await finished(second, 120_000), second.output()).to.equal(0);
      expect(second.output()).to.include(`ledger at ${address}`);
      expect(second.output()).to.include("matches the contract");
    } finally {
      await node.stop();
    }
  });
});
