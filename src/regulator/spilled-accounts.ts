/**
 * The reader's account books with memory that does not grow with the number of cards: the most
 * recently used accounts in memory, the others spilled to a scratch SQLite file that is made only
 * when the first account must leave memory (a ledger with fewer cards than the limit never
 * touches the disk) and removed by {@link SpilledAccounts.close}. The indexer does the same over
 * its own `accounts` table (src/indexer/account-cache.ts); the reader has no table of its own,
 * so it writes a temporary one (docs/ARCHITECTURE.md, "Memory").
 *
 * A filter of the keys written (1 MiB) answers most misses, such as a card's opening, without
 * reading the file.
 *
 * When accounts leave memory: inside `get` and `set`, never the account just returned or stored.
 * That is safe because {@link Books.apply} — the only caller that changes accounts, for records
 * and for settlements alike — asks for one account per record and changes that one object in
 * place before its next call: an account held by the caller is always the most recently used,
 * and one that leaves memory is written out with every change made to it. A caller that held two
 * accounts across a call would need the indexer's way instead (drop accounts only at a `trim()`
 * between pages); `test/regulator/spilled-accounts.test.ts` holds Books over this store to Books
 * over a Map with 1 to 5 accounts in memory.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";

import { PrepaidLedgerError } from "../errors.js";
import { loadSqlite } from "../sqlite.js";
import { type AccountBooksRow, type AccountState, type AccountStore, accountFromRow, splitAccountKey, touchRecent } from "./books.js";

/**
 * Accounts kept in memory by default. Larger than the indexer's (src/indexer/account-cache.ts):
 * the reader has no table behind its cache, so a card that leaves memory is written to the
 * scratch file, and a ledger of up to this many cards never touches the disk. About 1.4 kB of
 * peak memory a cached card (440 MB against 300 MB with 20,000, verifying a million records over
 * 333,000 cards; docs/BENCHMARKS.md).
 */
export const DEFAULT_ACCOUNT_CACHE = 100_000;

/** Rows read from the scratch file at a time by {@link SpilledAccounts.ordered}. */
const ORDERED_PAGE = 1_024;

/** Bits in the filter of spilled keys: 2^23, 1 MiB whatever the number of cards. */
const FILTER_BITS = 1 << 23;

/** The largest value SQLite's INTEGER holds; a larger total is stored as its decimal text. */
const INT64_MAX = 2n ** 63n - 1n;

const COLUMNS = "merchant_id, account, record_count, initial_amount, topped_up, consumed, refunded";

interface AccountRow extends AccountBooksRow {
  merchant_id: bigint;
  account: string;
}

/** The scratch file and its statements, made at the first spill. */
interface Scratch {
  directory: string;
  db: DatabaseSync;
  upsert: StatementSync;
  select: StatementSync;
  exists: StatementSync;
  after: StatementSync;
}

/**
 * An {@link AccountStore} holding at most `limit` accounts in memory (least recently used leave
 * first) and the rest in a scratch SQLite file. An object returned by `get`, or given to `set`,
 * stays the store's copy only until the next `get` or `set`: change it before then (as Books does).
 *
 * ```ts
 * const accounts = new SpilledAccounts(100_000);
 * try {
 *   const replay = new LedgerReplay(config, start, undefined, undefined, accounts);
 *   // … feed it logs …
 *   for (const a of accounts.ordered()) compare(a);
 * } finally {
 *   accounts.close();
 * }
 * ```
 */
export class SpilledAccounts implements AccountStore {
  /** In memory, least recently used first (a Map keeps insertion order). */
  private readonly cache = new Map<string, AccountState>();
  private scratch: Scratch | undefined;
  /**
   * A Bloom filter of every key written to the scratch file (two bits a key), made with it: a
   * miss on a key it does not hold, such as every card's opening, is answered without a read.
   * At a million spilled cards about one opening in twenty still reads the file; at several
   * millions more of them do. It never turns away a key that was written.
   */
  private written: Uint32Array | undefined;
  /** Distinct accounts stored, in memory and spilled. */
  private count = 0;
  /** The key of the last `get` that found nothing anywhere: a `set` of it opens an account. */
  private absent: string | undefined;
  private closed = false;
  /** Accounts written to the scratch file when they left memory. */
  spills = 0;
  /** Accounts read back from the scratch file by `get`. */
  loads = 0;
  /** Lookups of a key in the scratch file (keys the filter may hold); found or not. */
  lookups = 0;

  /**
   * @param limit - accounts kept in memory, a whole number >= 1 (default {@link DEFAULT_ACCOUNT_CACHE})
   * @throws PrepaidLedgerError `INVALID_ARGUMENT` for any other limit
   */
  constructor(readonly limit = DEFAULT_ACCOUNT_CACHE) {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "the account cache limit must be a whole number >= 1", { details: { limit } });
    }
  }

  /** Distinct accounts stored, in memory and in the scratch file. */
  get size(): number {
    return this.count;
  }

  /** The scratch file's private directory while it exists (made at the first spill, removed by close()). */
  get directory(): string | undefined {
    return this.scratch?.directory;
  }

  get(key: string): AccountState | undefined {
    const cached = touchRecent(this.cache, key);
    if (cached !== undefined) return cached;
    const row = this.mayBeWritten(key) ? (this.scratch!.select.get(...splitAccountKey(key)) as AccountRow | undefined) : undefined;
    if (row === undefined) {
      this.absent = key;
      return undefined;
    }
    const a = fromScratch(row);
    this.loads++;
    this.cache.set(key, a);
    this.spillBeyondLimit();
    return a;
  }

  set(key: string, account: AccountState): void {
    if (this.closed) throw new PrepaidLedgerError("INVALID_ARGUMENT", "the account store is closed");
    if (this.cache.has(key)) {
      this.cache.delete(key);
    } else if (!this.mayBeWritten(key) || key === this.absent || this.scratch!.exists.get(...splitAccountKey(key)) === undefined) {
      this.count++;
    }
    this.absent = undefined;
    this.cache.set(key, account);
    this.spillBeyondLimit();
  }

  /**
   * Every account once, by merchant id then account (the order of the supervisors' state digest),
   * a page at a time: memory holds at most the cache and one page. The accounts yielded from the
   * scratch file are copies: read them, do not change them. Do not `get` or `set` while iterating.
   */
  *ordered(pageSize = ORDERED_PAGE): Generator<AccountState> {
    if (this.scratch === undefined) {
      yield* [...this.cache.values()].sort(byMerchantThenAccount);
      return;
    }
    const { after } = this.scratch;
    this.write([...this.cache]);
    // Keyset paging: each page is a query of its own, so no statement stays open between pages
    // (the caller awaits the contract between them). Merchant ids are >= 0.
    let last: { merchant_id: bigint; account: string } = { merchant_id: -1n, account: "" };
    for (;;) {
      const page = after.all(last.merchant_id, last.account, pageSize) as unknown as AccountRow[];
      for (const row of page) yield fromScratch(row);
      if (page.length < pageSize) return;
      last = page[page.length - 1]!;
    }
  }

  /**
   * Drops every account and removes the scratch file and its directory. Safe to call twice; the
   * store takes no account after it.
   */
  close(): void {
    this.closed = true;
    this.cache.clear();
    this.count = 0;
    this.absent = undefined;
    const scratch = this.scratch;
    this.scratch = undefined;
    this.written = undefined;
    if (scratch === undefined) return;
    try {
      scratch.db.close();
    } finally {
      rmSync(scratch.directory, { recursive: true, force: true });
    }
  }

  /**
   * Writes the least recently used accounts to the scratch file once the cache is over its
   * limit: a sixteenth of the limit at a time, in one transaction, so the cost of a commit is
   * shared. The most recently used account (the one the caller holds) always stays.
   */
  private spillBeyondLimit(): void {
    if (this.cache.size <= this.limit) return;
    const keep = Math.max(1, this.limit - Math.ceil(this.limit / 16));
    const leaving: string[] = [];
    for (const key of this.cache.keys()) {
      if (this.cache.size - leaving.length <= keep) break;
      leaving.push(key);
    }
    // Written before they leave memory: a failed write loses nothing (the read fails with it).
    this.write(leaving.map((key) => [key, this.cache.get(key)!]));
    for (const key of leaving) this.cache.delete(key);
    this.spills += leaving.length;
  }

  /** Upserts `accounts` into the scratch file (made now if it does not exist), in one transaction. */
  private write(accounts: [key: string, account: AccountState][]): void {
    const { db, upsert } = (this.scratch ??= openScratch());
    const written = (this.written ??= new Uint32Array(FILTER_BITS / 32));
    db.exec("BEGIN");
    try {
      for (const [key, a] of accounts) {
        upsert.run(a.merchantId, a.account, a.recordCount, sqlAmount(a.initialAmount), sqlAmount(a.toppedUp), sqlAmount(a.consumed), sqlAmount(a.refunded));
        for (const bit of filterBits(key)) written[bit >>> 5]! |= 1 << (bit & 31);
      }
      db.exec("COMMIT");
    } catch (e) {
      db.exec("ROLLBACK");
      throw e;
    }
  }

  /** Whether `key` may be in the scratch file (false: it is not); true counts the lookup the caller then makes. */
  private mayBeWritten(key: string): boolean {
    const written = this.written;
    if (written === undefined) return false;
    for (const bit of filterBits(key)) if ((written[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    this.lookups++;
    return true;
  }
}

/** Accounts in the order of {@link SpilledAccounts.ordered}: SQLite's for (INTEGER, TEXT). */
export const byMerchantThenAccount = (a: AccountState, b: AccountState): number =>
  a.merchantId !== b.merchantId ? a.merchantId - b.merchantId : a.account < b.account ? -1 : a.account > b.account ? 1 : 0;

/** The scratch file in a new private directory under the system's temporary one. */
function openScratch(): Scratch {
  const directory = mkdtempSync(join(tmpdir(), "prepaid-reader-accounts-"));
  try {
    const db = new (loadSqlite().DatabaseSync)(join(directory, "accounts.sqlite"));
    // A scratch file read back by this process only: the rollback journal in memory (a failed
    // write still rolls back), no syncs.
    db.exec("PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY;");
    // Amount columns without a type keep what they are given: an INTEGER, or for a total beyond
    // int64 (a tampered ledger's) its text, which an INTEGER column would turn into a lossy REAL.
    db.exec(
      "CREATE TABLE accounts (merchant_id INTEGER NOT NULL, account TEXT NOT NULL, record_count INTEGER NOT NULL, " +
        "initial_amount NOT NULL, topped_up NOT NULL, consumed NOT NULL, refunded NOT NULL, PRIMARY KEY (merchant_id, account)) WITHOUT ROWID",
    );
    const prepare = (sql: string) => {
      const statement = db.prepare(sql);
      statement.setReadBigInts(true); // amounts beyond 2^53 read back exactly
      return statement;
    };
    return {
      directory,
      db,
      upsert: prepare(`INSERT OR REPLACE INTO accounts (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`),
      select: prepare(`SELECT ${COLUMNS} FROM accounts WHERE merchant_id = ? AND account = ?`),
      exists: prepare("SELECT 1 FROM accounts WHERE merchant_id = ? AND account = ?"),
      after: prepare(`SELECT ${COLUMNS} FROM accounts WHERE (merchant_id, account) > (?, ?) ORDER BY merchant_id, account LIMIT ?`),
    };
  } catch (e) {
    rmSync(directory, { recursive: true, force: true });
    throw e;
  }
}

/** The key's two bits in the filter: the low and the high 23 bits of two 32-bit hashes (FNV-1a, then mixed). */
function filterBits(key: string): [number, number] {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  const mixed = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return [h & (FILTER_BITS - 1), (mixed ^ (mixed >>> 12)) >>> 9];
}

const sqlAmount = (x: bigint): bigint | string => (x <= INT64_MAX ? x : x.toString());

/** An account from its scratch-file row, which also holds its merchant id and account. */
const fromScratch = (row: AccountRow): AccountState => accountFromRow(Number(row.merchant_id), row.account, row);
