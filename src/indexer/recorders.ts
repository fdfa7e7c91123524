/**
 * Who may write for each merchant, from the ledger's events alone (docs/FORMAT.md 9).
 *
 * The ledger grants a merchant's recorder role only through its registry, and names every change
 * in an event: MerchantRegistered (the first key), RecorderOffered (a regulator's offer),
 * RecorderOfferCancelled (rejected by a recorder or withdrawn by a regulator), RecorderAdded (an
 * offer carried out) and RecorderRemoved (by a regulator, or by the key itself). The index stores
 * each of these as one row of `recorder_events`, keyed by (transaction, log index) like every
 * other row from a log; the current keys and the standing offers are derived from those rows by
 * replaying them in chain order ({@link deriveRecorders}). Nothing else is stored, so a reorg
 * rolls the view back by deleting the rows of the dead blocks, and no undo log is needed.
 */
import { Interface, getAddress } from "ethers";

import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import type { RpcLog } from "../regulator/logs.js";
import { getMeta, hasTable, num, type Database } from "./schema.js";

const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);
const topic = (name: string) => ledgerInterface.getEvent(name)!.topicHash;

/** What a row of `recorder_events` says happened. */
export type RecorderEventKind = "registered" | "offered" | "offer_cancelled" | "added" | "removed";

/** topic0 of the registry's recorder events, to the kind stored. */
export const RECORDER_TOPICS: Readonly<Record<string, RecorderEventKind>> = {
  [topic("MerchantRegistered")]: "registered",
  [topic("RecorderOffered")]: "offered",
  [topic("RecorderOfferCancelled")]: "offer_cancelled",
  [topic("RecorderAdded")]: "added",
  [topic("RecorderRemoved")]: "removed",
};

export interface DecodedRecorderEvent {
  merchantId: number;
  event: RecorderEventKind;
  /** The key the event is about, lowercase 0x-hex. */
  recorder: string;
  /**
   * Who did it, lowercase: the regulator (registered, offered, added: the one who offered),
   * the recorder who rejected or the regulator who withdrew (offer_cancelled), the regulator
   * or the key itself (removed).
   */
  actor: string;
  /** RecorderOffered only: from when anyone may carry the offer out (unix seconds). */
  executableAt: number | null;
}

const address = (word: string) => getAddress("0x" + word.slice(-40)).toLowerCase();

/** Decodes a ledger log if it is one of the recorder events, else undefined. */
export function decodeRecorderEvent(log: RpcLog): DecodedRecorderEvent | undefined {
  const event = RECORDER_TOPICS[log.topics[0]];
  if (event === undefined || log.topics.length < 4) return undefined;
  return {
    merchantId: Number(BigInt(log.topics[1])),
    event,
    recorder: address(log.topics[2]),
    actor: address(log.topics[3]),
    executableAt: event === "offered" ? Number(BigInt(log.data.slice(0, 66))) : null,
  };
}

/** Stores one decoded event (a log already stored is ignored). */
export function insertRecorderEvent(
  db: Database,
  position: readonly [txHash: string, logIndex: number, blockNumber: number],
  time: number,
  e: DecodedRecorderEvent,
): void {
  db.prepare(
    `INSERT INTO recorder_events (tx_hash, log_index, block_number, block_time, merchant_id, event, recorder, actor, executable_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  ).run(...position, time, e.merchantId, e.event, e.recorder, e.actor, e.executableAt);
}

/** One row of a merchant's recorder history. */
export interface RecorderEventRow {
  txHash: string;
  logIndex: number;
  blockNumber: number;
  time: number;
  event: RecorderEventKind;
  recorder: string;
  actor: string;
  executableAt: number | null;
}

/** A key that may write for the merchant now. */
export interface CurrentRecorder {
  recorder: string;
  /** How it got the role: registration (the first key) or an offer carried out. */
  via: "registered" | "added";
  /** The regulator who registered the merchant with it, or who offered it. */
  by: string;
  sinceBlock: number;
  sinceTime: number;
  txHash: string;
}

/** A regulator's offer that no recorder accepted or rejected yet. */
export interface PendingOffer {
  recorder: string;
  by: string;
  offeredBlock: number;
  offeredTime: number;
  executableAt: number;
  /** Whether anyone may carry it out at the index's time (the settled block's): executableAt ≤ that time. */
  executable: boolean;
  txHash: string;
}

export interface RecorderView {
  merchantId: number;
  /** The keys that may write for the merchant, as of the index's last block, oldest first. */
  current: CurrentRecorder[];
  pending: PendingOffer[];
  /** Every recorder event of the merchant, in chain order. */
  history: RecorderEventRow[];
  /** The index's time the pending offers are judged at (the settled block's timestamp). */
  asOfTime: number;
  /**
   * Null when the index holds every recorder event since its first block. Otherwise the first
   * block whose events it holds: the index was made by a version that did not store them
   * (`prepaid sync --repair` reads them again), and `current` may be incomplete.
   */
  incompleteBefore: number | null;
}


/** Replays a merchant's recorder events (in chain order) into its current keys and standing offers. */
export function deriveRecorders(history: RecorderEventRow[], asOfTime: number): { current: CurrentRecorder[]; pending: PendingOffer[] } {
  const keys = new Map<string, CurrentRecorder>();
  const offers = new Map<string, PendingOffer>();
  for (const e of history) {
    const at = { sinceBlock: e.blockNumber, sinceTime: e.time, txHash: e.txHash };
    if (e.event === "registered") {
      keys.set(e.recorder, { recorder: e.recorder, via: "registered", by: e.actor, ...at });
    } else if (e.event === "added") {
      offers.delete(e.recorder);
      keys.set(e.recorder, { recorder: e.recorder, via: "added", by: e.actor, ...at });
    } else if (e.event === "removed") {
      keys.delete(e.recorder);
    } else if (e.event === "offer_cancelled") {
      offers.delete(e.recorder);
    } else {
      // A new offer for the same key replaces the old one (and restarts its delay).
      offers.delete(e.recorder);
      offers.set(e.recorder, {
        recorder: e.recorder,
        by: e.actor,
        offeredBlock: e.blockNumber,
        offeredTime: e.time,
        executableAt: e.executableAt ?? 0,
        executable: (e.executableAt ?? 0) <= asOfTime,
        txHash: e.txHash,
      });
    }
  }
  return { current: [...keys.values()], pending: [...offers.values()] };
}

/** A merchant's recorder keys, standing offers and recorder history, from the index. */
export function recorderView(db: Database, merchantId: number, asOfTime: number): RecorderView {
  if (!hasTable(db, "recorder_events")) {
    // An index of an older version opened read-only: it has no recorder events at all.
    return { merchantId, current: [], pending: [], history: [], asOfTime, incompleteBefore: Number.MAX_SAFE_INTEGER };
  }
  const rows = db
    .prepare("SELECT * FROM recorder_events WHERE merchant_id = ? ORDER BY block_number, log_index")
    .all(merchantId) as Record<string, unknown>[];
  const history: RecorderEventRow[] = rows.map((r) => ({
    txHash: String(r.tx_hash),
    logIndex: num(r.log_index),
    blockNumber: num(r.block_number),
    time: num(r.block_time),
    event: String(r.event) as RecorderEventKind,
    recorder: String(r.recorder),
    actor: String(r.actor),
    executableAt: r.executable_at === null ? null : num(r.executable_at),
  }));
  const since = getMeta(db, "recorders_from_block");
  return { merchantId, ...deriveRecorders(history, asOfTime), history, asOfTime, incompleteBefore: since === undefined ? null : Number(since) };
}

/**
 * A history row in words, for the CLI and the dashboard alike (the key itself is shown beside
 * it). `address` formats the addresses named (the dashboard shortens them).
 */
export function describeRecorderEvent(e: RecorderEventRow, address: (a: string) => string = (a) => a): string {
  switch (e.event) {
    case "registered":
      return `first key, set when regulator ${address(e.actor)} registered the merchant`;
    case "offered":
      return `offered by regulator ${address(e.actor)}`;
    case "offer_cancelled":
      return `offer withdrawn by ${address(e.actor)} (a recorder's rejection or a regulator's removal)`;
    case "added":
      return `became a recorder (offer of regulator ${address(e.actor)} accepted or carried out)`;
    case "removed":
      return e.actor === e.recorder ? "renounced by the key itself" : `removed by regulator ${address(e.actor)}`;
  }
}

/** Short names of the events, as shown in tables. */
export const RECORDER_EVENT_NAMES: Readonly<Record<RecorderEventKind, string>> = {
  registered: "registered",
  offered: "offered",
  offer_cancelled: "offer cancelled",
  added: "added",
  removed: "removed",
};
