/**
 * The till's durable journal in IndexedDB: the same lines as the Node uploader's file journal
 * (src/upload/journal-state.ts holds what they mean), and the records the cashier entered.
 *
 * A record is stored ("queued") the moment the cashier enters it; a batch line is written in one
 * IndexedDB transaction with its records turning "sealed", before its transaction is sent. So a
 * tab closed at any instant reopens knowing every record it accepted and every batch it may have
 * sent, byte for byte; the ledger's per-merchant sequence numbers do the rest (src/upload/settle.ts).
 */
import { openDB, type DBSchema, type IDBPDatabase } from "idb";

import {
  JOURNAL_VERSION,
  JournalState,
  type JournalBatch,
  type JournalHeader,
  type JournalLine,
} from "../../../src/upload/journal-state.js";
import { PrepaidLedgerError } from "../../../src/errors.js";

/** Record details as IndexedDB keeps them (the amount as a decimal string). */
export interface StoredDetails {
  kind: 1 | 2 | 3;
  merchantId: number;
  account: string;
  amount: string;
  time: number;
  orderRef: string;
  memo: string;
}

/** The till's four actions. */
export type Action = "sell" | "topup" | "class" | "refund";

/** A record the cashier entered, and how far it got. */
export interface StoredRecord {
  /** Its identity key (src/browser/identity.ts). */
  key: string;
  /** The card number as the cashier typed it (stays in this browser; the chain sees only `account`). */
  card: string;
  /** What the cashier did: a sale is a card's first top-up. */
  action: Action;
  details: StoredDetails;
  /** queued: not in a batch yet; sealed: in a journaled batch; refused: the ledger would not take it. */
  status: "queued" | "sealed" | "refused";
  /** For refused records: what the ledger said, for the cashier. */
  error?: string;
  /** When the cashier entered it (ms). */
  addedAt: number;
}

interface TillSchema extends DBSchema {
  lines: { key: number; value: JournalLine };
  records: { key: string; value: StoredRecord };
}

/** The IndexedDB database of one chain, ledger and merchant. */
export function databaseName(chainId: bigint, ledger: string, merchantId: number): string {
  return `prepaid-pos:${chainId}:${ledger.toLowerCase()}:${merchantId}`;
}

/**
 * The uploader's journal (JournalState) kept in IndexedDB: batch lines stored before their
 * transaction is sent ({@link IdbJournal.appendBatch}), the later lines queued in order.
 */
export class IdbJournal extends JournalState {
  /** Lines written after the batch lines are queued here, in order. */
  private queue: Promise<void> = Promise.resolve();
  private failure: unknown;

  private constructor(
    path: string,
    header: JournalHeader,
    private readonly db: IDBPDatabase<TillSchema>,
  ) {
    super(path, header);
  }

  /**
   * Opens (or creates) the journal of one chain, ledger and merchant in this browser.
   *
   * @returns the journal and the records entered so far, oldest first
   * @throws PrepaidLedgerError `JOURNAL_CORRUPT`, `UNSUPPORTED_VERSION`, `INVALID_CONFIG` as the
   *   file journal
   */
  static async open(expected: Omit<JournalHeader, "t" | "version">): Promise<{ journal: IdbJournal; records: StoredRecord[] }> {
    const path = databaseName(BigInt(expected.chainId), expected.ledger, expected.merchantId);
    const db = await openDB<TillSchema>(path, 1, {
      upgrade(db) {
        db.createObjectStore("lines", { autoIncrement: true });
        db.createObjectStore("records", { keyPath: "key" });
      },
    });
    const lines = await db.getAll("lines");
    const want: JournalHeader = { t: "header", version: JOURNAL_VERSION, ...expected };
    const journal = new IdbJournal(path, JournalState.checkHeader(path, lines, want), db);
    journal.load(lines);
    await journal.flush();
    const records = (await db.getAll("records")).sort((a, b) => a.addedAt - b.addedAt);
    return { journal, records };
  }

  /** Queues one line (sent, included, done, moved, …): each of them can be learnt again from the chain. */
  protected write(line: JournalLine): void {
    this.queue = this.queue.then(
      async () => {
        await this.db.add("lines", line);
      },
      () => undefined,
    ).catch((e: unknown) => {
      this.failure = e;
    });
  }

  /**
   * Resolves once every queued line is stored.
   *
   * @throws PrepaidLedgerError `JOURNAL_CORRUPT` if IndexedDB refused a line
   */
  async flush(): Promise<void> {
    await this.queue;
    if (this.failure !== undefined) {
      throw new PrepaidLedgerError("JOURNAL_CORRUPT", "the browser's storage refused a journal line", {
        details: { path: this.path },
        cause: this.failure,
      });
    }
  }

  /** Stores a record the cashier entered, before anything else happens to it. */
  async putRecord(record: StoredRecord): Promise<void> {
    await this.db.put("records", record);
  }

  /**
   * Writes a batch line and marks its records sealed, in one IndexedDB transaction, and only then
   * takes the batch into the state: nothing is sent that is not stored.
   */
  async appendBatch(line: JournalBatch, records: StoredRecord[]): Promise<void> {
    await this.flush();
    const tx = this.db.transaction(["lines", "records"], "readwrite");
    void tx.objectStore("lines").add(line);
    for (const r of records) void tx.objectStore("records").put({ ...r, status: "sealed" });
    await tx.done;
    for (const r of records) r.status = "sealed";
    this.apply(line);
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }
}
