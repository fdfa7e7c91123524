/**
 * Prints a Besu QBFT chain's validator set and what it can lose (docs/QBFT.md).
 *
 *   node --import tsx scripts/qbft/health.ts <rpcUrl> [--block latest|earliest|N] [--timeout ms]
 *
 * Exits 0 when the node answered, 2 on an error (its message on stderr): unreachable node,
 * not a QBFT node or QBFT API not enabled, malformed answer.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

import { PrepaidLedgerError } from "../../src/errors.js";
import { qbftHealth, type QbftBlockTag, type QbftHealth } from "../../src/deploy/health.js";

/** What the command line asks for. */
export interface HealthCommand {
  url: string;
  blockTag: QbftBlockTag;
  timeoutMs: number;
}

/**
 * Parses the command line (no I/O).
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for a missing URL, an unknown flag or a bad timeout
 */
export function parseHealthArgs(argv: readonly string[]): HealthCommand {
  let parsed: { values: Record<string, string | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: { block: { type: "string" }, timeout: { type: "string" } },
    });
  } catch (cause) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", (cause as Error).message, { cause });
  }
  if (parsed.positionals.length !== 1) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "usage: health.ts <rpcUrl> [--block latest|earliest|N] [--timeout ms]", {
      details: { positionals: parsed.positionals.length },
    });
  }
  const timeout = parsed.values.timeout ?? "10000";
  if (!/^[1-9][0-9]*$/.test(timeout)) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "--timeout must be a positive number of milliseconds", {
      details: { timeout },
    });
  }
  return { url: parsed.positionals[0], blockTag: parsed.values.block ?? "latest", timeoutMs: Number(timeout) };
}

/** The health line: "block 120: 4 validators: tolerates 1 faulty or offline; …". */
export function formatHealth(health: QbftHealth): string {
  return `block ${health.blockNumber}: ${health.message} (quorum ${health.quorum})`;
}

/**
 * Runs the check and prints the result through `log` / `error`.
 * @returns the exit code: 0 healthy, 2 on an error
 */
export async function runHealth(
  argv: readonly string[],
  log: (line: string) => void = console.log,
  error: (line: string) => void = console.error,
): Promise<number> {
  try {
    const command = parseHealthArgs(argv);
    const health = await qbftHealth(command.url, command.blockTag, { timeoutMs: command.timeoutMs });
    log(formatHealth(health));
    for (const v of health.validators) log(`  ${v}`);
    return 0;
  } catch (e) {
    error(e instanceof PrepaidLedgerError ? e.message : String(e));
    return 2;
  }
}

// Run only as a command, not when a test imports the module.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await runHealth(process.argv.slice(2));
}
