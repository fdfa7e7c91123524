/**
 * The index against the contract: after a sync, the chain head and every merchant's books in the
 * index are compared with the ledger's own views at the settled block. A difference is stored as
 * a `books-mismatch` discrepancy; a node that keeps no state at that block makes the comparison
 * "unavailable", never a failure. Split from indexer.ts.
 */
import { Interface } from "ethers";

import { isError } from "../errors.js";
import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import type { IndexQueries } from "./queries.js";
import { inTransaction, type Database } from "./schema.js";

const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);

/**
 * What nodes say when they keep no state at a block (a pruned or non-archive node): the
 * comparison with the contract is then skipped. Anything else (a 502, a timeout, an unreachable
 * node) is a node failure, never "no state".
 */
const NO_STATE = /missing trie node|state (is )?not available|historical state|state histor|pruned|required data unavailable|no state|not an archive/i;

/**
 * Compares the index with the ledger's views at `block` and stores what differs.
 *
 * @param ethCall - runs one `eth_call` of the ledger at `block` with this calldata, returning the answer's hex
 * @returns true when everything matches, false when a discrepancy was stored, "unavailable"
 *   when the node keeps no state at `block`
 * @throws PrepaidLedgerError when the node fails (the caller retries)
 */
export async function compareWithContract(
  db: Database,
  q: IndexQueries,
  ethCall: (data: string) => Promise<string>,
  block: number,
): Promise<boolean | "unavailable"> {
  const view = async (fn: string, args: unknown[]) => ledgerInterface.decodeFunctionResult(fn, await ethCall(ledgerInterface.encodeFunctionData(fn, args)));
  const problems: { field: string; merchantId: number | null; index: unknown; contract: unknown }[] = [];
  try {
    const [count, head] = await view("chainHead", []);
    const info = q.info();
    if (BigInt(info.recordCount) !== count || info.chainHead !== String(head).toLowerCase()) {
      problems.push({ field: "chainHead", merchantId: null, index: [info.recordCount, info.chainHead], contract: [count, head] });
    }
    for (const m of q.merchants()) {
      const [c] = await view("merchantBooks", [m.merchantId]);
      const pairs: [string, number, bigint][] = [
        ["recordCount", m.recordCount, c.recordCount],
        ["accountCount", m.accountCount, c.accountCount],
        ["toppedUp", m.toppedUp, c.toppedUp],
        ["consumed", m.consumed, c.consumed],
        ["refunded", m.refunded, c.refunded],
        ["nextSequence", m.nextSequence, c.nextSequence],
      ];
      for (const [field, mine, theirs] of pairs) {
        if (BigInt(mine) !== theirs) problems.push({ field, merchantId: m.merchantId, index: mine, contract: theirs });
      }
    }
  } catch (e) {
    // A pruned node keeps no state at older blocks: the comparison is skipped, not failed. A
    // node that failed (502, timeout, unreachable) is an error: the caller retries.
    if (isError(e, "LEDGER_REVERTED")) return "unavailable";
    if (isError(e, "RPC_ERROR") && NO_STATE.test(`${e.message} ${String((e.cause as Error | undefined)?.message ?? "")}`)) return "unavailable";
    throw e;
  }
  await inTransaction(db, () => {
    db.exec("DELETE FROM discrepancies WHERE kind = 'books-mismatch'");
    const insert = db.prepare("INSERT INTO discrepancies (id, kind, message, merchant_id, block_number, details) VALUES ((SELECT coalesce(max(id), 0) + 1 FROM discrepancies), ?, ?, ?, ?, ?)");
    for (const p of problems) {
      insert.run(
        "books-mismatch",
        `${p.merchantId === null ? "ledger" : `merchant ${p.merchantId}`}: ${p.field} in the index differs from the contract's`,
        p.merchantId,
        block,
        JSON.stringify(p, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)),
      );
    }
  });
  return problems.length === 0;
}
