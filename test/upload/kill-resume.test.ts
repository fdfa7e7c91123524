import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import { ContractFactory, JsonRpcProvider } from "ethers";
import { artifacts } from "hardhat";

import { RegulatorReader } from "../../src/regulator/reader.js";
import { streamRecord, WORKER_MERCHANT } from "../fixtures/upload-worker.js";
import { REGULATOR_KEY, tempDir } from "../helpers/ledger.js";
import { startHardhatNode, startTs, type Running } from "../helpers/processes.js";

const TOTAL = 240;
const BATCH = 8;

const doneLines = (path: string) =>
  existsSync(path) ? readFileSync(path, "utf8").split("\n").filter((l) => l.startsWith('{"t":"done"')).length : 0;

async function until(condition: () => boolean, what: string, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("Uploader killed and restarted (real processes, hardhat node over HTTP)", function () {
  this.timeout(240_000);
  let node: Running & { url: string };
  let provider: JsonRpcProvider;
  let ledger: string;

  before(async function () {
    node = await startHardhatNode();
    provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true, pollingInterval: 50 });
    const [admin, regulator, recorder] = await Promise.all([0, 1, 2].map((i) => provider.getSigner(i)));
    const artifact = await artifacts.readArtifact("PrepaidLedger");
    const factory = new ContractFactory(artifact.abi, artifact.bytecode, admin);
    const contract = await factory.deploy(admin.address, regulator.address, 0, 3_600);
    await contract.waitForDeployment();
    ledger = await contract.getAddress();
    const asRegulator = contract.connect(regulator) as typeof contract;
    await (await asRegulator.getFunction("registerMerchant")(WORKER_MERCHANT, recorder.address)).wait();
  });

  after(async function () {
    provider?.destroy();
    await node?.stop();
  });

  it("loses and doubles no record when SIGKILLed mid-upload, again and again", async function () {
    const journal = join(tempDir("kill"), "merchant-1.jsonl");
    const args = () => [node.url, ledger, journal, String(TOTAL), String(BATCH)];
    let kills = 0;
    for (const more of [2, 5, 9]) {
      const before = doneLines(journal);
      const worker = startTs("test/fixtures/upload-worker.ts", args());
      await until(() => doneLines(journal) >= before + more || worker.process.exitCode !== null, "batches to land");
      expect(worker.output(), "the worker finished before it could be killed").not.to.include("finished");
      worker.process.kill("SIGKILL");
      await worker.stop();
      kills++;
    }
    expect(kills).to.equal(3);
    const last = startTs("test/fixtures/upload-worker.ts", args());
    await until(() => last.process.exitCode !== null, "the last run to finish", 120_000);
    expect(last.process.exitCode, last.output()).to.equal(0);
    expect(last.output()).to.include("finished");

    const reader = await RegulatorReader.open({ ledger, privateKey: REGULATOR_KEY, keepRecords: true }, provider);
    const report = await reader.read();
    expect(report.discrepancies).to.deep.equal([]);
    expect(report.records).to.equal(TOTAL);
    // Every record of the stream is on chain exactly once, in stream order.
    const refs = report.kept!.map((r) => r.details!.orderRef);
    expect(refs).to.deep.equal(Array.from({ length: TOTAL }, (_, i) => streamRecord(i).orderRef));
    const amounts = report.kept!.map((r) => r.amount);
    expect(amounts).to.deep.equal(Array.from({ length: TOTAL }, (_, i) => streamRecord(i).amount));
  });
});
