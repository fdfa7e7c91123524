/**
 * A local supervision network of real processes, shared by `npm run supervision`
 * (scripts/supervision.ts), its integration test (test/supervisor/network.test.ts) and the
 * supervision bench (scripts/bench/supervision.ts): a PrepaidLedger and its SupervisorQuorum
 * deployed on a `hardhat node`, supervisor processes (scripts/supervisor.ts) that know each
 * other's endpoints, merchant traffic through the Uploader, and a watch on finalized checkpoints.
 *
 * Everything listens on 127.0.0.1. The supervisors' keys are Hardhat's well-known dev accounts
 * (public test keys, funded by every `hardhat node`), passed to each process in its environment.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { ContractFactory, HDNodeWallet, Interface, JsonRpcProvider, ZeroHash, id, toBeHex, zeroPadValue, type Signer } from "ethers";
import { artifacts } from "hardhat";

import { RecordKind, type RecordDetails } from "../../src/crypto/details.js";
import { publicKeyOf } from "../../src/crypto/ecies.js";
import { SUPERVISOR_QUORUM_ABI } from "../../src/ledger/quorum-abi.js";
import type { SignedCheckpoint, SupervisorStatus } from "../../src/supervisor/node.js";
import { Uploader, type UploadedRecord } from "../../src/upload/uploader.js";
import { startTs, type Running } from "../../test/helpers/processes.js";
import type { PrepaidLedger, SupervisorQuorum } from "../../types/ethers-contracts/index.js";
import { freePort } from "./ports.js";

/** Hardhat's (and Foundry's) public test mnemonic: its accounts are funded on every dev node. */
export const DEV_MNEMONIC = "test test test test test test test test test test test junk";
/** Supervisor i is dev account 10 + i (0 governs, 1 regulates, 2.. record for merchants). */
export const FIRST_SUPERVISOR_ACCOUNT = 10;
/** A `hardhat node` funds 20 accounts, so accounts 10..19 can supervise. */
export const MAX_SUPERVISORS = 10;
/** Merchants record from dev accounts 2..9. */
export const MAX_MERCHANTS = 8;

/**
 * ethers' defaults would time ethers rather than the node (scripts/bench/nodes.ts): poll every
 * 50 ms, no request batching, no response cache (a read right after a write sees it).
 */
export const PROVIDER_OPTIONS = { staticNetwork: true, pollingInterval: 50, batchMaxCount: 1, cacheTimeout: -1 } as const;

/** Dev account `i` of {@link DEV_MNEMONIC}, with its private key. */
export function devWallet(i: number): HDNodeWallet {
  return HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`);
}

export interface SupervisorAccount {
  index: number;
  address: string;
  /** Handed to its process as SUPERVISOR_PRIVATE_KEY, never as a flag. */
  key: string;
}

export interface Deployment {
  ledger: PrepaidLedger;
  quorum: SupervisorQuorum;
  ledgerAddress: string;
  quorumAddress: string;
  /** The block of the ledger's deployment: supervisors follow from there. */
  fromBlock: number;
  supervisors: SupervisorAccount[];
  threshold: number;
  /** Registered merchants, each with its recorder (a dev account the node signs for). */
  merchants: { id: number; recorder: Signer }[];
}

/**
 * Deploys a PrepaidLedger (admin = dev account 0, regulator = 1) and a SupervisorQuorum over it
 * (governor = account 0, members = accounts 10.., `threshold` of them must sign), and registers
 * `merchants` merchants (ids 1.., recorders = accounts 2..).
 */
export async function deploySupervision(
  provider: JsonRpcProvider,
  o: { supervisors: number; threshold: number; merchants: number },
): Promise<Deployment> {
  if (o.supervisors < 1 || o.supervisors > MAX_SUPERVISORS) throw new Error(`1 to ${MAX_SUPERVISORS} supervisors, not ${o.supervisors}`);
  if (o.threshold < 1 || o.threshold > o.supervisors) throw new Error(`threshold ${o.threshold} is not within 1..${o.supervisors}`);
  if (o.merchants < 1 || o.merchants > MAX_MERCHANTS) throw new Error(`1 to ${MAX_MERCHANTS} merchants, not ${o.merchants}`);
  const [admin, regulator] = await Promise.all([0, 1].map((i) => provider.getSigner(i)));
  const supervisors = Array.from({ length: o.supervisors }, (_, index) => {
    const wallet = devWallet(FIRST_SUPERVISOR_ACCOUNT + index);
    return { index, address: wallet.address, key: wallet.privateKey };
  });

  const [ledgerArtifact, quorumArtifact] = await Promise.all([
    artifacts.readArtifact("PrepaidLedger"),
    artifacts.readArtifact("SupervisorQuorum"),
  ]);
  const deployed = await new ContractFactory(ledgerArtifact.abi, ledgerArtifact.bytecode, admin).deploy(admin.address, regulator.address, 0, 3_600);
  await deployed.waitForDeployment();
  const fromBlock = (await deployed.deploymentTransaction()!.wait())!.blockNumber;
  // The factories are built from the artifacts, so the contracts have the typechain ABIs.
  const ledger = deployed as unknown as PrepaidLedger;
  const ledgerAddress = await ledger.getAddress();
  const quorumDeployed = await new ContractFactory(quorumArtifact.abi, quorumArtifact.bytecode, admin).deploy(
    admin.address,
    ledgerAddress,
    supervisors.map((s) => s.address),
    o.threshold,
    0,
    3_600,
  );
  await quorumDeployed.waitForDeployment();
  const quorum = quorumDeployed as unknown as SupervisorQuorum;

  const merchants: Deployment["merchants"] = [];
  for (let i = 0; i < o.merchants; i++) {
    const recorder = await provider.getSigner(2 + i);
    await (await ledger.connect(regulator).registerMerchant(i + 1, recorder.address)).wait();
    merchants.push({ id: i + 1, recorder });
  }
  return {
    ledger,
    quorum,
    ledgerAddress,
    quorumAddress: await quorum.getAddress(),
    fromBlock,
    supervisors,
    threshold: o.threshold,
    merchants,
  };
}

/** How every supervisor of a network runs (scripts/supervisor.ts flags). */
export interface SupervisorSettings {
  rpc: string;
  /** Every supervisor keeps what it signed in `<stateRoot>/<index>`. */
  stateRoot: string;
  /** K: mark every K records… */
  every: number;
  /** …or every T milliseconds while records flow. */
  intervalMs: number;
  pollMs?: number;
  statusMs?: number;
  /** Blocks a mark must have on top of it before a supervisor signs it (default: the chain's, 0 on dev chains). */
  confirmations?: number;
  /** Milliseconds one JSON-RPC call may take. */
  rpcTimeoutMs?: number;
  /** Supervisor 0 holds it (REGULATOR_DECRYPTION_KEY), so it checks every commitment too. */
  decryptionKey?: string;
  /** Each line a supervisor prints (stdout and stderr), as it comes. */
  onLine?: (index: number, line: string, stream: "stdout" | "stderr") => void;
  /** Out of the terminal's Ctrl-C: the caller stops them (test/helpers/processes.ts StartOptions). */
  ownProcessGroup?: boolean;
}

/**
 * One supervisor process (`node --import tsx scripts/supervisor.ts …`) with a fixed port and
 * state folder, so it can be stopped and started again as the same node.
 */
export class SupervisorProcess {
  private running: Running | undefined;
  private earlier = "";

  constructor(
    readonly account: SupervisorAccount,
    readonly port: number,
    private readonly peers: string[],
    private readonly deployment: Deployment,
    private readonly settings: SupervisorSettings,
  ) {}

  get index(): number {
    return this.account.index;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get stateDir(): string {
    return join(this.settings.stateRoot, String(this.index));
  }

  /** Whether its process is running. */
  get alive(): boolean {
    const p = this.running?.process;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Everything it printed, over every start. */
  output(): string {
    return this.earlier + (this.running?.output() ?? "");
  }

  /**
   * Starts the process and resolves once it serves HTTP ("listening"), or throws with its output
   * if it exits or does not get there within `timeoutMs`. `extra` flags go last (e.g. `--fault`).
   */
  async start(extra: string[] = [], timeoutMs = 60_000): Promise<void> {
    if (this.alive) throw new Error(`supervisor ${this.index} is already running`);
    if (this.running !== undefined) this.earlier += this.running.output();
    const s = this.settings;
    const d = this.deployment;
    mkdirSync(this.stateDir, { recursive: true });
    const args = [
      ["--rpc", s.rpc],
      ["--ledger", d.ledgerAddress],
      ["--quorum", d.quorumAddress],
      ["--index", String(this.index)],
      ["--port", String(this.port)],
      ["--peers", this.peers.join(",")],
      ["--state-dir", this.stateDir],
      ["--every", String(s.every)],
      ["--interval-ms", String(s.intervalMs)],
      ["--from-block", String(d.fromBlock)],
      ...(s.pollMs === undefined ? [] : [["--poll-ms", String(s.pollMs)]]),
      ...(s.statusMs === undefined ? [] : [["--status-ms", String(s.statusMs)]]),
      ...(s.confirmations === undefined ? [] : [["--confirmations", String(s.confirmations)]]),
      ...(s.rpcTimeoutMs === undefined ? [] : [["--rpc-timeout", String(s.rpcTimeoutMs)]]),
    ].flat();
    // Secrets through the environment only. Set the decryption key to "" on the others, so one
    // exported in the parent's environment does not reach them.
    const env = {
      SUPERVISOR_PRIVATE_KEY: this.account.key,
      REGULATOR_DECRYPTION_KEY: this.index === 0 && s.decryptionKey !== undefined ? s.decryptionKey : "",
    };
    const running = startTs("scripts/supervisor.ts", [...args, ...extra], env, { ownProcessGroup: s.ownProcessGroup });
    this.running = running;
    if (s.onLine !== undefined) {
      for (const stream of ["stdout", "stderr"] as const) {
        let partial = "";
        running.process[stream]?.on("data", (chunk: Buffer) => {
          const lines = (partial + chunk.toString()).split("\n");
          partial = lines.pop()!;
          for (const line of lines) if (line.length > 0) s.onLine!(this.index, line, stream);
        });
      }
    }
    const deadline = Date.now() + timeoutMs;
    while (!running.output().includes(`supervisor ${this.index} listening on`)) {
      if (!this.alive) throw new Error(`supervisor ${this.index} exited (${running.process.exitCode}): ${running.output()}`);
      if (Date.now() > deadline) {
        await this.stop("SIGKILL");
        throw new Error(`supervisor ${this.index} did not start within ${timeoutMs} ms: ${this.output()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the process (SIGTERM: it stops after its current round; SIGKILL: at once) and waits for it. */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    if (this.running === undefined) return;
    if (this.alive) this.running.process.kill(signal);
    await this.running.stop();
  }

  /** Its GET /status, or undefined if it does not answer within 1 s. */
  async status(): Promise<SupervisorStatus | undefined> {
    return this.get<SupervisorStatus>("/status");
  }

  /** What it signed for `recordCount` (GET /checkpoints/<n>), or undefined. */
  async signed(recordCount: bigint): Promise<SignedCheckpoint | undefined> {
    return this.get<SignedCheckpoint>(`/checkpoints/${recordCount}`);
  }

  private async get<T>(path: string): Promise<T | undefined> {
    try {
      const res = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(1_000) });
      return res.ok ? ((await res.json()) as T) : undefined;
    } catch {
      return undefined;
    }
  }
}

/** Creates one process per supervisor of `deployment`, each knowing the others' endpoints, and starts them all. */
export async function startSupervisors(deployment: Deployment, settings: SupervisorSettings): Promise<SupervisorProcess[]> {
  const ports = await Promise.all(deployment.supervisors.map(() => freePort()));
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const supervisors = deployment.supervisors.map(
    (account, i) => new SupervisorProcess(account, ports[i], urls.filter((_, j) => j !== i), deployment, settings),
  );
  try {
    await Promise.all(supervisors.map((s) => s.start()));
  } catch (e) {
    await Promise.all(supervisors.map((s) => s.stop("SIGKILL")));
    throw e;
  }
  return supervisors;
}

/** Cards each merchant opens in its first batch. */
const CARDS = 8;
/** A card's opening balance (5,000.00) and a top-up (2,000.00), in fen. */
const OPENING = 500_000n;
const TOP_UP = 200_000n;
const MEMOS = ["yoga class", "haircut", "math tutor", "swim lesson"] as const;

/**
 * Merchant traffic through the Uploader: each call to {@link next} uploads one batch for the
 * next merchant in turn. A merchant's first batch opens its cards; after that, consumptions of
 * 28.00 to 580.00 with a top-up now and then, and never more than a card holds (the ledger
 * would refuse an overdraw).
 */
export class MerchantTraffic {
  /** Records uploaded, over every merchant. */
  records = 0;
  batches = 0;
  private turn = 0;
  private seed = 20261126;
  private readonly sent = new Map<number, number>();
  private readonly balances = new Map<string, bigint>();

  private constructor(
    private readonly uploaders: Uploader[],
    private readonly batchSize: number,
  ) {}

  /** One Uploader per merchant of `deployment`, journaling in `journalDir`. */
  static async open(
    deployment: Deployment,
    o: { regulatorKey: string; journalDir: string; batchSize: number },
  ): Promise<MerchantTraffic> {
    const uploaders: Uploader[] = [];
    for (const m of deployment.merchants) {
      uploaders.push(
        await Uploader.open(
          {
            ledger: deployment.ledgerAddress,
            merchantId: m.id,
            regulatorPublicKey: publicKeyOf(o.regulatorKey),
            journalPath: join(o.journalDir, `merchant-${m.id}.jsonl`),
          },
          m.recorder,
        ),
      );
    }
    return new MerchantTraffic(uploaders, o.batchSize);
  }

  /** Uploads the next merchant's next batch; resolves with its records once it landed. */
  async next(): Promise<UploadedRecord[]> {
    const uploader = this.uploaders[this.turn++ % this.uploaders.length];
    const merchantId = uploader.config.merchantId;
    const from = this.sent.get(merchantId) ?? 0;
    const count = from === 0 ? CARDS : this.batchSize;
    const details = Array.from({ length: count }, (_, i) => this.detail(merchantId, from + i));
    const records = await uploader.upload(details);
    if (records.length !== details.length) throw new Error(`merchant ${merchantId}: ${details.length} records sent, ${records.length} landed`);
    this.sent.set(merchantId, from + count);
    this.records += records.length;
    this.batches += 1;
    return records;
  }

  close(): void {
    for (const u of this.uploaders) u.close();
  }

  /** Record `n` of merchant `merchantId`'s stream. */
  private detail(merchantId: number, n: number): RecordDetails {
    const card = n % CARDS;
    const account = id(`merchant ${merchantId} card ${String(card).padStart(4, "0")}`);
    const balance = this.balances.get(account) ?? 0n;
    const amount = n < CARDS ? OPENING : 2_800n + 100n * BigInt(Math.floor(this.random() * 553));
    const kind = n < CARDS || n % 5 === 4 || amount > balance ? RecordKind.TopUp : RecordKind.Consume;
    const booked = kind === RecordKind.TopUp ? (n < CARDS ? OPENING : TOP_UP) : amount;
    this.balances.set(account, kind === RecordKind.TopUp ? balance + booked : balance - booked);
    return {
      kind,
      merchantId,
      account,
      amount: booked,
      time: Math.floor(Date.now() / 1000),
      orderRef: `ORD-${merchantId}-${String(n).padStart(6, "0")}`,
      memo: kind === RecordKind.TopUp ? (n < CARDS ? "prepaid card" : "top-up") : MEMOS[n % MEMOS.length]!,
    };
  }

  /** mulberry32, so a run's amounts are the same every time. */
  private random(): number {
    this.seed = (this.seed + 0x6d2b79f5) | 0;
    let t = Math.imul(this.seed ^ (this.seed >>> 15), 1 | this.seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }
}

/** A `CheckpointFinalized` log, decoded. */
export interface Finalized {
  recordCount: bigint;
  chainHead: string;
  stateDigest: string;
  setId: bigint;
  /** The signers' addresses, from the event's bitmap of positions in set `setId`. */
  signers: string[];
  blockNumber: number;
}

const QUORUM = new Interface(SUPERVISOR_QUORUM_ABI);
const FINALIZED_TOPIC = QUORUM.getEvent("CheckpointFinalized")!.topicHash;

/** Reads the quorum's `CheckpointFinalized` logs as blocks arrive: each {@link poll} returns the new ones. */
export class FinalityWatch {
  private next: number;
  private readonly members = new Map<bigint, string[]>();

  constructor(
    private readonly provider: JsonRpcProvider,
    private readonly quorum: string,
    fromBlock: number,
  ) {
    this.next = fromBlock;
  }

  async poll(): Promise<Finalized[]> {
    const head = await this.provider.getBlockNumber();
    if (head < this.next) return [];
    const logs = await this.provider.getLogs({ address: this.quorum, topics: [FINALIZED_TOPIC], fromBlock: this.next, toBlock: head });
    this.next = head + 1;
    const out: Finalized[] = [];
    for (const log of logs) {
      const e = QUORUM.parseLog(log)!;
      const setId = e.args.setId as bigint;
      out.push({
        recordCount: e.args.recordCount as bigint,
        chainHead: e.args.chainHead as string,
        stateDigest: e.args.stateDigest as string,
        setId,
        signers: signersOf(await this.membersOf(setId), e.args.signers as bigint),
        blockNumber: log.blockNumber,
      });
    }
    return out;
  }

  /** Set `setId`'s members in order, from its SupervisorsChanged log. */
  private async membersOf(setId: bigint): Promise<string[]> {
    const cached = this.members.get(setId);
    if (cached !== undefined) return cached;
    const topic = QUORUM.getEvent("SupervisorsChanged")!.topicHash;
    const logs = await this.provider.getLogs({ address: this.quorum, topics: [topic, zeroPadValue(toBeHex(setId), 32)], fromBlock: 0, toBlock: "latest" });
    if (logs.length === 0) throw new Error(`no SupervisorsChanged log for set ${setId}`);
    const members = [...(QUORUM.parseLog(logs[0])!.args.supervisors as string[])];
    this.members.set(setId, members);
    return members;
  }
}

/** The addresses CheckpointFinalized's `signers` bitmap names among a set's `members`. */
export function signersOf(members: readonly string[], bits: bigint): string[] {
  return members.filter((_, i) => (bits >> BigInt(i)) & 1n);
}

/** `quorum.lastFinal()`'s record count, read fresh (no cache). */
export async function lastFinal(quorum: SupervisorQuorum): Promise<bigint> {
  return BigInt(await quorum.lastFinal());
}

/** The quorum's last final checkpoint: its count from the contract, head and digest from its event. */
export async function finalCheckpoint(quorum: SupervisorQuorum): Promise<{ recordCount: bigint; chainHead: string; stateDigest: string }> {
  const recordCount = await lastFinal(quorum);
  const e = (await quorum.queryFilter(quorum.filters.CheckpointFinalized(recordCount))).at(-1);
  if (e === undefined) return { recordCount, chainHead: ZeroHash, stateDigest: ZeroHash };
  return { recordCount, chainHead: e.args.chainHead, stateDigest: e.args.stateDigest };
}

/**
 * The ledger's chain head after record `count` as its own logs and storage say: the head it
 * marked there, else the head its batch (BatchRecorded) or settlement (Settled) ending at that
 * record announced. Undefined if no such mark or log (a count inside a batch).
 */
export async function ledgerHeadAt(ledger: PrepaidLedger, count: bigint): Promise<string | undefined> {
  const marked = await ledger.markedHead(count);
  if (marked !== ZeroHash) return marked;
  for (const e of await ledger.queryFilter(ledger.filters.BatchRecorded())) {
    if (e.args.firstRecordIndex + e.args.count - 1n === count) return e.args.chainHead;
  }
  for (const e of await ledger.queryFilter(ledger.filters.Settled())) {
    if (e.args.recordIndex === count) return e.args.chainHead;
  }
  return undefined;
}

/** Polls `condition` every `everyMs` until it holds; throws naming `what` after `timeoutMs`. */
export async function until(condition: () => Promise<boolean>, what: string, timeoutMs: number, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
