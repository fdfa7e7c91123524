/**
 * What the main job leaves for the `prepaid` workbench: `prepaid.config.json` (the node when it
 * keeps running, the contracts, the index, the town's risk thresholds) and the demo regulator's
 * key in a file of its own (mode 0600; the CLI never takes a key from its config file). The key
 * is a demo key derived from a public label (day.ts DEMO_REGULATOR_KEY): it protects nothing.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { isAbsolute, join, relative } from "node:path";

import { CONFIG_FILE } from "../../src/cli/config.js";
import { DEMO_REGULATOR_KEY } from "./day.js";
import { DEMO_RISK } from "./town.js";

/** The demo regulator's key file the main job writes beside the config file. */
export const DEMO_KEY_FILE = "demo-regulator.key";

interface NetworkConnection {
  networkName: string;
  networkConfig: { type: string; url?: unknown };
}

/** The JSON-RPC URL of an HTTP network (a node that outlives the job), else undefined. */
async function rpcUrl(connection: NetworkConnection): Promise<string | undefined> {
  const { networkConfig } = connection;
  if (networkConfig.type !== "http" || networkConfig.url === undefined) return undefined;
  const url = networkConfig.url as string | { get(): Promise<string> };
  return typeof url === "string" ? url : await url.get();
}

/**
 * Writes `prepaid.config.json` and {@link DEMO_KEY_FILE} into `dir` (replacing earlier ones);
 * returns their paths. The index path is written relative to `dir` when it is inside it.
 */
export async function writeDemoFiles(
  connection: NetworkConnection,
  dir: string,
  contracts: { ledger: string; quorum: string; db: string },
): Promise<{ config: string; key: string }> {
  const rpc = await rpcUrl(connection);
  const db = relative(dir, contracts.db);
  const config = {
    ...(rpc === undefined ? {} : { rpc }),
    ledger: contracts.ledger,
    quorum: contracts.quorum,
    db: db.startsWith("..") || isAbsolute(db) ? contracts.db : db,
    risk: DEMO_RISK,
  };
  const configPath = join(dir, CONFIG_FILE);
  writeFileSync(configPath, JSON.stringify(config, null, 2) + "\n");
  const keyPath = join(dir, DEMO_KEY_FILE);
  writeFileSync(keyPath, DEMO_REGULATOR_KEY + "\n", { mode: 0o600 });
  chmodSync(keyPath, 0o600); // an existing file keeps its mode on write: set it
  return { config: configPath, key: keyPath };
}
