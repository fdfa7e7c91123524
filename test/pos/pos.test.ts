/**
 * The point-of-sale app (apps/pos) end to end: built with Vite, served on 127.0.0.1, in headless
 * Chromium with an injected EIP-1193 test wallet, against a `hardhat node`. A cashier sells a
 * card, tops it up, records a class, is refused an overdraw; then the tab is closed twice in the
 * middle of a batch (once before its transaction reached the node, once after it landed but
 * before the page heard back) and reopened — and every record is on chain exactly once,
 * verified by the regulator's reader.
 */
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";

import { expect } from "chai";
import { JsonRpcProvider } from "ethers";
import { network } from "hardhat";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { build } from "vite";

import { publicKeyOf } from "../../src/crypto/index.js";
import { parseReceipt, verifyReceipt } from "../../src/receipt/index.js";
import { RegulatorReader } from "../../src/regulator/reader.js";
import { artifactDir, launchChromium } from "../helpers/browser.js";
import { startHardhatNode } from "../helpers/processes.js";
import { serveStatic } from "../helpers/static-server.js";

const REGULATOR_KEY = "0x" + "7e".repeat(32);
const MERCHANT = 101;
const run = promisify(execFile);
const HARDHAT = join(dirname(createRequire(import.meta.url).resolve("hardhat/package.json")), "dist", "src", "cli.js");

/** How the test wallet treats eth_sendTransaction. */
type SendMode = "normal" | "swallow" | "land-then-hang";

describe("point-of-sale app (apps/pos) in Chromium against hardhat node", function () {
  this.timeout(240_000);
  let node: Awaited<ReturnType<typeof startHardhatNode>>;
  let server: Awaited<ReturnType<typeof serveStatic>>;
  let browser: Browser;
  let provider: JsonRpcProvider;
  let ledger: string;
  let recorder: string;
  let appUrl: string;
  const shots = artifactDir("pos");
  let mode: SendMode = "normal";
  let soldCard = "";
  let chainIdAnswer: string | undefined;
  const sends: string[] = [];
  let sendsSeen: () => void = () => undefined;

  /** Forwards one JSON-RPC call to the node, as the wallet would. */
  async function rpc(method: string, params: unknown[]): Promise<{ result?: unknown; error?: unknown }> {
    const res = await fetch(node.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
    const body = (await res.json()) as { result?: unknown; error?: unknown };
    return body.error !== undefined ? { error: body.error } : { result: body.result };
  }

  /** A browser context whose pages get the test wallet (the node signs for the unlocked recorder account). */
  async function walletContext(): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.exposeBinding("__testWallet", async (_source, method: string, params: unknown[]) => {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return { result: [recorder] };
      if (method === "eth_chainId" && chainIdAnswer !== undefined) return { result: chainIdAnswer };
      if (method === "eth_sendTransaction") {
        sends.push(mode);
        sendsSeen();
        if (mode === "swallow") return new Promise(() => undefined); // never reaches the node, never answers
        if (mode === "land-then-hang") {
          await rpc(method, params);
          return new Promise(() => undefined); // landed; the page never hears of it
        }
      }
      return rpc(method, params);
    });
    await context.addInitScript(() => {
      const call = (globalThis as unknown as { __testWallet: (m: string, p: unknown[]) => Promise<{ result?: unknown; error?: { code: number; message: string; data?: unknown } }> }).__testWallet;
      (globalThis as unknown as { ethereum: unknown }).ethereum = {
        isTestWallet: true,
        async request({ method, params }: { method: string; params?: unknown[] }) {
          const answer = await call(method, params ?? []);
          if (answer.error !== undefined) throw Object.assign(new Error(answer.error.message), answer.error);
          return answer.result;
        },
        on() {},
        removeListener() {},
      };
    });
    return context;
  }

  const waitSends = (n: number) =>
    new Promise<void>((resolve) => {
      sendsSeen = () => sends.length >= n && resolve();
      sendsSeen();
    });

  const consoleLines: string[] = [];
  let current: Page | undefined;

  async function openTill(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    current = page;
    const errors: string[] = [];
    page.on("pageerror", (e) => {
      errors.push(String(e));
      consoleLines.push(`pageerror: ${e.stack ?? String(e)}`);
    });
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    await page.goto(appUrl);
    await page.locator("#app").waitFor({ state: "visible", timeout: 30_000 });
    expect(errors).to.deep.equal([]);
    return page;
  }

  async function record(page: Page, action: string, amount: string, memo: string, card?: string): Promise<void> {
    await page.locator(`input[name=action][value=${action}]`).check();
    if (card !== undefined) await page.locator("#card").fill(card);
    await page.locator("#amount").fill(amount);
    await page.locator("#memo").fill(memo);
    await page.locator("#record").click();
  }

  const row = (page: Page, memo: string) => page.locator("#history-rows tr", { hasText: memo }).first();
  const onLedger = (page: Page, memo: string) => row(page, memo).locator(".status-landed").waitFor({ timeout: 60_000 });
  const allOnLedger = (page: Page) => page.locator("#sync.ok").waitFor({ timeout: 60_000 });
  const shot = (page: Page, name: string) => page.screenshot({ path: join(shots, name), fullPage: true });

  async function recordCount(): Promise<bigint> {
    const { ethers } = await network.create({ network: "localhost", override: { url: node.url } });
    const contract = await ethers.getContractAt("PrepaidLedger", ledger);
    return (await contract.merchantBooks(MERCHANT)).recordCount as bigint;
  }

  before(async function () {
    node = await startHardhatNode();
    // As README says: the setup script, then the app's build (npm run pos:build).
    const setup = await run(process.execPath, [HARDHAT, "run", "scripts/pos/till-setup.ts", "--network", "localhost"], {
      env: { ...process.env, LOCALHOST_RPC_URL: node.url, REGULATOR_PUBLIC_KEY: "0x04" + publicKeyOf(REGULATOR_KEY), MERCHANT_ID: String(MERCHANT) },
    });
    ledger = /^ledger: (0x[0-9a-fA-F]{40})$/m.exec(setup.stdout)![1]!;
    recorder = /recorder (0x[0-9a-fA-F]{40})/.exec(setup.stdout)![1]!;
    const till = new URL(/^till: (\S+)$/m.exec(setup.stdout)![1]!);
    expect(till.searchParams.get("ledger")).to.equal(ledger);
    provider = new JsonRpcProvider(node.url);

    await run("npm", ["run", "-s", "pos:build"]);
    server = await serveStatic("apps/pos/dist");
    till.searchParams.set("batchMs", "800");
    appUrl = `${server.url}${till.search}`;
    browser = await launchChromium();
  });

  afterEach(async function () {
    if (this.currentTest?.state === "failed") {
      console.log(consoleLines.join("\n"));
      if (current !== undefined && !current.isClosed()) await shot(current, "failure.png");
    }
  });

  after(async function () {
    await browser?.close();
    provider?.destroy();
    await server?.stop();
    await node?.stop();
  });

  it("says clearly when there is no wallet, or it is on another chain", async function () {
    const bare = await browser.newContext({ viewport: { width: 1280, height: 500 } });
    const page = await bare.newPage();
    await page.goto(appUrl);
    await page.locator("#banner").waitFor({ state: "visible" });
    expect(await page.locator("#banner").innerText()).to.include("No wallet found");
    await shot(page, "0a-no-wallet.png");
    await bare.close();

    chainIdAnswer = "0x1";
    const context = await walletContext();
    const wrong = await context.newPage();
    await wrong.goto(appUrl);
    await wrong.locator("#banner").waitFor({ state: "visible" });
    expect(await wrong.locator("#banner").innerText()).to.include("on chain 1, but this till's ledger is on chain 31337");
    expect(await wrong.locator("#banner button").innerText()).to.equal("Switch network");
    await shot(wrong, "0b-wrong-chain.png");
    await context.close();
    chainIdAnswer = undefined;
  });

  it("sells, tops up, records a class, refuses an overdraw; closed twice mid-batch, every record lands exactly once", async function () {
    const context = await walletContext();
    let page = await openTill(context);
    await page.locator("#new-card").click();
    const card = (await page.locator("#card").inputValue()).replace(/\s/g, "");
    expect(card).to.match(/^\d{12}$/);
    soldCard = card;

    await record(page, "sell", "300", "annual card");
    await onLedger(page, "annual card");
    await shot(page, "1-sold.png");
    await record(page, "topup", "200", "top-up at desk");
    await onLedger(page, "top-up at desk");
    await record(page, "class", "45.50", "yoga class");
    await onLedger(page, "yoga class");
    await row(page, "yoga class").click();
    await page.locator("#receipt-qr").waitFor();
    expect(await page.locator("#receipt-body").innerText()).to.include("¥45.50").and.include("¥454.50");
    // The page checked the receipt against the ledger itself; the QR code's receipt checks out in Node too.
    expect(await page.locator("#receipt-check").innerText()).to.match(/^✓ Receipt checked against the ledger at block \d+$/);
    const compact = (await page.locator("#receipt-qr").getAttribute("data-receipt"))!;
    expect(compact.startsWith("PL1:")).to.equal(true);
    const verified = await verifyReceipt(parseReceipt(compact), provider, { ledger });
    expect([verified.record.recordIndex, verified.receipt.details.amount, verified.receipt.details.memo, verified.books.balance]).to.deep.equal([3n, 4550n, "yoga class", 45450n]);
    await shot(page, "2-class-receipt.png");

    // An overdraw: the ledger's preflight refuses it with LedgerInsufficientBalance, decoded.
    await record(page, "class", "1,000", "too expensive");
    await row(page, "too expensive").locator(".status-refused").waitFor({ timeout: 30_000 });
    expect(await row(page, "too expensive").innerText()).to.include("Refused by the ledger — insufficient balance: the card holds ¥454.50, this needs ¥1,000.00");
    expect(await page.locator("#receipt-body").innerText()).to.include("NOT RECORDED");
    await shot(page, "3-refused.png");
    expect(await recordCount()).to.equal(3n);

    // Closed before the batch's transaction reached the node.
    mode = "swallow";
    const before = sends.length;
    await record(page, "topup", "50", "second top-up");
    await record(page, "refund", "10", "refund of a class");
    await waitSends(before + 1);
    await row(page, "refund of a class").locator("text=Sending to the ledger").waitFor();
    expect(await row(page, "second top-up").innerText()).to.include("Sending to the ledger");
    await shot(page, "4-sending-then-closed.png");
    await page.close();
    expect(await recordCount()).to.equal(3n);

    // Reopened: the batch goes out again (same bytes) and lands, but the tab is closed before it
    // hears so; a record entered meanwhile waits in IndexedDB.
    mode = "land-then-hang";
    page = await openTill(context);
    await waitSends(before + 2);
    await record(page, "class", "20", "evening class", card);
    await row(page, "evening class").locator("text=waiting to upload").waitFor();
    await shot(page, "5-reopened-landing-then-closed.png");
    await page.close();
    expect(await recordCount()).to.equal(5n);

    // Reopened again: the landed batch is found on chain (not sent again); the waiting record goes out.
    mode = "normal";
    page = await openTill(context);
    // A second tab of the same till would batch the same stored records: it stands aside.
    const twin = await context.newPage();
    await twin.goto(appUrl);
    await twin.locator("#banner").waitFor({ state: "visible" });
    expect(await twin.locator("#banner").innerText()).to.include("already open in another tab");
    expect(await twin.locator("#app").isVisible()).to.equal(false);
    await twin.close();
    await allOnLedger(page);
    await onLedger(page, "evening class");
    expect(sends).to.deep.equal(["normal", "normal", "normal", "swallow", "land-then-hang", "normal"]);
    await page.locator("#balance-card").fill(card);
    await page.locator("#balance-form button").click();
    await page.locator("#balance-result .books").waitFor();
    const books = await page.locator("#balance-result").innerText();
    expect(books).to.include("¥474.50"); // 300 + 200 + 50 − 45.50 − 10 − 20
    await row(page, "evening class").click();
    await page.locator("#receipt-qr").waitFor();
    await shot(page, "6-recovered-balance.png");

    // The contract and the regulator agree: six records, each once.
    expect(await recordCount()).to.equal(6n);
    const reader = await RegulatorReader.open({ ledger, privateKey: REGULATOR_KEY, keepRecords: true }, provider);
    const report = await reader.read();
    expect(report.discrepancies).to.deep.equal([]);
    expect(report.records).to.equal(6);
    const memos = report.kept!.map((r) => `${r.kind}:${r.amount}:${r.details!.memo}`);
    expect(memos).to.deep.equal([
      "1:30000:annual card",
      "1:20000:top-up at desk",
      "2:4550:yoga class",
      "1:5000:second top-up",
      "3:1000:refund of a class",
      "2:2000:evening class",
    ]);
    expect(new Set(report.kept!.map((r) => r.details!.orderRef)).size).to.equal(6);
    const { ethers } = await network.create({ network: "localhost", override: { url: node.url } });
    const contract = await ethers.getContractAt("PrepaidLedger", ledger);
    const account = report.kept![0]!.account;
    const card6 = await contract.accountBooks(MERCHANT, account);
    expect([card6.recordCount, card6.toppedUp, card6.consumed, card6.refunded, card6.balance]).to.deep.equal([6n, 55000n, 6550n, 1000n, 47450n]);
    await context.close();
  });

  it("keeps a record queued, not refused, while the merchant is suspended, and sends it once reinstated", async function () {
    const { ethers } = await network.create({ network: "localhost", override: { url: node.url } });
    const [, regulator] = await ethers.getSigners();
    const contract = await ethers.getContractAt("PrepaidLedger", ledger, regulator);
    await (await contract.suspendMerchant(MERCHANT, ethers.encodeBytes32String("inspection"))).wait();
    const context = await walletContext();
    try {
      const page = await openTill(context);
      await record(page, "topup", "30", "while suspended", soldCard);
      await page.locator("#sync.bad").waitFor({ timeout: 30_000 });
      expect(await page.locator("#sync").innerText()).to.include("the regulator has suspended this merchant").and.include("Records stay saved here");
      expect(await row(page, "while suspended").innerText()).to.include("waiting to upload");
      expect(await page.locator("#entry-stop").innerText()).to.include("Do not take money");
      await shot(page, "7-merchant-suspended.png");
      await (await contract.reinstateMerchant(MERCHANT)).wait();
      await page.locator("#retry").click();
      await onLedger(page, "while suspended");
      await allOnLedger(page);
      expect(await page.locator("#entry-stop").isVisible()).to.equal(false);
    } finally {
      await context.close();
    }
    expect(await recordCount()).to.equal(7n);
  });

  it("runs README's browser example as written: a top-up through the wallet, read back by the regulator", async function () {
    const readme = readFileSync("README.md", "utf8");
    const start = readme.indexOf("```js\nimport { BrowserProvider");
    const code = start < 0 ? undefined : readme.slice(start + "```js\n".length, readme.indexOf("\n```\n", start) + 1);
    expect(code, "README's browser example").to.be.a("string");
    const dir = join(artifactDir("pos"), "readme-example");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "main.js"), code!);
    writeFileSync(join(dir, "index.html"), `<!doctype html><title>example</title><body>working…</body><script type="module" src="./main.js"></script>`);
    // As an app that installed the package would build it; the alias stands for the installed package.
    await build({
      root: dir,
      configFile: false,
      logLevel: "warn",
      resolve: { alias: { "prepaid-ledger/browser": resolve("src/browser/index.ts") } },
      build: { outDir: join(dir, "dist"), emptyOutDir: true, target: "es2022" },
    });
    const site = await serveStatic(join(dir, "dist"));
    const context = await walletContext();
    try {
      const page = await context.newPage();
      current = page;
      page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.stack ?? String(e)}`));
      await page.goto(`${site.url}?ledger=${ledger}&regulator=0x04${publicKeyOf(REGULATOR_KEY)}`);
      await page.waitForFunction(() => /^recorded in block \d+, salt 0x[0-9a-f]{32}$/.test((globalThis as any).document.body.textContent), undefined, { timeout: 60_000 });
    } finally {
      await context.close();
      await site.stop();
    }
    const reader = await RegulatorReader.open({ ledger, privateKey: REGULATOR_KEY, keepRecords: true }, provider);
    const report = await reader.read();
    expect(report.discrepancies).to.deep.equal([]);
    const last = report.kept!.at(-1)!;
    expect([last.kind, last.amount, last.details!.orderRef, last.details!.memo]).to.deep.equal([1, 300_000n, "GYM-20261126-00042", "annual card"]);
  });
});
