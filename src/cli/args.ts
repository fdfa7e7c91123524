/**
 * Command-line arguments: each command declares its options once (type, value name, help line),
 * and the same declaration drives `node:util` parseArgs (strict: an unknown flag is a usage
 * error) and the command's `--help`.
 */
import { parseArgs } from "node:util";

import { PrepaidLedgerError } from "../errors.js";
import { didYouMean } from "./suggest.js";

/** One option of a command. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** The value's name in help (`FILE`, `N`, `URL`); string options only. */
  value?: string;
  help: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The options every command accepts. */
export const COMMON_OPTIONS: OptionSpecs = {
  db: {
    type: "string",
    value: "FILE|URL",
    help: "the index: an SQLite file (default ./prepaid-index.sqlite, or \"db\" in the config file) or a postgresql:// URL",
  },
  config: { type: "string", value: "FILE", help: "read settings from FILE (default ./prepaid.config.json, if present)" },
  json: { type: "boolean", help: "machine output: one JSON document on stdout, errors as JSON on stderr" },
  quiet: { type: "boolean", short: "q", help: "no progress or notices on stderr" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

/** Parsed arguments: option values by long name, and the positional arguments. */
export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * Parses `argv` (without the command name) against `options` plus {@link COMMON_OPTIONS}.
 *
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for an unknown flag, a missing value, or a
 *   value given to a boolean flag
 */
export function parseCommandArgs(argv: readonly string[], options: OptionSpecs): ParsedArgs {
  const specs: OptionSpecs = { ...COMMON_OPTIONS, ...options };
  const config = Object.fromEntries(
    Object.entries(specs).map(([name, s]) => [name, s.short === undefined ? { type: s.type } : { type: s.type, short: s.short }]),
  );
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options: config, allowPositionals: true, strict: true });
    return { values: values as ParsedArgs["values"], positionals };
  } catch (cause) {
    let message = cause instanceof Error ? cause.message.split(". ")[0] : String(cause);
    const unknown = (cause as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" ? /'--?([^'=]+)/.exec(message)?.[1] : undefined;
    if (unknown !== undefined) message += didYouMean(unknown, Object.keys(specs), (name) => `--${name}`);
    throw new PrepaidLedgerError("INVALID_ARGUMENT", message, { cause });
  }
}

/** A string option's value, or undefined. */
export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === "string" ? v : undefined;
}

/**
 * An integer option (`--from-block 120`), at least `min`, or undefined when absent.
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` naming the flag
 */
export function intOption(args: ParsedArgs, name: string, min = 0): number | undefined {
  const v = stringOption(args, name);
  return v === undefined ? undefined : integer(v, `--${name}`, min);
}

/**
 * A decimal integer from the command line, at least `min` and at most 2^53 - 1.
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` naming `what`
 */
export function integer(text: string, what: string, min = 0): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", `${what} expects a whole number of at least ${min}`, {
      details: { argument: what, value: text },
    });
  }
  return n;
}

/**
 * One option value out of a fixed list.
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` listing the allowed values
 */
export function choice<T extends string>(text: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(text)) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", `${what} must be one of: ${allowed.join(", ")}`, {
      details: { argument: what, value: text },
    });
  }
  return text as T;
}

/**
 * The positional arguments `names` declares (`merchant <id>`); a name ending in `?` is optional
 * (`users list`, `users add <name>`), and only trailing names may be.
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` naming what is missing or extra
 */
export function positionals(args: ParsedArgs, names: readonly string[]): string[] {
  const required = names.filter((n) => !n.endsWith("?")).length;
  if (args.positionals.length < required) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", `missing <${names[args.positionals.length]}>`);
  }
  if (args.positionals.length > names.length) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", `unexpected argument "${args.positionals[names.length]}"`);
  }
  return args.positionals;
}
