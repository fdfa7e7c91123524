/**
 * Batches in flight: the uploader's fast path (`inFlight` ≥ 2, no preflight). A batch goes to the
 * node the moment the node has answered for the one before it, while the uploader reads that
 * one's receipt and journals it, so the node never waits for the client (docs/RELIABILITY.md,
 * "Batches in flight").
 *
 * What keeps it exactly once is what keeps one batch at a time exactly once: every batch is
 * sealed and journaled (fsync) under its sequence number before its transaction leaves, and the
 * ledger accepts a number once. What keeps the batches in order: consecutive nonces of the one
 * recorder key (the node runs nonce n + 1 only after n), and each batch sent only after the node
 * answered for the one before (so they arrive in nonce order, as an automining node requires).
 *
 * Anything unexpected (a send or receipt fault, a refusal, a number taken by another recorder)
 * stops the pipeline: the batches already sent are waited for, and everything still pending is
 * settled one at a time by the Settler, which asks the chain before each step. A refused batch
 * N makes the batches sent after it revert (the ledger expects N again): they are journaled
 * under numbers above a gap this journal released, and the Settler moves each down by one and
 * signs it again (Settler.settle), so no record is lost or booked twice.
 */
import { isError } from "../errors.js";
import { encodeRecordBatchCall } from "../ledger/codec.js";
import type { UploaderChain } from "./chain.js";
import { MAX_TX_GAS, gasBound } from "./gas.js";
import type { JournalEntry } from "./journal-state.js";
import type { SealedBatch } from "./sealing.js";
import { TAKEN, calldata, type Settler } from "./settle.js";

/** What the pipeline needs of the uploader. */
export interface PipelineHost<Chunk> {
  readonly merchantId: number;
  readonly chain: UploaderChain;
  readonly settler: Settler;
  seal(chunk: Chunk): Promise<SealedBatch>;
  /** Journals a sealed batch (fsync) under `sequence`; returns its entry. */
  journalBatch(chunk: Chunk, sealed: SealedBatch, sequence: bigint, gasLimit: bigint): JournalEntry;
  /** Submits one batch the one-at-a-time way (it splits a batch over the gas cap). */
  submitOne(chunk: Chunk, sealed: SealedBatch): Promise<void>;
  /** Journal lines (for "sent" hashes learned while stopping). */
  appendSent(entry: JournalEntry, hash: string): void;
  /** Records per chunk, for the gas-cap test. */
  size(chunk: Chunk): number;
}

interface Flight {
  entry: JournalEntry;
  data: string;
  /** The node's answer to the send: the transaction hash. */
  hash: Promise<string>;
}

/** Resolves two turns of the event loop later (see the uploader: lets a send leave before sealing starts). */
const afterTwoTurns = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

/**
 * Seals, journals and sends `chunks` in order with up to `window` batches in flight; resolves once
 * every batch landed (included, or final at depth 0). On any failure, stops sending, waits for
 * what was sent, settles every pending batch one at a time, and throws the first failure
 * (after a refusal, the batches behind it are renumbered and landed first).
 */
export async function sendPipelined<Chunk>(host: PipelineHost<Chunk>, chunks: readonly Chunk[], window: number, deadline: number): Promise<void> {
  const { chain, settler } = host;
  const flights: Flight[] = [];
  let nonce: number | undefined;
  let sealing = chunks.length > 0 ? host.seal(chunks[0]) : undefined;

  /** Waits for a sent batch's receipt and journals where it landed. */
  const complete = async (flight: Flight): Promise<void> => {
    const hash = await flight.hash;
    const receipt = await settler.delivered(flight.entry, hash, flight.data, deadline);
    if (receipt === TAKEN) await settler.settle(flight.entry, false, deadline);
    else settler.land(flight.entry, receipt);
  };

  try {
    for (let i = 0; i < chunks.length; i++) {
      const sealed = await sealing!;
      sealing = i + 1 < chunks.length ? afterTwoTurns().then(() => host.seal(chunks[i + 1])) : undefined;
      const gasLimit = gasBound(sealed.envelope, sealed.packed);
      if (gasLimit >= MAX_TX_GAS && host.size(chunks[i]) > 1) {
        // May not fit in one transaction: land what is in flight, then split it the careful way.
        while (flights.length > 0) await complete(flights.shift()!);
        nonce = undefined;
        await host.submitOne(chunks[i], sealed);
        continue;
      }
      const sequence = await settler.takeSequence();
      const entry = host.journalBatch(chunks[i], sealed, sequence, gasLimit);
      const data = calldata(encodeRecordBatchCall(host.merchantId, sequence, sealed.envelope, sealed.packed));
      const context = { sequence };
      nonce ??= await chain.nonce("pending");
      const prepared = await chain.prepare(data, gasLimit, nonce, context);
      // Nonce order at the node: send only once it has answered for the batch before.
      if (flights.length > 0) await flights[flights.length - 1].hash;
      const hash = chain.dispatch(prepared, context);
      hash.catch(() => undefined); // awaited in complete() or when stopping
      flights.push({ entry, data, hash });
      nonce++;
      while (flights.length >= window) await complete(flights.shift()!);
    }
    while (flights.length > 0) await complete(flights.shift()!);
  } catch (e) {
    sealing?.catch(() => undefined);
    await stop(host, flights, e, deadline);
  }
}

/**
 * After a failure: journals the hashes of the batches whose sends were answered, then settles
 * every pending batch one at a time. A refusal by the ledger (not retryable) is followed by the
 * rest: each later batch moves down into the refused number and lands; a retryable failure is
 * left to the next call (the batches stay journaled). Throws `first`.
 */
async function stop<Chunk>(host: PipelineHost<Chunk>, flights: Flight[], first: unknown, deadline: number): Promise<never> {
  const answers = await Promise.allSettled(flights.map((f) => f.hash));
  answers.forEach((a, i) => {
    if (a.status === "fulfilled") host.appendSent(flights[i].entry, a.value);
  });
  host.settler.nextSequence = undefined;
  if (!isError(first, "LEDGER_REVERTED") || first.retryable) throw first;
  // Each round journals one more batch as rejected or lands them all, so this ends.
  for (;;) {
    try {
      await host.settler.settlePending(deadline);
      break;
    } catch (e) {
      if (!isError(e, "LEDGER_REVERTED") || e.retryable) throw first;
    }
  }
  throw first;
}
