/**
 * IndexQueries.resolveAccount: a card id as a person pastes it (whole, or a prefix as reports
 * print it), against an index holding two cards that share their first 8 hex digits.
 */
import { expect } from "chai";

import { IndexQueries } from "../../src/indexer/queries.js";
import { openIndex } from "../../src/indexer/open.js";
import { expectRejects } from "../helpers/errors.js";
import { scratchIndexDb } from "../helpers/index-db.js";

const A = "0x17312af8" + "0".repeat(55) + "1";
const B = "0x17312af8" + "0".repeat(55) + "2";
const C = "0x9c1e57a0" + "f".repeat(56);

describe("index queries: a card id or a unique prefix of it", function () {
  const db = openIndex(scratchIndexDb());
  const insert = db.prepare(
    "INSERT INTO accounts (merchant_id, account, record_count, initial_amount, topped_up, consumed, refunded, balance, opened_time, last_time) VALUES (?, ?, 1, 0, 0, 0, 0, 0, 0, 0)",
  );
  // C under two merchants: one card id, not two.
  for (const [merchant, account] of [[101, A], [101, B], [101, C], [102, C]] as const) insert.run(merchant, account);
  const q = new IndexQueries(db);
  after(() => db.close());

  it("returns the full id for a whole id (any case) or a unique prefix, with or without the trailing …", function () {
    expect(q.resolveAccount(A.toUpperCase().replace("0X", "0x"))).to.equal(A);
    for (const typed of ["0x9c1e57a0", "0x9c1e57a0…", "0x9C1E57A0...", " 0x9c1e57a0ff "]) expect(q.resolveAccount(typed), typed).to.equal(C);
    expect(q.resolveAccount(C.slice(0, 65))).to.equal(C); // 63 digits
  });

  it("refuses a prefix of several cards (naming them), an unknown one, a short one, and text that is not hex", async function () {
    const ambiguous = await expectRejects(Promise.resolve().then(() => q.resolveAccount("0x17312af8…")), "INVALID_ARGUMENT");
    expect(ambiguous.details.matches).to.equal(`${A}, ${B}`);
    await expectRejects(Promise.resolve().then(() => q.resolveAccount("0xdeadbeef")), "NOT_FOUND");
    for (const bad of ["0x17312af", "17312af8aa", "0x17312afg", "", A + "0"]) {
      await expectRejects(Promise.resolve().then(() => q.resolveAccount(bad)), "INVALID_ARGUMENT");
    }
  });
});
