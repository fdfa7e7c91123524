/**
 * The dashboard's auth file: one SQLite file (node:sqlite, as the index), separate from the index
 * so the index's schema and the people who may read it change independently. It holds
 *
 *   accounts   name, role, scrypt hash (password.ts)
 *   sessions   one row per signed-in browser: the SHA-256 of its cookie's token (a copy of this
 *              file opens no session), its CSRF token, when it started and was last used
 *   audit      append-only: sign-ins and their failures, sign-outs, expiries, every page and API
 *              request of a signed-in account (with the merchant, card and record it names), and
 *              account changes made with `prepaid users`
 *
 * Sessions live here rather than in signed stateless cookies so that signing out, removing an
 * account or changing its password ends its sessions at once, and the idle timeout is enforced
 * by the server, not by a cookie the browser keeps.
 */
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, statSync } from "node:fs";
import type { DatabaseSync } from "node:sqlite";

import { PrepaidLedgerError } from "../../errors.js";
import { loadSqlite } from "../../sqlite.js";

/** Who may do what: an analyst reads every dashboard page; an auditor also reads the audit log. */
export const ROLES = {
  analyst: "reads every page and the JSON API of the dashboard",
  auditor: "what an analyst reads, and the audit log (/audit, `prepaid audit`)",
} as const;
export type Role = keyof typeof ROLES;

/** The auth file when neither `--auth` nor the config file names one. */
export const DEFAULT_AUTH_FILE = "prepaid-auth.sqlite";
const SCHEMA_VERSION = 1;
/** A session's last use is written when it is at least this old (ms): the idle timeout's resolution. */
const TOUCH_MS = 5_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

const DDL = `
CREATE TABLE accounts (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL CHECK (role IN ('analyst', 'auditor')),
  password TEXT NOT NULL,
  created INTEGER NOT NULL,
  password_changed INTEGER NOT NULL
);
CREATE TABLE sessions (
  token_hash TEXT PRIMARY KEY,
  account TEXT NOT NULL,
  csrf TEXT NOT NULL,
  created INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  client TEXT NOT NULL
);
CREATE INDEX sessions_account ON sessions (account);
CREATE TABLE audit (
  id INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  event TEXT NOT NULL,
  account TEXT,
  client TEXT,
  method TEXT,
  path TEXT,
  merchant INTEGER,
  card TEXT,
  record INTEGER,
  status INTEGER,
  detail TEXT
);
CREATE INDEX audit_event_time ON audit (event, time);
CREATE INDEX audit_account_time ON audit (account, time);
CREATE INDEX audit_merchant ON audit (merchant, id);
`;

export interface Account {
  name: string;
  role: Role;
  /** Unix milliseconds. */
  created: number;
  passwordChanged: number;
}

export interface Session {
  account: string;
  role: Role;
  csrf: string;
  created: number;
  lastSeen: number;
}

/** How long a session lasts: since its last request, and at most since it started (milliseconds). */
export interface SessionLimits {
  idleMs: number;
  maxMs: number;
}

/** What the audit log records. */
export type AuditEvent =
  | "view"
  | "signin"
  | "signin-failed"
  | "signin-limited"
  | "signout"
  | "session-expired"
  | "csrf-refused"
  | "account-added"
  | "account-removed"
  | "password-changed";

export interface AuditEntry {
  event: AuditEvent;
  account?: string | null;
  client?: string | null;
  method?: string | null;
  path?: string | null;
  merchant?: number | null;
  card?: string | null;
  record?: number | null;
  status?: number | null;
  detail?: string | null;
}

export interface AuditRow extends Required<AuditEntry> {
  id: number;
  /** Unix milliseconds. */
  time: number;
}

/** Which audit rows to read, newest first. */
export interface AuditFilter {
  account?: string;
  merchant?: number;
  card?: string;
  event?: AuditEvent;
  /** Only rows with an id below this one (the next page). */
  beforeId?: number;
  /** At most this many rows (default 100). */
  limit?: number;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * An account name: 1–64 letters, digits, `.`, `_`, `@`, `-`, starting with a letter or digit.
 * @throws PrepaidLedgerError `INVALID_ARGUMENT`
 */
export function checkAccountName(name: string): string {
  if (!NAME.test(name)) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "an account name has 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", {
      details: { name },
    });
  }
  return name;
}

/**
 * A role name.
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` listing the roles
 */
export function checkRole(role: string): Role {
  if (!Object.hasOwn(ROLES, role)) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", `the role must be one of: ${Object.keys(ROLES).join(", ")}`, { details: { role } });
  }
  return role as Role;
}

/** The accounts, sessions and audit log of one auth file. */
export class AuthStore {
  private constructor(
    private readonly db: DatabaseSync,
    /** The file's absolute path (for messages). */
    readonly path: string,
  ) {}

  /**
   * Opens the auth file; `create` makes it if missing (owner-only permissions).
   * @throws PrepaidLedgerError `INVALID_ARGUMENT` (no file and not `create`), `INVALID_CONFIG`
   *   (not an auth file of this version)
   */
  static open(path: string, options: { create?: boolean } = {}): AuthStore {
    const exists = existsSync(path);
    if (!exists && !options.create) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "no auth file at this path: create an account first with `prepaid users add`", { details: { path } });
    }
    if (exists && statSync(path).isDirectory()) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "the auth path is a directory, not a file", { details: { path } });
    }
    const { DatabaseSync } = loadSqlite();
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path);
      // Password hashes and the audit log: readable by the owner only (SQLite gives its -wal
      // and -shm files the database file's permissions).
      if (!exists && process.platform !== "win32") chmodSync(path, 0o600);
      // WAL with synchronous NORMAL, as the index: a commit is a write to the log, not an fsync, so
      // the audit line of each request costs well under a millisecond. A process crash loses
      // nothing; a power loss may lose the last commits before a checkpoint.
      db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
    } catch (cause) {
      throw new PrepaidLedgerError("INVALID_CONFIG", "the auth file is not an SQLite database", { details: { path }, cause });
    }
    try {
      const version = (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
      const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
      if (version === 0 && tables === 0) {
        db.exec(`BEGIN; ${DDL} PRAGMA user_version = ${SCHEMA_VERSION}; COMMIT;`);
      } else if (version !== SCHEMA_VERSION || !["accounts", "sessions", "audit"].every((t) => hasTable(db, t))) {
        throw new PrepaidLedgerError("INVALID_CONFIG", "the file is not a prepaid-ledger auth file of this version", { details: { path, version } });
      }
    } catch (e) {
      db.close();
      throw e;
    }
    return new AuthStore(db, path);
  }

  close(): void {
    this.db.close();
  }

  // ---- accounts ----

  /** @throws PrepaidLedgerError `INVALID_ARGUMENT` if the name is taken or malformed */
  addAccount(name: string, role: Role, passwordHash: string, now: number): void {
    checkAccountName(name);
    if (this.account(name) !== undefined) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "an account with this name exists already (change its password with `prepaid users passwd`)", { details: { name } });
    }
    this.db.prepare("INSERT INTO accounts (name, role, password, created, password_changed) VALUES (?, ?, ?, ?, ?)").run(name, checkRole(role), passwordHash, now, now);
  }

  /** Replaces the password hash and ends the account's sessions. @throws PrepaidLedgerError `NOT_FOUND` */
  setPassword(name: string, passwordHash: string, now: number): void {
    this.mustExist(name);
    this.db.prepare("UPDATE accounts SET password = ?, password_changed = ? WHERE name = ?").run(passwordHash, now, name);
    this.endSessionsOf(name);
  }

  /** Removes the account and ends its sessions (its audit rows stay). @throws PrepaidLedgerError `NOT_FOUND` */
  removeAccount(name: string): void {
    this.mustExist(name);
    this.db.prepare("DELETE FROM accounts WHERE name = ?").run(name);
    this.endSessionsOf(name);
  }

  account(name: string): Account | undefined {
    const row = this.db.prepare("SELECT name, role, created, password_changed FROM accounts WHERE name = ?").get(name);
    return row === undefined ? undefined : accountOf(row);
  }

  /** The stored hash of an account's password, or undefined. */
  passwordHash(name: string): string | undefined {
    return (this.db.prepare("SELECT password FROM accounts WHERE name = ?").get(name) as { password: string } | undefined)?.password;
  }

  accounts(): Account[] {
    return this.db.prepare("SELECT name, role, created, password_changed FROM accounts ORDER BY name").all().map(accountOf);
  }

  accountCount(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM accounts").get() as { n: number }).n;
  }

  private mustExist(name: string): void {
    if (this.account(name) === undefined) throw new PrepaidLedgerError("NOT_FOUND", "no account with this name", { details: { name } });
  }

  // ---- sessions ----

  /** Starts a session: the cookie's token (only its hash is stored) and the session's CSRF token. */
  createSession(account: string, now: number, client: string): { token: string; csrf: string } {
    const token = randomBytes(32).toString("base64url");
    const csrf = randomBytes(32).toString("base64url");
    this.db.prepare("INSERT INTO sessions (token_hash, account, csrf, created, last_seen, client) VALUES (?, ?, ?, ?, ?, ?)").run(sha256(token), account, csrf, now, now, client);
    return { token, csrf };
  }

  /**
   * The session of a cookie's token: `active` (and its last use moved to `now`), `expired` (and
   * removed: idle or too old), or `none` (no such token: forged, ended, or its account removed).
   */
  session(token: string, now: number, limits: SessionLimits): { state: "active"; session: Session } | { state: "expired"; account: string } | { state: "none" } {
    const hash = sha256(token);
    const row = this.db
      .prepare("SELECT s.account, a.role, s.csrf, s.created, s.last_seen FROM sessions s JOIN accounts a ON a.name = s.account WHERE s.token_hash = ?")
      .get(hash) as { account: string; role: Role; csrf: string; created: number; last_seen: number } | undefined;
    if (row === undefined) return { state: "none" };
    if (now - row.last_seen > limits.idleMs || now - row.created > limits.maxMs) {
      this.db.prepare("DELETE FROM sessions WHERE token_hash = ?").run(hash);
      return { state: "expired", account: row.account };
    }
    // The idle clock moves at most every few seconds: a page's burst of requests writes once.
    if (now - row.last_seen >= TOUCH_MS) this.db.prepare("UPDATE sessions SET last_seen = ? WHERE token_hash = ?").run(now, hash);
    return { state: "active", session: { account: row.account, role: row.role, csrf: row.csrf, created: row.created, lastSeen: now } };
  }

  endSession(token: string): void {
    this.db.prepare("DELETE FROM sessions WHERE token_hash = ?").run(sha256(token));
  }

  private endSessionsOf(account: string): void {
    this.db.prepare("DELETE FROM sessions WHERE account = ?").run(account);
  }

  /** Removes every session past its limits (run at start; expired sessions are also removed when used). */
  purgeSessions(now: number, limits: SessionLimits): number {
    return Number(this.db.prepare("DELETE FROM sessions WHERE last_seen < ? OR created < ?").run(now - limits.idleMs, now - limits.maxMs).changes);
  }

  // ---- audit ----

  append(entry: AuditEntry, now: number): void {
    this.db
      .prepare("INSERT INTO audit (time, event, account, client, method, path, merchant, card, record, status, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .run(now, entry.event, entry.account ?? null, entry.client ?? null, entry.method ?? null, entry.path ?? null, entry.merchant ?? null, entry.card ?? null, entry.record ?? null, entry.status ?? null, entry.detail ?? null);
  }

  /** Audit rows matching `filter`, newest first. */
  audit(filter: AuditFilter = {}): AuditRow[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const add = (sql: string, value: string | number | undefined) => {
      if (value === undefined) return;
      where.push(sql);
      params.push(value);
    };
    add("account = ?", filter.account);
    add("merchant = ?", filter.merchant);
    add("card = ?", filter.card);
    add("event = ?", filter.event);
    add("id < ?", filter.beforeId);
    const sql = `SELECT * FROM audit ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`;
    return this.db.prepare(sql).all(...params, filter.limit ?? 100) as unknown as AuditRow[];
  }

  /**
   * Failed sign-ins since `since` (ms) for an account (counted after its last successful sign-in)
   * or from a client address, and the time of the oldest of them.
   */
  failures(by: { account: string } | { client: string }, since: number): { count: number; oldest: number | null } {
    const row = (
      "account" in by
        ? this.db
            .prepare(
              `SELECT count(*) AS n, min(time) AS oldest FROM audit WHERE event = 'signin-failed' AND account = ? AND time >= max(?,
                 coalesce((SELECT max(time) FROM audit WHERE event = 'signin' AND account = ?), 0))`,
            )
            .get(by.account, since, by.account)
        : this.db.prepare("SELECT count(*) AS n, min(time) AS oldest FROM audit WHERE event = 'signin-failed' AND client = ? AND time >= ?").get(by.client, since)
    ) as { n: number; oldest: number | null };
    return { count: row.n, oldest: row.oldest };
  }
}

function hasTable(db: DatabaseSync, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

function accountOf(row: unknown): Account {
  const r = row as { name: string; role: Role; created: number; password_changed: number };
  return { name: r.name, role: r.role, created: r.created, passwordChanged: r.password_changed };
}
