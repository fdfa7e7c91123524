/**
 * A plain JSON-RPC client: one HTTP POST per call over `fetch`, with a timeout on each. The
 * indexer, the QBFT health check and the command line need only `send`; a plain client fails at
 * once when the node is down (where a provider that detects its network first would retry in the
 * background and log to stdout), and every failure is a PrepaidLedgerError.
 */
import { PrepaidLedgerError } from "./errors.js";
import type { JsonRpcLike } from "./regulator/logs.js";

/** How long one call may take by default: a wide eth_getLogs on a busy node can take a while. */
export const DEFAULT_RPC_TIMEOUT_MS = 60_000;

export interface HttpJsonRpcOptions {
  /** How long one call may take (default {@link DEFAULT_RPC_TIMEOUT_MS}). */
  timeoutMs?: number;
  /**
   * The error to throw for a JSON-RPC error answer (a node that answered, but refused), for a
   * caller that judges the node's codes itself; default `RPC_ERROR` with the node's words.
   */
  errorAnswer?: (method: string, code: number | undefined, message: string) => Error;
}

/**
 * A JSON-RPC client for `url`. Errors name the node by its origin only (scheme, host, port),
 * since a provider's URL often carries an API key in its path or query.
 *
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` if `url` is not an http(s) URL; calls reject
 *   with `RPC_ERROR` (unreachable, HTTP error, error answer) or `TIMEOUT`, both retryable
 */
export function httpJsonRpc(url: string, options: HttpJsonRpcOptions = {}): JsonRpcLike {
  const timeoutMs = options.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
  const endpoint = originOf(url);
  let id = 0;
  return {
    async send(method, params) {
      const details = { endpoint, method };
      let response: Response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (cause) {
        if (cause instanceof Error && cause.name === "TimeoutError") {
          throw new PrepaidLedgerError("TIMEOUT", "the JSON-RPC node did not answer in time", { details: { ...details, timeoutMs }, cause });
        }
        throw new PrepaidLedgerError("RPC_ERROR", "the JSON-RPC node could not be reached", { details, cause });
      }
      const body = (await response.json().catch((e: unknown) => {
        // An answer longer than a string V8 can hold: say so in the words log pagers take as
        // "ask for less" (src/regulator/logs.ts), rather than as a node that failed.
        if (e instanceof RangeError) {
          throw new PrepaidLedgerError("RPC_ERROR", "the answer exceeds the response size this client can read", { details, cause: e });
        }
        return undefined;
      })) as { result?: unknown; error?: { code?: number; message?: string } } | undefined;
      if (body?.error !== undefined && options.errorAnswer !== undefined) {
        throw options.errorAnswer(method, body.error.code, String(body.error.message ?? ""));
      }
      if (body?.error !== undefined) {
        // The node's own words, so the log pager can tell "range too big" from other refusals.
        throw new PrepaidLedgerError("RPC_ERROR", `the node refused ${method}: ${String(body.error.message)}`, {
          details: { ...details, rpcCode: body.error.code ?? null },
        });
      }
      if (!response.ok || body === undefined || !("result" in body)) {
        throw new PrepaidLedgerError("RPC_ERROR", "the JSON-RPC node sent no JSON-RPC answer", {
          details: { ...details, status: response.status },
        });
      }
      return body.result;
    },
  };
}

/**
 * `p`, or a retryable `TIMEOUT` naming `what` when it has not settled after `ms` milliseconds
 * (`p` is then left to settle unobserved).
 */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PrepaidLedgerError("TIMEOUT", `the JSON-RPC node did not answer ${what} in time`, { details: { call: what, timeoutMs: ms } })),
      ms,
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `rpc` with a timeout on every call: a call the node never answers fails with TIMEOUT. */
export function timedRpc(rpc: JsonRpcLike, ms: number): JsonRpcLike {
  return { send: (method, params) => withTimeout(rpc.send(method, params), ms, method) };
}

function originOf(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "the RPC URL is not a URL (expected http:// or https://)");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "the RPC URL must be http:// or https://", { details: { protocol: parsed.protocol } });
  }
  return parsed.origin;
}

export interface RetryOptions {
  /** Calls in all, the first included (default 4: waits of 0.25, 0.5 and 1 s between them). */
  attempts?: number;
  /** The first wait; each next one doubles, up to `maxDelayMs` (defaults 250 and 8,000 ms). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Told before each wait (a CLI prints a notice on stderr). */
  onRetry?: (info: { method: string; attempt: number; delayMs: number; error: PrepaidLedgerError }) => void;
  /** How to wait (tests pass a fake clock); default setTimeout. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Whether `e` says the node is down or not there (unreachable, an HTTP error without a JSON-RPC
 * answer, no answer in time), rather than a node that answered and refused: only those are
 * worth calling again unchanged.
 */
export function isNodeDown(e: unknown): e is PrepaidLedgerError {
  if (!(e instanceof PrepaidLedgerError)) return false;
  if (e.code === "TIMEOUT") return true;
  return e.code === "RPC_ERROR" && e.details.rpcCode === undefined && !/response size/.test(e.shortMessage);
}

/**
 * `rpc` calling again, after waits doubling from `baseDelayMs`, when the node is down
 * ({@link isNodeDown}); an answer that refuses is passed on at once. Only for reads: a read
 * asked twice has one outcome (the indexer, the workbench and the receipt check only read).
 *
 * @throws PrepaidLedgerError `RPC_ERROR` "the JSON-RPC node stayed down" (retryable, exit 3 in
 *   the CLI) with `details.attempts`, `details.waitedMs` and the method, the last failure as its cause
 */
export function retryingRpc(rpc: JsonRpcLike, options: RetryOptions = {}): JsonRpcLike {
  const attempts = options.attempts ?? 4;
  const base = options.baseDelayMs ?? 250;
  const max = options.maxDelayMs ?? 8_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "retry attempts must be a whole number of at least 1", { details: { attempts } });
  }
  return {
    async send(method, params) {
      let waited = 0;
      for (let attempt = 1; ; attempt++) {
        try {
          return await rpc.send(method, params);
        } catch (e) {
          if (!isNodeDown(e)) throw e;
          if (attempt >= attempts) {
            throw new PrepaidLedgerError("RPC_ERROR", `the JSON-RPC node stayed down: ${attempts} attempts over ${(waited / 1000).toFixed(1)} s`, {
              details: { ...e.details, method, attempts, waitedMs: waited },
              cause: e,
            });
          }
          const delayMs = Math.min(max, base * 2 ** (attempt - 1));
          options.onRetry?.({ method, attempt, delayMs, error: e });
          await sleep(delayMs);
          waited += delayMs;
        }
      }
    },
  };
}
