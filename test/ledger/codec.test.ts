import { expect } from "chai";
import { Interface, getBytes, hexlify, id, keccak256, solidityPacked } from "ethers";
import fc from "fast-check";

import { isError } from "../../src/errors.js";
import { PREPAID_LEDGER_ABI } from "../../src/ledger/abi.js";
import {
  BATCH_LINK_BYTES,
  CHAIN_VERSION,
  RECORD_HEAD_BYTES,
  chainVersionOf,
  decodeRecordedData,
  encodeRecord,
  encodeRecordBatchCall,
  genesisHead,
  linkBatch,
  linkSettlement,
  SETTLEMENT_LINK_BYTES,
  packBatch,
  unpackBatch,
  type ChainVersion,
  type PackedRecord,
} from "../../src/ledger/codec.js";
import { expectedBatchLink, expectedGenesis } from "../helpers/records.js";

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const record: fc.Arbitrary<PackedRecord> = fc.record({
  kind: fc.integer({ min: 0, max: 255 }),
  amount: fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }),
  account: bytes32,
  commitment: bytes32,
  ciphertext: fc.uint8Array({ minLength: 0, maxLength: 300 }),
});

function expectCode(fn: () => unknown, code: string, details: Record<string, unknown> = {}) {
  try {
    fn();
  } catch (e) {
    expect(isError(e), String(e)).to.equal(true);
    expect((e as { code: string }).code).to.equal(code);
    expect((e as { details: object }).details).to.include(details);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe("ledger/codec", function () {
  it("packs a record as kind | amount | account | commitment | length | ciphertext", function () {
    const r: PackedRecord = {
      kind: 2,
      amount: 0x0102030405n,
      account: getBytes(id("a")),
      commitment: getBytes(id("c")),
      ciphertext: Uint8Array.of(2, 9, 9),
    };
    const expected = solidityPacked(
      ["uint8", "uint48", "bytes32", "bytes32", "uint16", "bytes"],
      [2, 0x0102030405n, id("a"), id("c"), 3, "0x020909"],
    );
    expect(hexlify(encodeRecord(r))).to.equal(expected);
    expect(hexlify(packBatch([r]))).to.equal("0x010001" + expected.slice(2));
  });

  it("round-trips any batch through packBatch and unpackBatch", function () {
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 8 }), (records) => {
        const back = unpackBatch(packBatch(records));
        expect(back.map((r) => ({ ...r, account: hexlify(r.account), commitment: hexlify(r.commitment), ciphertext: hexlify(r.ciphertext) }))).to.deep.equal(
          records.map((r) => ({ ...r, account: hexlify(r.account), commitment: hexlify(r.commitment), ciphertext: hexlify(r.ciphertext) })),
        );
      }),
    );
  });

  it("refuses to pack what the contract could not read", function () {
    const ok: PackedRecord = { kind: 1, amount: 1n, account: new Uint8Array(32), commitment: new Uint8Array(32), ciphertext: Uint8Array.of(1) };
    expectCode(() => packBatch([]), "INVALID_ARGUMENT", { count: 0 });
    expectCode(() => encodeRecord({ ...ok, kind: 256 }), "INVALID_ARGUMENT", { kind: 256 });
    expectCode(() => encodeRecord({ ...ok, amount: 1n << 48n }), "INVALID_ARGUMENT");
    expectCode(() => encodeRecord({ ...ok, amount: -1n }), "INVALID_ARGUMENT");
    expectCode(() => encodeRecord({ ...ok, account: new Uint8Array(31) }), "INVALID_ARGUMENT");
    expectCode(() => encodeRecord({ ...ok, ciphertext: new Uint8Array(0x10000) }), "INVALID_ARGUMENT");
  });

  it("refuses malformed packed batches with the offset", function () {
    const good = packBatch([
      { kind: 1, amount: 5n, account: new Uint8Array(32), commitment: new Uint8Array(32), ciphertext: Uint8Array.of(2, 1) },
    ]);
    expectCode(() => unpackBatch(good.subarray(0, 2)), "MALFORMED_DATA", { length: 2 });
    expectCode(() => unpackBatch(Uint8Array.of(9, ...good.subarray(1))), "UNSUPPORTED_VERSION", { version: 9 });
    expectCode(() => unpackBatch(good.subarray(0, 3 + RECORD_HEAD_BYTES - 1)), "MALFORMED_DATA", { offset: 3 });
    expectCode(() => unpackBatch(good.subarray(0, good.length - 1)), "MALFORMED_DATA", { offset: 3 });
    expectCode(() => unpackBatch(Uint8Array.of(...good, 0)), "MALFORMED_DATA", { offset: good.length });
  });

  it("decodes a Recorded log's packed data", function () {
    const data = getBytes(solidityPacked(["uint64", "uint8", "uint48", "bytes"], [77, 3, 123456789n, "0x02aabb"]));
    const d = decodeRecordedData(data);
    expect([d.recordIndex, d.kind, d.amount, hexlify(d.ciphertext)]).to.deep.equal([77n, 3, 123456789n, "0x02aabb"]);
    expectCode(() => decodeRecordedData(data.subarray(0, 14)), "MALFORMED_DATA", { length: 14 });
  });

  it("encodes recordBatch calldata exactly as ethers' Interface does", function () {
    const ledger = new Interface(PREPAID_LEDGER_ABI);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 300 }),
        (merchantId, sequence, envelope, records) => {
          const expected = ledger.encodeFunctionData("recordBatch", [merchantId, sequence, envelope, records]);
          expect(hexlify(encodeRecordBatchCall(merchantId, sequence, envelope, records))).to.equal(expected);
        },
      ),
    );
    expectCode(() => encodeRecordBatchCall(2 ** 32, 1n, new Uint8Array(0), new Uint8Array(0)), "INVALID_ARGUMENT");
    expectCode(() => encodeRecordBatchCall(1, 1n << 64n, new Uint8Array(0), new Uint8Array(0)), "INVALID_ARGUMENT");
  });

  describe("hash-chain versions (docs/FORMAT.md 7)", function () {
    const ledger = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

    it("starts each version at the genesis of its own tag, and tells a genesis's version", function () {
      expect(CHAIN_VERSION).to.equal(2);
      for (const version of [1, 2] as const) {
        const genesis = genesisHead(31337n, ledger, version);
        expect(hexlify(genesis)).to.equal(expectedGenesis(31337n, ledger, version));
        expect(chainVersionOf(genesis, 31337n, ledger)).to.equal(version);
        expect(chainVersionOf(hexlify(genesis).toUpperCase().replace("0X", "0x"), 31337n, ledger)).to.equal(version);
        // Bound to the chain id and the address: another's genesis is no version here.
        expect(chainVersionOf(genesis, 1n, ledger)).to.equal(undefined);
      }
      expect(hexlify(genesisHead(31337n, ledger))).to.equal(expectedGenesis(31337n, ledger, 2));
      expect(chainVersionOf(id("no genesis"), 31337n, ledger)).to.equal(undefined);
      expectCode(() => genesisHead(31337n, ledger, 3 as ChainVersion), "UNSUPPORTED_VERSION", { version: 3 });
    });

    it("links a batch as keccak256 of 130 packed bytes, as ethers' solidityPacked does", function () {
      fc.assert(
        fc.property(
          bytes32,
          fc.integer({ min: 0, max: 2 ** 32 - 1 }),
          fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
          fc.uint8Array({ minLength: 20, maxLength: 20 }),
          fc.uint8Array({ maxLength: 300 }),
          fc.integer({ min: 0, max: 0xffff }),
          (previous, merchantId, sequence, address, envelope, count) => {
            const recorder = hexlify(address);
            const expected = expectedBatchLink(hexlify(previous), merchantId, sequence, recorder, envelope, count);
            expect(hexlify(linkBatch(previous, { merchantId, sequence, recorder, envelope, count }))).to.equal(expected);
          },
        ),
      );
      expect(BATCH_LINK_BYTES).to.equal(32 + 32 + 4 + 8 + 20 + 32 + 2);
    });

    it("refuses batch fields the event could not hold", function () {
      const ok = { merchantId: 1, sequence: 1n, recorder: ledger, envelope: new Uint8Array(0), count: 1 };
      const previous = new Uint8Array(32);
      for (const bad of [{ merchantId: 2 ** 32 }, { merchantId: -1 }, { merchantId: 1.5 }, { sequence: 1n << 64n }, { sequence: -1n }, { count: 0x10000 }, { count: 2.5 }]) {
        expectCode(() => linkBatch(previous, { ...ok, ...bad }), "INVALID_ARGUMENT");
      }
    });

    it("links a settlement as keccak256 of 135 packed bytes, as ethers' solidityPacked does, and refuses fields Settled could not hold", function () {
      const types = ["bytes32", "bytes32", "uint64", "uint32", "bytes32", "address", "uint8", "uint48"];
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
          fc.integer({ min: 0, max: 0xffffffff }),
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          fc.integer({ min: 0, max: 255 }),
          fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }),
          (previous, recordIndex, merchantId, account, reason, amount) => {
            const s = { recordIndex, merchantId, account, holder: ledger, reason, amount };
            const packed = solidityPacked(types, [previous, id("prepaid-ledger.settlement.v2"), recordIndex, merchantId, account, ledger, reason, amount]);
            expect(getBytes(packed)).to.have.length(SETTLEMENT_LINK_BYTES);
            expect(hexlify(linkSettlement(previous, s))).to.equal(keccak256(packed));
            expect(hexlify(linkSettlement(previous, { ...s, account: hexlify(account) }))).to.equal(keccak256(packed));
          },
        ),
        { numRuns: 50 },
      );
      const ok = { recordIndex: 1n, merchantId: 1, account: new Uint8Array(32), holder: ledger, reason: 1, amount: 1n };
      for (const bad of [{ merchantId: 2 ** 32 }, { reason: 256 }, { amount: 1n << 48n }, { recordIndex: -1n }, { account: new Uint8Array(31) }]) {
        expectCode(() => linkSettlement(new Uint8Array(32), { ...ok, ...bad }), "INVALID_ARGUMENT");
      }
    });
  });
});
