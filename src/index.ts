/**
 * prepaid-ledger: the public API. Everything a merchant dApp or a regulator's tool needs, by
 * name; anything not listed here is internal and may change. test/index.test.ts snapshots this
 * list, so a change to it is deliberate.
 */

// Errors
export { ERROR_CODES, PrepaidLedgerError, isError } from "./errors.js";
export type { ErrorCode, PrepaidLedgerErrorOptions } from "./errors.js";

// Crypto layer (docs/FORMAT.md 2-4)
export {
  RecordKind,
  addressOf,
  canonicalFromSealed,
  cardId,
  commitmentOf,
  createBatchKey,
  decodeSealed,
  encodeCanonical,
  encodeSealed,
  keccak256,
  newCardSecret,
  openBatchRecord,
  openEnvelope,
  openSingle,
  parseEnvelope,
  publicKeyOf,
  sealBatchRecord,
  sealDetails,
  sealSingle,
  validateDetails,
} from "./crypto/index.js";
export type { CardOwnership, EnvelopeEntry, Recipient, RecipientRole, RecordDetails, SealedPayload } from "./crypto/index.js";

// Ledger formats and ABI (docs/FORMAT.md 5-7)
export { PREPAID_LEDGER_ABI } from "./ledger/abi.js";
export {
  CHAIN_VERSION,
  chainVersionOf,
  decodeRecordedData,
  encodeRecord,
  genesisHead,
  linkBatch,
  linkHead,
  linkSettlement,
  packBatch,
  SettlementReason,
  unpackBatch,
} from "./ledger/codec.js";
export type { BatchLink, ChainVersion, PackedRecord, RecordedData, SettlementLink } from "./ledger/codec.js";
export { decodeRevert } from "./ledger/revert.js";

// Upload layer (merchants)
export { Uploader, UploaderConfig } from "./upload/uploader.js";
export type { LandedRecord, UploadedRecord, UploaderConfigInput } from "./upload/uploader.js";
export { sealBatch, sealSingles } from "./upload/sealing.js";
export type { SealedBatch } from "./upload/sealing.js";

// Receipts a card holder checks (docs/FORMAT.md 10)
export {
  makeReceipt,
  parseReceipt,
  receiptFromCompact,
  receiptFromJson,
  receiptToCompact,
  receiptToJson,
  validateReceipt,
  verifyReceipt,
} from "./receipt/index.js";
export type { Receipt, ReceiptConfirmation, ReceiptJson, ReceiptVerification, VerifyReceiptOptions } from "./receipt/index.js";

// Regulator layer
export { RegulatorReader, ReaderConfig } from "./regulator/reader.js";
export type {
  Discrepancy,
  DiscrepancyKind,
  MerchantReport,
  ReaderConfigInput,
  SupervisionReport,
  VerifiedRecord,
} from "./regulator/reader.js";
export { formatAmount, formatReport } from "./regulator/report.js";

// Regulator's workbench: the SQLite index, risk rules (docs/RISK.md)
export { Indexer, IndexerConfig } from "./indexer/indexer.js";
export type { IndexerConfigInput, SyncOptions, SyncProgress, SyncResult } from "./indexer/indexer.js";
export { IndexQueries } from "./indexer/queries.js";
export type {
  AccountRow,
  AlertRow,
  IndexInfo,
  LiabilityPoint,
  MerchantRow,
  Overview,
  RecordRow,
  Totals,
} from "./indexer/queries.js";
export { SCHEMA_VERSION } from "./indexer/schema.js";
export { openIndex } from "./indexer/open.js";
export { RISK_RULES, RiskConfig } from "./indexer/risk.js";
export type { Alert, RiskConfigInput, RiskRule } from "./indexer/risk.js";
export { serveDashboard } from "./dashboard/server.js";
export { httpJsonRpc } from "./rpc.js";

// Deployment reach: Besu QBFT consortium chains (docs/QBFT.md)
export {
  decodeQbftExtraData,
  encodeQbftExtraData,
  faultTolerance as qbftFaultTolerance,
  qbftGenesis,
  quorum as qbftQuorum,
} from "./deploy/qbft.js";
export type { QbftExtraData, QbftExtraDataInput, QbftGenesis, QbftGenesisOptionsInput } from "./deploy/qbft.js";
export { qbftHealth } from "./deploy/health.js";
export type { QbftHealth } from "./deploy/health.js";
