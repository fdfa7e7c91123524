/**
 * The uploader's view of the chain: every JSON-RPC call it makes, each bounded by the configured
 * timeout and each failure classified (src/ledger/revert.ts) into a PrepaidLedgerError with a
 * correct `retryable`. Reads go through the provider's raw `send` where it has one: ethers' typed
 * methods cache an identical request's answer (a failure too) for 250 ms and build an object per
 * log, neither wanted here.
 */
import { BaseWallet, Interface, JsonRpcSigner, hexlify, toQuantity, type Provider, type Signer, type TransactionLike } from "ethers";

import { PrepaidLedgerError } from "../errors.js";
import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import { toLedgerError } from "../ledger/revert.js";
import { bytesToHex, hexToBytes } from "../crypto/hash.js";
import { signBatchTransaction } from "./signing.js";

const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);
const BATCH_RECORDED = ledgerInterface.getEvent("BatchRecorded")!.topicHash;

/** What the uploader needs of a receipt: plain fields, cheap to build for a thousand logs. */
export interface Receipt {
  hash: string;
  blockNumber: number;
  blockHash: string;
  status: number;
  logs: readonly { topics: readonly string[]; data: string }[];
}

/**
 * A batch transaction ready to go out with a nonce the uploader chose (see
 * {@link UploaderChain.prepare}): signed here, handed to the node's key, or left to the signer.
 */
export type PreparedSend =
  | { method: "eth_sendRawTransaction"; params: [string] }
  | { method: "eth_sendTransaction"; params: [Record<string, string>] }
  | { method: "sendTransaction"; send: () => Promise<string> };

type RawProvider = Provider & { send?: (method: string, params: unknown[]) => Promise<unknown> };

/**
 * How long a local key's fee quote (chain id, type and fees, asked of the node with
 * `populateTransaction`) is used without asking again; after that it is still used while a fresh
 * one is asked in the background, up to {@link FEE_QUOTE_MAX_AGE_MS}, after which the next batch
 * waits for a fresh one. ethers quotes `maxFeePerGas` as twice the base fee plus the tip: a quote a
 * few blocks old still covers a base fee rising 12.5 % a block.
 */
export const FEE_QUOTE_FRESH_MS = 1_000;
/** The oldest fee quote a local key signs with; see {@link FEE_QUOTE_FRESH_MS}. */
export const FEE_QUOTE_MAX_AGE_MS = 6_000;

/** A `BatchRecorded` log as eth_getLogs gives it. */
interface BatchLog {
  transactionHash: string;
  blockNumber: string | number;
  blockHash: string;
  topics: string[];
  data: string;
}

/** A fee quote: what `populateTransaction` gave, without the per-batch fields. */
interface FeeQuote {
  tx: TransactionLike<string>;
  at: number;
}

const topic = (n: bigint | number) => "0x" + BigInt(n).toString(16).padStart(64, "0");
const quantity = (n: number | bigint) => "0x" + n.toString(16);

/**
 * Resolves as `p` does, or rejects with a retryable `TIMEOUT` after `ms`. The call itself is not
 * cancelled (ethers offers no way to): its late answer is ignored.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, details: Record<string, unknown>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PrepaidLedgerError("TIMEOUT", "the JSON-RPC node did not answer in time", { details })),
      ms,
    );
  });
  p.catch(() => undefined);
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class UploaderChain {
  readonly provider: RawProvider;
  /** A local key's last fee quote (see {@link FEE_QUOTE_FRESH_MS}). */
  private quote: FeeQuote | undefined;
  /** The quote being asked for, one at a time. */
  private quoting: Promise<FeeQuote> | undefined;

  constructor(
    private readonly signer: Signer,
    private readonly ledger: string,
    private readonly merchantId: number,
    private readonly timeoutMs: number,
  ) {
    this.provider = signer.provider as RawProvider;
  }

  /** Runs one call under the timeout; classifies what it throws. */
  async call<T>(what: string, run: () => Promise<T>, context: Record<string, unknown> = {}): Promise<T> {
    const details = { call: what, merchantId: this.merchantId, ...context };
    try {
      return await withTimeout(run(), this.timeoutMs, { ...details, timeoutMs: this.timeoutMs });
    } catch (e) {
      throw toLedgerError(e, details);
    }
  }

  /** A raw JSON-RPC read, through `send` when the provider has it. */
  private raw(method: string, params: unknown[], fallback: () => Promise<unknown>, context: Record<string, unknown> = {}): Promise<unknown> {
    const send = this.provider.send;
    return this.call(method, () => (typeof send === "function" ? send.call(this.provider, method, params) : fallback()), context);
  }

  async head(): Promise<number> {
    return Number(await this.raw("eth_blockNumber", [], () => this.provider.getBlockNumber()));
  }

  /** The hash of block `n` on the node's chain, or null when it has no such block (yet). */
  async blockHash(n: number): Promise<string | null> {
    const block = (await this.raw("eth_getBlockByNumber", [quantity(n), false], () => this.provider.getBlock(n))) as {
      hash?: string | null;
    } | null;
    return block?.hash ?? null;
  }

  /** The sequence number the merchant's next batch must carry, as the ledger says now. */
  async nextSequence(): Promise<bigint> {
    const data = ledgerInterface.encodeFunctionData("merchantBooks", [this.merchantId]);
    const tx = { to: this.ledger, data };
    const result = (await this.raw("eth_call", [tx, "latest"], () => this.provider.call(tx))) as string;
    try {
      return ledgerInterface.decodeFunctionResult("merchantBooks", result)[0].nextSequence as bigint;
    } catch (e) {
      // An empty or short answer: a node that failed (or lost the contract's state), not a refusal.
      throw new PrepaidLedgerError("RPC_ERROR", "the node's answer to merchantBooks cannot be decoded", {
        details: { merchantId: this.merchantId, result: String(result).slice(0, 80) },
        cause: e,
        retryable: true,
      });
    }
  }

  async receipt(hash: string): Promise<Receipt | null> {
    const raw = (await this.raw(
      "eth_getTransactionReceipt",
      [hash],
      async () => {
        const r = await this.provider.getTransactionReceipt(hash);
        return r === null
          ? null
          : { transactionHash: r.hash, blockNumber: r.blockNumber, blockHash: r.blockHash, status: r.status ?? 0, logs: r.logs };
      },
      { txHash: hash },
    )) as {
      transactionHash: string;
      blockNumber: string | number;
      blockHash: string;
      status: string | number;
      logs: { topics: string[]; data: string }[];
    } | null;
    if (raw === null || raw === undefined || raw.blockNumber === null) return null;
    return {
      hash: raw.transactionHash,
      blockNumber: Number(raw.blockNumber),
      blockHash: raw.blockHash,
      status: Number(raw.status),
      logs: raw.logs,
    };
  }

  /** Hashes of the transactions whose BatchRecorded log is this merchant's batch `sequence`. */
  async batchTransactions(sequence: bigint, fromBlock: number): Promise<string[]> {
    return (await this.batchLogs(sequence, fromBlock, { sequence })).map((l) => l.transactionHash);
  }

  /**
   * Where the batch transaction `hash` landed, read from its one `BatchRecorded` log
   * (eth_getLogs on the merchant's and the batch's topics, from `fromBlock`), as a receipt holding
   * that log only; null when the log is not there (not mined yet, reverted, or on a node that
   * lost it): the caller asks for the receipt then. A log is emitted only by a transaction that
   * succeeded, so finding it is success; and the node serializes one log, not the thousand
   * `Recorded` logs of the full receipt.
   */
  async landing(hash: string, sequence: bigint, fromBlock: number): Promise<Receipt | null> {
    const logs = await this.batchLogs(sequence, fromBlock, { sequence, txHash: hash });
    const log = logs.find((l) => l.transactionHash.toLowerCase() === hash.toLowerCase());
    if (log === undefined) return null;
    return { hash: log.transactionHash, blockNumber: Number(log.blockNumber), blockHash: log.blockHash, status: 1, logs: [{ topics: log.topics, data: log.data }] };
  }

  /** The `BatchRecorded` logs of this merchant's batch `sequence` from `fromBlock` on, removed ones left out. */
  private async batchLogs(sequence: bigint, fromBlock: number, context: Record<string, unknown>): Promise<BatchLog[]> {
    const filter = {
      address: this.ledger,
      topics: [BATCH_RECORDED, topic(this.merchantId), topic(sequence)],
      fromBlock: quantity(fromBlock),
      toBlock: "latest",
    };
    const logs = (await this.raw("eth_getLogs", [filter], () => this.provider.getLogs({ ...filter, fromBlock }), context)) as (BatchLog & {
      removed?: boolean;
    })[];
    return logs.filter((l) => l.removed !== true);
  }

  /** eth_estimateGas of the batch call, from the recorder. */
  estimate(data: string, context: Record<string, unknown>): Promise<bigint> {
    return this.call("eth_estimateGas", () => this.signer.estimateGas({ to: this.ledger, data }), context);
  }

  /** The recorder's transaction count: mined (`latest`) or including what the node holds (`pending`). */
  async nonce(tag: "latest" | "pending"): Promise<number> {
    const from = await this.call("getAddress", () => this.signer.getAddress());
    return Number(await this.raw("eth_getTransactionCount", [from, tag], () => this.provider.getTransactionCount(from, tag)));
  }

  /**
   * Makes the batch transaction with `nonce`, ready for {@link dispatch}, so that sending it is
   * one request: a local key (an ethers Wallet) signs it here (fees asked now; src/upload/signing.ts,
   * not ethers' signTransaction, which takes longer than the node's execution of a batch); a key the node
   * holds (a JsonRpcSigner) gets `eth_sendTransaction`; any other signer sends it itself later.
   */
  async prepare(data: string, gasLimit: bigint, nonce: number, context: Record<string, unknown>): Promise<PreparedSend> {
    const signer = this.signer;
    if (signer instanceof BaseWallet) {
      const tx = await this.feeQuote(context);
      const { chainId, maxFeePerGas, maxPriorityFeePerGas, to } = tx;
      if (tx.type === 2 && chainId != null && maxFeePerGas != null && maxPriorityFeePerGas != null && typeof to === "string") {
        const bytes = typeof data === "string" ? hexToBytes(data) : (data as Uint8Array);
        const raw = signBatchTransaction(signer.signingKey, {
          chainId: BigInt(chainId),
          nonce,
          maxFeePerGas: BigInt(maxFeePerGas),
          maxPriorityFeePerGas: BigInt(maxPriorityFeePerGas),
          gasLimit,
          to,
          data: bytes,
        });
        return { method: "eth_sendRawTransaction", params: [raw] };
      }
      // A node without EIP-1559 fees: ethers signs the legacy transaction (slowly, but correctly).
      return { method: "eth_sendRawTransaction", params: [await signer.signTransaction({ ...tx, gasLimit, nonce, data })] };
    }
    if (signer instanceof JsonRpcSigner) {
      const from = await this.call("getAddress", () => signer.getAddress());
      // Buffer's hex, not ethers' hexlify: 150 kB of calldata through a JavaScript loop costs milliseconds.
      const hex = typeof data === "string" ? hexlify(data) : bytesToHex(data as Uint8Array);
      const params = { from, to: this.ledger, data: hex, gas: toQuantity(gasLimit), nonce: toQuantity(nonce) };
      return { method: "eth_sendTransaction", params: [params] };
    }
    return {
      method: "sendTransaction",
      send: async () => (await signer.sendTransaction({ to: this.ledger, data, gasLimit, nonce })).hash,
    };
  }

  /**
   * A local key's fee quote (chain id, transaction type, fees), asked with `populateTransaction`
   * without the calldata (ethers would copy 150 kB through hex for nothing). A quote younger than
   * {@link FEE_QUOTE_FRESH_MS} is used as it is; an older one is used while a fresh one is asked in
   * the background (a failure there keeps the old one); none, or one older than
   * {@link FEE_QUOTE_MAX_AGE_MS}, is waited for, and a failure then is the call's error. One
   * question at a time: batches that need a quote together share it.
   */
  async feeQuote(context: Record<string, unknown> = {}): Promise<TransactionLike<string>> {
    const age = this.quote === undefined ? Infinity : Date.now() - this.quote.at;
    if (age > FEE_QUOTE_MAX_AGE_MS) return (await this.refreshQuote(context)).tx;
    if (age > FEE_QUOTE_FRESH_MS) this.refreshQuote(context).catch(() => undefined);
    return this.quote!.tx;
  }

  /** Forgets the fee quote (after a refused send: the fees may be what the node refused). */
  forgetFeeQuote(): void {
    this.quote = undefined;
  }

  /** Asks for a fee quote, or joins the question already asked. */
  private refreshQuote(context: Record<string, unknown>): Promise<FeeQuote> {
    const signer = this.signer;
    this.quoting ??= this.call(
      "populateTransaction",
      // gasLimit and nonce given, so ethers asks for neither (both are the batch's own, set at signing).
      () => signer.populateTransaction({ to: this.ledger, gasLimit: 0n, nonce: 0 }),
      context,
    )
      .then((tx) => {
        const { gasLimit: _g, nonce: _n, ...quote } = tx;
        this.quote = { tx: quote, at: Date.now() };
        return this.quote;
      })
      .finally(() => {
        this.quoting = undefined;
      });
    return this.quoting;
  }

  /**
   * Sends a prepared batch transaction in one request; resolves with its hash once the node took
   * it. Ambiguous on failure, as {@link send}; a failed raw send also forgets the fee quote, so
   * the next batch is signed with fees asked anew.
   */
  async dispatch(prepared: PreparedSend, context: Record<string, unknown>): Promise<string> {
    if (prepared.method !== "eth_sendRawTransaction") return this.dispatchOnce(prepared, context);
    try {
      return await this.dispatchOnce(prepared, context);
    } catch (e) {
      this.forgetFeeQuote();
      throw e;
    }
  }

  private async dispatchOnce(prepared: PreparedSend, context: Record<string, unknown>): Promise<string> {
    if (prepared.method === "sendTransaction") return this.call("sendTransaction", prepared.send, context);
    const send = this.provider.send;
    if (typeof send === "function") {
      return String(await this.call(prepared.method, () => send.call(this.provider, prepared.method, prepared.params), context));
    }
    if (prepared.method === "eth_sendRawTransaction") {
      const raw = prepared.params[0];
      return this.call(prepared.method, async () => (await this.provider.broadcastTransaction(raw)).hash, context);
    }
    throw new PrepaidLedgerError("INVALID_CONFIG", "the signer's provider cannot send eth_sendTransaction", { details: context });
  }

  /**
   * Sends the batch call; resolves with the transaction hash once the node took it. A failure
   * here is ambiguous (the node may have taken it before its answer was lost): the caller must
   * look on chain before concluding anything.
   */
  async send(data: string, gasLimit: bigint, context: Record<string, unknown>): Promise<string> {
    // The nonce is asked for here, raw: an ethers Wallet would take it from its provider's 250 ms
    // cache, stale when batches follow each other faster than that.
    const from = await this.call("getAddress", () => this.signer.getAddress());
    const nonce = Number(await this.raw("eth_getTransactionCount", [from, "pending"], () => this.provider.getTransactionCount(from, "pending")));
    const tx = await this.call("sendTransaction", () => this.signer.sendTransaction({ to: this.ledger, data, gasLimit, nonce }), context);
    return tx.hash;
  }
}
