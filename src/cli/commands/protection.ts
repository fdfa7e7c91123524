/**
 * The card holders' protection in `prepaid merchant <id>`: the merchant's card rules, its claims
 * round once closed, and its cooling-off returns (paid, owed with due dates, met; overdue ones
 * marked), from the index's protection events (src/indexer/protection-view.ts).
 */
import type { ProtectionView } from "../../indexer/protection-view.js";
import { keyValues, localTime, plural, tableOrNone, yuan } from "../format.js";

const CLAIM_COLUMNS = [
  { header: "block", numeric: true },
  { header: "time" },
  { header: "card" },
  { header: "holder" },
  { header: "balance", numeric: true },
  { header: "paid", numeric: true },
  { header: "record", numeric: true },
];

const COOLING_OFF_COLUMNS = [
  { header: "block", numeric: true },
  { header: "asked" },
  { header: "card" },
  { header: "holder" },
  { header: "amount", numeric: true },
  { header: "status" },
  { header: "due by" },
  { header: "paid" },
  { header: "record", numeric: true },
];

/** A rate as a percentage with two decimals ("50.00 %"). */
export const rateText = (rate: number): string => `${(rate * 100).toFixed(2)} %`;

/** "Card rules": the cap and the cooling-off period, and who set them. */
function rulesText(p: ProtectionView): string {
  const r = p.rules;
  if (r === null) return "\nCard rules: none set (no card cap, no cooling-off period).\n";
  return (
    "\nCard rules (MerchantPolicySet):\n" +
    keyValues([
      ["Card cap", r.cardCap === 0 ? "none" : `${yuan(r.cardCap)} a card (top-ups above it are refused)`],
      ["Cooling-off", r.coolingOffDays === 0 ? "none" : `${plural(r.coolingOffDays, "day")} from each top-up`],
      ["Set", `${localTime(r.time)} at block ${r.blockNumber} by ${r.by}`],
    ])
  );
}

/** "Claims": the closed merchant's round, its figures and every claim. */
function claimsText(p: ProtectionView, closed: boolean): string {
  const c = p.claims;
  if (c === null) return closed ? "\nClaims: none opened yet (a regulator opens them on the closed merchant's custody).\n" : "";
  const swept =
    c.swept !== null
      ? `${yuan(c.swept.amount)} to ${c.residualTo}, ${localTime(c.swept.time)}`
      : c.ended
        ? `not yet: due to ${c.residualTo} (anyone may send it)`
        : `after the deadline, to ${c.residualTo}`;
  return [
    `\nClaims (custody ${c.custody}, opened ${localTime(c.openedTime)} by ${c.openedBy}):\n`,
    keyValues([
      ["Pool", `${yuan(c.pool)} (what custody held when claims opened)`],
      ["Liability", `${yuan(c.liability)} (owed to card holders then)`],
      ["Rate", `${rateText(c.rate)} of each card's balance${c.rate < 1 ? " (pool ÷ liability: pro rata)" : " (in full)"}`],
      ["Deadline", `${localTime(c.deadline)} (${c.ended ? "ended" : "open"})`],
      ["Paid", `${yuan(c.paid)} to ${plural(c.claims, "card")}`],
      ["Unpaid", `${yuan(c.unpaid)} (liability − paid)`],
      ["Swept", swept],
    ]),
    `\nClaims made (${c.list.length}):\n`,
    tableOrNone(
      CLAIM_COLUMNS,
      c.list.map((x) => [x.blockNumber, localTime(x.time), x.account, x.holder, yuan(x.balance), yuan(x.paid), x.recordIndex]),
    ),
  ].join("");
}

/** "Cooling-off": every request, paid from custody or owed (with its due date; OVERDUE when past it). */
function coolingOffText(p: ProtectionView): string {
  const o = p.coolingOff;
  if (o.requests.length === 0) return "\nCooling-off returns: none.\n";
  const summary = [
    `returned from custody ${yuan(o.paidFromCustody)}`,
    `met by the merchant ${yuan(o.metByMerchant)}`,
    `owed ${yuan(o.owed)}` + (o.overdueCount > 0 ? ` (${yuan(o.overdue)} OVERDUE on ${plural(o.overdueCount, "card")})` : ""),
  ].join("; ");
  const status = (r: ProtectionView["coolingOff"]["requests"][number]) =>
    r.status === "paid" ? "paid from custody" : r.status === "met" ? "met by merchant" : r.status === "claimed" ? "ended by a claim" : r.overdue ? "OVERDUE" : "owed";
  return [
    `\nCooling-off returns (${o.requests.length}): ${summary}\n`,
    tableOrNone(
      COOLING_OFF_COLUMNS,
      o.requests.map((r) => [
        r.blockNumber,
        localTime(r.time),
        r.account,
        r.holder,
        yuan(r.amount),
        status(r),
        r.dueBy === null ? null : localTime(r.dueBy),
        r.status === "paid" ? localTime(r.time) : r.metTime === null ? null : localTime(r.metTime),
        r.recordIndex,
      ]),
    ),
  ].join("");
}

/** The three sections, as `prepaid merchant <id>` prints them after the custody section. */
export function protectionText(p: ProtectionView, status: string): string {
  return rulesText(p) + claimsText(p, status === "closed") + coolingOffText(p);
}
