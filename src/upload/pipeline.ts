/**
 * Batches in flight: the uploader's fast path (`inFlight` ≥ 2, no preflight). A batch goes to the
 * node the moment the node has answered for the one before it, while the uploader reads where
 * that one landed and journals it, so the node never waits for the client (docs/RELIABILITY.md,
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
  /** Settles once this batch landed, or was skipped after a failure (never rejects). */
  landed: Promise<void>;
  done: boolean;
  /** Resolves once the next batch was sent, or nothing more will be: then where it landed is asked. */
  followed: Promise<void>;
  follow: () => void;
}

/** The ledger's refusals that mean the batch's number was used (by this batch, or another). */
const NUMBER_USED = new Set(["LedgerBatchReplayed", "LedgerSequenceGap"]);

/** Resolves two turns of the event loop later (see the uploader: lets a send leave before sealing starts). */
const afterTwoTurns = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

/**
 * Seals, journals and sends `chunks` in order with up to `window` batches sent and not yet landed;
 * resolves once every batch landed (included, or final at depth 0).
 *
 * Two strands share the work. The sender seals, journals and signs the next batch while the node
 * runs the one before, and sends it the moment the node has answered for that one and fewer than
 * `window` batches are still to land. The lander reads where each sent batch landed (its
 * `BatchRecorded` log, else its receipt) and journals it, in order, on its own, so that the
 * question (which the node may answer only after the batch it is running) never holds up the
 * next send.
 *
 * On any failure, stops sending, waits for what was sent, settles every pending batch one at a
 * time, and throws the first failure (after a refusal, the batches behind it are renumbered and
 * landed first). A batch whose number turned out used (by another recorder, or after a reorg) is
 * not a failure: the pending batches are settled one at a time, then the rest is sent as before.
 */
export async function sendPipelined<Chunk>(host: PipelineHost<Chunk>, chunks: readonly Chunk[], window: number, deadline: number): Promise<void> {
  const { chain, settler } = host;
  const flights: Flight[] = [];
  let landed = 0;
  let failure: { error: unknown } | undefined;
  /** A batch number used elsewhere: settle what is pending, then go on. */
  let taken = false;
  let landing: Promise<void> = Promise.resolve();
  let nonce: number | undefined;
  let next = 0; // the first chunk not journaled
  let sealing = chunks.length > 0 ? host.seal(chunks[0]) : undefined;

  /** Lands `flight` after every batch sent before it; skipped once anything failed. */
  const land = (flight: Flight): Promise<void> =>
    (landing = landing.then(async () => {
      if (failure !== undefined || taken) return;
      try {
        const hash = await flight.hash.catch((e: unknown): typeof TAKEN => {
          // A node that runs a send at once may refuse it there: a used number is not a failure.
          if (isError(e, "LEDGER_REVERTED") && NUMBER_USED.has(String(e.details.error))) return TAKEN;
          throw e;
        });
        if (hash === TAKEN) {
          taken = true;
          return;
        }
        // The next batch goes first: a node answers requests in turn, and the question asked
        // before it would delay it; asked after, it is answered while the client prepares.
        await flight.followed;
        const receipt = await settler.delivered(flight.entry, hash, flight.data, deadline);
        if (receipt === TAKEN) {
          taken = true;
          return;
        }
        settler.land(flight.entry, receipt);
        flight.done = true;
        landed++;
      } catch (e) {
        failure ??= { error: e };
      }
    }));
  const stopped = (): boolean => failure !== undefined || taken;
  /** Nothing more is sent for now: every landing may be asked. */
  const followAll = (): void => flights.forEach((f) => f.follow());
  /** Waits until fewer than `limit` sent batches are still to land, or something stopped the run. */
  const room = async (limit: number): Promise<void> => {
    while (!stopped() && flights.length - landed >= limit) await flights[landed].landed;
  };

  try {
    for (; next < chunks.length && !stopped(); next++) {
      const sealed = await sealing!;
      const following = chunks[next + 1];
      sealing = following !== undefined ? afterTwoTurns().then(() => host.seal(following)) : undefined;
      if (stopped()) break;
      const gasLimit = gasBound(sealed.envelope, sealed.packed);
      if (gasLimit >= MAX_TX_GAS && host.size(chunks[next]) > 1) {
        // May not fit in one transaction: land what is in flight, then split it the careful way.
        followAll();
        await room(1);
        if (stopped()) break;
        nonce = undefined;
        await host.submitOne(chunks[next], sealed);
        continue;
      }
      const sequence = await settler.takeSequence();
      const entry = host.journalBatch(chunks[next], sealed, sequence, gasLimit);
      const data = calldata(encodeRecordBatchCall(host.merchantId, sequence, sealed.envelope, sealed.packed));
      const context = { sequence };
      nonce ??= await chain.nonce("pending");
      const prepared = await chain.prepare(data, gasLimit, nonce, context);
      // Nonce order at the node: send only once it has answered for the batch before; if that
      // send failed, send nothing more (the lander comes to it and says what it was).
      const previous = flights.length === 0 ? true : await flights[flights.length - 1].hash.then(() => true, () => false);
      if (!previous) {
        followAll();
        await landing;
      } else await room(window);
      if (stopped()) {
        next++; // journaled: settled with the rest
        break;
      }
      const hash = chain.dispatch(prepared, context);
      hash.catch(() => undefined); // awaited by the lander, or when stopping
      flights[flights.length - 1]?.follow();
      let follow!: () => void;
      const followed = new Promise<void>((resolve) => (follow = resolve));
      const flight: Flight = { entry, data, hash, landed: Promise.resolve(), done: false, followed, follow };
      flight.landed = land(flight);
      flights.push(flight);
      nonce++;
    }
    followAll();
    await landing;
  } catch (e) {
    failure ??= { error: e };
    followAll();
    await landing;
  }
  sealing?.catch(() => undefined);
  const pending = flights.filter((f) => !f.done);
  if (failure !== undefined) await stop(host, pending, failure.error, deadline);
  if (taken) {
    await settleTaken(host, pending, deadline);
    if (next < chunks.length) await sendPipelined(host, chunks.slice(next), window, deadline);
  }
}

/**
 * After a batch whose number was used elsewhere: journals the hashes of the pending batches whose
 * sends were answered, then lands every pending batch one at a time (the Settler asks the chain
 * before each step, and renumbers what must move).
 */
async function settleTaken<Chunk>(host: PipelineHost<Chunk>, pending: Flight[], deadline: number): Promise<void> {
  await journalAnswered(host, pending);
  host.settler.nextSequence = undefined;
  await host.settler.settlePending(deadline);
}

/** Journals the hash of every pending batch the node answered for. */
async function journalAnswered<Chunk>(host: PipelineHost<Chunk>, pending: Flight[]): Promise<void> {
  const answers = await Promise.allSettled(pending.map((f) => f.hash));
  answers.forEach((a, i) => {
    if (a.status === "fulfilled") host.appendSent(pending[i].entry, a.value);
  });
}

/**
 * After a failure: journals the hashes of the batches whose sends were answered, then settles
 * every pending batch one at a time. A refusal by the ledger (not retryable) is followed by the
 * rest: each later batch moves down into the refused number and lands; a retryable failure is
 * left to the next call (the batches stay journaled). Throws `first`.
 */
async function stop<Chunk>(host: PipelineHost<Chunk>, pending: Flight[], first: unknown, deadline: number): Promise<never> {
  await journalAnswered(host, pending);
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
