/**
 * Sync progress on stderr, so stdout stays clean for the result: a bar redrawn in place on a
 * terminal, a plain line every few seconds when stderr is a file or a pipe (CI logs, cron mail),
 * JSON lines with `--json`, nothing with `--quiet`. The first update is always shown, so a
 * stalled node is visible at once.
 */
import type { SyncProgress } from "../indexer/indexer.js";
import type { Output } from "./command.js";
import { toJson } from "./format.js";

export type ProgressMode = "bar" | "lines" | "json" | "silent";

/** The mode for these flags and this stream. */
export function progressMode(options: { quiet: boolean; json: boolean }, stream: Output): ProgressMode {
  if (options.quiet) return "silent";
  if (options.json) return "json";
  return stream.isTTY === true ? "bar" : "lines";
}

/** Minimum time between two updates shown, per mode. */
const INTERVAL_MS: Record<ProgressMode, number> = { bar: 100, lines: 5_000, json: 1_000, silent: Infinity };
const BAR_WIDTH = 24;

const count = (n: number) => Math.round(n).toLocaleString("en-US");

/** Shows sync progress on `stream` in `mode`; call `update` per page and `done` at the end. */
export class ProgressReporter {
  private lastShown = -Infinity;
  private drawn = false;

  constructor(
    private readonly stream: Output,
    private readonly mode: ProgressMode,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one progress report; shows it unless one was shown less than the mode's interval ago. */
  update(p: SyncProgress): void {
    const now = this.now();
    if (this.mode === "silent" || now - this.lastShown < INTERVAL_MS[this.mode]) return;
    this.lastShown = now;
    if (this.mode === "json") this.stream.write(toJson({ progress: p }, 0) + "\n");
    else if (this.mode === "lines") this.stream.write(this.describe(p) + "\n");
    else this.draw(p);
  }

  /** Clears the bar, so what follows starts on a clean line. */
  done(): void {
    if (this.drawn) this.stream.write("\r\x1b[K");
    this.drawn = false;
  }

  /** The share of this sync's blocks already settled, 0..1. */
  private fraction(p: SyncProgress): number {
    const span = p.targetBlock - p.fromBlock + 1;
    return span <= 0 ? 1 : Math.min(1, Math.max(0, (p.settledBlock - p.fromBlock + 1) / span));
  }

  private describe(p: SyncProgress): string {
    const percent = `${Math.floor(this.fraction(p) * 100)}%`;
    return `sync ${percent.padStart(4)}  block ${count(p.settledBlock)} of ${count(p.targetBlock)}  ${count(p.records)} records  ${count(p.recordsPerSecond)} records/s`;
  }

  private draw(p: SyncProgress): void {
    const filled = Math.round(this.fraction(p) * BAR_WIDTH);
    const line = `${"█".repeat(filled)}${"░".repeat(BAR_WIDTH - filled)} ${this.describe(p)}`;
    // Cut to the terminal's width: a wrapped line cannot be redrawn in place.
    this.stream.write(`\r\x1b[K${line.slice(0, (this.stream.columns ?? 80) - 1)}`);
    this.drawn = true;
  }
}
