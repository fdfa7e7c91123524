/**
 * The index's answers as the CLI, the exports and the dashboard show them: the row types, and how
 * a table row becomes one. The queries that read them are queries.ts.
 */
import { merchantStatusName, type MerchantStatusName } from "../regulator/books.js";
import type { CustodyFigures } from "./custody.js";
import type { MerchantProfile } from "./profiles.js";
import type { ProtectionTotals } from "./protection-view.js";
import type { ReorgMark } from "./reorg.js";
import type { Alert } from "./risk.js";
import { num, numOrNull } from "./schema.js";

export type MerchantStatus = MerchantStatusName;
export type Verification = "verified" | "failed" | "encrypted";

export const KIND_NAMES: Record<number, string> = { 1: "top-up", 2: "consume", 3: "refund" };
/** A settlement's reason (IPrepaidLedger.SettlementReason) by number. */
export const SETTLEMENT_REASONS: Record<number, "claim" | "cooling-off"> = { 1: "claim", 2: "cooling-off" };

export interface IndexInfo {
  chainId: string;
  ledger: string;
  quorum: string | null;
  /** The address of the regulator key records were decrypted with, or null (not decrypted). */
  decryptedFor: string | null;
  fromBlock: number;
  confirmations: number;
  /** Every log up to this block is indexed; its timestamp is the risk rules' "now". */
  settledBlock: number;
  settledTime: number;
  recordCount: number;
  chainHead: string;
  /** Records 1..finalRecordCount are covered by the quorum's last final checkpoint. */
  finalRecordCount: number;
  /**
   * Blocks up to here were `confirmations` deep when read; the rows of later blocks (up to
   * settledBlock) are provisional: a reorg rolls them back.
   */
  confirmedBlock: number;
  /**
   * Set when a reorg went deeper than the confirmations: the index may hold rows of a dead
   * branch until `prepaid sync --repair`. Null when the index follows the chain.
   */
  reorg: ReorgMark | null;
}

export interface MerchantRow {
  merchantId: number;
  status: MerchantStatus;
  recorder: string | null;
  suspendedReason: string | null;
  accountCount: number;
  recordCount: number;
  toppedUp: number;
  consumed: number;
  refunded: number;
  /** Outstanding prepaid balance the merchant owes its card holders. */
  liability: number;
  batches: number;
  nextSequence: number;
  /** Records that failed verification (docs/WORKBENCH.md, "Glossary"). */
  failedRecords: number;
  /** Block time of its first record, of its last, and of its last consumption or refund ("last service"). */
  firstRecordTime: number | null;
  lastRecordTime: number | null;
  lastServiceTime: number | null;
  alerts: number;
  /** Its name from the regulator's registry data (`MerchantProfileSet`), null if none was published. */
  name: string | null;
  /** The whole registry data, null if none was published (src/indexer/profiles.ts). */
  profile: MerchantProfile | null;
}

export interface Totals {
  merchants: number;
  accounts: number;
  records: number;
  verified: number;
  failed: number;
  encrypted: number;
  /** Records covered by the quorum's last final checkpoint (0 without a quorum). */
  confirmed: number;
  /** Records not yet covered by a final checkpoint (0 without a quorum). */
  pending: number;
  toppedUp: number;
  consumed: number;
  refunded: number;
  liability: number;
  alerts: number;
}

/** An alert as stored by the last risk evaluation (src/indexer/risk.ts). */
export interface AlertRow extends Alert {
  id: number;
  /** The merchant's name from its registry data, null if none (or no merchant). */
  merchantName: string | null;
  asOfBlock: number;
  asOfTime: number;
}

export interface Overview {
  info: IndexInfo;
  totals: Totals;
  merchants: MerchantRow[];
  /** The most severe alerts first, at most `alertLimit`. */
  alerts: AlertRow[];
  /**
   * The custody contract attached to the ledger (null: none) and each merchant's custody figures
   * there, by merchant id.
   */
  custody: { contract: string | null; merchants: Record<number, CustodyFigures> };
  /** The card holders' protection over all merchants: card rules, cooling-off owed and overdue, claims. */
  protection: ProtectionTotals;
}

export interface LiabilityPoint {
  blockNumber: number;
  time: number;
  liability: number;
  toppedUp: number;
  consumed: number;
  refunded: number;
}

export interface AccountRow {
  merchantId: number;
  account: string;
  recordCount: number;
  initialAmount: number;
  toppedUp: number;
  consumed: number;
  refunded: number;
  balance: number;
  /** Records that failed verification. */
  failedRecords: number;
  /** Block time of its first record (the sale), and of its last. */
  openedTime: number;
  lastRecordTime: number;
}

export interface RecordRow {
  recordIndex: number;
  merchantId: number;
  account: string;
  kind: number;
  kindName: string;
  amount: number;
  blockNumber: number;
  blockTime: number;
  txHash: string;
  logIndex: number;
  commitment: string;
  verification: Verification;
  problems: string[];
  /** Covered by a final checkpoint; null when the index follows no quorum. */
  confirmed: boolean | null;
  /** Decrypted details, when the key opened them. */
  details: { time: number; orderRef: string; memo: string } | null;
  /**
   * A settlement: a refund the attached custody booked when it paid the card's holder (a claim
   * on a closed merchant, or a cooling-off return). Public: no commitment (""), no details.
   */
  settlement: { reason: "claim" | "cooling-off" | "unknown"; holder: string } | null;
}

export interface DiscrepancyRow {
  id: number;
  kind: string;
  message: string;
  recordIndex: number | null;
  merchantId: number | null;
  account: string | null;
  txHash: string | null;
  blockNumber: number | null;
  details: Record<string, unknown> | null;
}

export interface Page {
  limit?: number;
  offset?: number;
}

export interface RecordFilter extends Page {
  merchantId?: number;
  account?: string;
  verification?: Verification;
  /** Only the records booked by this transaction (32 bytes of 0x-hex). */
  txHash?: string;
  /** Only records after this index (keyset paging: stays fast deep into a big index, unlike `offset`). */
  afterIndex?: number;
  /** Oldest first (default) or newest first. */
  order?: "asc" | "desc";
}

/** A merchant's row of the index as the CLI and dashboard show it (its name from the registry's profiles). */
export function merchantRow(r: Record<string, unknown>, names: Map<number, MerchantProfile>): MerchantRow {
  const profile = names.get(num(r.merchant_id)) ?? null;
  return {
    merchantId: num(r.merchant_id),
    status: merchantStatusName(num(r.status)),
    recorder: (r.recorder as string | null) ?? null,
    suspendedReason: (r.suspended_reason as string | null) ?? null,
    accountCount: num(r.account_count),
    recordCount: num(r.record_count),
    toppedUp: num(r.topped_up),
    consumed: num(r.consumed),
    refunded: num(r.refunded),
    liability: num(r.topped_up) - num(r.consumed) - num(r.refunded),
    batches: num(r.batches),
    nextSequence: num(r.next_sequence),
    failedRecords: num(r.bad_records),
    firstRecordTime: numOrNull(r.first_time),
    lastRecordTime: numOrNull(r.last_time),
    lastServiceTime: numOrNull(r.last_service_time),
    alerts: num(r.alerts ?? 0),
    name: profile?.name ?? null,
    profile,
  };
}

/** A card's row of the index. */
export function accountRow(r: Record<string, unknown>): AccountRow {
  return {
    merchantId: num(r.merchant_id),
    account: String(r.account),
    recordCount: num(r.record_count),
    initialAmount: num(r.initial_amount),
    toppedUp: num(r.topped_up),
    consumed: num(r.consumed),
    refunded: num(r.refunded),
    balance: num(r.balance),
    failedRecords: num(r.bad_records),
    openedTime: num(r.opened_time),
    lastRecordTime: num(r.last_time),
  };
}

/** A record's row of the index; `final` is the last final record index, or null without a quorum. */
export function recordRow(r: Record<string, unknown>, final: number | null): RecordRow {
  const index = num(r.record_index);
  const settlement = numOrNull(r.settlement);
  return {
    recordIndex: index,
    merchantId: num(r.merchant_id),
    account: String(r.account),
    kind: num(r.kind),
    kindName: (KIND_NAMES[num(r.kind)] ?? `kind ${String(r.kind)}`) + (settlement === null ? "" : ` (${SETTLEMENT_REASONS[settlement] ?? "settlement"})`),
    amount: num(r.amount),
    blockNumber: num(r.block_number),
    blockTime: num(r.block_time),
    txHash: String(r.tx_hash),
    logIndex: num(r.log_index),
    commitment: String(r.commitment),
    verification: String(r.verification) as Verification,
    problems: String(r.problems) === "" ? [] : String(r.problems).split(","),
    confirmed: final === null ? null : index <= final,
    details:
      r.d_time === null || r.d_time === undefined
        ? null
        : { time: num(r.d_time), orderRef: String(r.d_order_ref), memo: String(r.d_memo) },
    settlement: settlement === null ? null : { reason: SETTLEMENT_REASONS[settlement] ?? "unknown", holder: String(r.holder) },
  };
}

/** An alert's row of the index, before its merchant's name is added. */
export function alertRow(r: Record<string, unknown>): Omit<AlertRow, "merchantName"> {
  return {
    id: num(r.id),
    rule: String(r.rule) as AlertRow["rule"],
    severity: String(r.severity) as AlertRow["severity"],
    merchantId: numOrNull(r.merchant_id),
    account: (r.account as string | null) ?? null,
    recordIndex: numOrNull(r.record_index),
    message: String(r.message),
    value: numOrNull(r.value),
    threshold: numOrNull(r.threshold),
    asOfBlock: num(r.as_of_block),
    asOfTime: num(r.as_of_time),
  };
}
