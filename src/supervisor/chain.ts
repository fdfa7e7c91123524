/**
 * Following the chain a supervisor is on (the habit of Ponder's realtime sync): it keeps the
 * hashes of the blocks it followed near the head, checks on every round that the newest one is
 * still on the chain, and when it is not walks back to the fork point, the newest block it holds
 * that the chain still has. Every JSON-RPC call has a timeout.
 */
import { PrepaidLedgerError } from "../errors.js";
import type { JsonRpcLike } from "../regulator/logs.js";

/** A block as the node followed it. */
export interface BlockRef {
  number: number;
  hash: string;
  parentHash: string;
}

const hex = (n: number) => "0x" + n.toString(16);

/** Block `n` of the node's current chain, or undefined if it has none (yet, or any more). */
export async function blockAt(rpc: JsonRpcLike, n: number): Promise<BlockRef | undefined> {
  const b = (await rpc.send("eth_getBlockByNumber", [hex(n), false])) as { hash?: string; parentHash?: string; number?: string } | null;
  if (b === null || b === undefined || typeof b.hash !== "string" || typeof b.parentHash !== "string") return undefined;
  return { number: n, hash: b.hash.toLowerCase(), parentHash: b.parentHash.toLowerCase() };
}

/** Blocks `from..to` of the node's current chain, fetched `parallel` at a time, in order. */
export async function blocksIn(rpc: JsonRpcLike, from: number, to: number, parallel = 8): Promise<(BlockRef | undefined)[]> {
  const out: (BlockRef | undefined)[] = [];
  for (let n = from; n <= to; n += parallel) {
    const last = Math.min(to, n + parallel - 1);
    out.push(...(await Promise.all(Array.from({ length: last - n + 1 }, (_, i) => blockAt(rpc, n + i)))));
  }
  return out;
}

/**
 * The hashes of the newest `keep` blocks a node followed, oldest first, each the parent of the
 * next where both are held.
 */
export class BlockWindow {
  private blocks: BlockRef[] = [];

  constructor(private readonly keep: number) {}

  get tip(): BlockRef | undefined {
    return this.blocks.at(-1);
  }

  get size(): number {
    return this.blocks.length;
  }

  hashAt(n: number): string | undefined {
    const first = this.blocks[0];
    if (first === undefined || n < first.number) return undefined;
    const b = this.blocks[n - first.number];
    return b?.number === n ? b.hash : undefined;
  }

  /** Newest first: what {@link findFork} walks. */
  newestFirst(): BlockRef[] {
    return [...this.blocks].reverse();
  }

  /**
   * Adds the blocks after the tip (a gap starts the window over: the blocks before it are too
   * deep to matter). Returns false, adding nothing, if they do not chain onto each other and the
   * tip: the chain moved while they were fetched.
   */
  extend(blocks: BlockRef[]): boolean {
    for (let i = 0; i < blocks.length; i++) {
      const parent = i === 0 ? this.tip : blocks[i - 1];
      if (parent !== undefined && parent.number === blocks[i].number - 1 && parent.hash !== blocks[i].parentHash) return false;
    }
    for (const b of blocks) {
      if (this.tip !== undefined && b.number !== this.tip.number + 1) this.blocks = [];
      this.blocks.push(b);
    }
    if (this.blocks.length > this.keep) this.blocks.splice(0, this.blocks.length - this.keep);
    return true;
  }

  /** Drops every block after `n`. */
  rollbackTo(n: number): void {
    this.blocks = this.blocks.filter((b) => b.number <= n);
  }

  clear(): void {
    this.blocks = [];
  }
}

/**
 * Where the chain forked from what `window` holds: the newest held block the node's chain still
 * has, or undefined if it has none of them (a reorg deeper than the window).
 */
export async function findFork(rpc: JsonRpcLike, window: BlockWindow): Promise<number | undefined> {
  for (const held of window.newestFirst()) {
    const now = await blockAt(rpc, held.number);
    if (now?.hash === held.hash) return held.number;
  }
  return undefined;
}
