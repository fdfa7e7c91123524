import { expect } from "chai";
import { id, TypedDataEncoder, type TypedDataDomain, Wallet, ZeroHash } from "ethers";
import { network } from "hardhat";

import { packBatch } from "../../src/ledger/codec.js";
import { CANCELLATION_TYPES, CHECKPOINT_TYPES, SET_CHANGE_TYPES } from "../helpers/quorum-types.js";
import { finalizeWith, signerBits } from "../helpers/quorum-types.js";
import { TopUp, account, record } from "../helpers/records.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const M1 = 1;
const ADMIN_DELAY = 86_400;
const DELAY = 3_600;


interface Signer {
  address: string;
  signTypedData(domain: TypedDataDomain, types: object, value: object): Promise<string>;
}

/** A ledger with 5 records, marked at 4; a quorum of 4 supervisors, threshold 3. */
async function deploy() {
  const [governor, regulator, recorder, stranger, s0, s1, s2, s3, newGovernor] = await ethers.getSigners();
  const supervisors = [s0, s1, s2, s3];
  const ledger = await ethers.deployContract("PrepaidLedger", [governor.address, regulator.address, 0, DELAY]);
  await ledger.connect(regulator).registerMerchant(M1, recorder.address);
  const quorum = await ethers.deployContract("SupervisorQuorum", [
    governor.address,
    await ledger.getAddress(),
    supervisors.map((s) => s.address),
    3,
    ADMIN_DELAY,
    DELAY,
  ]);
  const upload = async (n: number) => {
    const records = Array.from({ length: n }, () => record(TopUp, account(`q-${Math.random()}`), 10n));
    await ledger.connect(recorder).recordBatch(M1, (await ledger.merchantBooks(M1)).nextSequence, "0x", packBatch(records));
  };
  await upload(4);
  await ledger.markCheckpoint();
  await upload(1);
  const domain: TypedDataDomain = {
    name: "PrepaidLedgerSupervision",
    version: "1",
    chainId: (await ethers.provider.getNetwork()).chainId,
    verifyingContract: await quorum.getAddress(),
  };
  const ledgerAddress = await ledger.getAddress();
  const checkpoint = async (count: bigint, setId?: bigint) => ({
    ledger: ledgerAddress,
    recordCount: count,
    chainHead: await ledger.markedHead(count),
    stateDigest: id(`books ${count}`),
    setId: setId ?? (await quorum.setId()),
  });
  const sign = (by: Signer[], types: object, value: object) => Promise.all(by.map((s) => s.signTypedData(domain, types, value)));
  const change = async (members: string[], t: number) => ({
    ledger: ledgerAddress,
    setId: await quorum.setId(),
    supervisors: members,
    threshold: t,
  });
  return { ledger, quorum, governor, regulator, stranger, supervisors, newGovernor, domain, upload, checkpoint, sign, change };
}

describe("SupervisorQuorum governance", function () {
  it("the governor alone confirms nothing: its set waits out the delay, and the current set cancels it", async function () {
    const f = await networkHelpers.loadFixture(deploy);
    const mine = [f.governor.address];
    const tx = f.quorum.connect(f.governor).proposeSupervisors(mine, 1);
    const executableAt = BigInt((await time.latest()) + 1 + DELAY);
    await expect(tx).to.emit(f.quorum, "SupervisorChangeProposed").withArgs(1n, 1n, mine, 1, executableAt);
    expect(await f.quorum.pendingSupervisorChange()).to.deep.equal([
      1n,
      ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(["address[]", "uint8"], [mine, 1])),
      executableAt,
    ]);
    await expect(f.quorum.connect(f.governor).executeSupervisors(mine, 1))
      .to.be.revertedWithCustomError(f.quorum, "QuorumChangeNotDue")
      .withArgs(1n, executableAt);
    // Its own signature counts for nothing, on a checkpoint or on a set change.
    const invented = { ...(await f.checkpoint(4n)), stateDigest: id("invented") };
    await expect(finalizeWith(f.quorum, invented, await f.sign([f.governor], CHECKPOINT_TYPES, invented)))
      .to.be.revertedWithCustomError(f.quorum, "QuorumSignerNotSupervisor")
      .withArgs(f.governor.address, 1n);
    await expect(f.quorum.changeSupervisors(mine, 1, await f.sign([f.governor], SET_CHANGE_TYPES, await f.change(mine, 1))))
      .to.be.revertedWithCustomError(f.quorum, "QuorumSignerNotSupervisor")
      .withArgs(f.governor.address, 1n);
    // Meanwhile the current set keeps confirming.
    const honest = await f.checkpoint(4n);
    await expect(finalizeWith(f.quorum, honest, await f.sign(f.supervisors.slice(0, 3), CHECKPOINT_TYPES, honest))).to.emit(
      f.quorum,
      "CheckpointFinalized",
    );
    // Two supervisors cannot cancel; three can, and the proposal is gone for good.
    const cancel = { ledger: honest.ledger, setId: 1n, proposal: 1n };
    expect(await f.quorum.cancellationDigest(1n)).to.equal(TypedDataEncoder.hash(f.domain, CANCELLATION_TYPES, cancel));
    await expect(f.quorum.cancelSupervisorChange(await f.sign(f.supervisors.slice(0, 2), CANCELLATION_TYPES, cancel)))
      .to.be.revertedWithCustomError(f.quorum, "QuorumBelowThreshold")
      .withArgs(2n, 3);
    await expect(f.quorum.connect(f.stranger).cancelSupervisorChange(await f.sign(f.supervisors.slice(1), CANCELLATION_TYPES, cancel)))
      .to.emit(f.quorum, "SupervisorChangeCancelled")
      .withArgs(1n, await f.quorum.getAddress());
    await time.increase(DELAY + 1);
    await expect(f.quorum.executeSupervisors(mine, 1)).to.be.revertedWithCustomError(f.quorum, "QuorumNoPendingChange");
    await expect(f.quorum.cancelSupervisorChange([])).to.be.revertedWithCustomError(f.quorum, "QuorumNoPendingChange");
    expect(await f.quorum.setId()).to.equal(1n);
    // A cancellation signed for proposal 1 does not cancel proposal 2.
    await f.quorum.connect(f.governor).proposeSupervisors(mine, 1);
    const old = await f.sign(f.supervisors.slice(1), CANCELLATION_TYPES, cancel);
    await expect(f.quorum.cancelSupervisorChange(old)).to.be.revertedWithCustomError(f.quorum, "QuorumSignerNotSupervisor");
  });

  it("an uncancelled proposal takes effect after the delay, carried out by anyone, as proposed", async function () {
    const f = await networkHelpers.loadFixture(deploy);
    const next = [f.supervisors[1].address, f.governor.address];
    await f.quorum.connect(f.governor).proposeSupervisors(next, 2);
    await time.increase(DELAY);
    await expect(f.quorum.executeSupervisors([f.governor.address], 1))
      .to.be.revertedWithCustomError(f.quorum, "QuorumProposalMismatch")
      .withArgs(
        1n,
        ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(["address[]", "uint8"], [[f.governor.address], 1])),
        (await f.quorum.pendingSupervisorChange())[1],
      );
    const tx = f.quorum.connect(f.stranger).executeSupervisors(next, 2);
    await expect(tx).to.emit(f.quorum, "SupervisorsChanged").withArgs(2n, next, 2);
    await expect(tx).to.emit(f.quorum, "SupervisorSetRetired").withArgs(1n, 5n, BigInt((await time.latest()) + DELAY));
    expect(await f.quorum.setInfo(2n)).to.deep.equal([2n, 0n, 0n]);
    expect(await f.quorum.pendingSupervisorChange()).to.deep.equal([0n, ZeroHash, 0n]);
  });

  it("a new proposal replaces the pending one; a set change by the supervisors drops it", async function () {
    const f = await networkHelpers.loadFixture(deploy);
    await f.quorum.connect(f.governor).proposeSupervisors([f.governor.address], 1);
    await expect(f.quorum.connect(f.governor).proposeSupervisors([f.stranger.address], 1))
      .to.emit(f.quorum, "SupervisorChangeCancelled")
      .withArgs(1n, f.governor.address);
    const members = f.supervisors.slice(0, 3).map((s) => s.address);
    const value = await f.change(members, 2);
    expect(await f.quorum.setChangeDigest(members, 2)).to.equal(TypedDataEncoder.hash(f.domain, SET_CHANGE_TYPES, value));
    await expect(f.quorum.changeSupervisors(members, 2, await f.sign(f.supervisors.slice(0, 3), SET_CHANGE_TYPES, value)))
      .to.emit(f.quorum, "SupervisorChangeCancelled")
      .withArgs(2n, await f.quorum.getAddress());
    expect(await f.quorum.setId()).to.equal(2n);
    await time.increase(DELAY);
    await expect(f.quorum.executeSupervisors([f.stranger.address], 1)).to.be.revertedWithCustomError(
      f.quorum,
      "QuorumNoPendingChange",
    );
  });

  it("set-change signatures need the threshold, are bound to the set id, and cannot be replayed", async function () {
    const f = await networkHelpers.loadFixture(deploy);
    const members = f.supervisors.map((s) => s.address);
    const value = await f.change(members, 2);
    await expect(f.quorum.changeSupervisors(members, 2, await f.sign(f.supervisors.slice(0, 2), SET_CHANGE_TYPES, value)))
      .to.be.revertedWithCustomError(f.quorum, "QuorumBelowThreshold")
      .withArgs(2n, 3);
    const forger = Wallet.createRandom();
    const sigs = await f.sign(f.supervisors.slice(0, 3), SET_CHANGE_TYPES, value);
    await expect(f.quorum.changeSupervisors(members, 2, [sigs[0], sigs[1], await forger.signTypedData(f.domain, SET_CHANGE_TYPES, value)]))
      .to.be.revertedWithCustomError(f.quorum, "QuorumSignerNotSupervisor")
      .withArgs(forger.address, 1n);
    // Signatures over one set do not install another.
    await expect(f.quorum.changeSupervisors(members, 3, sigs)).to.be.revertedWithCustomError(f.quorum, "QuorumSignerNotSupervisor");
    await f.quorum.changeSupervisors(members, 2, sigs);
    // The same signatures again: now over set 2's digest, they recover to no member.
    await expect(f.quorum.changeSupervisors(members, 2, sigs)).to.be.revertedWithCustomError(f.quorum, "QuorumSignerNotSupervisor");
    expect(await f.quorum.setId()).to.equal(2n);
  });

  it("signatures of a replaced set count for checkpoints at or before the change, within its grace", async function () {
    const f = await networkHelpers.loadFixture(deploy);
    const at4 = await f.checkpoint(4n);
    const inFlight = await f.sign(f.supervisors.slice(0, 3), CHECKPOINT_TYPES, at4);
    const others = [f.stranger.address, f.newGovernor.address];
    await f.quorum.changeSupervisors(others, 2, await f.sign(f.supervisors.slice(1), SET_CHANGE_TYPES, await f.change(others, 2)));
    const graceEnds = BigInt(await time.latest()) + BigInt(DELAY);
    expect(await f.quorum.setInfo(1n)).to.deep.equal([3n, 5n, graceEnds]);
    // Records 6-7 come after the change: set 1 was never in force for them.
    await f.upload(2);
    await f.ledger.markCheckpoint();
    const at7 = await f.checkpoint(7n, 1n);
    await expect(finalizeWith(f.quorum, at7, await f.sign(f.supervisors.slice(0, 3), CHECKPOINT_TYPES, at7)))
      .to.be.revertedWithCustomError(f.quorum, "QuorumSetRetired")
      .withArgs(1n, 5n, graceEnds);
    // The signatures in flight for record 4 still finalize it.
    await expect(finalizeWith(f.quorum, at4, inFlight))
      .to.emit(f.quorum, "CheckpointFinalized")
      .withArgs(4n, at4.chainHead, at4.stateDigest, 1n, signerBits(f.supervisors, f.supervisors.slice(0, 3)));
    // After the grace they would not have.
    await f.ledger.markCheckpoint();
    await time.increaseTo(graceEnds + 1n);
    const at5 = await f.checkpoint(7n, 1n);
    await expect(finalizeWith(f.quorum, { ...at5 }, await f.sign(f.supervisors.slice(0, 3), CHECKPOINT_TYPES, at5)))
      .to.be.revertedWithCustomError(f.quorum, "QuorumSetRetired")
      .withArgs(1n, 5n, graceEnds);
    await expect(finalizeWith(f.quorum, { ...at5, setId: 0n }, [])).to.be.revertedWithCustomError(f.quorum, "QuorumWrongSet").withArgs(0n, 2n);
  });

  it("hands the governor role over in two steps after the delay; only the governor proposes", async function () {
    const f = await networkHelpers.loadFixture(deploy);
    expect(await f.quorum.SET_CHANGE_DELAY()).to.equal(BigInt(DELAY));
    expect(await f.quorum.MIN_SET_CHANGE_DELAY()).to.equal(3_600n);
    await expect(f.quorum.connect(f.governor).grantRole(ZeroHash, f.newGovernor.address)).to.be.revertedWithCustomError(
      f.quorum,
      "AccessControlEnforcedDefaultAdminRules",
    );
    await f.quorum.connect(f.governor).beginDefaultAdminTransfer(f.newGovernor.address);
    const [, schedule] = await f.quorum.pendingDefaultAdmin();
    await expect(f.quorum.connect(f.newGovernor).acceptDefaultAdminTransfer())
      .to.be.revertedWithCustomError(f.quorum, "AccessControlEnforcedDefaultAdminDelay")
      .withArgs(schedule);
    await time.increaseTo(schedule + 1n);
    await f.quorum.connect(f.newGovernor).acceptDefaultAdminTransfer();
    for (const caller of [f.governor, f.stranger, f.supervisors[0]]) {
      await expect(f.quorum.connect(caller).proposeSupervisors([caller.address], 1))
        .to.be.revertedWithCustomError(f.quorum, "AccessControlUnauthorizedAccount")
        .withArgs(caller.address, ZeroHash);
    }
    await expect(f.quorum.connect(f.newGovernor).proposeSupervisors([f.newGovernor.address], 1)).to.emit(
      f.quorum,
      "SupervisorChangeProposed",
    );
  });
});
