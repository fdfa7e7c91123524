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
import { Contract, Interface, ZeroHash, toBeHex, zeroPadValue, type Provider } from "ethers";
import { z } from "zod";

import { addressSchema, parseConfig, privateKeySchema } from "../config.js";
import { PrepaidLedgerError } from "../errors.js";
import type { SealedPayload } from "../crypto/details.js";
import { bytesToHex } from "../crypto/hash.js";
import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import { SUPERVISOR_QUORUM_ABI } from "../ledger/quorum-abi.js";
import { CHAIN_VERSIONS, type ChainVersion, chainVersionOf } from "../ledger/codec.js";
import { toLedgerError } from "../ledger/revert.js";
import { balanceOf, type MerchantState } from "./books.js";
import { compareWithContract } from "./compare.js";
import { fetchLogs, type JsonRpcLike, type RpcLog } from "./logs.js";
import { timedRpc, withTimeout } from "../rpc.js";
import { LedgerReplay } from "./replay.js";
import { DEFAULT_ACCOUNT_CACHE, SpilledAccounts } from "./spilled-accounts.js";

const QUORUM_INTERFACE = new Interface(SUPERVISOR_QUORUM_ABI);

export { LedgerReplay, type ChainStart, type MarkSeen } from "./replay.js";

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
    /**
     * Accounts (cards) whose books stay in memory during a read, a whole number >= 1: beyond it
     * the least recently used go to a scratch SQLite file under the system's temporary directory,
     * removed when read() returns or throws (docs/ARCHITECTURE.md, "Memory"). The default keeps a
     * ledger of up to 100,000 cards entirely in memory, for about 140 MB of peak memory; a smaller
     * one bounds memory lower but writes cards out sooner.
     */
    accountCache: z.number().int().min(1).max(100_000_000).default(DEFAULT_ACCOUNT_CACHE),
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
  /**
   * Set for a settlement (`Settled`, docs/FORMAT.md 7.3): a refund the attached custody booked
   * when it paid the card's holder. It has no ciphertext (empty) and no commitment (""):
   * everything about it is public, and it is verified by its chain link and the books.
   */
  settlement?: { reason: number; holder: string };
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
  /** Of `records`, the settlements: refunds booked by the attached custody (docs/FORMAT.md 7.3). */
  settlements: number;
  /**
   * Records whose details were decrypted and matched their commitment and on-chain values, and
   * settlements (public, nothing to decrypt) whose chain link and books held.
   */
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
   * Reads the configured block range and verifies everything in it. Cards' books beyond
   * `accountCache` are kept in a scratch file for the read's length; it is removed before this
   * returns or throws.
   *
   * @throws PrepaidLedgerError `WRONG_KEY` if a key was given and it opens none of the records
   *   (it is not a recipient's key); `UNSUPPORTED_VERSION` if the ledger's genesis head is that
   *   of no hash-chain version this reader verifies (docs/FORMAT.md 7); `RPC_ERROR` (retryable)
   *   if the node fails
   */
  async read(): Promise<SupervisionReport> {
    const accounts = new SpilledAccounts(this.config.accountCache);
    try {
      return await this.readRange(accounts);
    } catch (e) {
      throw toLedgerError(e, { ledger: this.config.ledger });
    } finally {
      accounts.close();
    }
  }

  /** The range read and replayed into `accounts` (the caller closes it), then compared with the contract. */
  private async readRange(accounts: SpilledAccounts): Promise<SupervisionReport> {
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
    const run = new LedgerReplay(this.config, { chainId, ledger: this.config.ledger, version }, this.onRecord, undefined, accounts);
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
    const views = { ledger: this.ledger, timed: <T>(p: Promise<T>, what: string) => this.timed(p, what) };
    await compareWithContract(run, views, toBlock, this.config.compareAccounts === "all" ? accounts.ordered() : undefined);
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
      settlements: run.settlements,
      verified: run.verified,
      accounts: accounts.size,
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

  /**
   * The quorum's last final checkpoint at `toBlock`, if a quorum is configured: its count from
   * the contract (which keeps only that), its head and state digest from its CheckpointFinalized
   * event (found by its indexed record count).
   */
  private async lastFinal(toBlock: bigint): Promise<{ recordCount: bigint; chainHead: string; stateDigest: string } | undefined> {
    if (this.config.quorum === undefined) return undefined;
    const quorum = new Contract(this.config.quorum, SUPERVISOR_QUORUM_ABI, this.provider);
    const recordCount = BigInt((await this.timed(quorum.lastFinal({ blockTag: toBlock }), "lastFinal")) as bigint);
    if (recordCount === 0n) return { recordCount, chainHead: ZeroHash, stateDigest: ZeroHash };
    const topics = [QUORUM_INTERFACE.getEvent("CheckpointFinalized")!.topicHash, zeroPadValue(toBeHex(recordCount), 32)];
    let found: { chainHead: string; stateDigest: string } | undefined;
    const from = BigInt(this.config.fromBlock);
    // The range read first; before it only if the checkpoint was made final earlier.
    for (const [a, b] of from === 0n ? [[0n, toBlock]] : [[from, toBlock], [0n, from - 1n]]) {
      for await (const page of fetchLogs(this.rpc, { address: this.config.quorum, topics, fromBlock: a, toBlock: b, maxBlockRange: this.config.maxBlockRange })) {
        for (const log of page) {
          const parsed = QUORUM_INTERFACE.parseLog({ topics: log.topics, data: log.data })!;
          found = { chainHead: String(parsed.args.chainHead), stateDigest: String(parsed.args.stateDigest) };
        }
      }
      if (found !== undefined) break;
    }
    if (found === undefined) {
      throw new PrepaidLedgerError("INVALID_CONFIG", "the quorum's last final checkpoint has no CheckpointFinalized event up to the block read", {
        details: { quorum: this.config.quorum, recordCount, fromBlock: this.config.fromBlock, toBlock },
      });
    }
    return { recordCount, ...found };
  }
}
