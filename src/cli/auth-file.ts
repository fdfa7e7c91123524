/**
 * The dashboard's auth file for `serve`, `users` and `audit`: `--auth FILE`, else the config
 * file's `auth`, else ./prepaid-auth.sqlite. It is kept apart from the index (src/dashboard/auth/store.ts).
 */
import { resolve } from "node:path";

import { DEFAULT_AUTH_FILE } from "../dashboard/auth/store.js";
import type { OptionSpec } from "./args.js";
import { stringOption } from "./args.js";
import type { Context } from "./command.js";

/** The `--auth` option, as the commands declare it. */
export const AUTH_OPTION: OptionSpec = {
  type: "string",
  value: "FILE",
  help: `the dashboard's accounts, sessions and audit log (default ./${DEFAULT_AUTH_FILE}, or "auth" in the config file)`,
};

/** The auth file's absolute path, and whether it was named (flag or config) rather than defaulted. */
export function authFile(ctx: Context): { path: string; named: boolean } {
  const named = stringOption(ctx.args, "auth") ?? ctx.config.auth;
  return { path: resolve(ctx.cwd, named ?? DEFAULT_AUTH_FILE), named: named !== undefined };
}
