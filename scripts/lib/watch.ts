/**
 * The regulator's evening watch during the main job's history: each evening its index is synced
 * (src/indexer) and the risk rules run as of that evening's last block, so the report can say on
 * which day each alert first came — and how long before the precursor's closure it was flagged.
 */
import { Indexer } from "../../src/indexer/indexer.js";
import type { Alert, RiskConfigInput } from "../../src/indexer/risk.js";
import type { JsonRpcLike } from "../../src/regulator/logs.js";

/** An alert's first evening. */
export interface FirstAlert {
  day: number;
  /** The block time of the evening it first came. */
  time: number;
  merchantId: number | null;
  rule: Alert["rule"];
  severity: Alert["severity"];
  message: string;
}

export class RegulatorWatch {
  private readonly seen = new Map<string, FirstAlert>();

  private constructor(readonly indexer: Indexer) {}

  static async open(
    config: { ledger: string; quorum: string; privateKey: string; db: string; risk: RiskConfigInput },
    provider: JsonRpcLike,
  ): Promise<RegulatorWatch> {
    return new RegulatorWatch(await Indexer.open(config, provider));
  }

  /** Syncs the index and notes every alert not seen before (by merchant and rule); returns those. */
  async evening(day: number): Promise<FirstAlert[]> {
    await this.indexer.sync();
    const q = this.indexer.queries();
    const time = q.info().settledTime;
    const fresh: FirstAlert[] = [];
    for (const a of q.alerts()) {
      const key = `${a.merchantId}:${a.rule}`;
      if (this.seen.has(key)) continue;
      const first = { day, time, merchantId: a.merchantId, rule: a.rule, severity: a.severity, message: a.message };
      this.seen.set(key, first);
      fresh.push(first);
    }
    return fresh;
  }

  /** Every (merchant, rule) that fired on some evening, with its first one, in order. */
  firsts(): FirstAlert[] {
    return [...this.seen.values()];
  }

  close(): void {
    this.indexer.close();
  }
}

/**
 * What the regulator expects to see flagged: anything about the precursor, and the suspended
 * merchant serving nobody while it still owes its holders (`dormant-merchant`). Anything else
 * is a finding the simulation did not mean to make.
 */
export function isExpected(a: { merchantId: number | null; rule: string }, precursor: number, suspended: number): boolean {
  return a.merchantId === precursor || (a.merchantId === suspended && a.rule === "dormant-merchant");
}

/** How early the precursor was flagged: its first alert's day and the closure's, or null if never before it. */
export interface EarlyWarning {
  merchantId: number;
  name: string;
  closedOn: number;
  first: FirstAlert | null;
  /** Days between the first alert and the closure (null: not flagged before it closed). */
  daysEarlier: number | null;
  /** Each rule's first evening for the precursor, up to the evening before its closure (the watch runs before it closes). */
  rules: FirstAlert[];
}

export function earlyWarning(firsts: FirstAlert[], merchantId: number, name: string, closedOn: number): EarlyWarning {
  const rules = firsts.filter((a) => a.merchantId === merchantId && a.day <= closedOn).sort((a, b) => a.day - b.day);
  const first = rules[0] ?? null;
  return { merchantId, name, closedOn, first, daysEarlier: first === null ? null : closedOn - first.day, rules };
}

/** The watch's part of the main job's report: the early warning, the other expected alerts, the unexpected ones. */
export function formatWatch(h: {
  days: number;
  mornings: number[];
  alerts: FirstAlert[];
  unexpected: FirstAlert[];
  earlier: FirstAlert[];
  warning: EarlyWarning;
  names: ReadonlyMap<number, string>;
}): string {
  const date = (day: number) => new Date(h.mornings[day - 1] * 1000).toISOString().slice(0, 10);
  const name = (id: number | null) => (id === null ? "the ledger" : `${h.names.get(id) ?? "merchant"} (merchant ${id})`);
  const w = h.warning;
  const lines = [`The regulator's evening watch: risk rules run on the index every evening of the ${h.days} days`];
  if (w.first === null) {
    lines.push(`  ${name(w.merchantId)} closed on day ${w.closedOn} and NO rule flagged it before (a history this short leaves the rules no window)`);
  } else {
    lines.push(
      `  ${name(w.merchantId)}, the precursor, was first flagged on day ${w.first.day} (${date(w.first.day)}) and closed on day ${w.closedOn} (${date(w.closedOn)}): ` +
        `${w.daysEarlier} days earlier`,
    );
    for (const a of w.rules) lines.push(`    day ${String(a.day).padStart(2)}: [${a.severity}] ${a.rule} — ${a.message} (expected)`);
  }
  for (const a of h.alerts.filter((x) => x.merchantId !== w.merchantId && !h.unexpected.includes(x) && !h.earlier.includes(x))) {
    lines.push(`  day ${a.day}: [${a.severity}] ${a.rule} on ${name(a.merchantId)} — ${a.message} (expected: suspended, it serves nobody and still owes)`);
  }
  if (h.earlier.length > 0) {
    const ids = [...new Set(h.earlier.map((a) => a.merchantId))].join(", ");
    lines.push(`  ${h.earlier.length} alerts about the merchants of earlier runs on this ledger (${ids}): they trade no more in this history (expected)`);
  }
  lines.push(h.unexpected.length === 0 ? "  Unexpected alerts: none" : `  UNEXPECTED alerts (${h.unexpected.length}):`);
  for (const a of h.unexpected) lines.push(`    day ${a.day}: [${a.severity}] ${a.rule} on ${name(a.merchantId)} — ${a.message}`);
  return lines.join("\n");
}
