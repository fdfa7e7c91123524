import { expect } from "chai";
import fc from "fast-check";
import { Contract, ContractFactory, Interface, TypedDataEncoder, Wallet, concat, dataSlice, getBytes, hexlify, id, toBeHex } from "ethers";
import { network } from "hardhat";

import { packBatch } from "../../src/ledger/codec.js";
import { SUPERVISOR_QUORUM_ABI } from "../../src/ledger/quorum-abi.js";
import { FINALIZE_PACKED_SELECTOR, finalizeTransaction } from "../../src/supervisor/checkpoint.js";
import { PREVIOUS, deploySameAddress } from "../helpers/quorum-previous.js";
import { CHECKPOINT_TYPES, SET_CHANGE_TYPES, packCheckpoint, toCompact } from "../helpers/quorum-types.js";
import { Consume, TopUp, account, fixedRecord } from "../helpers/records.js";

/**
 * finalizePacked_11yn's one-pass path (SupervisorQuorum._finalizeFast) against the contract it
 * replaced (main at 0eed400, pinned in scripts/bench/fixtures/SupervisorQuorum.previous.json):
 * the same bytes, at the same address over the same ledger, must be accepted or refused alike,
 * with the same error and values.
 */
const { ethers, networkHelpers } = await network.create();
const QUORUM = new Interface(SUPERVISOR_QUORUM_ABI);
const M = 1;

/** A ledger with 3 records, a mark at 2, and the previous and current quorum of the same 4 keys (t = 3). */
async function deployBoth() {
  const signers = await ethers.getSigners();
  const [admin, regulator, recorder, submitter] = signers;
  const keys = [0, 1, 2, 3].map((i) => new Wallet(id(`fast-path supervisor ${i}`)));
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const ledgerAddress = await ledger.getAddress();
  const args = [admin.address, ledgerAddress, keys.map((k) => k.address), 3, 0, 3_600] as const;
  const previous = await new ContractFactory(PREVIOUS.abi, PREVIOUS.bytecode, admin).deploy(...args);
  const current = await ethers.deployContract("SupervisorQuorum", [...args]);
  await ledger.connect(regulator).registerMerchant(M, recorder.address);
  const a = account("alice");
  const upload = async (records: ReturnType<typeof fixedRecord>[]) =>
    ledger.connect(recorder).recordBatch(M, (await ledger.merchantBooks(M)).nextSequence, "0x", packBatch(records));
  await upload([fixedRecord(TopUp, a, 1_000n, "r1"), fixedRecord(Consume, a, 10n, "r2")]);
  await ledger.markCheckpoint();
  await upload([fixedRecord(Consume, a, 20n, "r3")]);
  const { chainId } = await ethers.provider.getNetwork();
  return { ledger, ledgerAddress, keys, submitter, chainId, quorums: [previous, current].map((q) => q as unknown as Contract) };
}
type Fixture = Awaited<ReturnType<typeof deployBoth>>;

interface Fields {
  recordCount: bigint;
  chainHead: string;
  stateDigest: string;
  setId: bigint;
}

/** `fields` packed for `quorum`, signed by keys[i] at place i for each i in `places`. */
async function packFor(f: Fixture, quorum: Contract, fields: Fields, places: number[]): Promise<string> {
  const domain = { name: "PrepaidLedgerSupervision", version: "1", chainId: f.chainId, verifyingContract: await quorum.getAddress() };
  const c = { ledger: f.ledgerAddress, ...fields };
  const sigs = toCompact(await Promise.all(places.map((i) => f.keys[i].signTypedData(domain, CHECKPOINT_TYPES, c))));
  return packCheckpoint(c, f.keys.map((k) => k.address), places.map((place, j) => ({ place, signature: sigs[j] })));
}

/** A change to a packed checkpoint, applied alike to both quorums' bytes. */
type Mutation =
  | { kind: "none" }
  | { kind: "truncate"; keep: number }
  | { kind: "append"; bytes: Uint8Array }
  | { kind: "byte"; at: number; value: number }
  | { kind: "header"; at: number; value: number };

function mutate(packed: string, m: Mutation): string {
  const b = getBytes(packed);
  switch (m.kind) {
    case "none":
      return packed;
    case "truncate":
      return hexlify(b.slice(0, Math.min(m.keep, b.length)));
    case "append":
      return concat([b, m.bytes]);
    case "byte": {
      const c = Uint8Array.from(b);
      c[m.at % c.length] = m.value;
      return hexlify(c);
    }
    case "header": {
      const c = Uint8Array.from(b);
      c[m.at] = m.value;
      return hexlify(c);
    }
  }
}

const MUTATION: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.constant<Mutation>({ kind: "none" }), weight: 4 },
  fc.record({ kind: fc.constant("truncate" as const), keep: fc.nat({ max: 300 }) }),
  fc.record({ kind: fc.constant("append" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 70 }) }),
  fc.record({ kind: fc.constant("byte" as const), at: fc.nat({ max: 400 }), value: fc.nat({ max: 255 }) }),
  // n, and the bitmap's first bytes.
  fc.record({ kind: fc.constant("header" as const), at: fc.constantFrom(80, 81, 82, 83), value: fc.nat({ max: 255 }) }),
);

describe("SupervisorQuorum: finalizePacked_11yn's one-pass path", function () {
  // 4 members (a 1-byte bitmap) and 17 (3 bytes, places beyond the first byte's).
  for (const [n, t, runs] of [
    [4, 3, 400],
    [17, 9, 150],
  ] as const) {
    it(`accepts and refuses what the previous contract did, with the same errors and values (fuzzed, ${t} of ${n})`, async function () {
      const f = await deploySameAddress(n, t);
      const [count, head] = await f.ledger.chainHead();
      const marked = await f.ledger.markedHead(2n);
      const from = f.submitter.address;
      const domain = { name: "PrepaidLedgerSupervision", version: "1", chainId: f.chainId, verifyingContract: f.quorum };
      const members = f.keys.map((k) => k.address);
      const all = members.map((_, i) => i);
      const seen = new Set<string>();
      /** finalizePacked_11yn(packed) by eth_call with `code` at the quorum's address: "ok", or the revert data. */
      const outcome = async (code: string, packed: string): Promise<string> => {
        await f.e.provider.send("hardhat_setCode", [f.quorum, code]);
        try {
          await f.e.provider.call({ to: f.quorum, from, data: concat([FINALIZE_PACKED_SELECTOR, packed]) });
          return "ok";
        } catch (e) {
          return (e as { data?: string }).data ?? "no data";
        }
      };
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            // At the head, behind it (marked at 2, unmarked at 1), beyond it, or at 0.
            recordCount: fc.constantFrom(count, count, count, 2n, 1n, count + 1n, 0n),
            wrongHead: fc.constantFrom(false, false, false, true),
            setId: fc.constantFrom(1n, 1n, 1n, 0n, 2n),
            // Mostly enough places, in several patterns; sometimes any subset.
            places: fc.oneof(
              fc.constantFrom<number[]>(all.slice(0, t), all.slice(n - t), all, all.filter((i) => i !== 1).slice(0, t)),
              fc.subarray<number>(all, { minLength: 0 }),
            ),
            outsider: fc.constantFrom(false, false, false, true),
            mutation: MUTATION,
          }),
          async ({ recordCount, wrongHead, setId, places, outsider, mutation }) => {
            const chainHead = wrongHead ? id("not the head") : recordCount === 2n ? marked : head;
            const c = { ledger: f.ledgerAddress, recordCount, chainHead, stateDigest: id(`books at ${recordCount}`), setId };
            // An outsider signs in the first place given, if asked.
            const signers = places.map((i, j) => (outsider && j === 0 ? new Wallet(id("outsider")) : f.keys[i]));
            const sigs = toCompact(await Promise.all(signers.map((k) => k.signTypedData(domain, CHECKPOINT_TYPES, c))));
            const packed = mutate(packCheckpoint(c, members, places.map((place, j) => ({ place, signature: sigs[j] }))), mutation);
            const [before, after] = [await outcome(f.codes[0], packed), await outcome(f.codes[1], packed)];
            const label = JSON.stringify({ recordCount, wrongHead, setId, places, outsider, mutation }, (_, v) => (typeof v === "bigint" ? v.toString() : v));
            expect(after, label).to.equal(before);
            seen.add(after === "ok" ? "ok" : (QUORUM.parseError(after)?.name ?? after));
          },
        ),
        { numRuns: runs, seed: 20261203 },
      );
      // The runs reached the one-pass path's success and the refusals around it.
      for (const name of ["ok", "QuorumMalformedCheckpoint", "QuorumHeadMismatch", "QuorumBelowThreshold", "QuorumBeyondLedger", "QuorumInvalidSignature", "QuorumSignerNotSupervisor"]) {
        expect([...seen]).to.include(name);
      }
    });
  }

  it("treats a set of 255 (a 32-byte bitmap) as the previous contract did, and finalizes it", async function () {
    const f = await deploySameAddress(255, 200);
    const [count, head] = await f.ledger.chainHead();
    const domain = { name: "PrepaidLedgerSupervision", version: "1", chainId: f.chainId, verifyingContract: f.quorum };
    const members = f.keys.map((k) => k.address);
    const c = { ledger: f.ledgerAddress, recordCount: count, chainHead: head, stateDigest: id("books of 255"), setId: 1n };
    const sigs = toCompact(await Promise.all(f.keys.map((k) => k.signTypedData(domain, CHECKPOINT_TYPES, c))));
    const pack = (places: number[]) => packCheckpoint(c, members, places.map((place) => ({ place, signature: sigs[place] })));
    const all = members.map((_, i) => i);
    const outcome = async (code: string, packed: string): Promise<string> => {
      await f.e.provider.send("hardhat_setCode", [f.quorum, code]);
      try {
        await f.e.provider.call({ to: f.quorum, from: f.submitter.address, data: concat([FINALIZE_PACKED_SELECTOR, packed]) });
        return "ok";
      } catch (e) {
        return (e as { data?: string }).data ?? "no data";
      }
    };
    const spread = all.filter((i) => i % 5 !== 2); // 204 places, spread over the whole bitmap
    const beyond = getBytes(pack(all));
    beyond[81] |= 0x80; // bit 255: beyond place 254
    const cases = [pack(all), pack(all.slice(55)), pack(spread), pack(all.slice(0, 199)), hexlify(beyond)];
    const results: string[] = [];
    for (const packed of cases) {
      const [before, after] = [await outcome(f.codes[0], packed), await outcome(f.codes[1], packed)];
      expect(after).to.equal(before);
      results.push(after === "ok" ? "ok" : QUORUM.parseError(after)!.name);
    }
    expect(results).to.deep.equal(["ok", "ok", "ok", "QuorumBelowThreshold", "QuorumMalformedCheckpoint"]);
    const bits = spread.reduce((b, i) => b | (1n << BigInt(i)), 0n);
    const quorum = new Contract(f.quorum, SUPERVISOR_QUORUM_ABI, f.submitter);
    // The one-pass path took it: had it fallen through, the 204 ecrecovers would be paid twice.
    const viaPacked = await f.e.provider.estimateGas({ ...finalizeTransaction(f.quorum, f.ledgerAddress, pack(spread)), from: f.submitter.address });
    const viaAbi = await f.e.provider.estimateGas({ to: f.quorum, from: f.submitter.address, data: QUORUM.encodeFunctionData("finalizeRecords", [pack(spread)]) });
    expect(viaPacked < viaAbi, `packed ${viaPacked}, ABI ${viaAbi}`).to.equal(true);
    await expect(f.submitter.sendTransaction(finalizeTransaction(f.quorum, f.ledgerAddress, pack(spread))))
      .to.emit(quorum, "CheckpointFinalized")
      .withArgs(count, head, c.stateDigest, 1n, bits);
    expect(await quorum.lastFinal()).to.equal(count);
  });

  it("finalizes at the ledger's head, behind it at a mark, and refuses a replay, as before", async function () {
    const f = await networkHelpers.loadFixture(deployBoth);
    const [count, head] = await f.ledger.chainHead();
    for (const q of f.quorums) {
      const behind = { recordCount: 2n, chainHead: await f.ledger.markedHead(2n), stateDigest: id("books at 2"), setId: 1n };
      await expect(f.submitter.sendTransaction({ to: await q.getAddress(), data: concat([FINALIZE_PACKED_SELECTOR, await packFor(f, q, behind, [0, 2, 3])]) }))
        .to.emit(q, "CheckpointFinalized")
        .withArgs(2n, behind.chainHead, behind.stateDigest, 1n, 0b1101n);
      const at = { recordCount: count, chainHead: head, stateDigest: id("books at head"), setId: 1n };
      const packed = await packFor(f, q, at, [1, 2, 3]);
      await expect(f.submitter.sendTransaction(finalizeTransaction(await q.getAddress(), f.ledgerAddress, packed)))
        .to.emit(q, "CheckpointFinalized")
        .withArgs(count, head, at.stateDigest, 1n, 0b1110n);
      expect(await q.lastFinal()).to.equal(count);
      await expect(f.submitter.sendTransaction({ to: await q.getAddress(), data: concat([FINALIZE_PACKED_SELECTOR, packed]) }))
        .to.be.revertedWithCustomError(q, "QuorumCheckpointNotNewer")
        .withArgs(count, count);
    }
  });

  it("finalizes a replaced set's checkpoint at the ledger's head without paying its ecrecovers twice", async function () {
    const f = await networkHelpers.loadFixture(deployBoth);
    const quorum = f.quorums[1];
    const quorumAddress = await quorum.getAddress();
    const [count, head] = await f.ledger.chainHead();
    const fields = { recordCount: count, chainHead: head, stateDigest: id("in flight"), setId: 1n };
    const packed = await packFor(f, quorum, fields, [0, 1, 2]);
    // Set 2 (the same keys, threshold 2) replaces set 1 at the ledger's current count.
    const domain = { name: "PrepaidLedgerSupervision", version: "1", chainId: f.chainId, verifyingContract: quorumAddress };
    const members = f.keys.map((k) => k.address);
    const change = { ledger: f.ledgerAddress, setId: 1n, supervisors: members, threshold: 2 };
    expect(await quorum.setChangeDigest(members, 2)).to.equal(TypedDataEncoder.hash(domain, SET_CHANGE_TYPES, change));
    const approvals = await Promise.all(f.keys.slice(0, 3).map((k) => k.signTypedData(domain, SET_CHANGE_TYPES, change)));
    await (await quorum.connect(f.submitter).getFunction("changeSupervisors")(members, 2, approvals)).wait();
    expect(await quorum.setId()).to.equal(2n);
    const snapshot = await networkHelpers.takeSnapshot();
    const viaAbi = await (await f.submitter.sendTransaction({ to: quorumAddress, data: QUORUM.encodeFunctionData("finalizeRecords", [packed]) })).wait();
    await snapshot.restore();
    const tx = f.submitter.sendTransaction(finalizeTransaction(quorumAddress, f.ledgerAddress, packed));
    await expect(tx).to.emit(quorum, "CheckpointFinalized").withArgs(count, head, fields.stateDigest, 1n, 0b0111n);
    const viaPacked = await (await tx).wait();
    // Set 1's list was rebuilt once (3 ecrecovers, ~9,300 gas): the packed entry stays cheaper.
    expect(viaPacked!.gasUsed < viaAbi!.gasUsed, `packed ${viaPacked!.gasUsed}, ABI ${viaAbi!.gasUsed}`).to.equal(true);
  });

  it("does not list the quorum's own state slot: the quorum's access-list entry costs more than it saves", async function () {
    const f = await networkHelpers.loadFixture(deployBoth);
    const quorum = f.quorums[1];
    const quorumAddress = await quorum.getAddress();
    const [count, head] = await f.ledger.chainHead();
    const packed = await packFor(f, quorum, { recordCount: count, chainHead: head, stateDigest: id("s"), setId: 1n }, [0, 1, 2]);
    const request = finalizeTransaction(quorumAddress, f.ledgerAddress, packed);
    expect(request.accessList).to.deep.equal([{ address: f.ledgerAddress, storageKeys: [toBeHex(8, 32), toBeHex(9, 32)] }]);
    // The state word: the only slot of the quorum whose low 64 bits moved to `count`.
    const slots = await Promise.all(Array.from({ length: 32 }, (_, i) => ethers.provider.getStorage(quorumAddress, i)));
    const snapshot = await networkHelpers.takeSnapshot();
    const plain = await (await f.submitter.sendTransaction(request)).wait();
    const after = await Promise.all(Array.from({ length: 32 }, (_, i) => ethers.provider.getStorage(quorumAddress, i)));
    const changed = after.map((v, i) => (v !== slots[i] ? i : -1)).filter((i) => i >= 0);
    expect(changed).to.have.length(1);
    expect(BigInt(dataSlice(after[changed[0]], 24))).to.equal(count);
    await snapshot.restore();
    const ledgerEntry = { address: f.ledgerAddress, storageKeys: [toBeHex(8, 32), toBeHex(9, 32)] };
    const listed = { ...request, accessList: [ledgerEntry, { address: quorumAddress, storageKeys: [toBeHex(changed[0], 32)] }] };
    const withSlot = await (await f.submitter.sendTransaction(listed)).wait();
    // 2,400 for the quorum's address + 1,900 for the key, against 2,100 - 100 saved: +2,300.
    expect(withSlot!.gasUsed - plain!.gasUsed).to.equal(2_300n);
  });
});
