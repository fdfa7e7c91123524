/**
 * The dashboard's "Card holders' protection" section in a real browser (Debian's Chromium), over
 * an index of the protection scenario (test/helpers/protection.ts) read by the real indexer:
 * a closed merchant's claims round (pool, liability, rate, deadline, paid, unpaid, swept, every
 * claim), card rules, cooling-off returns (paid, met, owed and overdue, highlighted), the
 * overview's figures, a settlement in its card's history, and the `/api` twin with the same
 * figures. Screenshots go to test-artifacts/dashboard/protection-*.png.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import { network } from "hardhat";
import type { Browser, Page } from "playwright-core";

import { serveDashboard, type Dashboard } from "../../src/dashboard/server.js";
import { Indexer } from "../../src/indexer/indexer.js";
import type { ProtectionView } from "../../src/indexer/protection-view.js";
import { artifactDir, launchChromium } from "../helpers/browser.js";
import { REGULATOR_KEY, tempDir } from "../helpers/ledger.js";
import { FULL, OWING, PAID, PRO_RATA, closeUploaders, increaseTime, protectionScenario, type Scenario } from "../helpers/protection.js";
import { indexDb } from "../helpers/index-db.js";

const { ethers } = await network.create();
const DAY = 86_400;

/** Reads "¥1,234.56" back into fen, refusing any other shape. */
function fen(text: string | null): bigint {
  expect(text?.trim()).to.match(/^-?¥\d{1,3}(,\d{3})*\.\d{2}$/);
  return BigInt(text!.trim().replace(/[¥,.]/g, ""));
}

describe("dashboard: the card holders' protection (Chromium)", function () {
  this.timeout(180_000);
  let s: Scenario;
  let browser: Browser;
  let dashboard: Dashboard;
  let page: Page;
  let db: string;
  /** Holds the SQLite index (a PostgreSQL index is a URL, not a file in it). */
  let dir: string | undefined;

  const text = (selector: string) => page.locator(selector).first().textContent();
  const screenshot = async (name: string, selector?: string) => {
    const path = join(artifactDir("dashboard"), `${name}.png`);
    if (selector === undefined) await page.screenshot({ path, fullPage: true });
    else await page.locator(selector).screenshot({ path });
    expect(readFileSync(path).subarray(1, 4).toString()).to.equal("PNG");
  };

  before(async function () {
    browser = await launchChromium();
    s = await protectionScenario(ethers);
    await increaseTime(ethers, 8 * DAY); // OWING's return on card D is now past its due date
    dir = tempDir("dashboard-protection");
    db = indexDb(dir, "index.sqlite");
    const indexer = await Indexer.open({ ledger: await s.ledger.getAddress(), privateKey: REGULATOR_KEY, db, confirmations: 0 }, ethers.provider);
    try {
      expect((await indexer.sync()).matchesContract).to.equal(true);
    } finally {
      indexer.close();
    }
    dashboard = await serveDashboard({ db, port: 0 });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  after(async function () {
    await browser?.close();
    await dashboard?.close();
    closeUploaders(s);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("shows a closed merchant's claims round as custody's claimsOf holds it, with every claim", async function () {
    for (const m of [PRO_RATA, FULL]) {
      await page.goto(`${dashboard.url}/merchants/${m}`);
      const round = await s.custody.claimsOf(m);
      expect(await text("h1 .badge")).to.equal("closed");
      expect(fen(await text("[data-field=claims-pool] .value")), `merchant ${m}'s pool`).to.equal(round.pool);
      expect(fen(await text("[data-field=claims-liability] .value"))).to.equal(round.liability);
      expect(fen(await text("[data-field=claims-paid] .value"))).to.equal(round.paid);
      expect(fen(await text("[data-field=claims-unpaid] .value"))).to.equal(round.liability - round.paid);
      expect(await text("[data-field=claims-count] .value")).to.equal(String(round.claims));
      const rate = round.pool >= round.liability ? "100.00 %" : `${((Number(round.pool) / Number(round.liability)) * 100).toFixed(2)} %`;
      expect(await text("[data-field=claims-rate] .value")).to.equal(rate);
      expect(await text("[data-field=claims-deadline] .value")).to.include("ended");
      const claims = await s.custody.queryFilter(s.custody.filters.Claimed(m), 0);
      const rows = await page.locator("#claims tbody tr").evaluateAll((trs) =>
        trs.map((tr) => [tr.getAttribute("data-account"), tr.querySelector("[data-field=balance]")!.textContent, tr.querySelector("[data-field=paid]")!.textContent]),
      );
      expect(rows.map(([a, b, p]) => [a, fen(b), fen(p)])).to.deep.equal(claims.map((c) => [c.args.account, c.args.balance, c.args.paid]));
      // The custody section counts the payouts out of it: held is custodyOf's.
      expect(fen(await text("[data-field=custody-held] .value"))).to.equal((await s.custody.custodyOf(m)).held);
      // Claims are open: custody is the holders' pool, so no "below the requirement" warning.
      expect(await page.locator("[data-field=claims-opened]").count()).to.equal(1);
      expect(await page.locator("[data-field=below-requirement]").count()).to.equal(0);
    }
    await page.goto(`${dashboard.url}/merchants/${PRO_RATA}`);
    expect(await text("[data-field=claims-swept] .value")).to.match(/^¥500\.00 to 0x/);
    await screenshot("protection-merchant-claims");
    await screenshot("protection-claims-section", "#protection");
  });

  it("shows card rules and cooling-off returns, the overdue one highlighted, and the same figures under /api", async function () {
    await page.goto(`${dashboard.url}/merchants/${PAID}`);
    expect(await text("[data-field=card-cap] .value")).to.equal("¥5,000.00");
    expect(await text("[data-field=cooling-off-days] .value")).to.equal("7 days");
    expect(fen(await text("[data-field=cooling-off-paid] .value"))).to.equal(200_000n);
    expect(await page.locator("#claims").count()).to.equal(0);
    await page.goto(`${dashboard.url}/merchants/${OWING}`);
    const rows = await page.locator("#cooling-off tbody tr").evaluateAll((trs) =>
      trs.map((tr) => [tr.getAttribute("data-account"), tr.getAttribute("data-status"), tr.querySelector("[data-field=status]")!.textContent, (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(tr).backgroundColor]),
    );
    expect(rows).to.deep.equal([
      [s.cards.C.account, "met", "met by merchant", "rgba(0, 0, 0, 0)"],
      [s.cards.D.account, "overdue", "OVERDUE", "rgb(251, 217, 217)"],
    ]);
    const obligation = await s.custody.obligationOf(OWING, s.cards.D.account);
    expect(fen(await text("[data-field=cooling-off-owed] .value"))).to.equal(obligation.amount);
    expect(await text("[data-field=cooling-off-overdue] .value")).to.equal("¥800.00 on 1 card");
    expect(await text("[data-field=cooling-off-overdue-warning]")).to.include("¥800.00 of cooling-off returns are past their due date");
    await screenshot("protection-merchant-cooling-off");
    await screenshot("protection-cooling-off-section", "#protection");
    // The JSON twin has the page's figures, amounts in fen.
    const api = (await (await fetch(`${dashboard.url}/api/merchants/${OWING}`)).json()) as { protection: ProtectionView };
    expect([api.protection.coolingOff.owed, api.protection.coolingOff.overdue, api.protection.coolingOff.overdueCount]).to.deep.equal([80_000, 80_000, 1]);
    expect(api.protection.rules?.coolingOffDays).to.equal(7);
    expect(BigInt(api.protection.coolingOff.requests[1].dueBy!)).to.equal(obligation.dueBy);
    // The overview sums it, and the alert is listed.
    await page.goto(dashboard.url);
    expect(await text("[data-field=cooling-off-overdue] .value")).to.equal("¥800.00 on 1 card");
    expect(fen(await text("[data-field=claims-paid] .value"))).to.equal(200_000n);
    expect(await page.locator("table.alerts [data-field=rule]", { hasText: "cooling-off-overdue" }).count()).to.equal(1);
    await screenshot("protection-overview");
  });

  it("lists a settlement in its card's history as a refund custody paid to the holder", async function () {
    await page.goto(`${dashboard.url}/merchants/${PRO_RATA}/accounts/${s.cards.F.account}`);
    const rows = await page.locator("#records tbody tr").evaluateAll((trs) =>
      trs.map((tr) => [tr.querySelector("[data-field=kind]")!.textContent, tr.querySelector("[data-field=memo]")!.textContent, tr.querySelector("[data-field=verification]")!.textContent]),
    );
    expect(rows).to.deep.equal([
      ["top-up", "prepaid card", "verified"],
      ["refund (claim)", `custody paid holder ${s.cards.F.holder.address.toLowerCase().slice(0, 8)}…${s.cards.F.holder.address.toLowerCase().slice(-4)}`, "verified"],
    ]);
    await screenshot("protection-account-settlement");
  });
});
