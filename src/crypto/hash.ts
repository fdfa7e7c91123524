/**
 * Hashing and the few byte helpers the crypto layer shares, in their Node form: hex through
 * `Buffer` (native, for the hot paths). Browser-safe equivalents: bytes.ts; Keccak: keccak.ts.
 */
import { PrepaidLedgerError } from "../errors.js";

export { keccak256 } from "./keccak.js";

const HEX_RE = /^(?:0x)?(?:[0-9a-fA-F]{2})*$/;

/**
 * Decodes hex (with or without `0x`, either case) into a fresh `Uint8Array`.
 *
 * @param hex - an even number of hex digits
 * @returns the bytes
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` if `hex` is not an even-length hex string
 */
export function hexToBytes(hex: string): Uint8Array {
  // Buffer.from(…, "hex") silently stops at the first bad digit, so check the shape first.
  if (typeof hex !== "string" || !HEX_RE.test(hex)) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "Not an even-length hex string", {
      details: { reason: "invalid hex" },
    });
  }
  // Copy out of Buffer's shared pool so the result owns its memory.
  return new Uint8Array(Buffer.from(hex.startsWith("0x") ? hex.slice(2) : hex, "hex"));
}

/**
 * Encodes bytes as lowercase `0x`-prefixed hex.
 *
 * @param bytes - the bytes to encode
 * @returns `0x` followed by two hex digits per byte
 */
export function bytesToHex(bytes: Uint8Array): string {
  return "0x" + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
}
