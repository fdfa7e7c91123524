import { expect } from "chai";
import { hexlify, id, ZeroHash } from "ethers";
import { network } from "hardhat";

import { encodeRecord, genesisHead, linkBatch, linkHead, packBatch, type PackedRecord } from "../../src/ledger/codec.js";
import { Consume, Refund, TopUp, account, expectedBatchLink, expectedGenesis, expectedLink, record } from "../helpers/records.js";

const { ethers, networkHelpers } = await network.create();

const M1 = 1;
const M2 = 2;
const NO_ENVELOPE = "0x";
const MAX40 = (1n << 40n) - 1n;

async function deployLedger() {
  const [admin, regulator, recorder1, recorder2, stranger] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  await ledger.connect(regulator).registerMerchant(M1, recorder1.address);
  await ledger.connect(regulator).registerMerchant(M2, recorder2.address);
  return { ledger, admin, regulator, recorder1, recorder2, stranger };
}

type Fixture = Awaited<ReturnType<typeof deployLedger>>;

/** Uploads records as merchant M1's next batch. */
async function upload(f: Fixture, records: PackedRecord[], sequence?: bigint, envelope = NO_ENVELOPE) {
  const seq = sequence ?? (await f.ledger.merchantBooks(M1)).nextSequence;
  return f.ledger.connect(f.recorder1).recordBatch(M1, seq, envelope, packBatch(records));
}

/** Everything a failed upload must leave untouched. */
async function snapshot(f: Fixture, accounts: Uint8Array[]) {
  return {
    head: await f.ledger.chainHead(),
    merchant: await f.ledger.merchantBooks(M1),
    accounts: await Promise.all(accounts.map((a) => f.ledger.accountBooks(M1, a))),
  };
}

describe("PrepaidLedger", function () {
  describe("deployment", function () {
    it("grants the admin and regulator roles", async function () {
      const { ledger, admin, regulator, stranger } = await networkHelpers.loadFixture(deployLedger);
      expect(await ledger.hasRole(ZeroHash, admin.address)).to.equal(true);
      expect(await ledger.hasRole(await ledger.REGULATOR_ROLE(), regulator.address)).to.equal(true);
      expect(await ledger.hasRole(await ledger.REGULATOR_ROLE(), stranger.address)).to.equal(false);
      expect(await ledger.REGULATOR_ROLE()).to.equal(id("prepaid-ledger.regulator"));
      expect(await ledger.BATCH_VERSION()).to.equal(1n);
    });

    it("starts the hash chain at a genesis bound to the chain id and address", async function () {
      const { ledger } = await networkHelpers.loadFixture(deployLedger);
      const { chainId } = await ethers.provider.getNetwork();
      const expected = hexlify(genesisHead(chainId, await ledger.getAddress()));
      expect(await ledger.genesisHead()).to.equal(expected);
      expect(await ledger.chainHead()).to.deep.equal([0n, expected]);
    });

    it("links with chain version 2, from the genesis tag prepaid-ledger.chain.v2", async function () {
      const { ledger } = await networkHelpers.loadFixture(deployLedger);
      const { chainId } = await ethers.provider.getNetwork();
      const address = await ledger.getAddress();
      expect(await ledger.CHAIN_VERSION()).to.equal(2n);
      expect(await ledger.genesisHead()).to.equal(expectedGenesis(chainId, address, 2));
      expect(await ledger.genesisHead()).to.not.equal(expectedGenesis(chainId, address, 1));
    });

    it("refuses a zero admin or regulator", async function () {
      const [admin] = await ethers.getSigners();
      const factory = await ethers.getContractFactory("PrepaidLedger");
      await expect(factory.deploy(ethers.ZeroAddress, admin.address, 0, 3_600)).to.be.revertedWithCustomError(
        factory,
        "LedgerZeroAddress",
      );
      await expect(factory.deploy(admin.address, ethers.ZeroAddress, 0, 3_600)).to.be.revertedWithCustomError(
        factory,
        "LedgerZeroAddress",
      );
      await expect(factory.deploy(admin.address, admin.address, 0, 3_599))
        .to.be.revertedWithCustomError(factory, "LedgerDelayTooShort")
        .withArgs(3_599, 3_600);
    });
  });

  describe("merchants", function () {
    it("registers a merchant with its first recorder", async function () {
      const { ledger, regulator, stranger } = await networkHelpers.loadFixture(deployLedger);
      await expect(ledger.connect(regulator).registerMerchant(7, stranger.address))
        .to.emit(ledger, "MerchantRegistered")
        .withArgs(7, stranger.address, regulator.address);
      const books = await ledger.merchantBooks(7);
      expect(books.status).to.equal(1n);
      expect(books.nextSequence).to.equal(1n);
      expect(await ledger.hasRole(await ledger.recorderRole(7), stranger.address)).to.equal(true);
      // The role changes only through the registry (PrepaidLedger.governance.test.ts).
      await expect(ledger.connect(regulator).grantRole(await ledger.recorderRole(7), regulator.address))
        .to.be.revertedWithCustomError(ledger, "LedgerRoleManagedByRegistry")
        .withArgs(await ledger.recorderRole(7));
    });

    it("derives recorder roles per merchant", async function () {
      const { ledger } = await networkHelpers.loadFixture(deployLedger);
      const coder = ethers.AbiCoder.defaultAbiCoder();
      expect(await ledger.recorderRole(9)).to.equal(
        ethers.keccak256(coder.encode(["string", "uint32"], ["prepaid-ledger.recorder", 9])),
      );
    });

    describe("when the input is wrong", function () {
      it("refuses id 0, a zero recorder and an existing id", async function () {
        const { ledger, regulator, stranger } = await networkHelpers.loadFixture(deployLedger);
        await expect(ledger.connect(regulator).registerMerchant(0, stranger.address))
          .to.be.revertedWithCustomError(ledger, "LedgerInvalidMerchantId")
          .withArgs(0);
        await expect(ledger.connect(regulator).registerMerchant(8, ethers.ZeroAddress)).to.be.revertedWithCustomError(
          ledger,
          "LedgerZeroAddress",
        );
        await expect(ledger.connect(regulator).registerMerchant(M1, stranger.address))
          .to.be.revertedWithCustomError(ledger, "LedgerMerchantExists")
          .withArgs(M1);
        expect((await ledger.merchantBooks(0)).status).to.equal(0n);
        expect((await ledger.merchantBooks(8)).status).to.equal(0n);
      });

      it("lets only regulators manage merchants", async function () {
        const { ledger, admin, recorder1, stranger } = await networkHelpers.loadFixture(deployLedger);
        const role = await ledger.REGULATOR_ROLE();
        for (const caller of [admin, recorder1, stranger]) {
          const as = ledger.connect(caller);
          for (const call of [
            as.registerMerchant(9, stranger.address),
            as.suspendMerchant(M1, id("x")),
            as.reinstateMerchant(M1),
            as.addRecorder(M1, stranger.address),
            as.removeRecorder(M1, recorder1.address),
          ]) {
            await expect(call)
              .to.be.revertedWithCustomError(ledger, "AccessControlUnauthorizedAccount")
              .withArgs(caller.address, role);
          }
        }
        expect((await ledger.merchantBooks(M1)).status).to.equal(1n);
      });
    });

    it("suspends and reinstates a merchant", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const reason = ethers.encodeBytes32String("licence-revoked");
      await expect(f.ledger.connect(f.regulator).suspendMerchant(M1, reason))
        .to.emit(f.ledger, "MerchantSuspended")
        .withArgs(M1, f.regulator.address, reason);
      expect((await f.ledger.merchantBooks(M1)).status).to.equal(2n);
      await expect(upload(f, [record(TopUp, account("a"), 100n)]))
        .to.be.revertedWithCustomError(f.ledger, "LedgerMerchantSuspended")
        .withArgs(M1);
      await expect(f.ledger.connect(f.regulator).suspendMerchant(M1, reason))
        .to.be.revertedWithCustomError(f.ledger, "LedgerMerchantSuspended")
        .withArgs(M1);
      await expect(f.ledger.connect(f.regulator).reinstateMerchant(M1))
        .to.emit(f.ledger, "MerchantReinstated")
        .withArgs(M1, f.regulator.address);
      await expect(f.ledger.connect(f.regulator).reinstateMerchant(M1))
        .to.be.revertedWithCustomError(f.ledger, "LedgerMerchantNotSuspended")
        .withArgs(M1);
      await expect(upload(f, [record(TopUp, account("a"), 100n)])).to.emit(f.ledger, "BatchRecorded");
    });

    it("refuses to suspend, reinstate or staff an unknown merchant", async function () {
      const { ledger, regulator, stranger } = await networkHelpers.loadFixture(deployLedger);
      const as = ledger.connect(regulator);
      for (const call of [
        as.suspendMerchant(99, ZeroHash),
        as.reinstateMerchant(99),
        as.addRecorder(99, stranger.address),
        as.removeRecorder(99, stranger.address),
      ]) {
        await expect(call).to.be.revertedWithCustomError(ledger, "LedgerUnknownMerchant").withArgs(99);
      }
      expect(await ledger.hasRole(await ledger.recorderRole(99), stranger.address)).to.equal(false);
    });

    it("adds (with the merchant's consent) and removes recorders", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const as = f.ledger.connect(f.regulator);
      await expect(as.addRecorder(M1, f.stranger.address)).to.emit(f.ledger, "RecorderOffered");
      await expect(f.ledger.connect(f.recorder1).acceptRecorder(M1, f.stranger.address))
        .to.emit(f.ledger, "RecorderAdded")
        .withArgs(M1, f.stranger.address, f.regulator.address);
      await expect(as.addRecorder(M1, f.stranger.address)).not.to.emit(f.ledger, "RecorderOffered");
      await expect(as.addRecorder(M1, ethers.ZeroAddress)).to.be.revertedWithCustomError(f.ledger, "LedgerZeroAddress");
      const batch = packBatch([record(TopUp, account("s"), 5n)]);
      await expect(f.ledger.connect(f.stranger).recordBatch(M1, 1, NO_ENVELOPE, batch)).to.emit(f.ledger, "BatchRecorded");

      await expect(as.removeRecorder(M1, f.stranger.address))
        .to.emit(f.ledger, "RecorderRemoved")
        .withArgs(M1, f.stranger.address, f.regulator.address);
      await expect(as.removeRecorder(M1, f.stranger.address)).not.to.emit(f.ledger, "RecorderRemoved");
      await expect(f.ledger.connect(f.stranger).recordBatch(M1, 2, NO_ENVELOPE, batch))
        .to.be.revertedWithCustomError(f.ledger, "LedgerUnauthorizedRecorder")
        .withArgs(f.stranger.address, M1);
    });
  });

  describe("pause", function () {
    it("stops bookkeeping, not supervision, and only the admin may pause", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await expect(f.ledger.connect(f.regulator).pause())
        .to.be.revertedWithCustomError(f.ledger, "AccessControlUnauthorizedAccount")
        .withArgs(f.regulator.address, ZeroHash);
      await expect(f.ledger.connect(f.admin).pause()).to.emit(f.ledger, "Paused").withArgs(f.admin.address);
      await expect(upload(f, [record(TopUp, account("a"), 1n)])).to.be.revertedWithCustomError(f.ledger, "EnforcedPause");
      await expect(f.ledger.connect(f.regulator).suspendMerchant(M2, ZeroHash)).to.emit(f.ledger, "MerchantSuspended");
      await expect(f.ledger.connect(f.recorder1).unpause())
        .to.be.revertedWithCustomError(f.ledger, "AccessControlUnauthorizedAccount")
        .withArgs(f.recorder1.address, ZeroHash);
      await expect(f.ledger.connect(f.admin).unpause()).to.emit(f.ledger, "Unpaused").withArgs(f.admin.address);
      await expect(upload(f, [record(TopUp, account("a"), 1n)])).to.emit(f.ledger, "BatchRecorded");
    });
  });

  describe("recordBatch", function () {
    it("opens an account with its first top-up and keeps its books", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const a = account("alice");
      await upload(f, [record(TopUp, a, 50_000n), record(Consume, a, 12_000n)]);
      await upload(f, [record(TopUp, a, 20_000n), record(Refund, a, 8_000n), record(Consume, a, 1n)]);
      const books = await f.ledger.accountBooks(M1, a);
      expect(books.merchantId).to.equal(BigInt(M1));
      expect(books.recordCount).to.equal(5n);
      expect(books.initialAmount).to.equal(50_000n);
      expect(books.toppedUp).to.equal(70_000n);
      expect(books.consumed).to.equal(12_001n);
      expect(books.refunded).to.equal(8_000n);
      expect(books.balance).to.equal(70_000n - 12_001n - 8_000n);
      expect(await f.ledger.balanceOf(M1, a)).to.equal(books.balance);
      expect((await f.ledger.accountBooks(M2, a)).recordCount).to.equal(0n);

      const m = await f.ledger.merchantBooks(M1);
      expect([m.nextSequence, m.recordCount, m.accountCount]).to.deep.equal([3n, 5n, 1n]);
      expect([m.toppedUp, m.consumed, m.refunded, m.liability]).to.deep.equal([70_000n, 12_001n, 8_000n, 49_999n]);
    });

    it("returns the first record index and count", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const records = [record(TopUp, account("a"), 1n), record(TopUp, account("b"), 2n)];
      const result = await f.ledger.connect(f.recorder1).recordBatch.staticCall(M1, 1, NO_ENVELOPE, packBatch(records));
      expect(result).to.deep.equal([1n, 2n]);
    });

    it("emits one Recorded per record with its packed data, then BatchRecorded", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const a = account("a");
      const records = [record(TopUp, a, 0x123456789an), record(Consume, a, 7n)];
      const envelope = "0x01020304";
      const tx = upload(f, records, 1n, envelope);
      await expect(tx)
        .to.emit(f.ledger, "Recorded")
        .withArgs(hexlify(a), M1, hexlify(records[0].commitment));
      const receipt = await (await tx).wait();
      const logs = receipt!.logs;
      expect(logs).to.have.length(3);
      for (const [i, r] of records.entries()) {
        const data = ethers.solidityPacked(["uint64", "uint8", "uint48", "bytes"], [i + 1, r.kind, r.amount, r.ciphertext]);
        expect(logs[i].data).to.equal(data);
        expect(logs[i].topics[3]).to.equal(hexlify(r.commitment));
      }
      const head = (await f.ledger.chainHead())[1];
      await expect(tx)
        .to.emit(f.ledger, "BatchRecorded")
        .withArgs(M1, 1n, f.recorder1.address, 1n, 2n, head, envelope);
    });

    it("links each batch, then each of its records, into the hash chain", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      let head = await f.ledger.genesisHead();
      let index = 0n;
      let sequence = 0n;
      const a = account("a");
      const b = account("b");
      for (const [batch, envelope] of [
        [[record(TopUp, a, 100n)], NO_ENVELOPE],
        [[record(TopUp, b, 300n), record(Consume, a, 40n), record(Refund, b, 1n)], "0x0102030405"],
      ] as const) {
        await upload(f, [...batch], undefined, envelope);
        head = expectedBatchLink(head, M1, ++sequence, f.recorder1.address, envelope, batch.length);
        for (const r of batch) head = expectedLink(head, ++index, M1, r);
      }
      // The contract and two independent TypeScript implementations agree on head_4.
      const rebuilt = (await f.ledger.queryFilter(f.ledger.filters.BatchRecorded(M1)))[1].args.chainHead;
      expect(rebuilt).to.equal(head);

      const c = record(TopUp, account("c"), 5n);
      await f.ledger.connect(f.recorder2).recordBatch(M2, 1, NO_ENVELOPE, packBatch([c]));
      head = expectedLink(expectedBatchLink(head, M2, 1n, f.recorder2.address, NO_ENVELOPE, 1), 5n, M2, c);
      expect(await f.ledger.chainHead()).to.deep.equal([5n, head]);
    });

    it("matches src/ledger/codec linkHead and linkBatch", async function () {
      const r = record(Refund, account("z"), 77n);
      const prev = id("prev");
      expect(hexlify(linkHead(ethers.getBytes(prev), 42n, 7, encodeRecord(r)))).to.equal(expectedLink(prev, 42n, 7, r));
      const [, , recorder] = await ethers.getSigners();
      const envelope = Uint8Array.from([1, 2, 3]);
      const batch = { merchantId: 7, sequence: (1n << 64n) - 1n, recorder: recorder.address, envelope, count: 65_535 };
      expect(hexlify(linkBatch(ethers.getBytes(prev), batch))).to.equal(
        expectedBatchLink(prev, 7, batch.sequence, recorder.address, envelope, 65_535),
      );
    });

    describe("when the same records arrive in another batch", function () {
      const a = account("a");
      const b = account("b");
      const c = account("c");
      // One set of records for every case below, so only the batch around them differs.
      const records = [record(TopUp, a, 100n), record(TopUp, b, 200n), record(Consume, a, 30n), record(TopUp, c, 5n)];

      /** The head after `records` under chain version 1 (records only), from the same start. */
      const recordsOnly = (start: string) => records.reduce((h, r, i) => expectedLink(h, BigInt(i + 1), M1, r), start);

      it("gives another head for one batch than for two", async function () {
        let f = await networkHelpers.loadFixture(deployLedger);
        await upload(f, records);
        const [count, oneBatch] = await f.ledger.chainHead();

        f = await networkHelpers.loadFixture(deployLedger);
        await upload(f, records.slice(0, 1));
        await upload(f, records.slice(1));
        const [countTwo, twoBatches] = await f.ledger.chainHead();

        expect([count, countTwo]).to.deep.equal([4n, 4n]);
        expect(oneBatch).to.not.equal(twoBatches);
        // Under chain version 1 (records only) both would have ended at one head.
        const genesis = await f.ledger.genesisHead();
        const link = (h: string, seq: bigint, n: number) => expectedBatchLink(h, M1, seq, f.recorder1.address, NO_ENVELOPE, n);
        expect(oneBatch).to.equal(records.reduce((h, r, i) => expectedLink(h, BigInt(i + 1), M1, r), link(genesis, 1n, 4)));
        const afterFirst = expectedLink(link(genesis, 1n, 1), 1n, M1, records[0]);
        expect(twoBatches).to.equal(records.slice(1).reduce((h, r, i) => expectedLink(h, BigInt(i + 2), M1, r), link(afterFirst, 2n, 3)));
        expect(oneBatch).to.not.equal(recordsOnly(genesis));
      });

      it("gives another head for another recorder of the same merchant", async function () {
        let f = await networkHelpers.loadFixture(deployLedger);
        await upload(f, records);
        const [, byRecorder1] = await f.ledger.chainHead();

        f = await networkHelpers.loadFixture(deployLedger);
        await f.ledger.connect(f.regulator).addRecorder(M1, f.stranger.address);
        await f.ledger.connect(f.recorder1).acceptRecorder(M1, f.stranger.address);
        await f.ledger.connect(f.stranger).recordBatch(M1, 1, NO_ENVELOPE, packBatch(records));
        const [count, byStranger] = await f.ledger.chainHead();

        expect(count).to.equal(4n);
        expect(byStranger).to.not.equal(byRecorder1);
        const genesis = await f.ledger.genesisHead();
        expect(byStranger).to.equal(
          records.reduce((h, r, i) => expectedLink(h, BigInt(i + 1), M1, r), expectedBatchLink(genesis, M1, 1n, f.stranger.address, NO_ENVELOPE, 4)),
        );
      });

      it("gives another head for another envelope, so a checkpoint confirms the data key's envelope", async function () {
        let f = await networkHelpers.loadFixture(deployLedger);
        await upload(f, records, 1n, "0x01");
        const [, first] = await f.ledger.chainHead();
        await expect(f.ledger.markCheckpoint()).to.emit(f.ledger, "CheckpointMarked").withArgs(4n, first);

        f = await networkHelpers.loadFixture(deployLedger);
        await upload(f, records, 1n, "0x02");
        const [, second] = await f.ledger.chainHead();

        expect(second).to.not.equal(first);
        const genesis = await f.ledger.genesisHead();
        const after = (envelope: string) =>
          records.reduce((h, r, i) => expectedLink(h, BigInt(i + 1), M1, r), expectedBatchLink(genesis, M1, 1n, f.recorder1.address, envelope, 4));
        expect([first, second]).to.deep.equal([after("0x01"), after("0x02")]);
      });
    });

    describe("when a record breaks a rule", function () {
      const a = account("a");
      const cases: { name: string; records: () => PackedRecord[]; error: string; args: () => unknown[] }[] = [
        { name: "a zero amount", records: () => [record(TopUp, a, 0n)], error: "LedgerZeroAmount", args: () => [a] },
        { name: "kind 0", records: () => [record(0, a, 5n)], error: "LedgerInvalidKind", args: () => [a, 0] },
        { name: "kind 4 on a new account", records: () => [record(4, a, 5n)], error: "LedgerInvalidKind", args: () => [a, 4] },
        {
          name: "kind 4 on an open account",
          records: () => [record(TopUp, a, 9n), record(4, a, 5n)],
          error: "LedgerInvalidKind",
          args: () => [a, 4],
        },
        { name: "consumption on an unknown account", records: () => [record(Consume, a, 5n)], error: "LedgerUnknownAccount", args: () => [a] },
        { name: "refund on an unknown account", records: () => [record(Refund, a, 5n)], error: "LedgerUnknownAccount", args: () => [a] },
        {
          name: "an overdraw by consumption",
          records: () => [record(TopUp, a, 100n), record(Consume, a, 60n), record(Consume, a, 41n)],
          error: "LedgerInsufficientBalance",
          args: () => [a, 40n, 41n],
        },
        {
          name: "an overdraw by refund",
          records: () => [record(TopUp, a, 100n), record(Refund, a, 101n)],
          error: "LedgerInsufficientBalance",
          args: () => [a, 100n, 101n],
        },
        {
          name: "top-ups beyond 40 bits",
          records: () => [record(TopUp, a, MAX40), record(TopUp, a, 1n)],
          error: "LedgerAccountOverflow",
          args: () => [a, MAX40 + 1n],
        },
        {
          name: "a zero commitment",
          records: () => [record(TopUp, a, 5n, { commitment: new Uint8Array(32) })],
          error: "LedgerMissingCommitment",
          args: () => [a],
        },
        {
          name: "an empty ciphertext",
          records: () => [record(TopUp, a, 5n, { ciphertext: new Uint8Array(0) })],
          error: "LedgerMissingCommitment",
          args: () => [a],
        },
      ];
      for (const c of cases) {
        it(`reverts on ${c.name}, and the whole batch changes nothing`, async function () {
          const f = await networkHelpers.loadFixture(deployLedger);
          const good = account("good");
          await upload(f, [record(TopUp, good, 1000n)]);
          const before = await snapshot(f, [a, good]);
          await expect(upload(f, [record(Consume, good, 10n), ...c.records()]))
            .to.be.revertedWithCustomError(f.ledger, c.error)
            .withArgs(...c.args());
          expect(await snapshot(f, [a, good])).to.deep.equal(before);
        });
      }

      it("keeps accounts per merchant, so no merchant can squat another's card id", async function () {
        const f = await networkHelpers.loadFixture(deployLedger);
        const shared = account("same-id");
        // Merchant 2 opens the id first (say, copied from merchant 1's pending transaction)...
        await f.ledger.connect(f.recorder2).recordBatch(M2, 1, NO_ENVELOPE, packBatch([record(TopUp, shared, 500n)]));
        // ...and merchant 1's own card with that id is untouched and opens normally.
        await upload(f, [record(TopUp, shared, 70n), record(Consume, shared, 20n)]);
        expect((await f.ledger.accountBooks(M1, shared)).balance).to.equal(50n);
        expect((await f.ledger.accountBooks(M2, shared)).balance).to.equal(500n);
        expect((await f.ledger.accountBooks(M1, shared)).merchantId).to.equal(BigInt(M1));
        await expect(upload(f, [record(Consume, account("m2-only"), 1n)]))
          .to.be.revertedWithCustomError(f.ledger, "LedgerUnknownAccount")
          .withArgs(account("m2-only"));
      });
    });

    describe("when the caller or sequence is wrong", function () {
      it("refuses a recorder acting for another merchant", async function () {
        const f = await networkHelpers.loadFixture(deployLedger);
        const batch = packBatch([record(TopUp, account("a"), 5n)]);
        await expect(f.ledger.connect(f.recorder1).recordBatch(M2, 1, NO_ENVELOPE, batch))
          .to.be.revertedWithCustomError(f.ledger, "LedgerUnauthorizedRecorder")
          .withArgs(f.recorder1.address, M2);
        await expect(f.ledger.connect(f.regulator).recordBatch(M1, 1, NO_ENVELOPE, batch))
          .to.be.revertedWithCustomError(f.ledger, "LedgerUnauthorizedRecorder")
          .withArgs(f.regulator.address, M1);
        expect((await f.ledger.merchantBooks(M2)).nextSequence).to.equal(1n);
      });

      it("refuses an unknown merchant", async function () {
        const f = await networkHelpers.loadFixture(deployLedger);
        const batch = packBatch([record(TopUp, account("a"), 5n)]);
        await expect(f.ledger.connect(f.recorder1).recordBatch(42, 1, NO_ENVELOPE, batch))
          .to.be.revertedWithCustomError(f.ledger, "LedgerUnknownMerchant")
          .withArgs(42);
      });

      it("refuses a replayed batch and a skipped sequence", async function () {
        const f = await networkHelpers.loadFixture(deployLedger);
        const batch = packBatch([record(TopUp, account("a"), 5n)]);
        await f.ledger.connect(f.recorder1).recordBatch(M1, 1, NO_ENVELOPE, batch);
        const before = await snapshot(f, [account("a")]);
        await expect(f.ledger.connect(f.recorder1).recordBatch(M1, 1, NO_ENVELOPE, batch))
          .to.be.revertedWithCustomError(f.ledger, "LedgerBatchReplayed")
          .withArgs(M1, 1n, 2n);
        await expect(f.ledger.connect(f.recorder1).recordBatch(M1, 0, NO_ENVELOPE, batch))
          .to.be.revertedWithCustomError(f.ledger, "LedgerBatchReplayed")
          .withArgs(M1, 0n, 2n);
        await expect(f.ledger.connect(f.recorder1).recordBatch(M1, 3, NO_ENVELOPE, batch))
          .to.be.revertedWithCustomError(f.ledger, "LedgerSequenceGap")
          .withArgs(M1, 3n, 2n);
        expect(await snapshot(f, [account("a")])).to.deep.equal(before);
      });

      it("keeps sequences per merchant", async function () {
        const f = await networkHelpers.loadFixture(deployLedger);
        await upload(f, [record(TopUp, account("a"), 5n)]);
        await upload(f, [record(TopUp, account("a"), 5n)]);
        expect((await f.ledger.merchantBooks(M1)).nextSequence).to.equal(3n);
        expect((await f.ledger.merchantBooks(M2)).nextSequence).to.equal(1n);
      });
    });

    describe("when the packed batch is malformed", function () {
      const good = () => packBatch([record(TopUp, account("a"), 5n), record(TopUp, account("b"), 6n)]);
      const cases: { name: string; bytes: () => Uint8Array; error: string; args: (b: Uint8Array) => unknown[] }[] = [
        { name: "empty", bytes: () => new Uint8Array(0), error: "LedgerMalformedBatch", args: () => [0, 0] },
        { name: "shorter than its header", bytes: () => Uint8Array.of(1, 0), error: "LedgerMalformedBatch", args: () => [0, 2] },
        {
          name: "of an unknown version",
          bytes: () => Uint8Array.of(2, ...good().subarray(1)),
          error: "LedgerUnsupportedVersion",
          args: () => [2],
        },
        { name: "with a count of 0", bytes: () => Uint8Array.of(1, 0, 0), error: "LedgerEmptyBatch", args: () => [] },
        {
          name: "truncated inside a record head",
          bytes: () => good().subarray(0, 3 + 147 + 40),
          error: "LedgerMalformedBatch",
          args: () => [3 + 147, 3 + 147 + 40],
        },
        {
          name: "truncated inside a ciphertext",
          bytes: () => good().subarray(0, good().length - 1),
          error: "LedgerMalformedBatch",
          args: (b) => [3 + 147, b.length],
        },
        {
          name: "claiming more records than it holds",
          bytes: () => Uint8Array.of(1, 0, 3, ...good().subarray(3)),
          error: "LedgerMalformedBatch",
          args: (b) => [b.length, b.length],
        },
        {
          name: "with bytes after its last record",
          bytes: () => Uint8Array.of(...good(), 0xff),
          error: "LedgerMalformedBatch",
          args: (b) => [b.length - 1, b.length],
        },
      ];
      for (const c of cases) {
        it(`refuses a batch ${c.name}`, async function () {
          const f = await networkHelpers.loadFixture(deployLedger);
          const bytes = c.bytes();
          const before = await snapshot(f, [account("a"), account("b")]);
          await expect(f.ledger.connect(f.recorder1).recordBatch(M1, 1, NO_ENVELOPE, bytes))
            .to.be.revertedWithCustomError(f.ledger, c.error)
            .withArgs(...c.args(bytes));
          expect(await snapshot(f, [account("a"), account("b")])).to.deep.equal(before);
        });
      }
    });
  });

  describe("checkpoint marks", function () {
    it("keeps the current head under the current count, for anyone, once", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await upload(f, [record(TopUp, account("a"), 10n), record(Consume, account("a"), 3n)]);
      const [count, head] = await f.ledger.chainHead();
      expect(await f.ledger.markedHead(count)).to.equal(ZeroHash);
      expect(await f.ledger.connect(f.stranger).markCheckpoint.staticCall()).to.deep.equal([count, head]);
      await expect(f.ledger.connect(f.stranger).markCheckpoint()).to.emit(f.ledger, "CheckpointMarked").withArgs(count, head);
      expect(await f.ledger.markedHead(count)).to.equal(head);

      // Marking again at the same count returns the same mark and logs nothing.
      expect(await f.ledger.markCheckpoint.staticCall()).to.deep.equal([count, head]);
      await expect(f.ledger.markCheckpoint()).not.to.emit(f.ledger, "CheckpointMarked");

      // Later records leave the mark alone; the next mark is at the next count.
      await upload(f, [record(Consume, account("a"), 1n)]);
      const [later, laterHead] = await f.ledger.chainHead();
      expect(await f.ledger.markedHead(count)).to.equal(head);
      expect(await f.ledger.markedHead(later)).to.equal(ZeroHash);
      await expect(f.ledger.markCheckpoint()).to.emit(f.ledger, "CheckpointMarked").withArgs(later, laterHead);
      expect(await f.ledger.markedHead(later)).to.equal(laterHead);
      expect(laterHead).to.not.equal(head);
    });

    it("marks while paused: it changes no books", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await upload(f, [record(TopUp, account("a"), 10n)]);
      await f.ledger.connect(f.admin).pause();
      const [count, head] = await f.ledger.chainHead();
      await expect(f.ledger.connect(f.stranger).markCheckpoint()).to.emit(f.ledger, "CheckpointMarked").withArgs(count, head);
    });

    it("refuses to mark an empty ledger", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await expect(f.ledger.markCheckpoint()).to.be.revertedWithCustomError(f.ledger, "LedgerNothingToMark");
      expect(await f.ledger.markedHead(0)).to.equal(ZeroHash);
    });
  });
});
