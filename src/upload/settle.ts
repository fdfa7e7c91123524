/**
 * Brings journaled batches to a final state, whatever the network did: sends a batch whose number
 * is next, finds a batch that landed while its answer was lost, moves a batch whose number another
 * recorder took, waits until a landed batch is `confirmations` deep, and detects (by block hash)
 * a batch that a reorg removed and sends it again, in order with the ones after it.
 *
 * The invariant behind all of it: a batch's bytes are bound to one sequence number in the
 * journal before they are sent, and the ledger refuses a number twice, so any number of resends
 * books a batch at most once. Moving a batch to another number is the one step that could book
 * it twice, so it is done only on positive evidence: another batch's BatchRecorded log at its
 * number, and none of its own.
 *
 * No `node:` built-ins: the point-of-sale app (apps/pos) settles its IndexedDB journal with it.
 */
import { Interface } from "ethers";

import { hexToBytes } from "../crypto/bytes.js";
import { PrepaidLedgerError, isError } from "../errors.js";
import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import { encodeRecordBatchCall } from "../ledger/codec.js";
import type { Receipt, UploaderChain } from "./chain.js";
import { gasBound } from "./gas.js";
import type { JournalEntry, JournalState } from "./journal-state.js";

const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);
/** The event's fragment, kept: Interface.parseLog finds it by computing every event's topic hash anew. */
const BATCH_RECORDED_EVENT = ledgerInterface.getEvent("BatchRecorded")!;
const BATCH_RECORDED = BATCH_RECORDED_EVENT.topicHash;
/** How far below the last head seen a batch's BatchRecorded log is looked for (a reorg can shorten the chain). */
const LOG_MARGIN = 128;
/** Sequence conflicts tolerated while placing one batch. */
const MAX_ATTEMPTS = 8;

/** Bytes of hex the journal wrote itself (a batch's envelope and records, once per send). */
export const journalBytes = (hex: string): Uint8Array => hexToBytes(hex);

/**
 * Calldata for a TransactionRequest, as bytes. ethers types `data` as a hex string, but every
 * ethers signer passes it through `hexlify()`, which takes bytes as they are; a hex string it
 * would first parse back a digit at a time (~20% of the upload time at 1,000 records a batch).
 */
export const calldata = (bytes: Uint8Array): string => bytes as unknown as string;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface SettleOptions {
  merchantId: number;
  confirmations: number;
  pollingIntervalMs: number;
}

/** The sequence number is used and the batch is not (yet) seen there: ask the chain again. */
export const TAKEN = Symbol("taken");

export class Settler {
  /** The sequence number the next new batch gets, once known. */
  nextSequence: bigint | undefined;
  /** The highest block number seen: new batches look for their logs from a little below it. */
  head = 0;
  /** Batches that became final since the last {@link drainFinal}. */
  private finalized: JournalEntry[] = [];

  constructor(
    private readonly chain: UploaderChain,
    private readonly journal: JournalState,
    private readonly o: SettleOptions,
  ) {}

  /** Where to look for a batch about to be journaled. */
  fromBlock(): number {
    return Math.max(0, this.head - LOG_MARGIN);
  }

  /** Batches that became final since the last call, and forgets them. */
  drainFinal(): JournalEntry[] {
    const out = this.finalized;
    this.finalized = [];
    return out;
  }

  /**
   * Compares the journal with the chain: a batch the journal holds as landed under a number the
   * chain has not reached any more was removed by a reorg (even one deeper than the finality
   * depth): it is marked `reorged`, pending again, unless its receipt shows it where it was
   * (a node whose state lags its receipts).
   */
  async reconcile(): Promise<void> {
    const next = await this.chain.nextSequence();
    this.nextSequence = next;
    for (const entry of this.journal.landedFrom(next)) {
      const at = entry.done ?? entry.included!;
      const receipt = await this.chain.receipt(at.txHash);
      const still = receipt !== null && receipt.status === 1 && (at.blockHash === undefined || receipt.blockHash === at.blockHash);
      if (!still) this.journal.append({ t: "reorged", sequence: entry.batch.sequence, blockHash: at.blockHash });
    }
  }

  /** Settles every pending batch, lowest number first. */
  async settlePending(deadline: number): Promise<void> {
    for (let entry = this.journal.pending()[0]; entry !== undefined; entry = this.journal.pending()[0]) {
      await this.settle(entry, false, deadline);
    }
  }

  /** The number for a new batch: the chain's next, or past the journal's last. */
  async takeSequence(): Promise<bigint> {
    if (this.nextSequence === undefined) this.nextSequence = await this.chain.nextSequence();
    const last = this.journal.lastSequence();
    const sequence = this.nextSequence > last ? this.nextSequence : last + 1n;
    this.nextSequence = sequence + 1n;
    return sequence;
  }

  /**
   * Brings one journaled batch to landed (included, or final at depth 0) or rejected.
   *
   * @param fresh - the batch was just given the next number we expect: send without asking the
   *   chain first (a wrong guess comes back as a sequence error, and then the chain is asked)
   */
  async settle(initial: JournalEntry, fresh: boolean, deadline: number): Promise<void> {
    let entry = initial;
    for (let attempt = 0; ; attempt++) {
      const sequence = BigInt(entry.batch.sequence);
      if (attempt > MAX_ATTEMPTS) {
        throw new PrepaidLedgerError("SEQUENCE_CONFLICT", "could not place the batch after repeated sequence conflicts", {
          details: { merchantId: this.o.merchantId, sequence },
          retryable: true,
        });
      }
      const next = fresh && attempt === 0 ? sequence : await this.chain.nextSequence();
      if (next > sequence) {
        const found = await this.locate(entry);
        if (found === "other") {
          const free = next > this.journal.lastSequence() ? next : this.journal.lastSequence() + 1n;
          entry = this.journal.resequence(entry, free);
          this.nextSequence = free + 1n;
          continue;
        }
        if (found === undefined) {
          throw new PrepaidLedgerError("RPC_ERROR", "the ledger has used the batch's sequence number, but the node shows no batch there yet", {
            details: { merchantId: this.o.merchantId, sequence, chainNext: next, reason: "logs-behind-state" },
            retryable: true,
          });
        }
        return this.land(entry, found);
      }
      if (next < sequence) {
        // Batches below this one are missing: ours, removed by a reorg, come back pending here.
        await this.reconcile();
        const lower = this.journal.pending().filter((e) => BigInt(e.batch.sequence) < sequence);
        if (lower.length === 0 && this.journal.releasedRange(next, sequence)) {
          // The gap is numbers this journal gave up (a batch before this one was refused while
          // this one was in flight): move down into it once nothing of ours can still land here.
          entry = await this.moveDown(entry, deadline);
          continue;
        }
        if (lower.length === 0) {
          throw new PrepaidLedgerError("SEQUENCE_CONFLICT", "the journal is ahead of the chain: batches before this one are missing and this journal does not hold them", {
            details: {
              merchantId: this.o.merchantId,
              sequence,
              chainNext: next,
              journal: this.journal.path,
              fix: "another uploader of this merchant holds them in its journal: run its recover(); or the chain was reset: start a new journal",
            },
          });
        }
        for (const e of lower) await this.settle(e, false, deadline);
        continue;
      }
      const receipt = await this.send(entry, deadline);
      if (receipt !== TAKEN) return this.land(entry, receipt);
    }
  }

  /**
   * Waits until every provisional batch is `confirmations` deep, checking on each round that its
   * block is still on the chain; a batch whose block left it is sent again (with every later
   * one, in order).
   */
  async awaitFinal(deadline: number): Promise<void> {
    let lastError: unknown;
    for (;;) {
      if (this.journal.provisional().length === 0) return;
      try {
        const head = await this.chain.head();
        if (head > this.head) this.head = head;
        const hashes = new Map<number, string | null>();
        let removed = false;
        for (const entry of this.journal.provisional()) {
          const at = entry.included!;
          if (!hashes.has(at.blockNumber)) hashes.set(at.blockNumber, await this.chain.blockHash(at.blockNumber));
          const hash = hashes.get(at.blockNumber);
          if (hash === at.blockHash) {
            if (head - at.blockNumber >= this.o.confirmations) this.markFinal(entry, at);
            continue;
          }
          // Not the block it was in: a reorg, unless the node is merely behind and still has the receipt.
          if (hash === null && (await this.chain.receipt(at.txHash))?.blockHash === at.blockHash) continue;
          this.journal.append({ t: "reorged", sequence: entry.batch.sequence, blockHash: at.blockHash });
          removed = true;
        }
        if (removed) await this.settlePending(deadline);
        if (this.journal.provisional().length === 0) return;
      } catch (e) {
        if (!isError(e) || !e.retryable) throw e;
        lastError = e; // a node fault while waiting: ask again next round
      }
      if (Date.now() > deadline) {
        throw new PrepaidLedgerError("TIMEOUT", "batches landed but did not reach the finality depth in time", {
          details: {
            merchantId: this.o.merchantId,
            provisional: this.journal.provisional().map((e) => e.batch.sequence),
            confirmations: this.o.confirmations,
            head: this.head,
          },
          cause: lastError,
        });
      }
      await sleep(this.o.pollingIntervalMs);
    }
  }

  /** Sends a batch; its receipt once included, or TAKEN when its number is used (by it or another). */
  private async send(entry: JournalEntry, deadline: number): Promise<Receipt | typeof TAKEN> {
    const sequence = BigInt(entry.batch.sequence);
    const context = { sequence };
    const envelope = journalBytes(entry.batch.envelope);
    const packed = journalBytes(entry.batch.packed);
    const gasLimit = BigInt(entry.batch.gasLimit ?? gasBound(envelope, packed));
    // Encoded here, once: through a Contract, ethers would encode it a hex digit at a time.
    const data = calldata(encodeRecordBatchCall(this.o.merchantId, sequence, envelope, packed));
    let hash: string;
    try {
      hash = await this.sendRacing(data, gasLimit, context);
    } catch (e) {
      if (isError(e, "LEDGER_REVERTED")) return this.refused(entry, e);
      if (!isError(e) || !e.retryable) throw e;
      // The answer was lost: the node may have taken the transaction. The chain says whether the
      // number was used; if it was, settle() finds by whom.
      if ((await this.chain.nextSequence()) > sequence) return TAKEN;
      throw e;
    }
    return this.delivered(entry, hash, data, deadline);
  }

  /**
   * What became of a batch transaction the node took (`hash`): its receipt once included, TAKEN
   * when its number is used (by it or another); a refusal by the ledger journaled as rejected
   * and thrown. Journals the hash first.
   */
  async delivered(entry: JournalEntry, hash: string, data: string, deadline: number): Promise<Receipt | typeof TAKEN> {
    const sequence = BigInt(entry.batch.sequence);
    const context = { sequence };
    // Ask at once (on an automining node it is there) while "sent" is flushed: first its
    // BatchRecorded log alone, then (not there, or the question failed) the whole receipt.
    const asked = this.chain
      // From the highest block seen (the batch before it), not the journal's margin below it: a
      // node scans every log of the range, a thousand a block here. A reorg that took the chain
      // below it makes the question find nothing, and the receipt answers.
      .landing(hash, sequence, Math.max(entry.batch.fromBlock ?? 0, this.head))
      .catch(() => null)
      .then((landed) => landed ?? this.chain.receipt(hash));
    asked.catch(() => undefined);
    this.journal.append({ t: "sent", sequence: entry.batch.sequence, txHash: hash });
    const first = await asked.catch(() => null);
    const receipt = first ?? (await this.waitReceipt(hash, sequence, deadline));
    if (receipt === TAKEN || receipt.status === 1) return receipt;
    // Reverted on chain: find out why, from a simulation of the same call now.
    try {
      await this.chain.estimate(data, context);
    } catch (e) {
      if (isError(e, "LEDGER_REVERTED")) return this.refused(entry, e);
      throw e;
    }
    throw new PrepaidLedgerError("LEDGER_REVERTED", "the batch transaction reverted on chain, but the same call passes now", {
      details: { merchantId: this.o.merchantId, sequence, txHash: hash },
      retryable: true,
    });
  }

  /** Sends, taking a fresh nonce when the node says the one taken was used (another transaction of the key got it first). */
  private async sendRacing(data: string, gasLimit: bigint, context: Record<string, unknown>): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.chain.send(data, gasLimit, context);
      } catch (e) {
        if (!isError(e, "RPC_ERROR") || e.details.reason !== "nonce" || attempt >= 3) throw e;
        await sleep(Math.max(this.o.pollingIntervalMs, 100));
      }
    }
  }

  /** A refusal by the ledger: a used or skipped number means "ask the chain"; anything else is final. */
  private refused(entry: JournalEntry, e: PrepaidLedgerError): typeof TAKEN {
    const name = e.details.error;
    this.nextSequence = undefined;
    if (name === "LedgerBatchReplayed" || name === "LedgerSequenceGap") return TAKEN;
    this.journal.append({ t: "rejected", sequence: entry.batch.sequence, error: String(name ?? "reverted") });
    throw e;
  }

  /** Polls for a sent transaction's receipt until it comes, its number is used, or the deadline. */
  private async waitReceipt(hash: string, sequence: bigint, deadline: number): Promise<Receipt | typeof TAKEN> {
    let lastError: unknown;
    for (;;) {
      await sleep(this.o.pollingIntervalMs);
      try {
        const receipt = await this.chain.receipt(hash);
        if (receipt !== null) return receipt;
        if ((await this.chain.nextSequence()) > sequence) return TAKEN;
      } catch (e) {
        if (!isError(e) || !e.retryable) throw e;
        lastError = e;
      }
      if (Date.now() > deadline) {
        throw new PrepaidLedgerError("TIMEOUT", "the batch transaction was sent but not included in time", {
          details: { merchantId: this.o.merchantId, sequence, txHash: hash },
          cause: lastError,
        });
      }
    }
  }

  /**
   * Where the batch landed: the receipt of its transaction; "other" when another batch holds its
   * number; undefined when no batch at all is seen there.
   */
  private async locate(entry: JournalEntry): Promise<Receipt | "other" | undefined> {
    // The first record's commitment: bytes 42..74 of the packed batch (docs/FORMAT.md 5).
    const first = "0x" + entry.batch.packed.slice(2 + 2 * 42, 2 + 2 * 74);
    const sequence = BigInt(entry.batch.sequence);
    const logged = await this.chain.batchTransactions(sequence, entry.batch.fromBlock ?? 0);
    const known = [...entry.sentTxHashes, entry.included?.txHash, entry.done?.txHash].filter((h): h is string => h !== undefined);
    for (const hash of new Set([...known, ...logged])) {
      const receipt = await this.chain.receipt(hash);
      if (receipt === null || receipt.status !== 1) continue;
      const ours = receipt.logs.some((l) => l.topics.length === 4 && l.topics[3] === first);
      if (ours) return receipt;
    }
    return logged.length > 0 ? "other" : undefined;
  }

  /**
   * Moves a pending batch down to the chain's next number, into a gap of numbers this journal
   * released (a refused batch before it). Safe only once none of its transactions can land at
   * its old number: the recorder has nothing pending at the node (every transaction this key
   * sent is mined, so any carrying the batch at its old number was mined and, with the chain
   * still below that number, reverted; a transaction the node never counted shares a nonce with
   * the next one signed, so at most one of them is mined), and the chain is still below it.
   */
  private async moveDown(entry: JournalEntry, deadline: number): Promise<JournalEntry> {
    const sequence = BigInt(entry.batch.sequence);
    for (;;) {
      const [latest, pending] = [await this.chain.nonce("latest"), await this.chain.nonce("pending")];
      if (latest >= pending) break;
      if (Date.now() > deadline) {
        throw new PrepaidLedgerError("TIMEOUT", "transactions of the recorder are still pending: the batch cannot move to a lower number yet", {
          details: { merchantId: this.o.merchantId, sequence, latest, pending },
        });
      }
      await sleep(this.o.pollingIntervalMs);
    }
    const next = await this.chain.nextSequence();
    if (next >= sequence || !this.journal.releasedRange(next, sequence)) return entry; // the chain moved: settle() looks again
    this.nextSequence = undefined;
    return this.journal.resequence(entry, next);
  }

  /** Journals where the batch landed: final at once at depth 0, else provisional. */
  land(entry: JournalEntry, receipt: Receipt): void {
    if (receipt.blockNumber > this.head) this.head = receipt.blockNumber;
    const sequenceTopic = "0x" + BigInt(entry.batch.sequence).toString(16).padStart(64, "0");
    const raw = receipt.logs.find((l) => l.topics[0] === BATCH_RECORDED && l.topics[2] === sequenceTopic);
    if (raw === undefined) {
      throw new PrepaidLedgerError("SEQUENCE_CONFLICT", "the landed transaction has no BatchRecorded for this batch", {
        details: { txHash: receipt.hash, sequence: entry.batch.sequence },
      });
    }
    const at = {
      sequence: entry.batch.sequence,
      txHash: receipt.hash,
      blockNumber: receipt.blockNumber,
      blockHash: receipt.blockHash,
      firstRecordIndex: (ledgerInterface.decodeEventLog(BATCH_RECORDED_EVENT, raw.data, raw.topics).firstRecordIndex as bigint).toString(),
    };
    if (this.o.confirmations === 0) this.markFinal(entry, at);
    else this.journal.append({ t: "included", ...at });
  }

  private markFinal(entry: JournalEntry, at: { txHash: string; blockNumber: number; blockHash: string; firstRecordIndex: string }): void {
    this.journal.append({
      t: "done",
      sequence: entry.batch.sequence,
      txHash: at.txHash,
      blockNumber: at.blockNumber,
      blockHash: at.blockHash,
      firstRecordIndex: at.firstRecordIndex,
    });
    this.finalized.push(entry);
  }
}
