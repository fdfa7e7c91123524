/**
 * The regulator's indexer at scale: a ledger of 1,000,000 records on a local anvil, synced into
 * SQLite by the indexer in a process of its own (records/s, peak memory), then the dashboard's
 * response times over that index.
 *
 * The ledger is real: 50 merchants, each with its own recorder key, upload batches the contract
 * books (every card opened by a top-up, then consumptions, top-ups and refunds that never
 * overdraw), every record sealed for the bench regulator's key with the batch envelope. So the
 * sync decrypts, re-links and re-commits every record, as it would in production. Generating it
 * is not what is measured: batches are sealed here and sent as raw transactions from all
 * recorders at once with explicit nonces and gas limits, then the chain is checked to hold every
 * record.
 *
 * The sync runs first as `prepaid sync` does by default. If that fails, the bench prints why and
 * takes the figures with `--max-block-range 2` (about the pager's own page size here) instead.
 *
 *   BENCH_INDEXER_RECORDS=<n>          records in the ledger (default 1,000,000), for a quick try
 *   BENCH_INDEXER_CARDS=<n>            cards in the ledger (default one per 10 records); e.g.
 *                                      3,000,000 records over 1,000,000 cards for a city's size
 *   BENCH_INDEXER_MAX_BLOCK_RANGE=<n>  sync with `--max-block-range n` only
 *   BENCH_INDEXER_ACCOUNT_CACHE=<n>    the syncs' `accountCache` (cards' books in memory between
 *                                      pages; default the indexer's own, 20,000)
 *   BENCH_INDEXER_CPU_PROF=<dir>       write the sync's, the floor's and verify's CPU profiles there (node --cpu-prof)
 *
 * After the sync, the floor any reader pays and the RegulatorReader's verify read the same ledger,
 * each in a process of its own (scripts/bench/readers.ts): verify ÷ floor and sync ÷ verify.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";

import { ContractFactory, Interface, JsonRpcProvider, Wallet, id } from "ethers";
import { artifacts } from "hardhat";

import { RecordKind, publicKeyOf, type RecordDetails } from "../../src/crypto/index.js";
import { serveDashboard } from "../../src/dashboard/server.js";
import { openIndex } from "../../src/indexer/open.js";
import { PREPAID_LEDGER_ABI } from "../../src/ledger/abi.js";
import { encodeRecordBatchCall } from "../../src/ledger/codec.js";
import type { JsonRpcLike } from "../../src/regulator/logs.js";
import { httpJsonRpc } from "../../src/rpc.js";
import { sealBatch } from "../../src/upload/sealing.js";
import { GAS_BOUND, MAX_TX_GAS, gasBound } from "../../src/upload/uploader.js";
import { startAnvil, startTs, type Running } from "../../test/helpers/processes.js";
import { benchPostgres, formatBackends, type BackendsFigures } from "./backends.js";
import type { WorkerResult } from "./indexer-worker.js";
import { formatReaders, timeReaders, type ReadersFigures } from "./readers.js";
import { MEMOS, REGULATOR_KEY, START_TIME, prng } from "./workload.js";

export const DEFAULT_RECORDS = 1_000_000;
const MERCHANTS = 50;
/** Records per card on average: a card is opened by a top-up, then used about nine times. */
const RECORDS_PER_CARD = 10;
/** Records per batch transaction at most; fewer when the batch's gas bound would pass 2^24. */
const BATCH_RECORDS = 1_000;
/** Batch transactions in flight at once, over all recorders. */
const IN_FLIGHT = 6;
/** Batch transactions sent and not yet mined, at most. */
const MAX_QUEUED = 300;
/** Requests per dashboard route: warm-ups (not counted), then timed ones. */
const WARMUPS = 3;
const REQUESTS = 30;
/** anvil's block gas limit: room for several batch transactions (~15M gas each) in one block. */
const BLOCK_GAS_LIMIT = 150_000_000;
/**
 * `--max-block-range` for the figures when the default configuration fails: the generated blocks
 * hold one or two batches (~900–1,800 records), so 2 blocks is about the pager's own aim of
 * 2,000 logs a request.
 */
const FALLBACK_BLOCK_RANGE = 2;
/**
 * gasBound's terms, with margin: records here are ~150 bytes (160 assumed), the envelope under
 * 256 bytes, and 50,000 spare per batch.
 */
const RECORD_GAS = GAS_BOUND.perRecord + GAS_BOUND.perByte * 160;
const TOP_UP_GAS = GAS_BOUND.topUp;
const BATCH_GAS = GAS_BOUND.perBatch + GAS_BOUND.perByte * 256 + 50_000;

const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);

export interface IndexerBenchOptions {
  /** Records in the ledger; default `BENCH_INDEXER_RECORDS` or 1,000,000. */
  records?: number;
  /** Cards in the ledger; default `BENCH_INDEXER_CARDS` or one per {@link RECORDS_PER_CARD} records. */
  cards?: number;
  /** The sync's `--max-block-range`; default `BENCH_INDEXER_MAX_BLOCK_RANGE`, else the indexer's own default. */
  maxBlockRange?: number;
}

/** One dashboard route, timed over {@link REQUESTS} sequential requests after {@link WARMUPS}. */
export interface RouteTiming {
  label: string;
  path: string;
  /** The very first request to the route (the first warm-up). */
  firstMs: number;
  medianMs: number;
  p95Ms: number;
  maxMs: number;
  bytes: number;
}

/** What {@link benchIndexer} measured, with the targets computed from it. */
export interface IndexerFigures {
  cores: number;
  clientVersion: string;
  workload: {
    merchants: number;
    cards: number;
    records: number;
    topUps: number;
    consumptions: number;
    refunds: number;
    transactions: number;
    blocks: number;
    /** Gas of the largest block holding one batch transaction alone (its transaction's gas). */
    maxTransactionGas: number;
    gasPerRecord: number;
    /** Generation: sealing, signing, sending, mined and checked on chain (not a target). */
    seconds: number;
  };
  sync: WorkerResult & {
    indexBytes: number;
    /** `--max-block-range` the figures were taken with; undefined: the indexer's default. */
    maxBlockRange: number | undefined;
    /** Why the sync with the default configuration failed, if it did (maxBlockRange is then the fallback). */
    defaultFailure: string | undefined;
  };
  /** The floor any reader pays and verify's rate over the same ledger, with the ratios to the sync. */
  readers: ReadersFigures;
  /** The same ledger synced into PostgreSQL, and its dashboard (scripts/bench/backends.ts). */
  backends: BackendsFigures;
  dashboard: RouteTiming[];
  targets: { recordsPerSecond: number; maxRssMb: number; overviewMs: number };
  met: { recordsPerSecond: boolean; maxRssMb: boolean; overview: boolean };
}

/** Records wanted: the option, else `BENCH_INDEXER_RECORDS`, else 1,000,000. */
function recordsWanted(options: IndexerBenchOptions): number {
  const n = options.records ?? Number(process.env.BENCH_INDEXER_RECORDS ?? DEFAULT_RECORDS);
  if (!Number.isInteger(n) || n < MERCHANTS * RECORDS_PER_CARD) {
    throw new Error(`the indexer bench needs a whole number of records, at least ${MERCHANTS * RECORDS_PER_CARD}; got ${n}`);
  }
  return n;
}

/** Cards wanted: the option, else `BENCH_INDEXER_CARDS`, else one per {@link RECORDS_PER_CARD} records. */
function cardsWanted(options: IndexerBenchOptions, records: number): number {
  const text = process.env.BENCH_INDEXER_CARDS;
  const n = options.cards ?? (text === undefined || text === "" ? Math.ceil(records / RECORDS_PER_CARD) : Number(text));
  if (!Number.isInteger(n) || n < MERCHANTS || n > records) {
    throw new Error(`the indexer bench needs a whole number of cards from ${MERCHANTS} to the record count (${records}); got ${n}`);
  }
  return n;
}

function blockRangeWanted(): number | undefined {
  const text = process.env.BENCH_INDEXER_MAX_BLOCK_RANGE;
  if (text === undefined || text === "") return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_INDEXER_MAX_BLOCK_RANGE must be a whole number >= 1; got "${text}"`);
  return n;
}

/**
 * One merchant's stream of records, drawn from a fixed seed: card openings spread evenly over the
 * stream, the rest 8:1:1 consumptions (¥28–¥580), top-ups (¥500–¥2,000) and refunds of part of a
 * balance. A consumption or refund larger than the card's balance is cut to it, and one on an
 * empty card becomes a top-up, so the ledger never refuses a record. One opening in twenty is
 * ¥6,000, above the ¥5,000 per-card limit, so the risk rules have something to find.
 */
class MerchantStream {
  readonly recorder: Wallet;
  sequence = 1n;
  nonce = 0;
  emitted = 0;
  readonly counts = { topUps: 0, consumptions: 0, refunds: 0 };
  private readonly random: () => number;
  private readonly balances: number[] = [];
  private readonly accounts: string[] = [];

  constructor(
    readonly merchantId: number,
    readonly records: number,
    readonly cards: number,
  ) {
    this.random = prng(0x1d3e + merchantId);
    this.recorder = new Wallet(id(`bench:indexer:recorder:${merchantId}`));
  }

  get done(): boolean {
    return this.emitted >= this.records;
  }

  /**
   * The next batch: up to {@link BATCH_RECORDS} records whose gas bound (the uploader's
   * {@link gasBound}, which the batch is sent with) stays under the 2^24 cap. A record is drawn
   * only while a top-up, the dearest kind, would still fit.
   */
  nextBatch(): RecordDetails[] {
    const out: RecordDetails[] = [];
    let gas = BATCH_GAS;
    while (!this.done && out.length < BATCH_RECORDS && gas + RECORD_GAS + TOP_UP_GAS < Number(MAX_TX_GAS)) {
      const d = this.draw(this.opensNext());
      gas += RECORD_GAS + (d.kind === RecordKind.TopUp ? TOP_UP_GAS : 0);
      out.push(d);
    }
    return out;
  }

  /** Whether the next record opens a card: openings are spread evenly over the stream. */
  private opensNext(): boolean {
    const opened = this.accounts.length;
    if (opened === 0) return true;
    if (opened >= this.cards) return false;
    return this.random() < (this.cards - opened) / (this.records - this.emitted);
  }

  private draw(open: boolean): RecordDetails {
    const n = this.emitted++;
    const r = this.random;
    let card: number;
    let kind: RecordDetails["kind"];
    let amount: number;
    if (open) {
      card = this.accounts.length;
      this.accounts.push(id(`CARD-${this.merchantId}-${String(card).padStart(8, "0")}`));
      this.balances.push(0);
      kind = RecordKind.TopUp;
      amount = r() < 0.05 ? 600_000 : 50_000 * (1 + Math.floor(r() * 6)); // ¥500–¥3,000, or ¥6,000
    } else {
      card = Math.floor(r() * this.accounts.length);
      const balance = this.balances[card]!;
      const p = r();
      if (p < 0.8 && balance > 0) {
        kind = RecordKind.Consume;
        amount = Math.min(balance, 2_800 + 100 * Math.floor(r() * 553));
      } else if (p >= 0.9 && balance > 0) {
        kind = RecordKind.Refund;
        amount = Math.min(balance, 1_000 * (1 + Math.floor(r() * 100)));
      } else {
        kind = RecordKind.TopUp;
        amount = 50_000 * (1 + Math.floor(r() * 4));
      }
    }
    this.balances[card]! += kind === RecordKind.TopUp ? amount : -amount;
    if (kind === RecordKind.TopUp) this.counts.topUps++;
    else if (kind === RecordKind.Consume) this.counts.consumptions++;
    else this.counts.refunds++;
    return {
      kind,
      merchantId: this.merchantId,
      account: this.accounts[card]!,
      amount: BigInt(amount),
      time: START_TIME + 37 * n,
      orderRef: `ORD-2026-11-${String(this.merchantId).padStart(3, "0")}${String(n).padStart(6, "0")}`,
      memo: MEMOS[n % MEMOS.length]!,
    };
  }
}

const hex = (n: number | bigint): string => "0x" + n.toString(16);

/** Deploys the ledger and registers the merchants (each with its recorder), funded for gas. */
async function deploy(url: string, streams: MerchantStream[]): Promise<string> {
  // As in nodes.ts: poll receipts every 20 ms, no request batching, no response cache.
  const options = { staticNetwork: true, pollingInterval: 20, batchMaxCount: 1, cacheTimeout: -1 } as const;
  const provider = new JsonRpcProvider(url, undefined, options);
  try {
    const [admin, regulator] = await Promise.all([provider.getSigner(0), provider.getSigner(1)]);
    const artifact = await artifacts.readArtifact("PrepaidLedger");
    const deployed = await new ContractFactory(artifact.abi, artifact.bytecode, admin).deploy(
      await admin.getAddress(),
      await regulator.getAddress(),
      0,
      3_600,
    );
    await deployed.waitForDeployment();
    const ledger = await deployed.getAddress();
    const sent = [];
    for (const s of streams) {
      await provider.send("anvil_setBalance", [s.recorder.address, hex(10n ** 21n)]);
      sent.push(
        await regulator.sendTransaction({
          to: ledger,
          data: ledgerInterface.encodeFunctionData("registerMerchant", [s.merchantId, s.recorder.address]),
        }),
      );
    }
    for (const tx of sent) {
      const receipt = await tx.wait();
      if (receipt?.status !== 1) throw new Error(`registering a merchant failed: ${tx.hash}`);
    }
    return ledger;
  } finally {
    provider.destroy();
  }
}

/**
 * Uploads every stream's records: batches sealed here, one merchant after another (round-robin,
 * so each recorder's nonces arrive in order), signed with explicit nonce and the uploader's gas
 * bound, at most {@link IN_FLIGHT} in flight. Then waits until every recorder's nonce is used and
 * checks the contract booked every record and every batch (a reverted batch would leave its
 * merchant's sequence and record count short).
 */
async function generate(rpc: JsonRpcLike, ledger: string, streams: MerchantStream[]): Promise<number> {
  const chainId = BigInt((await rpc.send("eth_chainId", [])) as string);
  const recipients = [{ publicKey: publicKeyOf(REGULATOR_KEY), role: "regulator" as const }];
  const inFlight = new Set<Promise<unknown>>();
  let transactions = 0;
  // Keep at most MAX_QUEUED sent and not yet mined (counted by the recorders' nonces), so anvil's
  // pool never holds thousands; give up if nothing is mined for a minute.
  const mined = async () => {
    const used = await Promise.all(streams.map((s) => rpc.send("eth_getTransactionCount", [s.recorder.address, "latest"])));
    return used.reduce((n: number, u) => n + Number(u), 0);
  };
  const drain = async () => {
    let last = -1;
    let since = Date.now();
    for (let done = await mined(); transactions - done > MAX_QUEUED; done = await mined()) {
      if (done !== last) [last, since] = [done, Date.now()];
      else if (Date.now() - since > 60_000) throw new Error(`anvil stopped mining: ${done} of ${transactions} batch transactions mined`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  for (let active = streams; active.length > 0; active = active.filter((s) => !s.done)) {
    for (const s of active) {
      const details = s.nextBatch();
      const sealed = await sealBatch(details, recipients);
      const gasLimit = gasBound(sealed.envelope, sealed.packed);
      if (gasLimit >= MAX_TX_GAS) throw new Error(`a batch of ${details.length} records may pass the 2^24 gas cap`);
      const raw = await s.recorder.signTransaction({
        type: 2,
        chainId,
        nonce: s.nonce++,
        to: ledger,
        // ethers' hexlify takes bytes as they are (see calldata() in src/upload/uploader.ts)
        data: encodeRecordBatchCall(s.merchantId, s.sequence++, sealed.envelope, sealed.packed) as unknown as string,
        gasLimit,
        maxFeePerGas: 10n ** 10n,
        maxPriorityFeePerGas: 10n ** 9n,
      });
      const sending = rpc.send("eth_sendRawTransaction", [raw]).finally(() => inFlight.delete(sending));
      inFlight.add(sending);
      transactions++;
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
      if (transactions % 50 === 0) await drain();
    }
  }
  await Promise.all(inFlight);
  // A large ledger leaves a long queue behind the last send (every recorder's): wait while anvil
  // keeps mining it, and give up only when no block has come for a minute.
  let height = -1;
  let since = Date.now();
  for (const s of streams) {
    for (;;) {
      const used = Number(await rpc.send("eth_getTransactionCount", [s.recorder.address, "latest"]));
      if (used >= s.nonce) break;
      const block = Number(await rpc.send("eth_blockNumber", []));
      if (block !== height) [height, since] = [block, Date.now()];
      else if (Date.now() - since > 60_000) throw new Error(`merchant ${s.merchantId}: not every batch transaction was mined (${used} of ${s.nonce}; no new block for a minute)`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const call = async (fn: string, args: unknown[]) =>
    ledgerInterface.decodeFunctionResult(
      fn,
      (await rpc.send("eth_call", [{ to: ledger, data: ledgerInterface.encodeFunctionData(fn, args) }, "latest"])) as string,
    );
  const expected = streams.reduce((n, s) => n + s.records, 0);
  const [count] = await call("chainHead", []);
  if (count !== BigInt(expected)) throw new Error(`the ledger holds ${count} records, ${expected} were sent`);
  for (const s of streams) {
    const [books] = await call("merchantBooks", [s.merchantId]);
    if (books.nextSequence !== s.sequence || books.recordCount !== BigInt(s.records) || books.accountCount !== BigInt(s.cards)) {
      throw new Error(`merchant ${s.merchantId}: the contract's books differ from what was sent`);
    }
  }
  return transactions;
}

/** The blocks after `after` (the generated ones): their count, their gas, and the gas of the largest one-transaction block. */
async function blockFigures(rpc: JsonRpcLike, after: number): Promise<{ blocks: number; gas: number; maxTransactionGas: number }> {
  const latest = Number(await rpc.send("eth_blockNumber", []));
  let gas = 0;
  let maxTransactionGas = 0;
  for (let n = after + 1; n <= latest; n += 32) {
    const numbers = Array.from({ length: Math.min(32, latest - n + 1) }, (_, i) => n + i);
    const blocks = (await Promise.all(numbers.map((b) => rpc.send("eth_getBlockByNumber", [hex(b), false])))) as {
      gasUsed: string;
      transactions: string[];
    }[];
    for (const b of blocks) {
      gas += Number(b.gasUsed);
      if (b.transactions.length === 1) maxTransactionGas = Math.max(maxTransactionGas, Number(b.gasUsed));
    }
  }
  return { blocks: latest - after, gas, maxTransactionGas };
}

/** The worker exited without a result; `summary` is its error and the error's root cause, on one line. */
class WorkerFailed extends Error {
  constructor(
    readonly summary: string,
    output: string,
  ) {
    super(`the indexer worker failed: ${summary}\n${output}`);
  }
}

/** Runs the sync worker; resolves with what it printed. Killed after `timeoutMs`. */
function runWorker(url: string, ledger: string, db: string, range: number | undefined, timeoutMs: number): Promise<WorkerResult> {
  return runScript<WorkerResult>("scripts/bench/indexer-worker.ts", [url, ledger, db, ...(range === undefined ? [] : [String(range)])], timeoutMs);
}

/**
 * Runs a bench worker script; resolves with the JSON of its last line. Killed after `timeoutMs`.
 * With `BENCH_INDEXER_CPU_PROF=<dir>`, the worker writes its CPU profile there.
 */
export async function runScript<T>(file: string, args: string[], timeoutMs: number): Promise<T> {
  const profile = process.env.BENCH_INDEXER_CPU_PROF;
  const env =
    profile === undefined
      ? {}
      : { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --cpu-prof --cpu-prof-dir=${profile}`.trim() };
  const worker: Running = startTs(file, args, env);
  const exited = new Promise<number | null>((resolve) => worker.process.once("exit", (code) => resolve(code)));
  const timer = setTimeout(() => worker.process.kill("SIGKILL"), timeoutMs);
  try {
    const code = await exited;
    const lines = worker.output().trim().split("\n");
    const last = lines.at(-1) ?? "";
    if (code !== 0 || !last.startsWith("{")) {
      const cause = lines.filter((l) => l.startsWith("caused by: ")).at(-1);
      throw new WorkerFailed(`exit ${code}: ${lines[0] ?? ""}${cause === undefined ? "" : `, ${cause}`}`, worker.output());
    }
    return JSON.parse(last) as T;
  } finally {
    clearTimeout(timer);
    await worker.stop();
  }
}

/** Times GETs of `path` on the dashboard: the first, then {@link REQUESTS} after {@link WARMUPS}. */
async function timeRoute(base: string, label: string, path: string): Promise<RouteTiming> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < WARMUPS + REQUESTS; i++) {
    const started = performance.now();
    const res = await fetch(base + path);
    const body = await res.text();
    times.push(performance.now() - started);
    if (res.status !== 200) throw new Error(`dashboard ${path}: HTTP ${res.status}: ${body.slice(0, 300)}`);
    bytes = Buffer.byteLength(body);
  }
  const timed = times.slice(WARMUPS).sort((a, b) => a - b);
  return {
    label,
    path,
    firstMs: times[0]!,
    medianMs: (timed[(timed.length - 1) >> 1]! + timed[timed.length >> 1]!) / 2,
    p95Ms: timed[Math.ceil(0.95 * timed.length) - 1]!,
    maxMs: timed.at(-1)!,
    bytes,
  };
}

/** The dashboard over the index: overview (page and API), the busiest merchant and card. */
async function timeDashboard(db: string, records: number): Promise<RouteTiming[]> {
  // The card with the most records: its page lists the longest history.
  const index = openIndex(db, { mustExist: true, readOnly: true });
  const busiest = index
    .prepare("SELECT merchant_id AS m, account AS a FROM accounts ORDER BY record_count DESC, merchant_id, account LIMIT 1")
    .get() as { m: number; a: string };
  index.close();
  const dashboard = await serveDashboard({ db });
  try {
    const overview = (await (await fetch(`${dashboard.url}/api/overview`)).json()) as { totals?: { records?: number } };
    if (overview.totals?.records !== records) {
      throw new Error(`the dashboard shows ${overview.totals?.records} records, not ${records}`);
    }
    return [
      await timeRoute(dashboard.url, "overview page", "/"),
      await timeRoute(dashboard.url, "overview API", "/api/overview"),
      await timeRoute(dashboard.url, "merchant page", `/merchants/${busiest.m}`),
      await timeRoute(dashboard.url, "account page (busiest card)", `/merchants/${busiest.m}/accounts/${busiest.a}`),
    ];
  } finally {
    await dashboard.close();
  }
}

/** Generates the ledger on a fresh anvil, syncs it in a worker, times the dashboard; cleans up. */
export async function benchIndexer(options: IndexerBenchOptions = {}): Promise<IndexerFigures> {
  const records = recordsWanted(options);
  const maxBlockRange = options.maxBlockRange ?? blockRangeWanted();
  const cards = cardsWanted(options, records);
  const perMerchant = Math.floor(records / MERCHANTS);
  const cardsPerMerchant = Math.floor(cards / MERCHANTS);
  const streams = Array.from(
    { length: MERCHANTS },
    (_, i) => new MerchantStream(i + 1, perMerchant + (i < records % MERCHANTS ? 1 : 0), cardsPerMerchant + (i < cards % MERCHANTS ? 1 : 0)),
  );
  const dir = mkdtempSync(join(tmpdir(), "prepaid-ledger-bench-indexer-"));
  // --quiet: anvil would print every transaction; the tx gas cap (EIP-7825) is enforced, so a
  // batch over 2^24 gas is refused rather than booked.
  const anvil = await startAnvil(["--quiet", "--gas-limit", String(BLOCK_GAS_LIMIT), "--enable-tx-gas-limit"]);
  try {
    const rpc = httpJsonRpc(anvil.url);
    const clientVersion = String(await rpc.send("web3_clientVersion", []));
    const ledger = await deploy(anvil.url, streams);
    const before = Number(await rpc.send("eth_blockNumber", []));
    const started = performance.now();
    const transactions = await generate(rpc, ledger, streams);
    const seconds = (performance.now() - started) / 1000;
    const chain = await blockFigures(rpc, before);

    // First as `prepaid sync` does by default. If that fails, the failure is printed and the
    // figures are taken with a bounded page size instead, so the rest of the bench still runs.
    let db = join(dir, "index.sqlite");
    let range = maxBlockRange;
    let defaultFailure: string | undefined;
    let sync: WorkerResult;
    const timeout = Math.max(600_000, records);
    try {
      sync = await runWorker(anvil.url, ledger, db, range, timeout);
    } catch (e) {
      if (range !== undefined || !(e instanceof WorkerFailed)) throw e;
      defaultFailure = e.summary;
      range = FALLBACK_BLOCK_RANGE;
      db = join(dir, `index-range-${range}.sqlite`);
      sync = await runWorker(anvil.url, ledger, db, range, timeout);
    }
    if (sync.records !== records || sync.verified !== records || sync.discrepancies !== 0 || sync.matchesContract !== true) {
      throw new Error(`the sync is not clean: ${JSON.stringify(sync)}`);
    }
    const readers = await timeReaders(runScript, anvil.url, ledger, range, sync, timeout);
    // The dashboard reads only the index: the node is stopped before it is timed (its core given back).
    const backends = await benchPostgres(
      async (pg) => {
        const r = await runWorker(anvil.url, ledger, pg, range, timeout);
        if (r.records !== records || r.verified !== records || r.discrepancies !== 0 || r.matchesContract !== true) {
          throw new Error(`the sync into PostgreSQL is not clean: ${JSON.stringify(r)}`);
        }
        return r;
      },
      (pg) => timeDashboard(pg, records),
      () => anvil.stop(),
    );
    const dashboard = await timeDashboard(db, records);

    const sum = (k: keyof MerchantStream["counts"]) => streams.reduce((n, s) => n + s.counts[k], 0);
    const targets = { recordsPerSecond: 20_000, maxRssMb: 500, overviewMs: 200 };
    const overview = dashboard.filter(isOverview);
    return {
      cores: availableParallelism(),
      clientVersion,
      workload: {
        merchants: MERCHANTS,
        cards: streams.reduce((n, s) => n + s.cards, 0),
        records,
        topUps: sum("topUps"),
        consumptions: sum("consumptions"),
        refunds: sum("refunds"),
        transactions,
        blocks: chain.blocks,
        maxTransactionGas: chain.maxTransactionGas,
        gasPerRecord: chain.gas / records,
        seconds,
      },
      sync: { ...sync, indexBytes: statSync(db).size, maxBlockRange: range, defaultFailure },
      readers,
      backends,
      dashboard,
      targets,
      met: {
        recordsPerSecond: sync.recordsPerSecond >= targets.recordsPerSecond,
        maxRssMb: sync.maxRssMb < targets.maxRssMb,
        overview: overview.every((r) => r.p95Ms < targets.overviewMs),
      },
    };
  } finally {
    await anvil.stop();
    rmSync(anvil.home, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The routes the overview target is about: the front page and its API. */
const isOverview = (r: RouteTiming): boolean => r.path === "/" || r.path === "/api/overview";

const int = (x: number): string => Math.round(x).toLocaleString("en-US");
const verdict = (ok: boolean): string => (ok ? "met" : "NOT met");

/** The figures as lines for the bench printout. */
export function formatIndexer(f: IndexerFigures): string {
  const w = f.workload;
  const s = f.sync;
  const route = (r: RouteTiming): string =>
    [
      r.label.padEnd(28),
      r.firstMs.toFixed(1).padStart(7),
      r.medianMs.toFixed(1).padStart(7),
      r.p95Ms.toFixed(1).padStart(7),
      r.maxMs.toFixed(1).padStart(7),
      int(r.bytes).padStart(9),
      isOverview(r) ? `  target p95 < ${f.targets.overviewMs} ms ${verdict(r.p95Ms < f.targets.overviewMs)}` : "",
    ].join("  ");
  return [
    `indexer: ${int(w.records)} records synced from anvil (${f.clientVersion}) into SQLite; ${f.cores} cores shared`,
    `ledger: ${w.merchants} merchants, ${int(w.cards)} cards; ${int(w.topUps)} top-ups (${int(w.cards)} opening a card), ` +
      `${int(w.consumptions)} consumptions, ${int(w.refunds)} refunds; every record encrypted for the regulator (batch envelope)`,
    `generation (not a target): ${w.seconds.toFixed(1)} s, ${int(w.records / w.seconds)} records/s: ${int(w.transactions)} batch ` +
      `transactions from ${w.merchants} recorders in ${int(w.blocks)} blocks, ${int(w.gasPerRecord)} gas/record, ` +
      `largest transaction ${int(w.maxTransactionGas)} gas (cap ${int(Number(MAX_TX_GAS))})`,
    ...(s.defaultFailure === undefined ? [] : [`sync with the default configuration FAILED (${s.defaultFailure})`]),
    `sync: a process of its own, prepaid sync's JSON-RPC client, ` +
      (s.maxBlockRange === undefined ? "the default configuration" : `--max-block-range ${s.maxBlockRange} (not the default)`) +
      "; every record decrypted and verified, " +
      `books equal to the contract's, ${int(s.discrepancies)} discrepancies, ${int(s.alerts)} risk alerts; ` +
      `${int(s.accountCache)} cards' books cached`,
    `  ${int(s.records)} records in ${s.seconds.toFixed(1)} s: ${int(s.recordsPerSecond)} records/s  ` +
      `target >= ${int(f.targets.recordsPerSecond)} ${verdict(f.met.recordsPerSecond)}`,
    `  peak memory (max RSS) ${int(s.maxRssMb)} MB  target < ${f.targets.maxRssMb} MB ${verdict(f.met.maxRssMb)}`,
    `  ${int(s.pages)} pages (largest ${int(s.largestPage)} records) committed in ${s.pagesSeconds.toFixed(1)} s, ` +
      `then ${(s.seconds - s.pagesSeconds).toFixed(1)} s comparing with the contract and evaluating risk rules; ` +
      `index file ${int(s.indexBytes / 2 ** 20)} MB`,
    ...formatReaders(f.readers, s),
    `dashboard over the ${int(w.records)}-record index: ${WARMUPS} warm-ups, then ${REQUESTS} sequential requests per route (ms)`,
    `${"route".padEnd(28)}    first   median      p95      max      bytes`,
    ...f.dashboard.map(route),
    ...formatBackends(f.backends, { sync: s, dashboard: f.dashboard }),
  ]
    .map((line) => line.trimEnd())
    .join("\n");
}
