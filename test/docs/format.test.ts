/**
 * Every worked example of docs/FORMAT.md, read out of the document and checked three ways: with
 * the project's own functions, with a computation written from the document's description alone
 * (node:crypto and ethers, no project code), and on a fresh in-process chain with the contracts.
 * A wrong byte or number in the document fails this test.
 */
import { readFileSync } from "node:fs";

import { expect } from "chai";
import EthCrypto from "eth-crypto";
import {
  AbiCoder,
  type BytesLike,
  type Contract,
  type ContractTransactionReceipt,
  EventFragment,
  Signature,
  SigningKey,
  TypedDataEncoder,
  Wallet,
  computeAddress,
  concat,
  getAddress,
  getBytes,
  hexlify,
  id,
  keccak256,
  recoverAddress,
  solidityPacked,
  solidityPackedKeccak256,
  toBeHex,
  zeroPadValue,
} from "ethers";
import { network } from "hardhat";

import { cardId } from "../../src/crypto/card.js";
import { canonicalFromSealed, commitmentOf, decodeSealed, encodeCanonical, encodeSealed, type RecordDetails } from "../../src/crypto/details.js";
import { eciesDecrypt } from "../../src/crypto/ecies.js";
import { openBatchRecord, openEnvelope, parseEnvelope, sealBatchRecord } from "../../src/crypto/envelope.js";
import { openSingle } from "../../src/crypto/single.js";
import { isError } from "../../src/errors.js";
import {
  BATCH_LINK_BYTES,
  BATCH_LINK_TAG,
  SETTLEMENT_LINK_BYTES,
  SETTLEMENT_LINK_TAG,
  chainVersionOf,
  decodeRecordedData,
  genesisHead,
  linkBatch,
  linkHead,
  linkSettlement,
  packBatch,
  unpackBatch,
} from "../../src/ledger/codec.js";
import { Books } from "../../src/regulator/books.js";
import type { RpcLog } from "../../src/regulator/logs.js";
import { LedgerReplay } from "../../src/regulator/reader.js";
import { stateDigest } from "../../src/supervisor/digest.js";
import { checkpointDomain, checkpointHash } from "../../src/supervisor/node.js";
import { decodeRecordedLog, matchRecord, packReceipt, receiptFromCompact, receiptFromJson, receiptToCompact, receiptToJson, verifyReceipt } from "../../src/receipt/index.js";
import QRCode from "qrcode";
import { packCheckpoint, toCompact } from "../helpers/quorum-types.js";
import { Examples, FORMAT_MD, digestByTheDoc, eciesDecryptByTheDoc, eciesEncryptByTheDoc } from "./examples.js";

const { ethers } = await network.create();

const DOC = readFileSync(FORMAT_MD, "utf8");
const ex = new Examples(DOC);
const hex = (b: BytesLike) => hexlify(b);

/** The prose's own arithmetic: the numbers of a `a + b + … = total` line must add up. */
function sumIn(pattern: RegExp): number[] {
  const m = pattern.exec(DOC);
  expect(m, `docs/FORMAT.md no longer says ${pattern}`).to.not.equal(null);
  return m!.slice(1).map(Number);
}

function details(): RecordDetails {
  const kind = Number(ex.int("details", "kind"));
  if (kind !== 1 && kind !== 2 && kind !== 3) throw new Error("kind");
  return {
    kind,
    merchantId: Number(ex.int("details", "merchantId")),
    account: hex(ex.hex("details", "account")),
    amount: ex.int("details", "amount"),
    time: Number(ex.int("details", "time")),
    orderRef: ex.str("details", "orderRef"),
    memo: ex.str("details", "memo"),
  };
}
const SALT = ex.hex("details", "salt");
const SEALED = ex.bytes("sealed");
const CANONICAL = ex.bytes("canonical");
const RECORD = ex.bytes("packed batch").subarray(3);

describe("docs/FORMAT.md worked examples", function () {
  it("parses every example, and every stated length is its bytes' length", function () {
    expect([...ex.all.keys()]).to.include.members([
      "details", "canonical", "sealed", "ecies", "eciesCompressed", "single", "batch record", "envelope",
      "packed batch", "recorded log", "batch recorded", "ledger topics", "head 0", "batch link 1", "head 1",
      "v1 head 0", "v1 head 1", "settlement link",
      "state 1 accounts", "state 1 merchants", "state 1 digest", "state 6 books", "state 6 accounts",
      "state 6 merchants", "state 6 digest", "checkpoint", "quorum events", "quorum topics", "custody events",
      "custody topics", "receipt json", "receipt compact",
    ]);
    for (const e of ex.all.values()) {
      for (const length of ex.values(e.name, "length")) expect(e.bytes.length, `${e.name}: length`).to.equal(Number(length));
    }
  });

  describe("2. details", function () {
    it("canonical, sealed and commitment are what details.ts encodes", function () {
      const d = details();
      expect(hex(encodeCanonical(d, SALT))).to.equal(hex(CANONICAL));
      expect(hex(encodeSealed(d, SALT))).to.equal(hex(SEALED));
      expect(hex(commitmentOf(CANONICAL))).to.equal(hex(ex.hex("canonical", "commitment")));
      expect(hex(canonicalFromSealed(SEALED, d.merchantId, getBytes(d.account)))).to.equal(hex(CANONICAL));
      const back = decodeSealed(SEALED);
      expect([back.kind, back.amount, back.time, back.orderRef, back.memo, hex(back.salt)]).to.deep.equal([
        d.kind, d.amount, d.time, d.orderRef, d.memo, hex(SALT),
      ]);
    });

    it("canonical and sealed follow the layouts of 2.1 and 2.2 (ethers' solidityPacked)", function () {
      const d = details();
      const ref = new TextEncoder().encode(d.orderRef);
      const memo = new TextEncoder().encode(d.memo);
      const canonical = solidityPacked(
        ["uint8", "uint8", "uint32", "bytes32", "uint48", "uint40", "bytes16", "uint8", "bytes", "uint8", "bytes"],
        [1, d.kind, d.merchantId, d.account, d.amount, d.time, SALT, ref.length, ref, memo.length, memo],
      );
      expect(canonical).to.equal(hex(CANONICAL));
      expect(keccak256(canonical)).to.equal(hex(ex.hex("canonical", "commitment")));
      expect(hex(SEALED)).to.equal(hex(concat([CANONICAL.subarray(0, 2), CANONICAL.subarray(38)])));
      const [c] = sumIn(/`canonical` is `(\d+) \+ len\(orderRef\) \+ len\(memo\)`/);
      const [s] = sumIn(/`sealed` is\s+`(\d+) \+ len\(orderRef\) \+ len\(memo\)`/);
      expect(c! + ref.length + memo.length).to.equal(CANONICAL.length);
      expect(s! + ref.length + memo.length).to.equal(SEALED.length);
    });
  });

  describe("2.4 card ids", function () {
    const holder = new Wallet(id("FORMAT.md example: holder key")).address;
    const secret = ex.field("card id", "secret");

    it("the fields are the tag, the merchant, the holder's address and the secret, abi-encoded", function () {
      expect(hex(ex.field("card id", "tag"))).to.equal(id("prepaid-ledger.card.v1"));
      expect(hex(ex.field("card id", "secret"))).to.equal(id("FORMAT.md example: card secret"));
      const encoded = AbiCoder.defaultAbiCoder().encode(
        ["bytes32", "uint32", "address", "bytes32"],
        [id("prepaid-ledger.card.v1"), 7, holder, secret],
      );
      expect(hex(ex.bytes("card id"))).to.equal(encoded);
      expect(keccak256(encoded)).to.equal(hex(ex.hex("card id", "cardId")));
    });

    it("the SDK derives the same id", function () {
      expect(cardId({ merchantId: 7, holder, secret: hex(secret) })).to.equal(hex(ex.hex("card id", "cardId")));
    });
  });

  describe("3.1 ECIES and format 0x01", function () {
    const priv = ex.hex("ecies", "recipientPrivateKey");
    const pub = ex.hex("ecies", "recipientPublicKey");
    const cipher = ex.bytes("eciesCompressed");

    it("decrypts by the document's KDF, MAC and padding (node:crypto), with every intermediate value", function () {
      expect(SigningKey.computePublicKey(priv, false)).to.equal(hex(pub));
      const steps = eciesDecryptByTheDoc(priv, cipher);
      expect(hex(steps.ephemeralUncompressed)).to.equal(hex(ex.hex("ecies", "ephemeralPublicKey")));
      expect(SigningKey.computePublicKey(ex.hex("ecies", "ephemeralPrivateKey"), false)).to.equal(hex(steps.ephemeralUncompressed));
      expect(hex(steps.iv)).to.equal(hex(ex.hex("ecies", "iv")));
      expect(hex(steps.sharedX)).to.equal(hex(ex.hex("ecies", "sharedX")));
      expect(hex(steps.aesKey)).to.equal(hex(ex.hex("ecies", "aesKey")));
      expect(hex(steps.macKey)).to.equal(hex(ex.hex("ecies", "macKey")));
      expect(hex(steps.aesCiphertext)).to.equal(hex(ex.hex("ecies", "aesCiphertext")));
      expect(hex(steps.mac)).to.equal(hex(ex.hex("ecies", "mac")));
      expect(steps.message).to.equal(ex.str("ecies", "message"));
      expect(hex(steps.payload)).to.equal(hex(SEALED));
    });

    it("encrypts to the same bytes by the document, by eth-crypto, and decrypts with ecies.ts", async function () {
      const eph = ex.hex("ecies", "ephemeralPrivateKey");
      const iv = ex.hex("ecies", "iv");
      expect(hex(eciesEncryptByTheDoc(pub, eph, iv, SEALED))).to.equal(hex(cipher));
      const encrypted = await EthCrypto.encryptWithPublicKey(hex(pub).slice(4), ex.str("ecies", "message"), {
        ephemPrivateKey: Buffer.from(eph),
        iv: Buffer.from(iv),
      });
      expect("0x" + EthCrypto.cipher.stringify(encrypted)).to.equal(hex(cipher));
      expect(await EthCrypto.decryptWithPrivateKey(hex(priv), encrypted)).to.equal(ex.str("ecies", "message"));
      expect(hex(await eciesDecrypt(hex(priv), cipher))).to.equal(hex(SEALED));
    });

    it("states the sizes its formula gives", function () {
      const size = (n: number) => 81 + 16 * (Math.floor((4 * Math.ceil(n / 3)) / 16) + 1);
      const [sealedSize, sealedLength, keySize] = sumIn(/for an `n`-byte payload: (\d+) for the (\d+)-byte sealed\s+payload of 2\.3, (\d+) for a 32-byte data key/);
      expect(sealedLength).to.equal(SEALED.length);
      expect(sealedSize).to.equal(size(SEALED.length)).and.to.equal(cipher.length);
      expect(keySize).to.equal(size(32));
    });

    it("format 0x01 is 0x01 | the address's first 4 bytes | eciesCompressed, and single.ts opens it", async function () {
      const address = computeAddress(hex(pub));
      expect(getAddress(ex.raw("single", "recipient"))).to.equal(address);
      expect(hex(ex.bytes("single"))).to.equal(hex(concat(["0x01", getBytes(address).subarray(0, 4), cipher])));
      expect(hex(await openSingle(hex(priv), ex.bytes("single")))).to.equal(hex(SEALED));
      const [head, ciphertext, record] = sumIn(/record of 2\.3 is `(\d+) \+ (\d+) = (\d+)` bytes/);
      expect([head, ciphertext, record]).to.deep.equal([73, ex.bytes("single").length, 73 + ex.bytes("single").length]);
    });
  });

  describe("3.2 format 0x02", function () {
    const key = ex.hex("batch record", "dataKey");
    const index = Number(ex.int("batch record", "index"));

    it("is what envelope.ts seals, and opens only at its index", function () {
      expect(hex(ex.hex("batch record", "plaintext"))).to.equal(hex(SEALED));
      expect(hex(sealBatchRecord(key, index, SEALED))).to.equal(hex(ex.bytes("batch record")));
      expect(hex(openBatchRecord(key, index, ex.bytes("batch record")))).to.equal(hex(SEALED));
      try {
        openBatchRecord(key, index + 1, ex.bytes("batch record"));
        expect.fail("opened at another index");
      } catch (e) {
        expect(isError(e, "DECRYPTION_FAILED"), String(e)).to.equal(true);
      }
    });

    it("is AES-256-GCM with the document's nonce and aad (node:crypto)", async function () {
      const { createDecipheriv } = await import("node:crypto");
      const nonce = ex.hex("batch record", "nonce");
      const aad = ex.hex("batch record", "aad");
      expect(hex(nonce)).to.equal(solidityPacked(["uint64", "uint32"], [0, index]));
      expect(hex(aad)).to.equal(solidityPacked(["uint8", "uint32"], [2, index]));
      const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: 16 });
      decipher.setAAD(aad);
      decipher.setAuthTag(ex.field("batch record", "gcmTag"));
      const plain = Buffer.concat([decipher.update(ex.field("batch record", "gcmCiphertext")), decipher.final()]);
      expect(hex(plain)).to.equal(hex(SEALED));
    });
  });

  describe("4. envelope", function () {
    const env = ex.bytes("envelope");
    const regKey = ex.hex("ecies", "recipientPrivateKey");
    const merKey = ex.hex("envelope", "merchantPrivateKey");

    it("parses and opens with envelope.ts for both recipients", async function () {
      const regPub = ex.hex("envelope", "regulatorPublicKey");
      const merPub = ex.hex("envelope", "merchantPublicKey");
      expect(hex(regPub)).to.equal(hex(ex.hex("ecies", "recipientPublicKey")));
      expect(SigningKey.computePublicKey(merKey, false)).to.equal(hex(merPub));
      expect(parseEnvelope(env).map((e) => [e.address, e.role])).to.deep.equal([
        [computeAddress(hex(regPub)), "regulator"],
        [computeAddress(hex(merPub)), "merchant"],
      ]);
      const dataKey = hex(ex.hex("envelope", "dataKey"));
      expect(dataKey).to.equal(hex(ex.hex("batch record", "dataKey")));
      expect(hex(await openEnvelope(hex(regKey), env))).to.equal(dataKey);
      expect(hex(await openEnvelope(hex(merKey), env))).to.equal(dataKey);
    });

    it("wraps by the document's ECIES with the stated ephemeral keys and IVs", function () {
      const dataKey = ex.hex("envelope", "dataKey");
      expect(Buffer.from(dataKey).toString("base64")).to.equal(ex.str("envelope", "wrappedMessage"));
      const who = [
        ["regulator", regKey, ex.hex("envelope", "regulatorPublicKey")],
        ["merchant", merKey, ex.hex("envelope", "merchantPublicKey")],
      ] as const;
      who.forEach(([role, privateKey, publicKey], i) => {
        const wrapped = ex.field("envelope", "wrapped", i);
        expect(hex(ex.field("envelope", "recipient", i))).to.equal(computeAddress(hex(publicKey)).toLowerCase());
        expect(Number(hex(ex.field("envelope", "wrappedLength", i)))).to.equal(wrapped.length);
        const rewrapped = eciesEncryptByTheDoc(publicKey, ex.hex("envelope", `${role}EphemeralKey`), ex.hex("envelope", `${role}Iv`), dataKey);
        expect(hex(rewrapped)).to.equal(hex(wrapped));
        expect(hex(eciesDecryptByTheDoc(privateKey, wrapped).payload)).to.equal(hex(dataKey));
      });
    });
  });

  describe("5. packed records", function () {
    it("is what codec.ts packs, field by field as in section 5", function () {
      const r = unpackBatch(ex.bytes("packed batch"));
      expect(r).to.have.length(1);
      const record = {
        kind: Number(hex(ex.field("packed batch", "kind"))),
        amount: BigInt(hex(ex.field("packed batch", "amount"))),
        account: ex.field("packed batch", "account"),
        commitment: ex.hex("canonical", "commitment"),
        ciphertext: ex.bytes("batch record"),
      };
      expect(hex(packBatch([record]))).to.equal(hex(ex.bytes("packed batch")));
      expect(hex(ex.field("packed batch", "commitment"))).to.equal(hex(record.commitment));
      expect(
        solidityPacked(
          ["uint8", "uint16", "uint8", "uint48", "bytes32", "bytes32", "uint16", "bytes"],
          [1, 1, record.kind, record.amount, record.account, record.commitment, record.ciphertext.length, record.ciphertext],
        ),
      ).to.equal(hex(ex.bytes("packed batch")));
      expect(RECORD.length).to.equal(Number(ex.int("packed batch", "recordLength")));
    });

    it("the prose's record size adds up: 73 + 1 + sealed + 16", function () {
      const d = details();
      const [fixed, ref, memo, sealed] = sumIn(/sealed payload of `(\d+) \+ (\d+) \+ (\d+) = (\d+)` bytes/);
      expect([ref, memo]).to.deep.equal([Buffer.byteLength(d.orderRef), Buffer.byteLength(d.memo)]);
      expect(fixed! + ref! + memo!).to.equal(sealed).and.to.equal(SEALED.length);
      const [head, format, sealed2, tag, total] = sumIn(/that is\s+`(\d+) \+ (\d+) \+ (\d+) \+ (\d+) = (\d+)` bytes/);
      expect([head, format, sealed2, tag]).to.deep.equal([73, 1, SEALED.length, 16]);
      expect(total).to.equal(head! + format! + sealed2! + tag!).and.to.equal(RECORD.length);
    });
  });

  describe("6-7. events and hash chain", function () {
    it("the Recorded log's data is recordIndex u64 | kind u8 | amount u48 | ciphertext", function () {
      const data = ex.bytes("recorded log");
      const decoded = decodeRecordedData(data);
      expect([decoded.recordIndex, decoded.kind, decoded.amount, hex(decoded.ciphertext)]).to.deep.equal([
        1n, Number(hex(ex.field("packed batch", "kind"))), BigInt(hex(ex.field("packed batch", "amount"))), hex(ex.bytes("batch record")),
      ]);
      expect(ex.raw("recorded log", "topic0")).to.equal(id("Recorded(bytes32,uint32,bytes32)"));
      expect(ex.raw("recorded log", "topic2")).to.equal(zeroPadValue(toBeHex(Number(ex.int("details", "merchantId"))), 32));
    });

    /** The example's head 0 (its own `tag`) is keccak256(abi.encode(bytes32 tag, uint256 chainId, address ledger)). */
    function checkGenesis(name: string, version: 1 | 2): void {
      const chainId = ex.int(name, "chainId");
      const ledger = ex.raw(name, "ledger");
      const tag = id(`prepaid-ledger.chain.v${version}`);
      const encoded = AbiCoder.defaultAbiCoder().encode(["bytes32", "uint256", "address"], [tag, chainId, ledger]);
      expect(hex(ex.field(name, "tag"))).to.equal(tag);
      expect(hex(ex.bytes(name))).to.equal(encoded);
      expect(keccak256(encoded)).to.equal(ex.raw(name, "head0"));
      expect(hex(genesisHead(chainId, ledger, version))).to.equal(ex.raw(name, "head0"));
      expect(chainVersionOf(ex.raw(name, "head0"), chainId, ledger)).to.equal(version);
    }

    /** The example's head 1 is keccak256(abi.encodePacked(bytes32 previous, uint64 1, uint32 merchantId, bytes record)). */
    function checkRecordLink(name: string, previous: string): void {
      const merchantId = Number(ex.int("details", "merchantId"));
      expect(hex(ex.field(name, "previous"))).to.equal(previous);
      expect(hex(ex.field(name, "record"))).to.equal(hex(RECORD));
      const packed = solidityPacked(["bytes32", "uint64", "uint32", "bytes"], [previous, 1, merchantId, RECORD]);
      expect(hex(ex.bytes(name))).to.equal(packed);
      expect(solidityPackedKeccak256(["bytes32", "uint64", "uint32", "bytes"], [previous, 1, merchantId, RECORD])).to.equal(ex.raw(name, "head1"));
      expect(hex(linkHead(getBytes(previous), 1n, merchantId, RECORD))).to.equal(ex.raw(name, "head1"));
    }

    it("head 0 is keccak256(abi.encode(bytes32 tag, uint256 chainId, address ledger)), tagged chain.v2", function () {
      checkGenesis("head 0", 2);
    });

    it("the batch link is keccak256(abi.encodePacked(head, batchTag, merchantId, sequence, recorder, keccak256(envelope), count))", function () {
      const b = (name: string) => ex.field("batch link 1", name);
      const envelope = ex.hex("batch recorded", "envelope");
      const fields = {
        merchantId: Number(ex.int("details", "merchantId")),
        sequence: ex.int("batch recorded", "sequence"),
        recorder: ex.raw("batch recorded", "recorder"),
        count: Number(ex.int("batch recorded", "count")),
      };
      expect(hex(b("previous"))).to.equal(ex.raw("head 0", "head0"));
      expect(hex(b("batchTag"))).to.equal(id("prepaid-ledger.batch.v2")).and.to.equal(hex(BATCH_LINK_TAG));
      expect(hex(b("envelopeHash"))).to.equal(keccak256(envelope));
      const types = ["bytes32", "bytes32", "uint32", "uint64", "address", "bytes32", "uint16"];
      const values = [ex.raw("head 0", "head0"), id("prepaid-ledger.batch.v2"), fields.merchantId, fields.sequence, fields.recorder, keccak256(envelope), fields.count];
      expect(hex(ex.bytes("batch link 1"))).to.equal(solidityPacked(types, values));
      expect(ex.bytes("batch link 1")).to.have.length(BATCH_LINK_BYTES);
      expect(solidityPackedKeccak256(types, values)).to.equal(ex.raw("batch link 1", "batchLink1"));
      expect(hex(linkBatch(getBytes(ex.raw("head 0", "head0")), { ...fields, envelope }))).to.equal(ex.raw("batch link 1", "batchLink1"));
      // The prose's byte count: the field widths in their order, and their sum.
      const widths = sumIn(/`(\d+) \+ (\d+) \+ (\d+) \+ (\d+) \+ (\d+) \+ (\d+) \+ (\d+) = (\d+)` bytes/);
      const total = widths.pop()!;
      expect(widths).to.deep.equal(ex.get("batch link 1").fields.map((f) => f.hex.length / 2));
      expect(widths.reduce((a, w) => a + w, 0)).to.equal(total).and.to.equal(BATCH_LINK_BYTES);
      // Its tag, read as a record link's index u64, is beyond any record count.
      const [asIndex] = sumIn(/its first 8 bytes\s+are about (\d+\.\d+) × 10\^18/);
      expect((Number(BigInt(hex(b("batchTag").subarray(0, 8)))) / 1e18).toFixed(1)).to.equal(asIndex!.toFixed(1));
    });

    it("head 1 links record 1 on the batch link, not on head 0", function () {
      checkRecordLink("head 1", ex.raw("batch link 1", "batchLink1"));
    });

    it("the settlement link is keccak256(abi.encodePacked(head, settlementTag, n, merchantId, account, holder, reason, amount))", function () {
      const f = (name: string) => ex.field("settlement link", name);
      const holder = computeAddress(ex.raw("settlement link", "holderKey"));
      const fields = {
        recordIndex: BigInt(hex(f("index"))),
        merchantId: Number(BigInt(hex(f("merchantId")))),
        account: hex(f("account")),
        holder,
        reason: Number(BigInt(hex(f("reason")))),
        amount: BigInt(hex(f("amount"))),
      };
      expect(hex(f("previous"))).to.equal(ex.raw("head 1", "head1"));
      expect(hex(f("settlementTag"))).to.equal(id("prepaid-ledger.settlement.v2")).and.to.equal(hex(SETTLEMENT_LINK_TAG));
      expect(fields.account).to.equal(ex.raw("details", "account"));
      expect(getAddress(hex(f("holder")))).to.equal(holder);
      expect([fields.recordIndex, fields.merchantId, fields.reason, fields.amount]).to.deep.equal([2n, Number(ex.int("details", "merchantId")), 2, 200_000n]);
      const types = ["bytes32", "bytes32", "uint64", "uint32", "bytes32", "address", "uint8", "uint48"];
      const values = [ex.raw("head 1", "head1"), id("prepaid-ledger.settlement.v2"), fields.recordIndex, fields.merchantId, fields.account, holder, fields.reason, fields.amount];
      expect(hex(ex.bytes("settlement link"))).to.equal(solidityPacked(types, values));
      expect(ex.bytes("settlement link")).to.have.length(SETTLEMENT_LINK_BYTES);
      expect(solidityPackedKeccak256(types, values)).to.equal(ex.raw("settlement link", "head2"));
      expect(hex(linkSettlement(getBytes(ex.raw("head 1", "head1")), fields))).to.equal(ex.raw("settlement link", "head2"));
      // The prose's byte count, field by field, and its tag read as an index.
      const widths = sumIn(/`(\d+) \+ (\d+) \+ (\d+) \+ (\d+) \+ (\d+) \+ (\d+) \+ (\d+) \+ (\d+) = (\d+)` bytes/);
      const total = widths.pop()!;
      expect(widths).to.deep.equal(ex.get("settlement link").fields.map((x) => x.hex.length / 2));
      expect(widths.reduce((a, w) => a + w, 0)).to.equal(total).and.to.equal(SETTLEMENT_LINK_BYTES);
      const [asIndex] = sumIn(/as a `uint64`\s+its first 8 bytes are about (\d+\.\d+) × 10\^18/);
      expect((Number(BigInt(hex(f("settlementTag").subarray(0, 8)))) / 1e18).toFixed(1)).to.equal(asIndex!.toFixed(1));
    });

    it("version 1: head 0 tagged chain.v1, and head 1 links the record on it, with no batch link", function () {
      checkGenesis("v1 head 0", 1);
      expect(ex.raw("v1 head 0", "head0")).to.not.equal(ex.raw("head 0", "head0"));
      checkRecordLink("v1 head 1", ex.raw("v1 head 0", "head0"));
      expect(ex.raw("v1 head 1", "head1")).to.not.equal(ex.raw("head 1", "head1"));
    });
  });

  describe("8. state digest and checkpoint", function () {
    const tuple = (line: string) => line.split(",").map((v) => BigInt(v.trim()));

    it("state 1: the tuples, preimage and digest of the one-record ledger", function () {
      const head1 = ex.raw("head 1", "head1");
      const account = BigInt(hex(ex.hex("details", "account")));
      const byDoc = digestByTheDoc(1n, head1, [[7n, account, 1n, 500000n, 500000n, 0n, 0n]], [[7n, 1n, 2n, 1n, 1n, 500000n, 0n, 0n]]);
      expect(byDoc.accountBytes).to.equal(hex(ex.bytes("state 1 accounts")));
      expect(byDoc.merchantBytes).to.equal(hex(ex.bytes("state 1 merchants")));
      expect(byDoc.preimage).to.equal(hex(ex.bytes("state 1 digest")));
      expect(byDoc.digest).to.equal(ex.raw("state 1 digest", "stateDigest"));
      expect(keccak256(ex.bytes("state 1 digest"))).to.equal(ex.raw("state 1 digest", "stateDigest"));
    });

    it("state 6: sorted by merchant then account, as digest.ts and the document's description agree", function () {
      const recordCount = ex.int("state 6 books", "recordCount");
      const head = ex.raw("state 6 books", "chainHead");
      const accounts = ex.values("state 6 books", "account").map(tuple);
      const merchants = ex.values("state 6 books", "merchant").map(tuple);
      const books = new Books();
      for (const [merchantId, account, records, initialAmount, toppedUp, consumed, refunded] of accounts) {
        const a = { merchantId: Number(merchantId), account: toBeHex(account!, 32), recordCount: Number(records), initialAmount: initialAmount!, toppedUp: toppedUp!, consumed: consumed!, refunded: refunded! };
        books.accounts.set(`${a.merchantId}:${a.account}`, a);
      }
      for (const [merchantId, status, nextSequence, records, accountCount, toppedUp, consumed, refunded] of merchants) {
        books.merchants.set(Number(merchantId), {
          merchantId: Number(merchantId), status: Number(status), nextSequence: nextSequence!, recordCount: Number(records),
          accountCount: Number(accountCount), toppedUp: toppedUp!, consumed: consumed!, refunded: refunded!, batches: 0,
        });
      }
      const byDoc = digestByTheDoc(recordCount, head, accounts, merchants);
      expect(byDoc.accountBytes).to.equal(hex(ex.bytes("state 6 accounts")));
      expect(byDoc.merchantBytes).to.equal(hex(ex.bytes("state 6 merchants")));
      expect(keccak256(ex.bytes("state 6 accounts"))).to.equal(ex.raw("state 6 digest", "accountsHash"));
      expect(keccak256(ex.bytes("state 6 merchants"))).to.equal(ex.raw("state 6 digest", "merchantsHash"));
      expect(byDoc.digest).to.equal(ex.raw("state 6 digest", "stateDigest"));
      expect(stateDigest(books, recordCount, getBytes(head))).to.equal(ex.raw("state 6 digest", "stateDigest"));
      // The example shows a sort: its books are listed out of order.
      expect(hex(concat(accounts.map((a) => solidityPacked(["uint32", "bytes32", "uint32", "uint48", "uint48", "uint48", "uint48"], [a[0], toBeHex(a[1]!, 32), ...a.slice(2)]))))).to.not.equal(byDoc.accountBytes);
      expect(merchants.map((m) => m[0])).to.not.deep.equal([...merchants.map((m) => m[0]!)].sort((a, b) => (a < b ? -1 : 1)));
    });

    it("the checkpoint's EIP-712 hashes and signature follow section 8", async function () {
      const c = (name: string) => ex.raw("checkpoint", name);
      const chainId = ex.int("checkpoint", "chainId");
      const checkpoint = { ledger: c("ledger"), recordCount: c("recordCount"), chainHead: c("chainHead"), stateDigest: c("stateDigest"), setId: c("setId") };
      expect(checkpoint.chainHead).to.equal(ex.raw("head 1", "head1"));
      expect(checkpoint.stateDigest).to.equal(ex.raw("state 1 digest", "stateDigest"));
      const abi = AbiCoder.defaultAbiCoder();
      expect(c("domainTypehash")).to.equal(id("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"));
      expect(c("nameHash")).to.equal(id("PrepaidLedgerSupervision"));
      expect(c("versionHash")).to.equal(id("1"));
      const domainSeparator = keccak256(abi.encode(["bytes32", "bytes32", "bytes32", "uint256", "address"], [c("domainTypehash"), c("nameHash"), c("versionHash"), chainId, c("quorum")]));
      expect(domainSeparator).to.equal(c("domainSeparator"));
      expect(c("checkpointTypehash")).to.equal(id("Checkpoint(address ledger,uint64 recordCount,bytes32 chainHead,bytes32 stateDigest,uint64 setId)"));
      const structHash = keccak256(abi.encode(["bytes32", "address", "uint64", "bytes32", "bytes32", "uint64"], [c("checkpointTypehash"), ...Object.values(checkpoint)]));
      expect(structHash).to.equal(c("structHash"));
      expect(keccak256(concat(["0x1901", domainSeparator, structHash]))).to.equal(c("digest"));
      const domain = checkpointDomain(chainId, c("quorum"));
      expect(TypedDataEncoder.hashDomain(domain)).to.equal(c("domainSeparator"));
      expect(checkpointHash(domain, checkpoint)).to.equal(c("digest"));
      const supervisor = new Wallet(c("supervisorKey"));
      expect(supervisor.address).to.equal(getAddress(c("supervisor")));
      expect(await supervisor.signTypedData(domain, CHECKPOINT_TYPES, checkpoint)).to.equal(c("signature"));
      expect(recoverAddress(c("digest"), c("signature"))).to.equal(supervisor.address);
      const sig = Signature.from(c("signature"));
      expect(getBytes(c("signature"))).to.have.length(65);
      expect([27, 28]).to.include(sig.v);
      expect(BigInt(sig.s) <= SECP256K1_N / 2n).to.equal(true);
    });
  });

  describe("10. receipts", function () {
    const json = () => JSON.parse(ex.get("receipt json").lines.join("")) as Record<string, any>;

    it("the JSON example is the receipt of the record of 2.3: its details, salt and commitment", function () {
      const doc = json();
      const r = receiptFromJson(doc);
      const d = details();
      expect(r.details).to.deep.equal({ ...d, account: d.account.toLowerCase() });
      expect(r.salt).to.equal(hex(SALT));
      expect(r.commitment).to.equal(hex(ex.hex("canonical", "commitment")));
      expect(keccak256(encodeCanonical(d, getBytes(doc.salt)))).to.equal(doc.commitment);
      expect(receiptToJson(r)).to.deep.equal(doc);
      expect(r.chainId).to.equal(ex.int("head 0", "chainId"));
      expect(r.ledger).to.equal(getAddress(ex.raw("head 0", "ledger")));
    });

    it("the compact example is the JSON one: its fields, its canonical part, base64url by Node's own encoder", function () {
      const r = receiptFromJson(json());
      const bytes = ex.bytes("receipt compact");
      expect(hex(packReceipt(r))).to.equal(hex(bytes));
      expect(hex(ex.field("receipt compact", "canonical"))).to.equal(hex(CANONICAL));
      expect(hex(ex.field("receipt compact", "commitment"))).to.equal(r.commitment);
      expect(BigInt(hex(ex.field("receipt compact", "chainId")))).to.equal(r.chainId);
      expect(BigInt(hex(ex.field("receipt compact", "blockNumber")))).to.equal(BigInt(r.blockNumber));
      const compact = ex.str("receipt compact", "compact");
      // By the document: "PL1:" and RFC 4648 base64url without padding.
      expect(compact).to.equal("PL1:" + Buffer.from(bytes).toString("base64url"));
      expect(receiptToCompact(r)).to.equal(compact);
      expect(receiptFromCompact(compact)).to.deep.equal(r);
      expect(compact.length).to.equal(Number(ex.int("receipt compact", "characters")));
      expect(4 + Math.ceil((bytes.length * 8) / 6)).to.equal(compact.length);
      expect(QRCode.create(compact, { errorCorrectionLevel: "M" }).version).to.equal(Number(ex.int("receipt compact", "qrVersion")));
    });

    it("matches the Recorded log of section 6 (steps 5 and 6 of 10.3, without a network)", function () {
      const r = receiptFromJson(json());
      const log = {
        address: ex.raw("head 0", "ledger"),
        blockNumber: toBeHex(r.blockNumber),
        transactionHash: "0x" + "00".repeat(32),
        logIndex: "0x0",
        topics: ["topic0", "topic1", "topic2", "topic3"].map((t) => ex.raw("recorded log", t)),
        data: hex(ex.bytes("recorded log")),
      };
      const record = decodeRecordedLog(log)!;
      expect(matchRecord(r, [record]).recordIndex).to.equal(1n);
      const other = { ...r, details: { ...r.details, amount: r.details.amount - 1n } };
      expect(() => matchRecord(other, [record])).to.throw().with.nested.property("details.field", "amount");
    });
  });

  describe("on chain: the contracts produce every figure", function () {
    it("books the example batch, marks it, and finalizes the example signature", async function () {
      const [deployer, regulator] = await ethers.getSigners();
      const signers = await ethers.getSigners();
      const recorder = signers.find((s) => s.address === getAddress(ex.raw("batch recorded", "recorder")))!;
      expect(recorder, "the recorder is a Hardhat account").to.not.equal(undefined);
      const merchantId = Number(ex.int("details", "merchantId"));
      const supervisor = getAddress(ex.raw("checkpoint", "supervisor"));

      const ledger = await deploy("PrepaidLedger", { admin: deployer!.address, regulator: regulator!.address });
      const quorum = await deploy("SupervisorQuorum", { governor: deployer!.address, ledger: await ledger.getAddress(), supervisors: [supervisor], threshold: 1 });
      expect(await ledger.getAddress()).to.equal(getAddress(ex.raw("head 0", "ledger")));
      expect(await quorum.getAddress()).to.equal(getAddress(ex.raw("checkpoint", "quorum")));
      expect((await ethers.provider.getNetwork()).chainId).to.equal(ex.int("head 0", "chainId"));
      expect(await ledger.genesisHead()).to.equal(ex.raw("head 0", "head0"));
      expect(await ledger.getFunction("CHAIN_VERSION")()).to.equal(2n);

      // Sequences start at 1: 0 is a replay, 2 a gap.
      await ledger.connect(regulator!).getFunction("registerMerchant")(merchantId, recorder.address);
      expect((await ledger.merchantBooks(merchantId)).nextSequence).to.equal(1n);
      const envelope = ex.hex("batch recorded", "envelope");
      const records = ex.bytes("packed batch");
      const book = (sequence: bigint) => ledger.connect(recorder).getFunction("recordBatch")(merchantId, sequence, envelope, records);
      await expect(book(0n)).to.be.revertedWithCustomError(ledger, "LedgerBatchReplayed").withArgs(merchantId, 0n, 1n);
      await expect(book(2n)).to.be.revertedWithCustomError(ledger, "LedgerSequenceGap").withArgs(merchantId, 2n, 1n);
      const sequence = ex.int("batch recorded", "sequence");
      const receipt = (await (await book(sequence)).wait()) as ContractTransactionReceipt;

      const recorded = receipt.logs.find((l) => l.topics[0] === ex.raw("recorded log", "topic0"))!;
      expect(recorded.topics).to.deep.equal(["topic0", "topic1", "topic2", "topic3"].map((t) => ex.raw("recorded log", t)));
      expect(recorded.data).to.equal(hex(ex.bytes("recorded log")));
      const batch = receipt.logs.map((l) => ledger.interface.parseLog(l)).find((p) => p?.name === "BatchRecorded")!;
      expect(batch.topic).to.equal(ex.raw("batch recorded", "topic0"));
      expect([...batch.args]).to.deep.equal([
        BigInt(merchantId), sequence, recorder.address, ex.int("batch recorded", "firstRecordIndex"),
        ex.int("batch recorded", "count"), ex.raw("batch recorded", "chainHead"), hex(envelope),
      ]);
      expect([...(await ledger.chainHead())]).to.deep.equal([1n, ex.raw("head 1", "head1")]);

      // The receipt of section 10 is this record's, in this block: it verifies against this chain.
      const receiptDoc = receiptFromJson(ex.get("receipt json").lines.join(""));
      expect(receipt.blockNumber).to.equal(receiptDoc.blockNumber);
      const verified = await verifyReceipt(receiptDoc, ethers.provider, { ledger: await ledger.getAddress() });
      expect([verified.record.recordIndex, verified.record.txHash, verified.books.balance]).to.deep.equal([1n, receipt.hash, ex.int("details", "amount")]);

      // The books the state-1 tuples hold are the contract's own.
      const a = await ledger.accountBooks(merchantId, ex.hex("details", "account"));
      const m = await ledger.merchantBooks(merchantId);
      const accountTuple = solidityPacked(["uint32", "bytes32", "uint32", "uint48", "uint48", "uint48", "uint48"], [a.merchantId, ex.hex("details", "account"), a.recordCount, a.initialAmount, a.toppedUp, a.consumed, a.refunded]);
      const merchantTuple = solidityPacked(["uint32", "uint8", "uint64", "uint64", "uint32", "uint64", "uint64", "uint64"], [merchantId, m.status, m.nextSequence, m.recordCount, m.accountCount, m.toppedUp, m.consumed, m.refunded]);
      expect(accountTuple).to.equal(hex(ex.bytes("state 1 accounts")));
      expect(merchantTuple).to.equal(hex(ex.bytes("state 1 merchants")));

      await expect(ledger.getFunction("markCheckpoint")()).to.emit(ledger, "CheckpointMarked").withArgs(1n, ex.raw("head 1", "head1"));

      // A supervisor's replay of the logs, with the document's regulator key, digests state 1 at the mark.
      const logs = (await ethers.provider.send("eth_getLogs", [{ address: await ledger.getAddress(), fromBlock: "0x0", toBlock: "latest" }])) as RpcLog[];
      const digests: string[] = [];
      const replay: LedgerReplay = new LedgerReplay({ privateKey: hex(ex.hex("ecies", "recipientPrivateKey")), keepRecords: false }, { chainId: 31337n, ledger: await ledger.getAddress() }, undefined, (mark) =>
        digests.push(stateDigest(replay.books, mark.recordCount, replay.head)),
      );
      for (const log of logs) await replay.log(log);
      replay.finish();
      expect(replay.discrepancies).to.deep.equal([]);
      expect([replay.verified, replay.chainVersion]).to.deep.equal([1, 2]);
      expect(digests).to.deep.equal([ex.raw("state 1 digest", "stateDigest")]);

      // The quorum agrees with the document's EIP-712 figures and accepts its signature.
      const c = (name: string) => ex.raw("checkpoint", name);
      const checkpoint = { ledger: c("ledger"), recordCount: c("recordCount"), chainHead: c("chainHead"), stateDigest: c("stateDigest"), setId: c("setId") };
      expect(await quorum.CHECKPOINT_TYPEHASH()).to.equal(c("checkpointTypehash"));
      expect(await quorum.checkpointDigest(checkpoint)).to.equal(c("digest"));
      // Packed as the document shows, and as the helper written from the interface packs it.
      const packed = hex(ex.bytes("packed checkpoint"));
      expect(packed).to.equal(packCheckpoint(checkpoint, [supervisor], [{ place: 0, signature: toCompact([c("signature")])[0]! }]));
      await expect(quorum.getFunction("finalizeRecords")(packed))
        .to.emit(quorum, "CheckpointFinalized")
        .withArgs(1n, c("chainHead"), c("stateDigest"), 1n, 1n);
    });

    it("documents every event of the quorum and custody, and every topic of the three contracts", async function () {
      const quorumEvents = (await ethers.getContractFactory("SupervisorQuorum")).interface;
      const ledgerEvents = (await ethers.getContractFactory("PrepaidLedger")).interface;
      const custodyEvents = (await ethers.getContractFactory("MerchantCustody")).interface;
      for (const [name, iface] of [["quorum events", quorumEvents], ["custody events", custodyEvents]] as const) {
        const declared = ex.get(name).lines.map((l) => EventFragment.from(l).format("full"));
        const compiled: string[] = [];
        iface.forEachEvent((e) => compiled.push(e.format("full")));
        expect([...declared].sort(), name).to.deep.equal([...compiled].sort());
      }
      for (const [name, iface] of [
        ["quorum topics", quorumEvents],
        ["ledger topics", ledgerEvents],
        ["custody topics", custodyEvents],
      ] as const) {
        const documented = ex.get(name).values.map((v) => [v.name, v.value]);
        const actual: string[][] = [];
        iface.forEachEvent((e) => actual.push([e.format("sighash"), e.topicHash]));
        expect(documented.map(([s, t]) => [s, id(s!)])).to.deep.equal(documented, `${name}: a topic is not keccak256 of its signature`);
        expect([...documented].sort()).to.deep.equal([...actual].sort(), `${name}: the document and the compiled contract differ`);
      }
    });
  });
});

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

const CHECKPOINT_TYPES = {
  Checkpoint: [
    { name: "ledger", type: "address" },
    { name: "recordCount", type: "uint64" },
    { name: "chainHead", type: "bytes32" },
    { name: "stateDigest", type: "bytes32" },
    { name: "setId", type: "uint64" },
  ],
};

/**
 * Deploys a contract from the first Hardhat account, filling the constructor's parameters by
 * name, so a constructor that gains or reorders parameters fails here with its name, not with a
 * wrong address. The admin delay gets 0, any other delay one hour (the contracts' floor).
 */
async function deploy(name: string, byName: Record<string, unknown>): Promise<Contract> {
  const factory = await ethers.getContractFactory(name);
  const args = factory.interface.deploy.inputs.map((input) => {
    const key = input.name.replace(/_+$/, "");
    if (key in byName) return byName[key];
    // The admin handover may be immediate on a test chain; the recorder and set-change delays
    // have a floor of one hour in the contracts.
    if (key === "adminDelay") return 0;
    if (/delay/i.test(key) && input.type.startsWith("uint")) return 3_600;
    throw new Error(`${name}'s constructor takes "${input.name}": teach test/docs/format.test.ts's deploy() about it`);
  });
  const contract = await factory.deploy(...args);
  await contract.waitForDeployment();
  return contract as unknown as Contract;
}
