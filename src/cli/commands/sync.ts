/**
 * `prepaid sync`: indexes the ledger (and its quorum) into the index file, once or, with
 * `--follow`, until SIGINT/SIGTERM. The node is checked before the index file is created, so a
 * wrong URL leaves nothing behind; each page of blocks is one transaction, so an interrupted
 * sync resumes where it stopped. A reorg within the unsettled blocks is rolled back and read
 * again; a deeper one marks the index (exit 4) until `--repair`.
 */
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { Indexer, type ReorgRollback, type SyncResult } from "../../indexer/indexer.js";
import { getMeta } from "../../indexer/schema.js";
import { indexExists, openIndex, removeIndex } from "../../indexer/open.js";
import { isPostgresUrl, redactUrl } from "../../indexer/store/database.js";
import { PrepaidLedgerError, isError } from "../../errors.js";
import { intOption, stringOption } from "../args.js";
import type { Command, Context } from "../command.js";
import { KEY_ENV, loadRegulatorKey } from "../config.js";
import { plural, toJson } from "../format.js";
import { ProgressReporter, progressMode } from "../progress.js";
import { httpJsonRpc, retryingRpc } from "../../rpc.js";

const DEFAULT_INTERVAL_SECONDS = 5;
/** Seconds one JSON-RPC call may take by default. */
const DEFAULT_RPC_TIMEOUT_SECONDS = 30;
/** The longest wait between two attempts of a follower whose node keeps failing. */
const MAX_BACKOFF_SECONDS = 60;

/**
 * Ledger and quorum of an existing index, so a second `sync` needs only `--db`, and whether it
 * was built without a key (`decrypted_for` empty; absent for a new index).
 */
function indexedContracts(db: string): { ledger?: string; quorum?: string; encrypted?: boolean } {
  if (!indexExists(db)) return {};
  const handle = openIndex(db, { readOnly: true });
  try {
    const ledger = getMeta(handle, "ledger");
    return { ledger, quorum: getMeta(handle, "quorum"), encrypted: ledger === undefined ? undefined : (getMeta(handle, "decrypted_for") ?? "") === "" };
  } finally {
    handle.close();
  }
}

/**
 * Flags over the config file. Without a ledger from either, the index's own ledger and (unless
 * one is given) quorum; a ledger that is given never takes the index's quorum, which is bound to
 * the index's ledger.
 */
function settings(ctx: Context) {
  const flag = (name: string) => stringOption(ctx.args, name);
  const rpc = flag("rpc") ?? ctx.config.rpc;
  if (rpc === undefined) throw new PrepaidLedgerError("INVALID_ARGUMENT", 'missing --rpc URL (or "rpc" in the config file)');
  if (!isPostgresUrl(ctx.db) && !existsSync(dirname(ctx.db))) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "the folder of the index file does not exist", { details: { db: ctx.db } });
  }
  const given = flag("ledger") ?? ctx.config.ledger;
  const quorum = flag("quorum") ?? ctx.config.quorum;
  const indexed = indexedContracts(ctx.db);
  const contracts = given === undefined ? { ledger: indexed.ledger, quorum: quorum ?? indexed.quorum } : { ledger: given, quorum };
  if (contracts.ledger === undefined) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", 'missing --ledger ADDRESS (or "ledger" in the config file) for a new index');
  }
  const timeoutSeconds = intOption(ctx.args, "rpc-timeout", 1) ?? ctx.config.rpcTimeout ?? DEFAULT_RPC_TIMEOUT_SECONDS;
  return {
    rpc,
    rpcTimeoutMs: timeoutSeconds * 1000,
    /** The index exists and was built without a key. */
    builtWithoutKey: indexed.encrypted === true,
    indexer: {
      ledger: contracts.ledger,
      quorum: contracts.quorum,
      db: ctx.db,
      fromBlock: intOption(ctx.args, "from-block") ?? ctx.config.fromBlock,
      confirmations: intOption(ctx.args, "confirmations") ?? ctx.config.confirmations,
      maxBlockRange: intOption(ctx.args, "max-block-range", 1) ?? ctx.config.maxBlockRange,
      rpcTimeoutMs: timeoutSeconds * 1000,
      risk: ctx.config.risk,
    },
  };
}

async function open(ctx: Context): Promise<Indexer> {
  const { rpc, indexer, rpcTimeoutMs, builtWithoutKey } = settings(ctx);
  const noDecrypt = ctx.args.values["no-decrypt"] === true;
  const key = loadRegulatorKey(stringOption(ctx.args, "key-file"), ctx.io.env, ctx.cwd, (l) => ctx.notice(l));
  if (key !== undefined) {
    ctx.addSecret(key.privateKey);
    if (noDecrypt) throw new PrepaidLedgerError("INVALID_ARGUMENT", `--no-decrypt with a regulator key (${KEY_ENV} or --key-file): give one or the other`);
  } else if (noDecrypt || builtWithoutKey) {
    ctx.notice(`no regulator key: records are indexed without being decrypted (a key cannot be added to this index later)`);
  } else {
    // An index without a key cannot be decrypted later: that is a choice, never an accident.
    throw new PrepaidLedgerError(
      "INVALID_ARGUMENT",
      `no regulator key: set ${KEY_ENV} or give --key-file FILE (or --no-decrypt to index the records without decrypting them)`,
    );
  }
  // A node that is down for a moment is waited out (four tries over 1.75 s); one that stays
  // down is an RPC_ERROR "stayed down" (exit 3). `--follow` waits out longer outages itself.
  const node = retryingRpc(httpJsonRpc(rpc, { timeoutMs: rpcTimeoutMs }), {
    onRetry: (r) => ctx.notice(`the node did not answer ${r.method} (${r.error.shortMessage}); trying again in ${r.delayMs} ms`),
  });
  return Indexer.open({ ...indexer, privateKey: key?.privateKey }, node);
}

function summary(indexer: Indexer, r: SyncResult): string {
  const lines = [
    r.fromBlock > r.targetBlock
      ? `Up to date at block ${r.settledBlock} (chain ${indexer.chainId}): no new blocks, ${plural(r.records, "record")}.`
      : `Synced blocks ${r.fromBlock}–${r.settledBlock} of chain ${indexer.chainId} in ${r.seconds.toFixed(1)} s: ${plural(r.newRecords, "new record")}, ${r.records} in the index.`,
  ];
  for (const g of r.reorgs) lines.push(reorgLine(g));
  if (r.settledBlock > r.confirmedBlock) {
    lines.push(`Blocks ${r.confirmedBlock + 1}–${r.settledBlock} are not ${indexer.confirmations} blocks deep yet: their rows are provisional.`);
  }
  if (r.aborted) lines.push(`Stopped early at block ${r.settledBlock} of ${r.targetBlock}; run sync again to go on.`);
  if (r.matchesContract === true) lines.push(`Books match the contract at block ${r.settledBlock}.`);
  else if (r.matchesContract === false) lines.push(`WARNING: the books differ from the contract's at block ${r.settledBlock} (see \`prepaid alerts\`).`);
  else lines.push("Books not compared with the contract: the node keeps no state at that block.");
  const findings = `${plural(r.discrepancies, "discrepancy", "discrepancies")}, ${plural(r.alerts, "alert")}`;
  lines.push(`${findings}${r.alerts > 0 ? " (`prepaid alerts` lists them)" : ""}.`);
  return lines.join("\n") + "\n";
}

function reorgLine(g: ReorgRollback): string {
  return `Reorg: block ${g.from} left the chain; rolled back to block ${g.rolledBackTo} (fork at ${g.fork}) and read the new branch.`;
}

function resultDocument(ctx: Context, indexer: Indexer, r: SyncResult) {
  const { ledger, quorum, decryptedFor } = indexer;
  return { index: redactUrl(ctx.db), chainId: indexer.chainId, ledger, quorum: quorum ?? null, decryptedFor, confirmations: indexer.confirmations, ...r };
}

async function syncOnce(ctx: Context, indexer: Indexer, signal?: AbortSignal): Promise<SyncResult> {
  const progress = new ProgressReporter(ctx.io.stderr, progressMode(ctx, ctx.io.stderr));
  try {
    return await indexer.sync({ onProgress: (p) => progress.update(p), signal, onReorg: (g) => ctx.notice(reorgLine(g)) });
  } finally {
    progress.done();
  }
}

/** What a follower waits for, in words, from a retryable error. */
function waitingFor(e: PrepaidLedgerError): string {
  const call = typeof e.details.call === "string" ? e.details.call : typeof e.details.method === "string" ? e.details.method : undefined;
  const what = e.code === "TIMEOUT" ? `the node did not answer${call === undefined ? "" : ` ${call}`} in time` : e.shortMessage;
  return `waiting for the node (${e.code}: ${what})`;
}

/**
 * Syncs, then again every `interval` seconds until stopped. A node failure is retried with a
 * growing wait (up to a minute), saying what it waits for; a reorg within the unsettled blocks
 * is rolled back by the sync itself; a deeper one stops the follower (exit 4), unless `repair`.
 */
async function follow(ctx: Context, indexer: Indexer, intervalSeconds: number, repair: boolean): Promise<void> {
  const stop = ctx.stopSignal();
  let first = true;
  let failures = 0;
  let needsRepair = false;
  while (!stop.aborted) {
    let wait = intervalSeconds;
    try {
      if (needsRepair) await repairIndex(ctx, indexer);
      needsRepair = false;
      const r = await syncOnce(ctx, indexer, stop);
      if (failures > 0) ctx.notice(`the node answers again: going on from block ${r.fromBlock}`);
      failures = 0;
      if (ctx.json) await ctx.write(toJson(resultDocument(ctx, indexer, r), 0) + "\n");
      else if (first) await ctx.write(summary(indexer, r) + `Following new blocks every ${intervalSeconds} s; Ctrl-C to stop.\n`);
      else if (r.newRecords > 0 || r.reorgs.length > 0) {
        await ctx.write(`block ${r.settledBlock}: ${plural(r.newRecords, "new record")}, ${r.records} in the index, ${plural(r.alerts, "alert")}\n`);
      }
      first = false;
    } catch (e) {
      if (isError(e, "REORG_TOO_DEEP") && repair) {
        ctx.notice(`${e.shortMessage}; repairing (--repair)`);
        needsRepair = true;
        continue;
      }
      if (!isError(e) || !e.retryable) throw e;
      failures++;
      wait = Math.min(MAX_BACKOFF_SECONDS, intervalSeconds * 2 ** (failures - 1));
      ctx.notice(`${waitingFor(e)}; attempt ${failures}, trying again in ${wait} s`);
    }
    await sleep(wait * 1000, undefined, { signal: stop }).catch(() => undefined);
  }
  ctx.notice("stopped: the index is consistent up to the last block reported");
}

/** `--repair`: rolls the index back to the fork point, or empties it to be read again. */
async function repairIndex(ctx: Context, indexer: Indexer): Promise<void> {
  const r = await indexer.repair();
  if (r.rebuilt) ctx.notice("repair: the index is emptied (its identity kept) and is read again from its first block");
  else if (r.rolledBackTo !== null) ctx.notice(`repair: rolled back to block ${r.rolledBackTo}, the last block still on the chain`);
  else ctx.notice("repair: the index follows the chain; nothing to repair");
}

async function run(ctx: Context): Promise<number> {
  const interval = intOption(ctx.args, "interval", 1);
  if (interval !== undefined && ctx.args.values.follow !== true) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "--interval goes with --follow");
  }
  const created = !indexExists(ctx.db);
  const indexer = await open(ctx);
  try {
    if (indexer.decryptedFor !== null) ctx.notice(`decrypting as regulator ${indexer.decryptedFor}`);
    const repair = ctx.args.values.repair === true;
    if (repair) await repairIndex(ctx, indexer);
    if (ctx.args.values.follow === true) {
      await follow(ctx, indexer, interval ?? DEFAULT_INTERVAL_SECONDS, repair);
      return 0;
    }
    const r = await syncOnce(ctx, indexer);
    await (ctx.json ? ctx.writeJson(resultDocument(ctx, indexer, r)) : ctx.write(summary(indexer, r)));
    return 0;
  } catch (e) {
    // A first sync leaves no half-made index behind when it failed before its first page
    // committed (a later command would only call it "never synced") or because the key opens
    // none of the records (the index is bound to that key: useless). One cut short by a node
    // failure keeps its pages, and the next sync resumes.
    if (created && (getMeta(indexer.db, "chain_id") === undefined || isError(e, "WRONG_KEY"))) {
      indexer.close();
      removeIndex(ctx.db);
    }
    throw e;
  } finally {
    indexer.close();
  }
}

/** `prepaid sync` */
export const syncCommand: Command = {
  name: "sync",
  positionals: [],
  summary: "index the ledger into the index file, decrypting and verifying every record",
  description: `Reads every settled block after the index's cursor: records (decrypted with the regulator key
and checked against their commitments and on-chain amounts), batches, merchant events and, with
--quorum, the supervisors' final checkpoints. Then compares the books with the contract and
evaluates the risk rules. The node is checked before the index file is created; each page of
blocks is written in one transaction, so an interrupted sync resumes where it stopped. A second
sync of the same index needs no --ledger or --quorum: they are read from the index.

The index reads up to the chain head; the rows of blocks less than --confirmations deep are
provisional. A reorg among them is noticed by block hash, rolled back to the fork point and read
again. A reorg deeper than that marks the index (exit 4; \`prepaid status\` says so) until
\`prepaid sync --repair\` rolls it back to the last block still on the chain, or reads it again
from its first block. Every JSON-RPC call has a timeout (--rpc-timeout): a node that fails or
does not answer exits 3 (with --follow: a message, and a retry with a growing wait).

The regulator key comes from ${KEY_ENV} or --key-file, never from a flag value.
With --follow and --json, each round prints one JSON line.`,
  options: {
    rpc: { type: "string", value: "URL", help: 'JSON-RPC URL of a node of the ledger\'s chain (or "rpc" in the config file)' },
    ledger: { type: "string", value: "ADDRESS", help: "the PrepaidLedger contract (needed for a new index)" },
    quorum: { type: "string", value: "ADDRESS", help: "its SupervisorQuorum: records are shown as confirmed or pending" },
    "key-file": { type: "string", value: "FILE", help: `file holding the regulator's hex private key (default: $${KEY_ENV})` },
    confirmations: { type: "string", value: "N", help: "blocks before a block counts as settled (default 0 on chains 31337/1337, else 12)" },
    "from-block": { type: "string", value: "N", help: "first block of a new index: the ledger's deployment block (default 0)" },
    "max-block-range": { type: "string", value: "N", help: "blocks per eth_getLogs request, at most (default 10000)" },
    follow: { type: "boolean", short: "f", help: "keep following new blocks until Ctrl-C or SIGTERM (stops cleanly)" },
    interval: { type: "string", value: "SECONDS", help: `with --follow: seconds between two polls (default ${DEFAULT_INTERVAL_SECONDS})` },
    "rpc-timeout": { type: "string", value: "SECONDS", help: `seconds one JSON-RPC call may take (default ${DEFAULT_RPC_TIMEOUT_SECONDS}, or "rpcTimeout")` },
    repair: { type: "boolean", help: "repair an index a deep reorg left marked (roll back or rebuild), then sync; with --follow, whenever needed" },
    "no-decrypt": { type: "boolean", help: "index without a regulator key: records stay encrypted (for good, in this index)" },
  },
  examples: [
    `${KEY_ENV}=0x… prepaid sync --rpc http://127.0.0.1:8545 --ledger 0x5FbD… --quorum 0xe7f1…   # a new index`,
    "prepaid sync --key-file ~/.prepaid/regulator.key                     # catch up, settings from prepaid.config.json",
    "prepaid sync --follow --interval 12 --quiet                          # keep the index current",
    "prepaid sync --repair                                                # after a reorg deeper than the confirmations (exit 4)",
  ],
  run,
};
