/**
 * Signing a batch transaction with a local key, fast. ethers' `Wallet.signTransaction` works on
 * hex strings and hashes with a pure-JavaScript Keccak: for a 1,000-record batch (~150 kB of
 * calldata) it takes 200–650 ms on the bench machine, more than the node needs to execute the
 * batch, so a merchant signing locally would be limited by signing. This builds the same EIP-1559
 * transaction (docs: EIP-1559 and EIP-2718, type 2) from bytes: the RLP encoding here, the digest
 * with the project's WebAssembly Keccak (src/crypto/keccak.ts), the signature with the wallet's
 * own `SigningKey`. The result is byte for byte what ethers would produce
 * (test/upload/signing.test.ts checks it over random calldata sizes).
 */
import type { SigningKey } from "ethers";

import { PrepaidLedgerError } from "../errors.js";
import { keccak256 } from "../crypto/keccak.js";

/** The fields of a type-2 transaction with no value and an empty access list, as a batch call is. */
export interface BatchTransactionFields {
  chainId: bigint;
  nonce: number;
  maxPriorityFeePerGas: bigint;
  maxFeePerGas: bigint;
  gasLimit: bigint;
  /** The ledger's address, 0x-hex (any case). */
  to: string;
  /** The calldata. */
  data: Uint8Array;
}

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
const EMPTY_LIST = Uint8Array.of(0xc0);

/** A non-negative integer as RLP's minimal big-endian bytes (zero: no bytes). */
function integerBytes(n: bigint, field: string): Uint8Array {
  if (n < 0n) throw new PrepaidLedgerError("INVALID_ARGUMENT", `${field} must not be negative`, { details: { field, value: n } });
  if (n === 0n) return new Uint8Array(0);
  const hex = n.toString(16);
  return Uint8Array.from(Buffer.from(hex.length % 2 === 0 ? hex : "0" + hex, "hex"));
}

/** RLP's length prefix: `short + length` up to 55 bytes, else `long + bytes of length`, then the length. */
function lengthPrefix(length: number, short: number, long: number): Uint8Array {
  if (length <= 55) return Uint8Array.of(short + length);
  const bytes = integerBytes(BigInt(length), "length");
  return Uint8Array.of(long + bytes.length, ...bytes);
}

/** The RLP encoding of a byte string, as pieces (prefix, bytes) so the calldata is copied once. */
function rlpString(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length === 1 && bytes[0]! < 0x80) return [bytes];
  return [lengthPrefix(bytes.length, 0x80, 0xb7), bytes];
}

/** `0x02 || rlp(list of items)`, each item already RLP-encoded as pieces. */
function typedEnvelope(items: Uint8Array[][]): Uint8Array {
  const pieces = items.flat();
  const payload = pieces.reduce((n, p) => n + p.length, 0);
  return Buffer.concat([Uint8Array.of(0x02), lengthPrefix(payload, 0xc0, 0xf7), ...pieces]);
}

/** The RLP items of the unsigned transaction, in EIP-1559's order. */
function unsignedItems(tx: BatchTransactionFields): Uint8Array[][] {
  if (!ADDRESS_RE.test(tx.to)) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "the transaction's `to` is not an address", { details: { to: tx.to } });
  }
  if (!Number.isSafeInteger(tx.nonce)) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "the nonce must be a whole number", { details: { nonce: tx.nonce } });
  }
  if (tx.maxPriorityFeePerGas > tx.maxFeePerGas) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "the priority fee is above the fee cap", {
      details: { maxPriorityFeePerGas: tx.maxPriorityFeePerGas, maxFeePerGas: tx.maxFeePerGas },
    });
  }
  return [
    rlpString(integerBytes(tx.chainId, "chainId")),
    rlpString(integerBytes(BigInt(tx.nonce), "nonce")),
    rlpString(integerBytes(tx.maxPriorityFeePerGas, "maxPriorityFeePerGas")),
    rlpString(integerBytes(tx.maxFeePerGas, "maxFeePerGas")),
    rlpString(integerBytes(tx.gasLimit, "gasLimit")),
    rlpString(Uint8Array.from(Buffer.from(tx.to.slice(2), "hex"))),
    rlpString(new Uint8Array(0)), // value: 0
    rlpString(tx.data),
    [EMPTY_LIST], // accessList: []
  ];
}

/**
 * The unsigned transaction's bytes, `0x02 || rlp([...])`: what its signature covers (hashed).
 *
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for a negative number, a nonce that is not a safe
 *   integer, a `to` that is not a 20-byte hex address, or a priority fee above the fee cap
 */
export function unsignedBatchTransaction(tx: BatchTransactionFields): Uint8Array {
  return typedEnvelope(unsignedItems(tx));
}

/**
 * Signs `tx` with `key`: the raw signed transaction for `eth_sendRawTransaction`, 0x-hex, equal
 * to what ethers' `Wallet.signTransaction` returns for the same fields.
 *
 * @param key - the wallet's signing key (`wallet.signingKey`)
 * @param tx - the batch transaction's fields
 * @returns the signed transaction, 0x-hex
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` as {@link unsignedBatchTransaction}
 */
export function signBatchTransaction(key: SigningKey, tx: BatchTransactionFields): string {
  const items = unsignedItems(tx);
  const digest = keccak256(typedEnvelope(items));
  const signature = key.sign(digest);
  const signed = typedEnvelope([
    ...items,
    rlpString(integerBytes(BigInt(signature.yParity), "yParity")),
    rlpString(integerBytes(BigInt(signature.r), "r")),
    rlpString(integerBytes(BigInt(signature.s), "s")),
  ]);
  return "0x" + Buffer.from(signed.buffer, signed.byteOffset, signed.length).toString("hex");
}
