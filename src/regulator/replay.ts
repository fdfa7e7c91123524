/**
 * One pass over a ledger's logs, in chain order (docs/FORMAT.md 6-7): the hash chain (batch,
 * record and settlement links), decryption and verification of every record, and the books
 * rebuilt from records alone. The regulator's reader runs one over a block range, the indexer
 * one per sync, a supervisor keeps one alive. Split from reader.ts, which re-exports it.
 */
import { isError } from "../errors.js";
import { canonicalFromSealed, decodeSealed, type SealedPayload } from "../crypto/details.js";
import { openBatchRecord, openEnvelope } from "../crypto/envelope.js";
import { bytesToHex, keccak256 } from "../crypto/hash.js";
import { openSingle } from "../crypto/single.js";
import { CHAIN_VERSIONS, RECORDED_DATA_HEAD_BYTES, type ChainVersion, SettlementReason, genesisHead, linkBatch, linkSettlement } from "../ledger/codec.js";
import { type AccountState, type AccountStore, Books } from "./books.js";
import type { RpcLog } from "./logs.js";
import {
  type BatchRecordedLog,
  LEDGER_TOPICS,
  type LogPosition,
  type RecordedLog,
  type SettledLog,
  decodeBatchRecorded,
  decodeRecorded,
  decodeSettled,
} from "./events.js";
import type { Discrepancy, DiscrepancyKind, ReaderConfigValues, VerifiedRecord } from "./reader.js";

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
export class LedgerReplay<S extends AccountStore = Map<string, AccountState>> {
  readonly books: Books<S>;
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
  /** Settlements read (records booked by custody, counted in `records` too). */
  settlements = 0;
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
    /** Where the books keep accounts; default a Map of every account (docs/ARCHITECTURE.md). */
    accounts?: S,
  ) {
    this.books = new Books<S>(accounts);
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
    if (topic === LEDGER_TOPICS.Settled) {
      this.settlement(decodeSettled(log));
      return undefined;
    }
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
    this.books.accounts.prefetch?.(records);
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

  /**
   * A settlement (`Settled`): a refund the attached custody booked on a card, a record of its own
   * linked by the settlement link of chain version 2 (docs/FORMAT.md 7.3). It is checked like a
   * record — its index follows the last, it books as a refund within the card's balance — and
   * its link must rebuild the head it announces. It has nothing to decrypt.
   */
  private settlement(s: SettledLog): void {
    // Custody books a settlement in a transaction of its own: records still waiting for their
    // BatchRecorded log will never get one.
    if (this.pending.length > 0) this.finish();
    this.records++;
    this.settlements++;
    const found: DiscrepancyKind[] = [];
    const flag = (kind: DiscrepancyKind, message: string, details?: Record<string, unknown>) => {
      found.push(kind);
      this.report({ kind, message, ...where(s), details });
    };
    // A range that starts with a settlement after record 1: its link is taken on trust, as the
    // first batch's is (see batch()).
    const midwayStart = !this.seenFirst && s.recordIndex > 1n;
    if (!this.seenFirst) {
      this.seenFirst = true;
      if (midwayStart) {
        this.startedMidway = true;
        this.lastIndex = s.recordIndex - 1n;
      }
    }
    if (s.recordIndex !== this.lastIndex + 1n) flag("chain-break", `settlement #${s.recordIndex} where #${this.lastIndex + 1n} was next`);
    this.lastIndex = s.recordIndex;
    const violation = this.books.apply(s.merchantId, s.account, 3, s.amount, this.startedMidway);
    if (violation !== undefined) flag("rule-violation", `settlement breaks the ledger's rules: ${violation}`);
    if (s.reason !== SettlementReason.Claim && s.reason !== SettlementReason.CoolingOff) {
      flag("rule-violation", `settlement of unknown reason ${s.reason}`);
    }
    const announced = bytesToHex(s.chainHead);
    if (midwayStart) {
      this.head = s.chainHead;
      this.keepCandidatesAt(s.chainHead);
    } else {
      // Only chain version 2 has settlement links: a version 1 ledger never logs one.
      const start = this.chainVersion === undefined ? this.candidates.get(2) : this.chainVersion === 2 ? this.head : undefined;
      const rebuilt = start === undefined ? undefined : linkSettlement(start, { ...s, recordIndex: s.recordIndex });
      if (rebuilt !== undefined && bytesToHex(rebuilt) === announced) {
        this.head = rebuilt;
        this.chainVersion = 2;
        this.candidates.clear();
      } else {
        flag("chain-break", `the chain head after settlement #${s.recordIndex} differs from the one it announces`, {
          rebuilt: rebuilt === undefined ? null : bytesToHex(rebuilt),
          announced,
          chainVersion: this.chainVersion ?? "unknown",
        });
        this.head = s.chainHead; // go on from the announced head, so one break is reported once
        this.keepCandidatesAt(s.chainHead);
      }
    }
    this.headAt.set(this.lastIndex, this.head);
    this.countRecord(s, found, found.length === 0);
    if (this.onRecord === undefined && !this.config.keepRecords) return;
    const v: VerifiedRecord = {
      recordIndex: s.recordIndex,
      merchantId: s.merchantId,
      account: s.account,
      kind: 3,
      amount: s.amount,
      commitment: "",
      ciphertext: new Uint8Array(0),
      txHash: s.txHash,
      blockNumber: s.blockNumber,
      logIndex: s.logIndex,
      problems: found,
      confirmed: this.finalRecordCount === undefined ? undefined : s.recordIndex <= this.finalRecordCount,
      settlement: { reason: s.reason, holder: s.holder },
    };
    if (this.config.keepRecords) this.kept.push(v);
    this.onRecord?.(v);
  }

  /** Counts a record as confirmed, bad (it has problems) or verified. */
  private countRecord(r: { recordIndex: bigint; merchantId: number }, found: DiscrepancyKind[], verified: boolean): void {
    if (this.finalRecordCount !== undefined && r.recordIndex <= this.finalRecordCount) this.confirmed++;
    if (found.length > 0) {
      this.badRecordsByMerchant.set(r.merchantId, (this.badRecordsByMerchant.get(r.merchantId) ?? 0) + 1);
    } else if (verified) {
      this.verified++;
    }
  }

  /** Counts the record and hands it on. */
  private conclude(r: RecordedLog, found: DiscrepancyKind[], details: SealedPayload | undefined): void {
    this.countRecord(r, found, details !== undefined);
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

function where(
  r: LogPosition & { recordIndex: bigint; merchantId: number; account: string },
): Pick<Discrepancy, "recordIndex" | "merchantId" | "account" | "txHash" | "blockNumber" | "logIndex"> {
  return {
    recordIndex: r.recordIndex,
    merchantId: r.merchantId,
    account: r.account,
    txHash: r.txHash,
    blockNumber: r.blockNumber,
    logIndex: r.logIndex,
  };
}
