/**
 * The indexer's account books: the `accounts` table is the store, and memory holds only a
 * bounded cache of recently used accounts, so a sync's memory does not grow with the number of
 * cards (docs/ARCHITECTURE.md, "Memory").
 *
 * The replay reads an account with `get` (a cache miss reads its row) and changes it in place;
 * the page writer stores every account a page touched at the end of the page (flushBooks), in
 * the page's transaction, and only then calls {@link IndexedAccounts.trim}: an account that
 * changed is never dropped before its row holds the change. A page that fails is rolled back
 * and its writer, with this cache, is thrown away; the next one starts from the table.
 */
import {
  type AccountBooksRow,
  type AccountRef,
  type AccountState,
  type AccountStore,
  accountFromRow,
  accountKey,
  splitAccountKey,
  touchRecent,
} from "../regulator/books.js";

import type { Database, Statement } from "./schema.js";

/**
 * Accounts kept in memory between pages, by default. A cached card costs about 1.4 kB of the
 * process's peak (its books, its key and the garbage collector's headroom for a cache whose
 * entries die old): syncing 1,000,000 records over 333,000 cards peaked at 297, 309, 347 and
 * 423 MB with 5,000, 20,000, 50,000 and 100,000 cached, in about the same time, since a miss is
 * one primary-key read (docs/BENCHMARKS.md, "The account cache's size").
 */
export const DEFAULT_ACCOUNT_CACHE = 20_000;

/** Accounts read by one prefetch query: a batch of 1,000 records is a few queries, not 1,000. */
export const PREFETCH_CHUNK = 250;

export class IndexedAccounts implements AccountStore {
  private readonly cache = new Map<string, AccountState>();
  private readonly select: Statement;
  /** Rows read on a miss (opened accounts are misses too: their row does not exist yet). */
  misses = 0;
  /** Accounts looked up by {@link IndexedAccounts.prefetch} (found or not). */
  prefetched = 0;
  /** Keys a prefetch found no row for, until they are set or the cache is trimmed: `get` answers them without a query. */
  private readonly absent = new Set<string>();
  private readonly selectMany: Statement;

  /** @param limit - accounts kept in memory after each page (at least 1) */
  constructor(
    db: Database,
    readonly limit = DEFAULT_ACCOUNT_CACHE,
  ) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`account cache limit must be a whole number >= 1; got ${limit}`);
    this.select = db.prepare(
      "SELECT record_count, initial_amount, topped_up, consumed, refunded FROM accounts WHERE merchant_id = ? AND account = ?",
    );
    this.selectMany = db.prepare(
      `SELECT account, record_count, initial_amount, topped_up, consumed, refunded FROM accounts
        WHERE merchant_id = ? AND account IN (${Array(PREFETCH_CHUNK).fill("?").join(", ")})`,
    );
  }

  get(key: string): AccountState | undefined {
    // Most recently used last: trim() drops the oldest first.
    const cached = touchRecent(this.cache, key);
    if (cached !== undefined) return cached;
    if (this.absent.has(key)) return undefined; // a prefetch found no row: an opening
    this.misses++;
    const [merchantId, account] = splitAccountKey(key);
    const row = this.select.get(merchantId, account) as AccountBooksRow | undefined;
    if (row === undefined) return undefined;
    const a = accountFromRow(merchantId, account, row);
    this.cache.set(key, a);
    return a;
  }

  set(key: string, account: AccountState): void {
    this.absent.delete(key);
    this.cache.delete(key);
    this.cache.set(key, account);
  }

  /**
   * Reads, {@link PREFETCH_CHUNK} to a query, the rows of the accounts among `refs` that are not
   * in memory, so the `get`s of a batch's records that follow find them there (or know the row
   * does not exist) without a query each: on PostgreSQL a query is a round trip. The cache may
   * pass its limit until the next trim() by the accounts of one page.
   */
  prefetch(refs: readonly AccountRef[]): void {
    const wanted = new Map<number, string[]>();
    for (const { merchantId, account } of refs) {
      const key = accountKey(merchantId, account);
      if (this.cache.has(key) || this.absent.has(key)) continue;
      this.absent.add(key); // until its row is found below: also drops an account listed twice
      const list = wanted.get(merchantId);
      if (list === undefined) wanted.set(merchantId, [account]);
      else list.push(account);
    }
    for (const [merchantId, accounts] of wanted) {
      for (let i = 0; i < accounts.length; i += PREFETCH_CHUNK) {
        const chunk = accounts.slice(i, i + PREFETCH_CHUNK);
        // A fixed number of parameters, so one prepared statement serves every chunk: the last
        // one is padded with its own first account (a repeated value in IN changes nothing).
        const params = Array.from({ length: PREFETCH_CHUNK }, (_, j) => chunk[j] ?? chunk[0]!);
        const rows = this.selectMany.all(merchantId, ...params) as unknown as (AccountBooksRow & { account: string })[];
        for (const row of rows) {
          const key = accountKey(merchantId, row.account);
          this.absent.delete(key);
          this.cache.set(key, accountFromRow(merchantId, row.account, row));
        }
        this.prefetched += chunk.length;
      }
    }
  }

  /** Accounts in memory now. */
  get size(): number {
    return this.cache.size;
  }

  /**
   * Drops the least recently used accounts beyond the limit. Call it only once every account
   * the replay changed is stored (after the page's flushBooks).
   */
  trim(): void {
    this.absent.clear();
    let excess = this.cache.size - this.limit;
    if (excess <= 0) return;
    for (const key of this.cache.keys()) {
      this.cache.delete(key);
      if (--excess === 0) break;
    }
  }
}
