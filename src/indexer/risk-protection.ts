/**
 * The risk rules about the card holders' protection (docs/RISK.md): `winding-down-unpaid` and
 * `cooling-off-overdue`. Split from risk.ts, which runs them with the others and gives them their
 * severity.
 */
import { yuan } from "../regulator/report.js";
import { overdueCoolingOff } from "./protection-view.js";
import type { Alert, MerchantFigures, RiskConfigValues } from "./risk.js";
import type { Database } from "./schema.js";

const DAY = 86_400;

/** An alert before its severity (risk.ts adds it from RISK_RULES). */
export type RuleFinding = Omit<Alert, "severity">;

/**
 * `winding-down-unpaid`: a merchant that has been winding down (refunds only) for longer than
 * `windingDownMaxDays` and still owes its card holders more than `windingDownMinLiability`. A
 * merchant that winds down is meant to pay everyone back; one that lingers with balances
 * outstanding is not doing so, and closing it leaves its holders to claim from custody.
 */
export function windingDownRule(db: Database, c: RiskConfigValues, now: number, merchants: MerchantFigures[]): RuleFinding[] {
  const since = db.prepare("SELECT max(block_time) AS t FROM merchant_events WHERE merchant_id = ? AND event = 'winding-down'");
  const out: RuleFinding[] = [];
  for (const m of merchants) {
    if (m.status !== 3 || m.liability <= c.windingDownMinLiability) continue;
    const t = (since.get(m.merchant_id) as { t: number | null }).t;
    if (t === null || now - Number(t) <= c.windingDownMaxDays * DAY) continue;
    const days = Math.floor((now - Number(t)) / DAY);
    out.push({
      rule: "winding-down-unpaid",
      merchantId: m.merchant_id,
      account: null,
      recordIndex: null,
      message: `merchant ${m.merchant_id} has been winding down for ${days} days and still owes its card holders ${yuan(m.liability)} (more than ${c.windingDownMaxDays} days allowed)`,
      value: now - Number(t),
      threshold: c.windingDownMaxDays * DAY,
    });
  }
  return out;
}

/** "3 days ago", "1 day ago", "less than a day ago". */
const overdueDays = (seconds: number) => {
  const days = Math.floor(seconds / DAY);
  return days === 0 ? "less than a day ago" : days === 1 ? "1 day ago" : `${days} days ago`;
};

/**
 * `cooling-off-overdue`: a cooling-off return its merchant owes (custody could not pay it when
 * the holder asked) and has not paid by its due date (plus `coolingOffGraceDays`). The holder
 * exercised a legal right and is still waiting for the money. One finding per card.
 */
export function coolingOffRule(db: Database, c: RiskConfigValues, now: number): RuleFinding[] {
  return overdueCoolingOff(db, now - c.coolingOffGraceDays * DAY).map((r) => ({
    rule: "cooling-off-overdue",
    merchantId: r.merchantId,
    account: r.account,
    recordIndex: null,
    message: `merchant ${r.merchantId} owes ${yuan(r.amount)} to the holder of card ${r.account.slice(0, 10)}… for a cooling-off return, due ${overdueDays(now - r.dueBy!)} and not paid`,
    value: now - r.dueBy!,
    threshold: c.coolingOffGraceDays * DAY,
  }));
}
