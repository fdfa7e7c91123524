/**
 * eth-crypto's ECIES (FORMAT.md 3.1) on the audited pure-JavaScript noble libraries, for
 * browsers: secp256k1 ECDH (the shared point's 32-byte x), SHA-512 of it (encryption key | MAC
 * key), AES-256-CBC with PKCS#7 padding, HMAC-SHA256 over `iv | uncompressed ephemeral key |
 * ciphertext`, laid out as `iv b16 | compressed ephemeral key b33 | mac b32 | ciphertext`, the
 * plaintext carried as base64 text. Byte for byte what Node's src/crypto/ecies.ts writes and
 * opens (test/browser/entry.test.ts checks both ways, in Chromium).
 */
import { cbc } from "@noble/ciphers/aes.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256, sha512 } from "@noble/hashes/sha2.js";

import { PrepaidLedgerError } from "../errors.js";
import { hexToBytes, randomBytes } from "../crypto/bytes.js";
import {
  AES_BLOCK,
  ECIES_HEADER_LENGTH,
  ECIES_MIN_LENGTH,
  EPHEMERAL_LENGTH,
  IV_LENGTH,
  normalizePublicKey,
  privateKeyBytes,
} from "../crypto/keys.js";
import { fromBase64, toBase64 } from "./base64.js";

const ascii = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The 32-byte x coordinate of the ECDH point, as eth-crypto and OpenSSL derive it. */
function sharedX(secret: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return secp256k1.getSharedSecret(secret, publicKey, true).subarray(1);
}

/** MAC over `iv | uncompressed ephemeral key | ciphertext` with the second half of SHA-512(x). */
function macOf(macKey: Uint8Array, iv: Uint8Array, ephemeral: Uint8Array, body: Uint8Array): Uint8Array {
  return hmac.create(sha256, macKey).update(iv).update(ephemeral).update(body).digest();
}

/**
 * Encrypts `plaintext` for `publicKey`, as Node's `eciesEncrypt` does (eth-crypto's scheme).
 *
 * @param publicKey - recipient key: uncompressed (64 bytes, or 65 with `04`) or compressed (33
 *   bytes), hex with or without `0x`
 * @param plaintext - the bytes to encrypt
 * @returns `iv | compressed ephemeral key | mac | AES-256-CBC(base64(plaintext))`
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` if the public key is malformed
 */
export async function eciesEncrypt(publicKey: string, plaintext: Uint8Array): Promise<Uint8Array> {
  const recipient = hexToBytes("04" + normalizePublicKey(publicKey));
  const ephemeralSecret = secp256k1.utils.randomSecretKey();
  const ephemeral = secp256k1.getPublicKey(ephemeralSecret, false);
  const hash = sha512(sharedX(ephemeralSecret, recipient));
  const iv = randomBytes(IV_LENGTH);
  const body = cbc(hash.subarray(0, 32), iv).encrypt(ascii.encode(toBase64(plaintext)));
  const mac = macOf(hash.subarray(32), iv, ephemeral, body);
  const out = new Uint8Array(ECIES_HEADER_LENGTH + body.length);
  out.set(iv, 0);
  out.set(secp256k1.getPublicKey(ephemeralSecret, true), IV_LENGTH);
  out.set(mac, IV_LENGTH + EPHEMERAL_LENGTH);
  out.set(body, ECIES_HEADER_LENGTH);
  return out;
}

/**
 * Decrypts eth-crypto's ECIES and decodes the base64 text inside, as Node's `eciesDecrypt` does.
 *
 * @param privateKey - the recipient's 32-byte private key (hex)
 * @param cipher - `iv b16 | ephemeral key (compressed) b33 | mac b32 | AES-CBC ciphertext`
 * @returns the plaintext bytes
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` (bad key), `MALFORMED_DATA` (bad length, an
 *   ephemeral key off the curve, a plaintext that is not base64), `DECRYPTION_FAILED` (the MAC
 *   does not match, or the padding is wrong after a matching MAC)
 */
export async function eciesDecrypt(privateKey: string, cipher: Uint8Array): Promise<Uint8Array> {
  const secret = privateKeyBytes(privateKey);
  if (cipher.length < ECIES_MIN_LENGTH || (cipher.length - ECIES_HEADER_LENGTH) % AES_BLOCK !== 0) {
    throw new PrepaidLedgerError("MALFORMED_DATA", "Malformed ECIES ciphertext", {
      details: { reason: "bad length", length: cipher.length },
    });
  }
  const iv = cipher.subarray(0, IV_LENGTH);
  const compressed = cipher.subarray(IV_LENGTH, IV_LENGTH + EPHEMERAL_LENGTH);
  const mac = cipher.subarray(IV_LENGTH + EPHEMERAL_LENGTH, ECIES_HEADER_LENGTH);
  const body = cipher.subarray(ECIES_HEADER_LENGTH);
  let ephemeral: Uint8Array;
  let shared: Uint8Array;
  try {
    if (compressed[0] !== 0x02 && compressed[0] !== 0x03) throw new Error("not a compressed point");
    ephemeral = secp256k1.Point.fromBytes(compressed).toBytes(false);
    shared = sharedX(secret, compressed);
  } catch (e) {
    throw new PrepaidLedgerError("MALFORMED_DATA", "Malformed ECIES ciphertext", {
      details: { reason: "ephemeral key is not a point", offset: IV_LENGTH },
      cause: e,
    });
  }
  const hash = sha512(shared);
  const expected = macOf(hash.subarray(32), iv, ephemeral, body);
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected[i]! ^ mac[i]!;
  if (diff !== 0) {
    throw new PrepaidLedgerError("DECRYPTION_FAILED", "ECIES decryption failed", { details: { reason: "bad MAC" } });
  }
  let text: string;
  try {
    text = utf8.decode(cbc(hash.subarray(0, 32), iv).decrypt(body));
  } catch (e) {
    throw new PrepaidLedgerError("DECRYPTION_FAILED", "ECIES decryption failed", {
      details: { reason: "decryption error" },
      cause: e,
    });
  }
  const plain = fromBase64(text);
  if (plain === undefined) {
    throw new PrepaidLedgerError("MALFORMED_DATA", "Malformed ECIES plaintext", {
      details: { reason: "decrypted text is not base64" },
    });
  }
  return plain;
}
