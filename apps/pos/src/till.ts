/**
 * The till: records the cashier enters, batched and uploaded from the browser exactly once.
 *
 * The Node uploader's rules (src/upload/uploader.ts), on the browser's storage and crypto:
 * - a record is stored in IndexedDB as soon as it is entered ("queued");
 * - every `batchMs` the queued records are sealed for the regulator (src/browser), preflighted
 *   (a record the ledger refuses, an overdraw say, is set aside with its decoded custom error),
 *   and journaled under the merchant's next batch sequence number before the transaction goes
 *   out; the ledger refuses a number twice, so a resend never books a batch twice;
 * - on opening, the journal is settled first by the uploader's own `Settler`: a batch that never
 *   landed is sent again with the same bytes, one that landed while the tab was closed is found
 *   by its BatchRecorded log and not sent again.
 */
import type { Signer } from "ethers";

import { sealBatch } from "../../../src/browser/sealing.js";
import { recordKey } from "../../../src/browser/identity.js";
import { bytesToHex, hexToBytes } from "../../../src/crypto/bytes.js";
import type { RecordDetails } from "../../../src/crypto/details.js";
import type { Recipient } from "../../../src/crypto/envelope-format.js";
import { PrepaidLedgerError, isError } from "../../../src/errors.js";
import { encodeRecordBatchCall, unpackBatch, type PackedRecord } from "../../../src/ledger/codec.js";
import { UploaderChain } from "../../../src/upload/chain.js";
import { confirmationsFor } from "../../../src/upload/config.js";
import { MAX_TX_GAS } from "../../../src/upload/gas.js";
import { Settler, calldata } from "../../../src/upload/settle.js";
import { IdbJournal, type Action, type StoredDetails, type StoredRecord } from "./journal.js";
import { describeError } from "./errors.js";

/** What the till needs to know (apps/pos/README: from the URL or the setup form). */
export interface TillConfig {
  ledger: string;
  merchantId: number;
  regulatorPublicKey: string;
  /** Milliseconds records wait for others to share their batch. */
  batchMs: number;
}

/** Where a record landed on chain. */
export interface Landed {
  recordIndex: bigint;
  txHash: string;
  blockNumber: number;
  commitment: string;
  salt: string;
}

/** A record as the cashier's screen shows it. */
export interface RecordView extends StoredRecord {
  landed?: Landed;
  /** The journal holds its batch, not yet on chain. */
  sending: boolean;
}

/** How the till stands, for the status line. */
export interface TillStatus {
  queued: number;
  sending: number;
  /** The last problem that stopped uploading for now (retried by itself). */
  problem?: string;
  busy: boolean;
}

const RETRY_MS = 3_000;
/** After a problem a retry will not cure by itself (a wallet that refused, a suspended merchant). */
const SLOW_RETRY_MS = 30_000;
/**
 * Refusals about the till, not the record: its records stay queued, to go out once the wallet or
 * the merchant's standing is put right.
 */
const TILL_REFUSALS = new Set([
  "LedgerUnauthorizedRecorder",
  "LedgerMerchantSuspended",
  "LedgerMerchantClosed",
  "LedgerUnknownMerchant",
  "LedgerUndercovered",
  "EnforcedPause",
]);
const FINALITY_MS = 120_000;

/** Stored details back to `RecordDetails` (the amount as a bigint). */
export const toDetails = (d: StoredDetails): RecordDetails => ({ ...d, amount: BigInt(d.amount) });
const fromDetails = (d: RecordDetails): StoredDetails => ({ ...d, amount: d.amount.toString() });

/**
 * One merchant's till in this browser: takes records, batches and uploads them, and says where
 * each stands; fires `change` whenever something did.
 */
export class Till extends EventTarget {
  private readonly records = new Map<string, StoredRecord>();
  private readonly settler: Settler;
  private readonly recipients: Recipient[];
  private pumping: Promise<void> = Promise.resolve();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private problem: string | undefined;
  private busy = false;
  private readonly unpacked = new Map<string, PackedRecord[]>();

  private constructor(
    readonly config: TillConfig,
    readonly chainId: bigint,
    private readonly chain: UploaderChain,
    readonly journal: IdbJournal,
    records: StoredRecord[],
  ) {
    super();
    for (const r of records) this.records.set(r.key, r);
    this.settler = new Settler(chain, journal, {
      merchantId: config.merchantId,
      confirmations: confirmationsFor(chainId, undefined),
      pollingIntervalMs: 500,
    });
    this.recipients = [{ publicKey: config.regulatorPublicKey, role: "regulator" }];
  }

  /**
   * Opens the till's journal for this chain, ledger and merchant, and starts settling what it
   * holds from before (a tab closed mid-batch).
   */
  static async open(config: TillConfig, signer: Signer, chainId: bigint): Promise<Till> {
    const chain = new UploaderChain(signer, config.ledger, config.merchantId, 30_000);
    const { journal, records } = await IdbJournal.open({
      chainId: chainId.toString(),
      ledger: config.ledger.toLowerCase(),
      merchantId: config.merchantId,
    });
    const till = new Till(config, chainId, chain, journal, records);
    till.settler.head = await chain.head();
    till.kick(0);
    return till;
  }

  /**
   * Takes a record: stores it (durably) and schedules its batch.
   *
   * @throws PrepaidLedgerError `INVALID_ARGUMENT` for bad details; `RECORD_CONFLICT` if its order
   *   reference was used before with other details
   */
  async accept(details: RecordDetails, card: string, action: Action): Promise<RecordView> {
    const key = recordKey(details);
    const earlier = this.records.get(key);
    if (earlier !== undefined) {
      if (JSON.stringify(earlier.details) !== JSON.stringify(fromDetails(details))) {
        throw new PrepaidLedgerError("RECORD_CONFLICT", "this order reference was used before with other details", {
          details: { orderRef: details.orderRef },
        });
      }
      return this.view(earlier);
    }
    const record: StoredRecord = { key, card, action, details: fromDetails(details), status: "queued", addedAt: Date.now() };
    await this.journal.putRecord(record);
    this.records.set(key, record);
    this.changed();
    this.kick(this.config.batchMs);
    return this.view(record);
  }

  /** Tries uploading again now, instead of at the next scheduled retry. */
  retryNow(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.kick(0);
  }

  /** Every record entered, newest first, with where it stands. */
  views(): RecordView[] {
    return [...this.records.values()].sort((a, b) => b.addedAt - a.addedAt).map((r) => this.view(r));
  }

  /** One record's view. */
  view(record: StoredRecord): RecordView {
    const place = record.status === "sealed" ? this.journal.find(record.key) : undefined;
    const done = place?.entry.done;
    let landed: Landed | undefined;
    if (place !== undefined && done !== undefined) {
      const packed = this.unpack(place.entry.batch.packed)[place.position]!;
      landed = {
        recordIndex: BigInt(done.firstRecordIndex) + BigInt(place.position),
        txHash: done.txHash,
        blockNumber: done.blockNumber,
        commitment: bytesToHex(packed.commitment),
        salt: place.entry.batch.salts[place.position]!,
      };
    }
    const rejected = record.status === "sealed" && place === undefined ? this.rejection(record.key) : undefined;
    return {
      ...record,
      ...(rejected !== undefined ? { status: "refused" as const, error: rejected } : {}),
      landed,
      sending: place !== undefined && done === undefined,
    };
  }

  private unpack(packed: string): PackedRecord[] {
    let records = this.unpacked.get(packed);
    if (records === undefined) {
      records = unpackBatch(hexToBytes(packed));
      this.unpacked.set(packed, records);
    }
    return records;
  }

  /** Counts for the status line. */
  status(): TillStatus {
    const views = this.views();
    return {
      queued: views.filter((v) => v.status === "queued").length,
      sending: views.filter((v) => v.sending).length,
      problem: this.problem,
      busy: this.busy,
    };
  }

  /** Why the ledger rejected the batch that held `key` on chain (after its preflight passed). */
  private rejection(key: string): string | undefined {
    for (const entry of this.journal.entries.values()) {
      if (entry.rejected !== undefined && entry.batch.keys?.includes(key)) return describeError(entry.rejected.error);
    }
    return undefined;
  }

  private changed(): void {
    this.dispatchEvent(new Event("change"));
  }

  /** Runs the pump after `ms` (sooner calls win). */
  private kick(ms: number): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pumping = this.pumping.then(() => this.pump());
    }, ms);
  }

  /** Settles the journal, then batches what is queued; on a network problem, tries again later. */
  private async pump(): Promise<void> {
    this.busy = true;
    this.changed();
    try {
      const deadline = Date.now() + FINALITY_MS;
      await this.settler.reconcile();
      await this.settler.settlePending(deadline);
      await this.settler.awaitFinal(deadline);
      this.changed();
      for (let queued = this.queued(); queued.length > 0; queued = this.queued()) {
        await this.submit(queued, deadline);
        await this.settler.awaitFinal(deadline);
        this.changed();
      }
      this.problem = undefined;
    } catch (e) {
      this.problem = describeError(e);
      this.kick(isError(e) && e.retryable ? RETRY_MS : SLOW_RETRY_MS);
    } finally {
      this.settler.drainFinal();
      this.busy = false;
      this.changed();
    }
  }

  private queued(): StoredRecord[] {
    return [...this.records.values()].filter((r) => r.status === "queued").sort((a, b) => a.addedAt - b.addedAt).slice(0, 200);
  }

  /**
   * Seals, preflights, journals and sends one batch. A batch the ledger would refuse is tried
   * record by record, so one overdrawn card does not hold back the others; a record refused on
   * its own is set aside with the ledger's reason.
   */
  private async submit(records: StoredRecord[], deadline: number): Promise<void> {
    const sealed = await sealBatch(records.map((r) => toDetails(r.details)), this.recipients);
    let sequence = await this.settler.takeSequence();
    let gasLimit: bigint;
    for (let attempt = 0; ; attempt++) {
      const data = calldata(encodeRecordBatchCall(this.config.merchantId, sequence, sealed.envelope, sealed.packed));
      try {
        const estimate = await this.chain.estimate(data, { sequence });
        gasLimit = (estimate * 12n) / 10n < MAX_TX_GAS ? (estimate * 12n) / 10n : MAX_TX_GAS;
        break;
      } catch (e) {
        this.settler.nextSequence = sequence;
        const name = isError(e, "LEDGER_REVERTED") ? e.details.error : undefined;
        if ((name === "LedgerSequenceGap" || name === "LedgerBatchReplayed") && attempt < 3) {
          // The chain moved (another till of this merchant, a reorg): catch up and renumber.
          this.settler.nextSequence = undefined;
          await this.settler.reconcile();
          await this.settler.settlePending(deadline);
          sequence = await this.settler.takeSequence();
          continue;
        }
        if (!isError(e, "LEDGER_REVERTED") || TILL_REFUSALS.has(String(e.details.error))) throw e;
        if (records.length > 1) {
          for (const r of records) await this.submit([r], deadline);
          return;
        }
        const refused: StoredRecord = { ...records[0]!, status: "refused", error: describeError(e) };
        await this.journal.putRecord(refused);
        this.records.set(refused.key, refused);
        this.changed();
        return;
      }
    }
    await this.journal.appendBatch(
      {
        t: "batch",
        sequence: sequence.toString(),
        envelope: bytesToHex(sealed.envelope),
        packed: bytesToHex(sealed.packed),
        count: sealed.records.length,
        salts: sealed.salts.map(bytesToHex),
        gasLimit: gasLimit.toString(),
        keys: records.map((r) => r.key),
        fromBlock: this.settler.fromBlock(),
      },
      records,
    );
    this.changed();
    await this.settler.settle(this.journal.entries.get(sequence.toString())!, true, deadline);
    this.changed();
  }
}
