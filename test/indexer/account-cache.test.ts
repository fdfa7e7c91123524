import { join } from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

import { IndexedAccounts, PREFETCH_CHUNK } from "../../src/indexer/account-cache.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { openIndex } from "../../src/indexer/open.js";
import { Uploader } from "../../src/upload/uploader.js";
import { REGULATOR_KEY, REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";
import { indexDb } from "../helpers/index-db.js";

const { ethers, networkHelpers } = await network.create();

const M = 5;
const CARDS = 12;

/** One merchant: 12 cards opened, then rounds of consumption over every card, a batch a block. */
async function ledgerWithCards() {
  const [admin, regulator, recorder] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const address = await ledger.getAddress();
  await ledger.connect(regulator).registerMerchant(M, recorder.address);
  const uploader = await Uploader.open(
    { ledger: address, merchantId: M, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir(), "j.jsonl"), batchSize: 5 },
    recorder,
  );
  await uploader.upload(openings(M, CARDS, 90_000n));
  // Cards in a shuffled order, so a batch touches cards last seen several pages ago.
  await uploader.upload(Array.from({ length: 30 }, (_, i) => detail(M, 2, card((i * 7) % CARDS), 700n + BigInt(i), 200 + i)));
  uploader.close();
  return { ledger, address, recorder, uploader };
}

/** Every row of the accounts table, in a fixed order. */
function accountRows(db: string) {
  const index = openIndex(db, { readOnly: true });
  try {
    return index.prepare("SELECT * FROM accounts ORDER BY merchant_id, account").all();
  } finally {
    index.close();
  }
}

describe("indexer: account books kept in the index, with a bounded cache", function () {
  this.timeout(120_000);

  it("stores the same books with a cache of one account as with every account in memory, and they equal the contract's", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithCards);
    const dir = tempDir("account-cache");
    const sync = async (db: string, accountCache?: number) => {
      // One block a page: every page after the first reads cards an earlier page stored.
      const indexer = await Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db, maxBlockRange: 1, accountCache }, ethers.provider);
      const result = await indexer.sync();
      indexer.close();
      return result;
    };
    const smallDb = indexDb(dir, "small.sqlite");
    const largeDb = indexDb(dir, "large.sqlite");
    const small = await sync(smallDb, 1);
    const large = await sync(largeDb);
    expect([small.records, small.matchesContract]).to.deep.equal([CARDS + 30, true]);
    expect(large.matchesContract).to.equal(true);
    const rows = accountRows(smallDb);
    expect(rows).to.have.length(CARDS);
    expect(rows).to.deep.equal(accountRows(largeDb));
    for (const row of rows as { account: string; balance: number; record_count: number; consumed: number }[]) {
      const c = await f.ledger.accountBooks(M, row.account);
      expect([BigInt(row.balance), BigInt(row.record_count), BigInt(row.consumed)]).to.deep.equal([c.balance, c.recordCount, c.consumed]);
    }
  });

  it("goes on from the index after a restart: a new sync reads the books earlier syncs stored", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithCards);
    const db = indexDb(tempDir("account-cache"), "i.sqlite");
    const open = () => Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db, maxBlockRange: 2, accountCache: 2 }, ethers.provider);
    const first = await open();
    expect((await first.sync()).matchesContract).to.equal(true);
    first.close();
    const uploader = await Uploader.open(
      { ledger: f.address, merchantId: M, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir(), "j2.jsonl"), batchSize: 4 },
      f.recorder,
    );
    await uploader.upload(Array.from({ length: 12 }, (_, i) => detail(M, i % 3 === 0 ? 3 : 2, card(i), 100n, 500 + i)));
    uploader.close();
    const second = await open();
    const r = await second.sync();
    second.close();
    expect([r.newRecords, r.matchesContract]).to.deep.equal([12, true]);
    for (const row of accountRows(db) as { account: string; balance: number; refunded: number }[]) {
      const c = await f.ledger.accountBooks(M, row.account);
      expect([BigInt(row.balance), BigInt(row.refunded)]).to.deep.equal([c.balance, c.refunded]);
    }
  });
});

describe("IndexedAccounts", function () {
  function store(limit: number) {
    const db = openIndex(indexDb(tempDir("account-cache-unit"), "i.sqlite"));
    db.prepare(
      `INSERT INTO accounts (merchant_id, account, record_count, initial_amount, topped_up, consumed, refunded, balance, opened_time, last_time)
       VALUES (7, '0xaa', 3, 500, 800, 100, 50, 650, 1, 2)`,
    ).run();
    return { db, accounts: new IndexedAccounts(db, limit) };
  }
  const fresh = (account: string) => ({ merchantId: 7, account, recordCount: 1, initialAmount: 1n, toppedUp: 1n, consumed: 0n, refunded: 0n });

  it("reads a missing account from its row, and nothing for an account the index does not have", function () {
    const { db, accounts } = store(10);
    expect(accounts.get("7:0xaa")).to.deep.equal({ merchantId: 7, account: "0xaa", recordCount: 3, initialAmount: 500n, toppedUp: 800n, consumed: 100n, refunded: 50n });
    expect(accounts.get("7:0xbb")).to.equal(undefined);
    expect(accounts.get("8:0xaa")).to.equal(undefined);
    expect(accounts.misses).to.equal(3);
    // Read again: from memory, the same object the replay changes in place.
    expect(accounts.get("7:0xaa")).to.equal(accounts.get("7:0xaa"));
    expect(accounts.misses).to.equal(3);
    db.close();
  });

  it("keeps at most `limit` accounts after trim, dropping the least recently used", function () {
    const { db, accounts } = store(2);
    for (const a of ["0x01", "0x02", "0x03"]) accounts.set(`7:${a}`, fresh(a));
    accounts.get("7:0x01"); // now the most recent
    expect(accounts.size).to.equal(3);
    accounts.trim();
    expect(accounts.size).to.equal(2);
    // 0x02 was dropped: it is read again (and, never stored, is not found).
    const misses = accounts.misses;
    expect(accounts.get("7:0x02")).to.equal(undefined);
    expect(accounts.get("7:0x01")?.account).to.equal("0x01");
    expect(accounts.get("7:0x03")?.account).to.equal("0x03");
    expect(accounts.misses).to.equal(misses + 1);
    db.close();
  });

  it("prefetch reads the rows of a batch's accounts a chunk at a time, and knows the absent ones until the next trim", function () {
    const { db, accounts } = store(10);
    const insert = db.prepare(
      `INSERT INTO accounts (merchant_id, account, record_count, initial_amount, topped_up, consumed, refunded, balance, opened_time, last_time)
       VALUES (?, ?, 1, ?, ?, 0, 0, ?, 1, 2)`,
    );
    // More accounts than one query asks for, every other one with a row, over two merchants.
    const names = Array.from({ length: PREFETCH_CHUNK * 2 + 7 }, (_, i) => `0x${i.toString(16).padStart(4, "0")}`);
    for (const [i, a] of names.entries()) if (i % 2 === 0) insert.run(i % 3 === 0 ? 8 : 7, a, i, i, i);
    const refs = names.map((a, i) => ({ merchantId: i % 3 === 0 ? 8 : 7, account: a }));
    const keys = refs.map((r) => `${r.merchantId}:${r.account}`);
    accounts.prefetch([...refs, refs[0]!, { merchantId: 7, account: "0xaa" }]); // an account twice, and the row inserted by store()
    expect(accounts.prefetched).to.equal(keys.length + 1);
    names.forEach((a, i) => {
      const got = accounts.get(keys[i]!);
      if (i % 2 === 0) expect(got).to.deep.include({ merchantId: i % 3 === 0 ? 8 : 7, account: a, initialAmount: BigInt(i), toppedUp: BigInt(i) });
      else expect(got).to.equal(undefined);
    });
    expect(accounts.get("7:0xaa")?.recordCount).to.equal(3);
    expect(accounts.misses).to.equal(0); // every answer came from the prefetch
    // An absent account that is then opened is the stored object from then on.
    accounts.set(keys[1]!, fresh(names[1]!));
    expect(accounts.get(keys[1]!)?.account).to.equal(names[1]);
    // After a trim an absent key is asked again: by then its row may exist.
    accounts.trim();
    expect(accounts.get(keys[3]!)).to.equal(undefined);
    expect(accounts.misses).to.equal(1);
    db.close();
  });

  it("prefetch leaves the accounts in memory as they are (the replay's changes not yet stored)", function () {
    const { db, accounts } = store(10);
    const a = accounts.get("7:0xaa")!;
    a.consumed += 5n; // changed in memory; its row still says 100
    accounts.prefetch([{ merchantId: 7, account: "0xaa" }]);
    expect(accounts.get("7:0xaa")).to.equal(a);
    expect(a.consumed).to.equal(105n);
    expect(accounts.prefetched).to.equal(0);
    db.close();
  });

  it("refuses a limit below one", function () {
    const { db } = store(1);
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new IndexedAccounts(db, bad)).to.throw(RangeError, /account cache limit/);
    db.close();
  });
});
