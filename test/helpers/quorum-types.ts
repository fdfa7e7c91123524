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

/** An EIP-2098 compact signature as `finalize` takes it. */
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

/** The quorum calls the helper below needs (method syntax: TypeChain's typed methods fit it). */
export interface FinalizingQuorum {
  signingMembers(setId: bigint): Promise<string[]>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  finalize(checkpoint: any, members: string[], signatures: CompactSignature[]): Promise<any>;
}

/** CheckpointFinalized's `signers`: bit i set when members[i] is among `signers`. */
export function signerBits(members: readonly { address: string }[] | readonly string[], signers: readonly ({ address: string } | string)[]): bigint {
  const addr = (x: { address: string } | string) => (typeof x === "string" ? x : x.address).toLowerCase();
  const list = members.map(addr);
  return signers.reduce((bits, s) => bits | (1n << BigInt(list.indexOf(addr(s)))), 0n);
}

/**
 * `quorum.finalize` as a supervisor node calls it: the signing list of the checkpoint's set read
 * from the contract, the 65-byte signatures given in compact form.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function finalizeWith(quorum: FinalizingQuorum, checkpoint: { setId: bigint | string }, signatures: string[]): Promise<any> {
  const members = [...(await quorum.signingMembers(BigInt(checkpoint.setId)))];
  return quorum.finalize(checkpoint, members, toCompact(signatures));
}
