/**
 * What a command is (its name, help and run function) and what it runs with (the parsed
 * arguments, the settings, the output streams). Commands write through the context, never to
 * `process` directly, so `main()` can run them in-process with captured streams.
 */
import type { OptionSpecs, ParsedArgs } from "./args.js";
import type { CliConfigValues } from "./config.js";

/** A stream the CLI writes to; a TTY gets a progress bar. */
export type Output = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** A stream the CLI reads a password from; a TTY is switched to raw mode so nothing is echoed. */
export type Input = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

/** The process's streams and environment, or test doubles of them. */
export interface CliIO {
  stdout: Output;
  stderr: Output;
  /** Where `prepaid users` reads a password (without echo on a TTY); the process's stdin by default. */
  stdin?: Input;
  env: NodeJS.ProcessEnv;
  /** Folder relative paths are resolved against (default `process.cwd()`). */
  cwd?: string;
  /**
   * Stops `sync --follow` and `serve` when aborted. By default they stop on SIGINT or SIGTERM
   * (a second signal exits at once).
   */
  stop?: AbortSignal;
}

/** Everything a command runs with. */
export interface Context {
  io: CliIO;
  cwd: string;
  args: ParsedArgs;
  /** The config file's settings (empty without one). */
  config: CliConfigValues;
  /** The index file, absolute: `--db`, else the config file's `db`, else ./prepaid-index.sqlite. */
  db: string;
  json: boolean;
  quiet: boolean;
  /** Writes to stdout, waiting when the stream is full (exports of millions of rows). */
  write(text: string): Promise<void>;
  /** Writes one JSON document (bigints as strings) to stdout. */
  writeJson(value: unknown): Promise<void>;
  /** A line for people on stderr; a `{ "notice": … }` JSON line with --json; nothing with --quiet. */
  notice(line: string): void;
  /** A value that must never appear in any output (the regulator key): errors are redacted. */
  addSecret(value: string): void;
  /** Aborted on SIGINT/SIGTERM (or by `io.stop`); listening starts with the first call. */
  stopSignal(): AbortSignal;
}

/** One `prepaid` command. */
export interface Command {
  name: string;
  /** Positional arguments, in order (`["id"]` for `merchant <id>`). */
  positionals: readonly string[];
  /** One line for the top-level help. */
  summary: string;
  /** A paragraph or two for the command's own help. */
  description: string;
  options: OptionSpecs;
  /** Example invocations, each with a comment. */
  examples: readonly string[];
  /** Runs the command; resolves with the exit code. Throws PrepaidLedgerError on failure. */
  run(ctx: Context): Promise<number>;
}
