/**
 * Card holders' claims and cooling-off returns from a merchant's custody (issue 9 items 3 and
 * 4): holder-bound card ids, claims in full or at one pro-rata rate, one claim per card, the
 * deadline and the residual sweep, cooling-off paid from custody or owed and met — each refusal
 * with its custom error and values, changing nothing.
 */
import { anyValue } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";
import { expect } from "chai";
import { encodeBytes32String, getBytes, hexlify, id, type Signer } from "ethers";
import { network } from "hardhat";

import { cardId } from "../../src/crypto/card.js";
import { packBatch, type PackedRecord } from "../../src/ledger/codec.js";
import { Consume, TopUp, expectedCardId, record } from "../helpers/records.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const M1 = 1;
const FEN = 100_000_000n;
const DAY = 86_400n;
const WINDOW = 30n * DAY;
const REASON = encodeBytes32String("exit");
const Claim = 1;
const CoolingOff = 2;
const Closed = 4;
const Active = 1;

const secretOf = (name: string) => id(`card secret ${name}`);

async function deploy() {
  const [admin, regulator, recorder, custodian, stranger, alice, bob, carol, fund] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 86_400, 3_600]);
  const token = await ethers.deployContract("PrepaidTestToken", ["Test fen", "tFEN"]);
  const custody = await ethers.deployContract("MerchantCustody", [
    await token.getAddress(),
    await ledger.getAddress(),
    admin.address,
    regulator.address,
    86_400,
  ]);
  await ledger.connect(regulator).registerMerchant(M1, recorder.address);
  await custody.connect(admin).setCustodian(custodian.address, true);
  for (const who of [recorder, custodian, stranger]) {
    await token.mint(who.address, FEN);
    await token.connect(who).approve(await custody.getAddress(), FEN);
  }
  await ledger.connect(admin).proposeCustody(await custody.getAddress());
  const cards = {
    alice: cardId({ merchantId: M1, holder: alice.address, secret: secretOf("alice") }),
    bob: cardId({ merchantId: M1, holder: bob.address, secret: secretOf("bob") }),
    carol: cardId({ merchantId: M1, holder: carol.address, secret: secretOf("carol") }),
  };
  return { ledger, token, custody, admin, regulator, recorder, custodian, stranger, alice, bob, carol, fund, cards };
}

type Fixture = Awaited<ReturnType<typeof deploy>>;

async function upload(f: Fixture, records: PackedRecord[]) {
  const { nextSequence } = await f.ledger.merchantBooks(M1);
  return f.ledger.connect(f.recorder).recordBatch(M1, nextSequence, "0x", packBatch(records));
}

/** Alice 60,000, Bob 30,000 (after 10,000 consumed), Carol 10,000 fen: liability 100,000. */
async function withCards(f: Fixture, deposit: bigint) {
  await f.custody.connect(f.custodian).deposit(M1, deposit);
  await upload(f, [
    record(TopUp, getBytes(f.cards.alice), 60_000n),
    record(TopUp, getBytes(f.cards.bob), 40_000n),
    record(Consume, getBytes(f.cards.bob), 10_000n),
    record(TopUp, getBytes(f.cards.carol), 10_000n),
  ]);
  return f;
}

async function closedWithClaims(deposit: bigint) {
  const f = await withCards(await deploy(), deposit);
  await f.ledger.connect(f.regulator).closeMerchant(M1, REASON);
  await f.custody.connect(f.regulator).openClaims(M1, WINDOW, f.fund.address);
  return f;
}
const fullyCovered = () => closedWithClaims(150_000n);
const shortCovered = () => closedWithClaims(40_000n);
const oddCovered = () => closedWithClaims(33_333n);

async function snapshot(f: Fixture) {
  const holders = [f.alice, f.bob, f.carol, f.fund, f.recorder, f.stranger].map((s) => s.address);
  return {
    head: await f.ledger.chainHead(),
    merchant: await f.ledger.merchantBooks(M1),
    cards: await Promise.all(Object.values(f.cards).map((c) => f.ledger.accountBooks(M1, c))),
    custody: await f.custody.custodyOf(M1),
    round: await f.custody.claimsOf(M1),
    obligations: await Promise.all(Object.values(f.cards).map((c) => f.custody.obligationOf(M1, c))),
    totals: [await f.custody.totalDeposited(), await f.custody.totalWithdrawn(), await f.custody.totalPaidOut()],
    tokens: await Promise.all([await f.custody.getAddress(), ...holders].map((a) => f.token.balanceOf(a))),
  };
}

/** The fund invariant, from the token's own balance. */
async function expectFundsBalance(f: Fixture) {
  const [deposited, withdrawn, paidOut] = [await f.custody.totalDeposited(), await f.custody.totalWithdrawn(), await f.custody.totalPaidOut()];
  expect(await f.token.balanceOf(await f.custody.getAddress())).to.equal(deposited - withdrawn - paidOut);
}

async function claim(f: Fixture, who: Signer & { address: string }, name: string) {
  return f.custody.connect(who).claim(M1, secretOf(name), who.address);
}

describe("HolderProtection", function () {
  describe("card ids", function () {
    it("derive the same in the SDK, the contract and an independent ABI encoding", async function () {
      const f = await networkHelpers.loadFixture(deploy);
      const secret = secretOf("alice");
      expect(await f.custody.cardId(M1, f.alice.address, secret)).to.equal(f.cards.alice);
      expect(expectedCardId(M1, f.alice.address, secret)).to.equal(f.cards.alice);
      expect(cardId({ merchantId: M1, holder: f.bob.address, secret })).to.not.equal(f.cards.alice);
      expect(cardId({ merchantId: 2, holder: f.alice.address, secret })).to.not.equal(f.cards.alice);
    });
  });

  describe("claims", function () {
    it("pays a fully covered merchant's holders in full and books each payment as a settlement", async function () {
      const f = await networkHelpers.loadFixture(fullyCovered);
      const round = await f.custody.claimsOf(M1);
      expect([round.pool, round.liability, round.residualTo]).to.deep.equal([150_000n, 100_000n, f.fund.address]);
      const [count] = await f.ledger.chainHead();
      await expect(claim(f, f.alice, "alice"))
        .to.emit(f.custody, "Claimed")
        .withArgs(M1, f.cards.alice, f.alice.address, f.alice.address, 60_000n, 60_000n, count + 1n)
        .and.to.emit(f.ledger, "Settled");
      expect(await f.token.balanceOf(f.alice.address)).to.equal(60_000n);
      const card = await f.ledger.accountBooks(M1, f.cards.alice);
      expect([card.refunded, card.balance]).to.deep.equal([60_000n, 0n]);
      expect((await f.ledger.merchantBooks(M1)).liability).to.equal(40_000n);
      expect(await f.custody.isClaimed(M1, f.cards.alice)).to.equal(true);
      await expectFundsBalance(f);
    });

    it("pays a short merchant's holders one rate, early or late, within one fen of the exact share", async function () {
      const f = await networkHelpers.loadFixture(shortCovered);
      await claim(f, f.carol, "carol");
      await time.increase(WINDOW - 3_600n);
      await claim(f, f.alice, "alice");
      await claim(f, f.bob, "bob");
      // rate = 40,000 / 100,000
      const paid = { alice: 24_000n, bob: 12_000n, carol: 4_000n };
      for (const [name, who] of [["alice", f.alice], ["bob", f.bob], ["carol", f.carol]] as const) {
        expect(await f.token.balanceOf(who.address)).to.equal(paid[name]);
        // The unpaid rest stays on the card: what the merchant still owes its holder.
        const card = await f.ledger.accountBooks(M1, f.cards[name]);
        expect(card.refunded).to.equal(paid[name]);
      }
      const round = await f.custody.claimsOf(M1);
      expect([round.paid, round.claims]).to.deep.equal([40_000n, 3n]);
      expect((await f.custody.custodyOf(M1)).held).to.equal(0n);
      await expectFundsBalance(f);
    });

    it("rounds each share down, so the pool is never overdrawn", async function () {
      const f = await networkHelpers.loadFixture(oddCovered);
      for (const [name, who] of [["alice", f.alice], ["bob", f.bob], ["carol", f.carol]] as const) await claim(f, who, name);
      // floor(60,000 × 0.33333) = 19,999; floor(30,000 × …) = 9,999; floor(10,000 × …) = 3,333
      expect(await f.token.balanceOf(f.alice.address)).to.equal(19_999n);
      expect(await f.token.balanceOf(f.bob.address)).to.equal(9_999n);
      expect(await f.token.balanceOf(f.carol.address)).to.equal(3_333n);
      expect((await f.custody.custodyOf(M1)).held).to.equal(2n);
    });

    it("pays only the holder: not the merchant, not a stranger with the secret, not twice, not after the deadline", async function () {
      const f = await networkHelpers.loadFixture(fullyCovered);
      await claim(f, f.alice, "alice");
      const before = await snapshot(f);
      await expect(claim(f, f.alice, "alice")).to.be.revertedWithCustomError(f.custody, "CustodyAlreadyClaimed").withArgs(M1, f.cards.alice);
      // Whoever else calls with Bob's secret names another card id, with no money on it.
      for (const who of [f.recorder, f.stranger, f.alice]) {
        const wrong = cardId({ merchantId: M1, holder: who.address, secret: secretOf("bob") });
        await expect(f.custody.connect(who).claim(M1, secretOf("bob"), who.address))
          .to.be.revertedWithCustomError(f.custody, "CustodyNothingOwed")
          .withArgs(M1, wrong);
      }
      await expect(f.custody.connect(f.bob).claim(M1, secretOf("bob"), ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.custody,
        "CustodyZeroAddress",
      );
      expect(await snapshot(f)).to.deep.equal(before);
      const { deadline } = await f.custody.claimsOf(M1);
      await time.increaseTo(deadline + 1n);
      await expect(claim(f, f.bob, "bob")).to.be.revertedWithCustomError(f.custody, "CustodyClaimsEnded").withArgs(M1, deadline);
    });

    it("opens only for a regulator, on a closed merchant, once, with a window of 7 days to 5 years", async function () {
      const f = await withCards(await deploy(), 50_000n);
      const role = await f.custody.REGULATOR_ROLE();
      await expect(f.custody.connect(f.regulator).openClaims(M1, WINDOW, f.fund.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyWrongStatus")
        .withArgs(M1, Active);
      await expect(f.custody.connect(f.regulator).openClaims(5, WINDOW, f.fund.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyUnknownMerchant")
        .withArgs(5);
      await expect(claim(f, f.alice, "alice")).to.be.revertedWithCustomError(f.custody, "CustodyClaimsNotOpen").withArgs(M1);
      await f.ledger.connect(f.regulator).closeMerchant(M1, REASON);
      for (const who of [f.admin, f.recorder, f.custodian, f.stranger]) {
        await expect(f.custody.connect(who).openClaims(M1, WINDOW, f.fund.address))
          .to.be.revertedWithCustomError(f.custody, "AccessControlUnauthorizedAccount")
          .withArgs(who.address, role);
      }
      const [min, max] = [await f.custody.MIN_CLAIM_WINDOW(), await f.custody.MAX_CLAIM_WINDOW()];
      for (const window of [min - 1n, max + 1n, 0n]) {
        await expect(f.custody.connect(f.regulator).openClaims(M1, window, f.fund.address))
          .to.be.revertedWithCustomError(f.custody, "CustodyClaimWindowOutOfRange")
          .withArgs(window, min, max);
      }
      await expect(f.custody.connect(f.regulator).openClaims(M1, WINDOW, ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.custody,
        "CustodyZeroAddress",
      );
      await expect(f.custody.connect(f.regulator).openClaims(M1, min, f.fund.address)).to.emit(f.custody, "ClaimsOpened");
      await expect(f.custody.connect(f.regulator).openClaims(M1, WINDOW, f.fund.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyClaimsAlreadyOpen")
        .withArgs(M1);
      await expect(f.custody.connect(f.custodian).deposit(M1, 1n))
        .to.be.revertedWithCustomError(f.custody, "CustodyClaimsOpen")
        .withArgs(M1);
    });

    it("sends what nobody claimed to the regulator's recipient after the deadline, once, by anyone", async function () {
      const f = await networkHelpers.loadFixture(fullyCovered);
      await claim(f, f.alice, "alice");
      const { deadline } = await f.custody.claimsOf(M1);
      await expect(f.custody.connect(f.stranger).sweepUnclaimed(M1))
        .to.be.revertedWithCustomError(f.custody, "CustodyClaimsNotEnded")
        .withArgs(M1, deadline);
      await time.increaseTo(deadline + 1n);
      await expect(f.custody.connect(f.stranger).sweepUnclaimed(M1))
        .to.emit(f.custody, "ClaimsSwept")
        .withArgs(M1, f.fund.address, 90_000n, f.stranger.address);
      expect(await f.token.balanceOf(f.fund.address)).to.equal(90_000n);
      expect((await f.custody.claimsOf(M1)).swept).to.equal(true);
      await expect(f.custody.sweepUnclaimed(M1)).to.be.revertedWithCustomError(f.custody, "CustodyClaimsSwept").withArgs(M1);
      await expect(f.custody.sweepUnclaimed(3)).to.be.revertedWithCustomError(f.custody, "CustodyClaimsNotOpen").withArgs(3);
      await expectFundsBalance(f);
    });
  });

  describe("cooling-off", function () {
    async function withPolicy(deposit: bigint, days = 7) {
      const f = await deploy();
      await f.ledger.connect(f.regulator).setMerchantPolicy(M1, 0n, days);
      return withCards(f, deposit);
    }
    const covered = () => withPolicy(150_000n);
    const uncovered = () => withPolicy(5_000n);

    it("returns a card's unused top-up from custody, booked as a settlement", async function () {
      const f = await networkHelpers.loadFixture(covered);
      const [count] = await f.ledger.chainHead();
      await expect(f.custody.connect(f.alice).requestCoolingOff(M1, secretOf("alice"), f.alice.address))
        .to.emit(f.custody, "CoolingOffPaid")
        .withArgs(M1, f.cards.alice, f.alice.address, f.alice.address, 60_000n, count + 1n);
      const [event] = await f.ledger.queryFilter(f.ledger.filters.Settled());
      expect(event.args.reason).to.equal(BigInt(CoolingOff));
      expect((await f.ledger.accountBooks(M1, f.cards.alice)).balance).to.equal(0n);
      // Bob used 10,000 of his 40,000: the unused 30,000 comes back.
      await f.custody.connect(f.bob).requestCoolingOff(M1, secretOf("bob"), f.bob.address);
      expect(await f.token.balanceOf(f.bob.address)).to.equal(30_000n);
      await expect(f.custody.connect(f.bob).requestCoolingOff(M1, secretOf("bob"), f.bob.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyNothingOwed")
        .withArgs(M1, f.cards.bob);
      await expectFundsBalance(f);
    });

    const carol = (f: Fixture) => () => f.custody.connect(f.carol).requestCoolingOff(M1, secretOf("carol"), f.carol.address);

    it("returns a later top-up within its own period after the first one's has ended, and only that top-up", async function () {
      const f = await networkHelpers.loadFixture(covered);
      await time.increase(8n * DAY);
      const [ended] = await f.custody.coolingOffQuote(M1, f.cards.carol);
      expect(ended).to.equal(0n);
      await upload(f, [record(TopUp, getBytes(f.cards.carol), 50_000n), record(Consume, getBytes(f.cards.carol), 4_000n)]);
      const books = await f.ledger.accountBooks(M1, f.cards.carol);
      expect([books.coolingOffTopUps, books.lastTopUpAt]).to.deep.equal([50_000n, BigInt(await time.latest())]);
      // The 4,000 consumed came out of the older 10,000: all 50,000 is unused.
      expect(await f.custody.coolingOffQuote(M1, f.cards.carol)).to.deep.equal([50_000n, books.lastTopUpAt + 7n * DAY]);
      await expect(carol(f)()).to.emit(f.custody, "CoolingOffPaid").withArgs(M1, f.cards.carol, f.carol.address, f.carol.address, 50_000n, anyValue);
      const after = await f.ledger.accountBooks(M1, f.cards.carol);
      expect([after.balance, after.coolingOffTopUps]).to.deep.equal([6_000n, 0n]);
      // The older money stays on the card: nothing of the run is left to return.
      await expect(carol(f)()).to.be.revertedWithCustomError(f.custody, "CustodyNothingToReturn").withArgs(M1, f.cards.carol);
      expect(await f.custody.coolingOffQuote(M1, f.cards.carol)).to.deep.equal([0n, books.lastTopUpAt + 7n * DAY]);
      await expectFundsBalance(f);
    });

    it("joins a top-up made within the period into one run, returnable until the period after the latest", async function () {
      const f = await networkHelpers.loadFixture(covered);
      const first = (await f.ledger.accountBooks(M1, f.cards.carol)).lastTopUpAt;
      await time.increase(3n * DAY);
      await upload(f, [record(TopUp, getBytes(f.cards.carol), 20_000n)]);
      const latest = BigInt(await time.latest());
      // Six days on, the first top-up's own period is over, but it joined the second's run.
      await time.increaseTo(first + 7n * DAY + 1n);
      await upload(f, [record(Consume, getBytes(f.cards.carol), 1_000n)]);
      const books = await f.ledger.accountBooks(M1, f.cards.carol);
      expect([books.coolingOffTopUps, books.lastTopUpAt, books.balance]).to.deep.equal([30_000n, latest, 29_000n]);
      await expect(carol(f)()).to.emit(f.custody, "CoolingOffPaid").withArgs(M1, f.cards.carol, f.carol.address, f.carol.address, 29_000n, anyValue);
      await expectFundsBalance(f);
    });

    it("starts a new run for a top-up after the period, and ends every right a period after the latest top-up", async function () {
      const f = await networkHelpers.loadFixture(covered);
      await time.increase(7n * DAY + 1n);
      await upload(f, [record(TopUp, getBytes(f.cards.carol), 20_000n)]);
      expect((await f.ledger.accountBooks(M1, f.cards.carol)).coolingOffTopUps).to.equal(20_000n);
      const { lastTopUpAt } = await f.ledger.accountBooks(M1, f.cards.carol);
      await time.increaseTo(lastTopUpAt + 7n * DAY + 1n);
      await expect(carol(f)()).to.be.revertedWithCustomError(f.custody, "CustodyCoolingOffEnded").withArgs(M1, f.cards.carol, lastTopUpAt + 7n * DAY);
    });

    it("refuses after the period, without a cooling-off right, on a closed merchant, and for another's card", async function () {
      const f = await networkHelpers.loadFixture(covered);
      const before = await snapshot(f);
      const alice = () => f.custody.connect(f.alice).requestCoolingOff(M1, secretOf("alice"), f.alice.address);
      const wrong = cardId({ merchantId: M1, holder: f.stranger.address, secret: secretOf("alice") });
      await expect(f.custody.connect(f.stranger).requestCoolingOff(M1, secretOf("alice"), f.stranger.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyNothingOwed")
        .withArgs(M1, wrong);
      const { lastTopUpAt } = await f.ledger.accountBooks(M1, f.cards.alice);
      await time.increaseTo(lastTopUpAt + 7n * DAY + 1n);
      await expect(alice()).to.be.revertedWithCustomError(f.custody, "CustodyCoolingOffEnded").withArgs(M1, f.cards.alice, lastTopUpAt + 7n * DAY);
      expect((await snapshot(f)).cards).to.deep.equal(before.cards);
      await f.ledger.connect(f.regulator).setMerchantPolicy(M1, 0n, 0);
      await expect(alice()).to.be.revertedWithCustomError(f.custody, "CustodyNoCoolingOff").withArgs(M1);
      await f.ledger.connect(f.regulator).closeMerchant(M1, REASON);
      await expect(alice()).to.be.revertedWithCustomError(f.custody, "CustodyWrongStatus").withArgs(M1, Closed);
      expect((await snapshot(f)).tokens).to.deep.equal(before.tokens);
    });

    it("takes an owed return out of the run when it is met, whatever was topped up meanwhile", async function () {
      const f = await networkHelpers.loadFixture(uncovered);
      await carol(f)();
      expect((await f.custody.obligationOf(M1, f.cards.carol)).amount).to.equal(10_000n);
      await upload(f, [record(TopUp, getBytes(f.cards.carol), 3_000n)]);
      expect((await f.ledger.accountBooks(M1, f.cards.carol)).coolingOffTopUps).to.equal(13_000n);
      await f.custody.connect(f.recorder).meetObligation(M1, f.cards.carol);
      const books = await f.ledger.accountBooks(M1, f.cards.carol);
      expect([books.balance, books.coolingOffTopUps]).to.deep.equal([3_000n, 3_000n]);
      expect(await f.custody.coolingOffQuote(M1, f.cards.carol)).to.deep.equal([3_000n, books.lastTopUpAt + 7n * DAY]);
    });

    it("quotes nothing for an unopened card, a merchant without cooling-off, a pending return or a closed merchant", async function () {
      const f = await networkHelpers.loadFixture(uncovered);
      const unopened = cardId({ merchantId: M1, holder: f.stranger.address, secret: secretOf("x") });
      expect(await f.custody.coolingOffQuote(M1, unopened)).to.deep.equal([0n, 0n]);
      const { lastTopUpAt } = await f.ledger.accountBooks(M1, f.cards.alice);
      expect(await f.custody.coolingOffQuote(M1, f.cards.alice)).to.deep.equal([60_000n, lastTopUpAt + 7n * DAY]);
      await f.custody.connect(f.alice).requestCoolingOff(M1, secretOf("alice"), f.alice.address);
      expect(await f.custody.coolingOffQuote(M1, f.cards.alice)).to.deep.equal([0n, lastTopUpAt + 7n * DAY]);
      expect((await f.custody.coolingOffQuote(M1, f.cards.bob))[0]).to.equal(30_000n);
      await f.ledger.connect(f.regulator).closeMerchant(M1, REASON);
      expect((await f.custody.coolingOffQuote(M1, f.cards.bob))[0]).to.equal(0n);
      await f.ledger.connect(f.regulator).setMerchantPolicy(M1, 0n, 0);
      expect(await f.custody.coolingOffQuote(M1, f.cards.bob)).to.deep.equal([0n, 0n]);
    });

    it("owes what custody cannot cover, by a due date, until anyone pays it to the holder", async function () {
      const f = await networkHelpers.loadFixture(uncovered);
      const tx = f.custody.connect(f.alice).requestCoolingOff(M1, secretOf("alice"), f.alice.address);
      await expect(tx).to.emit(f.custody, "CoolingOffOwed");
      const owed = await f.custody.obligationOf(M1, f.cards.alice);
      const now = BigInt(await time.latest());
      expect([owed.holder, owed.to, owed.amount, owed.dueBy]).to.deep.equal([f.alice.address, f.alice.address, 60_000n, now + 15n * DAY]);
      await expect(f.custody.connect(f.alice).requestCoolingOff(M1, secretOf("alice"), f.alice.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyObligationPending")
        .withArgs(M1, f.cards.alice, 60_000n, owed.dueBy);
      await expect(f.custody.meetObligation(M1, f.cards.bob)).to.be.revertedWithCustomError(f.custody, "CustodyNoObligation").withArgs(M1, f.cards.bob);
      const held = (await f.custody.custodyOf(M1)).held;
      await expect(f.custody.connect(f.recorder).meetObligation(M1, f.cards.alice))
        .to.emit(f.custody, "ObligationMet")
        .withArgs(M1, f.cards.alice, f.recorder.address, f.alice.address, 60_000n, (await f.ledger.chainHead())[0] + 1n);
      expect(await f.token.balanceOf(f.alice.address)).to.equal(60_000n);
      expect((await f.custody.custodyOf(M1)).held).to.equal(held);
      expect((await f.ledger.accountBooks(M1, f.cards.alice)).balance).to.equal(0n);
      expect((await f.custody.obligationOf(M1, f.cards.alice)).amount).to.equal(0n);
      await expectFundsBalance(f);
    });

    it("folds an owed return into the holder's claim when the merchant closes", async function () {
      const f = await networkHelpers.loadFixture(uncovered);
      await f.custody.connect(f.alice).requestCoolingOff(M1, secretOf("alice"), f.alice.address);
      await f.ledger.connect(f.regulator).closeMerchant(M1, REASON);
      await f.custody.connect(f.regulator).openClaims(M1, WINDOW, f.fund.address);
      // rate 5,000 / 100,000: Alice's 60,000 card gets 3,000, and nothing stays owed.
      await claim(f, f.alice, "alice");
      expect(await f.token.balanceOf(f.alice.address)).to.equal(3_000n);
      expect((await f.custody.obligationOf(M1, f.cards.alice)).amount).to.equal(0n);
      expect(hexlify((await f.ledger.queryFilter(f.ledger.filters.Settled()))[0].args.account)).to.equal(f.cards.alice);
      expect((await f.ledger.queryFilter(f.ledger.filters.Settled()))[0].args.reason).to.equal(BigInt(Claim));
    });
  });
});
