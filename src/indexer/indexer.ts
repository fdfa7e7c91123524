/**
 * The regulator's indexer: follows one PrepaidLedger (and, optionally, its SupervisorQuorum) over
 * JSON-RPC into a local SQLite index, verifying every record on the way with the reader's replay
 * (hash chain, decryption, commitment, on-chain vs decrypted values).
 *
 * Crash safety: each page of logs is written in ONE transaction together with the cursor ("every
 * log up to block N is stored") and the replay's state at that block, so a killed indexer resumes
 * from the last committed page and can neither skip nor repeat a log. Every row that comes from
 * a log is also keyed by (transaction, log index) as a second guard. Only blocks at least
 * `confirmations` deep are read; the cursor block's hash is checked again on every start, so a
 * reorg deeper than that is reported (REORG_TOO_DEEP) instead of leaving wrong rows.
 *
 * ```ts
 * const indexer = await Indexer.open({ ledger, quorum, privateKey: regulatorKey, db: "index.sqlite" }, provider);
 * const result = await indexer.sync({ onProgress: (p) => console.log(p.settledBlock) });
 * indexer.close();
 * ```
 */
import { Interface, decodeBytes32String, getAddress } from "ethers";
import { z } from "zod";

import { addressSchema, parseConfig, privateKeySchema } from "../config.js";
import { addressOf, publicKeyOf } from "../crypto/ecies.js";
import { bytesToHex } from "../crypto/hash.js";
import { PrepaidLedgerError, isError } from "../errors.js";
import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import { genesisHead } from "../ledger/codec.js";
import { toLedgerError } from "../ledger/revert.js";
import { balanceOf, type AccountState } from "../regulator/books.js";
import { LEDGER_TOPICS, decodeBatchRecorded } from "../regulator/events.js";
import { fetchLogPages, type JsonRpcLike, type LogPage, type RpcLog } from "../regulator/logs.js";
import { LedgerReplay, type VerifiedRecord } from "../regulator/reader.js";
import { SUPERVISOR_QUORUM_ABI } from "../supervisor/abi.js";
import { IndexQueries } from "./queries.js";
import { RiskConfig, evaluateRisk, storeAlerts } from "./risk.js";
import { getMeta, inTransaction, openIndex, setMeta, type Database } from "./schema.js";

const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);
const quorumInterface = new Interface(SUPERVISOR_QUORUM_ABI);
const CHECKPOINT_FINALIZED = quorumInterface.getEvent("CheckpointFinalized")!.topicHash;

/** Chains where blocks are final as soon as they are mined: local development nodes. */
const INSTANT_CHAINS = new Set([31337n, 1337n]);

export const IndexerConfig = z
  .object({
    /** The PrepaidLedger address. */
    ledger: addressSchema,
    /** Its SupervisorQuorum: checkpoints are indexed and records shown as confirmed or pending. */
    quorum: addressSchema.optional(),
    /** The regulator's decryption key; without it records are indexed encrypted. Never stored. */
    privateKey: privateKeySchema.optional(),
    /** Path of the SQLite index (created if missing). */
    db: z.string().min(1),
    /** First block to read on a new index (the ledger's deployment block, or 0). */
    fromBlock: z.number().int().min(0).default(0),
    /**
     * Blocks to wait before a block is settled. Default 0 on local development chains
     * (31337, 1337) and 12 elsewhere; a QBFT chain is final at once and can use 0.
     */
    confirmations: z.number().int().min(0).max(100_000).optional(),
    /** Blocks per eth_getLogs request, at most (halved when a node refuses). */
    maxBlockRange: z.number().int().min(1).max(1_000_000).default(10_000),
    /** How long the first JSON-RPC call may take before the node counts as unreachable. */
    rpcTimeoutMs: z.number().int().min(100).max(600_000).default(15_000),
    /** Risk thresholds (src/indexer/risk.ts, docs/RISK.md). */
    risk: RiskConfig.default(RiskConfig.parse({})),
  })
  .strict();
export type IndexerConfigInput = z.input<typeof IndexerConfig>;
export type IndexerConfigValues = z.output<typeof IndexerConfig>;

export interface SyncProgress {
  /** Blocks this sync covers. */
  fromBlock: number;
  targetBlock: number;
  /** Every log up to here is stored. */
  settledBlock: number;
  /** Records in the index, and added by this sync so far. */
  records: number;
  newRecords: number;
  recordsPerSecond: number;
}

export interface SyncOptions {
  onProgress?: (p: SyncProgress) => void;
  /** Stops after the page being written (the index stays consistent). */
  signal?: AbortSignal;
}

export interface SyncResult {
  fromBlock: number;
  targetBlock: number;
  settledBlock: number;
  records: number;
  newRecords: number;
  /** Discrepancies and alerts in the index after the sync. */
  discrepancies: number;
  alerts: number;
  /** The merchants' books and the chain head at the settled block equal the contract's views. */
  matchesContract: boolean | "unavailable";
  seconds: number;
  /** The sync stopped early because its signal was aborted. */
  aborted: boolean;
}

/** What a page adds to an account beside its books: failed records, first and last record time. */
interface PageSide {
  bad: number;
  opened: number;
  last: number;
}
/** The index's sync_state: where the last committed page left the index. */
interface Cursor {
  settledBlock: number;
  settledHash: string;
  settledTime: number;
  recordCount: number;
  chainHead: string;
  final: number;
}

interface MerchantSide {
  recorder: string | null;
  registeredBlock: number | null;
  suspendedReason: string | null;
  bad: number;
  firstTime: number | null;
  lastTime: number | null;
  lastServiceTime: number | null;
}

type Provider = JsonRpcLike;

const hex = (n: number | bigint) => "0x" + n.toString(16);

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PrepaidLedgerError("RPC_ERROR", "the JSON-RPC node did not answer in time", { details: { call: what, ms } })),
      ms,
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function rpcError(e: unknown, call: string): PrepaidLedgerError {
  if (e instanceof PrepaidLedgerError) return e;
  const mapped = toLedgerError(e, { call });
  if (mapped instanceof PrepaidLedgerError) return mapped;
  return new PrepaidLedgerError("RPC_ERROR", "the JSON-RPC node could not be reached or failed", {
    details: { call },
    cause: e,
    retryable: true,
  });
}

export class Indexer {
  readonly config: IndexerConfigValues;
  readonly db: Database;
  readonly chainId: bigint;
  readonly confirmations: number;
  /** The ledger and quorum addresses, lowercase (as logs carry them). */
  readonly ledger: string;
  readonly quorum: string | undefined;
  /** The address of the regulator key records are decrypted with, lowercase, or null. */
  readonly decryptedFor: string | null;
  /**
   * The identity the index is bound to (meta keys to values). Computed once: getAddress() hashes
   * in pure JavaScript.
   */
  readonly identity: Readonly<Record<string, string>>;
  private readonly rpc: Provider;

  private constructor(config: IndexerConfigValues, rpc: Provider, db: Database, chainId: bigint) {
    this.config = config;
    this.rpc = rpc;
    this.db = db;
    this.chainId = chainId;
    this.ledger = config.ledger.toLowerCase();
    this.quorum = config.quorum?.toLowerCase();
    this.confirmations = config.confirmations ?? (INSTANT_CHAINS.has(chainId) ? 0 : 12);
    this.decryptedFor = config.privateKey === undefined ? null : addressOf(publicKeyOf(config.privateKey)).toLowerCase();
    this.identity = Object.freeze({
      chain_id: chainId.toString(),
      ledger: getAddress(this.ledger),
      quorum: this.quorum === undefined ? "" : getAddress(this.quorum),
      decrypted_for: this.decryptedFor ?? "",
    });
  }

  /**
   * Checks the node and the contracts, then opens (or creates) the index and checks it belongs
   * to the same chain, ledger, quorum and key. Nothing is written until the first page commits.
   *
   * @param provider - anything with JSON-RPC `send` (an ethers JsonRpcProvider, Hardhat's provider)
   * @throws PrepaidLedgerError `INVALID_CONFIG`, `RPC_ERROR` (node unreachable: no file is
   *   created), `INDEX_CORRUPT`, `INDEX_MISMATCH`, `WRONG_KEY` (not the key the index was built with)
   */
  static async open(input: IndexerConfigInput, provider: Provider): Promise<Indexer> {
    const config = parseConfig(IndexerConfig, input, "indexer");
    const call = async <T>(method: string, params: unknown[]) => {
      try {
        return await withTimeout(provider.send(method, params) as Promise<T>, config.rpcTimeoutMs, method);
      } catch (e) {
        throw rpcError(e, method);
      }
    };
    const chainId = BigInt(await call<string>("eth_chainId", []));
    for (const [what, address] of [
      ["ledger", config.ledger],
      ["quorum", config.quorum],
    ] as const) {
      if (address === undefined) continue;
      if ((await call<string>("eth_getCode", [address, "latest"])) === "0x") {
        throw new PrepaidLedgerError("INVALID_CONFIG", `no contract at the ${what} address on this chain`, {
          details: { [what]: address, chainId },
        });
      }
    }
    if (config.quorum !== undefined) {
      const data = quorumInterface.encodeFunctionData("LEDGER");
      const result = await call<string>("eth_call", [{ to: config.quorum, data }, "latest"]);
      const ledgerOfQuorum = String(quorumInterface.decodeFunctionResult("LEDGER", result)[0]);
      if (ledgerOfQuorum.toLowerCase() !== config.ledger.toLowerCase()) {
        throw new PrepaidLedgerError("INVALID_CONFIG", "the quorum confirms another ledger", {
          details: { quorum: config.quorum, itsLedger: ledgerOfQuorum, ledger: config.ledger },
        });
      }
    }
    const db = openIndex(config.db);
    const indexer = new Indexer(config, provider, db, chainId);
    try {
      indexer.checkIdentity();
    } catch (e) {
      db.close();
      throw e;
    }
    return indexer;
  }

  /** Read access to what is indexed. */
  queries(): IndexQueries {
    return new IndexQueries(this.db);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  private checkIdentity(): void {
    const stored = getMeta(this.db, "chain_id");
    if (stored === undefined) return; // a new index: identity is written with the first page
    const mine = this.identity;
    for (const key of ["chain_id", "ledger", "quorum"] as const) {
      const theirs = getMeta(this.db, key) ?? "";
      if (theirs !== mine[key]) {
        throw new PrepaidLedgerError("INDEX_MISMATCH", `the index was built for another ${key.replace("_", " ")}`, {
          details: { field: key, index: theirs || "(none)", requested: mine[key] || "(none)", db: this.config.db },
        });
      }
    }
    const keyOf = getMeta(this.db, "decrypted_for") ?? "";
    if (keyOf === mine.decrypted_for) return;
    const details = { indexKeyAddress: keyOf || "(none)", givenKeyAddress: mine.decrypted_for || "(none)", db: this.config.db };
    if (keyOf === "") {
      throw new PrepaidLedgerError("INDEX_MISMATCH", "the index holds records that were not decrypted: build a new index to decrypt them", {
        details,
      });
    }
    throw new PrepaidLedgerError(
      "WRONG_KEY",
      mine.decrypted_for === ""
        ? "the index was built with a regulator key: give that key to continue it"
        : "this is not the regulator key the index was built with",
      { details },
    );
  }

  /**
   * Reads every settled block after the cursor into the index, then evaluates the risk rules.
   *
   * @throws PrepaidLedgerError `RPC_ERROR` (retryable: run again, it resumes), `WRONG_KEY` (the
   *   key opens none of the records: nothing of that page is written), `REORG_TOO_DEEP`
   */
  async sync(options: SyncOptions = {}): Promise<SyncResult> {
    const started = performance.now();
    const latest = Number(await this.call<string>("eth_blockNumber", []));
    const target = latest - this.confirmations;
    const state = this.loadState();
    if (state !== undefined) await this.checkCursor(state.settledBlock, state.settledHash);
    const from = state === undefined ? this.config.fromBlock : state.settledBlock + 1;
    const writer = new PageWriter(this, state);
    let aborted = false;
    if (from <= target) {
      for await (const page of fetchLogPages(this.rpc, {
        address: this.quorum === undefined ? this.ledger : [this.ledger, this.quorum],
        fromBlock: BigInt(from),
        toBlock: BigInt(target),
        maxBlockRange: this.config.maxBlockRange,
      })) {
        await writer.write(page);
        const seconds = (performance.now() - started) / 1000;
        options.onProgress?.({
          fromBlock: from,
          targetBlock: target,
          settledBlock: Number(page.toBlock),
          records: writer.recordCount,
          newRecords: writer.newRecords,
          recordsPerSecond: seconds > 0 ? writer.newRecords / seconds : 0,
        });
        if (options.signal?.aborted) {
          aborted = true;
          break;
        }
      }
    }
    const settled = this.loadState();
    let matchesContract: SyncResult["matchesContract"] = "unavailable";
    if (settled !== undefined) {
      matchesContract = await this.compareWithContract(settled.settledBlock);
      await this.evaluateRisk(settled.settledBlock, settled.settledTime);
    }
    const q = this.queries();
    return {
      fromBlock: from,
      targetBlock: target,
      settledBlock: settled?.settledBlock ?? from - 1,
      records: writer.recordCount,
      newRecords: writer.newRecords,
      discrepancies: q.count("discrepancies"),
      alerts: q.count("alerts"),
      matchesContract,
      seconds: (performance.now() - started) / 1000,
      aborted,
    };
  }

  /** @internal JSON-RPC with the indexer's error mapping. */
  async call<T>(method: string, params: unknown[]): Promise<T> {
    try {
      return (await this.rpc.send(method, params)) as T;
    } catch (e) {
      throw rpcError(e, method);
    }
  }

  private loadState(): Cursor | undefined {
    const s = this.db.prepare("SELECT * FROM sync_state WHERE id = 1").get() as Record<string, unknown> | undefined;
    if (s === undefined) return undefined;
    return {
      settledBlock: Number(s.settled_block),
      settledHash: String(s.settled_hash),
      settledTime: Number(s.settled_time),
      recordCount: Number(s.record_count),
      chainHead: String(s.chain_head),
      final: Number(s.final_record_count),
    };
  }

  private async checkCursor(block: number, hash: string): Promise<void> {
    const b = await this.call<{ hash: string } | null>("eth_getBlockByNumber", [hex(block), false]);
    if (b === null || b.hash.toLowerCase() !== hash) {
      throw new PrepaidLedgerError("REORG_TOO_DEEP", "the block the index settled on is no longer on the chain", {
        details: { block, indexed: hash, now: b?.hash ?? null, confirmations: this.confirmations },
      });
    }
  }

  /** Merchants' books and the chain head at `block`, against the contract's views. */
  private async compareWithContract(block: number): Promise<boolean | "unavailable"> {
    const view = async (fn: string, args: unknown[]) => {
      const data = ledgerInterface.encodeFunctionData(fn, args);
      const out = await this.call<string>("eth_call", [{ to: this.ledger, data }, hex(block)]);
      return ledgerInterface.decodeFunctionResult(fn, out);
    };
    const q = this.queries();
    const problems: { field: string; merchantId: number | null; index: unknown; contract: unknown }[] = [];
    try {
      const [count, head] = await view("chainHead", []);
      const info = q.info();
      if (BigInt(info.recordCount) !== count || info.chainHead !== String(head).toLowerCase()) {
        problems.push({ field: "chainHead", merchantId: null, index: [info.recordCount, info.chainHead], contract: [count, head] });
      }
      for (const m of q.merchants()) {
        const [c] = await view("merchantBooks", [m.merchantId]);
        const pairs: [string, number, bigint][] = [
          ["recordCount", m.recordCount, c.recordCount],
          ["accountCount", m.accountCount, c.accountCount],
          ["toppedUp", m.toppedUp, c.toppedUp],
          ["consumed", m.consumed, c.consumed],
          ["refunded", m.refunded, c.refunded],
          ["nextSequence", m.nextSequence, c.nextSequence],
        ];
        for (const [field, mine, theirs] of pairs) {
          if (BigInt(mine) !== theirs) problems.push({ field, merchantId: m.merchantId, index: mine, contract: theirs });
        }
      }
    } catch (e) {
      // A pruned node keeps no state at older blocks: the comparison is skipped, not failed.
      if (isError(e, "RPC_ERROR") || isError(e, "LEDGER_REVERTED")) return "unavailable";
      throw e;
    }
    await inTransaction(this.db, () => {
      this.db.exec("DELETE FROM discrepancies WHERE kind = 'books-mismatch'");
      const insert = this.db.prepare("INSERT INTO discrepancies (kind, message, merchant_id, block_number, details) VALUES (?, ?, ?, ?, ?)");
      for (const p of problems) {
        insert.run(
          "books-mismatch",
          `${p.merchantId === null ? "ledger" : `merchant ${p.merchantId}`}: ${p.field} in the index differs from the contract's`,
          p.merchantId,
          block,
          JSON.stringify(p, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)),
        );
      }
    });
    return problems.length === 0;
  }

  private async evaluateRisk(block: number, time: number): Promise<void> {
    const alerts = evaluateRisk(this.db, this.config.risk, time, this.quorum !== undefined);
    await inTransaction(this.db, () => storeAlerts(this.db, alerts, block, time));
  }
}

/**
 * Writes pages of logs: runs them through a {@link LedgerReplay} and stores rows, books and the
 * cursor of each page in one transaction. Restores the replay from the index on construction.
 */
class PageWriter {
  pages = 0;
  newRecords = 0;
  recordCount: number;
  /** Records covered by the quorum's last final checkpoint. */
  private final: number;
  private readonly replay: LedgerReplay;
  /** Accounts touched by the page being written (only those: a card's own figures live in the replay's books). */
  private readonly pageAccounts = new Map<string, PageSide>();
  private readonly merchantSide = new Map<number, MerchantSide>();
  private readonly dirtyMerchants = new Set<number>();
  /** Hash and time of the page's blocks with logs, and of its last block. */
  private blocks = new Map<number, { hash: string; time: number }>();
  private batch: { topUp: number; consume: number; refund: number } | undefined;
  private everDecrypted: boolean;
  private readonly insertRecord;

  /** @param cursor - the index's cursor, or undefined for a new index */
  constructor(
    private readonly indexer: Indexer,
    private readonly cursor: Cursor | undefined,
  ) {
    const db = indexer.db;
    this.recordCount = cursor?.recordCount ?? 0;
    this.final = cursor?.final ?? 0;
    const genesis = genesisHead(indexer.chainId, indexer.config.ledger);
    this.replay = new LedgerReplay({ privateKey: indexer.config.privateKey, keepRecords: false }, genesis, (r) => this.record(r));
    this.insertRecord = db.prepare(
      `INSERT INTO records (record_index, tx_hash, log_index, block_number, block_time, merchant_id, account, kind, amount,
                            commitment, ciphertext, verification, problems, d_time, d_order_ref, d_memo)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.everDecrypted = db.prepare("SELECT 1 FROM records WHERE d_time IS NOT NULL LIMIT 1").get() !== undefined;
    if (cursor !== undefined) this.restore(cursor);
  }

  /** Puts the books, side figures and chain state of the index at `cursor` back into memory. */
  private restore(cursor: Cursor): void {
    const db = this.indexer.db;
    for (const m of db.prepare("SELECT * FROM merchants").iterate() as Iterable<Record<string, number | string | null>>) {
      const id = Number(m.merchant_id);
      const books = this.replay.books.merchant(id);
      books.status = Number(m.status);
      books.recordCount = Number(m.record_count);
      books.accountCount = Number(m.account_count);
      books.toppedUp = BigInt(m.topped_up!);
      books.consumed = BigInt(m.consumed!);
      books.refunded = BigInt(m.refunded!);
      books.batches = Number(m.batches);
      books.nextSequence = BigInt(m.next_sequence!);
      this.merchantSide.set(id, {
        recorder: (m.recorder as string | null) ?? null,
        registeredBlock: m.registered_block === null ? null : Number(m.registered_block),
        suspendedReason: (m.suspended_reason as string | null) ?? null,
        bad: Number(m.bad_records),
        firstTime: m.first_time === null ? null : Number(m.first_time),
        lastTime: m.last_time === null ? null : Number(m.last_time),
        lastServiceTime: m.last_service_time === null ? null : Number(m.last_service_time),
      });
    }
    for (const a of db.prepare("SELECT * FROM accounts").iterate() as Iterable<Record<string, number | string>>) {
      const account: AccountState = {
        merchantId: Number(a.merchant_id),
        account: String(a.account),
        recordCount: Number(a.record_count),
        initialAmount: BigInt(a.initial_amount),
        toppedUp: BigInt(a.topped_up),
        consumed: BigInt(a.consumed),
        refunded: BigInt(a.refunded),
      };
      this.replay.books.accounts.set(`${account.merchantId}:${account.account}`, account);
    }
    const batches = Number((db.prepare("SELECT count(*) AS n FROM batches").get() as { n: number }).n);
    const midway = getMeta(db, "started_midway") === "1";
    this.replay.resume({
      head: Buffer.from(cursor.chainHead.slice(2), "hex"),
      lastIndex: BigInt(cursor.recordCount),
      batches,
      startedMidway: midway,
    });
  }

  /**
   * Writes one page in one transaction. A page that fails is rolled back and leaves this writer
   * behind the replay: sync() throws, and the next sync restores a new writer from the index.
   */
  async write(page: LogPage): Promise<void> {
    const db = this.indexer.db;
    const blocks = await this.blockInfo(page);
    const decryptedBefore = this.replay.decrypted;
    const wrongBefore = this.replay.wrongKey;
    await inTransaction(db, async () => {
      for (const log of page.logs) await this.log(log);
      this.flushBooks();
      this.flushDiscrepancies();
      if (
        this.indexer.config.privateKey !== undefined &&
        !this.everDecrypted &&
        this.replay.decrypted === decryptedBefore &&
        this.replay.wrongKey > wrongBefore
      ) {
        throw new PrepaidLedgerError("WRONG_KEY", "the key opens none of the records: it is not the regulator's key", {
          details: { notForThisKey: this.replay.wrongKey - wrongBefore, keyAddress: this.indexer.decryptedFor },
        });
      }
      if (this.cursor === undefined && this.pages === 0) this.writeIdentity();
      const settled = blocks.get(Number(page.toBlock))!;
      db.prepare(
        `INSERT INTO sync_state (id, settled_block, settled_hash, settled_time, record_count, chain_head, final_record_count)
         VALUES (1, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET settled_block = excluded.settled_block, settled_hash = excluded.settled_hash,
           settled_time = excluded.settled_time, record_count = excluded.record_count, chain_head = excluded.chain_head,
           final_record_count = excluded.final_record_count`,
      ).run(Number(page.toBlock), settled.hash, settled.time, Number(this.replay.lastIndex), bytesToHex(this.replay.head), this.final);
    });
    if (this.replay.decrypted > decryptedBefore) this.everDecrypted = true;
    this.pages++;
  }

  private writeIdentity(): void {
    const db = this.indexer.db;
    for (const [k, v] of Object.entries(this.indexer.identity)) if (v !== "") setMeta(db, k, v);
    setMeta(db, "genesis_head", bytesToHex(genesisHead(this.indexer.chainId, this.indexer.config.ledger)));
    setMeta(db, "from_block", String(this.indexer.config.fromBlock));
    setMeta(db, "started_midway", this.replay.startedMidway ? "1" : "0");
    setMeta(db, "confirmations", String(this.indexer.confirmations));
  }

  /** Timestamps of the blocks with logs, and the hash and time of the page's last block. */
  private async blockInfo(page: LogPage): Promise<Map<number, { hash: string; time: number }>> {
    const numbers = new Set(page.logs.map((l) => Number(l.blockNumber)));
    numbers.add(Number(page.toBlock));
    const out = new Map<number, { hash: string; time: number }>();
    const list = [...numbers];
    for (let i = 0; i < list.length; i += 16) {
      const slice = list.slice(i, i + 16);
      const blocks = await Promise.all(
        slice.map((n) => this.indexer.call<{ hash: string; timestamp: string } | null>("eth_getBlockByNumber", [hex(n), false])),
      );
      blocks.forEach((b, j) => {
        if (b === null) {
          throw new PrepaidLedgerError("RPC_ERROR", "the node does not have a block it just returned logs for", {
            details: { block: slice[j] },
            retryable: true,
          });
        }
        out.set(slice[j], { hash: b.hash.toLowerCase(), time: Number(b.timestamp) });
      });
    }
    this.blocks = out;
    return out;
  }

  private async log(log: RpcLog): Promise<void> {
    const db = this.indexer.db;
    const { ledger, quorum } = this.indexer;
    const address = log.address.toLowerCase();
    const topic = log.topics[0];
    const position = [log.transactionHash.toLowerCase(), Number(log.logIndex), Number(log.blockNumber)] as const;
    const time = this.blocks.get(position[2])!.time;
    if (address === quorum) {
      if (topic !== CHECKPOINT_FINALIZED) return;
      const parsed = quorumInterface.parseLog({ topics: log.topics, data: log.data })!;
      this.final = Math.max(this.final, Number(parsed.args.recordCount));
      db.prepare(
        `INSERT INTO checkpoints (tx_hash, log_index, block_number, block_time, source, record_count, chain_head, state_digest, set_id)
         VALUES (?, ?, ?, ?, 'final', ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ).run(...position, time, Number(parsed.args.recordCount), String(parsed.args.chainHead), String(parsed.args.stateDigest), Number(parsed.args.setId));
      return;
    }
    if (address !== ledger) return;
    if (topic === LEDGER_TOPICS.BatchRecorded) {
      const b = decodeBatchRecorded(log);
      this.batch = { topUp: 0, consume: 0, refund: 0 };
      await this.replay.log(log);
      const sums = this.batch;
      this.batch = undefined;
      const m = this.replay.books.merchant(b.merchantId);
      this.dirtyMerchants.add(b.merchantId);
      db.prepare(
        `INSERT INTO batches (tx_hash, log_index, block_number, block_time, merchant_id, sequence, recorder, first_record,
                              record_count, chain_head, topped_up, consumed, refunded, liability_after)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ).run(
        ...position,
        time,
        b.merchantId,
        Number(b.sequence),
        b.recorder.toLowerCase(),
        Number(b.firstRecordIndex),
        b.count,
        bytesToHex(b.chainHead),
        sums.topUp,
        sums.consume,
        sums.refund,
        Number(balanceOf(m)),
      );
      return;
    }
    if (topic === LEDGER_TOPICS.CheckpointMarked) {
      db.prepare(
        `INSERT INTO checkpoints (tx_hash, log_index, block_number, block_time, source, record_count, chain_head)
         VALUES (?, ?, ?, ?, 'marked', ?, ?) ON CONFLICT DO NOTHING`,
      ).run(...position, time, Number(BigInt(log.topics[1])), "0x" + log.data.slice(2, 66));
      return;
    }
    const event =
      topic === LEDGER_TOPICS.MerchantRegistered
        ? "registered"
        : topic === LEDGER_TOPICS.MerchantSuspended
          ? "suspended"
          : topic === LEDGER_TOPICS.MerchantReinstated
            ? "reinstated"
            : undefined;
    if (event !== undefined) {
      const merchantId = Number(BigInt(log.topics[1]));
      const side = this.merchant(merchantId);
      let detail: string | null = null;
      if (event === "registered") {
        side.recorder = getAddress("0x" + log.topics[2].slice(-40)).toLowerCase();
        side.registeredBlock = position[2];
        detail = side.recorder;
      } else if (event === "suspended") {
        detail = reasonText(log.data.slice(0, 66));
        side.suspendedReason = detail;
      } else {
        side.suspendedReason = null;
      }
      db.prepare(
        `INSERT INTO merchant_events (tx_hash, log_index, block_number, block_time, merchant_id, event, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ).run(...position, time, merchantId, event, detail);
      this.dirtyMerchants.add(merchantId);
    }
    // Recorded logs wait in the replay for their batch; merchant events update its books.
    await this.replay.log(log);
  }

  private merchant(id: number): MerchantSide {
    let m = this.merchantSide.get(id);
    if (m === undefined) {
      m = { recorder: null, registeredBlock: null, suspendedReason: null, bad: 0, firstTime: null, lastTime: null, lastServiceTime: null };
      this.merchantSide.set(id, m);
    }
    return m;
  }

  /** Called by the replay for every record, once verified. */
  private record(r: VerifiedRecord): void {
    const time = this.blocks.get(r.blockNumber)!.time;
    const bad = r.problems.length > 0;
    const amount = Number(r.amount);
    const verification = bad ? "failed" : r.details !== undefined ? "verified" : "encrypted";
    const changes = this.insertRecord.run(
      Number(r.recordIndex),
      r.txHash.toLowerCase(),
      r.logIndex,
      r.blockNumber,
      time,
      r.merchantId,
      r.account,
      r.kind,
      amount,
      r.commitment,
      r.ciphertext,
      verification,
      r.problems.join(","),
      r.details?.time ?? null,
      r.details?.orderRef ?? null,
      r.details?.memo ?? null,
    ).changes;
    if (Number(changes) === 0) return; // already stored (cannot happen with the cursor; guarded anyway)
    this.newRecords++;
    this.recordCount = Number(r.recordIndex);
    if (this.batch !== undefined) {
      if (r.kind === 1) this.batch.topUp += amount;
      else if (r.kind === 2) this.batch.consume += amount;
      else if (r.kind === 3) this.batch.refund += amount;
    }
    const key = `${r.merchantId}:${r.account}`;
    let a = this.pageAccounts.get(key);
    if (a === undefined) {
      a = { bad: 0, opened: time, last: time };
      this.pageAccounts.set(key, a);
    }
    a.last = time;
    const m = this.merchant(r.merchantId);
    m.firstTime ??= time;
    m.lastTime = time;
    if (r.kind === 2 || r.kind === 3) m.lastServiceTime = time;
    if (bad) {
      a.bad++;
      m.bad++;
    }
    this.dirtyMerchants.add(r.merchantId);
  }

  private flushBooks(): void {
    const db = this.indexer.db;
    const upsertAccount = db.prepare(
      `INSERT INTO accounts (merchant_id, account, record_count, initial_amount, topped_up, consumed, refunded, balance,
                             bad_records, opened_time, last_time)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (merchant_id, account) DO UPDATE SET record_count = excluded.record_count,
         initial_amount = excluded.initial_amount, topped_up = excluded.topped_up, consumed = excluded.consumed,
         refunded = excluded.refunded, balance = excluded.balance, bad_records = bad_records + excluded.bad_records,
         last_time = excluded.last_time`,
    );
    // opened_time is written when the account is first stored, and kept; bad_records adds the page's.
    for (const [key, side] of this.pageAccounts) {
      const a = this.replay.books.accounts.get(key);
      if (a === undefined) continue; // a refused record opened nothing
      upsertAccount.run(
        a.merchantId,
        a.account,
        a.recordCount,
        Number(a.initialAmount),
        Number(a.toppedUp),
        Number(a.consumed),
        Number(a.refunded),
        Number(balanceOf(a)),
        side.bad,
        side.opened,
        side.last,
      );
    }
    this.pageAccounts.clear();
    const upsertMerchant = db.prepare(
      `INSERT INTO merchants (merchant_id, status, recorder, registered_block, suspended_reason, record_count, account_count,
                              topped_up, consumed, refunded, batches, next_sequence, bad_records, first_time, last_time, last_service_time)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (merchant_id) DO UPDATE SET status = excluded.status, recorder = excluded.recorder,
         registered_block = excluded.registered_block, suspended_reason = excluded.suspended_reason,
         record_count = excluded.record_count, account_count = excluded.account_count, topped_up = excluded.topped_up,
         consumed = excluded.consumed, refunded = excluded.refunded, batches = excluded.batches,
         next_sequence = excluded.next_sequence, bad_records = excluded.bad_records, first_time = excluded.first_time,
         last_time = excluded.last_time, last_service_time = excluded.last_service_time`,
    );
    for (const id of this.dirtyMerchants) {
      const m = this.replay.books.merchant(id);
      const s = this.merchant(id);
      upsertMerchant.run(
        id,
        m.status,
        s.recorder,
        s.registeredBlock,
        s.suspendedReason,
        m.recordCount,
        m.accountCount,
        Number(m.toppedUp),
        Number(m.consumed),
        Number(m.refunded),
        m.batches,
        Number(m.nextSequence),
        s.bad,
        s.firstTime,
        s.lastTime,
        s.lastServiceTime,
      );
    }
    this.dirtyMerchants.clear();
  }

  private flushDiscrepancies(): void {
    const found = this.replay.discrepancies.splice(0);
    if (found.length === 0) return;
    const insert = this.indexer.db.prepare(
      `INSERT INTO discrepancies (kind, message, record_index, merchant_id, account, tx_hash, block_number, log_index, details)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    for (const d of found) {
      insert.run(
        d.kind,
        d.message,
        d.recordIndex === undefined ? null : Number(d.recordIndex),
        d.merchantId ?? null,
        d.account ?? null,
        d.txHash?.toLowerCase() ?? null,
        d.blockNumber ?? null,
        d.logIndex ?? null,
        d.details === undefined ? null : JSON.stringify(d.details, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)),
      );
    }
  }
}

/** A bytes32 reason as text when it is a short string, else its hex. */
function reasonText(word: string): string {
  try {
    return decodeBytes32String(word);
  } catch {
    return word;
  }
}
