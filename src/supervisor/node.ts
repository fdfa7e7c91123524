/**
 * A supervisor node: one of the independent parties (the regulator, a custodian bank, an
 * industry association) that confirm the ledger's books.
 *
 * It follows the chain over JSON-RPC and replays the ledger from its events (hash chain, every
 * account's books, and — where it holds the regulator's key — every record decrypted and its
 * commitment checked). When records have flowed for K records or T milliseconds it takes a
 * checkpoint: if its settled replay stands at the ledger's current head it signs that head as it
 * is (the quorum checks it against the ledger's head in the finalizing transaction: one
 * transaction per checkpoint, nothing marked); else — or after a head checkpoint went stale
 * because the ledger moved on before a quorum finalized it — it asks the ledger to mark its
 * head and signs at the mark. It signs, as EIP-712 typed data, what it rebuilt at exactly that
 * record count — or refuses, and says why. Signatures are shared peer to peer: each node
 * serves its own over HTTP (src/supervisor/http.ts) and polls its peers'; whoever first holds a
 * quorum submits it to the SupervisorQuorum contract. Peer to peer rather than through the chain
 * (one transaction per signature would triple a checkpoint's gas) or a central aggregator (one
 * more service that could fail or lie about liveness): any `threshold` live nodes finalize.
 *
 * It signs only settled state: the replay takes a block only once `confirmations` blocks stand on
 * top of it, so every mark it signs is that deep. Newer blocks it follows by hash only (and their
 * marks, so it does not mark twice). A reorg is seen by hash (src/supervisor/chain.ts): one within
 * the unsettled blocks costs nothing; one deeper rebuilds the replay from the chain up to the fork
 * point and withdraws every signature whose mark the chain no longer has — by itself, without a
 * restart, and the status line says so.
 *
 * What it signed is kept on disk before it is served (src/supervisor/store.ts), so a restarted
 * node never signs two different checkpoints for one record count; everything else it rebuilds
 * from the chain.
 */
import { Contract, ZeroHash, type Signer, type TypedDataDomain } from "ethers";

import { parseConfig } from "../config.js";
import { PrepaidLedgerError, isError } from "../errors.js";
import { timedRpc, withTimeout } from "../rpc.js";
import { bytesToHex } from "../crypto/hash.js";
import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import type { JsonRpcLike } from "../regulator/logs.js";
import type { LedgerReplay, MarkSeen } from "../regulator/reader.js";
import { SUPERVISOR_QUORUM_ABI } from "../ledger/quorum-abi.js";
import { CHECKPOINT_TYPES, checkpointDomain, checkpointHash, finalizeTransaction, packCheckpoint, type CheckpointJson } from "./checkpoint.js";
import { SupervisorConfig, resolveConfirmations, type SupervisorConfigInput, type SupervisorConfigValues } from "./config.js";
import { stateDigest } from "./digest.js";
import { LedgerFollower } from "./follower.js";
import { Peers, sortBySigner, type BySigner } from "./peers.js";
import { isRevert, toSupervisorError } from "./revert.js";
import { SignedStore } from "./store.js";

export { SupervisorConfig, type SupervisorConfigInput, type SupervisorConfigValues } from "./config.js";
export { checkpointDomain, checkpointHash, finalizeTransaction, packCheckpoint, type CheckpointJson, type SignedCheckpoint } from "./checkpoint.js";

export interface SupervisorStatus {
  index: number;
  address: string;
  rpc: "ok" | "down";
  headBlock: number;
  /** Blocks a mark must have on top of it before this node signs it (absent from older nodes). */
  confirmations?: number;
  /** The newest block the replay took: head − confirmations. */
  settledBlock?: number;
  recordsFollowed: string;
  lastMarked: string;
  lastSigned: string;
  lastFinal: string;
  peersSeen: number;
  peers: number;
  /** Reorgs seen since the node started. */
  reorgs?: number;
  /** The last one, in words (its depth, whether it was deeper than the confirmations, what was withdrawn). */
  lastReorg?: string;
  refusal?: string;
  lastError?: string;
}

/** A mark as the replay met it, with what the node concluded at that moment. */
interface MarkVerdict {
  mark: MarkSeen;
  digest?: string;
  refusal?: string;
}

export class SupervisorNode {
  readonly config: SupervisorConfigValues;
  /** Blocks a mark must have on top of it before the node signs it. */
  readonly confirmations: number;
  private readonly signer: Signer;
  private readonly rpc: JsonRpcLike;
  private readonly ledger: Contract;
  private readonly quorum: Contract;
  private readonly address: string;
  private readonly domain: TypedDataDomain;
  private readonly store: SignedStore;
  private readonly peers: Peers;
  private readonly follower: LedgerFollower;
  private readonly reported = new Set<string>();
  private readonly quorumSeenAt = new Map<string, number>();
  private verdicts: MarkVerdict[] = [];
  private markDueSince: number | undefined;
  /** When this node last took a checkpoint (signed the ledger's head, or marked). */
  private lastCheckpointAt = Date.now();
  /**
   * Set when a checkpoint over the ledger's head went stale (the ledger moved past it, unmarked,
   * before a quorum finalized it): the next checkpoint is marked, so traffic cannot starve it.
   */
  private preferMark = false;
  private lastFinal = 0n;
  /** Whether what it signed before this start was checked against the chain (first round). */
  private storeChecked = false;
  /** Something the node did about a checkpoint the chain no longer has, for the status line. */
  private lastReorg: string | undefined;
  private rpcState: "ok" | "down" = "ok";
  private lastError: string | undefined;
  private refusal: string | undefined;
  private stopped = false;

  private constructor(config: SupervisorConfigValues, signer: Signer, address: string, chainId: bigint, rpc: JsonRpcLike) {
    this.config = config;
    this.signer = signer;
    this.address = address;
    this.rpc = timedRpc(rpc, config.rpcTimeoutMs);
    this.confirmations = resolveConfirmations(config.confirmations, chainId);
    this.ledger = new Contract(config.ledger, PREPAID_LEDGER_ABI, signer);
    this.quorum = new Contract(config.quorum, SUPERVISOR_QUORUM_ABI, signer);
    this.domain = checkpointDomain(chainId, config.quorum);
    this.store = new SignedStore(config.stateDir, config.quorum);
    this.peers = new Peers(config.peers);
    this.follower = new LedgerFollower(
      this.rpc,
      { ledger: config.ledger, chainId, fromBlock: config.fromBlock, confirmations: this.confirmations, decryptionKey: config.decryptionKey },
      { onMark: (mark, replay) => this.verdicts.push(this.judge(mark, replay)), onRollback: (below, rebuilt) => this.rollback(below, rebuilt) },
    );
  }

  /**
   * @param input - see {@link SupervisorConfig}
   * @param signer - the supervisor's key (it signs checkpoints and pays for marks and
   *   finalizations), connected to a provider that has `send` (JSON-RPC)
   * @throws PrepaidLedgerError `INVALID_CONFIG` (every wrong field by path; no contract at an
   *   address; a quorum bound to another ledger), `RPC_ERROR` / `TIMEOUT` (retryable)
   */
  static async open(input: SupervisorConfigInput, signer: Signer): Promise<SupervisorNode> {
    const config = parseConfig(SupervisorConfig, input, "supervisor");
    const provider = signer.provider as (Signer["provider"] & Partial<JsonRpcLike>) | null;
    if (provider === null || typeof provider.send !== "function") {
      throw new PrepaidLedgerError("INVALID_CONFIG", "the signer must be connected to a JSON-RPC provider");
    }
    const timed = <T>(p: Promise<T>, what: string) => withTimeout(p, config.rpcTimeoutMs, what);
    try {
      const chainId = (await timed(provider.getNetwork(), "eth_chainId")).chainId;
      for (const [name, address] of [
        ["ledger", config.ledger],
        ["quorum", config.quorum],
      ] as const) {
        if ((await timed(provider.getCode(address), "eth_getCode")) === "0x") {
          throw new PrepaidLedgerError("INVALID_CONFIG", `no contract at the ${name} address`, { details: { [name]: address } });
        }
      }
      const bound = (await timed(new Contract(config.quorum, SUPERVISOR_QUORUM_ABI, provider).LEDGER(), "LEDGER()")) as string;
      if (bound.toLowerCase() !== config.ledger.toLowerCase()) {
        throw new PrepaidLedgerError("INVALID_CONFIG", "the quorum confirms another ledger", {
          details: { quorum: config.quorum, ledger: config.ledger, quorumLedger: bound },
        });
      }
      const address = await signer.getAddress();
      return new SupervisorNode(config, signer, address, chainId, provider as JsonRpcLike);
    } catch (e) {
      throw toSupervisorError(e, { quorum: config.quorum });
    }
  }

  /** Runs until stop(): one tick every pollMs. RPC failures are reported in the status and retried. */
  async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.tick();
        this.rpcState = "ok";
        this.lastError = undefined;
      } catch (e) {
        // An unreachable or silent node is "rpc down"; anything else (a refused transaction) is
        // an error with the RPC still up. Both are retried next tick.
        const error = toSupervisorError(e);
        this.rpcState = isError(error, "RPC_ERROR") || isError(error, "TIMEOUT") ? "down" : "ok";
        this.lastError = error instanceof Error ? error.message.split("\n")[0] : String(error);
      }
      await new Promise((r) => setTimeout(r, this.config.pollMs));
    }
  }

  stop(): void {
    this.stopped = true;
  }

  /** What this node signed for a record count, to serve to its peers (never a withdrawn one). */
  signedFor(recordCount: bigint): { checkpoints: CheckpointJson[]; signatures: string[] } | undefined {
    const s = this.store.get(recordCount);
    return s === undefined ? undefined : { checkpoints: s.checkpoints, signatures: s.signatures };
  }

  status(): SupervisorStatus {
    return {
      index: this.config.index,
      address: this.address,
      rpc: this.rpcState,
      headBlock: this.follower.headBlock,
      confirmations: this.confirmations,
      settledBlock: Math.max(this.follower.settledBlock, 0),
      recordsFollowed: this.follower.replay.lastIndex.toString(),
      lastMarked: this.follower.lastMarked.toString(),
      lastSigned: this.store.latest().toString(),
      lastFinal: this.lastFinal.toString(),
      peersSeen: this.peers.seen(),
      peers: this.config.peers.length,
      reorgs: this.follower.reorgs,
      lastReorg: this.lastReorg ?? this.follower.lastReorg,
      refusal: this.refusal,
      lastError: this.lastError,
    };
  }

  /** One round: follow the chain, sign new marks, mark when due, gather and finalize. */
  async tick(): Promise<void> {
    this.lastFinal = BigInt(await this.call(this.quorum.lastFinal(), "lastFinal()"));
    if (!this.storeChecked) await this.checkStored();
    await this.follower.follow();
    await this.checkpointIfDue();
    await this.signMarks();
    if (!(await this.gather())) await this.peers.ping();
  }

  /**
   * After a start: what it signed before, and not final yet, must still be marked on the chain
   * it is on now (it may have been down through a reorg); else it is withdrawn, never served.
   */
  private async checkStored(): Promise<void> {
    for (const count of this.store.counts().filter((c) => c > this.lastFinal)) {
      if ((await this.onLedger(count, this.store.get(count)!.checkpoints[0].chainHead)) !== "no") continue;
      this.store.withdraw(count, this.lastFinal);
      this.lastReorg = `the checkpoint at record ${count}, signed before this start, is no longer on the chain (neither the ledger's head nor marked): signature withdrawn`;
    }
    this.storeChecked = true;
  }

  /**
   * The chain no longer has the blocks after `below`: every signature for a mark in them is
   * withdrawn (never served nor submitted again); if the replay was rebuilt, so are its verdicts.
   */
  private rollback(below: number, rebuilt: boolean): string {
    if (rebuilt) {
      this.verdicts = [];
      this.refusal = undefined;
    }
    this.lastReorg = undefined;
    const withdrawn = this.store.withdrawAfter(below, this.lastFinal);
    if (withdrawn.length === 0) return "";
    return `signature${withdrawn.length === 1 ? "" : "s"} withdrawn for record${withdrawn.length === 1 ? "" : "s"} ${withdrawn.join(", ")}`;
  }

  /** A contract call or transaction, with the node's RPC timeout. */
  private call<T>(p: Promise<T>, what: string): Promise<T> {
    return withTimeout(p, this.config.rpcTimeoutMs, what);
  }

  /** At a mark, the replay stands exactly at the marked count: check it, then digest it. */
  private judge(mark: MarkSeen, replay: LedgerReplay): MarkVerdict {
    if (replay.discrepancies.length > 0) {
      const d = replay.discrepancies[0];
      return { mark, refusal: `the ledger did not verify: ${d.kind} at record ${d.recordIndex ?? "?"}: ${d.message}` };
    }
    if (replay.lastIndex !== mark.recordCount || bytesToHex(replay.head) !== mark.head.toLowerCase()) {
      return {
        mark,
        refusal: `mark at record ${mark.recordCount} (head ${mark.head}) does not match the replay (record ${replay.lastIndex}, head ${bytesToHex(replay.head)})`,
      };
    }
    return { mark, digest: stateDigest(replay.books, mark.recordCount, replay.head) };
  }

  /** Signs each new (settled) mark it could verify; says why for each it could not. */
  private async signMarks(): Promise<void> {
    const verdicts = this.verdicts.splice(0);
    if (verdicts.length === 0) return;
    const setId = BigInt(await this.call(this.quorum.setId(), "setId()"));
    for (const v of verdicts) {
      const count = v.mark.recordCount;
      if (v.refusal !== undefined) {
        this.refusal = v.refusal;
        continue;
      }
      if (count <= this.lastFinal) continue; // settled on chain: nothing to sign
      const base: CheckpointJson = {
        ledger: this.config.ledger,
        recordCount: count.toString(),
        chainHead: v.mark.head,
        stateDigest: v.digest!,
        setId: setId.toString(),
      };
      const wrong = { ...base, stateDigest: "0x" + (BigInt(v.digest!) ^ 1n).toString(16).padStart(64, "0") };
      const checkpoints =
        this.config.fault === "wrong-digest" ? [wrong] : this.config.fault === "equivocate" ? [base, wrong] : [base];
      // Never a second, different checkpoint for one count, even if a reorg removed the first.
      const admitted = this.store.admit(count, { checkpoints, markBlock: v.mark.blockNumber }, this.lastFinal);
      if (admitted === "conflict") {
        this.lastReorg = `mark at record ${count} not signed: this node signed another checkpoint for that count on a branch a reorg removed (signing both would be an equivocation); the next mark will be`;
      }
      if (admitted !== "sign") continue;
      const signatures: string[] = [];
      for (const c of checkpoints) signatures.push(await this.signer.signTypedData(this.domain, CHECKPOINT_TYPES, c));
      this.store.put(count, { checkpoints, signatures, markBlock: v.mark.blockNumber }, this.lastFinal); // on disk before any peer can fetch it
    }
  }

  /**
   * When K records or T milliseconds have passed since the last checkpoint: if the settled replay
   * stands at the ledger's current head, judges and signs that head as it is (the quorum checks
   * it against the ledger's head in the finalizing transaction itself: one transaction per
   * checkpoint); else asks the ledger to mark its head, to sign once the mark settles.
   */
  private async checkpointIfDue(): Promise<void> {
    const [countRaw, headRaw] = await this.call(this.ledger.chainHead(), "chainHead()");
    const count = BigInt(countRaw);
    const head = String(headRaw).toLowerCase();
    const replay = this.follower.replay;
    const since = [this.store.latest(), this.follower.lastMarked, this.lastFinal].reduce((a, b) => (b > a ? b : a));
    const sinceAt = Math.max(this.lastCheckpointAt, this.follower.lastMarkSeenAt);
    const due = count > since && (count - since >= BigInt(this.config.checkpointEvery) || Date.now() - sinceAt >= this.config.checkpointIntervalMs);
    if (!due) {
      this.markDueSince = undefined;
      return;
    }
    if (!this.preferMark && replay.lastIndex === count && bytesToHex(replay.head) === head) {
      this.verdicts.push(this.judge({ recordCount: count, head, blockNumber: Math.max(this.follower.settledBlock, 0), txHash: "" }, replay));
      this.lastCheckpointAt = Date.now();
      return;
    }
    this.markDueSince ??= Date.now();
    if (Date.now() - this.markDueSince < this.config.index * this.config.staggerMs) return;
    const tx = await this.call(this.ledger.markCheckpoint(), "markCheckpoint()");
    await tx.wait(1, this.config.receiptTimeoutMs);
    this.markDueSince = undefined;
    this.preferMark = false;
    this.lastCheckpointAt = Date.now();
    this.follower.lastMarkSeenAt = Date.now(); // its block is not settled yet: do not ask again meanwhile
  }

  /**
   * Whether the ledger holds `head` at record `count`: as its current head, as a mark, or not
   * ("stale": behind the ledger's count and unmarked, so the quorum can no longer check it).
   */
  private async onLedger(count: bigint, head: string): Promise<"head" | "marked" | "stale" | "no"> {
    const [ledgerCount, ledgerHead] = await this.call(this.ledger.chainHead(), "chainHead()");
    if (BigInt(ledgerCount) === count && String(ledgerHead).toLowerCase() === head.toLowerCase()) return "head";
    if (BigInt(ledgerCount) < count) return "no";
    const marked = String(await this.call(this.ledger.markedHead(count), "markedHead()")).toLowerCase();
    if (marked === head.toLowerCase()) return "marked";
    return marked === ZeroHash && BigInt(ledgerCount) > count ? "stale" : "no";
  }

  /**
   * Collects peers' signatures for its latest signed checkpoint; submits a quorum; reports
   * equivocation. Returns whether it asked its peers.
   */
  private async gather(): Promise<boolean> {
    const counts = this.store.counts().filter((c) => c > this.lastFinal);
    if (counts.length === 0) return false;
    const count = counts.reduce((a, b) => (b > a ? b : a));
    const mine = this.store.get(count)!;
    const bySigner = sortBySigner([mine, ...(await this.peers.signedFor(count))], count, this.config.ledger, this.domain);
    await this.reportEquivocations(bySigner);
    const [threshold, setIdRaw] = await Promise.all([this.call(this.quorum.threshold(), "threshold()"), this.call(this.quorum.setId(), "setId()")]);
    const setId = BigInt(setIdRaw);
    // The signing list: an equivocator's place holds the zero address, so it never counts.
    const members = [...((await this.call(this.quorum.signingMembers(setId), "signingMembers()")) as string[])];
    const memberSet = new Set(members.map((m) => m.toLowerCase()));
    for (const c of mine.checkpoints) {
      if (BigInt(c.setId) !== setId) continue;
      const hash = checkpointHash(this.domain, c);
      const signatures = new Map<string, string>();
      for (const [signer, digests] of bySigner) {
        const entry = digests.get(hash);
        if (entry === undefined || !memberSet.has(signer) || digests.size > 1) continue; // an equivocator does not count
        signatures.set(signer, entry[1]);
      }
      if (signatures.size < Number(threshold)) continue;
      const seenAt = this.quorumSeenAt.get(hash) ?? Date.now();
      this.quorumSeenAt.set(hash, seenAt);
      if (Date.now() - seenAt < this.config.index * this.config.staggerMs) continue;
      if (BigInt(await this.call(this.quorum.lastFinal(), "lastFinal()")) >= count) return true;
      // Never submit a checkpoint the chain no longer has (a reorg this node did not follow, a
      // signature kept on disk across a restart onto another branch), nor one the ledger moved
      // past unmarked (the quorum could not check its head: the next checkpoint is marked).
      const where = await this.onLedger(count, c.chainHead);
      if (where === "stale") {
        this.store.withdraw(count, this.lastFinal);
        this.preferMark = true;
        return true;
      }
      if (where === "no") {
        this.store.withdraw(count, this.lastFinal);
        this.lastReorg = `the checkpoint at record ${count} is no longer on the chain: signature withdrawn`;
        return true;
      }
      try {
        // Its own place unsigned: the contract counts the sender's place as signed (its
        // transaction is its signature), one ecrecover and 44 bytes of calldata less.
        const packed = packCheckpoint(c, members, signatures, { limit: Number(threshold), sender: this.address });
        // finalizePacked_11yn: the packed bytes after the selector, the ledger's two words in
        // the access list (src/supervisor/checkpoint.ts), about 1,100 gas less than finalizeRecords(bytes).
        const request = finalizeTransaction(this.config.quorum, this.config.ledger, packed);
        const tx = await this.call(this.signer.sendTransaction(request), "finalizePacked_11yn()");
        await tx.wait(1, this.config.receiptTimeoutMs);
        this.lastFinal = count;
      } catch (e) {
        // Another node finalized first: QuorumCheckpointNotNewer. The ledger moved past the head
        // while the transaction was on its way: QuorumUnmarkedCheckpoint (the next round
        // withdraws it, the next checkpoint is marked). Anything else is reported.
        const error = toSupervisorError(e, { recordCount: count });
        if (!isRevert(error, "QuorumCheckpointNotNewer") && !isRevert(error, "QuorumUnmarkedCheckpoint")) throw error;
      }
      return true;
    }
    return true;
  }

  /** Two different checkpoints for one count signed by one member: evidence, on chain. */
  private async reportEquivocations(bySigner: BySigner): Promise<void> {
    for (const [signer, digests] of bySigner) {
      if (digests.size < 2 || signer === this.address.toLowerCase()) continue;
      const [[a, sigA], [b, sigB]] = [...digests.values()];
      const key = `${signer}:${a.recordCount}:${a.setId}`;
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      if (await this.call(this.quorum.isEquivocator(BigInt(a.setId), signer), "isEquivocator()")) continue;
      try {
        const tx = await this.call(this.quorum.reportEquivocation(a, sigA, b, sigB), "reportEquivocation()");
        await tx.wait(1, this.config.receiptTimeoutMs);
      } catch (e) {
        const error = toSupervisorError(e, { supervisor: signer });
        if (!isRevert(error, "QuorumEquivocationAlreadyRecorded")) throw error;
      }
    }
  }
}
