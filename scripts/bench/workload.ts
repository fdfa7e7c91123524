/**
 * The workload every bench uploads: the same merchant, cards, typical details and amounts, so
 * the gas, in-process and over-HTTP figures are about the same bytes.
 */
import { id, type Signer } from "ethers";

import { RecordKind, publicKeyOf, type RecordDetails } from "../../src/crypto/index.js";
import { Uploader, type UploaderConfigInput } from "../../src/upload/uploader.js";

export const MERCHANT = 1;
/** Cards opened before the timed consumptions. */
export const CARDS = 1_000;
/** Consumptions timed by the throughput benches. */
export const RECORDS = 20_000;
/** 20,000.00 yuan: more than 20 consumptions of at most 580.00. */
export const OPENING = 2_000_000n;
export const MEMOS = ["yoga class", "haircut", "math tutor", "swim lesson"] as const;
export const START_TIME = Date.UTC(2026, 10, 26, 9, 0, 0) / 1000;
/** A fixed key: the benches decrypt what they upload, so they need the regulator's private key. */
export const REGULATOR_KEY = id("bench:regulator");

/** mulberry32: a fixed-seed generator, so amounts are the same on every run. */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export const cardAccount = (card: number): string => id(`CARD-${String(card).padStart(8, "0")}`);

/** Typical details: an order reference like ORD-2026-11-000042 and a short memo. */
export function details(kind: RecordDetails["kind"], card: number, amount: bigint, n: number): RecordDetails {
  return {
    kind,
    merchantId: MERCHANT,
    account: cardAccount(card),
    amount,
    time: START_TIME + 53 * n,
    orderRef: `ORD-2026-11-${String(n).padStart(6, "0")}`,
    memo: MEMOS[n % MEMOS.length]!,
  };
}

/** `count` consumptions spread over the cards, 28.00 to 580.00 yuan each. */
export function consumptions(count: number, cards: number, seed: number): RecordDetails[] {
  const random = prng(seed);
  return Array.from({ length: count }, (_, i) =>
    details(RecordKind.Consume, i % cards, 2_800n + 100n * BigInt(Math.floor(random() * 553)), cards + i),
  );
}

/** The benches' merchant uploader for `ledger`, encrypting for the bench regulator. */
export function benchUploader(
  ledger: string,
  recorder: Signer,
  journalPath: string,
  config: Partial<UploaderConfigInput>,
): Promise<Uploader> {
  return Uploader.open(
    { ledger, merchantId: MERCHANT, regulatorPublicKey: publicKeyOf(REGULATOR_KEY), journalPath, ...config },
    recorder,
  );
}
