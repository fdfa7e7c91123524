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
import { type AccountState, type AccountStore, splitAccountKey, touchRecent } from "../regulator/books.js";

import type { Database, Statement } from "./schema.js";

/**
 * Accounts kept in memory between pages, by default. A cached card costs about 1.4 kB of the
 * process's peak (its books, its key and the garbage collector's headroom for a cache whose
 * entries die old): syncing 1,000,000 records over 333,000 cards peaked at 297, 309, 347 and
 * 423 MB with 5,000, 20,000, 50,000 and 100,000 cached, in about the same time, since a miss is
 * one primary-key read (docs/BENCHMARKS.md, "The account cache's size").
 */
export const DEFAULT_ACCOUNT_CACHE = 20_000;

interface AccountRow {
  record_count: number;
  initial_amount: number;
  topped_up: number;
  consumed: number;
  refunded: number;
}

export class IndexedAccounts implements AccountStore {
  private readonly cache = new Map<string, AccountState>();
  private readonly select: Statement;
  /** Rows read on a miss (opened accounts are misses too: their row does not exist yet). */
  misses = 0;

  /** @param limit - accounts kept in memory after each page (at least 1) */
  constructor(
    db: Database,
    readonly limit = DEFAULT_ACCOUNT_CACHE,
  ) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`account cache limit must be a whole number >= 1; got ${limit}`);
    this.select = db.prepare(
      "SELECT record_count, initial_amount, topped_up, consumed, refunded FROM accounts WHERE merchant_id = ? AND account = ?",
    );
  }

  get(key: string): AccountState | undefined {
    // Most recently used last: trim() drops the oldest first.
    const cached = touchRecent(this.cache, key);
    if (cached !== undefined) return cached;
    this.misses++;
    const [merchantId, account] = splitAccountKey(key);
    const row = this.select.get(merchantId, account) as AccountRow | undefined;
    if (row === undefined) return undefined;
    const a: AccountState = {
      merchantId,
      account,
      recordCount: Number(row.record_count),
      initialAmount: BigInt(row.initial_amount),
      toppedUp: BigInt(row.topped_up),
      consumed: BigInt(row.consumed),
      refunded: BigInt(row.refunded),
    };
    this.cache.set(key, a);
    return a;
  }

  set(key: string, account: AccountState): void {
    this.cache.delete(key);
    this.cache.set(key, account);
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
    let excess = this.cache.size - this.limit;
    if (excess <= 0) return;
    for (const key of this.cache.keys()) {
      this.cache.delete(key);
      if (--excess === 0) break;
    }
  }
}
