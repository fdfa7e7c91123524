/**
 * Checking a receipt against what the chain says, without touching the network: decoding a
 * `Recorded` log, and deciding whether the record it describes is the receipt's — and if not,
 * which part of the receipt is wrong. src/receipt/verify.ts fetches the logs and views and calls
 * these; a wallet or a test can call them with logs from anywhere. Browser-safe.
 */
import { PrepaidLedgerError } from "../errors.js";
import { hexBytes, readUint, toHex } from "./canonical.js";
import { computedCommitment, type Receipt } from "./receipt.js";

/** keccak256("Recorded(bytes32,uint32,bytes32)"), the `Recorded` event's topic 0 (FORMAT.md 6). */
export const RECORDED_TOPIC = "0xf224eeb88d3d92740fd18c6f84a660cb680dbe9e1f177842394edd65ea7ca6d5";

/** A log as JSON-RPC's `eth_getLogs` returns it. */
export interface ReceiptLog {
  address: string;
  blockNumber: string;
  transactionHash: string;
  logIndex: string;
  topics: string[];
  data: string;
  removed?: boolean;
}

/** One record as its `Recorded` log states it. */
export interface RecordedRecord {
  ledger: string;
  recordIndex: bigint;
  blockNumber: number;
  txHash: string;
  logIndex: number;
  account: string;
  merchantId: number;
  commitment: string;
  kind: number;
  amount: bigint;
}

/**
 * The committed-only parts of a receipt: the chain shows kind, amount, account and merchant in
 * the clear, but these only through the commitment, so a verifier with the chain alone can tell
 * that one of them is wrong, not which.
 */
export const HIDDEN_FIELDS = ["time", "orderRef", "memo", "salt"] as const;
export type HiddenField = (typeof HIDDEN_FIELDS)[number];

/** The part of a receipt a mismatch names (`details.field` of `RECEIPT_MISMATCH`). */
export type ReceiptField =
  | "chainId"
  | "ledger"
  | "recordIndex"
  | "blockNumber"
  | "account"
  | "merchantId"
  | "kind"
  | "amount"
  | "commitment"
  | "details"
  | HiddenField;

/**
 * The error for a receipt that disagrees with the chain.
 *
 * @param field - the part that is wrong
 * @param message - one sentence for people
 * @param facts - what the receipt says and what was found
 */
export function mismatch(field: ReceiptField, message: string, facts: Record<string, unknown> = {}): PrepaidLedgerError {
  return new PrepaidLedgerError("RECEIPT_MISMATCH", message, { details: { field, ...facts } });
}

/**
 * Reads a `Recorded` log (FORMAT.md 6): topics `account`, `merchantId`, `commitment`; data
 * `recordIndex u64 | kind u8 | amount u48 | ciphertext`.
 *
 * @returns the record, or null if the log is not a well-formed `Recorded` log
 */
export function decodeRecordedLog(log: ReceiptLog): RecordedRecord | null {
  if (log.topics.length !== 4 || log.topics[0]?.toLowerCase() !== RECORDED_TOPIC) return null;
  try {
    const data = hexBytes(log.data, (log.data.length - 2) / 2, "data");
    if (data.length < 15) return null;
    const merchant = hexBytes(log.topics[2], 32, "merchantId");
    if (merchant.subarray(0, 28).some((b) => b !== 0)) return null;
    return {
      ledger: log.address.toLowerCase(),
      recordIndex: readUint(data, 0, 8),
      blockNumber: Number(BigInt(log.blockNumber)),
      txHash: log.transactionHash.toLowerCase(),
      logIndex: Number(BigInt(log.logIndex)),
      account: toHex(hexBytes(log.topics[1], 32, "account")),
      merchantId: Number(readUint(merchant, 28, 4)),
      commitment: toHex(hexBytes(log.topics[3], 32, "commitment")),
      kind: data[8]!,
      amount: readUint(data, 9, 6),
    };
  } catch {
    return null;
  }
}

/**
 * Finds the receipt's record among `Recorded` logs — every log of the receipt's block, plus any
 * log found elsewhere by the receipt's commitment — and checks it field by field.
 *
 * In order: if the record at the receipt's index (in its block) carries neither the receipt's
 * commitment nor the one its details give, while another record does, the receipt's
 * `recordIndex` (or `blockNumber`) is wrong; otherwise the record at the receipt's index is
 * compared: `account`, `merchantId`, `kind`,
 * `amount` (on chain in the clear), then the commitment: if the receipt's details and salt give
 * the chain's commitment but the receipt states another, the `commitment` field is wrong; if
 * they do not, one of the committed-only parts (time, orderRef, memo, salt) is, and the error
 * says `details` (see {@link pinpointHidden} to name it with the regulator's decrypted copy).
 *
 * @param receipt - a receipt that passed `checkReceiptShape`
 * @param records - the decoded logs (from {@link decodeRecordedLog}), of the receipt's ledger
 * @returns the receipt's record
 * @throws PrepaidLedgerError `RECEIPT_MISMATCH` naming the field; `RECEIPT_NOT_FOUND` if no
 *   record at the receipt's index in its block, and none with its commitment anywhere
 */
export function matchRecord(receipt: Receipt, records: readonly RecordedRecord[]): RecordedRecord {
  const ledger = receipt.ledger.toLowerCase();
  const mine = records.filter((r) => r.ledger === ledger);
  const computed = computedCommitment(receipt);
  const stated = receipt.commitment.toLowerCase();
  const atIndex = mine.find((r) => r.recordIndex === receipt.recordIndex && r.blockNumber === receipt.blockNumber);
  if (atIndex === undefined || (atIndex.commitment !== computed && atIndex.commitment !== stated)) {
    // The record at the receipt's place is not this one (or there is none): is this one elsewhere?
    const others = mine.filter((r) => r !== atIndex);
    const elsewhere = others.find((r) => r.commitment === computed) ?? others.find((r) => r.commitment === stated);
    if (elsewhere !== undefined && elsewhere.recordIndex !== receipt.recordIndex) {
      throw mismatch("recordIndex", "The receipt's record index is not where its record is", { receipt: receipt.recordIndex, chain: elsewhere.recordIndex });
    }
    if (elsewhere !== undefined) {
      throw mismatch("blockNumber", "The receipt's block is not the one holding its record", { receipt: receipt.blockNumber, chain: elsewhere.blockNumber });
    }
  }
  if (atIndex === undefined) {
    throw new PrepaidLedgerError("RECEIPT_NOT_FOUND", "The ledger holds no such record: no record at this index in this block, and none with this commitment", {
      details: { ledger: receipt.ledger, recordIndex: receipt.recordIndex, blockNumber: receipt.blockNumber, commitment: stated },
    });
  }
  const d = receipt.details;
  const visible: [ReceiptField, unknown, unknown][] = [
    ["account", d.account.toLowerCase(), atIndex.account],
    ["merchantId", d.merchantId, atIndex.merchantId],
    ["kind", d.kind, atIndex.kind],
    ["amount", d.amount, atIndex.amount],
  ];
  for (const [field, mineValue, chainValue] of visible) {
    if (mineValue !== chainValue) {
      throw mismatch(field, `The receipt's ${field} is not the one booked on the ledger`, { receipt: mineValue, chain: chainValue });
    }
  }
  if (computed !== atIndex.commitment) {
    throw mismatch("details", "The record's commitment on the ledger does not open to the receipt's time, order reference, memo and salt: one of them was altered", {
      suspects: [...HIDDEN_FIELDS],
      chain: atIndex.commitment,
      computed,
    });
  }
  if (stated !== atIndex.commitment) {
    throw mismatch("commitment", "The receipt's commitment is not the record's: its details open the one on the ledger, but it states another", {
      receipt: stated,
      chain: atIndex.commitment,
    });
  }
  return atIndex;
}

/** The regulator's decrypted copy of a record's committed-only details (the index holds it). */
export interface DecryptedDetails {
  time: number;
  orderRef: string;
  memo: string;
}

/**
 * Names the committed-only part of a receipt that is wrong, given the regulator's decrypted
 * copy of the record: the first of time, orderRef and memo that differs; if none does, the salt.
 *
 * @param receipt - a receipt whose commitment does not open (a `details` mismatch)
 * @param decrypted - what the regulator decrypted from the record's ciphertext
 * @returns the `RECEIPT_MISMATCH` error naming the field
 */
export function pinpointHidden(receipt: Receipt, decrypted: DecryptedDetails): PrepaidLedgerError {
  const d = receipt.details;
  for (const field of ["time", "orderRef", "memo"] as const) {
    if (d[field] !== decrypted[field]) {
      return mismatch(field, `The receipt's ${field} is not the one the merchant committed to`, { receipt: d[field], chain: decrypted[field], source: "regulator's index" });
    }
  }
  return mismatch("salt", "The receipt's salt is not the record's: with it, the details do not open the commitment on the ledger", { source: "regulator's index" });
}
