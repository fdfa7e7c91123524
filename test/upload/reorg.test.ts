/**
 * The Uploader and reorgs, on anvil (`anvil_reorg`: the last blocks replaced by new ones, their
 * transactions dropped): a batch a reorg removes is detected by block hash and sent again, in
 * order, and every record ends on chain exactly once.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import { Contract, ContractFactory, JsonRpcProvider, Wallet, id } from "ethers";
import { artifacts } from "hardhat";

import { Uploader, type UploaderConfigInput } from "../../src/upload/uploader.js";
import { REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";
import type { Running } from "../helpers/processes.js";
import { mine, reorg, rpc, startReorgAnvil } from "../helpers/reorg.js";

const ADMIN_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const RECORDER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const RECORDED = id("Recorded(bytes32,uint32,bytes32)");
const M = 1;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const journalTypes = (path: string) =>
  readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { t: string; sequence?: string });

describe("Uploader and reorgs (anvil)", function () {
  this.timeout(120_000);
  let anvil: Running & { url: string };
  let provider: JsonRpcProvider;
  let ledger: string;

  beforeEach(async function () {
    anvil = await startReorgAnvil();
    provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true, batchMaxCount: 1, pollingInterval: 50 });
    const admin = new Wallet(ADMIN_KEY, provider);
    const artifact = await artifacts.readArtifact("PrepaidLedger");
    const contract = await new ContractFactory(artifact.abi, artifact.bytecode, admin).deploy(admin.address, admin.address, 0, 3_600, { nonce: 0 });
    await contract.waitForDeployment();
    ledger = await contract.getAddress();
    const registry = new Contract(ledger, artifact.abi, admin);
    await (await registry.getFunction("registerMerchant")(M, new Wallet(RECORDER_KEY).address, { nonce: 1 })).wait();
  });

  afterEach(async function () {
    provider?.destroy();
    await anvil?.stop();
  });

  function open(overrides: Partial<UploaderConfigInput> = {}, journalPath = join(tempDir("reorg"), "journal.jsonl")) {
    return Uploader.open(
      { ledger, merchantId: M, regulatorPublicKey: REGULATOR_PUB, journalPath, batchSize: 2, pollingIntervalMs: 50, rpcTimeoutMs: 5_000, ...overrides },
      new Wallet(RECORDER_KEY, provider),
    );
  }

  /** The commitments of the merchant's records on the chain as it is now, in ledger order. */
  async function onChain(): Promise<string[]> {
    const filter = { address: ledger, fromBlock: "0x0", toBlock: "latest", topics: [RECORDED, null, "0x" + M.toString(16).padStart(64, "0")] };
    return (await rpc<{ topics: string[] }[]>(anvil.url, "eth_getLogs", [filter])).map((l) => l.topics[3]);
  }

  it("resends a provisional batch a reorg removed, and the ones after it, before calling them final", async function () {
    const uploader = await open({ confirmations: 2, finalityTimeoutMs: 60_000 });
    expect(uploader.confirmations).to.equal(2);
    const uploading = uploader.upload(openings(M, 6)); // three batches, one block each
    let settled = false;
    uploading.then(
      () => (settled = true),
      () => (settled = true),
    );
    const deadline = Date.now() + 30_000;
    while ((await onChain()).length < 6) {
      if (Date.now() > deadline || settled) expect.fail("the three batches never landed (waiting for confirmations first?)");
      await sleep(20);
    }
    const head = Number(await rpc<string>(anvil.url, "eth_blockNumber"));
    const { before, after } = await reorg(anvil.url, 2); // the blocks of batches 2 and 3
    expect(after).to.not.equal(before);
    expect(await onChain()).to.have.length(2);
    while (!settled) {
      await mine(anvil.url, 1);
      await sleep(50);
    }
    const records = await uploading;
    expect(await onChain()).to.deep.equal(records.map((r) => r.commitment));
    expect(records.map((r) => r.sequence)).to.deep.equal([1n, 1n, 2n, 2n, 3n, 3n]);
    expect(records.slice(2).every((r) => r.blockNumber > head)).to.equal(true); // sent again, after the reorg
    const reorged = journalTypes(uploader.journal.path).filter((l) => l.t === "reorged").map((l) => l.sequence);
    // Each removed batch is marked once; which is noticed first depends on whether batch 3's
    // receipt was read before the reorg (the order they are sent again in is checked above).
    expect([...reorged].sort()).to.deep.equal(["2", "3"]);
    uploader.close();
  });

  it("after a reorg deeper than its finality depth, resends the lost batches first, in order (also after a restart)", async function () {
    const uploader = await open(); // chain 31337: final in the including block (depth 0)
    expect(uploader.confirmations).to.equal(0);
    const sold = await uploader.upload(openings(M, 4));
    await reorg(anvil.url, 2); // both batches gone
    expect(await onChain()).to.deep.equal([]);

    const [used] = await uploader.upload([detail(M, 2, card(0), 500n, 10)]);
    const chain = await onChain();
    expect(chain).to.have.length(5);
    expect(chain).to.deep.equal([...sold.map((r) => r.commitment), used.commitment]); // same records, same order
    expect(used.sequence).to.equal(3n);
    // Calling again with the first records returns where they are now.
    const again = await uploader.upload(openings(M, 4));
    expect(again.map((r) => r.commitment)).to.deep.equal(sold.map((r) => r.commitment));
    expect(again.map((r) => r.recordIndex)).to.deep.equal([1n, 2n, 3n, 4n]);
    uploader.close();

    // Lost again, and this time the process restarts before it notices.
    await reorg(anvil.url, 3);
    expect(await onChain()).to.deep.equal([]);
    const restarted = await open({}, uploader.journal.path);
    const recovered = await restarted.recover();
    expect(recovered.map((r) => r.commitment)).to.deep.equal(chain);
    expect(await onChain()).to.deep.equal(chain);
    restarted.close();
  });
});
