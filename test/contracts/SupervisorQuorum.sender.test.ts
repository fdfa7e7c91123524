import { expect } from "chai";
import fc from "fast-check";
import { Contract, Interface, Wallet, concat, id } from "ethers";

import { SUPERVISOR_QUORUM_ABI } from "../../src/ledger/quorum-abi.js";
import { FINALIZE_PACKED_SELECTOR, finalizeTransaction, packCheckpoint as packAsNode } from "../../src/supervisor/checkpoint.js";
import { deploySameAddress } from "../helpers/quorum-previous.js";
import { CHECKPOINT_TYPES, SET_CHANGE_TYPES, packCheckpoint, toCompact } from "../helpers/quorum-types.js";

/**
 * A member that sends the finalizing transaction signs by sending it: its place, left unsigned
 * with its own address listed, counts as signed (ISupervisorQuorum.finalizeRecords). Checked
 * against the previous contract given that member's EIP-712 signature instead, and on its own:
 * counted once, only for the sender's own place, never for an equivocator, in the event's bitmap.
 */
const QUORUM = new Interface(SUPERVISOR_QUORUM_ABI);

type Chain = Awaited<ReturnType<typeof deploySameAddress>>;

/** The fixture's chain with its quorum, and the checkpoint at the ledger's head signed by every key. */
async function atHead(n: number, t: number) {
  const f = await deploySameAddress(n, t);
  const [count, head] = await f.ledger.chainHead();
  const domain = { name: "PrepaidLedgerSupervision", version: "1", chainId: f.chainId, verifyingContract: f.quorum };
  const c = { ledger: f.ledgerAddress, recordCount: count, chainHead: head, stateDigest: id(`books at ${count}`), setId: 1n };
  const sigs = toCompact(await Promise.all(f.keys.map((k) => k.signTypedData(domain, CHECKPOINT_TYPES, c))));
  const members = f.keys.map((k) => k.address);
  /** The packed checkpoint with signatures at `places` (the other places' addresses listed). */
  const pack = (places: number[]) => packCheckpoint(c, members, places.map((place) => ({ place, signature: sigs[place] })));
  return { ...f, c, members, domain, pack };
}

/** Member `i`'s key, funded, sending on the fixture's network. */
async function memberWallet(f: Chain, i: number): Promise<Wallet> {
  await f.e.provider.send("hardhat_setBalance", [f.keys[i].address, "0x56bc75e2d63100000"]);
  return f.keys[i].connect(f.e.provider);
}

/** `data` sent to the quorum by eth_call from `from` with `code` at its address: "ok", or the revert data. */
async function outcome(f: Chain, code: string, from: string, data: string): Promise<string> {
  await f.e.provider.send("hardhat_setCode", [f.quorum, code]);
  try {
    await f.e.provider.call({ to: f.quorum, from, data });
    return "ok";
  } catch (e) {
    return (e as { data?: string }).data ?? "no data";
  }
}

describe("SupervisorQuorum: the sender's own place counts as its signature", function () {
  it("a member finalizes with its own transaction and t - 1 signatures; the event's bitmap names it", async function () {
    const f = await atHead(4, 3);
    const quorum = new Contract(f.quorum, SUPERVISOR_QUORUM_ABI, f.submitter);
    const member = await memberWallet(f, 3);
    const packed = f.pack([0, 1]); // place 3 unsigned: its address is listed
    await expect(member.sendTransaction(finalizeTransaction(f.quorum, f.ledgerAddress, packed)))
      .to.emit(quorum, "CheckpointFinalized")
      .withArgs(f.c.recordCount, f.c.chainHead, f.c.stateDigest, 1n, 0b1011n);
    expect(await quorum.lastFinal()).to.equal(f.c.recordCount);
  });

  it("through finalizeRecords(bytes) too, the slow path's rebuild", async function () {
    const f = await atHead(4, 3);
    const quorum = new Contract(f.quorum, SUPERVISOR_QUORUM_ABI, await memberWallet(f, 1));
    await expect(quorum.finalizeRecords(f.pack([0, 3])))
      .to.emit(quorum, "CheckpointFinalized")
      .withArgs(f.c.recordCount, f.c.chainHead, f.c.stateDigest, 1n, 0b1011n);
  });

  it("does not count for anyone else: a non-member sender, or a member whose own place is not the unsigned one", async function () {
    const f = await atHead(4, 3);
    const quorum = new Contract(f.quorum, SUPERVISOR_QUORUM_ABI, f.submitter);
    const packed = f.pack([0, 1]);
    await expect(f.submitter.sendTransaction(finalizeTransaction(f.quorum, f.ledgerAddress, packed)))
      .to.be.revertedWithCustomError(quorum, "QuorumBelowThreshold")
      .withArgs(2, 3);
    // Member 0 signed its place already: its transaction adds nothing (counted once).
    const zero = await memberWallet(f, 0);
    await expect(zero.sendTransaction(finalizeTransaction(f.quorum, f.ledgerAddress, packed)))
      .to.be.revertedWithCustomError(quorum, "QuorumBelowThreshold")
      .withArgs(2, 3);
    // Member 0 names itself at another member's unsigned place: not the set's list.
    const members = [...f.members];
    members[3] = f.keys[0].address;
    const signed = toCompact(await Promise.all([1, 2].map((i) => f.keys[i].signTypedData(f.domain, CHECKPOINT_TYPES, f.c))));
    const lying = packCheckpoint(f.c, members, [1, 2].map((place, j) => ({ place, signature: signed[j] })));
    await expect(zero.sendTransaction(finalizeTransaction(f.quorum, f.ledgerAddress, lying))).to.be.revertedWithCustomError(quorum, "QuorumMembersMismatch");
    expect(await quorum.lastFinal()).to.equal(0n);
  });

  it("does not count an equivocator's transaction: named, its place is refused as the signer it is", async function () {
    const f = await atHead(4, 3);
    const quorum = new Contract(f.quorum, SUPERVISOR_QUORUM_ABI, f.submitter);
    // Member 3 signs two state digests for one count: recorded, its place in set 1 now holds zero.
    const other = { ...f.c, stateDigest: id("other books") };
    const [a, b] = await Promise.all([f.c, other].map((c) => f.keys[3].signTypedData(f.domain, CHECKPOINT_TYPES, c)));
    await (await quorum.reportEquivocation(f.c, a, other, b)).wait();
    const cheat = await memberWallet(f, 3);
    // Listing its own address where the set now holds zero: the list is not the set's, and the
    // explanation names it.
    await expect(cheat.sendTransaction(finalizeTransaction(f.quorum, f.ledgerAddress, f.pack([0, 1]))))
      .to.be.revertedWithCustomError(quorum, "QuorumSignerEquivocated")
      .withArgs(f.keys[3].address, 1n);
    // Listing zero, as signingMembers gives it: the sender matches no place.
    const zeroed = [...(await quorum.signingMembers(1n))] as string[];
    const honest = packAsNode(
      { ...f.c, recordCount: f.c.recordCount.toString(), setId: "1" },
      zeroed,
      new Map(await Promise.all([0, 1].map(async (i) => [f.keys[i].address.toLowerCase(), await f.keys[i].signTypedData(f.domain, CHECKPOINT_TYPES, f.c)] as const))),
      { sender: f.keys[3].address },
    );
    await expect(cheat.sendTransaction(finalizeTransaction(f.quorum, f.ledgerAddress, honest)))
      .to.be.revertedWithCustomError(quorum, "QuorumBelowThreshold")
      .withArgs(2, 3);
  });

  it("counts a replaced set's member sending in its grace, at that set's threshold", async function () {
    const f = await atHead(4, 3);
    const quorum = new Contract(f.quorum, SUPERVISOR_QUORUM_ABI, f.submitter);
    const packed = f.pack([0, 2]); // set 1's checkpoint, made before the change
    // Set 2 (the first three keys, threshold 3) replaces set 1 at the ledger's current count.
    const members = f.members.slice(0, 3);
    const change = { ledger: f.ledgerAddress, setId: 1n, supervisors: members, threshold: 3 };
    const approvals = await Promise.all(f.keys.slice(0, 3).map((k) => k.signTypedData(f.domain, SET_CHANGE_TYPES, change)));
    await (await quorum.getFunction("changeSupervisors")(members, 3, approvals)).wait();
    expect(await quorum.setId()).to.equal(2n);
    // Member 3 of set 1 is in no current set, and still signs set 1's checkpoint by sending it.
    await expect((await memberWallet(f, 3)).sendTransaction(finalizeTransaction(f.quorum, f.ledgerAddress, packed)))
      .to.emit(quorum, "CheckpointFinalized")
      .withArgs(f.c.recordCount, f.c.chainHead, f.c.stateDigest, 1n, 0b1101n);
  });

  it("packCheckpoint leaves the sender's place unsigned and counts it toward the limit", async function () {
    const f = await atHead(4, 3);
    const bySigner = new Map(
      await Promise.all(f.keys.map(async (k) => [k.address.toLowerCase(), await k.signTypedData(f.domain, CHECKPOINT_TYPES, f.c)] as const)),
    );
    const json = { ...f.c, recordCount: f.c.recordCount.toString(), setId: "1" };
    const sent = packAsNode(json, f.members, bySigner, { limit: 3, sender: f.keys[1].address });
    const relayed = packAsNode(json, f.members, bySigner, { limit: 3 });
    // Signatures at places 0 and 2 (member 1 is the sender): 44 bytes shorter than 0, 1 and 2.
    expect(sent).to.equal(f.pack([0, 2]));
    expect(relayed).to.equal(f.pack([0, 1, 2]));
    const gas = async (from: Wallet | typeof f.submitter, packed: string) =>
      f.e.provider.estimateGas({ ...finalizeTransaction(f.quorum, f.ledgerAddress, packed), from: await from.getAddress() });
    const [bySender, byRelayer] = [await gas(await memberWallet(f, 1), sent), await gas(f.submitter, relayed)];
    // One ecrecover (3,000) and 44 bytes of calldata less.
    expect(Number(byRelayer - bySender), `sender ${bySender}, relayer ${byRelayer}`).to.be.greaterThan(3_000);
  });

  for (const [n, t, runs] of [
    [4, 3, 200],
    [17, 9, 80],
  ] as const) {
    it(`accepts and refuses what the previous contract did given the sender's signature at its place (fuzzed, ${t} of ${n})`, async function () {
      const f = await atHead(n, t);
      const all = f.members.map((_, i) => i);
      const seen = new Set<string>();
      await fc.assert(
        fc.asyncProperty(fc.subarray<number>(all, { minLength: 0 }), fc.nat({ max: n }), async (places, who) => {
          // who = n: a sender outside the set.
          const from = who === n ? f.submitter.address : f.members[who];
          const packed = f.pack(places);
          // The previous contract, from an outsider, with the sender's signature added at its place.
          const reference = f.pack(who === n || places.includes(who) ? places : [...places, who].sort((a, b) => a - b));
          const previous = await outcome(f, f.codes[0], f.submitter.address, concat([FINALIZE_PACKED_SELECTOR, reference]));
          const fast = await outcome(f, f.codes[1], from, concat([FINALIZE_PACKED_SELECTOR, packed]));
          const slow = await outcome(f, f.codes[1], from, QUORUM.encodeFunctionData("finalizeRecords", [packed]));
          const label = JSON.stringify({ places, who });
          expect(fast, label).to.equal(previous);
          expect(slow, label).to.equal(previous);
          seen.add(fast === "ok" ? "ok" : (QUORUM.parseError(fast)?.name ?? fast));
        }),
        { numRuns: runs, seed: 20261204 },
      );
      expect([...seen].sort()).to.deep.equal(["QuorumBelowThreshold", "ok"]);
    });
  }
});
