import { expect } from "chai";

import { parseFlags } from "../../scripts/supervision.js";
import { formatStatus, parseArgs } from "../../scripts/supervisor.js";
import { startTs } from "../helpers/processes.js";

const ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

async function exitCode(run: ReturnType<typeof startTs>): Promise<number> {
  while (run.process.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  return run.process.exitCode;
}

describe("supervisor and supervision command lines", function () {
  this.timeout(60_000);

  it("parses a supervisor's flags, defaults the state folder, and names a wrong flag", function () {
    const args = parseArgs(["--rpc", "http://127.0.0.1:8545", "--ledger", ADDRESS, "--quorum", ADDRESS, "--index", "2", "--port", "7703", "--peers", "http://127.0.0.1:7701,http://127.0.0.1:7702"]);
    expect(args.config).to.include({ index: 2, stateDir: ".supervisor/2" });
    expect(args.config.peers).to.deep.equal(["http://127.0.0.1:7701", "http://127.0.0.1:7702"]);
    expect(() => parseArgs(["--rpc", "x", "--index", "0"])).to.throw("missing --port");
    expect(() => parseArgs(["--colour", "red"])).to.throw("unknown flag --colour");
    expect(() => parseArgs(["--rpc"])).to.throw('expected --flag value, got "--rpc"');
  });

  it("takes --confirmations and --rpc-timeout, and leaves confirmations to the chain when not given", function () {
    const base = ["--rpc", "http://127.0.0.1:8545", "--ledger", ADDRESS, "--quorum", ADDRESS, "--index", "0", "--port", "7701"];
    expect(parseArgs([...base, "--confirmations", "12", "--rpc-timeout", "5000"]).config).to.include({ confirmations: 12, rpcTimeoutMs: 5_000 });
    expect(parseArgs(base).config.confirmations).to.equal(undefined);
    expect(() => parseArgs([...base, "--confirmations", "many"])).to.throw('--confirmations: expected a number, got "many"');
  });

  it("prints the settled block, the confirmations and the reorgs seen", function () {
    const line = formatStatus({
      index: 0,
      address: "0x71bE63f3384f5fb98995898A86B02Fb2426c5788",
      rpc: "ok",
      headBlock: 1_300,
      confirmations: 12,
      settledBlock: 1_288,
      recordsFollowed: "819",
      lastMarked: "900",
      lastSigned: "819",
      lastFinal: "819",
      peersSeen: 3,
      peers: 3,
      reorgs: 1,
      lastReorg: "depth 2 blocks after block 1298, unsettled blocks only",
    });
    expect(line).to.equal(
      "[supervisor 0 0x71bE63f3] rpc ok | block 1300 (settled 1288, 12 confirmations), record 819 | marked 900 | signed 819 | final 819" +
        " | peers seen 3/3 | reorgs 1 (last: depth 2 blocks after block 1298, unsettled blocks only)",
    );
  });

  it("prints a status line with head, last signed, last final and peers seen", function () {
    const line = formatStatus({
      index: 1,
      address: "0x71bE63f3384f5fb98995898A86B02Fb2426c5788",
      rpc: "down",
      headBlock: 40,
      recordsFollowed: "300",
      lastMarked: "300",
      lastSigned: "288",
      lastFinal: "288",
      peersSeen: 2,
      peers: 3,
      refusal: "the ledger did not verify",
    });
    expect(line).to.equal(
      "[supervisor 1 0x71bE63f3] rpc down | block 40, record 300 | marked 300 | signed 288 | final 288 | peers seen 2/3 | REFUSED: the ledger did not verify",
    );
  });

  it("refuses a supervisor without its key in the environment, exit code 2, before connecting", async function () {
    const run = startTs(
      "scripts/supervisor.ts",
      ["--rpc", "http://127.0.0.1:9", "--ledger", ADDRESS, "--quorum", ADDRESS, "--index", "0", "--port", "0"],
      { SUPERVISOR_PRIVATE_KEY: "" },
    );
    expect(await exitCode(run)).to.equal(2);
    expect(run.output()).to.include("set SUPERVISOR_PRIVATE_KEY");
    await run.stop();
  });

  it("parses the local network's flags and reports every wrong one", function () {
    expect(parseFlags([])).to.deep.equal({ supervisors: 4, threshold: 3, duration: 20, "interval-ms": 1_000, every: 1_000 });
    expect(parseFlags(["--supervisors", "7", "--threshold", "5"])).to.include({ supervisors: 7, threshold: 5 });
    expect(() => parseFlags(["--supervisors", "2", "--threshold", "3"])).to.throw("--threshold: at most --supervisors");
    expect(() => parseFlags(["--duration", "-1", "--every", "0"])).to.throw(/--duration: .*; --every: /);
    expect(() => parseFlags(["--nodes", "3"])).to.throw("unknown flag --nodes");
  });
});
