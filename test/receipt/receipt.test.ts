/**
 * Receipts without a chain: the JSON and compact forms round-trip, decoding is strict and every
 * bad input is a typed error naming the part, the canonical encoder agrees with
 * src/crypto/details.ts byte for byte, and src/receipt/ stays browser-safe.
 */
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { expect } from "chai";
import fc from "fast-check";
import { getAddress, hexlify, id } from "ethers";
import QRCode from "qrcode";

import { encodeCanonical, type RecordDetails } from "../../src/crypto/details.js";
import { PrepaidLedgerError, isError } from "../../src/errors.js";
import { canonicalOf } from "../../src/receipt/canonical.js";
import {
  base64urlDecode,
  base64urlEncode,
  makeReceipt,
  packReceipt,
  parseReceipt,
  receiptFromCompact,
  receiptFromJson,
  receiptToCompact,
  receiptToJson,
  validateReceipt,
  type Receipt,
} from "../../src/receipt/index.js";

const LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const typical = (): Receipt =>
  makeReceipt({
    chainId: 31_337n,
    ledger: LEDGER,
    recordIndex: 1_234n,
    blockNumber: 5_678,
    salt: "0x000102030405060708090a0b0c0d0e0f",
    details: { kind: 1, merchantId: 7, account: id("FORMAT.md example: card 0001"), amount: 500_000n, time: 1_795_000_000, orderRef: "ORD-2026-11-00042", memo: "10 classes" },
  });

/** The code and field of the error `run` throws; fails if it throws anything but a PrepaidLedgerError. */
function refusal(run: () => unknown): [string, unknown] {
  try {
    run();
  } catch (e) {
    expect(e, String(e)).to.be.instanceOf(PrepaidLedgerError);
    return [(e as PrepaidLedgerError).code, (e as PrepaidLedgerError).details.field];
  }
  expect.fail("expected a refusal");
}

const detailsArb = fc.record({
  kind: fc.constantFrom(1 as const, 2 as const, 3 as const),
  merchantId: fc.integer({ min: 1, max: 2 ** 32 - 1 }),
  account: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => hexlify(b)),
  amount: fc.bigInt({ min: 1n, max: (1n << 48n) - 1n }),
  time: fc.integer({ min: 0, max: 2 ** 40 - 1 }),
  orderRef: fc.string({ unit: "grapheme", maxLength: 60 }).filter((s) => new TextEncoder().encode(s).length <= 255),
  memo: fc.string({ unit: "grapheme", maxLength: 60 }).filter((s) => new TextEncoder().encode(s).length <= 255),
});
const saltArb = fc.uint8Array({ minLength: 16, maxLength: 16 });

describe("receipts: forms and strict decoding", function () {
  it("the canonical encoder is details.ts's, byte for byte, on random details", function () {
    fc.assert(
      fc.property(detailsArb, saltArb, (d, salt) => {
        expect(hexlify(canonicalOf(d, salt))).to.equal(hexlify(encodeCanonical(d as RecordDetails, salt)));
      }),
      { numRuns: 300 },
    );
  });

  it("round-trips through JSON (text and object) and the compact string, on random receipts", function () {
    fc.assert(
      fc.property(detailsArb, saltArb, fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }), fc.nat(), (d, salt, chainId, recordIndex, blockNumber) => {
        const r = makeReceipt({ chainId, ledger: LEDGER.toLowerCase(), recordIndex, blockNumber, salt: hexlify(salt), details: d });
        expect(r.ledger).to.equal(getAddress(LEDGER));
        expect(receiptFromJson(JSON.stringify(receiptToJson(r)))).to.deep.equal(r);
        expect(receiptFromJson(receiptToJson(r))).to.deep.equal(r);
        const compact = receiptToCompact(r);
        expect(compact).to.match(/^PL1:[A-Za-z0-9_-]+$/);
        expect(receiptFromCompact(compact)).to.deep.equal(r);
        expect(parseReceipt(`  ${compact}\n`)).to.deep.equal(r);
        validateReceipt(r);
      }),
      { numRuns: 200 },
    );
  });

  it("fits a QR code comfortably: 231 characters for a typical record, QR version 11 at level M", function () {
    const compact = receiptToCompact(typical());
    // 4 (prefix) + base64url of 76 + 94 bytes (the head and the canonical plaintext of FORMAT.md 2.3)
    expect(packReceipt(typical()).length).to.equal(76 + 94);
    expect(compact.length).to.equal(4 + Math.ceil((170 * 8) / 6));
    expect(compact.length).to.equal(231);
    const qr = QRCode.create(compact, { errorCorrectionLevel: "M" });
    expect(qr.version).to.equal(11); // 61 × 61 modules: about 2.5 cm printed at 0.4 mm a module
  });

  it("base64url is RFC 4648's alphabet, unpadded, and each byte string has one encoding", function () {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        const text = base64urlEncode(b);
        expect(text).to.equal(Buffer.from(b).toString("base64url"));
        expect(hexlify(base64urlDecode(text))).to.equal(hexlify(b));
      }),
    );
    expect(refusal(() => base64urlDecode("AB"))).to.deep.equal(["RECEIPT_MALFORMED", "encoding"]); // low bits set: "AA" is the one encoding
    expect(refusal(() => base64urlDecode("AAAAA"))).to.deep.equal(["RECEIPT_MALFORMED", "encoding"]);
    expect(refusal(() => base64urlDecode("AA+A"))).to.deep.equal(["RECEIPT_MALFORMED", "encoding"]);
  });

  it("refuses a malformed JSON receipt naming the field: unknown, missing, wrong type, out of range", function () {
    const good = receiptToJson(typical());
    const bad = (patch: (o: Record<string, any>) => void) => {
      const o = JSON.parse(JSON.stringify(good)) as Record<string, any>;
      patch(o);
      return refusal(() => receiptFromJson(JSON.stringify(o)));
    };
    expect(bad((o) => (o.extra = 1))).to.deep.equal(["RECEIPT_MALFORMED", "extra"]);
    expect(bad((o) => (o.details.colour = "red"))).to.deep.equal(["RECEIPT_MALFORMED", "colour"]);
    expect(bad((o) => delete o.salt)).to.deep.equal(["RECEIPT_MALFORMED", "salt"]);
    expect(bad((o) => delete o.details.memo)).to.deep.equal(["RECEIPT_MALFORMED", "memo"]);
    expect(bad((o) => (o.type = "something else"))).to.deep.equal(["RECEIPT_MALFORMED", "type"]);
    expect(bad((o) => (o.version = 2))).to.deep.equal(["UNSUPPORTED_VERSION", "version"]);
    expect(bad((o) => (o.chainId = "0x7a69"))).to.deep.equal(["RECEIPT_MALFORMED", "chainId"]);
    expect(bad((o) => (o.chainId = "0"))).to.deep.equal(["RECEIPT_MALFORMED", "chainId"]);
    expect(bad((o) => (o.ledger = "0x1234"))).to.deep.equal(["RECEIPT_MALFORMED", "ledger"]);
    expect(bad((o) => (o.recordIndex = "-1"))).to.deep.equal(["RECEIPT_MALFORMED", "recordIndex"]);
    expect(bad((o) => (o.blockNumber = 1.5))).to.deep.equal(["RECEIPT_MALFORMED", "blockNumber"]);
    expect(bad((o) => (o.commitment = "0xzz"))).to.deep.equal(["RECEIPT_MALFORMED", "commitment"]);
    expect(bad((o) => (o.salt = "0x00"))).to.deep.equal(["RECEIPT_MALFORMED", "salt"]);
    expect(bad((o) => (o.details.kind = 4))).to.deep.equal(["RECEIPT_MALFORMED", "kind"]);
    expect(bad((o) => (o.details.merchantId = 0))).to.deep.equal(["RECEIPT_MALFORMED", "merchantId"]);
    expect(bad((o) => (o.details.account = "0x12"))).to.deep.equal(["RECEIPT_MALFORMED", "account"]);
    expect(bad((o) => (o.details.amount = "0"))).to.deep.equal(["RECEIPT_MALFORMED", "amount"]);
    expect(bad((o) => (o.details.amount = 1.5))).to.deep.equal(["RECEIPT_MALFORMED", "amount"]);
    expect(bad((o) => (o.details.time = -1))).to.deep.equal(["RECEIPT_MALFORMED", "time"]);
    expect(bad((o) => (o.details.orderRef = 42))).to.deep.equal(["RECEIPT_MALFORMED", "orderRef"]);
    expect(bad((o) => (o.details.memo = "x".repeat(256)))).to.deep.equal(["RECEIPT_MALFORMED", "memo"]);
    expect(bad((o) => (o.details.memo = "\ud800"))).to.deep.equal(["RECEIPT_MALFORMED", "memo"]);
    expect(refusal(() => receiptFromJson("{ not json"))).to.deep.equal(["RECEIPT_MALFORMED", "json"]);
    expect(refusal(() => receiptFromJson("[]"))).to.deep.equal(["RECEIPT_MALFORMED", "receipt"]);
    expect(refusal(() => receiptFromJson(null))).to.deep.equal(["RECEIPT_MALFORMED", "receipt"]);
  });

  it("refuses a malformed compact string naming the part: prefix, version, characters, length, details", function () {
    const compact = receiptToCompact(typical());
    const body = compact.slice(4);
    expect(refusal(() => receiptFromCompact("XX1:" + body))).to.deep.equal(["RECEIPT_MALFORMED", "prefix"]);
    expect(refusal(() => receiptFromCompact("PL2:" + body))).to.deep.equal(["UNSUPPORTED_VERSION", "version"]);
    expect(refusal(() => receiptFromCompact(compact.slice(0, 100) + "=" + compact.slice(101)))).to.deep.equal(["RECEIPT_MALFORMED", "encoding"]);
    expect(refusal(() => receiptFromCompact("PL1:" + body.slice(0, 80)))).to.deep.equal(["RECEIPT_MALFORMED", "encoding"]);
    expect(refusal(() => receiptFromCompact(compact + "AAAA"))).to.deep.equal(["RECEIPT_MALFORMED", "details"]);
    const packed = packReceipt(typical());
    const withKind = (k: number) => {
      const b = packed.slice();
      b[76 + 1] = k;
      return "PL1:" + base64urlEncode(b);
    };
    expect(refusal(() => receiptFromCompact(withKind(9)))).to.deep.equal(["RECEIPT_MALFORMED", "kind"]);
    const noDetailsVersion = packed.slice();
    noDetailsVersion[76] = 2;
    expect(refusal(() => receiptFromCompact("PL1:" + base64urlEncode(noDetailsVersion)))).to.deep.equal(["RECEIPT_MALFORMED", "details"]);
    expect(refusal(() => parseReceipt("hello"))).to.deep.equal(["RECEIPT_MALFORMED", "encoding"]);
  });

  it("never throws anything but a typed error, whatever the input (fuzzed)", function () {
    const compact = receiptToCompact(typical());
    const decode = (text: string) => {
      try {
        parseReceipt(text);
      } catch (e) {
        expect(isError(e), String(e)).to.equal(true);
      }
    };
    fc.assert(fc.property(fc.string(), (s) => decode(s)));
    fc.assert(fc.property(fc.string(), (s) => decode("PL1:" + s)));
    fc.assert(fc.property(fc.nat({ max: compact.length - 1 }), fc.constantFrom(..."AZaz09-_"), (i, c) => decode(compact.slice(0, i) + c + compact.slice(i + 1))));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => decode("PL1:" + base64urlEncode(b))));
    fc.assert(fc.property(fc.json(), (j) => decode(j)));
  });

  it("a receipt whose commitment does not open to its details decodes, and validateReceipt says so", function () {
    const r = typical();
    const altered = { ...r, details: { ...r.details, amount: r.details.amount + 1n } };
    const back = receiptFromCompact(receiptToCompact(altered));
    expect(back.details.amount).to.equal(500_001n);
    expect(refusal(() => validateReceipt(back))).to.deep.equal(["RECEIPT_MISMATCH", "commitment"]);
  });

  it("src/receipt/ imports no node: module and uses no Buffer (the browser entry re-exports it)", function () {
    const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "receipt");
    const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));
    expect(files).to.include.members(["index.ts", "receipt.ts", "compact.ts", "canonical.ts", "check.ts", "verify.ts"]);
    for (const f of files) {
      // Code only: the comments may well say "no Buffer".
      const text = readFileSync(join(dir, f), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
      expect(text, f).to.not.match(/from "node:|require\(|\bBuffer\b|process\./);
      for (const [, spec] of text.matchAll(/from "([^"]+)"/g)) {
        expect(spec, `${f} imports ${spec}`).to.match(/^(\.\/|\.\.\/errors\.js$|\.\.\/regulator\/logs\.js$|ethers$|@noble\/hashes\/)/);
      }
    }
    // What it imports from outside the folder imports nothing else of the project, and no built-in.
    const errors = readFileSync(join(dir, "..", "errors.ts"), "utf8");
    expect(errors).to.not.match(/^import /m);
    const logs = readFileSync(join(dir, "..", "regulator", "logs.ts"), "utf8");
    expect([...logs.matchAll(/^import .* from "([^"]+)"/gm)].map((m) => m[1])).to.deep.equal(["../errors.js"]);
    expect(logs.replace(/\/\*[\s\S]*?\*\//g, "")).to.not.match(/\bBuffer\b|process\./);
  });
});
