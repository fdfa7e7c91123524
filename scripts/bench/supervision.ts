/**
 * What supervision costs and how long confirmation takes.
 *
 *   gas      — finalizing one checkpoint at the ledger's current head (no mark: one transaction
 *              per checkpoint) with t = 3, 5, 7 of N = t + 1 supervisors (real EIP-712 signatures
 *              from N dev keys), packed as a node packs it (packCheckpoint), first and steady
 *              state, for each design in the same run (FinalizeDesign: the previous contract from
 *              its pinned creation code, and this one through each entry); markCheckpoint, which a
 *              checkpoint the ledger moved past still needs; on the in-process network
 *   per record — steady finalize at t = 3 / 1,000: a checkpoint every K = 1,000 records, each
 *              design with its ratio to the previous one; beside them the older designs' figures
 *              (mark + finalize, 124.2; the first one-transaction design with ABI structs, 56.3; packed
 *              finalizeRecords(bytes) at 5d24e6a, 52.7),
 *              from earlier runs, labelled so
 *   latency  — seconds from a record's upload to its confirmation (quorum.lastFinal >= its index,
 *              polled every 50 ms), with 4 supervisor processes on a `hardhat node`, T = 1 s
 *
 * Every figure comes from a run whose result was checked on chain (receipts succeeded, lastFinal
 * moved to the checkpoint, every sampled record confirmed), so a broken run throws.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { readFileSync } from "node:fs";

import { Contract, ContractFactory, JsonRpcProvider, concat, id, type InterfaceAbi, type TransactionRequest, type TransactionResponse } from "ethers";
import { network } from "hardhat";

import { publicKeyOf, RecordKind } from "../../src/crypto/index.js";
import { SUPERVISOR_QUORUM_ABI } from "../../src/ledger/quorum-abi.js";
import { FINALIZE_PACKED_SELECTOR } from "../../src/supervisor/checkpoint.js";
import { checkpointDomain, checkpointHash, finalizeTransaction, packCheckpoint, type CheckpointJson } from "../../src/supervisor/node.js";
import { Uploader } from "../../src/upload/uploader.js";
import { startHardhatNode } from "../../test/helpers/processes.js";
import {
  FIRST_SUPERVISOR_ACCOUNT,
  FinalityWatch,
  MerchantTraffic,
  PROVIDER_OPTIONS,
  deploySupervision,
  devWallet,
  lastFinal,
  ledgerHeadAt,
  startSupervisors,
  type SupervisorProcess,
} from "../lib/supervision-network.js";
import { MERCHANT, OPENING, REGULATOR_KEY, consumptions, details } from "./workload.js";

/**
 * How a checkpoint is submitted: the previous contract (main at 0eed400, deployed from
 * scripts/bench/fixtures/SupervisorQuorum.previous.json) as its nodes send it, finalizePacked_11yn()
 * with the ledger's access list; this contract through finalizeRecords(bytes) (kept for nodes of
 * the earlier design); through finalizePacked_11yn() (the packed bytes after the selector); and
 * that with the ledger's two words in an EIP-2930 access list — what supervisor nodes send
 * (finalizeTransaction).
 */
export type FinalizeDesign = "previous" | "abi" | "packed" | "packed+access list" | "sender signs";
const DESIGNS: readonly FinalizeDesign[] = ["previous", "abi", "packed", "packed+access list", "sender signs"];
const DESIGN_LABELS: Record<FinalizeDesign, string> = {
  previous: "previous: main at 0eed400, packed + access list",
  abi: "new contract, finalizeRecords(bytes)",
  packed: "new contract, finalizePacked_11yn()",
  "packed+access list": "new, packed + access list (a relayer)",
  "sender signs": "new, packed + access list, sender's place (nodes)",
};

/** Gas of one threshold t (N = t + 1 supervisors, t signatures given) and one design. */
export interface FinalizeCase {
  design: FinalizeDesign;
  threshold: number;
  supervisors: number;
  /** The quorum's first finalize (its state word is non-zero from the constructor on). */
  first: number;
  /** Mean of {@link STEADY_RUNS} later finalizes (slots already written). */
  steady: number;
  /** Calldata bytes of a finalize (checkpoint + t signatures). */
  calldataBytes: number;
}

/** Confirmation latency with supervisor processes. */
export interface LatencyFigures {
  clientVersion: string;
  supervisors: number;
  threshold: number;
  intervalMs: number;
  /** Seconds from upload resolved (the batch mined) to lastFinal >= its last record, one per sample. */
  samples: number[];
  median: number;
  max: number;
  recordsPerSample: number;
  /** Checkpoints finalized over the samples. */
  checkpoints: number;
}

/** What {@link benchSupervision} measured, with the targets computed from it. */
export interface SupervisionFigures {
  cores: number;
  finalize: FinalizeCase[];
  /** markCheckpoint's gas, median over every mark of the gas runs (each a fresh mark slot). */
  mark: number;
  marks: number;
  /** Steady finalize at t = 3 / K as nodes send it, and the smallest K at which it meets the target. */
  perRecord: { checkpointEvery: number; gas: number; everyForTarget: number };
  /** Steady finalize at t = 3 / K for every design, from this run, and its ratio to the previous design's. */
  designs: { design: FinalizeDesign; gas: number; ratio: number }[];
  /** (mark + steady finalize at t = 3) / K: a checkpoint the ledger moved past before it was final. */
  perRecordMarked: number;
  latency: LatencyFigures;
  targets: { perRecordGas: number; latencySeconds: number };
  met: { perRecordGas: boolean; latency: boolean; latencyMax: boolean };
}

const THRESHOLDS = [3, 5, 7] as const;
/** The previous SupervisorQuorum's ABI and creation code (see the fixture's `comment`). */
const PREVIOUS = JSON.parse(readFileSync(new URL("./fixtures/SupervisorQuorum.previous.json", import.meta.url), "utf8")) as {
  commit: string;
  abi: InterfaceAbi;
  bytecode: string;
};
/** The three-slot, two-transaction design's gas per record (docs/BENCHMARKS.md, an earlier run). */
const PREDECESSOR_PER_RECORD = 124.2;
/** Packed finalizeRecords(bytes) of main at 5d24e6a (docs/BENCHMARKS.md, an earlier run: 52,702). */
const PACKED_ABI_PER_RECORD = 52.7;
/** The first one-transaction design (ABI structs and a member list in calldata), an earlier run. */
const FIRST_ONE_TX_PER_RECORD = 56.3;
const STEADY_RUNS = 3;
const RECORDS_PER_CHECKPOINT = 10;
const CHECKPOINT_EVERY = 1_000;
const SAMPLES = 10;
const SAMPLE_SPACING_MS = 1_500;
const LATENCY_INTERVAL_MS = 1_000;
const CONFIRM_TIMEOUT_MS = 10_000;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Sends `tx`, checks it succeeded, returns its gas. */
async function gasOf(label: string, sent: Promise<TransactionResponse>): Promise<number> {
  const receipt = await (await sent).wait();
  if (receipt === null || receipt.status !== 1) throw new Error(`${label}: transaction failed`);
  return Number(receipt.gasUsed);
}

/** (a) on the in-process network: finalize for each threshold, and markCheckpoint. */
async function benchGas(journals: string): Promise<{ finalize: FinalizeCase[]; marks: number[] }> {
  const { ethers } = await network.create();
  const signers = await ethers.getSigners();
  const [admin, regulator, recorder] = signers;
  const { chainId } = await ethers.provider.getNetwork();
  const finalize: FinalizeCase[] = [];
  const marks: number[] = [];
  for (const t of THRESHOLDS) {
    const n = t + 1;
    // Dev keys from the public test mnemonic: the in-process network's accounts are the same.
    const keys = Array.from({ length: n }, (_, i) => devWallet(FIRST_SUPERVISOR_ACCOUNT + i));
    const members = signers.slice(FIRST_SUPERVISOR_ACCOUNT, FIRST_SUPERVISOR_ACCOUNT + n);
    if (members.length < n || keys.some((k, i) => k.address !== members[i].address)) {
      throw new Error(`supervisor accounts ${FIRST_SUPERVISOR_ACCOUNT}.. are not the test mnemonic's`);
    }
    const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
    const ledgerAddress = await ledger.getAddress();
    const quorumArgs = [admin.address, ledgerAddress, members.map((m) => m.address), t, 0, 3_600] as const;
    // One quorum per design over the same ledger: each checkpoint is finalized on all of them, in
    // separate transactions (each starts cold), with the same records, head and signers.
    const previousFactory = new ContractFactory(PREVIOUS.abi, PREVIOUS.bytecode, admin);
    const quorums = new Map<FinalizeDesign, Contract>();
    for (const design of DESIGNS) {
      const deployed = design === "previous" ? await previousFactory.deploy(...quorumArgs) : await ethers.deployContract("SupervisorQuorum", [...quorumArgs]);
      await deployed.waitForDeployment();
      quorums.set(design, new Contract(await deployed.getAddress(), design === "previous" ? PREVIOUS.abi : SUPERVISOR_QUORUM_ABI, admin));
    }
    await (await ledger.connect(regulator).registerMerchant(MERCHANT, recorder.address)).wait();
    const uploader = await Uploader.open(
      { ledger: ledgerAddress, merchantId: MERCHANT, regulatorPublicKey: publicKeyOf(REGULATOR_KEY), journalPath: join(journals, `gas-t${t}.jsonl`) },
      recorder,
    );
    const submitter = members[0];

    /** Signs the ledger's current head for `design`'s quorum with t keys and finalizes it (no mark); returns [gas, calldata bytes]. */
    const finalizeOn = async (design: FinalizeDesign, count: bigint, head: string): Promise<[number, number]> => {
      const quorum = quorums.get(design)!;
      const quorumAddress = await quorum.getAddress();
      const c: CheckpointJson = {
        ledger: ledgerAddress,
        recordCount: count.toString(),
        chainHead: head,
        // The contract keeps the digest but never recomputes it: any 32 bytes cost the same.
        stateDigest: id(`bench state at ${count}`),
        setId: (await quorum.setId()).toString(),
      };
      const hash = checkpointHash(checkpointDomain(chainId, quorumAddress), c);
      if ((await quorum.checkpointDigest(c)) !== hash) throw new Error("the node's EIP-712 hash differs from the contract's");
      // What a node gathers (SupervisorNode.gather): the packed checkpoint with t signatures.
      const signatures = new Map(keys.slice(0, t).map((k) => [k.address.toLowerCase(), k.signingKey.sign(hash).serialized]));
      // A member sending its own checkpoint leaves its place unsigned: its transaction signs.
      const sender = design === "sender signs" ? submitter.address : undefined;
      const packed = packCheckpoint(c, [...(await quorum.signingMembers(c.setId))], signatures, { limit: t, sender });
      const request: TransactionRequest =
        design === "abi"
          ? { to: quorumAddress, data: quorum.interface.encodeFunctionData("finalizeRecords", [packed]) }
          : design === "packed"
            ? { to: quorumAddress, data: concat([FINALIZE_PACKED_SELECTOR, packed]) }
            : finalizeTransaction(quorumAddress, ledgerAddress, packed);
      const gas = await gasOf(`t=${t} ${design}`, submitter.sendTransaction(request));
      const final = await quorum.lastFinal();
      if (final !== count) throw new Error(`t=${t} ${design}: lastFinal ${final}, expected ${count}`);
      return [gas, (String(request.data).length - 2) / 2];
    };

    /** Uploads records, finalizes the ledger's head on every design's quorum, then marks that count alone. */
    const checkpoint = async (run: number): Promise<{ mark: number; gas: Map<FinalizeDesign, [number, number]> }> => {
      await uploader.upload(
        run === 0
          ? Array.from({ length: RECORDS_PER_CHECKPOINT }, (_, c) => details(RecordKind.TopUp, c, OPENING, c))
          : // Each run's consumptions under their own order numbers: the uploader refuses one
            // order number given twice with other details.
            consumptions(RECORDS_PER_CHECKPOINT, RECORDS_PER_CHECKPOINT, run).map((d, i) => ({
              ...d,
              orderRef: `ORD-2026-11-${String(run * RECORDS_PER_CHECKPOINT + i + RECORDS_PER_CHECKPOINT).padStart(6, "0")}`,
            })),
      );
      const [count, head] = await ledger.chainHead();
      const gas = new Map<FinalizeDesign, [number, number]>();
      for (const design of DESIGNS) gas.set(design, await finalizeOn(design, count, head));
      // The fallback's extra transaction, measured on its own: a fresh mark slot at this count
      // (finalized unmarked above, so the slot is still empty).
      const mark = await gasOf(`t=${t} markCheckpoint`, ledger.connect(submitter).markCheckpoint());
      if ((await ledger.markedHead(count)) !== head) throw new Error(`t=${t}: mark not kept`);
      return { mark, gas };
    };

    try {
      const runs: { mark: number; gas: Map<FinalizeDesign, [number, number]> }[] = [];
      for (let run = 0; run <= STEADY_RUNS; run++) runs.push(await checkpoint(run));
      marks.push(...runs.map((r) => r.mark));
      for (const design of DESIGNS) {
        const steady = runs.slice(1).map((r) => r.gas.get(design)![0]);
        const [first, calldataBytes] = runs[0].gas.get(design)!;
        finalize.push({ design, threshold: t, supervisors: n, first, steady: steady.reduce((a, b) => a + b, 0) / steady.length, calldataBytes });
      }
    } finally {
      uploader.close();
    }
  }
  return { finalize, marks };
}

/** (c) 4 supervisor processes on a `hardhat node`: seconds from upload to confirmation. */
async function benchLatency(journals: string): Promise<LatencyFigures> {
  const node = await startHardhatNode();
  const provider = new JsonRpcProvider(node.url, undefined, PROVIDER_OPTIONS);
  let supervisors: SupervisorProcess[] = [];
  let traffic: MerchantTraffic | undefined;
  try {
    const clientVersion = String(await provider.send("web3_clientVersion", []));
    const d = await deploySupervision(provider, { supervisors: 4, threshold: 3, merchants: 1 });
    supervisors = await startSupervisors(d, {
      rpc: node.url,
      stateRoot: join(journals, "supervisors"),
      every: CHECKPOINT_EVERY,
      intervalMs: LATENCY_INTERVAL_MS,
      decryptionKey: REGULATOR_KEY,
    });
    traffic = await MerchantTraffic.open(d, { regulatorKey: REGULATOR_KEY, journalDir: journals, batchSize: RECORDS_PER_CHECKPOINT });
    const watch = new FinalityWatch(provider, d.quorumAddress, d.fromBlock);

    /** Uploads one batch; resolves with the seconds until lastFinal covers its last record. */
    const sample = async (): Promise<{ seconds: number; records: number }> => {
      const records = await traffic!.next();
      const included = performance.now();
      const last = records.at(-1)!.recordIndex;
      while ((await lastFinal(d.quorum)) < last) {
        if (performance.now() - included > CONFIRM_TIMEOUT_MS) {
          const statuses = await Promise.all(supervisors.map((s) => s.status()));
          throw new Error(`record ${last} not confirmed within ${CONFIRM_TIMEOUT_MS} ms: ${JSON.stringify(statuses)}`);
        }
        await sleep(50);
      }
      const seconds = (performance.now() - included) / 1000;
      if ((await d.quorum.status(last)) !== 2n) throw new Error(`record ${last}: lastFinal covers it but status is not Confirmed`);
      return { seconds, records: records.length };
    };

    await sample(); // warm-up, not counted: opens the cards; the processes' first checkpoint
    await watch.poll();
    const samples: number[] = [];
    let recordsPerSample = 0;
    for (let i = 0; i < SAMPLES; i++) {
      const started = performance.now();
      const s = await sample();
      samples.push(s.seconds);
      recordsPerSample = s.records;
      await sleep(Math.max(0, SAMPLE_SPACING_MS - (performance.now() - started)));
    }
    const finalized = await watch.poll();
    for (const f of finalized) {
      if (f.chainHead !== (await ledgerHeadAt(d.ledger, f.recordCount))) throw new Error(`checkpoint ${f.recordCount}: head is not the ledger's at its count`);
    }
    const statuses = await Promise.all(supervisors.map((s) => s.status()));
    const refused = statuses.find((s) => s === undefined || s.refusal !== undefined);
    if (refused !== undefined || statuses.length !== 4) throw new Error(`a supervisor refused or did not answer: ${JSON.stringify(statuses)}`);
    return {
      clientVersion,
      supervisors: 4,
      threshold: 3,
      intervalMs: LATENCY_INTERVAL_MS,
      samples,
      median: median(samples),
      max: Math.max(...samples),
      recordsPerSample,
      checkpoints: finalized.length,
    };
  } finally {
    traffic?.close();
    await Promise.all(supervisors.map((s) => s.stop()));
    provider.destroy();
    await node.stop();
  }
}

/** Runs the whole supervision bench; throws if any step's result is wrong. */
export async function benchSupervision(): Promise<SupervisionFigures> {
  const journals = mkdtempSync(join(tmpdir(), "prepaid-ledger-bench-supervision-"));
  try {
    const gas = await benchGas(journals);
    const latency = await benchLatency(journals);
    const mark = median(gas.marks);
    const at3 = (design: FinalizeDesign) => gas.finalize.find((f) => f.threshold === 3 && f.design === design)!;
    const t3 = at3("sender signs");
    const targets = { perRecordGas: 50, latencySeconds: 2 };
    const perRecord = {
      checkpointEvery: CHECKPOINT_EVERY,
      gas: t3.steady / CHECKPOINT_EVERY,
      everyForTarget: Math.ceil(t3.steady / targets.perRecordGas),
    };
    return {
      cores: availableParallelism(),
      finalize: gas.finalize,
      mark,
      marks: gas.marks.length,
      perRecord,
      designs: DESIGNS.map((design) => ({
        design,
        gas: at3(design).steady / CHECKPOINT_EVERY,
        ratio: at3(design).steady / at3("previous").steady,
      })),
      perRecordMarked: (mark + t3.steady) / CHECKPOINT_EVERY,
      latency,
      targets,
      met: {
        perRecordGas: perRecord.gas <= targets.perRecordGas,
        latency: latency.median <= targets.latencySeconds,
        latencyMax: latency.max <= targets.latencySeconds,
      },
    };
  } finally {
    rmSync(journals, { recursive: true, force: true });
  }
}

const int = (x: number): string => Math.round(x).toLocaleString("en-US");
const verdict = (ok: boolean): string => (ok ? "met" : "NOT met");

/** The figures as table lines for the bench printout. */
export function formatSupervision(f: SupervisionFigures): string {
  const l = f.latency;
  return [
    "supervision: checkpoints confirmed by a quorum of supervisors",
    "gas on the in-process network; receipts status 1, lastFinal checked after every finalize; gas includes the 21,000 base",
    `${"t of N".padEnd(14)}  ${"finalize design".padEnd(50)}  first (fresh storage)   steady  calldata bytes`,
    ...f.finalize.map((c) =>
      [
        `t = ${c.threshold} of N = ${c.supervisors}`.padEnd(14),
        DESIGN_LABELS[c.design].padEnd(50),
        int(c.first).padStart(21),
        int(c.steady).padStart(8),
        int(c.calldataBytes).padStart(14),
      ].join("  "),
    ),
    `${"markCheckpoint (a fresh mark slot)".padEnd(64)}  ${int(f.mark).padStart(21)}  (median of ${f.marks}; only for a checkpoint the ledger moved past)`,
    `per record confirmed, a checkpoint every ${int(f.perRecord.checkpointEvery)} records, at the ledger's head, t = 3, this run:`,
    ...f.designs.map(
      (d) => `  ${DESIGN_LABELS[d.design].padEnd(50)}  ${d.gas.toFixed(1).padStart(5)} gas per record  (${d.ratio.toFixed(3)} of the previous design's)`,
    ),
    `  as nodes send it: ${f.perRecord.gas.toFixed(1)} gas: target <= ${f.targets.perRecordGas} ${verdict(f.met.perRecordGas)} ` +
      `(met from a checkpoint every ${int(f.perRecord.everyForTarget)} records)`,
    `  behind the ledger's head (mark + finalize): ${f.perRecordMarked.toFixed(1)} gas; ` +
      `older designs, from earlier runs, not re-measured: mark + finalize with three slots ${PREDECESSOR_PER_RECORD.toFixed(1)} gas, ` +
      `first one-transaction design (ABI structs, member list in calldata: 56,341) ${FIRST_ONE_TX_PER_RECORD.toFixed(1)} gas, ` +
      `packed finalizeRecords(bytes) at 5d24e6a ${PACKED_ABI_PER_RECORD.toFixed(1)} gas`,
    `confirmation latency: ${l.supervisors} supervisor processes (${l.threshold} must sign), checkpoint interval ${int(l.intervalMs)} ms, ` +
      `over a \`hardhat node\` (${l.clientVersion}); ${f.cores} cores shared`,
    `from upload resolved (batch of ${l.recordsPerSample} mined) to quorum.lastFinal >= its last record (polled every 50 ms), ` +
      `${l.samples.length} samples ${SAMPLE_SPACING_MS / 1000} s apart, ${l.checkpoints} checkpoints final`,
    `samples (s): ${l.samples.map((s) => s.toFixed(2)).join(" ")}`,
    `median ${l.median.toFixed(2)} s: target <= ${f.targets.latencySeconds} s ${verdict(f.met.latency)}; ` +
      `max ${l.max.toFixed(2)} s: ${verdict(f.met.latencyMax)}`,
  ]
    .map((line) => line.trimEnd())
    .join("\n");
}
