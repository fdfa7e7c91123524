/**
 * Builders for packed records in contract tests. The contract never decrypts, so these use
 * random bytes shaped like a format-0x02 ciphertext; the end-to-end tests use real encryption.
 */
import { randomBytes } from "node:crypto";

import { getBytes, id, solidityPackedKeccak256 } from "ethers";

import { encodeRecord, type PackedRecord } from "../../src/ledger/codec.js";

export const TopUp = 1;
export const Consume = 2;
export const Refund = 3;

/** A deterministic opaque account id for tests: keccak256("account:<name>"). */
export function account(name: string): Uint8Array {
  return getBytes(id(`account:${name}`));
}

/** A record with a random commitment and a 74-byte random "ciphertext". */
export function record(kind: number, acct: Uint8Array, amount: bigint, overrides: Partial<PackedRecord> = {}): PackedRecord {
  return {
    kind,
    amount,
    account: acct,
    commitment: randomBytes(32),
    ciphertext: Uint8Array.from([2, ...randomBytes(73)]),
    ...overrides,
  };
}

/**
 * head_n computed with ethers' solidityPackedKeccak256 — an implementation independent of
 * src/ledger/codec.ts's linkHead, which the tests check against it.
 */
export function expectedLink(previous: string, index: bigint, merchantId: number, r: PackedRecord): string {
  return solidityPackedKeccak256(["bytes32", "uint64", "uint32", "bytes"], [previous, index, merchantId, encodeRecord(r)]);
}
