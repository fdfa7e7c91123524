/**
 * Every merchant standing the contract has (issue 9: winding down and closed beside active and
 * suspended) reaches the regulator's tools by its name: the reader's replay (compared with the
 * contract), the plain-text report, the index and its merchant events, and the dashboard's badges.
 */
import { join } from "node:path";

import { expect } from "chai";
import { encodeBytes32String } from "ethers";
import { network } from "hardhat";

import { serveDashboard } from "../../src/dashboard/server.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { MERCHANT_STATUS_NAMES, merchantStatusName } from "../../src/regulator/books.js";
import { RegulatorReader } from "../../src/regulator/reader.js";
import { formatReport } from "../../src/regulator/report.js";
import { Uploader } from "../../src/upload/uploader.js";
import { REGULATOR_KEY, REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";
import { indexDb } from "../helpers/index-db.js";

const { ethers, networkHelpers } = await network.create();

/** Merchants 1-4 end the day active, suspended, winding down (after refunds) and closed. */
async function ledgerWithEveryStanding() {
  const [admin, regulator, ...recorders] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const address = await ledger.getAddress();
  const uploaders = [];
  for (const merchantId of [1, 2, 3, 4]) {
    await ledger.connect(regulator).registerMerchant(merchantId, recorders[merchantId].address);
    const u = await Uploader.open(
      { ledger: address, merchantId, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir(), "j.jsonl"), batchSize: 10 },
      recorders[merchantId],
    );
    await u.upload(openings(merchantId, 3, 10_000n, merchantId * 10));
    uploaders.push(u);
  }
  const as = ledger.connect(regulator);
  await (await as.suspendMerchant(2, encodeBytes32String("complaints"))).wait();
  await (await as.windDownMerchant(3, encodeBytes32String("exit"))).wait();
  await uploaders[2].upload([detail(3, 3, card(30), 10_000n, 900), detail(3, 3, card(31), 4_000n, 901)]);
  await (await as.suspendMerchant(4, encodeBytes32String("fraud"))).wait();
  await (await as.closeMerchant(4, encodeBytes32String("licence-revoked"))).wait();
  for (const u of uploaders) u.close();
  return { ledger, address };
}

describe("merchant standings in the regulator's tools", function () {
  this.timeout(60_000);

  it("names every status number the contract has, and only those", function () {
    expect(MERCHANT_STATUS_NAMES).to.deep.equal({ 0: "unknown", 1: "active", 2: "suspended", 3: "winding-down", 4: "closed" });
    expect(merchantStatusName(5)).to.equal("unknown");
  });

  it("the reader replays each standing as the contract has it, and the report names it", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithEveryStanding);
    const reader = await RegulatorReader.open({ ledger: f.address, privateKey: REGULATOR_KEY }, ethers.provider);
    const report = await reader.read();
    expect(report.discrepancies).to.deep.equal([]);
    expect(report.merchants.map((m) => [m.merchantId, m.status])).to.deep.equal([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ]);
    for (const m of report.merchants) expect(BigInt(m.status)).to.equal((await f.ledger.merchantBooks(m.merchantId)).status);
    const lines = formatReport(report).split("\n");
    const statusOf = (id: number) => lines.find((l) => l.startsWith(`${id} `))!.split(/ +/)[1];
    expect([1, 2, 3, 4].map(statusOf)).to.deep.equal(["active", "SUSPENDED", "WINDING-DOWN", "CLOSED"]);
  });

  it("the index stores and names each standing, with the reason in its merchant events", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithEveryStanding);
    const indexer = await Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db: indexDb(tempDir("index-status"), "i.sqlite") }, ethers.provider);
    try {
      const r = await indexer.sync();
      expect(r.matchesContract).to.equal(true);
      const q = indexer.queries();
      expect([1, 2, 3, 4].map((id) => q.merchant(id).status)).to.deep.equal(["active", "suspended", "winding-down", "closed"]);
      // The suspension's reason describes a suspended merchant only; a closed one's is in its events.
      expect([2, 4].map((id) => q.merchant(id).suspendedReason)).to.deep.equal(["complaints", null]);
      expect(q.merchant(3).refunded).to.equal(14_000);
      const events = indexer.db
        .prepare("SELECT merchant_id, event, detail FROM merchant_events WHERE event != 'registered' ORDER BY block_number, log_index")
        .all()
        .map((e) => ({ ...e }));
      expect(events).to.deep.equal([
        { merchant_id: 2, event: "suspended", detail: "complaints" },
        { merchant_id: 3, event: "winding-down", detail: "exit" },
        { merchant_id: 4, event: "suspended", detail: "fraud" },
        { merchant_id: 4, event: "closed", detail: "licence-revoked" },
      ]);
    } finally {
      indexer.close();
    }
  });

  it("the dashboard shows each standing's badge, on the overview and the merchant's page", async function () {
    const f = await networkHelpers.loadFixture(ledgerWithEveryStanding);
    const db = indexDb(tempDir("index-status"), "i.sqlite");
    const indexer = await Indexer.open({ ledger: f.address, privateKey: REGULATOR_KEY, db }, ethers.provider);
    try {
      await indexer.sync();
    } finally {
      indexer.close();
    }
    const dashboard = await serveDashboard({ db, port: 0 });
    try {
      const overview = await (await fetch(dashboard.url)).text();
      for (const [id, name] of [
        [1, "active"],
        [2, "suspended"],
        [3, "winding-down"],
        [4, "closed"],
      ] as const) {
        const row = new RegExp(`<tr data-merchant="${id}">.*?</tr>`, "s").exec(overview)?.[0] ?? "";
        expect(row, `overview row of merchant ${id}`).to.include(`<span class="badge ${name}">${name}</span>`);
        const page = await (await fetch(`${dashboard.url}/merchants/${id}`)).text();
        expect(page, `page of merchant ${id}`).to.match(new RegExp(`<h1>Merchant ${id} <span class="badge ${name}">${name}</span>`));
      }
    } finally {
      await dashboard.close();
    }
  });
});
