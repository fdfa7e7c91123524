/**
 * `npm run supervision` stopped with Ctrl-C: the terminal sends SIGINT to the whole foreground
 * process group. The script keeps its node and supervisors out of that group, so it can still
 * read them and print its summary before it stops them.
 */
import { expect } from "chai";

import { startTs } from "../helpers/processes.js";

describe("npm run supervision: Ctrl-C", function () {
  this.timeout(180_000);

  it("prints the summary, from the node and the supervisors, then stops everything (exit 130)", async function () {
    // Its own process group, as a command a terminal runs in the foreground.
    const run = startTs("scripts/supervision.ts", ["--duration", "120", "--supervisors", "3", "--threshold", "2", "--interval-ms", "500"], {}, { ownProcessGroup: true });
    try {
      const deadline = Date.now() + 150_000;
      while (!/\[traffic\] \d[\d,]* records/.test(run.output())) {
        if (run.process.exitCode !== null) expect.fail(`supervision exited early: ${run.output()}`);
        if (Date.now() > deadline) expect.fail(`no traffic in time: ${run.output()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      process.kill(-run.process.pid!, "SIGINT"); // Ctrl-C: the group, the script's own process included
      const code = await new Promise<number | null>((resolve) => {
        if (run.process.exitCode !== null) resolve(run.process.exitCode);
        else run.process.once("exit", (c) => resolve(c));
      });
      const out = run.output();
      expect(code, out).to.equal(130);
      expect(out).to.include("interrupted: stopping");
      expect(out).to.match(/summary \([\d.]+ s of traffic, 2 of 3 supervisors must sign/);
      expect(out).to.match(/records uploaded +[\d,]+ in [\d,]+ batches by 3 merchants; the ledger holds [\d,]+/);
      // Every supervisor still answered with its status when the summary was made.
      expect(out.match(/^ {4}\[supervisor \d [^\]]+\] rpc ok/gm) ?? [], out).to.have.length(3);
      expect(out).to.not.include("stopped before the summary");
    } finally {
      await run.stop();
    }
  });
});
