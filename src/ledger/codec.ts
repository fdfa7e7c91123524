/**
 * The ledger's on-chain byte formats (docs/FORMAT.md sections 5-7): packed records, the
 * `Recorded.info` word, and the hash chain. Pure functions over bytes, shared by the upload
 * module (which packs) and the regulator reader (which re-links the chain from events). No
 * `node:` built-ins and no `Buffer`: the browser entry (src/browser) exports it as it is.
 */
import { AbiCoder, Interface, getAddress, keccak256 as keccakHex, toUtf8Bytes } from "ethers";

import { PrepaidLedgerError } from "../errors.js";
import { bytesToHex, hexToBytes } from "../crypto/bytes.js";
import { keccak256 } from "../crypto/keccak.js";
import { PREPAID_LEDGER_ABI } from "./abi.js";

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
  const low = amount >>> 0;
  out[at + 1] = high >>> 8;
  out[at + 2] = high & 0xff;
  out[at + 3] = low >>> 24;
  out[at + 4] = (low >>> 16) & 0xff;
  out[at + 5] = (low >>> 8) & 0xff;
  out[at + 6] = low & 0xff;
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

/** The 4-byte selector of `recordBatch(uint32,uint64,bytes,bytes)`, from the ABI. */
const RECORD_BATCH_SELECTOR = hexToBytes(new Interface(PREPAID_LEDGER_ABI).getFunction("recordBatch")!.selector);
const MAX_U64 = (1n << 64n) - 1n;
const padded = (n: number): number => Math.ceil(n / 32) * 32;

/**
 * The calldata of `recordBatch(merchantId, sequence, envelope, records)`, ABI-encoded by hand:
 * selector | merchantId | sequence | offset of envelope | offset of records | length | envelope,
 * zero-padded to 32 bytes | length | records, zero-padded. Byte for byte what ethers'
 * `Interface.encodeFunctionData` returns (test/ledger/codec.test.ts checks), in one buffer:
 * ethers goes through hex strings a byte at a time, about 40 ms for a 1,000-record batch.
 */
export function encodeRecordBatchCall(
  merchantId: number,
  sequence: bigint,
  envelope: Uint8Array,
  records: Uint8Array,
): Uint8Array {
  if (!Number.isInteger(merchantId) || merchantId < 0 || merchantId > 0xffffffff) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "merchantId must fit 32 bits", { details: { merchantId } });
  }
  if (sequence < 0n || sequence > MAX_U64) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "sequence must fit 64 bits", { details: { sequence } });
  }
  const recordsAt = 4 * 32 + 32 + padded(envelope.length); // offsets count from after the selector
  const out = new Uint8Array(4 + recordsAt + 32 + padded(records.length)); // zero-filled: padding
  const view = new DataView(out.buffer);
  out.set(RECORD_BATCH_SELECTOR, 0);
  view.setUint32(4 + 28, merchantId);
  view.setBigUint64(4 + 32 + 24, sequence);
  view.setUint32(4 + 64 + 28, 4 * 32);
  view.setUint32(4 + 96 + 28, recordsAt);
  view.setUint32(4 + 128 + 28, envelope.length);
  out.set(envelope, 4 + 160);
  view.setUint32(4 + recordsAt + 28, records.length);
  out.set(records, 4 + recordsAt + 32);
  return out;
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

/** The hash-chain rules (docs/FORMAT.md 7): 1 links records only; 2 also links each batch. */
export type ChainVersion = 1 | 2;
/** The chain version PrepaidLedger links with today (its `CHAIN_VERSION()` view). */
export const CHAIN_VERSION: ChainVersion = 2;
/** Every chain version this code can verify, newest first. */
export const CHAIN_VERSIONS: readonly ChainVersion[] = [2, 1];
/** The batch link's tag: keccak256("prepaid-ledger.batch.v2"). */
export const BATCH_LINK_TAG = keccak256(toUtf8Bytes("prepaid-ledger.batch.v2"));
/** Bytes hashed by a batch link: head, tag, merchantId u32, sequence u64, recorder, envelope hash, count u16. */
export const BATCH_LINK_BYTES = 130;

function checkVersion(version: number): asserts version is ChainVersion {
  if (version !== 1 && version !== 2) {
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "unknown hash-chain version", { details: { version } });
  }
}

/**
 * The chain's value before the first record: bound to one chain id, one ledger address and the
 * chain version (tag "prepaid-ledger.chain.v<version>").
 */
export function genesisHead(chainId: bigint, ledger: string, version: ChainVersion = CHAIN_VERSION): Uint8Array {
  checkVersion(version);
  const tag = keccakHex(toUtf8Bytes(`prepaid-ledger.chain.v${version}`));
  const encoded = AbiCoder.defaultAbiCoder().encode(["bytes32", "uint256", "address"], [tag, chainId, getAddress(ledger)]);
  return keccak256(hexToBytes(encoded));
}

/**
 * The chain version of a ledger, from the genesis head its `genesisHead()` view returns (every
 * version has that view; version 1 has no `CHAIN_VERSION()`), or undefined if it is none of
 * {@link CHAIN_VERSIONS}' genesis for this chain id and address.
 */
export function chainVersionOf(genesis: Uint8Array | string, chainId: bigint, ledger: string): ChainVersion | undefined {
  const hex = typeof genesis === "string" ? genesis.toLowerCase() : bytesToHex(genesis);
  const bare = hex.startsWith("0x") ? hex : "0x" + hex;
  return CHAIN_VERSIONS.find((v) => bytesToHex(genesisHead(chainId, ledger, v)) === bare);
}

/**
 * head_n = keccak256(head_{n-1} | n u64 | merchantId u32 | record). `scratch` may be passed to
 * avoid an allocation per link; it must be at least 44 + record.length bytes. The same in
 * every chain version.
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

/** What a batch link (chain version 2) binds: the `BatchRecorded` event's fields. */
export interface BatchLink {
  merchantId: number;
  sequence: bigint;
  /** The uploading key's address (0x hex). */
  recorder: string;
  /** The envelope's bytes, as logged; its keccak256 is linked. */
  envelope: Uint8Array;
  /** Records in the batch. */
  count: number;
}

/**
 * Chain version 2's batch link, folded in before the batch's first record:
 * keccak256(head | BATCH_LINK_TAG | merchantId u32 | sequence u64 | recorder (20 bytes) |
 * keccak256(envelope) | count u16), 130 bytes hashed.
 */
export function linkBatch(previous: Uint8Array, batch: BatchLink): Uint8Array {
  const u32 = Number.isInteger(batch.merchantId) && batch.merchantId >= 0 && batch.merchantId <= 0xffffffff;
  const u16 = Number.isInteger(batch.count) && batch.count >= 0 && batch.count <= MAX_BATCH_RECORDS;
  if (!u32 || !u16 || batch.sequence < 0n || batch.sequence > MAX_U64) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "batch merchantId, sequence or count out of range", {
      details: { merchantId: batch.merchantId, sequence: batch.sequence, count: batch.count },
    });
  }
  const buf = new Uint8Array(BATCH_LINK_BYTES);
  const view = new DataView(buf.buffer);
  buf.set(previous, 0);
  buf.set(BATCH_LINK_TAG, 32);
  view.setUint32(64, batch.merchantId);
  view.setBigUint64(68, batch.sequence);
  buf.set(hexToBytes(getAddress(batch.recorder)), 76);
  buf.set(keccak256(batch.envelope), 96);
  view.setUint16(128, batch.count);
  return keccak256(buf);
}

/** The settlement link's tag: keccak256("prepaid-ledger.settlement.v2") (docs/FORMAT.md 7.3). */
export const SETTLEMENT_LINK_TAG = keccak256(toUtf8Bytes("prepaid-ledger.settlement.v2"));
/**
 * Bytes hashed by a settlement link: head, tag, n u64, merchantId u32, account b32, holder
 * (20 bytes), reason u8, amount u48.
 */
export const SETTLEMENT_LINK_BYTES = 135;

/** Why custody booked a settlement (IPrepaidLedger.SettlementReason): 1 a claim, 2 a cooling-off return. */
export const SettlementReason = { Claim: 1, CoolingOff: 2 } as const;
export type SettlementReason = (typeof SettlementReason)[keyof typeof SettlementReason];

/** What a settlement link (chain version 2) binds: the `Settled` event's fields. */
export interface SettlementLink {
  /** The record's ledger-wide index `n`. */
  recordIndex: bigint;
  merchantId: number;
  /** The card, 32 bytes (or 0x hex). */
  account: Uint8Array | string;
  /** The card holder custody paid (0x hex address). */
  holder: string;
  /** {@link SettlementReason}: 1 claim, 2 cooling-off (any byte is linked as given). */
  reason: number;
  /** The refund booked, below 2^48. */
  amount: bigint;
}

/**
 * Chain version 2's settlement link: a refund the attached custody booked on a card
 * (`PrepaidLedger.settle`, event `Settled`), a record of its own with no ciphertext:
 * keccak256(head | SETTLEMENT_LINK_TAG | n u64 | merchantId u32 | account b32 | holder (20 bytes)
 * | reason u8 | amount u48), 135 bytes hashed (docs/FORMAT.md 7.3).
 *
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` when a field is out of its range
 */
export function linkSettlement(previous: Uint8Array, s: SettlementLink): Uint8Array {
  const account = typeof s.account === "string" ? Buffer.from(s.account.replace(/^0x/, ""), "hex") : s.account;
  const ok =
    Number.isInteger(s.merchantId) && s.merchantId >= 0 && s.merchantId <= 0xffffffff &&
    Number.isInteger(s.reason) && s.reason >= 0 && s.reason <= 0xff &&
    s.recordIndex >= 0n && s.recordIndex <= MAX_U64 && s.amount >= 0n && s.amount <= MAX_AMOUNT && account.length === 32;
  if (!ok) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "settlement index, merchantId, account, reason or amount out of range", {
      details: { recordIndex: s.recordIndex, merchantId: s.merchantId, reason: s.reason, amount: s.amount, accountBytes: account.length },
    });
  }
  const buf = new Uint8Array(SETTLEMENT_LINK_BYTES);
  const view = new DataView(buf.buffer);
  buf.set(previous, 0);
  buf.set(SETTLEMENT_LINK_TAG, 32);
  view.setBigUint64(64, s.recordIndex);
  view.setUint32(72, s.merchantId);
  buf.set(account, 76);
  buf.set(Buffer.from(getAddress(s.holder).slice(2), "hex"), 108);
  buf[128] = s.reason;
  view.setUint16(129, Number(s.amount >> 32n));
  view.setUint32(131, Number(s.amount & 0xffffffffn));
  return keccak256(buf);
}
