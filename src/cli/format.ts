/**
 * Text output of the command line: amounts in yuan, times, aligned tables, CSV and JSON.
 * Amounts arrive as integer fen (numbers or bigints) and are formatted with integer arithmetic,
 * so ¥0.10 never prints as ¥0.09999.
 */
import { formatAmount, yuan } from "../regulator/report.js";
import { localParts } from "../time.js";

/** A value a table, CSV or JSON cell holds. */
export type Cell = string | number | bigint | boolean | null;

/** Integer fen as yuan for people: `123456` → `¥1,234.56`, `-5` → `-¥0.05` (the reports' and dashboard's format). */
export { yuan };

/** Integer fen as a plain decimal for spreadsheets: `123456` → `1234.56`. */
export function yuanDecimal(fen: number | bigint): string {
  return formatAmount(BigInt(fen)).replaceAll(",", "");
}

/** `1 record`, `2 records`: a count and its noun (`many` for an irregular plural). */
export function plural(n: number, noun: string, many = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : many}`;
}

/** Unix seconds as ISO 8601 UTC without milliseconds: `2026-11-26T09:03:00Z`. */
export function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Unix seconds in the machine's time zone (`TZ` sets it), to the minute, with the zone:
 * `2026-11-26 17:03 UTC+08:00` (`2026-11-26 09:03 UTC` under TZ=UTC), as the dashboard writes it.
 */
export function localTime(seconds: number): string {
  const { date, time, zone } = localParts(seconds);
  return `${date} ${time.slice(0, 5)} ${zone}`;
}

/**
 * Text from the ledger (memos, order references are the merchant's words) made safe to print on
 * a terminal: control characters, which could move the cursor or recolour the screen, are shown
 * as `\xNN` escapes instead.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

// East Asian wide characters take two terminal columns; memos are often Chinese.
const WIDE = /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/g;

/** The number of terminal columns `text` takes. */
function displayWidth(text: string): number {
  return [...text].length + (text.match(WIDE)?.length ?? 0);
}

/** One column of a table: its header and whether its cells are numbers (right-aligned). */
export interface Column {
  header: string;
  numeric?: boolean;
}

/**
 * An aligned plain-text table, header first, columns two spaces apart, no trailing spaces.
 * Cells are made {@link printable}; `null` shows as `—`.
 */
export function table(columns: readonly Column[], rows: readonly Cell[][]): string {
  const text = [columns.map((c) => c.header), ...rows.map((r) => r.map((v) => (v === null ? "—" : printable(String(v)))))];
  const widths = columns.map((_, i) => Math.max(...text.map((r) => displayWidth(r[i] ?? ""))));
  const pad = (s: string, i: number) => {
    const fill = " ".repeat(widths[i] - displayWidth(s));
    return columns[i].numeric ? fill + s : s + fill;
  };
  return text.map((r) => r.map(pad).join("  ").trimEnd()).join("\n") + "\n";
}

/** {@link table}, or "none" when there are no rows. */
export function tableOrNone(columns: readonly Column[], rows: readonly Cell[][]): string {
  return rows.length === 0 ? "none\n" : table(columns, rows);
}

/** Label/value lines, labels padded to one width: `Settled block:  1234`. */
export function keyValues(pairs: readonly [string, Cell][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${(k + ":").padEnd(width)}  ${v === null ? "—" : printable(String(v))}`).join("\n") + "\n";
}

// A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One CSV cell (RFC 4180): text that a spreadsheet would run as a formula gets a leading `'`;
 * a cell with a quote, comma or line break is quoted, quotes doubled. Numbers are written as
 * they are (a negative amount stays a number); `null` is an empty cell.
 */
export function csvCell(value: Cell): string {
  if (value === null) return "";
  if (typeof value !== "string") return String(value);
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** One CSV line, CRLF-terminated as RFC 4180 says. */
export function csvLine(values: readonly Cell[]): string {
  return values.map(csvCell).join(",") + "\r\n";
}

/** JSON with bigints as decimal strings, two-space indented. */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v), indent);
}
