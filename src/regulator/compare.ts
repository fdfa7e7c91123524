/**
 * The reader's last step: the books and chain head a replay rebuilt from the logs, against the
 * contract's own views at the block read. Every difference becomes a `books-mismatch` (or, for
 * the head, `chain-break`) discrepancy on the replay. Split from reader.ts.
 */
import type { Contract } from "ethers";

import { bytesToHex } from "../crypto/hash.js";
import { type AccountState, type AccountStore, balanceOf } from "./books.js";
import type { LedgerReplay } from "./replay.js";

/** Accounts whose books are asked of the contract at once. */
const ACCOUNT_PAGE = 64;

/** What the comparison asks the contract through, with the reader's timeout on every call. */
export interface ContractViews {
  ledger: Contract;
  timed: <T>(p: Promise<T>, what: string) => Promise<T>;
}

/**
 * Compares `run`'s chain head, every merchant's books and, if `accounts` is given, every one of
 * those accounts' books with the contract's at `toBlock`; reports each difference on `run`. A
 * range that started mid-ledger is compared by its head only (partial books have no totals).
 *
 * @param accounts - the accounts to compare, in the order their discrepancies are reported;
 *   read a page at a time, so an iterator over a spilled store keeps memory bounded
 */
export async function compareWithContract<S extends AccountStore>(
  run: LedgerReplay<S>,
  { ledger, timed }: ContractViews,
  toBlock: bigint,
  accounts: Iterable<AccountState> | undefined,
): Promise<void> {
  const at = { blockTag: toBlock };
  const [count, head] = (await timed(ledger.chainHead(at), "chainHead")) as [bigint, string];
  if (count !== run.lastIndex || !run.matchesHead(head)) {
    run.report({
      kind: "chain-break",
      message: "the chain head rebuilt from the logs differs from the contract's",
      details: { rebuiltCount: run.lastIndex, rebuiltHead: bytesToHex(run.head), contractCount: count, contractHead: head },
    });
  }
  if (run.startedMidway) return; // partial books cannot be compared with the contract's totals
  for (const m of run.books.merchants.values()) {
    const c = await timed(ledger.merchantBooks(m.merchantId, at), "merchantBooks");
    const fields: [string, unknown, unknown][] = [
      ["status", BigInt(m.status), c.status],
      ["nextSequence", m.nextSequence, c.nextSequence],
      ["recordCount", BigInt(m.recordCount), c.recordCount],
      ["accountCount", BigInt(m.accountCount), c.accountCount],
      ["toppedUp", m.toppedUp, c.toppedUp],
      ["consumed", m.consumed, c.consumed],
      ["refunded", m.refunded, c.refunded],
    ];
    for (const [field, rebuilt, stored] of fields) {
      if (rebuilt !== stored) {
        run.report({
          kind: "books-mismatch",
          merchantId: m.merchantId,
          message: `merchant ${m.merchantId}: ${field} rebuilt from records differs from the contract's`,
          details: { field, rebuilt, contract: stored },
        });
      }
    }
  }
  if (accounts === undefined) return;
  let page: AccountState[] = [];
  for (const a of accounts) {
    page.push(a);
    if (page.length === ACCOUNT_PAGE) {
      await compareAccounts(run, { ledger, timed }, at, page);
      page = [];
    }
  }
  if (page.length > 0) await compareAccounts(run, { ledger, timed }, at, page);
}

/** One page of accounts against the contract's `accountBooks`, asked all at once. */
async function compareAccounts<S extends AccountStore>(
  run: LedgerReplay<S>,
  { ledger, timed }: ContractViews,
  at: { blockTag: bigint },
  page: AccountState[],
): Promise<void> {
  const stored = await Promise.all(page.map((a) => timed(ledger.accountBooks(a.merchantId, a.account, at), "accountBooks")));
  page.forEach((a, j) => {
    const c = stored[j];
    const fields: [string, bigint, bigint][] = [
      ["merchantId", BigInt(a.merchantId), c.merchantId],
      ["recordCount", BigInt(a.recordCount), c.recordCount],
      ["initialAmount", a.initialAmount, c.initialAmount],
      ["toppedUp", a.toppedUp, c.toppedUp],
      ["consumed", a.consumed, c.consumed],
      ["refunded", a.refunded, c.refunded],
      ["balance", balanceOf(a), c.balance],
    ];
    for (const [field, rebuilt, contract] of fields) {
      if (rebuilt !== contract) {
        run.report({
          kind: "books-mismatch",
          account: a.account,
          merchantId: a.merchantId,
          message: `account ${a.account}: ${field} rebuilt from records differs from the contract's`,
          details: { field, rebuilt, contract },
        });
      }
    }
  });
}
