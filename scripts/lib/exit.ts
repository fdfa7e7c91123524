/**
 * The history's end for the closing merchants (issue 9 item 7): they close, and their card
 * holders claim what custody holds for them, each from their own key with the secret on their
 * card. Harbor Swim Club closes in good order (it first deposits everything it owes beyond its
 * custody, so its holders are paid in full); Lotus Salon, suspended early on, never reopens and is
 * closed with only its 30 % custody, so its holders are paid pro rata; so is the precursor
 * (scripts/lib/town.ts), silent since its campaign. A week later what nobody claimed goes to the
 * consumer-protection fund the regulator named when opening claims.
 */
import type { HardhatEthersProvider, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { Contract, Wallet, encodeBytes32String, id, parseEther } from "ethers";

import { cardId } from "../../src/crypto/card.js";
import { yuan } from "../../src/regulator/report.js";

/** The merchant that closes in good order, fully covered. */
export const CLOSING_COVERED = 104;
/** The merchant that is closed short (the one suspended at midday). */
export const CLOSING_SHORT = 103;
/** How many of each closing merchant's holders never claim (their share goes to the fund). */
export const NOT_CLAIMING = 2;
const CLAIMS_WINDOW = 7 * 86_400;

/** A demo card: its id commits to its holder's address and the secret printed on it. */
export interface DemoCard {
  id: string;
  holder: Wallet;
  secret: string;
}

/** The demo's card `n` of merchant `merchantId`, the same on every run. */
export function demoCard(merchantId: number, n: number): DemoCard {
  const tag = `${merchantId}-${String(n).padStart(5, "0")}`;
  const holder = new Wallet(id(`demo card holder ${tag}`));
  const secret = id(`demo card secret ${tag}`);
  return { id: cardId({ merchantId, holder: holder.address, secret }), holder, secret };
}

export interface HolderPayout {
  card: string;
  holder: string;
  /** The card's balance when claims opened. */
  owed: bigint;
  /** What the holder was paid (0 if they did not claim). */
  paid: bigint;
  claimed: boolean;
}

export interface ClosedMerchant {
  merchantId: number;
  name: string;
  /** What custody held when claims opened, and what the merchant owed. */
  pool: bigint;
  liability: bigint;
  /** Paid per yuan owed, 0–1. */
  rate: number;
  holders: HolderPayout[];
  paid: bigint;
  /** Sent to the fund after the deadline. */
  swept: bigint;
  /** What the merchant still owes its holders after the payout (the unpaid rest on the cards). */
  unpaid: bigint;
}

export interface ExitResult {
  fund: string;
  merchants: ClosedMerchant[];
}

interface ExitContext {
  provider: HardhatEthersProvider;
  ledger: Contract;
  custody: Contract;
  token: Contract;
  admin: HardhatEthersSigner;
  regulator: HardhatEthersSigner;
  fund: HardhatEthersSigner;
  recorders: Map<number, HardhatEthersSigner>;
  merchants: { id: number; name: string; cards: number }[];
  /** Who closes, in this order; a covered one first deposits what custody lacks. */
  closing: { id: number; covered: boolean; reason: string }[];
}

/** Closes the merchants, has their holders claim, lets the window pass and sweeps. */
export async function runExit(c: ExitContext, log: (line: string) => void): Promise<ExitResult> {
  const name = (m: number) => c.merchants.find((x) => x.id === m)!.name;
  const asRegulator = c.ledger.connect(c.regulator) as Contract;

  const covering = c.closing.filter((x) => x.covered).map((x) => name(x.id));
  const short = c.closing.filter((x) => !x.covered).map((x) => name(x.id));
  log(`Closing time: ${covering.join(", ")} closes in good order; ${short.join(" and ")} will not reopen…`);
  for (const { id: coveredId } of c.closing.filter((x) => x.covered)) {
    const covered = await c.custody.custodyOf(coveredId);
    const shortfall = (covered.liability as bigint) - (covered.held as bigint);
    if (shortfall <= 0n) continue;
    const recorder = c.recorders.get(coveredId)!;
    await (await (c.token.connect(recorder) as Contract).mint(recorder.address, shortfall)).wait();
    await (await (c.token.connect(recorder) as Contract).approve(await c.custody.getAddress(), shortfall)).wait();
    await (await (c.custody.connect(recorder) as Contract).deposit(coveredId, shortfall)).wait();
    log(`  ${name(coveredId)} deposits ${yuan(shortfall)}, so custody holds all it owes`);
  }
  const closed: ClosedMerchant[] = [];
  for (const { id: m, reason } of c.closing) {
    await (await asRegulator.closeMerchant(m, encodeBytes32String(reason))).wait();
    await (await (c.custody.connect(c.regulator) as Contract).openClaims(m, CLAIMS_WINDOW, c.fund.address)).wait();
    const round = await c.custody.claimsOf(m);
    const rate = round.pool >= round.liability ? 1 : Number(round.pool) / Number(round.liability);
    log(
      `  the regulator closes ${name(m)} and opens claims for 7 days: it owes ${yuan(round.liability)}, custody holds ` +
        `${yuan(round.pool)}, so every holder gets ${(rate * 100).toFixed(2)} % of their balance`,
    );
    closed.push({ merchantId: m, name: name(m), pool: round.pool, liability: round.liability, rate, holders: [], paid: 0n, swept: 0n, unpaid: 0n });
  }

  log("  card holders claim from their own wallets, with the secret printed on their card…");
  const gasMoney = parseEther("0.01");
  for (const m of closed) {
    const count = c.merchants.find((x) => x.id === m.merchantId)!.cards;
    for (let n = 0; n < count; n++) {
      const card = demoCard(m.merchantId, n);
      // A card the merchant never managed to sell (its sales were refused) has no holder to pay.
      const books = await c.ledger.accountBooks(m.merchantId, card.id);
      if ((books.recordCount as bigint) === 0n) continue;
      const owed = books.balance as bigint;
      const claims = n >= NOT_CLAIMING && owed > 0n;
      let paid = 0n;
      if (claims) {
        const holder = card.holder.connect(c.provider);
        await (await c.admin.sendTransaction({ to: holder.address, value: gasMoney })).wait();
        await (await (c.custody.connect(holder) as Contract).claim(m.merchantId, card.secret, holder.address)).wait();
        paid = (await c.token.balanceOf(holder.address)) as bigint;
      }
      m.holders.push({ card: card.id, holder: card.holder.address, owed, paid, claimed: claims });
    }
    m.paid = m.holders.reduce((s, h) => s + h.paid, 0n);
    log(`  ${name(m.merchantId)}: ${m.holders.filter((h) => h.claimed).length} holders claimed and were paid ${yuan(m.paid)}`);
  }

  log("A week later: the claims window ends; what nobody claimed goes to the consumer-protection fund…");
  await c.provider.send("evm_increaseTime", [CLAIMS_WINDOW + 1]);
  await c.provider.send("evm_mine", []);
  for (const m of closed) {
    const before = (await c.token.balanceOf(c.fund.address)) as bigint;
    await (await (c.custody.connect(c.fund) as Contract).sweepUnclaimed(m.merchantId)).wait();
    m.swept = ((await c.token.balanceOf(c.fund.address)) as bigint) - before;
    m.unpaid = ((await c.ledger.merchantBooks(m.merchantId)).liability as bigint);
    log(`  ${name(m.merchantId)}: ${yuan(m.swept)} to the fund; still owed on its cards: ${yuan(m.unpaid)}`);
  }
  return { fund: c.fund.address, merchants: closed };
}

/** The exit's part of the main job's report: who was owed what, and what was paid. */
export function formatExit(exit: ExitResult, shown = 5): string {
  const lines = ["Closed merchants: card holders' claims"];
  for (const m of exit.merchants) {
    const owed = m.holders.reduce((s, h) => s + h.owed, 0n);
    const owing = m.holders.filter((h) => h.owed > 0n).length;
    lines.push(
      `  ${m.name} (merchant ${m.merchantId}): owed ${yuan(owed)} to ${owing} of its ${m.holders.length} card holders; ` +
        `custody held ${yuan(m.pool)}; rate ${(m.rate * 100).toFixed(2)} %`,
    );
    lines.push(`    ${"card".padEnd(14)} ${"holder".padEnd(14)} ${"owed".padStart(12)} ${"paid".padStart(12)}`);
    for (const h of m.holders.slice(0, shown)) {
      const short = (x: string) => `${x.slice(0, 8)}…${x.slice(-4)}`;
      lines.push(
        `    ${short(h.card).padEnd(14)} ${short(h.holder).padEnd(14)} ${yuan(h.owed).padStart(12)} ${(h.claimed ? yuan(h.paid) : h.owed === 0n ? "nothing owed" : "not claimed").padStart(12)}`,
      );
    }
    if (m.holders.length > shown) lines.push(`    … and ${m.holders.length - shown} more card holders (prepaid merchant ${m.merchantId} lists every claim)`);
    const claimed = m.holders.filter((h) => h.claimed);
    const unclaimed = m.holders.filter((h) => !h.claimed && h.owed > 0n);
    lines.push(
      `    paid ${yuan(m.paid)} to ${claimed.length} holders; ${unclaimed.length} with ${yuan(unclaimed.reduce((s, h) => s + h.owed, 0n))} owed did not claim; ` +
        `${yuan(m.swept)} went to the fund ${exit.fund.slice(0, 10)}…; still owed on the cards: ${yuan(m.unpaid)}`,
    );
  }
  return lines.join("\n");
}
