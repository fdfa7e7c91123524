/**
 * Verify and sync at their limits (issue 14, item 5), over the indexer bench's ledger on anvil:
 * the floor any reader pays (the same `eth_getLogs` pages fetched and every log decoded), the
 * RegulatorReader's verify, and the indexer's sync (timed by scripts/bench/indexer.ts), each in a
 * process of its own, one after the other against the same node. Printed as verify ÷ floor and
 * sync ÷ verify, the ratios that stay comparable across runs on a shared machine.
 */
import type { WorkerResult } from "./indexer-worker.js";
import type { ReaderMode, ReaderResult } from "./reader-worker.js";

/** The floor and verify runs, and the ratios with the sync of the same run. */
export interface ReadersFigures {
  floor: ReaderResult;
  verify: ReaderResult;
  /** verify records/s ÷ floor records/s. */
  verifyOfFloor: number;
  /** sync records/s ÷ verify records/s. */
  syncOfVerify: number;
}

/**
 * Runs the floor, then verify, over the ledger at `ledger` with the sync's page size, and checks
 * both read every record the sync read.
 *
 * @param run - runs a worker script with args and resolves with its JSON line (indexer.ts runScript)
 */
export async function timeReaders(
  run: <T>(file: string, args: string[], timeoutMs: number) => Promise<T>,
  url: string,
  ledger: string,
  range: number | undefined,
  sync: WorkerResult,
  timeoutMs: number,
): Promise<ReadersFigures> {
  const reader = (mode: ReaderMode) =>
    run<ReaderResult>("scripts/bench/reader-worker.ts", [mode, url, ledger, ...(range === undefined ? [] : [String(range)])], timeoutMs);
  const floor = await reader("floor");
  const verify = await reader("verify");
  for (const r of [floor, verify]) {
    if (r.records !== sync.records) throw new Error(`${r.mode} read ${r.records} records, the sync ${sync.records}`);
  }
  return {
    floor,
    verify,
    verifyOfFloor: verify.recordsPerSecond / floor.recordsPerSecond,
    syncOfVerify: sync.recordsPerSecond / verify.recordsPerSecond,
  };
}

const int = (x: number): string => Math.round(x).toLocaleString("en-US");

/** The figures as lines for the bench printout, the sync's rate beside them. */
export function formatReaders(f: ReadersFigures, sync: WorkerResult): string[] {
  const row = (label: string, r: { records: number; seconds: number; recordsPerSecond: number; maxRssMb: number }) =>
    [label.padEnd(44), int(r.records).padStart(9), r.seconds.toFixed(1).padStart(7), int(r.recordsPerSecond).padStart(9), int(r.maxRssMb).padStart(7)].join("  ");
  return [
    "readers of the same ledger, each a process of its own, one after the other (same eth_getLogs page size):",
    `${"reader".padEnd(44)}    records  seconds  records/s  max RSS MB`,
    row(`floor: fetch + decode every log (${int(f.floor.pages)} pages)`, f.floor),
    row('verify: RegulatorReader, compareAccounts "none"', f.verify),
    row("sync: indexer into a fresh SQLite file", sync),
    `verify / floor ${f.verifyOfFloor.toFixed(2)}; sync / verify ${f.syncOfVerify.toFixed(2)}; sync / floor ${(sync.recordsPerSecond / f.floor.recordsPerSecond).toFixed(2)}`,
  ];
}
