/**
 * Gas to allow a batch: the EIP-7825 cap and an upper bound from a batch's bytes and kinds.
 */
import { RECORD_HEAD_BYTES } from "../ledger/codec.js";

/** EIP-7825: no transaction may use more gas than this. */
export const MAX_TX_GAS = 1n << 24n;

/** The terms of {@link gasBound} (explained there), for callers that size batches before sealing them. */
export const GAS_BOUND = { perRecord: 9_000, perByte: 26, topUp: 20_000, perBatch: 150_000 } as const;

/**
 * Gas to allow a batch sent without a preflight: an upper bound from its bytes and kinds, capped
 * at the EIP-7825 per-transaction maximum (a bound at the cap means the batch may not fit). Only
 * the gas used is paid. Per record, as the ledger's loop spends it (docs/FORMAT.md 5, 6):
 *   9,000 fixed: the account word's cold load and update (5,000), the Recorded log's base and
 *     four topics (1,875), the loop and the chain link;
 *   26 a byte: 16 of calldata, 8 of log data, and hashing and copying it;
 *   20,000 more for a top-up, which may open its account (a fresh word costs 17,100 more).
 * Measured by the gas bench: ~8,900 a record on an open account, ~26,300 opening one, with
 * typical 147-byte records. 150,000 covers the transaction and the batch (merchant books, role
 * check, BatchRecorded). And never below the EIP-7623 floor of 40 gas a calldata byte.
 * Internal (not in src/index.ts); exported for its test.
 */
export function gasBound(envelope: Uint8Array, packed: Uint8Array): bigint {
  let gas = GAS_BOUND.perByte * envelope.length;
  for (let at = 3; at + RECORD_HEAD_BYTES <= packed.length; ) {
    const bytes = RECORD_HEAD_BYTES + ((packed[at + 71] << 8) | packed[at + 72]);
    gas += GAS_BOUND.perRecord + GAS_BOUND.perByte * bytes + (packed[at] === 1 ? GAS_BOUND.topUp : 0);
    at += bytes;
  }
  const calldataFloor = 40 * (envelope.length + packed.length + 256); // 256: selector, ABI words
  const bound = BigInt(GAS_BOUND.perBatch) + BigInt(Math.max(gas, calldataFloor));
  return bound < MAX_TX_GAS ? bound : MAX_TX_GAS;
}
