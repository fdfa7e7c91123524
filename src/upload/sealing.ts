/**
 * Turns plain transaction details into the records a batch carries: salted, committed,
 * encrypted, packed (docs/FORMAT.md). Pure computation, no chain access: the uploader journals
 * what this returns before it sends anything, so a retry resends the very same bytes.
 */
import { PrepaidLedgerError } from "../errors.js";
import { sealDetails, validateDetails, type RecordDetails } from "../crypto/details.js";
import { createBatchKey, sealBatchRecord, type Recipient } from "../crypto/envelope.js";
import { hexToBytes } from "../crypto/hash.js";
import { sealSingle } from "../crypto/single.js";
import { MAX_BATCH_RECORDS, packBatch, type PackedRecord } from "../ledger/codec.js";

/** A batch ready to submit: the `recordBatch` arguments plus what the merchant keeps. */
export interface SealedBatch {
  merchantId: number;
  /** `recordBatch`'s `envelope`: the data key wrapped per recipient, or empty. */
  envelope: Uint8Array;
  /** `recordBatch`'s `records`. */
  packed: Uint8Array;
  /** The records in batch order. */
  records: PackedRecord[];
  /** Each record's salt, in batch order: with the details, it opens the commitment. */
  salts: Uint8Array[];
}

function checkBatch(details: readonly RecordDetails[]): number {
  if (details.length === 0 || details.length > MAX_BATCH_RECORDS) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "a batch holds 1 to 65535 records", {
      details: { count: details.length },
    });
  }
  const merchantId = details[0].merchantId;
  for (const [i, d] of details.entries()) {
    validateDetails(d);
    if (d.merchantId !== merchantId) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "all records of a batch belong to one merchant", {
        details: { index: i, merchantId: d.merchantId, expected: merchantId },
      });
    }
  }
  return merchantId;
}

/**
 * Seals records under one fresh AES-256-GCM data key (ciphertext format 0x02), wrapped with
 * ECIES for each recipient in the envelope. One ECIES operation per recipient per batch, not per
 * record: the reason batches upload hundreds of times faster than single records.
 */
export async function sealBatch(details: readonly RecordDetails[], recipients: Recipient[]): Promise<SealedBatch> {
  const merchantId = checkBatch(details);
  const { dataKey, envelope } = await createBatchKey(recipients);
  const records: PackedRecord[] = new Array(details.length);
  const salts: Uint8Array[] = new Array(details.length);
  for (let i = 0; i < details.length; i++) {
    const d = details[i];
    const s = sealDetails(d);
    records[i] = {
      kind: d.kind,
      amount: d.amount,
      account: hexToBytes(d.account),
      commitment: s.commitment,
      ciphertext: sealBatchRecord(dataKey, i, s.sealed),
    };
    salts[i] = s.salt;
  }
  return { merchantId, envelope, packed: packBatch(records), records, salts };
}

/**
 * Seals each record on its own with ECIES for the regulator (ciphertext format 0x01), in a
 * batch with an empty envelope. For low volumes, or when every record must be readable alone.
 */
export async function sealSingles(details: readonly RecordDetails[], regulatorPublicKey: string): Promise<SealedBatch> {
  const merchantId = checkBatch(details);
  const records: PackedRecord[] = [];
  const salts: Uint8Array[] = [];
  for (const d of details) {
    const s = sealDetails(d);
    records.push({
      kind: d.kind,
      amount: d.amount,
      account: hexToBytes(d.account),
      commitment: s.commitment,
      ciphertext: await sealSingle(regulatorPublicKey, s.sealed),
    });
    salts.push(s.salt);
  }
  return { merchantId, envelope: new Uint8Array(0), packed: packBatch(records), records, salts };
}
