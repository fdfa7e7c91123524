/**
 * The one error class of prepaid-ledger. Every failure the library reports is a
 * `PrepaidLedgerError` with a `code` from the closed list below, so callers branch on codes,
 * never on message text:
 *
 * ```ts
 * try { await uploader.upload(details) }
 * catch (e) { if (isError(e, "LEDGER_REVERTED")) console.log(e.details) }
 * ```
 */

/** Every code the library can throw, with what it means. */
export const ERROR_CODES = {
  INVALID_ARGUMENT: "a value passed to a function is out of range or of the wrong shape",
  INVALID_CONFIG: "a configuration object failed its schema or meaning checks",
  UNSUPPORTED_VERSION: "a format's leading version byte, or a ledger's hash-chain version, is one this library does not know",
  MALFORMED_DATA: "bytes are truncated, too long or otherwise not in the documented format",
  WRONG_KEY: "the data was not encrypted for this key",
  DECRYPTION_FAILED: "authentication failed: the ciphertext was altered or is corrupt",
  WRAPPED_KEY_CORRUPT: "a batch data key wrapped for this key failed to unwrap",
  LEDGER_REVERTED: "the ledger contract refused the transaction (custom error in details)",
  RPC_ERROR: "the JSON-RPC node failed or could not be reached",
  TIMEOUT: "an operation did not finish in the time allowed",
  JOURNAL_CORRUPT: "the upload journal on disk cannot be read back",
  SEQUENCE_CONFLICT: "the on-chain batch sequence does not match the local journal",
  NOT_FOUND: "the index holds no merchant, account or record with this id",
  INDEX_CORRUPT: "the index database cannot be read, or is not a prepaid-ledger index of this version",
  INDEX_UNAVAILABLE: "the index database server (PostgreSQL) cannot be reached, refused the connection or the statement failed on its side",
  INDEX_MISMATCH: "the index database was built from another chain, ledger, quorum or regulator key",
  REORG_TOO_DEEP: "a block the index treated as settled was replaced: the index is marked until `prepaid sync --repair`",
  RECORD_CONFLICT: "a record with this identity (kind, account, order reference) was already given to the uploader with other details",
  RECEIPT_MALFORMED: "a receipt (JSON or compact string) is not in the format of docs/FORMAT.md 10: `details.field` names the part",
  RECEIPT_MISMATCH: "a receipt disagrees with the chain (or its commitment does not open to its details): `details.field` names the part that is wrong",
  RECEIPT_NOT_FOUND: "the ledger holds no record at the receipt's index with its commitment: a forged receipt, or one for a record that never landed",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface PrepaidLedgerErrorOptions {
  /** Structured facts about the failure (values, offsets, names); never secrets. */
  details?: Record<string, unknown>;
  /** The underlying error, if any. */
  cause?: unknown;
  /** Whether trying the same thing again may succeed (RPC outage, timeout). */
  retryable?: boolean;
}

export class PrepaidLedgerError extends Error {
  override readonly name = "PrepaidLedgerError";
  readonly code: ErrorCode;
  /** One sentence, without the details appended to `message`. */
  readonly shortMessage: string;
  readonly details: Record<string, unknown>;
  readonly retryable: boolean;

  constructor(code: ErrorCode, shortMessage: string, options: PrepaidLedgerErrorOptions = {}) {
    const details = options.details ?? {};
    const facts = Object.entries(details)
      .map(([k, v]) => `${k}=${JSON.stringify(v, (_key, x: unknown) => (typeof x === "bigint" ? x.toString() : x))}`)
      .join(", ");
    super(facts.length > 0 ? `${shortMessage} (${facts}) [${code}]` : `${shortMessage} [${code}]`, {
      cause: options.cause,
    });
    this.code = code;
    this.shortMessage = shortMessage;
    this.details = details;
    this.retryable = options.retryable ?? (code === "RPC_ERROR" || code === "TIMEOUT");
  }
}

/** True when `e` is a PrepaidLedgerError, and (if `code` is given) carries that code. */
export function isError<C extends ErrorCode>(
  e: unknown,
  code?: C,
): e is PrepaidLedgerError & { code: C } {
  return e instanceof PrepaidLedgerError && (code === undefined || e.code === code);
}
