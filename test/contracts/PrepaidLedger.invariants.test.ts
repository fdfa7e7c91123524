/**
 * Property-based tests of PrepaidLedger: random runs of batches from two merchants are booked on
 * the real contract (in-process Hardhat network) and in an independent TypeScript model of the
 * books, and after every batch the contract must agree with the model and with itself.
 *
 * The model restates the rules of `PackedAccount.book` and `PrepaidLedger.recordBatch` /
 * `_explainFailure` in their order of precedence, so it predicts for every batch either success
 * (with the `BatchRecorded` it emits) or the exact custom error and arguments of the first record
 * that breaks a rule. Chain links (chain version 2: a batch link, then the batch's record links)
 * come from test/helpers/records.ts's `expectedBatchLink` and `expectedLink` (ethers'
 * solidityPackedKeccak256), not from src/ledger/codec's `linkBatch` and `linkHead`.
 */
import { expect } from "chai";
import {
  AbiCoder,
  ZeroAddress,
  ZeroHash,
  dataSlice,
  getAddress,
  getBytes,
  hexlify,
  id,
  keccak256,
  toBigInt,
  toNumber,
} from "ethers";
import fc from "fast-check";
import { network } from "hardhat";

import { packBatch, type PackedRecord } from "../../src/ledger/codec.js";
import { Consume, Refund, TopUp, account, expectedBatchLink, expectedLink } from "../helpers/records.js";

const { ethers, networkHelpers } = await network.create();

const M1 = 1;
const M2 = 2;
const MERCHANTS = [M1, M2] as const;
type MerchantId = (typeof MERCHANTS)[number];
const ACTIVE = 1n;
/** The most a card's books hold per field (PackedAccount), and the most a record carries. */
const MAX40 = (1n << 40n) - 1n;
const WIRE_MAX = (1n << 48n) - 1n;
const MAX24 = (1n << 24n) - 1n;
const MAX64 = (1n << 64n) - 1n;

/**
 * Six cards. Merchant 1 mostly books the first three and merchant 2 the last three, but any
 * record may name any card (see `accountOf`), so cross-merchant mismatches happen.
 */
const POOL = ["ana", "ben", "chen", "dana", "eli", "fang"].map((name) => hexlify(account(`inv-${name}`)));
const HOME_CARDS = 3;

/**
 * Runs per property and batches per run: a few seconds per property on a 2-core machine. FUZZ_RUNS
 * sets the runs per property for a deep run: `npm run fuzz` gives 2,500, so the four properties
 * below play 10,000 random sequences.
 */
const NUM_RUNS = process.env.FUZZ_RUNS === undefined ? 50 : Number(process.env.FUZZ_RUNS);
const MAX_BATCHES = 12;
const MAX_OPENINGS = 2;
const MAX_RECORDS = 8;

async function deployLedger() {
  const [admin, regulator, recorder1, recorder2] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  await ledger.connect(regulator).registerMerchant(M1, recorder1.address);
  await ledger.connect(regulator).registerMerchant(M2, recorder2.address);
  const { chainId } = await ethers.provider.getNetwork();
  // FORMAT.md 7, written out here rather than taken from src/ledger/codec's genesisHead.
  const genesis = keccak256(
    AbiCoder.defaultAbiCoder().encode(
      ["bytes32", "uint256", "address"],
      [id("prepaid-ledger.chain.v2"), chainId, await ledger.getAddress()],
    ),
  );
  return { ledger, recorders: { [M1]: recorder1, [M2]: recorder2 }, genesis };
}

type Fixture = Awaited<ReturnType<typeof deployLedger>>;
type Ledger = Fixture["ledger"];

// ------------------------------------------------------------------------------ generated batches

/**
 * A drawn amount, or one at the edge of the card's books when the record comes, so that
 * off-by-one rules are hit: "edge" is exactly the balance for a consumption or refund and exactly
 * the room left below 2^40 for a top-up, "edge+1" one more (see `amountOf`).
 */
type AmountSpec = bigint | "edge" | "edge+1";

/** What makes a record's commitment or ciphertext missing (LedgerMissingCommitment). */
type Defect = "none" | "zeroCommitment" | "emptyCiphertext";

/**
 * Which card a record names, resolved when the batch is played (`accountOf`): "usual" is what a
 * well-behaved merchant would name (a top-up goes to one of its own cards, a consumption or
 * refund to a card it has opened), "home" any of its own cards, opened or not, "any" any card
 * in the pool, perhaps the other merchant's, and "foreign" a card the other merchant opened.
 */
type Target = "usual" | "home" | "any" | "foreign";

interface RecordSpec {
  kind: number;
  target: Target;
  slot: number;
  amount: AmountSpec;
  defect: Defect;
  cipherLength: number;
}

type SequenceSpec =
  | { type: "next" }
  /** nextSequence - 1 - (back mod nextSequence): any already used number, 0 included. */
  | { type: "replay"; back: number }
  | { type: "gap"; ahead: bigint }
  | { type: "last" };

interface BatchSpec {
  merchantId: MerchantId;
  /** Sent by the other merchant's recorder (LedgerUnauthorizedRecorder). */
  byOtherRecorder: boolean;
  sequence: SequenceSpec;
  records: RecordSpec[];
  /** The envelope sent with the batch: the contract never reads it, but chain version 2 links its hash. */
  envelope: Uint8Array;
}

/** Weighted so that valid kinds dominate; 0 (none) and 4 (reserved for modules) are refused. */
const kindArb = fc.oneof(
  { weight: 16, arbitrary: fc.constant(TopUp) },
  { weight: 12, arbitrary: fc.constant(Consume) },
  { weight: 6, arbitrary: fc.constant(Refund) },
  { weight: 1, arbitrary: fc.constantFrom(0, 4) },
);

/**
 * Bounded, never filtered: mostly small amounts (so consumptions often fit a balance), some up
 * to 200 000, a few zeros, a few just under 2^40 to reach the top-up overflow, and some exactly
 * at or one past the card's limit.
 */
const amountArb: fc.Arbitrary<AmountSpec> = fc.oneof(
  { weight: 20, arbitrary: fc.bigInt({ min: 1n, max: 2_000n }) },
  { weight: 12, arbitrary: fc.bigInt({ min: 1n, max: 200_000n }) },
  { weight: 1, arbitrary: fc.constant(0n) },
  { weight: 1, arbitrary: fc.bigInt({ min: MAX40 - 200_000n, max: MAX40 }) },
  { weight: 3, arbitrary: fc.constantFrom("edge" as const, "edge+1" as const) },
);

const defectArb: fc.Arbitrary<Defect> = fc.oneof(
  { weight: 60, arbitrary: fc.constant("none" as const) },
  { weight: 1, arbitrary: fc.constantFrom("zeroCommitment" as const, "emptyCiphertext" as const) },
);

const recordArb: fc.Arbitrary<RecordSpec> = fc.record({
  kind: kindArb,
  target: fc.oneof(
    { weight: 10, arbitrary: fc.constant("usual" as const) },
    { weight: 1, arbitrary: fc.constant("home" as const) },
    { weight: 1, arbitrary: fc.constant("any" as const) },
  ),
  slot: fc.nat({ max: POOL.length - 1 }),
  amount: amountArb,
  defect: defectArb,
  cipherLength: fc.integer({ min: 1, max: 96 }),
});

const sequenceArb: fc.Arbitrary<SequenceSpec> = fc.oneof(
  { weight: 30, arbitrary: fc.constant({ type: "next" as const }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("replay" as const), back: fc.nat({ max: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("gap" as const), ahead: fc.bigInt({ min: 1n, max: 3n }) }) },
  { weight: 1, arbitrary: fc.constant({ type: "last" as const }) },
);

/**
 * A record that likely breaks several rules at once (any kind, zero or edge amounts, missing
 * commitments, the other merchant's cards), so that the order in which the contract checks its
 * rules decides the error. Kind 255 is the top of the reserved range.
 */
const hostileRecordArb: fc.Arbitrary<RecordSpec> = fc.record({
  kind: fc.constantFrom(0, TopUp, Consume, Refund, 4, 255),
  target: fc.oneof(
    { weight: 2, arbitrary: fc.constant("foreign" as const) },
    { weight: 1, arbitrary: fc.constantFrom("usual" as const, "home" as const, "any" as const) },
  ),
  slot: fc.nat({ max: POOL.length - 1 }),
  amount: fc.oneof(
    fc.constant(0n),
    fc.bigInt({ min: 1n, max: 2_000n }),
    fc.constantFrom("edge" as const, "edge+1" as const),
  ),
  defect: fc.constantFrom("none" as const, "zeroCommitment" as const, "emptyCiphertext" as const),
  cipherLength: fc.integer({ min: 1, max: 96 }),
});

/** Mostly empty (the contract tests' habit), else a few random bytes: each is linked by its hash. */
const envelopeArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }) },
);

/** Mostly ordinary batches; one in six is a short one of hostile records. */
const batchArb: fc.Arbitrary<BatchSpec> = fc.record({
  merchantId: fc.constantFrom(M1, M2),
  byOtherRecorder: fc.oneof({ weight: 30, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  sequence: sequenceArb,
  records: fc.oneof(
    { weight: 5, arbitrary: fc.array(recordArb, { minLength: 1, maxLength: MAX_RECORDS }) },
    { weight: 1, arbitrary: fc.array(hostileRecordArb, { minLength: 1, maxLength: 3 }) },
  ),
  envelope: envelopeArb,
});

/** A merchant selling its first cards: valid top-ups of its own cards, in sequence. */
const openingBatchArb: fc.Arbitrary<BatchSpec> = fc.record({
  merchantId: fc.constantFrom(M1, M2),
  byOtherRecorder: fc.constant(false),
  sequence: fc.constant({ type: "next" as const }),
  records: fc.array(
    fc.record({
      kind: fc.constant(TopUp),
      target: fc.constant("home" as const),
      slot: fc.nat({ max: POOL.length - 1 }),
      amount: fc.bigInt({ min: 1n, max: 200_000n }),
      defect: fc.constant("none" as const),
      cipherLength: fc.integer({ min: 1, max: 96 }),
    }),
    { minLength: 1, maxLength: MAX_RECORDS },
  ),
  envelope: envelopeArb,
});

/**
 * A run: up to MAX_OPENINGS opening batches, so that most runs soon have funded cards on both
 * merchants (otherwise most consumptions hit unopened cards), then unconstrained batches.
 * `size: "max"` spreads run lengths over the whole range instead of fast-check's short default.
 */
const runArb = fc
  .tuple(
    fc.array(openingBatchArb, { maxLength: MAX_OPENINGS }),
    fc.array(batchArb, { minLength: 1, maxLength: MAX_BATCHES - MAX_OPENINGS, size: "max" }),
  )
  .map(([openings, batches]) => [...openings, ...batches]);

/** The card a record names, as `books` stand when the record comes. */
function accountOf(spec: RecordSpec, merchantId: MerchantId, books: LedgerModel): string {
  const home = POOL[(merchantId - 1) * HOME_CARDS + (spec.slot % HOME_CARDS)];
  const opened = books.cardsOf(merchantId);
  switch (spec.target) {
    case "usual":
      return spec.kind === TopUp || opened.length === 0 ? home : opened[spec.slot % opened.length];
    case "home":
      return home;
    case "any":
      return POOL[spec.slot];
    case "foreign": {
      const theirs = books.cardsOf(merchantId === M1 ? M2 : M1);
      return theirs.length === 0 ? POOL[spec.slot] : theirs[spec.slot % theirs.length];
    }
  }
}

function sequenceOf(spec: SequenceSpec, next: bigint): bigint {
  switch (spec.type) {
    case "next":
      return next;
    case "replay":
      return next - 1n - (BigInt(spec.back) % next);
    case "gap":
      return next + spec.ahead;
    case "last":
      return MAX64;
  }
}

/** The amount of a record of `kind` on a card with books `card` (undefined if unopened). */
function amountOf(spec: AmountSpec, kind: number, card: AccountModel | undefined): bigint {
  if (typeof spec === "bigint") return spec;
  const limit =
    kind === TopUp
      ? MAX40 - (card?.toppedUp ?? 0n)
      : card === undefined
        ? 0n
        : card.toppedUp - card.consumed - card.refunded;
  const amount = limit + (spec === "edge+1" ? 1n : 0n);
  return amount > WIRE_MAX ? WIRE_MAX : amount; // a record's amount is a u48
}

/**
 * The packed record for a spec, naming cards and edge amounts as `books` stand when it comes.
 * Commitment and ciphertext are derived from `tag` (the record's position in the run), not
 * drawn at random, so a counterexample replays byte for byte.
 */
function buildRecord(spec: RecordSpec, merchantId: MerchantId, books: LedgerModel, tag: string): PackedRecord {
  const acct = accountOf(spec, merchantId, books);
  const seed = getBytes(id(`record:${tag}`));
  const length = spec.defect === "emptyCiphertext" ? 0 : spec.cipherLength;
  const ciphertext = Uint8Array.from({ length }, (_, i) => (i === 0 ? 2 : seed[i % 32] ^ i));
  return {
    kind: spec.kind,
    amount: amountOf(spec.amount, spec.kind, books.accounts.get(slotKey(merchantId, acct))),
    account: getBytes(acct),
    commitment: spec.defect === "zeroCommitment" ? new Uint8Array(32) : getBytes(id(`commitment:${tag}`)),
    ciphertext,
  };
}

/**
 * The batch's packed records. Earlier records of the same batch change the books a record sees
 * (a card it opens, a balance it spends), so this walks a scratch copy of the model, only to
 * choose cards and edge amounts: the prediction is made afresh from the finished records.
 */
function resolveRecords(model: LedgerModel, spec: BatchSpec, index: number): PackedRecord[] {
  const scratch = model.clone();
  return spec.records.map((r, i) => {
    const record = buildRecord(r, spec.merchantId, scratch, `${index}.${i}`);
    scratch.book(spec.merchantId, record);
    return record;
  });
}

// ------------------------------------------------------------------------------ the model

interface AccountModel {
  merchantId: number;
  recordCount: bigint;
  initialAmount: bigint;
  toppedUp: bigint;
  consumed: bigint;
  refunded: bigint;
}

interface MerchantModel {
  nextSequence: bigint;
  recordCount: bigint;
  accountCount: bigint;
  toppedUp: bigint;
  consumed: bigint;
  refunded: bigint;
}

/** A booked batch, as its batch link binds it (and as `BatchRecorded` logs it). */
interface BatchLinked {
  merchantId: number;
  sequence: bigint;
  recorder: string;
  /** 0x hex. */
  envelope: string;
  count: number;
  firstRecordIndex: bigint;
}

/** What `recordBatch` must do: emit BatchRecorded with these values, or revert with this error. */
type Outcome =
  | { ok: true; firstRecordIndex: bigint; count: number; head: string }
  | { ok: false; error: string; args: unknown[] };

function failure(error: string, ...args: unknown[]): Outcome {
  return { ok: false, error, args };
}

/** Everything the contract's views show for the pool, both merchants and the chain. */
interface Books {
  chain: { recordCount: bigint; head: string };
  merchants: {
    status: bigint;
    nextSequence: bigint;
    recordCount: bigint;
    accountCount: bigint;
    toppedUp: bigint;
    consumed: bigint;
    refunded: bigint;
    liability: bigint;
  }[];
  accounts: {
    merchantId: bigint;
    recordCount: bigint;
    initialAmount: bigint;
    toppedUp: bigint;
    consumed: bigint;
    refunded: bigint;
    balance: bigint;
  }[];
}

/**
 * An independent model of the books. Merchant totals are counters of their own, not sums over
 * the accounts, so invariant_balancesEqualDepositsMinusConsumption compares two things.
 */
/** Every (merchant, card) pair: the contract keeps accounts per merchant. */
const SLOTS = MERCHANTS.flatMap((m) => POOL.map((acct) => [m, acct] as const));
const slotKey = (merchantId: number, acct: string) => `${merchantId}:${acct}`;
const slotName = ([merchantId, acct]: readonly [number, string]) => `${acct} of merchant ${merchantId}`;

class LedgerModel {
  readonly accounts = new Map<string, AccountModel>();
  readonly merchants = new Map<number, MerchantModel>();
  /** Every booked record in chain order, for the chain recomputation. */
  readonly booked: { merchantId: number; record: PackedRecord }[] = [];
  /** Every booked batch in chain order: what its batch link binds, and its first record's index. */
  readonly batches: BatchLinked[] = [];
  recordCount = 0n;

  constructor(public head: string) {
    for (const m of MERCHANTS) {
      this.merchants.set(m, {
        nextSequence: 1n,
        recordCount: 0n,
        accountCount: 0n,
        toppedUp: 0n,
        consumed: 0n,
        refunded: 0n,
      });
    }
  }

  clone(): LedgerModel {
    const copy = new LedgerModel(this.head);
    for (const [k, v] of this.accounts) copy.accounts.set(k, { ...v });
    for (const [k, v] of this.merchants) copy.merchants.set(k, { ...v });
    copy.booked.push(...this.booked);
    copy.batches.push(...this.batches);
    copy.recordCount = this.recordCount;
    return copy;
  }

  merchant(merchantId: number): MerchantModel {
    return this.merchants.get(merchantId)!;
  }

  /** The pool cards a merchant has opened, in pool order. */
  cardsOf(merchantId: number): string[] {
    return POOL.filter((acct) => this.accounts.has(slotKey(merchantId, acct)));
  }

  /**
   * Books a batch all or nothing: checks caller and sequence first (`_checkUpload`), then each
   * record in order against the books as the earlier records of the batch left them. The model
   * changes only if the whole batch succeeds.
   */
  recordBatch(
    merchantId: number,
    sequence: bigint,
    caller: string,
    isRecorder: boolean,
    records: PackedRecord[],
    envelope: Uint8Array,
  ): Outcome {
    if (!isRecorder) return failure("LedgerUnauthorizedRecorder", caller, merchantId);
    const expected = this.merchant(merchantId).nextSequence;
    if (sequence < expected) return failure("LedgerBatchReplayed", merchantId, sequence, expected);
    if (sequence > expected) return failure("LedgerSequenceGap", merchantId, sequence, expected);

    const draft = this.clone();
    const firstRecordIndex = draft.recordCount + 1n;
    // Chain version 2: the batch is linked once, before its records.
    draft.head = expectedBatchLink(draft.head, merchantId, sequence, caller, envelope, records.length);
    draft.batches.push({ merchantId, sequence, recorder: caller, envelope: hexlify(envelope), count: records.length, firstRecordIndex });
    for (const r of records) {
      const refused = draft.book(merchantId, r);
      if (refused !== undefined) return refused;
    }
    draft.merchant(merchantId).nextSequence += 1n;
    this.adopt(draft);
    return { ok: true, firstRecordIndex, count: records.length, head: this.head };
  }

  /** One record, with the checks in the contract's order; returns the error or undefined. */
  book(merchantId: number, r: PackedRecord): Outcome | undefined {
    const acct = hexlify(r.account);
    // _explainFailure: these two come before any account rule.
    if (r.amount === 0n) return failure("LedgerZeroAmount", acct);
    const missing = r.commitment.every((b) => b === 0) || r.ciphertext.length === 0;
    if (missing) return failure("LedgerMissingCommitment", acct);

    // PackedAccount.book from here on.
    const m = this.merchant(merchantId);
    let a = this.accounts.get(slotKey(merchantId, acct));
    if (a === undefined) {
      // A new card: only a top-up opens it, and that top-up is its initial amount.
      if (r.kind === Consume || r.kind === Refund) return failure("LedgerUnknownAccount", acct);
      if (r.kind !== TopUp) return failure("LedgerInvalidKind", acct, r.kind);
      a = { merchantId, recordCount: 0n, initialAmount: r.amount, toppedUp: 0n, consumed: 0n, refunded: 0n };
      this.accounts.set(slotKey(merchantId, acct), a);
      m.accountCount += 1n;
    }
    if (a.recordCount + 1n > MAX24) return failure("LedgerAccountOverflow", acct, a.recordCount + 1n);
    if (r.kind === TopUp) {
      const total = a.toppedUp + r.amount;
      if (total > MAX40) return failure("LedgerAccountOverflow", acct, total);
      a.toppedUp = total;
      m.toppedUp += r.amount;
    } else if (r.kind === Consume || r.kind === Refund) {
      const balance = a.toppedUp - a.consumed - a.refunded;
      if (r.amount > balance) return failure("LedgerInsufficientBalance", acct, balance, r.amount);
      if (r.kind === Consume) {
        a.consumed += r.amount;
        m.consumed += r.amount;
      } else {
        a.refunded += r.amount;
        m.refunded += r.amount;
      }
    } else {
      return failure("LedgerInvalidKind", acct, r.kind);
    }
    a.recordCount += 1n;
    m.recordCount += 1n;
    this.recordCount += 1n;
    this.head = expectedLink(this.head, this.recordCount, merchantId, r);
    this.booked.push({ merchantId, record: r });
    return undefined;
  }

  private adopt(other: LedgerModel): void {
    this.accounts.clear();
    for (const [k, v] of other.accounts) this.accounts.set(k, v);
    for (const [k, v] of other.merchants) this.merchants.set(k, v);
    this.booked.splice(0, this.booked.length, ...other.booked);
    this.batches.splice(0, this.batches.length, ...other.batches);
    this.recordCount = other.recordCount;
    this.head = other.head;
  }

  books(): Books {
    return {
      chain: { recordCount: this.recordCount, head: this.head },
      merchants: MERCHANTS.map((merchantId) => {
        const m = this.merchant(merchantId);
        return {
          status: ACTIVE,
          nextSequence: m.nextSequence,
          recordCount: m.recordCount,
          accountCount: m.accountCount,
          toppedUp: m.toppedUp,
          consumed: m.consumed,
          refunded: m.refunded,
          liability: m.toppedUp - m.consumed - m.refunded,
        };
      }),
      accounts: SLOTS.map(([merchantId, acct]) => {
        const a = this.accounts.get(slotKey(merchantId, acct));
        if (a === undefined) {
          return {
            merchantId: 0n,
            recordCount: 0n,
            initialAmount: 0n,
            toppedUp: 0n,
            consumed: 0n,
            refunded: 0n,
            balance: 0n,
          };
        }
        return {
          merchantId: BigInt(a.merchantId),
          recordCount: a.recordCount,
          initialAmount: a.initialAmount,
          toppedUp: a.toppedUp,
          consumed: a.consumed,
          refunded: a.refunded,
          balance: a.toppedUp - a.consumed - a.refunded,
        };
      }),
    };
  }
}

// ------------------------------------------------------------------------------ contract side

async function readBooks(ledger: Ledger): Promise<Books> {
  const [chain, merchants, accounts] = await Promise.all([
    ledger.chainHead(),
    Promise.all(MERCHANTS.map((m) => ledger.merchantBooks(m))),
    Promise.all(SLOTS.map(([m, a]) => ledger.accountBooks(m, a))),
  ]);
  return {
    chain: { recordCount: chain.recordCount, head: chain.head },
    merchants: merchants.map((m) => ({
      status: m.status,
      nextSequence: m.nextSequence,
      recordCount: m.recordCount,
      accountCount: m.accountCount,
      toppedUp: m.toppedUp,
      consumed: m.consumed,
      refunded: m.refunded,
      liability: m.liability,
    })),
    accounts: accounts.map((a) => ({
      merchantId: a.merchantId,
      recordCount: a.recordCount,
      initialAmount: a.initialAmount,
      toppedUp: a.toppedUp,
      consumed: a.consumed,
      refunded: a.refunded,
      balance: a.balance,
    })),
  };
}

/** One batch as played: what was generated, what was sent, what the model predicted. */
interface Step {
  spec: BatchSpec;
  records: PackedRecord[];
  outcome: Outcome;
}

/** Outcomes seen by one property, to show the generated runs reach both success and failure. */
type Tally = Map<string, number>;

/**
 * Plays a run on a fresh ledger and in a fresh model. Each batch must end exactly as the model
 * predicts (BatchRecorded with its values, or the custom error with its arguments); then
 * `check` asserts the property's invariant.
 */
async function play(
  batches: BatchSpec[],
  tally: Tally,
  check: (f: Fixture, model: LedgerModel, step: Step, before: Books) => Promise<void>,
): Promise<void> {
  const f = await networkHelpers.loadFixture(deployLedger);
  const model = new LedgerModel(f.genesis);
  for (const [index, spec] of batches.entries()) {
    const own = f.recorders[spec.merchantId];
    const caller = spec.byOtherRecorder ? f.recorders[spec.merchantId === M1 ? M2 : M1] : own;
    const sequence = sequenceOf(spec.sequence, model.merchant(spec.merchantId).nextSequence);
    const records = resolveRecords(model, spec, index);
    const before = await readBooks(f.ledger);
    const outcome = model.recordBatch(spec.merchantId, sequence, caller.address, caller === own, records, spec.envelope);

    const tx = f.ledger.connect(caller).recordBatch(spec.merchantId, sequence, spec.envelope, packBatch(records));
    if (outcome.ok) {
      const { firstRecordIndex, count, head } = outcome;
      await expect(tx)
        .to.emit(f.ledger, "BatchRecorded")
        .withArgs(spec.merchantId, sequence, caller.address, firstRecordIndex, count, head, hexlify(spec.envelope));
    } else {
      await expect(tx)
        .to.be.revertedWithCustomError(f.ledger, outcome.error)
        .withArgs(...outcome.args);
    }
    const label = outcome.ok ? "success" : outcome.error;
    tally.set(label, (tally.get(label) ?? 0) + 1);
    await check(f, model, { spec, records, outcome }, before);
  }
}

/**
 * Runs `check` after every batch of NUM_RUNS random runs, then requires that the runs booked
 * some batches and refused others, so the property cannot pass by exercising only one path.
 */
async function assertInvariant(check: Parameters<typeof play>[2]): Promise<void> {
  const tally: Tally = new Map();
  await fc.assert(
    fc.asyncProperty(runArb, (batches) => play(batches, tally, check)),
    { numRuns: NUM_RUNS },
  );
  const refused = [...tally].filter(([label]) => label !== "success").reduce((sum, [, n]) => sum + n, 0);
  expect(tally.get("success") ?? 0, `outcomes: ${JSON.stringify([...tally])}`).to.be.greaterThan(0);
  expect(refused, `outcomes: ${JSON.stringify([...tally])}`).to.be.greaterThan(0);
}

/** Reads the chain back from the raw `Recorded` logs (FORMAT.md 6), decoding them by hand. */
async function recordsFromLogs(
  ledger: Ledger,
): Promise<{ index: bigint; merchantId: number; record: PackedRecord }[]> {
  const logs = await ethers.provider.getLogs({
    address: await ledger.getAddress(),
    topics: [id("Recorded(bytes32,uint32,bytes32)")],
    fromBlock: 0,
  });
  return logs.map((log) => ({
    index: toBigInt(dataSlice(log.data, 0, 8)),
    merchantId: toNumber(log.topics[2]),
    record: {
      kind: toNumber(dataSlice(log.data, 8, 9)),
      amount: toBigInt(dataSlice(log.data, 9, 15)),
      account: getBytes(log.topics[1]),
      commitment: getBytes(log.topics[3]),
      ciphertext: getBytes(dataSlice(log.data, 15)),
    },
  }));
}

/** The BatchRecorded logs (FORMAT.md 6): indexed fields from the topics, the rest ABI-decoded. */
async function batchesFromLogs(ledger: Ledger): Promise<(BatchLinked & { chainHead: string })[]> {
  const logs = await ethers.provider.getLogs({
    address: await ledger.getAddress(),
    topics: [id("BatchRecorded(uint32,uint64,address,uint64,uint16,bytes32,bytes)")],
    fromBlock: 0,
  });
  return logs.map((log) => {
    const [firstRecordIndex, count, chainHead, envelope] = AbiCoder.defaultAbiCoder().decode(
      ["uint64", "uint16", "bytes32", "bytes"],
      log.data,
    );
    return {
      merchantId: toNumber(log.topics[1]),
      sequence: toBigInt(log.topics[2]),
      recorder: getAddress(dataSlice(log.topics[3], 12)),
      envelope: envelope as string,
      count: Number(count),
      firstRecordIndex: firstRecordIndex as bigint,
      chainHead: chainHead as string,
    };
  });
}

// ------------------------------------------------------------------------------ properties

describe("PrepaidLedger invariants", function () {
  this.timeout(process.env.FUZZ_RUNS === undefined ? 120_000 : 0);

  it("generates runs that reach success and every refusal", function () {
    // The model alone, on many runs: the properties below are only as strong as the runs they
    // see, so a change of weights that stops reaching an outcome must fail here. A fixed seed:
    // the same 300 runs every time, so this fails for a change of the generator, never by chance.
    const seen = new Set<string>();
    for (const batches of fc.sample(runArb, { numRuns: 300, seed: 20261203 })) {
      const model = new LedgerModel(ZeroHash);
      for (const [index, spec] of batches.entries()) {
        const sequence = sequenceOf(spec.sequence, model.merchant(spec.merchantId).nextSequence);
        const records = resolveRecords(model, spec, index);
        const outcome = model.recordBatch(spec.merchantId, sequence, ZeroAddress, !spec.byOtherRecorder, records, spec.envelope);
        seen.add(outcome.ok ? "success" : outcome.error);
      }
    }
    expect([...seen].sort()).to.deep.equal([
      "LedgerAccountOverflow",
      "LedgerBatchReplayed",
      "LedgerInsufficientBalance",
      "LedgerInvalidKind",
      "LedgerMissingCommitment",
      "LedgerSequenceGap",
      "LedgerUnauthorizedRecorder",
      "LedgerUnknownAccount",
      "LedgerZeroAmount",
      "success",
    ]);
  });

  it("invariant_contractBooksEqualModel", async function () {
    await assertInvariant(async (f, model) => {
      expect(await readBooks(f.ledger)).to.deep.equal(model.books());
    });
  });

  it("invariant_balancesEqualDepositsMinusConsumption", async function () {
    await assertInvariant(async (f, model) => {
      const books = await readBooks(f.ledger);
      const balances = await Promise.all(SLOTS.map(([m, a]) => f.ledger.balanceOf(m, a)));
      for (const [i, a] of books.accounts.entries()) {
        const m = model.accounts.get(slotKey(...SLOTS[i]));
        const deposits = m === undefined ? 0n : m.toppedUp - m.consumed - m.refunded;
        expect(a.balance, `balance of ${slotName(SLOTS[i])}`).to.equal(deposits);
        expect(a.balance, `books of ${slotName(SLOTS[i])}`).to.equal(a.toppedUp - a.consumed - a.refunded);
        expect(balances[i], `balanceOf(${slotName(SLOTS[i])})`).to.equal(a.balance);
        expect(a.initialAmount <= a.toppedUp, `initial amount of ${slotName(SLOTS[i])}`).to.equal(true);
        // An account exists exactly when a top-up opened it.
        expect(a.merchantId === 0n, `owner of ${slotName(SLOTS[i])}`).to.equal(a.recordCount === 0n);
      }
      // Every card is in the pool, so a merchant's books are the sums over its pool cards.
      for (const [i, merchantId] of MERCHANTS.entries()) {
        const own = books.accounts.filter((a) => a.merchantId === BigInt(merchantId));
        const sum = (field: "balance" | "toppedUp" | "consumed" | "refunded" | "recordCount") =>
          own.reduce((total, a) => total + a[field], 0n);
        const m = books.merchants[i];
        expect(m.liability, `liability of merchant ${merchantId}`).to.equal(sum("balance"));
        expect(m.liability, `liability of merchant ${merchantId}`).to.equal(m.toppedUp - m.consumed - m.refunded);
        expect([m.toppedUp, m.consumed, m.refunded], `totals of merchant ${merchantId}`).to.deep.equal([
          sum("toppedUp"),
          sum("consumed"),
          sum("refunded"),
        ]);
        expect(m.recordCount, `records of merchant ${merchantId}`).to.equal(sum("recordCount"));
        expect(m.accountCount, `accounts of merchant ${merchantId}`).to.equal(BigInt(own.length));
      }
    });
  });

  it("invariant_chainHeadMatchesIndependentRecomputation", async function () {
    await assertInvariant(async (f, model) => {
      const [recordCount, head] = await f.ledger.chainHead();
      expect({ recordCount, head }).to.deep.equal({ recordCount: model.recordCount, head: model.head });

      // Re-link the whole chain from genesis, once from the model's booked batches and records
      // and once from what a regulator sees: the raw BatchRecorded and Recorded logs.
      expect(await f.ledger.genesisHead()).to.equal(f.genesis);
      const relink = (start: string, batches: BatchLinked[], records: { index: bigint; merchantId: number; record: PackedRecord }[]) => {
        let head = start;
        const heads: string[] = [];
        for (const b of batches) {
          head = expectedBatchLink(head, b.merchantId, b.sequence, b.recorder, b.envelope, b.count);
          const own = records.filter((r) => r.index >= b.firstRecordIndex && r.index < b.firstRecordIndex + BigInt(b.count));
          expect(own.length, `records of batch ${b.sequence} of merchant ${b.merchantId}`).to.equal(b.count);
          for (const r of own) {
            expect(r.merchantId).to.equal(b.merchantId);
            head = expectedLink(head, r.index, r.merchantId, r.record);
          }
          heads.push(head);
        }
        return { head, heads };
      };
      const fromModel = relink(
        f.genesis,
        model.batches,
        model.booked.map((b, i) => ({ index: BigInt(i + 1), ...b })),
      ).head;
      const logged = await recordsFromLogs(f.ledger);
      for (const [i, { index }] of logged.entries()) {
        expect(index, "Recorded record indexes count from 1 without gaps").to.equal(BigInt(i + 1));
      }
      const batches = await batchesFromLogs(f.ledger);
      const fromLogs = relink(f.genesis, batches, logged);
      // Every BatchRecorded announces the head the logs rebuild after it.
      expect(fromLogs.heads).to.deep.equal(batches.map((b) => b.chainHead));
      expect(batches.reduce((n, b) => n + b.count, 0)).to.equal(logged.length);
      expect(BigInt(logged.length)).to.equal(recordCount);
      expect(fromModel).to.equal(head);
      expect(fromLogs.head).to.equal(head);
    });
  });

  it("invariant_failedBatchChangesNothing", async function () {
    // Compared with the contract's own state before the batch, not with the model.
    await assertInvariant(async (f, _model, step, before) => {
      const after = await readBooks(f.ledger);
      if (!step.outcome.ok) {
        expect(after).to.deep.equal(before);
        return;
      }
      // A booked batch touches only its own merchant and the cards it names.
      const named = new Set(step.records.map((r) => slotKey(step.spec.merchantId, hexlify(r.account))));
      for (const [i, slot] of SLOTS.entries()) {
        if (!named.has(slotKey(...slot))) {
          expect(after.accounts[i], `untouched card ${slotName(slot)}`).to.deep.equal(before.accounts[i]);
        }
      }
      for (const [i, merchantId] of MERCHANTS.entries()) {
        if (merchantId !== step.spec.merchantId) {
          expect(after.merchants[i], `other merchant ${merchantId}`).to.deep.equal(before.merchants[i]);
        }
      }
    });
  });
});
