/**
 * Property-based tests of MerchantCustody with the ledger it follows: random runs of deposits,
 * withdrawals (some exactly at, some just past what is free), top-ups, consumptions, refunds,
 * ratio changes and closures by two merchants are played on the real contracts and in a small
 * TypeScript model that predicts every outcome (success, or the custom error with its
 * arguments). After every step the named invariants must hold.
 */
import { expect } from "chai";
import { encodeBytes32String } from "ethers";
import fc from "fast-check";
import { network } from "hardhat";

import { packBatch } from "../../src/ledger/codec.js";
import { Consume, Refund, TopUp, account, record } from "../helpers/records.js";

const { ethers, networkHelpers } = await network.create();

const MERCHANTS = [1, 2] as const;
type MerchantId = (typeof MERCHANTS)[number];
/** One card per merchant, so its liability is that card's balance. */
const CARDS: Record<MerchantId, Uint8Array> = { 1: account("custody-inv-1"), 2: account("custody-inv-2") };
const MINTED = 10n ** 12n;
/** `npm run fuzz` sets FUZZ_RUNS for a deep run; CI plays a few seconds' worth. */
const NUM_RUNS = process.env.FUZZ_RUNS === undefined ? 50 : Number(process.env.FUZZ_RUNS);

async function deployCustody() {
  const [admin, regulator, recorder1, recorder2, custodian] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const token = await ethers.deployContract("PrepaidTestToken", ["Test fen", "tFEN"]);
  const custody = await ethers.deployContract("MerchantCustody", [
    await token.getAddress(),
    await ledger.getAddress(),
    admin.address,
    regulator.address,
    0,
  ]);
  await ledger.connect(regulator).registerMerchant(1, recorder1.address);
  await ledger.connect(regulator).registerMerchant(2, recorder2.address);
  await ledger.connect(admin).proposeCustody(await custody.getAddress());
  await custody.connect(admin).setCustodian(custodian.address, true);
  for (const who of [recorder1, recorder2, custodian]) {
    await token.mint(who.address, MINTED);
    await token.connect(who).approve(await custody.getAddress(), MINTED);
  }
  return { ledger, token, custody, regulator, custodian, recorders: { 1: recorder1, 2: recorder2 } as const };
}
type Fixture = Awaited<ReturnType<typeof deployCustody>>;

// ------------------------------------------------------------------------------ operations

type Op =
  | { type: "deposit"; m: MerchantId; amount: bigint; byCustodian: boolean }
  /** "free" is exactly held - required, "free+1" one fen more. */
  | { type: "withdraw"; m: MerchantId; amount: bigint | "free" | "free+1" }
  | { type: "topUp"; m: MerchantId; amount: bigint }
  /** Consume or refund `1 + (draw mod balance)`: always within the card's balance. */
  | { type: "consume" | "refund"; m: MerchantId; draw: bigint }
  | { type: "ratio"; m: MerchantId; bps: number }
  | { type: "close"; m: MerchantId };

const merchantArb = fc.constantFrom(...MERCHANTS);
const amountArb = fc.bigInt({ min: 1n, max: 50_000n });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ type: fc.constant("deposit" as const), m: merchantArb, amount: amountArb, byCustodian: fc.boolean() }) },
  {
    weight: 5,
    arbitrary: fc.record({
      type: fc.constant("withdraw" as const),
      m: merchantArb,
      amount: fc.oneof(amountArb, fc.constant("free" as const), fc.constant("free+1" as const)),
    }),
  },
  { weight: 5, arbitrary: fc.record({ type: fc.constant("topUp" as const), m: merchantArb, amount: amountArb }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constantFrom("consume" as const, "refund" as const), m: merchantArb, draw: amountArb }) },
  {
    weight: 2,
    arbitrary: fc.record({ type: fc.constant("ratio" as const), m: merchantArb, bps: fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.constantFrom(0, 1, 5_000, 9_999, 10_000)) }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("close" as const), m: merchantArb }) },
);
const runArb = fc.array(opArb, { minLength: 1, maxLength: 16 });

// ------------------------------------------------------------------------------ model

interface MerchantModel {
  held: bigint;
  ratioBps: bigint;
  liability: bigint;
  deposited: bigint;
  withdrawn: bigint;
  closed: boolean;
}

type Outcome = { ok: true } | { ok: false; error: string; args: unknown[] } | { skip: true };

const requiredOf = (m: MerchantModel) => (m.ratioBps * m.liability + 9_999n) / 10_000n;

class CustodyModel {
  readonly merchants: Record<MerchantId, MerchantModel> = {
    1: { held: 0n, ratioBps: 0n, liability: 0n, deposited: 0n, withdrawn: 0n, closed: false },
    2: { held: 0n, ratioBps: 0n, liability: 0n, deposited: 0n, withdrawn: 0n, closed: false },
  };

  /** Resolves an op's amount against the model's state (withdraw "free", consume draws). */
  amountOf(op: Op): bigint {
    const m = this.merchants[op.m];
    if (op.type === "withdraw") {
      const free = m.held > requiredOf(m) ? m.held - requiredOf(m) : 0n;
      return op.amount === "free" ? free : op.amount === "free+1" ? free + 1n : op.amount;
    }
    if (op.type === "consume" || op.type === "refund") return m.liability === 0n ? 0n : 1n + (op.draw % m.liability);
    return "amount" in op ? op.amount : 0n;
  }

  /** Predicts the op's outcome and, if it succeeds, applies it. */
  apply(op: Op, amount: bigint): Outcome {
    const m = this.merchants[op.m];
    switch (op.type) {
      case "deposit":
        m.held += amount;
        m.deposited += amount;
        return { ok: true };
      case "withdraw": {
        if (m.closed) return { ok: false, error: "CustodyMerchantClosed", args: [op.m] };
        if (amount === 0n) return { ok: false, error: "CustodyZeroAmount", args: [op.m] };
        const required = requiredOf(m);
        if (m.held < required || amount > m.held - required) {
          return { ok: false, error: "CustodyWithdrawalTooLarge", args: [op.m, amount, m.held, required] };
        }
        m.held -= amount;
        m.withdrawn += amount;
        return { ok: true };
      }
      case "topUp": {
        if (m.closed) return { ok: false, error: "LedgerMerchantClosed", args: [op.m] };
        const next = { ...m, liability: m.liability + amount };
        const required = requiredOf(next);
        if (m.held < required) return { ok: false, error: "LedgerUndercovered", args: [op.m, next.liability, required, m.held] };
        m.liability = next.liability;
        return { ok: true };
      }
      case "consume":
      case "refund":
        if (amount === 0n) return { skip: true };
        if (m.closed) return { ok: false, error: "LedgerMerchantClosed", args: [op.m] };
        m.liability -= amount;
        return { ok: true };
      case "ratio":
        m.ratioBps = BigInt(op.bps);
        return { ok: true };
      case "close":
        if (m.closed) return { ok: false, error: "LedgerIllegalTransition", args: [op.m, 4n, 4n] };
        m.closed = true;
        return { ok: true };
    }
  }
}

// ------------------------------------------------------------------------------ playing

function send(f: Fixture, op: Op, amount: bigint) {
  const recorder = f.recorders[op.m];
  const batch = async (kind: number) => {
    const { nextSequence } = await f.ledger.merchantBooks(op.m);
    return f.ledger.connect(recorder).recordBatch(op.m, nextSequence, "0x", packBatch([record(kind, CARDS[op.m], amount)]));
  };
  switch (op.type) {
    case "deposit":
      return f.custody.connect(op.byCustodian ? f.custodian : recorder).deposit(op.m, amount);
    case "withdraw":
      return f.custody.connect(recorder).withdraw(op.m, amount, recorder.address);
    case "topUp":
      return batch(TopUp);
    case "consume":
      return batch(Consume);
    case "refund":
      return batch(Refund);
    case "ratio":
      return f.custody.connect(f.regulator).setCoverageRatio(op.m, op.bps);
    case "close":
      return f.ledger.connect(f.regulator).closeMerchant(op.m, encodeBytes32String("exit"));
  }
}

type Check = (f: Fixture, model: CustodyModel, op: Op, outcome: Outcome) => Promise<void>;
type Tally = Map<string, number>;

/** Plays one run; every outcome must be the model's, then `check` runs after each step. */
async function play(ops: Op[], tally: Tally, check: Check): Promise<void> {
  const f = await networkHelpers.loadFixture(deployCustody);
  const model = new CustodyModel();
  for (const op of ops) {
    const amount = model.amountOf(op);
    const outcome = model.apply(op, amount);
    if ("skip" in outcome) continue;
    const contract = outcome.ok || !outcome.error.startsWith("Ledger") ? f.custody : f.ledger;
    if (outcome.ok) await (await send(f, op, amount)).wait();
    else await expect(send(f, op, amount)).to.be.revertedWithCustomError(contract, outcome.error).withArgs(...outcome.args);
    const label = `${op.type}:${outcome.ok ? "ok" : outcome.error}`;
    tally.set(label, (tally.get(label) ?? 0) + 1);
    await check(f, model, op, outcome);
  }
}

async function assertInvariant(check: Check, mustSee: string[]): Promise<void> {
  const tally: Tally = new Map();
  await fc.assert(
    fc.asyncProperty(runArb, (ops) => play(ops, tally, check)),
    { numRuns: NUM_RUNS },
  );
  for (const label of mustSee) expect(tally.get(label) ?? 0, `outcomes: ${JSON.stringify([...tally])}`).to.be.greaterThan(0);
}

// ------------------------------------------------------------------------------ properties

describe("MerchantCustody invariants", function () {
  this.timeout(process.env.FUZZ_RUNS === undefined ? 180_000 : 0);

  it("invariant_tokenBalanceEqualsDepositsMinusWithdrawals", async function () {
    await assertInvariant(
      async (f, model) => {
        const custody = await f.custody.getAddress();
        const balance = await f.token.balanceOf(custody);
        const [deposited, withdrawn] = [await f.custody.totalDeposited(), await f.custody.totalWithdrawn()];
        expect(balance).to.equal(deposited - withdrawn);
        let held = 0n;
        for (const id of MERCHANTS) {
          const m = model.merchants[id];
          const c = await f.custody.custodyOf(id);
          expect(c.held).to.equal(m.deposited - m.withdrawn);
          held += c.held;
        }
        // Nobody sends tokens here by a plain transfer in these runs, so nothing is uncredited.
        expect(balance).to.equal(held);
        const sums = MERCHANTS.map((id) => model.merchants[id]);
        expect([deposited, withdrawn]).to.deep.equal([
          sums.reduce((s, m) => s + m.deposited, 0n),
          sums.reduce((s, m) => s + m.withdrawn, 0n),
        ]);
      },
      ["deposit:ok", "withdraw:ok", "withdraw:CustodyWithdrawalTooLarge"],
    );
  });

  it("invariant_noMerchantWithdrawsBelowItsRequirement", async function () {
    await assertInvariant(
      async (f, model, op, outcome) => {
        for (const id of MERCHANTS) {
          const c = await f.custody.custodyOf(id);
          const m = model.merchants[id];
          expect([c.held, c.ratioBps, c.liability, c.required]).to.deep.equal([m.held, m.ratioBps, m.liability, requiredOf(m)]);
          expect(c.withdrawable).to.equal(!m.closed && m.held > requiredOf(m) ? m.held - requiredOf(m) : 0n);
        }
        // A withdrawal that went through left its merchant at or above its requirement.
        if (op.type === "withdraw" && "ok" in outcome && outcome.ok) {
          const c = await f.custody.custodyOf(op.m);
          expect(c.held >= c.required, `held ${c.held} < required ${c.required}`).to.equal(true);
        }
      },
      ["withdraw:ok", "withdraw:CustodyWithdrawalTooLarge", "topUp:ok", "topUp:LedgerUndercovered"],
    );
  });
});
