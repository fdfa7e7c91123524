import { expect } from "chai";
import EthCrypto from "eth-crypto";
import fc from "fast-check";

import {
  ECIES_MIN_LENGTH,
  FORMAT_SINGLE,
  addressOf,
  bytesToHex,
  eciesDecrypt,
  eciesEncrypt,
  encodeSealed,
  hexToBytes,
  openSingle,
  publicKeyOf,
  sealSingle,
} from "../../src/crypto/index.js";
import type { RecordDetails } from "../../src/crypto/index.js";
import { eciesEncryptWith } from "../../src/crypto/ecies.js";
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

// Hardhat's well-known test account #0: a public test key, never used for value.
const KNOWN_PRIVATE = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const KNOWN_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

const details: RecordDetails = {
  kind: 2,
  merchantId: 42,
  account: "0x" + "ab".repeat(32),
  amount: 1_999n,
  time: 1_750_000_000,
  orderRef: "ORD-2025-000000017",
  memo: "yoga pass",
};

describe("crypto/ecies", function () {
  const alice = EthCrypto.createIdentity();
  const bob = EthCrypto.createIdentity();

  describe("keys", function () {
    it("derives eth-crypto's public key and address", function () {
      expect(publicKeyOf(alice.privateKey)).to.equal(alice.publicKey);
      expect(publicKeyOf(alice.privateKey.slice(2))).to.equal(alice.publicKey);
      expect(addressOf(alice.publicKey)).to.equal(alice.address);
      expect(addressOf(publicKeyOf(KNOWN_PRIVATE))).to.equal(KNOWN_ADDRESS);
    });

    it("accepts a public key uncompressed, 04-prefixed or compressed", function () {
      const compressed = EthCrypto.publicKey.compress(alice.publicKey);
      for (const form of [alice.publicKey, "0x" + alice.publicKey, "04" + alice.publicKey, compressed, "0x" + compressed]) {
        expect(addressOf(form)).to.equal(alice.address);
      }
    });

    it("rejects malformed public keys with INVALID_ARGUMENT", function () {
      const notOnCurve = "02" + "00".repeat(31) + "05"; // x = 5 has no point on secp256k1
      for (const key of ["zz", alice.privateKey, "02" + "11".repeat(31), notOnCurve, "05" + "11".repeat(32)]) {
        expectError(() => addressOf(key), "INVALID_ARGUMENT");
      }
    });

    it("rejects malformed private keys with INVALID_ARGUMENT and does not echo them", function () {
      for (const key of ["0x" + "00".repeat(32), "0x" + "ff".repeat(32), "0x1234", "0x" + "g1".repeat(32)]) {
        const e = expectError(() => publicKeyOf(key), "INVALID_ARGUMENT");
        expect(JSON.stringify(e.details)).to.not.include(key.slice(2));
        expect(e.cause).to.equal(undefined);
      }
    });
  });

  describe("eciesEncrypt / eciesDecrypt", function () {
    it("round-trips arbitrary bytes (property)", async function () {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (plain) => {
          const cipher = await eciesEncrypt(alice.publicKey, plain);
          expect(await eciesDecrypt(alice.privateKey, cipher)).to.deep.equal(plain);
        }),
        { numRuns: 25 },
      );
    });

    it("is byte-compatible with eth-crypto in both directions", async function () {
      const plain = Uint8Array.from([0, 1, 2, 250, 255]);
      const ours = await eciesEncrypt(alice.publicKey, plain);
      const text = await EthCrypto.decryptWithPrivateKey(alice.privateKey, EthCrypto.cipher.parse(bytesToHex(ours).slice(2)));
      expect(text).to.equal(Buffer.from(plain).toString("base64"));

      const theirs = EthCrypto.cipher.stringify(await EthCrypto.encryptWithPublicKey(alice.publicKey, text));
      expect(await eciesDecrypt(alice.privateKey, hexToBytes(theirs))).to.deep.equal(plain);
    });

    it("makes eth-crypto's bytes exactly for the same ephemeral key and iv (property, every key form)", async function () {
      const key = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((b) => b.some((x) => x !== 0) && b[0]! < 0xff);
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), key, fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.constantFrom(0, 1, 2), async (plain, ephemeral, iv, form) => {
          const pub = form === 0 ? alice.publicKey : form === 1 ? "0x04" + alice.publicKey : EthCrypto.publicKey.compress(alice.publicKey);
          const theirs = EthCrypto.cipher.stringify(
            await EthCrypto.encryptWithPublicKey(alice.publicKey, Buffer.from(plain).toString("base64"), {
              ephemPrivateKey: Buffer.from(ephemeral),
              iv: Buffer.from(iv),
            } as never),
          );
          expect(bytesToHex(eciesEncryptWith(pub, plain, ephemeral, iv)).slice(2)).to.equal(theirs);
        }),
        { numRuns: 40 },
      );
    });

    it("refuses a malformed recipient key with INVALID_ARGUMENT, and remembers nothing of it", async function () {
      const notOnCurve = "02" + "00".repeat(31) + "05";
      for (const key of ["zz", alice.privateKey, "02" + "11".repeat(31), notOnCurve, "05" + "11".repeat(32)]) {
        let caught: unknown;
        try {
          await eciesEncrypt(key, new Uint8Array(32));
        } catch (e) {
          caught = e;
        }
        expect(isError(caught, "INVALID_ARGUMENT"), `${key}: ${String(caught)}`).to.equal(true);
        // Asked again, the same key is refused again: a refusal is not cached as a point.
        expect(() => eciesEncryptWith(key, new Uint8Array(32)), key).to.throw(PrepaidLedgerError);
      }
      // A good key afterwards still round-trips.
      const plain = Uint8Array.from([1, 2, 3]);
      expect(await eciesDecrypt(alice.privateKey, await eciesEncrypt(alice.publicKey, plain))).to.deep.equal(plain);
    });

    it("draws a fresh ephemeral key and iv every call", async function () {
      const plain = new Uint8Array(32);
      const [a, b] = [await eciesEncrypt(alice.publicKey, plain), await eciesEncrypt(alice.publicKey, plain)];
      expect(bytesToHex(a.subarray(0, 49))).to.not.equal(bytesToHex(b.subarray(0, 49)));
    });

    it("wraps a 32-byte key in 129 bytes (FORMAT.md 4)", async function () {
      expect((await eciesEncrypt(alice.publicKey, new Uint8Array(32))).length).to.equal(129);
    });

    it("fails with DECRYPTION_FAILED (bad MAC) for another key", async function () {
      const cipher = await eciesEncrypt(alice.publicKey, Uint8Array.of(1, 2, 3));
      const e = await expectRejection(eciesDecrypt(bob.privateKey, cipher), "DECRYPTION_FAILED");
      expect(e.details).to.include({ reason: "bad MAC" });
      // eth-crypto itself refuses the same bytes for the same reason.
      const parsed = EthCrypto.cipher.parse(Buffer.from(cipher).toString("hex"));
      let refused: unknown;
      await EthCrypto.decryptWithPrivateKey(bob.privateKey, parsed).catch((x: unknown) => (refused = x));
      expect(String(refused)).to.include("Bad MAC");
    });

    it("fails with DECRYPTION_FAILED for a flipped iv, mac or ciphertext byte", async function () {
      const cipher = await eciesEncrypt(alice.publicKey, Uint8Array.of(1, 2, 3));
      for (const at of [0, 15, 49, 80, 81, cipher.length - 1]) {
        await expectRejection(eciesDecrypt(alice.privateKey, flip(cipher, at)), "DECRYPTION_FAILED");
      }
    });

    it("rejects bad lengths and a bad ephemeral key with MALFORMED_DATA", async function () {
      const cipher = await eciesEncrypt(alice.publicKey, Uint8Array.of(1, 2, 3));
      expect(cipher.length).to.equal(ECIES_MIN_LENGTH);
      const short = await expectRejection(eciesDecrypt(alice.privateKey, cipher.subarray(0, ECIES_MIN_LENGTH - 1)), "MALFORMED_DATA");
      expect(short.details).to.include({ reason: "bad length", length: ECIES_MIN_LENGTH - 1 });
      const ragged = new Uint8Array(cipher.length + 5);
      ragged.set(cipher);
      await expectRejection(eciesDecrypt(alice.privateKey, ragged), "MALFORMED_DATA");

      const badPrefix = cipher.slice();
      badPrefix[16] = 0x05;
      const e = await expectRejection(eciesDecrypt(alice.privateKey, badPrefix), "MALFORMED_DATA");
      expect(e.details).to.include({ reason: "ephemeral key is not a point", offset: 16 });
      const offCurve = cipher.slice();
      offCurve.set(hexToBytes("02" + "00".repeat(31) + "05"), 16);
      await expectRejection(eciesDecrypt(alice.privateKey, offCurve), "MALFORMED_DATA");
    });

    it("rejects a bad private key with INVALID_ARGUMENT", async function () {
      const cipher = await eciesEncrypt(alice.publicKey, Uint8Array.of(1));
      await expectRejection(eciesDecrypt("0x" + "00".repeat(32), cipher), "INVALID_ARGUMENT");
    });

    it("rejects a correctly encrypted text that is not base64 with MALFORMED_DATA", async function () {
      const theirs = EthCrypto.cipher.stringify(await EthCrypto.encryptWithPublicKey(alice.publicKey, "not base64!"));
      await expectRejection(eciesDecrypt(alice.privateKey, hexToBytes(theirs)), "MALFORMED_DATA");
    });
  });

  describe("single-record format 0x01", function () {
    const sealed = encodeSealed(details, new Uint8Array(16).fill(7));

    it("round-trips a sealed payload for its recipient", async function () {
      const ct = await sealSingle(alice.publicKey, sealed);
      expect(ct[0]).to.equal(FORMAT_SINGLE);
      expect(bytesToHex(ct.subarray(1, 5))).to.equal(alice.address.slice(0, 10).toLowerCase());
      expect(await openSingle(alice.privateKey, ct)).to.deep.equal(sealed);
    });

    it("accepts a compressed recipient key", async function () {
      const ct = await sealSingle(EthCrypto.publicKey.compress(alice.publicKey), sealed);
      expect(await openSingle(alice.privateKey, ct)).to.deep.equal(sealed);
    });

    it("fails with WRONG_KEY for another key", async function () {
      const ct = await sealSingle(alice.publicKey, sealed);
      await expectRejection(openSingle(bob.privateKey, ct), "WRONG_KEY");
    });

    it("fails with DECRYPTION_FAILED when the tag matches but the body was altered", async function () {
      const ct = await sealSingle(alice.publicKey, sealed);
      await expectRejection(openSingle(alice.privateKey, flip(ct, ct.length - 1)), "DECRYPTION_FAILED");
    });

    it("rejects another format byte with UNSUPPORTED_VERSION and truncation with MALFORMED_DATA", async function () {
      const ct = await sealSingle(alice.publicKey, sealed);
      const other = ct.slice();
      other[0] = 0x02;
      expect((await expectRejection(openSingle(alice.privateKey, other), "UNSUPPORTED_VERSION")).details).to.include({
        format: 2,
      });
      await expectRejection(openSingle(alice.privateKey, new Uint8Array(0)), "MALFORMED_DATA");
      await expectRejection(openSingle(alice.privateKey, ct.subarray(0, 4)), "MALFORMED_DATA");
      await expectRejection(openSingle(alice.privateKey, ct.subarray(0, 60)), "MALFORMED_DATA");
    });

    it("rejects a payload of another sealed version with UNSUPPORTED_VERSION", async function () {
      const inner = sealed.slice();
      inner[0] = 0x02;
      const ecies = await eciesEncrypt(alice.publicKey, inner);
      const ct = new Uint8Array(5 + ecies.length);
      ct[0] = FORMAT_SINGLE;
      ct.set(hexToBytes(alice.address).subarray(0, 4), 1);
      ct.set(ecies, 5);
      const e = await expectRejection(openSingle(alice.privateKey, ct), "UNSUPPORTED_VERSION");
      expect(e.details).to.include({ version: 2 });
    });

    it("refuses to seal something that is not a sealed payload", async function () {
      await expectRejection(sealSingle(alice.publicKey, Uint8Array.of(9, 9)), "INVALID_ARGUMENT");
      await expectRejection(sealSingle(alice.publicKey, new Uint8Array(0)), "INVALID_ARGUMENT");
    });
  });
});
