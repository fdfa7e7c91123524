/**
 * The compact form of a receipt (docs/FORMAT.md 10.2): `PL1:` followed by the base64url of a
 * packed binary, short enough for a QR code on a paper receipt (231 characters for a typical
 * record). Browser-safe: base64url is written out here, no `Buffer`, no `atob`.
 *
 * ```
 * compact := "PL1:" | base64url(chainId u64 | ledger b20 | recordIndex u64 | blockNumber u64
 *                               | commitment b32 | canonical)
 * ```
 *
 * `canonical` is the record's canonical salted plaintext (FORMAT.md 2.1): it carries the
 * details and the salt, and its keccak256 is the commitment.
 */
import { PrepaidLedgerError } from "../errors.js";
import { decodeCanonical, canonicalOf, hexBytes, malformed, readUint, toHex } from "./canonical.js";
import { checkReceiptShape, checksum, RECEIPT_VERSION, type Receipt } from "./receipt.js";

/** What every compact receipt of version 1 starts with. */
export const COMPACT_PREFIX = "PL1:";
/** Bytes before the canonical plaintext: chainId, ledger, recordIndex, blockNumber, commitment. */
export const COMPACT_HEAD = 8 + 20 + 8 + 8 + 32;

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]));

/** RFC 4648 section 5 base64url, without padding. */
export function base64urlEncode(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let c = 0; c < chars; c++) out += ALPHABET[(n >> (18 - 6 * c)) & 63];
  }
  return out;
}

/**
 * Decodes unpadded base64url, strictly: only the 64 characters of the alphabet, no length that
 * cannot be whole bytes, and the unused low bits of the last character zero (so every byte
 * string has exactly one encoding).
 *
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` (field `encoding`)
 */
export function base64urlDecode(text: string): Uint8Array {
  if (text.length % 4 === 1) throw malformed("encoding", "base64url of a length no bytes have", { length: text.length });
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const v = VALUE.get(text[i]!);
    if (v === undefined) throw malformed("encoding", "a character outside base64url", { position: COMPACT_PREFIX.length + i });
    acc = ((acc << 6) | v) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw malformed("encoding", "non-zero padding bits");
  return out;
}

function writeUint(out: Uint8Array, at: number, value: bigint): void {
  for (let i = 7; i >= 0; i--) {
    out[at + i] = Number(value & 0xffn);
    value >>= 8n;
  }
}

/**
 * The receipt's packed binary (without prefix or base64url).
 *
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` naming a field out of range
 */
export function packReceipt(r: Receipt): Uint8Array {
  checkReceiptShape(r);
  const canonical = canonicalOf(r.details, hexBytes(r.salt, 16, "salt"));
  const out = new Uint8Array(COMPACT_HEAD + canonical.length);
  writeUint(out, 0, r.chainId);
  out.set(hexBytes(r.ledger, 20, "ledger"), 8);
  writeUint(out, 28, r.recordIndex);
  writeUint(out, 36, BigInt(r.blockNumber));
  out.set(hexBytes(r.commitment, 32, "commitment"), 44);
  out.set(canonical, COMPACT_HEAD);
  return out;
}

/**
 * Reads a packed binary receipt back.
 *
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` naming the part (truncated, trailing bytes, a
 *   detail out of range)
 */
export function unpackReceipt(bytes: Uint8Array): Receipt {
  if (bytes.length < COMPACT_HEAD) throw malformed("encoding", "truncated", { length: bytes.length });
  const blockNumber = readUint(bytes, 36, 8);
  if (blockNumber > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed("blockNumber", "not a block number");
  const { details, salt } = decodeCanonical(bytes.subarray(COMPACT_HEAD));
  const receipt: Receipt = {
    version: RECEIPT_VERSION,
    chainId: readUint(bytes, 0, 8),
    ledger: checksum(toHex(bytes.subarray(8, 28))),
    recordIndex: readUint(bytes, 28, 8),
    blockNumber: Number(blockNumber),
    commitment: toHex(bytes.subarray(44, 76)),
    salt: toHex(salt),
    details,
  };
  checkReceiptShape(receipt);
  return receipt;
}

/**
 * The compact string of a receipt: `PL1:` and base64url, for a QR code or a URL (`?r=`).
 *
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` naming a field out of range
 */
export function receiptToCompact(r: Receipt): string {
  return COMPACT_PREFIX + base64urlEncode(packReceipt(r));
}

/**
 * Reads a compact receipt string (surrounding white space is ignored), strictly.
 *
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` (no `PL…:` prefix, a bad character, truncated,
 *   a field out of range; `details.field` names it); `UNSUPPORTED_VERSION` for `PL2:` and later
 */
export function receiptFromCompact(text: string): Receipt {
  if (typeof text !== "string") throw malformed("encoding", "not a string");
  const t = text.trim();
  const prefix = /^PL(\d+):/.exec(t);
  if (prefix === null) throw malformed("prefix", `does not start with ${COMPACT_PREFIX}`);
  if (prefix[1] !== "1") {
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "Unsupported receipt version", { details: { field: "version", version: prefix[1] } });
  }
  return unpackReceipt(base64urlDecode(t.slice(prefix[0].length)));
}
