/**
 * Following a chain that reorganizes (in the manner of Ponder's realtime sync).
 *
 * The index reads up to the chain head. Blocks newer than `confirmations` are "unsettled": their
 * rows are provisional. For them the index keeps
 * - their hashes and parent hashes (`recent_blocks`, plus the newest settled block as the anchor),
 *   to find the fork point when the chain changes;
 * - an undo log (`undo_log`): each merchants / accounts / sync_state row a page with unsettled
 *   blocks changed, as it was before, and the last discrepancy id before the page. Rows that
 *   come straight from a log (records, batches, merchant_events, recorder_events, custody_events,
 *   protection_events, checkpoints)
 *   need none: a rollback deletes those of the blocks after the fork point.
 *
 * A reorg is noticed by hash: between rounds (the cursor block's hash is no longer the chain's),
 * and within a round (a log whose blockHash differs from its block's, unsettled headers that do
 * not link). When the fork point is one of the unsettled blocks (or the anchor), the pages after
 * it are rolled back with the undo log and read again. When it is deeper (a settled block was
 * replaced: `confirmations` was too small), the index is MARKED (meta key `reorg`) and stays
 * readable; `prepaid sync --repair` rebuilds it ({@link clearIndex}).
 */
import { PrepaidLedgerError } from "../errors.js";
import { TABLES, getMeta, inTransaction, setMeta, type Database } from "./schema.js";

/** What the index stores when a reorg went deeper than its settled blocks. */
export interface ReorgMark {
  /** The block whose indexed hash is no longer the chain's. */
  block: number;
  indexedHash: string;
  chainHash: string | null;
  confirmations: number;
  /** ISO time of the detection. */
  detectedAt: string;
}

export interface BlockHeader {
  number: number;
  hash: string;
  parentHash: string;
  time: number;
}

/** The mark, or null when the index follows the chain. */
export function reorgMark(db: Database): ReorgMark | null {
  const v = getMeta(db, "reorg");
  return v === undefined || v === "" ? null : (JSON.parse(v) as ReorgMark);
}

export function setReorgMark(db: Database, mark: ReorgMark | null): void {
  if (mark === null) db.prepare("DELETE FROM meta WHERE key = 'reorg'").run();
  else setMeta(db, "reorg", JSON.stringify(mark));
}

/** Key columns of the tables the undo log covers. */
const KEYS: Record<string, string[]> = {
  merchants: ["merchant_id"],
  accounts: ["merchant_id", "account"],
  sync_state: ["id"],
};

/**
 * Records, for the page `from..to` about to be written, the rows it will change as they are now.
 * Call inside the page's transaction, before it writes.
 */
export function saveUndo(
  db: Database,
  from: number,
  to: number,
  merchants: Iterable<number>,
  accounts: Iterable<{ merchantId: number; account: string }>,
): void {
  const insert = db.prepare("INSERT INTO undo_log (seq, page_from, page_to, tbl, row_key, before) VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM undo_log), ?, ?, ?, ?, ?)");
  const save = (tbl: string, key: unknown[]) => {
    const where = KEYS[tbl].map((k) => `${k} = ?`).join(" AND ");
    const row = db.prepare(`SELECT * FROM ${tbl} WHERE ${where}`).get(...(key as (string | number)[]));
    insert.run(from, to, tbl, JSON.stringify(key), row === undefined ? null : JSON.stringify(row));
  };
  save("sync_state", [1]);
  for (const id of merchants) save("merchants", [id]);
  for (const a of accounts) save("accounts", [a.merchantId, a.account]);
  const last = db.prepare("SELECT coalesce(max(id), 0) AS id FROM discrepancies").get() as { id: number };
  insert.run(from, to, "discrepancies", JSON.stringify([Number(last.id)]), null);
}

/** Stores the headers of blocks read (unsettled ones, and the anchor). */
export function saveBlocks(db: Database, headers: Iterable<BlockHeader>): void {
  const insert = db.prepare(
    `INSERT INTO recent_blocks (block_number, hash, parent_hash) VALUES (?, ?, ?)
     ON CONFLICT (block_number) DO UPDATE SET hash = excluded.hash, parent_hash = excluded.parent_hash`,
  );
  for (const h of headers) insert.run(h.number, h.hash, h.parentHash);
}

/** Forgets what is settled now: blocks below `anchor` and pages that end at or below it. */
export function pruneSettled(db: Database, anchor: number): void {
  db.prepare("DELETE FROM recent_blocks WHERE block_number < ?").run(anchor);
  db.prepare("DELETE FROM undo_log WHERE page_to <= ?").run(anchor);
}

/** The stored block hashes, newest first. */
export function recentBlocks(db: Database): { number: number; hash: string }[] {
  return (db.prepare("SELECT block_number, hash FROM recent_blocks ORDER BY block_number DESC").all() as Record<string, unknown>[]).map(
    (r) => ({ number: Number(r.block_number), hash: String(r.hash) }),
  );
}

/**
 * Rolls the index back so that it holds every log up to `fork` and none after (or, when a page
 * straddles `fork`, up to that page's first block - 1: pages are undone whole). Returns the block
 * the index now ends at.
 *
 * @throws PrepaidLedgerError `REORG_TOO_DEEP` when pages after `fork` have no undo log (they were
 *   settled when written)
 */
export async function rollBack(db: Database, fork: number, cursorBlock: number): Promise<number> {
  return inTransaction(db, () => {
    const first = db.prepare("SELECT min(page_from) AS f FROM undo_log WHERE page_to > ?").get(fork) as { f: number | null };
    const target = first.f === null ? fork : Math.min(fork, Number(first.f) - 1);
    if (first.f === null && cursorBlock > fork) {
      throw new PrepaidLedgerError("REORG_TOO_DEEP", "the blocks after the fork point were settled when read: nothing to undo them with", {
        details: { fork, cursorBlock },
      });
    }
    const entries = db.prepare("SELECT * FROM undo_log WHERE page_to > ? ORDER BY seq DESC").all(target) as Record<string, unknown>[];
    for (const e of entries) {
      const tbl = String(e.tbl);
      const key = JSON.parse(String(e.row_key)) as (string | number)[];
      if (tbl === "discrepancies") {
        db.prepare("DELETE FROM discrepancies WHERE id > ?").run(key[0]);
        continue;
      }
      const where = KEYS[tbl].map((k) => `${k} = ?`).join(" AND ");
      db.prepare(`DELETE FROM ${tbl} WHERE ${where}`).run(...key);
      if (e.before === null) continue;
      const row = JSON.parse(String(e.before)) as Record<string, string | number | null>;
      const cols = Object.keys(row);
      db.prepare(`INSERT INTO ${tbl} (${cols.join(", ")}) VALUES (${cols.map(() => "?").join(", ")})`).run(...cols.map((c) => row[c]));
    }
    // Rows straight from logs (recorder_events, custody_events and protection_events too: the
    // keys, offers, custody figures, card rules, claims and cooling-off are derived from them;
    // a settlement is a row of records).
    for (const t of ["records", "batches", "merchant_events", "recorder_events", "custody_events", "protection_events", "merchant_profiles", "checkpoints"]) {
      db.prepare(`DELETE FROM ${t} WHERE block_number > ?`).run(target);
    }
    db.prepare("DELETE FROM discrepancies WHERE block_number > ?").run(target);
    db.prepare("DELETE FROM undo_log WHERE page_to > ?").run(target);
    db.prepare("DELETE FROM recent_blocks WHERE block_number > ?").run(target);
    db.exec("DELETE FROM alerts");
    return target;
  });
}

/**
 * Empties the index's data (keeping its identity: chain, ledger, quorum, key) so the next sync
 * reads it again from its first block; clears the reorg mark. The repair of a deep reorg.
 */
export async function clearIndex(db: Database): Promise<void> {
  await inTransaction(db, () => {
    // Every table of data but meta (the index's identity), and the reorg bookkeeping.
    for (const t of [...TABLES.filter((t) => t !== "meta"), "recent_blocks", "undo_log"]) {
      db.exec(`DELETE FROM ${t}`);
    }
    setReorgMark(db, null);
    // Read again from the first block, the recorder events are complete (an upgraded index's were not).
    db.prepare("DELETE FROM meta WHERE key = 'recorders_from_block'").run();
    // …and so are the custody events: every custody contract is read from the first block again.
    db.prepare("DELETE FROM meta WHERE key = 'custody_read'").run();
  });
}
