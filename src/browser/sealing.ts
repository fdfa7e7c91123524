/**
 * Records sealed for the regulator in a browser: details in, the `recordBatch` arguments out
 * (salted, committed, encrypted, packed), as the Node uploader's src/upload/sealing.ts makes
 * them, on the browser's crypto.
 */
import { SALT_LENGTH, sealValidatedDetails, validateDetails, type RecordDetails } from "../crypto/details.js";
import { randomBytes } from "../crypto/bytes.js";
import type { Recipient } from "../crypto/envelope-format.js";
import { PrepaidLedgerError } from "../errors.js";
import { MAX_BATCH_RECORDS, packBatch, type PackedRecord } from "../ledger/codec.js";
import { createBatchKey, sealBatchRecord } from "./envelope.js";

/** A batch ready to submit: the `recordBatch` arguments plus what the merchant keeps. */
export interface SealedBatch {
  merchantId: number;
  /** `recordBatch`'s `envelope`: the data key wrapped per recipient. */
  envelope: Uint8Array;
  /** `recordBatch`'s `records`. */
  packed: Uint8Array;
  /** The records in batch order. */
  records: PackedRecord[];
  /** Each record's salt, in batch order: with the details, it opens the commitment. */
  salts: Uint8Array[];
}

/**
 * Seals records of one merchant under one fresh data key (ciphertext format `0x02`), wrapped in
 * the envelope for each recipient.
 *
 * @param details - 1 to 65,535 records of one merchant
 * @param recipients - who may read them: at least the regulator
 * @returns the envelope, the packed records and each record's salt
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for a bad record (`details.index` says which),
 *   records of two merchants, or bad recipients
 */
export async function sealBatch(details: readonly RecordDetails[], recipients: Recipient[]): Promise<SealedBatch> {
  if (details.length === 0 || details.length > MAX_BATCH_RECORDS) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "a batch holds 1 to 65535 records", {
      details: { count: details.length },
    });
  }
  const merchantId = details[0]!.merchantId;
  details.forEach((d, index) => {
    try {
      validateDetails(d);
    } catch (e) {
      if (e instanceof PrepaidLedgerError) throw new PrepaidLedgerError(e.code, e.shortMessage, { details: { ...e.details, index }, cause: e });
      throw e;
    }
    if (d.merchantId !== merchantId) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "all records of a batch belong to one merchant", {
        details: { index, merchantId: d.merchantId, expected: merchantId },
      });
    }
  });
  const key = await createBatchKey(recipients);
  const pool = randomBytes(details.length * SALT_LENGTH);
  const salts = details.map((_, i) => pool.slice(i * SALT_LENGTH, (i + 1) * SALT_LENGTH));
  const records = details.map((d, i): PackedRecord => {
    const s = sealValidatedDetails(d, salts[i]!);
    return {
      kind: d.kind,
      amount: d.amount,
      account: s.canonical.slice(6, 38), // canonical: version | kind | merchantId u32 | account
      commitment: s.commitment,
      ciphertext: sealBatchRecord(key.dataKey, i, s.sealed),
    };
  });
  return { merchantId, envelope: key.envelope, packed: packBatch(records), records, salts };
}
