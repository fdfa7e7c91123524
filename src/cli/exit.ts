/**
 * The `prepaid` command's exit codes. Scripts and schedulers branch on them, so each one names a
 * kind of failure a person fixes differently (a typo, a node that is down, an index to rebuild,
 * a key to fetch), and every library error code maps to exactly one of them.
 */
import { isError, type ErrorCode } from "../errors.js";

/** Every exit code, with what it means; `prepaid --help` prints this table. */
export const EXIT_CODES = {
  OK: { code: 0, meaning: "success" },
  INTERNAL: { code: 1, meaning: "unexpected internal error (a bug: please report it with PREPAID_DEBUG=1 output)" },
  USAGE: { code: 2, meaning: "usage error, invalid configuration or argument, a ledger of a hash-chain version this tool does not know, or a Node.js older than 22.13" },
  RPC: { code: 3, meaning: "the JSON-RPC node (or the index's PostgreSQL server) is unreachable, failed or timed out (retry later)" },
  INDEX: { code: 4, meaning: "index problem: not an index, another chain/ledger, or a reorg deeper than the confirmations (the index is marked: run `prepaid sync --repair`)" },
  WRONG_KEY: { code: 5, meaning: "the regulator key does not open this ledger's records (or is not the index's key)" },
  NOT_FOUND: { code: 6, meaning: "no such merchant or account in the index (or, for `users`, no such dashboard account)" },
  RECEIPT: { code: 7, meaning: "`receipt verify`: the receipt is NOT valid (malformed, altered, or no such record on the ledger)" },
  ALERTS: { code: 10, meaning: "`alerts --exit-code` found at least one alert" },
} as const;

export type ExitName = keyof typeof EXIT_CODES;

/**
 * The exit code for each library error code. A `Record` over the closed list, so adding an error
 * code to src/errors.ts fails the type check here until someone decides its exit code.
 */
const BY_ERROR_CODE: Record<ErrorCode, ExitName> = {
  INVALID_ARGUMENT: "USAGE",
  INVALID_CONFIG: "USAGE",
  RPC_ERROR: "RPC",
  TIMEOUT: "RPC",
  INDEX_CORRUPT: "INDEX",
  INDEX_MISMATCH: "INDEX",
  // The PostgreSQL server of the index is down or refuses: like an unreachable node, try again.
  INDEX_UNAVAILABLE: "RPC",
  REORG_TOO_DEEP: "INDEX",
  WRONG_KEY: "WRONG_KEY",
  NOT_FOUND: "NOT_FOUND",
  // Thrown only for a ledger whose hash chain is of an unknown version (a newer prepaid-ledger
  // is needed); a record's unknown format is a discrepancy.
  UNSUPPORTED_VERSION: "USAGE",
  // Record-level problems are reported as discrepancies, never thrown to the command line; if one
  // ever escapes, it is a bug.
  MALFORMED_DATA: "INTERNAL",
  DECRYPTION_FAILED: "INTERNAL",
  WRAPPED_KEY_CORRUPT: "INTERNAL",
  // The regulator's tool sends no transactions and keeps no upload journal.
  LEDGER_REVERTED: "INTERNAL",
  JOURNAL_CORRUPT: "INTERNAL",
  SEQUENCE_CONFLICT: "INTERNAL",
  RECORD_CONFLICT: "INTERNAL",
  // A receipt that cannot be read, disagrees with the chain, or names no record: refused.
  RECEIPT_MALFORMED: "RECEIPT",
  RECEIPT_MISMATCH: "RECEIPT",
  RECEIPT_NOT_FOUND: "RECEIPT",
};

/** The exit code for an error a command threw: its library code's, or 1 for anything else. */
export function exitCodeOf(error: unknown): number {
  return EXIT_CODES[isError(error) ? BY_ERROR_CODE[error.code] : "INTERNAL"].code;
}
