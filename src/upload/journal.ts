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
import { JOURNAL_VERSION, JournalState, type JournalHeader, type JournalLine } from "./journal-state.js";

export {
  JOURNAL_VERSION,
  JournalState,
  type JournalBatch,
  type JournalDone,
  type JournalEntry,
  type JournalHeader,
  type JournalIncluded,
  type JournalLine,
  type JournalMoved,
  type JournalRejected,
  type JournalReorged,
  type JournalSent,
  type RecordPlace,
} from "./journal-state.js";

/** The journal in a file of JSON lines, each flushed to disk (fsync) before it counts. */
export class Journal extends JournalState {
  private fd: number;

  private constructor(path: string, header: JournalHeader, fd: number) {
    super(path, header);
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
    let header: JournalHeader;
    try {
      header = JournalState.checkHeader(path, lines, want);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    const journal = new Journal(path, header, fd);
    journal.load(lines);
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

  /** Writes one line with one write(2), so that a crash leaves at most one torn line at the end, and flushes it. */
  protected write(line: JournalLine): void {
    writeSync(this.fd, JSON.stringify(line) + "\n");
    fsyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}
