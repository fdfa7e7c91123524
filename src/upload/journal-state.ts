/**
 * The journal's lines and what they say (journal.ts has the story), without the storage: the
 * Node uploader keeps the lines in a file (journal.ts), a browser in IndexedDB (apps/pos). No
 * `node:` built-ins. A subclass writes each line durably in {@link JournalState.write} and reads
 * them back through {@link JournalState.load}.
 */
import { PrepaidLedgerError } from "../errors.js";

/** Version written to new journals; version 1 journals (no identity keys) are read too. */
export const JOURNAL_VERSION = 2;

export interface JournalHeader {
  t: "header";
  version: 1 | 2;
  chainId: string;
  ledger: string;
  merchantId: number;
}

export interface JournalBatch {
  t: "batch";
  sequence: string;
  envelope: string;
  packed: string;
  count: number;
  salts: string[];
  /** Gas to send it with (its preflight estimate plus a margin, or a bound from its size). */
  gasLimit?: string;
  /** Each record's identity key (version 2), in batch order. */
  keys?: string[];
  /** A block at or below the one that will hold it: where to look for its BatchRecorded log. */
  fromBlock?: number;
}

export interface JournalSent {
  t: "sent";
  sequence: string;
  txHash: string;
}

/** The batch is in a block, not yet `confirmations` deep: provisional. */
export interface JournalIncluded {
  t: "included";
  sequence: string;
  txHash: string;
  blockNumber: number;
  blockHash: string;
  firstRecordIndex: string;
}

/** The batch landed for good: final at the uploader's finality depth. */
export interface JournalDone {
  t: "done";
  sequence: string;
  txHash: string;
  blockNumber: number;
  firstRecordIndex: string;
  /** Absent in version 1 journals. */
  blockHash?: string;
}

/** The block that held the batch is no longer on the chain (a reorg): the batch is pending again. */
export interface JournalReorged {
  t: "reorged";
  sequence: string;
  blockHash?: string;
}

/** The batch was moved to another sequence number (another uploader had taken its number). */
export interface JournalMoved {
  t: "moved";
  sequence: string;
  to: string;
}

/** The ledger refused the batch for good (an overdraw, say): it stays here, never resent. */
export interface JournalRejected {
  t: "rejected";
  sequence: string;
  error: string;
}

export type JournalLine =
  | JournalHeader
  | JournalBatch
  | JournalSent
  | JournalIncluded
  | JournalDone
  | JournalReorged
  | JournalMoved
  | JournalRejected;

/** A batch as the journal knows it: what was sealed, and how far it got. */
export interface JournalEntry {
  batch: JournalBatch;
  sentTxHashes: string[];
  included?: JournalIncluded;
  done?: JournalDone;
  rejected?: JournalRejected;
}

/** Where a record with a given identity key sits in the journal. */
export interface RecordPlace {
  entry: JournalEntry;
  position: number;
}

/** A journal's state: its batches and its records' identity keys, rebuilt from its lines. */
export abstract class JournalState {
  /** Where the lines are kept (a file path, an IndexedDB name), for error details. */
  readonly path: string;
  readonly header: JournalHeader;
  /** Batches by sequence number, in the order they were written. */
  readonly entries = new Map<string, JournalEntry>();
  /** Identity key → (sequence, position) of every record in a batch not rejected. */
  private readonly keys = new Map<string, { sequence: string; position: number }>();
  /**
   * Sequence numbers this journal gave up (its batch there was rejected, or moved to another
   * number) and has not used again: a batch above a gap made only of these may move down into
   * it (see Settler.settle).
   */
  private readonly released = new Set<string>();
  /** The order batch lines were written in: of two copies of one batch, the later one counts. */
  private readonly written = new WeakMap<JournalEntry, number>();
  private batchLines = 0;

  protected constructor(path: string, header: JournalHeader) {
    this.path = path;
    this.header = header;
  }

  /** Keeps one line durably before returning (or, for asynchronous storage, queues it in order). */
  protected abstract write(line: JournalLine): void;

  /**
   * Checks a journal's stored lines against the chain, ledger and merchant it is opened for.
   *
   * @returns the header to use: the stored one, or `want` for an empty journal
   * @throws PrepaidLedgerError `JOURNAL_CORRUPT`, `UNSUPPORTED_VERSION`, `INVALID_CONFIG`
   */
  static checkHeader(path: string, lines: readonly JournalLine[], want: JournalHeader): JournalHeader {
    if (lines.length === 0) return want;
    const header = lines[0]!;
    if (header.t !== "header") {
      throw new PrepaidLedgerError("JOURNAL_CORRUPT", "journal does not start with a header", { details: { path } });
    }
    if (header.version !== 1 && header.version !== 2) {
      throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "the journal was written by a newer version", {
        details: { path, version: header.version },
      });
    }
    for (const key of ["chainId", "ledger", "merchantId"] as const) {
      if (String(header[key]).toLowerCase() !== String(want[key]).toLowerCase()) {
        throw new PrepaidLedgerError("INVALID_CONFIG", "the journal belongs to another chain, ledger or merchant", {
          details: { path, field: key, journal: header[key], expected: want[key] },
        });
      }
    }
    return header;
  }

  /** Applies stored lines (after the header) to a fresh state; writes the header of a new one. */
  protected load(lines: readonly JournalLine[]): void {
    if (lines.length === 0) {
      this.append(this.header);
      return;
    }
    for (const line of lines.slice(1)) this.apply(line);
    this.dropDuplicates();
  }

  /** Applies one line read back or just written. */
  protected apply(line: JournalLine): void {
    if (line.t === "batch") {
      const entry: JournalEntry = { batch: line, sentTxHashes: [] };
      this.entries.set(line.sequence, entry);
      this.written.set(entry, ++this.batchLines);
      this.released.delete(line.sequence);
      line.keys?.forEach((key, position) => this.keys.set(key, { sequence: line.sequence, position }));
      return;
    }
    if (line.t === "header") return;
    const entry = this.entries.get(line.sequence);
    if (entry === undefined) {
      throw new PrepaidLedgerError("JOURNAL_CORRUPT", "journal names a batch it never recorded", {
        details: { path: this.path, sequence: line.sequence },
      });
    }
    if (line.t === "sent") entry.sentTxHashes.push(line.txHash);
    else if (line.t === "included") entry.included = line;
    else if (line.t === "done") entry.done = line;
    else if (line.t === "reorged") {
      entry.included = undefined;
      entry.done = undefined;
    } else if (line.t === "rejected") {
      entry.rejected = line;
      this.forgetKeys(line.sequence);
      this.released.add(line.sequence);
    } else {
      this.forgetKeys(line.sequence);
      this.entries.delete(line.sequence);
      this.released.add(line.sequence);
    }
  }

  /** Drops the identity keys still pointing at `sequence` (a moved batch's keys point at its new number). */
  private forgetKeys(sequence: string): void {
    for (const key of this.entries.get(sequence)?.batch.keys ?? []) {
      if (this.keys.get(key)?.sequence === sequence) this.keys.delete(key);
    }
  }

  /** Where the record with identity `key` is, if a batch here (not rejected) holds it. */
  find(key: string): RecordPlace | undefined {
    const place = this.keys.get(key);
    if (place === undefined) return undefined;
    const entry = this.entries.get(place.sequence);
    return entry === undefined || entry.rejected !== undefined ? undefined : { entry, position: place.position };
  }

  /**
   * A crash inside resequence() can leave one batch pending under two numbers: keep the copy
   * written last (the number it was being moved to, up or down).
   */
  protected dropDuplicates(): void {
    const seen = new Map<string, JournalEntry>();
    const latestFirst = this.pending().sort((a, b) => this.written.get(b)! - this.written.get(a)!);
    for (const entry of latestFirst) {
      const twin = seen.get(entry.batch.packed);
      if (twin === undefined) seen.set(entry.batch.packed, entry);
      else this.append({ t: "moved", sequence: entry.batch.sequence, to: twin.batch.sequence });
    }
  }

  /** Whether every number in [from, to) is one this journal gave up and has not used again. */
  releasedRange(from: bigint, to: bigint): boolean {
    for (let n = from; n < to; n++) if (!this.released.has(n.toString())) return false;
    return from < to;
  }

  /** Appends one line: durably (see {@link write}), then to the state here. */
  append(line: JournalLine): void {
    this.write(line);
    this.apply(line);
  }

  /** Batches written but neither landed nor rejected, lowest sequence first. */
  pending(): JournalEntry[] {
    return this.sorted((e) => e.done === undefined && e.included === undefined && e.rejected === undefined);
  }

  /** Batches in a block but not yet final, lowest sequence first. */
  provisional(): JournalEntry[] {
    return this.sorted((e) => e.included !== undefined && e.done === undefined);
  }

  /** Batches landed (provisional or final) under a sequence number of at least `from`, lowest first. */
  landedFrom(from: bigint): JournalEntry[] {
    return this.sorted((e) => (e.included !== undefined || e.done !== undefined) && BigInt(e.batch.sequence) >= from);
  }

  private sorted(keep: (e: JournalEntry) => boolean): JournalEntry[] {
    return [...this.entries.values()]
      .filter(keep)
      .sort((a, b) => (BigInt(a.batch.sequence) < BigInt(b.batch.sequence) ? -1 : 1));
  }

  /** The highest sequence number a batch here holds or may hold on chain (rejected ones never do), or 0n. */
  lastSequence(): bigint {
    let last = 0n;
    for (const [key, entry] of this.entries) {
      if (entry.rejected === undefined && BigInt(key) > last) last = BigInt(key);
    }
    return last;
  }

  /**
   * Moves a pending batch to another sequence number: up, when another uploader took its number;
   * down, into numbers this journal released (a refused batch before it).
   */
  resequence(entry: JournalEntry, sequence: bigint): JournalEntry {
    const batch: JournalBatch = { ...entry.batch, sequence: sequence.toString() };
    // New line first: a crash between the two leaves the batch under both numbers, and the
    // uploader's landed-check (by commitment) keeps it from landing twice.
    this.append(batch);
    this.append({ t: "moved", sequence: entry.batch.sequence, to: batch.sequence });
    return this.entries.get(batch.sequence)!;
  }
}
