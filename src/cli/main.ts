/**
 * `prepaid`, the regulator's command line: finds the command, parses its flags, loads the config
 * file, runs it, and turns whatever it threw into a message and an exit code (src/cli/exit.ts).
 * `main()` returns the exit code instead of exiting, so tests can run it in-process too;
 * bin/prepaid.mjs is the executable.
 */
import { createRequire } from "node:module";
import { resolve } from "node:path";

import { PrepaidLedgerError, isError } from "../errors.js";
import { parseCommandArgs, positionals, stringOption, type ParsedArgs } from "./args.js";
import type { CliIO, Command, Context, Output } from "./command.js";
import { auditCommand } from "./commands/audit.js";
import { exportCommand } from "./commands/export.js";
import { receiptCommand } from "./commands/receipt.js";
import { accountCommand, alertsCommand, merchantCommand, merchantsCommand, statusCommand } from "./commands/reports.js";
import { serveCommand } from "./commands/serve.js";
import { syncCommand } from "./commands/sync.js";
import { usersCommand } from "./commands/users.js";
import { DEFAULT_DB, indexLocation, loadConfigFile } from "./config.js";
import { exitCodeOf } from "./exit.js";
import { toJson } from "./format.js";
import { commandHelp, topHelp, usageLine } from "./help.js";
import { didYouMean } from "./suggest.js";

/** Every command, in the order the help lists them. */
export const COMMANDS: readonly Command[] = [
  syncCommand,
  statusCommand,
  merchantsCommand,
  merchantCommand,
  accountCommand,
  alertsCommand,
  exportCommand,
  serveCommand,
  usersCommand,
  auditCommand,
  receiptCommand,
];

/**
 * The process's own streams and environment. A reader that stops early (`prepaid export records
 * | head`) closes the pipe: that ends the command quietly instead of with an EPIPE stack trace.
 */
function processIO(): CliIO {
  process.stdout.once("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    process.exit(0);
  });
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

/** Writes `text`, waiting for the stream to drain when its buffer is full. */
function writeTo(stream: Output, text: string): Promise<void> {
  return new Promise((done) => (stream.write(text) ? done() : stream.once("drain", () => done())));
}

/**
 * SIGINT/SIGTERM as an AbortSignal, listened to only once a command asks (`sync --follow`,
 * `serve`): the first signal stops the command cleanly, a second one exits at once.
 */
class StopSignals {
  private controller: AbortController | undefined;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (this.controller?.signal.aborted) process.exit(128 + (signal === "SIGINT" ? 2 : 15));
    this.controller?.abort();
  };

  signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      process.on("SIGINT", this.onSignal).on("SIGTERM", this.onSignal);
    }
    return this.controller.signal;
  }

  dispose(): void {
    if (this.controller !== undefined) process.off("SIGINT", this.onSignal).off("SIGTERM", this.onSignal);
  }
}

/** The values that must never be printed, and a function that blanks them out of a text. */
class Secrets {
  private readonly values: string[] = [];

  add(value: string): void {
    this.values.push(value, value.replace(/^0x/i, ""));
  }

  redact(text: string): string {
    return this.values.reduce((t, v) => (v.length >= 16 ? t.split(v).join("[redacted]") : t), text);
  }
}

function context(io: CliIO, args: ParsedArgs, stops: StopSignals, secrets: Secrets): Context {
  const cwd = io.cwd ?? process.cwd();
  const config = loadConfigFile(stringOption(args, "config"), cwd);
  const json = args.values.json === true;
  const quiet = args.values.quiet === true;
  return {
    io,
    cwd,
    args,
    config,
    db: indexLocation(cwd, stringOption(args, "db") ?? config.db ?? DEFAULT_DB),
    json,
    quiet,
    write: (text) => writeTo(io.stdout, text),
    writeJson: (value) => writeTo(io.stdout, toJson(value) + "\n"),
    notice(line) {
      if (!quiet) io.stderr.write(secrets.redact(json ? toJson({ notice: line }, 0) : line) + "\n");
    },
    addSecret: (value) => secrets.add(value),
    stopSignal: () => io.stop ?? stops.signal(),
  };
}

/** Parses a command's arguments; a usage error names the command's usage line. */
function parseFor(command: Command, argv: readonly string[]): ParsedArgs {
  try {
    const args = parseCommandArgs(argv, command.options);
    if (args.values.help !== true) positionals(args, command.positionals);
    return args;
  } catch (e) {
    if (isError(e, "INVALID_ARGUMENT")) e.details.usage = usageLine(command);
    throw e;
  }
}

/** `prepaid merchant <id> [options]` → `prepaid merchant --help`; `prepaid <command> …` → `prepaid --help`. */
const helpCommand = (usage: string) => [...usage.split(" ").slice(0, 2).filter((w) => !w.startsWith("<")), "--help"].join(" ");

/** The error as people read it: the message, each detail on a line, and a hint for usage errors. */
function errorText(e: unknown, env: NodeJS.ProcessEnv): string {
  if (!isError(e)) {
    const detail = env.PREPAID_DEBUG ? `\n${e instanceof Error ? e.stack : String(e)}` : "\n(set PREPAID_DEBUG=1 for the stack trace)";
    return `internal error: ${e instanceof Error ? e.message : String(e)}${detail}\n`;
  }
  const { usage, issues, ...rest } = e.details;
  const lines = [`error: ${e.shortMessage} [${e.code}]`];
  if (Array.isArray(issues)) for (const i of issues as { path: string; message: string }[]) lines.push(`  ${i.path}: ${i.message}`);
  for (const [k, v] of Object.entries(rest)) lines.push(`  ${k}: ${typeof v === "string" ? v : toJson(v, 0)}`);
  if (e.cause instanceof Error && e.code !== "INVALID_ARGUMENT") lines.push(`  cause: ${e.cause.message.split("\n")[0]}`);
  if (typeof usage === "string") lines.push(`usage: ${usage}`, `Run \`${helpCommand(usage)}\` for help.`);
  if (env.PREPAID_DEBUG && e.stack !== undefined) lines.push(e.stack);
  return lines.join("\n") + "\n";
}

function errorJson(e: unknown): string {
  const error = isError(e)
    ? { code: e.code, message: e.shortMessage, details: e.details }
    : { code: "INTERNAL", message: e instanceof Error ? e.message : String(e), details: {} };
  return toJson({ error }, 0) + "\n";
}

function version(): string {
  const pkg = createRequire(import.meta.url)("../../package.json") as { version: string };
  return `prepaid ${pkg.version}\n`;
}

async function dispatch(argv: readonly string[], io: CliIO, stops: StopSignals, secrets: Secrets): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const topic = COMMANDS.find((c) => c.name === rest[0]);
    await writeTo(io.stdout, topic === undefined ? topHelp(COMMANDS) : commandHelp(topic));
    return 0;
  }
  if (name === "--version" || name === "-V") {
    await writeTo(io.stdout, version());
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    const what = name.startsWith("-")
      ? `expected a command before ${name}`
      : `unknown command "${name}"${didYouMean(name, COMMANDS.map((c) => c.name), (c) => `"${c}"`)}`;
    throw new PrepaidLedgerError("INVALID_ARGUMENT", what, { details: { usage: "prepaid <command> [options]" } });
  }
  const args = parseFor(command, rest);
  if (args.values.help === true) {
    await writeTo(io.stdout, commandHelp(command));
    return 0;
  }
  return command.run(context(io, args, stops, secrets));
}

/**
 * Runs the `prepaid` command line.
 *
 * @param argv - the arguments after the program name (`["merchants", "--json"]`)
 * @param io - streams, environment and working folder; the process's own by default
 * @returns the exit code (see `prepaid --help` and src/cli/exit.ts)
 */
export async function main(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  const stops = new StopSignals();
  const secrets = new Secrets();
  try {
    return await dispatch(argv, io, stops, secrets);
  } catch (e) {
    const json = argv.includes("--json");
    io.stderr.write(secrets.redact(json ? errorJson(e) : errorText(e, io.env)));
    return exitCodeOf(e);
  } finally {
    stops.dispose();
  }
}
