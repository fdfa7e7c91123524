/**
 * The regulator's web dashboard: server-rendered pages and a JSON API over the SQLite index,
 * served by `node:http` on 127.0.0.1 only. Nothing is built or bundled; a page is one HTML
 * document with inline CSS and inline SVG charts (drawn on the server, src/dashboard/chart.ts).
 *
 *   GET /                                   overview + charts   GET /api/overview
 *   GET /merchants/:id?page=                merchant            GET /api/merchants/:id?page=
 *                                                               GET /api/merchants/:id/series
 *   GET /merchants/:id/accounts/:account    account + records   GET /api/merchants/:id/accounts/:account?page=
 *   GET /alerts?rule=&merchant=&page=       alerts              GET /api/alerts?rule=&merchant=&page=
 *   GET /records/:index                     one record          GET /api/records/:index
 *   GET /transactions/:hash?page=           its records         GET /api/transactions/:hash?page=
 *   GET /search?q=                          303 to the one match, or the matches (404: none)   GET /api/search?q=
 *   GET /receipt?r=                         check a receipt     GET /api/receipt?r=
 *
 * Sign-in (src/dashboard/auth/): with accounts in the auth file, or on any address beyond
 * loopback, every request first passes the sign-in wall (`SignInGate.admit`), which also answers
 * /signin, /signout and /audit and writes the audit log; docs/TEAM.md.
 *
 * The receipt routes ask the chain (`rpc`, src/dashboard/receipt.ts), so they answer
 * asynchronously, outside the read transaction the other pages render in.
 *
 * The index is opened once, read-only; every request reads it inside its own read transaction,
 * so a page is one consistent snapshot and the next request sees what a concurrent sync has
 * committed since (the index is in WAL mode: readers never wait for the writer).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

import { PrepaidLedgerError } from "../errors.js";
import { IndexQueries, type IndexInfo } from "../indexer/queries.js";
import { type Database } from "../indexer/schema.js";
import { openIndex } from "../indexer/open.js";
import { loadCharts } from "./chart.js";
import {
  accountView,
  alertsNaming,
  alertsView,
  merchantView,
  overviewView,
  parseMerchantId,
  parsePage,
  parseRecordIndex,
  searchView,
  seriesView,
  transactionView,
} from "./data.js";
import { explorerLink, parseExplorer, type Explorer } from "./explorer.js";
import type { Html } from "./html.js";
import { accountPage, alertsPage, errorPage, merchantPage, overviewPage, receiptPage, recordPage, searchPage, transactionPage } from "./pages.js";
import { receiptBody, receiptInput, receiptQr, receiptView } from "./receipt.js";
import type { ReceiptRpc } from "../receipt/index.js";
import { openGate, type AuthOptions } from "./auth/policy.js";
import type { SignInGate } from "./auth/gate.js";

export interface DashboardOptions {
  /** Path of the index database (written by the indexer); it must exist. */
  db: string;
  /** TCP port; 0 (the default) lets the OS pick a free one. */
  port?: number;
  /** The address to listen on (default 127.0.0.1). Beyond loopback, sign-in is required (`auth`). */
  host?: string;
  /** More Host header values to answer to, such as the public name a TLS reverse proxy passes on. */
  hostnames?: readonly string[];
  /** The auth file and sign-in settings (src/dashboard/auth/policy.ts says when sign-in applies). */
  auth?: AuthOptions;
  /** Receives errors that are not the request's fault (the response says only "internal error"). Default: stderr. */
  onError?: (error: unknown) => void;
  /**
   * A JSON-RPC client of a node of the index's chain, for the receipt page (record, balance and
   * confirmation come from the chain). Without one, `/receipt` says it cannot check (503).
   */
  rpc?: ReceiptRpc;
  /**
   * A block explorer's page for a transaction, `{tx}` standing for its hash, e.g.
   * `https://etherscan.io/tx/{tx}`: transaction hashes link there. None by default.
   */
  explorer?: string;
}

export interface Dashboard {
  /** `http://<host>:<port>` (`http://127.0.0.1:<port>` by default) */
  url: string;
  port: number;
  /** Whether every page requires sign-in (src/dashboard/auth/policy.ts). */
  signIn: boolean;
  /** Stops listening, drops open connections and closes the index. */
  close(): Promise<void>;
}

/** What one route gives for a request: the data (the API's answer) and, for a page, its HTML. */
interface Resolved {
  data: unknown;
  html?: (info: IndexInfo) => Html;
  /** A page that is only a way to another (a search with one match): 303 there. */
  redirect?: string;
}

/** What a route reads with: the queries, the index itself (for src/indexer/history.ts, search.ts), the explorer. */
interface Source {
  q: IndexQueries;
  db: Database;
  explorer: Explorer | null;
}

interface Route {
  /** The page's path, or null for a route only the API has. */
  page: RegExp | null;
  /** The path under /api. */
  api: RegExp;
  resolve(s: Source, params: string[], query: URLSearchParams): Resolved;
}

const ROUTES: Route[] = [
  {
    page: /^\/$/,
    api: /^\/overview$/,
    resolve: ({ q, db }) => {
      const data = overviewView(q, db);
      return { data, html: () => overviewPage(data) };
    },
  },
  {
    page: /^\/merchants\/([^/]+)$/,
    api: /^\/merchants\/([^/]+)$/,
    resolve: ({ q, explorer }, [id], query) => {
      const data = merchantView(q, parseMerchantId(id), parsePage(query));
      return { data, html: (info) => merchantPage(data, query, info, explorerLink(explorer)) };
    },
  },
  {
    page: null,
    api: /^\/merchants\/([^/]+)\/series$/,
    resolve: ({ q }, [id]) => ({ data: seriesView(q, parseMerchantId(id)) }),
  },
  {
    page: /^\/merchants\/([^/]+)\/accounts\/([^/]+)$/,
    api: /^\/merchants\/([^/]+)\/accounts\/([^/]+)$/,
    resolve: ({ q, db }, [id, account], query) => {
      const data = accountView(q, db, parseMerchantId(id), account, parsePage(query));
      return { data, html: (info) => accountPage(data, query, info) };
    },
  },
  {
    page: /^\/alerts$/,
    api: /^\/alerts$/,
    resolve: ({ q }, _params, query) => {
      const data = alertsView(q, query);
      return { data, html: (info) => alertsPage(data, query, info) };
    },
  },
  {
    page: /^\/records\/([^/]+)$/,
    api: /^\/records\/([^/]+)$/,
    resolve: ({ q, explorer }, [index]) => {
      const data = q.record(parseRecordIndex(index));
      const alerts = alertsNaming(q, data.merchantId, (a) => a.recordIndex === data.recordIndex);
      return { data, html: (info) => recordPage(data, info, explorerLink(explorer), alerts) };
    },
  },
  {
    page: /^\/transactions\/([^/]+)$/,
    api: /^\/transactions\/([^/]+)$/,
    resolve: ({ q, explorer }, [hash], query) => {
      const data = transactionView(q, hash, parsePage(query));
      return { data, html: (info) => transactionPage(data, query, info, explorerLink(explorer)) };
    },
  },
  {
    page: /^\/search$/,
    api: /^\/search$/,
    resolve: ({ db }, _params, query) => {
      const data = searchView(db, query);
      return { data, html: (info) => searchPage(data, info), redirect: data.matches.length === 1 ? data.matches[0].href : undefined };
    },
  },
];

/** Status and title for an error a request can cause; anything else is a 500 "internal error". */
const STATUS: Partial<Record<PrepaidLedgerError["code"], [number, string]>> = {
  INVALID_ARGUMENT: [400, "Bad request"],
  NOT_FOUND: [404, "Not found"],
  INDEX_CORRUPT: [503, "Index unavailable"],
  // The receipt page without a node, or with a node that fails.
  INVALID_CONFIG: [503, "Receipt checking unavailable"],
  RPC_ERROR: [502, "Node unavailable"],
  TIMEOUT: [504, "Node did not answer"],
};

const HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // No script, no remote resource: only the inline stylesheet.
  // The receipt page's form submits to the dashboard itself (GET /receipt).
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

/** A request the dashboard refuses before reading the index (wrong method, Host or path). */
class Refused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** What a request handler needs: the index, its queries, the accepted Host values, the error sink. */
interface Context {
  db: Database;
  queries: IndexQueries;
  explorer: Explorer | null;
  hosts: ReadonlySet<string>;
  onError: (error: unknown) => void;
  rpc?: ReceiptRpc;
  /** The sign-in wall, when sign-in is required. */
  gate?: SignInGate;
}

function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { ...HEADERS, ...extra, "content-type": `${type}; charset=utf-8`, "content-length": Buffer.byteLength(body) });
  res.end(req.method === "HEAD" ? undefined : body);
}

/** Runs `read` in one read transaction: every query of a page sees the same committed state. */
function snapshot<T>(db: Database, read: () => T): T {
  db.exec("BEGIN");
  try {
    return read();
  } finally {
    db.exec("ROLLBACK");
  }
}

/** The route and its parameters for a page path, or for an API path without its `/api` prefix. */
function match(path: string, api: boolean): { route: Route; params: string[] } {
  for (const route of ROUTES) {
    const m = (api ? route.api : route.page)?.exec(path);
    if (m) return { route, params: m.slice(1) };
  }
  throw new Refused(404, "NOT_FOUND", "Not found", "the dashboard has no such page");
}

/**
 * Checks method and Host, and parses the target. The Host check stops DNS rebinding: a web page
 * on another origin whose name resolves to 127.0.0.1 cannot read the dashboard through its visitor's browser.
 */
function checkRequest(req: IncomingMessage, hosts: ReadonlySet<string>, signIn: boolean): URL {
  // The sign-in wall takes the POSTs (/signin, /signout) and refuses any other.
  if (req.method !== "GET" && req.method !== "HEAD" && !(signIn && req.method === "POST")) {
    throw new Refused(405, "METHOD_NOT_ALLOWED", "Method not allowed", "the dashboard only answers GET and HEAD", { allow: "GET, HEAD" });
  }
  if (!hosts.has(req.headers.host ?? "")) {
    throw new Refused(400, "BAD_HOST", "Bad request", "the dashboard answers only at its own address (and the names given to it)");
  }
  if (!(req.url ?? "").startsWith("/")) throw new Refused(400, "BAD_TARGET", "Bad request", "malformed request target");
  return new URL(`http://127.0.0.1${req.url}`);
}

interface Failure {
  status: number;
  code: string;
  title: string;
  message: string;
  details: Record<string, unknown>;
  headers: Record<string, string | string[]>;
}

/** The answer to a failed request: the request's own fault is explained, anything else is only logged. */
function failureOf(error: unknown, onError: (error: unknown) => void): Failure {
  if (error instanceof Refused) {
    return { status: error.status, code: error.code, title: error.title, message: error.message, details: {}, headers: error.headers };
  }
  const known = error instanceof PrepaidLedgerError ? STATUS[error.code] : undefined;
  if (error instanceof PrepaidLedgerError && known !== undefined) {
    const [status, title] = known;
    return { status, code: error.code, title, message: error.shortMessage, details: error.details, headers: {} };
  }
  onError(error);
  return { status: 500, code: "INTERNAL", title: "Internal error", message: "the dashboard failed to answer this request", details: {}, headers: {} };
}

/** A successful request's answer: the page's HTML or the API's JSON, or (a page) a redirect. */
function render(ctx: Context, url: URL, api: boolean): { body: string; location?: string } {
  const { route, params } = match(api ? url.pathname.slice("/api".length) : url.pathname, api);
  return snapshot(ctx.db, () => {
    const resolved = route.resolve({ q: ctx.queries, db: ctx.db, explorer: ctx.explorer }, params, url.searchParams);
    if (api || resolved.html === undefined) return { body: JSON.stringify(resolved.data) };
    if (resolved.redirect !== undefined) return { body: "", location: resolved.redirect };
    return { body: resolved.html(ctx.queries.info()).text };
  });
}

const RECEIPT_PATH = /^\/receipt$/;

/** The receipt page or its JSON: checked against the chain, so asynchronous (src/dashboard/receipt.ts). */
async function renderReceipt(ctx: Context, url: URL, api: boolean): Promise<string> {
  const input = receiptInput(url.searchParams);
  if (api && input === "") throw new PrepaidLedgerError("INVALID_ARGUMENT", "give the receipt as ?r= (its compact string or JSON)");
  const view = await receiptView(input, ctx.rpc, ctx.queries);
  if (api) return JSON.stringify(view);
  const qr = view.compact === null ? null : await receiptQr(view.compact);
  const info = ctx.queries.info();
  return receiptPage(receiptBody(view, qr, info), info).text;
}

function respond(ctx: Context, req: IncomingMessage, res: ServerResponse): void {
  const api = (req.url ?? "").startsWith("/api/");
  const type = api ? "application/json" : "text/html";
  const fail = (error: unknown) => {
    const f = failureOf(error, ctx.onError);
    const body = api
      ? JSON.stringify({ error: { code: f.code, message: f.message, details: f.details } })
      : errorPage(f.status, f.title, f.message, f.details).text;
    send(req, res, f.status, type, body, f.headers);
  };
  const answer = (url: URL, decorate: (page: string) => string) => {
    if (RECEIPT_PATH.test(api ? url.pathname.slice("/api".length) : url.pathname)) {
      renderReceipt(ctx, url, api).then((body) => send(req, res, 200, type, decorate(body)), fail);
      return;
    }
    const { body, location } = render(ctx, url, api);
    if (location !== undefined) send(req, res, 303, type, body, { location });
    else send(req, res, 200, type, decorate(body));
  };
  try {
    const url = checkRequest(req, ctx.hosts, ctx.gate !== undefined);
    if (ctx.gate === undefined) return answer(url, (page) => page);
    // The sign-in wall: it answers itself (sign-in, refusals, the audit log) or lets the request through.
    ctx.gate.admit(req, res, url, api).then((a) => {
      if (a.reply !== undefined) return send(req, res, a.reply.status, a.reply.type, a.reply.body, a.reply.headers);
      try {
        answer(url, a.decorate);
      } catch (error) {
        fail(error);
      }
    }, fail);
  } catch (error) {
    fail(error);
  }
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as { port: number }).port;
}

/**
 * Serves the dashboard for the index at `options.db`, on 127.0.0.1 unless `options.host` says
 * otherwise (then only with sign-in, src/dashboard/auth/policy.ts).
 *
 * @param options - the index path, the address and port (0 or absent: a free one), sign-in, and where internal errors go
 * @returns the dashboard's URL and port, and `close()` to stop it
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` if there is no index at the path or the explorer
 *   template is not an http(s) URL with `{tx}`, `INDEX_CORRUPT` if the file is not an index of
 *   this version, `INVALID_CONFIG` beyond loopback without an account; the listen error if the
 *   port is taken
 */
export async function serveDashboard(options: DashboardOptions): Promise<Dashboard> {
  const explorer = options.explorer === undefined ? null : parseExplorer(options.explorer);
  const host = options.host ?? "127.0.0.1";
  const signIn = openGate(host, options.auth, (options.hostnames?.length ?? 0) > 0);
  let db: Database;
  try {
    await loadCharts();
    db = openIndex(options.db, { mustExist: true, readOnly: true });
  } catch (e) {
    signIn?.store.close();
    throw e;
  }
  const onError = options.onError ?? ((e: unknown) => console.error("dashboard: internal error:", e));
  const hosts = new Set<string>();
  const ctx: Context = { db, queries: new IndexQueries(db), explorer, hosts, onError, rpc: options.rpc, gate: signIn?.gate };
  const server = createServer((req, res) => respond(ctx, req, res));
  let port: number;
  try {
    port = await listen(server, options.port ?? 0, host);
  } catch (e) {
    db.close();
    signIn?.store.close();
    throw e;
  }
  const hostPort = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  hosts.add(`127.0.0.1:${port}`).add(`localhost:${port}`).add(hostPort);
  for (const name of options.hostnames ?? []) hosts.add(name);
  return {
    url: `http://${hostPort}`,
    port,
    signIn: signIn !== undefined,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      db.close();
      signIn?.store.close();
    },
  };
}
