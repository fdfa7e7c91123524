/**
 * How a supervisor follows its ledger: the replay takes a block only once `confirmations` blocks
 * stand on top of it (so every mark the replay meets is settled), the newer blocks are followed
 * by hash only, with their marks (so the node does not mark twice). Each round it checks that the
 * newest block it followed is still the chain's; when it is not, it rolls back to the fork point
 * (src/supervisor/chain.ts): a reorg within the unsettled blocks costs nothing, one below them
 * rebuilds the replay from the chain. A chain-break the hashes did not explain also rebuilds it,
 * once. Logs are taken only from the blocks whose hashes it holds.
 */
import { PrepaidLedgerError } from "../errors.js";
import { LEDGER_TOPICS } from "../regulator/events.js";
import { fetchLogs, type JsonRpcLike, type RpcLog } from "../regulator/logs.js";
import { LedgerReplay, type MarkSeen } from "../regulator/reader.js";
import { BlockWindow, blockAt, blocksIn, findFork, type BlockRef } from "./chain.js";

/** Blocks followed by hash beyond the unsettled ones: a reorg this much deeper still finds its fork point. */
const EXTRA_BLOCKS = 64;

export interface FollowerOptions {
  ledger: string;
  chainId: bigint;
  fromBlock: number;
  confirmations: number;
  decryptionKey?: string;
}

export interface FollowerHooks {
  /** A settled mark, met when the replay stands exactly at its record count. */
  onMark(mark: MarkSeen, replay: LedgerReplay): void;
  /**
   * The chain no longer has the blocks after `below`; `rebuilt` if the replay had taken some.
   * Returns what the node withdrew, in words, for the status line (or "").
   */
  onRollback(below: number, rebuilt: boolean): string;
}

export class LedgerFollower {
  replay!: LedgerReplay;
  headBlock = 0;
  settledBlock = -1;
  reorgs = 0;
  lastReorg: string | undefined;
  /** When a new mark was last seen (settled or not), or marked by this node. */
  lastMarkSeenAt = Date.now();
  private readonly window: BlockWindow;
  /** The newest block the replay took every log of. */
  private replayedTo = 0;
  /** Block number and log index of the last log the replay took. */
  private appliedLog: readonly [number, number] = [-1, -1];
  private settledMarked = 0n;
  private unsettledMarks: MarkSeen[] = [];
  /** The chain-break the replay last rebuilt for (the same one again is the ledger's, not a reorg). */
  private rebuiltForBreak: string | undefined;

  constructor(
    private readonly rpc: JsonRpcLike,
    private readonly o: FollowerOptions,
    private readonly hooks: FollowerHooks,
  ) {
    this.window = new BlockWindow(o.confirmations + EXTRA_BLOCKS);
    this.rebuild();
  }

  /** The highest mark seen on the chain, settled or not. */
  get lastMarked(): bigint {
    return this.unsettledMarks.reduce((a, m) => (m.recordCount > a ? m.recordCount : a), this.settledMarked);
  }

  /**
   * One round: checks the blocks it followed are still the chain's, follows the new ones by
   * hash, replays the settled ones, and notes the marks in the unsettled ones.
   *
   * @throws PrepaidLedgerError `RPC_ERROR` / `TIMEOUT` (retryable), also when the chain moved
   *   while its logs were read (the next round finds the fork)
   */
  async follow(): Promise<void> {
    const head = Number(await this.rpc.send("eth_blockNumber", []));
    this.headBlock = head;
    const tip = this.window.tip;
    if (tip !== undefined) {
      const now = await blockAt(this.rpc, tip.number);
      if (now === undefined && head >= tip.number) {
        // A node that says it has the block but cannot show it (a load-balanced node behind
        // the head): not a reorg, ask again next round.
        throw new PrepaidLedgerError("RPC_ERROR", "the node does not have a block below its head (a node behind): asking again", {
          details: { block: tip.number, head },
          retryable: true,
        });
      }
      if (now?.hash !== tip.hash) this.onReorg(tip, await findFork(this.rpc, this.window));
    }
    const followed = this.window.tip?.number ?? this.replayedTo;
    if (head > followed) {
      const from = Math.max(followed + 1, head - this.o.confirmations - EXTRA_BLOCKS + 1, this.o.fromBlock);
      const blocks = await blocksIn(this.rpc, from, head);
      // A block missing, or not the child of the one before: the chain moved while it was read.
      if (blocks.some((b) => b === undefined) || !this.window.extend(blocks as BlockRef[])) return;
    } else if (head < followed) {
      return; // a node behind the one asked before, or a shorter chain: the next round's hash check tells
    }
    this.settledBlock = head - this.o.confirmations;
    if (this.settledBlock > this.replayedTo) await this.replayTo(this.settledBlock);
    this.breakCheck();
    await this.followUnsettled(head);
  }

  /** A fresh replay from the ledger's first block. */
  private rebuild(): void {
    this.replay = new LedgerReplay(
      { privateKey: this.o.decryptionKey, keepRecords: false },
      { chainId: this.o.chainId, ledger: this.o.ledger },
      undefined,
      (mark) => {
        if (mark.recordCount > this.settledMarked) {
          if (mark.recordCount > this.lastMarked) this.lastMarkSeenAt = Date.now();
          this.settledMarked = mark.recordCount;
        }
        this.hooks.onMark(mark, this.replay);
      },
    );
    this.replayedTo = this.o.fromBlock - 1;
    this.appliedLog = [-1, -1];
    this.settledMarked = 0n;
  }

  /** Feeds the replay every ledger log up to block `to`. */
  private async replayTo(to: number): Promise<void> {
    for await (const page of fetchLogs(this.rpc, {
      address: this.o.ledger,
      fromBlock: BigInt(this.replayedTo + 1),
      toBlock: BigInt(to),
      maxBlockRange: 5_000,
    })) {
      this.checkHashes(page);
      for (const log of page) {
        // After a follow() that failed part-way (a later page's eth_getLogs kept failing), the
        // next one asks again from replayedTo + 1: skip the logs the replay already took,
        // or it would take them twice and refuse every mark after ("chain-break").
        const at = [Number(log.blockNumber), Number(log.logIndex)] as const;
        if (at[0] < this.appliedLog[0] || (at[0] === this.appliedLog[0] && at[1] <= this.appliedLog[1])) continue;
        const pending = this.replay.log(log);
        if (pending !== undefined) await pending;
        this.appliedLog = at;
      }
    }
    this.replayedTo = to;
  }

  /** The marks in blocks after the settled one: seen so the node does not mark again, never signed. */
  private async followUnsettled(head: number): Promise<void> {
    const from = Math.max(this.settledBlock + 1, this.o.fromBlock);
    if (from > head) {
      this.unsettledMarks = [];
      return;
    }
    const hex = (n: number) => "0x" + n.toString(16);
    const logs = (await this.rpc.send("eth_getLogs", [
      { address: this.o.ledger, topics: [LEDGER_TOPICS.CheckpointMarked], fromBlock: hex(from), toBlock: hex(head) },
    ])) as RpcLog[];
    this.checkHashes(logs);
    const marks = logs
      .filter((l) => l.removed !== true)
      .map((l) => ({ recordCount: BigInt(l.topics[1]), head: "0x" + l.data.slice(2, 66), blockNumber: Number(l.blockNumber), txHash: l.transactionHash }));
    if (marks.some((m) => m.recordCount > this.lastMarked)) this.lastMarkSeenAt = Date.now();
    this.unsettledMarks = marks;
  }

  /** Logs must come from the blocks it holds: else the chain moved while they were read. */
  private checkHashes(logs: RpcLog[]): void {
    for (const log of logs as (RpcLog & { blockHash?: string })[]) {
      const held = this.window.hashAt(Number(log.blockNumber));
      if (held !== undefined && log.blockHash !== undefined && log.blockHash.toLowerCase() !== held) {
        throw new PrepaidLedgerError("RPC_ERROR", "the chain moved while its logs were read (a reorg): reading again", {
          details: { block: Number(log.blockNumber), held, logBlockHash: log.blockHash },
          retryable: true,
        });
      }
    }
  }

  /** The newest block it followed is gone: back to the fork point (or the first block, if beyond the window). */
  private onReorg(tip: BlockRef, fork: number | undefined): void {
    this.reorgs++;
    const below = fork ?? this.o.fromBlock - 1;
    const deep = below < this.replayedTo;
    if (fork === undefined) this.window.clear();
    else this.window.rollbackTo(fork);
    this.unsettledMarks = this.unsettledMarks.filter((m) => m.blockNumber <= below);
    if (deep) this.rebuild();
    const withdrawn = this.hooks.onRollback(below, deep);
    const n = tip.number - below;
    const depth = fork === undefined ? `more than ${n} blocks` : `${n} block${n === 1 ? "" : "s"}`;
    const c = this.o.confirmations;
    this.lastReorg =
      `depth ${depth} after block ${below}` +
      (deep ? `, deeper than ${c} confirmation${c === 1 ? "" : "s"}: replay rebuilt` : ", unsettled blocks only") +
      (withdrawn === "" ? "" : `, ${withdrawn}`);
  }

  /**
   * A chain-break the hash checks did not explain (a node restarted onto another branch, a
   * reorg between two reads): rebuilds once from the chain. The same break again is the ledger's.
   */
  private breakCheck(): void {
    const d = this.replay.discrepancies.find((x) => x.kind === "chain-break");
    if (d === undefined) return;
    const key = `${d.blockNumber}:${d.message}`;
    if (key === this.rebuiltForBreak) return;
    this.rebuiltForBreak = key;
    this.reorgs++;
    this.window.clear();
    this.rebuild();
    const withdrawn = this.hooks.onRollback(this.o.fromBlock - 1, true);
    this.lastReorg = `the replay met a chain-break at block ${d.blockNumber ?? "?"} (${d.message}): replay rebuilt from the chain` + (withdrawn === "" ? "" : `, ${withdrawn}`);
  }
}
