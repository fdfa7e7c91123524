/**
 * A supervisor node's configuration: schema-checked at the edge (every wrong field by path),
 * then the defaults that depend on the chain (confirmations) filled in by {@link resolveConfirmations}.
 */
import { z } from "zod";

import { addressSchema, privateKeySchema } from "../config.js";

/**
 * Local dev chains (Hardhat 31337, Ganache/Geth --dev 1337) have no reorgs unless a test makes
 * one: there a node signs at once. The same convention as the indexer (src/indexer/indexer.ts).
 */
export const INSTANT_CHAINS: ReadonlySet<bigint> = new Set([31337n, 1337n]);
/** Confirmations on every other chain unless configured: a few minutes on most public chains. */
export const DEFAULT_CONFIRMATIONS = 12;
/** How long one JSON-RPC call may take by default (a wide eth_getLogs included). */
export const DEFAULT_SUPERVISOR_RPC_TIMEOUT_MS = 15_000;

export const SupervisorConfig = z.object({
  ledger: addressSchema,
  quorum: addressSchema,
  /** This node's place among its peers (0, 1, …): staggers who marks and who submits first. */
  index: z.number().int().min(0).max(254),
  /** The regulator's decryption key, if this node holds it: then it checks every commitment too. */
  decryptionKey: privateKeySchema.optional(),
  /** Base URLs of the other nodes' HTTP endpoints. */
  peers: z.array(z.string().url()).default([]),
  /** Where it keeps what it signed. */
  stateDir: z.string().min(1),
  /** Mark a checkpoint every K records… */
  checkpointEvery: z.number().int().min(1).default(1_000),
  /** …or every T milliseconds while records keep coming. */
  checkpointIntervalMs: z.number().int().min(50).default(1_000),
  pollMs: z.number().int().min(10).default(200),
  staggerMs: z.number().int().min(0).default(150),
  fromBlock: z.number().int().min(0).default(0),
  /**
   * Blocks a block must have on top of it before the node replays it and signs a mark in it
   * (0: the head itself). Default: 0 on local dev chains ({@link INSTANT_CHAINS}), else
   * {@link DEFAULT_CONFIRMATIONS}.
   */
  confirmations: z.number().int().min(0).max(10_000).optional(),
  /** How long one JSON-RPC call (and one HTTP request to the node) may take. */
  rpcTimeoutMs: z.number().int().min(100).max(600_000).default(DEFAULT_SUPERVISOR_RPC_TIMEOUT_MS),
  /** How long to wait for a sent transaction's receipt before trying again next round. */
  receiptTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
  /** For tests of the quorum only: sign a wrong state digest, or both a wrong and the right one. */
  fault: z.enum(["none", "wrong-digest", "equivocate"]).default("none"),
});
export type SupervisorConfigInput = z.input<typeof SupervisorConfig>;
export type SupervisorConfigValues = z.output<typeof SupervisorConfig>;

/** The confirmations a node on `chainId` uses: the configured ones, else the chain's default. */
export function resolveConfirmations(configured: number | undefined, chainId: bigint): number {
  return configured ?? (INSTANT_CHAINS.has(chainId) ? 0 : DEFAULT_CONFIRMATIONS);
}
