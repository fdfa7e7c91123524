/**
 * `prepaid serve`: the web dashboard over the index, until SIGINT/SIGTERM. On 127.0.0.1 by
 * default; with `--host` beyond loopback only with sign-in (accounts in the auth file,
 * `prepaid users`; docs/TEAM.md). It reads the index as `sync --follow` writes it, so the two
 * can run side by side.
 */
import { once } from "node:events";

import { serveDashboard, type Dashboard } from "../../dashboard/server.js";
import { PrepaidLedgerError } from "../../errors.js";
import { redactUrl } from "../../indexer/store/database.js";
import { httpJsonRpc } from "../../rpc.js";
import { isLoopback } from "../../dashboard/auth/policy.js";
import { intOption, stringOption } from "../args.js";
import { AUTH_OPTION, authFile } from "../auth-file.js";
import type { Command, Context } from "../command.js";

async function start(ctx: Context, port: number, host: string): Promise<Dashboard> {
  const onError = (e: unknown) => ctx.io.stderr.write(`dashboard: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
  try {
    const rpc = stringOption(ctx.args, "rpc") ?? ctx.config.rpc;
    const timeoutMs = (intOption(ctx.args, "rpc-timeout", 1) ?? ctx.config.rpcTimeout ?? 30) * 1000;
    const auth = authFile(ctx);
    const hostnames = (stringOption(ctx.args, "public-host") ?? "").split(",").map((h) => h.trim()).filter((h) => h !== "");
    const explorer = stringOption(ctx.args, "explorer") ?? ctx.config.explorer;
    return await serveDashboard({
      db: ctx.db,
      port,
      host,
      hostnames,
      auth: { file: auth.path, mustExist: auth.named, trustProxy: ctx.args.values["trust-proxy"] === true },
      onError,
      explorer,
      rpc: rpc === undefined ? undefined : httpJsonRpc(rpc, { timeoutMs }),
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EADDRINUSE" || (e as NodeJS.ErrnoException).code === "EACCES") {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "cannot listen on this port: it is in use or reserved", { details: { port }, cause: e });
    }
    if ((e as NodeJS.ErrnoException).code === "EADDRNOTAVAIL" || (e as NodeJS.ErrnoException).code === "ENOTFOUND") {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "cannot listen on this address: it is not one of this machine's", { details: { host }, cause: e });
    }
    throw e;
  }
}

async function run(ctx: Context): Promise<number> {
  const port = intOption(ctx.args, "port", 0) ?? 0;
  if (port > 65_535) throw new PrepaidLedgerError("INVALID_ARGUMENT", "--port is at most 65535", { details: { port } });
  const host = stringOption(ctx.args, "host") ?? "127.0.0.1";
  const stop = ctx.stopSignal();
  const dashboard = await start(ctx, port, host);
  if (!isLoopback(host) && ctx.args.values["trust-proxy"] !== true) {
    ctx.notice("warning: without a TLS reverse proxy (--trust-proxy, docs/TEAM.md), passwords and session cookies cross the network unencrypted");
  }
  try {
    await (ctx.json
      ? ctx.writeJson({ url: dashboard.url, port: dashboard.port, index: redactUrl(ctx.db), signIn: dashboard.signIn })
      : ctx.write(`Dashboard at ${dashboard.url} (index ${redactUrl(ctx.db)}${dashboard.signIn ? `; sign-in required, accounts in ${authFile(ctx).path}` : ""}); Ctrl-C to stop.\n`));
    if (!stop.aborted) await once(stop, "abort");
  } finally {
    await dashboard.close();
  }
  ctx.notice("dashboard stopped");
  return 0;
}

/** `prepaid serve` */
export const serveCommand: Command = {
  name: "serve",
  positionals: [],
  summary: "the web dashboard (overview, merchants, accounts, alerts, receipts); sign-in for a team",
  description:
    "Serves the dashboard over the index on 127.0.0.1 (or --host), prints its URL, and runs until Ctrl-C\nor SIGTERM. Pages and a JSON API under /api/; it reads what a running `sync --follow` commits.\n/receipt checks a card holder's receipt against the chain: it needs --rpc (or \"rpc\" in the config file).\nWith --explorer (or \"explorer\"), transaction hashes link to that block explorer; none by default.\n\nSign-in: once the auth file holds an account (`prepaid users add`), every page requires it, and\nevery page viewed is written to the audit log (`prepaid audit`). Beyond loopback (--host) the\ndashboard refuses to start without an account. Behind a TLS reverse proxy, give --trust-proxy\n(cookies become Secure) and --public-host with the name it serves. docs/TEAM.md.",
  options: {
    port: { type: "string", value: "N", help: "TCP port (default: a free port, printed)" },
    host: { type: "string", value: "ADDR", help: "the address to listen on (default 127.0.0.1); beyond loopback only with accounts" },
    "public-host": { type: "string", value: "NAMES", help: "Host header values to answer to, comma-separated (the proxy's name: dashboard.example.org)" },
    "trust-proxy": { type: "boolean", help: "behind a reverse proxy: client address and https from X-Forwarded-For/-Proto" },
    auth: AUTH_OPTION,
    rpc: { type: "string", value: "URL", help: 'a node of the index\'s chain, for the receipt page (or "rpc" in the config file)' },
    explorer: { type: "string", value: "URL", help: 'a block explorer\'s transaction page, {tx} for the hash (or "explorer" in the config file)' },
    "rpc-timeout": { type: "string", value: "SECONDS", help: "seconds one JSON-RPC call of the receipt page may take (default 30)" },
  },
  examples: [
    "prepaid serve --port 8080",
    "prepaid serve --port 8080 --trust-proxy --public-host dashboard.example.org   # behind nginx (docs/TEAM.md)",
    "prepaid serve --rpc http://127.0.0.1:8545   # with the receipt page",
    "prepaid sync --follow --quiet & prepaid serve",
    "prepaid serve --explorer 'https://etherscan.io/tx/{tx}'",
  ],
  run,
};
