/**
 * The sign-in wall in front of the dashboard: the one hook src/dashboard/server.ts calls for
 * every request once accounts exist. It
 *
 * - answers its own routes: `GET /signin`, `POST /signin`, `POST /signout`, `GET /audit` and
 *   `GET /api/audit` (auditors only);
 * - lets any other request through only with an active session (cookie `prepaid-session`, or
 *   `__Host-prepaid-session` over HTTPS), else sends pages to /signin and API calls a 401;
 * - refuses a POST unless it comes from the dashboard's own origin (Sec-Fetch-Site, else Origin)
 *   and carries the right CSRF token: the session's for /signout, the sign-in form's own
 *   (double-submit cookie) for /signin;
 * - limits failed sign-ins per account and per client address (429 with Retry-After);
 * - records in the audit log (store.ts) sign-ins, failures, refusals, sign-outs, expiries and
 *   every request a signed-in account makes, with the merchant, card and record it names.
 *
 * Cookies are HttpOnly, SameSite=Strict, Path=/, and Secure when the request came over HTTPS
 * (as told by a trusted reverse proxy's X-Forwarded-Proto, `trustProxy`).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomBytes, timingSafeEqual } from "node:crypto";

import type { Html } from "../html.js";
import { auditPage, refusalPage, signInPage, signedInBar } from "./pages.js";
import { hashPassword, verifyPassword } from "./password.js";
import type { AuditEvent, AuditFilter, AuthStore, Session, SessionLimits } from "./store.js";

export interface GateOptions {
  store: AuthStore;
  /** Behind a TLS reverse proxy: take the client address and scheme from X-Forwarded-For/-Proto. */
  trustProxy?: boolean;
  /** Default: 30 minutes idle, 12 hours at most. */
  limits?: SessionLimits;
  /** The clock (Unix ms); tests move it. */
  now?: () => number;
}

/** A response the gate sends itself. */
export interface Reply {
  status: number;
  type: "text/html" | "application/json";
  body: string;
  headers: Record<string, string | string[]>;
}

/** The gate's verdict: answer with `reply`, or go on to the dashboard's page, decorated for the viewer. */
export type Admission = { reply: Reply } | { reply?: undefined; decorate: (page: string) => string };

export const DEFAULT_LIMITS: SessionLimits = { idleMs: 30 * 60_000, maxMs: 12 * 3_600_000 };
/** Failed sign-ins allowed per account, and per client address, within {@link FAILURE_WINDOW_MS}. */
export const ACCOUNT_FAILURES = 5;
export const CLIENT_FAILURES = 20;
export const FAILURE_WINDOW_MS = 15 * 60_000;
/** A sign-in form is a few hundred bytes. */
const MAX_BODY = 8 * 1024;
const SIGNIN_COOKIE = "prepaid-signin";

/** A request's account segment, merchant and record, as the audit log names them. */
const MERCHANT_PATH = /^\/merchants\/(\d+)(?:\/accounts\/([^/]+))?/;
const RECORD_PATH = /^\/records\/(\d+)$/;

class Refusal extends Error {
  constructor(
    readonly status: number,
    /** The API's error code (`{"error": {"code"}}`). */
    readonly code: "UNSUPPORTED_MEDIA_TYPE" | "FORM_TOO_LARGE" | "METHOD_NOT_ALLOWED" | "FORBIDDEN" | "CSRF_REFUSED",
    readonly title: string,
    message: string,
    readonly headers: Record<string, string | string[]> = {},
    /** The signed-in bar, when the refused person is signed in. */
    readonly bar: Html | null = null,
  ) {
    super(message);
  }
}

function cookies(req: IncomingMessage): Map<string, string> {
  const jar = new Map<string, string>();
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) jar.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return jar;
}

function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || a.length === 0) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `next` as a path on this dashboard only (never `//elsewhere` or a URL: no open redirect). */
function localPath(next: string | null): string {
  return next !== null && /^\/(?![/\\])/.test(next) && !next.startsWith("/signin") && next.length < 2048 ? next : "/";
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers["content-type"] ?? "")) {
    throw new Refusal(415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported form", "the form must be sent as application/x-www-form-urlencoded");
  }
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Refusal(413, "FORM_TOO_LARGE", "Form too large", `a form is at most ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

/** The sign-in wall (see the file's comment). */
export class SignInGate {
  private readonly store: AuthStore;
  private readonly trustProxy: boolean;
  private readonly limits: SessionLimits;
  private readonly now: () => number;
  private dummyHash: Promise<string> | undefined;
  /**
   * Sign-ins being checked right now, per `a:<account>` and `c:<client>`: they count as failures
   * until they are decided, so many attempts sent at once cannot all pass the limit's check
   * before the first failure is written.
   */
  private readonly inFlight = new Map<string, number>();

  constructor(options: GateOptions) {
    this.store = options.store;
    this.trustProxy = options.trustProxy ?? false;
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.now = options.now ?? Date.now;
    this.store.purgeSessions(this.now(), this.limits);
  }

  /** The client's address: the socket's, or (behind a trusted proxy) the last X-Forwarded-For hop. */
  private client(req: IncomingMessage): string {
    const forwarded = this.trustProxy ? String(req.headers["x-forwarded-for"] ?? "").split(",").at(-1)?.trim() : undefined;
    return forwarded || req.socket.remoteAddress || "unknown";
  }

  private https(req: IncomingMessage): boolean {
    return this.trustProxy && String(req.headers["x-forwarded-proto"] ?? "").split(",")[0].trim() === "https";
  }

  private cookieName(req: IncomingMessage, name: string): string {
    return this.https(req) ? `__Host-${name}` : name;
  }

  private cookie(req: IncomingMessage, name: string, value: string, maxAgeSeconds?: number): string {
    const parts = [`${this.cookieName(req, name)}=${value}`, "Path=/", "HttpOnly", "SameSite=Strict"];
    if (maxAgeSeconds !== undefined) parts.push(`Max-Age=${maxAgeSeconds}`);
    if (this.https(req)) parts.push("Secure");
    return parts.join("; ");
  }

  private audit(req: IncomingMessage, event: AuditEvent, fields: { account?: string | null; status?: number; detail?: string; path?: string } = {}): void {
    this.store.append({ event, client: this.client(req), method: req.method ?? null, path: fields.path ?? null, account: fields.account ?? null, status: fields.status ?? null, detail: fields.detail ?? null }, this.now());
  }

  /**
   * Decides what happens to one request (the server has checked its Host and target already).
   * @param api - whether the path is under /api/ (answers are JSON)
   */
  async admit(req: IncomingMessage, res: ServerResponse, url: URL, api: boolean): Promise<Admission> {
    try {
      return await this.route(req, res, url, api);
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      const body = api
        ? JSON.stringify({ error: { code: e.code, message: e.message, details: {} } })
        : refusalPage(e.status, e.title, e.message, e.bar).text;
      return { reply: { status: e.status, type: api ? "application/json" : "text/html", body, headers: e.headers } };
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL, api: boolean): Promise<Admission> {
    const path = url.pathname;
    if (req.method === "POST") {
      if (path === "/signin") return this.signIn(req, await this.checkedForm(req, () => cookies(req).get(this.cookieName(req, SIGNIN_COOKIE))));
      if (path === "/signout") return this.signOut(req);
      throw new Refusal(405, "METHOD_NOT_ALLOWED", "Method not allowed", "only /signin and /signout accept POST", { allow: "GET, HEAD" });
    }
    if (path === "/signin") return this.signInForm(req, url);
    const token = cookies(req).get(this.cookieName(req, "prepaid-session"));
    const found = token === undefined ? ({ state: "none" } as const) : this.store.session(token, this.now(), this.limits);
    if (found.state !== "active") {
      if (found.state === "expired") this.audit(req, "session-expired", { account: found.account });
      if (api) return { reply: { status: 401, type: "application/json", body: JSON.stringify({ error: { code: "UNAUTHENTICATED", message: "sign in at /signin first", details: {} } }), headers: {} } };
      const next = new URLSearchParams({ next: `${path}${url.search}` });
      if (found.state === "expired") next.set("expired", "1");
      return { reply: { status: 303, type: "text/html", body: "", headers: { location: `/signin?${next.toString()}` } } };
    }
    const session = found.session;
    this.auditView(req, res, session, url, api);
    const bar = signedInBar(session.account, session.role, session.csrf);
    if (path === "/audit" || path === "/api/audit") return { reply: this.auditReply(session, url, api, bar) };
    return { decorate: (page) => (api ? page : page.replace("</header>", `${bar.text}</header>`)) };
  }

  /** Records a signed-in request once it is answered: what it named, and its status. */
  private auditView(req: IncomingMessage, res: ServerResponse, session: Session, url: URL, api: boolean): void {
    const path = api ? url.pathname.slice("/api".length) : url.pathname;
    const m = MERCHANT_PATH.exec(path);
    const query = new URLSearchParams(url.searchParams);
    // A receipt in the query holds a card's plain details: the log names the page, not the receipt.
    if (query.has("r")) query.set("r", "…");
    const merchant = m?.[1] ?? (/^\d{1,15}$/.test(query.get("merchant") ?? "") ? query.get("merchant") : null);
    const q = query.toString();
    const entry = {
      event: "view" as const,
      account: session.account,
      client: this.client(req),
      method: req.method ?? "GET",
      path: `${url.pathname}${q === "" ? "" : `?${q}`}`.slice(0, 1000),
      merchant: merchant === null ? null : Number(merchant),
      card: m?.[2] === undefined ? null : decodeURIComponent(m[2]).slice(0, 200),
      record: RECORD_PATH.exec(path)?.[1] === undefined ? null : Number(RECORD_PATH.exec(path)![1]),
    };
    // "close" comes for every response, also one the client abandoned before it was sent whole.
    res.once("close", () => this.store.append({ ...entry, status: res.statusCode, detail: res.writableFinished ? null : "connection closed before the answer was complete" }, this.now()));
  }

  private auditReply(session: Session, url: URL, api: boolean, bar: Html): Reply {
    if (session.role !== "auditor") throw new Refusal(403, "FORBIDDEN", "Forbidden", "the audit log is for accounts with the auditor role", {}, bar);
    const q = url.searchParams;
    const int = (name: string) => (/^\d{1,15}$/.test(q.get(name) ?? "") ? Number(q.get(name)) : undefined);
    const text = (name: string) => (q.get(name) ?? "") || undefined;
    const limit = Math.min(int("limit") ?? 100, 1000);
    const filter: AuditFilter = { account: text("account"), merchant: int("merchant"), card: text("card"), event: text("event") as AuditEvent | undefined, beforeId: int("beforeId"), limit };
    const rows = this.store.audit({ ...filter, limit: limit + 1 });
    const page = rows.slice(0, limit);
    if (api) return { status: 200, type: "application/json", body: JSON.stringify({ entries: page, hasOlder: rows.length > limit }), headers: {} };
    return { status: 200, type: "text/html", body: auditPage(page, filter, rows.length > limit, bar).text, headers: {} };
  }

  private signInForm(req: IncomingMessage, url: URL, error?: { status: number; message: string; name?: string; headers?: Record<string, string | string[]> }): Admission {
    const csrf = randomBytes(24).toString("base64url");
    const notice = url.searchParams.get("expired") === "1" ? "Your session expired: sign in again." : url.searchParams.get("signedout") === "1" ? "You are signed out." : undefined;
    const body = signInPage({ csrf, next: localPath(url.searchParams.get("next")), name: error?.name, error: error?.message, notice: error === undefined ? notice : undefined }).text;
    return { reply: { status: error?.status ?? 200, type: "text/html", body, headers: { ...error?.headers, "set-cookie": this.cookie(req, SIGNIN_COOKIE, csrf) } } };
  }

  /**
   * A POST's form, after the cross-site checks: the browser's Sec-Fetch-Site and Origin must say
   * the dashboard's own origin (browsers send them on every POST), and the form's CSRF token
   * must equal `expected` (which a page of another site cannot read).
   */
  private async checkedForm(req: IncomingMessage, expected: () => string | undefined): Promise<URLSearchParams> {
    const site = req.headers["sec-fetch-site"];
    const origin = req.headers.origin;
    // Sec-Fetch-Site is the browser's own verdict; without it, a real Origin must be ours. (Under
    // the dashboard's Referrer-Policy no-referrer, Chromium sends `Origin: null` even for its own
    // forms, so "null" tells nothing: the token decides.)
    const crossSite =
      site !== undefined ? site !== "same-origin" && site !== "none" : origin !== undefined && origin !== "null" && safeHost(origin) !== req.headers.host;
    const form = crossSite ? new URLSearchParams() : await readForm(req);
    if (crossSite || !sameToken(form.get("csrf") ?? undefined, expected())) {
      this.audit(req, "csrf-refused", {
        path: url(req),
        status: 403,
        detail: crossSite ? `cross-site request (origin ${origin ?? "none"}, sec-fetch-site ${site ?? "none"})` : "missing or wrong CSRF token",
      });
      throw new Refusal(403, "CSRF_REFUSED", "Cross-site request refused", "this form did not come from the dashboard's own page (another site's origin, or a missing or wrong CSRF token): reload the page and try again");
    }
    return form;
  }

  private async signIn(req: IncomingMessage, form: URLSearchParams): Promise<Admission> {
    const name = (form.get("name") ?? "").trim().slice(0, 64);
    const password = form.get("password") ?? "";
    const url = new URL(`http://dashboard/signin?${new URLSearchParams({ next: form.get("next") ?? "/" }).toString()}`);
    const now = this.now();
    const since = now - FAILURE_WINDOW_MS;
    const client = this.client(req);
    const keys = [`a:${name}`, `c:${client}`];
    const pending = (key: string) => this.inFlight.get(key) ?? 0;
    const count = (f: { count: number; oldest: number | null }, key: string) => ({ count: f.count + pending(key), oldest: f.oldest });
    const byAccount = count(this.store.failures({ account: name }, since), keys[0]);
    const byClient = count(this.store.failures({ client }, since), keys[1]);
    const limited = [byAccount.count >= ACCOUNT_FAILURES && byAccount, byClient.count >= CLIENT_FAILURES && byClient].filter((x) => x !== false);
    if (limited.length > 0) {
      const until = Math.max(...limited.map((f) => (f.oldest ?? now) + FAILURE_WINDOW_MS));
      const seconds = Math.max(1, Math.ceil((until - now) / 1000));
      this.audit(req, "signin-limited", { account: name, status: 429, detail: byAccount.count >= ACCOUNT_FAILURES ? "account" : "client address" });
      return this.signInForm(req, url, {
        status: 429,
        name,
        message: `Too many failed sign-ins for this account or from this address: try again in ${Math.ceil(seconds / 60)} minute${seconds > 60 ? "s" : ""}.`,
        headers: { "retry-after": String(seconds) },
      });
    }
    const stored = this.store.passwordHash(name);
    // An unknown name costs the same scrypt as a known one, so timing does not tell which names exist.
    this.dummyHash ??= hashPassword(randomBytes(16).toString("hex"));
    for (const key of keys) this.inFlight.set(key, pending(key) + 1);
    let ok: boolean;
    try {
      ok = (await verifyPassword(password, stored ?? (await this.dummyHash))) && stored !== undefined;
    } finally {
      for (const key of keys) if (this.inFlight.set(key, pending(key) - 1).get(key) === 0) this.inFlight.delete(key);
    }
    if (!ok) {
      this.audit(req, "signin-failed", { account: name, status: 401, detail: stored === undefined ? "no such account" : "wrong password" });
      return this.signInForm(req, url, { status: 401, name, message: "Wrong account name or password." });
    }
    // Sessions nobody came back to are removed here (and at start); used ones are checked on use.
    this.store.purgeSessions(this.now(), this.limits);
    const { token } = this.store.createSession(name, this.now(), this.client(req));
    this.audit(req, "signin", { account: name, status: 303 });
    const cookiesOut = [this.cookie(req, "prepaid-session", token), this.cookie(req, SIGNIN_COOKIE, "", 0)];
    return { reply: { status: 303, type: "text/html", body: "", headers: { location: localPath(form.get("next")), "set-cookie": cookiesOut } } };
  }

  private async signOut(req: IncomingMessage): Promise<Admission> {
    const token = cookies(req).get(this.cookieName(req, "prepaid-session"));
    const found = token === undefined ? undefined : this.store.session(token, this.now(), this.limits);
    const session = found?.state === "active" ? found.session : undefined;
    await this.checkedForm(req, () => session?.csrf);
    // checkedForm refused the request unless the token matched an active session's.
    this.store.endSession(token!);
    this.audit(req, "signout", { account: session!.account, status: 303 });
    return { reply: { status: 303, type: "text/html", body: "", headers: { location: "/signin?signedout=1", "set-cookie": this.cookie(req, "prepaid-session", "", 0) } } };
  }
}

/** The host (and port) of an Origin header, or "" if it is not a URL. */
function safeHost(origin: string): string {
  try {
    return new URL(origin).host;
  } catch {
    return "";
  }
}

/** The request target as the audit log keeps it (a receipt in `r` is not copied there). */
function url(req: IncomingMessage): string {
  return (req.url ?? "").replace(/([?&]r=)[^&]*/, "$1…").slice(0, 1000);
}
