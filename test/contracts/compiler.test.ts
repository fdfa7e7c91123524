import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import { config } from "hardhat";

/** Compiler warnings are errors here: a warning in a deployable contract fails the suite. */
describe("compiler output", function () {
  it("has no warnings in any build", function () {
    const dir = join(config.paths.artifacts, "build-info");
    const outputs = readdirSync(dir).filter((f) => f.endsWith(".output.json"));
    expect(outputs.length).to.be.greaterThan(0);
    const diagnostics = outputs.flatMap((f) => {
      const { output } = JSON.parse(readFileSync(join(dir, f), "utf8")) as {
        output: { errors?: { severity: string; formattedMessage: string }[] };
      };
      return (output.errors ?? []).map((e) => `${e.severity}: ${e.formattedMessage}`);
    });
    expect(diagnostics).to.deep.equal([]);
  });
});

/** EIP-170: a contract's runtime code may be at most 24,576 bytes, or it cannot be deployed. */
describe("deployable contract sizes", function () {
  for (const [file, name] of [
    ["PrepaidLedger.sol", "PrepaidLedger"],
    ["MerchantCustody.sol", "MerchantCustody"],
    ["SupervisorQuorum.sol", "SupervisorQuorum"],
  ]) {
    it(`${name} fits in 24,576 bytes`, function () {
      const artifact = JSON.parse(readFileSync(join(config.paths.artifacts, "contracts", file, `${name}.json`), "utf8")) as { deployedBytecode: string };
      const size = (artifact.deployedBytecode.length - 2) / 2;
      expect(size).to.be.greaterThan(0).and.at.most(24_576);
    });
  }
});
