/**
 * The reader's account store (src/regulator/spilled-accounts.ts): books kept over it, with a few
 * accounts in memory and the rest in its scratch file, are the books kept over a Map, record for
 * record; the file exists only between the first spill and close().
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";

import { expect } from "chai";
import { id } from "ethers";
import fc from "fast-check";

import { PrepaidLedgerError } from "../../src/errors.js";
import { type AccountState, Books, accountKey } from "../../src/regulator/books.js";
import { SpilledAccounts, byMerchantThenAccount } from "../../src/regulator/spilled-accounts.js";

/** `npm run fuzz` sets FUZZ_RUNS for a deep run; CI plays a few seconds' worth. */
const NUM_RUNS = process.env.FUZZ_RUNS === undefined ? 300 : Number(process.env.FUZZ_RUNS);

/** Twelve card ids whose sorted order is not their numbering. */
const CARDS = Array.from({ length: 12 }, (_, i) => id(`spilled-accounts card ${i}`));

type Op = { op: "apply"; merchantId: number; card: number; kind: number; amount: bigint } | { op: "list"; pageSize: number };

const applyOp: fc.Arbitrary<Op> = fc.record({
  op: fc.constant("apply" as const),
  merchantId: fc.integer({ min: 1, max: 3 }),
  card: fc.integer({ min: 0, max: CARDS.length - 1 }),
  // Mostly the three kinds, sometimes one the contract does not know.
  kind: fc.oneof({ arbitrary: fc.constantFrom(1, 2, 3), weight: 12 }, { arbitrary: fc.constantFrom(0, 4), weight: 1 }),
  // Mostly amounts a card's balance covers, sometimes zero or up to the u48 on the wire (overdraws).
  amount: fc.oneof(
    { arbitrary: fc.bigInt({ min: 1n, max: 5_000n }), weight: 10 },
    { arbitrary: fc.constant(0n), weight: 1 },
    { arbitrary: fc.bigInt({ min: 1n, max: 2n ** 48n - 1n }), weight: 2 },
  ),
});
/** Every account in order, read in pages of `pageSize`, between two records. */
const listOp: fc.Arbitrary<Op> = fc.record({ op: fc.constant("list" as const), pageSize: fc.integer({ min: 1, max: 7 }) });

const sortedAccounts = (books: Books): AccountState[] => [...books.accounts.values()].sort(byMerchantThenAccount);

describe("SpilledAccounts: the reader's account books with a bounded memory", function () {
  this.timeout(process.env.FUZZ_RUNS === undefined ? 120_000 : 0);

  it("invariant_spilledBooksEqualMapBooks: the same verdicts, books, count and order as a Map, with 1 to 5 accounts in memory", function () {
    // What the runs exercised, so the property cannot pass on sequences that never spill,
    // read an account back or refuse a record.
    const seen = { spills: 0, readBack: 0, refusals: 0, lists: 0 };
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.oneof({ arbitrary: fc.constant(false), weight: 4 }, { arbitrary: fc.constant(true), weight: 1 }),
        fc.array(fc.oneof({ arbitrary: applyOp, weight: 20 }, { arbitrary: listOp, weight: 1 }), { minLength: 1, maxLength: 200, size: "medium" }),
        (limit, midway, ops) => {
          const reference = new Books();
          const store = new SpilledAccounts(limit);
          const books = new Books(store);
          let directory: string | undefined;
          try {
            for (const o of ops) {
              if (o.op === "list") {
                expect([...store.ordered(o.pageSize)]).to.deep.equal(sortedAccounts(reference));
                seen.lists++;
                continue;
              }
              const account = CARDS[o.card]!;
              const verdict = books.apply(o.merchantId, account, o.kind, o.amount, midway);
              expect(verdict).to.equal(reference.apply(o.merchantId, account, o.kind, o.amount, midway));
              if (verdict !== undefined) seen.refusals++;
            }
            expect(store.size).to.equal(reference.accounts.size);
            expect([...books.merchants.entries()]).to.deep.equal([...reference.merchants.entries()]);
            expect([...store.ordered(3)]).to.deep.equal(sortedAccounts(reference));
            seen.spills += store.spills;
            seen.readBack += store.loads;
            directory = store.directory;
          } finally {
            store.close();
          }
          if (directory !== undefined) expect(existsSync(directory)).to.equal(false);
        },
      ),
      { numRuns: NUM_RUNS },
    );
    expect(seen.spills, "accounts spilled").to.be.greaterThan(0);
    expect(seen.readBack, "spilled accounts read back").to.be.greaterThan(0);
    expect(seen.refusals, "records refused").to.be.greaterThan(0);
    expect(seen.lists, "listings between records").to.be.greaterThan(0);
  });

  it("keeps a ledger within its limit in memory: no file is made", function () {
    const store = new SpilledAccounts(5);
    const books = new Books(store);
    try {
      for (const account of CARDS.slice(0, 5)) books.apply(1, account, 1, 100n);
      for (const account of CARDS.slice(0, 5)) books.apply(1, account, 2, 40n);
      expect([store.size, store.spills, store.directory]).to.deep.equal([5, 0, undefined]);
      expect([...store.ordered()].map((a) => [a.account, a.consumed])).to.deep.equal(
        [...CARDS.slice(0, 5)].sort().map((account) => [account, 40n]),
      );
    } finally {
      store.close();
    }
  });

  it("spills beyond its limit to a private directory under the temporary one, which close() removes", function () {
    const store = new SpilledAccounts(2);
    const books = new Books(store);
    let directory: string | undefined;
    try {
      for (const account of CARDS.slice(0, 3)) books.apply(7, account, 1, 100n);
      directory = store.directory!;
      expect(directory.startsWith(tmpdir())).to.equal(true);
      expect(existsSync(directory)).to.equal(true);
      expect(store.size).to.equal(3);
      expect(store.spills).to.be.within(1, 2); // down to the limit, or a sixteenth of it (rounded up) below
    } finally {
      store.close();
    }
    expect(existsSync(directory)).to.equal(false);
    store.close(); // twice is fine
    expect(() => books.apply(7, CARDS[5]!, 1, 100n))
      .to.throw(PrepaidLedgerError)
      .with.property("code", "INVALID_ARGUMENT");
  });

  it("opens a card without reading the file, and reads back a card that was spilled", function () {
    const store = new SpilledAccounts(8);
    const books = new Books(store);
    const cards = Array.from({ length: 2_000 }, (_, i) => id(`spilled-accounts opening ${i}`));
    try {
      for (const account of cards) books.apply(1, account, 1, 500n);
      // Only the filter's false positives read the file: none expected at 2,000 keys in 2^23 bits.
      expect([store.size, store.lookups, store.loads]).to.deep.equal([2_000, 0, 0]);
      for (const account of cards.slice(0, 100)) expect(books.apply(1, account, 2, 200n)).to.equal(undefined);
      expect([store.lookups, store.loads]).to.deep.equal([100, 100]);
    } finally {
      store.close();
    }
  });

  it("counts an account stored again after it spilled once, and keeps the later copy", function () {
    const store = new SpilledAccounts(1);
    const opened = (account: string, toppedUp: bigint): AccountState => ({
      merchantId: 1,
      account,
      recordCount: 1,
      initialAmount: toppedUp,
      toppedUp,
      consumed: 0n,
      refunded: 0n,
    });
    try {
      store.set(accountKey(1, CARDS[0]!), opened(CARDS[0]!, 100n));
      store.set(accountKey(1, CARDS[1]!), opened(CARDS[1]!, 200n)); // the first spills
      store.set(accountKey(1, CARDS[0]!), opened(CARDS[0]!, 300n)); // stored again, not read back first
      expect([store.size, store.loads]).to.deep.equal([2, 0]);
      expect([...store.ordered()].map((a) => a.toppedUp)).to.deep.equal(CARDS[0]! < CARDS[1]! ? [300n, 200n] : [200n, 300n]);
    } finally {
      store.close();
    }
  });

  it("reads back totals beyond 2^53, and beyond what SQLite's INTEGER holds, exactly", function () {
    const store = new SpilledAccounts(1);
    const huge: AccountState = {
      merchantId: 4_294_967_295,
      account: CARDS[0]!,
      recordCount: 16_777_215,
      initialAmount: 2n ** 48n - 1n,
      toppedUp: 2n ** 64n + 3n, // only a tampered ledger's books could come to this
      consumed: 2n ** 53n + 1n,
      refunded: 2n ** 63n - 1n,
    };
    try {
      store.set(accountKey(huge.merchantId, huge.account), { ...huge });
      store.set(accountKey(1, CARDS[1]!), { ...huge, merchantId: 1, account: CARDS[1]! });
      expect(store.spills).to.equal(1);
      expect(store.get(accountKey(huge.merchantId, huge.account))).to.deep.equal(huge);
      expect([...store.ordered()].at(-1)).to.deep.equal(huge);
    } finally {
      store.close();
    }
  });

  it("refuses a limit that is not a whole number >= 1 with INVALID_ARGUMENT", function () {
    for (const limit of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new SpilledAccounts(limit), String(limit))
        .to.throw(PrepaidLedgerError)
        .with.property("code", "INVALID_ARGUMENT");
    }
  });
});
