/**
 * MerchantCustody and the ledger's coverage check (issue 9 item 1): deposits by the merchant or
 * a custodian (also with an EIP-2612 permit), the regulator's coverage ratio, ratio × liability
 * rounded up, batches refused exactly past the boundary, withdrawals only above the requirement
 * and never once closed, and the custody link's governance on the ledger.
 */
import { expect } from "chai";
import { encodeBytes32String, Signature, ZeroAddress, ZeroHash, type Signer } from "ethers";
import { network } from "hardhat";

import { packBatch, type PackedRecord } from "../../src/ledger/codec.js";
import { Consume, Refund, TopUp, account, record } from "../helpers/records.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const M1 = 1;
const M2 = 2;
const ADMIN_DELAY = 86_400;
const CARD = account("custody-card");
const FEN = 100_000_000n;
const REASON = encodeBytes32String("exit");

async function deployCustody() {
  const [admin, regulator, recorder1, recorder2, custodian, stranger, newAdmin] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, ADMIN_DELAY, 3_600]);
  const token = await ethers.deployContract("PrepaidTestToken", ["Test fen", "tFEN"]);
  const custody = await ethers.deployContract("MerchantCustody", [
    await token.getAddress(),
    await ledger.getAddress(),
    admin.address,
    regulator.address,
    ADMIN_DELAY,
  ]);
  await ledger.connect(regulator).registerMerchant(M1, recorder1.address);
  await ledger.connect(regulator).registerMerchant(M2, recorder2.address);
  await custody.connect(admin).setCustodian(custodian.address, true);
  for (const who of [recorder1, recorder2, custodian, stranger]) {
    await token.mint(who.address, FEN);
    await token.connect(who).approve(await custody.getAddress(), FEN);
  }
  await ledger.connect(admin).proposeCustody(await custody.getAddress());
  return { ledger, token, custody, admin, regulator, recorder1, recorder2, custodian, stranger, newAdmin };
}

type Fixture = Awaited<ReturnType<typeof deployCustody>>;

async function upload(f: Fixture, records: PackedRecord[], merchantId = M1, by: Signer = f.recorder1) {
  const { nextSequence } = await f.ledger.merchantBooks(merchantId);
  return f.ledger.connect(by).recordBatch(merchantId, nextSequence, "0x", packBatch(records));
}

/** Everything a refused call must leave untouched, on both contracts and the token. */
async function snapshot(f: Fixture) {
  const custodyAddress = await f.custody.getAddress();
  return {
    head: await f.ledger.chainHead(),
    merchants: [await f.ledger.merchantBooks(M1), await f.ledger.merchantBooks(M2)],
    card: await f.ledger.accountBooks(M1, CARD),
    custody: [await f.custody.custodyOf(M1), await f.custody.custodyOf(M2)],
    totals: [await f.custody.totalDeposited(), await f.custody.totalWithdrawn()],
    balances: await Promise.all(
      [custodyAddress, f.recorder1.address, f.recorder2.address, f.custodian.address, f.stranger.address].map((a) => f.token.balanceOf(a)),
    ),
    link: [await f.ledger.custody(), await f.ledger.pendingCustody()],
  };
}

/** ceil(ratio × liability / 10,000), computed independently of the contract. */
const required = (ratioBps: bigint, liability: bigint) => (ratioBps * liability + 9_999n) / 10_000n;

describe("MerchantCustody", function () {
  describe("deployment", function () {
    it("binds the token and the ledger, and grants the admin and the regulator", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      expect(await f.custody.TOKEN()).to.equal(await f.token.getAddress());
      expect(await f.custody.LEDGER()).to.equal(await f.ledger.getAddress());
      expect(await f.custody.defaultAdmin()).to.equal(f.admin.address);
      expect(await f.custody.defaultAdminDelay()).to.equal(BigInt(ADMIN_DELAY));
      expect(await f.custody.hasRole(await f.custody.REGULATOR_ROLE(), f.regulator.address)).to.equal(true);
      expect(await f.custody.REGULATOR_ROLE()).to.equal(await f.ledger.REGULATOR_ROLE());
      expect(await f.custody.CUSTODIAN_ROLE()).to.equal(ethers.id("prepaid-ledger.custodian"));
      expect(await f.custody.MAX_RATIO_BPS()).to.equal(10_000n);
      expect(await f.token.decimals()).to.equal(2n);
    });

    it("refuses a zero token, ledger, admin or regulator", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      const [t, l, a, r] = [await f.token.getAddress(), await f.ledger.getAddress(), f.admin.address, f.regulator.address];
      const factory = await ethers.getContractFactory("MerchantCustody");
      for (const args of [
        [ZeroAddress, l, a, r],
        [t, ZeroAddress, a, r],
        [t, l, ZeroAddress, r],
        [t, l, a, ZeroAddress],
      ]) {
        await expect(factory.deploy(...(args as [string, string, string, string]), 0)).to.be.revertedWithCustomError(
          f.custody,
          "CustodyZeroAddress",
        );
      }
    });

    it("refuses a token that does not count fen (2 decimals), naming its decimals", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      const factory = await ethers.getContractFactory("MerchantCustody");
      const [l, a, r] = [await f.ledger.getAddress(), f.admin.address, f.regulator.address];
      for (const decimals of [0n, 6n, 18n]) {
        const token = await ethers.deployContract("TestTokenWithDecimals", [decimals]);
        await expect(factory.deploy(await token.getAddress(), l, a, r, 0))
          .to.be.revertedWithCustomError(f.custody, "CustodyTokenNotFen")
          .withArgs(await token.getAddress(), decimals);
      }
      // A contract without decimals() (the ledger itself) counts as 0.
      await expect(factory.deploy(l, l, a, r, 0)).to.be.revertedWithCustomError(f.custody, "CustodyTokenNotFen").withArgs(l, 0n);
      const two = await ethers.deployContract("TestTokenWithDecimals", [2n]);
      await factory.deploy(await two.getAddress(), l, a, r, 0); // 2 decimals: taken
    });
  });

  describe("deposits", function () {
    it("takes a deposit from the merchant's recorder and from a custodian on its behalf", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await expect(f.custody.connect(f.recorder1).deposit(M1, 700n))
        .to.emit(f.custody, "Deposited")
        .withArgs(M1, f.recorder1.address, 700n, 700n);
      await expect(f.custody.connect(f.custodian).deposit(M1, 300n))
        .to.emit(f.custody, "Deposited")
        .withArgs(M1, f.custodian.address, 300n, 1_000n);
      await expect(f.custody.connect(f.custodian).deposit(M2, 5n)).to.changeTokenBalances(
        ethers,
        f.token,
        [f.custodian, f.custody],
        [-5n, 5n],
      );
      expect((await f.custody.custodyOf(M1)).held).to.equal(1_000n);
      expect((await f.custody.custodyOf(M2)).held).to.equal(5n);
      expect(await f.custody.totalDeposited()).to.equal(1_005n);
      expect(await f.token.balanceOf(await f.custody.getAddress())).to.equal(1_005n);
    });

    it("takes a deposit with an EIP-2612 permit instead of an approval, and one whose permit was front-run", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      const spender = await f.custody.getAddress();
      await f.token.connect(f.recorder1).approve(spender, 0n);
      const sign = async (value: bigint) => {
        const deadline = BigInt(await time.latest()) + 3_600n;
        const { chainId } = await ethers.provider.getNetwork();
        const domain = { name: "Test fen", version: "1", chainId, verifyingContract: await f.token.getAddress() };
        const types = {
          Permit: [
            { name: "owner", type: "address" },
            { name: "spender", type: "address" },
            { name: "value", type: "uint256" },
            { name: "nonce", type: "uint256" },
            { name: "deadline", type: "uint256" },
          ],
        };
        const nonce = await f.token.nonces(f.recorder1.address);
        const owner = f.recorder1.address;
        const sig = Signature.from(await f.recorder1.signTypedData(domain, types, { owner, spender, value, nonce, deadline }));
        return { deadline, sig };
      };
      const first = await sign(250n);
      await expect(f.custody.connect(f.recorder1).depositWithPermit(M1, 250n, first.deadline, first.sig.v, first.sig.r, first.sig.s))
        .to.emit(f.custody, "Deposited")
        .withArgs(M1, f.recorder1.address, 250n, 250n);
      // Someone submits the next permit to the token first; the deposit still goes through.
      const second = await sign(40n);
      await f.token
        .connect(f.stranger)
        .permit(f.recorder1.address, spender, 40n, second.deadline, second.sig.v, second.sig.r, second.sig.s);
      await expect(f.custody.connect(f.recorder1).depositWithPermit(M1, 40n, second.deadline, second.sig.v, second.sig.r, second.sig.s))
        .to.emit(f.custody, "Deposited")
        .withArgs(M1, f.recorder1.address, 40n, 290n);
      // The same permit again: it is used and its allowance spent, so the token refuses the pull.
      const before = await snapshot(f);
      await expect(
        f.custody.connect(f.recorder1).depositWithPermit(M1, 40n, second.deadline, second.sig.v, second.sig.r, second.sig.s),
      ).to.be.revertedWithCustomError(f.token, "ERC20InsufficientAllowance");
      expect(await snapshot(f)).to.deep.equal(before);
    });

    it("refuses every other depositor, nothing, and an unknown merchant, and changes nothing", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      const before = await snapshot(f);
      for (const caller of [f.recorder2, f.stranger, f.admin, f.regulator]) {
        await expect(f.custody.connect(caller).deposit(M1, 1n))
          .to.be.revertedWithCustomError(f.custody, "CustodyUnauthorizedDepositor")
          .withArgs(caller.address, M1);
        await expect(f.custody.connect(caller).depositWithPermit(M1, 1n, 0n, 27, ZeroHash, ZeroHash))
          .to.be.revertedWithCustomError(f.custody, "CustodyUnauthorizedDepositor")
          .withArgs(caller.address, M1);
      }
      await expect(f.custody.connect(f.recorder1).deposit(M1, 0n)).to.be.revertedWithCustomError(f.custody, "CustodyZeroAmount").withArgs(M1);
      await expect(f.custody.connect(f.custodian).deposit(99, 1n)).to.be.revertedWithCustomError(f.custody, "CustodyUnknownMerchant").withArgs(99);
      expect(await snapshot(f)).to.deep.equal(before);
    });

    it("still takes deposits for a suspended, winding-down or closed merchant (more cover for its card holders)", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await f.ledger.connect(f.regulator).suspendMerchant(M1, REASON);
      await f.custody.connect(f.custodian).deposit(M1, 1n);
      await f.ledger.connect(f.regulator).windDownMerchant(M1, REASON);
      await f.custody.connect(f.recorder1).deposit(M1, 1n);
      await f.ledger.connect(f.regulator).closeMerchant(M1, REASON);
      await expect(f.custody.connect(f.custodian).deposit(M1, 1n)).to.emit(f.custody, "Deposited").withArgs(M1, f.custodian.address, 1n, 3n);
    });
  });

  describe("coverage ratio", function () {
    it("is set by a regulator only, 0 to 10,000 basis points, with the previous value in the event", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await expect(f.custody.connect(f.regulator).setCoverageRatio(M1, 2_500))
        .to.emit(f.custody, "CoverageRatioSet")
        .withArgs(M1, f.regulator.address, 0, 2_500);
      await expect(f.custody.connect(f.regulator).setCoverageRatio(M1, 10_000))
        .to.emit(f.custody, "CoverageRatioSet")
        .withArgs(M1, f.regulator.address, 2_500, 10_000);
      const before = await snapshot(f);
      await expect(f.custody.connect(f.regulator).setCoverageRatio(M1, 10_001))
        .to.be.revertedWithCustomError(f.custody, "CustodyRatioTooHigh")
        .withArgs(M1, 10_001, 10_000);
      await expect(f.custody.connect(f.regulator).setCoverageRatio(99, 1))
        .to.be.revertedWithCustomError(f.custody, "CustodyUnknownMerchant")
        .withArgs(99);
      const role = await f.custody.REGULATOR_ROLE();
      for (const caller of [f.admin, f.recorder1, f.custodian, f.stranger]) {
        await expect(f.custody.connect(caller).setCoverageRatio(M1, 0))
          .to.be.revertedWithCustomError(f.custody, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, role);
      }
      expect(await snapshot(f)).to.deep.equal(before);
    });

    it("requires ratio × liability, rounded up", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await f.custody.connect(f.regulator).setCoverageRatio(M1, 3_333);
      for (const [liability, expected] of [
        [0n, 0n],
        [1n, 1n],
        [3n, 1n],
        [4n, 2n],
        [10_000n, 3_333n],
        [10_001n, 3_334n],
        [(1n << 80n) - 1n, required(3_333n, (1n << 80n) - 1n)],
      ] as const) {
        expect(await f.custody.coverage(M1, liability)).to.deep.equal([expected, 0n]);
        expect(expected).to.equal(required(3_333n, liability));
      }
      await f.custody.connect(f.regulator).setCoverageRatio(M1, 10_000);
      expect(await f.custody.coverage(M1, 12_345n)).to.deep.equal([12_345n, 0n]);
      await f.custody.connect(f.regulator).setCoverageRatio(M1, 1);
      expect(await f.custody.coverage(M1, 1n)).to.deep.equal([1n, 0n]);
      expect(await f.custody.coverage(M1, 10_001n)).to.deep.equal([2n, 0n]);
      // custodyOf reads the liability from the ledger.
      await f.custody.connect(f.recorder1).deposit(M1, 10n);
      await upload(f, [record(TopUp, CARD, 10_001n)]);
      expect(await f.custody.custodyOf(M1)).to.deep.equal([10n, 1n, 10_001n, 2n, 8n]);
    });
  });

  describe("the ledger's coverage check", function () {
    it("books a batch that leaves custody exactly at the requirement, and refuses one fen more; nothing changes", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await f.custody.connect(f.regulator).setCoverageRatio(M1, 5_000);
      await f.custody.connect(f.recorder1).deposit(M1, 500n);
      await expect(upload(f, [record(TopUp, CARD, 999n), record(TopUp, CARD, 1n)])).to.emit(f.ledger, "BatchRecorded");
      const before = await snapshot(f);
      // 1,001 × 50 % = 500.5, rounded up to 501 > 500.
      await expect(upload(f, [record(TopUp, CARD, 1n)]))
        .to.be.revertedWithCustomError(f.ledger, "LedgerUndercovered")
        .withArgs(M1, 1_001n, 501n, 500n);
      expect(await snapshot(f)).to.deep.equal(before);
      // One more fen of custody, and the same batch books.
      await f.custody.connect(f.custodian).deposit(M1, 1n);
      await expect(upload(f, [record(TopUp, CARD, 1n)])).to.emit(f.ledger, "BatchRecorded");
    });

    it("checks the liability after the whole batch, whatever its order", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await f.custody.connect(f.regulator).setCoverageRatio(M1, 10_000);
      await f.custody.connect(f.recorder1).deposit(M1, 100n);
      // Passes 100 in the middle of the batch, ends at 100: books.
      await expect(upload(f, [record(TopUp, CARD, 150n), record(Consume, CARD, 50n)])).to.emit(f.ledger, "BatchRecorded");
      await expect(upload(f, [record(Consume, CARD, 10n), record(TopUp, CARD, 11n)]))
        .to.be.revertedWithCustomError(f.ledger, "LedgerUndercovered")
        .withArgs(M1, 101n, 101n, 100n);
    });

    it("refuses a batch beyond a zero deposit once a ratio is set, and checks no one with a 0 ratio", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await expect(upload(f, [record(TopUp, CARD, 1_000_000n)])).to.emit(f.ledger, "BatchRecorded");
      await f.custody.connect(f.regulator).setCoverageRatio(M1, 1);
      await expect(upload(f, [record(TopUp, CARD, 1n)]))
        .to.be.revertedWithCustomError(f.ledger, "LedgerUndercovered")
        .withArgs(M1, 1_000_001n, 101n, 0n);
      await expect(upload(f, [record(TopUp, CARD, 1n)], M2, f.recorder2)).to.emit(f.ledger, "BatchRecorded");
    });

    it("never refuses a batch that lowers the liability: an under-covered merchant still serves and pays back", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await upload(f, [record(TopUp, CARD, 1_000n)]);
      await f.custody.connect(f.regulator).setCoverageRatio(M1, 10_000);
      await expect(upload(f, [record(Consume, CARD, 100n)])).to.emit(f.ledger, "BatchRecorded");
      await expect(upload(f, [record(Refund, CARD, 100n)])).to.emit(f.ledger, "BatchRecorded");
      // Top-ups that are outweighed within the batch lower the liability too.
      await expect(upload(f, [record(TopUp, CARD, 10n), record(Consume, CARD, 11n)])).to.emit(f.ledger, "BatchRecorded");
      await expect(upload(f, [record(TopUp, CARD, 10n), record(Consume, CARD, 10n)])).to.emit(f.ledger, "BatchRecorded");
      await expect(upload(f, [record(TopUp, CARD, 11n), record(Consume, CARD, 10n)]))
        .to.be.revertedWithCustomError(f.ledger, "LedgerUndercovered")
        .withArgs(M1, 800n, 800n, 0n);
    });

    it("checks nothing while no custody is attached", async function () {
      const [admin, regulator, recorder] = await ethers.getSigners();
      const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
      await ledger.connect(regulator).registerMerchant(M1, recorder.address);
      expect(await ledger.custody()).to.equal(ZeroAddress);
      await expect(ledger.connect(recorder).recordBatch(M1, 1, "0x", packBatch([record(TopUp, CARD, 1_000_000n)]))).to.emit(
        ledger,
        "BatchRecorded",
      );
    });
  });

  describe("withdrawals", function () {
    it("pays only what is above the requirement, which consumption and refunds lower as they are booked", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await f.custody.connect(f.regulator).setCoverageRatio(M1, 5_000);
      await f.custody.connect(f.recorder1).deposit(M1, 500n);
      await upload(f, [record(TopUp, CARD, 1_000n)]);
      await expect(f.custody.connect(f.recorder1).withdraw(M1, 1n, f.recorder1.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyWithdrawalTooLarge")
        .withArgs(M1, 1n, 500n, 500n);
      await upload(f, [record(Consume, CARD, 199n)]); // liability 801: requires 401 (400.5 up)
      expect((await f.custody.custodyOf(M1)).withdrawable).to.equal(99n);
      const before = await snapshot(f);
      await expect(f.custody.connect(f.recorder1).withdraw(M1, 100n, f.stranger.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyWithdrawalTooLarge")
        .withArgs(M1, 100n, 500n, 401n);
      expect(await snapshot(f)).to.deep.equal(before);
      await expect(f.custody.connect(f.recorder1).withdraw(M1, 99n, f.stranger.address))
        .to.emit(f.custody, "Withdrawn")
        .withArgs(M1, f.recorder1.address, f.stranger.address, 99n, 401n, 401n);
      expect(await f.token.balanceOf(f.stranger.address)).to.equal(FEN + 99n);
      await upload(f, [record(Refund, CARD, 801n)]);
      expect(await f.custody.custodyOf(M1)).to.deep.equal([401n, 5_000n, 0n, 0n, 401n]);
      await expect(f.custody.connect(f.recorder1).withdraw(M1, 401n, f.recorder1.address)).to.changeTokenBalances(
        ethers,
        f.token,
        [f.custody, f.recorder1],
        [-401n, 401n],
      );
      expect([await f.custody.totalDeposited(), await f.custody.totalWithdrawn()]).to.deep.equal([500n, 500n]);
    });

    it("refuses every other withdrawer, nothing, a zero recipient and an unknown merchant; nothing changes", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await f.custody.connect(f.recorder1).deposit(M1, 500n);
      const before = await snapshot(f);
      for (const caller of [f.recorder2, f.custodian, f.regulator, f.admin, f.stranger]) {
        await expect(f.custody.connect(caller).withdraw(M1, 1n, caller.address))
          .to.be.revertedWithCustomError(f.custody, "CustodyUnauthorizedWithdrawer")
          .withArgs(caller.address, M1);
      }
      await expect(f.custody.connect(f.recorder1).withdraw(M1, 0n, f.recorder1.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyZeroAmount")
        .withArgs(M1);
      await expect(f.custody.connect(f.recorder1).withdraw(M1, 1n, ZeroAddress)).to.be.revertedWithCustomError(f.custody, "CustodyZeroAddress");
      await expect(f.custody.connect(f.recorder1).withdraw(99, 1n, f.recorder1.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyUnknownMerchant")
        .withArgs(99);
      await expect(f.custody.connect(f.recorder1).withdraw(M1, 501n, f.recorder1.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyWithdrawalTooLarge")
        .withArgs(M1, 501n, 500n, 0n);
      expect(await snapshot(f)).to.deep.equal(before);
    });

    it("refuses any withdrawal by a merchant under its requirement (its ratio was raised)", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await f.custody.connect(f.recorder1).deposit(M1, 100n);
      await upload(f, [record(TopUp, CARD, 1_000n)]);
      await f.custody.connect(f.regulator).setCoverageRatio(M1, 2_000);
      await expect(f.custody.connect(f.recorder1).withdraw(M1, 1n, f.recorder1.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyWithdrawalTooLarge")
        .withArgs(M1, 1n, 100n, 200n);
      expect((await f.custody.custodyOf(M1)).withdrawable).to.equal(0n);
    });

    it("lets a winding-down merchant take back what each refund frees", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await f.custody.connect(f.regulator).setCoverageRatio(M1, 10_000);
      await f.custody.connect(f.recorder1).deposit(M1, 1_000n);
      await upload(f, [record(TopUp, CARD, 1_000n)]);
      await f.ledger.connect(f.regulator).windDownMerchant(M1, REASON);
      await upload(f, [record(Refund, CARD, 300n)]);
      await expect(f.custody.connect(f.recorder1).withdraw(M1, 301n, f.recorder1.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyWithdrawalTooLarge")
        .withArgs(M1, 301n, 1_000n, 700n);
      await expect(f.custody.connect(f.recorder1).withdraw(M1, 300n, f.recorder1.address)).to.emit(f.custody, "Withdrawn");
    });

    it("pays nothing once the merchant is closed: its custody stays for its card holders", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      await f.custody.connect(f.recorder1).deposit(M1, 1_000n);
      await upload(f, [record(TopUp, CARD, 1_000n)]);
      await f.ledger.connect(f.regulator).closeMerchant(M1, REASON);
      const before = await snapshot(f);
      await expect(f.custody.connect(f.recorder1).withdraw(M1, 1n, f.recorder1.address))
        .to.be.revertedWithCustomError(f.custody, "CustodyMerchantClosed")
        .withArgs(M1);
      expect(await f.custody.custodyOf(M1)).to.deep.equal([1_000n, 0n, 1_000n, 0n, 0n]);
      expect(await snapshot(f)).to.deep.equal(before);
    });
  });

  describe("roles", function () {
    it("lets only the admin set custodians, through setCustodian alone", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      const role = await f.custody.CUSTODIAN_ROLE();
      await expect(f.custody.connect(f.admin).setCustodian(f.custodian.address, false))
        .to.emit(f.custody, "CustodianSet")
        .withArgs(f.custodian.address, false, f.admin.address);
      expect(await f.custody.hasRole(role, f.custodian.address)).to.equal(false);
      await expect(f.custody.connect(f.custodian).deposit(M1, 1n)).to.be.revertedWithCustomError(f.custody, "CustodyUnauthorizedDepositor");
      await expect(f.custody.connect(f.admin).setCustodian(ZeroAddress, true)).to.be.revertedWithCustomError(f.custody, "CustodyZeroAddress");
      for (const caller of [f.regulator, f.recorder1, f.custodian, f.stranger]) {
        await expect(f.custody.connect(caller).setCustodian(caller.address, true))
          .to.be.revertedWithCustomError(f.custody, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, ZeroHash);
      }
      for (const caller of [f.admin, f.regulator, f.custodian, f.stranger]) {
        for (const call of [
          f.custody.connect(caller).grantRole(role, f.stranger.address),
          f.custody.connect(caller).revokeRole(role, f.custodian.address),
          f.custody.connect(caller).renounceRole(role, caller.address),
        ]) {
          await expect(call).to.be.revertedWithCustomError(f.custody, "CustodyRoleNotManaged").withArgs(role);
        }
      }
      await expect(f.custody.connect(f.admin).setCustodian(f.custodian.address, true))
        .to.emit(f.custody, "CustodianSet")
        .withArgs(f.custodian.address, true, f.admin.address);
    });

    it("lets the admin, and only the admin, manage regulators; hands the admin over in two steps", async function () {
      const f = await networkHelpers.loadFixture(deployCustody);
      const role = await f.custody.REGULATOR_ROLE();
      await expect(f.custody.connect(f.admin).grantRole(role, f.stranger.address)).to.emit(f.custody, "RoleGranted");
      for (const caller of [f.regulator, f.recorder1, f.custodian]) {
        await expect(f.custody.connect(caller).grantRole(role, caller.address))
          .to.be.revertedWithCustomError(f.custody, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, ZeroHash);
      }
      await f.custody.connect(f.admin).beginDefaultAdminTransfer(f.newAdmin.address);
      const [, schedule] = await f.custody.pendingDefaultAdmin();
      await expect(f.custody.connect(f.newAdmin).acceptDefaultAdminTransfer())
        .to.be.revertedWithCustomError(f.custody, "AccessControlEnforcedDefaultAdminDelay")
        .withArgs(schedule);
      await time.increaseTo(schedule + 1n);
      await f.custody.connect(f.newAdmin).acceptDefaultAdminTransfer();
      expect(await f.custody.defaultAdmin()).to.equal(f.newAdmin.address);
    });
  });
});

describe("PrepaidLedger custody link", function () {
  async function otherCustody(f: Fixture, ledger: string) {
    return ethers.deployContract("MerchantCustody", [await f.token.getAddress(), ledger, f.admin.address, f.regulator.address, 0]);
  }

  it("attaches the first custody contract at once, bound to this ledger only", async function () {
    const [admin, regulator] = await ethers.getSigners();
    const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, ADMIN_DELAY, 3_600]);
    const other = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, ADMIN_DELAY, 3_600]);
    const token = await ethers.deployContract("PrepaidTestToken", ["Test fen", "tFEN"]);
    const deploy = async (l: string) => ethers.deployContract("MerchantCustody", [await token.getAddress(), l, admin.address, regulator.address, 0]);
    const mine = await deploy(await ledger.getAddress());
    const theirs = await deploy(await other.getAddress());
    await expect(ledger.connect(admin).proposeCustody(await theirs.getAddress()))
      .to.be.revertedWithCustomError(ledger, "LedgerCustodyForAnotherLedger")
      .withArgs(await theirs.getAddress(), await other.getAddress());
    // A key, or a contract without LEDGER(), names no ledger.
    for (const target of [regulator.address, await token.getAddress()]) {
      await expect(ledger.connect(admin).proposeCustody(target))
        .to.be.revertedWithCustomError(ledger, "LedgerCustodyForAnotherLedger")
        .withArgs(target, ZeroAddress);
    }
    await expect(ledger.connect(admin).proposeCustody(ZeroAddress)).to.be.revertedWithCustomError(ledger, "LedgerCustodyUnchanged").withArgs(ZeroAddress);
    await expect(ledger.connect(admin).proposeCustody(await mine.getAddress()))
      .to.emit(ledger, "CustodyAttached")
      .withArgs(ZeroAddress, await mine.getAddress());
    expect(await ledger.custody()).to.equal(await mine.getAddress());
    expect(await ledger.pendingCustody()).to.deep.equal([ZeroAddress, 0n]);
  });

  it("refuses proposeCustody to every role but the admin, and attachCustody and cancelCustodyChange with nothing pending", async function () {
    const f = await networkHelpers.loadFixture(deployCustody);
    const before = await snapshot(f);
    for (const caller of [f.regulator, f.recorder1, f.custodian, f.stranger]) {
      await expect(f.ledger.connect(caller).proposeCustody(ZeroAddress))
        .to.be.revertedWithCustomError(f.ledger, "AccessControlUnauthorizedAccount")
        .withArgs(caller.address, ZeroHash);
    }
    await expect(f.ledger.connect(f.stranger).attachCustody()).to.be.revertedWithCustomError(f.ledger, "LedgerNoCustodyChange");
    await expect(f.ledger.connect(f.regulator).cancelCustodyChange()).to.be.revertedWithCustomError(f.ledger, "LedgerNoCustodyChange");
    await expect(f.ledger.connect(f.admin).proposeCustody(await f.custody.getAddress()))
      .to.be.revertedWithCustomError(f.ledger, "LedgerCustodyUnchanged")
      .withArgs(await f.custody.getAddress());
    expect(await snapshot(f)).to.deep.equal(before);
  });

  it("detaches only after a public delay, during which an under-covered merchant stays refused", async function () {
    const f = await networkHelpers.loadFixture(deployCustody);
    await f.custody.connect(f.regulator).setCoverageRatio(M1, 10_000);
    expect(await f.ledger.custodyDelay()).to.equal(BigInt(ADMIN_DELAY));
    const tx = f.ledger.connect(f.admin).proposeCustody(ZeroAddress);
    const executableAt = BigInt((await time.latest()) + 1 + ADMIN_DELAY);
    await expect(tx).to.emit(f.ledger, "CustodyChangeProposed").withArgs(ZeroAddress, f.admin.address, executableAt);
    expect(await f.ledger.pendingCustody()).to.deep.equal([ZeroAddress, executableAt]);
    await expect(upload(f, [record(TopUp, CARD, 1n)])).to.be.revertedWithCustomError(f.ledger, "LedgerUndercovered");
    for (const caller of [f.admin, f.stranger]) {
      await expect(f.ledger.connect(caller).attachCustody())
        .to.be.revertedWithCustomError(f.ledger, "LedgerCustodyChangeNotDue")
        .withArgs(ZeroAddress, executableAt);
    }
    await time.increaseTo(executableAt);
    await expect(f.ledger.connect(f.stranger).attachCustody())
      .to.emit(f.ledger, "CustodyAttached")
      .withArgs(await f.custody.getAddress(), ZeroAddress);
    expect(await f.ledger.custody()).to.equal(ZeroAddress);
    await expect(upload(f, [record(TopUp, CARD, 1n)])).to.emit(f.ledger, "BatchRecorded");
  });

  it("replaces custody after the delay; a regulator or the admin can cancel, nobody else", async function () {
    const f = await networkHelpers.loadFixture(deployCustody);
    const next = await otherCustody(f, await f.ledger.getAddress());
    const nextAddress = await next.getAddress();
    await f.ledger.connect(f.admin).proposeCustody(nextAddress);
    for (const caller of [f.recorder1, f.custodian, f.stranger]) {
      await expect(f.ledger.connect(caller).cancelCustodyChange())
        .to.be.revertedWithCustomError(f.ledger, "AccessControlUnauthorizedAccount")
        .withArgs(caller.address, await f.ledger.REGULATOR_ROLE());
    }
    await expect(f.ledger.connect(f.regulator).cancelCustodyChange())
      .to.emit(f.ledger, "CustodyChangeCancelled")
      .withArgs(nextAddress, f.regulator.address);
    await time.increase(ADMIN_DELAY + 1);
    await expect(f.ledger.connect(f.stranger).attachCustody()).to.be.revertedWithCustomError(f.ledger, "LedgerNoCustodyChange");
    await f.ledger.connect(f.admin).proposeCustody(nextAddress);
    await expect(f.ledger.connect(f.admin).cancelCustodyChange())
      .to.emit(f.ledger, "CustodyChangeCancelled")
      .withArgs(nextAddress, f.admin.address);
    await f.ledger.connect(f.admin).proposeCustody(nextAddress);
    await time.increase(ADMIN_DELAY);
    await expect(f.ledger.connect(f.stranger).attachCustody())
      .to.emit(f.ledger, "CustodyAttached")
      .withArgs(await f.custody.getAddress(), nextAddress);
    expect(await f.ledger.custody()).to.equal(nextAddress);
  });

  it("waits at least MIN_CUSTODY_DELAY even with no admin delay", async function () {
    const [admin, regulator] = await ethers.getSigners();
    const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
    const token = await ethers.deployContract("PrepaidTestToken", ["Test fen", "tFEN"]);
    const deploy = async () =>
      ethers.deployContract("MerchantCustody", [await token.getAddress(), await ledger.getAddress(), admin.address, regulator.address, 0]);
    const [first, second] = [await deploy(), await deploy()];
    expect(await ledger.MIN_CUSTODY_DELAY()).to.equal(3_600n);
    expect(await ledger.custodyDelay()).to.equal(3_600n);
    await ledger.connect(admin).proposeCustody(await first.getAddress());
    await ledger.connect(admin).proposeCustody(await second.getAddress());
    const [, executableAt] = await ledger.pendingCustody();
    expect(executableAt).to.equal(BigInt(await time.latest()) + 3_600n);
    await expect(ledger.attachCustody()).to.be.revertedWithCustomError(ledger, "LedgerCustodyChangeNotDue").withArgs(await second.getAddress(), executableAt);
    expect(await ledger.custody()).to.equal(await first.getAddress());
  });
});
