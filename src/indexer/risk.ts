/**
 * Risk rules: the signs that a prepaid-card merchant may be the next one to close and keep its
 * card holders' money. Each rule reads the index (never the chain), uses thresholds from
 * {@link RiskConfig}, and explains itself in docs/RISK.md. "Now" is the timestamp of the last
 * settled block, so a rule gives the same answer on every machine that indexed the same blocks.
 *
 * Amounts are fen (1/100 yuan); durations are seconds.
 */
import { z } from "zod";

import { parseConfig } from "../config.js";
import { yuan } from "../regulator/report.js";
import { custodyByMerchant, percent } from "./custody.js";
import { coolingOffRule, windingDownRule } from "./risk-protection.js";
import type { Database } from "./schema.js";

const DAY = 86_400;
const fen = z.number().int().min(0);
const ratio = z.number().positive();
const days = z.number().positive().max(3650);

export const RiskConfig = z
  .object({
    /** Rule `liability-limit`: a merchant's outstanding liability above this (fen). Default ¥500,000. */
    maxMerchantLiability: fen.default(50_000_000),
    /** Rule `liability-growth`: net inflow (top-ups − consumption − refunds) over the window… */
    growthWindowDays: days.default(30),
    /** …above this many times the consumption of the same window… */
    growthRatio: ratio.default(3),
    /** …and above this amount (fen), so a small merchant's first sales are not flagged. Default ¥20,000. */
    growthMinInflow: fen.default(2_000_000),
    /** Rule `topup-spike`: top-ups in the last window (days)… */
    spikeWindowDays: days.default(7),
    /** …above this many times the average of the same-length windows before it… */
    spikeFactor: ratio.default(3),
    /** …counting this many windows back as the baseline… */
    spikeBaselineWindows: z.number().int().min(1).max(52).default(4),
    /** …and above this amount (fen). Default ¥10,000. */
    spikeMinAmount: fen.default(1_000_000),
    /** Rule `dormant-merchant`: no consumption or refund for this many days… */
    dormantDays: days.default(30),
    /** …while the merchant still owes at least this (fen). Default ¥1,000. */
    dormantMinLiability: fen.default(100_000),
    /**
     * Rule `card-limit`: stored value on one card above this (fen). Default ¥5,000, the per-card
     * cap of Beijing's and Shanghai's rules for single-purpose prepaid cards.
     */
    maxCardBalance: fen.default(500_000),
    /** Rule `pending-confirmation`: a record not covered by a final checkpoint after this many seconds. Default 1 h. */
    maxPendingSeconds: z.number().int().positive().default(3_600),
    /**
     * Rule `winding-down-unpaid`: a merchant winding down (refunds only) for more than this many
     * days… Default 30: a month to pay its card holders back before the regulator closes it and
     * they must claim from custody.
     */
    windingDownMaxDays: days.default(30),
    /** …while it still owes more than this (fen). Default 0: any balance left unpaid. */
    windingDownMinLiability: fen.default(0),
    /**
     * Rule `cooling-off-overdue`: a cooling-off return the merchant owes (custody could not pay
     * it) still unpaid this many days after its due date. Default 0: the day after it is due.
     */
    coolingOffGraceDays: z.number().min(0).max(3650).default(0),
    /** At most this many `card-limit` and `verification-failed` alerts are listed per merchant (the rest are counted). */
    maxAlertsPerMerchant: z.number().int().min(1).max(100_000).default(100),
  })
  .strict();
export type RiskConfigInput = z.input<typeof RiskConfig>;
export type RiskConfigValues = z.output<typeof RiskConfig>;

export function parseRiskConfig(input: unknown = {}): RiskConfigValues {
  return parseConfig(RiskConfig, input, "risk");
}

/** The rules, by id, with the severity of what they find. */
export const RISK_RULES = {
  "liability-limit": "high",
  "liability-growth": "medium",
  "topup-spike": "medium",
  "dormant-merchant": "high",
  "card-limit": "medium",
  "verification-failed": "high",
  "pending-confirmation": "low",
  "custody-below-requirement": "high",
  "winding-down-unpaid": "high",
  "cooling-off-overdue": "high",
} as const;
export type RiskRule = keyof typeof RISK_RULES;

export interface Alert {
  rule: RiskRule;
  severity: (typeof RISK_RULES)[RiskRule];
  merchantId: number | null;
  account: string | null;
  recordIndex: number | null;
  message: string;
  value: number | null;
  threshold: number | null;
}

/** A merchant's figures as the rules read them from the index. */
export interface MerchantFigures {
  merchant_id: number;
  status: number;
  liability: number;
  first_time: number | null;
  last_service_time: number | null;
}

/** Sums of a merchant's batches between two block times (start inclusive, end exclusive). */
function flows(db: Database, merchantId: number, from: number, to: number) {
  return db
    .prepare(
      `SELECT coalesce(sum(topped_up),0) AS topped_up, coalesce(sum(consumed),0) AS consumed, coalesce(sum(refunded),0) AS refunded
         FROM batches WHERE merchant_id = ? AND block_time >= ? AND block_time < ?`,
    )
    .get(merchantId, from, to) as { topped_up: number; consumed: number; refunded: number };
}

function alert(rule: RiskRule, fields: Omit<Alert, "rule" | "severity">): Alert {
  return { rule, severity: RISK_RULES[rule], ...fields };
}

function merchantRules(db: Database, c: RiskConfigValues, now: number, m: MerchantFigures): Alert[] {
  const out: Alert[] = [];
  const id = m.merchant_id;
  const base = { merchantId: id, account: null, recordIndex: null };
  if (m.liability > c.maxMerchantLiability) {
    out.push(
      alert("liability-limit", {
        ...base,
        message: `merchant ${id} owes ${yuan(m.liability)} in prepaid balances, above the limit of ${yuan(c.maxMerchantLiability)}`,
        value: m.liability,
        threshold: c.maxMerchantLiability,
      }),
    );
  }
  const age = m.first_time === null ? 0 : now - m.first_time;
  const growthWindow = c.growthWindowDays * DAY;
  if (age >= growthWindow) {
    const f = flows(db, id, now - growthWindow + 1, now + 1);
    const inflow = f.topped_up - f.consumed - f.refunded;
    if (inflow >= c.growthMinInflow && inflow > c.growthRatio * f.consumed) {
      out.push(
        alert("liability-growth", {
          ...base,
          message: `merchant ${id}: liability grew by ${yuan(inflow)} in ${c.growthWindowDays} days while it served only ${yuan(f.consumed)} (more than ${c.growthRatio}× its consumption)`,
          value: inflow,
          threshold: Math.round(c.growthRatio * f.consumed),
        }),
      );
    }
  }
  const spikeWindow = c.spikeWindowDays * DAY;
  if (age >= spikeWindow * (c.spikeBaselineWindows + 1)) {
    const recent = flows(db, id, now - spikeWindow + 1, now + 1).topped_up;
    const before = flows(db, id, now - spikeWindow * (c.spikeBaselineWindows + 1) + 1, now - spikeWindow + 1).topped_up;
    const baseline = before / c.spikeBaselineWindows;
    if (recent >= c.spikeMinAmount && recent > c.spikeFactor * baseline) {
      out.push(
        alert("topup-spike", {
          ...base,
          message: `merchant ${id} sold ${yuan(recent)} of top-ups in the last ${c.spikeWindowDays} days, ${baseline === 0 ? "with none" : `${(recent / baseline).toFixed(1)}× the average`} in the ${c.spikeBaselineWindows} windows before`,
          value: recent,
          threshold: Math.round(c.spikeFactor * baseline),
        }),
      );
    }
  }
  const lastService = m.last_service_time ?? m.first_time;
  if (lastService !== null && m.liability >= c.dormantMinLiability && now - lastService >= c.dormantDays * DAY) {
    const idle = Math.floor((now - lastService) / DAY);
    out.push(
      alert("dormant-merchant", {
        ...base,
        message: `merchant ${id} has served no card holder for ${idle} days (no consumption or refund) and still owes ${yuan(m.liability)}`,
        value: now - lastService,
        threshold: c.dormantDays * DAY,
      }),
    );
  }
  return out;
}

/**
 * `custody-below-requirement`: a merchant holds less in custody than ceil(ratio × liability /
 * 10,000) — unless claims were opened on it (closed: its custody is then paid out to its holders). The ledger refuses its batches that raise the liability, so it only happens when a
 * regulator raised the ratio, or when custody was attached to a ledger whose merchants already
 * owed money; either way the card holders are less covered than the regulator requires.
 */
function custodyRule(db: Database, merchants: MerchantFigures[]): Alert[] {
  const figures = custodyByMerchant(db, new Map(merchants.map((m) => [m.merchant_id, m.liability])));
  if (figures === null) return [];
  const out: Alert[] = [];
  for (const [id, f] of figures) {
    // Never once claims are open: the custody is then the holders' pool (CustodyFigures.claimsOpened).
    if (!f.belowRequirement) continue;
    out.push(
      alert("custody-below-requirement", {
        merchantId: id,
        account: null,
        recordIndex: null,
        message: `merchant ${id} holds ${yuan(f.held)} in custody, below the ${yuan(f.required)} required (${percent(f.ratioBps)} of ${yuan(f.liability)} owed): it cannot sell more cards until it deposits ${yuan(f.required - f.held)}`,
        value: f.held,
        threshold: f.required,
      }),
    );
  }
  return out;
}

/**
 * One alert per row for the first `max` rows of each merchant (rows come with their rank `rn` in
 * the merchant and the merchant's count `n`), then one alert counting the rest. The queries
 * return only ranks up to `max + 1`: a city's ledger may hold a million cards over the cap, and
 * their rows would otherwise all be read into memory to list a hundred a merchant.
 */
function capped<R extends { merchant_id: number; rn: number; n: number }>(
  rows: R[],
  max: number,
  each: (r: R) => Alert,
  rest: (r: R, more: number) => Alert,
): Alert[] {
  return rows.flatMap((r) => (r.rn <= max ? [each(r)] : r.rn === max + 1 ? [rest(r, r.n - max)] : []));
}

/** Cards over the per-card cap, largest balance first. */
function cardRules(db: Database, c: RiskConfigValues): Alert[] {
  const rows = db
    .prepare(
      `SELECT * FROM (SELECT merchant_id, account, balance,
                             row_number() OVER (PARTITION BY merchant_id ORDER BY balance DESC, account) AS rn,
                             count(*) OVER (PARTITION BY merchant_id) AS n
                        FROM accounts WHERE balance > ?) ranked
        WHERE rn <= ?`,
    )
    .all(c.maxCardBalance, c.maxAlertsPerMerchant + 1) as { merchant_id: number; account: string; balance: number; rn: number; n: number }[];
  const cap = yuan(c.maxCardBalance);
  return capped(
    rows,
    c.maxAlertsPerMerchant,
    (r) =>
      alert("card-limit", {
        merchantId: r.merchant_id,
        account: r.account,
        recordIndex: null,
        message: `card ${r.account.slice(0, 10)}… of merchant ${r.merchant_id} holds ${yuan(r.balance)}, above the per-card cap of ${cap}`,
        value: r.balance,
        threshold: c.maxCardBalance,
      }),
    (r, more) =>
      alert("card-limit", {
        merchantId: r.merchant_id,
        account: null,
        recordIndex: null,
        message: `merchant ${r.merchant_id}: ${more} more cards above the per-card cap of ${cap}`,
        value: more,
        threshold: c.maxCardBalance,
      }),
  );
}

/** Records that failed verification, oldest first, and the problems that name no record. */
function verificationRules(db: Database, c: RiskConfigValues): Alert[] {
  const rows = db
    .prepare(
      `SELECT * FROM (SELECT record_index, merchant_id, account, problems,
                             row_number() OVER (PARTITION BY merchant_id ORDER BY record_index) AS rn,
                             count(*) OVER (PARTITION BY merchant_id) AS n
                        FROM records WHERE verification = 'failed') ranked
        WHERE rn <= ?`,
    )
    .all(c.maxAlertsPerMerchant + 1) as { record_index: number; merchant_id: number; account: string; problems: string; rn: number; n: number }[];
  const out = capped(
    rows,
    c.maxAlertsPerMerchant,
    (r) =>
      alert("verification-failed", {
        merchantId: r.merchant_id,
        account: r.account,
        recordIndex: r.record_index,
        message: `record #${r.record_index} of merchant ${r.merchant_id} failed verification: ${r.problems.split(",").join(", ")}`,
        value: null,
        threshold: null,
      }),
    (r, more) =>
      alert("verification-failed", {
        merchantId: r.merchant_id,
        account: null,
        recordIndex: null,
        message: `merchant ${r.merchant_id}: ${more} more records failed verification`,
        value: more,
        threshold: null,
      }),
  );
  // Problems the replay found that name no single record (a broken chain between batches, books
  // that differ from the contract's).
  const unattached = db
    .prepare("SELECT kind, message, merchant_id FROM discrepancies WHERE record_index IS NULL ORDER BY id")
    .all() as { kind: string; message: string; merchant_id: number | null }[];
  for (const d of unattached) {
    out.push(
      alert("verification-failed", {
        merchantId: d.merchant_id,
        account: null,
        recordIndex: null,
        message: `${d.kind}: ${d.message}`,
        value: null,
        threshold: null,
      }),
    );
  }
  return out;
}

function pendingRule(db: Database, c: RiskConfigValues, now: number): Alert[] {
  const state = db.prepare("SELECT final_record_count AS f, record_count AS n FROM sync_state WHERE id = 1").get() as
    | { f: number; n: number }
    | undefined;
  if (state === undefined || state.n <= state.f) return [];
  const rows = db
    .prepare(
      `SELECT merchant_id, count(*) AS n, min(record_index) AS first, min(block_time) AS oldest
         FROM records WHERE record_index > ? AND block_time <= ? GROUP BY merchant_id ORDER BY merchant_id`,
    )
    .all(state.f, now - c.maxPendingSeconds) as { merchant_id: number; n: number; first: number; oldest: number }[];
  return rows.map((r) =>
    alert("pending-confirmation", {
      merchantId: r.merchant_id,
      account: null,
      recordIndex: r.first,
      message: `merchant ${r.merchant_id}: ${r.n} records (from #${r.first}) waiting for the supervisors' confirmation for more than ${Math.round(c.maxPendingSeconds / 60)} minutes`,
      value: now - r.oldest,
      threshold: c.maxPendingSeconds,
    }),
  );
}

/**
 * Evaluates every rule against the index as of its last settled block.
 * @param quorum - whether the index follows a SupervisorQuorum (the pending rule needs one)
 */
export function evaluateRisk(db: Database, config: RiskConfigValues, now: number, quorum: boolean): Alert[] {
  const merchants = db
    .prepare(
      `SELECT merchant_id, status, topped_up - consumed - refunded AS liability, first_time, last_service_time
         FROM merchants ORDER BY merchant_id`,
    )
    .all() as unknown as MerchantFigures[];
  return [
    ...merchants.flatMap((m) => merchantRules(db, config, now, m)),
    ...custodyRule(db, merchants),
    ...[...windingDownRule(db, config, now, merchants), ...coolingOffRule(db, config, now)].map((a) => alert(a.rule, a)),
    ...cardRules(db, config),
    ...verificationRules(db, config),
    ...(quorum ? pendingRule(db, config, now) : []),
  ];
}

/** Replaces the alerts table with `alerts` (inside the caller's transaction). */
export function storeAlerts(db: Database, alerts: Alert[], asOfBlock: number, asOfTime: number): void {
  db.exec("DELETE FROM alerts");
  const insert = db.prepare(
    // Numbered from 1 on each evaluation, on both backends (a PostgreSQL identity would go on counting).
    `INSERT INTO alerts (id, rule, severity, merchant_id, account, record_index, message, value, threshold, as_of_block, as_of_time)
     VALUES ((SELECT coalesce(max(id), 0) + 1 FROM alerts), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const a of alerts) {
    insert.run(a.rule, a.severity, a.merchantId, a.account, a.recordIndex, a.message, a.value, a.threshold, asOfBlock, asOfTime);
  }
}
