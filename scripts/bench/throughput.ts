/**
 * Records per second, end to end, on the in-process network: uploaded through the Uploader
 * (seal, pack, journal with fsync, send, mined) and verified by the RegulatorReader (eth_getLogs,
 * decrypt, commitments, hash chain, books). Every figure comes from a run whose result was
 * checked on chain, so a broken run throws instead of printing a rate.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";

import type { Provider } from "ethers";
import { network } from "hardhat";

import { RecordKind, type RecordDetails } from "../../src/crypto/index.js";
import type { JsonRpcLike } from "../../src/regulator/logs.js";
import { RegulatorReader } from "../../src/regulator/reader.js";
import { Uploader, type UploaderConfigInput } from "../../src/upload/uploader.js";
import type { PrepaidLedger } from "../../types/ethers-contracts/index.js";
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

/** What {@link benchThroughput} measured, with the targets computed from it. */
export interface ThroughputFigures {
  /** `os.availableParallelism()`: the node (EDR) and the uploader share these. */
  cores: number;
  /** Default configuration (batchSize 400, preflight) and throughput configuration (1,000, none). */
  upload: { default: UploadCase; throughput: UploadCase };
  /** One transaction per record, each record ECIES-encrypted on its own. */
  naive: UploadCase;
  /** Over the ledger the throughput configuration wrote. */
  verify: { none: VerifyCase; all: VerifyCase };
  targets: { upload: number; verify: number };
  met: { uploadDefault: boolean; uploadThroughput: boolean; verify: boolean };
}

const NAIVE_RECORDS = 300;
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
  const { ethers } = await network.create();
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

    const byDefault = await uploadCase("default config", {}, RECORDS, CARDS);
    const fast = await uploadCase("throughput config", { batchSize: 1_000, preflight: false }, RECORDS, CARDS);
    // The naive path books on fewer cards: it is about per-record cost, not account count.
    const naive = await uploadCase(
      "naive: 1 tx + 1 ECIES per record",
      { batchSize: 1, preflight: false, mode: "single" },
      NAIVE_RECORDS,
      10,
    );

    const none = await timeVerify(fast.ledger, ethers.provider, "none");
    const all = await timeVerify(fast.ledger, ethers.provider, "all");

    const targets = { upload: 20_000, verify: 50_000 };
    return {
      cores: availableParallelism(),
      upload: { default: byDefault.measured, throughput: fast.measured },
      naive: naive.measured,
      verify: { none, all },
      targets,
      met: {
        uploadDefault: byDefault.measured.recordsPerSecond >= targets.upload,
        uploadThroughput: fast.measured.recordsPerSecond >= targets.upload,
        verify: none.recordsPerSecond >= targets.verify,
      },
    };
  } finally {
    rmSync(journals, { recursive: true, force: true });
  }
}

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
  const v = f.verify.none;
  return [
    `throughput on the in-process network, ${f.cores} cores shared by the node and the client`,
    "upload end to end: seal, pack, journal (fsync), send, mined; chain checked to advance by every record",
    `${"case".padEnd(34)}  batch  preflight    mode  records    txs  seconds  records/s`,
    up(f.upload.default, f.met.uploadDefault),
    up(f.upload.throughput, f.met.uploadThroughput),
    up(f.naive),
    `batching: ${int(f.upload.throughput.recordsPerSecond / f.naive.recordsPerSecond)}x the naive path's records/s`,
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
