/**
 * Batch encryption (FORMAT.md 3.2 and 4) for browsers: AES-256-GCM on @noble/ciphers and the
 * data key wrapped with the noble ECIES of ecies.ts. Layout and checks: the same
 * src/crypto/envelope-format.ts as Node's src/crypto/envelope.ts, so the bytes agree.
 */
import { gcm } from "@noble/ciphers/aes.js";

import { randomBytes } from "../crypto/bytes.js";
import {
  DATA_KEY_LENGTH,
  FORMAT_BATCH,
  buildEnvelope,
  checkBatchCiphertext,
  checkOpened,
  checkRecipients,
  checkSealedPayload,
  unwrapDataKey,
  writeIndex,
  type BatchKey,
  type Recipient,
} from "../crypto/envelope-format.js";
import { PrepaidLedgerError } from "../errors.js";
import { eciesDecrypt, eciesEncrypt } from "./ecies.js";

/** Nonce `0^8 | index u32` and aad `0x02 | index u32` of one record. */
function nonceAndAad(dataKey: Uint8Array, index: number): [Uint8Array, Uint8Array] {
  const nonce = new Uint8Array(12);
  const aad = new Uint8Array(5);
  writeIndex(dataKey, index, nonce, aad);
  return [nonce, aad];
}

/**
 * Draws a fresh data key and wraps it for every recipient.
 *
 * @param recipients - 1 to 255 distinct keys, at least one with role `"regulator"`
 * @returns the 32-byte data key and the envelope `0x01 | n | entry × n`
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for no or too many recipients, an unknown role,
 *   a bad public key, the same key twice, or no regulator
 */
export async function createBatchKey(recipients: Recipient[]): Promise<BatchKey> {
  const addresses = checkRecipients(recipients);
  const dataKey = randomBytes(DATA_KEY_LENGTH);
  const wrapped = await Promise.all(recipients.map((r) => eciesEncrypt(r.publicKey, dataKey)));
  return { dataKey, envelope: buildEnvelope(recipients, addresses, wrapped) };
}

/**
 * Unwraps the batch data key from the envelope entry of this key's address.
 *
 * @param privateKey - the recipient's private key (32-byte hex, `0x` optional)
 * @param envelope - the batch envelope
 * @returns the 32-byte data key
 * @throws PrepaidLedgerError `WRONG_KEY`, `WRAPPED_KEY_CORRUPT` (cause kept), or the errors of
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
 * @returns `0x02 | AES-256-GCM ciphertext | tag b16`
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for a bad key or index, or a payload that does
 *   not start with sealed version 1
 */
export function sealBatchRecord(dataKey: Uint8Array, index: number, sealed: Uint8Array): Uint8Array {
  const [nonce, aad] = nonceAndAad(dataKey, index);
  checkSealedPayload(sealed);
  const body = gcm(dataKey, nonce, aad).encrypt(sealed); // ciphertext | tag
  const out = new Uint8Array(1 + body.length);
  out[0] = FORMAT_BATCH;
  out.set(body, 1);
  return out;
}

/**
 * Decrypts record `index` of a batch (format `0x02`).
 *
 * @param dataKey - the batch's 32-byte data key
 * @param index - the record's 0-based position in the batch
 * @param ciphertext - `0x02 | gcmCiphertext | tag b16`
 * @returns the sealed payload (version byte checked, rest not decoded)
 * @throws PrepaidLedgerError `UNSUPPORTED_VERSION`, `MALFORMED_DATA`, `DECRYPTION_FAILED`,
 *   `INVALID_ARGUMENT`, as Node's `openBatchRecord`
 */
export function openBatchRecord(dataKey: Uint8Array, index: number, ciphertext: Uint8Array): Uint8Array {
  const [nonce, aad] = nonceAndAad(dataKey, index);
  checkBatchCiphertext(ciphertext);
  let plain: Uint8Array;
  try {
    plain = gcm(dataKey, nonce, aad).decrypt(ciphertext.subarray(1));
  } catch (e) {
    throw new PrepaidLedgerError("DECRYPTION_FAILED", "Batch record failed to authenticate", {
      details: { index },
      cause: e,
    });
  }
  return checkOpened(plain);
}
