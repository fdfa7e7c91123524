import { expect } from "chai";

import { closest, didYouMean, editDistance } from "../../src/cli/suggest.js";

describe("prepaid: did you mean", function () {
  it("counts insertions, deletions, substitutions and swaps of neighbours as one edit each", function () {
    expect(editDistance("sync", "sync")).to.equal(0);
    expect(editDistance("syn", "sync")).to.equal(1);
    expect(editDistance("synck", "sync")).to.equal(1);
    expect(editDistance("sinc", "sync")).to.equal(1);
    expect(editDistance("josn", "json")).to.equal(1);
    expect(editDistance("", "abc")).to.equal(3);
    expect(editDistance("kitten", "sitting")).to.equal(3);
  });

  it("suggests the closest name only when it is close, or the one name the text starts", function () {
    const commands = ["sync", "status", "merchants", "merchant", "account", "alerts", "export", "serve"];
    expect(closest("merchnts", commands)).to.equal("merchants");
    expect(closest("stauts", commands)).to.equal("status");
    expect(closest("exprot", commands)).to.equal("export");
    expect(closest("acc", commands)).to.equal("account"); // the only name it starts
    expect(closest("se", commands)).to.equal("serve"); // the only name starting "se"
    expect(closest("merch", ["merchants", "merchant"])).to.equal(undefined); // two start so: no guess
    expect(closest("s", commands)).to.equal(undefined); // one letter: too short to tell
    expect(closest("xyzzy", commands)).to.equal(undefined);
    expect(didYouMean("alrets", commands, (c) => `"${c}"`)).to.equal(' (did you mean "alerts"?)');
    expect(didYouMean("zzz", commands)).to.equal("");
  });
});
