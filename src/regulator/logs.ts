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
  address: string;
  fromBlock: bigint;
  toBlock: bigint;
  /** Blocks per request to start with, and the most it grows to. */
  maxBlockRange: number;
  /** Attempts at one range before a transient failure is final. */
  retries?: number;
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

/**
 * Yields the logs of `address` from `fromBlock` to `toBlock` inclusive, one page at a time, in
 * chain order.
 *
 * @throws PrepaidLedgerError `RPC_ERROR` (retryable) when the node keeps failing, or refuses
 *   even a single block
 */
export async function* fetchLogs(rpc: JsonRpcLike, q: LogQuery): AsyncGenerator<RpcLog[]> {
  const retries = q.retries ?? 4;
  let range = BigInt(q.maxBlockRange);
  let from = q.fromBlock;
  let failures = 0;
  while (from <= q.toBlock) {
    const to = from + range - 1n < q.toBlock ? from + range - 1n : q.toBlock;
    let logs: RpcLog[];
    try {
      logs = (await rpc.send("eth_getLogs", [{ address: q.address, fromBlock: hex(from), toBlock: hex(to) }])) as RpcLog[];
    } catch (e) {
      const text = errorText(e);
      if (TOO_BIG.test(text) && range > 1n) {
        range = range / 2n;
        continue;
      }
      if (++failures > retries) {
        throw new PrepaidLedgerError("RPC_ERROR", "eth_getLogs kept failing", {
          details: { fromBlock: from, toBlock: to, attempts: failures },
          cause: e,
          retryable: true,
        });
      }
      await new Promise((r) => setTimeout(r, 100 * 2 ** failures));
      continue;
    }
    failures = 0;
    yield logs.filter((l) => l.removed !== true);
    from = to + 1n;
    if (range < BigInt(q.maxBlockRange)) range = range * 2n > BigInt(q.maxBlockRange) ? BigInt(q.maxBlockRange) : range * 2n;
  }
}
