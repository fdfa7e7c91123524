/**
 * The regulator's reader: replays a ledger from its events and proves (or disproves) its books.
 *
 * For every record it checks the hash chain link, decrypts the details with the regulator's key,
 * compares the decrypted kind and amount with the on-chain ones, recomputes the commitment, and
 * books the record into accounts and merchants rebuilt from records alone. At the end it compares
 * the rebuilt books and chain head with the contract's own views at the same block. Every problem
 * becomes a Discrepancy naming its record; a bad record never stops the read.
 *
 * ```ts
 * const reader = await RegulatorReader.open({ ledger, privateKey: regulatorKey }, provider);
 * const report = await reader.read();
 * if (!report.ok) console.table(report.discrepancies);
 * ```
 */
import { Contract, type Provider } from "ethers";
import { z } from "zod";

import { addressSchema, parseConfig, privateKeySchema } from "../config.js";
import { PrepaidLedgerError, isError } from "../errors.js";
import { canonicalFromSealed, decodeSealed, type SealedPayload } from "../crypto/details.js";
import { openBatchRecord, openEnvelope } from "../crypto/envelope.js";
import { bytesToHex, keccak256 } from "../crypto/hash.js";
import { openSingle } from "../crypto/single.js";
import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import { SUPERVISOR_QUORUM_ABI } from "../supervisor/abi.js";
import { CHAIN_VERSIONS, RECORDED_DATA_HEAD_BYTES, type ChainVersion, chainVersionOf, genesisHead, linkBatch } from "../ledger/codec.js";
import { toLedgerError } from "../ledger/revert.js";
import { Books, balanceOf, type MerchantState } from "./books.js";
import { fetchLogs, type JsonRpcLike, type RpcLog } from "./logs.js";
import { timedRpc, withTimeout } from "../rpc.js";
import { type BatchRecordedLog, LEDGER_TOPICS, decodeBatchRecorded, decodeRecorded, type RecordedLog } from "./events.js";

const blockSchema = z.union([z.number().int().min(0), z.bigint().min(0n)]);

export const ReaderConfig = z
  .object({
    /** The PrepaidLedger address. */
    ledger: addressSchema,
    /** A recipient's private key (the regulator's); without it records are not decrypted. */
    privateKey: privateKeySchema.optional(),
    /** First block to read; the ledger's deployment block or earlier for a full proof. */
    fromBlock: blockSchema.default(0),
    /** Last block to read, or "latest" (fixed when read() starts). */
    toBlock: z.union([blockSchema, z.literal("latest")]).default("latest"),
    /** Blocks per eth_getLogs request to start with (halved when a node refuses). */
    maxBlockRange: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Compare every account's books with the contract ("all"), or only merchants and the chain. */
    compareAccounts: z.enum(["all", "none"]).default("all"),
    /** Keep every verified record, decrypted, in the report (memory grows with the ledger). */
    keepRecords: z.boolean().default(false),
    /** A SupervisorQuorum confirming this ledger: the report then tells confirmed from pending. */
    quorum: addressSchema.optional(),
    /** How long any one JSON-RPC call may take before the read fails with TIMEOUT (retryable). */
    rpcTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  })
  .refine((c) => c.toBlock === "latest" || BigInt(c.fromBlock) <= BigInt(c.toBlock), {
    message: "fromBlock is after toBlock",
    path: ["fromBlock"],
  });
export type ReaderConfigInput = z.input<typeof ReaderConfig>;
export type ReaderConfigValues = z.output<typeof ReaderConfig>;

/** The kinds of problem the reader reports. */
export type DiscrepancyKind =
  | "corrupt-ciphertext" // authentication failed: the ciphertext was altered
  | "wrong-key" // the record or batch was not encrypted for this key
  | "wrapped-key-corrupt" // the batch data key wrapped for this key fails to unwrap
  | "malformed-envelope" // the batch envelope does not parse
  | "unsupported-format" // a ciphertext format byte this reader does not know
  | "malformed-payload" // decrypted, but not a valid sealed payload
  | "commitment-mismatch" // the commitment is not keccak256 of the decrypted details
  | "amount-mismatch" // the decrypted amount differs from the on-chain amount
  | "kind-mismatch" // the decrypted kind differs from the on-chain kind
  | "chain-break" // a record is missing, out of order, or the chain head does not match
  | "rule-violation" // a logged record breaks the ledger's rules (a correct ledger never logs one)
  | "books-mismatch" // rebuilt books differ from the contract's stored figures
  | "confirmation-mismatch"; // a final checkpoint's chain head differs from the one rebuilt at its count

export interface Discrepancy {
  kind: DiscrepancyKind;
  message: string;
  recordIndex?: bigint;
  merchantId?: number;
  account?: string;
  txHash?: string;
  blockNumber?: number;
  logIndex?: number;
  details?: Record<string, unknown>;
}

/** One record as the reader saw it. */
export interface VerifiedRecord {
  recordIndex: bigint;
  merchantId: number;
  account: string;
  kind: number;
  amount: bigint;
  commitment: string;
  /** The record's ciphertext as logged (docs/FORMAT.md 3). */
  ciphertext: Uint8Array;
  txHash: string;
  blockNumber: number;
  logIndex: number;
  /** The decrypted details, when they could be decrypted. */
  details?: SealedPayload;
  /** The kinds of discrepancy found on this record (empty: verified). */
  problems: DiscrepancyKind[];
  /** Covered by the supervisors' last final checkpoint (only with a `quorum` configured). */
  confirmed?: boolean;
}

export interface MerchantReport extends MerchantState {
  liability: bigint;
  /** Records of this merchant with at least one problem. */
  badRecords: number;
}

export interface SupervisionReport {
  chainId: bigint;
  ledger: string;
  fromBlock: bigint;
  toBlock: bigint;
  records: number;
  batches: number;
  /** Records whose details were decrypted and matched their commitment and on-chain values. */
  verified: number;
  accounts: number;
  chain: {
    /** Records counted and head computed from the logs read. */
    recordCount: bigint;
    head: string;
    /** The contract's chainHead() at toBlock. */
    contractRecordCount: bigint;
    contractHead: string;
    /** The range began after the ledger's first record: links before it could not be checked. */
    startedMidway: boolean;
    /** The hash-chain rule the ledger links with (docs/FORMAT.md 7), read from its genesis head. */
    version: ChainVersion;
  };
  merchants: MerchantReport[];
  discrepancies: Discrepancy[];
  /** No discrepancy at all. */
  ok: boolean;
  /** With a `quorum` configured: how far the supervisors have confirmed the ledger at toBlock. */
  confirmation?: {
    quorum: string;
    /** Records 1..finalRecordCount are covered by a final checkpoint. */
    finalRecordCount: bigint;
    finalHead: string;
    stateDigest: string;
    /** Records read that are confirmed, and those still pending. */
    confirmed: number;
    pending: number;
  };
  /** Every record read, decrypted, when `keepRecords` is set. */
  kept?: VerifiedRecord[];
}

export interface ReaderOptions {
  /** Where eth_getLogs goes (defaults to the provider); tests put a tampering proxy here. */
  rpc?: JsonRpcLike;
  /** Called for every record, in order, once it is verified. */
  onRecord?: (record: VerifiedRecord) => void;
}

type Sendable = Provider & JsonRpcLike;

export class RegulatorReader {
  readonly config: ReaderConfigValues;
  private readonly provider: Sendable;
  private readonly rpc: JsonRpcLike;
  private readonly ledger: Contract;
  private readonly onRecord?: (record: VerifiedRecord) => void;

  private constructor(config: ReaderConfigValues, provider: Sendable, options: ReaderOptions) {
    this.config = config;
    this.provider = provider;
    this.rpc = timedRpc(options.rpc ?? provider, config.rpcTimeoutMs);
    this.onRecord = options.onRecord;
    this.ledger = new Contract(config.ledger, PREPAID_LEDGER_ABI, provider);
  }

  /**
   * @param input - see {@link ReaderConfig}
   * @param provider - an ethers provider with `send` (JsonRpcProvider, Hardhat's provider)
   * @throws PrepaidLedgerError `INVALID_CONFIG` (every wrong field, by path; no contract at the
   *   address), `RPC_ERROR`
   */
  static async open(input: ReaderConfigInput, provider: Sendable, options: ReaderOptions = {}): Promise<RegulatorReader> {
    const config = parseConfig(ReaderConfig, input, "reader");
    let code: string;
    try {
      code = await withTimeout(provider.getCode(config.ledger), config.rpcTimeoutMs, "eth_getCode");
    } catch (e) {
      throw toLedgerError(e, { ledger: config.ledger });
    }
    if (code === "0x") {
      throw new PrepaidLedgerError("INVALID_CONFIG", "no contract at the ledger address on this chain", {
        details: { ledger: config.ledger },
      });
    }
    return new RegulatorReader(config, provider, options);
  }

  /**
   * Reads the configured block range and verifies everything in it.
   *
   * @throws PrepaidLedgerError `WRONG_KEY` if a key was given and it opens none of the records
   *   (it is not a recipient's key); `UNSUPPORTED_VERSION` if the ledger's genesis head is that
   *   of no hash-chain version this reader verifies (docs/FORMAT.md 7); `RPC_ERROR` (retryable)
   *   if the node fails
   */
  async read(): Promise<SupervisionReport> {
    try {
      return await this.readRange();
    } catch (e) {
      throw toLedgerError(e, { ledger: this.config.ledger });
    }
  }

  private async readRange(): Promise<SupervisionReport> {
    const chainId = (await this.timed(this.provider.getNetwork(), "eth_chainId")).chainId;
    const fromBlock = BigInt(this.config.fromBlock);
    // The node's head asked directly: ethers' getBlockNumber() answers a repeated call within
    // 250 ms from its cache, so a read right after an upload on the same provider would stop
    // short of the batch that just landed.
    const toBlock =
      this.config.toBlock === "latest"
        ? BigInt(String(await this.timed(this.provider.send("eth_blockNumber", []), "eth_blockNumber")))
        : BigInt(this.config.toBlock);
    const final = await this.lastFinal(toBlock);
    // The version is read from the contract, not guessed from the logs: a batch linked by
    // another rule is then a chain break, whatever the rest of the chain says.
    const version = await this.chainVersion(chainId, toBlock);
    const run = new LedgerReplay(this.config, { chainId, ledger: this.config.ledger, version }, this.onRecord);
    run.finalRecordCount = final?.recordCount;
    for await (const page of fetchLogs(this.rpc, {
      address: this.config.ledger,
      fromBlock,
      toBlock,
      maxBlockRange: this.config.maxBlockRange,
    })) {
      for (const log of page) {
        const pending = run.log(log);
        if (pending !== undefined) await pending; // only a batch's end is asynchronous
      }
    }
    run.finish();
    if (this.config.privateKey !== undefined && run.wrongKey > 0 && run.decrypted === 0) {
      throw new PrepaidLedgerError("WRONG_KEY", "the key opens none of the records: it is not a recipient's key", {
        details: { records: run.records, notForThisKey: run.wrongKey },
      });
    }
    await this.compareWithContract(run, toBlock);
    if (final !== undefined) {
      const rebuilt = run.headAt.get(final.recordCount);
      if (rebuilt !== undefined && bytesToHex(rebuilt) !== final.chainHead.toLowerCase()) {
        run.report({
          kind: "confirmation-mismatch",
          recordIndex: final.recordCount,
          message: `the final checkpoint at record ${final.recordCount} names a chain head the logs do not rebuild`,
          details: { final: final.chainHead, rebuilt: bytesToHex(rebuilt) },
        });
      }
    }
    const merchants = [...run.books.merchants.values()]
      .sort((a, b) => a.merchantId - b.merchantId)
      .map((m) => ({ ...m, liability: balanceOf(m), badRecords: run.badRecordsByMerchant.get(m.merchantId) ?? 0 }));
    const [contractRecordCount, contractHead] = (await this.timed(this.ledger.chainHead({ blockTag: toBlock }), "chainHead")) as [bigint, string];
    return {
      chainId,
      ledger: this.config.ledger,
      fromBlock,
      toBlock,
      records: run.records,
      batches: run.batches,
      verified: run.verified,
      accounts: run.books.accounts.size,
      chain: {
        recordCount: run.lastIndex,
        head: bytesToHex(run.head),
        contractRecordCount,
        contractHead,
        startedMidway: run.startedMidway,
        version,
      },
      merchants,
      discrepancies: run.discrepancies,
      ok: run.discrepancies.length === 0,
      kept: this.config.keepRecords ? run.kept : undefined,
      confirmation:
        final === undefined
          ? undefined
          : {
              quorum: this.config.quorum!,
              finalRecordCount: final.recordCount,
              finalHead: final.chainHead,
              stateDigest: final.stateDigest,
              confirmed: run.confirmed,
              pending: run.records - run.confirmed,
            },
    };
  }

  /** `p` with the configured timeout: TIMEOUT (retryable) naming `what` if the node does not answer. */
  private timed<T>(p: Promise<T>, what: string): Promise<T> {
    return withTimeout(p, this.config.rpcTimeoutMs, what);
  }

  /**
   * The ledger's hash-chain version (docs/FORMAT.md 7), from the genesis head its
   * `genesisHead()` view returns (a view every version has; version 1 has no `CHAIN_VERSION()`).
   *
   * @throws PrepaidLedgerError `UNSUPPORTED_VERSION` if that genesis is none of
   *   {@link CHAIN_VERSIONS}' for this chain id and address, with the version the contract
   *   claims, if it has the view
   */
  private async chainVersion(chainId: bigint, toBlock: bigint): Promise<ChainVersion> {
    const at = { blockTag: toBlock };
    const genesis = (await this.timed(this.ledger.genesisHead(at), "genesisHead")) as string;
    const version = chainVersionOf(genesis, chainId, this.config.ledger);
    if (version !== undefined) return version;
    let claimed: number | null = null;
    try {
      claimed = Number(await this.timed(this.ledger.CHAIN_VERSION(at), "CHAIN_VERSION"));
    } catch {
      // No such view (or no answer): the error below says what matters, the genesis.
    }
    throw new PrepaidLedgerError("UNSUPPORTED_VERSION", "the ledger's hash chain is of a version this reader cannot verify", {
      details: { ledger: this.config.ledger, genesisHead: genesis, chainVersion: claimed, supported: [...CHAIN_VERSIONS] },
    });
  }

  /** The quorum's last final checkpoint at `toBlock`, if a quorum is configured. */
  private async lastFinal(toBlock: bigint): Promise<{ recordCount: bigint; chainHead: string; stateDigest: string } | undefined> {
    if (this.config.quorum === undefined) return undefined;
    const quorum = new Contract(this.config.quorum, SUPERVISOR_QUORUM_ABI, this.provider);
    const [recordCount, chainHead, stateDigest] = (await this.timed(quorum.lastFinal({ blockTag: toBlock }), "lastFinal")) as [bigint, string, string];
    return { recordCount, chainHead, stateDigest };
  }

  /** Rebuilt books and head against the contract's views at `toBlock`. */
  private async compareWithContract(run: LedgerReplay, toBlock: bigint): Promise<void> {
    const at = { blockTag: toBlock };
    const [count, head] = (await this.timed(this.ledger.chainHead(at), "chainHead")) as [bigint, string];
    if (count !== run.lastIndex || !run.matchesHead(head)) {
      run.report({
        kind: "chain-break",
        message: "the chain head rebuilt from the logs differs from the contract's",
        details: { rebuiltCount: run.lastIndex, rebuiltHead: bytesToHex(run.head), contractCount: count, contractHead: head },
      });
    }
    if (run.startedMidway) return; // partial books cannot be compared with the contract's totals
    for (const m of run.books.merchants.values()) {
      const c = await this.timed(this.ledger.merchantBooks(m.merchantId, at), "merchantBooks");
      const fields: [string, unknown, unknown][] = [
        ["status", BigInt(m.status), c.status],
        ["nextSequence", m.nextSequence, c.nextSequence],
        ["recordCount", BigInt(m.recordCount), c.recordCount],
        ["accountCount", BigInt(m.accountCount), c.accountCount],
        ["toppedUp", m.toppedUp, c.toppedUp],
        ["consumed", m.consumed, c.consumed],
        ["refunded", m.refunded, c.refunded],
      ];
      for (const [field, rebuilt, stored] of fields) {
        if (rebuilt !== stored) {
          run.report({
            kind: "books-mismatch",
            merchantId: m.merchantId,
            message: `merchant ${m.merchantId}: ${field} rebuilt from records differs from the contract's`,
            details: { field, rebuilt, contract: stored },
          });
        }
      }
    }
    if (this.config.compareAccounts === "none") return;
    const entries = [...run.books.accounts.entries()];
    for (let i = 0; i < entries.length; i += 64) {
      const slice = entries.slice(i, i + 64);
      const stored = await Promise.all(slice.map(([, a]) => this.timed(this.ledger.accountBooks(a.merchantId, a.account, at), "accountBooks")));
      slice.forEach(([, a], j) => {
        const account = a.account;
        const c = stored[j];
        const fields: [string, bigint, bigint][] = [
          ["merchantId", BigInt(a.merchantId), c.merchantId],
          ["recordCount", BigInt(a.recordCount), c.recordCount],
          ["initialAmount", a.initialAmount, c.initialAmount],
          ["toppedUp", a.toppedUp, c.toppedUp],
          ["consumed", a.consumed, c.consumed],
          ["refunded", a.refunded, c.refunded],
          ["balance", balanceOf(a), c.balance],
        ];
        for (const [field, rebuilt, contract] of fields) {
          if (rebuilt !== contract) {
            run.report({
              kind: "books-mismatch",
              account,
              merchantId: a.merchantId,
              message: `account ${account}: ${field} rebuilt from records differs from the contract's`,
              details: { field, rebuilt, contract },
            });
          }
        }
      });
    }
  }
}

/** A checkpoint mark the ledger logged (`CheckpointMarked`), as a replay meets it. */
export interface MarkSeen {
  recordCount: bigint;
  head: string;
  blockNumber: number;
  txHash: string;
}

/**
 * Where a replay's chain starts: the ledger's chain id and address, and its chain version if
 * known (docs/FORMAT.md 7). Without a version, the replay finds it at the first batch it can
 * check: the rule whose head equals the one the batch announces (no other can, short of a
 * keccak256 collision). A bare genesis head may be given instead, for either version.
 */
export type ChainStart = Uint8Array | { chainId: bigint; ledger: string; version?: ChainVersion };

/**
 * One pass over a ledger's logs, in chain order: the state of a read. The reader runs one over
 * a block range; a supervisor keeps one alive and feeds it new logs as blocks arrive. `onMark`
 * is called at each checkpoint mark, when the replay stands exactly at the marked record count.
 */
export class LedgerReplay {
  readonly books = new Books();
  readonly discrepancies: Discrepancy[] = [];
  readonly badRecordsByMerchant = new Map<number, number>();
  readonly kept: VerifiedRecord[] = [];
  /** Chain heads at batch ends, to check final checkpoints against. */
  readonly headAt = new Map<bigint, Uint8Array>();
  /** Records up to this index are confirmed (set by the reader when a quorum is configured). */
  finalRecordCount: bigint | undefined;
  confirmed = 0;
  head: Uint8Array;
  /** The chain rule the ledger links with; undefined until a batch told (or the caller did). */
  chainVersion: ChainVersion | undefined;
  /** Until the version is known: the head each candidate rule stands at. */
  private candidates = new Map<ChainVersion, Uint8Array>();
  lastIndex = 0n;
  startedMidway = false;
  records = 0;
  batches = 0;
  verified = 0;
  decrypted = 0;
  wrongKey = 0;
  /** Recorded logs waiting for the BatchRecorded log that closes their batch. */
  private pending: RecordedLog[] = [];
  private scratch = new Uint8Array(44 + 73 + 0xffff);
  private scratchView = new DataView(this.scratch.buffer);
  private seenFirst = false;

  constructor(
    private readonly config: Pick<ReaderConfigValues, "privateKey" | "keepRecords">,
    start: ChainStart,
    private readonly onRecord?: (record: VerifiedRecord) => void,
    private readonly onMark?: (mark: MarkSeen) => void,
  ) {
    if (start instanceof Uint8Array) {
      this.head = start;
      this.keepCandidatesAt(start);
    } else if (start.version !== undefined) {
      this.chainVersion = start.version;
      this.head = genesisHead(start.chainId, start.ledger, start.version);
    } else {
      for (const v of CHAIN_VERSIONS) this.candidates.set(v, genesisHead(start.chainId, start.ledger, v));
      this.head = this.candidates.get(CHAIN_VERSIONS[0])!;
    }
  }

  /** While the version is unknown, every rule goes on from `head` (an announced or given one). */
  private keepCandidatesAt(head: Uint8Array): void {
    if (this.chainVersion === undefined) for (const v of CHAIN_VERSIONS) this.candidates.set(v, head);
  }

  /**
   * Whether `head` (0x hex, from the contract) is the replay's head. Before any batch told the
   * chain version, every version's genesis is.
   */
  matchesHead(head: string): boolean {
    const h = head.toLowerCase();
    if (h === bytesToHex(this.head)) return true;
    return this.chainVersion === undefined && this.lastIndex === 0n && [...this.candidates.values()].some((c) => bytesToHex(c) === h);
  }

  report(d: Discrepancy): void {
    this.discrepancies.push(d);
  }

  /**
   * Continues a replay that stopped after record `lastIndex` (the indexer, after a restart).
   * The caller restores {@link books} itself; links and sequences are then checked from here on.
   */
  resume(state: { head: Uint8Array; lastIndex: bigint; batches: number; startedMidway: boolean; chainVersion?: ChainVersion }): void {
    this.head = state.head;
    this.chainVersion = state.chainVersion;
    this.candidates.clear();
    this.keepCandidatesAt(state.head);
    this.lastIndex = state.lastIndex;
    this.batches = state.batches;
    this.startedMidway = state.startedMidway;
    this.seenFirst = state.batches > 0;
  }

  /** Takes one log; returns a promise only for work that is asynchronous (closing a batch). */
  log(log: RpcLog): Promise<void> | undefined {
    const topic = log.topics[0];
    if (topic === LEDGER_TOPICS.Recorded) {
      this.pending.push(decodeRecorded(log));
      return undefined;
    }
    if (topic === LEDGER_TOPICS.BatchRecorded) return this.batch(log);
    if (topic === LEDGER_TOPICS.CheckpointMarked) {
      this.onMark?.({
        recordCount: BigInt(log.topics[1]),
        head: "0x" + log.data.slice(2, 66),
        blockNumber: Number(log.blockNumber),
        txHash: log.transactionHash,
      });
      return undefined;
    }
    const merchantId = log.topics.length > 1 ? Number(BigInt(log.topics[1])) : 0;
    if (topic === LEDGER_TOPICS.MerchantRegistered) {
      const m = this.books.merchant(merchantId);
      m.status = 1;
    } else if (topic === LEDGER_TOPICS.MerchantSuspended) {
      this.books.merchant(merchantId).status = 2;
    } else if (topic === LEDGER_TOPICS.MerchantReinstated) {
      this.books.merchant(merchantId).status = 1;
    } else if (topic === LEDGER_TOPICS.MerchantWindingDown) {
      this.books.merchant(merchantId).status = 3;
    } else if (topic === LEDGER_TOPICS.MerchantClosed) {
      this.books.merchant(merchantId).status = 4;
    }
    return undefined;
  }

  finish(): void {
    for (const r of this.pending) {
      this.report({
        kind: "chain-break",
        message: "a record without the BatchRecorded log that must follow it",
        ...where(r),
      });
    }
    this.pending = [];
  }

  private async batch(log: RpcLog): Promise<void> {
    const b = decodeBatchRecorded(log);
    const records = this.pending;
    this.pending = [];
    this.batches++;
    if (!this.seenFirst) {
      this.seenFirst = true;
      if (b.firstRecordIndex > 1n) {
        // The range starts after the ledger's first record: links are checked from this batch's
        // announced head on, and books are rebuilt as changes over the range only.
        this.startedMidway = true;
        this.lastIndex = b.firstRecordIndex - 1n;
      }
    }
    const merchant = this.books.merchant(b.merchantId);
    const firstOfMerchant = merchant.batches === 0;
    merchant.batches++;
    if (b.sequence !== merchant.nextSequence && !(this.startedMidway && firstOfMerchant)) {
      this.report({
        kind: "chain-break",
        merchantId: b.merchantId,
        txHash: b.txHash,
        blockNumber: b.blockNumber,
        message: `merchant ${b.merchantId}: batch sequence ${b.sequence} where ${merchant.nextSequence} was next`,
      });
    }
    merchant.nextSequence = b.sequence + 1n;
    const problems = records.length !== b.count || records.some((r, i) => r.recordIndex !== b.firstRecordIndex + BigInt(i) || r.txHash !== b.txHash);
    if (problems) {
      this.report({
        kind: "chain-break",
        merchantId: b.merchantId,
        txHash: b.txHash,
        blockNumber: b.blockNumber,
        message: `batch ${b.sequence} of merchant ${b.merchantId} announces ${b.count} records from #${b.firstRecordIndex}, ${records.length} were logged before it`,
        details: { logged: records.map((r) => r.recordIndex) },
      });
    }
    const key = await this.batchKey(records, b.envelope);
    const announced = bytesToHex(b.chainHead);
    const rebuilt = this.linkBatch(b, records);
    for (let i = 0; i < records.length; i++) {
      const pending = this.record(records[i], i, key);
      if (pending !== undefined) await pending; // only single-record ECIES is asynchronous
    }
    if (this.startedMidway && this.lastIndex === b.firstRecordIndex - 1n + BigInt(records.length) && this.batches === 1) {
      this.head = b.chainHead;
      this.keepCandidatesAt(b.chainHead);
    } else if (this.adopt(rebuilt, announced)) {
      // head and version set by adopt
    } else {
      this.head = rebuilt.values().next().value!;
      this.report({
        kind: "chain-break",
        merchantId: b.merchantId,
        txHash: b.txHash,
        blockNumber: b.blockNumber,
        message: `the chain head after batch ${b.sequence} of merchant ${b.merchantId} differs from the one it announces`,
        details: { rebuilt: bytesToHex(this.head), announced, chainVersion: this.chainVersion ?? "unknown" },
      });
      this.head = b.chainHead; // go on from the announced head, so one break is reported once
      this.keepCandidatesAt(b.chainHead);
    }
    this.headAt.set(this.lastIndex, this.head);
  }

  /** The batch's data key, or the discrepancy kind every 0x02 record of the batch gets. */
  private async batchKey(records: RecordedLog[], envelope: Uint8Array): Promise<Uint8Array | DiscrepancyKind | undefined> {
    if (this.config.privateKey === undefined || !records.some((r) => r.ciphertext[0] === 0x02)) return undefined;
    if (envelope.length === 0) return "wrong-key";
    try {
      return await openEnvelope(this.config.privateKey, envelope);
    } catch (e) {
      if (isError(e, "WRONG_KEY")) return "wrong-key";
      if (isError(e, "WRAPPED_KEY_CORRUPT")) return "wrapped-key-corrupt";
      if (isError(e, "MALFORMED_DATA") || isError(e, "UNSUPPORTED_VERSION")) return "malformed-envelope";
      throw e;
    }
  }

  private record(r: RecordedLog, position: number, key: Uint8Array | DiscrepancyKind | undefined): Promise<void> | undefined {
    this.records++;
    const found: DiscrepancyKind[] = [];
    const flag = (kind: DiscrepancyKind, message: string, details?: Record<string, unknown>) => {
      found.push(kind);
      this.report({ kind, message, ...where(r), details });
    };

    // Chain: records come in index order with no gap, and each links to the one before.
    if (r.recordIndex !== this.lastIndex + 1n) {
      flag("chain-break", `record #${r.recordIndex} where #${this.lastIndex + 1n} was next`);
    }
    this.lastIndex = r.recordIndex;

    // Books, from the on-chain kind and amount.
    const violation = this.books.apply(r.merchantId, r.account, r.kind, r.amount, this.startedMidway);
    if (violation !== undefined) flag("rule-violation", `record breaks the ledger's rules: ${violation}`);

    // Details: decrypt, compare, recompute the commitment.
    const privateKey = this.config.privateKey;
    if (privateKey === undefined) {
      this.conclude(r, found, undefined);
      return undefined;
    }
    if (r.ciphertext[0] === 0x01) {
      return openSingle(privateKey, r.ciphertext).then(
        (sealed) => {
          this.decrypted++;
          this.conclude(r, found, this.check(r, sealed, flag));
        },
        (e: unknown) => {
          this.failedToOpen(e, flag);
          this.conclude(r, found, undefined);
        },
      );
    }
    this.conclude(r, found, this.open(r, position, key, flag));
    return undefined;
  }

  /** Counts the record and hands it on. */
  private conclude(r: RecordedLog, found: DiscrepancyKind[], details: SealedPayload | undefined): void {
    if (this.finalRecordCount !== undefined && r.recordIndex <= this.finalRecordCount) this.confirmed++;
    if (found.length > 0) {
      this.badRecordsByMerchant.set(r.merchantId, (this.badRecordsByMerchant.get(r.merchantId) ?? 0) + 1);
    } else if (details !== undefined) {
      this.verified++;
    }
    if (this.onRecord === undefined && !this.config.keepRecords) return;
    const v: VerifiedRecord = {
      recordIndex: r.recordIndex,
      merchantId: r.merchantId,
      account: r.account,
      kind: r.kind,
      amount: r.amount,
      commitment: bytesToHex(r.commitment),
      ciphertext: r.ciphertext,
      txHash: r.txHash,
      blockNumber: r.blockNumber,
      logIndex: r.logIndex,
      details,
      problems: found,
      confirmed: this.finalRecordCount === undefined ? undefined : r.recordIndex <= this.finalRecordCount,
    };
    if (this.config.keepRecords) this.kept.push(v);
    this.onRecord?.(v);
  }

  private failedToOpen(e: unknown, flag: (kind: DiscrepancyKind, message: string) => void): void {
    if (isError(e, "WRONG_KEY")) {
      this.wrongKey++;
      flag("wrong-key", "the record was not encrypted for this key");
    } else if (isError(e, "DECRYPTION_FAILED") || isError(e, "MALFORMED_DATA")) {
      flag("corrupt-ciphertext", "the ciphertext fails authentication: altered or corrupt");
    } else if (isError(e, "UNSUPPORTED_VERSION")) {
      flag("malformed-payload", "decrypted, but the details are of an unknown version");
    } else {
      throw e;
    }
  }

  /** Opens a batch record (format 0x02) with the batch's data key. */
  private open(
    r: RecordedLog,
    position: number,
    key: Uint8Array | DiscrepancyKind | undefined,
    flag: (kind: DiscrepancyKind, message: string, details?: Record<string, unknown>) => void,
  ): SealedPayload | undefined {
    const format = r.ciphertext[0];
    if (format !== 0x02) {
      flag("unsupported-format", `unknown ciphertext format 0x${(format ?? 0).toString(16).padStart(2, "0")}`);
      return undefined;
    }
    if (typeof key === "string" || key === undefined) {
      const kind = key ?? "wrong-key";
      if (kind === "wrong-key") this.wrongKey++;
      flag(kind, `the batch's data key cannot be opened (${kind})`);
      return undefined;
    }
    let sealed: Uint8Array;
    try {
      sealed = openBatchRecord(key, position, r.ciphertext);
    } catch (e) {
      this.failedToOpen(e, flag);
      return undefined;
    }
    this.decrypted++;
    return this.check(r, sealed, flag);
  }

  /** Compares decrypted details with the record's on-chain values and commitment. */
  private check(
    r: RecordedLog,
    sealed: Uint8Array,
    flag: (kind: DiscrepancyKind, message: string, details?: Record<string, unknown>) => void,
  ): SealedPayload | undefined {
    let details: SealedPayload;
    try {
      details = decodeSealed(sealed);
    } catch (e) {
      flag("malformed-payload", "decrypted, but the details do not parse", { code: isError(e) ? e.code : "unknown" });
      return undefined;
    }
    if (details.kind !== r.kind) {
      flag("kind-mismatch", "the decrypted kind differs from the on-chain kind", { onChain: r.kind, decrypted: details.kind });
    }
    if (details.amount !== r.amount) {
      flag("amount-mismatch", "the decrypted amount differs from the on-chain amount", {
        onChain: r.amount,
        decrypted: details.amount,
      });
    }
    const commitment = keccak256(canonicalFromSealed(sealed, r.merchantId, r.accountBytes));
    if (!equalBytes(commitment, r.commitment)) {
      flag("commitment-mismatch", "the commitment is not the hash of the decrypted details", {
        onChain: bytesToHex(r.commitment),
        recomputed: bytesToHex(commitment),
      });
    }
    return details;
  }

  /**
   * The head after batch `b` under each rule still in question (the known version only, once
   * known): version 2 links the batch (merchantId, sequence, recorder, keccak256(envelope),
   * count) before its records, version 1 its records only (docs/FORMAT.md 7).
   */
  private linkBatch(b: BatchRecordedLog, records: RecordedLog[]): Map<ChainVersion, Uint8Array> {
    const starts = this.chainVersion !== undefined ? new Map([[this.chainVersion, this.head]]) : this.candidates;
    const out = new Map<ChainVersion, Uint8Array>();
    for (const [version, start] of starts) {
      let head = start;
      if (version >= 2) {
        head = linkBatch(head, { merchantId: b.merchantId, sequence: b.sequence, recorder: b.recorder, envelope: b.envelope, count: b.count });
      }
      for (const r of records) head = this.link(head, r);
      out.set(version, head);
    }
    return out;
  }

  /** Takes the rebuilt head that equals the announced one (and so its version); false if none does. */
  private adopt(rebuilt: Map<ChainVersion, Uint8Array>, announced: string): boolean {
    for (const [version, head] of rebuilt) {
      if (bytesToHex(head) !== announced) continue;
      this.head = head;
      this.chainVersion = version;
      this.candidates.clear();
      return true;
    }
    return false;
  }

  /** head_n = keccak256(head_{n-1} | n u64 | merchantId u32 | record), built in one buffer. */
  private link(previous: Uint8Array, r: RecordedLog): Uint8Array {
    const s = this.scratch;
    const view = this.scratchView;
    s.set(previous, 0);
    view.setBigUint64(32, r.recordIndex);
    view.setUint32(40, r.merchantId);
    s[44] = r.kind;
    // amount u48: the log data's bytes 9..15 hold it already
    s.set(r.data.subarray(9, RECORDED_DATA_HEAD_BYTES), 45);
    s.set(r.accountBytes, 51);
    s.set(r.commitment, 83);
    s[115] = r.ciphertext.length >>> 8;
    s[116] = r.ciphertext.length & 0xff;
    s.set(r.ciphertext, 117);
    return keccak256(s.subarray(0, 117 + r.ciphertext.length));
  }
}

/** a == b, byte by byte (no Buffer views to allocate for a 32-byte compare). */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function where(r: RecordedLog): Pick<Discrepancy, "recordIndex" | "merchantId" | "account" | "txHash" | "blockNumber" | "logIndex"> {
  return {
    recordIndex: r.recordIndex,
    merchantId: r.merchantId,
    account: r.account,
    txHash: r.txHash,
    blockNumber: r.blockNumber,
    logIndex: r.logIndex,
  };
}
