/**
 * Gas of `recordBatch` per record against the floor its bytes allow, on the in-process network.
 * Records are real: typical details, salted, committed and sealed by src/upload/sealing.ts.
 * Every batch is also booked, byte for byte, on a second ledger with a MerchantCustody attached
 * (coverage ratio 100 %, custody ample), so the custody check's cost is measured in the same run
 * on the same bytes.
 */
import type { Signer } from "ethers";
import { id } from "ethers";
import { network } from "hardhat";

import { publicKeyOf, RecordKind, type Recipient, type RecordDetails } from "../../src/crypto/index.js";
import { RECORD_HEAD_BYTES } from "../../src/ledger/codec.js";
import { sealBatch } from "../../src/upload/sealing.js";
import type { MerchantCustody, PrepaidLedger } from "../../types/ethers-contracts/index.js";
import { MEMOS, MERCHANT, START_TIME, cardAccount, prng } from "./workload.js";

/** One measured case: `batchSize` records per transaction, summed over `transactions`. */
export interface GasCase {
  label: string;
  batchSize: number;
  transactions: number;
  /** `receipt.gasUsed` summed over the transactions, divided by their records. */
  gasPerRecord: number;
  /** (`records` + `envelope` argument bytes) / records: batch header and envelope amortized. */
  bytesPerRecord: number;
  /** Of `bytesPerRecord`, the zero bytes (the floor prices them lower). */
  zeroBytesPerRecord: number;
  /** Storage term of the floor: 5,000 to update an account slot, 22,100 to fill a fresh one. */
  slotGas: number;
  /** The floor for `bytesPerRecord` (see {@link floorPerRecord}). */
  floorPerRecord: number;
  /** gasPerRecord / floorPerRecord. */
  ratio: number;
  /** The same batches booked on the ledger with custody attached: gas per record. */
  custodyGasPerRecord: number;
  /** custodyGasPerRecord / gasPerRecord. */
  custodyRatio: number;
  /** Whether these batches raise the liability, so the ledger calls custody (once per batch). */
  custodyChecked: boolean;
}

/** What {@link benchGas} measured, with the targets computed from it. */
export interface GasFigures {
  /** Top-ups that open new accounts (fresh storage slots), B = 100. */
  opening: GasCase;
  /** Records on accounts already open: B = 1 and B = 100, regulator only and regulator + merchant. */
  steady: GasCase[];
  /** The case the target is about: consumptions, B = 100, regulator only (also in `steady`). */
  batched: GasCase;
  /** Packed record alone (no batch header, no envelope) over the steady consumptions: mean and max. */
  recordBytes: { mean: number; max: number };
  targets: { batchedRatio: number; recordBytes: number; custodyRatio: number };
  met: { batchedRatio: boolean; recordBytes: boolean; custodyRatio: boolean };
}

const BATCH = 100;
const SINGLE_RUNS = 10;
const SLOT_UPDATE = 5_000; // cold SLOAD 2,100 + SSTORE of a non-zero slot 2,900
const SLOT_FRESH = 22_100; // cold SLOAD 2,100 + SSTORE of a zero slot 20,000
const RECORDED_TOPICS = 4; // topic0 + account, merchantId, commitment
const OPENING_AMOUNTS = [300_000n, 500_000n, 800_000n, 1_000_000n] as const;

/**
 * Floor per record, for B records per transaction whose on-chain bytes (packed records with
 * their 3-byte header, plus the envelope) hold `zero` and `nonZero` bytes in all:
 *   floor = 21000/B + max(calldataFloor, executionFloor), over the per-record byte counts
 *   calldataFloor  = 40·nonZero + 10·zero                                        (EIP-7623)
 *   executionFloor = 16·nonZero + 4·zero + slot + 375 + 375·topics + 8·bytes
 * slot is the one account slot a record must update (5,000; 22,100 when the record opens it),
 * topics = 4 (Recorded: topic0 + 3 indexed), bytes = zero + nonZero: the record's log.
 */
function floorPerRecord(batchSize: number, zero: number, nonZero: number, slotGas: number): number {
  const z = zero / batchSize;
  const nz = nonZero / batchSize;
  const calldataFloor = 40 * nz + 10 * z;
  const executionFloor = 16 * nz + 4 * z + slotGas + 375 + 375 * RECORDED_TOPICS + 8 * (z + nz);
  return 21_000 / batchSize + Math.max(calldataFloor, executionFloor);
}


/** Runs the bench on a fresh in-process network; throws if any batch fails to book. */
export async function benchGas(): Promise<GasFigures> {
  const { ethers } = await network.create();
  const [admin, regulator, recorder] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  await (await ledger.connect(regulator).registerMerchant(MERCHANT, recorder.address)).wait();
  const covered = await coveredLedger(ethers, admin, regulator, recorder);

  // Fixed test keys: the contract never decrypts, only the sizes of what they produce matter.
  const toRegulator: Recipient = { publicKey: publicKeyOf(id("bench:regulator")), role: "regulator" };
  const toMerchant: Recipient = { publicKey: publicKeyOf(id("bench:merchant")), role: "merchant" };
  const random = prng(20261126);
  let n = 0;
  const details = (kind: RecordDetails["kind"], card: number, amount?: bigint): RecordDetails => {
    n++;
    return {
      kind,
      merchantId: MERCHANT,
      account: cardAccount(card),
      amount: amount ?? 2_800n + 100n * BigInt(Math.floor(random() * 553)), // 28.00 to 580.00 yuan
      time: START_TIME + 53 * n,
      orderRef: `ORD-2026-11-${String(n).padStart(6, "0")}`,
      memo: MEMOS[n % MEMOS.length]!,
    };
  };
  const recordSizes: number[] = [];

  /** Seals and books each batch, one transaction each, and sums what it cost. */
  const measure = async (
    label: string,
    batches: RecordDetails[][],
    recipients: Recipient[],
    slotGas: number,
    keepSizes = false,
  ): Promise<GasCase> => {
    let gas = 0n;
    let custodyGas = 0n;
    let zero = 0;
    let nonZero = 0;
    let records = 0;
    for (const batch of batches) {
      const sealed = await sealBatch(batch, recipients);
      if (keepSizes) for (const r of sealed.records) recordSizes.push(RECORD_HEAD_BYTES + r.ciphertext.length);
      gas += await book(ledger, recorder, sealed.envelope, sealed.packed, batch.length);
      custodyGas += await book(covered, recorder, sealed.envelope, sealed.packed, batch.length);
      for (const bytes of [sealed.packed, sealed.envelope]) {
        for (const b of bytes) {
          if (b === 0) zero++;
          else nonZero++;
        }
      }
      records += batch.length;
    }
    const batchSize = batches[0]!.length;
    // Summing zero/non-zero counts over the transactions and dividing by their records gives
    // the same per-record floor as averaging each transaction's, since B is fixed within a case.
    const scale = records / batchSize;
    const floor = floorPerRecord(batchSize, zero / scale, nonZero / scale, slotGas);
    const gasPerRecord = Number(gas) / records;
    const custodyGasPerRecord = Number(custodyGas) / records;
    const net = (b: RecordDetails[]) => b.reduce((sum, d) => sum + (d.kind === RecordKind.TopUp ? d.amount : -d.amount), 0n);
    return {
      label,
      batchSize,
      transactions: batches.length,
      gasPerRecord,
      bytesPerRecord: (zero + nonZero) / records,
      zeroBytesPerRecord: zero / records,
      slotGas,
      floorPerRecord: floor,
      ratio: gasPerRecord / floor,
      custodyGasPerRecord,
      custodyRatio: custodyGasPerRecord / gasPerRecord,
      custodyChecked: batches.every((b) => net(b) > 0n),
    };
  };

  const cards = Array.from({ length: BATCH }, (_, i) => i + 1);
  const topUp = (c: number) => details(RecordKind.TopUp, c, OPENING_AMOUNTS[c % OPENING_AMOUNTS.length]);
  const opening = await measure("opening top-up (new account)", [cards.map(topUp)], [toRegulator], SLOT_FRESH);

  // Each account is consumed at most 5 × 58,000 fen below (card 1 once more, in the warm-up),
  // under its 300,000+ opening.
  const consume = (c: number) => details(RecordKind.Consume, c);
  // Warm-up, not measured: the merchant's consumed/refunded word is zero until its first
  // consumption, whose batch pays a one-off 17,100 gas to fill it. A trading merchant's is set.
  const warmUp = await sealBatch([consume(1)], [toRegulator]);
  await book(ledger, recorder, warmUp.envelope, warmUp.packed, 1);
  await book(covered, recorder, warmUp.envelope, warmUp.packed, 1);
  const mixed = (c: number) => (c % 10 === 0 ? topUp(c) : c % 10 === 5 ? details(RecordKind.Refund, c) : consume(c));
  // B = 1 goes through the same recordBatch path, a batch of one; averaged over SINGLE_RUNS.
  const singles = () => cards.slice(0, SINGLE_RUNS).map((c) => [consume(c)]);
  const both = [toRegulator, toMerchant];
  const batched = await measure("consume, regulator", [cards.map(consume)], [toRegulator], SLOT_UPDATE, true);
  const steady = [
    await measure("consume, regulator", singles(), [toRegulator], SLOT_UPDATE, true),
    batched,
    await measure("consume, regulator + merchant", singles(), both, SLOT_UPDATE),
    await measure("consume, regulator + merchant", [cards.map(consume)], both, SLOT_UPDATE),
    await measure("mixed 8:1:1 consume/top-up/refund", [cards.map(mixed)], [toRegulator], SLOT_UPDATE),
    await measure("top-up, regulator", [cards.map((c) => details(RecordKind.TopUp, c))], [toRegulator], SLOT_UPDATE),
  ];

  const targets = { batchedRatio: 1.1, recordBytes: 160, custodyRatio: 1.03 };
  const atB = [opening, ...steady].filter((c) => c.batchSize === BATCH);
  const mean = recordSizes.reduce((a, b) => a + b, 0) / recordSizes.length;
  return {
    opening,
    steady,
    batched,
    recordBytes: { mean, max: Math.max(...recordSizes) },
    targets,
    met: {
      batchedRatio: batched.ratio <= targets.batchedRatio,
      recordBytes: mean <= targets.recordBytes,
      custodyRatio: atB.every((c) => c.custodyRatio <= targets.custodyRatio),
    },
  };
}

/**
 * A second ledger for the same merchant and recorder with a MerchantCustody attached: a 2-decimal
 * test token, coverage ratio 100 % and a deposit far above any liability the bench books, so
 * every batch passes the check and pays for it.
 */
async function coveredLedger(
  ethers: Awaited<ReturnType<typeof network.create>>["ethers"],
  admin: Signer,
  regulator: Signer,
  recorder: Signer,
): Promise<PrepaidLedger> {
  const [a, r] = [await admin.getAddress(), await regulator.getAddress()];
  const ledger = await ethers.deployContract("PrepaidLedger", [a, r, 0, 3_600]);
  await (await ledger.connect(regulator).registerMerchant(MERCHANT, await recorder.getAddress())).wait();
  const token = await ethers.deployContract("PrepaidTestToken", ["Bench fen", "bFEN"]);
  const custody = (await ethers.deployContract("MerchantCustody", [
    await token.getAddress(),
    await ledger.getAddress(),
    a,
    r,
    0,
  ])) as unknown as MerchantCustody;
  await (await ledger.connect(admin).proposeCustody(await custody.getAddress())).wait();
  await (await custody.connect(regulator).setCoverageRatio(MERCHANT, 10_000)).wait();
  const ample = 10n ** 15n;
  await (await token.mint(await recorder.getAddress(), ample)).wait();
  await (await token.connect(recorder).approve(await custody.getAddress(), ample)).wait();
  await (await custody.connect(recorder).deposit(MERCHANT, ample)).wait();
  return ledger;
}

/** Sends one batch; checks it succeeded and advanced the chain by `count`; returns its gas. */
async function book(ledger: PrepaidLedger, recorder: Signer, envelope: Uint8Array, packed: Uint8Array, count: number) {
  const [before] = await ledger.chainHead();
  const { nextSequence } = await ledger.merchantBooks(MERCHANT);
  const tx = await ledger.connect(recorder).recordBatch(MERCHANT, nextSequence, envelope, packed);
  const receipt = await tx.wait();
  const [after] = await ledger.chainHead();
  if (receipt === null || receipt.status !== 1 || after - before !== BigInt(count)) {
    throw new Error(`batch of ${count} did not book: status ${receipt?.status}, chain ${before} -> ${after}`);
  }
  return receipt.gasUsed;
}

const int = (x: number): string => Math.round(x).toLocaleString("en-US");
const verdict = (ok: boolean): string => (ok ? "met" : "NOT met");

/** The figures as table lines for the bench printout. */
export function formatGas(f: GasFigures): string {
  const row = (c: GasCase): string =>
    [
      c.label.padEnd(34),
      String(c.batchSize).padStart(4),
      String(c.transactions).padStart(4),
      int(c.gasPerRecord).padStart(8),
      c.bytesPerRecord.toFixed(1).padStart(9),
      c.zeroBytesPerRecord.toFixed(1).padStart(5),
      int(c.floorPerRecord).padStart(8),
      c.ratio.toFixed(3).padStart(7),
      int(c.custodyGasPerRecord).padStart(9),
      `${c.custodyRatio.toFixed(4)}${c.custodyChecked ? "" : "*"}`.padStart(8),
    ].join("  ");
  return [
    "gas per record (every receipt status 1, chain head advanced by B)",
    `${"case".padEnd(34)}     B   txs   gas/rec  bytes/rec   zero     floor  gas/floor  +custody  custody/without`,
    row(f.opening),
    ...f.steady.map(row),
    `batched (B=${f.batched.batchSize}) gas/floor ${f.batched.ratio.toFixed(3)}: target <= ${f.targets.batchedRatio.toFixed(2)} ${verdict(f.met.batchedRatio)}`,
    `typical record ${f.recordBytes.mean.toFixed(1)} bytes (max ${f.recordBytes.max}; packed record alone): ` +
      `target <= ${f.targets.recordBytes} ${verdict(f.met.recordBytes)}`,
    "floor = 21000/B + max(40 nz + 10 z, 16 nz + 4 z + slot + 375 x 5 + 8 bytes) per record; " +
      `slot ${int(SLOT_UPDATE)}, ${int(SLOT_FRESH)} when opening`,
    `custody: every B=${BATCH} case within ${((f.targets.custodyRatio - 1) * 100).toFixed(0)} % of the ledger without custody: ${verdict(f.met.custodyRatio)} ` +
      "(* = the batches lower the liability, so the ledger does not call custody)",
    "context: an ERC-20 transfer costs about 35-50k gas (not measured here)",
  ].join("\n");
}
