/**
 * The uploader's configuration: the schema (every wrong field reported by path) and the defaults
 * that depend on the chain (finality depth).
 */
import { z } from "zod";

import { addressSchema, publicKeySchema } from "../config.js";

/**
 * Chains whose blocks are final once made: Hardhat's in-process network, `hardhat node` and anvil
 * (31337, automining) and the repo's QBFT consortium chains (1337). On them a batch is final in
 * the block that includes it; everywhere else the default finality depth is
 * {@link DEFAULT_CONFIRMATIONS}. (The regulator's indexer uses the same rule.)
 */
export const INSTANT_FINALITY_CHAINS: ReadonlySet<bigint> = new Set([31337n, 1337n]);
/** Blocks on top of a batch's block before it counts as final, on other chains (as the indexer). */
export const DEFAULT_CONFIRMATIONS = 12;
/** How long one JSON-RPC call (or one `sendTransaction` with what the signer asks first) may take. */
export const DEFAULT_RPC_TIMEOUT_MS = 30_000;
/** How long upload() waits for its batches to be included and reach finality. */
export const DEFAULT_FINALITY_TIMEOUT_MS = 10 * 60_000;

/** The uploader's configuration; see README "SDK". */
export const UploaderConfig = z.object({
  /** The PrepaidLedger address. */
  ledger: addressSchema,
  merchantId: z.number().int().min(1).max(2 ** 32 - 1),
  /** The regulator's public key: always a recipient. */
  regulatorPublicKey: publicKeySchema,
  /** The merchant's own public key, to read its records back from the chain (optional). */
  merchantPublicKey: publicKeySchema.optional(),
  /** The journal file (JSON lines); one per merchant and ledger. */
  journalPath: z.string().min(1),
  /** Records per transaction. 400 keeps a batch of brand-new accounts under 2^24 gas. */
  batchSize: z.number().int().min(1).max(4_000).default(400),
  /** "batch": one AES-GCM data key per batch (fast); "single": ECIES per record. */
  mode: z.enum(["batch", "single"]).default("batch"),
  /**
   * Finality depth: blocks that must be on top of a batch's block before the batch counts as
   * landed (0: final in the block that includes it). Default 0 on chains 31337 and 1337
   * (in-process network, `hardhat node`, anvil, the QBFT chains), 12 elsewhere. Until then a
   * batch is provisional: upload() waits, and a reorg that removes it is detected by block hash
   * and the batch sent again. (Before this version the field counted the including block too,
   * with a minimum and default of 1: the old 1 is the new 0.)
   */
  confirmations: z.number().int().min(0).max(1_000).optional(),
  /** Time allowed for each JSON-RPC call (`sendTransaction` included), in milliseconds. */
  rpcTimeoutMs: z.number().int().min(1).max(3_600_000).default(DEFAULT_RPC_TIMEOUT_MS),
  /** How often to ask for receipts and the head while waiting for inclusion and finality. */
  pollingIntervalMs: z.number().int().min(1).max(60_000).default(1_000),
  /**
   * How long upload() / recover() wait for batches to be included and final before they give up
   * with a retryable `TIMEOUT` (the batches stay journaled; calling again goes on waiting).
   */
  finalityTimeoutMs: z.number().int().min(1).max(24 * 3_600_000).default(DEFAULT_FINALITY_TIMEOUT_MS),
  /**
   * Simulate each batch (eth_estimateGas) before journaling it, so a batch the ledger would
   * refuse (an overdraw, a suspended merchant) fails here and is never written or sent.
   */
  preflight: z.boolean().default(true),
  /**
   * Batches sent and not yet landed at once (1 to 16). Default: 2 without preflight, 1 with it
   * (a preflight simulates a batch on the state its predecessor leaves, so it waits for it).
   * With 2, a batch goes to the node the moment the node has answered for the one before, while
   * the uploader reads that one's receipt and journals it: the node never waits for the client.
   * Consecutive nonces keep the batches in sequence order (docs/RELIABILITY.md).
   */
  inFlight: z.number().int().min(1).max(16).optional(),
}).superRefine((c, ctx) => {
  if (c.preflight && c.inFlight !== undefined && c.inFlight > 1) {
    ctx.addIssue({
      code: "custom",
      path: ["inFlight"],
      message: `inFlight ${c.inFlight} needs preflight: false (a preflight simulates a batch on the state the batch before it leaves)`,
    });
  }
});
export type UploaderConfigInput = z.input<typeof UploaderConfig>;

/** Batches in flight: the configured number, or 2 without preflight and 1 with it. */
export function inFlightFor(config: { preflight: boolean; inFlight?: number }): number {
  return config.inFlight ?? (config.preflight ? 1 : 2);
}
export type UploaderConfigValues = z.output<typeof UploaderConfig>;

/** The finality depth for `chainId`: the configured one, or the chain's default. */
export function confirmationsFor(chainId: bigint, configured: number | undefined): number {
  return configured ?? (INSTANT_FINALITY_CHAINS.has(chainId) ? 0 : DEFAULT_CONFIRMATIONS);
}
