import { expect } from "chai";
import { keccak256 as ethersKeccak256 } from "ethers";
import fc from "fast-check";

import {
  RecordKind,
  bytesToHex,
  canonicalFromSealed,
  commitmentOf,
  decodeSealed,
  encodeCanonical,
  encodeSealed,
  hexToBytes,
  newSalt,
  sealDetails,
  validateDetails,
} from "../../src/crypto/index.js";
import type { RecordDetails } from "../../src/crypto/index.js";
import { PrepaidLedgerError, isError } from "../../src/errors.js";
import type { ErrorCode } from "../../src/errors.js";

/** Runs `fn`, expects it to throw a PrepaidLedgerError carrying `code`, and returns the error. */
function expectError(fn: () => unknown, code: ErrorCode): PrepaidLedgerError {
  let caught: unknown;
  expect(() => {
    try {
      fn();
    } catch (e) {
      caught = e;
      throw e;
    }
  }).to.throw(PrepaidLedgerError);
  expect(isError(caught, code), `expected ${code}, got ${String(caught)}`).to.equal(true);
  return caught as PrepaidLedgerError;
}

/** Cuts `s` to whole code points fitting in `maxBytes` UTF-8 bytes (bounds input, never discards). */
function truncateUtf8(s: string, maxBytes: number): string {
  let out = "";
  let bytes = 0;
  for (const cp of s) {
    const n = Buffer.byteLength(cp, "utf8");
    if (bytes + n > maxBytes) break;
    out += cp;
    bytes += n;
  }
  return out;
}

const str8 = fc
  .oneof(
    fc.string({ unit: "binary", maxLength: 255 }),
    fc.string({ unit: "grapheme", maxLength: 120 }),
    fc.string({ unit: "grapheme-ascii", maxLength: 255 }),
  )
  .map((s) => truncateUtf8(s, 255));

const detailsArb: fc.Arbitrary<RecordDetails> = fc.record({
  kind: fc.constantFrom(RecordKind.TopUp, RecordKind.Consume, RecordKind.Refund),
  merchantId: fc.bigInt({ min: 1n, max: (1n << 32n) - 1n }).map(Number),
  account: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(bytesToHex),
  amount: fc.bigInt({ min: 1n, max: (1n << 48n) - 1n }),
  time: fc.bigInt({ min: 0n, max: (1n << 40n) - 1n }).map(Number),
  orderRef: str8,
  memo: str8,
});

const saltArb = fc.uint8Array({ minLength: 16, maxLength: 16 });

const base: RecordDetails = {
  kind: RecordKind.TopUp,
  merchantId: 0x01020304,
  account: "0x" + "11".repeat(32),
  amount: 100_000n,
  time: 1_700_000_000,
  orderRef: "A-1",
  memo: "é",
};
const SALT = Uint8Array.from({ length: 16 }, (_, i) => i);

// Written out by hand from FORMAT.md 2.1 / 2.2 for `base` and `SALT`.
const KAT_CANONICAL =
  "0x" +
  "01" + // version
  "01" + // kind TopUp
  "01020304" + // merchantId u32
  "11".repeat(32) + // account b32
  "0000000186a0" + // amount u48 = 100000
  "006553f100" + // time u40 = 1700000000
  "000102030405060708090a0b0c0d0e0f" + // salt b16
  "03412d31" + // orderRef str8 "A-1"
  "02c3a9"; // memo str8 "é"
const KAT_SEALED = "0x" + "01" + "01" + "0000000186a0" + "006553f100" + "000102030405060708090a0b0c0d0e0f" + "03412d31" + "02c3a9";

describe("crypto/details", function () {
  describe("known-answer vectors", function () {
    it("encodes the canonical plaintext byte for byte", function () {
      expect(bytesToHex(encodeCanonical(base, SALT))).to.equal(KAT_CANONICAL);
    });

    it("encodes the sealed payload byte for byte", function () {
      expect(bytesToHex(encodeSealed(base, SALT))).to.equal(KAT_SEALED);
    });

    it("commits with keccak256, as ethers computes it independently", function () {
      const commitment = commitmentOf(hexToBytes(KAT_CANONICAL));
      expect(bytesToHex(commitment)).to.equal(ethersKeccak256(KAT_CANONICAL));
      expect(commitment.length).to.equal(32);
    });

    it("sealDetails returns the same forms and commitment", function () {
      const s = sealDetails(base, SALT);
      expect(bytesToHex(s.canonical)).to.equal(KAT_CANONICAL);
      expect(bytesToHex(s.sealed)).to.equal(KAT_SEALED);
      expect(bytesToHex(s.commitment)).to.equal(ethersKeccak256(KAT_CANONICAL));
      expect(s.salt).to.equal(SALT);
    });

    it("draws a fresh 16-byte salt when none is given", function () {
      const a = sealDetails(base);
      const b = sealDetails(base);
      expect(a.salt.length).to.equal(16);
      expect(bytesToHex(a.salt)).to.not.equal(bytesToHex(b.salt));
      expect(bytesToHex(a.commitment)).to.not.equal(bytesToHex(b.commitment));
      expect(newSalt()).to.be.instanceOf(Uint8Array).with.lengthOf(16);
    });

    it("encodes the range limits", function () {
      const max: RecordDetails = {
        kind: RecordKind.Refund,
        merchantId: 2 ** 32 - 1,
        account: "0x" + "ff".repeat(32),
        amount: (1n << 48n) - 1n,
        time: 2 ** 40 - 1,
        orderRef: "é".repeat(127) + "a", // exactly 255 bytes
        memo: "",
      };
      const sealed = encodeSealed(max, SALT);
      expect(bytesToHex(sealed.subarray(0, 13))).to.equal("0x0103" + "ff".repeat(11));
      expect(decodeSealed(sealed)).to.deep.include({ kind: 3, amount: max.amount, time: max.time, orderRef: max.orderRef, memo: "" });
    });
  });

  describe("round trips (property)", function () {
    it("invariant_decodeSealedInvertsEncodeSealed", function () {
      fc.assert(
        fc.property(detailsArb, saltArb, (d, salt) => {
          const decoded = decodeSealed(encodeSealed(d, salt));
          expect(decoded).to.deep.equal({
            kind: d.kind,
            amount: d.amount,
            time: d.time,
            salt,
            orderRef: d.orderRef,
            memo: d.memo,
          });
        }),
        { numRuns: 300 },
      );
    });

    it("invariant_canonicalFromSealedEqualsEncodeCanonical", function () {
      fc.assert(
        fc.property(detailsArb, saltArb, (d, salt) => {
          const spliced = canonicalFromSealed(encodeSealed(d, salt), d.merchantId, hexToBytes(d.account));
          expect(spliced).to.deep.equal(encodeCanonical(d, salt));
        }),
        { numRuns: 300 },
      );
    });

    it("invariant_commitmentMatchesEthersKeccak", function () {
      fc.assert(
        fc.property(detailsArb, saltArb, (d, salt) => {
          const s = sealDetails(d, salt);
          expect(bytesToHex(s.commitment)).to.equal(ethersKeccak256(s.canonical));
        }),
        { numRuns: 100 },
      );
    });

    it("invariant_decodeSealedThrowsOnlyFormatCodes on arbitrary bytes", function () {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
          try {
            decodeSealed(bytes);
          } catch (e) {
            expect(isError(e, "MALFORMED_DATA") || isError(e, "UNSUPPORTED_VERSION"), String(e)).to.equal(true);
          }
        }),
        { numRuns: 500 },
      );
    });

    it("invariant_everyTruncationOrExtensionIsMalformed", function () {
      fc.assert(
        fc.property(detailsArb, saltArb, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }), (d, salt, cut, extra) => {
          const sealed = encodeSealed(d, salt);
          const at = 1 + (cut % (sealed.length - 1)); // 1 ≤ at < length: keeps the version byte
          expectError(() => decodeSealed(sealed.subarray(0, at)), "MALFORMED_DATA");
          const longer = new Uint8Array(sealed.length + extra.length);
          longer.set(sealed);
          longer.set(extra, sealed.length);
          expectError(() => decodeSealed(longer), "MALFORMED_DATA");
        }),
        { numRuns: 200 },
      );
    });
  });

  describe("validateDetails", function () {
    const cases: [string, Partial<Record<keyof RecordDetails, unknown>>, Record<string, unknown>][] = [
      ["kind 0", { kind: 0 }, { field: "kind", value: 0 }],
      ["kind 4", { kind: 4 }, { field: "kind", value: 4 }],
      ["merchantId 0", { merchantId: 0 }, { field: "merchantId", value: 0 }],
      ["merchantId 2^32", { merchantId: 2 ** 32 }, { field: "merchantId", value: 2 ** 32 }],
      ["fractional merchantId", { merchantId: 1.5 }, { field: "merchantId", value: 1.5 }],
      ["short account", { account: "0x" + "11".repeat(31) }, { field: "account" }],
      ["account without 0x", { account: "11".repeat(32) }, { field: "account" }],
      ["non-hex account", { account: "0x" + "zz".repeat(32) }, { field: "account" }],
      ["amount 0", { amount: 0n }, { field: "amount", value: 0n }],
      ["amount 2^48", { amount: 1n << 48n }, { field: "amount", value: 1n << 48n }],
      ["amount as number", { amount: 5 }, { field: "amount", value: 5 }],
      ["time -1", { time: -1 }, { field: "time", value: -1 }],
      ["time 2^40", { time: 2 ** 40 }, { field: "time", value: 2 ** 40 }],
      ["fractional time", { time: 1.5 }, { field: "time", value: 1.5 }],
      ["orderRef of 256 bytes", { orderRef: "é".repeat(128) }, { field: "orderRef", byteLength: 256 }],
      ["memo of 256 bytes", { memo: "a".repeat(256) }, { field: "memo", byteLength: 256 }],
      ["memo with a lone surrogate", { memo: "x\uD800y" }, { field: "memo" }],
      ["orderRef not a string", { orderRef: 7 }, { field: "orderRef" }],
    ];
    for (const [name, patch, details] of cases) {
      it(`rejects ${name} with INVALID_ARGUMENT`, function () {
        const d = { ...base, ...patch } as RecordDetails;
        const e = expectError(() => validateDetails(d), "INVALID_ARGUMENT");
        expect(e.details).to.deep.include(details);
        expectError(() => encodeCanonical(d, SALT), "INVALID_ARGUMENT");
        expectError(() => encodeSealed(d, SALT), "INVALID_ARGUMENT");
        expectError(() => sealDetails(d, SALT), "INVALID_ARGUMENT");
      });
    }

    it("never echoes the text of an oversized string", function () {
      const e = expectError(() => validateDetails({ ...base, memo: "secret".repeat(50) }), "INVALID_ARGUMENT");
      expect(Object.values(e.details)).to.not.include("secret".repeat(50));
    });

    it("rejects a salt that is not 16 bytes", function () {
      const e = expectError(() => encodeCanonical(base, new Uint8Array(15)), "INVALID_ARGUMENT");
      expect(e.details).to.include({ field: "salt" });
      expectError(() => sealDetails(base, new Uint8Array(17)), "INVALID_ARGUMENT");
    });
  });

  describe("decodeSealed", function () {
    const sealed = hexToBytes(KAT_SEALED);

    it("decodes the known-answer vector", function () {
      expect(decodeSealed(sealed)).to.deep.equal({
        kind: 1,
        amount: 100_000n,
        time: 1_700_000_000,
        salt: SALT,
        orderRef: "A-1",
        memo: "é",
      });
    });

    it("leaves an unknown kind to the reader", function () {
      const odd = sealed.slice();
      odd[1] = 9;
      expect(decodeSealed(odd).kind).to.equal(9);
    });

    it("keeps a leading byte-order mark", function () {
      const d = { ...base, memo: "\uFEFFbom" };
      expect(decodeSealed(encodeSealed(d, SALT)).memo).to.equal("\uFEFFbom");
    });

    it("rejects empty bytes with MALFORMED_DATA", function () {
      expectError(() => decodeSealed(new Uint8Array(0)), "MALFORMED_DATA");
    });

    it("rejects version 2 with UNSUPPORTED_VERSION", function () {
      const v2 = sealed.slice();
      v2[0] = 2;
      expect(expectError(() => decodeSealed(v2), "UNSUPPORTED_VERSION").details).to.include({ version: 2 });
    });

    it("rejects a payload shorter than the fixed part with MALFORMED_DATA", function () {
      const e = expectError(() => decodeSealed(sealed.subarray(0, 30)), "MALFORMED_DATA");
      expect(e.details).to.include({ reason: "truncated", length: 30 });
    });

    it("rejects a string running past the end with MALFORMED_DATA", function () {
      const e = expectError(() => decodeSealed(sealed.subarray(0, sealed.length - 1)), "MALFORMED_DATA");
      expect(e.details).to.include({ reason: "truncated", field: "memo" });
    });

    it("rejects trailing bytes with MALFORMED_DATA", function () {
      const longer = new Uint8Array(sealed.length + 1);
      longer.set(sealed);
      const e = expectError(() => decodeSealed(longer), "MALFORMED_DATA");
      expect(e.details).to.include({ reason: "trailing bytes", offset: sealed.length });
    });

    it("rejects invalid UTF-8 with MALFORMED_DATA, keeping the cause", function () {
      const bad = sealed.slice();
      bad[30] = 0xff; // first byte of orderRef
      const e = expectError(() => decodeSealed(bad), "MALFORMED_DATA");
      expect(e.details).to.include({ reason: "invalid UTF-8", field: "orderRef" });
      expect(e.cause).to.be.instanceOf(Error);
    });
  });

  describe("canonicalFromSealed", function () {
    const sealed = hexToBytes(KAT_SEALED);
    const account = hexToBytes(base.account);

    it("splices the known-answer vector", function () {
      expect(bytesToHex(canonicalFromSealed(sealed, base.merchantId, account))).to.equal(KAT_CANONICAL);
    });

    it("rejects a bad merchantId or account with INVALID_ARGUMENT", function () {
      expect(expectError(() => canonicalFromSealed(sealed, 0, account), "INVALID_ARGUMENT").details).to.include({
        field: "merchantId",
      });
      expect(
        expectError(() => canonicalFromSealed(sealed, 1, account.subarray(1)), "INVALID_ARGUMENT").details,
      ).to.include({ field: "account" });
    });

    it("rejects another version with UNSUPPORTED_VERSION and a short payload with MALFORMED_DATA", function () {
      const v2 = sealed.slice();
      v2[0] = 2;
      expectError(() => canonicalFromSealed(v2, 1, account), "UNSUPPORTED_VERSION");
      expectError(() => canonicalFromSealed(sealed.subarray(0, 30), 1, account), "MALFORMED_DATA");
      expectError(() => canonicalFromSealed(new Uint8Array(0), 1, account), "MALFORMED_DATA");
    });
  });
});
