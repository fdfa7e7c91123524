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
 * Exactly once, whatever the network does:
 * - every batch is sealed once and written to the journal (fsync) before its transaction is
 *   sent, under the merchant's next batch sequence number; the contract refuses a number twice,
 *   so resending a journaled batch can never book it twice (src/upload/settle.ts);
 * - every record has an identity (src/upload/identity.ts: its order reference on its card), kept
 *   in the journal with the batch that holds it, so calling `upload()` again with records it was
 *   given before returns their first outcome instead of booking them again;
 * - a batch counts as landed only `confirmations` blocks deep; until then a reorg that removes
 *   it is detected by block hash and the batch sent again, in order;
 * - every call starts by settling what the journal holds (resending what never landed), so one
 *   failed batch never blocks later ones.
 */
import { getAddress, type Signer } from "ethers";

import { parseConfig } from "../config.js";
import { validateDetails, type RecordDetails } from "../crypto/details.js";
import type { Recipient } from "../crypto/envelope.js";
import { bytesToHex } from "../crypto/hash.js";
import { PrepaidLedgerError, isError } from "../errors.js";
import { encodeRecordBatchCall } from "../ledger/codec.js";
import type { Receipt } from "../receipt/receipt.js";
import { UploaderChain } from "./chain.js";
import { UploaderConfig, confirmationsFor, inFlightFor, type UploaderConfigInput, type UploaderConfigValues } from "./config.js";
import { MAX_TX_GAS, gasBound } from "./gas.js";
import { packedRecords, recordKey, sameDetails, type PackedEntryRecord } from "./identity.js";
import { landedReceipt, type ReceiptIds } from "./receipts.js";
import { Journal, type JournalEntry } from "./journal.js";
import { sendPipelined } from "./pipeline.js";
import { sealCheckedBatch, sealSingles, type SealedBatch } from "./sealing.js";
import { Settler, calldata } from "./settle.js";

export { UploaderConfig, inFlightFor, type UploaderConfigInput, type UploaderConfigValues } from "./config.js";
export { GAS_BOUND, MAX_TX_GAS, gasBound } from "./gas.js";

/** What identifies one landed record on chain (what {@link Uploader.recover} returns). */
export interface LandedRecord {
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

/** A record {@link Uploader.upload} landed: where it is on chain, and its card holder's receipt. */
export interface UploadedRecord extends LandedRecord {
  /**
   * The record's receipt (docs/FORMAT.md 10): chain, ledger, record index, block, commitment,
   * salt and the plain details. Give it to the card holder: `receiptToCompact(receipt)` for a QR
   * code, `receiptToJson(receipt)` for a file; they check it with `prepaid receipt verify`.
   */
  receipt: Receipt;
}

/** Records to upload, each with its identity key. */
type Keyed = { details: RecordDetails; key: string }[];

/**
 * Resolves two turns of the event loop later (setImmediate runs after a turn's I/O). submit()
 * first journals the batch and has the signer ask the node one question (ethers signers read
 * the block number, nonce or fees before sending); the answer is handled in the next turn's I/O
 * and the transaction goes out in the same turn, before anything this schedules.
 */
const afterTwoTurns = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

export class Uploader {
  readonly config: UploaderConfigValues;
  readonly journal: Journal;
  /** The finality depth in force: the configured one, or the chain's default (see {@link UploaderConfig}). */
  readonly confirmations: number;
  private readonly chain: UploaderChain;
  private readonly settler: Settler;
  private readonly recipients: Recipient[];
  /** One call at a time: batches must leave in sequence order. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly parsed = new WeakMap<object, PackedEntryRecord[]>();
  /** The chain id and checksummed ledger every receipt carries, worked out once. */
  private receiptIds: ReceiptIds | undefined;

  private constructor(config: UploaderConfigValues, chain: UploaderChain, journal: Journal, confirmations: number, head: number) {
    this.config = config;
    this.chain = chain;
    this.journal = journal;
    this.confirmations = confirmations;
    this.settler = new Settler(chain, journal, {
      merchantId: config.merchantId,
      confirmations,
      pollingIntervalMs: config.pollingIntervalMs,
    });
    this.settler.head = head;
    this.recipients = [{ publicKey: config.regulatorPublicKey, role: "regulator" }];
    if (config.merchantPublicKey !== undefined) {
      this.recipients.push({ publicKey: config.merchantPublicKey, role: "merchant" });
    }
  }

  /**
   * The identity the uploader knows a record by: `(merchantId, kind, account, orderRef)`, or
   * every detail when `orderRef` is empty (src/upload/identity.ts). Give each record its own.
   */
  static recordKey(details: RecordDetails): string {
    validateDetails(details);
    return recordKey(details);
  }

  /**
   * Validates the configuration, connects to the ledger and opens the journal.
   *
   * @param input - see {@link UploaderConfig}
   * @param signer - a recorder key of the merchant, connected to a provider
   * @throws PrepaidLedgerError `INVALID_CONFIG` (every wrong field, by path), `RPC_ERROR` or
   *   `TIMEOUT` (retryable)
   */
  static async open(input: UploaderConfigInput, signer: Signer): Promise<Uploader> {
    const config = parseConfig(UploaderConfig, input, "uploader");
    if (signer.provider === null) {
      throw new PrepaidLedgerError("INVALID_CONFIG", "the signer must be connected to a provider");
    }
    const chain = new UploaderChain(signer, config.ledger, config.merchantId, config.rpcTimeoutMs);
    const provider = signer.provider;
    const chainId = (await chain.call("eth_chainId", () => provider.getNetwork())).chainId;
    const code = await chain.call("eth_getCode", () => provider.getCode(config.ledger));
    if (code === "0x") {
      throw new PrepaidLedgerError("INVALID_CONFIG", "no contract at the ledger address on this chain", {
        details: { ledger: config.ledger, chainId },
      });
    }
    const head = await chain.head();
    const journal = Journal.open(config.journalPath, {
      chainId: chainId.toString(),
      ledger: config.ledger.toLowerCase(),
      merchantId: config.merchantId,
    });
    return new Uploader(config, chain, journal, confirmationsFor(chainId, config.confirmations), head);
  }

  /**
   * Uploads records, in order, in batches of `batchSize`; resolves once every batch is final
   * (`confirmations` deep). First settles whatever the journal holds from earlier calls.
   *
   * Retry contract: after any error, calling `upload()` again with the same records never books
   * one twice. Each record is known by its identity (see {@link Uploader.recordKey}); a record
   * the uploader was given before is not sealed again: the call returns its first outcome (once
   * final), sending its batch again if that batch never landed or a reorg removed it. Records of
   * a failed call may land without a second call (they are journaled; the next call of any kind
   * settles them first); call again with them to learn where.
   *
   * @returns one entry per record, in input order, each final
   * @throws PrepaidLedgerError
   *   - `INVALID_ARGUMENT`: bad details, another merchant's record, or one identity twice in the
   *     call — nothing sent;
   *   - `RECORD_CONFLICT`: a record has the identity of one given before with other details —
   *     nothing sent (give it its own `orderRef`);
   *   - `LEDGER_REVERTED`: the ledger refused a batch (custom error in `details.error`/`args`);
   *     earlier batches stay landed, the refused one's records are released (a later call may
   *     send them again); not retryable as is;
   *   - `RPC_ERROR`, `TIMEOUT` (retryable): the node failed, did not answer in time, or the
   *     batches did not reach finality within `finalityTimeoutMs` — call again with the same
   *     records (or call `recover()`): nothing is lost or doubled;
   *   - `SEQUENCE_CONFLICT`: the chain is missing batches this journal does not hold
   *     (`details.fix` says what to do).
   *   Every error carries `details.landed` / `details.notLanded`: how many of the call's records
   *   are final.
   */
  upload(details: readonly RecordDetails[]): Promise<UploadedRecord[]> {
    return this.exclusive(() => this.uploadNow(details));
  }

  /**
   * Settles every batch the journal holds that is not final: resends what never landed (same
   * bytes), records where a batch landed while its answer was lost, resends batches a reorg
   * removed, and waits until all are `confirmations` deep. Safe to call any number of times;
   * `upload()` does the same first.
   *
   * @returns the records of the batches that became final in this call, without receipts: the
   *   journal keeps no plain details (only the sealed, encrypted bytes and the salts), and a
   *   receipt carries them. To get a resumed record's receipt, call {@link upload} again with the
   *   same records: it returns their first outcome, receipts included, and books nothing twice.
   * @throws PrepaidLedgerError as {@link upload} (`RPC_ERROR` / `TIMEOUT`: call again)
   */
  recover(): Promise<LandedRecord[]> {
    return this.exclusive(async () => {
      const deadline = Date.now() + this.config.finalityTimeoutMs;
      this.settler.drainFinal();
      await this.settleJournal(deadline);
      await this.settler.awaitFinal(deadline);
      return this.settler.drainFinal().flatMap((entry) => this.recordsOf(entry));
    });
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

  private exclusive<T>(run: () => Promise<T>): Promise<T> {
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Resends what never landed and what a reorg removed, in order. */
  private async settleJournal(deadline: number): Promise<void> {
    await this.settler.reconcile();
    await this.settler.settlePending(deadline);
  }

  private async uploadNow(details: readonly RecordDetails[]): Promise<UploadedRecord[]> {
    const keys = this.identify(details);
    const deadline = Date.now() + this.config.finalityTimeoutMs;
    try {
      await this.settleJournal(deadline);
      const fresh: Keyed = [];
      for (const [i, d] of details.entries()) {
        const place = this.journal.find(keys[i]);
        if (place === undefined) {
          fresh.push({ details: d, key: keys[i] });
          continue;
        }
        const record = this.parsedOf(place.entry)[place.position];
        if (!sameDetails(d, place.entry.batch.salts[place.position], record.commitment)) {
          throw new PrepaidLedgerError("RECORD_CONFLICT", "a record with this identity was given before with other details", {
            details: { index: i, orderRef: d.orderRef, sequence: place.entry.batch.sequence, key: keys[i] },
          });
        }
      }
      await this.uploadFresh(fresh, deadline);
      await this.settler.awaitFinal(deadline);
    } catch (e) {
      if (!(e instanceof PrepaidLedgerError)) throw e;
      const landed = keys.filter((k) => this.journal.find(k)?.entry.done !== undefined).length;
      throw new PrepaidLedgerError(e.code, e.shortMessage, {
        details: { ...e.details, landed, notLanded: details.length - landed },
        cause: e.cause ?? e,
        retryable: e.retryable,
      });
    }
    // Each batch's records built once, not once per record: a 1,000-record batch would otherwise
    // build a million objects (once the largest cost of an upload, more than the node's).
    const batches = new Map<JournalEntry, LandedRecord[]>();
    return keys.map((key, i) => {
      const place = this.journal.find(key)!;
      let records = batches.get(place.entry);
      if (records === undefined) batches.set(place.entry, (records = this.recordsOf(place.entry)));
      const landed = records[place.position]!;
      this.receiptIds ??= { chainId: BigInt(this.journal.header.chainId), ledger: getAddress(this.config.ledger) };
      return { ...landed, receipt: landedReceipt(this.receiptIds, landed, details[i]) };
    });
  }

  /** Checks every record before anything is sent; returns their identity keys. */
  private identify(details: readonly RecordDetails[]): string[] {
    const seen = new Map<string, number>();
    return details.map((d, i) => {
      if (d.merchantId !== this.config.merchantId) {
        throw new PrepaidLedgerError("INVALID_ARGUMENT", "record belongs to another merchant", {
          details: { index: i, merchantId: d.merchantId, expected: this.config.merchantId },
        });
      }
      try {
        validateDetails(d);
      } catch (e) {
        if (isError(e)) throw new PrepaidLedgerError(e.code, e.shortMessage, { details: { ...e.details, index: i }, cause: e });
        throw e;
      }
      const key = recordKey(d);
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        throw new PrepaidLedgerError("INVALID_ARGUMENT", "two records of the call have one identity (kind, account, orderRef)", {
          details: { index: i, sameAs: earlier, orderRef: d.orderRef },
        });
      }
      seen.set(key, i);
      return key;
    });
  }

  /**
   * Seals and submits new records in batches of `batchSize`. With `inFlight` ≥ 2 (the default
   * without preflight), src/upload/pipeline.ts sends them. Otherwise one batch is in flight at a
   * time: batch i+1 is sealed (JavaScript, this thread) while batch i's transaction executes (the
   * node, another thread); sealing starts two turns of the event loop after submit(): by then
   * batch i is journaled and on its way to the node.
   */
  private async uploadFresh(records: Keyed, deadline: number): Promise<void> {
    const chunks: Keyed[] = [];
    for (let start = 0; start < records.length; start += this.config.batchSize) {
      chunks.push(records.slice(start, start + this.config.batchSize));
    }
    const window = inFlightFor(this.config);
    if (window > 1 && chunks.length > 1) {
      return sendPipelined(
        {
          merchantId: this.config.merchantId,
          chain: this.chain,
          settler: this.settler,
          seal: (chunk) => this.seal(chunk),
          journalBatch: (chunk, sealed, sequence, gasLimit) => this.journalBatch(chunk, sealed, sequence, gasLimit),
          submitOne: (chunk, sealed) => this.submit(chunk, sealed, deadline),
          appendSent: (entry, txHash) => this.journal.append({ t: "sent", sequence: entry.batch.sequence, txHash }),
          size: (chunk) => chunk.length,
        },
        chunks,
        window,
        deadline,
      );
    }
    let sealing = chunks.length > 0 ? this.seal(chunks[0]) : undefined;
    for (let i = 0; i < chunks.length; i++) {
      try {
        const sealed = await sealing!;
        const landing = this.submit(chunks[i], sealed, deadline);
        sealing = i + 1 < chunks.length ? afterTwoTurns().then(() => this.seal(chunks[i + 1])) : undefined;
        await landing;
      } catch (e) {
        sealing?.catch(() => undefined);
        throw e;
      }
    }
  }

  private seal(chunk: Keyed): Promise<SealedBatch> {
    const details = chunk.map((r) => r.details);
    // Every record was checked by identify() (validateDetails, this merchant) before any is sealed.
    return this.config.mode === "batch"
      ? sealCheckedBatch(details, this.recipients, this.config.merchantId)
      : sealSingles(details, this.config.regulatorPublicKey);
  }

  /**
   * Preflights, journals and settles one sealed batch. A batch whose gas would pass the EIP-7825
   * cap (brand-new accounts cost ~29k gas a record, existing ones ~12k; see {@link gasBound}) is
   * split in two and each half sealed and submitted in turn, before anything is journaled.
   */
  private async submit(chunk: Keyed, sealed: SealedBatch, deadline: number): Promise<void> {
    const split = async () => {
      const half = Math.ceil(chunk.length / 2);
      for (const part of [chunk.slice(0, half), chunk.slice(half)]) await this.submit(part, await this.seal(part), deadline);
    };
    let gasLimit = gasBound(sealed.envelope, sealed.packed);
    if (!this.config.preflight && chunk.length > 1 && gasLimit >= MAX_TX_GAS) return split();
    let sequence = await this.settler.takeSequence();
    for (let attempt = 0; this.config.preflight; attempt++) {
      const data = calldata(encodeRecordBatchCall(this.config.merchantId, sequence, sealed.envelope, sealed.packed));
      try {
        const estimate = await this.chain.estimate(data, { sequence });
        if (estimate > MAX_TX_GAS && chunk.length > 1) {
          this.settler.nextSequence = sequence;
          return split();
        }
        gasLimit = (estimate * 12n) / 10n < MAX_TX_GAS ? (estimate * 12n) / 10n : MAX_TX_GAS;
        break;
      } catch (e) {
        this.settler.nextSequence = sequence;
        const name = isError(e, "LEDGER_REVERTED") ? e.details.error : undefined;
        if ((name === "LedgerSequenceGap" || name === "LedgerBatchReplayed") && attempt < 3) {
          // Not a refusal of the batch: the chain moved (a reorg, another recorder). Catch up, renumber.
          this.settler.nextSequence = undefined;
          await this.settleJournal(deadline);
          sequence = await this.settler.takeSequence();
          continue;
        }
        // Out of gas inside the 2^24 cap carries no revert data: the batch is too big, not wrong.
        if (!isError(e, "LEDGER_REVERTED") && !(isError(e) && e.retryable) && chunk.length > 1) return split();
        throw e;
      }
    }
    await this.settler.settle(this.journalBatch(chunk, sealed, sequence, gasLimit), true, deadline);
  }

  /** Writes a sealed batch to the journal (fsync) under `sequence`, before anything sends it. */
  private journalBatch(chunk: Keyed, sealed: SealedBatch, sequence: bigint, gasLimit: bigint): JournalEntry {
    this.journal.append({
      t: "batch",
      sequence: sequence.toString(),
      envelope: bytesToHex(sealed.envelope),
      packed: bytesToHex(sealed.packed),
      count: sealed.records.length,
      salts: sealed.salts.map(bytesToHex),
      gasLimit: gasLimit.toString(),
      keys: chunk.map((r) => r.key),
      fromBlock: this.settler.fromBlock(),
    });
    return this.journal.entries.get(sequence.toString())!;
  }

  private parsedOf(entry: JournalEntry): PackedEntryRecord[] {
    let records = this.parsed.get(entry.batch);
    if (records === undefined) {
      records = packedRecords(Buffer.from(entry.batch.packed.slice(2), "hex"), entry.batch.count);
      this.parsed.set(entry.batch, records);
    }
    return records;
  }

  /** The records of a final batch, as recover() returns them (upload() adds receipts). */
  private recordsOf(entry: JournalEntry): LandedRecord[] {
    const done = entry.done!;
    const firstRecordIndex = BigInt(done.firstRecordIndex);
    return this.parsedOf(entry).map((r, i) => ({
      merchantId: this.config.merchantId,
      sequence: BigInt(entry.batch.sequence),
      recordIndex: firstRecordIndex + BigInt(i),
      txHash: done.txHash,
      blockNumber: done.blockNumber,
      account: r.account,
      commitment: r.commitment,
      salt: entry.batch.salts[i],
    }));
  }
}
