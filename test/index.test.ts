import { readFileSync } from "node:fs";

import { expect } from "chai";

import * as browser from "../src/browser/index.js";
import * as codec from "../src/ledger/codec.js";
import * as crypto from "../src/crypto/index.js";
import * as api from "../src/index.js";

const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  exports: Record<string, unknown>;
  files: string[];
};

describe("public API", function () {
  it("exports exactly the documented names (change this list deliberately)", function () {
    expect(Object.keys(api).sort()).to.deep.equal([
      "CHAIN_VERSION",
      "ERROR_CODES",
      "IndexQueries",
      "Indexer",
      "IndexerConfig",
      "PREPAID_LEDGER_ABI",
      "PrepaidLedgerError",
      "RISK_RULES",
      "ReaderConfig",
      "RecordKind",
      "RegulatorReader",
      "RiskConfig",
      "SCHEMA_VERSION",
      "SettlementReason",
      "Uploader",
      "UploaderConfig",
      "addressOf",
      "canonicalFromSealed",
      "cardId",
      "chainVersionOf",
      "commitmentOf",
      "createBatchKey",
      "decodeQbftExtraData",
      "decodeRecordedData",
      "decodeRevert",
      "decodeSealed",
      "encodeCanonical",
      "encodeQbftExtraData",
      "encodeRecord",
      "encodeSealed",
      "formatAmount",
      "formatReport",
      "genesisHead",
      "httpJsonRpc",
      "isError",
      "keccak256",
      "linkBatch",
      "linkHead",
      "linkSettlement",
      "makeReceipt",
      "newCardSecret",
      "openBatchRecord",
      "openEnvelope",
      "openIndex",
      "openSingle",
      "packBatch",
      "parseEnvelope",
      "parseReceipt",
      "publicKeyOf",
      "qbftFaultTolerance",
      "qbftGenesis",
      "qbftHealth",
      "qbftQuorum",
      "receiptFromCompact",
      "receiptFromJson",
      "receiptToCompact",
      "receiptToJson",
      "sealBatch",
      "sealBatchRecord",
      "sealDetails",
      "sealSingle",
      "sealSingles",
      "serveDashboard",
      "unpackBatch",
      "validateDetails",
      "validateReceipt",
      "verifyReceipt",
    ]);
  });

  it("the package's entry points and files are the documented ones (change these deliberately)", function () {
    expect(manifest.exports).to.deep.equal({
      ".": { types: "./dist/index.d.ts", import: "./dist/index.js" },
      "./crypto": { types: "./dist/crypto/index.d.ts", import: "./dist/crypto/index.js" },
      "./codec": { types: "./dist/ledger/codec.d.ts", import: "./dist/ledger/codec.js" },
      "./browser": { types: "./dist/browser/index.d.ts", import: "./dist/browser/index.js" },
      "./abi": { types: "./dist/abi/index.d.ts", import: "./dist/abi/index.js" },
      "./package.json": "./package.json",
    });
    expect(manifest.files).to.deep.equal(["dist/", "!dist/**/*.tsbuildinfo", "bin/prepaid.mjs", "CHANGELOG.md"]);
  });

  it("the subpaths export what the main entry does for their layer", function () {
    // prepaid-ledger/codec is the codec module: every codec name of the main entry comes from it.
    for (const name of ["CHAIN_VERSION", "chainVersionOf", "decodeRecordedData", "encodeRecord", "genesisHead", "linkBatch", "linkHead", "linkSettlement", "packBatch", "SettlementReason", "unpackBatch"]) {
      expect((codec as Record<string, unknown>)[name], name).to.equal((api as Record<string, unknown>)[name]);
    }
    for (const name of ["RecordKind", "sealSingle", "openSingle", "sealBatchRecord", "openBatchRecord", "commitmentOf", "publicKeyOf", "keccak256"]) {
      expect((crypto as Record<string, unknown>)[name], name).to.equal((api as Record<string, unknown>)[name]);
    }
    // prepaid-ledger/browser shares the record formats and the codec with Node as they are (its
    // encryption is its own, on the noble libraries: test/browser/entry.test.ts holds it to Node's).
    for (const name of ["RecordKind", "sealDetails", "commitmentOf", "decodeSealed", "keccak256", "publicKeyOf", "parseEnvelope", "packBatch", "unpackBatch", "linkHead", "linkBatch", "genesisHead", "PrepaidLedgerError", "isError", "cardId", "newCardSecret"]) {
      expect((browser as Record<string, unknown>)[name], name).to.equal((api as Record<string, unknown>)[name]);
    }
  });
});
