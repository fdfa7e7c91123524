import { expect } from "chai";

import * as api from "../src/index.js";

describe("public API", function () {
  it("exports exactly the documented names (change this list deliberately)", function () {
    expect(Object.keys(api).sort()).to.deep.equal([
      "ERROR_CODES",
      "PREPAID_LEDGER_ABI",
      "PrepaidLedgerError",
      "ReaderConfig",
      "RecordKind",
      "RegulatorReader",
      "Uploader",
      "UploaderConfig",
      "addressOf",
      "canonicalFromSealed",
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
      "isError",
      "keccak256",
      "linkHead",
      "openBatchRecord",
      "openEnvelope",
      "openSingle",
      "packBatch",
      "parseEnvelope",
      "publicKeyOf",
      "qbftFaultTolerance",
      "qbftGenesis",
      "qbftHealth",
      "qbftQuorum",
      "sealBatch",
      "sealBatchRecord",
      "sealDetails",
      "sealSingle",
      "sealSingles",
      "unpackBatch",
      "validateDetails",
    ]);
  });
});
