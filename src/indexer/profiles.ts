/**
 * The merchants' registry data in the index (schema version 6): one row per `MerchantProfileSet`
 * of the ledger (name, licence number, category, district — public business data the regulator
 * publishes, docs/FORMAT.md 5), keyed like every row from a log; a merchant's profile is its last
 * row, so a reorg rolls it back by deleting the rows of dead blocks.
 */
import { Interface } from "ethers";

import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import type { RpcLog } from "../regulator/logs.js";
import { type Database, hasTable } from "./schema.js";

const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);
const PROFILE_TOPIC = ledgerInterface.getEvent("MerchantProfileSet")!.topicHash;


/** A merchant's registry data, as its last `MerchantProfileSet` left it. */
export interface MerchantProfile {
  name: string;
  licence: string;
  category: string;
  district: string;
  /** Who published it, and when (block time). */
  regulator: string;
  time: number;
}

export interface ProfileEvent {
  merchantId: number;
  regulator: string;
  name: string;
  licence: string;
  category: string;
  district: string;
}

/** Decodes a log if it is the ledger's `MerchantProfileSet`. */
export function decodeProfileEvent(log: RpcLog): ProfileEvent | undefined {
  if (log.topics[0] !== PROFILE_TOPIC) return undefined;
  const a = ledgerInterface.decodeEventLog("MerchantProfileSet", log.data, log.topics);
  return {
    merchantId: Number(a.merchantId),
    regulator: String(a.regulator).toLowerCase(),
    name: String(a.name),
    licence: String(a.licence),
    category: String(a.category),
    district: String(a.district),
  };
}

/** Stores one profile event (idempotent: keyed by transaction and log index). */
export function insertProfileEvent(db: Database, position: readonly [txHash: string, logIndex: number, blockNumber: number], time: number, e: ProfileEvent): void {
  db.prepare(
    `INSERT INTO merchant_profiles (tx_hash, log_index, block_number, block_time, merchant_id, regulator, name, licence, category, district)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  ).run(...position, time, e.merchantId, e.regulator, e.name, e.licence, e.category, e.district);
}

/**
 * Every merchant's profile (merchant id → its last one). Empty for an index of version 5 opened
 * read-only (it has no such table).
 */
export function profiles(db: Database, merchantId?: number): Map<number, MerchantProfile> {
  if (!hasTable(db, "merchant_profiles")) return new Map();
  const rows = db
    .prepare(
      `SELECT p.* FROM merchant_profiles p
        WHERE ${merchantId === undefined ? "TRUE" : "p.merchant_id = ?"}
          AND NOT EXISTS (SELECT 1 FROM merchant_profiles q WHERE q.merchant_id = p.merchant_id
                          AND (q.block_number > p.block_number OR (q.block_number = p.block_number AND q.log_index > p.log_index)))`,
    )
    .all(...(merchantId === undefined ? [] : [merchantId])) as Record<string, unknown>[];
  return new Map(
    rows.map((r) => [
      Number(r.merchant_id),
      {
        name: String(r.name),
        licence: String(r.licence),
        category: String(r.category),
        district: String(r.district),
        regulator: String(r.regulator),
        time: Number(r.block_time),
      },
    ]),
  );
}
