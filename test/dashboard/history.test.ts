/**
 * The overview of weeks of history, as a regulator sees it once the main job simulates weeks: an
 * index made here row by row (ten merchants over eight weeks, one of them selling fast and then
 * falling silent), served, and looked at in headless Chromium.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import type { Browser } from "playwright-core";

import { MERCHANT_LINES } from "../../src/dashboard/chart.js";
import { yuan } from "../../src/dashboard/format.js";
import { serveDashboard, type Dashboard } from "../../src/dashboard/server.js";
import { setMeta } from "../../src/indexer/schema.js";
import { openIndex } from "../../src/indexer/open.js";
import { artifactDir, launchChromium } from "../helpers/browser.js";
import { tempDir } from "../helpers/ledger.js";
import { indexDb } from "../helpers/index-db.js";

const DAY = 86_400;
const WEEKS = 8;
/** Monday 2026-10-05 00:00 UTC: the buckets start on Mondays (TZ=UTC below). */
const START = Date.UTC(2026, 9, 5) / 1000;
const END = START + WEEKS * 7 * DAY - 3600;
const hex = (n: number) => "0x" + n.toString(16).padStart(64, "0");

/** Each merchant's day: what it sells and serves (merchant 110 sells fast for five weeks, then nothing). */
function dayOf(merchant: number, day: number): { toppedUp: number; consumed: number } | null {
  if (merchant === 110) return day < 35 ? { toppedUp: 900_000 + day * 40_000, consumed: 60_000 } : null;
  return { toppedUp: 100_000 + (merchant % 5) * 30_000, consumed: 70_000 + (merchant % 3) * 20_000 };
}

function buildIndex(path: string): { liability: Map<number, number> } {
  const db = openIndex(path);
  const liability = new Map<number, number>();
  let batch = 0;
  db.exec("BEGIN");
  for (let m = 101; m <= 110; m++) {
    let [toppedUp, consumed, batches] = [0, 0, 0];
    for (let d = 0; d < WEEKS * 7 - 1; d++) {
      const f = dayOf(m, d);
      if (f === null) continue;
      toppedUp += f.toppedUp;
      consumed += f.consumed;
      batches++;
      batch++;
      db.prepare(
        `INSERT INTO batches (tx_hash, log_index, block_number, block_time, merchant_id, sequence, recorder, first_record, record_count, chain_head,
                              topped_up, consumed, refunded, liability_after) VALUES (?, 0, ?, ?, ?, ?, '0x', ?, 1, '0x', ?, ?, 0, ?)`,
      ).run(hex(batch), batch, START + d * DAY + 10 * 3600 + m, m, batches, batch, f.toppedUp, f.consumed, toppedUp - consumed);
    }
    liability.set(m, toppedUp - consumed);
    db.prepare(
      `INSERT INTO merchants (merchant_id, status, record_count, account_count, topped_up, consumed, refunded, batches, next_sequence, first_time, last_time, last_service_time)
       VALUES (?, 1, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)`,
    ).run(m, batches, batches, toppedUp, consumed, batches, batches + 1, START, START + batches * DAY, START + batches * DAY);
  }
  const alert = db.prepare("INSERT INTO alerts (rule, severity, merchant_id, message, as_of_block, as_of_time) VALUES (?, ?, ?, ?, ?, ?)");
  alert.run("liability-growth", "medium", 110, "merchant 110's liability grew faster than its consumption", batch, END);
  alert.run("dormant-merchant", "high", 110, "merchant 110 has served no card holder for 20 days", batch, END);
  setMeta(db, "chain_id", "31337");
  setMeta(db, "ledger", "0x" + "11".repeat(20));
  setMeta(db, "quorum", "0x" + "22".repeat(20));
  db.prepare(
    "INSERT INTO sync_state (id, settled_block, settled_hash, settled_time, record_count, chain_head, final_record_count) VALUES (1, ?, '0x', ?, ?, '0x', ?)",
  ).run(batch, END, batch, batch - 12);
  db.exec("COMMIT");
  db.close();
  return { liability };
}

describe("dashboard: weeks of history in headless Chromium", function () {
  this.timeout(120_000);
  let tz: string | undefined;
  let dbPath: string;
  /** Holds the SQLite index (a PostgreSQL index is a URL, not a file in it). */
  let dir: string | undefined;
  let browser: Browser;
  let dashboard: Dashboard;
  let liability: Map<number, number>;

  before(async function () {
    tz = process.env.TZ;
    process.env.TZ = "UTC";
    dir = tempDir("dashboard-weeks");
    dbPath = indexDb(dir, "index.sqlite");
    ({ liability } = buildIndex(dbPath));
    browser = await launchChromium();
    dashboard = await serveDashboard({ db: dbPath });
  });

  after(async function () {
    await browser?.close();
    await dashboard?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });

  it("charts eight weeks by week: the merchants owing most a line each, the rest summed; money in and out per week", async function () {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(dashboard.url);
    const shot = join(artifactDir("dashboard"), "overview-weeks.png");
    await page.screenshot({ path: shot, fullPage: true });
    expect(readFileSync(shot).subarray(1, 4).toString()).to.equal("PNG");
    for (const id of ["liability-by-merchant", "flows"]) {
      await page.locator(`#${id}`).screenshot({ path: join(artifactDir("dashboard"), `overview-weeks-${id}.png`) });
    }
    expect(await page.locator("#liability-by-merchant figcaption").textContent()).to.equal("Liability by merchant, at the end of each week");
    expect(await page.locator("#flows figcaption").textContent()).to.equal("Topped up, consumed and refunded per week");
    // Eight Mondays, and as many rows in each table.
    const starts = await page.locator("#liability-by-merchant tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.getAttribute("data-bucket"))));
    expect(starts).to.deep.equal(Array.from({ length: WEEKS }, (_, w) => START + w * 7 * DAY));
    expect(await page.locator("#flows tbody tr").count()).to.equal(WEEKS);
    // The 7 merchants owing most now have a line each (merchant 110 first among them), the other 3 one line.
    const owing = [...liability.entries()].sort(([a, x], [b, y]) => y - x || a - b);
    const own = owing.slice(0, MERCHANT_LINES - 1).map(([id]) => String(id)).sort();
    const header = await page.locator("#liability-by-merchant tbody tr:last-child td[data-merchant]").evaluateAll((tds) => tds.map((td) => td.getAttribute("data-merchant")));
    expect(header).to.deep.equal([...own, "other"]);
    expect(own).to.include("110");
    const last = (key: string) => page.locator(`#liability-by-merchant tbody tr:last-child td[data-merchant="${key}"]`).textContent();
    expect(await last("110")).to.equal(yuan(liability.get(110)!));
    const others = owing.slice(MERCHANT_LINES - 1).reduce((n, [, l]) => n + l, 0);
    expect(await last("other")).to.equal(yuan(others));
    expect(await page.locator("#liability-by-merchant .note").textContent()).to.match(/other 3 are summed/);
    // Merchant 110 fell silent in week 6: its line is flat from there.
    const column110 = await page.locator('#liability-by-merchant tbody td[data-merchant="110"]').allTextContents();
    expect(new Set(column110.slice(5)).size).to.equal(1);
    await page.close();
  });
});
