/**
 * Opening the index: an SQLite file (created, or upgraded in place from versions 1 to 5) or a
 * PostgreSQL schema (created at this version), checked against {@link SCHEMA_VERSION}. The
 * tables are in src/indexer/schema.ts.
 */
import { closeSync, existsSync, openSync, readSync, rmSync, statSync } from "node:fs";

import { PrepaidLedgerError } from "../errors.js";
import { loadSqlite } from "../sqlite.js";
import {
  CUSTODY_DDL,
  DDL,
  PROFILE_DDL,
  PROTECTION_DDL,
  RECORDER_DDL,
  REORG_DDL,
  SCHEMA_VERSION,
  SETTLEMENT_COLUMNS,
  SETTLEMENT_INDEX,
  TABLES,
} from "./schema.js";
import { type Database, hasTable, isPostgresUrl, num, redactUrl, setMeta } from "./store/database.js";
import { postgresDdl } from "./store/dialect.js";
import { PostgresDatabase } from "./store/postgres.js";

const SQLITE_MAGIC = "SQLite format 3\0";

export interface OpenIndexOptions {
  /** Open an existing index only (the report commands), never create one. */
  mustExist?: boolean;
  readOnly?: boolean;
}

/**
 * Opens (or creates) the index at `location` — an SQLite file's path, or a PostgreSQL URL
 * (`postgresql://user@host:port/database`) — and checks its schema version.
 *
 * @throws PrepaidLedgerError `INDEX_CORRUPT` if the file or database is not an index of this version;
 *   `INVALID_ARGUMENT` if the path is a directory, or if `mustExist` and there is no index;
 *   `INDEX_UNAVAILABLE` (retryable) if the PostgreSQL server cannot be reached
 */
export function openIndex(location: string, options: OpenIndexOptions = {}): Database {
  return isPostgresUrl(location) ? openPostgresIndex(location, options) : openSqliteIndex(location, options);
}

/** Whether there is an index at `location` (an SQLite file, or the tables of one in a PostgreSQL schema). */
export function indexExists(location: string): boolean {
  if (!isPostgresUrl(location)) return existsSync(location);
  const db = PostgresDatabase.connect(location, { readOnly: true });
  try {
    return hasTable(db, "index_schema");
  } finally {
    db.close();
  }
}

/**
 * Removes the index at `location`: the SQLite file (and its WAL), or the index's tables in the
 * PostgreSQL schema (nothing else there). For a first sync that failed before it stored anything useful.
 */
export function removeIndex(location: string): void {
  if (!isPostgresUrl(location)) {
    for (const suffix of ["", "-wal", "-shm"]) rmSync(location + suffix, { force: true });
    return;
  }
  const db = PostgresDatabase.connect(location);
  try {
    db.exec(`DROP TABLE IF EXISTS ${[...TABLES, "recent_blocks", "undo_log", "index_schema"].join(", ")}`);
  } finally {
    db.close();
  }
}

/** The version of an index on PostgreSQL, in a table of its own (SQLite keeps it in `PRAGMA user_version`). */
const POSTGRES_VERSION_DDL = "CREATE TABLE IF NOT EXISTS index_schema (version INTEGER NOT NULL)";

/**
 * Opens (or creates) the index in a PostgreSQL database, in the connection's current schema
 * (`search_path`; choose another with `?options=-c%20search_path%3Dname`). Indexes on
 * PostgreSQL start at this schema version: there is no older one to upgrade.
 */
function openPostgresIndex(url: string, options: OpenIndexOptions): Database {
  const details = { db: redactUrl(url) };
  const db = PostgresDatabase.connect(url, { readOnly: options.readOnly });
  try {
    const versioned = hasTable(db, "index_schema");
    if (!versioned && hasTable(db, "meta")) {
      throw new PrepaidLedgerError("INDEX_CORRUPT", "the database holds a table `meta` but is not a prepaid-ledger index", { details });
    }
    if (!versioned) {
      if (options.mustExist || options.readOnly) {
        throw new PrepaidLedgerError("INVALID_ARGUMENT", "no index in this database: run `prepaid sync` first", { details });
      }
      db.exec("BEGIN");
      try {
        // Two processes creating the same index at once: the second waits, then finds it made.
        db.exec("SELECT pg_advisory_xact_lock(7243113)");
        if (!hasTable(db, "index_schema")) {
          db.exec(postgresDdl(DDL));
          db.exec(postgresDdl(POSTGRES_VERSION_DDL));
          db.exec(`INSERT INTO index_schema (version) VALUES (${SCHEMA_VERSION})`);
        }
        db.exec("COMMIT");
      } catch (e) {
        db.exec("ROLLBACK");
        throw e;
      }
    }
    const row = db.prepare("SELECT max(version) AS v FROM index_schema").get() as { v: number | null } | undefined;
    const version = num(row?.v ?? 0);
    if (version !== SCHEMA_VERSION) {
      throw new PrepaidLedgerError("INDEX_CORRUPT", "the database is not a prepaid-ledger index of this version", {
        details: { ...details, schemaVersion: version, expected: SCHEMA_VERSION },
      });
    }
  } catch (e) {
    db.close();
    if (e instanceof PrepaidLedgerError) throw e;
    throw new PrepaidLedgerError("INDEX_CORRUPT", "the index database cannot be read", { details, cause: e });
  }
  return db;
}

function openSqliteIndex(path: string, options: OpenIndexOptions): Database {
  const exists = path !== ":memory:" && existsSync(path);
  if (exists && statSync(path).isDirectory()) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "the index path is a directory, not a file: give a file name (for example prepaid-index.sqlite)", {
      details: { path },
    });
  }
  if (options.mustExist && !exists) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "no index database at this path: run `prepaid sync` first", {
      details: { path },
    });
  }
  if (exists) {
    const head = readHead(path);
    if (head.length > 0 && head !== SQLITE_MAGIC) {
      throw new PrepaidLedgerError("INDEX_CORRUPT", "the file is not an SQLite database", { details: { path } });
    }
  }
  const { DatabaseSync } = loadSqlite();
  let db: InstanceType<typeof DatabaseSync>;
  try {
    db = new DatabaseSync(path, { readOnly: options.readOnly ?? false });
  } catch (e) {
    throw new PrepaidLedgerError("INDEX_CORRUPT", "the index database cannot be opened", { details: { path }, cause: e });
  }
  try {
    if (!options.readOnly) {
      // WAL: readers (the dashboard) never wait for the writer. A checkpoint every 16k pages
      // (64 MB) rather than 1k: the indexer commits once a page of logs, and checkpointing is
      // most of a commit's cost at a million records.
      db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 16384;");
    }
    db.exec("PRAGMA busy_timeout = 5000;");
    const version = Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
    const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
    if (version === 0 && tables === 0) {
      if (options.readOnly) {
        throw new PrepaidLedgerError("INDEX_CORRUPT", "the database is empty: run `prepaid sync` first", { details: { path } });
      }
      db.exec("BEGIN");
      db.exec(DDL);
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      db.exec("COMMIT");
    } else if (version >= 1 && version < SCHEMA_VERSION && !options.readOnly) {
      upgrade(db, version);
    } else if (version !== SCHEMA_VERSION && !(version >= 1 && version < SCHEMA_VERSION && options.readOnly)) {
      throw new PrepaidLedgerError("INDEX_CORRUPT", "the database is not a prepaid-ledger index of this version", {
        details: { path, schemaVersion: version, expected: SCHEMA_VERSION },
      });
    }
  } catch (e) {
    db.close();
    if (e instanceof PrepaidLedgerError) throw e;
    throw new PrepaidLedgerError("INDEX_CORRUPT", "the index database cannot be read", { details: { path }, cause: e });
  }
  return db;
}

/**
 * Upgrades an index of version 1 to 5 in place, in one transaction (all or nothing): adds the
 * tables of the later versions, empty, and version 5's NULL columns of `records`. The profiles of
 * blocks already read are not in them: meta `profiles_from_block` says from which block on they are. The recorder events of blocks already read are not in
 * them: meta `recorders_from_block` says from which block on they are. The custody events are
 * read again by the next sync (no meta `custody_read` yet: src/indexer/indexer.ts).
 */
function upgrade(db: Database, version: number): void {
  db.exec("BEGIN");
  try {
    if (version === 1) db.exec(REORG_DDL);
    if (version <= 2) {
      db.exec(RECORDER_DDL);
      const s = db.prepare("SELECT settled_block FROM sync_state WHERE id = 1").get() as { settled_block: number } | undefined;
      if (s !== undefined) setMeta(db, "recorders_from_block", String(Number(s.settled_block) + 1));
    }
    if (version <= 3) db.exec(CUSTODY_DDL);
    db.exec(PROTECTION_DDL);
    db.exec(PROFILE_DDL);
    const settled = db.prepare("SELECT settled_block FROM sync_state WHERE id = 1").get() as { settled_block: number } | undefined;
    if (settled !== undefined) setMeta(db, "profiles_from_block", String(Number(settled.settled_block) + 1));
    // Only the columns it lacks (a test may make an "old" index by resetting user_version alone).
    const has = new Set((db.prepare("PRAGMA table_info(records)").all() as { name: string }[]).map((c) => c.name));
    for (const column of SETTLEMENT_COLUMNS) if (!has.has(column.split(" ")[0])) db.exec(`ALTER TABLE records ADD COLUMN ${column}`);
    db.exec(SETTLEMENT_INDEX);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (e) {
    db.exec("ROLLBACK");
    throw e;
  }
}

/** The first 16 bytes of a file (an SQLite file starts with its magic string). */
function readHead(path: string): string {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(16);
    return buf.subarray(0, readSync(fd, buf, 0, 16, 0)).toString("latin1");
  } finally {
    closeSync(fd);
  }
}
