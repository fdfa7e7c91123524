/**
 * A merchant's app that uploads and then reads back at once, over one ethers JsonRpcProvider to a
 * node: the reader must see the batch that just landed (ethers answers a repeated
 * getBlockNumber() within 250 ms from its cache, which is not the node's head).
 */
import { join } from "node:path";

import { expect } from "chai";
import { JsonRpcProvider } from "ethers";
import { network } from "hardhat";

import { RegulatorReader } from "../../src/regulator/reader.js";
import { Uploader } from "../../src/upload/uploader.js";
import { REGULATOR_KEY, REGULATOR_PUB, openings, tempDir } from "../helpers/ledger.js";
import { startHardhatNode } from "../helpers/processes.js";

describe("RegulatorReader right after an upload, on the same provider", function () {
  this.timeout(120_000);
  let node: Awaited<ReturnType<typeof startHardhatNode>>;

  before(async function () {
    node = await startHardhatNode();
  });

  after(async function () {
    await node?.stop();
  });

  it("reads every record of the batch that just landed", async function () {
    const { ethers } = await network.create({ network: "localhost", override: { url: node.url } });
    const [admin, regulator, recorder] = await ethers.getSigners();
    const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
    await ledger.waitForDeployment();
    await (await ledger.connect(regulator).registerMerchant(5, recorder.address)).wait();

    // The app's own provider: one JsonRpcProvider for uploading and reading.
    const provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true });
    try {
      const signer = await provider.getSigner(recorder.address);
      const address = await ledger.getAddress();
      const uploader = await Uploader.open(
        { ledger: address, merchantId: 5, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir("read-after"), "j.jsonl"), batchSize: 4 },
        signer,
      );
      try {
        for (let round = 0; round < 3; round++) {
          await provider.getBlockNumber(); // the app asks for the head, as apps do
          const sent = await uploader.upload(openings(5, 4, 10_000n, round * 4));
          const report = await (await RegulatorReader.open({ ledger: address, privateKey: REGULATOR_KEY }, provider)).read();
          expect(report.records, `round ${round}`).to.equal((round + 1) * 4);
          expect(report.chain.recordCount).to.equal(sent.at(-1)!.recordIndex);
          expect(report.ok, JSON.stringify(report.discrepancies)).to.equal(true);
        }
      } finally {
        uploader.close();
      }
    } finally {
      provider.destroy();
    }
  });
});
