/**
 * The uploader's fast local signing (src/upload/signing.ts): byte for byte what ethers'
 * `Wallet.signTransaction` makes, over random calldata sizes (RLP's length-of-length boundaries
 * included), and accepted by a node when an Uploader signs with a local key.
 */
import { join } from "node:path";

import { expect } from "chai";
import { Transaction, Wallet, hexlify } from "ethers";
import fc from "fast-check";
import { network } from "hardhat";

import { signBatchTransaction, unsignedBatchTransaction, type BatchTransactionFields } from "../../src/upload/signing.js";
import { Uploader } from "../../src/upload/uploader.js";
import { isError, type ErrorCode } from "../../src/errors.js";
import { REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;

/** A private key: 32 bytes below the curve order (the top byte kept under 0xff). */
const privateKey = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => {
  b[0] = b[0]! % 0xfe;
  b[31] = b[31]! | 1; // never zero
  return hexlify(b);
});
const u256 = fc.bigInt({ min: 0n, max: 2n ** 256n - 1n });
const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => hexlify(b));

const fieldsOf = (data: fc.Arbitrary<Uint8Array>) =>
  fc.record({
    chainId: fc.oneof(fc.constantFrom(1n, 31337n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
    nonce: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
    fees: fc.tuple(fc.oneof(fc.constant(0n), u256), fc.oneof(fc.constant(0n), u256)),
    gasLimit: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    to: address,
    data,
  }).map(({ fees: [a, b], ...rest }): BatchTransactionFields => ({
    ...rest,
    // A priority fee is at most the fee cap, or no node (and not ethers) takes the transaction.
    maxPriorityFeePerGas: a < b ? a : b,
    maxFeePerGas: a < b ? b : a,
  }));

/** Expects `fn` to throw a PrepaidLedgerError of `code`. */
function expectError(fn: () => unknown, code: ErrorCode): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isError(caught, code), String(caught)).to.equal(true);
}

/** What ethers makes of the same fields. */
function ethersSigned(key: string, tx: BatchTransactionFields): Promise<string> {
  return new Wallet(key).signTransaction({ type: 2, value: 0n, accessList: [], ...tx, data: hexlify(tx.data) });
}

describe("fast local signing of a batch transaction", function () {
  it("equals ethers' signTransaction byte for byte, short calldata (RLP's single-byte and 55/56-byte cases)", async function () {
    await fc.assert(
      fc.asyncProperty(privateKey, fieldsOf(fc.uint8Array({ maxLength: 300 })), async (key, tx) => {
        expect(signBatchTransaction(new Wallet(key).signingKey, tx)).to.equal(await ethersSigned(key, tx));
      }),
      { numRuns: 150 },
    );
  });

  it("equals ethers' signTransaction byte for byte, batch-sized calldata (length-of-length 1, 2 and 3 bytes)", async function () {
    this.timeout(120_000); // ethers' own signing takes up to half a second for 150 kB here
    const size = fc.oneof(fc.constantFrom(255, 256, 65_535, 65_536, 150_000), fc.integer({ min: 0, max: 200_000 }));
    await fc.assert(
      fc.asyncProperty(privateKey, fieldsOf(size.chain((n) => fc.uint8Array({ minLength: n, maxLength: n }))), async (key, tx) => {
        expect(signBatchTransaction(new Wallet(key).signingKey, tx)).to.equal(await ethersSigned(key, tx));
      }),
      { numRuns: 12 },
    );
  });

  it("signs what ethers calls the unsigned serialization, and the sender recovers as the key's address", function () {
    const wallet = Wallet.createRandom();
    const tx: BatchTransactionFields = {
      chainId: 31337n,
      nonce: 7,
      maxPriorityFeePerGas: 10n ** 9n,
      maxFeePerGas: 10n ** 10n,
      gasLimit: 15_000_000n,
      to: "0x" + "ab".repeat(20),
      data: Uint8Array.from({ length: 1_000 }, (_, i) => i & 0xff),
    };
    const parsed = Transaction.from(signBatchTransaction(wallet.signingKey, tx));
    expect(hexlify(unsignedBatchTransaction(tx))).to.equal(parsed.unsignedSerialized);
    expect(parsed.from).to.equal(wallet.address);
    expect(parsed.data).to.equal(hexlify(tx.data));
  });

  it("refuses a negative number, an unsafe nonce, a `to` that is not an address and a priority fee above the fee cap", function () {
    const key = Wallet.createRandom().signingKey;
    const tx: BatchTransactionFields = {
      chainId: 1n,
      nonce: 0,
      maxPriorityFeePerGas: 0n,
      maxFeePerGas: 0n,
      gasLimit: 21_000n,
      to: "0x" + "00".repeat(20),
      data: new Uint8Array(0),
    };
    expectError(() => signBatchTransaction(key, { ...tx, maxFeePerGas: -1n }), "INVALID_ARGUMENT");
    expectError(() => signBatchTransaction(key, { ...tx, nonce: 2 ** 53 }), "INVALID_ARGUMENT");
    expectError(() => signBatchTransaction(key, { ...tx, to: "0x1234" }), "INVALID_ARGUMENT");
    expectError(() => signBatchTransaction(key, { ...tx, maxPriorityFeePerGas: 2n, maxFeePerGas: 1n }), "INVALID_ARGUMENT");
  });

  it("an Uploader with a local key lands its batches through it", async function () {
    const [admin, regulator] = await ethers.getSigners();
    const recorder = new Wallet(Wallet.createRandom().privateKey, ethers.provider);
    await networkHelpers.setBalance(recorder.address, 10n ** 20n);
    const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
    await (await ledger.connect(regulator).registerMerchant(1, recorder.address)).wait();
    const uploader = await Uploader.open(
      {
        ledger: await ledger.getAddress(),
        merchantId: 1,
        regulatorPublicKey: REGULATOR_PUB,
        journalPath: join(tempDir("signing"), "journal.jsonl"),
        preflight: false,
        batchSize: 3,
      },
      recorder,
    );
    try {
      const records = await uploader.upload([...openings(1, 2), detail(1, 2, card(0), 5_000n, 5), detail(1, 2, card(1), 6_000n, 6)]);
      expect(records.map((r) => r.recordIndex)).to.deep.equal([1n, 2n, 3n, 4n]);
      const [count] = await ledger.chainHead();
      expect(count).to.equal(4n);
      const tx = await ethers.provider.getTransaction(records[0]!.txHash);
      expect(tx?.from).to.equal(recorder.address);
      expect(tx?.type).to.equal(2);
    } finally {
      uploader.close();
    }
  });
});
