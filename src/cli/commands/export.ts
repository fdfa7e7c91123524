/**
 * `prepaid export <records|accounts|merchants|alerts>`: the index as CSV or JSON, streamed page
 * by page so an index of millions of records never sits in memory. With `--out FILE` the export
 * is written to a temporary file beside FILE and renamed over it only once complete, so a failed
 * export leaves no half file and never destroys the previous one.
 */
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { resolve } from "node:path";

import { PrepaidLedgerError } from "../../errors.js";
import { KIND_NAMES, type AccountRow, type AlertRow, type IndexQueries, type MerchantRow, type RecordRow } from "../../indexer/queries.js";
import { choice, stringOption } from "../args.js";
import type { Command, Context } from "../command.js";
import { csvLine, isoTime, plural, toJson, yuanDecimal, type Cell } from "../format.js";
import { merchantId, withQueries } from "../index-file.js";

const DATASETS = ["records", "accounts", "merchants", "alerts"] as const;
type Dataset = (typeof DATASETS)[number];
const FORMATS = ["csv", "json"] as const;

/** Rows read per query. */
const PAGE = 5_000;
/** Bytes gathered before one write. */
const CHUNK = 1 << 16;

const iso = (seconds: number | null) => (seconds === null ? null : isoTime(seconds));

/** One dataset: its CSV columns, a row's CSV cells, and its rows (paged). */
interface Sheet<Row> {
  columns: readonly string[];
  cells(row: Row): Cell[];
  rows(q: IndexQueries, merchant: number | undefined): Iterable<Row>;
}

/** Yields `fetch(offset)` pages until one comes back short. */
function* paged<Row>(fetch: (offset: number) => Row[]): Iterable<Row> {
  for (let offset = 0; ; offset += PAGE) {
    const page = fetch(offset);
    yield* page;
    if (page.length < PAGE) return;
  }
}

const records: Sheet<RecordRow> = {
  // `kind` is the booked kind (a settlement is a refund); `settlement` says why custody booked it
  // (claim, cooling-off) and `holder` whom it paid, empty for a record of a batch.
  columns: ["record_index", "merchant_id", "account", "kind", "amount_yuan", "block_number", "block_time", "tx_hash", "log_index", "commitment", "verification", "problems", "confirmed", "merchant_time", "order_ref", "memo", "settlement", "holder"],
  cells: (r) => [r.recordIndex, r.merchantId, r.account, KIND_NAMES[r.kind] ?? r.kindName, yuanDecimal(r.amount), r.blockNumber, isoTime(r.blockTime), r.txHash, r.logIndex, r.commitment, r.verification, r.problems.join(";"), r.confirmed, iso(r.details?.time ?? null), r.details?.orderRef ?? null, r.details?.memo ?? null, r.settlement?.reason ?? null, r.settlement?.holder ?? null],
  *rows(q, merchant) {
    // Keyset paging by record index: an OFFSET deep into millions of records rescans them all.
    for (let after = 0; ; ) {
      const page = q.records({ merchantId: merchant, limit: PAGE, afterIndex: after });
      yield* page;
      if (page.length < PAGE) return;
      after = page[page.length - 1].recordIndex;
    }
  },
};

const accounts: Sheet<AccountRow> = {
  columns: ["merchant_id", "account", "balance_yuan", "initial_amount_yuan", "topped_up_yuan", "consumed_yuan", "refunded_yuan", "record_count", "failed_records", "opened_time", "last_record_time"],
  cells: (a) => [a.merchantId, a.account, yuanDecimal(a.balance), yuanDecimal(a.initialAmount), yuanDecimal(a.toppedUp), yuanDecimal(a.consumed), yuanDecimal(a.refunded), a.recordCount, a.failedRecords, isoTime(a.openedTime), isoTime(a.lastRecordTime)],
  *rows(q, merchant) {
    const ids = merchant === undefined ? q.merchants().map((m) => m.merchantId) : [merchant];
    for (const id of ids) yield* paged((offset) => q.accounts(id, { limit: PAGE, offset }));
  },
};

const merchants: Sheet<MerchantRow> = {
  columns: ["merchant_id", "status", "recorder", "suspended_reason", "account_count", "record_count", "batches", "topped_up_yuan", "consumed_yuan", "refunded_yuan", "liability_yuan", "failed_records", "alerts", "first_record_time", "last_record_time", "last_service_time"],
  cells: (m) => [m.merchantId, m.status, m.recorder, m.suspendedReason, m.accountCount, m.recordCount, m.batches, yuanDecimal(m.toppedUp), yuanDecimal(m.consumed), yuanDecimal(m.refunded), yuanDecimal(m.liability), m.failedRecords, m.alerts, iso(m.firstRecordTime), iso(m.lastRecordTime), iso(m.lastServiceTime)],
  rows: (q, merchant) => q.merchants().filter((m) => merchant === undefined || m.merchantId === merchant),
};

const alerts: Sheet<AlertRow> = {
  columns: ["severity", "rule", "merchant_id", "account", "record_index", "message", "value", "threshold", "as_of_block", "as_of_time"],
  cells: (a) => [a.severity, a.rule, a.merchantId, a.account, a.recordIndex, a.message, a.value, a.threshold, a.asOfBlock, isoTime(a.asOfTime)],
  rows: (q, merchant) => paged((offset) => q.alerts({ merchantId: merchant, limit: PAGE, offset })),
};

/** A sheet whose rows are opaque: each sheet's `cells` only ever receives rows of its own `rows`. */
const erase = <Row>(sheet: Sheet<Row>): Sheet<unknown> => ({ ...sheet, cells: (row) => sheet.cells(row as Row) });

const SHEETS: Record<Dataset, Sheet<unknown>> = {
  records: erase(records),
  accounts: erase(accounts),
  merchants: erase(merchants),
  alerts: erase(alerts),
};

/** Where an export goes: stdout, or a temporary file renamed into place by `commit`. */
interface Sink {
  write(text: string): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

function stdoutSink(ctx: Context): Sink {
  return { write: (text) => ctx.write(text), commit: async () => {}, abort: async () => {} };
}

async function fileSink(path: string): Promise<Sink> {
  const temp = `${path}.${process.pid}.tmp`;
  let handle: FileHandle;
  try {
    handle = await open(temp, "wx");
  } catch (cause) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "cannot write the --out file there", { details: { out: path }, cause });
  }
  return {
    write: async (text) => void (await handle.write(text)),
    async commit() {
      await handle.sync();
      await handle.close();
      await rename(temp, path);
    },
    async abort() {
      await handle.close().catch(() => undefined);
      await rm(temp, { force: true });
    },
  };
}

/** Writes every row of `sheet` to `sink` in `format`, in chunks; returns the row count. */
async function writeRows<Row>(sheet: Sheet<Row>, rows: Iterable<Row>, format: "csv" | "json", sink: Sink): Promise<number> {
  let buffer = format === "csv" ? csvLine(sheet.columns) : "[";
  let n = 0;
  for (const row of rows) {
    buffer += format === "csv" ? csvLine(sheet.cells(row)) : `${n === 0 ? "" : ","}\n${toJson(row, 0)}`;
    n++;
    if (buffer.length >= CHUNK) {
      await sink.write(buffer);
      buffer = "";
    }
  }
  await sink.write(buffer + (format === "json" ? (n === 0 ? "]\n" : "\n]\n") : ""));
  return n;
}

async function run(ctx: Context): Promise<number> {
  const dataset = choice(ctx.args.positionals[0], DATASETS, "<what>");
  const format = choice(stringOption(ctx.args, "format") ?? (ctx.json ? "json" : "csv"), FORMATS, "--format");
  const merchantText = stringOption(ctx.args, "merchant");
  const outText = stringOption(ctx.args, "out");
  return withQueries(ctx, async (q) => {
    const merchant = merchantText === undefined ? undefined : q.merchant(merchantId(merchantText, "--merchant")).merchantId;
    const out = outText === undefined ? undefined : resolve(ctx.cwd, outText);
    const sink = out === undefined ? stdoutSink(ctx) : await fileSink(out);
    let rows: number;
    try {
      const sheet = SHEETS[dataset];
      rows = await writeRows(sheet, sheet.rows(q, merchant), format, sink);
      await sink.commit();
    } catch (e) {
      await sink.abort();
      throw e;
    }
    if (out !== undefined) {
      const done = { dataset, format, rows, out };
      await (ctx.json ? ctx.writeJson(done) : ctx.write(`Wrote ${plural(rows, dataset.slice(0, -1))} to ${out} (${format}).\n`));
    }
    return 0;
  });
}

/** `prepaid export <what>` */
export const exportCommand: Command = {
  name: "export",
  positionals: ["what"],
  summary: "records, accounts, merchants or alerts as CSV or JSON",
  description: `Writes one dataset of the index: ${DATASETS.join(", ")}. CSV has a header line and one line per
row; amounts are yuan with two decimals (columns named *_yuan), times ISO 8601 UTC, and text a
spreadsheet would run as a formula (starting with = + - @) is prefixed with '. JSON is one array
of objects with amounts in integer fen and times in Unix seconds. Rows are read page by page.
With --out the file appears only once complete: a failed export leaves no half file.`,
  options: {
    format: { type: "string", value: "csv|json", help: "output format (default csv; json with --json)" },
    out: { type: "string", value: "FILE", help: "write to FILE instead of stdout (replaced only when complete)" },
    merchant: { type: "string", value: "ID", help: "only this merchant's rows" },
  },
  examples: [
    "prepaid export records --format csv --out records.csv",
    "prepaid export accounts --merchant 101 --format json | jq length",
  ],
  run,
};
