/**
 * The dashboard's sign-in parts without a browser: password hashing, the auth file (accounts,
 * sessions, audit log, failure counts), when sign-in is required, and the `prepaid users` and
 * `prepaid audit` commands run in-process with a password on stdin.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { request, type IncomingHttpHeaders } from "node:http";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";

import { expect } from "chai";

import { main } from "../../src/cli/main.js";
import { openIndex } from "../../src/indexer/open.js";
import { isLoopback, openGate } from "../../src/dashboard/auth/policy.js";
import { checkNewPassword, hashPassword, verifyPassword } from "../../src/dashboard/auth/password.js";
import { AuthStore, type Role } from "../../src/dashboard/auth/store.js";
import { isError } from "../../src/errors.js";
import { expectRejects } from "../helpers/errors.js";
import { tempDir } from "../helpers/ledger.js";
import { indexDb } from "../helpers/index-db.js";

/** Small scrypt parameters: the unit tests check behaviour, not cost. */
const FAST = { log2N: 10, r: 8, p: 1 };
const LIMITS = { idleMs: 30 * 60_000, maxMs: 12 * 3_600_000 };
const T0 = 1_795_000_000_000;

function throws(fn: () => unknown, code: string) {
  try {
    fn();
  } catch (e) {
    expect(isError(e), String(e)).to.equal(true);
    expect((e as { code: string }).code).to.equal(code);
    return e as { details: Record<string, unknown> };
  }
  expect.fail(`expected ${code}`);
}

async function storeWith(accounts: [string, Role][]): Promise<{ store: AuthStore; file: string }> {
  const file = join(tempDir("auth"), "auth.sqlite");
  const store = AuthStore.open(file, { create: true });
  for (const [name, role] of accounts) store.addAccount(name, role, await hashPassword(`${name} password 123`, FAST), T0);
  return { store, file };
}

describe("dashboard auth: password hashing", function () {
  it("verifies the right password and refuses others, with a fresh salt per hash", async function () {
    const a = await hashPassword("correct horse battery", FAST);
    const b = await hashPassword("correct horse battery", FAST);
    expect(a).to.match(/^scrypt\$10\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{86}$/);
    expect(a).to.not.equal(b);
    expect(await verifyPassword("correct horse battery", a)).to.equal(true);
    expect(await verifyPassword("correct horse battery", b)).to.equal(true);
    expect(await verifyPassword("correct horse batterY", a)).to.equal(false);
    expect(await verifyPassword("", a)).to.equal(false);
  });

  it("uses the default cost (N = 2^15) and the parameters stored with each hash", async function () {
    const strong = await hashPassword("a longer passphrase");
    expect(strong.split("$").slice(1, 4)).to.deep.equal(["15", "8", "1"]);
    expect(await verifyPassword("a longer passphrase", strong)).to.equal(true);
    // The same salt and password under other stored parameters is another key: refused.
    expect(await verifyPassword("a longer passphrase", strong.replace("$15$", "$14$"))).to.equal(false);
  });

  it("refuses a hash whose key or salt was altered, and a string that is not a hash", async function () {
    const h = await hashPassword("correct horse battery", FAST);
    const parts = h.split("$");
    const flip = (s: string) => (s[0] === "A" ? "B" : "A") + s.slice(1);
    expect(await verifyPassword("correct horse battery", [...parts.slice(0, 5), flip(parts[5])].join("$"))).to.equal(false);
    expect(await verifyPassword("correct horse battery", [...parts.slice(0, 4), flip(parts[4]), parts[5]].join("$"))).to.equal(false);
    await expectRejects(verifyPassword("x", "plaintext"), "INVALID_ARGUMENT");
    await expectRejects(verifyPassword("x", h.replace("$10$", "$40$")), "INVALID_ARGUMENT");
  });

  it("takes new passwords of 12 to 1024 characters", function () {
    expect(throws(() => checkNewPassword("short pass"), "INVALID_ARGUMENT").details).to.deep.equal({ length: 10 });
    throws(() => checkNewPassword("x".repeat(1025)), "INVALID_ARGUMENT");
    checkNewPassword("twelve chars");
    checkNewPassword("密码".repeat(6));
  });
});

describe("dashboard auth: the auth file", function () {
  it("creates the file for its owner only, and refuses a missing file or another database", async function () {
    const { store, file } = await storeWith([]);
    store.close();
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    throws(() => AuthStore.open(join(tempDir("auth"), "none.sqlite")), "INVALID_ARGUMENT");
    const other = join(tempDir("auth"), "other.sqlite");
    writeFileSync(other, "not a database at all, just text");
    throws(() => AuthStore.open(other), "INVALID_CONFIG");
  });

  it("adds, lists and removes accounts; refuses a taken name, a bad name and an unknown role", async function () {
    const { store } = await storeWith([["li.wei", "auditor"], ["zhang.min", "analyst"]]);
    expect(store.accounts().map((a) => [a.name, a.role])).to.deep.equal([["li.wei", "auditor"], ["zhang.min", "analyst"]]);
    throws(() => store.addAccount("li.wei", "analyst", "scrypt$…", T0), "INVALID_ARGUMENT");
    throws(() => store.addAccount("-rm", "analyst", "scrypt$…", T0), "INVALID_ARGUMENT");
    throws(() => store.addAccount("ok", "admin" as Role, "scrypt$…", T0), "INVALID_ARGUMENT");
    store.removeAccount("zhang.min");
    throws(() => store.removeAccount("zhang.min"), "NOT_FOUND");
    expect(store.accountCount()).to.equal(1);
    store.close();
  });

  it("keeps only a hash of a session's token; a session ends when idle, too old, signed out or its account changes", async function () {
    const { store, file } = await storeWith([["li.wei", "auditor"], ["zhang.min", "analyst"]]);
    const s = store.createSession("zhang.min", T0, "127.0.0.1");
    // Neither the file nor its write-ahead log holds the token (only its SHA-256); the CSRF token is there.
    const onDisk = readFileSync(file).toString("latin1") + readFileSync(`${file}-wal`).toString("latin1");
    expect(onDisk).to.include(s.csrf).and.not.include(s.token);
    const active = store.session(s.token, T0 + 60_000, LIMITS);
    expect(active).to.deep.include({ state: "active" });
    expect(active.state === "active" && active.session).to.deep.include({ account: "zhang.min", role: "analyst", csrf: s.csrf });
    expect(store.session(s.token.slice(0, -1) + (s.token.endsWith("A") ? "B" : "A"), T0, LIMITS)).to.deep.equal({ state: "none" });
    // Idle: 30 minutes after the last use (T0 + 1 min).
    expect(store.session(s.token, T0 + 60_000 + LIMITS.idleMs + 1, LIMITS)).to.deep.equal({ state: "expired", account: "zhang.min" });
    expect(store.session(s.token, T0 + 60_000, LIMITS)).to.deep.equal({ state: "none" });
    // Too old: used every 20 minutes, still ended 12 hours after it started.
    const old = store.createSession("zhang.min", T0, "127.0.0.1");
    let t = T0;
    while (t + 20 * 60_000 <= T0 + LIMITS.maxMs) expect(store.session(old.token, (t += 20 * 60_000), LIMITS).state).to.equal("active");
    expect(store.session(old.token, T0 + LIMITS.maxMs + 1, LIMITS).state).to.equal("expired");
    // Password changed, account removed, signed out.
    const a = store.createSession("zhang.min", T0, "x");
    const b = store.createSession("li.wei", T0, "x");
    const c = store.createSession("li.wei", T0, "x");
    store.setPassword("zhang.min", await hashPassword("another password", FAST), T0);
    store.removeAccount("li.wei");
    expect([a, b, c].map((x) => store.session(x.token, T0, LIMITS).state)).to.deep.equal(["none", "none", "none"]);
    const d = store.createSession("zhang.min", T0, "x");
    store.endSession(d.token);
    expect(store.session(d.token, T0, LIMITS).state).to.equal("none");
    store.close();
  });

  it("counts failed sign-ins per account (since its last success) and per client address, within the window", async function () {
    const { store } = await storeWith([["zhang.min", "analyst"]]);
    const fail = (t: number, client: string, account = "zhang.min") => store.append({ event: "signin-failed", account, client }, t);
    fail(T0, "10.0.0.1");
    fail(T0 + 1_000, "10.0.0.2");
    fail(T0 + 2_000, "10.0.0.1", "nobody");
    expect(store.failures({ account: "zhang.min" }, T0)).to.deep.equal({ count: 2, oldest: T0 });
    expect(store.failures({ account: "zhang.min" }, T0 + 1)).to.deep.equal({ count: 1, oldest: T0 + 1_000 });
    expect(store.failures({ client: "10.0.0.1" }, T0)).to.deep.equal({ count: 2, oldest: T0 });
    store.append({ event: "signin", account: "zhang.min", client: "10.0.0.1" }, T0 + 3_000);
    expect(store.failures({ account: "zhang.min" }, T0).count).to.equal(0);
    expect(store.failures({ client: "10.0.0.1" }, T0).count).to.equal(2);
    store.close();
  });

  it("reads the audit log newest first, by account, merchant, card and event, page by page", async function () {
    const { store } = await storeWith([]);
    for (let i = 0; i < 5; i++) store.append({ event: "view", account: i % 2 === 0 ? "a" : "b", merchant: 7, card: `card-${i}`, path: `/merchants/7/accounts/card-${i}` }, T0 + i);
    store.append({ event: "signout", account: "a" }, T0 + 9);
    expect(store.audit().map((r) => r.event)).to.deep.equal(["signout", "view", "view", "view", "view", "view"]);
    expect(store.audit({ account: "a", event: "view" }).map((r) => r.card)).to.deep.equal(["card-4", "card-2", "card-0"]);
    expect(store.audit({ merchant: 7, card: "card-3" }).map((r) => r.account)).to.deep.equal(["b"]);
    const first = store.audit({ limit: 2 });
    expect(store.audit({ beforeId: first[1].id, limit: 2 }).map((r) => r.card)).to.deep.equal(["card-3", "card-2"]);
    store.close();
  });
});

describe("dashboard auth: when sign-in is required", function () {
  it("knows loopback addresses", function () {
    expect(["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"].map(isLoopback)).to.deep.equal([true, true, true, true, true, true]);
    expect(["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "dashboard.example.org", "128.0.0.1"].map(isLoopback)).to.deep.equal([false, false, false, false, false, false]);
  });

  it("loopback without accounts: no sign-in; with accounts: sign-in; beyond loopback or proxied without accounts: refused", async function () {
    const empty = await storeWith([]);
    empty.store.close();
    const team = await storeWith([["zhang.min", "analyst"]]);
    team.store.close();
    const missing = join(tempDir("auth"), "missing.sqlite");
    expect(openGate("127.0.0.1", undefined)).to.equal(undefined);
    expect(openGate("127.0.0.1", { file: missing })).to.equal(undefined);
    expect(openGate("127.0.0.1", { file: empty.file })).to.equal(undefined);
    const gate = openGate("127.0.0.1", { file: team.file });
    expect(gate).to.not.equal(undefined);
    gate!.store.close();
    const refused = [
      () => openGate("0.0.0.0", undefined),
      () => openGate("10.0.0.5", { file: missing }),
      () => openGate("::", { file: empty.file }),
      () => openGate("127.0.0.1", { file: empty.file, trustProxy: true }),
      () => openGate("127.0.0.1", { file: missing }, true),
    ];
    for (const open of refused) expect(throws(open, "INVALID_CONFIG").details).to.have.property("host");
    throws(() => openGate("127.0.0.1", { file: missing, mustExist: true }), "INVALID_ARGUMENT");
    const beyond = openGate("0.0.0.0", { file: team.file });
    expect(beyond).to.not.equal(undefined);
    beyond!.store.close();
  });
});

/** Runs `prepaid` in-process with `input` on stdin (not a TTY). */
async function prepaid(argv: string[], input = ""): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await main(argv, { stdout, stderr, stdin: Readable.from([input]), env: {} });
  return { code, stdout: out, stderr: err };
}

describe("dashboard auth: prepaid users and prepaid audit", function () {
  this.timeout(30_000);

  it("adds accounts with the password from stdin, lists them, changes and removes them, each change in the audit log", async function () {
    const auth = join(tempDir("auth-cli"), "team.sqlite");
    expect((await prepaid(["users", "add", "li.wei", "--role", "auditor", "--auth", auth], "auditor password 1\n")).code).to.equal(0);
    const added = await prepaid(["users", "add", "zhang.min", "--auth", auth, "--json"], "analyst password 1\nignored\n");
    expect(added.code).to.equal(0);
    expect(JSON.parse(added.stdout)).to.deep.equal({ action: "add", name: "zhang.min", role: "analyst", auth });
    const list = JSON.parse((await prepaid(["users", "list", "--auth", auth, "--json"])).stdout) as { accounts: { name: string; role: string }[] };
    expect(list.accounts.map((a) => [a.name, a.role])).to.deep.equal([["li.wei", "auditor"], ["zhang.min", "analyst"]]);
    const store = AuthStore.open(auth);
    expect(await verifyPassword("analyst password 1", store.passwordHash("zhang.min")!)).to.equal(true);
    store.close();
    expect((await prepaid(["users", "passwd", "zhang.min", "--auth", auth], "a new password 2\n")).code).to.equal(0);
    expect((await prepaid(["users", "remove", "li.wei", "--auth", auth])).code).to.equal(0);
    const log = JSON.parse((await prepaid(["audit", "--auth", auth, "--json"])).stdout) as { entries: { event: string; account: string; detail: string }[] };
    expect(log.entries.map((e) => [e.event, e.account])).to.deep.equal([
      ["account-removed", "li.wei"],
      ["password-changed", "zhang.min"],
      ["account-added", "zhang.min"],
      ["account-added", "li.wei"],
    ]);
    expect(log.entries[3].detail).to.match(/^role auditor by .+ with prepaid users$/);
    const text = await prepaid(["users", "list", "--auth", auth]);
    expect(text.stdout).to.match(/^Account\s+Role\s+Created\s+Password changed\n/).and.to.match(/^zhang\.min\s+analyst\s/m);
  });

  it("refuses a short password, a taken name, an unknown role or action, and a missing account, changing nothing", async function () {
    const auth = join(tempDir("auth-cli"), "team.sqlite");
    const short = await prepaid(["users", "add", "zhang.min", "--auth", auth], "short\n");
    expect([short.code, short.stderr]).to.deep.equal([2, "error: a password has 12 to 1024 characters [INVALID_ARGUMENT]\n  length: 5\n"]);
    expect((await prepaid(["users", "list", "--auth", auth])).code, "no file was created").to.equal(2);
    expect((await prepaid(["users", "add", "zhang.min", "--auth", auth], "analyst password 1\n")).code).to.equal(0);
    expect((await prepaid(["users", "add", "zhang.min", "--auth", auth], "analyst password 2\n")).code).to.equal(2);
    expect((await prepaid(["users", "add", "x", "--role", "admin", "--auth", auth], "analyst password 2\n")).stderr).to.include("the role must be one of: analyst, auditor");
    expect((await prepaid(["users", "rename", "zhang.min", "--auth", auth])).code).to.equal(2);
    expect((await prepaid(["users", "remove", "nobody", "--auth", auth])).code).to.equal(6);
    expect((await prepaid(["users", "add", "--auth", auth])).stderr).to.include("missing <name>");
    expect((await prepaid(["user", "list"])).stderr).to.include('did you mean "users"');
    const store = AuthStore.open(auth);
    expect(store.accounts().map((a) => a.name)).to.deep.equal(["zhang.min"]);
    expect(await verifyPassword("analyst password 1", store.passwordHash("zhang.min")!)).to.equal(true);
    store.close();
  });

  it("serve refuses to listen beyond loopback without an account (exit 2), before opening a port", async function () {
    const dir = tempDir("auth-cli");
    const auth = join(dir, "none.sqlite");
    const index = indexDb(dir, "missing-index.sqlite");
    for (const args of [["--host", "0.0.0.0"], ["--host", "::"], ["--trust-proxy"], ["--public-host", "dashboard.example.org"]]) {
      const run = await prepaid(["serve", ...args, "--auth", auth, "--db", index]);
      expect(run.code, args.join(" ")).to.equal(2);
      // Refused for the missing account before the (also missing) index is even looked at.
      expect(run.stderr).to.match(/^error: refusing to serve the dashboard beyond loopback without sign-in/).and.to.include("[INVALID_CONFIG]");
    }
  });

  it("serve with an account requires sign-in on 127.0.0.1; behind a proxy its cookies are Secure and __Host-", async function () {
    const dir = tempDir("auth-cli");
    const auth = join(dir, "team.sqlite");
    const index = indexDb(dir, "index.sqlite");
    openIndex(index).close(); // an empty (never synced) index: the sign-in wall answers first
    expect((await prepaid(["users", "add", "zhang.min", "--auth", auth], "analyst password 1\n")).code).to.equal(0);
    const stop = new AbortController();
    const stdout = new PassThrough();
    const started = new Promise<{ url: string; signIn: boolean }>((resolve) => stdout.once("data", (d: Buffer) => resolve(JSON.parse(d.toString()))));
    const args = ["serve", "--host", "127.0.0.1", "--trust-proxy", "--public-host", "dashboard.example.org", "--auth", auth, "--db", index, "--json", "--quiet"];
    const running = main(args, { stdout, stderr: new PassThrough(), env: {}, stop: stop.signal });
    try {
      const { url, signIn } = await started;
      expect(signIn).to.equal(true);
      // node:http, not fetch: fetch does not let a caller set the Host header.
      const get = (path: string, headers: Record<string, string>) =>
        new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve, reject) =>
          request(`${url}${path}`, { headers }, (res) => {
            res.resume();
            res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers }));
          })
            .on("error", reject)
            .end(),
        );
      const proxied = { host: "dashboard.example.org", "x-forwarded-proto": "https", "x-forwarded-for": "198.51.100.7" };
      const home = await get("/", proxied);
      expect([home.status, home.headers.location]).to.deep.equal([303, "/signin?next=%2F"]);
      const secure = (await get("/signin", proxied)).headers["set-cookie"];
      expect(secure).to.have.length(1);
      expect(secure![0]).to.match(/^__Host-prepaid-signin=[\w-]+; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
      expect((await get("/signin", { ...proxied, "x-forwarded-proto": "http" })).headers["set-cookie"]?.[0]).to.match(/^prepaid-signin=[\w-]+; Path=\/; HttpOnly; SameSite=Strict$/);
      expect((await get("/", { host: "elsewhere.example.org" })).status).to.equal(400);
    } finally {
      stop.abort();
    }
    expect(await running).to.equal(0);
  });
});
