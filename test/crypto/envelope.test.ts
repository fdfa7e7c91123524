import { createCipheriv, webcrypto } from "node:crypto";

import { expect } from "chai";
import EthCrypto from "eth-crypto";
import { keccak256 as ethersKeccak256 } from "ethers";
import fc from "fast-check";

import {
  FORMAT_BATCH,
  addressOf,
  bytesToHex,
  canonicalFromSealed,
  commitmentOf,
  createBatchKey,
  decodeSealed,
  eciesEncrypt,
  encodeSealed,
  hexToBytes,
  openBatchRecord,
  openEnvelope,
  parseEnvelope,
  sealBatchRecord,
  sealDetails,
} from "../../src/crypto/index.js";
import type { RecordDetails, Recipient, RecipientRole } from "../../src/crypto/index.js";
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

/** Awaits `p`, expects it to reject with a PrepaidLedgerError carrying `code`, and returns the error. */
async function expectRejection(p: Promise<unknown>, code: ErrorCode): Promise<PrepaidLedgerError> {
  const caught = await p.then(
    () => expect.fail(`expected a ${code} rejection`),
    (e: unknown) => e,
  );
  expect(isError(caught, code), `expected ${code}, got ${String(caught)}`).to.equal(true);
  return caught as PrepaidLedgerError;
}

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const copy = bytes.slice();
  copy[at]! ^= 0x01;
  return copy;
}

/** Builds an envelope by hand from FORMAT.md 4, independently of createBatchKey. */
function buildEnvelope(entries: { address: string; roleByte: number; wrapped: Uint8Array }[]): Uint8Array {
  const parts: number[] = [0x01, entries.length];
  for (const e of entries) {
    parts.push(...hexToBytes(e.address), e.roleByte, e.wrapped.length >> 8, e.wrapped.length & 0xff, ...e.wrapped);
  }
  return Uint8Array.from(parts);
}

const details: RecordDetails = {
  kind: 1,
  merchantId: 9,
  account: "0x" + "cd".repeat(32),
  amount: 50_000n,
  time: 1_760_000_000,
  orderRef: "ORD-2025-000000042",
  memo: "10 classes",
};

const detailsArb: fc.Arbitrary<RecordDetails> = fc.record({
  kind: fc.constantFrom(1 as const, 2 as const, 3 as const),
  merchantId: fc.bigInt({ min: 1n, max: (1n << 32n) - 1n }).map(Number),
  account: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(bytesToHex),
  amount: fc.bigInt({ min: 1n, max: (1n << 48n) - 1n }),
  time: fc.bigInt({ min: 0n, max: (1n << 40n) - 1n }).map(Number),
  orderRef: fc.string({ unit: "grapheme-composite", maxLength: 60 }),
  memo: fc.string({ unit: "grapheme-composite", maxLength: 60 }),
});

describe("crypto/envelope", function () {
  const regulator = EthCrypto.createIdentity();
  const merchant = EthCrypto.createIdentity();
  const stranger = EthCrypto.createIdentity();
  const recipients: Recipient[] = [
    { publicKey: regulator.publicKey, role: "regulator" },
    { publicKey: merchant.publicKey, role: "merchant" },
  ];

  describe("createBatchKey / parseEnvelope / openEnvelope", function () {
    it("wraps one data key for every recipient", async function () {
      const { dataKey, envelope } = await createBatchKey(recipients);
      expect(dataKey.length).to.equal(32);
      expect(envelope.length).to.equal(2 + 2 * (23 + 129));
      const entries = parseEnvelope(envelope);
      expect(entries.map((e) => [e.address, e.role, e.wrapped.length])).to.deep.equal([
        [regulator.address, "regulator", 129],
        [merchant.address, "merchant", 129],
      ]);
      expect(await openEnvelope(regulator.privateKey, envelope)).to.deep.equal(dataKey);
      expect(await openEnvelope(merchant.privateKey, envelope)).to.deep.equal(dataKey);
    });

    it("draws a fresh data key per batch", async function () {
      const a = await createBatchKey(recipients);
      const b = await createBatchKey(recipients);
      expect(bytesToHex(a.dataKey)).to.not.equal(bytesToHex(b.dataKey));
    });

    it("parses an envelope built by hand with every role", async function () {
      const wrapped = await eciesEncrypt(regulator.publicKey, new Uint8Array(32));
      const roles: [number, RecipientRole][] = [
        [1, "regulator"],
        [2, "merchant"],
        [3, "other"],
      ];
      const env = buildEnvelope(roles.map(([b]) => ({ address: regulator.address, roleByte: b, wrapped })));
      expect(parseEnvelope(env).map((e) => e.role)).to.deep.equal(roles.map(([, r]) => r));
    });

    it("treats a zero-length envelope as having no entries", async function () {
      expect(parseEnvelope(new Uint8Array(0))).to.deep.equal([]);
      await expectRejection(openEnvelope(regulator.privateKey, new Uint8Array(0)), "WRONG_KEY");
    });

    it("fails with WRONG_KEY for a key that is not a recipient", async function () {
      const { envelope } = await createBatchKey(recipients);
      const e = await expectRejection(openEnvelope(stranger.privateKey, envelope), "WRONG_KEY");
      expect(e.details).to.include({ entries: 2 });
    });

    it("fails with WRAPPED_KEY_CORRUPT for a flipped byte in any part of the wrapped key", async function () {
      const { envelope } = await createBatchKey(recipients);
      const wrappedAt = 2 + 23; // the regulator's wrapped key
      // iv, ephemeral key, mac, AES ciphertext
      for (const at of [0, 20, 60, 100, 128]) {
        const e = await expectRejection(openEnvelope(regulator.privateKey, flip(envelope, wrappedAt + at)), "WRAPPED_KEY_CORRUPT");
        expect(e.details).to.include({ address: regulator.address, role: "regulator" });
        expect(isError(e.cause, "DECRYPTION_FAILED") || isError(e.cause, "MALFORMED_DATA")).to.equal(true);
      }
      // The merchant's entry is untouched and still opens.
      await openEnvelope(merchant.privateKey, flip(envelope, wrappedAt + 100));
    });

    it("fails with WRAPPED_KEY_CORRUPT for a wrapped key that is not 32 bytes", async function () {
      const wrapped = await eciesEncrypt(regulator.publicKey, new Uint8Array(16));
      const env = buildEnvelope([{ address: regulator.address, roleByte: 1, wrapped }]);
      const e = await expectRejection(openEnvelope(regulator.privateKey, env), "WRAPPED_KEY_CORRUPT");
      expect(e.details).to.include({ length: 16 });
    });

    it("rejects a bad recipient list with INVALID_ARGUMENT", async function () {
      const cases: [Recipient[], string][] = [
        [[], "need 1 to 255 recipients"],
        [Array.from({ length: 256 }, () => recipients[0]!), "need 1 to 255 recipients"],
        [[{ publicKey: merchant.publicKey, role: "merchant" }], "no regulator among the recipients"],
        [
          // the same key in two forms is the same recipient
          [recipients[0]!, { publicKey: EthCrypto.publicKey.compress(regulator.publicKey), role: "other" }],
          "duplicate recipient",
        ],
        [[recipients[0]!, { publicKey: merchant.publicKey, role: "auditor" as RecipientRole }], "unknown role"],
      ];
      for (const [list, reason] of cases) {
        const e = await expectRejection(createBatchKey(list), "INVALID_ARGUMENT");
        expect(e.details).to.include({ reason });
      }
      await expectRejection(createBatchKey([{ publicKey: "0x1234", role: "regulator" }]), "INVALID_ARGUMENT");
    });

    it("rejects every truncation and trailing bytes with MALFORMED_DATA", async function () {
      const { envelope } = await createBatchKey(recipients);
      for (let length = 1; length < envelope.length; length++) {
        expectError(() => parseEnvelope(envelope.subarray(0, length)), "MALFORMED_DATA");
      }
      await expectRejection(openEnvelope(regulator.privateKey, envelope.subarray(0, 100)), "MALFORMED_DATA");
      const longer = new Uint8Array(envelope.length + 1);
      longer.set(envelope);
      expect(expectError(() => parseEnvelope(longer), "MALFORMED_DATA").details).to.include({
        reason: "trailing bytes",
        offset: envelope.length,
      });
    });

    it("rejects an unknown role byte and an empty entry list with MALFORMED_DATA", async function () {
      const { envelope } = await createBatchKey(recipients);
      for (const role of [0, 4, 255]) {
        const bad = envelope.slice();
        bad[2 + 20] = role;
        expect(expectError(() => parseEnvelope(bad), "MALFORMED_DATA").details).to.include({ reason: "unknown role", role });
      }
      expectError(() => parseEnvelope(Uint8Array.of(0x01, 0x00)), "MALFORMED_DATA");
    });

    it("rejects another envelope version with UNSUPPORTED_VERSION", async function () {
      const { envelope } = await createBatchKey(recipients);
      const v2 = envelope.slice();
      v2[0] = 2;
      expect(expectError(() => parseEnvelope(v2), "UNSUPPORTED_VERSION").details).to.include({ version: 2 });
      await expectRejection(openEnvelope(regulator.privateKey, v2), "UNSUPPORTED_VERSION");
    });
  });

  describe("batch-record format 0x02", function () {
    const dataKey = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
    const sealed = encodeSealed(details, new Uint8Array(16).fill(3));

    it("round-trips at several indexes, 17 bytes longer than the payload", function () {
      for (const index of [0, 1, 7, 2 ** 32 - 1]) {
        const ct = sealBatchRecord(dataKey, index, sealed);
        expect(ct[0]).to.equal(FORMAT_BATCH);
        expect(ct.length).to.equal(1 + sealed.length + 16);
        expect(openBatchRecord(dataKey, index, ct)).to.deep.equal(sealed);
      }
    });

    it("uses nonce 0^8|index and aad 0x02|index (checked with WebCrypto)", async function () {
      const index = 0x01020304;
      const ct = sealBatchRecord(dataKey, index, sealed);
      const key = await webcrypto.subtle.importKey("raw", dataKey, "AES-GCM", false, ["decrypt"]);
      const plain = await webcrypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: hexToBytes("0x000000000000000001020304"),
          additionalData: hexToBytes("0x0201020304"),
          tagLength: 128,
        },
        key,
        ct.subarray(1),
      );
      expect(new Uint8Array(plain)).to.deep.equal(sealed);
    });

    it("invariant_batchRecordRoundTrips for arbitrary details and index (property)", function () {
      fc.assert(
        fc.property(detailsArb, fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }).map(Number), (d, index) => {
          const s = sealDetails(d);
          expect(openBatchRecord(dataKey, index, sealBatchRecord(dataKey, index, s.sealed))).to.deep.equal(s.sealed);
        }),
        { numRuns: 200 },
      );
    });

    it("invariant_anyFlippedByteFailsToDecrypt (property)", function () {
      const ct = sealBatchRecord(dataKey, 5, sealed);
      fc.assert(
        fc.property(fc.integer({ min: 1, max: ct.length - 1 }), fc.integer({ min: 0, max: 7 }), (at, bit) => {
          const bad = ct.slice();
          bad[at]! ^= 1 << bit;
          const e = expectError(() => openBatchRecord(dataKey, 5, bad), "DECRYPTION_FAILED");
          expect(e.details).to.include({ index: 5 });
          expect(e.cause).to.be.instanceOf(Error);
        }),
        { numRuns: 200 },
      );
    });

    it("fails with DECRYPTION_FAILED when opened at another index or with another key", function () {
      const ct = sealBatchRecord(dataKey, 5, sealed);
      expectError(() => openBatchRecord(dataKey, 6, ct), "DECRYPTION_FAILED");
      expectError(() => openBatchRecord(dataKey, 5 + 2 ** 24, ct), "DECRYPTION_FAILED");
      expectError(() => openBatchRecord(new Uint8Array(32), 5, ct), "DECRYPTION_FAILED");
    });

    it("rejects another lead byte with UNSUPPORTED_VERSION", function () {
      const ct = sealBatchRecord(dataKey, 0, sealed);
      const other = ct.slice();
      other[0] = 0x01;
      expect(expectError(() => openBatchRecord(dataKey, 0, other), "UNSUPPORTED_VERSION").details).to.include({ format: 1 });
    });

    it("rejects a ciphertext shorter than 18 bytes with MALFORMED_DATA", function () {
      const ct = sealBatchRecord(dataKey, 0, sealed);
      expectError(() => openBatchRecord(dataKey, 0, ct.subarray(0, 17)), "MALFORMED_DATA");
      expectError(() => openBatchRecord(dataKey, 0, new Uint8Array(0)), "MALFORMED_DATA");
    });

    it("rejects a payload of another sealed version with UNSUPPORTED_VERSION", function () {
      const inner = sealed.slice();
      inner[0] = 2;
      expectError(() => sealBatchRecord(dataKey, 0, inner), "INVALID_ARGUMENT");
      // Sealed with a raw AES-GCM call, since sealBatchRecord refuses such a payload.
      const cipher = createCipheriv("aes-256-gcm", dataKey, new Uint8Array(12), { authTagLength: 16 });
      cipher.setAAD(Uint8Array.of(0x02, 0, 0, 0, 0));
      const ct = Buffer.concat([Uint8Array.of(0x02), cipher.update(inner), cipher.final(), cipher.getAuthTag()]);
      expect(expectError(() => openBatchRecord(dataKey, 0, ct), "UNSUPPORTED_VERSION").details).to.include({
        version: 2,
      });
    });

    it("rejects a bad data key or index with INVALID_ARGUMENT", function () {
      const ct = sealBatchRecord(dataKey, 0, sealed);
      for (const index of [-1, 2 ** 32, 1.5, Number.NaN]) {
        expectError(() => sealBatchRecord(dataKey, index, sealed), "INVALID_ARGUMENT");
        expectError(() => openBatchRecord(dataKey, index, ct), "INVALID_ARGUMENT");
      }
      expectError(() => sealBatchRecord(dataKey.subarray(1), 0, sealed), "INVALID_ARGUMENT");
      expectError(() => openBatchRecord(new Uint8Array(16), 0, ct), "INVALID_ARGUMENT");
    });
  });

  it("end to end: seal, wrap, unwrap, open, decode, recommit", async function () {
    const { dataKey, envelope } = await createBatchKey(recipients);
    const records = [details, { ...details, kind: 2 as const, amount: 1_200n, memo: "class 1" }].map((d, index) => {
      const s = sealDetails(d);
      return { d, commitment: s.commitment, ciphertext: sealBatchRecord(dataKey, index, s.sealed) };
    });
    const key = await openEnvelope(regulator.privateKey, envelope);
    records.forEach(({ d, commitment, ciphertext }, index) => {
      const sealed = openBatchRecord(key, index, ciphertext);
      const payload = decodeSealed(sealed);
      expect(payload).to.deep.include({ kind: d.kind, amount: d.amount, time: d.time, orderRef: d.orderRef, memo: d.memo });
      const canonical = canonicalFromSealed(sealed, d.merchantId, hexToBytes(d.account));
      expect(bytesToHex(commitmentOf(canonical))).to.equal(bytesToHex(commitment));
      expect(ethersKeccak256(canonical)).to.equal(bytesToHex(commitment));
    });
    expect(addressOf(regulator.publicKey)).to.equal(parseEnvelope(envelope)[0]!.address);
  });
});
