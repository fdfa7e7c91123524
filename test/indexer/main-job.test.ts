import { join } from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

import { DEMO_REGULATOR_KEY, MERCHANTS, PRECURSOR, runDay } from "../../scripts/lib/day.js";
import { CLOSING_COVERED, CLOSING_SHORT } from "../../scripts/lib/exit.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { tempDir } from "../helpers/ledger.js";
import { indexDb } from "../helpers/index-db.js";

describe("indexer: the main job's traffic", function () {
  it("a profile published again replaces the one shown, and the profile rows roll back with their blocks", async function () {
    this.timeout(120_000);
    const connection = await network.create();
    const { ethers } = connection;
    const [admin, regulator, recorder] = await ethers.getSigners();
    const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
    await (await ledger.connect(regulator).registerMerchant(7, recorder.address)).wait();
    await (await ledger.connect(regulator).setMerchantProfile(7, "Old Name", "L-1", "beauty", "Putuo")).wait();
    const db = indexDb(tempDir("profiles"), "index.sqlite");
    // Five confirmations: the renaming below is in a provisional block, which a reorg rolls back.
    const indexer = await Indexer.open({ ledger: await ledger.getAddress(), db, confirmations: 5 }, ethers.provider);
    try {
      await indexer.sync();
      expect(indexer.queries().merchant(7)).to.deep.include({ name: "Old Name" });
      const snapshot = await connection.networkHelpers.takeSnapshot();
      await (await ledger.connect(regulator).setMerchantProfile(7, "新名字 New Name", "L-2", "fitness", "Minhang")).wait();
      await indexer.sync();
      expect(indexer.queries().merchant(7).profile).to.deep.include({ name: "新名字 New Name", licence: "L-2", category: "fitness", district: "Minhang" });
      // The block that renamed it is replaced (a reorg within the confirmations): its row goes.
      await snapshot.restore();
      await (await ledger.connect(regulator).setMerchantProfile(7, "Other Name", "L-3", "education", "Xuhui")).wait();
      await connection.networkHelpers.mine(1);
      const after = await indexer.sync();
      expect(after.reorgs, "a reorg was rolled back").to.have.length(1);
      expect(indexer.queries().merchants().map((m) => m.name)).to.deep.equal(["Other Name"]);
    } finally {
      indexer.close();
    }
  });

  this.timeout(300_000);

  it("indexes the day and every figure equals the contract's own views; no risk rule fires", async function () {
    const connection = await network.create();
    const day = await runDay(connection);
    const { ethers } = connection;
    const db = indexDb(tempDir("index"), "index.sqlite");
    const indexer = await Indexer.open(
      { ledger: day.ledgerAddress, quorum: day.quorumAddress, privateKey: DEMO_REGULATOR_KEY, db },
      ethers.provider,
    );
    try {
      const result = await indexer.sync();
      expect(result.matchesContract).to.equal(true);
      const q = indexer.queries();
      const ledger = await ethers.getContractAt("PrepaidLedger", day.ledgerAddress);
      // The evening's closures: custody paid the claiming holders (and the morning's cooling-off
      // return), each a settlement record of its card beside the uploaded ones.
      const settled = await ledger.queryFilter(ledger.filters.Settled(), 0);
      expect(settled.length).to.be.greaterThan(0);
      const records = day.uploaded.length + settled.length;
      expect(result.newRecords).to.equal(records);
      const quorum = await ethers.getContractAt("SupervisorQuorum", day.quorumAddress);

      // The chain and the confirmation.
      const info = q.info();
      const [count, head] = await ledger.chainHead();
      expect([BigInt(info.recordCount), info.chainHead]).to.deep.equal([count, head.toLowerCase()]);
      expect(info.settledBlock).to.equal(await ethers.provider.getBlockNumber());
      const finalCount = await quorum.lastFinal();
      expect(BigInt(info.finalRecordCount)).to.equal(finalCount);
      expect(info.decryptedFor).to.be.a("string");

      // Every merchant.
      const merchants = q.merchants();
      expect(merchants.map((m) => m.merchantId)).to.deep.equal(MERCHANTS.map((m) => m.id));
      for (const m of merchants) {
        const c = await ledger.merchantBooks(m.merchantId);
        expect(m.status).to.equal([CLOSING_COVERED, CLOSING_SHORT, PRECURSOR].includes(m.merchantId) ? "closed" : "active");
        // Its registry data, as the regulator published it (MerchantProfileSet).
        const town = MERCHANTS.find((x) => x.id === m.merchantId)!;
        expect(m.name).to.equal(town.name);
        expect(m.profile).to.deep.include({ name: town.name, licence: town.licence, category: town.category, district: town.district });
        expect(
          [m.accountCount, m.recordCount, m.toppedUp, m.consumed, m.refunded, m.liability, m.nextSequence].map(BigInt),
        ).to.deep.equal([c.accountCount, c.recordCount, c.toppedUp, c.consumed, c.refunded, c.liability, c.nextSequence]);
        expect(m.failedRecords).to.equal(0);
        // The liability series (a point per batch and per settlement) ends at the merchant's liability.
        const series = q.liabilitySeries(m.merchantId);
        expect(series.length).to.equal(m.batches + settled.filter((l) => Number(l.args.merchantId) === m.merchantId).length);
        expect(series.at(-1)!.liability).to.equal(m.liability);
      }

      // Every account, against accountBooks.
      let accounts = 0;
      for (const m of merchants) {
        const rows = q.accounts(m.merchantId, { limit: 1_000 });
        expect(rows.length).to.equal(m.accountCount);
        for (const a of rows) {
          const c = await ledger.accountBooks(a.merchantId, a.account);
          expect(
            [a.recordCount, a.initialAmount, a.toppedUp, a.consumed, a.refunded, a.balance].map(BigInt),
          ).to.deep.equal([c.recordCount, c.initialAmount, c.toppedUp, c.consumed, c.refunded, c.balance]);
          accounts++;
        }
      }
      expect(q.totals().accounts).to.equal(accounts);

      // Every record: stored once, verified, decrypted, confirmed up to the final checkpoint.
      const rows = q.records({ limit: 10_000 });
      const uploaded = rows.filter((r) => r.settlement === null);
      expect(uploaded.map((r) => r.recordIndex)).to.deep.equal(day.uploaded.map((r) => Number(r.recordIndex)));
      expect(uploaded.map((r) => r.commitment)).to.deep.equal(day.uploaded.map((r) => r.commitment.toLowerCase()));
      expect(uploaded.every((r) => r.details !== null)).to.equal(true);
      expect(rows.filter((r) => r.settlement !== null).map((r) => [r.recordIndex, r.account, r.amount])).to.deep.equal(
        settled.map((l) => [Number(l.args.recordIndex), l.args.account, Number(l.args.amount)]),
      );
      expect(rows.every((r) => r.verification === "verified")).to.equal(true);
      expect(rows.filter((r) => r.confirmed).length).to.equal(Number(finalCount));
      const totals = q.totals();
      expect([totals.records, totals.verified, totals.failed, totals.pending]).to.deep.equal([records, records, 0, records - Number(finalCount)]);
      expect(q.discrepancies()).to.deep.equal([]);

      // With the default thresholds (30-day windows) the three weeks are quiet: no rule fires.
      // (The main job's own thresholds, DEMO_RISK, flag the precursor: test/scripts/main-job.test.ts.)
      expect(q.alerts()).to.deep.equal([]);

      // A second sync finds nothing new and changes nothing.
      const before = q.digest();
      const again = await indexer.sync();
      expect(again.newRecords).to.equal(0);
      expect(q.digest()).to.equal(before);
    } finally {
      indexer.close();
    }
  });
});
