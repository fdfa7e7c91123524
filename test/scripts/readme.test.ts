/**
 * The README's workbench examples, run as written (issue 10 item 5): the `npm run -s prepaid --`
 * lines of the code blocks marked `<!-- readme-test` in README.md, against a chain prepared here
 * the way the README says (a `hardhat node` and the main job against it, which leaves
 * `prepaid.config.json`, `demo-regulator.key` and the index). Each line runs in a shell in a
 * folder whose package.json names this project's `prepaid` (npm runs a script in its package's
 * folder, as it does in this repository); every `--json` output must parse. So the README and
 * this test stay in step: a changed example is run as changed.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

import { expect } from "chai";

import { finished, startCommand, startHardhatNode, startTs } from "../helpers/processes.js";

/** The command lines of the marked blocks, comments cut off. */
export function readmeExamples(readme: string): string[] {
  const lines: string[] = [];
  const blocks = readme.split("<!-- readme-test").slice(1);
  for (const block of blocks) {
    const code = /```bash\n([\s\S]*?)```/.exec(block);
    if (code === null) continue;
    for (const line of code[1].split("\n")) {
      const command = line.replace(/\s+#.*$/, "").trim();
      if (command !== "") lines.push(command);
    }
  }
  return lines;
}


describe("README: the workbench examples, as written", function () {
  this.timeout(300_000);

  it("extracts the marked blocks' lines", function () {
    const lines = readmeExamples("x\n<!-- readme-test -->\n```bash\nnpm run -s prepaid -- status --json   # a comment\n\n```\n```bash\nnot marked\n```");
    expect(lines).to.deep.equal(["npm run -s prepaid -- status --json"]);
  });

  it("runs every prepaid example after the main job against a node, and each --json output parses", async function () {
    const root = process.cwd();
    const examples = readmeExamples(readFileSync(join(root, "README.md"), "utf8"));
    const prepaid = examples.filter((l) => l.startsWith("npm run -s prepaid -- "));
    // The README shows the main job first, and at least the reports, sync and the dashboard.
    expect(examples[0]).to.equal("npm start");
    expect(prepaid.map((l) => l.split(" ")[5])).to.include.members(["merchants", "merchant", "alerts", "sync", "status", "serve"]);
    expect(examples.filter((l) => l !== "npm start" && !prepaid.includes(l))).to.deep.equal([]);

    const dir = mkdtempSync(join(tmpdir(), "readme-"));
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "readme-test", private: true, scripts: { prepaid: `node ${join(root, "bin", "prepaid.mjs")}` } }));
    const node = await startHardhatNode();
    try {
      // `npm start` on a node that keeps running (the README's localhost form): a week is enough here.
      const job = startTs("node_modules/hardhat/dist/src/cli.js", ["run", "scripts/main-job.ts", "--network", "localhost"], {
        LOCALHOST_RPC_URL: node.url,
        PREPAID_DEMO_DIR: dir,
        DAYS: "7",
      });
      expect(await finished(job, 180_000), job.output()).to.equal(0);
      const env = { PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
      for (const line of prepaid) {
        if (line.includes(" serve")) {
          // Its own process group: stopping it stops npm and the dashboard npm started.
          const serve = startCommand("bash", ["-c", `exec ${line}`], { cwd: dir, env, ownProcessGroup: true });
          try {
            const deadline = Date.now() + 30_000;
            let url: string | undefined;
            while (url === undefined && Date.now() < deadline && serve.process.exitCode === null) {
              url = /http:\/\/127\.0\.0\.1:\d+/.exec(serve.output())?.[0];
              await new Promise((r) => setTimeout(r, 100));
            }
            expect(url, `${line}: ${serve.output()}`).to.be.a("string");
            const page = await fetch(url!);
            expect(page.status, line).to.equal(200);
            expect(await page.text()).to.include("Jade Dragon Fitness");
          } finally {
            await serve.stop();
          }
          continue;
        }
        // stderr (progress, notices) to a file: stdout is what a pipe gets, so it alone must parse.
        const run = startCommand("bash", ["-c", `${line} 2>>stderr.log`], { cwd: dir, env });
        const code = await finished(run, 60_000);
        // `alerts --exit-code` exits 10 when a rule fired, as the README says.
        const stderr = () => readFileSync(join(dir, "stderr.log"), "utf8");
        expect(line.includes("--exit-code") ? [0, 10] : [0], `${line}: ${run.output()} ${stderr()}`).to.include(code);
        if (line.includes("--json")) {
          const stdout = run.output();
          expect(() => JSON.parse(stdout), `${line} prints one JSON document: ${stdout.slice(0, 300)}`).not.to.throw();
        }
      }
      // What the examples wrote, where the README says.
      expect(readFileSync(join(dir, "records.csv"), "utf8").split("\n")[0]).to.include("record_index");
    } finally {
      await node.stop();
    }
  });
});
