/**
 * `prepaid serve`: the web dashboard over the index, on 127.0.0.1 only, until SIGINT/SIGTERM.
 * It reads the index as `sync --follow` writes it, so the two can run side by side.
 */
import { once } from "node:events";

import { serveDashboard, type Dashboard } from "../../dashboard/server.js";
import { PrepaidLedgerError } from "../../errors.js";
import { intOption } from "../args.js";
import type { Command, Context } from "../command.js";

async function start(ctx: Context, port: number): Promise<Dashboard> {
  const onError = (e: unknown) => ctx.io.stderr.write(`dashboard: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
  try {
    return await serveDashboard({ db: ctx.db, port, onError });
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
  summary: "the web dashboard on 127.0.0.1 (overview, merchants, accounts, alerts)",
  description:
    "Serves the dashboard over the index on 127.0.0.1 only (never on other interfaces), prints its URL,\nand runs until Ctrl-C or SIGTERM. Pages and a JSON API under /api/; it reads what a running\n`sync --follow` commits.",
  options: { port: { type: "string", value: "N", help: "TCP port on 127.0.0.1 (default: a free port, printed)" } },
  examples: ["prepaid serve --port 8080", "prepaid sync --follow --quiet & prepaid serve"],
  run,
};
