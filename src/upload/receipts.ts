/**
 * The receipt the uploader returns with each landed record (docs/FORMAT.md 10), built without
 * hashing: the commitment is the one sealing computed from these very details (a fresh record),
 * or the one `sameDetails` checked them against (a record given before, src/upload/identity.ts),
 * so it opens to them by construction. test/receipt/verify.test.ts holds every receipt the
 * uploader returns to `makeReceipt`'s, which recomputes the commitment.
 */
import type { RecordDetails } from "../crypto/details.js";
import { RECEIPT_VERSION, type Receipt } from "../receipt/receipt.js";

/** What every receipt of one uploader carries: its chain id and checksummed ledger. */
export interface ReceiptIds {
  chainId: bigint;
  ledger: string;
}

/** Where a record landed, as the journal holds it (hex from `bytesToHex`). */
export interface LandedPlace {
  recordIndex: bigint;
  blockNumber: number;
  commitment: string;
  salt: string;
}

/**
 * The receipt of a landed record.
 *
 * @param ids - the uploader's chain id and ledger
 * @param landed - the record's index, block, commitment and salt
 * @param d - the details the caller gave for it (validated, and committed to by `landed.commitment`)
 */
export function landedReceipt(ids: ReceiptIds, landed: LandedPlace, d: RecordDetails): Receipt {
  return {
    version: RECEIPT_VERSION,
    chainId: ids.chainId,
    ledger: ids.ledger,
    recordIndex: landed.recordIndex,
    blockNumber: landed.blockNumber,
    commitment: landed.commitment.toLowerCase(),
    salt: landed.salt.toLowerCase(),
    details: { kind: d.kind, merchantId: d.merchantId, account: d.account.toLowerCase(), amount: d.amount, time: d.time, orderRef: d.orderRef, memo: d.memo },
  };
}
