/**
 * Runs one supervisor node (src/supervisor/node.ts) until SIGINT/SIGTERM, printing its status.
 *
 *   SUPERVISOR_PRIVATE_KEY=0x… node --import tsx scripts/supervisor.ts \
 *     --rpc http://127.0.0.1:8545 --ledger 0x… --quorum 0x… --index 0 --port 7701 \
 *     --peers http://127.0.0.1:7702,http://127.0.0.1:7703,http://127.0.0.1:7704 \
 *     [--state-dir .supervisor/0] [--every 1000] [--interval-ms 1000] [--poll-ms 200] [--status-ms 1000] \
 *     [--confirmations N] [--rpc-timeout 15000]
 *
 * --confirmations: blocks a mark must have on top of it before this node signs it (default 0 on
 * local dev chains 31337/1337, 12 elsewhere); --rpc-timeout: milliseconds one JSON-RPC call may take.
 *
 * Secrets come from the environment only, never from a flag (flags show in `ps`):
 * SUPERVISOR_PRIVATE_KEY (signs checkpoints, pays for marks and finalizations) and, on the node
 * that holds it, REGULATOR_DECRYPTION_KEY (then every record's commitment is checked too).
 * Exit codes: 0 stopped by a signal, 2 bad configuration.
 */
import { pathToFileURL } from "node:url";

import { FetchRequest, JsonRpcProvider, Wallet } from "ethers";

import { isError } from "../src/errors.js";
import { DEFAULT_SUPERVISOR_RPC_TIMEOUT_MS } from "../src/supervisor/config.js";
import { serveSupervisor } from "../src/supervisor/http.js";
import { SupervisorNode, type SupervisorConfigInput, type SupervisorStatus } from "../src/supervisor/node.js";

export interface SupervisorArgs {
  rpc: string;
  port: number;
  statusMs: number;
  config: Omit<SupervisorConfigInput, "decryptionKey">;
}

/** Parses the command line; throws an Error naming the flag for anything unknown or missing. */
export function parseArgs(argv: string[]): SupervisorArgs {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) throw new Error(`expected --flag value, got "${argv[i]}"`);
    flags.set(argv[i].slice(2), argv[i + 1]);
  }
  const known = ["rpc", "ledger", "quorum", "index", "port", "peers", "state-dir", "every", "interval-ms", "poll-ms", "status-ms", "fault", "from-block", "stagger-ms", "confirmations", "rpc-timeout"];
  for (const k of flags.keys()) if (!known.includes(k)) throw new Error(`unknown flag --${k}`);
  const need = (k: string) => {
    const v = flags.get(k);
    if (v === undefined) throw new Error(`missing --${k}`);
    return v;
  };
  const num = (k: string) => {
    if (!flags.has(k)) return undefined;
    const v = Number(flags.get(k));
    if (!Number.isFinite(v)) throw new Error(`--${k}: expected a number, got "${flags.get(k)}"`);
    return v;
  };
  const index = Number(need("index"));
  return {
    rpc: need("rpc"),
    port: Number(need("port")),
    statusMs: num("status-ms") ?? 1_000,
    config: {
      ledger: need("ledger"),
      quorum: need("quorum"),
      index,
      peers: flags.get("peers")?.split(",").filter(Boolean) ?? [],
      stateDir: flags.get("state-dir") ?? `.supervisor/${index}`,
      checkpointEvery: num("every"),
      checkpointIntervalMs: num("interval-ms"),
      pollMs: num("poll-ms"),
      staggerMs: num("stagger-ms"),
      fromBlock: num("from-block"),
      confirmations: num("confirmations"),
      rpcTimeoutMs: num("rpc-timeout"),
      fault: flags.get("fault") as SupervisorConfigInput["fault"],
    },
  };
}

/**
 * One status line: head followed (and, from nodes that report them, the settled block and the
 * confirmations), last signed, last final, peers seen, reorgs seen.
 */
export function formatStatus(s: SupervisorStatus): string {
  const settled = s.confirmations === undefined ? "" : ` (settled ${s.settledBlock ?? "?"}, ${s.confirmations} confirmation${s.confirmations === 1 ? "" : "s"})`;
  const reorgs = s.reorgs === undefined ? "" : ` | reorgs ${s.reorgs}${s.lastReorg ? ` (last: ${s.lastReorg})` : ""}`;
  return (
    `[supervisor ${s.index} ${s.address.slice(0, 10)}] rpc ${s.rpc} | block ${s.headBlock}${settled}, record ${s.recordsFollowed}` +
    ` | marked ${s.lastMarked} | signed ${s.lastSigned} | final ${s.lastFinal} | peers seen ${s.peersSeen}/${s.peers}${reorgs}` +
    (s.refusal ? ` | REFUSED: ${s.refusal}` : "") +
    (s.lastError ? ` | error: ${s.lastError}` : "")
  );
}

async function main(): Promise<void> {
  let args: SupervisorArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`supervisor: ${(e as Error).message}`);
    process.exit(2);
  }
  const key = process.env.SUPERVISOR_PRIVATE_KEY;
  if (key === undefined || key === "") {
    console.error("supervisor: set SUPERVISOR_PRIVATE_KEY (the supervisor's signing key) in the environment");
    process.exit(2);
  }
  // Every request to the node times out (ethers' default is 300 s); the node also bounds each call.
  const request = new FetchRequest(args.rpc);
  request.timeout = args.config.rpcTimeoutMs ?? DEFAULT_SUPERVISOR_RPC_TIMEOUT_MS;
  const provider = new JsonRpcProvider(request, undefined, { staticNetwork: true, pollingInterval: 100, batchMaxCount: 1, cacheTimeout: -1 });
  let node: SupervisorNode;
  for (;;) {
    try {
      node = await SupervisorNode.open(
        { ...args.config, decryptionKey: process.env.REGULATOR_DECRYPTION_KEY || undefined },
        new Wallet(key, provider),
      );
      break;
    } catch (e) {
      if (isError(e, "RPC_ERROR") || isError(e, "TIMEOUT")) {
        console.error(`supervisor: node unreachable at ${args.rpc}, retrying`);
        await new Promise((r) => setTimeout(r, 1_000));
        continue;
      }
      console.error(`supervisor: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(2);
    }
  }
  const server = await serveSupervisor(node, args.port);
  const timer = setInterval(() => console.log(formatStatus(node.status())), args.statusMs);
  const stop = () => {
    node.stop();
    clearInterval(timer);
    server.close();
    provider.destroy();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  console.log(`supervisor ${args.config.index} listening on 127.0.0.1:${args.port}`);
  await node.run();
  console.log(formatStatus(node.status()));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
