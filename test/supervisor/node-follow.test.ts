import { join } from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

import { SupervisorNode } from "../../src/supervisor/node.js";
import { Uploader } from "../../src/upload/uploader.js";
import { REGULATOR_KEY, REGULATOR_PUB, openings, tempDir } from "../helpers/ledger.js";

const { ethers, networkHelpers } = await network.create();
const M = 1;

/** A ledger with 12 one-record batches, one block each: more than one eth_getLogs page (8 blocks first). */
async function deployWithBlocks() {
  const signers = await ethers.getSigners();
  const [admin, regulator, recorder] = signers;
  const supervisors = signers.slice(10, 14);
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const quorum = await ethers.deployContract("SupervisorQuorum", [admin.address, await ledger.getAddress(), supervisors.map((s) => s.address), 3, 0, 3_600]);
  await (await ledger.connect(regulator).registerMerchant(M, recorder.address)).wait();
  const uploader = await Uploader.open(
    { ledger: await ledger.getAddress(), merchantId: M, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir(), "j") },
    recorder,
  );
  for (const record of openings(M, 12)) await uploader.upload([record]);
  uploader.close();
  return { ledger, quorum, supervisors };
}

describe("SupervisorNode following the chain", function () {
  this.timeout(60_000);

  it("takes every log once when a follow fails part-way (eth_getLogs down after the first page)", async function () {
    const f = await networkHelpers.loadFixture(deployWithBlocks);
    const node = await SupervisorNode.open(
      {
        ledger: await f.ledger.getAddress(),
        quorum: await f.quorum.getAddress(),
        index: 0,
        decryptionKey: REGULATOR_KEY,
        stateDir: tempDir("supervisor"),
        checkpointIntervalMs: 50,
        staggerMs: 0,
      },
      f.supervisors[0],
    );
    // The node's JSON-RPC: the second page's eth_getLogs fails through all its retries.
    const provider = ethers.provider as unknown as { send: (method: string, params: unknown[]) => Promise<unknown> };
    const send = provider.send.bind(provider);
    let getLogs = 0;
    provider.send = async (method, params) => {
      if (method === "eth_getLogs" && ++getLogs >= 2 && getLogs <= 6) throw new Error("connect ECONNREFUSED (simulated outage)");
      return send(method, params);
    };
    try {
      let failed: unknown;
      await node.tick().catch((e: unknown) => (failed = e));
      expect(failed, "the first tick should meet the outage").to.not.equal(undefined);
      for (let round = 0; round < 3; round++) {
        await node.tick();
        await new Promise((r) => setTimeout(r, 60));
      }
    } finally {
      provider.send = send;
    }
    // It signed the ledger's head after the 12 records (no mark needed): no record was taken twice.
    expect(node.status()).to.include({ recordsFollowed: "12", lastMarked: "0", lastSigned: "12", refusal: undefined });
  });
});
