/**
 * The uploader's local journal: an append-only file of JSON lines, flushed to disk (fsync) before
 * the uploader acts on what it says. A batch is written whole before its transaction is sent, so
 * a process killed at any instant restarts knowing every batch it may have sent, byte for byte.
 *
 * Lines: one `header` (which chain, ledger and merchant this journal belongs to), then per batch
 * a `batch` line (sequence, the exact envelope and packed records, the salts), optionally `sent`
 * (transaction hash), `included` (where it landed, provisional until final), `done` (final, at
 * the uploader's finality depth), `reorged` (the block that held it left the chain: pending
 * again), `moved` or `rejected`. A torn last line, from a crash in the middle of a write, is
 * ignored: the batch it would have recorded was never sent.
 *
 * Each `batch` line (version 2) also holds its records' identity keys (src/upload/identity.ts),
 * so a restarted uploader still recognises a record it was given before.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, truncateSync, writeSync } from "node:fs";
import { dirname } from "node:path";

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

export class Journal {
  readonly path: string;
  readonly header: JournalHeader;
  /** Batches by sequence number, in the order they were written. */
  readonly entries = new Map<string, JournalEntry>();
  /** Identity key → (sequence, position) of every record in a batch not rejected. */
  private readonly keys = new Map<string, { sequence: string; position: number }>();
  private fd: number;

  private constructor(path: string, header: JournalHeader, fd: number) {
    this.path = path;
    this.header = header;
    this.fd = fd;
  }

  /**
   * Opens (or creates) the journal at `path` for one chain, ledger and merchant.
   *
   * @throws PrepaidLedgerError `INVALID_CONFIG` if the file belongs to another chain, ledger or
   *   merchant; `JOURNAL_CORRUPT` if a line other than the last cannot be read
   */
  static open(path: string, expected: Omit<JournalHeader, "t" | "version">): Journal {
    const want: JournalHeader = { t: "header", version: JOURNAL_VERSION, ...expected };
    const lines = existsSync(path) ? Journal.readLines(path) : [];
    mkdirSync(dirname(path), { recursive: true });
    const fd = openSync(path, "a");
    if (lines.length === 0) {
      const journal = new Journal(path, want, fd);
      journal.append(want);
      return journal;
    }
    const header = lines[0];
    if (header.t !== "header") {
      closeSync(fd);
      throw new PrepaidLedgerError("JOURNAL_CORRUPT", "journal does not start with a header", { details: { path } });
    }
    if (header.version !== 1 && header.version !== 2) {
      closeSync(fd);
      throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "the journal was written by a newer version", {
        details: { path, version: header.version },
      });
    }
    for (const key of ["chainId", "ledger", "merchantId"] as const) {
      if (String(header[key]).toLowerCase() !== String(want[key]).toLowerCase()) {
        closeSync(fd);
        throw new PrepaidLedgerError("INVALID_CONFIG", "the journal belongs to another chain, ledger or merchant", {
          details: { path, field: key, journal: header[key], expected: want[key] },
        });
      }
    }
    const journal = new Journal(path, header, fd);
    for (const line of lines.slice(1)) journal.apply(line);
    journal.dropDuplicates();
    return journal;
  }

  private static readLines(path: string): JournalLine[] {
    let text = readFileSync(path, "utf8");
    if (text.length > 0 && !text.endsWith("\n")) {
      // A crash mid-write left a torn last line: drop it, so the next line starts clean.
      const keep = text.lastIndexOf("\n") + 1;
      truncateSync(path, Buffer.byteLength(text.slice(0, keep)));
      text = text.slice(0, keep);
    }
    const raw = text.split("\n");
    const lines: JournalLine[] = [];
    for (const [i, line] of raw.entries()) {
      if (line === "") continue;
      try {
        lines.push(JSON.parse(line) as JournalLine);
      } catch (e) {
        throw new PrepaidLedgerError("JOURNAL_CORRUPT", "a journal line cannot be parsed", {
          details: { path, line: i + 1 },
          cause: e,
        });
      }
    }
    return lines;
  }

  private apply(line: JournalLine): void {
    if (line.t === "batch") {
      this.entries.set(line.sequence, { batch: line, sentTxHashes: [] });
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
    } else {
      this.forgetKeys(line.sequence);
      this.entries.delete(line.sequence);
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

  /** A crash inside resequence() can leave one batch pending under two numbers: keep the later. */
  private dropDuplicates(): void {
    const seen = new Map<string, JournalEntry>();
    for (const entry of this.pending().reverse()) {
      const twin = seen.get(entry.batch.packed);
      if (twin === undefined) seen.set(entry.batch.packed, entry);
      else this.append({ t: "moved", sequence: entry.batch.sequence, to: twin.batch.sequence });
    }
  }

  /** Appends one line and flushes it to disk before returning. */
  append(line: JournalLine): void {
    // A line is written with one write(2) so that a crash leaves at most one torn line at the end.
    writeSync(this.fd, JSON.stringify(line) + "\n");
    fsyncSync(this.fd);
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

  /** Moves a pending batch to another sequence number (another uploader took its number). */
  resequence(entry: JournalEntry, sequence: bigint): JournalEntry {
    const batch: JournalBatch = { ...entry.batch, sequence: sequence.toString() };
    // New line first: a crash between the two leaves the batch under both numbers, and the
    // uploader's landed-check (by commitment) keeps it from landing twice.
    this.append(batch);
    this.append({ t: "moved", sequence: entry.batch.sequence, to: batch.sequence });
    return this.entries.get(batch.sequence)!;
  }

  close(): void {
    closeSync(this.fd);
  }
}
