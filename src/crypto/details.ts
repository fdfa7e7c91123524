/**
 * Transaction details and their two byte forms (docs/FORMAT.md section 2): the canonical salted
 * plaintext, whose keccak256 is the on-chain commitment, and the sealed payload that gets
 * encrypted (the canonical form without `merchantId` and `account`, which are on chain anyway).
 * No `node:` built-ins and no `Buffer`: the browser entry (src/browser) uses this file as it is.
 */
import { PrepaidLedgerError } from "../errors.js";
import { randomBytes, utf8Length, writeHex } from "./bytes.js";
import { keccak256 } from "./keccak.js";

/** Record kinds of FORMAT.md section 1 (`0` is invalid, `4`–`255` are reserved for modules). */
export const RecordKind = { TopUp: 1, Consume: 2, Refund: 3 } as const;
export type RecordKind = 1 | 2 | 3;

/** What a merchant's system knows about one transaction (FORMAT.md section 2). */
export interface RecordDetails {
  kind: RecordKind;
  /** The merchant's id in the ledger, `1 ≤ merchantId < 2^32`. */
  merchantId: number;
  /** Opaque prepaid-account id: `0x` and 64 hex digits. */
  account: string;
  /** Minor units, `1 ≤ amount < 2^48`. */
  amount: bigint;
  /** Unix seconds at the merchant, `0 ≤ time < 2^40`. */
  time: number;
  /** The merchant's order reference, at most 255 UTF-8 bytes. */
  orderRef: string;
  /** Free text, at most 255 UTF-8 bytes. */
  memo: string;
}

/** A decoded sealed payload. `kind` is not checked against the known kinds: the reader does that. */
export interface SealedPayload {
  kind: number;
  amount: bigint;
  time: number;
  salt: Uint8Array;
  orderRef: string;
  memo: string;
}

/** The byte forms of one record, as produced by {@link sealDetails}. */
export interface SealedDetails {
  canonical: Uint8Array;
  sealed: Uint8Array;
  commitment: Uint8Array;
  salt: Uint8Array;
}

/** Version byte leading both the canonical plaintext and the sealed payload. */
export const DETAILS_VERSION = 1;
/** Bytes of salt drawn per record. */
export const SALT_LENGTH = 16;

const MAX_STR8 = 255;
const MAX_U32 = 2 ** 32 - 1;
const MAX_U40 = 2 ** 40 - 1;
const MAX_AMOUNT = (1n << 48n) - 1n;
const ACCOUNT_RE = /^0x[0-9a-fA-F]{64}$/;
/** amount u48 | time u40 | salt b16: the fixed tail shared by both forms. */
const TAIL_FIXED = 6 + 5 + SALT_LENGTH;
/** version u8 | kind u8 | amount u48 | time u40 | salt b16 */
const SEALED_FIXED = 2 + TAIL_FIXED;
/** The sealed fixed part plus the two str8 length bytes. */
const SEALED_MIN = SEALED_FIXED + 2;
/** merchantId u32 | account b32, present in canonical but not in sealed. */
const IDS_LENGTH = 36;

// ignoreBOM keeps a leading U+FEFF in the text instead of silently dropping it.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function invalid(field: string, facts: Record<string, unknown>): PrepaidLedgerError {
  return new PrepaidLedgerError("INVALID_ARGUMENT", `Invalid record details: ${field}`, {
    details: { field, ...facts },
  });
}

function malformed(reason: string, facts: Record<string, unknown> = {}, cause?: unknown): PrepaidLedgerError {
  return new PrepaidLedgerError("MALFORMED_DATA", "Malformed sealed payload", {
    details: { reason, ...facts },
    cause,
  });
}

function checkMerchantId(merchantId: number): void {
  if (!Number.isInteger(merchantId) || merchantId < 1 || merchantId > MAX_U32) {
    throw invalid("merchantId", { value: merchantId });
  }
}

function checkStr8(field: string, value: string): void {
  if (typeof value !== "string") throw invalid(field, { reason: "not a string" });
  // A lone surrogate would be encoded as U+FFFD, so the text would not survive a round trip.
  if (!(value as unknown as { isWellFormed(): boolean }).isWellFormed()) {
    throw invalid(field, { reason: "not well-formed Unicode (lone surrogate)" });
  }
  const byteLength = utf8Length(value);
  if (byteLength > MAX_STR8) throw invalid(field, { reason: "longer than 255 UTF-8 bytes", byteLength });
}

/**
 * Checks every field of `d` against the ranges of FORMAT.md section 2.
 *
 * @param d - the details to check
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` with `details.field` naming the first bad field,
 *   and `value` (numbers) or `reason` (strings, which are never echoed back)
 */
export function validateDetails(d: RecordDetails): void {
  if (d.kind !== 1 && d.kind !== 2 && d.kind !== 3) throw invalid("kind", { value: d.kind });
  checkMerchantId(d.merchantId);
  if (typeof d.account !== "string" || !ACCOUNT_RE.test(d.account)) {
    throw invalid("account", { reason: "not 0x and 64 hex digits" });
  }
  if (typeof d.amount !== "bigint" || d.amount < 1n || d.amount > MAX_AMOUNT) {
    throw invalid("amount", { value: d.amount });
  }
  if (!Number.isInteger(d.time) || d.time < 0 || d.time > MAX_U40) throw invalid("time", { value: d.time });
  checkStr8("orderRef", d.orderRef);
  checkStr8("memo", d.memo);
}

/**
 * Draws a fresh per-record salt.
 *
 * @returns 16 cryptographically random bytes
 */
export function newSalt(): Uint8Array {
  return randomBytes(SALT_LENGTH);
}

function checkSalt(salt: Uint8Array): void {
  if (!(salt instanceof Uint8Array) || salt.length !== SALT_LENGTH) {
    throw invalid("salt", { reason: "not 16 bytes" });
  }
}

/** Writes `value` (a non-negative safe integer) as a `len`-byte big-endian integer. */
function writeUint(out: Uint8Array, offset: number, value: number, len: number): void {
  for (let i = len - 1; i >= 0; i--) {
    out[offset + i] = value % 256;
    value = Math.floor(value / 256);
  }
}

function readUint(bytes: Uint8Array, offset: number, len: number): number {
  let value = 0;
  for (let i = 0; i < len; i++) value = value * 256 + bytes[offset + i]!;
  return value;
}

// Records are encoded into this scratch space, then copied out once: one allocation per form
// instead of one per field. Shared by every call, which is safe because encoding is synchronous.
const scratch = new Uint8Array(2 + IDS_LENGTH + TAIL_FIXED + 2 * (1 + MAX_STR8));
const utf8Encoder = new TextEncoder();

/** Writes a validated str8 (well-formed, at most 255 UTF-8 bytes) at `o`; returns the offset after it. */
function writeStr8(o: number, text: string): number {
  const { written } = utf8Encoder.encodeInto(text, scratch.subarray(o + 1, o + 1 + MAX_STR8));
  scratch[o] = written;
  return o + 1 + written;
}

/**
 * Writes the canonical form of validated details into `scratch`; returns its length. The sealed
 * form is the same bytes without `merchantId | account` (bytes 2 to 37).
 */
function writeCanonical(d: RecordDetails, salt: Uint8Array): number {
  const b = scratch;
  b[0] = DETAILS_VERSION;
  b[1] = d.kind;
  writeUint(b, 2, d.merchantId, 4);
  writeHex(b.subarray(0, 6 + 32), 6, d.account, 2); // validated: exactly 64 hex digits
  const o = 2 + IDS_LENGTH;
  writeUint(b, o, Number(d.amount), 6); // < 2^48, exact as a number
  writeUint(b, o + 6, d.time, 5);
  b.set(salt, o + 11);
  return writeStr8(writeStr8(o + TAIL_FIXED, d.orderRef), d.memo);
}

/** The sealed form of the canonical bytes in `scratch[0, end)`. */
function sealedFromScratch(end: number): Uint8Array {
  const out = new Uint8Array(end - IDS_LENGTH);
  out[0] = scratch[0];
  out[1] = scratch[1];
  out.set(scratch.subarray(2 + IDS_LENGTH, end), 2);
  return out;
}

/**
 * Encodes validated details. With `ids`, the canonical form; without, the sealed form.
 * Both share the tail `amount | time | salt | orderRef | memo`.
 */
function encode(d: RecordDetails, salt: Uint8Array, ids: boolean): Uint8Array {
  const end = writeCanonical(d, salt);
  return ids ? scratch.slice(0, end) : sealedFromScratch(end);
}

/**
 * Encodes the canonical salted plaintext (FORMAT.md 2.1), the preimage of the commitment.
 *
 * @param d - the details
 * @param salt - the record's 16-byte salt
 * @returns `0x01 | kind | merchantId | account | amount | time | salt | orderRef | memo`
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` if `d` or `salt` is invalid
 */
export function encodeCanonical(d: RecordDetails, salt: Uint8Array): Uint8Array {
  validateDetails(d);
  checkSalt(salt);
  return encode(d, salt, true);
}

/**
 * Encodes the sealed payload (FORMAT.md 2.2), the plaintext that gets encrypted.
 *
 * @param d - the details
 * @param salt - the record's 16-byte salt
 * @returns `0x01 | kind | amount | time | salt | orderRef | memo`
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` if `d` or `salt` is invalid
 */
export function encodeSealed(d: RecordDetails, salt: Uint8Array): Uint8Array {
  validateDetails(d);
  checkSalt(salt);
  return encode(d, salt, false);
}

/** Reads the str8 at `offset`; returns the text and the offset after it. */
function readStr8(bytes: Uint8Array, offset: number, field: string): [string, number] {
  if (offset >= bytes.length) throw malformed("truncated", { field, offset, length: bytes.length });
  const len = bytes[offset]!;
  const end = offset + 1 + len;
  if (end > bytes.length) throw malformed("truncated", { field, offset, length: bytes.length });
  try {
    return [utf8Decoder.decode(bytes.subarray(offset + 1, end)), end];
  } catch (e) {
    throw malformed("invalid UTF-8", { field, offset }, e);
  }
}

/**
 * Decodes a sealed payload. Checks structure only: an unknown `kind`, a zero amount and the like
 * are left for the reader to report.
 *
 * @param bytes - the sealed payload
 * @returns its fields (the salt is a copy)
 * @throws PrepaidLedgerError `UNSUPPORTED_VERSION` if the version byte is not 1;
 *   `MALFORMED_DATA` if the bytes are truncated, have trailing bytes or hold invalid UTF-8
 */
export function decodeSealed(bytes: Uint8Array): SealedPayload {
  if (bytes.length === 0) throw malformed("empty", { length: 0 });
  if (bytes[0] !== DETAILS_VERSION) {
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "Unsupported sealed payload version", {
      details: { version: bytes[0] },
    });
  }
  if (bytes.length < SEALED_MIN) throw malformed("truncated", { offset: 0, length: bytes.length });
  const amount = BigInt(readUint(bytes, 2, 6));
  const time = readUint(bytes, 8, 5);
  const salt = bytes.slice(13, 13 + SALT_LENGTH);
  const [orderRef, afterRef] = readStr8(bytes, SEALED_FIXED, "orderRef");
  const [memo, end] = readStr8(bytes, afterRef, "memo");
  if (end !== bytes.length) throw malformed("trailing bytes", { offset: end, length: bytes.length });
  return { kind: bytes[1]!, amount, time, salt, orderRef, memo };
}

/**
 * Rebuilds the canonical plaintext from a sealed payload and the record's on-chain ids, by
 * splicing bytes (no string decoding). Equals {@link encodeCanonical} of the same details.
 * Only the version byte and the minimum length are checked; use {@link decodeSealed} for the rest.
 *
 * @param sealed - the sealed payload
 * @param merchantId - the record's on-chain merchant id
 * @param account - the record's on-chain account id (32 bytes)
 * @returns the canonical plaintext
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for a bad `merchantId` or `account`;
 *   `UNSUPPORTED_VERSION` / `MALFORMED_DATA` for a sealed payload of another version or too short
 */
export function canonicalFromSealed(sealed: Uint8Array, merchantId: number, account: Uint8Array): Uint8Array {
  checkMerchantId(merchantId);
  if (!(account instanceof Uint8Array) || account.length !== 32) {
    throw invalid("account", { reason: "not 32 bytes" });
  }
  if (sealed.length === 0) throw malformed("empty", { length: 0 });
  if (sealed[0] !== DETAILS_VERSION) {
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "Unsupported sealed payload version", {
      details: { version: sealed[0] },
    });
  }
  if (sealed.length < SEALED_MIN) throw malformed("truncated", { offset: 0, length: sealed.length });
  const out = new Uint8Array(sealed.length + IDS_LENGTH);
  out[0] = sealed[0];
  out[1] = sealed[1]!;
  writeUint(out, 2, merchantId, 4);
  out.set(account, 6);
  out.set(sealed.subarray(2), 2 + IDS_LENGTH);
  return out;
}

/**
 * The on-chain commitment of a record.
 *
 * @param canonical - the canonical plaintext
 * @returns `keccak256(canonical)`, 32 bytes
 */
export function commitmentOf(canonical: Uint8Array): Uint8Array {
  return keccak256(canonical);
}

/**
 * Validates `d` once and produces every byte form of the record.
 *
 * @param d - the details
 * @param salt - the salt to use; a fresh one from {@link newSalt} if omitted
 * @returns the canonical plaintext, the sealed payload, the commitment and the salt
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` if `d` or `salt` is invalid
 */
export function sealDetails(d: RecordDetails, salt: Uint8Array = newSalt()): SealedDetails {
  validateDetails(d);
  checkSalt(salt);
  return sealValidatedDetails(d, salt);
}

/**
 * {@link sealDetails} without its checks, for a caller that has already run
 * {@link validateDetails} on `d` and holds a 16-byte `salt` (sealing.ts checks a whole batch
 * first, so that a bad record fails it before any work). Internal: not in the public API.
 */
export function sealValidatedDetails(d: RecordDetails, salt: Uint8Array): SealedDetails {
  const end = writeCanonical(d, salt);
  const canonical = scratch.slice(0, end);
  return { canonical, sealed: sealedFromScratch(end), commitment: keccak256(canonical), salt };
}
