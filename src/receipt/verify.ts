/**
 * Verifying a receipt against the chain: the one part of the receipt module that talks to a
 * node, through any `send(method, params)` JSON-RPC client (an ethers `JsonRpcProvider`, a
 * browser wallet's provider wrapped, `httpJsonRpc`). Browser-safe: ethers' ABI coder, no `node:`.
 *
 * It checks, in order: the node's chain id is the receipt's; the receipt's ledger is a
 * PrepaidLedger there (and the one the caller expects, and the one the quorum supervises); the
 * ledger has booked the record's index; the record's `Recorded` log (src/receipt/check.ts) —
 * then reads the card's current books and, given the supervisors' quorum, whether a final
 * checkpoint covers the record.
 */
import { Interface } from "ethers";

import { PrepaidLedgerError, isError } from "../errors.js";
import { fetchLogs } from "../regulator/logs.js";
import { RECORDED_TOPIC, decodeRecordedLog, matchRecord, mismatch, type ReceiptLog, type RecordedRecord } from "./check.js";
import { checkReceiptShape, computedCommitment, type Receipt } from "./receipt.js";

/** The JSON-RPC a verifier needs. */
export interface ReceiptRpc {
  send(method: string, params: unknown[]): Promise<unknown>;
}

export interface VerifyReceiptOptions {
  /** The supervisors' quorum (SupervisorQuorum) of the ledger: without it, confirmation is not checked. */
  quorum?: string;
  /** The ledger the verifier trusts (the regulator publishes it): a receipt naming another is refused. */
  ledger?: string;
  /** Where a search by commitment starts, if the record is not in the receipt's block (default 0). */
  fromBlock?: number;
  /** Blocks per `eth_getLogs` request of that search, at most (default 10,000). */
  maxBlockRange?: number;
}

/** A card's books on the ledger now, in fen. */
export interface CardBooks {
  recordCount: number;
  initialAmount: bigint;
  toppedUp: bigint;
  consumed: bigint;
  refunded: bigint;
  balance: bigint;
}

/**
 * The card holder's cooling-off right now (docs/CUSTODY.md): what a cooling-off request would
 * return, and until when. Read from the ledger's custody (`coolingOffQuote`).
 */
export interface CoolingOffQuote {
  /** Fen a request would return now (0: nothing to return, the period ended, or a return is owed). */
  amount: bigint;
  /** When the card's cooling-off period ends, seconds since 1970 (0: the merchant gives none). */
  endsAt: number;
  /** The custody contract that would pay it. */
  custody: string;
}

/** Whether the supervisors confirmed the record. */
export interface ReceiptConfirmation {
  /** `confirmed`: a final checkpoint covers it; `pending`: not yet; `unchecked`: no quorum given. */
  status: "confirmed" | "pending" | "unchecked";
  quorum: string | null;
  /** Records 1 … this are confirmed (the quorum's last final checkpoint); null when unchecked. */
  confirmedThrough: bigint | null;
}

/** A receipt that matched the chain, with what a card holder wants to know about it. */
export interface ReceiptVerification {
  valid: true;
  receipt: Receipt;
  /** The record's `Recorded` log, and its block's time. */
  record: RecordedRecord & { blockTime: number };
  /** The card's books now. */
  books: CardBooks;
  confirmation: ReceiptConfirmation;
  /** The card's cooling-off right now; null when the ledger has no custody attached. */
  coolingOff: CoolingOffQuote | null;
  /** The chain head the views were read at. */
  checkedAtBlock: number;
}

const LEDGER = new Interface([
  "function chainHead() view returns (uint64 recordCount, bytes32 head)",
  "function accountBooks(uint32 merchantId, bytes32 account) view returns ((uint32 merchantId, uint32 recordCount, uint48 initialAmount, uint48 toppedUp, uint48 consumed, uint48 refunded, uint256 balance) books)",
]);
const CUSTODY_LINK = new Interface(["function custody() view returns (address)"]);
const CUSTODY = new Interface(["function coolingOffQuote(uint32 merchantId, bytes32 account) view returns (uint256 amount, uint256 endsAt)"]);
const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";
const QUORUM = new Interface([
  "function LEDGER() view returns (address)",
  "function status(uint64 recordIndex) view returns (uint8)",
  "function lastFinal() view returns (uint64 recordCount)",
]);
/** Blocks per eth_getLogs request when searching the ledger's history by commitment. */
const DEFAULT_MAX_BLOCK_RANGE = 10_000;
/** ISupervisorQuorum.RecordStatus.Confirmed */
const CONFIRMED = 2n;

const hex = (n: number | bigint) => "0x" + n.toString(16);

async function call(rpc: ReceiptRpc, to: string, iface: Interface, name: string, args: unknown[], block: string): Promise<ReturnType<Interface["decodeFunctionResult"]>> {
  const data = iface.encodeFunctionData(name, args);
  const result = await rpc.send("eth_call", [{ to, data }, block]);
  return iface.decodeFunctionResult(name, String(result));
}

/** Every message of an error and its causes, for telling a revert from a failing node. */
function errorText(e: unknown, depth = 0): string {
  if (e === null || typeof e !== "object" || depth > 4) return String(e ?? "");
  const o = e as Record<string, unknown>;
  return [o.message, o.code, o.shortMessage, errorText(o.cause, depth + 1), errorText(o.error, depth + 1), errorText(o.info, depth + 1)].filter(Boolean).join(" ");
}

/**
 * A call that failed because the contract has no such function (it reverted, or answered
 * nothing decodable) rather than because the node failed: nodes say "execution reverted",
 * Hardhat "function selector was not recognized", ethers `CALL_EXCEPTION` / `BAD_DATA`.
 */
function notThatContract(e: unknown): boolean {
  return /revert|selector was not recognized|CALL_EXCEPTION|BAD_DATA|could not decode|invalid opcode/i.test(errorText(e));
}

/** Any failure of the node as the library's retryable RPC_ERROR (a PrepaidLedgerError passes as it is). */
function rpcFailure(e: unknown, method: string): PrepaidLedgerError {
  if (isError(e)) return e;
  return new PrepaidLedgerError("RPC_ERROR", "the JSON-RPC node failed", { details: { method }, cause: e, retryable: true });
}

async function send<T>(rpc: ReceiptRpc, method: string, params: unknown[]): Promise<T> {
  try {
    return (await rpc.send(method, params)) as T;
  } catch (e) {
    throw rpcFailure(e, method);
  }
}

/**
 * Verifies a receipt against the chain.
 *
 * @param receipt - a decoded receipt (`parseReceipt`, `receiptFromJson`, `receiptFromCompact`)
 * @param rpc - a JSON-RPC client of a node of the receipt's chain
 * @param options - the quorum (for confirmation), the trusted ledger, where to search from
 * @returns the record, the card's books now and the confirmation
 * @throws PrepaidLedgerError
 *   - `RECEIPT_MISMATCH` with `details.field` naming the wrong part: `chainId`, `ledger`,
 *     `recordIndex`, `blockNumber`, `account`, `merchantId`, `kind`, `amount`, `commitment`, or
 *     `details` (one of time, orderRef, memo, salt: `details.suspects`);
 *   - `RECEIPT_NOT_FOUND`: the ledger holds no such record (a forged receipt, or a record that
 *     never landed);
 *   - `RECEIPT_MALFORMED`: a field out of range;
 *   - `INVALID_CONFIG`: the quorum given is not a SupervisorQuorum;
 *   - `RPC_ERROR` / `TIMEOUT` (retryable): the node failed
 */
export async function verifyReceipt(receipt: Receipt, rpc: ReceiptRpc, options: VerifyReceiptOptions = {}): Promise<ReceiptVerification> {
  checkReceiptShape(receipt);
  const chainId = BigInt(await send<string>(rpc, "eth_chainId", []));
  if (chainId !== receipt.chainId) {
    throw mismatch("chainId", "The receipt is for another chain than the node's", { receipt: receipt.chainId, chain: chainId });
  }
  const ledger = receipt.ledger;
  if (options.ledger !== undefined && options.ledger.toLowerCase() !== ledger.toLowerCase()) {
    throw mismatch("ledger", "The receipt names another ledger than the one you trust", { receipt: ledger, expected: options.ledger });
  }
  const head = Number(BigInt(await send<string>(rpc, "eth_blockNumber", [])));
  const at = hex(head);
  const code = await send<string>(rpc, "eth_getCode", [ledger, at]);
  if (code === "0x" || code === "") throw mismatch("ledger", "There is no ledger at the receipt's address on this chain", { receipt: ledger, chainId });
  let recordCount: bigint;
  try {
    recordCount = (await call(rpc, ledger, LEDGER, "chainHead", [], at)).recordCount as bigint;
  } catch (e) {
    if (notThatContract(e)) throw mismatch("ledger", "The contract at the receipt's address is not a PrepaidLedger", { receipt: ledger });
    throw rpcFailure(e, "eth_call");
  }
  const quorum = options.quorum === undefined ? undefined : await quorumLedger(rpc, options.quorum, at);
  if (quorum !== undefined && quorum.ledger !== ledger.toLowerCase()) {
    throw mismatch("ledger", "The receipt names another ledger than the one the supervisors' quorum supervises", { receipt: ledger, quorumLedger: quorum.ledger });
  }
  if (receipt.recordIndex > recordCount) {
    throw new PrepaidLedgerError("RECEIPT_NOT_FOUND", "The ledger holds no such record: it has booked fewer records than the receipt's index", {
      details: { ledger, recordIndex: receipt.recordIndex, recordCount },
    });
  }
  const record = matchRecord(receipt, await findRecords(rpc, receipt, head, options.fromBlock ?? 0, options.maxBlockRange ?? DEFAULT_MAX_BLOCK_RANGE));
  const d = receipt.details;
  const [booksResult, block, coolingOff] = await Promise.all([
    call(rpc, ledger, LEDGER, "accountBooks", [d.merchantId, d.account], at).catch((e: unknown) => Promise.reject(rpcFailure(e, "eth_call"))),
    send<{ timestamp: string } | null>(rpc, "eth_getBlockByNumber", [hex(record.blockNumber), false]),
    coolingOffQuote(rpc, ledger, d.merchantId, d.account, at),
  ]);
  const b = booksResult.books as { recordCount: bigint; initialAmount: bigint; toppedUp: bigint; consumed: bigint; refunded: bigint; balance: bigint };
  return {
    valid: true,
    receipt,
    record: { ...record, blockTime: block === null ? 0 : Number(BigInt(block.timestamp)) },
    books: { recordCount: Number(b.recordCount), initialAmount: b.initialAmount, toppedUp: b.toppedUp, consumed: b.consumed, refunded: b.refunded, balance: b.balance },
    confirmation: quorum === undefined ? { status: "unchecked", quorum: null, confirmedThrough: null } : await confirmation(rpc, quorum.address, receipt.recordIndex, at),
    coolingOff,
    checkedAtBlock: head,
  };
}

/**
 * The card's cooling-off right, from the ledger's custody; null when none is attached (or the
 * ledger is older than custody and has no `custody()`).
 */
async function coolingOffQuote(rpc: ReceiptRpc, ledger: string, merchantId: number, account: string, at: string): Promise<CoolingOffQuote | null> {
  let custody: string;
  try {
    custody = String((await call(rpc, ledger, CUSTODY_LINK, "custody", [], at))[0]);
  } catch (e) {
    if (notThatContract(e)) return null;
    throw rpcFailure(e, "eth_call");
  }
  if (custody === ZERO_ADDRESS) return null;
  try {
    const q = await call(rpc, custody, CUSTODY, "coolingOffQuote", [merchantId, account], at);
    return { amount: q.amount as bigint, endsAt: Number(q.endsAt as bigint), custody };
  } catch (e) {
    // A custody contract older than per-top-up cooling-off has no quote to give.
    if (notThatContract(e)) return null;
    throw rpcFailure(e, "eth_call");
  }
}

async function quorumLedger(rpc: ReceiptRpc, address: string, at: string): Promise<{ address: string; ledger: string }> {
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) {
    throw new PrepaidLedgerError("INVALID_CONFIG", "the quorum is not an address", { details: { quorum: address } });
  }
  try {
    const [ledger] = await call(rpc, address, QUORUM, "LEDGER", [], at);
    return { address, ledger: String(ledger).toLowerCase() };
  } catch (e) {
    if (notThatContract(e)) throw new PrepaidLedgerError("INVALID_CONFIG", "the quorum given is not a SupervisorQuorum on this chain", { details: { quorum: address }, cause: e });
    throw rpcFailure(e, "eth_call");
  }
}

async function confirmation(rpc: ReceiptRpc, quorum: string, recordIndex: bigint, at: string): Promise<ReceiptConfirmation> {
  try {
    const [[status], last] = await Promise.all([call(rpc, quorum, QUORUM, "status", [recordIndex], at), call(rpc, quorum, QUORUM, "lastFinal", [], at)]);
    return { status: BigInt(status as bigint) === CONFIRMED ? "confirmed" : "pending", quorum, confirmedThrough: last[0] as bigint };
  } catch (e) {
    throw rpcFailure(e, "eth_call");
  }
}

/**
 * The `Recorded` logs that can be the receipt's: every one of its block, and, if none there has
 * its index or commitment, those anywhere with its stated or computed commitment.
 */
async function findRecords(rpc: ReceiptRpc, receipt: Receipt, head: number, fromBlock: number, maxBlockRange: number): Promise<RecordedRecord[]> {
  const decode = (logs: ReceiptLog[]) => logs.filter((l) => l.removed !== true).map(decodeRecordedLog).filter((r): r is RecordedRecord => r !== null);
  const commitments = [...new Set([receipt.commitment.toLowerCase(), computedCommitment(receipt)])];
  let inBlock: RecordedRecord[] = [];
  if (receipt.blockNumber <= head) {
    const block = hex(receipt.blockNumber);
    inBlock = decode(await send<ReceiptLog[]>(rpc, "eth_getLogs", [{ address: receipt.ledger, fromBlock: block, toBlock: block, topics: [RECORDED_TOPIC] }]));
    if (inBlock.some((r) => r.recordIndex === receipt.recordIndex || commitments.includes(r.commitment))) return inBlock;
  }
  // Paged, so a node that caps eth_getLogs ranges still answers; stops at the first page with a hit.
  const elsewhere: RecordedRecord[] = [];
  const query = { address: receipt.ledger, fromBlock: BigInt(fromBlock), toBlock: BigInt(head), topics: [RECORDED_TOPIC, null, null, commitments], maxBlockRange };
  try {
    for await (const logs of fetchLogs(rpc, query)) {
      elsewhere.push(...decode(logs));
      if (elsewhere.length > 0) break;
    }
  } catch (e) {
    throw rpcFailure(e, "eth_getLogs");
  }
  return [...inBlock, ...elsewhere];
}

