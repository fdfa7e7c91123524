/**
 * Byte helpers without Node's `Buffer`, shared by the browser entry (src/browser) and the parts of
 * the crypto and ledger layers that run in both places. Node's hot paths keep the `Buffer`-based
 * hex of hash.ts; these are checked against them byte for byte (test/crypto/bytes.test.ts).
 */
import { PrepaidLedgerError } from "../errors.js";

const HEX_RE = /^(?:0x)?(?:[0-9a-fA-F]{2})*$/;
const HEX_DIGITS = "0123456789abcdef";
/** Two lowercase hex digits per byte value. */
const BYTE_HEX: string[] = Array.from({ length: 256 }, (_, b) => HEX_DIGITS[b >> 4]! + HEX_DIGITS[b & 15]!);
/** Value of a hex digit's char code (either case); 0 elsewhere (the shape is checked first). */
const DIGIT_VALUE = new Uint8Array(128);
for (let i = 0; i < 10; i++) DIGIT_VALUE[48 + i] = i;
for (let i = 0; i < 6; i++) DIGIT_VALUE[65 + i] = DIGIT_VALUE[97 + i] = 10 + i;

/**
 * Decodes hex (with or without `0x`, either case) into a fresh `Uint8Array`.
 *
 * @param hex - an even number of hex digits
 * @returns the bytes
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` if `hex` is not an even-length hex string
 */
export function hexToBytes(hex: string): Uint8Array {
  if (typeof hex !== "string" || !HEX_RE.test(hex)) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "Not an even-length hex string", {
      details: { reason: "invalid hex" },
    });
  }
  const at = hex.startsWith("0x") ? 2 : 0;
  const out = new Uint8Array((hex.length - at) / 2);
  writeHex(out, 0, hex, at);
  return out;
}

/**
 * Writes the bytes of already-checked hex digits `hex[from…]` into `out` at `offset`, as many as
 * `out` has room for or the text holds.
 */
export function writeHex(out: Uint8Array, offset: number, hex: string, from: number): void {
  const n = Math.min(out.length - offset, (hex.length - from) >> 1);
  for (let i = 0; i < n; i++) {
    const c = from + 2 * i;
    out[offset + i] = (DIGIT_VALUE[hex.charCodeAt(c)]! << 4) | DIGIT_VALUE[hex.charCodeAt(c + 1)]!;
  }
}

/**
 * Encodes bytes as lowercase `0x`-prefixed hex.
 *
 * @param bytes - the bytes to encode
 * @returns `0x` followed by two hex digits per byte
 */
export function bytesToHex(bytes: Uint8Array): string {
  let out = "0x";
  for (let i = 0; i < bytes.length; i++) out += BYTE_HEX[bytes[i]!];
  return out;
}

/**
 * Cryptographically random bytes from the platform's CSPRNG (WebCrypto's `getRandomValues`:
 * browsers, and Node 20+ as `globalThis.crypto`), drawn in chunks of its 65,536-byte limit.
 *
 * @param length - how many bytes
 * @returns `length` fresh random bytes
 */
export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let at = 0; at < length; at += 65_536) globalThis.crypto.getRandomValues(out.subarray(at, Math.min(length, at + 65_536)));
  return out;
}

/**
 * Bytes `text` takes in UTF-8, counted up to `limit + 1` (enough to say "too long"); a lone
 * surrogate counts 3 bytes, as the encoder's U+FFFD would.
 */
export function utf8Length(text: string, limit = Infinity): number {
  let n = 0;
  for (let i = 0; i < text.length && n <= limit; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
