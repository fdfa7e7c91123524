/**
 * The ledger's on-chain byte formats (docs/FORMAT.md sections 5-7): packed records, the
 * `Recorded.info` word, and the hash chain. Pure functions over bytes, shared by the upload
 * module (which packs) and the regulator reader (which re-links the chain from events).
 */
import { AbiCoder, getAddress, keccak256 as keccakHex, toUtf8Bytes } from "ethers";

import { PrepaidLedgerError } from "../errors.js";
import { keccak256 } from "../crypto/hash.js";

/** Version byte of the packed-records format the contract reads. */
export const BATCH_VERSION = 1;
/** Bytes of a record before its ciphertext: kind, amount, account, commitment, length. */
export const RECORD_HEAD_BYTES = 73;
/** Most records one batch can hold (its count is a u16). */
export const MAX_BATCH_RECORDS = 0xffff;
const MAX_AMOUNT = (1n << 48n) - 1n;

/** One record as packed into a batch. */
export interface PackedRecord {
  kind: number;
  amount: bigint;
  /** 32 bytes. */
  account: Uint8Array;
  /** 32 bytes. */
  commitment: Uint8Array;
  ciphertext: Uint8Array;
}

function malformed(reason: string, details: Record<string, unknown>): PrepaidLedgerError {
  return new PrepaidLedgerError("MALFORMED_DATA", reason, { details });
}

/** Writes one record (docs/FORMAT.md 5) into `out` at `at`; returns the offset after it. */
export function writeRecord(out: Uint8Array, at: number, r: PackedRecord): number {
  if (!Number.isInteger(r.kind) || r.kind < 0 || r.kind > 255) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "record kind must be a byte", { details: { kind: r.kind } });
  }
  if (r.amount < 0n || r.amount > MAX_AMOUNT) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "record amount must fit 48 bits", {
      details: { amount: r.amount },
    });
  }
  if (r.account.length !== 32 || r.commitment.length !== 32) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "account and commitment must be 32 bytes", {
      details: { account: r.account.length, commitment: r.commitment.length },
    });
  }
  if (r.ciphertext.length > 0xffff) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "ciphertext longer than 65535 bytes", {
      details: { length: r.ciphertext.length },
    });
  }
  out[at] = r.kind;
  const amount = Number(r.amount); // < 2^48, exact in a double
  const high = Math.floor(amount / 0x100000000);
  out[at + 1] = high >>> 8;
  out[at + 2] = high & 0xff;
  new DataView(out.buffer, out.byteOffset).setUint32(at + 3, amount >>> 0);
  out.set(r.account, at + 7);
  out.set(r.commitment, at + 39);
  out[at + 71] = r.ciphertext.length >>> 8;
  out[at + 72] = r.ciphertext.length & 0xff;
  out.set(r.ciphertext, at + RECORD_HEAD_BYTES);
  return at + RECORD_HEAD_BYTES + r.ciphertext.length;
}

/** One record's packed bytes. */
export function encodeRecord(r: PackedRecord): Uint8Array {
  const out = new Uint8Array(RECORD_HEAD_BYTES + r.ciphertext.length);
  writeRecord(out, 0, r);
  return out;
}

/** Packs records into the calldata of `recordBatch`: `0x01 | count u16 | record × count`. */
export function packBatch(records: readonly PackedRecord[]): Uint8Array {
  if (records.length === 0 || records.length > MAX_BATCH_RECORDS) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "a batch holds 1 to 65535 records", {
      details: { count: records.length },
    });
  }
  let size = 3;
  for (const r of records) size += RECORD_HEAD_BYTES + r.ciphertext.length;
  const out = new Uint8Array(size);
  out[0] = BATCH_VERSION;
  out[1] = records.length >>> 8;
  out[2] = records.length & 0xff;
  let at = 3;
  for (const r of records) at = writeRecord(out, at, r);
  return out;
}

/** Reads packed records back; the inverse of packBatch, with the contract's checks. */
export function unpackBatch(bytes: Uint8Array): PackedRecord[] {
  if (bytes.length < 3) throw malformed("packed batch shorter than its header", { length: bytes.length });
  if (bytes[0] !== BATCH_VERSION) {
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "unknown packed-batch version", {
      details: { version: bytes[0] },
    });
  }
  const count = (bytes[1] << 8) | bytes[2];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: PackedRecord[] = [];
  let at = 3;
  for (let i = 0; i < count; i++) {
    if (at + RECORD_HEAD_BYTES > bytes.length) throw malformed("packed batch ends inside a record", { offset: at });
    const length = view.getUint16(at + 71);
    const end = at + RECORD_HEAD_BYTES + length;
    if (end > bytes.length) throw malformed("packed batch ends inside a ciphertext", { offset: at });
    records.push({
      kind: bytes[at],
      amount: (BigInt(view.getUint16(at + 1)) << 32n) | BigInt(view.getUint32(at + 3)),
      account: bytes.subarray(at + 7, at + 39),
      commitment: bytes.subarray(at + 39, at + 71),
      ciphertext: bytes.subarray(at + RECORD_HEAD_BYTES, end),
    });
    at = end;
  }
  if (at !== bytes.length) throw malformed("bytes after the last record", { offset: at, length: bytes.length });
  return records;
}

/** Bytes of a `Recorded` log's data before its ciphertext: recordIndex u64, kind u8, amount u48. */
export const RECORDED_DATA_HEAD_BYTES = 15;

/** What a `Recorded` log's packed data holds (docs/FORMAT.md 6). */
export interface RecordedData {
  recordIndex: bigint;
  kind: number;
  amount: bigint;
  ciphertext: Uint8Array;
}

/** Reads a `Recorded` log's data: `recordIndex u64 | kind u8 | amount u48 | ciphertext`. */
export function decodeRecordedData(data: Uint8Array): RecordedData {
  if (data.length < RECORDED_DATA_HEAD_BYTES) {
    throw malformed("Recorded log data shorter than its head", { length: data.length });
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    recordIndex: view.getBigUint64(0),
    kind: data[8],
    amount: (BigInt(view.getUint16(9)) << 32n) | BigInt(view.getUint32(11)),
    ciphertext: data.subarray(RECORDED_DATA_HEAD_BYTES),
  };
}

/**
 * Rebuilds a record's packed bytes (docs/FORMAT.md 5) from its log, as the contract hashed
 * them into the chain.
 */
export function recordFromLog(account: Uint8Array, commitment: Uint8Array, data: RecordedData): PackedRecord {
  return { kind: data.kind, amount: data.amount, account, commitment, ciphertext: data.ciphertext };
}

/** The chain's value before the first record: bound to one chain id and one ledger address. */
export function genesisHead(chainId: bigint, ledger: string): Uint8Array {
  const tag = keccakHex(toUtf8Bytes("prepaid-ledger.chain.v1"));
  const encoded = AbiCoder.defaultAbiCoder().encode(["bytes32", "uint256", "address"], [tag, chainId, getAddress(ledger)]);
  return keccak256(Buffer.from(encoded.slice(2), "hex"));
}

/**
 * head_n = keccak256(head_{n-1} | n u64 | merchantId u32 | record). `scratch` may be passed to
 * avoid an allocation per link; it must be at least 44 + record.length bytes.
 */
export function linkHead(
  previous: Uint8Array,
  index: bigint,
  merchantId: number,
  record: Uint8Array,
  scratch?: Uint8Array,
): Uint8Array {
  const size = 44 + record.length;
  const buf = scratch !== undefined && scratch.length >= size ? scratch.subarray(0, size) : new Uint8Array(size);
  const view = new DataView(buf.buffer, buf.byteOffset, size);
  buf.set(previous, 0);
  view.setBigUint64(32, index);
  view.setUint32(40, merchantId);
  buf.set(record, 44);
  return keccak256(buf);
}
