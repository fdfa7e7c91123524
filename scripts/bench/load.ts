/**
 * Load on an imperfect network: 50 merchants uploading concurrently for a bounded time, 4
 * supervisor processes confirming (3 of 4), and `prepaid sync --follow` indexing — all of them
 * talking to anvil through the seeded fault-injecting JSON-RPC proxy (test/helpers/fault-proxy.ts),
 * once with no faults and once at a set fault rate, each phase on a fresh chain.
 *
 * Every merchant follows the Uploader's retry contract: an error marked `retryable` is answered by
 * calling `upload()` again with the same records. The phase then checks, against the node itself
 * (not through the proxy): every record the uploaders were told landed is on chain exactly once,
 * no other record is, and once the follower caught up, the index equals the contract (every
 * merchant's books, record count and hash-chain head). A phase that fails a check throws.
 *
 * Printed: records/s, retries by error code, faults injected by kind, follower lag (blocks behind
 * the head while loaded, and seconds to catch up after), and confirmation latency p50/p99 (from
 * `upload()` resolving to `quorum.lastFinal()` covering its last record).
 *
 * `BENCH_LOAD_SECONDS` (default 30) sets each phase's upload time; `BENCH_LOAD_MERCHANTS`
 * (default 50) the merchants; `BENCH_LOAD_FAULT_RATE` (default 0.03) the share of JSON-RPC
 * requests that get a fault in the faulty phase.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import { ContractFactory, HDNodeWallet, JsonRpcProvider, Wallet, id, type Signer } from "ethers";
import { artifacts } from "hardhat";

import { RecordKind, publicKeyOf, type RecordDetails } from "../../src/crypto/index.js";
import { isError } from "../../src/errors.js";
import { IndexQueries } from "../../src/indexer/queries.js";
import { openIndex } from "../../src/indexer/open.js";
import { Uploader } from "../../src/upload/uploader.js";
import { FAULT_KINDS, startFaultProxy, type FaultKind } from "../../test/helpers/fault-proxy.js";
import { startAnvil } from "../../test/helpers/processes.js";
import { DEV_MNEMONIC, FIRST_SUPERVISOR_ACCOUNT, PROVIDER_OPTIONS, devWallet, startSupervisors, type Deployment } from "../lib/supervision-network.js";
import { REGULATOR_KEY, prng } from "./workload.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Records per `upload()` call; the uploader sends them as one batch. */
const RECORDS_PER_CALL = 40;
const CARDS_PER_MERCHANT = 20;
const OPENING = 500_000n;
/** A retryable error is retried this many times before the phase gives up on that merchant. */
const MAX_RETRIES = 30;

export interface LoadPhase {
  name: string;
  faultRate: number;
  merchants: number;
  seconds: number;
  records: number;
  recordsPerSecond: number;
  /** upload() (and Uploader.open()) calls that threw a retryable error and were called again, by error code. */
  retries: Record<string, number>;
  faults: Record<FaultKind, number>;
  requests: number;
  /** Blocks the follower's index was behind the head while loaded (sampled every 500 ms). */
  lagBlocks: { mean: number; max: number };
  /** Seconds after the last upload until the index held every record. */
  catchUpSeconds: number;
  confirmation: { samples: number; p50: number; p99: number; unconfirmed: number };
  onChainOnce: boolean;
  indexEqualsContract: boolean;
}

export interface LoadFigures {
  clientVersion: string;
  phases: LoadPhase[];
}

const quantile = (xs: number[], q: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};

/** The faulty phase's mix, scaled to `rate` in all: mostly lost and failed answers, a few hangs. */
function faultMix(rate: number): Partial<Record<FaultKind, number>> {
  const weights: Record<FaultKind, number> = { drop: 3, lose: 3, delay: 3, http502: 3, truncate: 2, hang: 1, unknownBlock: 1 };
  const total = Object.values(weights).reduce((a, b) => a + b, 0);
  return Object.fromEntries(FAULT_KINDS.map((k) => [k, (rate * weights[k]) / total]));
}

async function rpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = (await res.json()) as { result?: T; error?: { message: string } };
  if (body.error !== undefined) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

/** One merchant's stream of records: cards opened first, then consumptions and top-ups it can afford. */
class Stream {
  private n = 0;
  private readonly balances = new Map<string, bigint>();
  private readonly random: () => number;
  constructor(readonly merchantId: number) {
    this.random = prng(merchantId * 7919);
  }
  next(count: number): RecordDetails[] {
    return Array.from({ length: count }, () => {
      const n = this.n++;
      const account = id(`load merchant ${this.merchantId} card ${n % CARDS_PER_MERCHANT}`);
      const balance = this.balances.get(account) ?? 0n;
      const price = 2_800n + 100n * BigInt(Math.floor(this.random() * 553));
      const topUp = n < CARDS_PER_MERCHANT || price > balance;
      const amount = topUp ? OPENING : price;
      this.balances.set(account, topUp ? balance + amount : balance - amount);
      return {
        kind: topUp ? RecordKind.TopUp : RecordKind.Consume,
        merchantId: this.merchantId,
        account,
        amount,
        time: Math.floor(Date.now() / 1000),
        orderRef: `LOAD-${this.merchantId}-${String(n).padStart(7, "0")}`,
        memo: topUp ? "prepaid card" : "class",
      };
    });
  }
}

async function deploy(url: string, merchants: number) {
  const provider = new JsonRpcProvider(url, undefined, PROVIDER_OPTIONS);
  const [admin, regulator] = await Promise.all([0, 1].map((i) => provider.getSigner(i)));
  const [la, qa] = await Promise.all([artifacts.readArtifact("PrepaidLedger"), artifacts.readArtifact("SupervisorQuorum")]);
  const ledger = await new ContractFactory(la.abi, la.bytecode, admin).deploy(admin.address, regulator.address, 0, 3_600);
  await ledger.waitForDeployment();
  const fromBlock = (await ledger.deploymentTransaction()!.wait())!.blockNumber;
  const ledgerAddress = await ledger.getAddress();
  const supervisors = Array.from({ length: 4 }, (_, index) => {
    const w = devWallet(FIRST_SUPERVISOR_ACCOUNT + index);
    return { index, address: w.address, key: w.privateKey };
  });
  const quorum = await new ContractFactory(qa.abi, qa.bytecode, admin).deploy(admin.address, ledgerAddress, supervisors.map((s) => s.address), 3, 0, 3_600);
  await quorum.waitForDeployment();
  // Merchant recorders: keys of their own (signing locally, as a merchant's server does), funded
  // by dev account 2 and registered by the regulator.
  const funder = await provider.getSigner(2);
  const wallets = Array.from({ length: merchants }, (_, i) => HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${100 + i}`));
  const regulatorLedger = ledger.connect(regulator) as unknown as { registerMerchant: (id: number, a: string) => Promise<{ wait: () => Promise<unknown> }> };
  for (const [i, w] of wallets.entries()) {
    await (await funder.sendTransaction({ to: w.address, value: 10n ** 20n })).wait();
    await (await regulatorLedger.registerMerchant(i + 1, w.address)).wait();
  }
  provider.destroy();
  const deployment: Deployment = {
    ledger: ledger as never,
    quorum: quorum as never,
    ledgerAddress,
    quorumAddress: await quorum.getAddress(),
    fromBlock,
    supervisors,
    threshold: 3,
    merchants: [],
  };
  return { deployment, wallets };
}

/** Starts `prepaid sync --follow` (the regulator's key through the environment). */
function startFollower(rpcUrl: string, d: Deployment, db: string): ChildProcess {
  const args = ["bin/prepaid.mjs", "sync", "--rpc", rpcUrl, "--ledger", d.ledgerAddress, "--quorum", d.quorumAddress, "--from-block", String(d.fromBlock), "--db", db, "--follow", "--interval", "1", "--rpc-timeout", "5"];
  return spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, PREPAID_REGULATOR_KEY: REGULATOR_KEY } });
}

async function runPhase(name: string, faultRate: number, merchants: number, seconds: number): Promise<LoadPhase & { clientVersion: string }> {
  // 400 recent states (not plain --prune-history, which keeps only the head's: a read at
  // "latest" then fails whenever a block lands between the node's choosing it and serving it).
  const node = await startAnvil(["--accounts", "20", "--prune-history=400"]);
  const dir = mkdtempSync(join(tmpdir(), "prepaid-load-"));
  const proxy = await startFaultProxy({ target: node.url, seed: 20261202, delayMs: 800, hangMs: 30_000 });
  const stops: (() => Promise<void>)[] = [async () => proxy.stop(), async () => node.stop()];
  try {
    const clientVersion = await rpc<string>(node.url, "web3_clientVersion");
    const { deployment, wallets } = await deploy(node.url, merchants);
    const supervisors = await startSupervisors(deployment, { rpc: proxy.url, stateRoot: join(dir, "supervisors"), every: 1_000, intervalMs: 1_000, rpcTimeoutMs: 5_000 });
    stops.unshift(async () => void (await Promise.all(supervisors.map((s) => s.stop()))));
    const db = join(dir, "index.sqlite");
    const follower = startFollower(proxy.url, deployment, db);
    let followerErr = "";
    follower.stderr!.on("data", (d: Buffer) => (followerErr = (followerErr + d.toString()).slice(-4_000)));
    stops.unshift(async () => {
      if (follower.exitCode === null) {
        follower.kill("SIGTERM");
        await new Promise((r) => follower.once("exit", r));
      }
    });

    proxy.setRates(faultMix(faultRate));
    const providers: JsonRpcProvider[] = [];
    const retries: Record<string, number> = {};
    /** The retry contract: a `retryable` error is answered by calling again (with the same records). */
    const retrying = async <T>(call: () => Promise<T>): Promise<T> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await call();
        } catch (e) {
          if (!isError(e) || !e.retryable || attempt >= MAX_RETRIES) throw e;
          retries[e.code] = (retries[e.code] ?? 0) + 1;
          await sleep(100 * Math.min(attempt + 1, 10));
        }
      }
    };
    const uploaders = await Promise.all(
      wallets.map((w, i) => {
        const provider = new JsonRpcProvider(proxy.url, 31337, PROVIDER_OPTIONS);
        providers.push(provider);
        const config = { ledger: deployment.ledgerAddress, merchantId: i + 1, regulatorPublicKey: publicKeyOf(REGULATOR_KEY), journalPath: join(dir, `journal-${i + 1}.jsonl`), rpcTimeoutMs: 5_000 };
        return retrying(() => Uploader.open(config, new Wallet(w.privateKey, provider) as Signer));
      }),
    );
    stops.unshift(async () => {
      uploaders.forEach((u) => u.close());
      providers.forEach((p) => p.destroy());
    });

    const direct = new JsonRpcProvider(node.url, 31337, PROVIDER_OPTIONS);
    stops.unshift(async () => direct.destroy());
    const quorum = deployment.quorum.connect(direct) as unknown as { lastFinal: () => Promise<[bigint, string]> };
    const reported = new Map<number, string[]>();
    const samples: { t: number; index: bigint; latency?: number }[] = [];
    const started = Date.now();
    const deadline = started + seconds * 1_000;
    let loaded = true;

    // Follower lag and confirmations, sampled while loaded.
    const lags: number[] = [];
    const watch = (async () => {
      while (loaded || samples.some((s) => s.latency === undefined)) {
        const read = await Promise.all([rpc<string>(node.url, "eth_blockNumber"), quorum.lastFinal()]).catch(() => undefined);
        if (read === undefined) {
          await sleep(200); // the node is busy; this watch is not what the bench measures
          continue;
        }
        const [head, final] = read;
        const now = Date.now();
        for (const s of samples) if (s.latency === undefined && final[0] >= s.index) s.latency = (now - s.t) / 1000;
        if (loaded) {
          const settled = indexedBlock(db);
          if (settled !== undefined) lags.push(Number(head) - settled);
        }
        if (!loaded && now > deadline + 60_000) break;
        await sleep(200);
      }
    })();

    await Promise.all(
      uploaders.map(async (u, i) => {
        const stream = new Stream(i + 1);
        const mine: string[] = [];
        reported.set(i + 1, mine);
        while (Date.now() < deadline) {
          const details = stream.next(RECORDS_PER_CALL);
          const records = await retrying(() => u.upload(details));
          for (const r of records) mine.push(r.commitment);
          if (mine.length % (RECORDS_PER_CALL * 5) === 0) samples.push({ t: Date.now(), index: records[records.length - 1].recordIndex });
        }
      }),
    );
    const uploadSeconds = (Date.now() - started) / 1000;
    const records = [...reported.values()].reduce((n, c) => n + c.length, 0);
    loaded = false;
    const faults = { ...proxy.counts };
    const requests = proxy.stats.requests;
    proxy.setRates({});

    // Exactly once, read from the node itself.
    const onChain = await recordedCommitments(node.url, deployment.ledgerAddress, deployment.fromBlock);
    const expected = new Set<string>();
    let onChainOnce = true;
    for (const list of reported.values()) for (const c of list) expected.add(c.toLowerCase());
    if (expected.size !== records) onChainOnce = false;
    for (const [c, n] of onChain) if (n !== 1 || !expected.has(c)) onChainOnce = false;
    if (onChain.size !== expected.size) onChainOnce = false;

    // The follower catches up; then the index must equal the contract.
    const caughtUpAt = Date.now();
    const ledger = deployment.ledger.connect(direct) as unknown as {
      chainHead: () => Promise<[bigint, string]>;
      merchantBooks: (id: number) => Promise<{ status: bigint; nextSequence: bigint; recordCount: bigint; toppedUp: bigint; consumed: bigint; refunded: bigint }>;
    };
    const [count, head] = await ledger.chainHead();
    let info: ReturnType<IndexQueries["info"]> | undefined;
    while (Date.now() - caughtUpAt < 120_000) {
      info = readInfo(db);
      if (info !== undefined && BigInt(info.recordCount) === count) break;
      await sleep(250);
    }
    const catchUpSeconds = (Date.now() - caughtUpAt) / 1000;
    const differences: string[] = [];
    if (info === undefined) differences.push("the index cannot be read");
    else {
      if (BigInt(info.recordCount) !== count) differences.push(`records: index ${info.recordCount}, contract ${count}`);
      if (info.chainHead.toLowerCase() !== head.toLowerCase()) differences.push(`chain head: index ${info.chainHead}, contract ${head}`);
      if (info.reorg != null) differences.push(`index marked by a reorg: ${JSON.stringify(info.reorg)}`);
      const handle = openIndex(db, { mustExist: true, readOnly: true });
      try {
        for (const m of new IndexQueries(handle).merchants()) {
          const b = await ledger.merchantBooks(m.merchantId);
          const index = [m.recordCount, m.nextSequence, m.toppedUp, m.consumed].map(String).join("/");
          const chain = [b.recordCount, b.nextSequence, b.toppedUp, b.consumed].map(String).join("/");
          if (index !== chain) differences.push(`merchant ${m.merchantId} records/next sequence/topped up/consumed: index ${index}, contract ${chain}`);
        }
      } finally {
        handle.close();
      }
    }
    const indexEqualsContract = differences.length === 0;
    await watch;
    const latencies = samples.filter((s) => s.latency !== undefined).map((s) => s.latency!);
    const phase: LoadPhase & { clientVersion: string } = {
      clientVersion,
      name,
      faultRate,
      merchants,
      seconds: uploadSeconds,
      records,
      recordsPerSecond: records / uploadSeconds,
      retries,
      faults,
      requests,
      lagBlocks: { mean: lags.length === 0 ? NaN : lags.reduce((a, b) => a + b, 0) / lags.length, max: lags.length === 0 ? NaN : Math.max(...lags) },
      catchUpSeconds,
      confirmation: { samples: samples.length, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), unconfirmed: samples.length - latencies.length },
      onChainOnce,
      indexEqualsContract,
    };
    if (!onChainOnce || !indexEqualsContract) {
      throw new Error(`load phase "${name}" failed its checks: ${JSON.stringify(phase)}\n${differences.join("\n")}\nfollower: ${followerErr}`);
    }
    return phase;
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

function readInfo(db: string) {
  try {
    const handle = openIndex(db, { mustExist: true, readOnly: true });
    try {
      return new IndexQueries(handle).info();
    } finally {
      handle.close();
    }
  } catch {
    return undefined;
  }
}

const indexedBlock = (db: string): number | undefined => readInfo(db)?.settledBlock;

/** Every Recorded log of the ledger, counted by commitment (topic 3), read from the node directly. */
async function recordedCommitments(url: string, ledger: string, fromBlock: number): Promise<Map<string, number>> {
  const topic = id("Recorded(bytes32,uint32,bytes32)");
  const head = Number(await rpc<string>(url, "eth_blockNumber"));
  const out = new Map<string, number>();
  for (let from = fromBlock; from <= head; from += 2_000) {
    const to = Math.min(head, from + 1_999);
    const logs = await rpc<{ topics: string[] }[]>(url, "eth_getLogs", [{ address: ledger, topics: [topic], fromBlock: "0x" + from.toString(16), toBlock: "0x" + to.toString(16) }]);
    for (const l of logs) out.set(l.topics[3].toLowerCase(), (out.get(l.topics[3].toLowerCase()) ?? 0) + 1);
  }
  return out;
}

export async function benchLoad(): Promise<LoadFigures> {
  const seconds = Number(process.env.BENCH_LOAD_SECONDS ?? 30);
  const merchants = Number(process.env.BENCH_LOAD_MERCHANTS ?? 50);
  const rate = Number(process.env.BENCH_LOAD_FAULT_RATE ?? 0.03);
  const clean = await runPhase("no faults", 0, merchants, seconds);
  const faulty = await runPhase(`faults ${(rate * 100).toFixed(1)} %`, rate, merchants, seconds);
  return { clientVersion: clean.clientVersion, phases: [clean, faulty] };
}

const f0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "—");
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "—");
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "—");

export function formatLoad(r: LoadFigures): string {
  const first = r.phases[0];
  const lines = [
    `load: ${first.merchants} merchants uploading at once (${RECORDS_PER_CALL} records a call) for ${first.seconds.toFixed(0)} s a phase, 4 supervisor processes (3 of 4),`,
    `  \`prepaid sync --follow\`, all through the fault proxy; each phase on a fresh ${r.clientVersion}`,
  ];
  for (const p of r.phases) {
    const faults = Object.entries(p.faults).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
    const retries = Object.entries(p.retries).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
    lines.push(
      `  ${p.name}: ${f0(p.records)} records in ${p.seconds.toFixed(1)} s = ${f0(p.recordsPerSecond)} records/s`,
      `    faults injected: ${faults} (of ${f0(p.requests)} requests); upload() calls retried: ${retries}`,
      `    follower lag: mean ${f1(p.lagBlocks.mean)} blocks, max ${f0(p.lagBlocks.max)}; caught up ${f1(p.catchUpSeconds)} s after the last upload`,
      `    confirmation (upload() resolved → quorum final): p50 ${f2(p.confirmation.p50)} s, p99 ${f2(p.confirmation.p99)} s over ${p.confirmation.samples} sampled calls` +
        (p.confirmation.unconfirmed > 0 ? `, ${p.confirmation.unconfirmed} not confirmed within 60 s` : ""),
      `    every record on chain exactly once: ${p.onChainOnce ? "yes" : "NO"}; index equals the contract: ${p.indexEqualsContract ? "yes" : "NO"}`,
    );
  }
  const [clean, faulty] = r.phases;
  if (clean !== undefined && faulty !== undefined) {
    lines.push(`  records/s with faults ÷ without, same run: ${f2(faulty.recordsPerSecond / clean.recordsPerSecond)}`);
  }
  return lines.join("\n");
}
