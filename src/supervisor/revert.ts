/**
 * Errors from a supervisor's calls, classified: a SupervisorQuorum custom error decoded with the
 * quorum's ABI and named with its values (`QuorumUnmarkedCheckpoint(recordCount=1262)`, not
 * "reverted without a known error"); everything else as src/ledger/revert.ts classifies it (a
 * ledger custom error; a node that failed — unreachable, timed out, a 502, a truncated answer —
 * as a retryable `RPC_ERROR` / `TIMEOUT`), with a last net for ethers codes of a failed node.
 */
import { Interface, isError as isEthersError } from "ethers";

import { PrepaidLedgerError } from "../errors.js";
import { revertData, toLedgerError } from "../ledger/revert.js";
import { SUPERVISOR_QUORUM_ABI } from "../ledger/quorum-abi.js";

const quorumInterface = new Interface(SUPERVISOR_QUORUM_ABI);

/** A decoded SupervisorQuorum custom error. */
export interface QuorumRevert {
  name: string;
  args: Record<string, unknown>;
}

/** Decodes a SupervisorQuorum custom error from revert data, or undefined if it is not one. */
export function decodeQuorumRevert(data: string): QuorumRevert | undefined {
  try {
    const parsed = quorumInterface.parseError(data);
    if (parsed === null) return undefined;
    const args: Record<string, unknown> = {};
    parsed.fragment.inputs.forEach((input, i) => (args[input.name || String(i)] = parsed.args[i]));
    return { name: parsed.name, args };
  } catch {
    return undefined;
  }
}

/** `Name(a=1, b=0x…)`: a custom error as a person reads it. */
export function formatRevert(r: QuorumRevert): string {
  const value = (v: unknown): string => (Array.isArray(v) ? `[${v.map(value).join(", ")}]` : String(v));
  return `${r.name}(${Object.entries(r.args).map(([k, v]) => `${k}=${value(v)}`).join(", ")})`;
}

// ethers' codes for a node that failed rather than refused: no answer in time, a connection
// reset, an HTTP error status (502), an answer that is not JSON-RPC (truncated), an error answer
// ethers could not map (`header not found` from a node behind the head).
const NODE_FAILURES = new Set(["TIMEOUT", "NETWORK_ERROR", "SERVER_ERROR", "BAD_DATA", "UNKNOWN_ERROR"]);

/**
 * Classifies what a supervisor's call threw.
 *
 * @param e - what ethers, the provider or the node's JSON-RPC threw
 * @param context - facts to attach (record count, method…); never secrets
 * @returns a PrepaidLedgerError: `LEDGER_REVERTED` (not retryable) with `details.error` and
 *   `details.args` for a custom error of the quorum or the ledger; `RPC_ERROR` / `TIMEOUT`
 *   (retryable) for a node that failed; anything else unchanged
 */
export function toSupervisorError(e: unknown, context: Record<string, unknown> = {}): unknown {
  if (e instanceof PrepaidLedgerError) return e;
  const data = revertData(e);
  const decoded = data === undefined ? undefined : decodeQuorumRevert(data);
  if (decoded !== undefined) {
    return new PrepaidLedgerError("LEDGER_REVERTED", `the quorum refused the call: ${formatRevert(decoded)}`, {
      details: { ...context, contract: "SupervisorQuorum", error: decoded.name, args: decoded.args },
      cause: e,
      retryable: false,
    });
  }
  const classified = toLedgerError(e, context, { abis: [SUPERVISOR_QUORUM_ABI] });
  if (classified instanceof PrepaidLedgerError) return classified;
  const code = e !== null && typeof e === "object" ? (e as { code?: unknown }).code : undefined;
  if (typeof code === "string" && NODE_FAILURES.has(code) && !isEthersError(e, "CALL_EXCEPTION")) {
    return new PrepaidLedgerError("RPC_ERROR", "the JSON-RPC node failed", {
      details: { ...context, reason: code },
      cause: e,
      retryable: true,
    });
  }
  return classified;
}

/** Whether `e` (as classified above) is the quorum's or the ledger's custom error `name`. */
export function isRevert(e: unknown, name: string): boolean {
  return e instanceof PrepaidLedgerError && e.code === "LEDGER_REVERTED" && e.details.error === name;
}
