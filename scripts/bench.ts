/**
 * `npm run bench`: every performance figure of the project, printed with the command line and
 * the machine's core count. Figures, not assertions: targets are printed beside them as
 * "met" / "NOT met", computed from the numbers.
 *
 *   gas      — gas per record (1 and 100 per transaction) against the EIP-7623 floor for the same bytes
 *   upload   — records/s through the Uploader end to end, and the naive per-record baseline
 *   verify   — records/s the RegulatorReader verifies
 *   nodes    — upload and verify records/s over HTTP against anvil and a `hardhat node`
 *   supervision — gas to mark and finalize a checkpoint (t = 3, 5, 7), gas per record confirmed,
 *              and seconds from upload to confirmation with 4 supervisor processes
 */
import { availableParallelism, cpus } from "node:os";

import { benchGas, formatGas } from "./bench/gas.js";
import { benchNodes, formatNodes } from "./bench/nodes.js";
import { benchSupervision, formatSupervision } from "./bench/supervision.js";
import { benchThroughput, formatThroughput } from "./bench/throughput.js";

console.log(`$ ${process.env.npm_lifecycle_event === "bench" ? "npm run bench" : ["npx hardhat", ...process.argv.slice(2)].join(" ")}`);
console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? "unknown CPU"}), Node ${process.version}`);
console.log(`date: ${new Date().toISOString()}`);
console.log("");
console.log(formatGas(await benchGas()));
console.log("");
console.log(formatThroughput(await benchThroughput()));
console.log("");
console.log(formatNodes(await benchNodes()));
console.log("");
console.log(formatSupervision(await benchSupervision()));
