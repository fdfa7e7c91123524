/**
 * `prepaid-ledger/browser`: what a web page needs to write and check records, with no `node:`
 * built-ins and no `Buffer` (test/browser/entry.test.ts bundles this entry, runs it in Chromium
 * and checks the bytes against the Node implementation both ways).
 *
 * - record details, their canonical and sealed forms and commitments (src/crypto/details.ts,
 *   shared with Node as it is; Keccak-256 on hash-wasm's WebAssembly);
 * - ECIES for the regulator and the batch envelope on the audited noble libraries
 *   (@noble/curves, @noble/hashes, @noble/ciphers), in the byte formats of FORMAT.md 3–4;
 * - the packed-batch codec and hash chain (src/ledger/codec.ts, shared as it is);
 * - receipts a card holder can check, and their verification against the chain (src/receipt,
 *   shared as it is);
 * - errors: the same `PrepaidLedgerError` and codes.
 */
export { ERROR_CODES, PrepaidLedgerError, isError } from "../errors.js";
export type { ErrorCode, PrepaidLedgerErrorOptions } from "../errors.js";

// Records: details, commitments (docs/FORMAT.md 1–2)
export { bytesToHex, hexToBytes } from "../crypto/bytes.js";
export { keccak256 } from "../crypto/keccak.js";
export {
  DETAILS_VERSION,
  RecordKind,
  SALT_LENGTH,
  canonicalFromSealed,
  commitmentOf,
  decodeSealed,
  encodeCanonical,
  encodeSealed,
  newSalt,
  sealDetails,
  validateDetails,
} from "../crypto/details.js";
export type { RecordDetails, SealedDetails, SealedPayload } from "../crypto/details.js";
export { recordKey } from "./identity.js";
export { cardId, newCardSecret } from "../crypto/card.js";
export type { CardOwnership } from "../crypto/card.js";

// Encryption for the regulator (docs/FORMAT.md 3–4)
export { ECIES_MIN_LENGTH, addressOf, publicKeyOf } from "../crypto/keys.js";
export { eciesDecrypt, eciesEncrypt } from "./ecies.js";
export { FORMAT_SINGLE, openSingle, sealSingle } from "./single.js";
export { DATA_KEY_LENGTH, ENVELOPE_VERSION, FORMAT_BATCH, parseEnvelope } from "../crypto/envelope-format.js";
export type { BatchKey, EnvelopeEntry, Recipient, RecipientRole } from "../crypto/envelope-format.js";
export { createBatchKey, openBatchRecord, openEnvelope, sealBatchRecord } from "./envelope.js";
export { sealBatch } from "./sealing.js";
export type { SealedBatch } from "./sealing.js";

// Ledger formats (docs/FORMAT.md 5–7) and the contract's errors
export { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
export {
  BATCH_VERSION,
  CHAIN_VERSION,
  MAX_BATCH_RECORDS,
  RECORD_HEAD_BYTES,
  chainVersionOf,
  decodeRecordedData,
  encodeRecord,
  encodeRecordBatchCall,
  genesisHead,
  linkBatch,
  linkHead,
  packBatch,
  unpackBatch,
} from "../ledger/codec.js";
export type { BatchLink, ChainVersion, PackedRecord, RecordedData } from "../ledger/codec.js";
export { decodeRevert } from "../ledger/revert.js";

// Receipts a card holder can check (docs/FORMAT.md 10): src/receipt is browser-safe as it is
export {
  COMPACT_PREFIX,
  RECEIPT_TYPE,
  RECEIPT_VERSION,
  checkReceiptShape,
  computedCommitment,
  makeReceipt,
  parseReceipt,
  receiptFromCompact,
  receiptFromJson,
  receiptToCompact,
  receiptToJson,
  validateReceipt,
  verifyReceipt,
} from "../receipt/index.js";
export type {
  CardBooks,
  Receipt,
  ReceiptConfirmation,
  ReceiptDetails,
  ReceiptInput,
  ReceiptJson,
  ReceiptRpc,
  ReceiptVerification,
  VerifyReceiptOptions,
} from "../receipt/index.js";
