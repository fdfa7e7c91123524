/**
 * The indexer bench on both backends (issue 14, item 2): the same ledger synced a second time,
 * into PostgreSQL (a private server, tools/postgres.mjs), right after the SQLite sync of the
 * same run, and the dashboard timed over each index. Printed side by side with PostgreSQL ÷
 * SQLite, the ratio that stays comparable across runs on a shared machine.
 *
 * Skipped, and said so, when PostgreSQL is not installed (`BENCH_POSTGRES=0` skips it too). A
 * sync that fails is printed as failed, with its reason, beside the run's SQLite figures.
 */
import { existsSync, readdirSync } from "node:fs";

import { startPostgres } from "../../tools/postgres.mjs";
import type { WorkerResult } from "./indexer-worker.js";

/** A dashboard route's timing (scripts/bench/indexer.ts). */
export interface RouteTiming {
  label: string;
  p95Ms: number;
  medianMs: number;
}

export interface BackendsFigures {
  postgres: { sync: WorkerResult; dashboard: RouteTiming[]; server: string } | { skipped: string } | { failed: string };
}

/** Whether this machine can run the PostgreSQL pass (the Debian package's server binaries). */
function postgresMissing(): string | undefined {
  if (process.env.BENCH_POSTGRES === "0") return "BENCH_POSTGRES=0";
  const base = "/usr/lib/postgresql";
  const found = existsSync(base) && readdirSync(base).some((d) => existsSync(`${base}/${d}/bin/postgres`));
  return found ? undefined : "PostgreSQL is not installed (apt-get install postgresql)";
}

/**
 * Syncs the ledger again into a fresh PostgreSQL database and times its dashboard.
 *
 * @param sync - runs the indexer worker into the given index location (scripts/bench/indexer.ts runWorker)
 * @param dashboard - times the dashboard's routes over the given index (scripts/bench/indexer.ts timeDashboard)
 * @param beforeDashboard - called between the sync and the dashboard (the caller stops the node there)
 */
export async function benchPostgres(
  sync: (db: string) => Promise<WorkerResult>,
  dashboard: (db: string) => Promise<RouteTiming[]>,
  beforeDashboard: () => Promise<void>,
): Promise<BackendsFigures> {
  const missing = postgresMissing();
  if (missing !== undefined) {
    await beforeDashboard();
    return { postgres: { skipped: missing } };
  }
  const server = await startPostgres();
  try {
    let pg: WorkerResult;
    try {
      pg = await sync(server.url);
    } catch (e) {
      // The SQLite figures of the run are still printed; the failure is, in place of the row.
      await beforeDashboard();
      const summary = e instanceof Error && "summary" in e && typeof e.summary === "string" ? e.summary : String(e);
      return { postgres: { failed: summary } };
    }
    await beforeDashboard();
    return { postgres: { sync: pg, dashboard: await dashboard(server.url), server: "PostgreSQL 15, private server on 127.0.0.1 (fsync off)" } };
  } finally {
    await server.stop();
  }
}

const int = (x: number): string => Math.round(x).toLocaleString("en-US");

/** SQLite and PostgreSQL side by side, with the ratio PostgreSQL ÷ SQLite. */
export function formatBackends(f: BackendsFigures, sqlite: { sync: WorkerResult; dashboard: RouteTiming[] }): string[] {
  if ("skipped" in f.postgres) return [`PostgreSQL backend: not measured: ${f.postgres.skipped}`];
  if ("failed" in f.postgres) return [`PostgreSQL backend: the sync FAILED: ${f.postgres.failed}`];
  const pg = f.postgres;
  const row = (label: string, a: number, b: number, unit: string, digits = 0) =>
    `${label.padEnd(34)} ${(digits === 0 ? int(a) : a.toFixed(digits)).padStart(10)} ${(digits === 0 ? int(b) : b.toFixed(digits)).padStart(12)} ${(b / a).toFixed(2).padStart(8)}  ${unit}`;
  const lines = [
    `the same ledger synced into each backend, one after the other (${pg.server}):`,
    `${"".padEnd(34)} ${"SQLite".padStart(10)} ${"PostgreSQL".padStart(12)} ${"PG÷SQLite".padStart(8)}`,
    row("sync records/s", sqlite.sync.recordsPerSecond, pg.sync.recordsPerSecond, "records/s"),
    row("sync peak RSS", sqlite.sync.maxRssMb, pg.sync.maxRssMb, "MB"),
  ];
  for (const r of sqlite.dashboard) {
    const other = pg.dashboard.find((x) => x.label === r.label);
    if (other !== undefined) lines.push(row(`${r.label} p95`, r.p95Ms, other.p95Ms, "ms", 1));
  }
  return lines;
}
