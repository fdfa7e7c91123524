/**
 * Turns plain transaction details into the records a batch carries: salted, committed,
 * encrypted, packed (docs/FORMAT.md). Pure computation, no chain access: the uploader journals
 * what this returns before it sends anything, so a retry resends the very same bytes.
 */
import { randomFillSync } from "node:crypto";

import { PrepaidLedgerError } from "../errors.js";
import { SALT_LENGTH, sealValidatedDetails, validateDetails, type RecordDetails } from "../crypto/details.js";
import { drawBatchKey, sealBatchRecord, type Recipient } from "../crypto/envelope.js";
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

/** Records sealed between two yields to the event loop (well under a millisecond of work). */
const SLICE = 64;

/**
 * Seals records under one fresh AES-256-GCM data key (ciphertext format 0x02), wrapped with
 * ECIES for each recipient in the envelope. One ECIES operation per recipient per batch, not per
 * record: the reason batches upload hundreds of times faster than single records.
 *
 * Gives the event loop a turn every {@link SLICE} records, so a caller's pending I/O (the
 * uploader's transaction of the previous batch) is not held up by a whole batch of sealing.
 */
export async function sealBatch(details: readonly RecordDetails[], recipients: Recipient[]): Promise<SealedBatch> {
  return sealCheckedBatch(details, recipients, checkBatch(details));
}

/**
 * {@link sealBatch} for details already checked: 1 to 65,535 records of `merchantId`, each passed
 * by `validateDetails` (the Uploader checks every record of a call before it seals any).
 *
 * @internal
 */
export async function sealCheckedBatch(details: readonly RecordDetails[], recipients: Recipient[], merchantId: number): Promise<SealedBatch> {
  const key = drawBatchKey(recipients);
  const salts = drawSalts(details.length);
  const records: PackedRecord[] = new Array(details.length);
  for (let i = 0; i < details.length; i++) {
    if (i % SLICE === 0) await nextTurn();
    const d = details[i];
    const s = sealValidatedDetails(d, salts[i]);
    records[i] = {
      kind: d.kind,
      amount: d.amount,
      account: s.canonical.subarray(6, 38), // canonical: version | kind | merchantId u32 | account
      commitment: s.commitment,
      ciphertext: sealBatchRecord(key.dataKey, i, s.sealed),
    };
  }
  const envelope = await key.wrap();
  return { merchantId, envelope, packed: packBatch(records), records, salts };
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * One fresh 16-byte salt per record, cut from a single draw from the system's CSPRNG: one call
 * per batch instead of one per record (each costs several microseconds of fixed overhead).
 */
function drawSalts(count: number): Uint8Array[] {
  const pool = randomFillSync(new Uint8Array(count * SALT_LENGTH));
  const salts: Uint8Array[] = new Array(count);
  for (let i = 0; i < count; i++) salts[i] = pool.subarray(i * SALT_LENGTH, (i + 1) * SALT_LENGTH);
  return salts;
}

/**
 * Seals each record on its own with ECIES for the regulator (ciphertext format 0x01), in a
 * batch with an empty envelope. For low volumes, or when every record must be readable alone.
 */
export async function sealSingles(details: readonly RecordDetails[], regulatorPublicKey: string): Promise<SealedBatch> {
  const merchantId = checkBatch(details);
  const records: PackedRecord[] = [];
  const salts = drawSalts(details.length);
  for (const [i, d] of details.entries()) {
    const s = sealValidatedDetails(d, salts[i]);
    records.push({
      kind: d.kind,
      amount: d.amount,
      account: s.canonical.subarray(6, 38),
      commitment: s.commitment,
      ciphertext: await sealSingle(regulatorPublicKey, s.sealed),
    });
  }
  return { merchantId, envelope: new Uint8Array(0), packed: packBatch(records), records, salts };
}
