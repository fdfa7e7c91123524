/**
 * Receipts a card holder can check (docs/FORMAT.md 10): the receipt type, its JSON and compact
 * (QR) forms, the pure checks and the verification against the chain. Browser-safe: nothing here
 * imports a `node:` module or uses `Buffer`, so the browser entry re-exports it as it is.
 */
import { malformed } from "./canonical.js";
import { receiptFromCompact } from "./compact.js";
import { receiptFromJson, type Receipt } from "./receipt.js";

export type { ReceiptDetails } from "./canonical.js";
export { COMPACT_PREFIX, base64urlDecode, base64urlEncode, packReceipt, receiptFromCompact, receiptToCompact, unpackReceipt } from "./compact.js";
export {
  RECEIPT_TYPE,
  RECEIPT_VERSION,
  checkReceiptShape,
  computedCommitment,
  makeReceipt,
  receiptFromJson,
  receiptToJson,
  validateReceipt,
} from "./receipt.js";
export type { Receipt, ReceiptInput, ReceiptJson } from "./receipt.js";
export { HIDDEN_FIELDS, RECORDED_TOPIC, decodeRecordedLog, matchRecord, pinpointHidden } from "./check.js";
export type { DecryptedDetails, HiddenField, ReceiptField, ReceiptLog, RecordedRecord } from "./check.js";
export { verifyReceipt } from "./verify.js";
export type { CardBooks, ReceiptConfirmation, ReceiptRpc, ReceiptVerification, VerifyReceiptOptions } from "./verify.js";

/**
 * Reads a receipt in either form: JSON text (starts with `{`) or a compact string (`PL1:…`).
 * Surrounding white space is ignored.
 *
 * @throws PrepaidLedgerError `RECEIPT_MALFORMED` naming the part, `UNSUPPORTED_VERSION`
 */
export function parseReceipt(text: string): Receipt {
  if (typeof text !== "string") throw malformed("encoding", "not a string");
  const t = text.trim();
  if (t.startsWith("{")) return receiptFromJson(t);
  if (/^PL\d+:/.test(t)) return receiptFromCompact(t);
  throw malformed("encoding", "neither receipt JSON nor a compact receipt (PL1:…)");
}
