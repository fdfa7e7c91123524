import { expect } from "chai";
import { network } from "hardhat";

import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { DEFAULT_DAYS, MERCHANTS, PRECURSOR, SUSPENDED, parseDays, runDay } from "../../scripts/lib/day.js";
import { CLOSING_COVERED, CLOSING_SHORT } from "../../scripts/lib/exit.js";
import { precursorPlan } from "../../scripts/lib/town.js";
import { isError } from "../../src/errors.js";
import { finished, startCommand, startHardhatNode, startTs } from "../helpers/processes.js";


const hardhatRun = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  startTs("node_modules/hardhat/dist/src/cli.js", ["run", "scripts/main-job.ts", ...args], env);

describe("main job: a town's history", function () {
  this.timeout(300_000);

  it("books the history, suspends one merchant, and the regulator verifies every figure", async function () {
    const connection = await network.create();
    const day = await runDay(connection);
    const { report } = day;
    const closed = [CLOSING_SHORT, CLOSING_COVERED, PRECURSOR];
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
      expect(BigInt(m.status)).to.equal(closed.includes(m.merchantId) ? 4n : 1n);
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

    // The blocks follow the simulated clock: the records' blocks spread over the days, each
    // batch's block on the day its records say, and the history ends a claims window later.
    const blockTime = async (n: number) => (await connection.ethers.provider.getBlock(n))!.timestamp;
    expect(day.days).to.equal(DEFAULT_DAYS);
    expect(day.span.to - day.span.from).to.be.at.least((DEFAULT_DAYS - 1 + 7) * 86_400);
    const days = new Set<number>();
    for (const l of await ledger.queryFilter(ledger.filters.BatchRecorded())) {
      const t = await blockTime(l.blockNumber);
      days.add(Math.floor((t - day.mornings[0]) / 86_400) + 1);
    }
    expect([...days].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: DEFAULT_DAYS }, (_, k) => k + 1));
    for (const r of day.uploaded.filter((_, i) => i % 50 === 0)) {
      const [log] = await ledger.queryFilter(ledger.filters.Recorded(r.account, r.merchantId, r.commitment));
      const t = await blockTime(log.blockNumber);
      expect(Math.floor((t - day.mornings[0]) / 86_400), `record ${r.recordIndex}`).to.be.within(0, DEFAULT_DAYS - 1);
    }

    // The precursor: flagged by the evening risk rules days before its closure, by the rules of its
    // pattern; the suspended merchant's dormancy is the one other alert, and nothing else fired.
    const plan = precursorPlan(DEFAULT_DAYS);
    expect(day.warning.closedOn).to.equal(DEFAULT_DAYS);
    expect(day.warning.first).to.not.equal(null);
    expect(day.warning.first!.day).to.be.within(plan.campaignFrom, plan.campaignTo);
    expect(day.warning.daysEarlier).to.equal(DEFAULT_DAYS - day.warning.first!.day).and.to.be.at.least(7);
    expect(day.warning.rules.map((a) => a.rule)).to.include.members(["liability-growth", "topup-spike", "dormant-merchant"]);
    expect(day.unexpected).to.deep.equal([]);
    expect(day.alerts.filter((a) => a.merchantId !== PRECURSOR).map((a) => [a.merchantId, a.rule])).to.deep.equal([[SUSPENDED, "dormant-merchant"]]);
    // Before the campaign the precursor was quiet: the first alert is not an artefact of the opening.
    expect(day.alerts.every((a) => a.day >= plan.campaignFrom)).to.equal(true);

    // Every merchant's registry data is on chain, for the indexers.
    const profiles = await ledger.queryFilter(ledger.filters.MerchantProfileSet());
    expect(profiles.map((l) => [Number(l.args.merchantId), l.args.name, l.args.licence, l.args.category, l.args.district])).to.deep.equal(
      MERCHANTS.map((m) => [m.id, m.name, m.licence, m.category, m.district]),
    );
  });

  it("takes its length from DAYS, and refuses a length out of range", function () {
    expect(parseDays(undefined)).to.equal(DEFAULT_DAYS);
    expect(parseDays("28")).to.equal(28);
    for (const bad of ["6", "366", "2.5", "x", "-1"]) {
      expect(() => parseDays(bad), bad).to.throw().that.satisfies((e: unknown) => isError(e, "INVALID_ARGUMENT"));
    }
  });

  it("runs as a script on the in-process network, says how early the precursor was flagged, and leaves the workbench's files", async function () {
    const dir = mkdtempSync(join(tmpdir(), "main-job-"));
    const run = hardhatRun([], { PREPAID_DEMO_DIR: dir });
    expect(await finished(run, 120_000), run.output()).to.equal(0);
    expect(run.output()).to.match(/Jade Dragon Fitness \(merchant 105\), the precursor, was first flagged on day \d+ \(\d{4}-\d\d-\d\d\) and closed on day 21 \(\d{4}-\d\d-\d\d\): \d+ days earlier/);
    expect(run.output()).to.include("Unexpected alerts: none");
    const config = JSON.parse(readFileSync(join(dir, "prepaid.config.json"), "utf8"));
    expect(config).to.include({ db: "prepaid-index.sqlite" });
    expect(config.ledger).to.match(/^0x[0-9a-fA-F]{40}$/);
    expect(config.rpc).to.equal(undefined); // the in-process chain is gone when the job ends
    expect(existsSync(join(dir, "prepaid-index.sqlite"))).to.equal(true);
    expect(statSync(join(dir, "demo-regulator.key")).mode & 0o777).to.equal(0o600);
    expect(run.output()).to.include("Supervision report");
    expect(run.output()).to.include("matches the contract");
    expect(run.output()).to.include("Refused upload: merchant 103");
    expect(run.output()).not.to.include("Refused upload: merchant 105");
    expect(run.output()).to.match(/Confirmation: records 1–\d+ confirmed by the supervisors' quorum/);
  });

  it("runs against a hardhat node (--network localhost), twice: the second deploy is Ignition's no-op", async function () {
    const node = await startHardhatNode();
    try {
      const env = { LOCALHOST_RPC_URL: node.url, PREPAID_DEMO_DIR: mkdtempSync(join(tmpdir(), "main-job-")), DAYS: "7" };
      const first = hardhatRun(["--network", "localhost"], env);
      expect(await finished(first, 120_000), first.output()).to.equal(0);
      const address = /ledger at (0x[0-9a-fA-F]{40})/.exec(first.output())![1];
      const second = hardhatRun(["--network", "localhost"], env);
      expect(await finished(second, 120_000), second.output()).to.equal(0);
      expect(second.output()).to.include(`ledger at ${address}`);
      expect(second.output()).to.include("matches the contract");
      // A rerun opens the town again 100 ids on, and the history continues on the same clock.
      expect(second.output()).to.include("registered merchant 205 Jade Dragon Fitness");
      // What it leaves is enough for the workbench: `prepaid sync` with the key file, no other flag.
      const config = JSON.parse(readFileSync(join(env.PREPAID_DEMO_DIR, "prepaid.config.json"), "utf8"));
      expect(config).to.include({ rpc: node.url, ledger: address, db: "prepaid-index.sqlite" });
      const sync = startCommand(process.execPath, [join(process.cwd(), "bin", "prepaid.mjs"), "sync", "--key-file", "demo-regulator.key"], {
        cwd: env.PREPAID_DEMO_DIR,
      });
      expect(await finished(sync, 60_000), sync.output()).to.equal(0);
      expect(sync.output()).to.include("Books match the contract");
    } finally {
      await node.stop();
    }
  });
});
