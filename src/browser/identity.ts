/**
 * A record's identity key, as the Node uploader's src/upload/identity.ts computes it (SHA-256
 * over `(merchantId, kind, account, orderRef)`, or every detail when `orderRef` is empty, cut to
 * 16 bytes), on @noble/hashes: a browser's journal recognises a record the cashier entered before.
 */
import { sha256 } from "@noble/hashes/sha2.js";

import { bytesToHex } from "../crypto/bytes.js";
import { validateDetails, type RecordDetails } from "../crypto/details.js";

const utf8 = new TextEncoder();

/**
 * The identity key of a record (equal to the Node `Uploader.recordKey` of the same details).
 *
 * @param d - the record's details
 * @returns 32 hex digits, no `0x`
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for invalid details
 */
export function recordKey(d: RecordDetails): string {
  validateDetails(d);
  const head = new Uint8Array(6);
  head[0] = d.orderRef === "" ? 0 : 1; // which identity: by order reference, or by every detail
  head[1] = d.kind;
  new DataView(head.buffer).setUint32(2, d.merchantId);
  const hash = sha256.create().update(head).update(utf8.encode(d.account.toLowerCase() + "\0" + d.orderRef));
  if (d.orderRef === "") hash.update(utf8.encode(`\0${d.amount}\0${d.time}\0` + d.memo));
  return bytesToHex(hash.digest()).slice(2, 34);
}
