/**
 * Health of a Besu QBFT chain: its validator set at a block, and what that set can lose.
 *
 * ```ts
 * const health = await qbftHealth("http://127.0.0.1:8545");
 * console.log(health.message); // "4 validators: tolerates 1 faulty or offline; the chain stalls if 2 fail"
 * ```
 *
 * Calls `qbft_getValidatorsByBlockNumber`, which Besu serves only with the QBFT API enabled
 * (`--rpc-http-api=ETH,NET,QBFT`). "latest" is first pinned to a number with `eth_blockNumber`,
 * so the validators and the block number reported belong together.
 */
import { PrepaidLedgerError } from "../errors.js";
import { httpJsonRpc } from "../rpc.js";
import { describeFaultTolerance } from "./qbft.js";

/** Anything that sends a JSON-RPC request: an ethers JsonRpcProvider, a Hardhat provider… */
export interface JsonRpcSender {
  send(method: string, params: unknown[]): Promise<unknown>;
}

/** A block: "latest", "earliest", or a number (integer, bigint or 0x-hex). */
export type QbftBlockTag = "latest" | "earliest" | number | bigint | string;

/** What `qbftHealth` reports. */
export interface QbftHealth {
  blockNumber: number;
  /** The validators at that block, as the node lists them (lowercase hex). */
  validators: string[];
  count: number;
  /** Byzantine validators tolerated: floor((count - 1) / 3). */
  faultTolerance: number;
  /** Signatures a block needs: ceil(2 × count / 3). */
  quorum: number;
  /** e.g. "4 validators: tolerates 1 faulty or offline; the chain stalls if 2 fail". */
  message: string;
}

export interface QbftHealthOptions {
  /** For a URL: how long one request may take (default 10 s). */
  timeoutMs?: number;
}

/** JSON-RPC 2.0 "method not found"; Besu answers -32604 "method not enabled" for a disabled API. */
const METHOD_NOT_FOUND = -32601;
const METHOD_NOT_ENABLED = -32604;
const INVALID_PARAMS = -32602;

/** A JSON-RPC error object returned by the node (not a transport failure). */
class JsonRpcResponseError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}


/** Finds a numeric JSON-RPC error code in what a provider threw (ethers nests it in error/info). */
function rpcCode(e: unknown, depth = 0): number | undefined {
  if (e === null || typeof e !== "object" || depth > 5) return undefined;
  const o = e as Record<string, unknown>;
  if (typeof o.code === "number") return o.code;
  for (const key of ["error", "info", "cause"]) {
    const inner = rpcCode(o[key], depth + 1);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

/** Turns a failure of `method` into the library's error. */
function classify(e: unknown, method: string): PrepaidLedgerError {
  if (e instanceof PrepaidLedgerError) return e;
  const code = rpcCode(e);
  const nodeMessage = e instanceof Error ? e.message : String(e);
  // ethers reports some "method not found" answers as UNSUPPORTED_OPERATION, without the code.
  const unsupported = (e as { code?: unknown } | null)?.code === "UNSUPPORTED_OPERATION";
  if (code === METHOD_NOT_FOUND || code === METHOD_NOT_ENABLED || unsupported) {
    const shortMessage = method.startsWith("qbft_")
      ? `the node does not serve ${method}: it is not a Besu QBFT node, or its QBFT API is not enabled (--rpc-http-api=ETH,NET,QBFT)`
      : `the node does not serve ${method}: it is not an Ethereum JSON-RPC endpoint`;
    return new PrepaidLedgerError("INVALID_CONFIG", shortMessage, {
      details: { method, rpcCode: code ?? null, nodeMessage },
      cause: e,
    });
  }
  if (code === INVALID_PARAMS) {
    return new PrepaidLedgerError("INVALID_ARGUMENT", `the node refused the parameters of ${method}`, {
      details: { method, rpcCode: code, nodeMessage },
      cause: e,
    });
  }
  return new PrepaidLedgerError("RPC_ERROR", `${method} failed`, {
    details: { method, rpcCode: code ?? null, nodeMessage },
    cause: e,
    retryable: true,
  });
}

async function call(rpc: JsonRpcSender, method: string, params: unknown[]): Promise<unknown> {
  try {
    return await rpc.send(method, params);
  } catch (e) {
    throw classify(e, method);
  }
}

/** A block tag as a number, or "latest" to be pinned by eth_blockNumber. */
function blockNumberOf(tag: QbftBlockTag): number | "latest" {
  if (tag === "latest") return "latest";
  if (tag === "earliest") return 0;
  let n: bigint | undefined;
  if (typeof tag === "bigint") n = tag;
  else if (typeof tag === "number" && Number.isSafeInteger(tag)) n = BigInt(tag);
  else if (typeof tag === "string" && /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(tag)) n = BigInt(tag);
  if (n === undefined || n < 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", 'a block must be "latest", "earliest" or a non-negative integer', {
      details: { blockTag: String(tag) },
    });
  }
  return Number(n);
}

function parseQuantity(value: unknown, method: string): number {
  if (typeof value !== "string" || !/^0x[0-9a-fA-F]+$/.test(value) || BigInt(value) > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new PrepaidLedgerError("MALFORMED_DATA", `${method} did not return a block number`, {
      details: { method, result: JSON.stringify(value) ?? null },
    });
  }
  return Number(value);
}

function parseValidators(value: unknown, method: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && /^0x[0-9a-fA-F]{40}$/.test(v))) {
    throw new PrepaidLedgerError("MALFORMED_DATA", `${method} did not return a list of addresses`, {
      details: { method, result: (JSON.stringify(value) ?? "undefined").slice(0, 200) },
    });
  }
  if (value.length === 0) {
    throw new PrepaidLedgerError("MALFORMED_DATA", `${method} returned no validators`, { details: { method } });
  }
  return (value as string[]).map((v) => v.toLowerCase());
}

/**
 * Reads a QBFT chain's validator set at a block and says what it can lose.
 *
 * @param rpc - a JSON-RPC URL (http/https) or anything with `send(method, params)`
 * @param blockTag - "latest" (default), "earliest" or a block number
 * @throws PrepaidLedgerError `RPC_ERROR` (retryable) when the node cannot be reached or fails,
 *   `TIMEOUT` (retryable) when it does not answer in time; `INVALID_CONFIG` when it does not serve the method (not a Besu QBFT node, or the
 *   QBFT API is not enabled); `INVALID_ARGUMENT` for a bad URL or block; `MALFORMED_DATA` when
 *   the answer is not a list of addresses
 */
export async function qbftHealth(
  rpc: JsonRpcSender | string,
  blockTag: QbftBlockTag = "latest",
  options: QbftHealthOptions = {},
): Promise<QbftHealth> {
  const wanted = blockNumberOf(blockTag);
  const sender =
    typeof rpc === "string"
      ? httpJsonRpc(rpc, {
          timeoutMs: options.timeoutMs ?? 10_000,
          // The node's error codes are judged by `classify` (method not enabled: not QBFT).
          errorAnswer: (_method, code, message) => new JsonRpcResponseError(code ?? 0, message),
        })
      : rpc;
  const blockNumber =
    wanted === "latest" ? parseQuantity(await call(sender, "eth_blockNumber", []), "eth_blockNumber") : wanted;
  const method = "qbft_getValidatorsByBlockNumber";
  const validators = parseValidators(await call(sender, method, ["0x" + blockNumber.toString(16)]), method);
  const summary = describeFaultTolerance(validators.length);
  return {
    blockNumber,
    validators,
    count: summary.count,
    faultTolerance: summary.faultTolerance,
    quorum: summary.quorum,
    message: summary.message,
  };
}
