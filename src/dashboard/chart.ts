/**
 * The liability chart, drawn on the server as inline SVG: no script, no library, nothing for
 * the browser to fetch. The line steps (a merchant's liability holds from one batch to the
 * next); each batch is a dot whose tooltip gives its block, time and liability.
 */
import type { LiabilityPoint } from "../indexer/queries.js";
import { axisTime, dateTime, yuan } from "./format.js";
import { html, type Html } from "./html.js";

const WIDTH = 880;
const HEIGHT = 300;
const MARGIN = { left: 100, right: 24, top: 16, bottom: 48 };
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;
/** About this many gridlines on the y axis, and exactly this many time labels on the x axis. */
const Y_TICKS = 5;
const X_TICKS = 5;

/** A round step (1, 2 or 5 times a power of ten, in fen) that cuts `range` into about `Y_TICKS` parts. */
function niceStep(range: number): number {
  const rough = Math.max(range / Y_TICKS, 1);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough)!;
  return Math.max(1, Math.round(step));
}

interface Scale {
  x(time: number): number;
  y(fen: number): number;
  yTicks: number[];
  t0: number;
  t1: number;
}

/** Maps times and amounts to SVG coordinates; the y range starts at 0 (or below, if ever negative). */
function scaleFor(points: readonly LiabilityPoint[]): Scale {
  const t0 = points[0].time;
  const t1 = points[points.length - 1].time;
  const values = points.map((p) => p.liability);
  const step = niceStep(Math.max(...values, 0) - Math.min(...values, 0));
  const low = Math.floor(Math.min(...values, 0) / step) * step;
  const high = Math.max(Math.ceil(Math.max(...values, 0) / step) * step, low + step);
  const yTicks: number[] = [];
  for (let v = low; v <= high; v += step) yTicks.push(v);
  return {
    x: (t) => MARGIN.left + (t1 === t0 ? PLOT_W / 2 : ((t - t0) / (t1 - t0)) * PLOT_W),
    y: (v) => MARGIN.top + PLOT_H - ((v - low) / (high - low)) * PLOT_H,
    yTicks,
    t0,
    t1,
  };
}

/** `x,y` pairs of the stepped line: level after each batch, then straight up or down at the next. */
function stepLine(points: readonly LiabilityPoint[], s: Scale): string {
  const out: string[] = [];
  points.forEach((p, i) => {
    if (i > 0) out.push(`${s.x(p.time).toFixed(1)},${s.y(points[i - 1].liability).toFixed(1)}`);
    out.push(`${s.x(p.time).toFixed(1)},${s.y(p.liability).toFixed(1)}`);
  });
  return out.join(" ");
}

function yAxis(s: Scale): Html {
  return html`${s.yTicks.map(
    (v) => html`<line class="grid" x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${s.y(v).toFixed(1)}" y2="${s.y(v).toFixed(1)}"/>
      <text class="tick" x="${MARGIN.left - 8}" y="${(s.y(v) + 4).toFixed(1)}" text-anchor="end">${yuan(v)}</text>`,
  )}`;
}

function xAxis(s: Scale): Html {
  const span = s.t1 - s.t0;
  const times = span === 0 ? [s.t0] : Array.from({ length: X_TICKS }, (_, i) => Math.round(s.t0 + (span * i) / (X_TICKS - 1)));
  const base = MARGIN.top + PLOT_H;
  return html`<line class="axis" x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${base}" y2="${base}"/>
    ${times.map(
      (t) => html`<line class="axis" x1="${s.x(t).toFixed(1)}" x2="${s.x(t).toFixed(1)}" y1="${base}" y2="${base + 5}"/>
        <text class="tick" x="${s.x(t).toFixed(1)}" y="${base + 20}" text-anchor="middle">${axisTime(t, span)}</text>`,
    )}
    <text class="caption" x="${MARGIN.left + PLOT_W / 2}" y="${HEIGHT - 6}" text-anchor="middle">block time, ${dateTime(s.t0)} to ${dateTime(s.t1)}</text>`;
}

/**
 * Renders a merchant's liability over time as an SVG chart: y axis in yuan, x axis in block
 * time (this machine's time zone), one `circle.point` per point of the series.
 *
 * @param points - the series, oldest first ({@link IndexQueries.liabilitySeries})
 * @param label - what the chart shows, for screen readers (e.g. "Liability of merchant 101")
 * @returns the `<svg>` element, or a short note when the series is empty
 */
export function liabilityChart(points: readonly LiabilityPoint[], label: string): Html {
  if (points.length === 0) return html`<p class="note">No batches yet: nothing to chart.</p>`;
  const s = scaleFor(points);
  return html`<svg class="chart" role="img" aria-label="${label}" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" xmlns="http://www.w3.org/2000/svg">
  <title>${label}</title>
  ${yAxis(s)}
  ${xAxis(s)}
  <polyline class="liability" points="${stepLine(points, s)}"/>
  ${points.map(
    (p) => html`<circle class="point" cx="${s.x(p.time).toFixed(1)}" cy="${s.y(p.liability).toFixed(1)}" r="3"><title>block ${p.blockNumber}, ${dateTime(p.time)}: ${yuan(p.liability)}</title></circle>`,
  )}
</svg>`;
}
