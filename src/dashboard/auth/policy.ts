/**
 * When the dashboard requires sign-in, decided once at start:
 *
 * - on a loopback address (127.0.0.0/8, ::1, localhost) with no auth file, or one without
 *   accounts: no sign-in, as before accounts existed (only this machine's users reach it);
 * - on a loopback address with at least one account: sign-in for every page;
 * - beyond loopback: sign-in for every page, and without an account the dashboard refuses to
 *   start (`INVALID_CONFIG`): it would otherwise show decrypted card histories to the network.
 *   Behind a reverse proxy (`trustProxy`, or public host names) counts as beyond loopback even
 *   on 127.0.0.1: the proxy brings the network to it.
 */
import { existsSync } from "node:fs";
import { isIPv4 } from "node:net";

import { PrepaidLedgerError } from "../../errors.js";
import { SignInGate, type GateOptions } from "./gate.js";
import { AuthStore } from "./store.js";

/** The auth file and how to run the wall (see {@link SignInGate}). */
export interface AuthOptions extends Omit<GateOptions, "store"> {
  /** The auth file (src/dashboard/auth/store.ts). */
  file: string;
  /** Fail if the file is missing (it was named explicitly), rather than serve loopback without sign-in. */
  mustExist?: boolean;
}

/** Whether `host` is a loopback address (or `localhost`): only this machine can connect. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || (isIPv4(h) && h.startsWith("127.")) || /^::ffff:127\./.test(h);
}

/**
 * The sign-in wall for a dashboard listening on `host`, or undefined when it serves without one.
 * `proxied`: it answers to public host names, so a reverse proxy may forward the network to it.
 * The caller closes the returned store when the dashboard stops.
 *
 * @throws PrepaidLedgerError `INVALID_CONFIG` beyond loopback without an account;
 *   `INVALID_ARGUMENT` if a named auth file is missing
 */
export function openGate(host: string, auth: AuthOptions | undefined, proxied = false): { gate: SignInGate; store: AuthStore } | undefined {
  const loopback = isLoopback(host) && !proxied && auth?.trustProxy !== true;
  const refuse = (file: string | undefined) =>
    new PrepaidLedgerError(
      "INVALID_CONFIG",
      "refusing to serve the dashboard beyond loopback without sign-in: create an account first (`prepaid users add NAME --role analyst`)",
      { details: { host, proxied: proxied || auth?.trustProxy === true, auth: file ?? null } },
    );
  if (auth === undefined || !existsSync(auth.file)) {
    if (!loopback) throw refuse(auth?.file);
    if (auth?.mustExist) AuthStore.open(auth.file); // throws: no auth file at this path
    return undefined;
  }
  const store = AuthStore.open(auth.file);
  if (store.accountCount() === 0) {
    store.close();
    if (loopback) return undefined;
    throw refuse(auth.file);
  }
  return { gate: new SignInGate({ ...auth, store }), store };
}
