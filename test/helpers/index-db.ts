/**
 * Where a test's index lives, for either backend. `npm test` runs the indexer, CLI and dashboard
 * tests twice (tools/postgres.mjs): on SQLite files, then with `PREPAID_TEST_INDEX=postgres` on
 * a private PostgreSQL server (`PREPAID_TEST_POSTGRES`, its URL). Tests ask for an index with
 * {@link indexDb} and get a fresh SQLite path, or a fresh PostgreSQL schema on that server.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";

import { PostgresDatabase } from "../../src/indexer/store/postgres.js";

export type TestBackend = "sqlite" | "postgres";

function backend(): TestBackend {
  const b = process.env.PREPAID_TEST_INDEX ?? "sqlite";
  if (b !== "sqlite" && b !== "postgres") throw new Error(`PREPAID_TEST_INDEX must be sqlite or postgres; got "${b}"`);
  return b;
}

/** The backend these tests run against. */
export const TEST_BACKEND: TestBackend = backend();

function serverUrl(): string {
  const url = process.env.PREPAID_TEST_POSTGRES;
  if (url === undefined || url === "") {
    throw new Error("PREPAID_TEST_INDEX=postgres needs PREPAID_TEST_POSTGRES, the test server's URL (tools/postgres.mjs starts one)");
  }
  return url;
}

/**
 * A fresh index location: `dir/name` for SQLite; for PostgreSQL a new, empty schema on the test
 * server, as a URL whose `search_path` is that schema (`name` becomes part of the schema's name).
 */
export function indexDb(dir: string, name = "index.sqlite"): string {
  if (TEST_BACKEND === "sqlite") return join(dir, name);
  const schema = `t_${name.replace(/\W+/g, "_").toLowerCase()}_${randomBytes(5).toString("hex")}`;
  const admin = PostgresDatabase.connect(serverUrl());
  try {
    admin.exec(`CREATE SCHEMA ${schema}`);
  } finally {
    admin.close();
  }
  const url = new URL(serverUrl());
  url.searchParams.set("options", `-c search_path=${schema}`);
  return url.toString();
}

/** A throwaway index: SQLite in memory, or a fresh PostgreSQL schema. */
export function scratchIndexDb(): string {
  return TEST_BACKEND === "sqlite" ? ":memory:" : indexDb("", "scratch");
}

/** For tests of SQLite files themselves (a corrupt file, an upgrade from an older file): skipped on PostgreSQL. */
export function sqliteOnly(ctx: Mocha.Context): void {
  if (TEST_BACKEND !== "sqlite") ctx.skip();
}
