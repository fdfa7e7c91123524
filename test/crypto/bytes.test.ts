/**
 * The Buffer-free byte helpers (src/crypto/bytes.ts, src/browser/base64.ts) against Node's
 * Buffer, which the Node hot paths keep using.
 */
import { expect } from "chai";
import fc from "fast-check";

import { fromBase64, toBase64 } from "../../src/browser/base64.js";
import { bytesToHex, hexToBytes, randomBytes, utf8Length } from "../../src/crypto/bytes.js";
import * as nodeHex from "../../src/crypto/hash.js";
import { isError } from "../../src/errors.js";

describe("crypto/bytes (no Buffer)", () => {
  it("encodes and decodes hex as the Buffer-based helpers do", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), fc.boolean(), (bytes, prefix, upper) => {
        const hex = nodeHex.bytesToHex(bytes);
        expect(bytesToHex(bytes)).to.equal(hex);
        const text = (prefix ? "0x" : "") + (upper ? hex.slice(2).toUpperCase() : hex.slice(2));
        expect(hexToBytes(text)).to.deep.equal(nodeHex.hexToBytes(text));
      }),
    );
  });

  it("refuses what is not even-length hex, with INVALID_ARGUMENT", () => {
    for (const bad of ["0x1", "0xzz", "abc", "0x 00", 42 as unknown as string]) {
      expect(() => hexToBytes(bad)).to.throw().that.satisfies((e: unknown) => isError(e, "INVALID_ARGUMENT"));
    }
  });

  it("counts UTF-8 bytes as Buffer.byteLength does", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 200 }), (text) => {
        expect(utf8Length(text)).to.equal(Buffer.byteLength(text, "utf8"));
      }),
    );
    expect(utf8Length("\ud800x")).to.equal(Buffer.byteLength("\ud800x", "utf8"));
  });

  it("writes and strictly reads base64 as Buffer writes it", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const text = Buffer.from(bytes).toString("base64");
        expect(toBase64(bytes)).to.equal(text);
        expect(fromBase64(text)).to.deep.equal(bytes);
      }),
    );
    for (const bad of ["QQ", "QR==", "Q===", "QUJD=A==", "QUJ!", "QUJD\n"]) expect(fromBase64(bad), bad).to.equal(undefined);
  });

  it("draws random bytes beyond getRandomValues' 64 KiB limit", () => {
    const a = randomBytes(70_000);
    expect(a).to.have.length(70_000);
    expect(a.subarray(65_536).some((b) => b !== 0)).to.equal(true);
  });
});
