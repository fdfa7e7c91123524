/**
 * The indexer's writer: runs pages of logs through the reader's replay and stores rows, books,
 * the cursor and (for unsettled blocks) their hashes and undo log, one transaction a page. It
 * checks that each page is of one chain, the one the index holds, before writing anything.
 */
import { Interface, decodeBytes32String, getAddress } from "ethers";

import { bytesToHex } from "../crypto/hash.js";
import { PrepaidLedgerError } from "../errors.js";
import { genesisHead } from "../ledger/codec.js";
import { balanceOf } from "../regulator/books.js";
import { LEDGER_TOPICS, decodeBatchRecorded } from "../regulator/events.js";
import type { LogPage, RpcLog } from "../regulator/logs.js";
import { LedgerReplay, type VerifiedRecord } from "../regulator/reader.js";
import { SUPERVISOR_QUORUM_ABI } from "../ledger/quorum-abi.js";
import { IndexedAccounts } from "./account-cache.js";
import type { Indexer } from "./indexer.js";
import { type BlockHeader, saveBlocks, saveUndo } from "./reorg.js";
import { decodeCustodyEvent, decodeCustodyLinkEvent, insertCustodyEvent } from "./custody.js";
import { decodeProfileEvent, insertProfileEvent } from "./profiles.js";
import { decodeProtectionEvent, insertProtectionEvent } from "./protection.js";
import { decodeRecorderEvent, insertRecorderEvent } from "./recorders.js";
import { getMeta, inTransaction, setMeta } from "./schema.js";

const quorumInterface = new Interface(SUPERVISOR_QUORUM_ABI);

/** topic0 of the merchant standing events, to the `event` a merchant_events row stores. */
const MERCHANT_EVENTS: Readonly<Record<string, "registered" | "suspended" | "reinstated" | "winding-down" | "closed">> = {
  [LEDGER_TOPICS.MerchantRegistered]: "registered",
  [LEDGER_TOPICS.MerchantSuspended]: "suspended",
  [LEDGER_TOPICS.MerchantReinstated]: "reinstated",
  [LEDGER_TOPICS.MerchantWindingDown]: "winding-down",
  [LEDGER_TOPICS.MerchantClosed]: "closed",
};
const CHECKPOINT_FINALIZED = quorumInterface.getEvent("CheckpointFinalized")!.topicHash;

/** The chain changed while a round was reading it: the round is started again. */
export class ChainMoved extends Error {
  constructor(
    readonly what: string,
    readonly block: number,
  ) {
    super(`the chain changed while it was read (${what} at block ${block})`);
  }
}

/** What a page adds to an account beside its books: failed records, first and last record time. */
interface PageSide {
  bad: number;
  opened: number;
  last: number;
}
/** The index's sync_state: where the last committed page left the index. */
export interface Cursor {
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

/**
 * Writes pages of logs: runs them through a {@link LedgerReplay} and stores rows, books and the
 * cursor of each page in one transaction. Restores the replay from the index on construction.
 */
export class PageWriter {
  pages = 0;
  newRecords = 0;
  recordCount: number;
  /** Records covered by the quorum's last final checkpoint. */
  private final: number;
  private readonly replay: LedgerReplay<IndexedAccounts>;
  private readonly accounts: IndexedAccounts;
  /** Accounts touched by the page being written (only those: a card's own figures live in the replay's books). */
  private readonly pageAccounts = new Map<string, PageSide>();
  private readonly merchantSide = new Map<number, MerchantSide>();
  private readonly dirtyMerchants = new Set<number>();
  /** Headers of the page's blocks with logs, of its first and last blocks, and of its unsettled blocks. */
  private blocks = new Map<number, BlockHeader>();
  /** The hash of the last block written (the cursor's), to check the next page links to it. */
  private cursorHash: string | undefined;
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
    this.cursorHash = cursor?.settledHash;
    this.final = cursor?.final ?? 0;
    // The ledger's chain version (docs/FORMAT.md 7), read from its genesis head when the indexer opened.
    const start = { chainId: indexer.chainId, ledger: indexer.config.ledger, version: indexer.chainVersion };
    this.accounts = new IndexedAccounts(db, indexer.config.accountCache);
    this.replay = new LedgerReplay(
      { privateKey: indexer.config.privateKey, keepRecords: false },
      start,
      (r) => this.record(r),
      undefined,
      this.accounts,
    );
    this.insertRecord = db.prepare(
      `INSERT INTO records (record_index, tx_hash, log_index, block_number, block_time, merchant_id, account, kind, amount,
                            commitment, ciphertext, verification, problems, d_time, d_order_ref, d_memo, settlement, holder)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
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
    // Accounts stay in the index: the replay reads each one back when a record needs it.
    const batches = Number((db.prepare("SELECT count(*) AS n FROM batches").get() as { n: number }).n);
    const midway = getMeta(db, "started_midway") === "1";
    this.replay.resume({
      head: Buffer.from(cursor.chainHead.slice(2), "hex"),
      lastIndex: BigInt(cursor.recordCount),
      batches,
      startedMidway: midway,
      chainVersion: this.indexer.chainVersion,
    });
  }

  /**
   * Writes one page in one transaction. A page that fails is rolled back and leaves this writer
   * behind the replay: sync() throws, and the next sync restores a new writer from the index.
   */
  async write(page: LogPage, settledLine: number): Promise<void> {
    const db = this.indexer.db;
    const from = Number(page.fromBlock);
    const to = Number(page.toBlock);
    const windowFrom = Math.max(from, settledLine);
    const blocks = await this.blockInfo(page, windowFrom);
    this.checkChain(page, blocks, windowFrom);
    const decryptedBefore = this.replay.decrypted;
    const wrongBefore = this.replay.wrongKey;
    await inTransaction(db, async () => {
      for (const log of page.logs) await this.log(log);
      if (to > settledLine) {
        // Unsettled blocks: keep their hashes, and the rows as they were, to roll the page back.
        const accounts = [...this.pageAccounts.keys()].map((k) => {
          const [m, a] = k.split(":");
          return { merchantId: Number(m), account: a };
        });
        saveUndo(db, from, to, this.dirtyMerchants, accounts);
        saveBlocks(db, [...blocks.values()].filter((b) => b.number >= windowFrom));
      }
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
      // An index made before chain versions were recorded gets them at its next page.
      if (getMeta(db, "chain_version") === undefined) this.writeChainVersion();
      const settled = blocks.get(Number(page.toBlock))!;
      db.prepare(
        `INSERT INTO sync_state (id, settled_block, settled_hash, settled_time, record_count, chain_head, final_record_count)
         VALUES (1, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET settled_block = excluded.settled_block, settled_hash = excluded.settled_hash,
           settled_time = excluded.settled_time, record_count = excluded.record_count, chain_head = excluded.chain_head,
           final_record_count = excluded.final_record_count`,
      ).run(Number(page.toBlock), settled.hash, settled.time, Number(this.replay.lastIndex), bytesToHex(this.replay.head), this.final);
    });
    this.cursorHash = blocks.get(to)!.hash;
    if (this.replay.decrypted > decryptedBefore) this.everDecrypted = true;
    this.pages++;
    // Every account the page changed is stored now: memory keeps only the most recent ones.
    this.accounts.trim();
  }

  private writeChainVersion(): void {
    const { chainId, chainVersion, config } = this.indexer;
    setMeta(this.indexer.db, "chain_version", String(chainVersion));
    setMeta(this.indexer.db, "genesis_head", bytesToHex(genesisHead(chainId, config.ledger, chainVersion)));
  }

  private writeIdentity(): void {
    const db = this.indexer.db;
    for (const [k, v] of Object.entries(this.indexer.identity)) if (v !== "") setMeta(db, k, v);
    this.writeChainVersion();
    setMeta(db, "from_block", String(this.indexer.config.fromBlock));
    setMeta(db, "started_midway", this.replay.startedMidway ? "1" : "0");
    setMeta(db, "confirmations", String(this.indexer.confirmations));
  }

  /**
   * Headers of the page's blocks with logs, of its first and last block, and of every block from
   * `windowFrom` on (the unsettled ones, with the anchor), fetched 16 at a time in parallel.
   */
  private async blockInfo(page: LogPage, windowFrom: number): Promise<Map<number, BlockHeader>> {
    const numbers = new Set(page.logs.map((l) => Number(l.blockNumber)));
    const from = Number(page.fromBlock);
    const to = Number(page.toBlock);
    numbers.add(from);
    numbers.add(to);
    for (let n = windowFrom; n <= to; n++) numbers.add(n);
    const out = new Map<number, BlockHeader>();
    const list = [...numbers].sort((a, b) => a - b);
    for (let i = 0; i < list.length; i += 16) {
      const slice = list.slice(i, i + 16);
      const headers = await Promise.all(slice.map((n) => this.indexer.header(n)));
      headers.forEach((h, j) => {
        if (h === null) {
          throw new PrepaidLedgerError("RPC_ERROR", "the node does not have a block it just returned logs for", {
            details: { block: slice[j] },
            retryable: true,
          });
        }
        out.set(slice[j], h);
      });
    }
    this.blocks = out;
    return out;
  }

  /**
   * The page is of one chain, the one the index holds: each log's block hash is its block's,
   * the page's first block is the child of the cursor block, and the unsettled blocks link.
   *
   * @throws ChainMoved otherwise (nothing of the page is written; the round starts again)
   */
  private checkChain(page: LogPage, blocks: Map<number, BlockHeader>, windowFrom: number): void {
    for (const log of page.logs) {
      const hash = (log as RpcLog & { blockHash?: string }).blockHash;
      const n = Number(log.blockNumber);
      if (hash !== undefined && hash !== null && hash.toLowerCase() !== blocks.get(n)!.hash) throw new ChainMoved("a log of another block hash", n);
    }
    const from = Number(page.fromBlock);
    if (this.cursorHash !== undefined && blocks.get(from)!.parentHash !== this.cursorHash) throw new ChainMoved("a page not linking to the cursor", from);
    for (let n = windowFrom + 1; n <= Number(page.toBlock); n++) {
      if (blocks.get(n)!.parentHash !== blocks.get(n - 1)!.hash) throw new ChainMoved("unsettled blocks not linking", n);
    }
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
    if (this.indexer.custody.has(address)) {
      // A custody contract's deposits, withdrawals, ratios and custodians (src/indexer/custody.ts),
      // and its card holders' claims and cooling-off returns (src/indexer/protection.ts).
      const custodyEvent = decodeCustodyEvent(log);
      if (custodyEvent !== undefined) insertCustodyEvent(db, position, time, custodyEvent);
      const protectionEvent = decodeProtectionEvent(log, false);
      if (protectionEvent !== undefined) insertProtectionEvent(db, position, time, protectionEvent);
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
    // Who may write for a merchant: every registry event about its recorder keys (src/indexer/recorders.ts).
    const recorderEvent = decodeRecorderEvent(log);
    if (recorderEvent !== undefined) insertRecorderEvent(db, position, time, recorderEvent);
    // A merchant's registry data (MerchantProfileSet).
    const profileEvent = decodeProfileEvent(log);
    if (profileEvent !== undefined) insertProfileEvent(db, position, time, profileEvent);
    // A merchant's card rules (MerchantPolicySet).
    const policyEvent = decodeProtectionEvent(log, true);
    if (policyEvent !== undefined) insertProtectionEvent(db, position, time, policyEvent);
        // Which custody contract the ledger consults: its custody-link events.
    const linkEvent = decodeCustodyLinkEvent(log);
    if (linkEvent !== undefined) insertCustodyEvent(db, position, time, linkEvent);
    const event = MERCHANT_EVENTS[topic];
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
      } else if (event === "reinstated") {
        side.suspendedReason = null;
      } else {
        // Winding down and closing carry a reason too; it is the event's detail, and the
        // suspension's reason (if any) no longer describes the merchant's standing.
        detail = reasonText(log.data.slice(0, 66));
        side.suspendedReason = null;
      }
      db.prepare(
        `INSERT INTO merchant_events (tx_hash, log_index, block_number, block_time, merchant_id, event, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ).run(...position, time, merchantId, event, detail);
      this.dirtyMerchants.add(merchantId);
    }
    // Recorded logs wait in the replay for their batch; merchant events update its books; a
    // settlement (Settled) is a record of its own, stored by record().
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
    // A settlement has nothing to decrypt: checked (chain link, books), it counts as the index's
    // other records do, verified with a key and "encrypted" in an index built without one.
    const opened = r.details !== undefined || (r.settlement !== undefined && this.indexer.config.privateKey !== undefined);
    const verification = bad ? "failed" : opened ? "verified" : "encrypted";
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
      r.settlement?.reason ?? null,
      r.settlement?.holder ?? null,
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
         refunded = excluded.refunded, balance = excluded.balance, bad_records = accounts.bad_records + excluded.bad_records,
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
      // The next id given here, not by the database: the same numbers on SQLite and PostgreSQL
      // (whose identity sequence would not go back when a reorg deletes rows).
      `INSERT INTO discrepancies (id, kind, message, record_index, merchant_id, account, tx_hash, block_number, log_index, details)
       VALUES ((SELECT coalesce(max(id), 0) + 1 FROM discrepancies), ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
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
