/**
 * The indexer bench's two other readers of the same ledger, each in a process of its own like the
 * sync (scripts/bench/indexer-worker.ts), so the three rates compare one process's work with
 * another's on the same node:
 *
 *   floor  — what any reader pays: the same `eth_getLogs` pages (the pager of src/regulator/logs.ts
 *            over the plain JSON-RPC client, src/rpc.ts: fetch + JSON parse) and every log decoded
 *            into its fields (src/regulator/events.ts); no decryption, no hash, no books
 *   verify — `RegulatorReader.read()` with compareAccounts "none" (merchants and chain head
 *            compared with the contract, as the sync does), the bench regulator's key
 *
 * Prints one JSON line: { mode, records, logs, pages, seconds, recordsPerSecond, maxRssMb }.
 * `seconds` is the wall time of the read alone (process start and module loading excluded).
 *
 *   node --import tsx scripts/bench/reader-worker.ts <floor|verify> <rpcUrl> <ledger> [maxBlockRange]
 */
import { JsonRpcProvider } from "ethers";

import { LEDGER_TOPICS, decodeBatchRecorded, decodeRecorded } from "../../src/regulator/events.js";
import { fetchLogPages } from "../../src/regulator/logs.js";
import { RegulatorReader } from "../../src/regulator/reader.js";
import { httpJsonRpc } from "../../src/rpc.js";
import { REGULATOR_KEY } from "./workload.js";

export type ReaderMode = "floor" | "verify";

/** What the worker prints; scripts/bench/readers.ts parses it. */
export interface ReaderResult {
  mode: ReaderMode;
  /** Records read (Recorded logs for the floor; records verified for verify). */
  records: number;
  /** Logs of every kind the floor decoded (0 for verify). */
  logs: number;
  /** eth_getLogs pages the floor fetched (0 for verify: the reader does not say). */
  pages: number;
  seconds: number;
  recordsPerSecond: number;
  maxRssMb: number;
}

/** The default of both the indexer's and the reader's `maxBlockRange`. */
const DEFAULT_MAX_BLOCK_RANGE = 10_000;

/**
 * Fetches every page and decodes every log; returns the count of records (Recorded logs). The
 * decoded fields are summed into a checksum that is returned too, so no decoding can be
 * optimized away.
 */
async function floor(url: string, ledger: string, maxBlockRange: number): Promise<Omit<ReaderResult, "mode" | "maxRssMb">> {
  const rpc = httpJsonRpc(url);
  const started = performance.now();
  const toBlock = BigInt(String(await rpc.send("eth_blockNumber", [])));
  let records = 0;
  let logs = 0;
  let pages = 0;
  let checksum = 0n;
  for await (const page of fetchLogPages(rpc, { address: ledger, fromBlock: 0n, toBlock, maxBlockRange })) {
    pages++;
    for (const log of page.logs) {
      logs++;
      const topic = log.topics[0];
      if (topic === LEDGER_TOPICS.Recorded) {
        const r = decodeRecorded(log);
        records++;
        checksum += r.amount + BigInt(r.ciphertext.length + r.commitment[0]! + r.accountBytes[31]! + r.kind + r.logIndex);
      } else if (topic === LEDGER_TOPICS.BatchRecorded) {
        const b = decodeBatchRecorded(log);
        checksum += b.sequence + BigInt(b.envelope.length + b.chainHead[0]!);
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (checksum < 0n) throw new Error("unreachable: a sum of non-negative fields");
  return { records, logs, pages, seconds, recordsPerSecond: records / seconds };
}

/** Verifies the whole ledger with the RegulatorReader; throws unless the report is clean. */
async function verify(url: string, ledger: string, maxBlockRange: number): Promise<Omit<ReaderResult, "mode" | "maxRssMb">> {
  // As the indexer bench's deploy(): no request batching, no response cache.
  const provider = new JsonRpcProvider(url, undefined, { staticNetwork: true, batchMaxCount: 1, cacheTimeout: -1 });
  try {
    const started = performance.now();
    const reader = await RegulatorReader.open(
      { ledger, privateKey: REGULATOR_KEY, compareAccounts: "none", maxBlockRange },
      provider,
      { rpc: httpJsonRpc(url) },
    );
    const report = await reader.read();
    const seconds = (performance.now() - started) / 1000;
    if (!report.ok || report.verified !== report.records) {
      throw new Error(`verify: ok ${report.ok}, ${report.verified} of ${report.records} verified, ${report.discrepancies.length} discrepancies`);
    }
    return { records: report.records, logs: 0, pages: 0, seconds, recordsPerSecond: report.records / seconds };
  } finally {
    provider.destroy();
  }
}

async function main(): Promise<void> {
  const [mode, url, ledger, range] = process.argv.slice(2);
  if ((mode !== "floor" && mode !== "verify") || url === undefined || ledger === undefined) {
    throw new Error("usage: reader-worker.ts <floor|verify> <rpcUrl> <ledger> [maxBlockRange]");
  }
  const maxBlockRange = range === undefined ? DEFAULT_MAX_BLOCK_RANGE : Number(range);
  const result = await (mode === "floor" ? floor : verify)(url, ledger, maxBlockRange);
  const out: ReaderResult = { mode, ...result, maxRssMb: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// Imported for its types by the bench: run only when started as a script.
if (process.argv[1]?.endsWith("reader-worker.ts")) {
  main().catch((e: unknown) => {
    for (let c: unknown = e; c !== undefined; c = c instanceof Error ? c.cause : undefined) {
      process.stderr.write(`${c === e ? "" : "caused by: "}${c instanceof Error ? (c.stack ?? c.message) : String(c)}\n`);
    }
    process.exit(1);
  });
}
