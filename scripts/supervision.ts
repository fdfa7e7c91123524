/**
 * `npm run supervision`: a local network of supervisors in one command. Starts a `hardhat node`
 * on a free 127.0.0.1 port, deploys a PrepaidLedger and a SupervisorQuorum (governor: dev account
 * 0; supervisors: dev accounts 10.., `--threshold` of them must sign), registers merchants,
 * starts one supervisor process per member (scripts/supervisor.ts; supervisor 0 also holds the
 * regulator's decryption key), then uploads merchant traffic through the Uploader for
 * `--duration` seconds while printing the supervisors' status lines and one line per finalized
 * checkpoint. Ends with a summary and stops every process it started (also on Ctrl-C).
 *
 *   npm run supervision -- [--supervisors 4] [--threshold 3] [--duration 20] [--interval-ms 1000] [--every 1000]
 *
 * Exit codes: 0 done, 1 failed (or no checkpoint became final), 2 bad flags, 130 interrupted.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";

import { JsonRpcProvider, Wallet } from "ethers";
import { tasks } from "hardhat";
import { z } from "zod";

import { parseConfig } from "../src/config.js";
import { isError } from "../src/errors.js";
import { startHardhatNode } from "../test/helpers/processes.js";
import {
  FinalityWatch,
  MAX_SUPERVISORS,
  MerchantTraffic,
  PROVIDER_OPTIONS,
  deploySupervision,
  lastFinal,
  startSupervisors,
  type Deployment,
  type SupervisorProcess,
} from "./lib/supervision-network.js";
import { formatStatus } from "./supervisor.js";

const MERCHANTS = 3;
/** A batch every ~300 ms, of this many records (a merchant's first batch opens its cards). */
const BATCH_EVERY_MS = 300;
const BATCH_RECORDS = 12;

const FlagShape = z
  .object({
    supervisors: z.coerce.number().int().min(1).max(MAX_SUPERVISORS).default(4),
    threshold: z.coerce.number().int().min(1).default(3),
    duration: z.coerce.number().positive().max(3_600).default(20),
    "interval-ms": z.coerce.number().int().min(50).default(1_000),
    every: z.coerce.number().int().min(1).default(1_000),
  })
  .strict();
const Flags = FlagShape.refine((f) => f.threshold <= f.supervisors, { path: ["threshold"], message: "at most --supervisors" });
type Flags = z.output<typeof Flags>;

/** `--name value` pairs into an object; every issue, by flag, in one error. */
export function parseFlags(argv: string[]): Flags {
  const raw: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) throw new Error(`expected --flag value, got "${argv[i]}"`);
    raw[argv[i].slice(2)] = argv[i + 1];
  }
  const unknown = Object.keys(raw).filter((k) => !(k in FlagShape.shape));
  if (unknown.length > 0) throw new Error(unknown.map((k) => `unknown flag --${k}`).join("; "));
  try {
    return parseConfig(Flags, raw, "supervision");
  } catch (e) {
    if (!isError(e, "INVALID_CONFIG")) throw e;
    const issues = e.details.issues as { path: string; message: string }[];
    throw new Error(issues.map((i) => (i.path === "(root)" ? i.message : `--${i.path}: ${i.message}`)).join("; "));
  }
}

const int = (x: bigint | number) => x.toLocaleString("en-US");
const short = (hex: string) => `${hex.slice(0, 10)}…`;

async function main(): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (e) {
    console.error(`supervision: ${(e as Error).message}`);
    return 2;
  }
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s`;
  const say = (line: string) => console.log(`${elapsed()}  ${line}`);

  // Ctrl-C (or SIGTERM): stop the traffic, print what there is, stop every process. Twice: now.
  const interrupted = new AbortController();
  const onSignal = () => {
    if (interrupted.signal.aborted) process.exit(130);
    say("interrupted: stopping");
    interrupted.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  await tasks.getTask("build").run({ quiet: true, noTests: true });
  // The node and the supervisors run in process groups of their own: a Ctrl-C in the terminal
  // reaches this process only, which then reads the summary from them before stopping them.
  const node = await startHardhatNode({ ownProcessGroup: true });
  const stateRoot = mkdtempSync(join(tmpdir(), "prepaid-ledger-supervision-"));
  const provider = new JsonRpcProvider(node.url, undefined, PROVIDER_OPTIONS);
  let supervisors: SupervisorProcess[] = [];
  let traffic: MerchantTraffic | undefined;
  // The supervisors' lines until the summary; what they print while stopping would follow it.
  let printing = true;
  try {
    say(`hardhat node on ${node.url} (${String(await provider.send("web3_clientVersion", []))})`);
    const d = await deploySupervision(provider, { supervisors: flags.supervisors, threshold: flags.threshold, merchants: MERCHANTS });
    say(`PrepaidLedger at ${d.ledgerAddress}; SupervisorQuorum at ${d.quorumAddress}`);
    say(`supervisors (dev accounts 10-${9 + flags.supervisors}), ${flags.threshold} of ${flags.supervisors} must sign: ${d.supervisors.map((s) => short(s.address)).join(", ")}`);
    say(`merchants ${d.merchants.map((m) => m.id).join(", ")} registered; checkpoint every ${int(flags.every)} records or ${int(flags["interval-ms"])} ms`);

    // The regulator's key for this run: supervisor 0 decrypts with it, the merchants encrypt to it.
    const regulatorKey = Wallet.createRandom().privateKey;
    supervisors = await startSupervisors(d, {
      rpc: node.url,
      stateRoot,
      every: flags.every,
      intervalMs: flags["interval-ms"],
      decryptionKey: regulatorKey,
      ownProcessGroup: true,
      onLine: (i, line, stream) => printing && console.log(`${elapsed()}  ${stream === "stderr" ? `[supervisor ${i} stderr] ` : ""}${line}`),
    });
    say(`${supervisors.length} supervisor processes serving on ${supervisors.map((s) => s.port).join(", ")}`);

    traffic = await MerchantTraffic.open(d, { regulatorKey, journalDir: stateRoot, batchSize: BATCH_RECORDS });
    const summary = await run(flags, d, provider, traffic, supervisors, interrupted.signal, say);
    printing = false;
    console.log("");
    console.log(summary.lines.join("\n"));
    if (interrupted.signal.aborted) return 130;
    return summary.finalized > 0 ? 0 : 1;
  } catch (e) {
    if (interrupted.signal.aborted) {
      // Stopped before the traffic began (or the node failed): there is nothing to sum up.
      printing = false;
      say(`stopped before the summary (${(e as Error).message.split("\n")[0]}); ${int(traffic?.records ?? 0)} records uploaded`);
      return 130;
    }
    throw e;
  } finally {
    traffic?.close();
    await Promise.all(supervisors.map((s) => s.stop()));
    provider.destroy();
    await node.stop();
    rmSync(stateRoot, { recursive: true, force: true });
  }
}

/** The traffic, the finality watch and the summary. */
async function run(
  flags: Flags,
  d: Deployment,
  provider: JsonRpcProvider,
  traffic: MerchantTraffic,
  supervisors: SupervisorProcess[],
  signal: AbortSignal,
  say: (line: string) => void,
): Promise<{ lines: string[]; finalized: number }> {
  /** When each batch's upload resolved, by its first record index: how long finality took. */
  const uploadedAt: { first: bigint; last: bigint; at: number }[] = [];
  const byAddress = new Map(d.supervisors.map((s) => [s.address.toLowerCase(), s.index]));
  const watch = new FinalityWatch(provider, d.quorumAddress, d.fromBlock);
  let finalized = 0;
  let previous = 0n;
  const checkFinality = async () => {
    for (const f of await watch.poll()) {
      const now = performance.now();
      const covered = uploadedAt.filter((b) => b.first > previous && b.last <= f.recordCount);
      const waits = covered.map((b) => (now - b.at) / 1000);
      const waited = waits.length === 0 ? "" : `; waited ${Math.min(...waits).toFixed(1)}-${Math.max(...waits).toFixed(1)} s since upload`;
      const signers = f.signers.map((s) => byAddress.get(s.toLowerCase()) ?? s).join(", ");
      say(
        `[quorum] checkpoint FINAL at record ${int(f.recordCount)} (+${int(f.recordCount - previous)}), head ${short(f.chainHead)}, ` +
          `digest ${short(f.stateDigest)}, signed by supervisors ${signers}${waited}`,
      );
      previous = f.recordCount;
      finalized++;
    }
  };
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      try {
        await checkFinality();
      } catch (e) {
        if (!signal.aborted) say(`[quorum] watch failed, retrying: ${(e as Error).message.split("\n")[0]}`);
      }
      await sleep(100);
    }
  })();

  const trafficStart = performance.now();
  let lastReport = trafficStart;
  try {
    say(`traffic: a batch every ~${BATCH_EVERY_MS} ms for ${flags.duration} s (${MERCHANTS} merchants in turn, ${BATCH_RECORDS} records a batch)`);
    while (!signal.aborted && performance.now() - trafficStart < flags.duration * 1000) {
      const batchStart = performance.now();
      const records = await traffic.next();
      uploadedAt.push({ first: records[0].recordIndex, last: records.at(-1)!.recordIndex, at: performance.now() });
      if (performance.now() - lastReport >= 2_000) {
        lastReport = performance.now();
        say(`[traffic] ${int(traffic.records)} records in ${int(traffic.batches)} batches; ledger at record ${int(records.at(-1)!.recordIndex)}`);
      }
      await sleep(Math.max(0, BATCH_EVERY_MS - (performance.now() - batchStart)), undefined, { signal }).catch(() => undefined);
    }
    const trafficSeconds = (performance.now() - trafficStart) / 1000;
    const [count] = await d.ledger.chainHead();
    say(`[traffic] stopped: ${int(traffic.records)} records in ${int(traffic.batches)} batches over ${trafficSeconds.toFixed(1)} s`);

    // Let finality catch up with the last records (bounded: a quorum may be down).
    if (!signal.aborted) {
      const drainMs = Math.max(5_000, 3 * flags["interval-ms"] + 3_000);
      say(`waiting up to ${(drainMs / 1000).toFixed(0)} s for a checkpoint over record ${int(count)}…`);
      const deadline = performance.now() + drainMs;
      while (!signal.aborted && performance.now() < deadline && (await lastFinal(d.quorum)) < count) await sleep(100);
    }
    watching = false;
    await watcher;
    await checkFinality();

    const final = await lastFinal(d.quorum);
    // The contract keeps only the count; head and digest are in the checkpoint's event.
    const lastEvent = (await d.quorum.queryFilter(d.quorum.filters.CheckpointFinalized(final))).at(-1);
    const [head, digest] = lastEvent === undefined ? ["-", "-"] : [lastEvent.args.chainHead, lastEvent.args.stateDigest];
    const statuses = await Promise.all(supervisors.map((s) => s.status()));
    const lines = [
      `summary (${trafficSeconds.toFixed(1)} s of traffic, ${flags.threshold} of ${flags.supervisors} supervisors must sign, ` +
        `checkpoint every ${int(flags.every)} records or ${int(flags["interval-ms"])} ms)`,
      `  records uploaded     ${int(traffic.records)} in ${int(traffic.batches)} batches by ${MERCHANTS} merchants; the ledger holds ${int(count)}`,
      `  last final           record ${int(final)}, head ${head}, digest ${digest} (${finalized} checkpoints final)`,
      `  records confirmed    ${int(final)}; pending ${int(count - final)}`,
      `  supervisors`,
      ...supervisors.map((s, i) => `    ${statuses[i] === undefined ? `[supervisor ${s.index}] not answering` : formatStatus(statuses[i]!)}`),
    ];
    return { lines, finalized };
  } finally {
    watching = false;
    await watcher;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
