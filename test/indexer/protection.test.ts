/**
 * The index and the card holders' protection, against a real deployment (ledger, test token,
 * custody attached) on the in-process network: settlements stored as refunds of their cards,
 * the books equal to merchantBooks/accountBooks, the chain equal to the contract's; card rules,
 * claims (in full and pro rata, swept) and cooling-off returns (paid, owed, met, overdue) equal
 * to custody's views; custody's held net of payouts; the CLI's sections; a reorg that drops a
 * settlement rolled back; an index of schema version 4 upgraded in place.
 */
import { join } from "node:path";
import { PassThrough } from "node:stream";

import { expect } from "chai";
import { network } from "hardhat";

import { main } from "../../src/cli/main.js";
import { Indexer } from "../../src/indexer/indexer.js";
import type { IndexQueries } from "../../src/indexer/queries.js";
import { SCHEMA_VERSION } from "../../src/indexer/schema.js";
import { openIndex } from "../../src/indexer/open.js";
import { REGULATOR_KEY, tempDir } from "../helpers/ledger.js";
import { FULL, OWING, PAID, PRO_RATA, closeUploaders, deployProtected, increaseTime, protectionScenario, type Protected, type Scenario } from "../helpers/protection.js";
import { indexDb, sqliteOnly } from "../helpers/index-db.js";

const { ethers } = await network.create();
const DAY = 86_400;
const MERCHANTS = [PAID, OWING, FULL, PRO_RATA];

/** Runs the CLI in process, returning its exit code and stdout. */
async function prepaid(args: string[]): Promise<{ code: number; stdout: string }> {
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on("data", (d: Buffer) => chunks.push(d));
  const code = await main(args, { stdout, stderr: new PassThrough(), env: {} });
  return { code, stdout: Buffer.concat(chunks).toString() };
}

const open = async (d: Protected, db: string, confirmations = 0) =>
  Indexer.open({ ledger: await d.ledger.getAddress(), privateKey: REGULATOR_KEY, db, confirmations }, ethers.provider);

/** The index's books, chain head, custody and accounts equal the contract's views. */
async function expectEqualsContract(q: IndexQueries, d: Protected): Promise<void> {
  const [count, head] = await d.ledger.chainHead();
  expect([q.info().recordCount, q.info().chainHead]).to.deep.equal([Number(count), head.toLowerCase()]);
  for (const m of MERCHANTS) {
    const c = await d.ledger.merchantBooks(m);
    const row = q.merchant(m);
    expect([row.recordCount, row.accountCount, row.toppedUp, row.consumed, row.refunded, row.liability].map(BigInt), `merchant ${m}'s books`).to.deep.equal([
      c.recordCount,
      c.accountCount,
      c.toppedUp,
      c.consumed,
      c.refunded,
      c.liability,
    ]);
    const custody = await d.custody.custodyOf(m);
    expect([q.custody(m).held, q.custody(m).required].map(BigInt), `merchant ${m}'s custody`).to.deep.equal([custody.held, custody.required]);
    for (const a of q.accounts(m)) {
      const c = await d.ledger.accountBooks(m, a.account);
      expect([a.recordCount, a.toppedUp, a.consumed, a.refunded, a.balance].map(BigInt), `card ${a.account}`).to.deep.equal([
        c.recordCount,
        c.toppedUp,
        c.consumed,
        c.refunded,
        c.balance,
      ]);
    }
  }
}

describe("indexer: settlements and the card holders' protection", function () {
  this.timeout(180_000);

  describe("after claims and cooling-off returns", function () {
    let s: Scenario;
    let db: string;
    let indexer: Indexer;
    before(async function () {
      s = await protectionScenario(ethers);
      db = indexDb(tempDir("index-protection"), "i.sqlite");
      indexer = await open(s, db);
      const result = await indexer.sync();
      expect(result.matchesContract).to.equal(true);
    });
    after(() => {
      indexer?.close();
      closeUploaders(s);
    });

    it("stores each settlement as a refund record of its card, and the books and chain equal the contract's", async function () {
      const q = indexer.queries();
      expect(q.discrepancies()).to.deep.equal([]);
      await expectEqualsContract(q, s);
      const settled = q.records({ limit: 1_000 }).filter((r) => r.settlement !== null);
      const logs = await s.ledger.queryFilter(s.ledger.filters.Settled(), 0);
      expect(settled.map((r) => [r.recordIndex, r.merchantId, r.account, r.kind, r.amount, r.settlement!.holder])).to.deep.equal(
        logs.map((l) => [Number(l.args.recordIndex), Number(l.args.merchantId), l.args.account, 3, Number(l.args.amount), l.args.holder.toLowerCase()]),
      );
      expect(settled.map((r) => [r.kindName, r.verification, r.commitment, r.details])).to.deep.equal([
        ["refund (cooling-off)", "verified", "", null],
        ["refund (cooling-off)", "verified", "", null],
        ["refund (claim)", "verified", "", null],
        ["refund (claim)", "verified", "", null],
      ]);
      // The card's history holds its settlement after its batch records.
      const history = q.records({ merchantId: PRO_RATA, account: s.cards.F.account });
      expect(history.map((r) => r.kindName)).to.deep.equal(["top-up", "refund (claim)"]);
      // The chart has a point per batch and per settlement, each at the contract's liability
      // after its block (one transaction a block here).
      for (const m of MERCHANTS) {
        const series = q.liabilitySeries(m);
        const settlements = logs.filter((l) => Number(l.args.merchantId) === m).length;
        expect(series.length, `merchant ${m}'s points`).to.equal(q.merchant(m).batches + settlements);
        for (const p of series) {
          expect(BigInt(p.liability), `merchant ${m} at block ${p.blockNumber}`).to.equal((await s.ledger.merchantBooks(m, { blockTag: p.blockNumber })).liability);
        }
      }
    });

    it("derives card rules, claims and cooling-off returns equal to the contracts' views", async function () {
      const q = indexer.queries();
      const paid = q.protection(PAID);
      expect(paid.rules && [paid.rules.cardCap, paid.rules.coolingOffDays]).to.deep.equal([500_000, 7]);
      expect(paid.claims).to.equal(null);
      expect(paid.coolingOff.requests.map((r) => [r.account, r.status, r.amount])).to.deep.equal([[s.cards.A.account, "paid", 200_000]]);
      expect(q.protection(FULL).rules).to.equal(null);
      for (const m of [FULL, PRO_RATA]) {
        const c = q.protection(m).claims!;
        const round = await s.custody.claimsOf(m);
        expect([c.pool, c.liability, c.deadline, c.paid, c.claims, c.swept !== null].map(String), `merchant ${m}'s claims`).to.deep.equal(
          [round.pool, round.liability, round.deadline, round.paid, round.claims, round.swept].map(String),
        );
        expect(c.residualTo).to.equal(round.residualTo.toLowerCase());
        expect(c.ended).to.equal(true);
      }
      const full = q.protection(FULL).claims!;
      expect([full.rate, full.unpaid, full.list.map((x) => [x.balance, x.paid])]).to.deep.equal([1, 0, [[100_000, 100_000]]]);
      const proRata = q.protection(PRO_RATA).claims!;
      expect([proRata.rate, proRata.paid, proRata.unpaid, proRata.swept!.amount]).to.deep.equal([0.5, 100_000, 200_000, 50_000]);
      // Cooling-off at OWING: C owed then met by the merchant; D still owed, not yet due.
      const owing = q.protection(OWING).coolingOff;
      expect(owing.requests.map((r) => [r.account, r.status, r.amount, r.overdue])).to.deep.equal([
        [s.cards.C.account, "met", 100_000, false],
        [s.cards.D.account, "owed", 80_000, false],
      ]);
      const obligation = await s.custody.obligationOf(OWING, s.cards.D.account);
      expect([owing.requests[1].dueBy!, owing.owed].map(BigInt)).to.deep.equal([obligation.dueBy, obligation.amount]);
      expect((await s.custody.obligationOf(OWING, s.cards.C.account)).amount).to.equal(0n);
      // Custody's history shows the payouts out of it, held after each as custodyOf says.
      const history = q.custody(PRO_RATA).history;
      expect(history.map((e) => [e.event, e.amount, e.heldAfter])).to.deep.equal([
        ["ratio-set", null, null],
        ["deposited", 150_000, 150_000],
        ["claimed", 100_000, 50_000],
        ["swept", 50_000, 0],
      ]);
    });

    it("shows them in `prepaid merchant <id>`, marking an owed return OVERDUE once past its due date", async function () {
      const closed = await prepaid(["merchant", String(PRO_RATA), "--db", db]);
      expect(closed.code).to.equal(0);
      expect(closed.stdout)
        .to.include("Card rules: none set")
        .and.to.match(/Pool: +¥1,500\.00 \(what custody held when claims opened\)/)
        .and.to.match(/Liability: +¥3,000\.00/)
        .and.to.match(/Rate: +50\.00 % of each card's balance \(pool ÷ liability: pro rata\)/)
        .and.to.match(/Paid: +¥1,000\.00 to 1 card\n/)
        .and.to.match(/Unpaid: +¥2,000\.00 \(liability − paid\)/)
        .and.to.match(/Swept: +¥500\.00 to 0x/)
        .and.to.include(s.cards.F.account);
      const policy = await prepaid(["merchant", String(PAID), "--db", db]);
      expect(policy.stdout).to.match(/Card cap: +¥5,000\.00 a card/).and.to.match(/Cooling-off: +7 days from each top-up/);
      expect(policy.stdout).to.not.include("Claims (");
      await increaseTime(ethers, 8 * DAY); // D's return was due 15 days after it was asked
      await indexer.sync();
      const owing = await prepaid(["merchant", String(OWING), "--db", db]);
      expect(owing.stdout)
        .to.include("Cooling-off returns (2): returned from custody ¥0.00; met by the merchant ¥1,000.00; owed ¥800.00 (¥800.00 OVERDUE on 1 card)")
        .and.to.match(new RegExp(`${s.cards.D.account} .* ¥800\\.00 +OVERDUE`))
        .and.to.match(new RegExp(`${s.cards.C.account} .* ¥1,000\\.00 +met by merchant`));
      const json = JSON.parse((await prepaid(["merchant", String(OWING), "--db", db, "--json"])).stdout) as { protection: { coolingOff: { overdueCount: number } } };
      expect(json.protection.coolingOff.overdueCount).to.equal(1);
      const alerts = indexer.queries().alerts({ rule: "cooling-off-overdue" });
      expect(alerts.map((a) => [a.merchantId, a.account])).to.deep.equal([[OWING, s.cards.D.account]]);
    });
  });

  it("rolls back a reorg that drops a settlement", async function () {
    const d = await deployProtected(ethers);
    const card = await d.card(PAID, d.holders.h3, "reorg");
    await d.deposit(PAID, 200_000n);
    await d.upload(PAID, [[1, card.account, 100_000n]]);
    for (let i = 0; i < 4; i++) await ethers.provider.send("evm_mine", []);
    const db = indexDb(tempDir("index-protection"), "i.sqlite");
    const indexer = await open(d, db, 3);
    try {
      await indexer.sync();
      const snapshot = (await ethers.provider.send("evm_snapshot", [])) as string;
      const dropped = await ethers.provider.getBlock("latest");
      await (await d.custody.connect(d.holders.h3).requestCoolingOff(PAID, card.secret, d.holders.h3.address)).wait();
      await indexer.sync();
      expect(indexer.queries().records({ merchantId: PAID, account: card.account }).map((r) => r.kindName)).to.deep.equal(["top-up", "refund (cooling-off)"]);
      expect(indexer.queries().protection(PAID).coolingOff.paidFromCustody).to.equal(100_000);
      expect(indexer.queries().custody(PAID).held).to.equal(100_000);
      // The block of the cooling-off return is replaced by empty ones.
      expect(await ethers.provider.send("evm_revert", [snapshot])).to.equal(true);
      await ethers.provider.send("evm_setNextBlockTimestamp", [dropped!.timestamp + 5]);
      await ethers.provider.send("evm_mine", []);
      await ethers.provider.send("evm_mine", []);
      const r = await indexer.sync();
      expect(r.reorgs).to.have.length(1);
      const q = indexer.queries();
      expect(q.records({ merchantId: PAID, account: card.account }).map((x) => x.kindName)).to.deep.equal(["top-up"]);
      expect(q.protection(PAID).coolingOff.requests).to.deep.equal([]);
      expect(q.custody(PAID).held).to.equal(200_000);
      expect(r.matchesContract).to.equal(true);
      await expectEqualsContract(q, d);
      // The same return, asked again on the new branch, is indexed once.
      await (await d.custody.connect(d.holders.h3).requestCoolingOff(PAID, card.secret, d.holders.h3.address)).wait();
      expect((await indexer.sync()).matchesContract).to.equal(true);
      await expectEqualsContract(indexer.queries(), d);
      expect(indexer.queries().protection(PAID).coolingOff.requests.map((x) => x.status)).to.deep.equal(["paid"]);
    } finally {
      indexer.close();
      closeUploaders(d);
    }
  });

  it("upgrades an index of schema version 4 in place, then indexes settlements", async function () {
    sqliteOnly(this); // an SQLite file of an older version: PostgreSQL indexes start at version 6
    const d = await deployProtected(ethers);
    const card = await d.card(PAID, d.holders.h2, "upgrade");
    await d.deposit(PAID, 100_000n);
    await d.upload(PAID, [[1, card.account, 50_000n]]);
    const db = indexDb(tempDir("index-protection"), "i.sqlite");
    const first = await open(d, db);
    await first.sync();
    first.close();
    // Make it the index version 4 wrote: no protection table, no settlement columns.
    const raw = openIndex(db);
    raw.exec(
      "DROP TABLE protection_events; DROP INDEX records_settled; ALTER TABLE records DROP COLUMN settlement; ALTER TABLE records DROP COLUMN holder; PRAGMA user_version = 4",
    );
    raw.close();
    const old = openIndex(db, { readOnly: true }); // an old index stays readable
    old.close();
    const indexer = await open(d, db);
    try {
      const upgraded = openIndex(db, { readOnly: true });
      expect(Number((upgraded.prepare("PRAGMA user_version").get() as { user_version: number }).user_version)).to.equal(SCHEMA_VERSION).and.to.equal(6);
      upgraded.close();
      await (await d.custody.connect(d.holders.h2).requestCoolingOff(PAID, card.secret, d.holders.h2.address)).wait();
      expect((await indexer.sync()).matchesContract).to.equal(true);
      const q = indexer.queries();
      expect(q.records({ merchantId: PAID, account: card.account }).map((r) => [r.kindName, r.settlement?.reason ?? null])).to.deep.equal([
        ["top-up", null],
        ["refund (cooling-off)", "cooling-off"],
      ]);
      await expectEqualsContract(q, d);
    } finally {
      indexer.close();
      closeUploaders(d);
    }
  });
});
