/**
 * The dashboard's receipt page in headless Chromium, as a card holder uses it: paste the compact
 * string from the QR code (or open `/receipt?r=…`), read "Valid", the card's balance now and the
 * supervisors' confirmation; an altered receipt says "NOT valid" and which part is wrong (the
 * regulator's index names an altered memo, order reference, time or salt). Its JSON twin, the
 * Host check and a dashboard without a node are checked over plain HTTP.
 */
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";

import { expect } from "chai";
import { network } from "hardhat";
import type { Browser, Page } from "playwright-core";
import QRCode from "qrcode";

import { PassThrough } from "node:stream";

import { main } from "../../src/cli/main.js";
import { serveDashboard, type Dashboard } from "../../src/dashboard/server.js";
import { yuan } from "../../src/dashboard/format.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { makeReceipt, receiptToCompact, receiptToJson, type Receipt } from "../../src/receipt/index.js";
import { artifactDir, launchChromium } from "../helpers/browser.js";
import { REGULATOR_KEY, tempDir } from "../helpers/ledger.js";
import { deployWithQuorum, receiptRecords, serveRpc } from "../helpers/receipts.js";
import { indexDb } from "../helpers/index-db.js";

function get(url: string, host?: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: host === undefined ? {} : { host } }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("dashboard: the receipt page in headless Chromium", function () {
  this.timeout(180_000);

  let connection: Awaited<ReturnType<typeof network.create>>;
  let f: Awaited<ReturnType<typeof deployWithQuorum>>;
  let receipts: Receipt[];
  let db: string;
  let dashboard: Dashboard;
  let browser: Browser;
  let page: Page;

  const screenshot = async (name: string) => {
    const path = join(artifactDir("dashboard"), `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    expect(readFileSync(path).subarray(1, 4).toString()).to.equal("PNG");
  };
  const text = async (selector: string) => (await page.locator(selector).first().textContent())?.trim();
  const open = (r: Receipt) => page.goto(`${dashboard.url}/receipt?r=${encodeURIComponent(receiptToCompact(r))}`);
  const edit = (r: Receipt, change: Partial<Receipt["details"]>): Receipt => ({ ...r, details: { ...r.details, ...change } });

  before(async function () {
    browser = await launchChromium();
    connection = await network.create();
    f = await deployWithQuorum(connection);
    receipts = (await f.uploader.upload(receiptRecords())).map((u) => u.receipt);
    db = indexDb(tempDir("receipt-dashboard"), "index.sqlite");
    const indexer = await Indexer.open({ ledger: f.ledgerAddress, quorum: f.quorumAddress, privateKey: REGULATOR_KEY, db, confirmations: 0 }, connection.ethers.provider);
    await indexer.sync();
    indexer.close();
    dashboard = await serveDashboard({ db, port: 0, rpc: connection.ethers.provider });
    page = await browser.newPage({ viewport: { width: 1180, height: 860 } });
  });

  after(async function () {
    await browser?.close();
    await dashboard?.close();
  });

  it("a card holder pastes the compact string and reads: valid, the amount, the balance now, pending", async function () {
    await page.goto(dashboard.url);
    await Promise.all([page.waitForURL(`${dashboard.url}/receipt`), page.click('header a[href="/receipt"]')]);
    expect(await page.locator("textarea[name=r]").inputValue()).to.equal("");
    await screenshot("receipt-form");
    const r = receipts[2]!; // alice's yoga class
    await page.fill("textarea[name=r]", receiptToCompact(r));
    await Promise.all([page.waitForURL(/\/receipt\?r=PL1/), page.click("form.receipt-form button")]);
    expect(await page.locator("[data-field=verdict]").getAttribute("data-state")).to.equal("valid");
    expect(await text("[data-field=verdict-amount]")).to.equal("¥70.00");
    const books = await f.ledger.getFunction("accountBooks").staticCall(7, r.details.account);
    expect(await text("[data-field=balance] .value")).to.equal(yuan(books.balance));
    expect(await text("[data-field=confirmation] .badge")).to.equal("pending");
    expect(await text("[data-field=memo]")).to.equal("yoga class 瑜伽");
    expect(await text("[data-field=compact]")).to.equal(receiptToCompact(r));
    // The QR code is the compact string's (the same symbol the qrcode package draws for it).
    const svg = await page.locator("figure.qr-box svg").evaluate((e) => e.outerHTML);
    const expected = await QRCode.toString(receiptToCompact(r), { type: "svg", errorCorrectionLevel: "M", margin: 2 });
    expect(svg.match(/ d="([^"]+)"/g)).to.deep.equal(expected.match(/ d="([^"]+)"/g));
    expect(await page.textContent("textarea[name=r]")).to.equal(receiptToCompact(r));
    await screenshot("receipt-valid");
  });

  it("once the supervisors' quorum finalizes a checkpoint covering it, the same receipt shows confirmed", async function () {
    await f.confirmAll();
    await open(receipts[2]!);
    expect(await text("[data-field=confirmation] .badge")).to.equal("confirmed");
    expect(await page.locator("[data-field=verdict]").getAttribute("data-state")).to.equal("valid");
  });

  it("an altered receipt is NOT valid, naming the part; the index names an altered memo or salt", async function () {
    const r = receipts[2]!;
    const cases: [string, Receipt][] = [
      ["amount", edit(r, { amount: 700_000n })],
      ["card", edit(r, { account: receipts[1]!.details.account })],
      ["memo", edit(r, { memo: "personal training" })],
      ["order reference", edit(r, { orderRef: "GYM-20261126-00999" })],
      ["time", edit(r, { time: r.details.time + 1 })],
      ["salt", { ...r, salt: "0x" + "ab".repeat(16) }],
      ["record number", { ...r, recordIndex: 4n }],
    ];
    for (const [part, altered] of cases) {
      await open(altered);
      expect(await page.locator("[data-field=verdict]").getAttribute("data-state"), part).to.equal("invalid");
      expect(await text("[data-field=wrong-part]"), part).to.equal(part);
      if (part === "amount") {
        expect(await text("[data-field=receipt]")).to.equal("¥7,000.00");
        expect(await text("[data-field=chain]")).to.equal("¥70.00");
        expect(await page.locator("table.receipt tr.wrong td").evaluateAll((cells) => cells.map((c) => c.getAttribute("data-field")))).to.deep.equal(["amount"]);
        await screenshot("receipt-not-valid");
      }
    }
    const forged = makeReceipt({ ...r, recordIndex: 3n, blockNumber: 1, details: { ...r.details, amount: 900_000n, orderRef: "forged" } });
    await open(forged);
    expect(await text("[data-field=wrong-part]")).to.equal("record");
    expect(await page.textContent("[data-field=verdict]")).to.include("The ledger holds no such record");
    await page.goto(`${dashboard.url}/receipt?r=${encodeURIComponent("PL1:this is not a receipt")}`);
    expect(await text("[data-field=wrong-part]")).to.equal("encoding");
  });

  it("/api/receipt answers the same in JSON; a missing or huge ?r= is 400, a foreign Host 400", async function () {
    const r = receipts[0]!;
    const ok = await get(`${dashboard.url}/api/receipt?r=${encodeURIComponent(JSON.stringify(receiptToJson(r)))}`);
    expect(ok.status).to.equal(200);
    const view = JSON.parse(ok.body) as { state: string; receipt: unknown; books: { balance: string }; confirmation: { status: string } };
    expect([view.state, view.books.balance, view.confirmation.status]).to.deep.equal(["valid", "293000", "confirmed"]);
    expect(view.receipt).to.deep.equal(JSON.parse(JSON.stringify(receiptToJson(r))));
    const bad = JSON.parse((await get(`${dashboard.url}/api/receipt?r=${encodeURIComponent(receiptToCompact(edit(r, { kind: 3 })))}`)).body) as { state: string; error: { field: string; code: string } };
    expect([bad.state, bad.error.code, bad.error.field]).to.deep.equal(["invalid", "RECEIPT_MISMATCH", "kind"]);
    expect((await get(`${dashboard.url}/api/receipt`)).status).to.equal(400);
    expect((await get(`${dashboard.url}/api/receipt?r=${"A".repeat(5000)}`)).status).to.equal(400);
    expect((await get(`${dashboard.url}/receipt`, "evil.example")).status).to.equal(400);
    expect((await get(`${dashboard.url}/receipt`)).headers["content-security-policy"]).to.include("form-action 'self'");
  });

  it("prepaid receipt verify --db: the regulator's index names the altered hidden part, as the page does", async function () {
    const rpc = await serveRpc(connection.provider);
    const verify = async (r: Receipt, extra: string[]) => {
      const stdout = new PassThrough();
      let out = "";
      stdout.on("data", (d: Buffer) => (out += d.toString()));
      const code = await main(["receipt", "verify", receiptToCompact(r), "--rpc", rpc.url, "--json", ...extra], { stdout, stderr: new PassThrough(), env: {}, cwd: tempDir("receipt-cli") });
      return [code, (JSON.parse(out) as { error: { details: { field: string } } }).error.details.field];
    };
    try {
      const r = receipts[3]!;
      expect(await verify(edit(r, { memo: "refund: changed" }), ["--db", db])).to.deep.equal([7, "memo"]);
      expect(await verify({ ...r, salt: "0x" + "cd".repeat(16) }, ["--db", db])).to.deep.equal([7, "salt"]);
      // Without an index, the chain alone can only say "one of time, orderRef, memo, salt".
      expect(await verify(edit(r, { memo: "refund: changed" }), [])).to.deep.equal([7, "details"]);
    } finally {
      await rpc.close();
    }
  });

  it("without a node (no --rpc) the page says it cannot check, 503, and shows the empty form", async function () {
    const offline = await serveDashboard({ db, port: 0 });
    try {
      expect((await get(`${offline.url}/receipt`)).status).to.equal(200);
      const r = await get(`${offline.url}/receipt?r=${encodeURIComponent(receiptToCompact(receipts[0]!))}`);
      expect(r.status).to.equal(503);
      expect(r.body).to.include("prepaid serve --rpc URL");
    } finally {
      await offline.close();
    }
  });
});
