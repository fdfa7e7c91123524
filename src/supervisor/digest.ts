/**
 * The state digest a supervisor signs: a hash over every account's and merchant's books as it
 * rebuilt them from the records alone (docs/FORMAT.md 8). Two supervisors that replayed the same
 * records compute the same digest, whatever order their maps hold.
 */
import { toUtf8Bytes } from "ethers";

import { bytesToHex, keccak256 } from "../crypto/hash.js";
import type { Books } from "../regulator/books.js";

const TAG = toUtf8Bytes("prepaid-ledger.state.v1");
const ACCOUNT_BYTES = 64; // merchantId u32 | account b32 | recordCount u32 | 4 × u48
const MERCHANT_BYTES = 49; // merchantId u32 | status u8 | nextSequence u64 | recordCount u64 | accountCount u32 | 3 × u64

function putUint(out: Uint8Array, at: number, value: bigint, bytes: number): void {
  for (let i = bytes - 1; i >= 0; i--) {
    out[at + i] = Number(value & 0xffn);
    value >>= 8n;
  }
}

/**
 * keccak256(tag | recordCount u64 | head b32 | keccak256(accounts) | keccak256(merchants)), with
 * accounts sorted by (merchantId, account) and merchants by id.
 */
export function stateDigest(books: Books, recordCount: bigint, head: Uint8Array): string {
  const accounts = [...books.accounts.values()].sort((a, b) =>
    a.merchantId !== b.merchantId ? a.merchantId - b.merchantId : a.account < b.account ? -1 : a.account > b.account ? 1 : 0,
  );
  const accountBytes = new Uint8Array(accounts.length * ACCOUNT_BYTES);
  accounts.forEach((a, i) => {
    const at = i * ACCOUNT_BYTES;
    putUint(accountBytes, at, BigInt(a.merchantId), 4);
    accountBytes.set(Buffer.from(a.account.slice(2), "hex"), at + 4);
    putUint(accountBytes, at + 36, BigInt(a.recordCount), 4);
    putUint(accountBytes, at + 40, a.initialAmount, 6);
    putUint(accountBytes, at + 46, a.toppedUp, 6);
    putUint(accountBytes, at + 52, a.consumed, 6);
    putUint(accountBytes, at + 58, a.refunded, 6);
  });
  const merchants = [...books.merchants.values()].sort((a, b) => a.merchantId - b.merchantId);
  const merchantBytes = new Uint8Array(merchants.length * MERCHANT_BYTES);
  merchants.forEach((m, i) => {
    const at = i * MERCHANT_BYTES;
    putUint(merchantBytes, at, BigInt(m.merchantId), 4);
    merchantBytes[at + 4] = m.status;
    putUint(merchantBytes, at + 5, m.nextSequence, 8);
    putUint(merchantBytes, at + 13, BigInt(m.recordCount), 8);
    putUint(merchantBytes, at + 21, BigInt(m.accountCount), 4);
    putUint(merchantBytes, at + 25, m.toppedUp, 8);
    putUint(merchantBytes, at + 33, m.consumed, 8);
    putUint(merchantBytes, at + 41, m.refunded, 8);
  });
  const preimage = new Uint8Array(TAG.length + 8 + 32 + 32 + 32);
  preimage.set(TAG, 0);
  putUint(preimage, TAG.length, recordCount, 8);
  preimage.set(head, TAG.length + 8);
  preimage.set(keccak256(accountBytes), TAG.length + 40);
  preimage.set(keccak256(merchantBytes), TAG.length + 72);
  return bytesToHex(keccak256(preimage));
}
