/**
 * `prepaid sync` on an imperfect network, as an operator runs it (real processes, node
 * bin/prepaid.mjs): reorgs made on anvil, and node faults injected by the fault proxy.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { expect } from "chai";

import { Uploader } from "../../src/upload/uploader.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";
import { REGULATOR_KEY, REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";
import { reorg, useReorgAnvil } from "../helpers/reorg.js";
import { indexDb } from "../helpers/index-db.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = join(root, "bin", "prepaid.mjs");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], cwd: string): ChildProcess & { out: () => string; err: () => string; done: Promise<Run> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, PREPAID_REGULATOR_KEY: REGULATOR_KEY, TZ: "UTC" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
  return Object.assign(child, { out: () => stdout, err: () => stderr, done });
}

const prepaid = (args: string[], cwd: string) => start(args, cwd).done;

describe("prepaid sync: reorgs and node faults (anvil, fault proxy)", function () {
  this.timeout(120_000);
  const chain = useReorgAnvil(["--accounts", "4"]);

  /** A ledger with merchant 3: 8 openings, then `consumed` consumptions (4 a block). */
  async function ledger(consumed: number) {
    const [admin, regulator, recorder] = await chain.connection.ethers.getSigners();
    const contract = await chain.connection.ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
    await contract.waitForDeployment();
    const address = await contract.getAddress();
    await (await contract.connect(regulator).registerMerchant(3, recorder.address)).wait();
    const dir = tempDir("cli-reorg");
    const uploader = await Uploader.open(
      { ledger: address, merchantId: 3, regulatorPublicKey: REGULATOR_PUB, journalPath: join(dir, "j.jsonl"), batchSize: 4 },
      recorder,
    );
    await uploader.upload(openings(3, 8, 50_000n));
    if (consumed > 0) await uploader.upload(Array.from({ length: consumed }, (_, i) => detail(3, 2, card(i % 8), 1_000n, 100 + i)));
    uploader.close();
    const register = (id: number) => ({
      tx: { from: regulator.address, to: address, data: contract.interface.encodeFunctionData("registerMerchant", [id, admin.address]), gas: "0x30000" },
      block: 0,
    });
    const recordCount = async () => Number((await contract.chainHead())[0]);
    return { contract, address, dir, db: indexDb(dir, "index.sqlite"), register, recordCount };
  }

  it("a reorg deeper than the confirmations: exit 4, the index marked and status saying so, until sync --repair heals it", async function () {
    const f = await ledger(8);
    const base = ["--db", f.db];
    const first = await prepaid(["sync", "--rpc", chain.url, "--ledger", f.address, "--confirmations", "0", ...base], f.dir);
    expect(first.code, first.stderr).to.equal(0);
    await reorg(chain.url, 2, [f.register(9)]);

    const again = await prepaid(["sync", "--rpc", chain.url, ...base], f.dir);
    expect(again.code, again.stderr).to.equal(4);
    expect(again.stderr).to.include("REORG_TOO_DEEP").and.to.include("prepaid sync --repair");
    const still = await prepaid(["sync", "--rpc", chain.url, ...base], f.dir);
    expect(still.code).to.equal(4);

    const status = await prepaid(["status", ...base], f.dir);
    expect(status.code).to.equal(0);
    expect(status.stdout).to.match(/WARNING: the index does NOT follow the chain/);
    expect(status.stdout).to.match(/Follows chain: +NO/);
    const json = JSON.parse((await prepaid(["status", "--json", ...base], f.dir)).stdout);
    expect(json.followsChain).to.equal(false);
    expect(json.info.reorg.confirmations).to.equal(0);

    const repaired = await prepaid(["sync", "--rpc", chain.url, "--repair", ...base], f.dir);
    expect(repaired.code, repaired.stderr).to.equal(0);
    expect(repaired.stderr).to.include("repair:");
    expect(repaired.stdout).to.include("Books match the contract");
    const after = JSON.parse((await prepaid(["status", "--json", ...base], f.dir)).stdout);
    expect([after.followsChain, after.info.recordCount, after.discrepancies]).to.deep.equal([true, await f.recordCount(), 0]);
  });

  it("--follow --repair: a follower with confirmations 0 repairs a reorg by itself and goes on", async function () {
    const f = await ledger(4);
    const child = start(["sync", "--rpc", chain.url, "--ledger", f.address, "--db", f.db, "--confirmations", "0", "--follow", "--repair", "--interval", "1"], f.dir);
    try {
      const waitFor = async (pattern: RegExp, text: () => string) => {
        const deadline = Date.now() + 30_000;
        while (!pattern.test(text()) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(text()).to.match(pattern);
      };
      await waitFor(/Following new blocks every 1 s/, child.out);
      await reorg(chain.url, 1, [f.register(31)]); // drops the block of the 4 consumptions
      await waitFor(/REORG_TOO_DEEP|no longer on the chain.*repairing/, child.err);
      await waitFor(/repair: the index is emptied/, child.err);
      await waitFor(/: 8 new records, 8 in the index/, child.out);
      child.kill("SIGINT");
      const run = await child.done;
      expect(run.code, run.stderr).to.equal(0);
      const status = JSON.parse((await prepaid(["status", "--json", "--db", f.db], f.dir)).stdout);
      expect([status.followsChain, status.info.recordCount, status.discrepancies]).to.deep.equal([true, await f.recordCount(), 0]);
      const merchants = JSON.parse((await prepaid(["merchants", "--json", "--db", f.db], f.dir)).stdout);
      expect(merchants.merchants.map((m: { merchantId: number }) => m.merchantId)).to.deep.equal([3, 31]);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("exit 3, not 'no state at that block', when every eth_call gets a 502", async function () {
    const f = await ledger(0);
    const proxy = await startFaultProxy({ target: chain.url });
    try {
      proxy.setRates({});
      proxy.failNext("http502", { method: "eth_call", count: 50 });
      const run = await prepaid(["sync", "--rpc", proxy.url, "--ledger", f.address, "--db", f.db], f.dir);
      expect(run.code, run.stderr).to.equal(3);
      expect(run.stdout + run.stderr).not.to.include("keeps no state");
      expect(run.stderr).to.include("RPC_ERROR");
    } finally {
      await proxy.stop();
    }
  });

  it("exit 3 with TIMEOUT within seconds when eth_getLogs is never answered (--rpc-timeout)", async function () {
    const f = await ledger(0);
    const proxy = await startFaultProxy({ target: chain.url, hangMs: 30_000 });
    try {
      proxy.failNext("hang", { method: "eth_getLogs", count: 10 });
      const started = Date.now();
      const run = await prepaid(["sync", "--rpc", proxy.url, "--ledger", f.address, "--db", f.db, "--rpc-timeout", "1"], f.dir);
      expect(run.code, run.stderr).to.equal(3);
      expect(run.stderr).to.include("TIMEOUT").and.to.include("eth_getLogs");
      expect(Date.now() - started).to.be.below(10_000);
    } finally {
      await proxy.stop();
    }
  });

  it("--follow waits out a failing node (saying what for), rolls a shallow reorg back, and goes on", async function () {
    const f = await ledger(0);
    const proxy = await startFaultProxy({ target: chain.url, hangMs: 10_000 });
    const child = start(["sync", "--rpc", proxy.url, "--ledger", f.address, "--db", f.db, "--confirmations", "3", "--follow", "--interval", "1", "--rpc-timeout", "1"], f.dir);
    try {
      const waitFor = async (pattern: RegExp, text: () => string) => {
        const deadline = Date.now() + 30_000;
        while (!pattern.test(text()) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(text()).to.match(pattern);
      };
      await waitFor(/Following new blocks every 1 s/, child.out);
      // The node fails: 502s, which the client calls again after doubling waits (saying so), until
      // the indexer's per-call timeout (--rpc-timeout 1) gives up on the call; then a hanging answer.
      proxy.failNext("http502", { method: "eth_blockNumber", count: 3 });
      proxy.failNext("hang", { method: "eth_blockNumber", count: 1 });
      await waitFor(/waiting for the node \(TIMEOUT/, child.err);
      await waitFor(/the node answers again/, child.err);
      expect(child.err()).to.match(/the node did not answer eth_blockNumber \(.*\); trying again in \d+ ms/);
      // Records land in the unsettled blocks, then a reorg replaces their block.
      const [, , recorder] = await chain.connection.ethers.getSigners();
      const uploader = await Uploader.open(
        { ledger: f.address, merchantId: 3, regulatorPublicKey: REGULATOR_PUB, journalPath: join(f.dir, "j.jsonl"), batchSize: 4 },
        recorder,
      );
      await uploader.upload(Array.from({ length: 4 }, (_, i) => detail(3, 2, card(i), 1_000n, 200 + i)));
      uploader.close();
      await waitFor(/: 4 new records, 12 in the index/, child.out);
      await reorg(chain.url, 1, [f.register(21)]);
      await waitFor(/Reorg: block \d+ left the chain; rolled back to block \d+/, child.err);
      child.kill("SIGINT");
      const run = await child.done;
      expect(run.code, run.stderr).to.equal(0);
      const status = JSON.parse((await prepaid(["status", "--json", "--db", f.db], f.dir)).stdout);
      expect([status.followsChain, status.info.recordCount]).to.deep.equal([true, await f.recordCount()]);
      expect(status.info.recordCount).to.equal(8);
      const merchants = JSON.parse((await prepaid(["merchants", "--json", "--db", f.db], f.dir)).stdout);
      expect(merchants.merchants.map((m: { merchantId: number }) => m.merchantId)).to.deep.equal([3, 21]);
    } finally {
      child.kill("SIGKILL");
      await proxy.stop();
    }
  });
});
