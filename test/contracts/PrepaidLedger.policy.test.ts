/**
 * The ledger's card rules and settlements (issue 9 items 3 and 4): the regulator's card cap and
 * cooling-off days, refused top-ups above the cap with the values, a card's opening time, and
 * `settle` — custody only, booked like a refund and linked into the chain as a settlement link.
 */
import { expect } from "chai";
import { getBytes, hexlify, id } from "ethers";
import { network } from "hardhat";

import { packBatch, type PackedRecord } from "../../src/ledger/codec.js";
import { Consume, Refund, TopUp, account, expectedSettlementLink, record } from "../helpers/records.js";

const { ethers, networkHelpers } = await network.create();

const M1 = 1;
const M2 = 2;
const DAY = 86_400n;
const CAP = 500_000n; // ¥5,000 in fen
const CARD = account("policy-card");
const OTHER = account("policy-other");
const Claim = 1;
const CoolingOff = 2;

async function deployLedger() {
  const [admin, regulator, recorder1, recorder2, stranger, holder] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 86_400, 3_600]);
  await ledger.connect(regulator).registerMerchant(M1, recorder1.address);
  await ledger.connect(regulator).registerMerchant(M2, recorder2.address);
  const caller = await ethers.deployContract("SettlementCaller", [await ledger.getAddress()]);
  await ledger.connect(admin).proposeCustody(await caller.getAddress());
  return { ledger, caller, admin, regulator, recorder1, recorder2, stranger, holder };
}

type Fixture = Awaited<ReturnType<typeof deployLedger>>;

async function upload(f: Fixture, records: PackedRecord[], merchantId = M1) {
  const by = merchantId === M1 ? f.recorder1 : f.recorder2;
  const { nextSequence } = await f.ledger.merchantBooks(merchantId);
  return f.ledger.connect(by).recordBatch(merchantId, nextSequence, "0x", packBatch(records));
}

async function state(f: Fixture) {
  return {
    head: await f.ledger.chainHead(),
    merchant: await f.ledger.merchantBooks(M1),
    policy: await f.ledger.merchantPolicy(M1),
    card: await f.ledger.accountBooks(M1, CARD),
    other: await f.ledger.accountBooks(M1, OTHER),
  };
}

describe("PrepaidLedger card rules and settlements", function () {
  describe("setMerchantPolicy", function () {
    it("sets the cap and the cooling-off days for the regulator, with an event", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await expect(f.ledger.connect(f.regulator).setMerchantPolicy(M1, CAP, 7))
        .to.emit(f.ledger, "MerchantPolicySet")
        .withArgs(M1, f.regulator.address, CAP, 7);
      expect(await f.ledger.merchantPolicy(M1)).to.deep.equal([CAP, 7n]);
      expect(await f.ledger.merchantPolicy(M2)).to.deep.equal([0n, 0n]);
    });

    it("refuses everyone but a regulator, an unknown merchant and a period above 90 days, changing nothing", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await f.ledger.connect(f.regulator).setMerchantPolicy(M1, CAP, 7);
      const before = await state(f);
      const role = await f.ledger.REGULATOR_ROLE();
      for (const who of [f.admin, f.recorder1, f.stranger]) {
        await expect(f.ledger.connect(who).setMerchantPolicy(M1, 1n, 1))
          .to.be.revertedWithCustomError(f.ledger, "AccessControlUnauthorizedAccount")
          .withArgs(who.address, role);
      }
      await expect(f.ledger.connect(f.regulator).setMerchantPolicy(9, 1n, 1))
        .to.be.revertedWithCustomError(f.ledger, "LedgerUnknownMerchant")
        .withArgs(9);
      await expect(f.ledger.connect(f.regulator).setMerchantPolicy(M1, 1n, 91))
        .to.be.revertedWithCustomError(f.ledger, "LedgerCoolingOffTooLong")
        .withArgs(M1, 91, 90);
      expect(await f.ledger.MAX_COOLING_OFF_DAYS()).to.equal(90n);
      expect(await state(f)).to.deep.equal(before);
    });
  });

  describe("the card cap", function () {
    it("books top-ups up to the cap exactly and refuses one fen more, with the values", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await f.ledger.connect(f.regulator).setMerchantPolicy(M1, CAP, 0);
      await upload(f, [record(TopUp, CARD, 300_000n), record(Consume, CARD, 50_000n), record(TopUp, CARD, 250_000n)]);
      expect((await f.ledger.accountBooks(M1, CARD)).balance).to.equal(CAP);
      const before = await state(f);
      await expect(upload(f, [record(TopUp, OTHER, 10n), record(TopUp, CARD, 1n)]))
        .to.be.revertedWithCustomError(f.ledger, "LedgerCardCapExceeded")
        .withArgs(M1, hexlify(CARD), CAP + 1n, CAP);
      // All or nothing: the first record of the refused batch is not booked either.
      expect(await state(f)).to.deep.equal(before);
    });

    it("refuses a new card opened above the cap, and binds only the capped merchant", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await f.ledger.connect(f.regulator).setMerchantPolicy(M1, CAP, 0);
      await expect(upload(f, [record(TopUp, CARD, CAP + 1n)]))
        .to.be.revertedWithCustomError(f.ledger, "LedgerCardCapExceeded")
        .withArgs(M1, hexlify(CARD), CAP + 1n, CAP);
      await upload(f, [record(TopUp, CARD, CAP * 10n)], M2);
      expect((await f.ledger.accountBooks(M2, CARD)).balance).to.equal(CAP * 10n);
    });

    it("leaves a card above a lowered cap usable: consumption and refunds book, top-ups do not", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await upload(f, [record(TopUp, CARD, 800_000n)]);
      await f.ledger.connect(f.regulator).setMerchantPolicy(M1, CAP, 0);
      await upload(f, [record(Consume, CARD, 100_000n), record(Refund, CARD, 100_000n)]);
      await expect(upload(f, [record(TopUp, CARD, 1n)]))
        .to.be.revertedWithCustomError(f.ledger, "LedgerCardCapExceeded")
        .withArgs(M1, hexlify(CARD), 600_001n, CAP);
      await f.ledger.connect(f.regulator).setMerchantPolicy(M1, 0n, 0);
      await upload(f, [record(TopUp, CARD, 1n)]);
      expect((await f.ledger.accountBooks(M1, CARD)).balance).to.equal(600_001n);
    });
  });

  describe("a card's cooling-off run", function () {
    const timeOf = async (tx: Promise<{ wait(): Promise<{ blockNumber: number } | null> }>) =>
      BigInt((await ethers.provider.getBlock((await (await tx).wait())!.blockNumber))!.timestamp);

    it("keeps the latest top-up's time, and joins top-ups within the merchant's period into one run", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await f.ledger.connect(f.regulator).setMerchantPolicy(M1, 0n, 7);
      expect((await f.ledger.accountBooks(M1, CARD)).lastTopUpAt).to.equal(0n);
      const first = await timeOf(upload(f, [record(TopUp, CARD, 1_000n)]));
      let books = await f.ledger.accountBooks(M1, CARD);
      expect([books.lastTopUpAt, books.coolingOffTopUps, books.initialAmount]).to.deep.equal([first, 1_000n, 1_000n]);
      // Consumption moves neither the time nor the run.
      await networkHelpers.time.increase(3_600);
      await upload(f, [record(Consume, CARD, 500n)]);
      books = await f.ledger.accountBooks(M1, CARD);
      expect([books.lastTopUpAt, books.coolingOffTopUps]).to.deep.equal([first, 1_000n]);
      // Exactly at the end of the period still joins; one second later starts a new run.
      await networkHelpers.time.setNextBlockTimestamp(first + 7n * DAY);
      await upload(f, [record(TopUp, CARD, 2_000n)]);
      books = await f.ledger.accountBooks(M1, CARD);
      expect([books.lastTopUpAt, books.coolingOffTopUps]).to.deep.equal([first + 7n * DAY, 3_000n]);
      await networkHelpers.time.setNextBlockTimestamp(first + 14n * DAY + 1n);
      await upload(f, [record(TopUp, CARD, 4_000n), record(TopUp, CARD, 5n)]);
      books = await f.ledger.accountBooks(M1, CARD);
      expect([books.lastTopUpAt, books.coolingOffTopUps, books.toppedUp, books.recordCount]).to.deep.equal([first + 14n * DAY + 1n, 4_005n, 7_005n, 5n]);
      expect(books.merchantId).to.equal(BigInt(M1));
      expect((await f.ledger.accountBooks(M2, CARD)).merchantId).to.equal(0n);
    });

    it("holds only the latest top-up when the merchant has no cooling-off", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await upload(f, [record(TopUp, CARD, 1_000n)]);
      await networkHelpers.time.increase(1);
      await upload(f, [record(TopUp, CARD, 2_000n)]);
      expect((await f.ledger.accountBooks(M1, CARD)).coolingOffTopUps).to.equal(2_000n);
    });
  });

  describe("settle", function () {
    it("books a refund as the next record and links it into the chain as a settlement", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await upload(f, [record(TopUp, CARD, 10_000n), record(TopUp, OTHER, 5_000n)]);
      const [count, head] = await f.ledger.chainHead();
      const expected = expectedSettlementLink(head, count + 1n, M1, hexlify(CARD), f.holder.address, Claim, 4_000n);
      await expect(f.caller.settle(M1, CARD, f.holder.address, Claim, 4_000n))
        .to.emit(f.ledger, "Settled")
        .withArgs(M1, hexlify(CARD), f.holder.address, count + 1n, Claim, 4_000n, expected);
      expect(await f.ledger.chainHead()).to.deep.equal([count + 1n, expected]);
      const card = await f.ledger.accountBooks(M1, CARD);
      expect([card.refunded, card.balance, card.recordCount]).to.deep.equal([4_000n, 6_000n, 2n]);
      const m = await f.ledger.merchantBooks(M1);
      expect([m.refunded, m.liability, m.recordCount]).to.deep.equal([4_000n, 11_000n, 3n]);
      // The link commits to every field: another reason gives another head.
      const other = expectedSettlementLink(expected, count + 2n, M1, hexlify(CARD), f.holder.address, CoolingOff, 1n);
      await f.caller.settle(M1, CARD, f.holder.address, CoolingOff, 1n);
      expect((await f.ledger.chainHead())[1]).to.equal(other);
      expect(other).to.not.equal(expectedSettlementLink(expected, count + 2n, M1, hexlify(CARD), f.holder.address, Claim, 1n));
    });

    it("books for a closed or suspended merchant too (the custody contract decides when)", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await upload(f, [record(TopUp, CARD, 10_000n)]);
      await f.ledger.connect(f.regulator).suspendMerchant(M1, id("x"));
      await f.caller.settle(M1, CARD, f.holder.address, CoolingOff, 1_000n);
      await f.ledger.connect(f.regulator).closeMerchant(M1, id("x"));
      await f.caller.settle(M1, CARD, f.holder.address, Claim, 9_000n);
      expect((await f.ledger.accountBooks(M1, CARD)).balance).to.equal(0n);
    });

    it("refuses anyone but the attached custody, a bad reason, an unknown merchant or card, and more than the balance", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await upload(f, [record(TopUp, CARD, 10_000n)]);
      const custody = await f.caller.getAddress();
      const before = await state(f);
      for (const who of [f.admin, f.regulator, f.recorder1, f.stranger]) {
        await expect(f.ledger.connect(who).settle(M1, CARD, who.address, Claim, 1n))
          .to.be.revertedWithCustomError(f.ledger, "LedgerNotCustody")
          .withArgs(who.address, custody);
      }
      await expect(f.caller.settle(M1, CARD, f.holder.address, 0, 1n))
        .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidSettlement")
        .withArgs(0);
      await expect(f.caller.settle(7, CARD, f.holder.address, Claim, 1n))
        .to.be.revertedWithCustomError(f.ledger, "LedgerUnknownMerchant")
        .withArgs(7);
      await expect(f.caller.settle(M1, OTHER, f.holder.address, Claim, 1n))
        .to.be.revertedWithCustomError(f.ledger, "LedgerUnknownAccount")
        .withArgs(hexlify(OTHER));
      await expect(f.caller.settle(M1, CARD, f.holder.address, Claim, 10_001n))
        .to.be.revertedWithCustomError(f.ledger, "LedgerInsufficientBalance")
        .withArgs(hexlify(CARD), 10_000n, 10_001n);
      await expect(f.caller.settle(M1, CARD, f.holder.address, Claim, 0n))
        .to.be.revertedWithCustomError(f.ledger, "LedgerZeroAmount")
        .withArgs(hexlify(CARD));
      await expect(f.caller.settle(M1, CARD, f.holder.address, Claim, 2n ** 200n))
        .to.be.revertedWithCustomError(f.ledger, "LedgerInsufficientBalance")
        .withArgs(hexlify(CARD), 10_000n, 2n ** 200n);
      expect(await state(f)).to.deep.equal(before);
    });

    it("refuses while the ledger is paused, and with no custody attached", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await upload(f, [record(TopUp, CARD, 10_000n)]);
      await f.ledger.connect(f.admin).pause();
      await expect(f.caller.settle(M1, CARD, f.holder.address, Claim, 1n)).to.be.revertedWithCustomError(f.ledger, "EnforcedPause");
      await f.ledger.connect(f.admin).unpause();
      const bare = await ethers.deployContract("PrepaidLedger", [f.admin.address, f.regulator.address, 86_400, 3_600]);
      await expect(bare.connect(f.stranger).settle(M1, getBytes(CARD), f.holder.address, Claim, 1n))
        .to.be.revertedWithCustomError(bare, "LedgerNotCustody")
        .withArgs(f.stranger.address, ethers.ZeroAddress);
    });
  });
});
