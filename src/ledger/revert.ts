/**
 * Turns what ethers throws into a PrepaidLedgerError: a contract revert becomes LEDGER_REVERTED
 * with the decoded custom error (name and arguments), an unreachable or failing node becomes a
 * retryable RPC_ERROR, anything else is passed through unchanged.
 */
import { Interface, isError as isEthersError } from "ethers";

import { PrepaidLedgerError } from "../errors.js";
import { PREPAID_LEDGER_ABI } from "./abi.js";

const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);

/** A decoded custom error of the ledger. */
export interface DecodedRevert {
  name: string;
  args: Record<string, unknown>;
}

/** Finds revert data (0x + selector …) anywhere in an error's chain of causes. */
function revertData(e: unknown, depth = 0): string | undefined {
  if (e === null || typeof e !== "object" || depth > 6) return undefined;
  const o = e as Record<string, unknown>;
  for (const key of ["data", "revertData"]) {
    const v = o[key];
    if (typeof v === "string" && /^0x[0-9a-fA-F]{8}/.test(v)) return v;
    if (typeof v === "object" && v !== null) {
      const inner = revertData(v, depth + 1);
      if (inner !== undefined) return inner;
    }
  }
  for (const key of ["error", "info", "cause", "parent"]) {
    const inner = revertData(o[key], depth + 1);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

/** Decodes a ledger custom error from revert data, or undefined if it is not one of ours. */
export function decodeRevert(data: string): DecodedRevert | undefined {
  try {
    const parsed = ledgerInterface.parseError(data);
    if (parsed === null) return undefined;
    const args: Record<string, unknown> = {};
    parsed.fragment.inputs.forEach((input, i) => {
      args[input.name || String(i)] = parsed.args[i];
    });
    return { name: parsed.name, args };
  } catch {
    return undefined;
  }
}

const NETWORK_CODES = new Set(["NETWORK_ERROR", "SERVER_ERROR", "TIMEOUT", "ECONNREFUSED", "ECONNRESET", "UND_ERR_SOCKET"]);

function isNetworkFailure(e: unknown, depth = 0): boolean {
  if (e === null || typeof e !== "object" || depth > 6) return false;
  const o = e as Record<string, unknown>;
  if (typeof o.code === "string" && NETWORK_CODES.has(o.code)) return true;
  if (e instanceof TypeError && /fetch failed/i.test(e.message)) return true;
  return isNetworkFailure(o.cause, depth + 1) || isNetworkFailure(o.error, depth + 1);
}

/**
 * Classifies an error from a ledger call.
 *
 * @param e - what ethers (or the provider) threw
 * @param context - facts to attach (merchant, sequence…); never secrets
 */
export function toLedgerError(e: unknown, context: Record<string, unknown> = {}): unknown {
  if (e instanceof PrepaidLedgerError) return e;
  const data = revertData(e);
  if (data !== undefined) {
    const decoded = decodeRevert(data);
    if (decoded !== undefined) {
      return new PrepaidLedgerError("LEDGER_REVERTED", `the ledger refused the call: ${decoded.name}`, {
        details: { ...context, error: decoded.name, args: decoded.args },
        cause: e,
      });
    }
  }
  if (isEthersError(e, "CALL_EXCEPTION")) {
    return new PrepaidLedgerError("LEDGER_REVERTED", "the ledger call reverted without a known error", {
      details: { ...context, data: data ?? null },
      cause: e,
    });
  }
  if (isNetworkFailure(e)) {
    return new PrepaidLedgerError("RPC_ERROR", "the JSON-RPC node could not be reached or failed", {
      details: context,
      cause: e,
      retryable: true,
    });
  }
  return e;
}
