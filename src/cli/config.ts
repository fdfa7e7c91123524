/**
 * Where the command line's settings come from: flags, then the optional JSON config file
 * (`prepaid.config.json` in the working directory, or `--config FILE`), then defaults. The
 * regulator's private key is never a flag or a file setting (a command line lands in shell
 * history and `ps`, a config file gets shared): it comes from the environment variable
 * `PREPAID_REGULATOR_KEY` or from a file of its own named by `--key-file`, and no message ever
 * repeats it.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

import { z } from "zod";

import { addressSchema, parseConfig, privateKeySchema } from "../config.js";
import { PrepaidLedgerError, isError } from "../errors.js";
import { RiskConfig } from "../indexer/risk.js";
import { isPostgresUrl } from "../indexer/store/database.js";

/** The config file looked for in the working directory when `--config` is not given. */
export const CONFIG_FILE = "prepaid.config.json";
/**
 * Where the index is: a PostgreSQL URL as it is, a file's path made absolute against `base` (the
 * working folder for `--db`, the config file's folder for its `db`).
 */
export function indexLocation(base: string, location: string): string {
  return isPostgresUrl(location) ? location : resolve(base, location);
}

/** The index file when neither `--db` nor the config file names one. */
export const DEFAULT_DB = "prepaid-index.sqlite";
/** The environment variable holding the regulator's private key (hex). */
export const KEY_ENV = "PREPAID_REGULATOR_KEY";

const block = z.number().int().min(0);

/** The config file: every field optional, unknown fields refused (a typo must not be ignored). */
export const CliConfigFile = z.strictObject({
  /** JSON-RPC URL of a node of the ledger's chain. */
  rpc: z.url({ protocol: /^https?$/, error: "expected an http(s) URL" }).optional(),
  ledger: addressSchema.optional(),
  quorum: addressSchema.optional(),
  /** The index file; a relative path is relative to the config file's folder. */
  db: z.string().min(1).optional(),
  /** The dashboard's auth file (accounts, sessions, audit log); relative as `db`. */
  auth: z.string().min(1).optional(),
  confirmations: block.optional(),
  fromBlock: block.optional(),
  maxBlockRange: z.number().int().min(1).optional(),
  /** Seconds one JSON-RPC call may take (`--rpc-timeout`). */
  rpcTimeout: z.number().int().min(1).max(600).optional(),
  /** A block explorer's transaction page for `prepaid serve`, `{tx}` for the hash (`--explorer`). */
  explorer: z
    .url({ protocol: /^https?$/, error: "expected an http(s) URL" })
    .refine((u) => u.includes("{tx}"), { error: "expected {tx} where the transaction hash goes, e.g. https://etherscan.io/tx/{tx}" })
    .optional(),
  risk: RiskConfig.optional(),
});
export type CliConfigValues = z.output<typeof CliConfigFile>;

/** Names a key may hide under; the file is refused if it has one (before any other check). */
const KEY_FIELDS = /key|secret|mnemonic/i;

/**
 * Reads the config file: `path` if given (it must exist), else `prepaid.config.json` in `cwd`
 * if there is one, else no settings. A relative `db` becomes absolute against the file's folder.
 *
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` (a named file is missing), `INVALID_CONFIG`
 *   (not JSON, a wrong field by path, or a private key in the file)
 */
export function loadConfigFile(path: string | undefined, cwd: string): CliConfigValues {
  const file = resolve(cwd, path ?? CONFIG_FILE);
  if (!existsSync(file)) {
    if (path === undefined) return {};
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "the config file does not exist", { details: { path: file } });
  }
  let input: unknown;
  try {
    input = JSON.parse(readFileSync(file, "utf8"));
  } catch (cause) {
    throw new PrepaidLedgerError("INVALID_CONFIG", "the config file is not valid JSON", { details: { path: file }, cause });
  }
  refuseKeyFields(input, file);
  let config: CliConfigValues;
  try {
    config = parseConfig(CliConfigFile, input, "config file");
  } catch (e) {
    if (isError(e, "INVALID_CONFIG")) e.details.path = file;
    throw e;
  }
  const relative = (path: string | undefined) => (path === undefined ? undefined : resolve(dirname(file), path));
  return { ...config, ...(config.db !== undefined && { db: indexLocation(dirname(file), config.db) }), ...(config.auth !== undefined && { auth: relative(config.auth) }) };
}

function refuseKeyFields(input: unknown, file: string): void {
  if (input === null || typeof input !== "object") return;
  const fields = Object.keys(input).filter((k) => KEY_FIELDS.test(k));
  if (fields.length > 0) {
    throw new PrepaidLedgerError(
      "INVALID_CONFIG",
      `a private key never goes in the config file: remove it and use ${KEY_ENV} or --key-file`,
      { details: { path: file, fields } },
    );
  }
}

/** What {@link loadRegulatorKey} found: the key, and where from (for messages, never the key). */
export interface RegulatorKey {
  privateKey: string;
  source: string;
}

/**
 * The regulator's private key, from `--key-file` if given, else from `PREPAID_REGULATOR_KEY`,
 * else none (records are then indexed without being decrypted). `warn` receives a notice when
 * the key file can be read by other users.
 *
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` (the key file cannot be read) or `INVALID_CONFIG`
 *   (the value is not a private key); neither message contains the value
 */
export function loadRegulatorKey(
  keyFile: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
  warn: (line: string) => void,
): RegulatorKey | undefined {
  if (keyFile !== undefined) {
    const path = resolve(cwd, keyFile);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (cause) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "the key file cannot be read", { details: { path }, cause });
    }
    if ((statSync(path).mode & 0o077) !== 0 && process.platform !== "win32") {
      warn(`warning: ${path} can be read by other users; chmod 600 it`);
    }
    return checkedKey(text.trim(), `--key-file ${path}`);
  }
  const value = env[KEY_ENV];
  return value === undefined || value === "" ? undefined : checkedKey(value.trim(), KEY_ENV);
}

function checkedKey(value: string, source: string): RegulatorKey {
  if (!privateKeySchema.safeParse(value).success) {
    throw new PrepaidLedgerError("INVALID_CONFIG", "the regulator key is not a 32-byte hex private key", { details: { source } });
  }
  return { privateKey: value.startsWith("0x") ? value : `0x${value}`, source };
}
