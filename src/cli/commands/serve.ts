/**
 * `prepaid serve`: the web dashboard over the index, on 127.0.0.1 only, until SIGINT/SIGTERM.
 * It reads the index as `sync --follow` writes it, so the two can run side by side.
 */
import { once } from "node:events";

import { serveDashboard, type Dashboard } from "../../dashboard/server.js";
import { PrepaidLedgerError } from "../../errors.js";
import { httpJsonRpc } from "../../rpc.js";
import { intOption, stringOption } from "../args.js";
import type { Command, Context } from "../command.js";

async function start(ctx: Context, port: number): Promise<Dashboard> {
  const onError = (e: unknown) => ctx.io.stderr.write(`dashboard: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
  try {
    const rpc = stringOption(ctx.args, "rpc") ?? ctx.config.rpc;
    const timeoutMs = (intOption(ctx.args, "rpc-timeout", 1) ?? ctx.config.rpcTimeout ?? 30) * 1000;
    const explorer = stringOption(ctx.args, "explorer") ?? ctx.config.explorer;
    return await serveDashboard({ db: ctx.db, port, onError, explorer, rpc: rpc === undefined ? undefined : httpJsonRpc(rpc, { timeoutMs }) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EADDRINUSE" || (e as NodeJS.ErrnoException).code === "EACCES") {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "cannot listen on this port: it is in use or reserved", { details: { port }, cause: e });
    }
    throw e;
  }
}

async function run(ctx: Context): Promise<number> {
  const port = intOption(ctx.args, "port", 0) ?? 0;
  if (port > 65_535) throw new PrepaidLedgerError("INVALID_ARGUMENT", "--port is at most 65535", { details: { port } });
  const stop = ctx.stopSignal();
  const dashboard = await start(ctx, port);
  try {
    await (ctx.json
      ? ctx.writeJson({ url: dashboard.url, port: dashboard.port, index: ctx.db })
      : ctx.write(`Dashboard at ${dashboard.url} (index ${ctx.db}); Ctrl-C to stop.\n`));
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
  summary: "the web dashboard on 127.0.0.1 (overview, merchants, accounts, alerts, receipts)",
  description:
    "Serves the dashboard over the index on 127.0.0.1 only (never on other interfaces), prints its URL,\nand runs until Ctrl-C or SIGTERM. Pages and a JSON API under /api/; it reads what a running\n`sync --follow` commits. /receipt checks a card holder's receipt against the chain: it needs\n--rpc (or \"rpc\" in the config file). With --explorer (or \"explorer\"), transaction hashes link\nto that block explorer; none by default.",
  options: {
    port: { type: "string", value: "N", help: "TCP port on 127.0.0.1 (default: a free port, printed)" },
    rpc: { type: "string", value: "URL", help: 'a node of the index\'s chain, for the receipt page (or "rpc" in the config file)' },
    explorer: { type: "string", value: "URL", help: 'a block explorer\'s transaction page, {tx} for the hash (or "explorer" in the config file)' },
    "rpc-timeout": { type: "string", value: "SECONDS", help: "seconds one JSON-RPC call of the receipt page may take (default 30)" },
  },
  examples: ["prepaid serve --port 8080", "prepaid serve --rpc http://127.0.0.1:8545   # with the receipt page", "prepaid sync --follow --quiet & prepaid serve", "prepaid serve --explorer 'https://etherscan.io/tx/{tx}'"],
  run,
};
