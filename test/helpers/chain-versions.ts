/**
 * Ledger logs as a ledger of another hash-chain version (docs/FORMAT.md 7) would have logged
 * them. Only chain version 2 can be deployed, so version 1 data is made from a version 2
 * ledger's own logs by rewriting each BatchRecorded's chainHead: the records, envelopes and
 * books stay those the contract booked. Links come from the ethers helpers of records.ts, not
 * from src/ledger/codec or the reader.
 */
import { AbiCoder } from "ethers";

import { LEDGER_TOPICS, decodeBatchRecorded, decodeRecorded } from "../../src/regulator/events.js";
import type { RpcLog } from "../../src/regulator/logs.js";
import { expectedBatchLink, expectedGenesis, expectedLink } from "./records.js";

/** BatchRecorded's non-indexed fields, as its log data holds them (ABI-encoded). */
const BATCH_DATA = ["uint64", "uint16", "bytes32", "bytes"];

/** A BatchRecorded log with its chainHead or envelope (0x hex) changed by `edit`. */
export function editBatchData(
  log: RpcLog,
  edit: (fields: { chainHead: string; envelope: string }) => { chainHead?: string; envelope?: string },
): RpcLog {
  const [first, count, chainHead, envelope] = AbiCoder.defaultAbiCoder().decode(BATCH_DATA, log.data);
  const changed = { chainHead: chainHead as string, envelope: envelope as string, ...edit({ chainHead, envelope }) };
  return { ...log, data: AbiCoder.defaultAbiCoder().encode(BATCH_DATA, [first, count, changed.chainHead, changed.envelope]) };
}

/**
 * `logs` (a ledger's, from its first block, in chain order) with every BatchRecorded head
 * re-linked: batch `i` (0-based) by chain version `rule(i)`, from the genesis of `rule(0)`.
 * Version 1 starts at the genesis tagged "prepaid-ledger.chain.v1" and links records only;
 * version 2 links the batch first. Every other log is returned as it is.
 */
export function relinked(logs: RpcLog[], chainId: bigint, ledger: string, rule: (batch: number) => 1 | 2): RpcLog[] {
  let head = expectedGenesis(chainId, ledger, rule(0));
  let batch = 0;
  return logs.map((log) => {
    if (log.topics[0] !== LEDGER_TOPICS.BatchRecorded) return log;
    const b = decodeBatchRecorded(log);
    if (rule(batch++) === 2) head = expectedBatchLink(head, b.merchantId, b.sequence, b.recorder, b.envelope, b.count);
    for (const r of logs.filter((l) => l.topics[0] === LEDGER_TOPICS.Recorded && l.transactionHash === log.transactionHash)) {
      const d = decodeRecorded(r);
      head = expectedLink(head, d.recordIndex, d.merchantId, {
        kind: d.kind,
        amount: d.amount,
        account: d.accountBytes,
        commitment: d.commitment,
        ciphertext: d.ciphertext,
      });
    }
    return editBatchData(log, () => ({ chainHead: head }));
  });
}
