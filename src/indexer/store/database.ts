/**
 * What the index code needs of a database: the synchronous statement API of Node's built-in
 * `node:sqlite` (`prepare(sql).get/all/run/iterate`, `exec`, `close`). Two backends give it:
 *
 * - SQLite, the embedded default: `node:sqlite`'s `DatabaseSync` itself (src/indexer/schema.ts);
 * - PostgreSQL, for a team sharing one index: {@link PostgresDatabase}
 *   (src/indexer/store/postgres.ts), which runs the same SQL, translated by
 *   src/indexer/store/dialect.ts.
 *
 * The SQL the index code writes is the common part of both dialects: `?` placeholders, no
 * `INSERT OR …`, `ON CONFLICT … DO UPDATE/NOTHING`, integer columns read back as JS numbers.
 */
import { PrepaidLedgerError } from "../../errors.js";

/** A value bound to a `?` placeholder. */
export type SqlValue = null | number | bigint | string | Uint8Array;

/** One row: column name (as in the SELECT, snake_case) to value. */
export type Row = Record<string, unknown>;

/** A prepared statement: `get` the first row, `all` rows, `run` a write, `iterate` rows. */
export interface Statement {
  get(...params: SqlValue[]): Row | undefined;
  all(...params: SqlValue[]): Row[];
  run(...params: SqlValue[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  iterate(...params: SqlValue[]): IterableIterator<Row>;
}

/** An open index database of either backend. */
export interface Database {
  prepare(sql: string): Statement;
  /** Runs one or more statements without parameters (DDL, BEGIN/COMMIT/ROLLBACK, DELETE …). */
  exec(sql: string): void;
  close(): void;
  /** False once closed. */
  readonly isOpen: boolean;
}

/** Which backend a database is: a few statements (catalog, schema version) differ. */
export type Backend = "sqlite" | "postgres";

/** Implemented by the PostgreSQL backend; SQLite's `DatabaseSync` lacks it. */
interface Tagged {
  readonly backend?: Backend;
}

export function backendOf(db: Database): Backend {
  return (db as Tagged).backend ?? "sqlite";
}

/** Whether `location` names a PostgreSQL database (`postgres://…` or `postgresql://…`) rather than an SQLite file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * A PostgreSQL URL with its password replaced by `***`, for messages and logs (the password
 * itself is better given through `PGPASSWORD` or `~/.pgpass`, which the client reads).
 */
export function redactUrl(location: string): string {
  if (!isPostgresUrl(location)) return location;
  try {
    const url = new URL(location);
    if (url.password !== "") url.password = "***";
    return url.toString();
  } catch {
    return "postgresql://(unparsable URL)";
  }
}

/** Whether the index has this table (an index of an older version opened read-only may not). */
export function hasTable(db: Database, name: string): boolean {
  const sql =
    backendOf(db) === "postgres"
      ? "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
      : "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?";
  return db.prepare(sql).get(name) !== undefined;
}

/**
 * Runs `fn` in one transaction: committed when it returns, rolled back when it throws (the error
 * goes on). `fn` may await, as the indexer does between the logs of a page; nothing else may
 * write to `db` meanwhile.
 */
export async function inTransaction<T>(db: Database, fn: () => T | Promise<T>): Promise<T> {
  db.exec("BEGIN");
  try {
    const result = await fn();
    db.exec("COMMIT");
    return result;
  } catch (e) {
    db.exec("ROLLBACK");
    throw e;
  }
}

/** A column of a row as a number (SQLite gives numbers, or bigints for large integers). */
export const num = (v: unknown): number => Number(v);
/** A nullable column as a number or null. */
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** Reads one meta value. */
export function getMeta(db: Database, key: string): string | undefined {
  const row = db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
  return row?.value;
}

export function setMeta(db: Database, key: string, value: string): void {
  db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(key, value);
}

/** The error for a database that cannot be opened or read; `retryable` when a server may come back. */
export function unavailable(location: string, cause: unknown): PrepaidLedgerError {
  return new PrepaidLedgerError("INDEX_UNAVAILABLE", "the index database server cannot be reached or refused the connection", {
    details: { db: redactUrl(location), reason: cause instanceof Error ? cause.message : String(cause) },
    cause,
    retryable: true,
  });
}
