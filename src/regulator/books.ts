/**
 * Rebuilds every account's and merchant's books from records alone, with the contract's rules
 * (docs/FORMAT.md 1), so the regulator can compare them with what the contract stores.
 */

export interface AccountState {
  merchantId: number;
  /** The opaque account id, 0x-hex. */
  account: string;
  recordCount: number;
  initialAmount: bigint;
  toppedUp: bigint;
  consumed: bigint;
  refunded: bigint;
}

export interface MerchantState {
  merchantId: number;
  /**
   * The contract's MerchantStatus: 1 Active, 2 Suspended, 3 WindingDown, 4 Closed, 0 unknown (no
   * registration seen in the range read). Names for people: {@link MERCHANT_STATUS_NAMES}.
   */
  status: number;
  recordCount: number;
  accountCount: number;
  toppedUp: bigint;
  consumed: bigint;
  refunded: bigint;
  /** Batches seen, and the next sequence number they imply. */
  batches: number;
  nextSequence: bigint;
}

/**
 * The one mapping of the contract's MerchantStatus numbers to names, for the index, the CLI, the
 * dashboard and reports. A number not here (a newer contract) reads as "unknown".
 */
export const MERCHANT_STATUS_NAMES = {
  0: "unknown",
  1: "active",
  2: "suspended",
  3: "winding-down",
  4: "closed",
} as const satisfies Record<number, string>;

/** A merchant status by name. */
export type MerchantStatusName = (typeof MERCHANT_STATUS_NAMES)[keyof typeof MERCHANT_STATUS_NAMES];

/** The name of a MerchantStatus number; "unknown" for 0 and for a number this code does not know. */
export const merchantStatusName = (status: number): MerchantStatusName =>
  (MERCHANT_STATUS_NAMES as Record<number, MerchantStatusName>)[status] ?? "unknown";

export const balanceOf = (a: { toppedUp: bigint; consumed: bigint; refunded: bigint }): bigint =>
  a.toppedUp - a.consumed - a.refunded;

/** An account as the contract keys it: a merchant's id and the account's 0x-hex id. */
export interface AccountRef {
  merchantId: number;
  account: string;
}

/**
 * An account's books as a table row holds them (the indexer's `accounts`, the reader's scratch
 * file), integers as the driver returns them: number, bigint, or text for amounts beyond 2^63.
 */
export interface AccountBooksRow {
  record_count: number | bigint;
  initial_amount: number | bigint | string;
  topped_up: number | bigint | string;
  consumed: number | bigint | string;
  refunded: number | bigint | string;
}

/** The {@link AccountState} of `account` of `merchantId` from its row. */
export function accountFromRow(merchantId: number, account: string, row: AccountBooksRow): AccountState {
  return {
    merchantId,
    account,
    recordCount: Number(row.record_count),
    initialAmount: BigInt(row.initial_amount),
    toppedUp: BigInt(row.topped_up),
    consumed: BigInt(row.consumed),
    refunded: BigInt(row.refunded),
  };
}

/** Accounts are per merchant (the contract keys them so): `${merchantId}:${account}`. */
export const accountKey = (merchantId: number, account: string) => `${merchantId}:${account}`;

/** `[merchantId, account]` from an {@link accountKey}. */
export function splitAccountKey(key: string): [merchantId: number, account: string] {
  const colon = key.indexOf(":");
  return [Number(key.slice(0, colon)), key.slice(colon + 1)];
}

/**
 * For a store's cache of recently used accounts: `cache`'s value for `key`, moved to the end of
 * the Map's order (most recently used last, so the oldest are dropped first); undefined if absent.
 */
export function touchRecent<V>(cache: Map<string, V>, key: string): V | undefined {
  const value = cache.get(key);
  if (value === undefined) return undefined;
  cache.delete(key);
  cache.set(key, value);
  return value;
}

/**
 * Where {@link Books} keeps the accounts, by {@link accountKey}: a Map (a supervisor), or a store
 * with a bounded cache so memory does not grow with the number of cards: over the index's own
 * table (the indexer), or over a scratch file (the reader, src/regulator/spilled-accounts.ts).
 * `get` returns the object `set` stored or later loaded; Books changes it in place and calls
 * `set` only when it opens an account. Books holds one account at a time: it asks for one per
 * record and is done changing it before its next `get`, so a store may write out and drop any
 * account but the one it last returned or stored when `get` or `set` is called.
 */
export interface AccountStore {
  get(key: string): AccountState | undefined;
  set(key: string, account: AccountState): void;
  /**
   * Optional hint: the accounts a batch's records are about to `get`, so a store over a database
   * can read the ones not in memory in a few queries instead of one each. It must not drop an
   * account the caller may hold.
   */
  prefetch?(accounts: readonly AccountRef[]): void;
}

export class Books<S extends AccountStore = Map<string, AccountState>> {
  readonly merchants = new Map<number, MerchantState>();

  /** @param accounts - by {@link accountKey}; default a Map of every account */
  constructor(readonly accounts: S = new Map<string, AccountState>() as unknown as S) {}

  merchant(merchantId: number): MerchantState {
    let m = this.merchants.get(merchantId);
    if (m === undefined) {
      m = {
        merchantId,
        status: 0,
        recordCount: 0,
        accountCount: 0,
        toppedUp: 0n,
        consumed: 0n,
        refunded: 0n,
        batches: 0,
        nextSequence: 1n,
      };
      this.merchants.set(merchantId, m);
    }
    return m;
  }

  /**
   * Books one record. Returns undefined, or why the contract would have refused it (which a
   * correct ledger never logs, so the reader reports it as a discrepancy); a refused record
   * changes nothing.
   *
   * @param changesOnly - the records read start mid-ledger, so earlier top-ups are unknown:
   *   accumulate the changes without the balance and opening rules
   */
  apply(merchantId: number, account: string, kind: number, amount: bigint, changesOnly = false): string | undefined {
    if (amount === 0n) return "zero amount";
    const key = accountKey(merchantId, account);
    let a = this.accounts.get(key);
    const opening = a === undefined;
    if (kind < 1 || kind > 3) return `invalid kind ${kind}`;
    if (a === undefined) {
      if (kind !== 1 && !changesOnly) return "unknown account";
      a = { merchantId, account, recordCount: 0, initialAmount: kind === 1 ? amount : 0n, toppedUp: 0n, consumed: 0n, refunded: 0n };
    }
    if (kind !== 1 && amount > balanceOf(a) && !changesOnly) return `overdraw: balance ${balanceOf(a)}, needed ${amount}`;
    const m = this.merchant(merchantId);
    if (opening) {
      this.accounts.set(key, a);
      m.accountCount++;
    }
    a.recordCount++;
    m.recordCount++;
    if (kind === 1) {
      a.toppedUp += amount;
      m.toppedUp += amount;
    } else if (kind === 2) {
      a.consumed += amount;
      m.consumed += amount;
    } else {
      a.refunded += amount;
      m.refunded += amount;
    }
    return undefined;
  }
}
