/**
 * The merchants' registry data (issue 10 item 2): `setMerchantProfile` publishes a merchant's
 * name, licence, category and district in an event for indexers, stores nothing, and refuses
 * everyone but a regulator, an unknown merchant and an empty or too long field, with the values.
 */
import { expect } from "chai";
import { network } from "hardhat";

const { ethers, networkHelpers } = await network.create();

const M1 = 1;
const PROFILE = ["Sunrise Gym", "91310000MA1FL0001X", "fitness", "Xuhui"] as const;

async function deployLedgerWithMerchant() {
  const [admin, regulator, recorder1, stranger] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 86_400, 3_600]);
  await ledger.connect(regulator).registerMerchant(M1, recorder1.address);
  return { ledger, admin, regulator, recorder1, stranger };
}

describe("PrepaidLedger merchant profiles", function () {
  it("emits the profile for the regulator, UTF-8 included, and a later call replaces it", async function () {
    const f = await networkHelpers.loadFixture(deployLedgerWithMerchant);
    await expect(f.ledger.connect(f.regulator).setMerchantProfile(M1, ...PROFILE))
      .to.emit(f.ledger, "MerchantProfileSet")
      .withArgs(M1, f.regulator.address, ...PROFILE);
    // 32 Chinese characters are 96 bytes of UTF-8: the most a field holds.
    const longest = "健".repeat(32);
    await expect(f.ledger.connect(f.regulator).setMerchantProfile(M1, longest, "L-2", "健身", "徐汇区"))
      .to.emit(f.ledger, "MerchantProfileSet")
      .withArgs(M1, f.regulator.address, longest, "L-2", "健身", "徐汇区");
    expect(await f.ledger.MAX_PROFILE_FIELD_BYTES()).to.equal(96n);
  });

  it("works on a closed merchant too (registry data outlives trading)", async function () {
    const f = await networkHelpers.loadFixture(deployLedgerWithMerchant);
    await f.ledger.connect(f.regulator).closeMerchant(M1, ethers.encodeBytes32String("closed"));
    await expect(f.ledger.connect(f.regulator).setMerchantProfile(M1, ...PROFILE)).to.emit(f.ledger, "MerchantProfileSet");
  });

  it("refuses everyone but a regulator, an unknown merchant, and each empty or too long field, with the values", async function () {
    const f = await networkHelpers.loadFixture(deployLedgerWithMerchant);
    const role = await f.ledger.REGULATOR_ROLE();
    for (const who of [f.admin, f.recorder1, f.stranger]) {
      await expect(f.ledger.connect(who).setMerchantProfile(M1, ...PROFILE))
        .to.be.revertedWithCustomError(f.ledger, "AccessControlUnauthorizedAccount")
        .withArgs(who.address, role);
    }
    await expect(f.ledger.connect(f.regulator).setMerchantProfile(9, ...PROFILE))
      .to.be.revertedWithCustomError(f.ledger, "LedgerUnknownMerchant")
      .withArgs(9);
    for (let field = 0; field < 4; field++) {
      for (const bad of ["", "x".repeat(97), "健".repeat(33)]) {
        const args = [...PROFILE] as [string, string, string, string];
        args[field] = bad;
        await expect(f.ledger.connect(f.regulator).setMerchantProfile(M1, ...args))
          .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidProfileField")
          .withArgs(M1, field, Buffer.byteLength(bad), 96);
      }
    }
    // Nothing was emitted by the refused calls.
    expect(await f.ledger.queryFilter(f.ledger.filters.MerchantProfileSet())).to.deep.equal([]);
  });
});
