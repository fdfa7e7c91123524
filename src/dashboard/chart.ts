/**
 * The dashboard's charts, drawn by Apache ECharts on the server (its server-side rendering to an
 * SVG string): the page gets a finished `<svg>`, so it needs no script, fetches nothing and works
 * offline, and the Content-Security-Policy still forbids every script. Why a library and why on
 * the server: docs/ARCHITECTURE.md, "Dashboard charts".
 *
 * Every chart is a `<figure>`: a caption, the SVG (as an image with a text description for screen
 * readers) and, folded under it, the table of the figures it draws, so every number can be read
 * exactly and a test can compare it with the index.
 *
 * ECharts is loaded once, by {@link loadCharts}, when the dashboard starts: the CLI imports this
 * module for every command, and only `prepaid serve` should pay for the library.
 */
import { createHash } from "node:crypto";

import type { AlertCount, BucketUnit, History } from "../indexer/history.js";
import type { LiabilityPoint } from "../indexer/queries.js";
import { dateTime, yuan } from "./format.js";
import { Html, html, type HtmlPart } from "./html.js";
import { localParts } from "../time.js";

type ECharts = typeof import("echarts/core");
let echarts: ECharts | undefined;

/** Loads ECharts and the pieces the dashboard draws with (lines, bars, axes, legend, SVG renderer). Idempotent. */
export async function loadCharts(): Promise<void> {
  if (echarts !== undefined) return;
  const [core, charts, components, renderers] = await Promise.all([
    import("echarts/core"),
    import("echarts/charts"),
    import("echarts/components"),
    import("echarts/renderers"),
  ]);
  core.use([charts.LineChart, charts.BarChart, components.GridComponent, components.LegendComponent, renderers.SVGRenderer]);
  echarts = core;
}

const WIDTH = 1000;
const HEIGHT = 320;
/** Colours that stay apart for the colour-blind (Okabe–Ito, without its yellow: too faint on white), in series order. */
const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000"];
/** The line of the merchants summed together ("other N merchants"). */
const OTHERS = "#8c8c8c";
const SEVERITY_COLOURS = { high: "#c0392b", medium: "#e69f00", low: "#7f8c8d" };
const TEXT = { color: "#3b4252", fontSize: 12, fontFamily: "system-ui, sans-serif" };

/** Whole yuan with thousands separators for an axis: 1234567 fen → "¥12,346". */
function axisYuan(fen: number): string {
  return yuan(Math.round(fen / 100) * 100).replace(/\.00$/, "");
}

/**
 * Charts drawn lately, by what they draw: laying out text makes an ECharts chart cost 25–300 ms
 * to render on the server, and the figures change only when a sync commits, so the pages read
 * between two syncs reuse the drawing. Least recently used first out.
 */
const drawn = new Map<string, Html>();
const DRAWN_MAX = 32;

/**
 * Renders one ECharts option to an SVG string (server-side, no animation), or reuses the drawing
 * of the same `figures` (the chart's inputs: everything the option is made from).
 */
function svg(figures: unknown, option: () => Record<string, unknown>, height = HEIGHT): Html {
  if (echarts === undefined) throw new Error("charts are not loaded: call loadCharts() first");
  // Axis labels are local times: the zone is part of what is drawn.
  const key = createHash("sha256").update(JSON.stringify([figures, height, process.env.TZ ?? "", new Date().getTimezoneOffset()])).digest("base64");
  const cached = drawn.get(key);
  if (cached !== undefined) {
    drawn.delete(key);
    drawn.set(key, cached);
    return cached;
  }
  const chart = echarts.init(null, null, { renderer: "svg", ssr: true, width: WIDTH, height });
  try {
    chart.setOption({ animation: false, color: PALETTE, textStyle: TEXT, ...option() });
    // ECharts escapes the text it writes (labels, legend): names from the index cannot become markup.
    const image = new Html(chart.renderToSVGString());
    drawn.set(key, image);
    if (drawn.size > DRAWN_MAX) drawn.delete(drawn.keys().next().value!);
    return image;
  } finally {
    chart.dispose();
  }
}

/** A chart as a figure: caption, image with a description, the figures behind it. */
function figure(id: string, caption: string, description: string, image: Html, table: Html, note?: HtmlPart): Html {
  return html`<figure class="chart" id="${id}"><figcaption>${caption}</figcaption>
    <div class="chart-image" role="img" aria-label="${description}">${image}</div>
    ${note !== undefined && html`<p class="note">${note}</p>`}
    <details><summary>The figures behind this chart</summary>${table}</details></figure>`;
}

/**
 * A merchant's liability after each batch and settlement: a stepped line over block time (this
 * machine's time zone), with the figures behind it as a table, one `tr[data-point]` per point.
 *
 * @param points - the series, oldest first ({@link IndexQueries.liabilitySeries})
 * @param label - what the chart shows, in words (its caption and description)
 * @returns the figure, or a short note when the series is empty
 */
export function liabilityChart(points: readonly LiabilityPoint[], label: string): Html {
  if (points.length === 0) return html`<p class="note" data-field="no-chart">No batches yet: nothing to chart.</p>`;
  const zone = localParts(points[0].time).zone;
  const image = svg(["liability", points], () => ({
    grid: { left: 90, right: 30, top: 20, bottom: 50 },
    xAxis: {
      type: "time",
      name: `block time (${zone})`,
      nameLocation: "middle",
      nameGap: 30,
      axisLabel: { hideOverlap: true, formatter: (ms: number) => axisTime(ms / 1000, points[points.length - 1].time - points[0].time) },
    },
    yAxis: { type: "value", axisLabel: { formatter: axisYuan } },
    series: [
      {
        type: "line",
        name: "liability",
        step: "end",
        showSymbol: points.length <= 200,
        symbolSize: 5,
        lineStyle: { width: 2 },
        data: points.map((p) => [p.time * 1000, p.liability]),
      },
    ],
  }));
  const table = html`<table class="chart-figures"><thead><tr><th class="num">Block</th><th>Block time</th><th class="num">Liability</th></tr></thead><tbody>
    ${points.map((p) => html`<tr data-point><td class="num">${p.blockNumber}</td><td>${dateTime(p.time)}</td><td class="num" data-field="liability">${yuan(p.liability)}</td></tr>`)}
  </tbody></table>`;
  const last = points[points.length - 1];
  const description = `${label}: ${points.length} points from ${dateTime(points[0].time)} to ${dateTime(last.time)}, last ${yuan(last.liability)}`;
  return figure("liability-chart", label, description, image, table);
}

/** "per week", "per day", "per hour". */
export const UNIT_WORDS: Record<BucketUnit, string> = { hour: "hour", day: "day", week: "week" };

/** A bucket's label on an axis: `11-23` (a week: its Monday; a day), `11-26 09:00` (an hour). */
function bucketLabel(start: number, unit: BucketUnit): string {
  const { date, time } = localParts(start);
  return unit === "hour" ? `${date.slice(5)} ${time.slice(0, 5)}` : date.slice(5);
}

/** A bucket in words, for tables: `week of 2026-11-23`, `2026-11-26`, `2026-11-26 09:00`, with the zone. */
function bucketText(start: number, unit: BucketUnit): string {
  const { date, time, zone } = localParts(start);
  if (unit === "hour") return `${date} ${time.slice(0, 5)} ${zone}`;
  return `${unit === "week" ? "week of " : ""}${date} (${zone})`;
}

function bucketCaption(h: History): string {
  const zone = localParts(h.starts[0]).zone;
  const what = h.unit === "week" ? `weeks from Monday 00:00 ${zone}` : h.unit === "day" ? `days from 00:00 ${zone}` : `hours (${zone})`;
  return `${what}; the last ends at the index's last block, ${dateTime(h.end)}`;
}

/** At most this many merchants get a line of their own; the rest are summed into one. */
export const MERCHANT_LINES = 8;

/**
 * Each merchant's liability at the end of each hour, day or week: one line per merchant, the
 * {@link MERCHANT_LINES} that owe most now, and the rest summed into one line ("other N merchants").
 *
 * @param names - each merchant's label in the legend ("101 Sunrise Gym"), by id
 */
export function liabilityByMerchantChart(h: History, names: ReadonlyMap<number, string>): Html {
  if (h.starts.length === 0) return html`<p class="note" data-field="no-chart">Nothing booked yet: nothing to chart.</p>`;
  const label = (id: number) => names.get(id) ?? `merchant ${id}`;
  const owing = [...h.liability].sort((x, y) => y.values[y.values.length - 1] - x.values[x.values.length - 1] || x.merchantId - y.merchantId);
  const own = owing.slice(0, h.liability.length > MERCHANT_LINES ? MERCHANT_LINES - 1 : MERCHANT_LINES);
  const rest = owing.slice(own.length);
  const lines: { key: string; name: string; values: number[] }[] = own
    .sort((x, y) => x.merchantId - y.merchantId)
    .map((m) => ({ key: String(m.merchantId), name: label(m.merchantId), values: m.values }));
  if (rest.length > 0) {
    lines.push({ key: "other", name: `other ${rest.length} merchants`, values: h.starts.map((_, i) => rest.reduce((n, m) => n + m.values[i], 0)) });
  }
  const categories = h.starts.map((s) => bucketLabel(s, h.unit));
  const image = svg(["by-merchant", h.unit, h.starts, h.end, lines], () => ({
    // The legend stands to the right, one merchant a line: names do not crowd the plot however many.
    grid: { left: 90, right: 230, top: 20, bottom: 60 },
    legend: { orient: "vertical", right: 10, top: "middle", itemGap: 12, textStyle: { width: 170, overflow: "truncate" } },
    xAxis: { type: "category", data: categories, name: bucketCaption(h), nameLocation: "middle", nameGap: 35, axisLabel: { hideOverlap: true } },
    yAxis: { type: "value", axisLabel: { formatter: axisYuan } },
    series: lines.map((l) => ({
      type: "line",
      name: l.name,
      showSymbol: h.starts.length <= 60,
      symbolSize: 5,
      lineStyle: l.key === "other" ? { width: 2, type: "dashed", color: OTHERS } : { width: 2 },
      itemStyle: l.key === "other" ? { color: OTHERS } : undefined,
      data: l.values,
    })),
  }));
  const table = html`<table class="chart-figures"><thead><tr><th>End of</th>${lines.map((l) => html`<th class="num">${l.name}</th>`)}</tr></thead><tbody>
    ${h.starts.map(
      (s, i) => html`<tr data-bucket="${s}"><td>${bucketText(s, h.unit)}</td>${lines.map((l) => html`<td class="num" data-merchant="${l.key}">${yuan(l.values[i])}</td>`)}</tr>`,
    )}</tbody></table>`;
  const description = `Liability at the end of each ${h.unit}, ${h.starts.length} ${h.unit}s: ${lines
    .map((l) => `${l.name} ${yuan(l.values[l.values.length - 1])}`)
    .join(", ")} at the end`;
  const note = rest.length > 0 ? `The ${lines.length - 1} merchants that owe most now have a line each; the other ${rest.length} are summed.` : undefined;
  return figure("liability-by-merchant", `Liability by merchant, at the end of each ${UNIT_WORDS[h.unit]}`, description, image, table, note);
}

const FLOWS = [
  { key: "toppedUp", name: "topped up", colour: "#009e73" },
  { key: "consumed", name: "consumed", colour: "#0072b2" },
  { key: "refunded", name: "refunded", colour: "#e69f00" },
] as const;

/** Money in (topped up) and out (consumed, refunded) per hour, day or week, over all merchants. */
export function flowsChart(h: History): Html {
  if (h.starts.length === 0) return html`<p class="note" data-field="no-chart">Nothing booked yet: nothing to chart.</p>`;
  const image = svg(["flows", h.unit, h.starts, h.end, h.flows], () => ({
    grid: { left: 90, right: 30, top: 50, bottom: 60 },
    legend: { top: 8, itemGap: 28 },
    xAxis: { type: "category", data: h.starts.map((s) => bucketLabel(s, h.unit)), name: bucketCaption(h), nameLocation: "middle", nameGap: 35, axisLabel: { hideOverlap: true } },
    yAxis: { type: "value", axisLabel: { formatter: axisYuan } },
    series: FLOWS.map((s) => ({ type: "bar", name: s.name, itemStyle: { color: s.colour }, barMaxWidth: 28, data: h.flows.map((f) => f[s.key]) })),
  }));
  const table = html`<table class="chart-figures"><thead><tr><th>${UNIT_WORDS[h.unit]}</th>${FLOWS.map((s) => html`<th class="num">${s.name}</th>`)}</tr></thead><tbody>
    ${h.starts.map(
      (s, i) => html`<tr data-bucket="${s}"><td>${bucketText(s, h.unit)}</td>${FLOWS.map((c) => html`<td class="num" data-field="${c.name.replace(" ", "-")}">${yuan(h.flows[i][c.key])}</td>`)}</tr>`,
    )}</tbody></table>`;
  const sum = (key: (typeof FLOWS)[number]["key"]) => yuan(h.flows.reduce((n, f) => n + f[key], 0));
  const description = `Per ${h.unit}, over ${h.starts.length} ${h.unit}s: topped up ${sum("toppedUp")}, consumed ${sum("consumed")}, refunded ${sum("refunded")} in all`;
  return figure("flows", `Topped up, consumed and refunded per ${UNIT_WORDS[h.unit]}`, description, image, table);
}

/** The alerts counted by rule (one bar each, every rule listed, its count beside its name) and severity (the bar's parts). */
export function alertsChart(counts: readonly AlertCount[]): Html {
  const severities = ["high", "medium", "low"] as const;
  const total = (c: AlertCount) => c.high + c.medium + c.low;
  const rules = [...counts].reverse(); // ECharts draws a category axis bottom-up: the first rule on top
  const image = svg(
    ["alerts", counts],
    () => ({
      grid: { left: 230, right: 40, top: 40, bottom: 30 },
      legend: { top: 6, itemGap: 28 },
      // A scale of at least 0–5: one alert must not look like a full bar.
      xAxis: { type: "value", minInterval: 1, max: Math.max(...counts.map(total)) < 5 ? 5 : undefined },
      yAxis: { type: "category", data: rules.map((c) => `${c.rule}  ${total(c)}`) },
      series: severities.map((s) => ({ type: "bar", name: s, stack: "alerts", itemStyle: { color: SEVERITY_COLOURS[s] }, barMaxWidth: 18, data: rules.map((c) => c[s]) })),
    }),
    Math.max(200, 70 + 26 * counts.length),
  );
  const table = html`<table class="chart-figures"><thead><tr><th>Rule</th>${severities.map((s) => html`<th class="num">${s}</th>`)}</tr></thead><tbody>
    ${counts.map(
      (c) => html`<tr data-rule="${c.rule}"><td><a href="/alerts?rule=${encodeURIComponent(c.rule)}">${c.rule}</a></td>${severities.map((s) => html`<td class="num" data-field="${s}">${c[s]}</td>`)}</tr>`,
    )}</tbody></table>`;
  const raised = counts.filter((c) => total(c) > 0);
  const description =
    raised.length === 0 ? "No rule raised an alert" : `Alerts by rule: ${raised.map((c) => `${c.rule} ${total(c)}`).join(", ")}; every other rule none`;
  return figure("alerts-by-rule", "Alerts by rule and severity", description, image, table);
}

/**
 * A label for a time on a chart axis whose whole range is `span` seconds: the time of day
 * when the range fits in a day, the date otherwise (in this machine's time zone).
 *
 * @returns `HH:MM:SS` (span under 10 minutes), `HH:MM` (under a day) or `MM-DD` (and `HH:MM` under a week)
 */
export function axisTime(seconds: number, span: number): string {
  const { date, time } = localParts(seconds);
  if (span < 600) return time;
  if (span < 86_400) return time.slice(0, 5);
  if (span < 7 * 86_400) return `${date.slice(5)} ${time.slice(0, 5)}`;
  return date.slice(5);
}
