import { expect } from "chai";

import { MAX_BUCKETS, alertCounts, balanceBefore, history } from "../../src/indexer/history.js";
import { type Database } from "../../src/indexer/schema.js";
import { openIndex } from "../../src/indexer/open.js";
import { search } from "../../src/indexer/search.js";
import { RISK_RULES } from "../../src/indexer/risk.js";
import { scratchIndexDb } from "../helpers/index-db.js";

const DAY = 86_400;
const hex = (n: number, bytes = 32) => "0x" + n.toString(16).padStart(bytes * 2, "0");

/** Runs `body` with TZ set to `zone` (the buckets follow this machine's time zone). */
function inZone<T>(zone: string, body: () => T): T {
  const before = process.env.TZ;
  process.env.TZ = zone;
  try {
    return body();
  } finally {
    if (before === undefined) delete process.env.TZ;
    else process.env.TZ = before;
  }
}

describe("index history: flows and liabilities per hour, day or week", function () {
  let db: Database;
  let batch = 0;
  const addBatch = (merchantId: number, time: number, toppedUp: number, consumed = 0, refunded = 0) => {
    batch++;
    db.prepare(
      `INSERT INTO batches (tx_hash, log_index, block_number, block_time, merchant_id, sequence, recorder, first_record, record_count, chain_head,
                            topped_up, consumed, refunded, liability_after) VALUES (?, 0, ?, ?, ?, ?, '0x', 1, 1, '0x', ?, ?, ?, 0)`,
    ).run(hex(batch), batch, time, merchantId, batch, toppedUp, consumed, refunded);
  };
  const addRecord = (index: number, merchantId: number, account: string, kind: number, amount: number, tx: string, settlement: number | null = null) =>
    db
      .prepare(
        `INSERT INTO records (record_index, tx_hash, log_index, block_number, block_time, merchant_id, account, kind, amount, commitment, ciphertext,
                              verification, problems, settlement, holder) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, '', ?, 'verified', '', ?, NULL)`,
      )
      .run(index, tx, index, 1_795_000_000 + index, merchantId, account, kind, amount, new Uint8Array(0), settlement);

  beforeEach(function () {
    db = openIndex(scratchIndexDb());
    batch = 0;
  });
  afterEach(() => db.close());

  it("is empty before anything is booked", function () {
    expect(history(db, 1_795_000_000)).to.deep.equal({ unit: "hour", starts: [], end: 1_795_000_000, flows: [], liability: [] });
  });

  it("buckets five weeks by week from Monday 00:00 local time, to the index's time, each merchant's liability cumulative", function () {
    inZone("Asia/Shanghai", () => {
      const monday = Date.UTC(2026, 10, 2, 0, 0, 0) / 1000 - 8 * 3600; // Mon 2026-11-02 00:00 UTC+08:00
      addBatch(101, monday + 3600, 100_000);
      addBatch(102, monday + 2 * DAY, 50_000);
      addBatch(101, monday + 9 * DAY, 0, 30_000);
      addBatch(101, monday + 9 * DAY + 60, 20_000, 0, 5_000);
      addBatch(102, monday + 20 * DAY, 0, 50_000);
      const h = history(db, monday + 34 * DAY);
      expect(h.unit).to.equal("week");
      expect(h.starts).to.deep.equal([0, 1, 2, 3, 4].map((w) => monday + w * 7 * DAY));
      for (const s of h.starts) expect(new Date(s * 1000).getDay()).to.equal(1);
      expect(h.flows).to.deep.equal([
        { toppedUp: 150_000, consumed: 0, refunded: 0 },
        { toppedUp: 20_000, consumed: 30_000, refunded: 5_000 },
        { toppedUp: 0, consumed: 50_000, refunded: 0 },
        { toppedUp: 0, consumed: 0, refunded: 0 },
        { toppedUp: 0, consumed: 0, refunded: 0 },
      ]);
      expect(h.liability).to.deep.equal([
        { merchantId: 101, values: [100_000, 85_000, 85_000, 85_000, 85_000] },
        { merchantId: 102, values: [50_000, 50_000, 0, 0, 0] },
      ]);
    });
  });

  it("counts custody's settlements as refunds, and uses days for a fortnight and hours for a day", function () {
    inZone("UTC", () => {
      const midnight = Date.UTC(2026, 10, 18) / 1000;
      addBatch(101, midnight + 600, 10_000);
      addRecord(1, 101, hex(1), 3, 4_000, hex(99), 1); // a claim custody paid, at 1_795_000_001 (11:06 UTC that day)
      const h = history(db, midnight + 14 * 3600);
      expect(h.starts).to.have.length(14);
      expect(h.unit).to.equal("hour");
      expect(h.flows.reduce((n, f) => n + f.refunded, 0)).to.equal(4_000);
      expect(h.liability[0].values.at(-1)).to.equal(6_000);
      expect(history(db, midnight + 10 * DAY).unit).to.equal("day");
    });
  });

  it("keeps at most MAX_BUCKETS buckets, the oldest folded into the first, the liability still right", function () {
    inZone("UTC", () => {
      const start = Date.UTC(2020, 0, 6) / 1000; // a Monday
      for (let w = 0; w < 200; w++) addBatch(101, start + w * 7 * DAY, 1_000);
      const h = history(db, start + 200 * 7 * DAY);
      expect(h.starts).to.have.length(MAX_BUCKETS);
      expect(h.flows.reduce((n, f) => n + f.toppedUp, 0)).to.equal(200_000);
      expect(h.liability[0].values.at(-1)).to.equal(200_000);
    });
  });

  it("counts alerts by rule and severity, every rule listed", function () {
    const add = (rule: string, severity: string) =>
      db.prepare("INSERT INTO alerts (rule, severity, message, as_of_block, as_of_time) VALUES (?, ?, 'm', 1, 1)").run(rule, severity);
    add("card-limit", "medium");
    add("card-limit", "medium");
    add("dormant-merchant", "high");
    const counts = alertCounts(db);
    expect(counts.map((c) => c.rule)).to.deep.equal(Object.keys(RISK_RULES));
    expect(counts.find((c) => c.rule === "card-limit")).to.deep.equal({ rule: "card-limit", high: 0, medium: 2, low: 0 });
    expect(counts.find((c) => c.rule === "dormant-merchant")).to.deep.equal({ rule: "dormant-merchant", high: 1, medium: 0, low: 0 });
  });

  it("gives a card's balance before a record: top-ups less consumption and refunds", function () {
    const card = hex(7);
    addRecord(1, 101, card, 1, 10_000, hex(1));
    addRecord(2, 101, card, 2, 3_000, hex(2));
    addRecord(3, 101, hex(8), 1, 99_000, hex(2));
    addRecord(4, 101, card, 3, 1_000, hex(3));
    expect([1, 2, 4, 5].map((i) => balanceBefore(db, 101, card, i))).to.deep.equal([0, 10_000, 7_000, 6_000]);
  });
});

describe("index search", function () {
  let db: Database;
  beforeEach(function () {
    db = openIndex(scratchIndexDb());
    const account = (merchantId: number, id: string) =>
      db
        .prepare(
          `INSERT INTO accounts (merchant_id, account, record_count, initial_amount, topped_up, consumed, refunded, balance, opened_time, last_time)
           VALUES (?, ?, 1, 1, 1, 0, 0, 1, 1, 1)`,
        )
        .run(merchantId, id);
    account(101, "0xaaaaaaaa11" + "0".repeat(54));
    account(102, "0xaaaaaaaa11" + "0".repeat(54)); // the same id under two merchants
    account(101, "0xaaaaaaaa22" + "0".repeat(54));
    db.prepare("INSERT INTO merchants (merchant_id) VALUES (101)").run();
    for (const [i, tx] of [[1, "0xbb"], [2, "0xbb"], [101, "0xcc"]] as const) {
      db.prepare(
        `INSERT INTO records (record_index, tx_hash, log_index, block_number, block_time, merchant_id, account, kind, amount, commitment, ciphertext, verification, problems)
         VALUES (?, ?, ?, 1, 1, 101, '0x', 1, 1, '', ?, 'verified', '')`,
      ).run(i, tx + "0".repeat(62), i, new Uint8Array(0));
    }
  });
  afterEach(() => db.close());

  it("finds cards by id or prefix (under every merchant), records and merchants by number, transactions by hash", function () {
    const kinds = (text: string) => search(db, text).map((m) => `${m.kind} ${m.href}`);
    expect(kinds("0xaaaaaaaa22")).to.deep.equal([`account /merchants/101/accounts/0xaaaaaaaa22${"0".repeat(54)}`]);
    expect(kinds("0xAAAAAAAA11…")).to.have.length(2);
    expect(kinds("0xaaaaaaaa")).to.have.length(3);
    expect(kinds("2")).to.deep.equal(["record /records/2"]);
    expect(kinds("101")).to.deep.equal(["record /records/101", "merchant /merchants/101"]);
    expect(kinds("0xbb" + "0".repeat(62))).to.deep.equal([`transaction /transactions/0xbb${"0".repeat(62)}`]);
    expect(search(db, "0xbb00000000")[0].label).to.match(/2 records, 1–2$/);
    expect(kinds("0xdddddddd")).to.deep.equal([]);
    expect(kinds("3")).to.deep.equal([]);
  });

  it("refuses text that is none of the shapes it searches, saying what they are", function () {
    for (const text of ["gym", "0x123", "0x" + "a".repeat(65), "-1", ""]) {
      expect(() => search(db, text), text).to.throw(/card id .*record index.*transaction hash/);
    }
  });
});
