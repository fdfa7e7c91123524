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
