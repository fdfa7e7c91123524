/**
 * The uploader's local journal: an append-only file of JSON lines, flushed to disk (fsync) before
 * the uploader acts on what it says. A batch is written whole before its transaction is sent, so
 * a process killed at any instant restarts knowing every batch it may have sent, byte for byte.
 *
 * Lines: one `header` (which chain, ledger and merchant this journal belongs to), then per batch
 * a `batch` line (sequence, the exact envelope and packed records, the salts), optionally `sent`
 * (transaction hash), and `done` (where it landed). A torn last line, from a crash in the middle
 * of a write, is ignored: the batch it would have recorded was never sent.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, truncateSync, writeSync } from "node:fs";
import { dirname } from "node:path";

import { PrepaidLedgerError } from "../errors.js";

export interface JournalHeader {
  t: "header";
  version: 1;
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
}

export interface JournalSent {
  t: "sent";
  sequence: string;
  txHash: string;
}

export interface JournalDone {
  t: "done";
  sequence: string;
  txHash: string;
  blockNumber: number;
  firstRecordIndex: string;
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

export type JournalLine = JournalHeader | JournalBatch | JournalSent | JournalDone | JournalMoved | JournalRejected;

/** A batch as the journal knows it: what was sealed, and how far it got. */
export interface JournalEntry {
  batch: JournalBatch;
  sentTxHashes: string[];
  done?: JournalDone;
  rejected?: JournalRejected;
}

export class Journal {
  readonly path: string;
  readonly header: JournalHeader;
  /** Batches by sequence number, in the order they were written. */
  readonly entries = new Map<string, JournalEntry>();
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
    const want: JournalHeader = { t: "header", version: 1, ...expected };
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
    else if (line.t === "done") entry.done = line;
    else if (line.t === "rejected") entry.rejected = line;
    else this.entries.delete(line.sequence);
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
    return [...this.entries.values()]
      .filter((e) => e.done === undefined && e.rejected === undefined)
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
