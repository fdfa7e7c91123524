/**
 * What makes two records "the same record" to the uploader, so that calling `upload()` again
 * with records it has already taken returns their first outcome instead of booking them twice
 * (as Stripe's idempotency keys do for payments).
 *
 * A record's identity is its merchant's order reference on one card for one kind of entry:
 * `(merchantId, kind, account, orderRef)`. That is what a merchant's order system already keeps
 * unique, and it survives a retry that rebuilds the details (a new `time`, say). A record with an
 * empty `orderRef` is identified by all of its details instead. Two records with one identity
 * but different details (another amount, time or memo) are a conflict, refused with
 * `RECORD_CONFLICT` rather than guessed at.
 */
import { createHash } from "node:crypto";

import { sealValidatedDetails, type RecordDetails } from "../crypto/details.js";
import { bytesToHex } from "../crypto/hash.js";
import { RECORD_HEAD_BYTES } from "../ledger/codec.js";

/**
 * The record's identity key: 16 bytes of SHA-256 (local only, never on chain) over the identity
 * fields, as hex. The details must be valid (see `validateDetails`).
 */
export function recordKey(d: RecordDetails): string {
  const hash = createHash("sha256");
  const head = Buffer.alloc(6);
  head[0] = d.orderRef === "" ? 0 : 1; // which identity: by order reference, or by every detail
  head[1] = d.kind;
  head.writeUInt32BE(d.merchantId, 2);
  hash.update(head).update(d.account.toLowerCase()).update("\0").update(d.orderRef, "utf8");
  if (d.orderRef === "") hash.update(`\0${d.amount}\0${d.time}\0`).update(d.memo, "utf8");
  return hash.digest("hex").slice(0, 32);
}

/** One record of a packed batch, as the journal holds it. */
export interface PackedEntryRecord {
  account: string;
  commitment: string;
}

/** The accounts and commitments of a packed batch (docs/FORMAT.md 5), in batch order. */
export function packedRecords(packed: Uint8Array, count: number): PackedEntryRecord[] {
  const out: PackedEntryRecord[] = [];
  let at = 3;
  for (let i = 0; i < count; i++) {
    const length = (packed[at + 71] << 8) | packed[at + 72];
    out.push({ account: bytesToHex(packed.subarray(at + 7, at + 39)), commitment: bytesToHex(packed.subarray(at + 39, at + 71)) });
    at += RECORD_HEAD_BYTES + length;
  }
  return out;
}

/** Whether `d` are exactly the details committed to by `commitment` under `salt` (both hex). */
export function sameDetails(d: RecordDetails, salt: string, commitment: string): boolean {
  const s = sealValidatedDetails(d, Buffer.from(salt.slice(2), "hex"));
  return bytesToHex(s.commitment) === commitment.toLowerCase();
}
