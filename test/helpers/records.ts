/**
 * Builders for packed records in contract tests. The contract never decrypts, so these use
 * random bytes shaped like a format-0x02 ciphertext; the end-to-end tests use real encryption.
 */
import { randomBytes } from "node:crypto";

import { AbiCoder, getBytes, id, keccak256, solidityPackedKeccak256 } from "ethers";

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
 * A record whose commitment and ciphertext are derived from `label` (keccak256), so that the
 * ledger's head, and every signature over it, is the same in every run: for tests whose
 * coverage depends on those bytes (a fuzz with a fixed seed).
 */
export function fixedRecord(kind: number, acct: Uint8Array, amount: bigint, label: string): PackedRecord {
  const bytes = (part: string) => getBytes(id(`${label}:${part}`));
  const body = Uint8Array.from([...bytes("c1"), ...bytes("c2"), ...bytes("c3")]).slice(0, 73);
  return record(kind, acct, amount, { commitment: bytes("commitment"), ciphertext: Uint8Array.from([2, ...body]) });
}

/**
 * head_n computed with ethers' solidityPackedKeccak256 — an implementation independent of
 * src/ledger/codec.ts's linkHead, which the tests check against it.
 */
export function expectedLink(previous: string, index: bigint, merchantId: number, r: PackedRecord): string {
  return solidityPackedKeccak256(["bytes32", "uint64", "uint32", "bytes"], [previous, index, merchantId, encodeRecord(r)]);
}

/**
 * Chain version 2's batch link (docs/FORMAT.md 7) with ethers' solidityPackedKeccak256, for
 * the same independence as {@link expectedLink}: folded in before the batch's records.
 */
export function expectedBatchLink(
  previous: string,
  merchantId: number,
  sequence: bigint,
  recorder: string,
  envelope: Uint8Array | string,
  count: number,
): string {
  return solidityPackedKeccak256(
    ["bytes32", "bytes32", "uint32", "uint64", "address", "bytes32", "uint16"],
    [previous, id("prepaid-ledger.batch.v2"), merchantId, sequence, recorder, keccak256(envelope), count],
  );
}

/**
 * The genesis head of chain version `version` (docs/FORMAT.md 7), written out with ethers'
 * AbiCoder: keccak256(abi.encode(keccak256("prepaid-ledger.chain.v<version>"), chainId, ledger)).
 */
export function expectedGenesis(chainId: bigint, ledger: string, version: 1 | 2): string {
  return keccak256(
    AbiCoder.defaultAbiCoder().encode(["bytes32", "uint256", "address"], [id(`prepaid-ledger.chain.v${version}`), chainId, ledger]),
  );
}

/**
 * The settlement link (docs/FORMAT.md 7.3) with ethers' solidityPackedKeccak256: a refund the
 * custody contract booked (a claim or a cooling-off return).
 */
export function expectedSettlementLink(
  previous: string,
  index: bigint,
  merchantId: number,
  acct: string,
  holder: string,
  reason: number,
  amount: bigint,
): string {
  return solidityPackedKeccak256(
    ["bytes32", "bytes32", "uint64", "uint32", "bytes32", "address", "uint8", "uint48"],
    [previous, id("prepaid-ledger.settlement.v2"), index, merchantId, acct, holder, reason, amount],
  );
}

/** A holder-bound card id, written out with ethers' AbiCoder (docs/FORMAT.md 2.4). */
export function expectedCardId(merchantId: number, holder: string, secret: string): string {
  return keccak256(
    AbiCoder.defaultAbiCoder().encode(
      ["bytes32", "uint32", "address", "bytes32"],
      [id("prepaid-ledger.card.v1"), merchantId, holder, secret],
    ),
  );
}
