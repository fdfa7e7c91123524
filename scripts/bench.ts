/**
 * `npm run bench`: every performance figure of the project, printed with the command line and
 * the machine's core count. Figures, not assertions: targets are printed beside them as
 * "met" / "NOT met", computed from the numbers.
 *
 *   gas      — gas per record (1 and 100 per transaction) against the EIP-7623 floor for the same bytes
 *   custody  — gas of deposit, withdrawal, cooling-off, claims and sweep; the payout of a closed
 *              merchant to 10,000 card holders (BENCH_HOLDERS), transactions and gas in all
 *   upload   — records/s through the Uploader end to end, and the naive per-record baseline; upload ÷
 *              the node's limit with the key held by the node and by the uploader; per-batch signing time
 *   verify   — records/s the RegulatorReader verifies
 *   nodes    — upload and verify records/s over HTTP against anvil and a `hardhat node`
 *   supervision — gas to mark and finalize a checkpoint (t = 3, 5, 7), gas per record confirmed,
 *              and seconds from upload to confirmation with 4 supervisor processes
 *   indexer  — records/s and peak memory syncing 1,000,000 records from anvil into SQLite, the
 *              floor any reader pays and verify's rate over the same ledger (verify ÷ floor,
 *              sync ÷ verify), and the dashboard's response times over that index
 *   load     — 50 merchants uploading at once with 4 supervisors and `prepaid sync --follow`,
 *              through the fault-injecting proxy with and without faults: records/s, faults by
 *              kind, follower lag, confirmation p50/p99; every record on chain once, index = contract
 *
 * `BENCH_ONLY=<name>` runs one of them (gas, custody, throughput, nodes, supervision, indexer, load);
 * `BENCH_INDEXER_RECORDS=<n>` scales the indexer bench down for a quick try.
 */
import { availableParallelism, cpus } from "node:os";

import { benchCustody, formatCustody } from "./bench/custody.js";
import { benchGas, formatGas } from "./bench/gas.js";
import { benchIndexer, formatIndexer } from "./bench/indexer.js";
import { benchLoad, formatLoad } from "./bench/load.js";
import { benchNodes, formatNodes } from "./bench/nodes.js";
import { benchSupervision, formatSupervision } from "./bench/supervision.js";
import { benchThroughput, formatThroughput } from "./bench/throughput.js";

console.log(`$ ${process.env.npm_lifecycle_event === "bench" ? "npm run bench" : ["npx hardhat", ...process.argv.slice(2)].join(" ")}`);
console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? "unknown CPU"}), Node ${process.version}`);
console.log(`date: ${new Date().toISOString()}`);
const BENCHES = ["gas", "custody", "throughput", "nodes", "supervision", "indexer", "load"];
const only = process.env.BENCH_ONLY;
if (only !== undefined && !BENCHES.includes(only)) throw new Error(`BENCH_ONLY must be one of ${BENCHES.join(", ")}; got "${only}"`);
const run = (name: string): boolean => only === undefined || only === name;
if (run("gas")) console.log(`\n${formatGas(await benchGas())}`);
if (run("custody")) console.log(`\n${formatCustody(await benchCustody())}`);
if (run("throughput")) console.log(`\n${formatThroughput(await benchThroughput())}`);
if (run("nodes")) console.log(`\n${formatNodes(await benchNodes())}`);
if (run("supervision")) console.log(`\n${formatSupervision(await benchSupervision())}`);
if (run("indexer")) console.log(`\n${formatIndexer(await benchIndexer())}`);
if (run("load")) console.log(`\n${formatLoad(await benchLoad())}`);
