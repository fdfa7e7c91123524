/**
 * The main job: a realistic day on the ledger, then the regulator's supervision report.
 *
 *   npm start                                            # embedded in-process network
 *   npx hardhat run scripts/main-job.ts --network localhost   # a `npx hardhat node` elsewhere
 *
 * Exits non-zero if the regulator's verification finds any discrepancy.
 */
import { network } from "hardhat";

import { formatReport } from "../src/regulator/report.js";
import { runDay } from "./lib/day.js";

const connection = await network.create();
const started = performance.now();
const day = await runDay(connection, (line) => console.log(line));
console.log("");
console.log(formatReport(day.report, day.names));
for (const r of day.refused) {
  console.log(`Refused upload: merchant ${r.merchantId}, ${r.records} records — ${r.error}`);
}
console.log(`\nDone in ${((performance.now() - started) / 1000).toFixed(1)} s on network "${connection.networkName}".`);
if (!day.report.ok) process.exitCode = 1;
