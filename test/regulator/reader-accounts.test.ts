/**
 * The regulator reader with cards beyond its `accountCache` (src/regulator/spilled-accounts.ts):
 * the same report as with every card in memory, account discrepancies by merchant and card, and
 * the scratch file made only when a card must leave memory and removed whether read() returns
 * or throws.
 */
import { readdirSync, rmSync } from "node:fs";

import { expect } from "chai";
import { network } from "hardhat";

import { isError } from "../../src/errors.js";
import type { JsonRpcLike } from "../../src/regulator/logs.js";
import { RegulatorReader, type ReaderConfigInput, type SupervisionReport } from "../../src/regulator/reader.js";
import { expectRejects } from "../helpers/errors.js";
import { MERCHANT_KEY, REGULATOR_KEY, tempDir } from "../helpers/ledger.js";
import { M1, M2, type TrafficFixture, deployTraffic, editingNode, inflatingAmounts } from "../helpers/traffic.js";

const { ethers, networkHelpers } = await network.create();

/** A ledger with an honest day of traffic for two merchants (36 records on 18 cards). */
async function ledgerWithTraffic() {
  return deployTraffic(ethers);
}

const SCRATCH = "prepaid-reader-accounts-";

interface WatchedRead {
  report?: SupervisionReport;
  error?: unknown;
  /** Scratch directories seen in the temporary directory while records were read. */
  during: string[];
  /** Scratch directories left once read() returned or threw. */
  after: string[];
}

/** read() with the temporary directory (TMPDIR) pointed at a fresh one, watched at every record. */
async function watchedRead(f: TrafficFixture, overrides: Partial<ReaderConfigInput> = {}, rpc?: JsonRpcLike): Promise<WatchedRead> {
  const tmp = tempDir("reader-tmp");
  const scratch = () => readdirSync(tmp).filter((name) => name.startsWith(SCRATCH));
  const during = new Set<string>();
  const reader = await RegulatorReader.open({ ledger: f.address, privateKey: REGULATOR_KEY, ...overrides }, ethers.provider, {
    rpc,
    onRecord: () => scratch().forEach((name) => during.add(name)),
  });
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp; // os.tmpdir() reads it at every call
  const watched: WatchedRead = { during: [], after: [] };
  try {
    watched.report = await reader.read();
  } catch (e) {
    watched.error = e;
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
  const after = scratch();
  rmSync(tmp, { recursive: true, force: true });
  return { ...watched, during: [...during], after };
}

describe("RegulatorReader: cards beyond accountCache", function () {
  it("reads a ledger of fewer cards than the cache in memory alone: no scratch file", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithTraffic);
    const read = await watchedRead(f);
    expect([read.report?.ok, read.report?.accounts, read.during, read.after]).to.deep.equal([true, 18, [], []]);
  });

  it("gives the same report with two cards in memory as with all of them, and removes its scratch file", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithTraffic);
    const all = await watchedRead(f);
    const two = await watchedRead(f, { accountCache: 2 });
    expect(two.during).to.have.length(1);
    expect(two.after).to.deep.equal([]);
    expect(two.report).to.deep.equal(all.report);
    expect([two.report!.ok, two.report!.accounts, two.report!.verified]).to.deep.equal([true, 18, 36]);
  });

  it("reports the same books mismatches with two cards in memory, by merchant then card", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithTraffic);
    // Every fourth record's amount raised by the node: records of both merchants, on eight cards.
    const node = () => editingNode(ethers, inflatingAmounts((position) => position % 4 === 3));
    const all = await watchedRead(f, {}, node());
    const two = await watchedRead(f, { accountCache: 2 }, node());
    expect([two.during.length, two.after]).to.deep.equal([1, []]);
    expect(two.report).to.deep.equal(all.report);
    const accounts = two.report!.discrepancies.filter((d) => d.kind === "books-mismatch" && d.account !== undefined);
    const cards = [...new Set(accounts.map((d) => `${d.merchantId}:${d.account}`))];
    expect(cards).to.have.length(8);
    expect(new Set(accounts.map((d) => d.merchantId))).to.deep.equal(new Set([M1, M2]));
    const order = accounts.map((d) => [d.merchantId!, d.account!] as const);
    const sorted = [...order].sort(([ma, a], [mb, b]) => ma - mb || (a < b ? -1 : a > b ? 1 : 0));
    expect(order).to.deep.equal(sorted);
  });

  it("removes its scratch file when the read throws", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithTraffic);
    // A key that opens no record: WRONG_KEY once every record was booked (and cards spilled).
    const read = await watchedRead(f, { accountCache: 2, privateKey: MERCHANT_KEY });
    expect(isError(read.error, "WRONG_KEY"), String(read.error)).to.equal(true);
    expect([read.during.length, read.after]).to.deep.equal([1, []]);
  });

  it("refuses an accountCache that is not a whole number >= 1 with INVALID_CONFIG, by path", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithTraffic);
    for (const accountCache of [0, 2.5, -3]) {
      const e = await expectRejects(RegulatorReader.open({ ledger: f.address, accountCache }, ethers.provider), "INVALID_CONFIG");
      expect((e.details.issues as { path: string }[]).map((i) => i.path)).to.deep.equal(["accountCache"]);
    }
  });
});
