import { readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";

import { expect } from "chai";
import { ZeroAddress, id } from "ethers";
import { network } from "hardhat";
import type { Browser, Page } from "playwright-core";

import { DEMO_REGULATOR_KEY, MERCHANTS, SUSPENDED, runDay, type DayResult } from "../../scripts/lib/day.js";
import { RecordKind } from "../../src/crypto/details.js";
import { publicKeyOf } from "../../src/crypto/ecies.js";
import { alertsChart, flowsChart, liabilityByMerchantChart, liabilityChart, loadCharts } from "../../src/dashboard/chart.js";
import { custodySection } from "../../src/dashboard/custody.js";
import { CHART_POINTS, PAGE_SIZE, TOP_ALERTS } from "../../src/dashboard/data.js";
import { dateTime, yuan } from "../../src/dashboard/format.js";
import { html } from "../../src/dashboard/html.js";
import { serveDashboard, type Dashboard } from "../../src/dashboard/server.js";
import { custodyFigures } from "../../src/indexer/custody.js";
import { alertCounts, history } from "../../src/indexer/history.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { IndexQueries } from "../../src/indexer/queries.js";
import { merchantStatusName } from "../../src/regulator/books.js";
import { type Database } from "../../src/indexer/schema.js";
import { openIndex } from "../../src/indexer/open.js";
import { Uploader } from "../../src/upload/uploader.js";
import { artifactDir, launchChromium } from "../helpers/browser.js";
import { tempDir } from "../helpers/ledger.js";
import { indexDb } from "../helpers/index-db.js";

type Connection = Awaited<ReturnType<typeof network.create>>;

/**
 * Low risk thresholds, so the day's traffic raises alerts of several rules and severities: every
 * card holding anything is above the cap, and every merchant idle for a day is dormant.
 */
const RISK = { maxMerchantLiability: 5_000_000, maxCardBalance: 1, dormantDays: 1, dormantMinLiability: 0 };

/** Reads "¥1,234.56" back into fen, refusing any other shape. */
function fen(text: string | null): bigint {
  expect(text).to.match(/^-?¥\d{1,3}(,\d{3})*\.\d{2}$/);
  return BigInt(text!.replace(/[¥,.]/g, ""));
}

/** Syncs the index with the chain as it is now (the real indexer, with the regulator's key). */
async function sync(connection: Connection, day: DayResult, db: string): Promise<void> {
  const indexer = await Indexer.open(
    { ledger: day.ledgerAddress, quorum: day.quorumAddress, privateKey: DEMO_REGULATOR_KEY, db, confirmations: 0, risk: RISK },
    connection.ethers.provider,
  );
  try {
    await indexer.sync();
  } finally {
    indexer.close();
  }
}

/** A response to a raw HTTP request (node:http, so the Host header can be anything). */
function raw(url: string, options: { method?: string; host?: string } = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = request(url, { method: options.method ?? "GET", headers: options.host ? { host: options.host } : {} }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("dashboard: rendering", function () {
  it("escapes every value put into markup, and only once", function () {
    const memo = `<script>alert("x")</script> & 'more'`;
    const cell = html`<td title="${memo}">${memo}</td>`;
    expect(cell.text).to.equal(
      "<td title=\"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;more&#39;\">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;more&#39;</td>",
    );
    expect(html`<tr>${[cell, "<b>"]}${null}${false}</tr>`.text).to.equal(`<tr>${cell.text}&lt;b&gt;</tr>`);
  });

  it("writes fen as yuan with two decimals and thousands separators", function () {
    expect([0, 5, 123_456, 123_456_789_012, -50].map(yuan)).to.deep.equal(["¥0.00", "¥0.05", "¥1,234.56", "¥1,234,567,890.12", "-¥0.50"]);
  });

  it("writes times in this machine's time zone (TZ), with the zone", function () {
    const tz = process.env.TZ;
    try {
      const at = (zone: string) => {
        process.env.TZ = zone;
        return dateTime(1_795_000_000);
      };
      expect(["UTC", "Asia/Shanghai", "America/St_Johns"].map(at)).to.deep.equal([
        "2026-11-18 11:06:40 UTC",
        "2026-11-18 19:06:40 UTC+08:00",
        "2026-11-18 07:36:40 UTC-03:30",
      ]);
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it("says so when no custody is attached to the ledger, and rounds the requirement up", function () {
    const none = custodySection({ merchantId: 1, custody: null, attachedBlock: null, history: [], ...custodyFigures(0, 0, 5_000) });
    expect(none.text).to.include('data-field="no-custody"').and.include("No custody attached to the ledger");
    expect(none.text).to.not.include("custody-held");
    // 1,001 fen at 50 % requires 501 fen, not 500 (docs/CUSTODY.md).
    expect(custodyFigures(500, 5_000, 1_001)).to.deep.equal({ held: 500, ratioBps: 5_000, liability: 1_001, required: 501, coverage: 500 / 501, belowRequirement: true, claimsOpened: false });
  });

  it("charts one point per entry of the series, with its figures as a table, and no chart for an empty one", async function () {
    await loadCharts();
    const point = (time: number, liability: number) => ({ blockNumber: time, time, liability, toppedUp: 0, consumed: 0, refunded: 0 });
    const chart = liabilityChart([point(1_795_000_000, 100_000), point(1_795_000_600, 250_050), point(1_795_003_600, 0)], "test").text;
    expect(chart.match(/<svg/g)).to.have.length(1);
    expect(chart.match(/<tr data-point>/g)).to.have.length(3);
    expect(chart).to.include(">¥2,500.50<").and.include(">¥0.00<");
    expect(liabilityChart([point(1_795_000_000, 100)], "one batch").text).to.include("<svg");
    expect(liabilityChart([], "none").text).not.to.include("<svg");
  });

  it("escapes the names it draws, and never writes a script", async function () {
    await loadCharts();
    const evil = `<script>alert(1)</script>`;
    const h = { unit: "day" as const, starts: [1_795_000_000], end: 1_795_086_400, flows: [{ toppedUp: 100, consumed: 0, refunded: 0 }], liability: [{ merchantId: 7, values: [100] }] };
    const charts = [liabilityByMerchantChart(h, new Map([[7, evil]])), flowsChart(h), alertsChart([{ rule: evil, high: 1, medium: 0, low: 0 }])];
    for (const c of charts) expect(c.text).not.to.match(/<script|\son[a-z]+=|javascript:|<foreignObject|href="http/i);
    expect(charts[0].text).to.include("&lt;script&gt;");
  });
});

describe("dashboard: the main job's day in headless Chromium", function () {
  this.timeout(300_000);

  let connection: Connection;
  let day: DayResult;
  let dbPath: string;
  /** The test's folder: the SQLite index and the uploaders' journals (a PostgreSQL index is a URL, not a file in it). */
  let dir: string | undefined;
  let index: Database;
  let q: IndexQueries;
  let dashboard: Dashboard;
  let browser: Browser;
  let page: Page;
  const screenshot = async (name: string) => {
    const path = join(artifactDir("dashboard"), `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    expect(readFileSync(path).subarray(1, 4).toString()).to.equal("PNG");
  };
  const contract = () => connection.ethers.getContractAt("PrepaidLedger", day.ledgerAddress);
  const text = (selector: string) => page.locator(selector).first().textContent();
  const rowIds = (selector: string, attribute: string) =>
    page.locator(selector).evaluateAll((rows, a) => rows.map((r) => r.getAttribute(a)), attribute);

  /** The alert ids on the alerts page in view and every page after it ("next →"). */
  async function alertIdsOnAllPages(): Promise<number[]> {
    const ids: number[] = [];
    for (;;) {
      ids.push(...(await rowIds("table.alerts tbody tr", "data-alert")).map(Number));
      const next = page.locator('nav.pager a[rel="next"]');
      if ((await next.count()) === 0) return ids;
      const target = new URL((await next.getAttribute("href"))!, page.url()).href;
      await Promise.all([page.waitForURL(target), next.click()]);
    }
  }

  before(async function () {
    browser = await launchChromium();
    connection = await network.create();
    day = await runDay(connection);
    dir = tempDir("dashboard");
    dbPath = indexDb(dir, "index.sqlite");
    // Twenty more small cards for the first merchant after the day, so the alerts (one per card
    // above the test's tiny cap) fill more than one page: the day's claims empty most cards of
    // the closed merchants.
    const [first] = MERCHANTS;
    const extra = await Uploader.open(
      { ledger: day.ledgerAddress, merchantId: first.id, regulatorPublicKey: publicKeyOf(DEMO_REGULATOR_KEY), journalPath: join(dir, "extra-journal.jsonl") },
      (await connection.ethers.getSigners())[2 + MERCHANTS.indexOf(first)],
    );
    try {
      await extra.upload(
        Array.from({ length: 20 }, (_, i) => ({
          kind: RecordKind.TopUp,
          merchantId: first.id,
          account: id(`dashboard: extra card ${i}`),
          amount: 1_000n,
          time: 1_795_000_000 + i,
          orderRef: `EXTRA-${i}`,
          memo: "small card",
        })),
      );
    } finally {
      extra.close();
    }
    await sync(connection, day, dbPath);
    index = openIndex(dbPath, { mustExist: true, readOnly: true });
    q = new IndexQueries(index);
    dashboard = await serveDashboard({ db: dbPath, port: 0 });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  after(async function () {
    await browser?.close();
    await dashboard?.close();
    index?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("listens on 127.0.0.1 and shows every merchant's books as the contract and the index hold them", async function () {
    expect(new URL(dashboard.url).hostname).to.equal("127.0.0.1");
    await page.goto(dashboard.url);
    await screenshot("overview");
    const ledger = await contract();
    let liability = 0n;
    for (const m of MERCHANTS) {
      const books = await ledger.merchantBooks(m.id);
      const indexed = q.merchant(m.id);
      const row = `#merchants tr[data-merchant="${m.id}"]`;
      const shown = {
        status: await text(`${row} [data-field=status]`),
        records: BigInt((await text(`${row} [data-field=records]`))!),
        accounts: BigInt((await text(`${row} [data-field=accounts]`))!),
        toppedUp: fen(await text(`${row} [data-field=topped-up]`)),
        consumed: fen(await text(`${row} [data-field=consumed]`)),
        refunded: fen(await text(`${row} [data-field=refunded]`)),
        liability: fen(await text(`${row} [data-field=liability]`)),
      };
      const fromContract = {
        status: merchantStatusName(Number(books.status)),
        records: books.recordCount,
        accounts: books.accountCount,
        toppedUp: books.toppedUp,
        consumed: books.consumed,
        refunded: books.refunded,
        liability: books.liability,
      };
      expect(shown, `merchant ${m.id}`).to.deep.equal(fromContract);
      expect(shown.liability).to.equal(BigInt(indexed.liability));
      expect(shown.records).to.equal(BigInt(indexed.recordCount));
      liability += books.liability;
    }
    const total = fen(await text("[data-field=total-liability] .value"));
    expect(total).to.equal(liability);
    expect(total).to.equal(BigInt(q.totals().liability));
    // The supervisors' quorum confirmed the books at noon and again at the end of the day, the
    // evening's settlements included: every record, uploaded or settled, is covered.
    const quorum = await connection.ethers.getContractAt("SupervisorQuorum", day.quorumAddress);
    const final = await quorum.lastFinal();
    const [records] = await ledger.chainHead();
    expect(records).to.be.greaterThan(BigInt(day.uploaded.length));
    expect(await text("[data-field=confirmed] .value")).to.equal(final.toString());
    expect(await text("[data-field=pending] .value")).to.equal(String(records - final));
    expect(await text("[data-field=records] .value")).to.equal(String(records));
  });

  it("opens a merchant from the overview: its figures and a chart with one point per batch", async function () {
    const [first] = MERCHANTS;
    await page.goto(dashboard.url);
    await Promise.all([page.waitForURL(`${dashboard.url}/merchants/${first.id}`), page.click(`#merchants tr[data-merchant="${first.id}"] td:first-child a`)]);
    await screenshot("merchant");
    const ledger = await contract();
    for (const m of MERCHANTS) {
      if (m.id !== first.id) await page.goto(`${dashboard.url}/merchants/${m.id}`);
      const books = await ledger.merchantBooks(m.id);
      expect(fen(await text("[data-field=liability] .value"))).to.equal(books.liability);
      const series = q.liabilitySeries(m.id, CHART_POINTS);
      expect(await page.locator("#liability-chart svg").count()).to.equal(1);
      expect(await page.locator("#liability-chart tr[data-point]").count()).to.equal(series.length);
      // Each batch the merchant sent is one point, and so is each settlement custody booked for
      // it (the evening's claims, the morning's cooling-off return); far fewer than CHART_POINTS.
      const settlements = await ledger.queryFilter(ledger.filters.Settled(m.id), 0);
      expect(BigInt(series.length)).to.equal(books.nextSequence - 1n + BigInt(settlements.length));
      // The last point is the merchant's liability now.
      expect(fen(await page.locator("#liability-chart tr[data-point] [data-field=liability]").last().textContent())).to.equal(books.liability);
      expect(await rowIds("#accounts tbody tr", "data-account")).to.deep.equal(q.accounts(m.id).map((a) => a.account));
    }
    // Suspended at midday, closed in the evening: its holders claimed from custody at one rate.
    await page.goto(`${dashboard.url}/merchants/${SUSPENDED}`);
    expect(await text("h1 .badge")).to.equal("closed");
    expect(await page.locator("[data-field=suspended-reason]").count()).to.equal(0);
    const round = await (await connection.ethers.getContractAt("MerchantCustody", day.custodyAddress)).claimsOf(SUSPENDED);
    expect(fen(await text("[data-field=claims-paid] .value"))).to.equal(round.paid);
    expect(await page.locator("#claims tbody tr").count()).to.equal(Number(round.claims));
    await screenshot("merchant-closed-claims");
  });

  it("opens an account from its merchant: every record, verified, with its decrypted order ref and memo", async function () {
    const [first] = MERCHANTS;
    await page.goto(`${dashboard.url}/merchants/${first.id}`);
    const link = page.locator("#accounts tbody tr a").first();
    await Promise.all([page.waitForURL(/\/accounts\/0x[0-9a-f]{64}$/), link.click()]);
    await screenshot("account");
    const account = (await text("[data-field=account]"))!;
    const uploaded = day.uploaded.filter((r) => r.merchantId === first.id && r.account.toLowerCase() === account);
    expect(uploaded.length).to.be.greaterThan(0);
    expect((await rowIds("#records tbody tr", "data-record")).map(Number)).to.deep.equal(uploaded.map((r) => Number(r.recordIndex)));
    const books = await (await contract()).accountBooks(first.id, account);
    expect(fen(await text("[data-field=balance] .value"))).to.equal(books.balance);

    const records = q.records({ merchantId: first.id, account });
    const final = await (await connection.ethers.getContractAt("SupervisorQuorum", day.quorumAddress)).lastFinal();
    let running = 0n;
    for (const r of records) {
      const row = `#records tr[data-record="${r.recordIndex}"]`;
      expect(await text(`${row} [data-field=verification]`)).to.equal("verified");
      expect(await text(`${row} [data-field=memo]`)).to.equal(r.details!.memo);
      // The order reference carries the simulated day of the record (day.ts: town.ts Traffic).
      const date = new Date(r.details!.time * 1000).toISOString().slice(0, 10).replaceAll("-", "");
      expect(await text(`${row} [data-field=order-ref]`)).to.match(new RegExp(`^${first.name.slice(0, 3).toUpperCase()}-${date}-\\d{5}$`));
      // Signed: a top-up adds to the card ("+¥…"), consumption and refunds take from it ("-¥…").
      const signed = r.kind === RecordKind.TopUp ? BigInt(r.amount) : -BigInt(r.amount);
      const amount = (await text(`${row} [data-field=amount]`))!;
      expect(amount.startsWith(signed >= 0n ? "+¥" : "-¥"), amount).to.equal(true);
      expect(fen(amount.replace(/^\+/, ""))).to.equal(signed);
      running += signed;
      expect(fen(await text(`${row} [data-field=balance-after]`)), `balance after record ${r.recordIndex}`).to.equal(running);
      expect(await text(`${row} [data-field=confirmation]`)).to.equal(BigInt(r.recordIndex) <= final ? "confirmed" : "pending");
    }
    // The running balance ends at the card's balance on chain.
    expect(running).to.equal(books.balance);
    // A card's first record is its sale (day.ts): a top-up with that memo.
    expect(await text("#records tbody tr:first-child [data-field=kind]")).to.equal("top-up");
    expect(await text("#records tbody tr:first-child [data-field=memo]")).to.equal("prepaid card sold");

    // Its record page carries the commitment the merchant's uploader computed.
    await Promise.all([page.waitForURL(`${dashboard.url}/records/${uploaded[0].recordIndex}`), page.click("#records tbody tr:first-child a")]);
    await screenshot("record");
    expect(await text("[data-field=commitment] code")).to.equal(uploaded[0].commitment.toLowerCase());
    expect(await text("[data-field=verification] .badge")).to.equal("verified");
    // No explorer configured: the hash is shown, not linked away.
    expect(await page.locator("[data-field=tx] a.explorer").count()).to.equal(0);
    expect(await text("[data-field=tx] code")).to.equal(uploaded[0].txHash.toLowerCase());
  });

  it("lists exactly the index's alerts, and filters them by rule and by merchant", async function () {
    const all = q.alerts({ limit: 100_000 });
    // The test's thresholds raise alerts of several rules, more than fit on one page.
    expect(new Set(all.map((a) => a.rule)).size).to.be.greaterThan(1);
    expect(all.length).to.be.greaterThan(PAGE_SIZE);
    await page.goto(dashboard.url);
    await Promise.all([page.waitForURL(`${dashboard.url}/alerts`), page.click("header a[href='/alerts']")]);
    await screenshot("alerts");
    expect(await alertIdsOnAllPages()).to.deep.equal(all.map((a) => a.id));

    const rule = all.at(-1)!.rule;
    await page.goto(`${dashboard.url}/alerts`);
    await Promise.all([page.waitForURL(/rule=/), page.locator(".filters").getByRole("link", { name: rule, exact: true }).click()]);
    expect(await alertIdsOnAllPages()).to.deep.equal(q.alerts({ rule, limit: 100_000 }).map((a) => a.id));

    const merchantId = all[0].merchantId!;
    await page.goto(`${dashboard.url}/alerts?merchant=${merchantId}`);
    expect(await alertIdsOnAllPages()).to.deep.equal(q.alerts({ merchantId, limit: 100_000 }).map((a) => a.id));
  });

  it("links an alert to the card it names, whose page lists the alerts about it", async function () {
    const alert = q.alerts({ rule: "card-limit", limit: 1 })[0];
    expect(alert.account, "a card-limit alert names its card").to.be.a("string");
    await page.goto(`${dashboard.url}/alerts?rule=card-limit`);
    const row = page.locator(`table.alerts tr[data-alert="${alert.id}"]`);
    const target = `${dashboard.url}/merchants/${alert.merchantId}/accounts/${alert.account}`;
    await Promise.all([page.waitForURL(target), row.locator(`a[href="/merchants/${alert.merchantId}/accounts/${alert.account}"]`).click()]);
    const about = q.alerts({ merchantId: alert.merchantId!, limit: 100_000 }).filter((a) => a.account === alert.account);
    expect((await rowIds("table.alerts tbody tr", "data-alert")).map(Number)).to.deep.equal(about.map((a) => a.id));
  });

  it("charts the index over time on the overview: each merchant's liability, money in and out, alerts by rule", async function () {
    await page.goto(dashboard.url);
    for (const id of ["liability-by-merchant", "flows", "alerts-by-rule"]) {
      expect(await page.locator(`#${id} svg`).count(), id).to.equal(1);
      expect(await page.locator(`#${id} .chart-image`).getAttribute("aria-label"), id).to.match(/\S{10}/);
    }
    // The figures behind each chart: the last bucket's liabilities are the merchants' books now,
    // the buckets' flows add up to the totals, and the alerts per rule to the index's alerts.
    const ledger = await contract();
    const buckets = await page.locator("#liability-by-merchant tbody tr").count();
    expect(buckets).to.be.greaterThan(0);
    for (const m of MERCHANTS) {
      const last = await text(`#liability-by-merchant tbody tr:last-child td[data-merchant="${m.id}"]`);
      expect(fen(last), `merchant ${m.id}`).to.equal((await ledger.merchantBooks(m.id)).liability);
    }
    const column = async (field: string) =>
      (await page.locator(`#flows tbody td[data-field=${field}]`).allTextContents()).reduce((sum, t) => sum + fen(t), 0n);
    const totals = q.totals();
    expect([await column("topped-up"), await column("consumed"), await column("refunded")]).to.deep.equal(
      [totals.toppedUp, totals.consumed, totals.refunded].map(BigInt),
    );
    const byRule = await page.locator("#alerts-by-rule tbody tr").evaluateAll((rows) =>
      rows.map((r) => ["high", "medium", "low"].reduce((n, s) => n + Number(r.querySelector(`[data-field=${s}]`)!.textContent), 0)),
    );
    expect(byRule.reduce((a, b) => a + b, 0)).to.equal(q.alerts({ limit: 100_000 }).length);
    // The supervision state: records confirmed by the quorum, and pending ones.
    expect(await text("[data-field=supervision]")).to.match(totals.pending === 0 ? /All \d+ records are confirmed/ : /are pending/);
    await page.locator("#liability-by-merchant").scrollIntoViewIfNeeded();
    await screenshot("overview-charts");
    await page.locator("#alerts-by-rule").scrollIntoViewIfNeeded();
    await page.locator("#alerts-by-rule").screenshot({ path: join(artifactDir("dashboard"), "overview-alerts-chart.png") });
    for (const id of ["liability-by-merchant", "flows"]) await page.locator(`#${id}`).screenshot({ path: join(artifactDir("dashboard"), `overview-${id}-chart.png`) });
    await page.goto(`${dashboard.url}/merchants/${MERCHANTS[0].id}`);
    await page.locator("#liability-chart").screenshot({ path: join(artifactDir("dashboard"), "merchant-liability-chart.png") });
    // A card that was topped up, consumed and refunded: its signed history and running balance.
    const card = MERCHANTS.flatMap((m) => q.accounts(m.id, { limit: 1_000 })).find((a) => a.consumed > 0 && a.refunded > 0 && a.recordCount >= 4)!;
    expect(card, "a card with consumption and a refund").to.not.equal(undefined);
    await page.goto(`${dashboard.url}/merchants/${card.merchantId}/accounts/${card.account}`);
    expect(await text("#records tbody tr:last-child [data-field=balance-after]")).to.equal(yuan(card.balance));
    await screenshot("account-consumed-refunded");
  });

  it("finds a card by its id or a prefix, a record by its index, a transaction by its hash, and says when nothing or several match", async function () {
    const search = async (query: string) => {
      await page.goto(dashboard.url);
      await page.fill("header input[name=q]", query);
      const [response] = await Promise.all([page.waitForNavigation(), page.press("header input[name=q]", "Enter")]);
      return response!;
    };
    const [first] = MERCHANTS;
    const [account] = q.accounts(first.id);
    // The card's first 10 hex digits, as reports print ids ("0x17312af8…"): its page.
    await search(`${account.account.slice(0, 10)}…`);
    expect(new URL(page.url()).pathname).to.equal(`/merchants/${first.id}/accounts/${account.account}`);
    await search(account.account.toUpperCase().replace("0X", "0x"));
    expect(new URL(page.url()).pathname).to.equal(`/merchants/${first.id}/accounts/${account.account}`);
    // A record index that is no merchant id: the record.
    const recordIndex = q.info().recordCount;
    await search(String(recordIndex));
    expect(new URL(page.url()).pathname).to.equal(`/records/${recordIndex}`);
    // A transaction: every record it booked.
    const [r] = q.records({ merchantId: first.id, account: account.account, limit: 1 });
    await search(r.txHash);
    expect(new URL(page.url()).pathname).to.equal(`/transactions/${r.txHash}`);
    const inTx = q.records({ txHash: r.txHash, limit: 1_000 }).map((x) => String(x.recordIndex));
    expect(inTx).to.include(String(r.recordIndex));
    expect(await rowIds("#records tbody tr", "data-record")).to.deep.equal(inTx);
    await screenshot("transaction");
    // A number that is both a record index and a merchant id: both, to pick from.
    const both = await search(String(first.id));
    expect(both.status()).to.equal(200);
    expect((await page.locator("#matches li").evaluateAll((li) => li.map((l) => l.getAttribute("data-kind")))).sort()).to.deep.equal(["merchant", "record"]);
    await screenshot("search-several");
    // Nothing matches: 404 and the query named; nonsense: 400 with what may be searched.
    const none = await search("0xffffffffffffffffff");
    expect(none.status()).to.equal(404);
    expect(await text("[data-field=message]")).to.match(/nothing in the index matches/i);
    expect(await text("main li")).to.equal("query: 0xffffffffffffffffff");
    await screenshot("search-nothing");
    const bad = await search("gym");
    expect(bad.status()).to.equal(400);
    expect(await text("[data-field=message]")).to.match(/card id.*record index.*transaction hash/);
    const json = JSON.parse((await raw(`${dashboard.url}/api/search?q=${first.id}`)).body) as { matches: { kind: string }[] };
    expect(json.matches.map((m) => m.kind).sort()).to.deep.equal(["merchant", "record"]);
    expect((await raw(`${dashboard.url}/search?q=${recordIndex}`)).headers.location).to.equal(`/records/${recordIndex}`);
  });

  it("links transactions to the configured block explorer, and refuses an explorer that is not a URL template", async function () {
    const explorer = await serveDashboard({ db: dbPath, port: 0, explorer: "https://explorer.example/tx/{tx}?chain=local" });
    try {
      const [r] = q.records({ limit: 1 });
      await page.goto(`${explorer.url}/records/${r.recordIndex}`);
      expect(await page.locator("[data-field=tx] a.explorer").getAttribute("href")).to.equal(`https://explorer.example/tx/${r.txHash}?chain=local`);
      await page.goto(`${explorer.url}/transactions/${r.txHash}`);
      expect(await page.locator("[data-field=tx] a.explorer").getAttribute("href")).to.equal(`https://explorer.example/tx/${r.txHash}?chain=local`);
      // The merchant page's custody and recorder histories link each event's transaction.
      await page.goto(`${explorer.url}/merchants/${MERCHANTS[0].id}`);
      for (const table of ["#custody-history", "#recorder-history"]) {
        const rows = await page.locator(`${table} tbody tr`).count();
        expect(rows, table).to.be.greaterThan(0);
        const hrefs = await page.locator(`${table} tbody tr a.explorer`).evaluateAll((links) => links.map((l) => l.getAttribute("href")));
        expect(hrefs, table).to.have.length(rows);
        for (const href of hrefs) expect(href).to.match(/^https:\/\/explorer\.example\/tx\/0x[0-9a-f]{64}\?chain=local$/);
      }
    } finally {
      await explorer.close();
    }
    for (const template of ["https://explorer.example/tx/", "javascript:alert(1)//{tx}", "not a url {tx}"]) {
      let code: string | undefined;
      await serveDashboard({ db: dbPath, port: 0, explorer: template }).then(
        (d) => d.close(),
        (e: { code?: string }) => (code = e.code),
      );
      expect(code, template).to.equal("INVALID_ARGUMENT");
    }
  });

  it("answers an unknown merchant with a 404 page, a malformed id with 400, and never with a stack trace", async function () {
    const response = await page.goto(`${dashboard.url}/merchants/999`);
    expect(response!.status()).to.equal(404);
    expect(await text("h1")).to.equal("Not found");
    expect(await text("[data-field=message]")).to.match(/merchant/i);
    expect(await text("main li")).to.equal("merchantId: 999");
    await screenshot("not-found");

    const cases: [string, number, string][] = [
      ["/merchants/abc", 400, "INVALID_ARGUMENT"],
      ["/merchants/4294967296", 400, "INVALID_ARGUMENT"],
      [`/merchants/101/accounts/0x12`, 400, "INVALID_ARGUMENT"],
      [`/merchants/101/accounts/${id("no such card")}`, 404, "NOT_FOUND"],
      ["/merchants/101?page=0", 400, "INVALID_ARGUMENT"],
      ["/merchants/101?page=999", 404, "NOT_FOUND"],
      ["/alerts?rule=no-such-rule", 400, "INVALID_ARGUMENT"],
      ["/records/999999", 404, "NOT_FOUND"],
      ["/no/such/page", 404, "NOT_FOUND"],
    ];
    for (const [path, status, code] of cases) {
      const html = await raw(dashboard.url + path);
      const json = await raw(`${dashboard.url}/api${path}`);
      expect([html.status, json.status], path).to.deep.equal([status, status]);
      expect(html.headers["content-type"]).to.equal("text/html; charset=utf-8");
      expect(JSON.parse(json.body).error.code, path).to.equal(code);
      for (const body of [html.body, json.body]) expect(body).not.to.match(/\bat .+:\d+:\d+|\.ts\b/);
    }
  });

  it("answers only GET and HEAD, and only to its own address (no DNS rebinding)", async function () {
    const post = await raw(dashboard.url, { method: "POST" });
    expect([post.status, post.headers.allow]).to.deep.equal([405, "GET, HEAD"]);
    const head = await raw(dashboard.url, { method: "HEAD" });
    expect([head.status, head.body]).to.deep.equal([200, ""]);
    const { port } = dashboard;
    expect((await raw(dashboard.url, { host: `attacker.example:${port}` })).status).to.equal(400);
    expect((await raw(dashboard.url, { host: `localhost:${port}` })).status).to.equal(200);
  });

  it("serves each page's figures as JSON under /api", async function () {
    const json = async (path: string) => JSON.parse((await raw(`${dashboard.url}/api${path}`)).body) as unknown;
    const [{ id: merchantId }] = MERCHANTS;
    const [account] = q.accounts(merchantId);
    expect(await json("/overview")).to.deep.equal({ ...q.overview(TOP_ALERTS), history: history(index, q.info().settledTime), alertCounts: alertCounts(index) });
    expect(await json(`/merchants/${merchantId}/series`)).to.deep.include({ points: q.liabilitySeries(merchantId, CHART_POINTS) });
    expect(await json(`/merchants/${merchantId}`)).to.deep.include({ merchant: q.merchant(merchantId) });
    expect(await json(`/merchants/${merchantId}/accounts/${account.account}`)).to.deep.include({
      account,
      records: {
        page: 1,
        pages: 1,
        pageSize: PAGE_SIZE,
        hasNext: false,
        items: q.records({ merchantId, account: account.account }).reduce<{ balance: number; rows: object[] }>(
          (acc, r) => {
            acc.balance += r.kind === RecordKind.TopUp ? r.amount : -r.amount;
            acc.rows.push({ ...r, balanceAfter: acc.balance });
            return acc;
          },
          { balance: 0, rows: [] },
        ).rows,
      },
    });
    expect(await json("/alerts")).to.deep.include({
      filter: { rule: null, merchantId: null },
      alerts: { page: 1, pages: null, pageSize: PAGE_SIZE, hasNext: true, items: q.alerts({ limit: PAGE_SIZE }) },
    });
  });

  it("shows what a later sync committed without a restart", async function () {
    const [first] = MERCHANTS;
    const signers = await connection.ethers.getSigners();
    const recorder = signers[2 + MERCHANTS.indexOf(first)];
    const uploader = await Uploader.open(
      {
        ledger: day.ledgerAddress,
        merchantId: first.id,
        regulatorPublicKey: publicKeyOf(DEMO_REGULATOR_KEY),
        // In the test's folder, so `after` removes it too.
        journalPath: join(dir!, "late-journal.jsonl"),
      },
      recorder,
    );
    const amount = 12_345n;
    try {
      await uploader.upload([
        { kind: RecordKind.TopUp, merchantId: first.id, account: id("dashboard: a late card"), amount, time: 1_795_000_000, orderRef: "LATE-1", memo: "late sale" },
      ]);
    } finally {
      uploader.close();
    }
    await page.goto(`${dashboard.url}/merchants/${first.id}`);
    const before = fen(await text("[data-field=liability] .value"));
    const points = await page.locator("#liability-chart tr[data-point]").count();

    await sync(connection, day, dbPath);
    await page.reload();
    expect(fen(await text("[data-field=liability] .value"))).to.equal(before + amount);
    expect(fen(await text("[data-field=liability] .value"))).to.equal((await (await contract()).merchantBooks(first.id)).liability);
    expect(await page.locator("#liability-chart tr[data-point]").count()).to.equal(points + 1);
  });

  it("shows who may write for each merchant as the registry's roles and offers stand, with the history of its events", async function () {
    const [first, second] = MERCHANTS;
    const signers = await connection.ethers.getSigners();
    const regulator = signers[1];
    const recorderOf = (m: (typeof MERCHANTS)[number]) => signers[2 + MERCHANTS.indexOf(m)];
    // Keys the day does not use (it uses accounts 0-5 and the supervisors 10-13).
    const [accepted, pending, rejected] = [signers[16], signers[17], signers[18]].map((s) => s.address);
    const ledger = await contract();
    // First merchant: an offer its recorder accepts, then one left standing. Second: one it rejects.
    await (await ledger.connect(regulator).addRecorder(first.id, accepted)).wait();
    await (await ledger.connect(recorderOf(first)).acceptRecorder(first.id, accepted)).wait();
    await (await ledger.connect(regulator).addRecorder(first.id, pending)).wait();
    await (await ledger.connect(regulator).addRecorder(second.id, rejected)).wait();
    await (await ledger.connect(recorderOf(second)).rejectRecorder(second.id, rejected)).wait();
    await sync(connection, day, dbPath);

    await page.goto(`${dashboard.url}/merchants/${first.id}`);
    await page.locator("#who-may-write").scrollIntoViewIfNeeded();
    await screenshot("merchant-who-may-write");
    const candidates = [recorderOf(first).address, recorderOf(second).address, accepted, pending, rejected];
    for (const [m, events] of [
      [first, ["registered", "offered", "added", "offered"]],
      [second, ["registered", "offered", "offer_cancelled"]],
    ] as const) {
      await page.goto(`${dashboard.url}/merchants/${m.id}`);
      const role = await ledger.recorderRole(m.id);
      const holders: string[] = [];
      const offered: string[] = [];
      for (const key of candidates) {
        if (await ledger.hasRole(role, key)) holders.push(key.toLowerCase());
        const [by] = await ledger.recorderOffer(m.id, key);
        if (by !== ZeroAddress) offered.push(key.toLowerCase());
      }
      expect(await rowIds("#recorders tbody tr", "data-recorder"), `merchant ${m.id}'s keys`).to.deep.equal(holders);
      const offers = await rowIds("#recorder-offers tbody tr", "data-offer");
      expect(offers, `merchant ${m.id}'s offers`).to.deep.equal(offered);
      expect(await rowIds("#recorder-history tbody tr", "data-event"), `merchant ${m.id}'s history`).to.deep.equal([...events]);
    }
    // The standing offer says when anyone may carry it out, as the contract has it.
    await page.goto(`${dashboard.url}/merchants/${first.id}`);
    const [, executableAt] = await ledger.recorderOffer(first.id, pending);
    expect(await text(`#recorder-offers tr[data-offer="${pending.toLowerCase()}"] [data-field=executable-at]`)).to.equal(dateTime(Number(executableAt)));
    expect(await text(`#recorder-offers tr[data-offer="${pending.toLowerCase()}"] [data-field=offer-state]`)).to.include("awaiting");
  });

  it("shows each merchant's custody as the contract's views hold it, with the history of its deposits, withdrawals and ratio changes", async function () {
    const [first, second] = MERCHANTS;
    const signers = await connection.ethers.getSigners();
    const regulator = signers[1];
    const recorderOf = (m: (typeof MERCHANTS)[number]) => signers[2 + MERCHANTS.indexOf(m)];
    const ledger = await contract();
    const custody = await connection.ethers.getContractAt("MerchantCustody", day.custodyAddress);
    const token = await connection.ethers.getContractAt("PrepaidTestToken", await custody.TOKEN());
    // After the day: the first merchant deposits, then withdraws a third of what is above its
    // requirement; a regulator raises the second merchant's ratio to 100 %, beyond what it holds.
    const recorder = recorderOf(first);
    const deposit = 250_000n;
    await (await token.connect(recorder).mint(recorder.address, deposit)).wait();
    await (await token.connect(recorder).approve(day.custodyAddress, deposit)).wait();
    await (await custody.connect(recorder).deposit(first.id, deposit)).wait();
    const third = (await custody.custodyOf(first.id)).withdrawable / 3n;
    await (await custody.connect(recorder).withdraw(first.id, third, signers[19].address)).wait();
    await (await custody.connect(regulator).setCoverageRatio(second.id, 10_000)).wait();
    await sync(connection, day, dbPath);

    // The whole pages, and the custody sections alone (readable at full size).
    for (const [m, name] of [[second, "merchant-custody-below-requirement"], [first, "merchant-custody"]] as const) {
      await page.goto(`${dashboard.url}/merchants/${m.id}`);
      await screenshot(name);
      const path = join(artifactDir("dashboard"), `${name}-section.png`);
      await page.locator("#custody").screenshot({ path });
      expect(readFileSync(path).subarray(1, 4).toString()).to.equal("PNG");
    }

    // Deposits, withdrawals and ratio changes, and the payouts out of custody to card holders.
    const moves = await Promise.all(
      [
        custody.filters.Deposited(),
        custody.filters.Withdrawn(),
        custody.filters.CoverageRatioSet(),
        custody.filters.CoolingOffPaid(),
        custody.filters.Claimed(),
        custody.filters.ClaimsSwept(),
      ].map((f) => custody.queryFilter(f, 0)),
    );
    const names = {
      Deposited: "deposited",
      Withdrawn: "withdrawn",
      CoverageRatioSet: "ratio-set",
      CoolingOffPaid: "cooling-off-paid",
      Claimed: "claimed",
      ClaimsSwept: "swept",
    } as const;
    for (const m of MERCHANTS) {
      await page.goto(`${dashboard.url}/merchants/${m.id}`);
      const { liability } = await ledger.merchantBooks(m.id);
      const [required, held] = await custody.coverage(m.id, liability);
      const view = await custody.custodyOf(m.id);
      expect(fen(await text("[data-field=custody-held] .value")), `merchant ${m.id}'s held`).to.equal(held);
      expect(fen(await text("[data-field=custody-required] .value")), `merchant ${m.id}'s requirement`).to.equal(required);
      expect([held, required]).to.deep.equal([view.held, view.required]);
      expect(await text("[data-field=custody-ratio] .value")).to.equal(`${Number(view.ratioBps) / 100} %`);
      // Once claims are open on a closed merchant, its custody is the holders' pool: no warning.
      const inClaims = (await custody.claimsOf(m.id)).deadline !== 0n;
      expect((await page.locator("[data-field=below-requirement]").count()) === 1, `merchant ${m.id} below`).to.equal(held < required && !inClaims);
      expect(await page.locator("[data-field=custody-coverage] [data-coverage]").getAttribute("data-coverage")).to.equal(
        required === 0n ? "" : String(Number(held) / Number(required)),
      );
      // The history is the custody's events about the merchant, in chain order, with their figures.
      const events = moves
        .flat()
        .filter((e) => Number(e.args.merchantId) === m.id && !(e.eventName === "Claimed" && e.args.paid === 0n))
        .sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
      let running = 0n; // held after each row: the event's own for a deposit or withdrawal, less each payout
      const rows = await page.locator("#custody-history tbody tr").evaluateAll((trs) =>
        trs.map((tr) => ({
          event: tr.getAttribute("data-event"),
          tx: tr.getAttribute("data-tx"),
          logIndex: Number(tr.getAttribute("data-log-index")),
          amount: tr.querySelector("[data-field=amount]")!.getAttribute("data-fen"),
          held: tr.querySelector("[data-field=held-after]")!.getAttribute("data-fen"),
          ratio: tr.querySelector("[data-field=ratio]")!.getAttribute("data-bps"),
        })),
      );
      expect(rows, `merchant ${m.id}'s custody history`).to.deep.equal(
        events.map((e) => {
          const name = names[e.eventName as keyof typeof names];
          const args = e.args as unknown as { amount: bigint; paid: bigint; held: bigint; ratioBps: bigint };
          const amount = name === "claimed" ? args.paid : args.amount;
          if (name === "deposited" || name === "withdrawn") running = args.held;
          else if (name !== "ratio-set") running -= amount;
          return {
            event: name,
            tx: e.transactionHash.toLowerCase(),
            logIndex: e.index,
            amount: name === "ratio-set" ? "" : String(amount),
            held: name === "ratio-set" ? "" : String(running),
            ratio: name === "ratio-set" ? String(args.ratioBps) : "",
          };
        }),
      );
    }
    // The first merchant's history ends with this test's deposit and withdrawal; the second's with the new ratio.
    await page.goto(`${dashboard.url}/merchants/${first.id}`);
    expect((await rowIds("#custody-history tbody tr", "data-event")).slice(-2)).to.deep.equal(["deposited", "withdrawn"]);
    await page.goto(`${dashboard.url}/merchants/${second.id}`);
    expect((await rowIds("#custody-history tbody tr", "data-event")).at(-1)).to.equal("ratio-set");

    // The overview: a custody column per merchant, and the alert of the merchant below its requirement.
    await page.goto(dashboard.url);
    await page.locator("#merchants").scrollIntoViewIfNeeded();
    await screenshot("overview-custody");
    for (const m of MERCHANTS) {
      const { liability } = await ledger.merchantBooks(m.id);
      const [required, held] = await custody.coverage(m.id, liability);
      expect(fen(await text(`tr[data-merchant="${m.id}"] [data-field=custody-held]`))).to.equal(held);
      expect(fen(await text(`tr[data-merchant="${m.id}"] [data-field=custody-required]`))).to.equal(required);
    }
    const below = q.alerts({ rule: "custody-below-requirement" });
    expect(below.map((a) => a.merchantId)).to.deep.equal([second.id]);
    await page.goto(`${dashboard.url}/alerts?rule=custody-below-requirement`);
    expect(await rowIds("table.alerts tbody tr", "data-alert")).to.deep.equal(below.map((a) => String(a.id)));
  });
});
