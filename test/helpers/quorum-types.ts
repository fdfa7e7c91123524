import { ZeroAddress, concat, id, keccak256, recoverAddress, toBeHex, type ContractRunner, type Signer } from "ethers";

/**
 * The EIP-712 types SupervisorQuorum verifies, written out as ISupervisorQuorum's NatSpec states
 * them (not imported from src/, so the contract tests check the code against the interface).
 */

/** What a supervisor signs to confirm a checkpoint. */
export const CHECKPOINT_TYPES = {
  Checkpoint: [
    { name: "ledger", type: "address" },
    { name: "recordCount", type: "uint64" },
    { name: "chainHead", type: "bytes32" },
    { name: "stateDigest", type: "bytes32" },
    { name: "setId", type: "uint64" },
  ],
};

/** What a set's members sign to install the next set at once. */
export const SET_CHANGE_TYPES = {
  SupervisorSetChange: [
    { name: "ledger", type: "address" },
    { name: "setId", type: "uint64" },
    { name: "supervisors", type: "address[]" },
    { name: "threshold", type: "uint8" },
  ],
};

/** What a set's members sign to cancel the governor's proposal. */
export const CANCELLATION_TYPES = {
  SupervisorChangeCancellation: [
    { name: "ledger", type: "address" },
    { name: "setId", type: "uint64" },
    { name: "proposal", type: "uint64" },
  ],
};

/** secp256k1's group order, to build the high-s twin of a signature. */
export const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** An EIP-2098 compact signature as `finalizeRecords` takes it. */
export interface CompactSignature {
  r: string;
  vs: string;
}

/** 65-byte signatures (r | s | v) in EIP-2098 compact form; a malformed one passes through as r = vs = its first 64 bytes, padded. */
export function toCompact(signatures: string[]): CompactSignature[] {
  return signatures.map((sig) => {
    const hex = sig.startsWith("0x") ? sig.slice(2) : sig;
    const r = "0x" + hex.slice(0, 64).padEnd(64, "0");
    const s = BigInt("0x" + (hex.slice(64, 128).padEnd(64, "0") || "0"));
    const v = hex.length >= 130 ? parseInt(hex.slice(128, 130), 16) : 27;
    const vs = (BigInt(v === 28 || v === 1 ? 1 : 0) << 255n) | s;
    return { r, vs: "0x" + vs.toString(16).padStart(64, "0") };
  });
}

/** The quorum calls the helpers below need (method syntax: TypeChain's typed methods fit it). */
export interface FinalizingQuorum {
  signingMembers(setId: bigint): Promise<string[]>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  checkpointDigest(checkpoint: any): Promise<string>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  finalizeRecords(packed: string): Promise<any>;
}

/** A deployed quorum as ethers gives it: the calls above, its address and its runner. */
export interface SupervisorQuorumLike extends FinalizingQuorum {
  getAddress(): Promise<string>;
  readonly runner: ContractRunner | null;
}

/** `finalizePacked_11yn()`'s selector, from its signature (ISupervisorQuorum). */
export const FINALIZE_PACKED_SELECTOR = id("finalizePacked_11yn()").slice(0, 10);

/**
 * The same quorum with `finalizeRecords(packed)` sent as `finalizePacked_11yn()`: the selector and
 * the packed bytes, no ABI wrapping, from the quorum's runner.
 */
export function viaPacked(quorum: SupervisorQuorumLike): FinalizingQuorum {
  return {
    signingMembers: (setId) => quorum.signingMembers(setId),
    checkpointDigest: (checkpoint) => quorum.checkpointDigest(checkpoint),
    finalizeRecords: async (packed) => {
      const runner = quorum.runner as Signer | null;
      if (runner?.sendTransaction === undefined) throw new Error("viaPacked: the quorum has no signer");
      return runner.sendTransaction({ to: await quorum.getAddress(), data: concat([FINALIZE_PACKED_SELECTOR, packed]) });
    },
  };
}

/** The checkpoint fields a packed checkpoint carries (the ledger is implied). */
export interface PackableCheckpoint {
  recordCount: bigint | string;
  chainHead: string;
  stateDigest: string;
  setId: bigint | string;
}

/** A compact signature at a place of the signing list. */
export interface PlacedSignature {
  place: number;
  signature: CompactSignature;
}

/**
 * `finalizeRecords`'s packed checkpoint, written out from ISupervisorQuorum's NatSpec: recordCount u64 |
 * chainHead | stateDigest | setId u64 | n u8 | bitmap ((n + 7) / 8 bytes, bit i: place i signed) |
 * the signatures (r | vs) in place order | the other places' addresses from `members`, in order.
 * `n` defaults to the list's length; places beyond the list that no signature fills are zero.
 */
export function packCheckpoint(c: PackableCheckpoint, members: readonly string[], placed: readonly PlacedSignature[], n = members.length): string {
  const byPlace = new Map(placed.map((p) => [p.place, p.signature]));
  let bitmap = 0n;
  const signatures: string[] = [];
  const others: string[] = [];
  for (let i = 0; i < n; i++) {
    const sig = byPlace.get(i);
    if (sig === undefined) {
      others.push(members[i] ?? ZeroAddress);
    } else {
      bitmap |= 1n << BigInt(i);
      signatures.push(concat([sig.r, sig.vs]));
    }
  }
  return concat([
    toBeHex(BigInt(c.recordCount), 8),
    c.chainHead,
    c.stateDigest,
    toBeHex(BigInt(c.setId), 8),
    toBeHex(n, 1),
    n === 0 ? "0x" : toBeHex(bitmap, Math.ceil(n / 8)),
    ...signatures,
    ...others,
  ]);
}

/** The commitment a set keeps to its signing list: the top 184 bits of keccak256(setId u64 | n u8 | members). */
export function listCommitment(setId: bigint, members: readonly string[]): bigint {
  return BigInt(keccak256(concat([toBeHex(setId, 8), toBeHex(members.length, 1), ...members]))) >> 72n;
}

/**
 * `quorum.finalize` as a supervisor node calls it, for 65-byte signatures given in any order:
 * each placed at its signer's place in the set's signing list (read from the contract); one whose
 * signer has no free place there (an outsider, a duplicate, an invalid signature) at the next free
 * place, beyond the list if it is full — for the contract to refuse.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function finalizeWith(quorum: FinalizingQuorum, checkpoint: PackableCheckpoint & { ledger: string }, signatures: string[]): Promise<any> {
  const members = [...(await quorum.signingMembers(BigInt(checkpoint.setId)))];
  const digest = await quorum.checkpointDigest(checkpoint);
  const compact = toCompact(signatures);
  const taken = new Set<number>();
  const place: (number | undefined)[] = signatures.map((sig) => {
    let signer: string | undefined;
    try {
      signer = recoverAddress(digest, sig).toLowerCase();
    } catch {
      return undefined;
    }
    const i = members.findIndex((m) => m.toLowerCase() === signer);
    if (i < 0 || taken.has(i)) return undefined;
    taken.add(i);
    return i;
  });
  let free = 0;
  const placed = place.map((p, j) => {
    if (p === undefined) {
      while (taken.has(free)) free++;
      p = free;
      taken.add(p);
    }
    return { place: p, signature: compact[j] };
  });
  // A set has at least one place: an unknown set's empty list packs as one zero address.
  const n = Math.max(1, members.length, ...placed.map((p) => p.place + 1));
  return quorum.finalizeRecords(packCheckpoint(checkpoint, members, placed, n));
}

/** CheckpointFinalized's `signers`: bit i set when members[i] is among `signers`. */
export function signerBits(members: readonly { address: string }[] | readonly string[], signers: readonly ({ address: string } | string)[]): bigint {
  const addr = (x: { address: string } | string) => (typeof x === "string" ? x : x.address).toLowerCase();
  const list = members.map(addr);
  return signers.reduce((bits, s) => bits | (1n << BigInt(list.indexOf(addr(s)))), 0n);
}
