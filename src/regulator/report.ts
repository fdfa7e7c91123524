/**
 * Plain-text supervision report: what a regulator prints or hands on.
 */
import { merchantStatusName } from "./books.js";
import type { SupervisionReport } from "./reader.js";

/** The status names of books.ts, "unregistered" for 0, and the standings that stop trade in capitals. */
function statusText(status: number): string {
  if (status === 0) return "unregistered";
  const name = merchantStatusName(status);
  return name === "unknown" ? String(status) : name === "active" ? name : name.toUpperCase();
}

/** Minor units (fen, cents) as a decimal with two places: 1234567n → "12,345.67". */
export function formatAmount(minor: bigint): string {
  const sign = minor < 0n ? "-" : "";
  const abs = minor < 0n ? -minor : minor;
  const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${sign}${whole}.${(abs % 100n).toString().padStart(2, "0")}`;
}

/**
 * Fen (1/100 yuan) as yuan for people, the one money format of reports, alerts, the CLI and the
 * dashboard: `123456` → `¥1,234.56`, `-5` → `-¥0.05`. Exact (integer arithmetic, no floats).
 */
export function yuan(fen: number | bigint): string {
  const text = formatAmount(BigInt(fen));
  return text.startsWith("-") ? `-¥${text.slice(1)}` : `¥${text}`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  "));
}

/**
 * Renders a report: per merchant its standing, accounts, prepaid liability outstanding,
 * consumed, refunded and verification result; then the chain and every discrepancy.
 *
 * @param names - display names by merchant id (optional)
 */
export function formatReport(report: SupervisionReport, names: ReadonlyMap<number, string> = new Map()): string {
  const lines: string[] = [];
  lines.push(`Supervision report — ledger ${report.ledger} on chain ${report.chainId}, blocks ${report.fromBlock}–${report.toBlock}`);
  lines.push("");
  const rows = [["merchant", "status", "accounts", "records", "topped up", "consumed", "refunded", "liability", "verification"]];
  let liability = 0n;
  for (const m of report.merchants) {
    liability += m.liability;
    rows.push([
      `${m.merchantId} ${names.get(m.merchantId) ?? ""}`.trim(),
      statusText(m.status),
      String(m.accountCount),
      String(m.recordCount),
      formatAmount(m.toppedUp),
      formatAmount(m.consumed),
      formatAmount(m.refunded),
      formatAmount(m.liability),
      m.badRecords === 0 ? "ok" : `${m.badRecords} bad record(s)`,
    ]);
  }
  lines.push(...table(rows));
  lines.push("");
  lines.push(`Prepaid liability outstanding, all merchants: ${formatAmount(liability)}`);
  lines.push(
    `Records read: ${report.records} in ${report.batches} batches${
      report.settlements > 0 ? ` and ${report.settlements} settlements by custody` : ""
    }; decrypted and verified: ${report.verified}; accounts: ${report.accounts}`,
  );
  const chainOk = report.chain.recordCount === report.chain.contractRecordCount && report.chain.head === report.chain.contractHead;
  lines.push(
    `Hash chain: ${report.chain.recordCount} records, head ${report.chain.head} — ${
      report.chain.startedMidway ? "started mid-ledger" : chainOk ? "matches the contract" : "DIFFERS from the contract"
    }`,
  );
  if (report.confirmation !== undefined) {
    const c = report.confirmation;
    lines.push(
      c.finalRecordCount === 0n
        ? `Confirmation: no checkpoint final yet; all ${c.pending} records pending (quorum ${c.quorum})`
        : `Confirmation: records 1–${c.finalRecordCount} confirmed by the supervisors' quorum (${c.confirmed} of those read); ${c.pending} pending`,
    );
  }
  if (report.discrepancies.length === 0) {
    lines.push(
      "Verification: every record decrypted, matched its commitment and on-chain amount; books match the contract." +
        (report.settlements > 0 ? " Every settlement is linked in the chain and within its card's balance." : ""),
    );
  } else {
    lines.push(`Verification: ${report.discrepancies.length} DISCREPANCIES`);
    for (const d of report.discrepancies.slice(0, 50)) {
      const at = d.recordIndex !== undefined ? `record #${d.recordIndex}` : d.account ?? (d.merchantId !== undefined ? `merchant ${d.merchantId}` : "ledger");
      lines.push(`  - [${d.kind}] ${at}: ${d.message}${d.txHash ? ` (tx ${d.txHash})` : ""}`);
    }
    if (report.discrepancies.length > 50) lines.push(`  … and ${report.discrepancies.length - 50} more`);
  }
  return lines.join("\n");
}
