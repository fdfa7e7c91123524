/**
 * ECIES on secp256k1 as eth-crypto makes it (FORMAT.md 3.1): `iv b16 | ephemeralPublicKey b33 |
 * mac b32 | aesCbcCiphertext`. eth-crypto's API carries strings, so binary plaintext travels as
 * base64 text inside the ciphertext.
 */
import { ECDH, createCipheriv, createDecipheriv, createECDH, createHash, createHmac, randomBytes, timingSafeEqual, type ECDH as NodeECDH } from "node:crypto";

import { PrepaidLedgerError } from "../errors.js";
import {
  AES_BLOCK,
  ECIES_HEADER_LENGTH as HEADER_LENGTH,
  ECIES_MIN_LENGTH,
  EPHEMERAL_LENGTH,
  IV_LENGTH,
  normalizePublicKey,
  privateKeyBytes,
} from "./keys.js";

export { ECIES_MIN_LENGTH, addressOf, publicKeyOf } from "./keys.js";

/**
 * Encrypts `plaintext` for `publicKey` with eth-crypto's ECIES: a fresh ephemeral key, the x
 * coordinate of its ECDH with the recipient, SHA-512 of it split into an AES-256-CBC key and an
 * HMAC-SHA256 key, the MAC over iv | uncompressed ephemeral key | ciphertext; the plaintext as its
 * base64 text, as eth-crypto carries binary. Run on OpenSSL (node:crypto) rather than through
 * eth-crypto's pure-JavaScript curve (about 5 ms a call, once per recipient per batch on the
 * uploader's thread); test/crypto/ecies.test.ts holds it to eth-crypto's bytes for the same
 * ephemeral key and iv, and each side decrypts the other's.
 *
 * @param publicKey - recipient key: uncompressed (64 bytes, or 65 with `04`) or compressed (33
 *   bytes), hex with or without `0x`
 * @param plaintext - the bytes to encrypt
 * @returns the bytes of `EthCrypto.cipher.stringify(await EthCrypto.encryptWithPublicKey(pub, base64(plaintext)))`
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` if the public key is malformed
 */
export async function eciesEncrypt(publicKey: string, plaintext: Uint8Array): Promise<Uint8Array> {
  return eciesEncryptWith(publicKey, plaintext);
}

/**
 * {@link eciesEncrypt} with a chosen ephemeral private key and iv (both drawn fresh when not
 * given). Only for tests that compare bytes: reusing either breaks the encryption.
 *
 * @internal
 */
export function eciesEncryptWith(publicKey: string, plaintext: Uint8Array, ephemeralPrivateKey?: Uint8Array, iv: Uint8Array = randomBytes(IV_LENGTH)): Uint8Array {
  const recipient = recipientPoint(publicKey);
  const ephemeral = createECDH("secp256k1");
  if (ephemeralPrivateKey === undefined) ephemeral.generateKeys();
  else ephemeral.setPrivateKey(ephemeralPrivateKey);
  const shared = ephemeral.computeSecret(recipient); // the x coordinate, as eth-crypto's ECDH
  const hash = createHash("sha512").update(shared).digest();
  const text = Buffer.from(Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.length).toString("base64"), "utf8");
  const cipher = createCipheriv("aes-256-cbc", hash.subarray(0, 32), iv);
  const body = Buffer.concat([cipher.update(text), cipher.final()]);
  const mac = createHmac("sha256", hash.subarray(32)).update(iv).update(ephemeral.getPublicKey()).update(body).digest();
  const out = new Uint8Array(HEADER_LENGTH + body.length);
  out.set(iv, 0);
  out.set(ephemeral.getPublicKey(undefined, "compressed"), IV_LENGTH);
  out.set(mac, IV_LENGTH + EPHEMERAL_LENGTH);
  out.set(body, HEADER_LENGTH);
  return out;
}

/** Recipients' keys checked and decoded once: a few per uploader, each used for every batch. */
const recipientPoints = new Map<string, Buffer>();

/** The recipient's key as the 65-byte uncompressed point OpenSSL takes (checked on the curve). */
function recipientPoint(publicKey: string): Buffer {
  let point = recipientPoints.get(publicKey);
  if (point === undefined) {
    point = Buffer.from("04" + normalizePublicKey(publicKey), "hex");
    if (recipientPoints.size > 64) recipientPoints.clear();
    recipientPoints.set(publicKey, point);
  }
  return point;
}

/**
 * Decrypts eth-crypto's ECIES (secp256k1 ECDH, SHA-512 KDF, HMAC-SHA256 over iv | uncompressed
 * ephemeral key | ciphertext, AES-256-CBC) and decodes the base64 text inside.
 *
 * Encryption goes through eth-crypto itself; decryption runs the same algorithm on OpenSSL
 * (node:crypto), because the regulator unwraps one key per batch and eth-crypto's pure-JS curve
 * takes ~3.5 ms for it, a quarter of a whole verification. test/crypto/ecies.test.ts holds the
 * two to the same bytes both ways.
 *
 * @param privateKey - the recipient's 32-byte private key (hex)
 * @param cipher - `iv b16 | ephemeral key (compressed) b33 | mac b32 | AES-CBC ciphertext`
 * @returns the plaintext bytes
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` (bad key), `MALFORMED_DATA` (bad length, an
 *   ephemeral key off the curve, a plaintext that is not base64), `DECRYPTION_FAILED` (the MAC
 *   does not match, or the padding is wrong after a matching MAC)
 */
export async function eciesDecrypt(privateKey: string, cipher: Uint8Array): Promise<Uint8Array> {
  const ecdh = ecdhFor(privateKey);
  if (cipher.length < ECIES_MIN_LENGTH || (cipher.length - HEADER_LENGTH) % AES_BLOCK !== 0) {
    throw new PrepaidLedgerError("MALFORMED_DATA", "Malformed ECIES ciphertext", {
      details: { reason: "bad length", length: cipher.length },
    });
  }
  const iv = cipher.subarray(0, IV_LENGTH);
  const ephemeral = cipher.subarray(IV_LENGTH, IV_LENGTH + EPHEMERAL_LENGTH);
  const mac = cipher.subarray(IV_LENGTH + EPHEMERAL_LENGTH, HEADER_LENGTH);
  const body = cipher.subarray(HEADER_LENGTH);
  let shared: Buffer;
  let uncompressed: Buffer;
  try {
    if (ephemeral[0] !== 0x02 && ephemeral[0] !== 0x03) throw new Error("not a compressed point");
    uncompressed = ECDH.convertKey(ephemeral, "secp256k1", undefined, undefined, "uncompressed") as Buffer;
    shared = ecdh.computeSecret(ephemeral); // the x coordinate, as eth-crypto's ECDH
  } catch (e) {
    throw new PrepaidLedgerError("MALFORMED_DATA", "Malformed ECIES ciphertext", {
      details: { reason: "ephemeral key is not a point", offset: IV_LENGTH },
      cause: e,
    });
  }
  const hash = createHash("sha512").update(shared).digest();
  const expected = createHmac("sha256", hash.subarray(32)).update(iv).update(uncompressed).update(body).digest();
  if (!timingSafeEqual(expected, mac)) {
    throw new PrepaidLedgerError("DECRYPTION_FAILED", "ECIES decryption failed", { details: { reason: "bad MAC" } });
  }
  let text: string;
  try {
    const decipher = createDecipheriv("aes-256-cbc", hash.subarray(0, 32), iv);
    text = Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8");
  } catch (e) {
    throw new PrepaidLedgerError("DECRYPTION_FAILED", "ECIES decryption failed", {
      details: { reason: "decryption error" },
      cause: e,
    });
  }
  const plain = Buffer.from(text, "base64");
  // Buffer's base64 decoder skips junk silently; insist the text was exactly base64(plain).
  if (plain.toString("base64") !== text) {
    throw new PrepaidLedgerError("MALFORMED_DATA", "Malformed ECIES plaintext", {
      details: { reason: "decrypted text is not base64" },
    });
  }
  return new Uint8Array(plain);
}

/** One OpenSSL ECDH per private key: checking and loading a key costs more than using it. */
const ecdhByKey = new Map<string, NodeECDH>();

function ecdhFor(privateKey: string): NodeECDH {
  let ecdh = ecdhByKey.get(privateKey);
  if (ecdh === undefined) {
    const key = privateKeyBytes(privateKey);
    ecdh = createECDH("secp256k1");
    ecdh.setPrivateKey(key);
    if (ecdhByKey.size > 64) ecdhByKey.clear();
    ecdhByKey.set(privateKey, ecdh);
  }
  return ecdh;
}
