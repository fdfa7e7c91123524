/**
 * Turns what ethers (or a provider) throws into a PrepaidLedgerError, by what happened rather
 * than by which ethers code it came with:
 *
 * | what happened                                                     | code              | retryable |
 * | ----------------------------------------------------------------- | ----------------- | --------- |
 * | the contract reverted with data (a custom error, `Error(string)`) | `LEDGER_REVERTED` | no        |
 * | the call reverted without data ("execution reverted", out of gas) | `LEDGER_REVERTED` | no        |
 * | no answer in time (ethers' own request timeout)                   | `TIMEOUT`         | yes       |
 * | connection refused or reset, an HTTP error status (502), an       | `RPC_ERROR`       | yes       |
 * | answer that is not JSON-RPC (truncated), a node error answer      |                   |           |
 * | ("header not found", unknown block, `BlockOutOfRangeError`, a     |                   |           |
 * | missing trie node, rate limits) — also when ethers wraps it in a  |                   |           |
 * | CALL_EXCEPTION with no revert data, as it does for eth_call       |                   |           |
 * | a nonce already used, a transaction replaced                      | `RPC_ERROR`       | yes       |
 * | insufficient funds for gas                                        | `RPC_ERROR`       | no        |
 *
 * Anything else (a programming error) is passed through unchanged.
 */
import { Interface, isError as isEthersError, type InterfaceAbi } from "ethers";

import { PrepaidLedgerError } from "../errors.js";
import { PREPAID_LEDGER_ABI } from "./abi.js";

const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);
/** Solidity's built-in `Error(string)` and `Panic(uint256)`. */
const builtinInterface = new Interface(["error Error(string message)", "error Panic(uint256 code)"]);

/** A decoded custom error of the ledger (or of a contract whose ABI was given). */
export interface DecodedRevert {
  name: string;
  args: Record<string, unknown>;
}

/** Options of {@link toLedgerError}. */
export interface LedgerErrorOptions {
  /**
   * More contracts' ABIs to decode custom errors with (for example SupervisorQuorum's), tried
   * after the ledger's, in order.
   */
  abis?: readonly (Interface | InterfaceAbi)[];
}

/** Finds revert data (0x + selector …) anywhere in an error's chain of causes. */
export function revertData(e: unknown, depth = 0): string | undefined {
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

function decodeWith(iface: Interface, data: string): DecodedRevert | undefined {
  try {
    const parsed = iface.parseError(data);
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

const interfaces = new WeakMap<object, Interface>();
function asInterface(abi: Interface | InterfaceAbi): Interface {
  if (abi instanceof Interface) return abi;
  let iface = interfaces.get(abi as object);
  if (iface === undefined) interfaces.set(abi as object, (iface = new Interface(abi)));
  return iface;
}

/**
 * Decodes a custom error from revert data: the ledger's, then each of `abis`, then Solidity's
 * `Error(string)` / `Panic(uint256)`; undefined if none knows the selector.
 */
export function decodeRevert(data: string, abis: readonly (Interface | InterfaceAbi)[] = []): DecodedRevert | undefined {
  for (const iface of [ledgerInterface, ...abis.map(asInterface), builtinInterface]) {
    const decoded = decodeWith(iface, data);
    if (decoded !== undefined) return decoded;
  }
  return undefined;
}

/** Socket and HTTP-layer codes of a node that could not be reached or failed mid-answer. */
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);
/** ethers codes of a node that failed rather than refused. */
const NODE_FAILURE_CODES = new Set(["NETWORK_ERROR", "SERVER_ERROR", "BAD_DATA", "UNKNOWN_ERROR", "CANCELLED"]);

/**
 * Words of a node that failed to answer (not of a contract that refused): a node behind the head
 * ("header not found", "unknown block", anvil's `BlockOutOfRangeError`, Hardhat's "invalid
 * block tag"), pruned or missing state it should have, overload and rate limits, internal errors.
 */
const NODE_FAILURE_WORDS =
  /header not found|unknown block|block ?out ?of ?range|invalid block (?:tag|number)|latest block number is|block not found|missing trie node|state (?:is )?not available|required data unavailable|not (?:yet )?synced|syncing|timed? ?out|timeout|too many requests|rate.?limit|capacity|overload|busy|try again|temporarily|internal error|bad gateway|service unavailable|gateway time/i;
/** Words of an execution failure: the contract (or the EVM) refused. */
const REVERT_WORDS = /revert|out of gas|invalid opcode|stack (?:under|over)flow|vm exception|execution|invalid jump/i;

/** Every message in an error's chain of causes, for the word tests above. */
function messages(e: unknown, depth = 0, out: string[] = []): string[] {
  if (e === null || typeof e !== "object" || depth > 6) return out;
  const o = e as Record<string, unknown>;
  for (const key of ["message", "shortMessage"]) if (typeof o[key] === "string") out.push(o[key] as string);
  for (const key of ["error", "info", "cause", "parent"]) messages(o[key], depth + 1, out);
  return out;
}

function hasCode(e: unknown, codes: Set<string>, depth = 0): boolean {
  if (e === null || typeof e !== "object" || depth > 6) return false;
  const o = e as Record<string, unknown>;
  if (typeof o.code === "string" && codes.has(o.code)) return true;
  if (e instanceof TypeError && /fetch failed/i.test(e.message)) return true;
  return hasCode(o.cause, codes, depth + 1) || hasCode(o.error, codes, depth + 1);
}

/** The JSON-RPC error answer inside an ethers error (`info.error` or `error`), if any. */
function rpcAnswer(e: unknown): { code?: unknown; message?: unknown } | undefined {
  const o = e as { info?: { error?: unknown }; error?: unknown } | null;
  const answer = o?.info?.error ?? o?.error;
  return answer !== null && typeof answer === "object" ? (answer as { code?: unknown; message?: unknown }) : undefined;
}

function nodeFailed(e: unknown, context: Record<string, unknown>, reason: string): PrepaidLedgerError {
  const answer = rpcAnswer(e);
  return new PrepaidLedgerError("RPC_ERROR", "the JSON-RPC node could not be reached or failed", {
    details: {
      ...context,
      reason,
      ...(answer?.message !== undefined ? { node: String(answer.message).slice(0, 200) } : {}),
    },
    cause: e,
    retryable: true,
  });
}

/**
 * Classifies an error from a ledger call (see the table at the top of this file).
 *
 * @param e - what ethers (or the provider) threw
 * @param context - facts to attach (merchant, sequence…); never secrets
 * @param options - `abis`: more contracts' ABIs to decode custom errors with
 * @returns a PrepaidLedgerError, or `e` unchanged when it is none of the above
 */
export function toLedgerError(e: unknown, context: Record<string, unknown> = {}, options: LedgerErrorOptions = {}): unknown {
  if (e instanceof PrepaidLedgerError) return e;
  const data = revertData(e);
  if (data !== undefined) {
    const decoded = decodeRevert(data, options.abis);
    if (decoded !== undefined) {
      return new PrepaidLedgerError("LEDGER_REVERTED", `the ledger refused the call: ${decoded.name}`, {
        details: { ...context, error: decoded.name, args: decoded.args },
        cause: e,
      });
    }
    return new PrepaidLedgerError("LEDGER_REVERTED", "the ledger call reverted with an error no known ABI decodes", {
      details: { ...context, data },
      cause: e,
    });
  }
  const words = messages(e).join(" | ");
  if (isEthersError(e, "CALL_EXCEPTION")) {
    // ethers reports any error answer to eth_call / eth_estimateGas as a CALL_EXCEPTION "missing
    // revert data", a node that is behind the head included: only words of an execution failure
    // make it a revert.
    const answer = rpcAnswer(e);
    const answerWords = answer === undefined ? "" : String(answer.message ?? "");
    if (answer !== undefined && !REVERT_WORDS.test(answerWords)) return nodeFailed(e, context, "error-answer");
    if (NODE_FAILURE_WORDS.test(answerWords)) return nodeFailed(e, context, "error-answer");
    return new PrepaidLedgerError("LEDGER_REVERTED", "the ledger call reverted without data", {
      details: { ...context, data: (e as { data?: unknown }).data ?? null },
      cause: e,
    });
  }
  if (isEthersError(e, "TIMEOUT")) {
    return new PrepaidLedgerError("TIMEOUT", "the JSON-RPC node did not answer in time", { details: context, cause: e });
  }
  if (isEthersError(e, "INSUFFICIENT_FUNDS")) {
    return new PrepaidLedgerError("RPC_ERROR", "the node refused the transaction: the sender cannot pay for its gas", {
      details: { ...context, reason: "insufficient-funds" },
      cause: e,
      retryable: false,
    });
  }
  if (isEthersError(e, "NONCE_EXPIRED") || isEthersError(e, "REPLACEMENT_UNDERPRICED") || isEthersError(e, "TRANSACTION_REPLACED")) {
    // A nonce raced (another transaction of the key, or a resend after a lost answer): a retry
    // takes a fresh nonce.
    return nodeFailed(e, context, "nonce");
  }
  if (isEthersError(e, "UNSUPPORTED_OPERATION") && (e as { operation?: string }).operation === "bodyJson") {
    return nodeFailed(e, context, "unreadable-answer"); // a truncated or non-JSON body
  }
  if (hasCode(e, SOCKET_CODES)) return nodeFailed(e, context, "connection");
  if (hasCode(e, NODE_FAILURE_CODES)) {
    if (REVERT_WORDS.test(words) && !NODE_FAILURE_WORDS.test(words)) {
      return new PrepaidLedgerError("LEDGER_REVERTED", "the ledger call reverted without data", {
        details: { ...context, data: null },
        cause: e,
      });
    }
    return nodeFailed(e, context, "node");
  }
  if (NODE_FAILURE_WORDS.test(words) && e instanceof Error && rpcAnswer(e) !== undefined) return nodeFailed(e, context, "error-answer");
  return e;
}
