/**
 * A seeded fault-injecting JSON-RPC proxy for tests and the load bench: it stands between a
 * client and a node on 127.0.0.1 and, per request, either forwards it faithfully or injects one
 * fault of the kinds an operator meets on a real network:
 *
 * | kind           | forwarded to the node? | what the client sees                                    |
 * | -------------- | ---------------------- | ------------------------------------------------------- |
 * | `drop`         | no                     | the connection reset, no answer                         |
 * | `lose`         | yes (it took effect)   | the connection reset, no answer                         |
 * | `delay`        | yes                    | the right answer, `delayMs` late                        |
 * | `http502`      | no                     | HTTP 502 Bad Gateway, no JSON-RPC body                  |
 * | `truncate`     | yes (it took effect)   | HTTP 200 with the first half of the answer (bad JSON)   |
 * | `hang`         | yes (it took effect)   | nothing until the client gives up (or `hangMs`)         |
 * | `unknownBlock` | no                     | a JSON-RPC error `header not found`, as from a load-    |
 * |                |                        | balanced node that is behind the head                   |
 *
 * Faults come two ways: at random, at the rates given (seeded, so a run can be replayed), and
 * forced with {@link FaultProxy.failNext} on the next requests of a method, for exact tests.
 * Every request loop here is bounded by its client; the proxy stops with `stop()`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export const FAULT_KINDS = ["drop", "lose", "delay", "http502", "truncate", "hang", "unknownBlock"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultProxyOptions {
  /** The node's URL (http://127.0.0.1:…). */
  target: string;
  /** Seed of the random faults (default 1). */
  seed?: number;
  /** Probability per request of each kind (sum ≤ 1); default none. */
  rates?: Partial<Record<FaultKind, number>>;
  /** Only requests whose method this accepts get random faults (default: all). */
  methods?: (method: string) => boolean;
  /** How late a `delay` answer comes (default 1,500 ms). */
  delayMs?: number;
  /** How long a `hang` holds the connection before closing it (default 120 s). */
  hangMs?: number;
}

export interface ForcedFault {
  /** The JSON-RPC method to fault (default: any); a batch request matches if any of its calls does. */
  method?: string;
  /** How many matching requests to fault (default 1). */
  count?: number;
  /** A further test on the request's calls (params and all). */
  match?: (call: JsonRpcCall) => boolean;
}

export interface JsonRpcCall {
  id?: unknown;
  method: string;
  params?: unknown[];
}

export interface FaultProxy {
  url: string;
  /** Faults injected so far, by kind. */
  readonly counts: Record<FaultKind, number>;
  /** Requests seen, and how many of them were forwarded to the node. */
  readonly stats: { requests: number; forwarded: number; byMethod: Record<string, number> };
  /** Replaces the random rates (`{}` turns random faults off). */
  setRates(rates: Partial<Record<FaultKind, number>>): void;
  /** Forces `kind` on the next matching requests, before any random fault. */
  failNext(kind: FaultKind, fault?: ForcedFault): void;
  /** Forced faults not yet used. */
  pendingForced(): number;
  stop(): Promise<void>;
}

/** mulberry32: a small, good-enough seeded generator for choosing faults. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}

function callsOf(body: string): JsonRpcCall[] {
  try {
    const parsed = JSON.parse(body) as JsonRpcCall | JsonRpcCall[];
    return Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    return [];
  }
}

/** Starts the proxy on a free port of 127.0.0.1. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const random = seeded(options.seed ?? 1);
  let rates: Partial<Record<FaultKind, number>> = { ...(options.rates ?? {}) };
  const delayMs = options.delayMs ?? 1_500;
  const hangMs = options.hangMs ?? 120_000;
  const counts = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  const stats = { requests: 0, forwarded: 0, byMethod: {} as Record<string, number> };
  const forced: { kind: FaultKind; fault: ForcedFault; left: number }[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const later = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  function choose(calls: JsonRpcCall[]): FaultKind | undefined {
    const i = forced.findIndex(
      ({ fault }) =>
        calls.some((c) => (fault.method === undefined || c.method === fault.method) && (fault.match === undefined || fault.match(c))),
    );
    if (i >= 0) {
      const f = forced[i];
      if (--f.left === 0) forced.splice(i, 1);
      return f.kind;
    }
    if (options.methods !== undefined && !calls.some((c) => options.methods!(c.method))) return undefined;
    let r = random();
    for (const kind of FAULT_KINDS) {
      const p = rates[kind] ?? 0;
      if (r < p) return kind;
      r -= p;
    }
    return undefined;
  }

  async function forward(body: string): Promise<{ status: number; text: string }> {
    stats.forwarded++;
    const res = await fetch(options.target, { method: "POST", headers: { "content-type": "application/json" }, body });
    return { status: res.status, text: await res.text() };
  }

  function answer(res: ServerResponse, status: number, text: string) {
    if (res.destroyed) return;
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const body = await readBody(req);
    const calls = callsOf(body);
    stats.requests++;
    for (const c of calls) stats.byMethod[c.method] = (stats.byMethod[c.method] ?? 0) + 1;
    const kind = stopped ? undefined : choose(calls);
    if (kind !== undefined) counts[kind]++;
    switch (kind) {
      case undefined: {
        const { status, text } = await forward(body);
        return answer(res, status, text);
      }
      case "drop":
        return req.socket.destroy();
      case "lose":
        await forward(body);
        return req.socket.destroy();
      case "delay": {
        const { status, text } = await forward(body);
        await later(delayMs);
        return answer(res, status, text);
      }
      case "http502":
        res.writeHead(502, { "content-type": "text/html" });
        return res.end("<html><body><h1>502 Bad Gateway</h1></body></html>");
      case "truncate": {
        const { text } = await forward(body);
        return answer(res, 200, text.slice(0, Math.max(1, Math.floor(text.length / 2))));
      }
      case "hang":
        await forward(body);
        await later(hangMs);
        return req.socket.destroy();
      case "unknownBlock": {
        const error = (c: JsonRpcCall) => ({ jsonrpc: "2.0", id: c.id ?? null, error: { code: -32000, message: "header not found" } });
        const parsed = (() => {
          try {
            return JSON.parse(body) as unknown;
          } catch {
            return undefined;
          }
        })();
        return answer(res, 200, JSON.stringify(Array.isArray(parsed) ? calls.map(error) : error(calls[0] ?? { method: "" })));
      }
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      // The node itself failed or the client went away: the client sees a reset.
      req.socket.destroy();
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };

  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    stats,
    setRates(next) {
      rates = { ...next };
    },
    failNext(kind, fault = {}) {
      forced.push({ kind, fault, left: fault.count ?? 1 });
    },
    pendingForced: () => forced.reduce((n, f) => n + f.left, 0),
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
