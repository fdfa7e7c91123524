/**
 * Reorgs on demand, for the tests of everything that follows the chain (uploader, indexer,
 * supervisors) and for the load bench.
 *
 * - On anvil, `anvil_reorg` replaces the last `depth` blocks with new ones (optionally holding
 *   given transactions): a real reorg, block numbers kept, hashes changed. It needs the states
 *   of those blocks, so anvil must run with `--prune-history=400` or without pruning
 *   ({@link startReorgAnvil}); plain `--prune-history` makes it fail ("Required data unavailable").
 * - On any node with `evm_snapshot`/`evm_revert` (hardhat node, anvil), reverting to a snapshot
 *   and mining again gives the same block numbers with other hashes: the dropped blocks'
 *   transactions are gone, as in a reorg whose new branch did not include them.
 */
import { network } from "hardhat";
import type { NetworkConnection } from "hardhat/types/network";

import { startAnvil } from "./processes.js";

let id = 0;

/** One JSON-RPC call; throws with the node's message on an error answer. */
export async function rpc<T = unknown>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
  });
  const body = (await res.json()) as { result?: T; error?: { message?: string } };
  if (body.error !== undefined) throw new Error(`${method}: ${body.error.message ?? JSON.stringify(body.error)}`);
  return body.result as T;
}

/** anvil that keeps the last 400 states, so `anvil_reorg` works; `extraArgs` go to anvil as they are. */
export function startReorgAnvil(extraArgs: string[] = []) {
  return startAnvil(["--prune-history=400", ...extraArgs]);
}

/** A transaction for `anvil_reorg`'s new branch, and the offset (0 … depth-1) of the block that holds it. */
export interface ReorgTx {
  tx: { from: string; to?: string; data?: string; value?: string; gas?: string };
  block: number;
}

/**
 * Replaces the last `depth` blocks of an anvil chain with as many new ones, holding `txs`
 * (by default none: every transaction of those blocks is dropped). Returns the chain's block
 * number (unchanged) and the hashes before and after, for the test's own assertions.
 */
export async function reorg(url: string, depth: number, txs: ReorgTx[] = []) {
  const head = Number(await rpc<string>(url, "eth_blockNumber"));
  const before = await blockHash(url, head);
  await rpc(url, "anvil_reorg", [depth, txs.map((t) => [t.tx, t.block])]);
  const after = await blockHash(url, head);
  return { head, before, after };
}

/** The hash of block `n` on the node's current chain (null if it has no such block). */
export async function blockHash(url: string, n: number): Promise<string | null> {
  const block = await rpc<{ hash: string } | null>(url, "eth_getBlockByNumber", ["0x" + n.toString(16), false]);
  return block?.hash ?? null;
}

export async function blockNumber(url: string): Promise<number> {
  return Number(await rpc<string>(url, "eth_blockNumber"));
}

/** Takes a snapshot (evm_snapshot); revert to it with {@link revertTo}. */
export function snapshot(url: string): Promise<string> {
  return rpc<string>(url, "evm_snapshot");
}

/**
 * Reverts the chain to a snapshot: every block after it is dropped (a snapshot is used once).
 * The next block is stamped one second after the dropped head, so that blocks mined again differ
 * from the dropped ones even when they are empty (same number and parent, new timestamp: new hash).
 */
export async function revertTo(url: string, snapshotId: string): Promise<void> {
  const head = await rpc<{ timestamp: string }>(url, "eth_getBlockByNumber", ["latest", false]);
  const ok = await rpc<boolean>(url, "evm_revert", [snapshotId]);
  if (!ok) throw new Error(`evm_revert(${snapshotId}) refused`);
  // Later than every dropped block, so the first block mined again is a different block.
  await rpc(url, "evm_setNextBlockTimestamp", [Number(head.timestamp) + 1]);
}

/** Mines `n` empty blocks, one call each (works on hardhat node and anvil alike). */
export async function mine(url: string, n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await rpc(url, "evm_mine");
}

/**
 * Turns automining off or on: with it off, sent transactions wait in the pool until
 * {@link mine} (so a test can put a batch in a block it then reorgs away with its neighbours).
 */
export function setAutomine(url: string, on: boolean): Promise<unknown> {
  return rpc(url, "evm_setAutomine", [on]);
}

/**
 * A describe block's own reorg-capable anvil: started before its tests, stopped after them, with
 * a Hardhat connection to it (its URL passed as an override: a configuration variable would be
 * resolved once per process, and reach the first test file's node).
 */
export function useReorgAnvil(extraArgs: string[] = []) {
  let anvil: Awaited<ReturnType<typeof startReorgAnvil>> | undefined;
  let connection: NetworkConnection | undefined;
  before(async function () {
    anvil = await startReorgAnvil(extraArgs);
    connection = await network.create({ network: "anvil", override: { url: anvil.url } });
  });
  after(async function () {
    await anvil?.stop();
  });
  const started = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("useReorgAnvil: anvil is started in the describe block's before hook");
    return v;
  };
  return {
    get url(): string {
      return started(anvil).url;
    },
    get connection(): NetworkConnection {
      return started(connection);
    },
  };
}
