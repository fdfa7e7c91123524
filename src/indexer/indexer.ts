/**
 * The regulator's indexer: follows one PrepaidLedger (and, optionally, its SupervisorQuorum) over
 * JSON-RPC into a local SQLite index, verifying every record on the way with the reader's replay
 * (hash chain, decryption, commitment, on-chain vs decrypted values).
 *
 * Crash safety: each page of logs is written in ONE transaction together with the cursor ("every
 * log up to block N is stored") and the replay's state at that block, so a killed indexer resumes
 * from the last committed page and can neither skip nor repeat a log. Every row that comes from
 * a log is also keyed by (transaction, log index) as a second guard.
 *
 * Reorgs (src/indexer/reorg.ts): the index reads up to the chain head; the rows of blocks less
 * than `confirmations` deep are provisional, kept with their blocks' hashes and an undo log. A
 * reorg is noticed by block hash within a round and between rounds; one within the unsettled
 * blocks is rolled back to the fork point and read again, one deeper marks the index
 * (REORG_TOO_DEEP) until {@link Indexer.repair} rebuilds it.
 *
 * ```ts
 * const indexer = await Indexer.open({ ledger, quorum, privateKey: regulatorKey, db: "index.sqlite" }, provider);
 * const result = await indexer.sync({ onProgress: (p) => console.log(p.settledBlock) });
 * indexer.close();
 * ```
 */

import { Interface, getAddress } from "ethers";

import { parseConfig } from "../config.js";
import { addressOf, publicKeyOf } from "../crypto/ecies.js";
import { PrepaidLedgerError, isError } from "../errors.js";
import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import { CHAIN_VERSIONS, chainVersionOf, type ChainVersion } from "../ledger/codec.js";
import { toLedgerError } from "../ledger/revert.js";
import { fetchLogPages, type JsonRpcLike } from "../regulator/logs.js";
import { timedRpc } from "../rpc.js";
import { SUPERVISOR_QUORUM_ABI } from "../ledger/quorum-abi.js";
import { IndexerConfig, type IndexerConfigInput, type IndexerConfigValues, type ReorgRollback, type SyncOptions, type SyncResult } from "./config.js";
import { compareWithContract } from "./contract-check.js";
import { CUSTODY_LINK_TOPICS, CUSTODY_TOPICS, custodyAddressesSeen, decodeCustodyEvent, decodeCustodyLinkEvent, insertCustodyEvent } from "./custody.js";
import { PROTECTION_TOPICS, decodeProtectionEvent, insertProtectionEvent } from "./protection.js";
import { IndexQueries } from "./queries.js";
import { ChainMoved, PageWriter, type Cursor } from "./page-writer.js";
import { evaluateRisk, storeAlerts } from "./risk.js";
import {
  type BlockHeader,
  type ReorgMark,
  clearIndex,
  pruneSettled,
  recentBlocks,
  reorgMark,
  rollBack,
  setReorgMark,
} from "./reorg.js";
import { getMeta, inTransaction, setMeta, type Database } from "./schema.js";
import { indexExists, openIndex } from "./open.js";

const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);
const quorumInterface = new Interface(SUPERVISOR_QUORUM_ABI);

/** Chains where blocks are final as soon as they are mined: local development nodes. */
const INSTANT_CHAINS = new Set([31337n, 1337n]);

export { IndexerConfig, type IndexerConfigInput, type IndexerConfigValues, type ReorgRollback, type SyncOptions, type SyncProgress, type SyncResult } from "./config.js";

type Provider = JsonRpcLike;

const hex = (n: number | bigint) => "0x" + n.toString(16);


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

/**
 * One JSON-RPC read with the indexer's error mapping. Every call the indexer makes is a read: a
 * transient failure (a reset, a 502, a truncated answer, a node behind the head) is tried again
 * twice at once; a timeout is not (it has cost a whole timeout already), and neither is a
 * refusal such as a revert.
 */
async function read<T>(rpc: Provider, method: string, params: unknown[]): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await rpc.send(method, params)) as T;
    } catch (e) {
      const error = rpcError(e, method);
      if (attempt >= 3 || error.code !== "RPC_ERROR" || !error.retryable) throw error;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

export class Indexer {
  readonly config: IndexerConfigValues;
  readonly db: Database;
  readonly chainId: bigint;
  /** The ledger's hash-chain version (docs/FORMAT.md 7), from its genesis head. */
  readonly chainVersion: ChainVersion;
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
  /**
   * @internal The custody contracts whose logs are read (lowercase), set at the start of each
   * round: every one the ledger attached in the index, and the one its `custody()` names now.
   */
  custody = new Set<string>();
  private readonly rpc: Provider;

  private constructor(config: IndexerConfigValues, rpc: Provider, db: Database, chainId: bigint, chainVersion: ChainVersion) {
    this.config = config;
    this.rpc = timedRpc(rpc, config.rpcTimeoutMs);
    this.db = db;
    this.chainId = chainId;
    this.chainVersion = chainVersion;
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
   *   created), `UNSUPPORTED_VERSION` (a ledger whose hash chain is of no version this code
   *   knows: no file is created), `INDEX_CORRUPT`, `INDEX_MISMATCH`, `WRONG_KEY` (not the key the
   *   index was built with)
   */
  static async open(input: IndexerConfigInput, provider: Provider): Promise<Indexer> {
    const config = parseConfig(IndexerConfig, input, "indexer");
    const timed = timedRpc(provider, config.rpcTimeoutMs);
    const call = <T>(method: string, params: unknown[]) => read<T>(timed, method, params);
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
    // The hash-chain rule the ledger links with, told by its genesis head (every version has the
    // view); a ledger of an unknown version is refused before any file is made.
    const genesis = String(
      ledgerInterface.decodeFunctionResult(
        "genesisHead",
        await call<string>("eth_call", [{ to: config.ledger, data: ledgerInterface.encodeFunctionData("genesisHead") }, "latest"]),
      )[0],
    );
    const chainVersion = chainVersionOf(genesis, chainId, config.ledger);
    const unsupported = () =>
      new PrepaidLedgerError("UNSUPPORTED_VERSION", "the ledger's hash chain is of a version this indexer cannot verify", {
        details: { ledger: config.ledger, genesisHead: genesis, supported: [...CHAIN_VERSIONS] },
      });
    // Refused before a new index file is made; an existing index is checked for its identity
    // first, which names the mismatch more precisely (another chain or ledger).
    if (chainVersion === undefined && !indexExists(config.db)) throw unsupported();
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
    const indexer = new Indexer(config, provider, db, chainId, chainVersion ?? CHAIN_VERSIONS[0]);
    try {
      indexer.checkIdentity();
      if (chainVersion === undefined) throw unsupported();
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
   * Reads every block after the cursor, up to the chain head, into the index (the rows of blocks
   * less than `confirmations` deep are provisional), then evaluates the risk rules. A reorg
   * within the unsettled blocks is rolled back and read again (`onReorg` hears of it).
   *
   * @throws PrepaidLedgerError `RPC_ERROR` / `TIMEOUT` (retryable: run again, it resumes),
   *   `WRONG_KEY` (the key opens none of the records: nothing of that page is written),
   *   `REORG_TOO_DEEP` (a settled block was replaced: the index is marked, see {@link repair})
   */
  async sync(options: SyncOptions = {}): Promise<SyncResult> {
    const mark = reorgMark(this.db);
    if (mark !== null) {
      throw new PrepaidLedgerError(
        "REORG_TOO_DEEP",
        "the index holds blocks of a dead branch (a reorg deeper than its confirmations): run `prepaid sync --repair`",
        { details: { ...mark } },
      );
    }
    const started = performance.now();
    const reorgs: ReorgRollback[] = [];
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.round(options, started, reorgs);
      } catch (e) {
        if (!(e instanceof ChainMoved)) throw e;
        if (attempt >= 4) {
          throw new PrepaidLedgerError("RPC_ERROR", "the chain kept changing while it was read", {
            details: { what: e.what, block: e.block, attempts: attempt },
            retryable: true,
          });
        }
      }
    }
  }

  private async round(options: SyncOptions, started: number, reorgs: ReorgRollback[]): Promise<SyncResult> {
    const latest = Number(await this.call<string>("eth_blockNumber", []));
    const settledLine = latest - this.confirmations;
    let state = this.loadState();
    if (state !== undefined) {
      const r = await this.reconcile(state);
      if (r !== undefined) {
        reorgs.push(r);
        options.onReorg?.(r);
        state = this.loadState();
      }
    }
    const from = state === undefined ? this.config.fromBlock : state.settledBlock + 1;
    await this.followCustody(state, latest);
    const writer = new PageWriter(this, state);
    let aborted = false;
    if (from <= latest) {
      for await (const page of fetchLogPages(this.rpc, {
        address: [this.ledger, ...(this.quorum === undefined ? [] : [this.quorum]), ...this.custody],
        fromBlock: BigInt(from),
        toBlock: BigInt(latest),
        maxBlockRange: this.config.maxBlockRange,
      })) {
        await writer.write(page, settledLine);
        const seconds = (performance.now() - started) / 1000;
        options.onProgress?.({
          fromBlock: from,
          targetBlock: latest,
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
      await inTransaction(this.db, () => {
        pruneSettled(this.db, settledLine);
        setMeta(this.db, "confirmed_block", String(Math.min(settledLine, settled.settledBlock)));
      });
      matchesContract = await this.compareWithContract(settled.settledBlock);
      await this.evaluateRisk(settled.settledBlock, settled.settledTime);
    }
    const q = this.queries();
    const settledBlock = settled?.settledBlock ?? from - 1;
    return {
      fromBlock: from,
      targetBlock: latest,
      settledBlock,
      confirmedBlock: Math.min(settledLine, settledBlock),
      reorgs,
      records: writer.recordCount,
      newRecords: writer.newRecords,
      discrepancies: q.count("discrepancies"),
      alerts: q.count("alerts"),
      matchesContract,
      seconds: (performance.now() - started) / 1000,
      aborted,
    };
  }

  /**
   * Learns which custody contracts to read (src/indexer/custody.ts): those the index has seen the
   * ledger attach, and the one its `custody()` view names at `latest` (a ledger of a version
   * without custody has none). A contract not read from the first block yet — attached after
   * the index started, or the index was upgraded from schema version 3 — has its logs, and the
   * ledger's custody-link events, read from the first block up to the cursor first, in one
   * transaction that also notes it in meta `custody_read` (a JSON list).
   */
  private async followCustody(state: Cursor | undefined, latest: number): Promise<void> {
    const read = new Set<string>(JSON.parse(getMeta(this.db, "custody_read") ?? "[]") as string[]);
    const wanted = new Set<string>([...read, ...custodyAddressesSeen(this.db)]);
    try {
      const data = ledgerInterface.encodeFunctionData("custody");
      const out = await this.call<string>("eth_call", [{ to: this.ledger, data }, hex(latest)]);
      const now = String(ledgerInterface.decodeFunctionResult("custody", out)[0]).toLowerCase();
      if (BigInt(now) !== 0n) wanted.add(now);
    } catch (e) {
      // A ledger deployed before custody existed has no custody() view: it has no custody.
      if (!isError(e, "LEDGER_REVERTED")) throw e;
    }
    const missing = [...wanted].filter((a) => !read.has(a));
    if (missing.length > 0) {
      await inTransaction(this.db, async () => {
        if (state !== undefined) await this.backfillCustody(missing, state.settledBlock);
        setMeta(this.db, "custody_read", JSON.stringify([...read, ...missing].sort()));
      });
    }
    this.custody = wanted;
  }

  /**
   * Reads the custody events of `addresses` (their holder-protection events too), and the
   * ledger's custody-link events, up to block `to`.
   */
  private async backfillCustody(addresses: string[], to: number): Promise<void> {
    const fromBlock = Number(getMeta(this.db, "from_block") ?? this.config.fromBlock);
    if (fromBlock > to) return;
    const times = new Map<number, number>();
    for await (const page of fetchLogPages(this.rpc, {
      address: [this.ledger, ...addresses],
      topics: [[...Object.keys(CUSTODY_TOPICS), ...Object.keys(CUSTODY_LINK_TOPICS), ...Object.keys(PROTECTION_TOPICS)]],
      fromBlock: BigInt(fromBlock),
      toBlock: BigInt(to),
      maxBlockRange: this.config.maxBlockRange,
    })) {
      for (const log of page.logs) {
        const address = log.address.toLowerCase();
        const ofCustody = addresses.includes(address);
        const decoded = address === this.ledger ? decodeCustodyLinkEvent(log) : ofCustody ? decodeCustodyEvent(log) : undefined;
        // A custody contract's claims and cooling-off returns (src/indexer/protection.ts).
        const protection = ofCustody ? decodeProtectionEvent(log, false) : undefined;
        if (decoded === undefined && protection === undefined) continue;
        const n = Number(log.blockNumber);
        if (!times.has(n)) {
          const h = await this.header(n);
          if (h === null) throw new PrepaidLedgerError("RPC_ERROR", "the node does not have a block it just returned logs for", { details: { block: n }, retryable: true });
          times.set(n, h.time);
        }
        const position = [log.transactionHash.toLowerCase(), Number(log.logIndex), n] as const;
        if (decoded !== undefined) insertCustodyEvent(this.db, position, times.get(n)!, decoded);
        if (protection !== undefined) insertProtectionEvent(this.db, position, times.get(n)!, protection);
      }
    }
  }

  /**
   * Checks that the cursor block is still on the chain. If not, finds the fork point among the
   * unsettled blocks read and rolls the index back to it; if it is deeper, marks the index.
   *
   * @throws PrepaidLedgerError `REORG_TOO_DEEP` (the index is then marked)
   */
  private async reconcile(state: Cursor): Promise<ReorgRollback | undefined> {
    const tip = await this.header(state.settledBlock);
    if (tip !== null && tip.hash === state.settledHash) return undefined;
    const fork = await this.findFork();
    if (fork !== undefined) {
      try {
        const rolledBackTo = await rollBack(this.db, fork, state.settledBlock);
        return { fork, rolledBackTo, from: state.settledBlock };
      } catch (e) {
        if (!isError(e, "REORG_TOO_DEEP")) throw e;
      }
    }
    const mark: ReorgMark = {
      block: state.settledBlock,
      indexedHash: state.settledHash,
      chainHash: tip?.hash ?? null,
      confirmations: this.confirmations,
      detectedAt: new Date().toISOString(),
    };
    await inTransaction(this.db, () => setReorgMark(this.db, mark));
    throw new PrepaidLedgerError(
      "REORG_TOO_DEEP",
      "a block the index treated as settled is no longer on the chain: the index is marked; run `prepaid sync --repair`",
      { details: { ...mark } },
    );
  }

  /** The newest block of `recent_blocks` whose hash is still the chain's, or undefined. */
  private async findFork(): Promise<number | undefined> {
    const stored = recentBlocks(this.db);
    for (let i = 0; i < stored.length; i += 16) {
      const slice = stored.slice(i, i + 16);
      const now = await Promise.all(slice.map((b) => this.header(b.number)));
      for (let j = 0; j < slice.length; j++) if (now[j] !== null && now[j]!.hash === slice[j].hash) return slice[j].number;
    }
    return undefined;
  }

  /**
   * Makes a marked index (or one whose cursor block left the chain) follow the chain again: rolls
   * it back to the fork point when that is among its unsettled blocks, else empties it so the
   * next sync reads everything again (its identity is kept). Then it is no longer marked. An
   * index upgraded in place from schema version 1 or 2 (meta `recorders_from_block`) is emptied
   * and read again too, to hold the recorder events of its early blocks.
   */
  async repair(): Promise<{ rolledBackTo: number | null; rebuilt: boolean }> {
    const state = this.loadState();
    if (state !== undefined) {
      const tip = await this.header(state.settledBlock);
      const onChain = tip !== null && tip.hash === state.settledHash;
      // An index upgraded from schema 2 lacks the recorder events of the blocks it had read: rebuild it too.
      const recordersComplete = getMeta(this.db, "recorders_from_block") === undefined;
      if (onChain && reorgMark(this.db) === null && recordersComplete) return { rolledBackTo: null, rebuilt: false };
      const fork = onChain ? undefined : await this.findFork();
      if (fork !== undefined) {
        try {
          const rolledBackTo = await rollBack(this.db, fork, state.settledBlock);
          await inTransaction(this.db, () => setReorgMark(this.db, null));
          return { rolledBackTo, rebuilt: false };
        } catch (e) {
          if (!isError(e, "REORG_TOO_DEEP")) throw e;
        }
      }
    }
    await clearIndex(this.db);
    return { rolledBackTo: null, rebuilt: true };
  }

  /** @internal A block's header on the node's chain, or null if it has no such block. */
  async header(n: number): Promise<BlockHeader | null> {
    const b = await this.call<{ hash: string; parentHash: string; timestamp: string } | null>("eth_getBlockByNumber", [hex(n), false]);
    return b === null ? null : { number: n, hash: b.hash.toLowerCase(), parentHash: b.parentHash.toLowerCase(), time: Number(b.timestamp) };
  }

  /** @internal JSON-RPC with the indexer's error mapping. */
  async call<T>(method: string, params: unknown[]): Promise<T> {
    return read<T>(this.rpc, method, params);
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

  /** Merchants' books and the chain head at `block`, against the contract's views (contract-check.ts). */
  private compareWithContract(block: number): Promise<boolean | "unavailable"> {
    return compareWithContract(this.db, this.queries(), (data) => this.call<string>("eth_call", [{ to: this.ledger, data }, hex(block)]), block);
  }

  private async evaluateRisk(block: number, time: number): Promise<void> {
    const alerts = evaluateRisk(this.db, this.config.risk, time, this.quorum !== undefined);
    await inTransaction(this.db, () => storeAlerts(this.db, alerts, block, time));
  }
}
