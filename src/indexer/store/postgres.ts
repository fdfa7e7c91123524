/**
 * The index on PostgreSQL, for a team sharing one index (several analysts, the dashboard,
 * exports), through the same synchronous statement API as SQLite ({@link Database}).
 *
 * The index code is synchronous, as `node:sqlite` is; node-postgres is asynchronous. So the
 * connection lives in a worker thread (src/indexer/store/postgres-worker.ts) and each statement
 * is one request to it: the calling thread posts the statement and blocks on an `Atomics.wait`
 * until the answer is there — as it blocks on the disk with SQLite. One connection per
 * `Database`, so a transaction (`BEGIN` … `COMMIT`) is simply the statements between them.
 * Statements are translated once (src/indexer/store/dialect.ts) and prepared by name on the
 * server, so a statement run a million times is parsed once.
 */
import { createRequire } from "node:module";
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from "node:worker_threads";

import { PrepaidLedgerError } from "../../errors.js";
import { type Database, type Row, type SqlValue, type Statement, redactUrl, unavailable } from "./database.js";
import { toPostgres } from "./dialect.js";
import { WORKER_SOURCE } from "./postgres-worker.js";

/** How long one statement may take before the caller gets `TIMEOUT` (a whole sync page's write is far less). */
const STATEMENT_TIMEOUT_MS = 10 * 60_000;
/** How long connecting may take. */
const CONNECT_TIMEOUT_MS = 10_000;

interface Answer {
  rows?: Row[];
  changes?: number;
  counts?: number[];
  error?: { message: string; code?: string; detail?: string; index?: number };
}

/**
 * How long the answer may take to be readable after the worker's signal. The worker posts it
 * before it signals, so it is normally there at once; twice, in 3,000,000-record benches on a
 * loaded 2-core machine, it was not, and the sync failed with `INDEX_UNAVAILABLE`.
 */
const ANSWER_GRACE_MS = 10_000;

/**
 * The message on `port`, waiting up to `graceMs` (in 1 ms sleeps of this thread) for it to be
 * readable; undefined if none comes. @internal
 */
export function takeAnswer<T = Answer>(port: MessagePort, graceMs: number): T | undefined {
  let received = receiveMessageOnPort(port);
  if (received === undefined) {
    const nap = new Int32Array(new SharedArrayBuffer(4));
    for (const until = Date.now() + graceMs; received === undefined && Date.now() < until; ) {
      Atomics.wait(nap, 0, 0, 1);
      received = receiveMessageOnPort(port);
    }
  }
  return received?.message as T | undefined;
}

/** Writes held back within a transaction before they are sent together (one round trip to the worker). */
const MAX_DEFERRED = 512;

export interface PostgresOptions {
  /** Every transaction read-only (`default_transaction_read_only`): the report commands and the dashboard. */
  readOnly?: boolean;
}

export class PostgresDatabase implements Database {
  readonly backend = "postgres" as const;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly shared = new Int32Array(new SharedArrayBuffer(4));
  private readonly statements = new Map<string, Statement>();
  private closed = false;
  /** Between BEGIN and COMMIT/ROLLBACK: writes are deferred, sent in batches. */
  private inTransaction = false;
  private deferred: { sql: string; params: SqlValue[]; result: { changes: number } }[] = [];

  private constructor(private readonly url: string) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const pgPath = createRequire(import.meta.url).resolve("pg");
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { port: port2, shared: this.shared, pgPath }, transferList: [port2] });
    this.worker.unref(); // an index left open never keeps the process alive
    this.port.unref();
  }

  /**
   * Connects to `url` (`postgresql://user@host:port/database`, libpq's URL; the password is best
   * given by `PGPASSWORD` or `~/.pgpass`, which are read as by `psql`).
   *
   * @throws PrepaidLedgerError `INDEX_UNAVAILABLE` (retryable) if the server cannot be reached or refuses
   */
  static connect(url: string, options: PostgresOptions = {}): PostgresDatabase {
    const db = new PostgresDatabase(url);
    try {
      db.call({ op: "connect", url, readOnly: options.readOnly ?? false, connectTimeoutMs: CONNECT_TIMEOUT_MS });
    } catch (e) {
      db.terminate();
      throw e instanceof PrepaidLedgerError && e.code === "INDEX_UNAVAILABLE" ? e : unavailable(url, e);
    }
    return db;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  prepare(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = new PostgresStatement(this, toPostgres(sql));
      this.statements.set(sql, statement);
    }
    return statement;
  }

  exec(sql: string): void {
    const translated = toPostgres(sql);
    const word = translated.trim().split(/\s+/)[0]!.toUpperCase();
    if (word === "ROLLBACK") this.deferred = []; // they would be rolled back with the rest
    try {
      this.call({ op: "exec", sql: translated });
    } finally {
      // A failed COMMIT ends the transaction too (PostgreSQL rolls it back; a write held back
      // that fails leaves it aborted, and the caller's ROLLBACK ends it).
      if (word === "COMMIT" || word === "ROLLBACK" || word === "END") this.inTransaction = false;
    }
    if (word === "BEGIN") this.inTransaction = true;
  }

  /**
   * A write: within a transaction it is held back and sent with the next ones (its `changes` is
   * known once they are sent: reading it sends them); outside one, sent at once.
   * @internal
   */
  write(sql: string, params: SqlValue[]): { changes: number; lastInsertRowid: number } {
    if (!this.inTransaction) return { changes: this.call({ op: "query", sql, params, run: true }).changes ?? 0, lastInsertRowid: 0 };
    const result = { changes: 0 };
    this.deferred.push({ sql, params, result });
    if (this.deferred.length >= MAX_DEFERRED) this.flush();
    const flush = () => this.flush();
    return {
      get changes() {
        flush();
        return result.changes;
      },
      lastInsertRowid: 0,
    };
  }

  /** Sends the writes held back, in order; the first that fails is thrown (the transaction is then aborted). */
  private flush(): void {
    if (this.deferred.length === 0) return;
    const items = this.deferred;
    this.deferred = [];
    const answer = this.send({ op: "batch", items: items.map(({ sql, params }) => ({ sql, params })) });
    if (answer.error !== undefined) {
      const failed = items[answer.error.index ?? 0];
      throw postgresError(this.url, { op: "query", sql: failed?.sql }, answer.error);
    }
    answer.counts?.forEach((n, i) => (items[i]!.result.changes = n));
  }

  close(): void {
    if (this.closed) return;
    try {
      this.call({ op: "close" });
    } finally {
      this.terminate();
    }
  }

  /** Sends the writes held back, then one request, and blocks until the worker answers it. @internal */
  call(request: Record<string, unknown>): Answer {
    if (!this.closed) this.flush();
    const answer = this.send(request);
    if (answer.error !== undefined) throw postgresError(this.url, request, answer.error);
    return answer;
  }

  /** Posts one request and blocks until the worker answers it (errors are in the answer). */
  private send(request: Record<string, unknown>): Answer {
    if (this.closed) throw new PrepaidLedgerError("INVALID_ARGUMENT", "the index database is closed", { details: { db: redactUrl(this.url) } });
    Atomics.store(this.shared, 0, 0);
    this.port.postMessage(request);
    if (Atomics.wait(this.shared, 0, 0, STATEMENT_TIMEOUT_MS) === "timed-out") {
      this.terminate();
      throw new PrepaidLedgerError("TIMEOUT", "the index database did not answer in time; the connection is closed", {
        details: { db: redactUrl(this.url), timeoutMs: STATEMENT_TIMEOUT_MS },
        retryable: true,
      });
    }
    const answer = takeAnswer(this.port, ANSWER_GRACE_MS);
    if (answer === undefined) {
      this.terminate(); // its answer, if it ever comes, would be taken for the next request's
      throw unavailable(this.url, new Error(`the connection's thread gave no answer within ${ANSWER_GRACE_MS} ms of its signal`));
    }
    return answer;
  }

  private terminate(): void {
    this.closed = true;
    this.port.close();
    void this.worker.terminate();
  }
}

class PostgresStatement implements Statement {
  constructor(
    private readonly db: PostgresDatabase,
    private readonly sql: string,
  ) {}

  get(...params: SqlValue[]): Row | undefined {
    return this.rows(params)[0];
  }

  all(...params: SqlValue[]): Row[] {
    return this.rows(params);
  }

  run(...params: SqlValue[]): { changes: number; lastInsertRowid: number } {
    return this.db.write(this.sql, params);
  }

  /** The rows, read whole: the index iterates only small tables, and digests in tests. */
  iterate(...params: SqlValue[]): IterableIterator<Row> {
    return this.rows(params)[Symbol.iterator]();
  }

  private rows(params: SqlValue[]): Row[] {
    return this.db.call({ op: "query", sql: this.sql, params, run: false }).rows ?? [];
  }
}

/**
 * A failed statement. Connection failures (SQLSTATE class 08, 57P, a socket error such as ECONNRESET, or none) are
 * `INDEX_UNAVAILABLE`; the others are thrown as SQLite's are, an `Error` whose `code` is the
 * SQLSTATE (23505: a unique key taken), for the callers that tell them apart.
 */
function postgresError(url: string, request: Record<string, unknown>, error: NonNullable<Answer["error"]>): Error {
  const code = error.code;
  if (request.op === "connect" || code === undefined || /^E[A-Z]/.test(code) || code.startsWith("08") || code.startsWith("57P")) {
    return unavailable(url, new Error(error.message));
  }
  return Object.assign(new Error(`PostgreSQL: ${error.message}${error.detail ? ` (${error.detail})` : ""}`), { code, sql: request.sql });
}
