/**
 * Batch encryption: a fresh 256-bit data key per batch, wrapped for each recipient in the batch
 * envelope (FORMAT.md 4), and records encrypted under it with AES-256-GCM in ciphertext format
 * `0x02` (FORMAT.md 3.2). Node's implementation, on OpenSSL (node:crypto); the envelope's layout
 * and checks are envelope-format.ts, shared with the browser's src/browser/envelope.ts.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

import { PrepaidLedgerError } from "../errors.js";
import { eciesDecrypt, eciesEncrypt } from "./ecies.js";
import {
  DATA_KEY_LENGTH,
  TAG_LENGTH,
  buildEnvelope,
  checkBatchCiphertext,
  checkOpened,
  checkRecipients,
  checkSealedPayload,
  unwrapDataKey,
  writeIndex,
  type BatchKey,
  type Recipient,
} from "./envelope-format.js";

export {
  DATA_KEY_LENGTH,
  ENVELOPE_VERSION,
  FORMAT_BATCH,
  parseEnvelope,
  type BatchKey,
  type EnvelopeEntry,
  type Recipient,
  type RecipientRole,
} from "./envelope-format.js";

// Scratch nonce and aad, rewritten before each use. Safe to share: createCipheriv copies the IV
// and setAAD consumes the aad synchronously, and nothing awaits in between.
const nonce = Buffer.alloc(12); // 8 zero bytes | index u32
const aad = Buffer.alloc(5); // 0x02 | index u32

/**
 * Draws a fresh data key and wraps it for every recipient.
 *
 * @param recipients - 1 to 255 distinct keys, at least one with role `"regulator"`
 * @returns the 32-byte data key and the envelope `0x01 | n | entry × n`
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for no or too many recipients, an unknown role,
 *   a bad public key, the same key twice, or no regulator
 */
export async function createBatchKey(recipients: Recipient[]): Promise<BatchKey> {
  const key = drawBatchKey(recipients);
  return { dataKey: key.dataKey, envelope: await key.wrap() };
}

/**
 * {@link createBatchKey} in two steps: checks the recipients and draws the data key at once, and
 * leaves the ECIES wrapping (milliseconds of curve arithmetic) to `wrap()`, so a caller can
 * encrypt the records first (sealing.ts). Internal: not in the public API.
 *
 * @throws PrepaidLedgerError as {@link createBatchKey}, from this call (never from `wrap()`)
 */
export function drawBatchKey(recipients: Recipient[]): { dataKey: Uint8Array; wrap: () => Promise<Uint8Array> } {
  const addresses = checkRecipients(recipients);
  const dataKey = new Uint8Array(randomBytes(DATA_KEY_LENGTH));
  const wrap = async (): Promise<Uint8Array> =>
    buildEnvelope(recipients, addresses, await Promise.all(recipients.map((r) => eciesEncrypt(r.publicKey, dataKey))));
  return { dataKey, wrap };
}

/**
 * Unwraps the batch data key from the envelope entry of this key's address.
 *
 * @param privateKey - the recipient's private key (32-byte hex, `0x` optional)
 * @param envelope - the batch envelope
 * @returns the 32-byte data key
 * @throws PrepaidLedgerError `WRONG_KEY` if no entry is for this key; `WRAPPED_KEY_CORRUPT`
 *   (cause kept) if that entry fails to decrypt or does not hold exactly 32 bytes; the errors of
 *   `parseEnvelope`
 */
export async function openEnvelope(privateKey: string, envelope: Uint8Array): Promise<Uint8Array> {
  return unwrapDataKey(privateKey, envelope, eciesDecrypt);
}

/**
 * Encrypts a sealed payload as record `index` of a batch (format `0x02`).
 *
 * @param dataKey - the batch's 32-byte data key
 * @param index - the record's 0-based position in the batch, `< 2^32`
 * @param sealed - the sealed payload (FORMAT.md 2.2)
 * @returns `0x02 | AES-256-GCM ciphertext | tag b16`, nonce `0^8 | index u32`, aad `0x02 | index u32`
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for a bad key or index, or a payload that does
 *   not start with sealed version 1
 */
export function sealBatchRecord(dataKey: Uint8Array, index: number, sealed: Uint8Array): Uint8Array {
  writeIndex(dataKey, index, nonce, aad);
  checkSealedPayload(sealed);
  const cipher = createCipheriv("aes-256-gcm", dataKey, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aad);
  const out = new Uint8Array(1 + sealed.length + TAG_LENGTH);
  out[0] = aad[0]!; // FORMAT_BATCH
  out.set(cipher.update(sealed), 1); // GCM is a stream mode: same length, nothing left for final()
  cipher.final();
  out.set(cipher.getAuthTag(), 1 + sealed.length);
  return out;
}

/**
 * Decrypts record `index` of a batch (format `0x02`).
 *
 * @param dataKey - the batch's 32-byte data key
 * @param index - the record's 0-based position in the batch
 * @param ciphertext - `0x02 | gcmCiphertext | tag b16`
 * @returns the sealed payload (version byte checked, rest not decoded)
 * @throws PrepaidLedgerError `UNSUPPORTED_VERSION` if the lead byte is not `0x02` or the payload
 *   is not sealed version 1; `MALFORMED_DATA` if shorter than 18 bytes; `DECRYPTION_FAILED` if
 *   authentication fails (altered bytes, wrong key, or another index); `INVALID_ARGUMENT` for a
 *   bad key or index
 */
export function openBatchRecord(dataKey: Uint8Array, index: number, ciphertext: Uint8Array): Uint8Array {
  writeIndex(dataKey, index, nonce, aad);
  const tagAt = checkBatchCiphertext(ciphertext);
  const decipher = createDecipheriv("aes-256-gcm", dataKey, nonce, { authTagLength: TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(ciphertext.subarray(tagAt));
  const plain = decipher.update(ciphertext.subarray(1, tagAt));
  try {
    decipher.final();
  } catch (e) {
    throw new PrepaidLedgerError("DECRYPTION_FAILED", "Batch record failed to authenticate", {
      details: { index },
      cause: e,
    });
  }
  return checkOpened(new Uint8Array(plain.buffer, plain.byteOffset, plain.length));
}
