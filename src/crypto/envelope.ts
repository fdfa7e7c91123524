/**
 * Batch encryption: a fresh 256-bit data key per batch, wrapped for each recipient in the batch
 * envelope (FORMAT.md 4), and records encrypted under it with AES-256-GCM in ciphertext format
 * `0x02` (FORMAT.md 3.2).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

import { getAddress } from "ethers";

import { PrepaidLedgerError } from "../errors.js";
import { DETAILS_VERSION } from "./details.js";
import { addressOf, eciesDecrypt, eciesEncrypt, publicKeyOf } from "./ecies.js";
import { bytesToHex } from "./hash.js";

export type RecipientRole = "regulator" | "merchant" | "other";

/** Someone a batch data key is wrapped for. */
export interface Recipient {
  /** Any form `eciesEncrypt` accepts (uncompressed or compressed hex). */
  publicKey: string;
  role: RecipientRole;
}

/** One parsed envelope entry. */
export interface EnvelopeEntry {
  /** Checksummed address of the recipient's key. */
  address: string;
  role: RecipientRole;
  /** The data key, ECIES-encrypted (as base64 text) for the recipient. */
  wrapped: Uint8Array;
}

/** A batch's data key and the envelope that carries it to the recipients. */
export interface BatchKey {
  dataKey: Uint8Array;
  envelope: Uint8Array;
}

/** Version byte leading the envelope. */
export const ENVELOPE_VERSION = 0x01;
/** Lead byte of a batch-record ciphertext. */
export const FORMAT_BATCH = 0x02;
/** Bytes of a batch data key. */
export const DATA_KEY_LENGTH = 32;

const MAX_RECIPIENTS = 255;
/** address b20 | role u8 | wrappedLength u16 */
const ENTRY_HEADER = 23;
const TAG_LENGTH = 16;
const MAX_INDEX = 2 ** 32 - 1;
const ROLE_BYTE: Record<RecipientRole, number> = { regulator: 1, merchant: 2, other: 3 };
const ROLE_OF_BYTE: readonly (RecipientRole | undefined)[] = [undefined, "regulator", "merchant", "other"];

// Scratch nonce and aad, rewritten before each use. Safe to share: createCipheriv copies the IV
// and setAAD consumes the aad synchronously, and nothing awaits in between.
const nonce = Buffer.alloc(12); // 8 zero bytes | index u32
const aad = Buffer.alloc(5); // 0x02 | index u32
aad[0] = FORMAT_BATCH;

function invalid(reason: string, facts: Record<string, unknown> = {}): PrepaidLedgerError {
  return new PrepaidLedgerError("INVALID_ARGUMENT", "Invalid batch encryption argument", {
    details: { reason, ...facts },
  });
}

function malformed(reason: string, facts: Record<string, unknown>): PrepaidLedgerError {
  return new PrepaidLedgerError("MALFORMED_DATA", "Malformed batch envelope", { details: { reason, ...facts } });
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
  if (!Array.isArray(recipients) || recipients.length === 0 || recipients.length > MAX_RECIPIENTS) {
    throw invalid("need 1 to 255 recipients", { count: Array.isArray(recipients) ? recipients.length : undefined });
  }
  const addresses = recipients.map((r, index) => {
    if (!Object.hasOwn(ROLE_BYTE, r.role)) throw invalid("unknown role", { index, role: r.role });
    return addressOf(r.publicKey);
  });
  const seen = new Set<string>();
  addresses.forEach((address, index) => {
    if (seen.has(address)) throw invalid("duplicate recipient", { index, address });
    seen.add(address);
  });
  if (!recipients.some((r) => r.role === "regulator")) throw invalid("no regulator among the recipients");

  const dataKey = new Uint8Array(randomBytes(DATA_KEY_LENGTH));
  const wrap = async (): Promise<Uint8Array> => {
    const wrapped = await Promise.all(recipients.map((r) => eciesEncrypt(r.publicKey, dataKey)));
    const length = 2 + wrapped.reduce((sum, w) => sum + ENTRY_HEADER + w.length, 0);
    const envelope = new Uint8Array(length);
    envelope[0] = ENVELOPE_VERSION;
    envelope[1] = recipients.length;
    let o = 2;
    recipients.forEach((r, i) => {
      const w = wrapped[i]!;
      envelope.set(Buffer.from(addresses[i]!.slice(2), "hex"), o);
      envelope[o + 20] = ROLE_BYTE[r.role];
      envelope[o + 21] = w.length >> 8;
      envelope[o + 22] = w.length & 0xff;
      envelope.set(w, o + ENTRY_HEADER);
      o += ENTRY_HEADER + w.length;
    });
    return envelope;
  };
  return { dataKey, wrap };
}

/**
 * Parses a batch envelope. A zero-length envelope (a batch of format `0x01` records only) has no
 * entries; a non-empty one must list at least one.
 *
 * @param envelope - `0x01 | n u8 | (address b20 | role u8 | wrappedLength u16 | wrapped) × n`
 * @returns the entries in order (`wrapped` are copies)
 * @throws PrepaidLedgerError `UNSUPPORTED_VERSION` for a version byte other than 1;
 *   `MALFORMED_DATA` if truncated, with trailing bytes, with `n = 0` or with an unknown role byte
 */
export function parseEnvelope(envelope: Uint8Array): EnvelopeEntry[] {
  if (envelope.length === 0) return [];
  if (envelope[0] !== ENVELOPE_VERSION) {
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "Unsupported envelope version", {
      details: { version: envelope[0] },
    });
  }
  if (envelope.length < 2) throw malformed("truncated", { offset: 1, length: envelope.length });
  const n = envelope[1]!;
  if (n === 0) throw malformed("no entries", { offset: 1 });
  const entries: EnvelopeEntry[] = [];
  let o = 2;
  for (let i = 0; i < n; i++) {
    if (o + ENTRY_HEADER > envelope.length) throw malformed("truncated", { entry: i, offset: o, length: envelope.length });
    const role = ROLE_OF_BYTE[envelope[o + 20]!];
    if (role === undefined) throw malformed("unknown role", { entry: i, offset: o + 20, role: envelope[o + 20] });
    const end = o + ENTRY_HEADER + ((envelope[o + 21]! << 8) | envelope[o + 22]!);
    if (end > envelope.length) throw malformed("truncated", { entry: i, offset: o, length: envelope.length });
    entries.push({
      address: getAddress(bytesToHex(envelope.subarray(o, o + 20))),
      role,
      wrapped: envelope.slice(o + ENTRY_HEADER, end),
    });
    o = end;
  }
  if (o !== envelope.length) throw malformed("trailing bytes", { offset: o, length: envelope.length });
  return entries;
}

/**
 * Unwraps the batch data key from the envelope entry of this key's address.
 *
 * @param privateKey - the recipient's private key (32-byte hex, `0x` optional)
 * @param envelope - the batch envelope
 * @returns the 32-byte data key
 * @throws PrepaidLedgerError `WRONG_KEY` if no entry is for this key; `WRAPPED_KEY_CORRUPT`
 *   (cause kept) if that entry fails to decrypt or does not hold exactly 32 bytes; the errors of
 *   {@link parseEnvelope}
 */
export async function openEnvelope(privateKey: string, envelope: Uint8Array): Promise<Uint8Array> {
  const address = addressOf(publicKeyOf(privateKey));
  const entries = parseEnvelope(envelope);
  const entry = entries.find((e) => e.address === address);
  if (entry === undefined) {
    throw new PrepaidLedgerError("WRONG_KEY", "Key is not a recipient of this batch", {
      details: { entries: entries.length },
    });
  }
  let dataKey: Uint8Array;
  try {
    dataKey = await eciesDecrypt(privateKey, entry.wrapped);
  } catch (e) {
    throw new PrepaidLedgerError("WRAPPED_KEY_CORRUPT", "Wrapped data key failed to unwrap", {
      details: { address, role: entry.role },
      cause: e,
    });
  }
  if (dataKey.length !== DATA_KEY_LENGTH) {
    throw new PrepaidLedgerError("WRAPPED_KEY_CORRUPT", "Wrapped data key is not 32 bytes", {
      details: { address, role: entry.role, length: dataKey.length },
    });
  }
  return dataKey;
}

function setIndex(dataKey: Uint8Array, index: number): void {
  if (!(dataKey instanceof Uint8Array) || dataKey.length !== DATA_KEY_LENGTH) {
    throw invalid("data key is not 32 bytes");
  }
  if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) throw invalid("index out of range", { index });
  nonce.writeUInt32BE(index, 8);
  aad.writeUInt32BE(index, 1);
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
  setIndex(dataKey, index);
  if (sealed.length === 0 || sealed[0] !== DETAILS_VERSION) {
    throw invalid("not a sealed payload of version 1", { version: sealed[0] });
  }
  const cipher = createCipheriv("aes-256-gcm", dataKey, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aad);
  const out = new Uint8Array(1 + sealed.length + TAG_LENGTH);
  out[0] = FORMAT_BATCH;
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
  setIndex(dataKey, index);
  if (ciphertext.length === 0) {
    throw new PrepaidLedgerError("MALFORMED_DATA", "Empty ciphertext", { details: { length: 0 } });
  }
  if (ciphertext[0] !== FORMAT_BATCH) {
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "Not a batch-record ciphertext", {
      details: { format: ciphertext[0] },
    });
  }
  if (ciphertext.length < 1 + TAG_LENGTH + 1) {
    throw new PrepaidLedgerError("MALFORMED_DATA", "Truncated batch-record ciphertext", {
      details: { reason: "truncated", length: ciphertext.length },
    });
  }
  const tagAt = ciphertext.length - TAG_LENGTH;
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
  if (plain[0] !== DETAILS_VERSION) {
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "Unsupported sealed payload version", {
      details: { version: plain[0] },
    });
  }
  return new Uint8Array(plain.buffer, plain.byteOffset, plain.length);
}
