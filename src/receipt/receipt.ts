/**
 * A record's receipt (docs/FORMAT.md 10): what a card holder keeps to check, without the
 * merchant, that the merchant booked exactly this transaction on the ledger. It names the record
 * (chain id, ledger, record index, the block that holds it) and carries what opens its on-chain
 * commitment: the plain details and the salt.
 *
 * Two forms: JSON ({@link receiptToJson}, {@link receiptFromJson}) and a compact string for a QR
 * code (src/receipt/compact.ts). Both are read strictly: an unknown field, a missing one or a
 * value out of range is a `RECEIPT_MALFORMED` error naming the field, never a raw exception.
 * Browser-safe: no `node:` module, no `Buffer`.
 */
import { getAddress } from "ethers";

import { PrepaidLedgerError } from "../errors.js";
import { canonicalOf, checkReceiptDetails, commitmentOfCanonical, hexBytes, malformed, toHex, type ReceiptDetails } from "./canonical.js";

/** The receipt format's version (the JSON `version`, and the byte after the compact prefix). */
export const RECEIPT_VERSION = 1;
/** The JSON `type` of a receipt. */
export const RECEIPT_TYPE = "prepaid-ledger.receipt";

const MAX_U64 = (1n << 64n) - 1n;

/** A record's receipt. Hex values are lowercase, `ledger` is checksummed. */
export interface Receipt {
  version: 1;
  /** The chain's EIP-155 id. */
  chainId: bigint;
  /** The PrepaidLedger contract (EIP-55 checksummed). */
  ledger: string;
  /** Ledger-wide index (from 1) in the record's `Recorded` log. */
  recordIndex: bigint;
  /** The block holding the record's `Recorded` log: where a verifier looks first. */
  blockNumber: number;
  /** `keccak256(canonical(details, salt))`, the record's on-chain commitment (32 bytes hex). */
  commitment: string;
  /** The record's 16-byte salt (hex). */
  salt: string;
  details: ReceiptDetails;
}

/** A receipt as JSON: big numbers as decimal strings. */
export interface ReceiptJson {
  type: typeof RECEIPT_TYPE;
  version: 1;
  chainId: string;
  ledger: string;
  recordIndex: string;
  blockNumber: number;
  commitment: string;
  salt: string;
  details: {
    kind: number;
    merchantId: number;
    account: string;
    amount: string;
    time: number;
    orderRef: string;
    memo: string;
  };
}

/** What the uploader knows of a landed record; {@link makeReceipt} turns it into a receipt. */
export interface ReceiptInput {
  chainId: bigint | number | string;
  ledger: string;
  recordIndex: bigint;
  blockNumber: number;
  salt: string;
  details: ReceiptDetails;
}

function checkUint(field: string, value: bigint, min: bigint, max: bigint): void {
  if (typeof value !== "bigint" || value < min || value > max) throw malformed(field, `not ${min} to ${max}`);
}

/**
 * Checks a receipt's fields for shape and range only (not whether they agree with each other or
 * with the chain): what the decoders check, so that a receipt with an altered field still
 * decodes and the verifier can say which field disagrees with the chain.
 *
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` naming the first bad field
 */
export function checkReceiptShape(r: Receipt): void {
  if (r.version !== RECEIPT_VERSION) throw malformed("version", "not 1");
  checkUint("chainId", r.chainId, 1n, MAX_U64);
  hexBytes(r.ledger, 20, "ledger");
  checkUint("recordIndex", r.recordIndex, 1n, MAX_U64);
  if (!Number.isSafeInteger(r.blockNumber) || r.blockNumber < 0) throw malformed("blockNumber", "not a block number");
  hexBytes(r.commitment, 32, "commitment");
  hexBytes(r.salt, 16, "salt");
  checkReceiptDetails(r.details);
}

/**
 * The commitment a receipt's details and salt give (FORMAT.md 2.1), lowercase hex.
 *
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` if a detail or the salt is out of range
 */
export function computedCommitment(r: Pick<Receipt, "details" | "salt">): string {
  return toHex(commitmentOfCanonical(canonicalOf(r.details, hexBytes(r.salt, 16, "salt"))));
}

/**
 * {@link checkReceiptShape}, and that the receipt's commitment is the one its details and salt
 * give: a receipt that holds together on its own (whether the chain agrees is `verifyReceipt`'s).
 *
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` naming the first bad field;
 *   `RECEIPT_MISMATCH` with `details.field = "commitment"` if the commitment does not open to
 *   the details and salt (which part was altered needs the chain)
 */
export function validateReceipt(r: Receipt): void {
  checkReceiptShape(r);
  const computed = computedCommitment(r);
  if (computed !== r.commitment.toLowerCase()) {
    throw new PrepaidLedgerError("RECEIPT_MISMATCH", "The receipt's commitment does not open to its details and salt", {
      details: { field: "commitment", receipt: r.commitment.toLowerCase(), computed },
    });
  }
}

/**
 * Builds the receipt of a landed record; the commitment is computed from the details and salt.
 *
 * @param input - chain id, ledger, record index, block, salt and the plain details
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` naming a field out of range
 */
export function makeReceipt(input: ReceiptInput): Receipt {
  let chainId: bigint;
  try {
    chainId = BigInt(input.chainId);
  } catch (cause) {
    throw malformed("chainId", "not an integer", {}, cause);
  }
  const details = { ...input.details, account: String(input.details.account).toLowerCase() };
  const salt = hexBytes(input.salt, 16, "salt");
  const receipt: Receipt = {
    version: RECEIPT_VERSION,
    chainId,
    ledger: checksum(input.ledger),
    recordIndex: input.recordIndex,
    blockNumber: input.blockNumber,
    commitment: toHex(commitmentOfCanonical(canonicalOf(details, salt))),
    salt: toHex(salt),
    details,
  };
  checkReceiptShape(receipt); // the commitment is computed above: it opens by construction
  return receipt;
}

/** The EIP-55 form of a 20-byte address. */
export function checksum(address: unknown): string {
  hexBytes(address, 20, "ledger");
  return getAddress((address as string).toLowerCase());
}

/**
 * The receipt as JSON (numbers beyond 2^53 as decimal strings).
 *
 * @returns an object for `JSON.stringify`
 */
export function receiptToJson(r: Receipt): ReceiptJson {
  const d = r.details;
  return {
    type: RECEIPT_TYPE,
    version: r.version,
    chainId: r.chainId.toString(),
    ledger: r.ledger,
    recordIndex: r.recordIndex.toString(),
    blockNumber: r.blockNumber,
    commitment: r.commitment,
    salt: r.salt,
    details: { kind: d.kind, merchantId: d.merchantId, account: d.account, amount: d.amount.toString(), time: d.time, orderRef: d.orderRef, memo: d.memo },
  };
}

const TOP_KEYS = ["type", "version", "chainId", "ledger", "recordIndex", "blockNumber", "commitment", "salt", "details"];
const DETAIL_KEYS = ["kind", "merchantId", "account", "amount", "time", "orderRef", "memo"];

function exactKeys(o: unknown, keys: string[], where: string): Record<string, unknown> {
  if (o === null || typeof o !== "object" || Array.isArray(o)) throw malformed(where, "not a JSON object");
  const rec = o as Record<string, unknown>;
  for (const k of Object.keys(rec)) if (!keys.includes(k)) throw malformed(k, "unknown field", { in: where });
  for (const k of keys) if (rec[k] === undefined) throw malformed(k, "missing", { in: where });
  return rec;
}

/** A decimal string (or a safe integer) as a bigint. */
function decimal(field: string, v: unknown): bigint {
  if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v !== "string" || !/^(0|[1-9]\d{0,19})$/.test(v)) throw malformed(field, "not a decimal integer");
  return BigInt(v);
}

function int(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw malformed(field, "not an integer");
  return v;
}

/**
 * Reads a receipt from its JSON form (an object, or its text), strictly.
 *
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` naming the field (an unknown field too);
 *   `UNSUPPORTED_VERSION` for a version other than 1. Whether the commitment opens to the
 *   details is not checked here (see {@link validateReceipt}, `verifyReceipt`).
 */
export function receiptFromJson(input: unknown): Receipt {
  let value = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch (cause) {
      throw malformed("json", "not valid JSON", {}, cause);
    }
  }
  const o = exactKeys(value, TOP_KEYS, "receipt");
  if (o.type !== RECEIPT_TYPE) throw malformed("type", `not "${RECEIPT_TYPE}"`);
  if (o.version !== RECEIPT_VERSION) {
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "Unsupported receipt version", { details: { field: "version", version: o.version } });
  }
  const d = exactKeys(o.details, DETAIL_KEYS, "details");
  const kind = int("kind", d.kind);
  if (typeof d.account !== "string") throw malformed("account", "not a string");
  const receipt: Receipt = {
    version: RECEIPT_VERSION,
    chainId: decimal("chainId", o.chainId),
    ledger: checksum(o.ledger),
    recordIndex: decimal("recordIndex", o.recordIndex),
    blockNumber: int("blockNumber", o.blockNumber),
    commitment: typeof o.commitment === "string" ? o.commitment.toLowerCase() : (o.commitment as string),
    salt: typeof o.salt === "string" ? o.salt.toLowerCase() : (o.salt as string),
    details: {
      kind: kind as 1 | 2 | 3,
      merchantId: int("merchantId", d.merchantId),
      account: d.account.toLowerCase(),
      amount: decimal("amount", d.amount),
      time: int("time", d.time),
      orderRef: d.orderRef as string,
      memo: d.memo as string,
    },
  };
  checkReceiptShape(receipt);
  return receipt;
}
