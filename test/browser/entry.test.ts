/**
 * The browser entry (`prepaid-ledger/browser`, src/browser/index.ts), bundled by Vite as a web
 * app would and run in headless Chromium: what it seals, Node opens; what Node seals, it opens;
 * commitments, packed batches and the hash chain agree byte for byte.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

import { expect } from "chai";
import type { Browser, Page } from "playwright-core";

import {
  bytesToHex,
  canonicalFromSealed,
  cardId,
  commitmentOf,
  createBatchKey,
  decodeSealed,
  hexToBytes,
  openBatchRecord,
  openEnvelope,
  openSingle,
  publicKeyOf,
  sealBatchRecord,
  sealDetails,
  sealSingle,
  type RecordDetails,
} from "../../src/crypto/index.js";
import { encodeRecordBatchCall, genesisHead, linkBatch, linkHead, packBatch, unpackBatch } from "../../src/ledger/codec.js";
import { makeReceipt, receiptToCompact } from "../../src/receipt/index.js";
import { Uploader } from "../../src/upload/uploader.js";
import { artifactDir, launchChromium } from "../helpers/browser.js";
import { bundleEntry } from "../helpers/bundle.js";

const REGULATOR_KEY = "0x" + "11".repeat(32);
const MERCHANT_KEY = "0x" + "22".repeat(32);
const ORIGIN = "http://prepaid.test";

/** Details as JSON-safe values for page.evaluate (amounts as decimal strings). */
interface WireDetails {
  kind: 1 | 2 | 3;
  merchantId: number;
  account: string;
  amount: string;
  time: number;
  orderRef: string;
  memo: string;
}

const wire: WireDetails[] = [
  { kind: 1, merchantId: 101, account: "0x" + "ab".repeat(32), amount: "300000", time: 1_764_000_000, orderRef: "GYM-00042", memo: "annual card" },
  { kind: 2, merchantId: 101, account: "0x" + "AB".repeat(32), amount: "4500", time: 1_764_000_100, orderRef: "", memo: "瑜伽课 · yoga 🧘" },
  { kind: 3, merchantId: 101, account: "0x" + "0c".repeat(32), amount: String(2n ** 48n - 1n), time: 2 ** 40 - 1, orderRef: "R".repeat(255), memo: "" },
];
const details = (w: WireDetails): RecordDetails => ({ ...w, amount: BigInt(w.amount) });

describe("browser entry (prepaid-ledger/browser) in Chromium", function () {
  this.timeout(120_000);
  let browser: Browser;
  let page: Page;
  let code: string;

  before(async function () {
    const dir = artifactDir("browser");
    ({ code } = await bundleEntry("src/browser/index.ts", join(dir, "bundle"), "prepaid-ledger-browser.js"));
    console.log(`      bundle: ${code.length} bytes, ${gzipSync(code).length} gzipped`);
    browser = await launchChromium();
    page = await browser.newPage();
    // tsx compiles this file with esbuild's keepNames: functions passed to page.evaluate call __name.
    await page.addInitScript("globalThis.__name = (f) => f");
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.route(`${ORIGIN}/**`, (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path === "/prepaid-ledger-browser.js") return route.fulfill({ body: code, contentType: "text/javascript" });
      return route.fulfill({
        contentType: "text/html",
        body: `<!doctype html><script type="module">
          import * as P from "./prepaid-ledger-browser.js";
          window.P = P;
          window.toDetails = (w) => ({ ...w, amount: BigInt(w.amount) });
          document.title = "ready";
        </script>`,
      });
    });
    await page.goto(`${ORIGIN}/index.html`);
    await page.waitForFunction(() => (globalThis as any).document.title === "ready", undefined, { timeout: 30_000 });
    expect(errors).to.deep.equal([]);
    expect(await page.evaluate(() => typeof (globalThis as { Buffer?: unknown }).Buffer)).to.equal("undefined");
  });

  after(async () => {
    await browser?.close();
  });

  it("bundles without node: built-ins, require() or a bare Buffer", () => {
    expect(code).to.not.match(/["']node:/);
    expect(code).to.not.match(/\brequire\(\s*["']/);
    // hash-wasm looks up globalThis.Buffer (and goes without it); nothing uses a bare Buffer.
    expect(code.match(/(?<![.\w$])Buffer\b/g)).to.equal(null);
    expect(readFileSync(join(artifactDir("browser"), "bundle", "prepaid-ledger-browser.js"), "utf8")).to.equal(code);
  });

  it("computes the same canonical bytes, sealed payload and commitment as Node", async () => {
    const salt = "0x" + "5a".repeat(16);
    const inPage = await page.evaluate(
      ([records, salt]) => {
        const P = (globalThis as any).P;
        return records.map((w: unknown) => {
          const s = P.sealDetails((globalThis as any).toDetails(w), P.hexToBytes(salt));
          return { canonical: P.bytesToHex(s.canonical), sealed: P.bytesToHex(s.sealed), commitment: P.bytesToHex(s.commitment) };
        });
      },
      [wire, salt] as const,
    );
    const inNode = wire.map((w) => {
      const s = sealDetails(details(w), hexToBytes(salt));
      return { canonical: bytesToHex(s.canonical), sealed: bytesToHex(s.sealed), commitment: bytesToHex(s.commitment) };
    });
    expect(inPage).to.deep.equal(inNode);
  });

  it("seals a batch for the regulator that Node opens, and packs it as Node does", async () => {
    const recipients = [
      { publicKey: publicKeyOf(REGULATOR_KEY), role: "regulator" },
      { publicKey: "0x04" + publicKeyOf(MERCHANT_KEY), role: "merchant" },
    ];
    const sealed = await page.evaluate(
      async ([records, recipients]) => {
        const P = (globalThis as any).P;
        const b = await P.sealBatch(records.map((w: unknown) => (globalThis as any).toDetails(w)), recipients);
        const call = P.encodeRecordBatchCall(101, 7n, b.envelope, b.packed);
        return { envelope: P.bytesToHex(b.envelope), packed: P.bytesToHex(b.packed), salts: b.salts.map(P.bytesToHex), call: P.bytesToHex(call) };
      },
      [wire, recipients] as const,
    );
    const envelope = hexToBytes(sealed.envelope);
    const packed = unpackBatch(hexToBytes(sealed.packed));
    expect(packed).to.have.length(wire.length);
    for (const key of [REGULATOR_KEY, MERCHANT_KEY]) {
      const dataKey = await openEnvelope(key, envelope);
      packed.forEach((r, i) => {
        const plain = openBatchRecord(dataKey, i, r.ciphertext);
        const expected = sealDetails(details(wire[i]!), hexToBytes(sealed.salts[i]!));
        expect(bytesToHex(plain)).to.equal(bytesToHex(expected.sealed));
        expect(decodeSealed(plain).memo).to.equal(wire[i]!.memo);
        expect(bytesToHex(commitmentOf(canonicalFromSealed(plain, 101, r.account)))).to.equal(bytesToHex(r.commitment));
        expect(r.kind).to.equal(wire[i]!.kind);
        expect(r.amount).to.equal(BigInt(wire[i]!.amount));
      });
    }
    expect(bytesToHex(packBatch(packed))).to.equal(sealed.packed);
    expect(bytesToHex(encodeRecordBatchCall(101, 7n, envelope, hexToBytes(sealed.packed)))).to.equal(sealed.call);
  });

  it("seals single records (format 0x01) that Node opens, and refuses another key's", async () => {
    const payload = bytesToHex(sealDetails(details(wire[1]!)).sealed);
    const [ciphertext, wrongKey] = await page.evaluate(
      async ([pub, payload, other]) => {
        const P = (globalThis as any).P;
        const c = await P.sealSingle(pub, P.hexToBytes(payload));
        const wrong = await P.openSingle(other, c).then(() => "opened", (e: { code: string }) => e.code);
        return [P.bytesToHex(c), wrong];
      },
      [publicKeyOf(REGULATOR_KEY), payload, MERCHANT_KEY] as const,
    );
    expect(bytesToHex(await openSingle(REGULATOR_KEY, hexToBytes(ciphertext)))).to.equal(payload);
    expect(wrongKey).to.equal("WRONG_KEY");
  });

  it("opens what Node seals, and reports a tampered record by code", async () => {
    const key = await createBatchKey([{ publicKey: publicKeyOf(REGULATOR_KEY), role: "regulator" }]);
    const payloads = wire.map((w) => sealDetails(details(w)).sealed);
    const batch = payloads.map((p, i) => bytesToHex(sealBatchRecord(key.dataKey, i, p)));
    const single = bytesToHex(await sealSingle(publicKeyOf(REGULATOR_KEY), payloads[0]!));
    const opened = await page.evaluate(
      async ([privateKey, envelope, batch, single]) => {
        const P = (globalThis as any).P;
        const dataKey = await P.openEnvelope(privateKey, P.hexToBytes(envelope));
        const records = batch.map((c: string, i: number) => P.bytesToHex(P.openBatchRecord(dataKey, i, P.hexToBytes(c))));
        const tampered = P.hexToBytes(batch[0]);
        tampered[5] ^= 1;
        const failure = (f: () => unknown) => {
          try {
            f();
            return "opened";
          } catch (e) {
            return P.isError(e) ? (e as { code: string }).code : String(e);
          }
        };
        return {
          records,
          single: P.bytesToHex(await P.openSingle(privateKey, P.hexToBytes(single))),
          tampered: failure(() => P.openBatchRecord(dataKey, 0, tampered)),
          wrongIndex: failure(() => P.openBatchRecord(dataKey, 1, P.hexToBytes(batch[0]))),
          badHex: failure(() => P.hexToBytes("0xzz")),
        };
      },
      [REGULATOR_KEY, bytesToHex(key.envelope), batch, single] as const,
    );
    expect(opened.records).to.deep.equal(payloads.map(bytesToHex));
    expect(opened.single).to.equal(bytesToHex(payloads[0]!));
    expect(opened).to.include({ tampered: "DECRYPTION_FAILED", wrongIndex: "DECRYPTION_FAILED", badHex: "INVALID_ARGUMENT" });
  });

  it("links the hash chain and computes identity keys and card ids as Node does", async () => {
    const ledger = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    const record = hexToBytes("0x" + "42".repeat(80));
    const inPage = await page.evaluate(
      ([ledger, record, records]) => {
        const P = (globalThis as any).P;
        const genesis = P.genesisHead(31337n, ledger);
        const batch = P.linkBatch(genesis, { merchantId: 101, sequence: 3n, recorder: ledger, envelope: P.hexToBytes(record), count: 2 });
        const head = P.linkHead(batch, 9n, 101, P.hexToBytes(record));
        return {
          genesis: P.bytesToHex(genesis),
          head: P.bytesToHex(head),
          keys: records.map((w: unknown) => P.recordKey((globalThis as any).toDetails(w))),
          card: P.cardId({ merchantId: 101, holder: ledger, secret: "0x" + "ab".repeat(32) }),
        };
      },
      [ledger, bytesToHex(record), wire] as const,
    );
    const genesis = genesisHead(31337n, ledger);
    const batch = linkBatch(genesis, { merchantId: 101, sequence: 3n, recorder: ledger, envelope: record, count: 2 });
    expect(inPage.genesis).to.equal(bytesToHex(genesis));
    expect(inPage.head).to.equal(bytesToHex(linkHead(batch, 9n, 101, record)));
    expect(inPage.keys).to.deep.equal(wire.map((w) => Uploader.recordKey(details(w))));
    expect(inPage.card).to.equal(cardId({ merchantId: 101, holder: ledger, secret: "0x" + "ab".repeat(32) }));
  });

  it("makes, encodes and checks receipts as Node does (src/receipt, re-exported)", async () => {
    const input = { chainId: 31337n, ledger: "0x5fbdb2315678afecb367f032d93f642f64180aa3", recordIndex: 12n, blockNumber: 7, salt: "0x" + "5a".repeat(16), details: details(wire[1]!) };
    const node = receiptToCompact(makeReceipt(input));
    const inPage = await page.evaluate(
      ([w, salt, node]) => {
        const P = (globalThis as any).P;
        const r = P.makeReceipt({ chainId: 31337n, ledger: "0x5fbdb2315678afecb367f032d93f642f64180aa3", recordIndex: 12n, blockNumber: 7, salt, details: (globalThis as any).toDetails(w) });
        const parsed = P.parseReceipt(node);
        P.validateReceipt(parsed);
        const forged = { ...parsed, details: { ...parsed.details, amount: parsed.details.amount + 1n } };
        let code = "valid";
        try {
          P.validateReceipt(forged);
        } catch (e) {
          code = (e as { code: string }).code;
        }
        return { compact: P.receiptToCompact(r), memo: parsed.details.memo, forged: code };
      },
      [wire[1], input.salt, node] as const,
    );
    expect(inPage).to.deep.equal({ compact: node, memo: wire[1]!.memo, forged: "RECEIPT_MISMATCH" });
  });
});
