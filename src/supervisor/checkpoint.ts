/**
 * The checkpoint supervisors sign (EIP-712 typed data, docs/ARCHITECTURE.md "Confirmation") and
 * what a node serves for one record count.
 */
import { Signature, TypedDataEncoder, concat, toBeHex, type TransactionRequest, type TypedDataDomain } from "ethers";

import { PrepaidLedgerError } from "../errors.js";

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

/** How {@link packCheckpoint} picks the signatures it carries. */
export interface PackOptions {
  /** Places that count at most, in place order: the threshold is enough (default: every member). */
  limit?: number;
  /**
   * The address that will send the transaction. When it is a member, its place is left unsigned
   * (its address listed) and still counts toward `limit`: the contract counts the sender's own
   * place as signed, its transaction being its signature, which saves an ecrecover and 44 bytes.
   */
  sender?: string;
}

/**
 * The packed checkpoint `finalizePacked_11yn` and `finalizeRecords` take (ISupervisorQuorum.finalizeRecords, docs/FORMAT.md 8): recordCount u64
 * | chainHead | stateDigest | setId u64 | n u8 | bitmap of the places that signed | their EIP-2098
 * signatures in place order | the other members' addresses in place order. `members` is the
 * set's signing list (`signingMembers(setId)`); `bySigner` maps lowercase signer addresses to
 * 65-byte signatures over the checkpoint; the first `limit` members (in place order) that signed
 * are used, the sender's own place first when it is a member. The ledger is not carried: the
 * contract signs for its own.
 */
export function packCheckpoint(c: CheckpointJson, members: readonly string[], bySigner: ReadonlyMap<string, string>, options: PackOptions = {}): string {
  const n = members.length;
  if (n === 0 || n > 255) throw new PrepaidLedgerError("INVALID_ARGUMENT", `a signing list holds 1 to 255 members, not ${n}`);
  const limit = options.limit ?? n;
  const sender = options.sender?.toLowerCase();
  const senderPlace = sender === undefined || BigInt(sender) === 0n ? -1 : members.findIndex((m) => m.toLowerCase() === sender);
  let bitmap = 0n;
  let counted = senderPlace >= 0 ? 1 : 0;
  const signatures: string[] = [];
  const others: string[] = [];
  members.forEach((m, i) => {
    const sig = i !== senderPlace && counted < limit ? bySigner.get(m.toLowerCase()) : undefined;
    if (sig === undefined || BigInt(m) === 0n) {
      others.push(m);
      return;
    }
    bitmap |= 1n << BigInt(i);
    counted += 1;
    const s = Signature.from(sig);
    signatures.push(concat([s.r, s.yParityAndS]));
  });
  return concat([
    toBeHex(BigInt(c.recordCount), 8),
    c.chainHead,
    c.stateDigest,
    toBeHex(BigInt(c.setId), 8),
    toBeHex(n, 1),
    toBeHex(bitmap, Math.ceil(n / 8)),
    ...signatures,
    ...others,
  ]);
}

/**
 * The selector of `finalizePacked_11yn()`: the packed checkpoint follows it directly, with no ABI
 * offset, length or padding (ISupervisorQuorum.finalizePacked_11yn). Mined to start with two zero
 * bytes, which are cheaper calldata and first in the contract's dispatcher.
 */
export const FINALIZE_PACKED_SELECTOR = "0x000047c6";

/**
 * The PrepaidLedger storage slots a finalize reads (`chainHead()`: the chain head, slot 8; the record
 * count, slot 9). Listed in the transaction's EIP-2930 access list with the ledger's address, they
 * cost 2,400 + 2 × 1,900 up front instead of 2,600 + 2 × 2,100 when first touched: 300 gas less. A
 * wrong list would only cost gas, never change the outcome; test/supervisor/checkpoint-call.test.ts
 * checks the slots against a deployed ledger.
 */
export const LEDGER_HEAD_SLOTS: readonly string[] = [toBeHex(8, 32), toBeHex(9, 32)];

/**
 * The transaction that makes a packed checkpoint final, as supervisor nodes send it:
 * `finalizePacked_11yn()` with the packed checkpoint after the selector, and an access list naming
 * the ledger's head and record count.
 */
export function finalizeTransaction(quorum: string, ledger: string, packed: string): TransactionRequest {
  return {
    to: quorum,
    data: concat([FINALIZE_PACKED_SELECTOR, packed]),
    accessList: [{ address: ledger, storageKeys: [...LEDGER_HEAD_SLOTS] }],
  };
}
