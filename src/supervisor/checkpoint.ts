/**
 * The checkpoint supervisors sign (EIP-712 typed data, docs/ARCHITECTURE.md "Confirmation") and
 * what a node serves for one record count.
 */
import { TypedDataEncoder, type TypedDataDomain } from "ethers";

/** The signed struct, as JSON (numbers as decimal strings). */
export interface CheckpointJson {
  ledger: string;
  recordCount: string;
  chainHead: string;
  stateDigest: string;
  setId: string;
}

/** What a node serves for one record count: the checkpoint(s) it signed and its signature(s). */
export interface SignedCheckpoint {
  checkpoints: CheckpointJson[];
  signatures: string[];
  /**
   * The block of the mark it signed (a node's own bookkeeping, to withdraw the signature if a
   * reorg removes that block; peers ignore it). Absent in files written before it existed.
   */
  markBlock?: number;
}

export const CHECKPOINT_TYPES = {
  Checkpoint: [
    { name: "ledger", type: "address" },
    { name: "recordCount", type: "uint64" },
    { name: "chainHead", type: "bytes32" },
    { name: "stateDigest", type: "bytes32" },
    { name: "setId", type: "uint64" },
  ],
};

/** The EIP-712 domain of a SupervisorQuorum (docs/ARCHITECTURE.md, "Confirmation"). */
export function checkpointDomain(chainId: bigint, quorum: string): TypedDataDomain {
  return { name: "PrepaidLedgerSupervision", version: "1", chainId, verifyingContract: quorum };
}

/** The EIP-712 hash a supervisor signs for a checkpoint. */
export function checkpointHash(domain: TypedDataDomain, c: CheckpointJson): string {
  return TypedDataEncoder.hash(domain, CHECKPOINT_TYPES, c);
}

/** Whether two signed checkpoints say the same thing (one count, one head, one digest, one set). */
export function sameCheckpoints(a: SignedCheckpoint, b: SignedCheckpoint): boolean {
  const key = (s: SignedCheckpoint) => s.checkpoints.map((c) => `${c.recordCount}:${c.chainHead}:${c.stateDigest}:${c.setId}`.toLowerCase()).join("|");
  return key(a) === key(b);
}
