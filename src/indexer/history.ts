/**
 * The index over time, for the dashboard's overview charts: money in and out and each merchant's
 * liability per hour, day or week (in this machine's time zone), and the alerts counted by rule
 * and severity. Read from the small tables (`batches`, the settlements' partial index, `alerts`),
 * never by scanning `records`, so the overview costs the same with 400 records or 400,000.
 */
import { RISK_RULES } from "./risk.js";
import { hasTable, num, type Database } from "./schema.js";

/** How long one bucket of the history is. */
export type BucketUnit = "hour" | "day" | "week";

/** Money moved in one bucket, over all merchants, in fen. */
export interface Flows {
  toppedUp: number;
  consumed: number;
  refunded: number;
}

export interface History {
  /** Hours when the history spans under 2 days, days under 3 weeks, weeks beyond. */
  unit: BucketUnit;
  /** Each bucket's start, Unix seconds, at a local hour, midnight or Monday midnight; oldest first. */
  starts: number[];
  /** Where the last bucket ends: the index's settled time (its "now"), so a silent merchant shows flat. */
  end: number;
  /** Per bucket, over all merchants. */
  flows: Flows[];
  /** Per merchant with any booking: its liability at the end of each bucket. Merchant id order. */
  liability: { merchantId: number; values: number[] }[];
}

/** The alerts of one rule by severity (every rule listed, in the rules' order, zero when quiet). */
export interface AlertCount {
  rule: string;
  high: number;
  medium: number;
  low: number;
}

/** SQLite groups by quarter hours: every time zone's offset is a multiple of 15 minutes. */
const QUARTER = 900;
/** At most this many buckets: older ones are folded into the first (its liability stays right). */
export const MAX_BUCKETS = 156;

/** The local start of the bucket holding `seconds`. */
function bucketStart(seconds: number, unit: BucketUnit): number {
  const d = new Date(seconds * 1000);
  d.setMinutes(0, 0, 0);
  if (unit !== "hour") d.setHours(0);
  if (unit === "week") d.setDate(d.getDate() - ((d.getDay() + 6) % 7)); // back to Monday
  return d.getTime() / 1000;
}

/** The local start of the bucket after the one starting at `start` (DST-safe: by the calendar). */
function nextStart(start: number, unit: BucketUnit): number {
  const d = new Date(start * 1000);
  if (unit === "hour") d.setHours(d.getHours() + 1);
  else d.setDate(d.getDate() + (unit === "week" ? 7 : 1));
  return d.getTime() / 1000;
}

function unitFor(span: number): BucketUnit {
  if (span < 2 * 86_400) return "hour";
  if (span < 21 * 86_400) return "day";
  return "week";
}

/**
 * Flows and liabilities per bucket, from the first booking to `now` (the index's settled time).
 *
 * @param now - the end of the last bucket, Unix seconds
 * @returns an empty history (no buckets) when nothing is booked yet
 */
export function history(db: Database, now: number): History {
  const settlements = hasTable(db, "protection_events")
    ? `UNION ALL SELECT merchant_id, block_time / ${QUARTER}, 0, 0, amount FROM records WHERE settlement IS NOT NULL`
    : "";
  const rows = db
    .prepare(
      `SELECT merchant_id, q, sum(t) AS t, sum(c) AS c, sum(r) AS r FROM (
         SELECT merchant_id, block_time / ${QUARTER} AS q, topped_up AS t, consumed AS c, refunded AS r FROM batches
         ${settlements}) AS flows
       GROUP BY merchant_id, q ORDER BY q`,
    )
    .all() as Record<string, unknown>[];
  if (rows.length === 0) return { unit: "hour", starts: [], end: now, flows: [], liability: [] };
  const first = num(rows[0].q) * QUARTER;
  const end = Math.max(now, num(rows[rows.length - 1].q) * QUARTER + 1);
  const unit = unitFor(end - first);
  let starts: number[] = [];
  for (let s = bucketStart(first, unit); s < end; s = nextStart(s, unit)) starts.push(s);
  if (starts.length > MAX_BUCKETS) starts = [starts[0], ...starts.slice(-(MAX_BUCKETS - 1))];
  // The bucket of a time: the last start at or before it (binary search; starts ascend).
  const bucketOf = (t: number) => {
    let [lo, hi] = [0, starts.length - 1];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= t) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const flows: Flows[] = starts.map(() => ({ toppedUp: 0, consumed: 0, refunded: 0 }));
  const net = new Map<number, number[]>();
  for (const row of rows) {
    const b = bucketOf(num(row.q) * QUARTER);
    const [t, c, r] = [num(row.t), num(row.c), num(row.r)];
    flows[b].toppedUp += t;
    flows[b].consumed += c;
    flows[b].refunded += r;
    const id = num(row.merchant_id);
    if (!net.has(id)) net.set(id, starts.map(() => 0));
    net.get(id)![b] += t - c - r;
  }
  const liability = [...net.entries()]
    .sort(([a], [b]) => a - b)
    .map(([merchantId, changes]) => {
      let running = 0;
      return { merchantId, values: changes.map((d) => (running += d)) };
    });
  return { unit, starts, end, flows, liability };
}

/** Alerts of the last risk evaluation counted by rule and severity, every rule listed. */
export function alertCounts(db: Database): AlertCount[] {
  const rows = db.prepare("SELECT rule, severity, count(*) AS n FROM alerts GROUP BY rule, severity").all() as Record<string, unknown>[];
  const counts = new Map<string, AlertCount>(Object.keys(RISK_RULES).map((rule) => [rule, { rule, high: 0, medium: 0, low: 0 }]));
  for (const r of rows) {
    const rule = String(r.rule);
    if (!counts.has(rule)) counts.set(rule, { rule, high: 0, medium: 0, low: 0 });
    const severity = String(r.severity) as "high" | "medium" | "low";
    if (severity in counts.get(rule)!) counts.get(rule)![severity] += num(r.n);
  }
  return [...counts.values()];
}

/**
 * A card's balance before one of its records: top-ups less consumption and refunds of its earlier
 * records (what a page of its history, other than the first, starts its running balance from).
 */
export function balanceBefore(db: Database, merchantId: number, account: string, recordIndex: number): number {
  const row = db
    .prepare(
      `SELECT coalesce(sum(CASE kind WHEN 1 THEN amount ELSE -amount END), 0) AS b FROM records
        WHERE merchant_id = ? AND account = ? AND record_index < ?`,
    )
    .get(merchantId, account, recordIndex) as { b: number };
  return num(row.b);
}
