/**
 * The indexer bench's sync, in a process of its own so its peak memory is its own: syncs a
 * ledger from a node into a new SQLite index with the bench regulator's key, as `prepaid sync`
 * does (same JSON-RPC client, default indexer configuration), and prints one JSON line:
 *
 *   { records, seconds, recordsPerSecond, maxRssMb, pages, largestPage, pagesSeconds, verified,
 *     failed, discrepancies, alerts, matchesContract }
 *
 * `seconds` is the wall time of `Indexer.open` + `sync()` (process start and module loading
 * excluded); `pagesSeconds` is the part until the last page committed (the rest is the comparison
 * with the contract and the risk rules). `maxRssMb` is the process's peak resident set, read
 * after the sync (`process.resourceUsage().maxRSS`, KiB).
 *
 *   node --import tsx scripts/bench/indexer-worker.ts <rpcUrl> <ledger> <db> [maxBlockRange]
 *
 * `maxBlockRange` is `prepaid sync --max-block-range`; without it, the indexer's default.
 * `BENCH_INDEXER_ACCOUNT_CACHE=<n>` sets the indexer's `accountCache` (cards' books kept in memory
 * between pages); without it, the indexer's default. The result says which was used.
 */
import { Indexer } from "../../src/indexer/indexer.js";
import { httpJsonRpc } from "../../src/rpc.js";
import { REGULATOR_KEY } from "./workload.js";

/** What the worker prints; scripts/bench/indexer.ts parses it. */
export interface WorkerResult {
  records: number;
  seconds: number;
  recordsPerSecond: number;
  maxRssMb: number;
  pages: number;
  /** Records in the largest page (one eth_getLogs answer, one SQLite transaction). */
  largestPage: number;
  pagesSeconds: number;
  /** The indexer's `accountCache` the sync ran with. */
  accountCache: number;
  verified: number;
  failed: number;
  discrepancies: number;
  alerts: number;
  matchesContract: boolean | "unavailable";
}

async function main(): Promise<void> {
  const [url, ledger, db, range] = process.argv.slice(2);
  if (url === undefined || ledger === undefined || db === undefined) {
    throw new Error("usage: indexer-worker.ts <rpcUrl> <ledger> <db> [maxBlockRange]");
  }
  const maxBlockRange = range === undefined ? undefined : Number(range);
  const cache = process.env.BENCH_INDEXER_ACCOUNT_CACHE;
  const accountCache = cache === undefined || cache === "" ? undefined : Number(cache);
  const started = performance.now();
  const indexer = await Indexer.open({ ledger, privateKey: REGULATOR_KEY, db, maxBlockRange, accountCache }, httpJsonRpc(url));
  let pages = 0;
  let largestPage = 0;
  let recordsBefore = 0;
  let lastPage = started;
  try {
    const result = await indexer.sync({
      onProgress: (p) => {
        pages++;
        largestPage = Math.max(largestPage, p.newRecords - recordsBefore);
        recordsBefore = p.newRecords;
        lastPage = performance.now();
      },
    });
    const seconds = (performance.now() - started) / 1000;
    const totals = indexer.queries().totals();
    const out: WorkerResult = {
      records: result.newRecords,
      seconds,
      recordsPerSecond: result.newRecords / seconds,
      maxRssMb: process.resourceUsage().maxRSS / 1024,
      pages,
      largestPage,
      pagesSeconds: (lastPage - started) / 1000,
      accountCache: indexer.config.accountCache,
      verified: totals.verified,
      failed: totals.failed,
      discrepancies: result.discrepancies,
      alerts: result.alerts,
      matchesContract: result.matchesContract,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    indexer.close();
  }
}

// Imported for its type by the bench: run only when started as a script.
if (process.argv[1]?.endsWith("indexer-worker.ts")) {
  main().catch((e: unknown) => {
    // The whole chain of causes: "eth_getLogs kept failing" alone does not say why.
    for (let c: unknown = e; c !== undefined; c = c instanceof Error ? c.cause : undefined) {
      process.stderr.write(`${c === e ? "" : "caused by: "}${c instanceof Error ? (c.stack ?? c.message) : String(c)}\n`);
    }
    process.exit(1);
  });
}
