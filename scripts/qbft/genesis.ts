/**
 * Writes a Besu QBFT genesis file and prints the matching Hardhat network entry (docs/QBFT.md).
 *
 *   node --import tsx scripts/qbft/genesis.ts --validators 0x..,0x..,0x..,0x.. --chain-id 1337 \
 *     --evm london --out genesis.json [--alloc 0xaddr=balance,...] [--url http://10.0.0.5:8545]
 *
 * Options: --block-period (s, default 5), --epoch-length (default 30000), --request-timeout (s,
 * default 10), --gas-limit (default 30000000), --network (its name in the printed Hardhat entry,
 * default "besu"), --force (overwrite --out). Balances are wei, decimal or 0x-hex.
 * Exits 0 when written, 2 on an error (its message on stderr).
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

import { PrepaidLedgerError } from "../../src/errors.js";
import {
  QBFT_EVM_VERSIONS,
  describeFaultTolerance,
  qbftGenesis,
  type QbftEvmVersion,
  type QbftGenesis,
  type QbftGenesisOptionsInput,
} from "../../src/deploy/qbft.js";

/** What the command line asks for. */
export interface GenesisCommand {
  options: QbftGenesisOptionsInput;
  out: string;
  force: boolean;
  /** The RPC URL for the Hardhat network entry. */
  url: string;
  /** The network's name in the Hardhat entry. */
  networkName: string;
}

/** A number from the command line; anything else goes through as-is for the schema to report. */
function numberOrRaw(value: string | undefined): number | string | undefined {
  if (value === undefined) return undefined;
  return /^[0-9]+$/.test(value) || /^-[0-9]+$/.test(value) ? Number(value) : value;
}

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * Parses the command line (no I/O).
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for an unknown flag, a missing required one or a
 *   malformed `--alloc` entry; field values are checked later by `qbftGenesis` (INVALID_CONFIG)
 */
export function parseGenesisArgs(argv: readonly string[]): GenesisCommand {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        validators: { type: "string" },
        "chain-id": { type: "string" },
        evm: { type: "string" },
        out: { type: "string" },
        alloc: { type: "string" },
        "block-period": { type: "string" },
        "epoch-length": { type: "string" },
        "request-timeout": { type: "string" },
        "gas-limit": { type: "string" },
        url: { type: "string" },
        network: { type: "string" },
        force: { type: "boolean" },
      },
    }));
  } catch (cause) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", (cause as Error).message, { cause });
  }
  const str = (key: string) => values[key] as string | undefined;
  for (const required of ["validators", "chain-id", "out"]) {
    if (str(required) === undefined) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", `--${required} is required`, { details: { flag: required } });
    }
  }
  const alloc: Record<string, string> = {};
  for (const entry of list(str("alloc"))) {
    const at = entry.indexOf("=");
    if (at <= 0 || at === entry.length - 1) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", "an --alloc entry must be address=balance", { details: { entry } });
    }
    alloc[entry.slice(0, at)] = entry.slice(at + 1);
  }
  const options: Record<string, unknown> = {
    chainId: numberOrRaw(str("chain-id")),
    validators: list(str("validators")),
    evmVersion: str("evm"),
    blockPeriodSeconds: numberOrRaw(str("block-period")),
    epochLength: numberOrRaw(str("epoch-length")),
    requestTimeoutSeconds: numberOrRaw(str("request-timeout")),
    gasLimit: str("gas-limit"),
    alloc,
  };
  for (const key of Object.keys(options)) if (options[key] === undefined) delete options[key];
  return {
    options: options as QbftGenesisOptionsInput,
    out: str("out") as string,
    force: values.force === true,
    url: str("url") ?? "http://127.0.0.1:8545",
    networkName: str("network") ?? "besu",
  };
}

/**
 * The Hardhat 3 network entry for the chain, to paste into hardhat.config.ts `networks`, with
 * the build profile to compile with (hardhat.config.ts has `london`, `shanghai` and `cancun`;
 * paris code is London's, opcode for opcode).
 */
export function hardhatNetworkSnippet(networkName: string, url: string, chainId: number, evm: QbftEvmVersion): string {
  const key = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(networkName) ? networkName : JSON.stringify(networkName);
  const secret = `${networkName.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_PRIVATE_KEY`;
  const profile = evm === "paris" ? "london" : evm;
  return [
    `// hardhat.config.ts → networks. Compile for evmVersion "${QBFT_EVM_VERSIONS[evm].solcEvmVersion}": --build-profile ${profile}`,
    `${key}: {`,
    `  type: "http",`,
    `  chainType: "l1",`,
    `  url: ${JSON.stringify(url)},`,
    `  chainId: ${chainId},`,
    `  accounts: [configVariable(${JSON.stringify(secret)})],`,
    `},`,
  ].join("\n");
}

/** What `runGenesis` did. */
export interface GenesisResult {
  genesis: QbftGenesis;
  /** Absolute path of the file written. */
  path: string;
  snippet: string;
  /** e.g. "4 validators: tolerates 1 faulty or offline; the chain stalls if 2 fail". */
  faultLine: string;
}

/**
 * Builds the genesis, writes it to `--out` (refusing to replace a file without --force) and
 * prints the Hardhat entry and the fault-tolerance line through `log`.
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` (command line, file exists), `INVALID_CONFIG`
 *   (every wrong value, by path)
 */
export function runGenesis(argv: readonly string[], log: (line: string) => void = console.log): GenesisResult {
  const command = parseGenesisArgs(argv);
  const genesis = qbftGenesis(command.options);
  const path = resolve(command.out);
  try {
    writeFileSync(path, JSON.stringify(genesis, null, 2) + "\n", { flag: command.force ? "w" : "wx" });
  } catch (cause) {
    const exists = (cause as { code?: string }).code === "EEXIST";
    throw new PrepaidLedgerError(
      "INVALID_ARGUMENT",
      exists ? "the --out file exists (pass --force to replace it)" : "cannot write the --out file",
      { details: { path }, cause },
    );
  }
  const evm = (command.options.evmVersion ?? "london") as QbftEvmVersion;
  const chainId = genesis.config.chainId as number;
  const snippet = hardhatNetworkSnippet(command.networkName, command.url, chainId, evm);
  const faultLine = describeFaultTolerance(command.options.validators.length).message;
  log(`Wrote ${path} (chain ${chainId}, ${evm}, validators sorted ascending).`);
  log(faultLine);
  log("");
  log(snippet);
  return { genesis, path, snippet, faultLine };
}

/** The command: exit 0 when written, 2 on an error. */
export function main(argv: readonly string[]): number {
  try {
    runGenesis(argv);
    return 0;
  } catch (e) {
    console.error(e instanceof PrepaidLedgerError ? e.message : String(e));
    return 2;
  }
}

// Run only as a command, not when a test imports the module.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
