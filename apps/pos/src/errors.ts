/**
 * Errors in words a cashier can act on: the ledger's custom errors decoded (src/ledger/revert.ts
 * names them and their arguments), wallet and network problems.
 */
import { isError } from "../../../src/errors.js";
import { formatYuan } from "./format.js";

/** What each of the ledger's refusals means at the till. */
const LEDGER_REASONS: Record<string, (args: Record<string, unknown>) => string> = {
  LedgerInsufficientBalance: (a) =>
    `insufficient balance: the card holds ${formatYuan(BigInt(String(a.balance ?? 0)))}, this needs ${formatYuan(BigInt(String(a.needed ?? 0)))}`,
  LedgerUnknownAccount: () => "this card was never sold here: sell it first",
  LedgerUnauthorizedRecorder: () => "the connected wallet is not a recorder of this merchant",
  LedgerMerchantSuspended: () => "the regulator has suspended this merchant",
  LedgerMerchantClosed: () => "this merchant is closed",
  LedgerRefundsOnly: () => "this merchant is winding down: only refunds can be recorded",
  LedgerUnknownMerchant: () => "no such merchant on this ledger: check the till's setup",
  LedgerUndercovered: () => "the merchant's custody deposit does not cover this sale: top up the deposit first",
  LedgerAccountOverflow: () => "the card's total would overflow",
  EnforcedPause: () => "the ledger is paused by its operator",
};

/**
 * A one-line explanation of an error for the cashier.
 *
 * @param e - a PrepaidLedgerError (or the name of a ledger error, as the journal keeps it), or anything thrown
 */
export function describeError(e: unknown): string {
  if (typeof e === "string") return `Refused by the ledger — ${LEDGER_REASONS[e]?.({}) ?? e}`;
  if (isError(e, "LEDGER_REVERTED")) {
    const name = String(e.details.error ?? "");
    const args = (e.details.args ?? {}) as Record<string, unknown>;
    const reason = LEDGER_REASONS[name];
    return `Refused by the ledger — ${reason !== undefined ? reason(args) : name !== "" ? name : e.shortMessage}`;
  }
  if (isError(e, "RPC_ERROR") || isError(e, "TIMEOUT")) return `Network problem (${e.shortMessage}); retrying`;
  if (isError(e, "JOURNAL_CORRUPT")) {
    return `This till's saved records in this browser are damaged (${e.shortMessage}). Do not clear the browser's data; ask for support`;
  }
  if (isError(e)) return e.shortMessage;
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 4001 || code === "ACTION_REJECTED") return "The wallet refused the request";
  return e instanceof Error ? e.message : String(e);
}
