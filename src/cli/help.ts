/**
 * `--help` text, generated from the commands' declarations so it cannot drift from what the
 * parser accepts: the top-level page teaches the whole tool (commands, config file, key
 * handling, exit codes), each command's page its options and an example.
 */
import { COMMON_OPTIONS, type OptionSpecs } from "./args.js";
import type { Command } from "./command.js";
import { CONFIG_FILE, DEFAULT_DB, KEY_ENV } from "./config.js";
import { EXIT_CODES } from "./exit.js";

/** `<id>`, or `[name]` for an optional argument (declared as `name?`). */
const positionalText = (p: string) => (p.endsWith("?") ? `[${p.slice(0, -1)}]` : `<${p}>`);

/** `prepaid merchant <id> [options]` */
export function usageLine(command: Command): string {
  return ["prepaid", command.name, ...command.positionals.map(positionalText), "[options]"].join(" ");
}

function optionLines(options: OptionSpecs): string[] {
  const left = Object.entries(options).map(([name, s]) =>
    [s.short === undefined ? "    " : `-${s.short}, `, `--${name}`, s.value === undefined ? "" : ` ${s.value}`].join(""),
  );
  const width = Math.max(...left.map((l) => l.length));
  return Object.values(options).map((s, i) => `  ${left[i].padEnd(width)}  ${s.help}`);
}

/** The help page of one command. */
export function commandHelp(command: Command): string {
  const own = optionLines(command.options);
  return [
    `prepaid ${command.name}: ${command.summary}`,
    "",
    `Usage: ${usageLine(command)}`,
    "",
    command.description,
    "",
    ...(own.length > 0 ? ["Options:", ...own, ""] : []),
    "Options of every command:",
    ...optionLines(COMMON_OPTIONS),
    "",
    "Examples:",
    ...command.examples.map((e) => `  ${e}`),
    "",
  ].join("\n");
}

/** The top-level help page. */
export function topHelp(commands: readonly Command[]): string {
  const names = commands.map((c) => [c.name, ...c.positionals.map(positionalText)].join(" "));
  const width = Math.max(...names.map((n) => n.length));
  const codes = Object.values(EXIT_CODES).map((e) => `  ${String(e.code).padStart(2)}  ${e.meaning}`);
  return `prepaid: the regulator's workbench for a PrepaidLedger

Indexes the ledger into a local SQLite file, decrypting every record with the regulator's key
and checking it against its commitment and the contract's books; every other command answers
from that file, without touching the chain.

Usage: prepaid <command> [options]
       prepaid <command> --help
       prepaid --version

Commands:
${commands.map((c, i) => `  ${names[i].padEnd(width)}  ${c.summary}`).join("\n")}

Options of every command:
${optionLines(COMMON_OPTIONS).join("\n")}

Getting started:
  export ${KEY_ENV}=0x…    # the regulator's private key (see below)
  prepaid sync --rpc https://node.example --ledger 0x… --quorum 0x…
  prepaid merchants
  prepaid alerts --exit-code && echo "no alerts"

Config file: ./${CONFIG_FILE}, or --config FILE. Flags override it. Every field is optional:
  { "rpc": "https://node.example", "ledger": "0x…", "quorum": "0x…",
    "db": "${DEFAULT_DB}", "confirmations": 12, "fromBlock": 0, "maxBlockRange": 10000,
    "risk": { "maxMerchantLiability": 50000000, "maxCardBalance": 500000 } }
  A relative "db" is relative to the config file; a postgresql:// URL puts the index on PostgreSQL
  (password from PGPASSWORD or ~/.pgpass). Risk thresholds are in fen (docs/RISK.md).

Regulator key: never on the command line or in the config file (shell history, ps, shared
files). Give it to \`sync\` as the environment variable ${KEY_ENV}, or with
--key-file FILE (a file holding the hex key; chmod 600 it). No output or error message ever
contains it. Without a key, sync indexes the records still encrypted.

Output: amounts in yuan (¥1,234.56), times in this machine's time zone (set TZ to change it).
With --json and in JSON exports: amounts in integer fen, times in Unix seconds. CSV exports:
yuan with two decimals, times in ISO 8601 UTC.

Exit codes:
${codes.join("\n")}
`;
}
