/**
 * Winding down and exit (issue 9 item 2): a regulator moves a merchant to winding down (refunds
 * only) and to closed (nothing), along the transitions IPrepaidLedger.MerchantStatus documents;
 * every other move is a LedgerIllegalTransition with the two statuses, and changes nothing.
 */
import { expect } from "chai";
import { encodeBytes32String, hexlify } from "ethers";
import { network } from "hardhat";

import { packBatch, type PackedRecord } from "../../src/ledger/codec.js";
import { Consume, Refund, TopUp, account, record } from "../helpers/records.js";

const { ethers, networkHelpers } = await network.create();

const M1 = 1;
const M2 = 2;
const NONE = 0n;
const ACTIVE = 1n;
const SUSPENDED = 2n;
const WINDING_DOWN = 3n;
const CLOSED = 4n;
const REASON = encodeBytes32String("exit");
const CARD = account("exit-card");
const OTHER = account("exit-other");

async function deployLedger() {
  const [admin, regulator, recorder1, recorder2, stranger] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  await ledger.connect(regulator).registerMerchant(M1, recorder1.address);
  await ledger.connect(regulator).registerMerchant(M2, recorder2.address);
  await ledger.connect(recorder1).recordBatch(M1, 1, "0x", packBatch([record(TopUp, CARD, 10_000n), record(TopUp, OTHER, 5_000n)]));
  return { ledger, admin, regulator, recorder1, recorder2, stranger };
}

type Fixture = Awaited<ReturnType<typeof deployLedger>>;

async function upload(f: Fixture, records: PackedRecord[]) {
  const { nextSequence } = await f.ledger.merchantBooks(M1);
  return f.ledger.connect(f.recorder1).recordBatch(M1, nextSequence, "0x", packBatch(records));
}

/** Everything a refused call must leave untouched. */
async function snapshot(f: Fixture) {
  return {
    head: await f.ledger.chainHead(),
    merchants: [await f.ledger.merchantBooks(M1), await f.ledger.merchantBooks(M2)],
    accounts: [await f.ledger.accountBooks(M1, CARD), await f.ledger.accountBooks(M1, OTHER)],
  };
}

/** Puts M1 in `status` by legal moves. */
async function moveTo(f: Fixture, status: bigint) {
  const as = f.ledger.connect(f.regulator);
  if (status === SUSPENDED) await as.suspendMerchant(M1, REASON);
  if (status === WINDING_DOWN) await as.windDownMerchant(M1, REASON);
  if (status === CLOSED) await as.closeMerchant(M1, REASON);
  expect((await f.ledger.merchantBooks(M1)).status).to.equal(status);
}

type Action = "suspend" | "reinstate" | "windDown" | "close";
const TARGET: Record<Action, bigint> = { suspend: SUSPENDED, reinstate: ACTIVE, windDown: WINDING_DOWN, close: CLOSED };
const EVENT: Record<Action, string> = {
  suspend: "MerchantSuspended",
  reinstate: "MerchantReinstated",
  windDown: "MerchantWindingDown",
  close: "MerchantClosed",
};

function act(f: Fixture, action: Action, merchantId = M1, by = f.regulator) {
  const as = f.ledger.connect(by);
  switch (action) {
    case "suspend":
      return as.suspendMerchant(merchantId, REASON);
    case "reinstate":
      return as.reinstateMerchant(merchantId);
    case "windDown":
      return as.windDownMerchant(merchantId, REASON);
    case "close":
      return as.closeMerchant(merchantId, REASON);
  }
}

/**
 * Every (status, action) pair: the status it leads to, or the error it must raise. Suspend and
 * reinstate keep their historical errors for the moves they always refused.
 */
const TRANSITIONS: { from: bigint; action: Action; to?: bigint; error?: [string, unknown[]] }[] = [
  { from: ACTIVE, action: "suspend", to: SUSPENDED },
  { from: ACTIVE, action: "reinstate", error: ["LedgerMerchantNotSuspended", [M1]] },
  { from: ACTIVE, action: "windDown", to: WINDING_DOWN },
  { from: ACTIVE, action: "close", to: CLOSED },
  { from: SUSPENDED, action: "suspend", error: ["LedgerMerchantSuspended", [M1]] },
  { from: SUSPENDED, action: "reinstate", to: ACTIVE },
  { from: SUSPENDED, action: "windDown", to: WINDING_DOWN },
  { from: SUSPENDED, action: "close", to: CLOSED },
  { from: WINDING_DOWN, action: "suspend", error: ["LedgerIllegalTransition", [M1, WINDING_DOWN, SUSPENDED]] },
  { from: WINDING_DOWN, action: "reinstate", error: ["LedgerMerchantNotSuspended", [M1]] },
  { from: WINDING_DOWN, action: "windDown", error: ["LedgerIllegalTransition", [M1, WINDING_DOWN, WINDING_DOWN]] },
  { from: WINDING_DOWN, action: "close", to: CLOSED },
  { from: CLOSED, action: "suspend", error: ["LedgerIllegalTransition", [M1, CLOSED, SUSPENDED]] },
  { from: CLOSED, action: "reinstate", error: ["LedgerMerchantNotSuspended", [M1]] },
  { from: CLOSED, action: "windDown", error: ["LedgerIllegalTransition", [M1, CLOSED, WINDING_DOWN]] },
  { from: CLOSED, action: "close", error: ["LedgerIllegalTransition", [M1, CLOSED, CLOSED]] },
];

describe("PrepaidLedger winding down and exit", function () {
  describe("transitions", function () {
    for (const t of TRANSITIONS) {
      const name = ["none", "active", "suspended", "winding-down", "closed"][Number(t.from)];
      it(`${t.action} from ${name}: ${t.to === undefined ? t.error![0] : `-> ${t.to}`}`, async function () {
        const f = await networkHelpers.loadFixture(deployLedger);
        await moveTo(f, t.from);
        if (t.to !== undefined) {
          const args = t.action === "reinstate" ? [M1, f.regulator.address] : [M1, f.regulator.address, REASON];
          await expect(act(f, t.action)).to.emit(f.ledger, EVENT[t.action]).withArgs(...args);
          expect((await f.ledger.merchantBooks(M1)).status).to.equal(TARGET[t.action]);
        } else {
          const before = await snapshot(f);
          const [error, args] = t.error!;
          await expect(act(f, t.action)).to.be.revertedWithCustomError(f.ledger, error).withArgs(...args);
          expect(await snapshot(f)).to.deep.equal(before);
        }
      });
    }

    it("refuses windDownMerchant and closeMerchant to every role but the regulator, and changes nothing", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      const role = await f.ledger.REGULATOR_ROLE();
      const before = await snapshot(f);
      for (const caller of [f.admin, f.recorder1, f.recorder2, f.stranger]) {
        for (const action of ["windDown", "close"] as const) {
          await expect(act(f, action, M1, caller))
            .to.be.revertedWithCustomError(f.ledger, "AccessControlUnauthorizedAccount")
            .withArgs(caller.address, role);
        }
      }
      expect(await snapshot(f)).to.deep.equal(before);
    });

    it("refuses an unknown merchant", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      for (const action of ["windDown", "close"] as const) {
        await expect(act(f, action, 99)).to.be.revertedWithCustomError(f.ledger, "LedgerUnknownMerchant").withArgs(99);
      }
      expect((await f.ledger.merchantBooks(99)).status).to.equal(NONE);
    });
  });

  describe("when winding down", function () {
    it("books refunds, one or many, and the liability falls", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await moveTo(f, WINDING_DOWN);
      await expect(upload(f, [record(Refund, CARD, 10_000n), record(Refund, OTHER, 1_000n)])).to.emit(f.ledger, "BatchRecorded");
      await expect(upload(f, [record(Refund, OTHER, 4_000n)])).to.emit(f.ledger, "BatchRecorded");
      const books = await f.ledger.merchantBooks(M1);
      expect([books.refunded, books.liability, books.status]).to.deep.equal([15_000n, 0n, WINDING_DOWN]);
    });

    for (const [label, kind] of [
      ["a top-up", TopUp],
      ["a consumption", Consume],
    ] as const) {
      it(`refuses a batch with ${label} after refunds, naming its first non-refund record; nothing changes`, async function () {
        const f = await networkHelpers.loadFixture(deployLedger);
        await moveTo(f, WINDING_DOWN);
        const before = await snapshot(f);
        const batch = [record(Refund, CARD, 100n), record(Refund, OTHER, 100n), record(kind, OTHER, 50n), record(TopUp, CARD, 1n)];
        await expect(upload(f, batch))
          .to.be.revertedWithCustomError(f.ledger, "LedgerRefundsOnly")
          .withArgs(M1, hexlify(OTHER), kind);
        expect(await snapshot(f)).to.deep.equal(before);
      });
    }

    it("still refuses what the books refuse first (an overdrawn refund) with its own error", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await moveTo(f, WINDING_DOWN);
      await expect(upload(f, [record(TopUp, CARD, 1n), record(Refund, OTHER, 5_001n)]))
        .to.be.revertedWithCustomError(f.ledger, "LedgerInsufficientBalance")
        .withArgs(hexlify(OTHER), 5_000n, 5_001n);
    });

    it("leaves other merchants trading", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await moveTo(f, WINDING_DOWN);
      await expect(f.ledger.connect(f.recorder2).recordBatch(M2, 1, "0x", packBatch([record(TopUp, CARD, 7n)]))).to.emit(
        f.ledger,
        "BatchRecorded",
      );
    });
  });

  describe("when closed", function () {
    for (const from of [ACTIVE, SUSPENDED, WINDING_DOWN]) {
      it(`refuses every kind of record (closed from status ${from}); nothing changes`, async function () {
        const f = await networkHelpers.loadFixture(deployLedger);
        await moveTo(f, from);
        await f.ledger.connect(f.regulator).closeMerchant(M1, REASON);
        const before = await snapshot(f);
        for (const kind of [TopUp, Consume, Refund]) {
          await expect(upload(f, [record(kind, CARD, 1n)]))
            .to.be.revertedWithCustomError(f.ledger, "LedgerMerchantClosed")
            .withArgs(M1);
        }
        expect(await snapshot(f)).to.deep.equal(before);
      });
    }
  });

  describe("when suspended", function () {
    it("still refuses refunds, as before: winding down is the state for paying back", async function () {
      const f = await networkHelpers.loadFixture(deployLedger);
      await moveTo(f, SUSPENDED);
      await expect(upload(f, [record(Refund, CARD, 1n)]))
        .to.be.revertedWithCustomError(f.ledger, "LedgerMerchantSuspended")
        .withArgs(M1);
      expect((await f.ledger.merchantBooks(M1)).refunded).to.equal(0n);
    });
  });
});
