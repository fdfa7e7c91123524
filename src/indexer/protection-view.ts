/**
 * What the regulator sees of a merchant's card holders' protection, derived from its
 * `protection_events` rows (src/indexer/protection.ts) as of the index's last block: its card
 * rules, its claims round, its cooling-off returns. The CLI (`prepaid merchant <id>`), the
 * dashboard's merchant page and the risk rule `cooling-off-overdue` read these views.
 */
import { protectionEvents, type ProtectionEventRow } from "./protection.js";
import { hasTable, type Database } from "./schema.js";

/** The merchant's card rules, as its last `MerchantPolicySet` left them (null: never set, no cap, no cooling-off). */
export interface CardRules {
  /** The most a card may hold after a top-up (fen); 0: no cap. */
  cardCap: number;
  /** Days after a top-up in which the card's holder may take back its unused part; 0: none. */
  coolingOffDays: number;
  /** The regulator who set them, and when. */
  by: string;
  blockNumber: number;
  time: number;
}

/** One card's claim on a closed merchant's custody. */
export interface ClaimRow {
  account: string;
  holder: string;
  to: string;
  /** The card's balance before the claim, and what was paid (all of it, or its pro-rata share). */
  balance: number;
  paid: number;
  /** The settlement record booked (null when nothing was paid). */
  recordIndex: number | null;
  blockNumber: number;
  time: number;
  txHash: string;
}

/** A closed merchant's claims round. */
export interface ClaimsView {
  custody: string;
  /** The regulator who opened it, and when. */
  openedBy: string;
  openedBlock: number;
  openedTime: number;
  /** What custody held when claims opened, and the merchant's liability then (fen). */
  pool: number;
  liability: number;
  /** The fixed payout rate: 1 when the pool covers the liability, else pool ÷ liability. */
  rate: number;
  /** Claims are accepted until this time (seconds). */
  deadline: number;
  /** The deadline has passed (at the index's time). */
  ended: boolean;
  /** Where what nobody claimed goes after the deadline. */
  residualTo: string;
  /** Paid by claims so far, and how many cards claimed. */
  paid: number;
  claims: number;
  /** liability − paid: what the card holders have not been paid (by claims not yet made, or lost to the rate). */
  unpaid: number;
  /** What was left, sent to `residualTo` after the deadline (null: not swept yet). */
  swept: { amount: number; by: string; time: number; blockNumber: number; txHash: string } | null;
  list: ClaimRow[];
}

/** One cooling-off request: paid at once from custody, or owed by the merchant (then met, or not). */
export interface CoolingOffRow {
  account: string;
  holder: string;
  to: string;
  amount: number;
  /** When it was asked. */
  blockNumber: number;
  time: number;
  txHash: string;
  /**
   * `paid`: from custody at once; `owed`: the merchant has not paid yet; `met`: the merchant (or
   * someone for it) paid it later; `claimed`: the card was claimed after the merchant closed,
   * which ends the obligation (the claim pays the balance it was part of).
   */
  status: "paid" | "owed" | "met" | "claimed";
  /** Owed, met or claimed: when the merchant had to have paid. */
  dueBy: number | null;
  /** Owed past its due date (at the index's time). */
  overdue: boolean;
  /** Met: when, and by whom. */
  metTime: number | null;
  metBy: string | null;
  /** The settlement record booked (paid, met). */
  recordIndex: number | null;
}

export interface CoolingOffView {
  requests: CoolingOffRow[];
  /** Returned to holders: paid from custody, and met by the merchant (fen). */
  paidFromCustody: number;
  metByMerchant: number;
  /** Still owed, and how much of it is past its due date. */
  owed: number;
  overdue: number;
  overdueCount: number;
}

export interface ProtectionView {
  merchantId: number;
  /** "Now" of the views: the index's settled block time. */
  asOfTime: number;
  rules: CardRules | null;
  /** Null until a regulator opens claims on the closed merchant. */
  claims: ClaimsView | null;
  coolingOff: CoolingOffView;
}

function claimsOf(events: ProtectionEventRow[], now: number): ClaimsView | null {
  const opened = events.find((e) => e.event === "claims-opened");
  if (opened === undefined) return null;
  const at = (e: ProtectionEventRow) => e.contract === opened.contract;
  const list: ClaimRow[] = events
    .filter((e) => e.event === "claimed" && at(e))
    .map((e) => ({
      account: e.account!,
      holder: e.actor,
      to: e.recipient!,
      balance: e.balance ?? 0,
      paid: e.amount ?? 0,
      recordIndex: e.recordIndex,
      blockNumber: e.blockNumber,
      time: e.time,
      txHash: e.txHash,
    }));
  const sweep = events.find((e) => e.event === "swept" && at(e));
  const pool = opened.amount ?? 0;
  const liability = opened.balance ?? 0;
  const paid = list.reduce((s, c) => s + c.paid, 0);
  const deadline = opened.dueBy ?? 0;
  return {
    custody: opened.contract,
    openedBy: opened.actor,
    openedBlock: opened.blockNumber,
    openedTime: opened.time,
    pool,
    liability,
    rate: liability === 0 || pool >= liability ? 1 : pool / liability,
    deadline,
    ended: now > deadline,
    residualTo: opened.recipient!,
    paid,
    claims: list.length,
    unpaid: Math.max(0, liability - paid),
    swept: sweep === undefined ? null : { amount: sweep.amount ?? 0, by: sweep.actor, time: sweep.time, blockNumber: sweep.blockNumber, txHash: sweep.txHash },
    list,
  };
}

function coolingOffOf(events: ProtectionEventRow[], now: number): CoolingOffView {
  const requests: CoolingOffRow[] = [];
  /** The open obligation of each card (the contract keeps at most one). */
  const open = new Map<string, CoolingOffRow>();
  for (const e of events) {
    const base = { account: e.account!, holder: e.actor, to: e.recipient!, amount: e.amount ?? 0, blockNumber: e.blockNumber, time: e.time, txHash: e.txHash };
    if (e.event === "cooling-off-paid") {
      requests.push({ ...base, status: "paid", dueBy: null, overdue: false, metTime: null, metBy: null, recordIndex: e.recordIndex });
    } else if (e.event === "cooling-off-owed") {
      const row: CoolingOffRow = { ...base, status: "owed", dueBy: e.dueBy, overdue: false, metTime: null, metBy: null, recordIndex: null };
      requests.push(row);
      open.set(e.account!, row);
    } else if ((e.event === "obligation-met" || e.event === "claimed") && open.has(e.account!)) {
      const row = open.get(e.account!)!;
      open.delete(e.account!);
      row.status = e.event === "obligation-met" ? "met" : "claimed";
      row.metTime = e.time;
      row.metBy = e.actor;
      row.recordIndex = e.event === "obligation-met" ? e.recordIndex : null;
    }
  }
  for (const row of open.values()) row.overdue = row.dueBy !== null && now > row.dueBy;
  const sum = (rows: CoolingOffRow[]) => rows.reduce((s, r) => s + r.amount, 0);
  const owed = requests.filter((r) => r.status === "owed");
  const overdue = owed.filter((r) => r.overdue);
  return {
    requests,
    paidFromCustody: sum(requests.filter((r) => r.status === "paid")),
    metByMerchant: sum(requests.filter((r) => r.status === "met")),
    owed: sum(owed),
    overdue: sum(overdue),
    overdueCount: overdue.length,
  };
}

/** The merchant's card rules, claims round and cooling-off returns as of `now` (the index's settled block time). */
export function protectionView(db: Database, merchantId: number, now: number): ProtectionView {
  const events = protectionEvents(db, merchantId);
  const policy = events.filter((e) => e.event === "policy-set").at(-1);
  return {
    merchantId,
    asOfTime: now,
    rules:
      policy === undefined
        ? null
        : { cardCap: policy.cardCap ?? 0, coolingOffDays: policy.coolingOffDays ?? 0, by: policy.actor, blockNumber: policy.blockNumber, time: policy.time },
    claims: claimsOf(events, now),
    coolingOff: coolingOffOf(events, now),
  };
}

/** Every open cooling-off obligation past its due date at `now`, with its merchant (for the risk rule). */
export function overdueCoolingOff(db: Database, now: number): (CoolingOffRow & { merchantId: number })[] {
  const ids = db.prepare("SELECT DISTINCT merchant_id FROM protection_events WHERE event = 'cooling-off-owed' ORDER BY merchant_id").all() as { merchant_id: number }[];
  return ids.flatMap(({ merchant_id }) =>
    coolingOffOf(protectionEvents(db, Number(merchant_id)), now)
      .requests.filter((r) => r.overdue)
      .map((r) => ({ ...r, merchantId: Number(merchant_id) })),
  );
}

/** The card holders' protection over every merchant (the overview's figures). */
export interface ProtectionTotals {
  /** Merchants with card rules set, with a card cap, with a cooling-off period. */
  merchantsWithCap: number;
  merchantsWithCoolingOff: number;
  /** Cooling-off returns owed by merchants, and the part past its due date (fen), on how many cards. */
  coolingOffOwed: number;
  coolingOffOverdue: number;
  coolingOffOverdueCount: number;
  /** Closed merchants whose claims are open (deadline not passed), and what claims paid in all (fen). */
  claimsOpen: number;
  claimsPaid: number;
}

/** {@link ProtectionTotals} as of `now`, from the protection events of every merchant that has any. */
export function protectionTotals(db: Database, now: number): ProtectionTotals {
  const totals: ProtectionTotals = { merchantsWithCap: 0, merchantsWithCoolingOff: 0, coolingOffOwed: 0, coolingOffOverdue: 0, coolingOffOverdueCount: 0, claimsOpen: 0, claimsPaid: 0 };
  if (!hasTable(db, "protection_events")) return totals;
  const ids = db.prepare("SELECT DISTINCT merchant_id FROM protection_events ORDER BY merchant_id").all() as { merchant_id: number }[];
  for (const { merchant_id } of ids) {
    const p = protectionView(db, Number(merchant_id), now);
    if ((p.rules?.cardCap ?? 0) > 0) totals.merchantsWithCap++;
    if ((p.rules?.coolingOffDays ?? 0) > 0) totals.merchantsWithCoolingOff++;
    totals.coolingOffOwed += p.coolingOff.owed;
    totals.coolingOffOverdue += p.coolingOff.overdue;
    totals.coolingOffOverdueCount += p.coolingOff.overdueCount;
    if (p.claims !== null && !p.claims.ended) totals.claimsOpen++;
    totals.claimsPaid += p.claims?.paid ?? 0;
  }
  return totals;
}
