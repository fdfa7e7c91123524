/**
 * The main job: a town's prepaid-card merchants over a few simulated weeks, the regulator's
 * supervision report, then the regulator's index of the history (the `prepaid` workbench's
 * database) with its risk alerts, and how early the rules flagged the merchant that closed.
 *
 *   npm start                                                   # embedded in-process network, 21 days
 *   DAYS=28 npm start                                           # another length (7 to 365 days)
 *   npx hardhat run scripts/main-job.ts --network localhost     # a `npx hardhat node` elsewhere
 *
 * `hardhat run` passes no arguments to a script (it refuses unknown options), so the length is the
 * environment variable `DAYS`. Exits non-zero if the regulator's verification finds any
 * discrepancy or a risk rule fires where the simulation meant none. It leaves, in the working
 * directory (or `PREPAID_DEMO_DIR`), the index `prepaid-index.sqlite` (or `PREPAID_INDEX`),
 * `prepaid.config.json` naming the node, the contracts and the index, and the demo regulator's
 * key in `demo-regulator.key` (mode 0600), so `npm run -s prepaid -- serve` and (against a node
 * that keeps running) `npm run -s prepaid -- sync --key-file demo-regulator.key` work at once.
 */
import { rmSync } from "node:fs";
import { resolve } from "node:path";

import { network } from "hardhat";

import { Indexer } from "../src/indexer/indexer.js";
import { formatReport } from "../src/regulator/report.js";
import { DEMO_REGULATOR_KEY, DEMO_RISK, parseDays, runDay } from "./lib/day.js";
import { writeDemoFiles } from "./lib/demo-files.js";
import { formatExit } from "./lib/exit.js";
import { formatWatch } from "./lib/watch.js";

const days = parseDays(process.env.DAYS);
const connection = await network.create();
const started = performance.now();
const dir = resolve(process.env.PREPAID_DEMO_DIR ?? process.cwd());
const db = resolve(dir, process.env.PREPAID_INDEX ?? "prepaid-index.sqlite");
// The index describes one chain: the in-process chain is new on every run (same chain id and
// ledger address, other blocks), and a ledger deployed anew is another ledger, so an index of an
// earlier run is rebuilt unless it follows the same ledger on a node that kept running.
if (connection.networkName === "default") for (const suffix of ["", "-wal", "-shm"]) rmSync(db + suffix, { force: true });
const day = await runDay(connection, (line) => console.log(line), { days, index: db });
console.log("");
console.log(formatReport(day.report, day.names));
for (const r of day.refused) {
  console.log(`Refused upload: merchant ${r.merchantId}, ${r.records} records — ${r.error}`);
}
console.log("");
console.log(formatExit(day.exit));
console.log("");
console.log(formatWatch(day));

const indexer = await Indexer.open(
  { ledger: day.ledgerAddress, quorum: day.quorumAddress, privateKey: DEMO_REGULATOR_KEY, db, risk: DEMO_RISK },
  connection.ethers.provider,
);
try {
  const synced = await indexer.sync();
  const totals = indexer.queries().totals();
  console.log(`\nRegulator's index: ${db}`);
  console.log(
    `  ${synced.newRecords} new records indexed to block ${synced.settledBlock}; ${totals.records} records, ${totals.accounts} accounts, ` +
      `${totals.verified} verified, ${totals.pending} pending confirmation; books ${synced.matchesContract === true ? "match" : "DO NOT match"} the contract`,
  );
  const alerts = indexer.queries().alerts();
  console.log(alerts.length === 0 ? "  Risk alerts now: none" : `  Risk alerts now (${alerts.length}):`);
  for (const a of alerts.slice(0, 10)) console.log(`  [${a.severity}] ${a.rule}: ${a.message}`);
  if (synced.matchesContract === false) process.exitCode = 1;
} finally {
  indexer.close();
}
const files = await writeDemoFiles(connection, dir, { ledger: day.ledgerAddress, quorum: day.quorumAddress, db });
console.log(`\nFor the workbench: ${files.config} (node, contracts, index, risk thresholds) and ${files.key} (the demo regulator's key, mode 0600 — a demo key, public in this repository).`);
console.log(`Simulated ${day.days} days: blocks from ${new Date(day.span.from * 1000).toISOString()} to ${new Date(day.span.to * 1000).toISOString()}.`);
console.log(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s on network "${connection.networkName}".`);
if (!day.report.ok || day.unexpected.length > 0) process.exitCode = 1;
