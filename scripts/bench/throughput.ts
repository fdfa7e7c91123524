/**
 * Records per second, end to end, on the in-process network: uploaded through the Uploader
 * (seal, pack, journal with fsync, send, mined) and verified by the RegulatorReader (eth_getLogs,
 * decrypt, commitments, hash chain, books). Every figure comes from a run whose result was
 * checked on chain, so a broken run throws instead of printing a rate.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";

import { BrowserProvider, toQuantity, type BaseWallet, type Provider, type Signer } from "ethers";
import { network } from "hardhat";

import { RecordKind, type RecordDetails } from "../../src/crypto/index.js";
import type { JsonRpcLike } from "../../src/regulator/logs.js";
import { RegulatorReader } from "../../src/regulator/reader.js";
import { bytesToHex } from "../../src/crypto/hash.js";
import { encodeRecordBatchCall } from "../../src/ledger/codec.js";
import { signBatchTransaction } from "../../src/upload/signing.js";
import { Uploader, type UploaderConfigInput } from "../../src/upload/uploader.js";
import type { PrepaidLedger } from "../../types/ethers-contracts/index.js";
import { devWallet } from "../lib/supervision-network.js";
import { formatSigning, timeSigning, type SigningFigures } from "./signing.js";
import { CARDS, MERCHANT, OPENING, RECORDS, REGULATOR_KEY, benchUploader, consumptions, details } from "./workload.js";

/** One upload configuration, timed over `records` records. */
export interface UploadCase {
  label: string;
  batchSize: number;
  preflight: boolean;
  mode: "batch" | "single";
  records: number;
  /** Transactions that carried them (a batch over the gas cap is split). */
  transactions: number;
  seconds: number;
  recordsPerSecond: number;
}

/** One verification of a whole ledger by the regulator. */
export interface VerifyCase {
  compareAccounts: "none" | "all";
  records: number;
  batches: number;
  accounts: number;
  /** Median of {@link VERIFY_RUNS} reads. */
  seconds: number;
  recordsPerSecond: number;
}

/**
 * The node's own limit for the batches the 2-in-flight upload sent: the same batch calls, signed
 * beforehand with consecutive nonces and sent back to back without waiting, from the state the
 * uploads started from (evm_snapshot / evm_revert), until every one is mined.
 */
export interface LimitCase {
  records: number;
  transactions: number;
  seconds: number;
  recordsPerSecond: number;
}

/** One round of the in-flight comparison: both designs, the local key, and the limit, from one state. */
export interface InFlightRound {
  one: UploadCase;
  two: UploadCase;
  /** 2 in flight, the recorder's key held by the uploader (an ethers Wallet signing locally). */
  twoLocal: UploadCase;
  /** The node's limit for transactions sent with `eth_sendTransaction` (a key the node holds). */
  limit: LimitCase;
  /**
   * The node's limit for the same batch calls as raw signed transactions (`eth_sendRawTransaction`,
   * signed beforehand, untimed, with the local key): what the local-key upload is judged against,
   * as the node also decodes each transaction and recovers its sender.
   */
  limitSigned: LimitCase;
}

/** What {@link benchThroughput} measured, with the targets computed from it. */
export interface ThroughputFigures {
  /** `os.availableParallelism()`: the node (EDR) and the uploader share these. */
  cores: number;
  /** Default configuration (batchSize 400, preflight) and throughput configuration (1,000, none). */
  upload: { default: UploadCase; throughput: UploadCase };
  /** Throughput configuration with 1 (the old design) and {@link ThroughputFigures.window} batches in flight, and the node's limit; per round. */
  inFlight: InFlightRound[];
  /** Batches in flight of the new design (BENCH_UPLOAD_IN_FLIGHT). */
  window: number;
  /** Per-batch signing with the local key, ethers' way and the uploader's, over the 2-in-flight run's batches. */
  signing: SigningFigures;
  /** One transaction per record, each record ECIES-encrypted on its own. */
  naive: UploadCase;
  /** Over the ledger the throughput configuration wrote. */
  verify: { none: VerifyCase; all: VerifyCase };
  targets: { upload: number; verify: number; uploadOfLimit: number };
  met: { uploadDefault: boolean; uploadThroughput: boolean; verify: boolean; uploadOfLimit: boolean; uploadOfLimitLocal: boolean };
}

const NAIVE_RECORDS = 300;
/**
 * A whole-number knob from the environment, `fallback` when unset or empty.
 *
 * @throws Error naming the variable when it is not a whole number from `min` to `max`
 */
function knob(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}; got "${text}"`);
  return n;
}
/** Reads of the whole ledger per verify figure; the median is reported. */
export const VERIFY_RUNS = 3;



/**
 * Times one upload of `batch` and checks every record landed, in order, once; `where` names the
 * node in the error a broken run throws.
 */
export async function timeUpload(
  label: string,
  ledger: PrepaidLedger,
  uploader: Uploader,
  batch: RecordDetails[],
  where = "in process",
): Promise<UploadCase> {
  const [before] = await ledger.chainHead();
  const started = performance.now();
  const records = await uploader.upload(batch);
  const seconds = (performance.now() - started) / 1000;
  const [after] = await ledger.chainHead();
  const consecutive = records.every((r, i) => r.recordIndex === before + 1n + BigInt(i));
  if (records.length !== batch.length || after - before !== BigInt(batch.length) || !consecutive) {
    throw new Error(
      `${where}, ${label}: ${batch.length} records sent, ${records.length} returned in order: ${consecutive}, ` +
        `chain ${before} -> ${after}`,
    );
  }
  const { batchSize, preflight, mode } = uploader.config;
  return {
    label,
    batchSize,
    preflight,
    mode,
    records: batch.length,
    transactions: new Set(records.map((r) => r.txHash)).size,
    seconds,
    recordsPerSecond: batch.length / seconds,
  };
}

/**
 * Verifies the whole ledger VERIFY_RUNS times with the RegulatorReader and returns the median
 * read; throws unless every read is clean and verified every record the chain holds.
 */
export async function timeVerify(
  ledger: PrepaidLedger,
  provider: Provider & JsonRpcLike,
  compareAccounts: "none" | "all",
  where = "in process",
): Promise<VerifyCase> {
  const reader = await RegulatorReader.open(
    { ledger: await ledger.getAddress(), privateKey: REGULATOR_KEY, compareAccounts },
    provider,
  );
  const [count] = await ledger.chainHead();
  const runs: { seconds: number; records: number; batches: number; accounts: number }[] = [];
  for (let run = 0; run < VERIFY_RUNS; run++) {
    const started = performance.now();
    const report = await reader.read();
    const seconds = (performance.now() - started) / 1000;
    if (!report.ok || report.records !== Number(count) || report.verified !== report.records) {
      throw new Error(
        `${where}, verify (${compareAccounts}): ok ${report.ok}, ${report.verified} of ${report.records} verified, ` +
          `chain holds ${count}, ${report.discrepancies.length} discrepancies`,
      );
    }
    runs.push({ seconds, records: report.records, batches: report.batches, accounts: report.accounts });
  }
  const median = runs.sort((a, b) => a.seconds - b.seconds)[VERIFY_RUNS >> 1]!;
  return { compareAccounts, ...median, recordsPerSecond: median.records / median.seconds };
}

/** Runs the bench on a fresh in-process network; throws if any upload or read is wrong. */
export async function benchThroughput(): Promise<ThroughputFigures> {
  // Checked before anything runs: a wrong knob is said at once, not after minutes of setup.
  /** Rounds of the in-flight comparison; the median ratio is judged. */
  const ROUNDS = knob("BENCH_UPLOAD_ROUNDS", 1, 1, 100);
  /** Batches in flight of the new design (default 2, the uploader's default; its range, 1 to 16). */
  const IN_FLIGHT = knob("BENCH_UPLOAD_IN_FLIGHT", 2, 1, 16);
  /** Consumptions timed per case (default {@link RECORDS}). */
  const UPLOAD_RECORDS = knob("BENCH_UPLOAD_RECORDS", RECORDS, 1_000, 10_000_000);
  const connection = await network.create();
  const { ethers } = connection;
  const [admin, regulator, recorder] = await ethers.getSigners();
  const journals = mkdtempSync(join(tmpdir(), "prepaid-ledger-bench-"));
  try {
    /** A fresh ledger with the merchant registered, and an uploader for it (journal in `journals`). */
    const setUp = async (label: string, config: Partial<UploaderConfigInput>) => {
      const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
      await (await ledger.connect(regulator).registerMerchant(MERCHANT, recorder.address)).wait();
      const address = await ledger.getAddress();
      const uploader = await benchUploader(address, recorder, join(journals, `${label}.jsonl`), config);
      return { ledger, address, uploader };
    };

    /** Opens the cards (not timed), then times `count` consumptions. */
    const uploadCase = async (label: string, config: Partial<UploaderConfigInput>, count: number, cards: number) => {
      const { ledger, address, uploader } = await setUp(label.replace(/\W+/g, "-"), config);
      await uploader.upload(Array.from({ length: cards }, (_, c) => details(RecordKind.TopUp, c, OPENING, c)));
      const measured = await timeUpload(label, ledger, uploader, consumptions(count, cards, 20261126));
      uploader.close();
      return { measured, ledger, address };
    };

    const byDefault = await uploadCase("default config", {}, UPLOAD_RECORDS, CARDS);
    // The naive path books on fewer cards: it is about per-record cost, not account count.
    const naive = await uploadCase(
      "naive: 1 tx + 1 ECIES per record",
      { batchSize: 1, preflight: false, mode: "single" },
      NAIVE_RECORDS,
      10,
    );

    // One batch in flight (the old design), two (the new default), and the node's limit for the
    // same batches: each from the same state, the recorder's key held by the node
    // (eth_sendTransaction through a JsonRpcSigner); then two in flight again with the same key
    // held by the uploader (an ethers Wallet: signed locally by src/upload/signing.ts).
    const wallet = await new BrowserProvider(connection.provider).getSigner(recorder.address);
    const local = devWallet(2).connect(ethers.provider); // the in-process network's third dev account
    if (local.address !== wallet.address) throw new Error(`the local key's address ${local.address} is not the recorder's ${wallet.address}`);
    const fastConfig = { batchSize: 1_000, preflight: false } as const;
    const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
    await (await ledger.connect(regulator).registerMerchant(MERCHANT, wallet.address)).wait();
    const address = await ledger.getAddress();
    const opener = await benchUploader(address, wallet, join(journals, "opening.jsonl"), fastConfig);
    await opener.upload(Array.from({ length: CARDS }, (_, c) => details(RecordKind.TopUp, c, OPENING, c)));
    opener.close();
    const timed = consumptions(UPLOAD_RECORDS, CARDS, 20261126);
    const send = (method: string, params: unknown[]) => ethers.provider.send(method, params);
    const rounds: InFlightRound[] = [];
    // Snapshots are used up by a revert: take a new one at once, so the base stays reachable.
    let base = await send("evm_snapshot", []);
    const reset = async () => {
      await send("evm_revert", [base]);
      base = await send("evm_snapshot", []);
    };
    let lastBatches: JournalBatchLike[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const upload = async (inFlight: number, signer: Signer = wallet) => {
        const key = signer === wallet ? "" : ", local key";
        const journal = join(journals, `in-flight-${inFlight}-${round}${key === "" ? "" : "-local"}.jsonl`);
        const uploader = await benchUploader(address, signer, journal, { ...fastConfig, inFlight });
        const measured = await timeUpload(`${key === "" ? "throughput config" : "throughput"}, ${inFlight} in flight${key}`, ledger, uploader, timed);
        const batches = [...uploader.journal.entries.values()].map((e) => e.batch);
        uploader.close();
        return { measured, batches };
      };
      if (round > 0) await reset(); // every round starts from the cards just opened
      const one = (await upload(1)).measured;
      await reset();
      const two = await upload(IN_FLIGHT);
      await reset();
      const twoLocal = (await upload(IN_FLIGHT, local)).measured;
      await reset();
      const limit = await timeLimit(ledger, ethers.provider, wallet.address, two.batches);
      await reset();
      const limitSigned = await timeLimit(ledger, ethers.provider, local, two.batches);
      rounds.push({ one, two: two.measured, twoLocal, limit, limitSigned });
      lastBatches = two.batches;
    }
    const chainId = (await ethers.provider.getNetwork()).chainId;
    const signing = await timeSigning(local, chainId, address, lastBatches.map((b) => encodeRecordBatchCall(MERCHANT, BigInt(b.sequence), hexBytes(b.envelope), hexBytes(b.packed))));
    const fast = { ledger };
    const none = await timeVerify(fast.ledger, ethers.provider, "none");
    const all = await timeVerify(fast.ledger, ethers.provider, "all");

    const targets = { upload: 20_000, verify: 50_000, uploadOfLimit: 0.9 };
    const ratio = medianRatio(rounds, "two");
    const throughput = rounds[0]!.two;
    return {
      cores: availableParallelism(),
      upload: { default: byDefault.measured, throughput },
      inFlight: rounds,
      window: IN_FLIGHT,
      signing,
      naive: naive.measured,
      verify: { none, all },
      targets,
      met: {
        uploadDefault: byDefault.measured.recordsPerSecond >= targets.upload,
        uploadThroughput: throughput.recordsPerSecond >= targets.upload,
        verify: none.recordsPerSecond >= targets.verify,
        uploadOfLimit: ratio >= targets.uploadOfLimit,
        uploadOfLimitLocal: medianRatio(rounds, "twoLocal") >= targets.uploadOfLimit,
      },
    };
  } finally {
    rmSync(journals, { recursive: true, force: true });
  }
}

/** The median over rounds of (2 in flight, node's key or local key) ÷ limit. */
function medianRatio(rounds: InFlightRound[], which: "two" | "twoLocal"): number {
  const ratios = rounds.map((r) => r[which].recordsPerSecond / (which === "two" ? r.limit : r.limitSigned).recordsPerSecond).sort((a, b) => a - b);
  return ratios[ratios.length >> 1]!;
}

/**
 * The node's limit for `batches`: each batch's call from `from`, with consecutive nonces and the
 * uploader's gas limit, all sent back to back without waiting, timed from the first send to the
 * last answer (an automining node answers once it has mined). `from` is an address the node holds
 * the key of (`eth_sendTransaction`, as for the node-key uploads) or a local wallet: then every
 * transaction is signed beforehand, untimed, as the uploader signs (src/upload/signing.ts), and
 * sent with `eth_sendRawTransaction`. Throws unless every transaction succeeded and the chain
 * holds every record.
 */
export async function timeLimit(
  ledger: PrepaidLedger,
  provider: Provider & JsonRpcLike,
  from: string | BaseWallet,
  batches: readonly JournalBatchLike[],
): Promise<LimitCase> {
  const address = typeof from === "string" ? from : from.address;
  let nonce = await provider.getTransactionCount(address, "pending");
  const to = await ledger.getAddress();
  const ordered = [...batches].sort((a, b) => Number(BigInt(a.sequence) - BigInt(b.sequence)));
  const encoded = ordered.map((b) => encodeRecordBatchCall(MERCHANT, BigInt(b.sequence), hexBytes(b.envelope), hexBytes(b.packed)));
  let requests: [string, unknown[]][];
  if (typeof from === "string") {
    requests = ordered.map((b, i) => [
      "eth_sendTransaction",
      [{ from, to, data: bytesToHex(encoded[i]!), gas: toQuantity(BigInt(b.gasLimit!)), nonce: toQuantity(nonce++) }],
    ]);
  } else {
    const fees = await from.populateTransaction({ to, gasLimit: 0n, nonce: 0 });
    const chainId = (await provider.getNetwork()).chainId;
    requests = ordered.map((b, i) => [
      "eth_sendRawTransaction",
      [
        signBatchTransaction(from.signingKey, {
          chainId,
          nonce: nonce++,
          maxFeePerGas: BigInt(fees.maxFeePerGas!),
          maxPriorityFeePerGas: BigInt(fees.maxPriorityFeePerGas!),
          gasLimit: BigInt(b.gasLimit!),
          to,
          data: encoded[i]!,
        }),
      ],
    ]);
  }
  const [before] = await ledger.chainHead();
  const started = performance.now();
  const hashes = await Promise.all(requests.map(([method, params]) => provider.send(method, params) as Promise<string>));
  const seconds = (performance.now() - started) / 1000;
  const records = ordered.reduce((n, b) => n + b.count, 0);
  const [after] = await ledger.chainHead();
  for (const hash of hashes) {
    const receipt = await provider.getTransactionReceipt(hash);
    if (receipt?.status !== 1) throw new Error(`limit: the replayed batch ${hash} did not succeed`);
  }
  if (after - before !== BigInt(records)) throw new Error(`limit: ${records} records replayed, chain ${before} -> ${after}`);
  return { records, transactions: requests.length, seconds, recordsPerSecond: records / seconds };
}

/** What {@link timeLimit} needs of a journal's batch line. */
interface JournalBatchLike {
  sequence: string;
  envelope: string;
  packed: string;
  count: number;
  gasLimit?: string;
}

const hexBytes = (hex: string): Uint8Array => Buffer.from(hex.slice(2), "hex");

const int = (x: number): string => Math.round(x).toLocaleString("en-US");
const verdict = (ok: boolean): string => (ok ? "met" : "NOT met");

/** The figures as table lines for the bench printout. */
export function formatThroughput(f: ThroughputFigures): string {
  const up = (c: UploadCase, target?: boolean): string =>
    [
      c.label.padEnd(34),
      String(c.batchSize).padStart(5),
      (c.preflight ? "yes" : "no").padStart(9),
      c.mode.padStart(6),
      int(c.records).padStart(7),
      int(c.transactions).padStart(5),
      c.seconds.toFixed(2).padStart(7),
      int(c.recordsPerSecond).padStart(9),
      target === undefined ? "" : `  target >= ${int(f.targets.upload)} ${verdict(target)}`,
    ].join("  ");
  const check = (c: VerifyCase, label: string, target?: boolean): string =>
    [
      label.padEnd(34),
      c.seconds.toFixed(2).padStart(7),
      int(c.recordsPerSecond).padStart(9),
      target === undefined ? "" : `  target >= ${int(f.targets.verify)} ${verdict(target)}`,
    ].join("  ");
  const limitLine = (label: string, l: LimitCase): string =>
    [
      // Over the label, batch, preflight and mode columns of the upload rows.
      label.padEnd(34 + 2 + 5 + 2 + 9 + 2 + 6),
      int(l.records).padStart(7),
      int(l.transactions).padStart(5),
      l.seconds.toFixed(2).padStart(7),
      int(l.recordsPerSecond).padStart(9),
    ].join("  ");
  const v = f.verify.none;
  return [
    `throughput on the in-process network, ${f.cores} cores shared by the node and the client`,
    "upload end to end: seal, pack, journal (fsync), send, mined; chain checked to advance by every record",
    `${"case".padEnd(34)}  batch  preflight    mode  records    txs  seconds  records/s`,
    up(f.upload.default, f.met.uploadDefault),
    up(f.naive),
    `batching: ${int(f.upload.throughput.recordsPerSecond / f.naive.recordsPerSecond)}x the naive path's records/s`,
    "",
    "upload at the node's limit: the same consumptions from the same state (evm_snapshot), the recorder's key held by the node,",
    "then by the uploader (local key: an ethers Wallet, signed by src/upload/signing.ts);",
    `limit = the ${f.window}-in-flight run's own batch calls, sent back to back without waiting, until all are mined:`,
    "eth_sendTransaction for the node's key; for the local key the same calls signed beforehand (untimed), eth_sendRawTransaction",
    ...f.inFlight.flatMap((r, i) => [
      ...(f.inFlight.length > 1 ? [`round ${i + 1}`] : []),
      up(r.one),
      up(r.two, i === 0 ? f.met.uploadThroughput : undefined),
      up(r.twoLocal),
      limitLine("node limit (same batches, back to back)", r.limit),
      limitLine("node limit, signed (local key's)", r.limitSigned),
      `upload / limit: 1 in flight ${(r.one.recordsPerSecond / r.limit.recordsPerSecond).toFixed(2)}, ` +
        `${f.window} in flight ${(r.two.recordsPerSecond / r.limit.recordsPerSecond).toFixed(2)}, ` +
        `${f.window} in flight with the local key ${(r.twoLocal.recordsPerSecond / r.limitSigned.recordsPerSecond).toFixed(2)} ` +
        `(${(r.twoLocal.recordsPerSecond / r.limit.recordsPerSecond).toFixed(2)} of the node-key limit); ` +
        `${f.window} in flight / 1 in flight ${(r.two.recordsPerSecond / r.one.recordsPerSecond).toFixed(2)}`,
    ]),
    `target: ${f.window} in flight >= ${f.targets.uploadOfLimit} of the limit${f.inFlight.length > 1 ? " (median over rounds)" : ""}: ` +
      `node's key ${medianRatio(f.inFlight, "two").toFixed(2)} ${verdict(f.met.uploadOfLimit)}, ` +
      `local key ${medianRatio(f.inFlight, "twoLocal").toFixed(2)} ${verdict(f.met.uploadOfLimitLocal)}`,
    "",
    ...formatSigning(f.signing),
    "",
    `verify: eth_getLogs, decrypt, commitments, hash chain, books rebuilt; report ok and every record verified`,
    `over the throughput config's ledger: ${int(v.records)} records, ${int(v.batches)} batches, ` +
      `${int(v.accounts)} accounts; median of ${VERIFY_RUNS} reads`,
    `${"compareAccounts".padEnd(34)}  seconds  records/s`,
    check(f.verify.none, '"none" (merchants and chain head)', f.met.verify),
    check(f.verify.all, '"all" (+ every account via eth_call)'),
  ]
    .map((line) => line.trimEnd())
    .join("\n");
}
