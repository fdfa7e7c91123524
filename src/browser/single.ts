/**
 * Ciphertext format `0x01` (FORMAT.md 3.1) in a browser: one record encrypted on its own for
 * one recipient, `0x01 | recipientTag b4 | eciesCompressed`, as Node's src/crypto/single.ts.
 */
import { DETAILS_VERSION } from "../crypto/details.js";
import { hexToBytes } from "../crypto/bytes.js";
import { addressOf, publicKeyOf } from "../crypto/keys.js";
import { PrepaidLedgerError } from "../errors.js";
import { eciesDecrypt, eciesEncrypt } from "./ecies.js";

/** Lead byte of a single-record ciphertext. */
export const FORMAT_SINGLE = 0x01;
const TAG_LENGTH = 4;
const HEADER_LENGTH = 1 + TAG_LENGTH;

/** The first 4 bytes of the address of `publicKey`. */
const recipientTag = (publicKey: string): Uint8Array => hexToBytes(addressOf(publicKey)).subarray(0, TAG_LENGTH);

/**
 * Encrypts a sealed payload for one recipient (format `0x01`).
 *
 * @param recipientPublicKey - the recipient's public key (any form `eciesEncrypt` accepts)
 * @param sealed - the sealed payload (FORMAT.md 2.2)
 * @returns `0x01 | first 4 bytes of the recipient's address | eciesCompressed`
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for a bad public key or a payload that does not
 *   start with sealed version 1
 */
export async function sealSingle(recipientPublicKey: string, sealed: Uint8Array): Promise<Uint8Array> {
  if (sealed.length === 0 || sealed[0] !== DETAILS_VERSION) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "Not a sealed payload of version 1", {
      details: { field: "sealed", version: sealed[0] },
    });
  }
  const tag = recipientTag(recipientPublicKey);
  const ecies = await eciesEncrypt(recipientPublicKey, sealed);
  const out = new Uint8Array(HEADER_LENGTH + ecies.length);
  out[0] = FORMAT_SINGLE;
  out.set(tag, 1);
  out.set(ecies, HEADER_LENGTH);
  return out;
}

/**
 * Decrypts a format `0x01` ciphertext.
 *
 * @param privateKey - the recipient's private key (32-byte hex, `0x` optional)
 * @param ciphertext - `0x01 | recipientTag | eciesCompressed`
 * @returns the sealed payload (version byte checked)
 * @throws PrepaidLedgerError `UNSUPPORTED_VERSION`, `MALFORMED_DATA`, `WRONG_KEY`, or the errors
 *   of `eciesDecrypt`, as Node's `openSingle`
 */
export async function openSingle(privateKey: string, ciphertext: Uint8Array): Promise<Uint8Array> {
  if (ciphertext.length === 0) {
    throw new PrepaidLedgerError("MALFORMED_DATA", "Empty ciphertext", { details: { length: 0 } });
  }
  if (ciphertext[0] !== FORMAT_SINGLE) {
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "Not a single-record ciphertext", {
      details: { format: ciphertext[0] },
    });
  }
  if (ciphertext.length < HEADER_LENGTH) {
    throw new PrepaidLedgerError("MALFORMED_DATA", "Truncated ciphertext", {
      details: { reason: "truncated", length: ciphertext.length },
    });
  }
  const tag = recipientTag(publicKeyOf(privateKey));
  if (tag.some((b, i) => ciphertext[1 + i] !== b)) {
    throw new PrepaidLedgerError("WRONG_KEY", "Record is not encrypted for this key", {
      details: { format: FORMAT_SINGLE },
    });
  }
  const sealed = await eciesDecrypt(privateKey, ciphertext.subarray(HEADER_LENGTH));
  if (sealed.length === 0) {
    throw new PrepaidLedgerError("MALFORMED_DATA", "Empty sealed payload", { details: { length: 0 } });
  }
  if (sealed[0] !== DETAILS_VERSION) {
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "Unsupported sealed payload version", {
      details: { version: sealed[0] },
    });
  }
  return sealed;
}
