/**
 * Key handling shared by both ECIES implementations (Node's ecies.ts, the browser's
 * src/browser/ecies.ts): parsing and checking keys, eth-crypto's public-key form, addresses, and
 * the ciphertext layout of FORMAT.md 3.1. No `node:` built-ins.
 */
import { SigningKey, computeAddress } from "ethers";

import { PrepaidLedgerError } from "../errors.js";
import { hexToBytes } from "./bytes.js";

/** Bytes of the AES-CBC IV that leads an ECIES ciphertext. */
export const IV_LENGTH = 16;
/** Bytes of the compressed ephemeral public key. */
export const EPHEMERAL_LENGTH = 33;
/** Bytes of the HMAC-SHA256 tag. */
export const MAC_LENGTH = 32;
/** iv | ephemeral key | mac. */
export const ECIES_HEADER_LENGTH = IV_LENGTH + EPHEMERAL_LENGTH + MAC_LENGTH;
/** Bytes of an AES block. */
export const AES_BLOCK = 16;
/** iv | ephemeral key | mac | at least one AES block. */
export const ECIES_MIN_LENGTH = ECIES_HEADER_LENGTH + AES_BLOCK;

/** The error for a bad key; never quotes the key. */
export function badKey(reason: string): PrepaidLedgerError {
  // No cause: errors from the curve library may quote the key.
  return new PrepaidLedgerError("INVALID_ARGUMENT", "Invalid key", { details: { reason } });
}

/** Parses a private key (32 bytes of hex, `0x` optional) and checks it is a valid scalar. */
export function privateKeyBytes(privateKey: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = hexToBytes(privateKey);
  } catch {
    throw badKey("private key is not hex");
  }
  if (bytes.length !== 32) throw badKey("private key is not 32 bytes");
  try {
    SigningKey.computePublicKey(bytes, true); // throws for 0 or ≥ the curve order
  } catch {
    throw badKey("private key is out of range");
  }
  return bytes;
}

/**
 * Normalizes a public key to eth-crypto's form: 64-byte uncompressed point as 128 hex digits
 * without prefix. Accepts 64 or 65 (`04`-prefixed) byte uncompressed keys or 33-byte compressed
 * ones, each with or without `0x`.
 */
export function normalizePublicKey(publicKey: string): string {
  let bytes: Uint8Array;
  try {
    bytes = hexToBytes(publicKey);
  } catch {
    throw badKey("public key is not hex");
  }
  // Length first: computePublicKey would also accept a 32-byte private key.
  if (bytes.length !== 33 && bytes.length !== 64 && bytes.length !== 65) {
    throw badKey("public key is not 33, 64 or 65 bytes");
  }
  try {
    return SigningKey.computePublicKey(bytes, false).slice(4); // drop "0x04"
  } catch {
    throw badKey("public key is not a point on secp256k1");
  }
}

/**
 * The public key of a private key, in eth-crypto's form.
 *
 * @param privateKey - 32-byte hex private key, `0x` optional
 * @returns the 64-byte uncompressed public key as 128 hex digits, no prefix (as
 *   `EthCrypto.createIdentity().publicKey`)
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for a bad private key
 */
export function publicKeyOf(privateKey: string): string {
  let publicKey = publicKeys.get(privateKey);
  if (publicKey === undefined) {
    publicKey = SigningKey.computePublicKey(privateKeyBytes(privateKey), false).slice(4);
    remember(publicKeys, privateKey, publicKey);
  }
  return publicKey;
}

/**
 * The Ethereum address of a private key's public key: the envelope entry a recipient opens.
 *
 * @param privateKey - 32-byte hex private key, `0x` optional
 * @returns the checksummed `0x` address
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for a bad private key
 */
export function addressOfPrivateKey(privateKey: string): string {
  let address = addresses.get(privateKey);
  if (address === undefined) {
    address = addressOf(publicKeyOf(privateKey));
    remember(addresses, privateKey, address);
  }
  return address;
}

// A reader opens every batch with the same key, and the curve arithmetic in pure JavaScript costs
// about 5 ms a key (7 % of a regulator's read of 1,000-record batches): each key's public key and
// address are computed once. Bounded, as the ECDH cache of ecies.ts, for a process that sees many.
const publicKeys = new Map<string, string>();
const addresses = new Map<string, string>();

function remember(cache: Map<string, string>, key: string, value: string): void {
  if (cache.size >= 64) cache.clear();
  cache.set(key, value);
}

/**
 * The Ethereum address of a public key.
 *
 * @param publicKey - any form {@link eciesEncrypt} accepts
 * @returns the checksummed `0x` address
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` if the public key is malformed
 */
export function addressOf(publicKey: string): string {
  return computeAddress("0x04" + normalizePublicKey(publicKey));
}
