/**
 * The card holders' protection, from events alone (docs/FORMAT.md 6, 8.4 and 9; docs/CUSTODY.md):
 * each merchant's card rules (the ledger's `MerchantPolicySet`), its claims round once closed
 * (custody's `ClaimsOpened`, `Claimed`, `ClaimsSwept`) and its cooling-off returns (custody's
 * `CoolingOffPaid`, `CoolingOffOwed`, `ObligationMet`). The index stores each as one row of
 * `protection_events`, keyed by (transaction, log index) like every row from a log; the views
 * here are derived from those rows, so a reorg rolls them back by deleting the rows of dead
 * blocks. The refunds these payouts book on the ledger (`Settled`) are records, in `records`.
 */
import { Interface } from "ethers";

import { LEDGER_TOPICS } from "../regulator/events.js";
import type { RpcLog } from "../regulator/logs.js";
import { hasTable, num, numOrNull, type Database } from "./schema.js";

/** Custody's holder-protection events, as IHolderProtection declares them. */
export const HOLDER_PROTECTION_EVENTS_ABI = [
  "event ClaimsOpened(uint32 indexed merchantId, address indexed regulator, uint256 pool, uint256 liability, uint64 deadline, address residualTo)",
  "event Claimed(uint32 indexed merchantId, bytes32 indexed account, address indexed holder, address to, uint256 balance, uint256 paid, uint64 recordIndex)",
  "event ClaimsSwept(uint32 indexed merchantId, address indexed to, uint256 amount, address by)",
  "event CoolingOffPaid(uint32 indexed merchantId, bytes32 indexed account, address indexed holder, address to, uint256 amount, uint64 recordIndex)",
  "event CoolingOffOwed(uint32 indexed merchantId, bytes32 indexed account, address indexed holder, address to, uint256 amount, uint64 dueBy)",
  "event ObligationMet(uint32 indexed merchantId, bytes32 indexed account, address indexed payer, address to, uint256 amount, uint64 recordIndex)",
  "event MerchantPolicySet(uint32 indexed merchantId, address indexed regulator, uint48 cardCap, uint16 coolingOffDays)",
] as const;

/** What a row of `protection_events` says happened. */
export type ProtectionEventKind = "policy-set" | "claims-opened" | "claimed" | "swept" | "cooling-off-paid" | "cooling-off-owed" | "obligation-met";

const iface = new Interface(HOLDER_PROTECTION_EVENTS_ABI);
const NAMES: Record<string, ProtectionEventKind> = {
  ClaimsOpened: "claims-opened",
  Claimed: "claimed",
  ClaimsSwept: "swept",
  CoolingOffPaid: "cooling-off-paid",
  CoolingOffOwed: "cooling-off-owed",
  ObligationMet: "obligation-met",
};

/** topic0 of custody's holder-protection events, to the kind stored. */
export const PROTECTION_TOPICS: Readonly<Record<string, ProtectionEventKind>> = Object.fromEntries(
  Object.entries(NAMES).map(([name, kind]) => [iface.getEvent(name)!.topicHash, kind]),
);

/** One decoded protection event, as stored (null: the column does not apply to this event). */
export interface DecodedProtectionEvent {
  /** The ledger for `policy-set`, else the custody contract. */
  contract: string;
  merchantId: number;
  event: ProtectionEventKind;
  /** The card (claimed, cooling-off-*, obligation-met). */
  account: string | null;
  /** Who acted: the regulator (policy-set, claims-opened), the holder (claimed, cooling-off-*), the payer (obligation-met), the caller (swept). */
  actor: string;
  /** Where the money went or goes (`to`); claims-opened: the residual recipient. */
  recipient: string | null;
  /** Paid (claimed), swept, returned or owed (cooling-off-*, obligation-met); claims-opened: the pool. */
  amount: number | null;
  /** claimed: the card's balance before; claims-opened: the merchant's liability. */
  balance: number | null;
  /** The settlement record booked on the ledger (null when none: nothing paid, or owed). */
  recordIndex: number | null;
  /** claims-opened: the deadline; cooling-off-owed: when the merchant must have paid. */
  dueBy: number | null;
  cardCap: number | null;
  coolingOffDays: number | null;
}

const lower = (v: unknown) => String(v).toLowerCase();
const none = { account: null, recipient: null, amount: null, balance: null, recordIndex: null, dueBy: null, cardCap: null, coolingOffDays: null };

/**
 * Decodes a log if it is a protection event: `MerchantPolicySet` of the ledger (`fromLedger`),
 * or a holder-protection event of a custody contract; else undefined.
 */
export function decodeProtectionEvent(log: RpcLog, fromLedger: boolean): DecodedProtectionEvent | undefined {
  const topic = log.topics[0];
  if (fromLedger ? topic !== LEDGER_TOPICS.MerchantPolicySet : PROTECTION_TOPICS[topic] === undefined) return undefined;
  const p = iface.parseLog({ topics: log.topics, data: log.data });
  if (p === null) return undefined;
  const a = p.args;
  const base = { ...none, contract: log.address.toLowerCase(), merchantId: Number(a.merchantId) };
  const index = (v: unknown) => (BigInt(v as bigint) === 0n ? null : Number(v));
  switch (p.name) {
    case "MerchantPolicySet":
      return { ...base, event: "policy-set", actor: lower(a.regulator), cardCap: Number(a.cardCap), coolingOffDays: Number(a.coolingOffDays) };
    case "ClaimsOpened":
      return { ...base, event: "claims-opened", actor: lower(a.regulator), recipient: lower(a.residualTo), amount: Number(a.pool), balance: Number(a.liability), dueBy: Number(a.deadline) };
    case "Claimed":
      return { ...base, event: "claimed", account: lower(a.account), actor: lower(a.holder), recipient: lower(a.to), amount: Number(a.paid), balance: Number(a.balance), recordIndex: index(a.recordIndex) };
    case "ClaimsSwept":
      return { ...base, event: "swept", actor: lower(a.by), recipient: lower(a.to), amount: Number(a.amount) };
    case "CoolingOffOwed":
      return { ...base, event: "cooling-off-owed", account: lower(a.account), actor: lower(a.holder), recipient: lower(a.to), amount: Number(a.amount), dueBy: Number(a.dueBy) };
    default:
      return {
        ...base,
        event: NAMES[p.name],
        account: lower(a.account),
        actor: lower(p.name === "ObligationMet" ? a.payer : a.holder),
        recipient: lower(a.to),
        amount: Number(a.amount),
        recordIndex: index(a.recordIndex),
      };
  }
}

/** Stores one decoded event (a log already stored is ignored). */
export function insertProtectionEvent(
  db: Database,
  position: readonly [txHash: string, logIndex: number, blockNumber: number],
  time: number,
  e: DecodedProtectionEvent,
): void {
  db.prepare(
    `INSERT INTO protection_events (tx_hash, log_index, block_number, block_time, contract, merchant_id, event, account, actor, recipient,
                                    amount, balance, record_index, due_by, card_cap, cooling_off_days)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  ).run(
    ...position,
    time,
    e.contract,
    e.merchantId,
    e.event,
    e.account,
    e.actor,
    e.recipient,
    e.amount,
    e.balance,
    e.recordIndex,
    e.dueBy,
    e.cardCap,
    e.coolingOffDays,
  );
}

/** A row of `protection_events`, read back. */
export interface ProtectionEventRow extends DecodedProtectionEvent {
  txHash: string;
  logIndex: number;
  blockNumber: number;
  time: number;
}

/** Every protection event of a merchant (at `contracts`, when given), in chain order. */
export function protectionEvents(db: Database, merchantId: number): ProtectionEventRow[] {
  if (!hasTable(db, "protection_events")) return [];
  const rows = db
    .prepare("SELECT * FROM protection_events WHERE merchant_id = ? ORDER BY block_number, log_index")
    .all(merchantId) as Record<string, unknown>[];
  const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return rows.map((r) => ({
    txHash: String(r.tx_hash),
    logIndex: num(r.log_index),
    blockNumber: num(r.block_number),
    time: num(r.block_time),
    contract: String(r.contract),
    merchantId: num(r.merchant_id),
    event: String(r.event) as ProtectionEventKind,
    account: text(r.account),
    actor: String(r.actor),
    recipient: text(r.recipient),
    amount: numOrNull(r.amount),
    balance: numOrNull(r.balance),
    recordIndex: numOrNull(r.record_index),
    dueBy: numOrNull(r.due_by),
    cardCap: numOrNull(r.card_cap),
    coolingOffDays: numOrNull(r.cooling_off_days),
  }));
}
