/**
 * The uploader's local journal: an append-only file of JSON lines, flushed to disk (fsync) before
 * the uploader acts on what it says (lines that only record where a batch went are flushed with
 * the next line that matters, see LAZY_LINES). A batch is written whole before its transaction is sent, so
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

/**
 * Lines written without their own flush (fsync): each says where a batch went, which the uploader
 * can ask the chain again (a batch's number finds its transaction, src/upload/settle.ts), so losing
 * one costs a question, never a record. A process killed at any instant loses none of them (they
 * are in the operating system's cache); a power cut may lose the ones after the last flushed line.
 * Every line that changes what the uploader will send (`batch`, `moved`, `reorged`, `rejected`)
 * is flushed before the uploader acts on it, and flushes every line before it.
 */
const LAZY_LINES: ReadonlySet<JournalLine["t"]> = new Set(["sent", "included", "done"]);

/** The journal in a file of JSON lines; see {@link LAZY_LINES} for which are flushed at once. */
export class Journal extends JournalState {
  private fd: number;
  /** Lines written and not yet flushed. */
  private unflushed = false;

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

  /**
   * Writes one line with one write(2), so that a crash leaves at most one torn line at the end,
   * and flushes it to disk unless it only says what the chain can tell again ({@link LAZY_LINES}).
   */
  protected write(line: JournalLine): void {
    writeSync(this.fd, JSON.stringify(line) + "\n");
    if (LAZY_LINES.has(line.t)) this.unflushed = true;
    else this.flush();
  }

  /** Flushes every line written so far to disk (fsync). */
  flush(): void {
    fsyncSync(this.fd);
    this.unflushed = false;
  }

  close(): void {
    if (this.unflushed) this.flush();
    closeSync(this.fd);
  }
}
