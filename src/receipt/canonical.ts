/**
 * The canonical salted plaintext of a record (docs/FORMAT.md 2.1) and its commitment, written for
 * any JavaScript runtime: no `node:` module, no `Buffer`, keccak256 from @noble/hashes. The
 * receipt module is re-exported by the browser entry, so it cannot use src/crypto/details.ts
 * (node:crypto, Buffer, WebAssembly keccak); test/receipt/receipt.test.ts holds this encoder to
 * that one byte for byte, on random details.
 */
import { keccak_256 } from "@noble/hashes/sha3.js";

import { PrepaidLedgerError } from "../errors.js";

/** What a merchant's system knows about one transaction (FORMAT.md 2); same shape as `RecordDetails`. */
export interface ReceiptDetails {
  /** 1 top-up, 2 consumption, 3 refund. */
  kind: 1 | 2 | 3;
  merchantId: number;
  /** `0x` and 64 lowercase hex digits. */
  account: string;
  /** Minor units (fen), `1 ≤ amount < 2^48`. */
  amount: bigint;
  /** Unix seconds at the merchant, `0 ≤ time < 2^40`. */
  time: number;
  orderRef: string;
  memo: string;
}

/** Fixed bytes of the canonical form: version, kind, merchantId, account, amount, time, salt, two lengths. */
export const CANONICAL_FIXED = 1 + 1 + 4 + 32 + 6 + 5 + 16 + 2;
const MAX_U32 = 2 ** 32 - 1;
const MAX_U40 = 2 ** 40 - 1;
const MAX_AMOUNT = (1n << 48n) - 1n;
const HEX_RE = /^0x(?:[0-9a-fA-F]{2})*$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A receipt whose `field` is not in the documented format. */
export function malformed(field: string, reason: string, facts: Record<string, unknown> = {}, cause?: unknown): PrepaidLedgerError {
  return new PrepaidLedgerError("RECEIPT_MALFORMED", `The receipt's ${field} is malformed: ${reason}`, {
    details: { field, reason, ...facts },
    cause,
  });
}

/** `0x`-hex of exactly `length` bytes (either case) to bytes; `field` names it in the error. */
export function hexBytes(value: unknown, length: number, field: string): Uint8Array {
  if (typeof value !== "string" || !HEX_RE.test(value) || value.length !== 2 + 2 * length) {
    throw malformed(field, `not 0x and ${2 * length} hex digits`);
  }
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = parseInt(value.slice(2 + 2 * i, 4 + 2 * i), 16);
  return out;
}

/** Bytes to lowercase `0x`-hex. */
export function toHex(bytes: Uint8Array): string {
  let s = "0x";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

function utf8Of(field: string, value: unknown): Uint8Array {
  if (typeof value !== "string") throw malformed(field, "not a string");
  if (!(value as unknown as { isWellFormed(): boolean }).isWellFormed()) throw malformed(field, "not well-formed Unicode");
  const bytes = encoder.encode(value);
  if (bytes.length > 255) throw malformed(field, "longer than 255 UTF-8 bytes", { byteLength: bytes.length });
  return bytes;
}

/**
 * Checks every detail against the ranges of FORMAT.md 2.
 *
 * @param d - the details, as read from a receipt
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` with `details.field` naming the first bad one
 */
export function checkReceiptDetails(d: ReceiptDetails): void {
  if (d.kind !== 1 && d.kind !== 2 && d.kind !== 3) throw malformed("kind", "not 1, 2 or 3");
  if (!Number.isInteger(d.merchantId) || d.merchantId < 1 || d.merchantId > MAX_U32) throw malformed("merchantId", "not 1 to 2^32-1");
  hexBytes(d.account, 32, "account");
  if (typeof d.amount !== "bigint" || d.amount < 1n || d.amount > MAX_AMOUNT) throw malformed("amount", "not 1 to 2^48-1");
  if (!Number.isInteger(d.time) || d.time < 0 || d.time > MAX_U40) throw malformed("time", "not 0 to 2^40-1");
  utf8Of("orderRef", d.orderRef);
  utf8Of("memo", d.memo);
}

function writeUint(out: Uint8Array, at: number, value: bigint, len: number): void {
  for (let i = len - 1; i >= 0; i--) {
    out[at + i] = Number(value & 0xffn);
    value >>= 8n;
  }
}

/** A `len`-byte big-endian unsigned integer. */
export function readUint(bytes: Uint8Array, at: number, len: number): bigint {
  let v = 0n;
  for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(bytes[at + i]!);
  return v;
}

/**
 * Encodes the canonical salted plaintext (FORMAT.md 2.1): the preimage of the record's commitment.
 *
 * @param d - the details (checked first)
 * @param salt - the record's 16-byte salt
 * @returns `0x01 | kind | merchantId | account | amount | time | salt | orderRef | memo`
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` naming a bad detail or salt
 */
export function canonicalOf(d: ReceiptDetails, salt: Uint8Array): Uint8Array {
  checkReceiptDetails(d);
  if (!(salt instanceof Uint8Array) || salt.length !== 16) throw malformed("salt", "not 16 bytes");
  const ref = utf8Of("orderRef", d.orderRef);
  const memo = utf8Of("memo", d.memo);
  const out = new Uint8Array(CANONICAL_FIXED + ref.length + memo.length);
  out[0] = 1;
  out[1] = d.kind;
  writeUint(out, 2, BigInt(d.merchantId), 4);
  out.set(hexBytes(d.account, 32, "account"), 6);
  writeUint(out, 38, d.amount, 6);
  writeUint(out, 44, BigInt(d.time), 5);
  out.set(salt, 49);
  out[65] = ref.length;
  out.set(ref, 66);
  out[66 + ref.length] = memo.length;
  out.set(memo, 67 + ref.length);
  return out;
}

/**
 * Decodes a canonical plaintext back into details and salt, refusing anything that
 * {@link canonicalOf} would not have written (so encode ∘ decode is the identity).
 *
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` (field `details`, or the bad detail's name)
 */
export function decodeCanonical(bytes: Uint8Array): { details: ReceiptDetails; salt: Uint8Array } {
  if (bytes.length < CANONICAL_FIXED) throw malformed("details", "truncated", { length: bytes.length });
  if (bytes[0] !== 1) throw malformed("details", "unknown details version", { version: bytes[0] });
  const str = (at: number, field: string): [string, number] => {
    const end = at + 1 + bytes[at]!;
    if (end > bytes.length) throw malformed(field, "truncated");
    try {
      return [decoder.decode(bytes.subarray(at + 1, end)), end];
    } catch (e) {
      throw malformed(field, "invalid UTF-8", {}, e);
    }
  };
  const [orderRef, afterRef] = str(65, "orderRef");
  if (afterRef >= bytes.length) throw malformed("memo", "truncated");
  const [memo, end] = str(afterRef, "memo");
  if (end !== bytes.length) throw malformed("details", "trailing bytes", { at: end, length: bytes.length });
  const details: ReceiptDetails = {
    kind: bytes[1] as 1 | 2 | 3,
    merchantId: Number(readUint(bytes, 2, 4)),
    account: toHex(bytes.subarray(6, 38)),
    amount: readUint(bytes, 38, 6),
    time: Number(readUint(bytes, 44, 5)),
    orderRef,
    memo,
  };
  checkReceiptDetails(details);
  return { details, salt: bytes.slice(49, 65) };
}

/**
 * The record's commitment: keccak256 of its canonical plaintext (FORMAT.md 2.1).
 *
 * @returns 32 bytes
 */
export function commitmentOfCanonical(canonical: Uint8Array): Uint8Array {
  return keccak_256(canonical);
}
