/**
 * The crypto layer: record byte formats, commitments, and record / batch-key encryption
 * (docs/FORMAT.md sections 1–4). Re-exported by name so the public surface is deliberate.
 */
export { bytesToHex, hexToBytes, keccak256 } from "./hash.js";
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
} from "./details.js";
export type { RecordDetails, SealedDetails, SealedPayload } from "./details.js";
export { cardId, newCardSecret } from "./card.js";
export type { CardOwnership } from "./card.js";
export { ECIES_MIN_LENGTH, addressOf, eciesDecrypt, eciesEncrypt, publicKeyOf } from "./ecies.js";
export { FORMAT_SINGLE, openSingle, sealSingle } from "./single.js";
export {
  DATA_KEY_LENGTH,
  ENVELOPE_VERSION,
  FORMAT_BATCH,
  createBatchKey,
  openBatchRecord,
  openEnvelope,
  parseEnvelope,
  sealBatchRecord,
} from "./envelope.js";
export type { BatchKey, EnvelopeEntry, Recipient, RecipientRole } from "./envelope.js";
