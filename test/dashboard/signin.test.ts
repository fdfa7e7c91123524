/**
 * The dashboard for a team, in headless Chromium: with accounts in the auth file every page asks
 * for sign-in, an analyst reads the pages but not the audit log, an auditor reads who viewed
 * which merchant and card; sign-out, a wrong password, too many failures (429), a forged or
 * altered session cookie, an expired session, and a cross-site POST from another site's page
 * (refused: CSRF). Everything listens on 127.0.0.1; the accounts are made with `prepaid users`.
 */
import { readFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { join } from "node:path";
import { Readable, PassThrough } from "node:stream";

import { expect } from "chai";
import { network } from "hardhat";
import type { Browser, BrowserContext, Page } from "playwright-core";

import { main } from "../../src/cli/main.js";
import { ACCOUNT_FAILURES, CLIENT_FAILURES, DEFAULT_LIMITS, FAILURE_WINDOW_MS } from "../../src/dashboard/auth/gate.js";
import { AuthStore, type AuditEvent } from "../../src/dashboard/auth/store.js";
import { serveDashboard, type Dashboard } from "../../src/dashboard/server.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { artifactDir, launchChromium } from "../helpers/browser.js";
import { REGULATOR_KEY, card, tempDir } from "../helpers/ledger.js";
import { MERCHANT, deployWithQuorum, receiptRecords } from "../helpers/receipts.js";
import { indexDb } from "../helpers/index-db.js";

const PASSWORDS = { "zhang.min": "analyst passphrase 1", "li.wei": "auditor passphrase 1", "wang.fang": "second analyst 1" } as const;
type Name = keyof typeof PASSWORDS;

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP request (node:http: any header, no cookie jar). */
function raw(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? "GET", headers: options.headers ?? {} }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

/** `prepaid users add` with the password on stdin. */
async function addAccount(auth: string, name: Name, role: string): Promise<void> {
  const stderr = new PassThrough();
  let err = "";
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await main(["users", "add", name, "--role", role, "--auth", auth], { stdout: new PassThrough(), stderr, stdin: Readable.from([`${PASSWORDS[name]}\n`]), env: {} });
  expect(code, err).to.equal(0);
}

describe("dashboard: sign-in for a team in headless Chromium", function () {
  this.timeout(240_000);

  let db: string;
  let auth: string;
  let dashboard: Dashboard;
  let browser: Browser;
  /** The dashboard's clock: tests move it forward to expire sessions and failure windows. */
  let clock = Date.now();
  const alice = card("alice");
  const cardPath = `/merchants/${MERCHANT}/accounts/${alice}`;

  async function screenshot(page: Page, name: string) {
    const path = join(artifactDir("dashboard"), `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    expect(readFileSync(path).subarray(1, 4).toString()).to.equal("PNG");
  }

  /** A fresh browser profile (its own cookies), on the sign-in page of `path`. */
  async function visitor(path = "/"): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1180, height: 760 } });
    const page = await context.newPage();
    await page.goto(`${dashboard.url}${path}`);
    return { context, page };
  }

  async function signIn(page: Page, name: string, password: string): Promise<number> {
    await page.fill("#name", name);
    await page.fill("#password", password);
    const [response] = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    // Playwright follows the 303: the status is the landing page's, or the form's again.
    return response!.status();
  }

  const sessionCookie = async (context: BrowserContext) => (await context.cookies()).find((c) => c.name === "prepaid-session");

  function audit(filter: { event?: AuditEvent; account?: string } = {}) {
    const store = AuthStore.open(auth);
    try {
      return store.audit({ ...filter, limit: 1000 });
    } finally {
      store.close();
    }
  }

  before(async function () {
    browser = await launchChromium();
    const connection = await network.create();
    const f = await deployWithQuorum(connection);
    await f.uploader.upload(receiptRecords());
    const dir = tempDir("signin");
    db = indexDb(dir, "index.sqlite");
    const indexer = await Indexer.open({ ledger: f.ledgerAddress, quorum: f.quorumAddress, privateKey: REGULATOR_KEY, db, confirmations: 0 }, connection.ethers.provider);
    await indexer.sync();
    indexer.close();
    auth = join(dir, "auth.sqlite");
    await addAccount(auth, "zhang.min", "analyst");
    await addAccount(auth, "li.wei", "auditor");
    await addAccount(auth, "wang.fang", "analyst");
    clock = Date.now();
    // Accounts exist, so sign-in is required on 127.0.0.1 too: the same path as beyond loopback.
    dashboard = await serveDashboard({ db, port: 0, host: "127.0.0.1", auth: { file: auth, now: () => clock } });
    expect(dashboard.signIn).to.equal(true);
  });

  after(async function () {
    await browser?.close();
    await dashboard?.close();
  });

  it("without an account the same index is served without sign-in on loopback (as before)", async function () {
    const open = await serveDashboard({ db, port: 0, auth: { file: join(tempDir("signin"), "none.sqlite") } });
    try {
      expect(open.signIn).to.equal(false);
      expect((await raw(`${open.url}${cardPath}`)).status).to.equal(200);
    } finally {
      await open.close();
    }
  });

  it("sends every page to the sign-in form and refuses the API (401) without a session", async function () {
    const { context, page } = await visitor(cardPath);
    expect(new URL(page.url()).pathname).to.equal("/signin");
    expect(new URL(page.url()).searchParams.get("next")).to.equal(cardPath);
    await screenshot(page, "signin");
    for (const path of ["/", "/alerts", `/merchants/${MERCHANT}`, "/records/0", "/audit"]) {
      const r = await raw(`${dashboard.url}${path}`);
      expect([r.status, r.headers.location], path).to.deep.equal([303, `/signin?next=${encodeURIComponent(path)}`]);
    }
    const api = await raw(`${dashboard.url}/api/merchants/${MERCHANT}`);
    expect(api.status).to.equal(401);
    expect(JSON.parse(api.body).error.code).to.equal("UNAUTHENTICATED");
    expect(api.body).to.not.include(alice);
    await context.close();
  });

  it("a wrong password: the form again, 401, the same words as for an unknown account, and a line in the audit log", async function () {
    const { context, page } = await visitor();
    expect(await signIn(page, "zhang.min", "not the password")).to.equal(401);
    expect(await page.locator('[data-field="error"]').textContent()).to.equal("Wrong account name or password.");
    await screenshot(page, "signin-wrong-password");
    expect(await signIn(page, "nobody", "not the password")).to.equal(401);
    expect(await page.locator('[data-field="error"]').textContent()).to.equal("Wrong account name or password.");
    expect(await sessionCookie(context)).to.equal(undefined);
    const failed = audit({ event: "signin-failed" });
    expect(failed.map((r) => [r.account, r.detail, r.client])).to.deep.equal([
      ["nobody", "no such account", "127.0.0.1"],
      ["zhang.min", "wrong password", "127.0.0.1"],
    ]);
    await context.close();
  });

  it("an analyst signs in, lands on the page asked for, reads merchants and cards, but not the audit log (403)", async function () {
    const { context, page } = await visitor(cardPath);
    expect(await signIn(page, "zhang.min", PASSWORDS["zhang.min"])).to.equal(200);
    expect(new URL(page.url()).pathname).to.equal(cardPath);
    expect(await page.locator('[data-field="account"]').first().textContent()).to.equal("zhang.min");
    const cookie = await sessionCookie(context);
    expect(cookie).to.deep.include({ httpOnly: true, sameSite: "Strict", secure: false, path: "/" });
    await screenshot(page, "signin-analyst-card");
    await page.goto(`${dashboard.url}/merchants/${MERCHANT}`);
    expect(await page.locator("header").textContent()).to.include("signed in as zhang.min (analyst)");
    expect(await page.locator('header a[href="/audit"]').count()).to.equal(0);
    const forbidden = await page.goto(`${dashboard.url}/audit`);
    expect(forbidden!.status()).to.equal(403);
    await screenshot(page, "signin-analyst-audit-forbidden");
    const apiAudit = await page.request.get(`${dashboard.url}/api/audit`);
    expect([apiAudit.status(), ((await apiAudit.json()) as { error: { code: string } }).error.code]).to.deep.equal([403, "FORBIDDEN"]);
    expect((await page.request.get(`${dashboard.url}/api/merchants/${MERCHANT}`)).status()).to.equal(200);
    await context.close();
  });

  it("an auditor reads the audit log: who viewed which merchant and card, and the analyst's refused look at the log", async function () {
    const { context, page } = await visitor("/audit");
    expect(await signIn(page, "li.wei", PASSWORDS["li.wei"])).to.equal(200);
    expect(new URL(page.url()).pathname).to.equal("/audit");
    await page.goto(`${dashboard.url}/audit?account=zhang.min`);
    const rows = page.locator("#audit tbody tr");
    const cells = await rows.evaluateAll((trs) =>
      trs.map((tr) => Object.fromEntries([...tr.querySelectorAll("td")].map((td) => [td.getAttribute("data-field"), td.textContent!.trim()]))),
    );
    const viewedCard = cells.find((c) => c.event === "view" && c.card === alice);
    expect(viewedCard).to.deep.include({ account: "zhang.min", merchant: String(MERCHANT), request: `GET ${cardPath}`, status: "200", client: "127.0.0.1" });
    expect(cells.find((c) => c.event === "view" && c.request === "GET /audit")).to.deep.include({ status: "403" });
    expect(cells.filter((c) => c.event === "signin")).to.have.length(1);
    await screenshot(page, "signin-auditor-audit-log");
    const api = (await (await page.request.get(`${dashboard.url}/api/audit?merchant=${MERCHANT}&limit=2`)).json()) as { entries: { merchant: number }[]; hasOlder: boolean };
    expect(api.entries).to.have.length(2);
    expect(api.entries.every((e) => e.merchant === MERCHANT)).to.equal(true);
    expect(api.hasOlder).to.equal(true);
    await context.close();
  });

  it("sign out ends the session on the server: the old cookie opens nothing afterwards", async function () {
    const { context, page } = await visitor();
    await signIn(page, "zhang.min", PASSWORDS["zhang.min"]);
    const token = (await sessionCookie(context))!.value;
    expect((await raw(`${dashboard.url}/`, { headers: { cookie: `prepaid-session=${token}` } })).status).to.equal(200);
    await Promise.all([page.waitForNavigation(), page.click("#signout")]);
    expect(new URL(page.url()).pathname).to.equal("/signin");
    expect(await page.locator('[data-field="notice"]').textContent()).to.equal("You are signed out.");
    await screenshot(page, "signin-signed-out");
    expect(await sessionCookie(context)).to.equal(undefined);
    expect((await raw(`${dashboard.url}/`, { headers: { cookie: `prepaid-session=${token}` } })).status).to.equal(303);
    expect(audit({ event: "signout" })[0]).to.deep.include({ account: "zhang.min", status: 303 });
    await context.close();
  });

  it("a forged or altered session cookie opens nothing", async function () {
    const { context, page } = await visitor();
    await signIn(page, "zhang.min", PASSWORDS["zhang.min"]);
    const token = (await sessionCookie(context))!.value;
    const altered = (token[5] === "A" ? "B" : "A") + token.slice(1);
    const forged = Buffer.alloc(32, 7).toString("base64url");
    for (const value of [altered, token.slice(0, -1), forged, "", `${token}x`]) {
      const r = await raw(`${dashboard.url}${cardPath}`, { headers: { cookie: `prepaid-session=${value}` } });
      expect(r.status, value).to.equal(303);
      expect(r.body).to.not.include(alice);
      expect((await raw(`${dashboard.url}/api/overview`, { headers: { cookie: `prepaid-session=${value}` } })).status).to.equal(401);
    }
    // In the browser: replace the cookie with the altered one.
    await context.clearCookies();
    await context.addCookies([{ name: "prepaid-session", value: altered, url: dashboard.url }]);
    await page.goto(`${dashboard.url}${cardPath}`);
    expect(new URL(page.url()).pathname).to.equal("/signin");
    // The real one still works.
    expect((await raw(`${dashboard.url}${cardPath}`, { headers: { cookie: `prepaid-session=${token}` } })).status).to.equal(200);
    await context.close();
  });

  it("a session idle longer than the timeout, or older than its maximum, is ended and the page says so", async function () {
    const { context, page } = await visitor();
    await signIn(page, "wang.fang", PASSWORDS["wang.fang"]);
    clock += DEFAULT_LIMITS.idleMs - 60_000;
    await page.goto(`${dashboard.url}/alerts`);
    expect(new URL(page.url()).pathname, "29 minutes idle: still signed in").to.equal("/alerts");
    clock += DEFAULT_LIMITS.idleMs + 1;
    await page.goto(`${dashboard.url}/alerts`);
    expect(new URL(page.url()).pathname).to.equal("/signin");
    expect(await page.locator('[data-field="notice"]').textContent()).to.equal("Your session expired: sign in again.");
    await screenshot(page, "signin-session-expired");
    expect(audit({ event: "session-expired" })[0]).to.deep.include({ account: "wang.fang" });
    // Busy all day: a request every 20 minutes, still ended after 12 hours.
    await signIn(page, "wang.fang", PASSWORDS["wang.fang"]);
    const start = clock;
    while (clock + 20 * 60_000 <= start + DEFAULT_LIMITS.maxMs) {
      clock += 20 * 60_000;
      expect((await page.request.get(`${dashboard.url}/api/overview`)).status()).to.equal(200);
    }
    clock = start + DEFAULT_LIMITS.maxMs + 1;
    expect((await page.request.get(`${dashboard.url}/api/overview`)).status()).to.equal(401);
    await context.close();
  });

  it("refuses a cross-site POST (CSRF): another site's page can neither sign a user out nor sign them in", async function () {
    const { context, page } = await visitor();
    await signIn(page, "zhang.min", PASSWORDS["zhang.min"]);
    const token = (await sessionCookie(context))!.value;
    // Another site: localhost is another site than 127.0.0.1 for the browser (and for SameSite).
    const evil: Server = createServer((req, res) => {
      const target = req.url === "/signin" ? "signin" : "signout";
      const fields = target === "signin" ? '<input name="name" value="li.wei"><input name="password" value="auditor passphrase 1">' : '<input name="csrf" value="guess">';
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><form id="f" method="post" action="${dashboard.url}/${target}">${fields}</form><script>document.getElementById("f").submit()</script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, "127.0.0.1", resolve));
    const evilUrl = `http://localhost:${(evil.address() as { port: number }).port}`;
    try {
      for (const path of ["/signout", "/signin"]) {
        const attacked = await context.newPage();
        const [response] = await Promise.all([attacked.waitForResponse((r) => r.url().startsWith(dashboard.url) && r.request().method() === "POST"), attacked.goto(`${evilUrl}${path}`)]);
        expect(response.status(), path).to.equal(403);
        await attacked.waitForLoadState();
        expect(await attacked.locator('[data-field="status"]').textContent()).to.equal("403 Cross-site request refused");
        if (path === "/signout") await screenshot(attacked, "signin-csrf-refused");
        await attacked.close();
      }
    } finally {
      await new Promise<void>((resolve) => evil.close(() => resolve()));
    }
    // Still signed in as herself, not as the account the other site tried.
    expect((await sessionCookie(context))!.value).to.equal(token);
    await page.goto(`${dashboard.url}/`);
    expect(await page.locator('[data-field="account"]').textContent()).to.equal("zhang.min");
    const refused = audit({ event: "csrf-refused" }).slice(0, 2);
    expect(refused.map((r) => r.path)).to.deep.equal(["/signin", "/signout"]);
    expect(refused[0].detail).to.match(/^cross-site request \(origin http:\/\/localhost:\d+, sec-fetch-site cross-site\)$/);

    // A client that sends no Origin or Sec-Fetch-Site (an old browser): the CSRF token decides.
    const form = (body: string) => ({ method: "POST", body, headers: { cookie: `prepaid-session=${token}`, "content-type": "application/x-www-form-urlencoded" } });
    for (const body of ["", "csrf=", "csrf=guess", `csrf=${token}`]) expect((await raw(`${dashboard.url}/signout`, form(body))).status, body).to.equal(403);
    expect((await raw(`${dashboard.url}/`, { headers: { cookie: `prepaid-session=${token}` } })).status, "still signed in").to.equal(200);
    const csrf = await page.locator('form[action="/signout"] input[name="csrf"]').getAttribute("value");
    expect((await raw(`${dashboard.url}/signout`, form(`csrf=${csrf}`))).status).to.equal(303);
    expect((await raw(`${dashboard.url}/`, { headers: { cookie: `prepaid-session=${token}` } })).status, "signed out").to.equal(303);
    // A sign-in without the form's cookie and token, or any other POST.
    expect((await raw(`${dashboard.url}/signin`, { ...form("name=li.wei&password=auditor+passphrase+1"), headers: { "content-type": "application/x-www-form-urlencoded" } })).status).to.equal(403);
    expect((await raw(`${dashboard.url}/alerts`, form(""))).status).to.equal(405);
    // A form that is not a form, or too big to be a sign-in.
    const signinForm = await raw(`${dashboard.url}/signin`);
    const signinCookie = String(signinForm.headers["set-cookie"]).split(";")[0];
    const post = (type: string, body: string) => raw(`${dashboard.url}/signin`, { method: "POST", body, headers: { cookie: signinCookie, "content-type": type } });
    expect((await post("application/json", '{"name":"li.wei"}')).status).to.equal(415);
    expect((await post("application/x-www-form-urlencoded", `csrf=x&name=${"a".repeat(9_000)}`)).status).to.equal(413);
    await context.close();
  });

  it(`limits failed sign-ins: ${ACCOUNT_FAILURES} per account, ${CLIENT_FAILURES} per address, then 429 until the window passes`, async function () {
    const { context, page } = await visitor();
    for (let i = 0; i < ACCOUNT_FAILURES; i++) expect(await signIn(page, "li.wei", `wrong ${i}`)).to.equal(401);
    // Now even the right password is not tried.
    const response = page.waitForResponse((r) => r.request().method() === "POST");
    expect(await signIn(page, "li.wei", PASSWORDS["li.wei"])).to.equal(429);
    expect(Number((await response).headers()["retry-after"])).to.be.within(1, FAILURE_WINDOW_MS / 1000);
    expect(await page.locator('[data-field="error"]').textContent()).to.match(/^Too many failed sign-ins for this account or from this address: try again in \d+ minutes?\.$/);
    await screenshot(page, "signin-rate-limited");
    expect(await sessionCookie(context)).to.equal(undefined);
    expect(audit({ event: "signin-limited" })[0]).to.deep.include({ account: "li.wei", detail: "account" });
    // Another account from the same address is not limited by li.wei's failures...
    expect(await signIn(page, "wang.fang", PASSWORDS["wang.fang"])).to.equal(200);
    await context.clearCookies();
    // ...until the address itself has failed too often (counting li.wei's), whatever the account.
    await page.goto(`${dashboard.url}/signin`);
    const before = audit({ event: "signin-failed" }).filter((r) => r.time >= clock - FAILURE_WINDOW_MS).length;
    for (let i = before; i < CLIENT_FAILURES; i++) expect(await signIn(page, `guess-${i}`, "wrong")).to.equal(401);
    expect(await signIn(page, "wang.fang", PASSWORDS["wang.fang"])).to.equal(429);
    expect(audit({ event: "signin-limited" })[0]).to.deep.include({ account: "wang.fang", detail: "client address" });
    // Once the window has passed, the right password works again.
    clock += FAILURE_WINDOW_MS + 1_000;
    expect(await signIn(page, "li.wei", PASSWORDS["li.wei"])).to.equal(200);
    await context.close();

    // Attempts sent all at once (a script, not a browser: it sets the sign-in cookie and token
    // itself) still get only ${ACCOUNT_FAILURES} tries: the ones being checked count.
    const attempt = () =>
      raw(`${dashboard.url}/signin`, {
        method: "POST",
        body: "csrf=chosen&name=wang.fang&password=guess",
        headers: { cookie: "prepaid-signin=chosen", "content-type": "application/x-www-form-urlencoded" },
      });
    const statuses = (await Promise.all(Array.from({ length: 12 }, attempt))).map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).to.have.length(ACCOUNT_FAILURES);
    expect(statuses.filter((s) => s === 429)).to.have.length(12 - ACCOUNT_FAILURES);
  });
});
