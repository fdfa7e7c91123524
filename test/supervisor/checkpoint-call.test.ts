import { expect } from "chai";
import { Interface, concat, id } from "ethers";
import { network } from "hardhat";

import { packBatch } from "../../src/ledger/codec.js";
import { SUPERVISOR_QUORUM_ABI } from "../../src/ledger/quorum-abi.js";
import {
  CHECKPOINT_TYPES,
  FINALIZE_PACKED_SELECTOR,
  LEDGER_HEAD_SLOTS,
  checkpointDomain,
  finalizeTransaction,
  packCheckpoint,
  type CheckpointJson,
} from "../../src/supervisor/checkpoint.js";
import { Consume, TopUp, account, record } from "../helpers/records.js";

const { ethers, networkHelpers } = await network.create();
const M = 1;

/** A ledger with 3 records and two quorums of the same 4 supervisors (t = 3) over it. */
async function deployTwoQuorums() {
  const signers = await ethers.getSigners();
  const [admin, regulator, recorder] = signers;
  const supervisors = signers.slice(10, 14);
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const args = [admin.address, await ledger.getAddress(), supervisors.map((s) => s.address), 3, 0, 3_600];
  const quorums = [await ethers.deployContract("SupervisorQuorum", args), await ethers.deployContract("SupervisorQuorum", args)];
  await ledger.connect(regulator).registerMerchant(M, recorder.address);
  const a = account("alice");
  const sequence = (await ledger.merchantBooks(M)).nextSequence;
  await ledger.connect(recorder).recordBatch(M, sequence, "0x", packBatch([record(TopUp, a, 1_000n), record(Consume, a, 10n), record(Consume, a, 20n)]));
  const { chainId } = await ethers.provider.getNetwork();
  return { ledger, quorums, supervisors, chainId };
}

type Fixture = Awaited<ReturnType<typeof deployTwoQuorums>>;

/** The ledger's current head, packed for `quorum` with the first three supervisors' signatures. */
async function packedHead(f: Fixture, quorum: Fixture["quorums"][number]): Promise<string> {
  const [count, head] = await f.ledger.chainHead();
  const c: CheckpointJson = {
    ledger: await f.ledger.getAddress(),
    recordCount: count.toString(),
    chainHead: head,
    stateDigest: id(`books at ${count}`),
    setId: "1",
  };
  const domain = checkpointDomain(f.chainId, await quorum.getAddress());
  const signatures = new Map<string, string>();
  for (const s of f.supervisors.slice(0, 3)) signatures.set(s.address.toLowerCase(), await s.signTypedData(domain, CHECKPOINT_TYPES, c));
  return packCheckpoint(c, [...(await quorum.signingMembers(1n))], signatures, { limit: 3 });
}

describe("supervisor/checkpoint: the finalizing transaction", function () {
  it("calls finalizePacked_11yn() by its selector", function () {
    expect(FINALIZE_PACKED_SELECTOR).to.equal(id("finalizePacked_11yn()").slice(0, 10));
    expect(FINALIZE_PACKED_SELECTOR).to.equal(new Interface(SUPERVISOR_QUORUM_ABI).getFunction("finalizePacked_11yn")!.selector);
  });

  it("lists the ledger slots that hold its chain head and record count", async function () {
    const f = await networkHelpers.loadFixture(deployTwoQuorums);
    const [count, head] = await f.ledger.chainHead();
    const [headSlot, countSlot] = LEDGER_HEAD_SLOTS;
    expect(await ethers.provider.getStorage(await f.ledger.getAddress(), headSlot)).to.equal(head);
    // The record count shares its slot with the custody address (none here): its low 64 bits.
    expect(BigInt(await ethers.provider.getStorage(await f.ledger.getAddress(), countSlot)) & 0xffffffffffffffffn).to.equal(count);
  });

  it("finalizes as finalizeRecords does, for less gas", async function () {
    const f = await networkHelpers.loadFixture(deployTwoQuorums);
    const [viaAbi, viaPacked] = f.quorums;
    const submitter = f.supervisors[0];
    const abi = await (await viaAbi.connect(submitter).finalizeRecords(await packedHead(f, viaAbi))).wait();
    const request = finalizeTransaction(await viaPacked.getAddress(), await f.ledger.getAddress(), await packedHead(f, viaPacked));
    const packed = await (await submitter.sendTransaction(request)).wait();
    expect(packed!.status).to.equal(1);
    const [count] = await f.ledger.chainHead();
    expect(await viaPacked.lastFinal()).to.equal(count);
    expect(await viaAbi.lastFinal()).to.equal(count);
    // Same event, same fields (the signatures differ: one domain per quorum).
    const [eventAbi] = await viaAbi.queryFilter(viaAbi.filters.CheckpointFinalized(count));
    const [eventPacked] = await viaPacked.queryFilter(viaPacked.filters.CheckpointFinalized(count));
    expect([...eventPacked.args]).to.deep.equal([...eventAbi.args]);
    // No ABI offset, length or padding (about 400 gas), and the access list (300 gas).
    expect(packed!.gasUsed < abi!.gasUsed - 600n, `packed ${packed!.gasUsed} against ${abi!.gasUsed}`).to.equal(true);
  });

  it("is refused, changing nothing, when an ABI encoder wraps the packed bytes", async function () {
    const f = await networkHelpers.loadFixture(deployTwoQuorums);
    const quorum = f.quorums[1];
    const packed = await packedHead(f, quorum);
    const wrapped = concat([FINALIZE_PACKED_SELECTOR, new Interface(["function f(bytes)"]).encodeFunctionData("f", [packed]).replace(/^0x.{8}/, "0x")]);
    const length = BigInt((wrapped.length - 2) / 2 - 4);
    await expect(f.supervisors[0].sendTransaction({ to: await quorum.getAddress(), data: wrapped }))
      .to.be.revertedWithCustomError(quorum, "QuorumMalformedCheckpoint")
      .withArgs(length);
    expect(await quorum.lastFinal()).to.equal(0n);
  });
});
