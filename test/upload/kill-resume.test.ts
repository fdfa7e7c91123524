import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import { ContractFactory, JsonRpcProvider } from "ethers";
import { artifacts } from "hardhat";

import { RegulatorReader } from "../../src/regulator/reader.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";
import { streamRecord, WORKER_MERCHANT } from "../fixtures/upload-worker.js";
import { REGULATOR_KEY, tempDir } from "../helpers/ledger.js";
import { startHardhatNode, startTs, type Running } from "../helpers/processes.js";

const TOTAL = 240;
const BATCH = 8;

const doneLines = (path: string) =>
  existsSync(path) ? readFileSync(path, "utf8").split("\n").filter((l) => l.startsWith('{"t":"done"')).length : 0;

/** Batches the journal holds that are not done: sent or about to be, landed or not. */
function unfinished(path: string): number {
  if (!existsSync(path)) return 0;
  const lines = readFileSync(path, "utf8").split("\n").filter((l) => l.endsWith("}")).map((l) => JSON.parse(l) as { t: string; sequence?: string });
  const open = new Set<string>();
  for (const l of lines) {
    if (l.t === "batch") open.add(l.sequence!);
    else if (l.t === "done" || l.t === "moved" || l.t === "rejected") open.delete(l.sequence!);
  }
  return open.size;
}

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

    await expectExactlyOnce();
  });

  it("loses and doubles no record when SIGKILLed with two batches in flight, again and again", async function () {
    // Every send's answer held 250 ms (after the node took it): the next batch is journaled and
    // the one before is on chain while the uploader does not know it yet.
    const proxy = await startFaultProxy({ target: node.url, rates: { delay: 1 }, methods: (m) => m === "eth_sendTransaction", delayMs: 250 });
    try {
      const journal = join(tempDir("kill2"), "merchant-1.jsonl");
      const args = () => [proxy.url, ledger, journal, String(TOTAL), String(BATCH), "2"];
      for (const more of [2, 6, 11]) {
        const before = doneLines(journal);
        const worker = startTs("test/fixtures/upload-worker.ts", args());
        await until(() => (doneLines(journal) >= before + more && unfinished(journal) >= 2) || worker.process.exitCode !== null, "two batches in flight");
        expect(worker.output(), "the worker finished before it could be killed").not.to.include("finished");
        worker.process.kill("SIGKILL");
        await worker.stop();
        expect(unfinished(journal), "batches in flight at the kill").to.be.at.least(2);
      }
      const last = startTs("test/fixtures/upload-worker.ts", args());
      await until(() => last.process.exitCode !== null, "the last run to finish", 120_000);
      expect(last.process.exitCode, last.output()).to.equal(0);
      expect(last.output()).to.include("finished");
    } finally {
      await proxy.stop();
    }
    await expectExactlyOnce(2);
  });

  /** Every record of the stream is on chain exactly once, in stream order (`copies` streams uploaded). */
  async function expectExactlyOnce(copies = 1) {
    const reader = await RegulatorReader.open({ ledger, privateKey: REGULATOR_KEY, keepRecords: true }, provider);
    const report = await reader.read();
    expect(report.discrepancies).to.deep.equal([]);
    expect(report.records).to.equal(TOTAL * copies);
    const stream = Array.from({ length: TOTAL }, (_, i) => streamRecord(i));
    const refs = report.kept!.slice(-TOTAL).map((r) => r.details!.orderRef);
    expect(refs).to.deep.equal(stream.map((r) => r.orderRef));
    const amounts = report.kept!.slice(-TOTAL).map((r) => r.amount);
    expect(amounts).to.deep.equal(stream.map((r) => r.amount));
  }
});
