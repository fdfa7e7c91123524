/**
 * The indexer's configuration (schema-checked with zod) and the shapes of what a sync reports:
 * its progress, its options, the reorgs it rolled back and its result. Split from indexer.ts,
 * which re-exports them.
 */
import { z } from "zod";

import { addressSchema, privateKeySchema } from "../config.js";
import { DEFAULT_ACCOUNT_CACHE } from "./account-cache.js";
import { RiskConfig } from "./risk.js";

export const IndexerConfig = z
  .object({
    /** The PrepaidLedger address. */
    ledger: addressSchema,
    /** Its SupervisorQuorum: checkpoints are indexed and records shown as confirmed or pending. */
    quorum: addressSchema.optional(),
    /** The regulator's decryption key; without it records are indexed encrypted. Never stored. */
    privateKey: privateKeySchema.optional(),
    /** Path of the SQLite index (created if missing). */
    db: z.string().min(1),
    /** First block to read on a new index (the ledger's deployment block, or 0). */
    fromBlock: z.number().int().min(0).default(0),
    /**
     * Blocks to wait before a block is settled. Default 0 on local development chains
     * (31337, 1337) and 12 elsewhere; a QBFT chain is final at once and can use 0.
     */
    confirmations: z.number().int().min(0).max(100_000).optional(),
    /** Blocks per eth_getLogs request, at most (halved when a node refuses). */
    maxBlockRange: z.number().int().min(1).max(1_000_000).default(10_000),
    /**
     * Cards' books kept in memory between pages (the rest are read back from the index when a
     * record needs them): memory stays flat however many cards the ledger has. Default 20,000,
     * about 30 MB of peak memory; a larger cache buys little speed (a miss is one indexed read).
     */
    accountCache: z.number().int().min(1).max(100_000_000).default(DEFAULT_ACCOUNT_CACHE),
    /** How long any one JSON-RPC call may take before it fails with TIMEOUT (retryable). */
    rpcTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    /** Risk thresholds (src/indexer/risk.ts, docs/RISK.md). */
    risk: RiskConfig.default(RiskConfig.parse({})),
  })
  .strict();
export type IndexerConfigInput = z.input<typeof IndexerConfig>;
export type IndexerConfigValues = z.output<typeof IndexerConfig>;

export interface SyncProgress {
  /** Blocks this sync covers. */
  fromBlock: number;
  targetBlock: number;
  /** Every log up to here is stored. */
  settledBlock: number;
  /** Records in the index, and added by this sync so far. */
  records: number;
  newRecords: number;
  recordsPerSecond: number;
}

export interface SyncOptions {
  onProgress?: (p: SyncProgress) => void;
  /** Stops after the page being written (the index stays consistent). */
  signal?: AbortSignal;
  /** Called when a reorg within the unsettled blocks was rolled back (the sync then goes on). */
  onReorg?: (r: ReorgRollback) => void;
}

/** A reorg the indexer rolled back. */
export interface ReorgRollback {
  /** The newest block the index had that is still on the chain. */
  fork: number;
  /** The index was rolled back to this block (the fork, or the start of the page holding it, minus 1) and read again after it. */
  rolledBackTo: number;
  /** The index's cursor block before the rollback. */
  from: number;
}

export interface SyncResult {
  fromBlock: number;
  targetBlock: number;
  /** Every log up to here is stored. */
  settledBlock: number;
  /**
   * Blocks up to here were at least `confirmations` deep when read; the rows of later blocks
   * (up to settledBlock) are provisional: a reorg rolls them back.
   */
  confirmedBlock: number;
  /** Reorgs rolled back during this sync. */
  reorgs: ReorgRollback[];
  records: number;
  newRecords: number;
  /** Discrepancies and alerts in the index after the sync. */
  discrepancies: number;
  alerts: number;
  /** The merchants' books and the chain head at the settled block equal the contract's views. */
  matchesContract: boolean | "unavailable";
  seconds: number;
  /** The sync stopped early because its signal was aborted. */
  aborted: boolean;
}
