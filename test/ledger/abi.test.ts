import { expect } from "chai";
import { Interface } from "ethers";
import { artifacts } from "hardhat";

import { PREPAID_LEDGER_ABI } from "../../src/ledger/abi.js";
import { SUPERVISOR_QUORUM_ABI } from "../../src/ledger/quorum-abi.js";

describe("ledger/abi", function () {
  it("matches the compiled PrepaidLedger ABI", async function () {
    const compiled = new Interface((await artifacts.readArtifact("PrepaidLedger")).abi).format().sort();
    expect(new Interface(PREPAID_LEDGER_ABI).format().sort()).to.deep.equal(compiled);
  });

  it("matches the compiled SupervisorQuorum ABI", async function () {
    const compiled = new Interface((await artifacts.readArtifact("SupervisorQuorum")).abi).format().sort();
    expect(new Interface(SUPERVISOR_QUORUM_ABI).format().sort()).to.deep.equal(compiled);
  });
});
