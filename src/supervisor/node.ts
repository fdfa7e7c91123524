/**
 * A supervisor node: one of the independent parties (the regulator, a custodian bank, an
 * industry association) that confirm the ledger's books.
 *
 * It follows the chain over JSON-RPC and replays the ledger from its events (hash chain, every
 * account's books, and — where it holds the regulator's key — every record decrypted and its
 * commitment checked). When records have flowed for K records or T milliseconds it asks the ledger
 * to mark a checkpoint; at each mark it signs, as EIP-712 typed data, what it rebuilt at exactly
 * that record count — or refuses, and says why. Signatures are shared peer to peer: each node
 * serves its own over HTTP (src/supervisor/http.ts) and polls its peers'; whoever first holds a
 * quorum submits it to the SupervisorQuorum contract. Peer to peer rather than through the chain
 * (one transaction per signature would triple a checkpoint's gas) or a central aggregator (one
 * more service that could fail or lie about liveness): any `threshold` live nodes finalize.
 *
 * What it signed is kept on disk before it is served, so a restarted node never signs two
 * different checkpoints for one record count; everything else it rebuilds from the chain.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { Contract, TypedDataEncoder, verifyTypedData, type Signer, type TypedDataDomain } from "ethers";
import { z } from "zod";

import { addressSchema, parseConfig, privateKeySchema } from "../config.js";
import { PrepaidLedgerError, isError } from "../errors.js";
import { bytesToHex } from "../crypto/hash.js";
import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import { genesisHead } from "../ledger/codec.js";
import { toLedgerError } from "../ledger/revert.js";
import { fetchLogs, type JsonRpcLike } from "../regulator/logs.js";
import { LedgerReplay, type MarkSeen } from "../regulator/reader.js";
import { SUPERVISOR_QUORUM_ABI } from "./abi.js";
import { stateDigest } from "./digest.js";

export const SupervisorConfig = z.object({
  ledger: addressSchema,
  quorum: addressSchema,
  /** This node's place among its peers (0, 1, …): staggers who marks and who submits first. */
  index: z.number().int().min(0).max(254),
  /** The regulator's decryption key, if this node holds it: then it checks every commitment too. */
  decryptionKey: privateKeySchema.optional(),
  /** Base URLs of the other nodes' HTTP endpoints. */
  peers: z.array(z.string().url()).default([]),
  /** Where it keeps what it signed. */
  stateDir: z.string().min(1),
  /** Mark a checkpoint every K records… */
  checkpointEvery: z.number().int().min(1).default(1_000),
  /** …or every T milliseconds while records keep coming. */
  checkpointIntervalMs: z.number().int().min(50).default(1_000),
  pollMs: z.number().int().min(10).default(200),
  staggerMs: z.number().int().min(0).default(150),
  fromBlock: z.number().int().min(0).default(0),
  /** For tests of the quorum only: sign a wrong state digest, or both a wrong and the right one. */
  fault: z.enum(["none", "wrong-digest", "equivocate"]).default("none"),
});
export type SupervisorConfigInput = z.input<typeof SupervisorConfig>;
export type SupervisorConfigValues = z.output<typeof SupervisorConfig>;

/** The signed struct, as JSON (numbers as decimal strings). */
export interface CheckpointJson {
  ledger: string;
  recordCount: string;
  chainHead: string;
  stateDigest: string;
  setId: string;
}

/** What a node serves for one record count: the checkpoint(s) it signed and its signature(s). */
export interface SignedCheckpoint {
  checkpoints: CheckpointJson[];
  signatures: string[];
}

export interface SupervisorStatus {
  index: number;
  address: string;
  rpc: "ok" | "down";
  headBlock: number;
  recordsFollowed: string;
  lastMarked: string;
  lastSigned: string;
  lastFinal: string;
  peersSeen: number;
  peers: number;
  refusal?: string;
  lastError?: string;
}

const CHECKPOINT_TYPES = {
  Checkpoint: [
    { name: "ledger", type: "address" },
    { name: "recordCount", type: "uint64" },
    { name: "chainHead", type: "bytes32" },
    { name: "stateDigest", type: "bytes32" },
    { name: "setId", type: "uint64" },
  ],
};

/** The EIP-712 domain of a SupervisorQuorum (docs/ARCHITECTURE.md, "Confirmation"). */
export function checkpointDomain(chainId: bigint, quorum: string): TypedDataDomain {
  return { name: "PrepaidLedgerSupervision", version: "1", chainId, verifyingContract: quorum };
}

/** The EIP-712 hash a supervisor signs for a checkpoint. */
export function checkpointHash(domain: TypedDataDomain, c: CheckpointJson): string {
  return TypedDataEncoder.hash(domain, CHECKPOINT_TYPES, c);
}

/** Signed checkpoints kept on disk at or below the last final one. */
const KEEP_FINAL = 16;

/** A mark as the replay met it, with what the node concluded at that moment. */
interface MarkVerdict {
  mark: MarkSeen;
  digest?: string;
  refusal?: string;
}

export class SupervisorNode {
  readonly config: SupervisorConfigValues;
  private readonly signer: Signer;
  private readonly rpc: JsonRpcLike;
  private readonly ledger: Contract;
  private readonly quorum: Contract;
  private readonly address: string;
  private readonly domain: TypedDataDomain;
  private readonly replay: LedgerReplay;
  private readonly verdicts: MarkVerdict[] = [];
  private readonly signed = new Map<string, SignedCheckpoint>();
  private readonly peerSeenAt = new Map<string, number>();
  private readonly reported = new Set<string>();
  private processedBlock: number;
  /** Block number and log index of the last log the replay took. */
  private appliedLog: readonly [number, number] = [-1, -1];
  private headBlock = 0;
  private lastMarked = 0n;
  private lastMarkSeenAt = Date.now();
  private markDueSince: number | undefined;
  private quorumSeenAt = new Map<string, number>();
  private lastFinal = 0n;
  private rpcState: "ok" | "down" = "ok";
  private lastError: string | undefined;
  private refusal: string | undefined;
  private stopped = false;

  private constructor(config: SupervisorConfigValues, signer: Signer, address: string, chainId: bigint, rpc: JsonRpcLike) {
    this.config = config;
    this.signer = signer;
    this.address = address;
    this.rpc = rpc;
    this.ledger = new Contract(config.ledger, PREPAID_LEDGER_ABI, signer);
    this.quorum = new Contract(config.quorum, SUPERVISOR_QUORUM_ABI, signer);
    this.domain = checkpointDomain(chainId, config.quorum);
    this.processedBlock = config.fromBlock - 1;
    this.replay = new LedgerReplay(
      { privateKey: config.decryptionKey, keepRecords: false },
      genesisHead(chainId, config.ledger),
      undefined,
      (mark) => this.verdicts.push(this.judge(mark)),
    );
    this.load();
  }

  /**
   * @param input - see {@link SupervisorConfig}
   * @param signer - the supervisor's key (it signs checkpoints and pays for marks and
   *   finalizations), connected to a provider that has `send` (JSON-RPC)
   * @throws PrepaidLedgerError `INVALID_CONFIG` (every wrong field by path; no contract at an
   *   address; a quorum bound to another ledger), `RPC_ERROR`
   */
  static async open(input: SupervisorConfigInput, signer: Signer): Promise<SupervisorNode> {
    const config = parseConfig(SupervisorConfig, input, "supervisor");
    const provider = signer.provider as (Signer["provider"] & Partial<JsonRpcLike>) | null;
    if (provider === null || typeof provider.send !== "function") {
      throw new PrepaidLedgerError("INVALID_CONFIG", "the signer must be connected to a JSON-RPC provider");
    }
    try {
      const chainId = (await provider.getNetwork()).chainId;
      for (const [name, address] of [
        ["ledger", config.ledger],
        ["quorum", config.quorum],
      ] as const) {
        if ((await provider.getCode(address)) === "0x") {
          throw new PrepaidLedgerError("INVALID_CONFIG", `no contract at the ${name} address`, { details: { [name]: address } });
        }
      }
      const bound = (await new Contract(config.quorum, SUPERVISOR_QUORUM_ABI, provider).LEDGER()) as string;
      if (bound.toLowerCase() !== config.ledger.toLowerCase()) {
        throw new PrepaidLedgerError("INVALID_CONFIG", "the quorum confirms another ledger", {
          details: { quorum: config.quorum, ledger: config.ledger, quorumLedger: bound },
        });
      }
      return new SupervisorNode(config, signer, await signer.getAddress(), chainId, provider as JsonRpcLike);
    } catch (e) {
      throw toLedgerError(e, { quorum: config.quorum });
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
        // An unreachable node is "rpc down"; anything else (a refused transaction) is an error
        // with the RPC still up. Both are retried next tick.
        const error = toLedgerError(e);
        this.rpcState = isError(error, "RPC_ERROR") ? "down" : "ok";
        this.lastError = error instanceof Error ? error.message.split("\n")[0] : String(error);
      }
      await new Promise((r) => setTimeout(r, this.config.pollMs));
    }
  }

  stop(): void {
    this.stopped = true;
  }

  /** What this node signed for a record count, to serve to its peers. */
  signedFor(recordCount: bigint): SignedCheckpoint | undefined {
    return this.signed.get(recordCount.toString());
  }

  status(): SupervisorStatus {
    const now = Date.now();
    const latestSigned = [...this.signed.keys()].map(BigInt).reduce((a, b) => (b > a ? b : a), 0n);
    return {
      index: this.config.index,
      address: this.address,
      rpc: this.rpcState,
      headBlock: this.headBlock,
      recordsFollowed: this.replay.lastIndex.toString(),
      lastMarked: this.lastMarked.toString(),
      lastSigned: latestSigned.toString(),
      lastFinal: this.lastFinal.toString(),
      peersSeen: [...this.peerSeenAt.values()].filter((t) => now - t < 5_000).length,
      peers: this.config.peers.length,
      refusal: this.refusal,
      lastError: this.lastError,
    };
  }

  /** One round: follow the chain, sign new marks, mark when due, gather and finalize. */
  async tick(): Promise<void> {
    this.lastFinal = BigInt((await this.quorum.lastFinal())[0]);
    await this.follow();
    await this.signMarks();
    await this.markIfDue();
    if (!(await this.gather())) await this.pingPeers();
  }

  /** Between checkpoints, keeps "peers seen" true: one status request a second per peer. */
  private lastPing = 0;
  private async pingPeers(): Promise<void> {
    if (Date.now() - this.lastPing < 1_000) return;
    this.lastPing = Date.now();
    await Promise.all(
      this.config.peers.map(async (peer) => {
        try {
          const res = await fetch(`${peer}/status`, { signal: AbortSignal.timeout(500) });
          if (res.ok) this.peerSeenAt.set(peer, Date.now());
        } catch {
          // not seen
        }
      }),
    );
  }

  /** Replays the ledger's logs up to the chain head. */
  private async follow(): Promise<void> {
    const head = Number(await this.rpc.send("eth_blockNumber", []));
    this.headBlock = head;
    if (head <= this.processedBlock) return;
    for await (const page of fetchLogs(this.rpc, {
      address: this.config.ledger,
      fromBlock: BigInt(this.processedBlock + 1),
      toBlock: BigInt(head),
      maxBlockRange: 5_000,
    })) {
      for (const log of page) {
        // After a follow() that failed part-way (a later page's eth_getLogs kept failing), the
        // next one asks again from processedBlock + 1: skip the logs the replay already took,
        // or it would take them twice and refuse every mark after ("chain-break").
        const at = [Number(log.blockNumber), Number(log.logIndex)] as const;
        if (at[0] < this.appliedLog[0] || (at[0] === this.appliedLog[0] && at[1] <= this.appliedLog[1])) continue;
        const pending = this.replay.log(log);
        if (pending !== undefined) await pending;
        this.appliedLog = at;
      }
    }
    this.processedBlock = head;
  }

  /** At a mark, the replay stands exactly at the marked count: check it, then digest it. */
  private judge(mark: MarkSeen): MarkVerdict {
    if (mark.recordCount > this.lastMarked) {
      this.lastMarked = mark.recordCount;
      this.lastMarkSeenAt = Date.now();
    }
    if (this.replay.discrepancies.length > 0) {
      const d = this.replay.discrepancies[0];
      return { mark, refusal: `the ledger did not verify: ${d.kind} at record ${d.recordIndex ?? "?"}: ${d.message}` };
    }
    if (this.replay.lastIndex !== mark.recordCount || bytesToHex(this.replay.head) !== mark.head.toLowerCase()) {
      return {
        mark,
        refusal: `mark at record ${mark.recordCount} (head ${mark.head}) does not match the replay (record ${this.replay.lastIndex}, head ${bytesToHex(this.replay.head)})`,
      };
    }
    return { mark, digest: stateDigest(this.replay.books, mark.recordCount, this.replay.head) };
  }

  /** Signs each new mark it could verify; says why for each it could not. */
  private async signMarks(): Promise<void> {
    const verdicts = this.verdicts.splice(0);
    if (verdicts.length === 0) return;
    const setId = BigInt(await this.quorum.setId());
    for (const v of verdicts) {
      const key = v.mark.recordCount.toString();
      if (v.refusal !== undefined) {
        this.refusal = v.refusal;
        continue;
      }
      if (this.signed.has(key)) continue; // never a second, different checkpoint for one count
      if (v.mark.recordCount <= this.lastFinal) continue; // settled on chain: nothing to sign
      const base: CheckpointJson = {
        ledger: this.config.ledger,
        recordCount: key,
        chainHead: v.mark.head,
        stateDigest: v.digest!,
        setId: setId.toString(),
      };
      const wrong = { ...base, stateDigest: "0x" + (BigInt(v.digest!) ^ 1n).toString(16).padStart(64, "0") };
      const checkpoints =
        this.config.fault === "wrong-digest" ? [wrong] : this.config.fault === "equivocate" ? [base, wrong] : [base];
      const signatures: string[] = [];
      for (const c of checkpoints) signatures.push(await this.signer.signTypedData(this.domain, CHECKPOINT_TYPES, c));
      this.signed.set(key, { checkpoints, signatures });
      this.save(); // on disk before any peer can fetch it
    }
  }

  /** Asks the ledger for a mark when K records or T milliseconds have passed since the last one. */
  private async markIfDue(): Promise<void> {
    const count = this.replay.lastIndex;
    const due =
      count > this.lastMarked &&
      (count - this.lastMarked >= BigInt(this.config.checkpointEvery) ||
        Date.now() - this.lastMarkSeenAt >= this.config.checkpointIntervalMs);
    if (!due) {
      this.markDueSince = undefined;
      return;
    }
    this.markDueSince ??= Date.now();
    if (Date.now() - this.markDueSince < this.config.index * this.config.staggerMs) return;
    const tx = await this.ledger.markCheckpoint();
    await tx.wait();
    this.markDueSince = undefined;
  }

  /**
   * Collects peers' signatures for its latest signed checkpoint; submits a quorum; reports
   * equivocation. Returns whether it asked its peers.
   */
  private async gather(): Promise<boolean> {
    const counts = [...this.signed.keys()].map(BigInt).filter((c) => c > this.lastFinal);
    if (counts.length === 0) return false;
    const count = counts.reduce((a, b) => (b > a ? b : a));
    const served = [this.signed.get(count.toString())!, ...(await this.fromPeers(count))];
    // signer -> digest -> [checkpoint, signature]
    const bySigner = new Map<string, Map<string, [CheckpointJson, string]>>();
    for (const s of served) {
      s.checkpoints.forEach((c, i) => {
        if (BigInt(c.recordCount) !== count || c.ledger.toLowerCase() !== this.config.ledger.toLowerCase()) return;
        let signer: string;
        try {
          signer = verifyTypedData(this.domain, CHECKPOINT_TYPES, c, s.signatures[i]).toLowerCase();
        } catch {
          return;
        }
        const digests = bySigner.get(signer) ?? new Map<string, [CheckpointJson, string]>();
        digests.set(checkpointHash(this.domain, c), [c, s.signatures[i]]);
        bySigner.set(signer, digests);
      });
    }
    await this.reportEquivocations(bySigner);
    const mine = this.signed.get(count.toString())!;
    const [threshold, members] = await Promise.all([this.quorum.threshold(), this.quorum.supervisors()]);
    const setId = BigInt(await this.quorum.setId());
    const memberSet = new Set((members as string[]).map((m) => m.toLowerCase()));
    for (const [c] of mine.checkpoints.map((c, i) => [c, mine.signatures[i]] as const)) {
      if (BigInt(c.setId) !== setId) continue;
      const hash = checkpointHash(this.domain, c);
      const signatures: string[] = [];
      for (const [signer, digests] of bySigner) {
        const entry = digests.get(hash);
        if (entry === undefined || !memberSet.has(signer) || digests.size > 1) continue; // an equivocator does not count
        signatures.push(entry[1]);
      }
      if (signatures.length < Number(threshold)) continue;
      const seenAt = this.quorumSeenAt.get(hash) ?? Date.now();
      this.quorumSeenAt.set(hash, seenAt);
      if (Date.now() - seenAt < this.config.index * this.config.staggerMs) continue;
      if (BigInt((await this.quorum.lastFinal())[0]) >= count) return true;
      try {
        const tx = await this.quorum.finalize(c, signatures.slice(0, Number(threshold)));
        await tx.wait();
        this.lastFinal = count;
      } catch (e) {
        // Another node finalized first: QuorumCheckpointNotNewer. Anything else is reported.
        const error = toLedgerError(e);
        if (!(error instanceof PrepaidLedgerError && String(error.details.error) === "QuorumCheckpointNotNewer")) throw error;
      }
      return true;
    }
    return true;
  }

  /** Two different checkpoints for one count signed by one member: evidence, on chain. */
  private async reportEquivocations(bySigner: Map<string, Map<string, [CheckpointJson, string]>>): Promise<void> {
    for (const [signer, digests] of bySigner) {
      if (digests.size < 2 || signer === this.address.toLowerCase()) continue;
      const [[a, sigA], [b, sigB]] = [...digests.values()];
      const key = `${signer}:${a.recordCount}:${a.setId}`;
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      if (await this.quorum.isEquivocator(BigInt(a.setId), signer)) continue;
      try {
        await (await this.quorum.reportEquivocation(a, sigA, b, sigB)).wait();
      } catch (e) {
        const error = toLedgerError(e);
        if (!(error instanceof PrepaidLedgerError && String(error.details.error) === "QuorumEquivocationAlreadyRecorded")) throw error;
      }
    }
  }

  private async fromPeers(count: bigint): Promise<SignedCheckpoint[]> {
    const answers = await Promise.all(
      this.config.peers.map(async (peer) => {
        try {
          const res = await fetch(`${peer}/checkpoints/${count}`, { signal: AbortSignal.timeout(500) });
          this.peerSeenAt.set(peer, Date.now());
          if (!res.ok) return undefined;
          return (await res.json()) as SignedCheckpoint;
        } catch {
          return undefined;
        }
      }),
    );
    return answers.filter((a): a is SignedCheckpoint => a !== undefined && Array.isArray(a.checkpoints));
  }

  private get file(): string {
    return join(this.config.stateDir, `signed-${this.config.quorum.toLowerCase()}.json`);
  }

  private load(): void {
    if (!existsSync(this.file)) return;
    const saved = JSON.parse(readFileSync(this.file, "utf8")) as Record<string, SignedCheckpoint>;
    for (const [count, s] of Object.entries(saved)) this.signed.set(count, s);
  }

  /**
   * Writes what it signed, keeping every count above the last final checkpoint and the
   * KEEP_FINAL most recent at or below it (peers may still fetch those to spot a double
   * signature); older ones are settled on chain, and the file would otherwise grow forever.
   */
  private save(): void {
    const settled = [...this.signed.keys()].map(BigInt).filter((c) => c <= this.lastFinal).sort((a, b) => (a < b ? 1 : -1));
    for (const count of settled.slice(KEEP_FINAL)) this.signed.delete(count.toString());
    mkdirSync(this.config.stateDir, { recursive: true });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.signed)));
    renameSync(tmp, this.file);
  }
}
