import { expect } from "chai";
import { AbiCoder, keccak256, toBeHex, ZeroAddress, ZeroHash } from "ethers";
import { network } from "hardhat";

import { packBatch } from "../../src/ledger/codec.js";
import { Consume, TopUp, account, record } from "../helpers/records.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const M1 = 1;
const ADMIN_DELAY = 86_400;
const RECORDER_DELAY = 3_600;
const MAX40 = (1n << 40n) - 1n;

async function deployLedger() {
  const [admin, regulator, recorder1, key, stranger, newAdmin] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, ADMIN_DELAY, RECORDER_DELAY]);
  await ledger.connect(regulator).registerMerchant(M1, recorder1.address);
  const upload = async (by: typeof recorder1, records = [record(TopUp, account(`g-${Math.random()}`), 100n)]) =>
    ledger.connect(by).recordBatch(M1, (await ledger.merchantBooks(M1)).nextSequence, "0x", packBatch(records));
  return { ledger, admin, regulator, recorder1, key, stranger, newAdmin, upload };
}

describe("PrepaidLedger governance", function () {
  describe("recorder roles change only through the registry", function () {
    it("refuses grantRole, revokeRole and renounceRole on recorder roles, for every caller, before and after registration", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      for (const merchantId of [77, M1]) {
        const role = await f.ledger.recorderRole(merchantId);
        for (const caller of [f.admin, f.regulator, f.recorder1, f.stranger]) {
          for (const call of [
            f.ledger.connect(caller).grantRole(role, f.key.address),
            f.ledger.connect(caller).revokeRole(role, f.recorder1.address),
            f.ledger.connect(caller).renounceRole(role, caller.address),
          ]) {
            await expect(call).to.be.revertedWithCustomError(f.ledger, "LedgerRoleManagedByRegistry").withArgs(role);
          }
        }
        if (merchantId === 77) await f.ledger.connect(f.regulator).registerMerchant(77, f.recorder1.address);
        expect(await f.ledger.hasRole(role, f.key.address)).to.equal(false);
      }
      // Any other made-up role too: the generic calls manage REGULATOR_ROLE only.
      await expect(f.ledger.connect(f.admin).grantRole(toBeHex(5, 32), f.key.address))
        .to.be.revertedWithCustomError(f.ledger, "LedgerRoleManagedByRegistry")
        .withArgs(toBeHex(5, 32));
    });

    it("still lets the admin, and only the admin, manage regulators", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const role = await f.ledger.REGULATOR_ROLE();
      await expect(f.ledger.connect(f.admin).grantRole(role, f.key.address)).to.emit(f.ledger, "RoleGranted");
      for (const caller of [f.regulator, f.recorder1, f.stranger]) {
        await expect(f.ledger.connect(caller).grantRole(role, caller.address))
          .to.be.revertedWithCustomError(f.ledger, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, ZeroHash);
      }
      await expect(f.ledger.connect(f.key).renounceRole(role, f.key.address)).to.emit(f.ledger, "RoleRevoked");
    });

    it("a recorder renounces through renounceRecorder, which names it", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await expect(f.ledger.connect(f.recorder1).renounceRecorder(M1))
        .to.emit(f.ledger, "RecorderRemoved")
        .withArgs(M1, f.recorder1.address, f.recorder1.address);
      await expect(f.upload(f.recorder1))
        .to.be.revertedWithCustomError(f.ledger, "LedgerUnauthorizedRecorder")
        .withArgs(f.recorder1.address, M1);
      for (const caller of [f.recorder1, f.regulator, f.stranger]) {
        await expect(f.ledger.connect(caller).renounceRecorder(M1))
          .to.be.revertedWithCustomError(f.ledger, "LedgerUnauthorizedRecorder")
          .withArgs(caller.address, M1);
      }
    });
  });

  describe("a regulator adds a recorder only with the merchant's consent, or after a public delay", function () {
    it("offers; the key books nothing until a recorder of the merchant accepts", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const tx = f.ledger.connect(f.regulator).addRecorder(M1, f.key.address);
      const executableAt = BigInt((await time.latest()) + 1 + RECORDER_DELAY);
      await expect(tx).to.emit(f.ledger, "RecorderOffered").withArgs(M1, f.key.address, f.regulator.address, executableAt);
      expect(await f.ledger.recorderOffer(M1, f.key.address)).to.deep.equal([f.regulator.address, executableAt]);
      await expect(f.upload(f.key)).to.be.revertedWithCustomError(f.ledger, "LedgerUnauthorizedRecorder");
      // The regulator, the key itself, the admin or a stranger cannot accept before the delay.
      for (const caller of [f.regulator, f.key, f.admin, f.stranger]) {
        await expect(f.ledger.connect(caller).acceptRecorder(M1, f.key.address))
          .to.be.revertedWithCustomError(f.ledger, "LedgerRecorderOfferNotDue")
          .withArgs(M1, f.key.address, executableAt);
      }
      await expect(f.ledger.connect(f.recorder1).acceptRecorder(M1, f.key.address))
        .to.emit(f.ledger, "RecorderAdded")
        .withArgs(M1, f.key.address, f.regulator.address);
      expect(await f.ledger.recorderOffer(M1, f.key.address)).to.deep.equal([ZeroAddress, 0n]);
      await expect(f.upload(f.key)).to.emit(f.ledger, "BatchRecorded");
    });

    it("a recorder of the merchant rejects the offer; nobody can carry it out then", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await f.ledger.connect(f.regulator).addRecorder(M1, f.key.address);
      for (const caller of [f.regulator, f.key, f.stranger, f.admin]) {
        await expect(f.ledger.connect(caller).rejectRecorder(M1, f.key.address))
          .to.be.revertedWithCustomError(f.ledger, "LedgerUnauthorizedRecorder")
          .withArgs(caller.address, M1);
      }
      await expect(f.ledger.connect(f.recorder1).rejectRecorder(M1, f.key.address))
        .to.emit(f.ledger, "RecorderOfferCancelled")
        .withArgs(M1, f.key.address, f.recorder1.address);
      await time.increase(RECORDER_DELAY + 1);
      await expect(f.ledger.connect(f.stranger).acceptRecorder(M1, f.key.address))
        .to.be.revertedWithCustomError(f.ledger, "LedgerNoRecorderOffer")
        .withArgs(M1, f.key.address);
      await expect(f.ledger.connect(f.recorder1).rejectRecorder(M1, f.key.address))
        .to.be.revertedWithCustomError(f.ledger, "LedgerNoRecorderOffer")
        .withArgs(M1, f.key.address);
      await expect(f.ledger.connect(f.stranger).acceptRecorder(99, f.key.address))
        .to.be.revertedWithCustomError(f.ledger, "LedgerUnknownMerchant")
        .withArgs(99);
    });

    it("after the delay, with no rejection, anyone carries the offer out (a merchant that lost every key)", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await f.ledger.connect(f.regulator).removeRecorder(M1, f.recorder1.address);
      await f.ledger.connect(f.regulator).addRecorder(M1, f.key.address);
      await time.increase(RECORDER_DELAY);
      await expect(f.ledger.connect(f.stranger).acceptRecorder(M1, f.key.address))
        .to.emit(f.ledger, "RecorderAdded")
        .withArgs(M1, f.key.address, f.regulator.address);
      await expect(f.upload(f.key)).to.emit(f.ledger, "BatchRecorded");
    });

    it("removeRecorder withdraws a standing offer", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await f.ledger.connect(f.regulator).addRecorder(M1, f.key.address);
      await expect(f.ledger.connect(f.regulator).removeRecorder(M1, f.key.address))
        .to.emit(f.ledger, "RecorderOfferCancelled")
        .withArgs(M1, f.key.address, f.regulator.address);
      await expect(f.ledger.connect(f.recorder1).acceptRecorder(M1, f.key.address))
        .to.be.revertedWithCustomError(f.ledger, "LedgerNoRecorderOffer")
        .withArgs(M1, f.key.address);
    });
  });

  describe("admin keys", function () {
    it("hands the admin over in two steps, after the delay", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      expect(await f.ledger.defaultAdmin()).to.equal(f.admin.address);
      expect(await f.ledger.defaultAdminDelay()).to.equal(BigInt(ADMIN_DELAY));
      for (const caller of [f.regulator, f.recorder1, f.stranger]) {
        await expect(f.ledger.connect(caller).beginDefaultAdminTransfer(caller.address))
          .to.be.revertedWithCustomError(f.ledger, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, ZeroHash);
      }
      await expect(f.ledger.connect(f.admin).grantRole(ZeroHash, f.newAdmin.address)).to.be.revertedWithCustomError(
        f.ledger,
        "AccessControlEnforcedDefaultAdminRules",
      );
      await expect(f.ledger.connect(f.admin).revokeRole(ZeroHash, f.admin.address)).to.be.revertedWithCustomError(
        f.ledger,
        "AccessControlEnforcedDefaultAdminRules",
      );
      await f.ledger.connect(f.admin).beginDefaultAdminTransfer(f.newAdmin.address);
      const [, schedule] = await f.ledger.pendingDefaultAdmin();
      await expect(f.ledger.connect(f.newAdmin).acceptDefaultAdminTransfer())
        .to.be.revertedWithCustomError(f.ledger, "AccessControlEnforcedDefaultAdminDelay")
        .withArgs(schedule);
      await time.increaseTo(schedule + 1n);
      await expect(f.ledger.connect(f.stranger).acceptDefaultAdminTransfer())
        .to.be.revertedWithCustomError(f.ledger, "AccessControlInvalidDefaultAdmin")
        .withArgs(f.stranger.address);
      await f.ledger.connect(f.newAdmin).acceptDefaultAdminTransfer();
      expect(await f.ledger.defaultAdmin()).to.equal(f.newAdmin.address);
      await expect(f.ledger.connect(f.admin).pause())
        .to.be.revertedWithCustomError(f.ledger, "AccessControlUnauthorizedAccount")
        .withArgs(f.admin.address, ZeroHash);
    });

    it("cannot be frozen for good: the admin may not renounce while paused", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await f.ledger.connect(f.admin).beginDefaultAdminTransfer(ZeroAddress);
      await time.increase(ADMIN_DELAY + 1);
      await f.ledger.connect(f.admin).pause();
      await expect(f.ledger.connect(f.admin).renounceRole(ZeroHash, f.admin.address)).to.be.revertedWithCustomError(
        f.ledger,
        "LedgerRenounceWhilePaused",
      );
      expect(await f.ledger.defaultAdmin()).to.equal(f.admin.address);
      // Unpaused, renouncing works, and then nobody can pause (so nobody can freeze) the ledger.
      await f.ledger.connect(f.admin).unpause();
      await f.ledger.connect(f.admin).renounceRole(ZeroHash, f.admin.address);
      expect(await f.ledger.defaultAdmin()).to.equal(ZeroAddress);
      await expect(f.ledger.connect(f.admin).pause()).to.be.revertedWithCustomError(
        f.ledger,
        "AccessControlUnauthorizedAccount",
      );
      await expect(f.upload(f.recorder1)).to.emit(f.ledger, "BatchRecorded");
    });

    it("cannot renounce in one call, paused or not", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await expect(f.ledger.connect(f.admin).renounceRole(ZeroHash, f.admin.address))
        .to.be.revertedWithCustomError(f.ledger, "AccessControlEnforcedDefaultAdminDelay")
        .withArgs(0);
    });
  });

  describe("totals", function () {
    /** The storage slot of MerchantRegistry's _merchants[merchantId] (word 1), found by its status byte. */
    async function merchantSlot(f: Awaited<ReturnType<typeof deployLedger>>, merchantId: number): Promise<bigint> {
      const address = await f.ledger.getAddress();
      for (let p = 0; p < 16; p++) {
        const slot = BigInt(keccak256(AbiCoder.defaultAbiCoder().encode(["uint32", "uint256"], [merchantId, p])));
        const word = BigInt(await ethers.provider.getStorage(address, slot));
        if ((word & 0xffn) === 1n && ((word >> 8n) & ((1n << 64n) - 1n)) === 2n) return slot;
      }
      throw new Error("merchant slot not found");
    }

    it("holds a merchant's top-ups past 2^64 (no Panic), at the layout the storage comment states", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const a = account("big");
      await f.upload(f.recorder1, [record(TopUp, a, MAX40), record(Consume, a, 5n)]);
      const slot = await merchantSlot(f, M1);
      const address = await f.ledger.getAddress();
      const word = BigInt(await ethers.provider.getStorage(address, slot));
      // toppedUp u88 at bit 168 of word 1; consumed u128 at bit 0 of word 2.
      expect(word >> 168n).to.equal(MAX40);
      expect(BigInt(await ethers.provider.getStorage(address, slot + 1n)) & ((1n << 128n) - 1n)).to.equal(5n);
      // Other merchants' cards brought toppedUp to 2^64 - 1 (set directly: 65,536 full cards).
      const near = (1n << 64n) - 1n;
      await networkHelpers.setStorageAt(address, slot, (word & ((1n << 168n) - 1n)) | (near << 168n));
      await expect(f.upload(f.recorder1, [record(TopUp, account("next"), 1_000n)])).to.emit(f.ledger, "BatchRecorded");
      const books = await f.ledger.merchantBooks(M1);
      expect(books.toppedUp).to.equal(near + 1_000n);
      expect(books.liability).to.equal(near + 1_000n - 5n);
    });

    it("refuses the merchant's 2^32nd account with a ledger error", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await f.upload(f.recorder1);
      const slot = await merchantSlot(f, M1);
      const address = await f.ledger.getAddress();
      const word = BigInt(await ethers.provider.getStorage(address, slot));
      const full = (word & ~(((1n << 32n) - 1n) << 136n)) | (((1n << 32n) - 1n) << 136n);
      await networkHelpers.setStorageAt(address, slot, full);
      await expect(f.upload(f.recorder1))
        .to.be.revertedWithCustomError(f.ledger, "LedgerMerchantOverflow")
        .withArgs(M1, 1n << 32n);
    });
  });
});
