/**
 * Paged `eth_getLogs`. Nodes cap a request by block range or by result count, each in its own
 * words; this asks for a range, halves it when the node refuses, grows it again after successes,
 * and retries transient failures, so a reader can cover any span of blocks on any node.
 */
import { PrepaidLedgerError } from "../errors.js";

/** The one JSON-RPC method this needs; an ethers JsonRpcProvider or Hardhat provider fits. */
export interface JsonRpcLike {
  send(method: string, params: unknown[]): Promise<unknown>;
}

/** A log as JSON-RPC returns it (hex strings). */
export interface RpcLog {
  address: string;
  blockNumber: string;
  transactionHash: string;
  logIndex: string;
  topics: string[];
  data: string;
  removed?: boolean;
}

export interface LogQuery {
  /** One contract, or several (their logs come interleaved in chain order). */
  address: string | string[];
  fromBlock: bigint;
  toBlock: bigint;
  /** An eth_getLogs topic filter (position by position; an array inside is "any of these"), or none. */
  topics?: (string | string[] | null)[];
  /** Blocks per request to start with, and the most it grows to. */
  maxBlockRange: number;
  /** Attempts at one range before a transient failure is final. */
  retries?: number;
  /**
   * Requests of one range that may time out before the pager gives up with TIMEOUT (default 2):
   * each costs a whole timeout, so a node that hangs is reported soon, for the caller to retry.
   */
  timeoutRetries?: number;
}

// What nodes say when a query is too big: geth ("query returned more than 10000 results"),
// Besu ("exceeds maximum"), Alchemy/Infura ("block range", "limit exceeded", -32005), Hardhat.
const TOO_BIG = /more than \d+|too many|block range|range (is )?too (large|wide)|limit exceeded|exceeds? (the )?max|response size|query timeout|-32005/i;

function errorText(e: unknown): string {
  if (e === null || typeof e !== "object") return String(e);
  const o = e as Record<string, unknown>;
  return [o.message, o.code, errorText(o.error ?? ""), errorText(o.info ?? "")].filter(Boolean).join(" ");
}

const hex = (n: bigint) => "0x" + n.toString(16);

function pick(o: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}

/** Logs per request the pager aims for: big enough to amortize a request, small enough to overlap. */
const TARGET_LOGS = 2_000;
/** Blocks in the first request, before the pager has seen how dense the logs are. */
const FIRST_RANGE = 8n;

/**
 * Yields the logs of `address` from `fromBlock` to `toBlock` inclusive, one page at a time, in
 * chain order. While the caller works on one page, the next is already being fetched; page
 * sizes follow the density of logs seen so far (about 2,000 logs a page, never more than
 * `maxBlockRange` blocks), and halve when the node refuses a range.
 *
 * @throws PrepaidLedgerError `RPC_ERROR` (retryable) when the node keeps failing, or refuses
 *   even a single block; `TIMEOUT` (retryable) when it keeps not answering in time
 */
export async function* fetchLogs(rpc: JsonRpcLike, q: LogQuery): AsyncGenerator<RpcLog[]> {
  for await (const page of fetchLogPages(rpc, q)) yield page.logs;
}

/** One page of {@link fetchLogPages}: every log of the blocks `fromBlock..toBlock`. */
export interface LogPage {
  fromBlock: bigint;
  toBlock: bigint;
  logs: RpcLog[];
}

/**
 * {@link fetchLogs} with each page's block range, for a caller that keeps a cursor (the
 * indexer commits "every log up to toBlock is stored" with each page).
 */
export async function* fetchLogPages(rpc: JsonRpcLike, q: LogQuery): AsyncGenerator<LogPage> {
  const retries = q.retries ?? 4;
  const max = BigInt(q.maxBlockRange);
  let range = max < FIRST_RANGE ? max : FIRST_RANGE;
  const request = (from: bigint, to: bigint) =>
    (rpc.send("eth_getLogs", [{ address: q.address, fromBlock: hex(from), toBlock: hex(to), ...(q.topics === undefined ? {} : { topics: q.topics }) }]) as Promise<RpcLog[]>).then(
      (logs) => ({ ok: true as const, logs }),
      (error: unknown) => ({ ok: false as const, error }),
    );
  const end = (from: bigint) => (from + range - 1n < q.toBlock ? from + range - 1n : q.toBlock);
  let from = q.fromBlock;
  let to = end(from);
  let pending = from <= q.toBlock ? request(from, to) : undefined;
  let failures = 0;
  let timeouts = 0;
  const timeoutRetries = q.timeoutRetries ?? 2;
  while (pending !== undefined) {
    const result = await pending;
    if (!result.ok) {
      const timedOut = result.error instanceof PrepaidLedgerError && result.error.code === "TIMEOUT";
      if (result.error instanceof PrepaidLedgerError && timedOut && ++timeouts >= timeoutRetries) {
        throw new PrepaidLedgerError("TIMEOUT", "eth_getLogs was not answered in time", {
          details: { fromBlock: from, toBlock: to, attempts: timeouts, ...pick(result.error.details, "timeoutMs", "endpoint") },
          cause: result.error,
          retryable: true,
        });
      }
      if (!timedOut && TOO_BIG.test(errorText(result.error)) && range > 1n) {
        range = (to - from + 1n) / 2n > 0n ? (to - from + 1n) / 2n : 1n;
      } else if (++failures > retries) {
        throw new PrepaidLedgerError("RPC_ERROR", "eth_getLogs kept failing", {
          details: { fromBlock: from, toBlock: to, attempts: failures },
          cause: result.error,
          retryable: true,
        });
      } else {
        await new Promise((r) => setTimeout(r, 100 * 2 ** failures));
      }
      to = end(from);
      pending = request(from, to);
      continue;
    }
    failures = 0;
    timeouts = 0;
    // Size the next page by the density of this one, then ask for it before yielding this one.
    const span = to - from + 1n;
    const count = BigInt(result.logs.length);
    // Grow at most twice a page: the density of a sparse stretch (the deployment, quiet months)
    // says nothing of the blocks after it, and one oversized answer can exceed what a client can
    // hold (800 blocks of a busy ledger once came back as 680,000 logs, ~560 MB of JSON).
    const dense = count === 0n ? span * 2n : (span * BigInt(TARGET_LOGS)) / count;
    const fit = dense > span * 2n ? span * 2n : dense;
    range = fit < 1n ? 1n : fit > max ? max : fit;
    from = to + 1n;
    to = end(from);
    pending = from <= q.toBlock ? request(from, to) : undefined;
    yield { fromBlock: from - span, toBlock: from - 1n, logs: result.logs.filter((l) => l.removed !== true) };
  }
}
