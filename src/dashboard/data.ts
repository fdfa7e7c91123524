/**
 * What each dashboard page shows, read from the index in one go: the HTML pages and the JSON API
 * render the same objects, so a script reading `/api/...` sees exactly the page's figures. Every
 * list is a page of at most {@link PAGE_SIZE} rows read through an index, so a page costs the
 * same with 400 records or 400,000.
 */
import { PrepaidLedgerError } from "../errors.js";
import {
  type AccountRow,
  type AlertRow,
  type IndexQueries,
  type LiabilityPoint,
  type MerchantRow,
  type Overview,
  type RecordRow,
} from "../indexer/queries.js";
import type { CustodyView } from "../indexer/custody.js";
import { alertCounts, balanceBefore, history, type AlertCount, type History } from "../indexer/history.js";
import { search, type SearchMatch } from "../indexer/search.js";
import type { Database } from "../indexer/schema.js";
import type { ProtectionView } from "../indexer/protection-view.js";
import type { RecorderView } from "../indexer/recorders.js";
import { RISK_RULES } from "../indexer/risk.js";

/** Rows per page in every paginated table. */
export const PAGE_SIZE = 100;
/** Alerts on the overview (the most severe first). */
export const TOP_ALERTS = 10;
/** At most this many points in a liability chart (the series is thinned evenly beyond it). */
export const CHART_POINTS = 500;
const MAX_MERCHANT_ID = 2 ** 32 - 1;

/** One page of a list. `pages` is null when the total is not known without a count. */
export interface Paged<T> {
  page: number;
  pages: number | null;
  pageSize: number;
  hasNext: boolean;
  items: T[];
}

export interface MerchantView {
  merchant: MerchantRow;
  /** Who may write for the merchant: its recorder keys, pending offers and recorder history. */
  recorders: RecorderView;
  /** The merchant's custody: held, ratio, required, coverage and its history (custody null: none attached). */
  custody: CustodyView;
  /** The card holders' protection: card rules, claims round (once closed), cooling-off returns. */
  protection: ProtectionView;
  /** Liability after each batch, oldest first, at most {@link CHART_POINTS}. */
  series: LiabilityPoint[];
  accounts: Paged<AccountRow>;
  /** The merchant's alerts, the most severe first, at most {@link PAGE_SIZE}. */
  alerts: AlertRow[];
}

export interface SeriesView {
  merchantId: number;
  batches: number;
  points: LiabilityPoint[];
}

/** The overview's figures, and what its charts draw. */
export interface OverviewView extends Overview {
  /** Money in and out and each merchant's liability per hour, day or week. */
  history: History;
  /** The alerts by rule and severity, every rule listed. */
  alertCounts: AlertCount[];
}

/** A record of a card's history, with the card's balance once it is booked. */
export type HistoryRow = RecordRow & { balanceAfter: number };

export interface AccountView {
  account: AccountRow;
  /** Oldest first, each with the running balance. */
  records: Paged<HistoryRow>;
  /** The alerts that name this card, the most severe first. */
  alerts: AlertRow[];
}

export interface TransactionView {
  txHash: string;
  /** The records the transaction booked (a batch, or custody's settlements), oldest first. */
  records: Paged<RecordRow>;
}

export interface SearchView {
  query: string;
  /** What the text names; the page redirects when there is exactly one. */
  matches: SearchMatch[];
}

export interface AlertsView {
  filter: { rule: string | null; merchantId: number | null };
  rules: string[];
  alerts: Paged<AlertRow>;
}

const invalid = (shortMessage: string, details: Record<string, unknown>) =>
  new PrepaidLedgerError("INVALID_ARGUMENT", shortMessage, { details });

/** @throws PrepaidLedgerError `INVALID_ARGUMENT` unless `text` is a uint32 in decimal */
export function parseMerchantId(text: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > MAX_MERCHANT_ID) {
    throw invalid("a merchant id is a whole number from 0 to 4294967295", { merchantId: text });
  }
  return Number(text);
}

/** @throws PrepaidLedgerError `INVALID_ARGUMENT` unless `text` is a record index (1, 2, …) */
export function parseRecordIndex(text: string): number {
  if (!/^[1-9]\d{0,14}$/.test(text)) throw invalid("a record index is a whole number from 1", { recordIndex: text });
  return Number(text);
}

/** The `?page=` parameter, 1 when absent. @throws PrepaidLedgerError `INVALID_ARGUMENT` */
export function parsePage(query: URLSearchParams): number {
  const text = query.get("page") ?? "1";
  if (!/^[1-9]\d{0,8}$/.test(text)) throw invalid("a page number is a whole number from 1", { page: text });
  return Number(text);
}

function pageOf<T>(rows: T[], page: number, pages: number | null): Paged<T> {
  const hasNext = rows.length > PAGE_SIZE;
  if (page > 1 && rows.length === 0) {
    throw new PrepaidLedgerError("NOT_FOUND", "there is no such page", { details: { page, pages } });
  }
  return { page, pages, pageSize: PAGE_SIZE, hasNext, items: rows.slice(0, PAGE_SIZE) };
}

/** Rows for `page`, plus one to know whether another page follows. */
const rowsFor = (page: number) => ({ limit: PAGE_SIZE + 1, offset: (page - 1) * PAGE_SIZE });
const pageCount = (rows: number) => Math.max(1, Math.ceil(rows / PAGE_SIZE));

/** The overview: what the index covers, the totals, every merchant, the top alerts, and the charts' figures. */
export function overviewView(q: IndexQueries, db: Database): OverviewView {
  const overview = q.overview(TOP_ALERTS);
  return { ...overview, history: history(db, overview.info.settledTime), alertCounts: alertCounts(db) };
}

/** @throws PrepaidLedgerError `NOT_FOUND` (no such merchant or page), `INVALID_ARGUMENT` */
export function merchantView(q: IndexQueries, merchantId: number, page: number): MerchantView {
  const merchant = q.merchant(merchantId);
  return {
    merchant,
    recorders: q.recorders(merchantId),
    custody: q.custody(merchantId),
    protection: q.protection(merchantId),
    series: q.liabilitySeries(merchantId, CHART_POINTS),
    accounts: pageOf(q.accounts(merchantId, rowsFor(page)), page, pageCount(merchant.accountCount)),
    alerts: q.alerts({ merchantId, limit: PAGE_SIZE }),
  };
}

/** @throws PrepaidLedgerError `NOT_FOUND` if the index has no such merchant */
export function seriesView(q: IndexQueries, merchantId: number): SeriesView {
  const { batches } = q.merchant(merchantId);
  return { merchantId, batches, points: q.liabilitySeries(merchantId, CHART_POINTS) };
}

/** @throws PrepaidLedgerError `NOT_FOUND` (no such account or page), `INVALID_ARGUMENT` (malformed account id) */
export function accountView(q: IndexQueries, db: Database, merchantId: number, accountText: string, page: number): AccountView {
  const account = q.account(merchantId, accountText);
  const rows = q.records({ merchantId, account: account.account, ...rowsFor(page) });
  const records = pageOf(rows, page, pageCount(account.recordCount));
  // Top-ups add to the card, consumption and refunds take from it (every record on chain is booked).
  let balance = page === 1 || records.items.length === 0 ? 0 : balanceBefore(db, merchantId, account.account, records.items[0].recordIndex);
  const items = records.items.map((r) => ({ ...r, balanceAfter: (balance += r.kind === 1 ? r.amount : -r.amount) }));
  return { account, records: { ...records, items }, alerts: alertsNaming(q, merchantId, (a) => a.account === account.account) };
}

/** The merchant's alerts that `names` picks (a card's, a record's): the alerts table is small, and capped per merchant. */
export function alertsNaming(q: IndexQueries, merchantId: number, names: (a: AlertRow) => boolean): AlertRow[] {
  return q.alerts({ merchantId, limit: 100_000 }).filter(names);
}

/** @throws PrepaidLedgerError `INVALID_ARGUMENT` (not a 32-byte hash), `NOT_FOUND` (no record came in it, no such page) */
export function transactionView(q: IndexQueries, txHash: string, page: number): TransactionView {
  const rows = q.records({ txHash, ...rowsFor(page) });
  if (rows.length === 0 && page === 1) {
    throw new PrepaidLedgerError("NOT_FOUND", "no record of the index came in this transaction", { details: { tx: txHash } });
  }
  return { txHash: txHash.toLowerCase(), records: pageOf(rows, page, null) };
}

/**
 * What the search box's `?q=` names.
 *
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` (no query, or none of the shapes searched for), `NOT_FOUND` (nothing matches)
 */
export function searchView(db: Database, query: URLSearchParams): SearchView {
  const text = (query.get("q") ?? "").trim();
  if (text === "") throw invalid("type a card id (or its first 8 hex digits), a record index, a merchant id or a transaction hash", { query: text });
  const matches = search(db, text);
  if (matches.length === 0) {
    throw new PrepaidLedgerError("NOT_FOUND", "nothing in the index matches this search: no card, record, merchant or transaction", {
      details: { query: text },
    });
  }
  return { query: text, matches };
}

/**
 * The alerts, optionally of one rule and/or one merchant.
 *
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` (unknown rule, malformed merchant id), `NOT_FOUND` (no such merchant)
 */
export function alertsView(q: IndexQueries, query: URLSearchParams): AlertsView {
  const rules = Object.keys(RISK_RULES);
  const rule = query.get("rule");
  if (rule !== null && !rules.includes(rule)) throw invalid("no risk rule has this name", { rule, rules });
  const merchantText = query.get("merchant");
  const merchantId = merchantText === null ? null : q.merchant(parseMerchantId(merchantText)).merchantId;
  const page = parsePage(query);
  const rows = q.alerts({ rule: rule ?? undefined, merchantId: merchantId ?? undefined, ...rowsFor(page) });
  return { filter: { rule, merchantId }, rules, alerts: pageOf(rows, page, null) };
}
