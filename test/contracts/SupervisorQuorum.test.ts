import { expect } from "chai";
import fc from "fast-check";
import {
  type BaseContract,
  concat,
  getAddress,
  hexlify,
  id,
  recoverAddress,
  Signature,
  toBeHex,
  TypedDataEncoder,
  type TypedDataDomain,
  Wallet,
  ZeroAddress,
  ZeroHash,
} from "ethers";
import { network } from "hardhat";

import { packBatch, type PackedRecord } from "../../src/ledger/codec.js";
import { CHECKPOINT_TYPES, SECP256K1_N, SET_CHANGE_TYPES } from "../helpers/quorum-types.js";
import { finalizeWith, listCommitment, packCheckpoint, signerBits, toCompact, viaPacked, type CompactSignature, type FinalizingQuorum, type SupervisorQuorumLike } from "../helpers/quorum-types.js";
import { Consume, Refund, TopUp, account, record } from "../helpers/records.js";

const { ethers, networkHelpers } = await network.create();

const M1 = 1;
const THRESHOLD = 3;
const SET_1 = 1n;
const NO_ENVELOPE = "0x";
/** The quorum's delays in these tests: governor handover, set change (and a replaced set's grace). */
const ADMIN_DELAY = 86_400;
const SET_CHANGE_DELAY = 3_600;

/** RecordStatus in ISupervisorQuorum. */
const Unknown = 0n;
const Pending = 1n;
const Confirmed = 2n;

interface Checkpoint {
  ledger: string;
  recordCount: bigint;
  chainHead: string;
  stateDigest: string;
  setId: bigint;
}

interface TypedSigner {
  address: string;
  signTypedData(domain: TypedDataDomain, types: typeof CHECKPOINT_TYPES, value: Checkpoint): Promise<string>;
}


/** A packed checkpoint with `signatures` at places 0, 1, … in the order given, the rest of `members` after. */
function inPlaces(c: Checkpoint, members: string[], signatures: CompactSignature[]): string {
  return packCheckpoint(
    c,
    members,
    signatures.map((signature, place) => ({ place, signature })),
    Math.max(members.length, signatures.length),
  );
}

/** A digest standing in for the books a supervisor rebuilt after `count` records. */
const books = (count: bigint, variant = "") => id(`books after ${count}${variant}`);

/**
 * A ledger with 5 records: heads marked at counts 2 and 4, count 5 unmarked; and a quorum of 4
 * supervisors with threshold 3 over it.
 */
async function deployQuorum() {
  const [governor, regulator, recorder, stranger, s0, s1, s2, s3, outsider] = await ethers.getSigners();
  const supervisors = [s0, s1, s2, s3];
  const ledger = await ethers.deployContract("PrepaidLedger", [governor.address, regulator.address, 0, 3_600]);
  await ledger.connect(regulator).registerMerchant(M1, recorder.address);
  const quorum = await ethers.deployContract("SupervisorQuorum", [
    governor.address,
    await ledger.getAddress(),
    supervisors.map((s) => s.address),
    THRESHOLD,
    ADMIN_DELAY,
    SET_CHANGE_DELAY,
  ]);
  const a = account("alice");
  const b = account("bob");
  const upload = async (records: PackedRecord[]) => {
    const seq = (await ledger.merchantBooks(M1)).nextSequence;
    await ledger.connect(recorder).recordBatch(M1, seq, NO_ENVELOPE, packBatch(records));
  };
  await upload([record(TopUp, a, 1_000n), record(Consume, a, 200n)]);
  await ledger.markCheckpoint();
  await upload([record(TopUp, b, 500n), record(Refund, a, 100n)]);
  await ledger.markCheckpoint();
  await upload([record(Consume, b, 50n)]);

  const { chainId } = await ethers.provider.getNetwork();
  const domain: TypedDataDomain = {
    name: "PrepaidLedgerSupervision",
    version: "1",
    chainId,
    verifyingContract: await quorum.getAddress(),
  };
  return { ledger, quorum, governor, regulator, recorder, stranger, outsider, supervisors, domain, upload };
}

type Fixture = Awaited<ReturnType<typeof deployQuorum>>;

/** The honest checkpoint at `count`: the ledger's marked head, the set given (current by default). */
async function checkpointAt(f: Fixture, count: bigint, overrides: Partial<Checkpoint> = {}): Promise<Checkpoint> {
  return {
    ledger: await f.ledger.getAddress(),
    recordCount: count,
    chainHead: await f.ledger.markedHead(count),
    stateDigest: books(count),
    setId: await f.quorum.setId(),
    ...overrides,
  };
}

/**
 * Installs the next set at once, signed by `signers` (by default the first `threshold` members of
 * set 1, which the tests keep in every set they replace).
 */
async function replaceSet(f: Fixture, members: string[], t: number, signers?: TypedSigner[]) {
  const value = { ledger: await f.ledger.getAddress(), setId: await f.quorum.setId(), supervisors: members, threshold: t };
  const by = signers ?? f.supervisors.slice(0, Number(await f.quorum.threshold()));
  const signatures = await Promise.all(
    by.map((s) => (s as unknown as { signTypedData: (d: TypedDataDomain, t: object, v: object) => Promise<string> }).signTypedData(f.domain, SET_CHANGE_TYPES, value)),
  );
  return f.quorum.connect(f.stranger).changeSupervisors(members, t, signatures);
}

/** Each signer's signature over `c`, under `domain` (the quorum's by default). */
function signAll(f: Fixture, signers: TypedSigner[], c: Checkpoint, domain: TypedDataDomain = f.domain) {
  return Promise.all(signers.map((s) => s.signTypedData(domain, CHECKPOINT_TYPES, c)));
}

/** The address a signature over `c` under another domain recovers to under the quorum's. */
const recoveredHere = (f: Fixture, c: Checkpoint, signature: string) =>
  recoverAddress(TypedDataEncoder.hash(f.domain, CHECKPOINT_TYPES, c), signature);

/** Everything a refused call must leave untouched. */
async function snapshot(f: Fixture) {
  const set = await f.quorum.setId();
  return {
    lastFinal: await f.quorum.lastFinal(),
    setId: set,
    threshold: await f.quorum.threshold(),
    supervisors: await f.quorum.supervisors(),
    equivocators: await Promise.all(f.supervisors.map((s) => f.quorum.isEquivocator(set, s.address))),
    counts: await Promise.all(f.supervisors.map((s) => f.quorum.equivocationCount(s.address))),
  };
}

/** Asserts `call` reverts with `error(...args)` and changes nothing. */
async function expectRefused(
  f: Fixture,
  call: () => Promise<unknown>,
  error: string,
  args: unknown[],
  on: BaseContract = f.quorum,
) {
  const before = await snapshot(f);
  await expect(call())
    .to.be.revertedWithCustomError(on, error)
    .withArgs(...args);
  expect(await snapshot(f)).to.deep.equal(before);
}

describe("SupervisorQuorum", function () {
  describe("deployment", function () {
    it("installs set 1, the governor and the ledger", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      const addresses = f.supervisors.map((s) => s.address);
      expect(await f.quorum.setId()).to.equal(SET_1);
      expect(await f.quorum.threshold()).to.equal(BigInt(THRESHOLD));
      expect(await f.quorum.supervisors()).to.deep.equal(addresses);
      expect(await f.quorum.LEDGER()).to.equal(await f.ledger.getAddress());
      expect(await f.quorum.hasRole(ZeroHash, f.governor.address)).to.equal(true);
      for (const s of addresses) expect(await f.quorum.isSupervisor(SET_1, s)).to.equal(true);
      expect(await f.quorum.isSupervisor(SET_1, f.stranger.address)).to.equal(false);
      expect(await f.quorum.isSupervisor(2n, addresses[0])).to.equal(false);
      expect(await f.quorum.lastFinal()).to.equal(0n);
      await expect(f.quorum.deploymentTransaction())
        .to.emit(f.quorum, "SupervisorsChanged")
        .withArgs(SET_1, addresses, THRESHOLD);
    });

    it("signs under the documented EIP-712 domain and type", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      expect(await f.quorum.CHECKPOINT_TYPEHASH()).to.equal(
        id("Checkpoint(address ledger,uint64 recordCount,bytes32 chainHead,bytes32 stateDigest,uint64 setId)"),
      );
      const domain = await f.quorum.eip712Domain();
      expect([domain.name, domain.version, domain.chainId, domain.verifyingContract]).to.deep.equal([
        f.domain.name,
        f.domain.version,
        f.domain.chainId,
        f.domain.verifyingContract,
      ]);
    });

    it("computes the digest ethers' TypedDataEncoder computes, for any checkpoint", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hexlify);
      const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
      const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => getAddress(hexlify(b)));
      await fc.assert(
        fc.asyncProperty(
          fc.record({ ledger: address, recordCount: u64, chainHead: bytes32, stateDigest: bytes32, setId: u64 }),
          async (c) => {
            expect(await f.quorum.checkpointDigest(c)).to.equal(TypedDataEncoder.hash(f.domain, CHECKPOINT_TYPES, c));
          },
        ),
        { numRuns: 25 },
      );
      // A hardhat account's eth_signTypedData_v4 signs exactly that digest.
      const c = await checkpointAt(f, 4n);
      const [signature] = await signAll(f, [f.supervisors[0]], c);
      expect(recoverAddress(await f.quorum.checkpointDigest(c), signature)).to.equal(f.supervisors[0].address);
    });

    it("refuses a zero governor or ledger, and a bad first set", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      const factory = await ethers.getContractFactory("SupervisorQuorum");
      const ledger = await f.ledger.getAddress();
      const set = f.supervisors.map((s) => s.address);
      const delays = [ADMIN_DELAY, SET_CHANGE_DELAY] as const;
      await expect(factory.deploy(ZeroAddress, ledger, set, THRESHOLD, ...delays)).to.be.revertedWithCustomError(
        factory,
        "QuorumZeroAddress",
      );
      await expect(factory.deploy(f.governor.address, ZeroAddress, set, THRESHOLD, ...delays)).to.be.revertedWithCustomError(
        factory,
        "QuorumZeroAddress",
      );
      await expect(factory.deploy(f.governor.address, ledger, set, 0, ...delays))
        .to.be.revertedWithCustomError(factory, "QuorumInvalidThreshold")
        .withArgs(0, 4);
      await expect(factory.deploy(f.governor.address, ledger, [], 1, ...delays))
        .to.be.revertedWithCustomError(factory, "QuorumInvalidThreshold")
        .withArgs(1, 0);
      await expect(factory.deploy(f.governor.address, ledger, [set[0], set[0]], 1, ...delays))
        .to.be.revertedWithCustomError(factory, "QuorumDuplicateSupervisor")
        .withArgs(set[0]);
      await expect(factory.deploy(f.governor.address, ledger, set, THRESHOLD, ADMIN_DELAY, 3_599))
        .to.be.revertedWithCustomError(factory, "QuorumDelayTooShort")
        .withArgs(3_599, 3_600);
    });
  });

  // Every case runs through both entries: finalizeRecords(bytes) (ABI-wrapped, kept for nodes
  // of the earlier design) and finalizePacked_11yn() (the same bytes after the selector).
  for (const entry of ["finalizeRecords", "finalizePacked_11yn"] as const) {
    const via = (quorum: SupervisorQuorumLike): FinalizingQuorum => (entry === "finalizeRecords" ? quorum : viaPacked(quorum));
    describe(entry, function () {
      it("makes a checkpoint final with 3 of 4 signatures, from anyone", async function () {
        const f = await networkHelpers.loadFixture(deployQuorum);
        const c = await checkpointAt(f, 4n);
        const signers = [f.supervisors[0], f.supervisors[2], f.supervisors[3]];
        const signatures = await signAll(f, signers, c);
        await expect(finalizeWith(via(f.quorum.connect(f.stranger)), c, signatures))
          .to.emit(f.quorum, "CheckpointFinalized")
          .withArgs(
            4n,
            c.chainHead,
            c.stateDigest,
            SET_1,
            signerBits(f.supervisors, signers),
          );
        expect(await f.quorum.lastFinal()).to.equal(4n);
        expect(c.chainHead).to.equal((await f.ledger.queryFilter(f.ledger.filters.BatchRecorded(M1)))[1].args.chainHead);
      });

      it("makes a checkpoint final with 4 of 4, in any order", async function () {
        const f = await networkHelpers.loadFixture(deployQuorum);
        const c = await checkpointAt(f, 2n);
        const signers = [f.supervisors[3], f.supervisors[0], f.supervisors[2], f.supervisors[1]];
        await expect(finalizeWith(via(f.quorum), c, await signAll(f, signers, c)))
          .to.emit(f.quorum, "CheckpointFinalized")
          .withArgs(
            2n,
            c.chainHead,
            c.stateDigest,
            SET_1,
            signerBits(f.supervisors, signers),
          );
        expect(await f.quorum.lastFinal()).to.equal(2n);
      });

      it("moves forward only", async function () {
        const f = await networkHelpers.loadFixture(deployQuorum);
        const quorum3 = f.supervisors.slice(0, 3);
        const at2 = await checkpointAt(f, 2n);
        const at4 = await checkpointAt(f, 4n);
        await expectRefused(f, async () => finalizeWith(via(f.quorum), await checkpointAt(f, 0n), []), "QuorumCheckpointNotNewer", [
          0n,
          0n,
        ]);
        await finalizeWith(via(f.quorum), at4, await signAll(f, quorum3, at4));
        await expectRefused(
          f,
          async () => finalizeWith(via(f.quorum), at2, await signAll(f, quorum3, at2)),
          "QuorumCheckpointNotNewer",
          [2n, 4n],
        );
        await expectRefused(
          f,
          async () => finalizeWith(via(f.quorum), at4, await signAll(f, quorum3, at4)),
          "QuorumCheckpointNotNewer",
          [4n, 4n],
        );

        await f.ledger.markCheckpoint();
        const at5 = await checkpointAt(f, 5n);
        await expect(finalizeWith(via(f.quorum), at5, await signAll(f, quorum3, at5)))
          .to.emit(f.quorum, "CheckpointFinalized")
          .withArgs(
            5n,
            at5.chainHead,
            at5.stateDigest,
            SET_1,
            signerBits(f.supervisors, quorum3),
          );
        expect(await f.quorum.lastFinal()).to.equal(5n);
      });

      describe("when the signatures fall short", function () {
        it("refuses 2 of 4, and none", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const c = await checkpointAt(f, 4n);
          const two = await signAll(f, f.supervisors.slice(1, 3), c);
          await expectRefused(f, () => finalizeWith(via(f.quorum), c, two), "QuorumBelowThreshold", [2n, THRESHOLD]);
          await expectRefused(f, () => finalizeWith(via(f.quorum), c, []), "QuorumBelowThreshold", [0n, THRESHOLD]);
        });

        it("refuses a signature by a key outside the set", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const c = await checkpointAt(f, 4n);
          const forger = Wallet.createRandom();
          const honest = await signAll(f, f.supervisors.slice(0, 3), c);
          const forged = await signAll(f, [forger], c);
          await expectRefused(
            f,
            () => finalizeWith(via(f.quorum), c, [...honest.slice(0, 2), ...forged]),
            "QuorumSignerNotSupervisor",
            [forger.address, SET_1],
          );
          // The governor and a hardhat account that is no supervisor fare no better.
          for (const key of [f.governor, f.outsider]) {
            const [sig] = await signAll(f, [key], c);
            await expectRefused(f, () => finalizeWith(via(f.quorum), c, [sig, ...honest]), "QuorumSignerNotSupervisor", [
              key.address,
              SET_1,
            ]);
          }
        });

        it("refuses a duplicated signer, in any position", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const c = await checkpointAt(f, 4n);
          const [a, b, d] = await signAll(f, f.supervisors.slice(0, 3), c);
          const s0 = f.supervisors[0].address;
          await expectRefused(f, () => finalizeWith(via(f.quorum), c, [a, b, a]), "QuorumDuplicateSigner", [s0]);
          await expectRefused(f, () => finalizeWith(via(f.quorum), c, [a, a, b, d]), "QuorumDuplicateSigner", [s0]);
          // The other encoding of a valid signature (its high-s twin, which ecrecover would also
          // accept) is refused as malformed, so malleability cannot turn one key into two votes.
          const sig = Signature.from(b);
          const highS = SECP256K1_N - BigInt(sig.s);
          const members = [...(await f.quorum.signingMembers(SET_1))];
          const [ca, cb, cd] = toCompact([a, b, d]);
          // A high s fits the 255 bits of vs only below 2^255; else vs cannot carry the twin at all.
          if (highS < 1n << 255n) {
            const twin = { r: sig.r, vs: toBeHex(((sig.v === 27 ? 1n : 0n) << 255n) | highS, 32) };
            await expectRefused(f, () => via(f.quorum).finalizeRecords(inPlaces(c, members, [ca, cb, twin, cd])), "QuorumInvalidSignature", [2n]);
          }
        });

        it("refuses malformed signatures by their index", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const c = await checkpointAt(f, 4n);
          const [a, b, d] = toCompact(await signAll(f, f.supervisors.slice(0, 3), c));
          const members = [...(await f.quorum.signingMembers(SET_1))];
          const half = SECP256K1_N / 2n;
          for (const [bad, index] of [
            [{ r: d.r, vs: toBeHex(half + 1n, 32) }, 2n], // s above half the order
            [{ r: d.r, vs: toBeHex((1n << 255n) - 1n, 32) }, 2n], // the largest s vs can carry
            [{ r: ZeroHash, vs: d.vs }, 2n], // r = 0: ecrecover finds no key
            [{ r: ZeroHash, vs: ZeroHash }, 0n], // all zero
          ] as const) {
            const sigs = index === 0n ? [bad, a, b, d] : [a, b, bad];
            await expectRefused(f, () => via(f.quorum).finalizeRecords(inPlaces(c, members, sigs)), "QuorumInvalidSignature", [index]);
          }
        });
      });

      describe("when a signature was given for somewhere else", function () {
        it("does not count a signature over another chain id", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const c = await checkpointAt(f, 4n);
          const elsewhere = { ...f.domain, chainId: 1n };
          const sigs = await signAll(f, f.supervisors.slice(0, 3), c, elsewhere);
          const recovered = recoveredHere(f, c, sigs[0]);
          expect(recovered).to.not.equal(f.supervisors[0].address);
          await expectRefused(f, () => finalizeWith(via(f.quorum), c, sigs), "QuorumSignerNotSupervisor", [recovered, SET_1]);
        });

        it("does not count a signature given to another quorum contract, which does", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const other = await ethers.deployContract("SupervisorQuorum", [
            f.governor.address,
            await f.ledger.getAddress(),
            f.supervisors.map((s) => s.address),
            THRESHOLD,
            ADMIN_DELAY,
            SET_CHANGE_DELAY,
          ]);
          const c = await checkpointAt(f, 4n);
          const sigs = await signAll(f, f.supervisors.slice(0, 3), c, {
            ...f.domain,
            verifyingContract: await other.getAddress(),
          });
          await expectRefused(f, () => finalizeWith(via(f.quorum), c, sigs), "QuorumSignerNotSupervisor", [
            recoveredHere(f, c, sigs[0]),
            SET_1,
          ]);
          await expect(finalizeWith(via(other), c, sigs)).to.emit(other, "CheckpointFinalized");
        });

        it("does not count signatures over a checkpoint of another ledger (a packed checkpoint names none: it is LEDGER's)", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const otherLedger = await ethers.deployContract("PrepaidLedger", [f.governor.address, f.regulator.address, 0, 3_600]);
          const c = await checkpointAt(f, 4n);
          const theirs = { ...c, ledger: await otherLedger.getAddress() };
          const sigs = await signAll(f, f.supervisors.slice(0, 3), theirs);
          await expectRefused(f, () => finalizeWith(via(f.quorum), c, sigs), "QuorumSignerNotSupervisor", [
            recoveredHere(f, c, sigs[0]),
            SET_1,
          ]);
        });

        it("binds a signature to its set id: another set's id does not count it", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const c1 = await checkpointAt(f, 4n);
          const sigs1 = await signAll(f, f.supervisors.slice(0, 3), c1);
          // The same people, re-installed: only the set id differs.
          await replaceSet(
            f,
            f.supervisors.map((s) => s.address),
            THRESHOLD,
          );
          const c2 = { ...c1, setId: 2n };
          await expectRefused(f, () => finalizeWith(via(f.quorum), c2, sigs1), "QuorumSignerNotSupervisor", [
            recoveredHere(f, c2, sigs1[0]),
            2n,
          ]);
          await expectRefused(f, () => finalizeWith(via(f.quorum), { ...c1, setId: 3n }, sigs1), "QuorumWrongSet", [3n, 2n]);
          await expect(finalizeWith(via(f.quorum), c2, await signAll(f, f.supervisors.slice(0, 3), c2)))
            .to.emit(f.quorum, "CheckpointFinalized")
            .withArgs(
              4n,
              c2.chainHead,
              c2.stateDigest,
              2n,
              signerBits(f.supervisors, f.supervisors.slice(0, 3)),
            );
        });

        it("does not count a member the new set dropped", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const [s0, s1, s2, s3] = f.supervisors;
          await replaceSet(f, [s1.address, s2.address, s3.address, f.outsider.address], THRESHOLD);
          const c = await checkpointAt(f, 4n);
          const sigs = await signAll(f, [s0, s1, s2], c);
          await expectRefused(f, () => finalizeWith(via(f.quorum), c, sigs), "QuorumSignerNotSupervisor", [s0.address, 2n]);
          await expect(finalizeWith(via(f.quorum), c, await signAll(f, [f.outsider, s1, s2], c))).to.emit(
            f.quorum,
            "CheckpointFinalized",
          );
        });
      });

      describe("when the checkpoint does not match the ledger", function () {
        it("refuses a record count behind the ledger's that it never marked", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const head5 = (await f.ledger.chainHead())[1];
          for (const count of [3n, 1n]) {
            const c = await checkpointAt(f, count, { chainHead: head5 });
            const sigs = await signAll(f, f.supervisors.slice(0, 3), c);
            await expectRefused(f, () => finalizeWith(via(f.quorum), c, sigs), "QuorumUnmarkedCheckpoint", [count]);
          }
        });

        it("refuses a record count beyond the ledger's", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const head5 = (await f.ledger.chainHead())[1];
          const c = await checkpointAt(f, 99n, { chainHead: head5 });
          const sigs = await signAll(f, f.supervisors.slice(0, 3), c);
          await expectRefused(f, () => finalizeWith(via(f.quorum), c, sigs), "QuorumBeyondLedger", [99n, 5n]);
        });

        it("finalizes the ledger's current head, unmarked, in one transaction, and refuses another head there", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const [count, head5] = await f.ledger.chainHead();
          expect(await f.ledger.markedHead(count)).to.equal(ZeroHash);
          const wrong = await checkpointAt(f, count, { chainHead: id("not the head") });
          await expectRefused(f, async () => finalizeWith(via(f.quorum), wrong, await signAll(f, f.supervisors.slice(0, 3), wrong)), "QuorumHeadMismatch", [
            count,
            wrong.chainHead,
            head5,
          ]);
          const c = await checkpointAt(f, count, { chainHead: head5 });
          await expect(finalizeWith(via(f.quorum), c, await signAll(f, f.supervisors.slice(0, 3), c)))
            .to.emit(f.quorum, "CheckpointFinalized")
            .withArgs(count, head5, c.stateDigest, SET_1, signerBits(f.supervisors, f.supervisors.slice(0, 3)));
          expect(await f.quorum.lastFinal()).to.equal(count);
          expect(await f.quorum.status(count)).to.equal(Confirmed);
        });

        it("refuses a signing list that is not the set's: signers out of place, a member left out, added or replaced", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const c = await checkpointAt(f, 4n);
          const [a, b, d] = toCompact(await signAll(f, f.supervisors.slice(0, 3), c));
          const members = [...(await f.quorum.signingMembers(SET_1))];
          const expected = listCommitment(SET_1, members);
          const [s0, s1, s2, s3] = members;
          for (const [placed, others, list] of [
            [[b, a, d], [s3], [s1, s0, s2, s3]], // two signers swapped
            [[a, b, d], [], [s0, s1, s2]], // the last member left out
            [[a, b, d], [s3, f.outsider.address], [s0, s1, s2, s3, f.outsider.address]], // one added
            [[a, b, d], [f.outsider.address], [s0, s1, s2, f.outsider.address]], // one replaced
          ] as const) {
            const packed = packCheckpoint(
              c,
              [...placed.map(() => ZeroAddress), ...others],
              placed.map((signature, place) => ({ place, signature })),
            );
            await expectRefused(f, () => via(f.quorum).finalizeRecords(packed), "QuorumMembersMismatch", [SET_1, listCommitment(SET_1, list), expected]);
          }
        });

        it("refuses a packed checkpoint whose length does not fit its layout", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const c = await checkpointAt(f, 4n);
          const members = [...(await f.quorum.signingMembers(SET_1))];
          const good = inPlaces(c, members, toCompact(await signAll(f, f.supervisors.slice(0, 3), c)));
          const bytes = (good.length - 2) / 2;
          const setSize = (n: number) => good.slice(0, 2 + 2 * 80) + toBeHex(n, 1).slice(2) + good.slice(2 + 2 * 81);
          for (const [packed, length] of [
            [good.slice(0, -2), bytes - 1], // a byte short
            [good + "00", bytes + 1], // a byte over
            ["0x", 0], // nothing
            [good.slice(0, 2 + 2 * 80), 80], // no set size
            [setSize(0), bytes], // a set of 0
            [setSize(3), bytes], // a set of 3: its bitmap (places 0-2) fits, the 20 bytes after the signatures do not
          ] as const) {
            await expectRefused(f, () => via(f.quorum).finalizeRecords(packed), "QuorumMalformedCheckpoint", [BigInt(length)]);
          }
          // A bitmap bit beyond the set size.
          const beyond = good.slice(0, 2 + 2 * 81) + "17" + good.slice(2 + 2 * 82);
          await expectRefused(f, () => via(f.quorum).finalizeRecords(beyond), "QuorumMalformedCheckpoint", [BigInt(bytes)]);
          await expect(via(f.quorum).finalizeRecords(good)).to.emit(f.quorum, "CheckpointFinalized");
        });

        it("refuses a head other than the one marked at the count", async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          const wrong = await f.ledger.markedHead(2n);
          const c = await checkpointAt(f, 4n, { chainHead: wrong });
          const sigs = await signAll(f, f.supervisors.slice(0, 3), c);
          await expectRefused(f, () => finalizeWith(via(f.quorum), c, sigs), "QuorumHeadMismatch", [
            4n,
            wrong,
            await f.ledger.markedHead(4n),
          ]);
        });
      });
    });
  }

  describe("reportEquivocation", function () {
    /** Supervisor `signer` signs two checkpoints at count 4 that differ as `change` says. */
    async function equivocate(
      f: Fixture,
      signer: TypedSigner,
      change: Partial<Checkpoint> = { stateDigest: books(4n, "'") },
    ) {
      const a = await checkpointAt(f, 4n);
      const b = { ...a, ...change };
      const [sigA] = await signAll(f, [signer], a);
      const [sigB] = await signAll(f, [signer], b);
      return { a, sigA, b, sigB };
    }

    it("records a supervisor that signed two state digests, and stops counting it", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      const [s0, s1, s2, s3] = f.supervisors;
      const { a, sigA, b, sigB } = await equivocate(f, s0);
      await expect(f.quorum.connect(f.stranger).reportEquivocation(a, sigA, b, sigB))
        .to.emit(f.quorum, "EquivocationRecorded")
        .withArgs(s0.address, 4n, SET_1, await f.quorum.checkpointDigest(a), await f.quorum.checkpointDigest(b));
      expect(await f.quorum.isEquivocator(SET_1, s0.address)).to.equal(true);
      expect(await f.quorum.equivocationCount(s0.address)).to.equal(1n);
      expect(await f.quorum.isEquivocator(SET_1, s1.address)).to.equal(false);
      expect(await f.quorum.equivocationCount(s1.address)).to.equal(0n);
      // Still a member (removal is governance's call), but its signature no longer counts.
      expect(await f.quorum.isSupervisor(SET_1, s0.address)).to.equal(true);
      await expectRefused(
        f,
        async () => finalizeWith(f.quorum, a, await signAll(f, [s1, s0, s2], a)),
        "QuorumSignerEquivocated",
        [s0.address, SET_1],
      );
      await expect(finalizeWith(f.quorum, a, await signAll(f, [s1, s2, s3], a))).to.emit(f.quorum, "CheckpointFinalized");
    });

    it("records a supervisor that signed two chain heads", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      const s2 = f.supervisors[2];
      const { a, sigA, b, sigB } = await equivocate(f, s2, { chainHead: id("a forked head") });
      await expect(f.quorum.reportEquivocation(b, sigB, a, sigA))
        .to.emit(f.quorum, "EquivocationRecorded")
        .withArgs(s2.address, 4n, SET_1, await f.quorum.checkpointDigest(b), await f.quorum.checkpointDigest(a));
      expect(await f.quorum.isEquivocator(SET_1, s2.address)).to.equal(true);
    });

    it("records an equivocation in a replaced set, and governance may drop the equivocator", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      const [s0, s1, s2, s3] = f.supervisors;
      const proof = await equivocate(f, s0);
      await replaceSet(f, [s1.address, s2.address, s3.address], 2);
      await expect(f.quorum.reportEquivocation(proof.a, proof.sigA, proof.b, proof.sigB))
        .to.emit(f.quorum, "EquivocationRecorded")
        .withArgs(
          s0.address,
          4n,
          SET_1,
          await f.quorum.checkpointDigest(proof.a),
          await f.quorum.checkpointDigest(proof.b),
        );
      expect(await f.quorum.isEquivocator(SET_1, s0.address)).to.equal(true);
      expect(await f.quorum.isEquivocator(2n, s0.address)).to.equal(false);
      // s0 is no member of set 2, so an equivocation there cannot be pinned on it.
      const again = await equivocate(f, s0);
      await expectRefused(
        f,
        () => f.quorum.reportEquivocation(again.a, again.sigA, again.b, again.sigB),
        "QuorumSignerNotSupervisor",
        [s0.address, 2n],
      );
    });

    it("counts equivocations per supervisor across sets", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      const s0 = f.supervisors[0];
      const first = await equivocate(f, s0);
      await f.quorum.reportEquivocation(first.a, first.sigA, first.b, first.sigB);
      await replaceSet(
        f,
        f.supervisors.map((s) => s.address),
        THRESHOLD,
        f.supervisors.slice(1), // s0's signature no longer counts in set 1
      );
      const second = await equivocate(f, s0);
      expect(second.a.setId).to.equal(2n);
      await f.quorum.reportEquivocation(second.a, second.sigA, second.b, second.sigB);
      expect(await f.quorum.equivocationCount(s0.address)).to.equal(2n);
      expect(await f.quorum.isEquivocator(2n, s0.address)).to.equal(true);
    });

    describe("when the proof does not hold", function () {
      it("refuses identical checkpoints", async function () {
        const f = await networkHelpers.loadFixture(deployQuorum);
        const { a, sigA } = await equivocate(f, f.supervisors[0]);
        await expectRefused(f, () => f.quorum.reportEquivocation(a, sigA, a, sigA), "QuorumIdenticalCheckpoints", [
          await f.quorum.checkpointDigest(a),
        ]);
      });

      it("refuses checkpoints for different record counts or sets", async function () {
        const f = await networkHelpers.loadFixture(deployQuorum);
        const s0 = f.supervisors[0];
        const counts = await equivocate(f, s0, { recordCount: 2n, chainHead: await f.ledger.markedHead(2n) });
        await expectRefused(
          f,
          () => f.quorum.reportEquivocation(counts.a, counts.sigA, counts.b, counts.sigB),
          "QuorumRecordCountMismatch",
          [4n, 2n],
        );
        const sets = await equivocate(f, s0, { setId: 2n, stateDigest: books(4n, "'") });
        await expectRefused(
          f,
          () => f.quorum.reportEquivocation(sets.a, sets.sigA, sets.b, sets.sigB),
          "QuorumSetMismatch",
          [SET_1, 2n],
        );
      });

      it("refuses checkpoints of another ledger", async function () {
        const f = await networkHelpers.loadFixture(deployQuorum);
        const other = Wallet.createRandom().address;
        const ours = await f.ledger.getAddress();
        const p = await equivocate(f, f.supervisors[0]);
        for (const [a, b] of [
          [{ ...p.a, ledger: other }, p.b],
          [p.a, { ...p.b, ledger: other }],
        ]) {
          const [sigA] = await signAll(f, [f.supervisors[0]], a);
          const [sigB] = await signAll(f, [f.supervisors[0]], b);
          await expectRefused(f, () => f.quorum.reportEquivocation(a, sigA, b, sigB), "QuorumWrongLedger", [
            other,
            ours,
          ]);
        }
      });

      it("refuses signatures by two different keys", async function () {
        const f = await networkHelpers.loadFixture(deployQuorum);
        const [s0, s1] = f.supervisors;
        const { a, sigA, b } = await equivocate(f, s0);
        const [sigB] = await signAll(f, [s1], b);
        await expectRefused(f, () => f.quorum.reportEquivocation(a, sigA, b, sigB), "QuorumSignerMismatch", [
          s0.address,
          s1.address,
        ]);
      });

      it("refuses a key outside the set", async function () {
        const f = await networkHelpers.loadFixture(deployQuorum);
        const forger = Wallet.createRandom();
        const { a, sigA, b, sigB } = await equivocate(f, forger);
        await expectRefused(f, () => f.quorum.reportEquivocation(a, sigA, b, sigB), "QuorumSignerNotSupervisor", [
          forger.address,
          SET_1,
        ]);
      });

      it("refuses malformed signatures by their index", async function () {
        const f = await networkHelpers.loadFixture(deployQuorum);
        const { a, sigA, b, sigB } = await equivocate(f, f.supervisors[0]);
        await expectRefused(
          f,
          () => f.quorum.reportEquivocation(a, sigA.slice(0, 130), b, sigB),
          "QuorumInvalidSignature",
          [0n],
        );
        await expectRefused(f, () => f.quorum.reportEquivocation(a, sigA, b, "0x"), "QuorumInvalidSignature", [1n]);
      });

      it("refuses an equivocation already recorded", async function () {
        const f = await networkHelpers.loadFixture(deployQuorum);
        const s0 = f.supervisors[0];
        const p = await equivocate(f, s0);
        await f.quorum.reportEquivocation(p.a, p.sigA, p.b, p.sigB);
        const other = await equivocate(f, s0, { chainHead: id("another fork") });
        await expectRefused(
          f,
          () => f.quorum.reportEquivocation(other.a, other.sigA, other.b, other.sigB),
          "QuorumEquivocationAlreadyRecorded",
          [s0.address, SET_1],
        );
        expect(await f.quorum.equivocationCount(s0.address)).to.equal(1n);
      });
    });
  });

  describe("changeSupervisors (the outgoing set's threshold installs a set at once)", function () {
    it("installs a whole new set under the next id, and keeps the old one provable", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      const [s0, s1, s2, s3] = f.supervisors;
      const next = [s3.address, f.outsider.address, s1.address];
      await expect(replaceSet(f, next, 2))
        .to.emit(f.quorum, "SupervisorsChanged")
        .withArgs(2n, next, 2);
      expect(await f.quorum.setId()).to.equal(2n);
      expect(await f.quorum.threshold()).to.equal(2n);
      expect(await f.quorum.supervisors()).to.deep.equal(next);
      expect(await f.quorum.isSupervisor(2n, f.outsider.address)).to.equal(true);
      expect(await f.quorum.isSupervisor(2n, s0.address)).to.equal(false);
      expect(await f.quorum.isSupervisor(SET_1, s0.address)).to.equal(true);
      expect(await f.quorum.isSupervisor(SET_1, s2.address)).to.equal(true);
      // 2 of the new 3 now suffice.
      const c = await checkpointAt(f, 4n);
      await expect(finalizeWith(f.quorum, c, await signAll(f, [f.outsider, s3], c))).to.emit(
        f.quorum,
        "CheckpointFinalized",
      );
    });

    it("keeps the last final checkpoint across a change of set", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      const c = await checkpointAt(f, 2n);
      await finalizeWith(f.quorum, c, await signAll(f, f.supervisors.slice(0, 3), c));
      await replaceSet(f, [f.outsider.address], 1);
      expect(await f.quorum.lastFinal()).to.equal(2n);
      expect(await f.quorum.isConfirmed(2n)).to.equal(true);
    });

    it("accepts 255 supervisors and t = N", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      const many = Array.from({ length: 255 }, (_, i) => getAddress(toBeHex(i + 1, 20)));
      await expect(replaceSet(f, many, 255))
        .to.emit(f.quorum, "SupervisorsChanged")
        .withArgs(2n, many, 255);
      expect(await f.quorum.isSupervisor(2n, many[254])).to.equal(true);
    });

    describe("when the set is wrong", function () {
      const a = (f: Fixture) => f.supervisors.map((s) => s.address);
      const cases: {
        name: string;
        set: (f: Fixture) => string[];
        t: number;
        error: string;
        args: (f: Fixture) => unknown[];
      }[] = [
        { name: "threshold 0", set: a, t: 0, error: "QuorumInvalidThreshold", args: () => [0, 4] },
        { name: "threshold above N", set: a, t: 5, error: "QuorumInvalidThreshold", args: () => [5, 4] },
        { name: "an empty set", set: () => [], t: 1, error: "QuorumInvalidThreshold", args: () => [1, 0] },
        {
          name: "a duplicate",
          set: (f) => [...a(f), a(f)[1]],
          t: 3,
          error: "QuorumDuplicateSupervisor",
          args: (f) => [a(f)[1]],
        },
        {
          name: "the zero address",
          set: (f) => [...a(f).slice(0, 2), ZeroAddress, a(f)[3]],
          t: 3,
          error: "QuorumZeroSupervisor",
          args: () => [2],
        },
        {
          name: "256 supervisors",
          set: () => Array.from({ length: 256 }, (_, i) => getAddress(toBeHex(i + 1, 20))),
          t: 3,
          error: "QuorumTooManySupervisors",
          args: () => [256],
        },
      ];
      for (const c of cases) {
        it(`refuses ${c.name}, changing nothing`, async function () {
          const f = await networkHelpers.loadFixture(deployQuorum);
          await expectRefused(f, () => replaceSet(f, c.set(f), c.t), c.error, c.args(f));
          await expectRefused(f, () => f.quorum.connect(f.governor).proposeSupervisors(c.set(f), c.t), c.error, c.args(f));
        });
      }

      it("lets only the governor propose a set", async function () {
        const f = await networkHelpers.loadFixture(deployQuorum);
        for (const caller of [f.stranger, f.supervisors[0], f.regulator, f.recorder]) {
          await expectRefused(
            f,
            () => f.quorum.connect(caller).proposeSupervisors([caller.address], 1),
            "AccessControlUnauthorizedAccount",
            [caller.address, ZeroHash],
          );
        }
      });
    });
  });

  describe("isConfirmed and status", function () {
    it("are Pending up to the ledger's count and Unknown beyond it before finality", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      expect((await f.ledger.chainHead())[0]).to.equal(5n);
      for (let i = 0n; i <= 6n; i++) {
        expect(await f.quorum.isConfirmed(i)).to.equal(false);
        expect(await f.quorum.status(i)).to.equal(i === 0n || i > 5n ? Unknown : Pending);
      }
    });

    it("confirm every record up to the final checkpoint, and only those", async function () {
      const f = await networkHelpers.loadFixture(deployQuorum);
      const c = await checkpointAt(f, 4n);
      await finalizeWith(f.quorum, c, await signAll(f, f.supervisors.slice(0, 3), c));
      const expected = [Unknown, Confirmed, Confirmed, Confirmed, Confirmed, Pending, Unknown];
      for (const [i, want] of expected.entries()) {
        expect(await f.quorum.status(BigInt(i))).to.equal(want);
        expect(await f.quorum.isConfirmed(BigInt(i))).to.equal(want === Confirmed);
      }
      // A new record is Pending as soon as it is booked.
      await f.upload([record(TopUp, account("carol"), 7n)]);
      expect(await f.quorum.status(6n)).to.equal(Pending);
      expect(await f.quorum.status(7n)).to.equal(Unknown);
      expect(await f.quorum.isConfirmed((1n << 64n) - 1n)).to.equal(false);
    });
  });
});
