/**
 * The town the main job simulates (scripts/lib/day.ts): its merchants with their registry data,
 * the one that follows the pattern seen before real closures (the precursor), the simulated
 * clock, and each day's traffic. Everything is seeded, so a run books the same amounts every time.
 */
import { RecordKind, type RecordDetails } from "../../src/crypto/details.js";
import type { RiskConfigInput } from "../../src/indexer/risk.js";
import { demoCard } from "./exit.js";

export interface Merchant {
  id: number;
  name: string;
  /** The regulator's registry data (setMerchantProfile): public business facts. */
  licence: string;
  category: string;
  district: string;
  /** Cards sold on the opening day, and a typical card price and purchase, in fen. */
  cards: number;
  cardPrice: bigint;
  purchase: bigint;
  memo: string;
}

export const MERCHANTS: readonly Merchant[] = [
  { id: 101, name: "Sunrise Gym", licence: "91310104MA1FR3K21X", category: "fitness", district: "Xuhui", cards: 40, cardPrice: 150_000n, purchase: 8_000n, memo: "spin class" },
  { id: 102, name: "Little Scholars", licence: "91310105MA1G7Q0B4N", category: "education", district: "Changning", cards: 30, cardPrice: 200_000n, purchase: 15_000n, memo: "math tutoring" },
  { id: 103, name: "Lotus Salon", licence: "92310106MA1H2LW8XP", category: "beauty", district: "Jing'an", cards: 25, cardPrice: 100_000n, purchase: 6_800n, memo: "haircut" },
  { id: 104, name: "Harbor Swim Club", licence: "91310107MA1J9T5D6R", category: "fitness", district: "Putuo", cards: 35, cardPrice: 120_000n, purchase: 5_000n, memo: "swim lesson" },
  { id: 105, name: "Jade Dragon Fitness", licence: "91310112MA1K4V7E3M", category: "fitness", district: "Minhang", cards: 20, cardPrice: 100_000n, purchase: 6_000n, memo: "gym visit" },
];

/**
 * The precursor: trades normally, then runs a campaign of heavily discounted long cards (big
 * top-ups, few visits: liability growing far faster than consumption), then falls silent, and is
 * closed by the regulator on the last day with its holders claiming from custody.
 */
export const PRECURSOR = 105;
/** A campaign card: ¥4,800 of classes (just under the ¥5,000 cap) sold for ¥1,680, 65 % off. */
export const CAMPAIGN_CARD = 480_000n;
export const CAMPAIGN_CARDS_PER_DAY = 5;

/** The days of the precursor's story in a history of `days` days (day 1 is the opening day). */
export function precursorPlan(days: number): { campaignFrom: number; campaignTo: number; closedOn: number } {
  const campaignFrom = Math.max(2, Math.round(days / 3));
  const campaignTo = Math.min(days - 1, campaignFrom + Math.max(1, Math.round(days / 4)) - 1);
  return { campaignFrom, campaignTo, closedOn: days };
}

/** The shortest history the main job runs (a week: opening, suspension, cooling-off return, campaign). */
export const MIN_DAYS = 7;
export const MAX_DAYS = 365;
export const DEFAULT_DAYS = 21;

/**
 * The risk thresholds of the town's regulator (written to the config file the main job leaves,
 * so `prepaid sync` finds the same alerts). The defaults (docs/RISK.md) look at 30-day windows; a
 * three-week history is read with weekly ones: growth over 7 days, top-up spikes over 3 days
 * against the 6 before, no service for 8 days. Eight, not seven: the history ends with the claims
 * window of a week, during which the merchants still open serve nobody in the simulation.
 */
export const DEMO_RISK: RiskConfigInput = { growthWindowDays: 7, spikeWindowDays: 3, spikeBaselineWindows: 2, dormantDays: 8 };

const DAY = 86_400;

/**
 * Day 1 opens at 09:00 Beijing time (01:00 UTC) of the day after `latest` (the chain's last
 * block, or the same day if it is before midnight UTC): a rerun on the same node continues after
 * the last history.
 */
export function firstMorning(latest: number): number {
  return Math.ceil(latest / DAY) * DAY + 3_600;
}

/** A seeded generator, so a history's traffic is the same on every run. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The card cap the regulator sets (mirrors day.ts's CARD_CAP; a top-up never goes above it). */
const CAP = 500_000n;

/**
 * The traffic of the town: who holds which card with what balance, and each day's records. The
 * caller uploads them; `time` in the details is the simulated clock (minutes after 09:00).
 */
export class Traffic {
  readonly balances = new Map<string, bigint>();
  /** Cards per merchant (opening cards, then the ones sold later). */
  readonly cards = new Map<number, number>();
  private order = 0;
  private readonly random = rng(20261126);

  constructor(private readonly morning: (day: number) => number) {}

  private detail(m: Merchant, kind: RecordKind, card: string, amount: bigint, day: number, minute: number, memo: string): RecordDetails {
    const time = this.morning(day) + minute * 60;
    const date = new Date(time * 1000).toISOString().slice(0, 10).replaceAll("-", "");
    return {
      kind,
      merchantId: m.id,
      account: card,
      amount,
      time,
      orderRef: `${m.name.slice(0, 3).toUpperCase()}-${date}-${String(++this.order).padStart(5, "0")}`,
      memo,
    };
  }

  private sell(m: Merchant, n: number, amount: bigint, day: number, minute: number, memo: string): RecordDetails {
    const card = demoCard(m.id, n).id;
    this.balances.set(card, (this.balances.get(card) ?? 0n) + amount);
    return this.detail(m, RecordKind.TopUp, card, amount, day, minute, memo);
  }

  /** The opening morning: each merchant sells its cards (each card's first top-up is its initial amount). */
  opening(m: Merchant): RecordDetails[] {
    const out: RecordDetails[] = [];
    for (let n = 0; n < m.cards; n++) {
      out.push(this.sell(m, n, m.cardPrice * BigInt(1 + Math.floor(this.random() * 2)), 1, Math.floor(this.random() * 120), "prepaid card sold"));
    }
    this.cards.set(m.id, m.cards);
    return out.sort((a, b) => a.time - b.time);
  }

  /**
   * One day of a merchant's trade between `from` and `to` (minutes after 09:00): visits on some
   * cards, a few refunds; after the opening day also a new card now and then and a top-up on a
   * card that has room under the cap. `visitRate` is the chance a card is used that day.
   */
  session(m: Merchant, day: number, from: number, to: number, visitRate = 0.3, sales = true): RecordDetails[] {
    const out: RecordDetails[] = [];
    const count = this.cards.get(m.id) ?? 0;
    for (let n = 0; n < count; n++) {
      const card = demoCard(m.id, n).id;
      if (this.random() < visitRate) {
        const amount = m.purchase + BigInt(Math.floor(this.random() * 5)) * 500n;
        const left = this.balances.get(card) ?? 0n;
        if (amount <= left) {
          this.balances.set(card, left - amount);
          out.push(this.detail(m, RecordKind.Consume, card, amount, day, from + Math.floor(this.random() * (to - from)), m.memo));
        }
      }
      if (this.random() < 0.004 && (this.balances.get(card) ?? 0n) > 0n) {
        const refund = this.balances.get(card)!;
        this.balances.set(card, 0n);
        out.push(this.detail(m, RecordKind.Refund, card, refund, day, to, "card cancelled, balance refunded"));
      }
    }
    if (day > 1 && sales) {
      if (this.random() < 0.5) {
        out.push(this.sell(m, count, m.cardPrice * BigInt(1 + Math.floor(this.random() * 2)), day, from, "prepaid card sold"));
        this.cards.set(m.id, count + 1);
      }
      const n = Math.floor(this.random() * count);
      const card = demoCard(m.id, n).id;
      if (count > 0 && (this.balances.get(card) ?? 0n) + m.cardPrice / 2n <= CAP && this.random() < 0.5) {
        out.push(this.sell(m, n, m.cardPrice / 2n, day, to, "top-up"));
      }
    }
    return out.sort((a, b) => a.time - b.time);
  }

  /** A campaign day of the precursor: its long discounted cards, and few visits. */
  campaign(m: Merchant, day: number): RecordDetails[] {
    // The visits first: on the cards sold before today (a card is used after its sale).
    const visits = this.session(m, day, 0, 600, 0.05, false);
    const count = this.cards.get(m.id) ?? 0;
    const sales = Array.from({ length: CAMPAIGN_CARDS_PER_DAY }, (_, i) =>
      this.sell(m, count + i, CAMPAIGN_CARD, day, 60 + i * 90, "lifetime card ¥4,800 for ¥1,680 (65 % off)"),
    );
    this.cards.set(m.id, count + CAMPAIGN_CARDS_PER_DAY);
    return [...sales, ...visits].sort((a, b) => a.time - b.time);
  }
}
