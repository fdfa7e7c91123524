/**
 * What a regulator may type into the dashboard's search box, and what in the index it names:
 * a card (account) id or a unique prefix of one (at least 8 hex digits, as reports print them),
 * a record index, a merchant id, or a transaction hash (or a prefix of one). Every lookup goes
 * through an index (`accounts_by_account`, the records' primary key and UNIQUE (tx_hash, …)).
 */
import { PrepaidLedgerError } from "../errors.js";
import { yuan } from "../regulator/report.js";
import { merchantStatusName } from "../regulator/books.js";
import { KIND_NAMES } from "./queries.js";
import { num, type Database } from "./schema.js";

/** One thing the search found; `href` is its dashboard page. */
export interface SearchMatch {
  kind: "account" | "record" | "merchant" | "transaction";
  /** What it is, in words: "card 0x17…a321 at merchant 101", "record 42", "transaction 0x…: records 1–40". */
  label: string;
  href: string;
}

/** At most this many matches of each kind are listed (a short prefix may match many). */
export const MAX_MATCHES = 20;

const HEX = /^0x[0-9a-f]+$/;

/**
 * Everything in the index the text names (several when it is ambiguous: a number that is both a
 * record index and a merchant id, a prefix of several cards).
 *
 * @param text - as typed; surrounding spaces and a trailing "…" or "..." are ignored, hex in any case
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` when the text is none of the shapes above
 */
export function search(db: Database, text: string): SearchMatch[] {
  const typed = text.trim().replace(/(…|\.\.\.)$/, "").toLowerCase();
  if (/^\d{1,15}$/.test(typed)) return byNumber(db, Number(typed));
  if (HEX.test(typed) && typed.length >= 10 && typed.length <= 66) return [...accounts(db, typed), ...transactions(db, typed)];
  throw new PrepaidLedgerError(
    "INVALID_ARGUMENT",
    "search for a card id (or its first 8 or more hex digits), a record index, a merchant id or a transaction hash",
    { details: { query: text } },
  );
}

function byNumber(db: Database, n: number): SearchMatch[] {
  const out: SearchMatch[] = [];
  const r = db.prepare("SELECT merchant_id, account, kind, amount FROM records WHERE record_index = ?").get(n) as Record<string, unknown> | undefined;
  if (r !== undefined) {
    const what = `${KIND_NAMES[num(r.kind)] ?? "record"} of ${yuan(num(r.amount))} on card ${String(r.account).slice(0, 10)}… at merchant ${num(r.merchant_id)}`;
    out.push({ kind: "record", label: `record ${n}: ${what}`, href: `/records/${n}` });
  }
  const m = db.prepare("SELECT status, account_count FROM merchants WHERE merchant_id = ?").get(n) as Record<string, unknown> | undefined;
  if (m !== undefined) {
    out.push({ kind: "merchant", label: `merchant ${n}: ${merchantStatusName(num(m.status))}, ${num(m.account_count)} accounts`, href: `/merchants/${n}` });
  }
  return out;
}

/** Accounts whose id starts with `prefix` (a whole id is its own prefix), under every merchant. */
function accounts(db: Database, prefix: string): SearchMatch[] {
  const rows = db
    .prepare("SELECT merchant_id, account FROM accounts WHERE account >= ? AND account < ? ORDER BY account, merchant_id LIMIT ?")
    .all(prefix, prefix + "g", MAX_MATCHES) as Record<string, unknown>[];
  return rows.map((r) => {
    const [merchantId, account] = [num(r.merchant_id), String(r.account)];
    return { kind: "account", label: `card ${account} at merchant ${merchantId}`, href: `/merchants/${merchantId}/accounts/${account}` };
  });
}

/** Transactions whose hash starts with `prefix`, with the records they booked. */
function transactions(db: Database, prefix: string): SearchMatch[] {
  const rows = db
    .prepare(
      `SELECT tx_hash, min(record_index) AS first, max(record_index) AS last, count(*) AS n FROM records
        WHERE tx_hash >= ? AND tx_hash < ? GROUP BY tx_hash ORDER BY tx_hash LIMIT ?`,
    )
    .all(prefix, prefix + "g", MAX_MATCHES) as Record<string, unknown>[];
  return rows.map((r) => {
    const [tx, first, last, n] = [String(r.tx_hash), num(r.first), num(r.last), num(r.n)];
    const records = n === 1 ? `record ${first}` : `${n} records, ${first}–${last}`;
    return { kind: "transaction", label: `transaction ${tx}: ${records}`, href: `/transactions/${tx}` };
  });
}

