/**
 * Ciphertext format `0x01` (FORMAT.md 3.1), `0x01 | recipientTag b4 | eciesCompressed`, over
 * whichever ECIES implementation the platform has: Node's (src/crypto/single.ts, eth-crypto and
 * OpenSSL) or the browser's (src/browser/single.ts, the noble libraries). No `node:` imports.
 */
import { PrepaidLedgerError } from "../errors.js";
import { hexToBytes } from "./bytes.js";
import { DETAILS_VERSION } from "./details.js";
import { addressOf, publicKeyOf } from "./keys.js";

/** Lead byte of a single-record ciphertext. */
export const FORMAT_SINGLE = 0x01;
const TAG_LENGTH = 4;
const HEADER_LENGTH = 1 + TAG_LENGTH;

/** An ECIES implementation in the `eciesCompressed` format (FORMAT.md 3.1.1). */
export interface Ecies {
  encrypt(publicKey: string, plaintext: Uint8Array): Promise<Uint8Array>;
  decrypt(privateKey: string, cipher: Uint8Array): Promise<Uint8Array>;
}

/** The first 4 bytes of the address of `publicKey`. */
const recipientTag = (publicKey: string): Uint8Array => hexToBytes(addressOf(publicKey)).subarray(0, TAG_LENGTH);

/**
 * Format `0x01` over `ecies`: `sealSingle(recipientPublicKey, sealed)` returns
 * `0x01 | first 4 bytes of the recipient's address | eciesCompressed` and throws
 * `INVALID_ARGUMENT` for a bad public key or a payload that does not start with sealed version 1;
 * `openSingle(privateKey, ciphertext)` returns the sealed payload (version byte checked, rest not
 * decoded) and throws `UNSUPPORTED_VERSION` if the lead byte is not `0x01` or the payload inside
 * is not sealed version 1, `MALFORMED_DATA` if truncated, `WRONG_KEY` if the recipient tag is not
 * this key's, otherwise the errors of the ECIES decryption (`DECRYPTION_FAILED`, …).
 *
 * @param ecies - the platform's ECIES
 * @returns the two functions
 */
export function singleFormat(ecies: Ecies) {
  async function sealSingle(recipientPublicKey: string, sealed: Uint8Array): Promise<Uint8Array> {
    if (sealed.length === 0 || sealed[0] !== DETAILS_VERSION) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "Not a sealed payload of version 1", {
        details: { field: "sealed", version: sealed[0] },
      });
    }
    const tag = recipientTag(recipientPublicKey);
    const body = await ecies.encrypt(recipientPublicKey, sealed);
    const out = new Uint8Array(HEADER_LENGTH + body.length);
    out[0] = FORMAT_SINGLE;
    out.set(tag, 1);
    out.set(body, HEADER_LENGTH);
    return out;
  }

  async function openSingle(privateKey: string, ciphertext: Uint8Array): Promise<Uint8Array> {
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
    const sealed = await ecies.decrypt(privateKey, ciphertext.subarray(HEADER_LENGTH));
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

  return { sealSingle, openSingle };
}
