/**
 * The main job: a realistic day on the ledger, the regulator's supervision report, then the
 * regulator's index of the day (the `prepaid` workbench's database) with its risk alerts.
 *
 *   npm start                                            # embedded in-process network
 *   npx hardhat run scripts/main-job.ts --network localhost   # a `npx hardhat node` elsewhere
 *
 * Exits non-zero if the regulator's verification finds any discrepancy. `PREPAID_INDEX` names
 * where the index is written (default: a temporary folder); `npm run prepaid -- serve --db <it>`
 * then shows it in the dashboard (against a `hardhat node`, since the in-process chain is gone).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { network } from "hardhat";

import { Indexer } from "../src/indexer/indexer.js";
import { formatReport } from "../src/regulator/report.js";
import { DEMO_REGULATOR_KEY, runDay } from "./lib/day.js";
import { formatExit } from "./lib/exit.js";

const connection = await network.create();
const started = performance.now();
const day = await runDay(connection, (line) => console.log(line));
console.log("");
console.log(formatReport(day.report, day.names));
for (const r of day.refused) {
  console.log(`Refused upload: merchant ${r.merchantId}, ${r.records} records — ${r.error}`);
}
console.log("");
console.log(formatExit(day.exit));

const db = process.env.PREPAID_INDEX ?? join(mkdtempSync(join(tmpdir(), "prepaid-index-")), "index.sqlite");
if (connection.networkName === "default") {
  // The in-process chain is new on every run: an index of an earlier run describes a chain that
  // no longer exists (same chain id and ledger address, other blocks), so it is rebuilt.
  for (const suffix of ["", "-wal", "-shm"]) rmSync(db + suffix, { force: true });
}
const indexer = await Indexer.open(
  { ledger: day.ledgerAddress, quorum: day.quorumAddress, privateKey: DEMO_REGULATOR_KEY, db },
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
  console.log(alerts.length === 0 ? "  Risk alerts: none" : `  Risk alerts (${alerts.length}):`);
  for (const a of alerts.slice(0, 10)) console.log(`  [${a.severity}] ${a.rule}: ${a.message}`);
  if (synced.matchesContract === false) process.exitCode = 1;
} finally {
  indexer.close();
}
console.log(`\nDone in ${((performance.now() - started) / 1000).toFixed(1)} s on network "${connection.networkName}".`);
if (!day.report.ok) process.exitCode = 1;
