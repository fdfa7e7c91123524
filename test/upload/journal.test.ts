import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";

import { isError } from "../../src/errors.js";
import { Journal, type JournalBatch } from "../../src/upload/journal.js";
import { tempDir } from "../helpers/ledger.js";

const owner = { chainId: "31337", ledger: "0x5fbdb2315678afecb367f032d93f642f64180aa3", merchantId: 7 };
const batch = (sequence: number, packed = `0x01${sequence}`): JournalBatch => ({
  t: "batch",
  sequence: String(sequence),
  envelope: "0x",
  packed,
  count: 1,
  salts: ["0x00"],
});

function expectCode(fn: () => unknown, code: string) {
  try {
    fn();
  } catch (e) {
    expect(isError(e, code as never), String(e)).to.equal(true);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe("upload/journal", function () {
  it("reads back what it wrote: pending, done, rejected, moved", function () {
    const path = join(tempDir(), "j.jsonl");
    const j = Journal.open(path, owner);
    j.append(batch(1));
    j.append(batch(2));
    j.append(batch(3));
    j.append({ t: "sent", sequence: "1", txHash: "0xaa" });
    j.append({ t: "done", sequence: "1", txHash: "0xaa", blockNumber: 5, firstRecordIndex: "1" });
    j.append({ t: "rejected", sequence: "3", error: "LedgerInsufficientBalance" });
    j.close();
    const again = Journal.open(path, owner);
    expect(again.pending().map((e) => e.batch.sequence)).to.deep.equal(["2"]);
    expect(again.entries.get("1")!.sentTxHashes).to.deep.equal(["0xaa"]);
    // A rejected batch never held its number on chain, so the last number in use is 2.
    expect(again.lastSequence()).to.equal(2n);
    const moved = again.resequence(again.entries.get("2")!, 4n);
    expect(moved.batch.sequence).to.equal("4");
    expect(again.pending().map((e) => e.batch.sequence)).to.deep.equal(["4"]);
    again.close();
  });

  it("keeps records' identity keys, a provisional landing and a reorg across a restart", function () {
    const path = join(tempDir(), "j.jsonl");
    const j = Journal.open(path, owner);
    j.append({ ...batch(1), keys: ["k1"] });
    j.append({ ...batch(2), keys: ["k2"] });
    j.append({ ...batch(3), keys: ["k3"] });
    const at = { txHash: "0xaa", blockNumber: 5, blockHash: "0xbb", firstRecordIndex: "1" };
    j.append({ t: "done", sequence: "1", ...at });
    j.append({ t: "included", sequence: "2", ...at, firstRecordIndex: "2" });
    j.append({ t: "rejected", sequence: "3", error: "LedgerInsufficientBalance" });
    j.close();
    const again = Journal.open(path, owner);
    expect(again.header.version).to.equal(2);
    expect(again.find("k1")?.entry.batch.sequence).to.equal("1");
    expect(again.find("k3"), "a rejected batch releases its records").to.equal(undefined);
    expect(again.provisional().map((e) => e.batch.sequence)).to.deep.equal(["2"]);
    expect(again.landedFrom(1n).map((e) => e.batch.sequence)).to.deep.equal(["1", "2"]);
    expect(again.pending()).to.deep.equal([]);
    again.append({ t: "reorged", sequence: "2", blockHash: "0xbb" });
    expect(again.pending().map((e) => e.batch.sequence)).to.deep.equal(["2"]);
    const moved = again.resequence(again.entries.get("2")!, 4n);
    expect(again.find("k2")).to.deep.equal({ entry: moved, position: 0 });
    again.close();
  });

  it("reads a version 1 journal (no identity keys)", function () {
    const path = join(tempDir(), "j.jsonl");
    appendFileSync(path, JSON.stringify({ t: "header", version: 1, ...owner }) + "\n" + JSON.stringify(batch(1)) + "\n");
    const j = Journal.open(path, owner);
    expect([j.header.version, j.pending().length]).to.deep.equal([1, 1]);
    j.close();
  });

  it("ignores a torn last line (a crash mid-write) and keeps appending after it", function () {
    const path = join(tempDir(), "j.jsonl");
    const j = Journal.open(path, owner);
    j.append(batch(1));
    j.close();
    appendFileSync(path, '{"t":"batch","sequence":"2","envel');
    const again = Journal.open(path, owner);
    expect(again.pending().map((e) => e.batch.sequence)).to.deep.equal(["1"]);
    again.append(batch(2));
    again.close();
    expect(Journal.open(path, owner).pending().map((e) => e.batch.sequence)).to.deep.equal(["1", "2"]);
  });

  it("refuses a damaged line that is not the last", function () {
    const path = join(tempDir(), "j.jsonl");
    const j = Journal.open(path, owner);
    j.append(batch(1));
    j.close();
    appendFileSync(path, "garbage\n" + JSON.stringify(batch(2)) + "\n");
    expectCode(() => Journal.open(path, owner), "JOURNAL_CORRUPT");
  });

  it("refuses a journal of another chain, ledger or merchant", function () {
    const path = join(tempDir(), "j.jsonl");
    Journal.open(path, owner).close();
    expectCode(() => Journal.open(path, { ...owner, chainId: "1" }), "INVALID_CONFIG");
    expectCode(() => Journal.open(path, { ...owner, merchantId: 8 }), "INVALID_CONFIG");
    expectCode(() => Journal.open(path, { ...owner, ledger: "0x" + "11".repeat(20) }), "INVALID_CONFIG");
    // The refused opens wrote nothing.
    expect(readFileSync(path, "utf8").trim().split("\n")).to.have.length(1);
  });

  it("keeps one copy of a batch left under two numbers by a crash inside resequence()", function () {
    const path = join(tempDir(), "j.jsonl");
    const j = Journal.open(path, owner);
    j.append(batch(1, "0xfeed"));
    j.append(batch(5, "0xfeed")); // resequence wrote the new line, then the process died
    j.close();
    const again = Journal.open(path, owner);
    expect(again.pending().map((e) => e.batch.sequence)).to.deep.equal(["5"]);
    again.close();
  });

  it("keeps the copy written last when a crash interrupted a move down into a released number", function () {
    const path = join(tempDir(), "j.jsonl");
    const j = Journal.open(path, owner);
    j.append(batch(2, "0xbad"));
    j.append(batch(3, "0xfeed")); // in flight when batch 2 was refused
    j.append({ t: "rejected", sequence: "2", error: "LedgerInsufficientBalance" });
    expect(j.releasedRange(2n, 3n)).to.equal(true);
    j.append(batch(2, "0xfeed")); // resequence wrote the copy at 2, then the process died
    j.close();
    const again = Journal.open(path, owner);
    expect(again.pending().map((e) => e.batch.sequence)).to.deep.equal(["2"]);
    expect(again.entries.has("3")).to.equal(false);
    // 3 is released now (its batch moved away), 2 is in use again.
    expect([again.releasedRange(3n, 4n), again.releasedRange(2n, 3n), again.releasedRange(2n, 4n)]).to.deep.equal([true, false, false]);
    again.close();
  });
});
