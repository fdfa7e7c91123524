/**
 * The read side of the index: every figure the CLI and the dashboard show comes from here, so
 * the two can never disagree. All queries are indexed lookups or scans of small tables
 * (merchants, alerts); none scans `records` except {@link IndexQueries.records} with a filter
 * that uses one of its indexes.
 */
import { createHash } from "node:crypto";

import { PrepaidLedgerError } from "../errors.js";
import { reorgMark } from "./reorg.js";
import { attachedCustody, custodyByMerchant, custodyView, type CustodyFigures, type CustodyView } from "./custody.js";
import { profiles } from "./profiles.js";
import { protectionTotals, protectionView, type ProtectionView } from "./protection-view.js";
import { recorderView, type RecorderView } from "./recorders.js";
import { getMeta, hasTable, num, numOrNull, TABLES, type Database } from "./schema.js";
import {
  accountRow,
  alertRow,
  merchantRow,
  recordRow,
  type IndexInfo,
  type MerchantRow,
  type Totals,
  type AlertRow,
  type Overview,
  type LiabilityPoint,
  type AccountRow,
  type RecordRow,
  type DiscrepancyRow,
  type Page,
  type RecordFilter,
} from "./rows.js";

/** The row types live in rows.ts; re-exported here, where callers have always found them. */
export { KIND_NAMES, SETTLEMENT_REASONS } from "./rows.js";
export type {
  AccountRow,
  AlertRow,
  DiscrepancyRow,
  IndexInfo,
  LiabilityPoint,
  MerchantRow,
  MerchantStatus,
  Overview,
  Page,
  RecordFilter,
  RecordRow,
  Totals,
  Verification,
} from "./rows.js";

const SEVERITY_ORDER = "CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END";

function limitOf(p: Page, fallback: number, max = 10_000): { limit: number; offset: number } {
  const limit = p.limit ?? fallback;
  const offset = p.offset ?? 0;
  if (!Number.isInteger(limit) || limit < 1 || limit > max || !Number.isInteger(offset) || offset < 0) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "a page needs 1 <= limit <= max and offset >= 0", {
      details: { limit, offset, max },
    });
  }
  return { limit, offset };
}

/** A 32-byte account id, 0x-hex (any case); returned lowercase. */
export function normalizeAccount(account: string): string {
  return normalizeHash(account, "account");
}

/** 32 bytes of 0x-hex (any case), lowercase. @throws PrepaidLedgerError `INVALID_ARGUMENT` naming `field` */
function normalizeHash(hex: string, field: "account" | "tx"): string {
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) {
    const what = field === "account" ? "an account id" : "a transaction hash";
    throw new PrepaidLedgerError("INVALID_ARGUMENT", `${what} is 32 bytes of 0x-hex`, { details: { [field]: hex } });
  }
  return hex.toLowerCase();
}

export class IndexQueries {
  constructor(private readonly db: Database) {}

  /** What the index covers. @throws PrepaidLedgerError `INDEX_CORRUPT` if it was never synced */
  info(): IndexInfo {
    const s = this.db.prepare("SELECT * FROM sync_state WHERE id = 1").get() as Record<string, unknown> | undefined;
    const chainId = getMeta(this.db, "chain_id");
    if (s === undefined || chainId === undefined) {
      throw new PrepaidLedgerError("INDEX_CORRUPT", "the index has never been synced: run `prepaid sync` first");
    }
    return {
      chainId,
      ledger: getMeta(this.db, "ledger")!,
      quorum: getMeta(this.db, "quorum") ?? null,
      decryptedFor: getMeta(this.db, "decrypted_for") ?? null,
      fromBlock: Number(getMeta(this.db, "from_block") ?? 0),
      confirmations: Number(getMeta(this.db, "confirmations") ?? 0),
      settledBlock: num(s.settled_block),
      settledTime: num(s.settled_time),
      recordCount: num(s.record_count),
      chainHead: String(s.chain_head),
      finalRecordCount: num(s.final_record_count),
      confirmedBlock: Number(getMeta(this.db, "confirmed_block") ?? num(s.settled_block)),
      reorg: reorgMark(this.db),
    };
  }

  /** @param info - what {@link info} returns, when the caller has it already */
  totals(info: IndexInfo = this.info()): Totals {
    const m = this.db
      .prepare(
        `SELECT count(*) AS merchants, coalesce(sum(account_count),0) AS accounts, coalesce(sum(record_count),0) AS records,
                coalesce(sum(topped_up),0) AS topped_up, coalesce(sum(consumed),0) AS consumed, coalesce(sum(refunded),0) AS refunded,
                coalesce(sum(bad_records),0) AS failed
           FROM merchants`,
      )
      .get() as Record<string, number>;
    const encrypted = info.decryptedFor === null ? num(m.records) : 0;
    const alerts = num((this.db.prepare("SELECT count(*) AS n FROM alerts").get() as { n: number }).n);
    const pending = info.quorum === null ? 0 : Math.max(0, info.recordCount - info.finalRecordCount);
    return {
      merchants: num(m.merchants),
      accounts: num(m.accounts),
      records: num(m.records),
      failed: num(m.failed),
      encrypted,
      verified: num(m.records) - num(m.failed) - encrypted,
      confirmed: info.quorum === null ? 0 : Math.min(info.finalRecordCount, info.recordCount),
      pending,
      toppedUp: num(m.topped_up),
      consumed: num(m.consumed),
      refunded: num(m.refunded),
      liability: num(m.topped_up) - num(m.consumed) - num(m.refunded),
      alerts,
    };
  }

  overview(alertLimit = 20): Overview {
    const info = this.info();
    const merchants = this.merchants();
    const custody = this.custodies(merchants);
    return {
      info,
      totals: this.totals(info),
      merchants,
      alerts: this.alerts({ limit: alertLimit }),
      custody: { contract: custody.custody, merchants: Object.fromEntries(custody.merchants) },
      protection: protectionTotals(this.db, info.settledTime),
    };
  }

  merchants(): MerchantRow[] {
    const rows = this.db
      .prepare(
        `SELECT m.*, (SELECT count(*) FROM alerts a WHERE a.merchant_id = m.merchant_id) AS alerts
           FROM merchants m ORDER BY m.merchant_id`,
      )
      .all() as Record<string, unknown>[];
    const names = profiles(this.db);
    return rows.map((r) => merchantRow(r, names));
  }

  /** @throws PrepaidLedgerError `NOT_FOUND` if the index has no such merchant */
  merchant(merchantId: number): MerchantRow {
    const row = this.db
      .prepare(
        `SELECT m.*, (SELECT count(*) FROM alerts a WHERE a.merchant_id = m.merchant_id) AS alerts
           FROM merchants m WHERE m.merchant_id = ?`,
      )
      .get(merchantId) as Record<string, unknown> | undefined;
    if (row === undefined) throw new PrepaidLedgerError("NOT_FOUND", "no such merchant in the index", { details: { merchantId } });
    return merchantRow(row, profiles(this.db, merchantId));
  }

  /**
   * Who may write for the merchant: its recorder keys now, the regulators' standing offers (and
   * whether they may be carried out yet, at the index's time) and every recorder event, derived
   * from the registry's events (src/indexer/recorders.ts).
   *
   * @throws PrepaidLedgerError `NOT_FOUND` if the index has no such merchant
   */
  recorders(merchantId: number, info: IndexInfo = this.info()): RecorderView {
    this.merchant(merchantId);
    return recorderView(this.db, merchantId, info.settledTime);
  }

  /**
   * The merchant's custody: held, ratio, required (ceil(ratio × liability / 10,000) of the
   * liability in the index's books), coverage and the history of its deposits, withdrawals and
   * ratio changes, from the custody events (src/indexer/custody.ts). `custody` is null when the
   * ledger has no custody attached.
   *
   * @throws PrepaidLedgerError `NOT_FOUND` if the index has no such merchant
   */
  custody(merchantId: number): CustodyView {
    const m = this.merchant(merchantId);
    return custodyView(this.db, merchantId, m.liability);
  }

  /**
   * Every merchant's custody figures (merchant id → figures), with the custody contract
   * attached; `custody` null (and no figures) when the ledger has none attached.
   */
  custodies(merchants: MerchantRow[] = this.merchants()): { custody: string | null; merchants: Map<number, CustodyFigures> } {
    const figures = custodyByMerchant(this.db, new Map(merchants.map((m) => [m.merchantId, m.liability])));
    return { custody: attachedCustody(this.db)?.address ?? null, merchants: figures ?? new Map() };
  }

  /**
   * The merchant's card holders' protection as of the index's last block: its card rules, its
   * claims round (once closed) and its cooling-off returns, from the protection events
   * (src/indexer/protection-view.ts).
   *
   * @throws PrepaidLedgerError `NOT_FOUND` if the index has no such merchant
   */
  protection(merchantId: number, info: IndexInfo = this.info()): ProtectionView {
    this.merchant(merchantId);
    return protectionView(this.db, merchantId, info.settledTime);
  }

  /**
   * The merchant's liability after each of its batches and settlements, oldest first (at most
   * `maxPoints`, evenly thinned, always the last).
   */
  liabilitySeries(merchantId: number, maxPoints = 500): LiabilityPoint[] {
    const batches = this.batchSeries(merchantId, maxPoints);
    const settled = hasTable(this.db, "protection_events")
      ? (this.db
          .prepare("SELECT block_number, block_time, log_index, amount FROM records WHERE merchant_id = ? AND settlement IS NOT NULL ORDER BY record_index")
          .all(merchantId) as Record<string, unknown>[])
      : [];
    if (settled.length === 0) return batches.map(({ logIndex: _, ...p }) => p);
    // A settlement's liability: the last batch's before it, less the settlements since.
    const lastBatch = this.db.prepare(
      `SELECT block_number, log_index, liability_after FROM batches WHERE merchant_id = ? AND (block_number < ? OR (block_number = ? AND log_index < ?))
        ORDER BY block_number DESC, log_index DESC LIMIT 1`,
    );
    // Settlements come in record order, so the batch before each only moves forward: the sum
    // since it restarts when it changes (one pass, however many holders claimed).
    let batchKey = "";
    let since = 0;
    const points = settled.map((r) => {
      const [block, logIndex, amount] = [num(r.block_number), num(r.log_index), num(r.amount)];
      const b = lastBatch.get(merchantId, block, block, logIndex) as Record<string, unknown> | undefined;
      const key = b === undefined ? "none" : `${num(b.block_number)}:${num(b.log_index)}`;
      if (key !== batchKey) [batchKey, since] = [key, 0];
      since += amount;
      return { blockNumber: block, time: num(r.block_time), logIndex, liability: (b === undefined ? 0 : num(b.liability_after)) - since, toppedUp: 0, consumed: 0, refunded: amount };
    });
    const merged = [...batches, ...points].sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
    const step = Math.max(1, Math.ceil(merged.length / maxPoints));
    return merged.filter((_, i) => i % step === 0 || i === merged.length - 1).map(({ logIndex: _, ...p }) => p);
  }

  /** The merchant's liability after each of its batches (at most `maxPoints`, evenly thinned, always the last), with each batch's log index. */
  private batchSeries(merchantId: number, maxPoints: number): (LiabilityPoint & { logIndex: number })[] {
    const n = num((this.db.prepare("SELECT count(*) AS n FROM batches WHERE merchant_id = ?").get(merchantId) as { n: number }).n);
    const step = Math.max(1, Math.ceil(n / maxPoints));
    const rows = this.db
      .prepare(
        `SELECT * FROM (
           SELECT block_number, log_index, block_time, liability_after, topped_up, consumed, refunded,
                  row_number() OVER (ORDER BY block_number, log_index) AS rn
             FROM batches WHERE merchant_id = ?) AS numbered
          WHERE (rn - 1) % ? = 0 OR rn = ? ORDER BY rn`,
      )
      .all(merchantId, step, n) as Record<string, unknown>[];
    return rows.map((r) => ({
      blockNumber: num(r.block_number),
      logIndex: num(r.log_index),
      time: num(r.block_time),
      liability: num(r.liability_after),
      toppedUp: num(r.topped_up),
      consumed: num(r.consumed),
      refunded: num(r.refunded),
    }));
  }

  /** A merchant's accounts, largest balance first. */
  accounts(merchantId: number, page: Page = {}): AccountRow[] {
    const { limit, offset } = limitOf(page, 100);
    const rows = this.db
      .prepare("SELECT * FROM accounts WHERE merchant_id = ? ORDER BY balance DESC, account LIMIT ? OFFSET ?")
      .all(merchantId, limit, offset) as Record<string, unknown>[];
    return rows.map(accountRow);
  }

  /** @throws PrepaidLedgerError `NOT_FOUND` */
  account(merchantId: number, account: string): AccountRow {
    const row = this.db
      .prepare("SELECT * FROM accounts WHERE merchant_id = ? AND account = ?")
      .get(merchantId, normalizeAccount(account)) as Record<string, unknown> | undefined;
    if (row === undefined) {
      throw new PrepaidLedgerError("NOT_FOUND", "no such account in the index", { details: { merchantId, account } });
    }
    return accountRow(row);
  }

  /**
   * The full account id for an id or a unique prefix of one (at least 8 hex digits after 0x, as
   * reports print them: `0x17312af8…`; a trailing "…" or "..." is ignored).
   * @throws PrepaidLedgerError `INVALID_ARGUMENT` (not hex, too short, or a prefix of several
   *   accounts, which are named), `NOT_FOUND` (no account starts so)
   */
  resolveAccount(text: string): string {
    const typed = text.trim().replace(/(…|\.\.\.)$/, "");
    if (/^0x[0-9a-fA-F]{64}$/.test(typed)) return typed.toLowerCase();
    if (!/^0x[0-9a-fA-F]{8,63}$/.test(typed)) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "an account id is 32 bytes of 0x-hex, or a unique prefix of at least 8 hex digits", {
        details: { account: text },
      });
    }
    const prefix = typed.toLowerCase();
    const found = this.db
      .prepare("SELECT DISTINCT account FROM accounts WHERE account >= ? AND account < ? ORDER BY account LIMIT 3")
      .all(prefix, prefix + "g") as { account: string }[];
    if (found.length === 0) throw new PrepaidLedgerError("NOT_FOUND", "no account in the index starts with this prefix", { details: { prefix } });
    if (found.length > 1) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "the prefix matches several accounts: give more digits", {
        details: { prefix, matches: found.map((r) => r.account).slice(0, 2).join(", ") + (found.length > 2 ? ", …" : "") },
      });
    }
    return found[0].account;
  }

  /** Every merchant's account with this id (the same opaque id may exist under several merchants). */
  findAccount(account: string): AccountRow[] {
    const rows = this.db.prepare("SELECT * FROM accounts WHERE account = ? ORDER BY merchant_id").all(normalizeAccount(account));
    return (rows as Record<string, unknown>[]).map(accountRow);
  }

  records(filter: RecordFilter = {}): RecordRow[] {
    const { limit, offset } = limitOf(filter, 100, 1_000_000);
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.merchantId !== undefined) {
      where.push("merchant_id = ?");
      args.push(filter.merchantId);
    }
    if (filter.account !== undefined) {
      where.push("account = ?");
      args.push(normalizeAccount(filter.account));
    }
    if (filter.verification !== undefined) {
      where.push("verification = ?");
      args.push(filter.verification);
    }
    if (filter.txHash !== undefined) {
      where.push("tx_hash = ?");
      args.push(normalizeHash(filter.txHash, "tx"));
    }
    if (filter.afterIndex !== undefined) {
      where.push("record_index > ?");
      args.push(filter.afterIndex);
    }
    const order = filter.order === "desc" ? "DESC" : "ASC";
    const sql = `SELECT * FROM records ${where.length > 0 ? "WHERE " + where.join(" AND ") : ""}
                 ORDER BY record_index ${order} LIMIT ? OFFSET ?`;
    const final = this.finalCount();
    return (this.db.prepare(sql).all(...args, limit, offset) as Record<string, unknown>[]).map((r) => recordRow(r, final));
  }

  /** @throws PrepaidLedgerError `NOT_FOUND` */
  record(recordIndex: number): RecordRow {
    const row = this.db.prepare("SELECT * FROM records WHERE record_index = ?").get(recordIndex) as Record<string, unknown> | undefined;
    if (row === undefined) throw new PrepaidLedgerError("NOT_FOUND", "no such record in the index", { details: { recordIndex } });
    return recordRow(row, this.finalCount());
  }

  alerts(filter: Page & { merchantId?: number; rule?: string } = {}): AlertRow[] {
    const { limit, offset } = limitOf(filter, 1_000, 1_000_000);
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.merchantId !== undefined) {
      where.push("merchant_id = ?");
      args.push(filter.merchantId);
    }
    if (filter.rule !== undefined) {
      where.push("rule = ?");
      args.push(filter.rule);
    }
    const sql = `SELECT * FROM alerts ${where.length > 0 ? "WHERE " + where.join(" AND ") : ""}
                 ORDER BY ${SEVERITY_ORDER}, rule, merchant_id, id LIMIT ? OFFSET ?`;
    const names = profiles(this.db);
    return (this.db.prepare(sql).all(...args, limit, offset) as Record<string, unknown>[]).map((r) => {
      const a = alertRow(r);
      return { ...a, merchantName: a.merchantId === null ? null : (names.get(a.merchantId)?.name ?? null) };
    });
  }

  discrepancies(page: Page = {}): DiscrepancyRow[] {
    const { limit, offset } = limitOf(page, 1_000, 1_000_000);
    return (this.db.prepare("SELECT * FROM discrepancies ORDER BY id LIMIT ? OFFSET ?").all(limit, offset) as Record<string, unknown>[]).map(
      (r) => ({
        id: num(r.id),
        kind: String(r.kind),
        message: String(r.message),
        recordIndex: numOrNull(r.record_index),
        merchantId: numOrNull(r.merchant_id),
        account: (r.account as string | null) ?? null,
        txHash: (r.tx_hash as string | null) ?? null,
        blockNumber: numOrNull(r.block_number),
        details: r.details === null ? null : (JSON.parse(String(r.details)) as Record<string, unknown>),
      }),
    );
  }

  /** Rows in one table. */
  count(table: (typeof TABLES)[number]): number {
    if (!hasTable(this.db, table)) return 0; // an older index opened read-only
    return num((this.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
  }

  /** Row counts of every table (counting `records` reads its smallest index whole: use {@link count} for one table). */
  counts(): Record<string, number> {
    return Object.fromEntries(TABLES.map((t) => [t, this.count(t)]));
  }

  /**
   * SHA-256 over every row of every table, in primary-key order: two indexes with the same
   * digest hold the same data. Used to prove a resumed sync equals a clean one.
   */
  digest(): string {
    const hash = createHash("sha256");
    for (const t of TABLES) {
      if (!hasTable(this.db, t)) continue;
      hash.update(`table ${t}\n`);
      const stmt = this.db.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`);
      for (const row of stmt.iterate() as Iterable<Record<string, unknown>>) {
        for (const v of Object.values(row)) {
          hash.update(v instanceof Uint8Array ? Buffer.from(v).toString("hex") : JSON.stringify(v));
          hash.update("\u001f");
        }
        hash.update("\n");
      }
    }
    return hash.digest("hex");
  }

  private finalCount(): number | null {
    const quorum = getMeta(this.db, "quorum");
    if (quorum === undefined) return null;
    const s = this.db.prepare("SELECT final_record_count AS n FROM sync_state WHERE id = 1").get() as { n: number } | undefined;
    return s === undefined ? 0 : num(s.n);
  }
}
