/**
 * The batch envelope's byte format (FORMAT.md 4) and the checks both batch-encryption
 * implementations share (Node's envelope.ts on OpenSSL, the browser's src/browser/envelope.ts on
 * @noble/ciphers): recipients, the envelope's layout, record indexes, nonce and aad. No `node:`
 * built-ins.
 */
import { getAddress } from "ethers";

import { PrepaidLedgerError } from "../errors.js";
import { bytesToHex, writeHex } from "./bytes.js";
import { DETAILS_VERSION } from "./details.js";
import { addressOf, addressOfPrivateKey } from "./keys.js";

/** What a recipient of a batch key is to the ledger (FORMAT.md 4: role byte 1, 2, 3). */
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
/** Bytes of a batch record's AES-GCM tag. */
export const TAG_LENGTH = 16;
const MAX_INDEX = 2 ** 32 - 1;
const ROLE_BYTE: Record<RecipientRole, number> = { regulator: 1, merchant: 2, other: 3 };
const ROLE_OF_BYTE: readonly (RecipientRole | undefined)[] = [undefined, "regulator", "merchant", "other"];

/** An `INVALID_ARGUMENT` error of batch encryption. */
export function invalid(reason: string, facts: Record<string, unknown> = {}): PrepaidLedgerError {
  return new PrepaidLedgerError("INVALID_ARGUMENT", "Invalid batch encryption argument", {
    details: { reason, ...facts },
  });
}

function malformed(reason: string, facts: Record<string, unknown>): PrepaidLedgerError {
  return new PrepaidLedgerError("MALFORMED_DATA", "Malformed batch envelope", { details: { reason, ...facts } });
}

/**
 * Checks a batch's recipients: 1 to 255 distinct keys with known roles, one a regulator.
 *
 * @returns each recipient's checksummed address, in order
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` as `createBatchKey`
 */
export function checkRecipients(recipients: Recipient[]): string[] {
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
  return addresses;
}

/**
 * Lays out the envelope `0x01 | n | (address | role | wrappedLength u16 | wrapped) × n`.
 *
 * @param recipients - as checked by {@link checkRecipients}
 * @param addresses - what {@link checkRecipients} returned for them
 * @param wrapped - the data key ECIES-encrypted for each, in order
 */
export function buildEnvelope(recipients: Recipient[], addresses: string[], wrapped: Uint8Array[]): Uint8Array {
  const length = 2 + wrapped.reduce((sum, w) => sum + ENTRY_HEADER + w.length, 0);
  const envelope = new Uint8Array(length);
  envelope[0] = ENVELOPE_VERSION;
  envelope[1] = recipients.length;
  let o = 2;
  recipients.forEach((r, i) => {
    const w = wrapped[i]!;
    writeHex(envelope.subarray(0, o + 20), o, addresses[i]!, 2);
    envelope[o + 20] = ROLE_BYTE[r.role];
    envelope[o + 21] = w.length >> 8;
    envelope[o + 22] = w.length & 0xff;
    envelope.set(w, o + ENTRY_HEADER);
    o += ENTRY_HEADER + w.length;
  });
  return envelope;
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
 * The envelope entry of the key with this address.
 *
 * @throws PrepaidLedgerError `WRONG_KEY` if no entry is for it; the errors of {@link parseEnvelope}
 */
export function entryFor(address: string, envelope: Uint8Array): EnvelopeEntry {
  const entries = parseEnvelope(envelope);
  const entry = entries.find((e) => e.address === address);
  if (entry === undefined) {
    throw new PrepaidLedgerError("WRONG_KEY", "Key is not a recipient of this batch", {
      details: { entries: entries.length },
    });
  }
  return entry;
}

/**
 * Checks an unwrapped data key's length.
 *
 * @throws PrepaidLedgerError `WRAPPED_KEY_CORRUPT` if it is not 32 bytes
 */
export function checkUnwrapped(dataKey: Uint8Array, entry: EnvelopeEntry): Uint8Array {
  if (dataKey.length !== DATA_KEY_LENGTH) {
    throw new PrepaidLedgerError("WRAPPED_KEY_CORRUPT", "Wrapped data key is not 32 bytes", {
      details: { address: entry.address, role: entry.role, length: dataKey.length },
    });
  }
  return dataKey;
}

/**
 * Checks a data key and a record index, and writes the index into a record's nonce
 * (`0^8 | index u32`) and aad (`0x02 | index u32`).
 *
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for a key that is not 32 bytes or an index out of range
 */
export function writeIndex(dataKey: Uint8Array, index: number, nonce: Uint8Array, aad: Uint8Array): void {
  if (!(dataKey instanceof Uint8Array) || dataKey.length !== DATA_KEY_LENGTH) {
    throw invalid("data key is not 32 bytes");
  }
  if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) throw invalid("index out of range", { index });
  for (let i = 0; i < 4; i++) nonce[8 + i] = aad[1 + i] = (index >>> (24 - 8 * i)) & 0xff;
  aad[0] = FORMAT_BATCH;
}

/**
 * Checks that a payload to seal is sealed version 1.
 *
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` otherwise
 */
export function checkSealedPayload(sealed: Uint8Array): void {
  if (sealed.length === 0 || sealed[0] !== DETAILS_VERSION) {
    throw invalid("not a sealed payload of version 1", { version: sealed[0] });
  }
}

/**
 * Checks a batch-record ciphertext's lead byte and length before decryption.
 *
 * @returns where its tag starts
 * @throws PrepaidLedgerError `MALFORMED_DATA` / `UNSUPPORTED_VERSION` as `openBatchRecord`
 */
export function checkBatchCiphertext(ciphertext: Uint8Array): number {
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
  return ciphertext.length - TAG_LENGTH;
}

/**
 * Checks a decrypted record's version byte.
 *
 * @throws PrepaidLedgerError `UNSUPPORTED_VERSION` if it is not sealed version 1
 */
export function checkOpened(plain: Uint8Array): Uint8Array {
  if (plain[0] !== DETAILS_VERSION) {
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "Unsupported sealed payload version", {
      details: { version: plain[0] },
    });
  }
  return plain;
}

/**
 * Unwraps the batch data key from the envelope entry of this key's address, with the platform's
 * ECIES decryption (Node's or the browser's `openEnvelope` pass theirs).
 *
 * @param privateKey - the recipient's private key (32-byte hex, `0x` optional)
 * @param envelope - the batch envelope
 * @param decrypt - the platform's ECIES decryption
 * @returns the 32-byte data key
 * @throws PrepaidLedgerError `WRONG_KEY` if no entry is for this key; `WRAPPED_KEY_CORRUPT`
 *   (cause kept) if that entry fails to decrypt or does not hold exactly 32 bytes; the errors of
 *   `parseEnvelope`
 */
export async function unwrapDataKey(
  privateKey: string,
  envelope: Uint8Array,
  decrypt: (privateKey: string, cipher: Uint8Array) => Promise<Uint8Array>,
): Promise<Uint8Array> {
  const address = addressOfPrivateKey(privateKey);
  const entry = entryFor(address, envelope);
  let dataKey: Uint8Array;
  try {
    dataKey = await decrypt(privateKey, entry.wrapped);
  } catch (e) {
    throw new PrepaidLedgerError("WRAPPED_KEY_CORRUPT", "Wrapped data key failed to unwrap", {
      details: { address, role: entry.role },
      cause: e,
    });
  }
  return checkUnwrapped(dataKey, entry);
}
