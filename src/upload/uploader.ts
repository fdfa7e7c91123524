/**
 * The merchant's upload module: plain transaction details in, records on chain out.
 *
 * ```ts
 * const uploader = await Uploader.open({ ledger, merchantId: 7, regulatorPublicKey,
 *   journalPath: "./journal/merchant-7.jsonl" }, recorderSigner);
 * const records = await uploader.upload([{ kind: RecordKind.TopUp, merchantId: 7, account,
 *   amount: 50_000n, time, orderRef: "ORD-1", memo: "yoga 10 classes" }]);
 * ```
 *
 * Safety: every batch is sealed once and written to the journal (fsync) before its transaction
 * is sent, under the merchant's next batch sequence number. The contract refuses a sequence
 * number twice, so resending a journaled batch can never book it twice; and after a crash,
 * `recover()` (run by `upload()` before anything new) resends every journaled batch that has not
 * landed, so none is lost. A batch is "ours" on chain when the transaction that consumed its
 * sequence number carries its first record's commitment (salted, so no other batch has it).
 */
import { Contract, type ContractRunner, type Log, type Provider, type Signer } from "ethers";
import { z } from "zod";

import { addressSchema, parseConfig, publicKeySchema } from "../config.js";
import { PrepaidLedgerError, isError } from "../errors.js";
import type { RecordDetails } from "../crypto/details.js";
import type { Recipient } from "../crypto/envelope.js";
import { bytesToHex } from "../crypto/hash.js";
import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import { RECORD_HEAD_BYTES, encodeRecordBatchCall } from "../ledger/codec.js";
import { toLedgerError } from "../ledger/revert.js";
import { Journal, type JournalEntry } from "./journal.js";
import { sealBatch, sealSingles, type SealedBatch } from "./sealing.js";

/** EIP-7825: no transaction may use more gas than this. */
export const MAX_TX_GAS = 1n << 24n;

/** The uploader's configuration; see README "SDK". */
export const UploaderConfig = z.object({
  /** The PrepaidLedger address. */
  ledger: addressSchema,
  merchantId: z.number().int().min(1).max(2 ** 32 - 1),
  /** The regulator's public key: always a recipient. */
  regulatorPublicKey: publicKeySchema,
  /** The merchant's own public key, to read its records back from the chain (optional). */
  merchantPublicKey: publicKeySchema.optional(),
  /** The journal file (JSON lines); one per merchant and ledger. */
  journalPath: z.string().min(1),
  /** Records per transaction. 400 keeps a batch of brand-new accounts under 2^24 gas. */
  batchSize: z.number().int().min(1).max(4_000).default(400),
  /** "batch": one AES-GCM data key per batch (fast); "single": ECIES per record. */
  mode: z.enum(["batch", "single"]).default("batch"),
  /** Blocks to wait after inclusion before a batch counts as landed. */
  confirmations: z.number().int().min(1).max(64).default(1),
  /**
   * Simulate each batch (eth_estimateGas) before journaling it, so a batch the ledger would
   * refuse (an overdraw, a suspended merchant) fails here and is never written or sent.
   */
  preflight: z.boolean().default(true),
});
export type UploaderConfigInput = z.input<typeof UploaderConfig>;
export type UploaderConfigValues = z.output<typeof UploaderConfig>;

/** What identifies one uploaded record on chain. */
export interface UploadedRecord {
  merchantId: number;
  /** The batch sequence number that carried it. */
  sequence: bigint;
  /** Ledger-wide index (from 1): the `recordIndex` in its Recorded log and hash-chain link. */
  recordIndex: bigint;
  txHash: string;
  blockNumber: number;
  account: string;
  commitment: string;
  /** The record's salt: with the details it opens the commitment (give it to the card holder). */
  salt: string;
}

/** What the uploader needs of a receipt: plain fields, cheap to build for a thousand logs. */
interface Receipt {
  hash: string;
  blockNumber: number;
  status: number;
  logs: readonly { topics: readonly string[]; data: string }[];
}

/**
 * Fetches a receipt. Through raw JSON-RPC when the provider offers `send`: ethers builds a full
 * object per log, and a batch's receipt holds one log per record (a thousand objects, ~100 ms).
 */
async function fetchReceipt(provider: Provider, hash: string): Promise<Receipt | null> {
  const rpc = provider as Provider & { send?: (method: string, params: unknown[]) => Promise<unknown> };
  if (typeof rpc.send === "function") {
    const raw = (await rpc.send("eth_getTransactionReceipt", [hash])) as {
      transactionHash: string;
      blockNumber: string;
      status: string;
      logs: { topics: string[]; data: string }[];
    } | null;
    if (raw === null) return null;
    return { hash: raw.transactionHash, blockNumber: Number(raw.blockNumber), status: Number(raw.status), logs: raw.logs };
  }
  const r = await provider.getTransactionReceipt(hash);
  return r === null ? null : { hash: r.hash, blockNumber: r.blockNumber, status: r.status ?? 0, logs: r.logs };
}

/** The terms of {@link gasBound} (explained there), for callers that size batches before sealing them. */
export const GAS_BOUND = { perRecord: 9_000, perByte: 26, topUp: 20_000, perBatch: 150_000 } as const;

/**
 * Gas to allow a batch sent without a preflight: an upper bound from its bytes and kinds, capped
 * at the EIP-7825 per-transaction maximum (a bound at the cap means the batch may not fit). Only
 * the gas used is paid. Per record, as the ledger's loop spends it (docs/FORMAT.md 5, 6):
 *   9,000 fixed: the account word's cold load and update (5,000), the Recorded log's base and
 *     four topics (1,875), the loop and the chain link;
 *   26 a byte: 16 of calldata, 8 of log data, and hashing and copying it;
 *   20,000 more for a top-up, which may open its account (a fresh word costs 17,100 more).
 * Measured by the gas bench: ~8,900 a record on an open account, ~26,300 opening one, with
 * typical 147-byte records. 150,000 covers the transaction and the batch (merchant books, role
 * check, BatchRecorded). And never below the EIP-7623 floor of 40 gas a calldata byte.
 * Internal (not in src/index.ts); exported for its test.
 */
export function gasBound(envelope: Uint8Array, packed: Uint8Array): bigint {
  let gas = GAS_BOUND.perByte * envelope.length;
  for (let at = 3; at + RECORD_HEAD_BYTES <= packed.length; ) {
    const bytes = RECORD_HEAD_BYTES + ((packed[at + 71] << 8) | packed[at + 72]);
    gas += GAS_BOUND.perRecord + GAS_BOUND.perByte * bytes + (packed[at] === 1 ? GAS_BOUND.topUp : 0);
    at += bytes;
  }
  const calldataFloor = 40 * (envelope.length + packed.length + 256); // 256: selector, ABI words
  const bound = BigInt(GAS_BOUND.perBatch) + BigInt(Math.max(gas, calldataFloor));
  return bound < MAX_TX_GAS ? bound : MAX_TX_GAS;
}

/** Hex the journal wrote itself (its lines are JSON-checked on reading): no shape check needed. */
const journalBytes = (hex: string): Uint8Array => Buffer.from(hex.slice(2), "hex");

/**
 * Calldata for a TransactionRequest, as bytes. ethers types `data` as a hex string, but every
 * ethers signer (Wallet, JsonRpcSigner, Hardhat's) passes it through `hexlify()`, which takes
 * bytes as they are; a hex string it would first parse back a digit at a time, ~20% of the
 * upload time at 1,000 records a batch.
 */
const calldata = (bytes: Uint8Array): string => bytes as unknown as string;

/**
 * Resolves two turns of the event loop later (setImmediate runs after a turn's I/O). submit()
 * first journals the batch and has the signer ask the node one question (ethers signers read
 * the block number, nonce or fees before sending); the answer is handled in the next turn's I/O
 * and the transaction goes out in the same turn, before anything this schedules.
 */
const afterTwoTurns = (): Promise<void> =>
  new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

/** Adds how far an upload got to the error that stopped it. */
function withProgress(e: unknown, landed: number, total: number): unknown {
  if (!(e instanceof PrepaidLedgerError)) return e;
  return new PrepaidLedgerError(e.code, e.shortMessage, {
    details: { ...e.details, landed, notLanded: total - landed },
    cause: e.cause ?? e,
    retryable: e.retryable,
  });
}

export class Uploader {
  readonly config: UploaderConfigValues;
  readonly journal: Journal;
  private readonly ledger: Contract;
  private readonly signer: Signer;
  private readonly recipients: Recipient[];
  private nextSequence: bigint | undefined;
  private recovered = false;

  private constructor(config: UploaderConfigValues, signer: Signer, journal: Journal) {
    this.config = config;
    this.signer = signer;
    this.ledger = new Contract(config.ledger, PREPAID_LEDGER_ABI, signer as ContractRunner);
    this.journal = journal;
    this.recipients = [{ publicKey: config.regulatorPublicKey, role: "regulator" }];
    if (config.merchantPublicKey !== undefined) {
      this.recipients.push({ publicKey: config.merchantPublicKey, role: "merchant" });
    }
  }

  /**
   * Validates the configuration, connects to the ledger and opens the journal.
   *
   * @param input - see {@link UploaderConfig}
   * @param signer - a recorder key of the merchant, connected to a provider
   * @throws PrepaidLedgerError `INVALID_CONFIG` (every wrong field, by path), `RPC_ERROR`
   */
  static async open(input: UploaderConfigInput, signer: Signer): Promise<Uploader> {
    const config = parseConfig(UploaderConfig, input, "uploader");
    if (signer.provider === null) {
      throw new PrepaidLedgerError("INVALID_CONFIG", "the signer must be connected to a provider");
    }
    let chainId: bigint;
    let code: string;
    try {
      chainId = (await signer.provider.getNetwork()).chainId;
      code = await signer.provider.getCode(config.ledger);
    } catch (e) {
      throw toLedgerError(e, { ledger: config.ledger });
    }
    if (code === "0x") {
      throw new PrepaidLedgerError("INVALID_CONFIG", "no contract at the ledger address on this chain", {
        details: { ledger: config.ledger, chainId },
      });
    }
    const journal = Journal.open(config.journalPath, {
      chainId: chainId.toString(),
      ledger: config.ledger.toLowerCase(),
      merchantId: config.merchantId,
    });
    return new Uploader(config, signer, journal);
  }

  /**
   * Uploads records, in order, in batches of `batchSize`; resolves once every batch has landed.
   * Recovers the journal's unfinished batches first.
   *
   * @returns one entry per record, in input order
   * @throws PrepaidLedgerError `INVALID_ARGUMENT` (bad details: nothing sent), `LEDGER_REVERTED`
   *   (the ledger refused a batch; earlier batches stay landed, the refused one is kept in the
   *   journal as rejected), `RPC_ERROR` (retryable: call again, nothing is lost or doubled)
   */
  async upload(details: readonly RecordDetails[]): Promise<UploadedRecord[]> {
    for (const [i, d] of details.entries()) {
      if (d.merchantId !== this.config.merchantId) {
        throw new PrepaidLedgerError("INVALID_ARGUMENT", "record belongs to another merchant", {
          details: { index: i, merchantId: d.merchantId, expected: this.config.merchantId },
        });
      }
    }
    if (!this.recovered) await this.recover();
    const chunks: RecordDetails[][] = [];
    for (let start = 0; start < details.length; start += this.config.batchSize) {
      chunks.push(details.slice(start, start + this.config.batchSize));
    }
    const out: UploadedRecord[] = [];
    // Batch i+1 is sealed (JavaScript, this thread) while batch i's transaction executes (the
    // node, another thread); only one batch is ever in flight, so sequence numbers stay in order.
    // Sealing starts two turns of the event loop after submit(): by then batch i is journaled and
    // on its way to the node, so the sealing fills the wait instead of delaying the send.
    let sealing = chunks.length > 0 ? this.seal(chunks[0]) : undefined;
    for (let i = 0; i < chunks.length; i++) {
      try {
        const sealed = await sealing!;
        const landing = this.submit(chunks[i], sealed, out);
        sealing = i + 1 < chunks.length ? afterTwoTurns().then(() => this.seal(chunks[i + 1])) : undefined;
        await landing;
      } catch (e) {
        sealing?.catch(() => undefined);
        throw withProgress(e, out.length, details.length);
      }
    }
    return out;
  }

  /**
   * Settles every batch the journal holds that has not landed: resends it (same bytes) or, if it
   * landed before a crash, records where. Safe to call any number of times.
   *
   * @returns the records of the batches it settled
   */
  async recover(): Promise<UploadedRecord[]> {
    const out: UploadedRecord[] = [];
    for (const entry of this.journal.pending()) out.push(...(await this.settle(entry, false)));
    this.recovered = true;
    return out;
  }

  /**
   * How many records the journal has accepted: every record of every batch it holds, except
   * batches the ledger rejected. They have landed or will land at the next recover(). A process
   * restarted after a crash resumes its stream of records after this many.
   */
  journaledCount(): number {
    let n = 0;
    for (const entry of this.journal.entries.values()) if (entry.rejected === undefined) n += entry.batch.count;
    return n;
  }

  /** Closes the journal file. */
  close(): void {
    this.journal.close();
  }

  private seal(chunk: readonly RecordDetails[]): Promise<SealedBatch> {
    return this.config.mode === "batch" ? sealBatch(chunk, this.recipients) : sealSingles(chunk, this.config.regulatorPublicKey);
  }

  /**
   * Preflights, journals and settles one sealed batch, appending its records to `out` once it
   * lands. A batch whose gas would pass the EIP-7825 cap (brand-new accounts cost ~29k gas a
   * record, existing ones ~12k; see {@link gasBound}) is split in two and each half sealed and
   * submitted in turn, before anything is journaled.
   */
  private async submit(chunk: readonly RecordDetails[], sealed: SealedBatch, out: UploadedRecord[]): Promise<void> {
    const split = async () => {
      const half = Math.ceil(chunk.length / 2);
      for (const part of [chunk.slice(0, half), chunk.slice(half)]) await this.submit(part, await this.seal(part), out);
    };
    let gasLimit = gasBound(sealed.envelope, sealed.packed);
    if (!this.config.preflight && chunk.length > 1 && gasLimit >= MAX_TX_GAS) return split();
    const sequence = await this.takeSequence();
    if (this.config.preflight) {
      try {
        const estimate = await this.signer.estimateGas({
          to: this.config.ledger,
          data: calldata(encodeRecordBatchCall(this.config.merchantId, sequence, sealed.envelope, sealed.packed)),
        });
        if (estimate > MAX_TX_GAS && chunk.length > 1) {
          this.nextSequence = sequence;
          return split();
        }
        gasLimit = (estimate * 12n) / 10n < MAX_TX_GAS ? (estimate * 12n) / 10n : MAX_TX_GAS;
      } catch (e) {
        this.nextSequence = sequence;
        const error = toLedgerError(e, { merchantId: this.config.merchantId, sequence });
        // Out of gas inside the 2^24 cap carries no revert data: the batch is too big, not wrong.
        if (!isError(error, "LEDGER_REVERTED") && !isError(error, "RPC_ERROR") && chunk.length > 1) return split();
        throw error;
      }
    }
    this.journal.append({
      t: "batch",
      sequence: sequence.toString(),
      envelope: bytesToHex(sealed.envelope),
      packed: bytesToHex(sealed.packed),
      count: sealed.records.length,
      salts: sealed.salts.map(bytesToHex),
      gasLimit: gasLimit.toString(),
    });
    out.push(...(await this.settle(this.journal.entries.get(sequence.toString())!, true)));
  }

  /** The sequence number for a new batch: the chain's, or past the journal's last. */
  private async takeSequence(): Promise<bigint> {
    if (this.nextSequence === undefined) this.nextSequence = await this.chainSequence();
    const last = this.journal.lastSequence();
    const sequence = this.nextSequence > last ? this.nextSequence : last + 1n;
    this.nextSequence = sequence + 1n;
    return sequence;
  }

  private async chainSequence(): Promise<bigint> {
    try {
      const books = await this.ledger.merchantBooks(this.config.merchantId);
      return books.nextSequence as bigint;
    } catch (e) {
      throw toLedgerError(e, { merchantId: this.config.merchantId });
    }
  }

  /**
   * Brings one journaled batch to a final state: landed (done) or refused (rejected). Sends it
   * when its sequence number is the chain's next; checks whether it is ours when the number is
   * already used; moves it to a fresh number when another batch took its number.
   *
   * @param fresh - the batch was just given the next number we expect: send without asking the
   *   chain first (a wrong guess comes back as a sequence error, and then the chain is asked)
   */
  private async settle(initial: JournalEntry, fresh: boolean): Promise<UploadedRecord[]> {
    let entry = initial;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 8) {
        throw new PrepaidLedgerError("SEQUENCE_CONFLICT", "could not place the batch after repeated sequence conflicts", {
          details: { merchantId: this.config.merchantId, sequence: entry.batch.sequence },
          retryable: true,
        });
      }
      const sequence = BigInt(entry.batch.sequence);
      const next = fresh && attempt === 0 ? sequence : await this.chainSequence();
      if (next > sequence) {
        const landed = await this.findLanded(entry);
        if (landed !== undefined) return this.markDone(entry, landed);
        const free = next > this.journal.lastSequence() ? next : this.journal.lastSequence() + 1n;
        entry = this.journal.resequence(entry, free);
        this.nextSequence = free + 1n;
        continue;
      }
      if (next < sequence) {
        throw new PrepaidLedgerError("SEQUENCE_CONFLICT", "the journal is ahead of the chain: an earlier batch is missing", {
          details: { merchantId: this.config.merchantId, sequence, chainNext: next, journal: this.journal.path },
        });
      }
      const receipt = await this.send(entry);
      if (receipt !== undefined) return this.markDone(entry, receipt);
      // The number was taken (by our own earlier send, or another uploader) or is not next yet:
      // ask the chain and look again.
    }
  }

  /** Sends a batch; returns its receipt, or undefined if the sequence number was already used. */
  private async send(entry: JournalEntry): Promise<Receipt | undefined> {
    const sequence = BigInt(entry.batch.sequence);
    const envelope = journalBytes(entry.batch.envelope);
    const packed = journalBytes(entry.batch.packed);
    try {
      const gasLimit = BigInt(entry.batch.gasLimit ?? gasBound(envelope, packed));
      // The calldata is encoded here, once: through the Contract, ethers would encode it a hex
      // digit at a time (~40 ms for 1,000 records).
      const data = calldata(encodeRecordBatchCall(this.config.merchantId, sequence, envelope, packed));
      const tx = await this.signer.sendTransaction({ to: this.config.ledger, data, gasLimit });
      // Ask for the receipt once before ethers' wait(): on an automining node it is there at once,
      // and wait() would first sleep a polling interval. The node looks it up while "sent" is
      // flushed to disk (a rejection is handled when it is awaited below, or ignored if the
      // journal write throws first).
      const asked = this.config.confirmations === 1 ? fetchReceipt(this.ledger.runner!.provider!, tx.hash) : undefined;
      asked?.catch(() => undefined);
      this.journal.append({ t: "sent", sequence: entry.batch.sequence, txHash: tx.hash });
      if (asked !== undefined) {
        const receipt = await asked;
        if (receipt !== null) {
          if (receipt.status !== 1) throw new PrepaidLedgerError("LEDGER_REVERTED", "the batch transaction reverted", { details: { txHash: tx.hash } });
          return receipt;
        }
      }
      await tx.wait(this.config.confirmations);
      return (await fetchReceipt(this.ledger.runner!.provider!, tx.hash))!;
    } catch (e) {
      const error = toLedgerError(e, { merchantId: this.config.merchantId, sequence });
      if (isError(error, "LEDGER_REVERTED")) {
        const name = error.details.error;
        this.nextSequence = undefined;
        if (name === "LedgerBatchReplayed" || name === "LedgerSequenceGap") return undefined;
        this.journal.append({ t: "rejected", sequence: entry.batch.sequence, error: String(name) });
      }
      throw error;
    }
  }

  /** The receipt of the transaction that booked this batch, if one did. */
  private async findLanded(entry: JournalEntry): Promise<Receipt | undefined> {
    // The first record's commitment: bytes 42..74 of the packed batch (docs/FORMAT.md 5).
    const first = "0x" + entry.batch.packed.slice(2 + 2 * 42, 2 + 2 * 74);
    const provider = this.ledger.runner!.provider!;
    try {
      const candidates: string[] = [...entry.sentTxHashes];
      const logs = await this.ledger.queryFilter(
        this.ledger.filters.BatchRecorded(this.config.merchantId, BigInt(entry.batch.sequence)),
      );
      candidates.push(...logs.map((l: Log) => l.transactionHash));
      for (const hash of new Set(candidates)) {
        const receipt = await fetchReceipt(provider, hash);
        if (receipt === null || receipt.status !== 1) continue;
        const ours = receipt.logs.some((l) => l.topics.length === 4 && l.topics[3] === first);
        if (ours) return receipt;
      }
      return undefined;
    } catch (e) {
      throw toLedgerError(e, { merchantId: this.config.merchantId, sequence: entry.batch.sequence });
    }
  }

  private markDone(entry: JournalEntry, receipt: Receipt): UploadedRecord[] {
    const topic = this.ledger.interface.getEvent("BatchRecorded")!.topicHash;
    const sequenceTopic = "0x" + BigInt(entry.batch.sequence).toString(16).padStart(64, "0");
    const raw = receipt.logs.find((l) => l.topics[0] === topic && l.topics[2] === sequenceTopic);
    const batchLog = raw === undefined ? null : this.ledger.interface.parseLog({ topics: [...raw.topics], data: raw.data });
    if (batchLog === null) {
      throw new PrepaidLedgerError("SEQUENCE_CONFLICT", "the landed transaction has no BatchRecorded for this batch", {
        details: { txHash: receipt.hash, sequence: entry.batch.sequence },
      });
    }
    const firstRecordIndex = batchLog.args.firstRecordIndex as bigint;
    this.journal.append({
      t: "done",
      sequence: entry.batch.sequence,
      txHash: receipt.hash,
      blockNumber: receipt.blockNumber,
      firstRecordIndex: firstRecordIndex.toString(),
    });
    const packed = journalBytes(entry.batch.packed);
    const out: UploadedRecord[] = [];
    let at = 3;
    for (let i = 0; i < entry.batch.count; i++) {
      const length = (packed[at + 71] << 8) | packed[at + 72];
      out.push({
        merchantId: this.config.merchantId,
        sequence: BigInt(entry.batch.sequence),
        recordIndex: firstRecordIndex + BigInt(i),
        txHash: receipt.hash,
        blockNumber: receipt.blockNumber,
        account: bytesToHex(packed.subarray(at + 7, at + 39)),
        commitment: bytesToHex(packed.subarray(at + 39, at + 71)),
        salt: entry.batch.salts[i],
      });
      at += 73 + length;
    }
    return out;
  }
}
