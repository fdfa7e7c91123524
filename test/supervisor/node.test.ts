import { join } from "node:path";
import type { Server } from "node:http";

import { expect } from "chai";
import { network } from "hardhat";

import { packBatch } from "../../src/ledger/codec.js";
import { serveSupervisor } from "../../src/supervisor/http.js";
import { sealBatch } from "../../src/upload/sealing.js";
import { SupervisorNode, type SupervisorConfigInput } from "../../src/supervisor/node.js";
import { Uploader } from "../../src/upload/uploader.js";
import { expectRejects } from "../helpers/errors.js";
import { REGULATOR_KEY, REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";
import { freePort } from "../helpers/processes.js";

const { ethers, networkHelpers } = await network.create();
const M = 1;

async function deploySupervision() {
  const signers = await ethers.getSigners();
  const [admin, regulator, recorder] = signers;
  const supervisors = signers.slice(10, 14);
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const quorum = await ethers.deployContract("SupervisorQuorum", [
    admin.address,
    await ledger.getAddress(),
    supervisors.map((s) => s.address),
    3,
    0,
    3_600,
  ]);
  await ledger.connect(regulator).registerMerchant(M, recorder.address);
  return { ledger, quorum, admin, regulator, recorder, supervisors };
}

describe("SupervisorNode (in process)", function () {
  this.timeout(120_000);
  const servers: Server[] = [];
  afterEach(async function () {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  /** Opens `count` nodes that know each other's endpoints. */
  async function nodes(f: Awaited<ReturnType<typeof deploySupervision>>, overrides: (i: number) => Partial<SupervisorConfigInput> = () => ({})) {
    const ports = await Promise.all(f.supervisors.map(() => freePort()));
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const dir = tempDir("supervisors");
    const opened: SupervisorNode[] = [];
    for (const [i, signer] of f.supervisors.entries()) {
      const node = await SupervisorNode.open(
        {
          ledger: await f.ledger.getAddress(),
          quorum: await f.quorum.getAddress(),
          index: i,
          decryptionKey: i === 0 ? REGULATOR_KEY : undefined,
          peers: urls.filter((_, j) => j !== i),
          stateDir: join(dir, String(i)),
          checkpointEvery: 20,
          checkpointIntervalMs: 50,
          staggerMs: 0,
          ...overrides(i),
        },
        signer,
      );
      servers.push(await serveSupervisor(node, ports[i]));
      opened.push(node);
    }
    return opened;
  }

  /** Ticks every running node until `done()` or `rounds` run out. */
  async function rounds(running: SupervisorNode[], done: () => Promise<boolean>, max = 20) {
    for (let r = 0; r < max; r++) {
      for (const n of running) await n.tick();
      if (await done()) return r + 1;
      await new Promise((res) => setTimeout(res, 60));
    }
    return max + 1;
  }

  it("marks, signs, gathers and finalizes a checkpoint over every record", async function () {
    const f = await networkHelpers.loadFixture(deploySupervision);
    const uploader = await Uploader.open(
      { ledger: await f.ledger.getAddress(), merchantId: M, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir(), "j") },
      f.recorder,
    );
    await uploader.upload([...openings(M, 30), detail(M, 2, card(3), 500n, 99)]);
    const all = await nodes(f);
    const took = await rounds(all, async () => (await f.quorum.lastFinal()) === 31n);
    expect(took).to.be.lessThan(20);
    const [count, head] = await f.ledger.chainHead();
    const [final] = await f.quorum.queryFilter(f.quorum.filters.CheckpointFinalized(31n));
    expect(await f.quorum.lastFinal()).to.equal(count);
    expect(final.args.chainHead).to.equal(head);
    expect(await f.quorum.status(31)).to.equal(2n); // Confirmed
    for (const n of all) await n.tick();
    for (const n of all) expect(n.status()).to.include({ lastFinal: "31", recordsFollowed: "31", peersSeen: 3 });
    // At least the three signers signed it; a node that met the mark after it was final need not.
    expect(all.filter((n) => n.status().lastSigned === "31").length).to.be.at.least(3);
  });

  it("with one node signing a wrong digest, the right digest still becomes final, never the wrong one", async function () {
    const f = await networkHelpers.loadFixture(deploySupervision);
    const uploader = await Uploader.open(
      { ledger: await f.ledger.getAddress(), merchantId: M, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir(), "j") },
      f.recorder,
    );
    await uploader.upload(openings(M, 12));
    const all = await nodes(f, (i) => (i === 3 ? { fault: "equivocate" } : {}));
    // The equivocator takes its checkpoint first: with no mark to wait for, the three honest
    // nodes would otherwise finalize the ledger's head before it ever signed.
    for (let i = 0; i < 40 && all[3].signedFor(12n) === undefined; i++) {
      await all[3].tick();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(all[3].signedFor(12n)?.checkpoints.length).to.equal(2);
    await rounds(all, async () => (await f.quorum.lastFinal()) === 12n);
    const honest = all[0].signedFor(12n)!.checkpoints[0];
    const [final] = await f.quorum.queryFilter(f.quorum.filters.CheckpointFinalized(12n));
    expect(final.args.stateDigest).to.equal(honest.stateDigest);
    // The equivocator signed both; the honest nodes proved it on chain.
    await rounds(all, async () => f.quorum.isEquivocator(1, f.supervisors[3].address), 5);
    expect(await f.quorum.isEquivocator(1, f.supervisors[3].address)).to.equal(true);
  });

  it("refuses to sign what it could not verify, and says why; the others still confirm", async function () {
    const f = await networkHelpers.loadFixture(deploySupervision);
    const sealed = await sealBatch(openings(M, 3), [{ publicKey: REGULATOR_PUB, role: "regulator" }]);
    sealed.records[1].commitment[0] ^= 1; // only a node holding the regulator's key can tell
    await f.ledger.connect(f.recorder).recordBatch(M, 1, sealed.envelope, packBatch(sealed.records));
    const all = await nodes(f); // node 0 holds the decryption key
    await rounds(all, async () => (await f.quorum.lastFinal()) === 3n);
    expect(await f.quorum.lastFinal()).to.equal(3n);
    for (const n of all) await n.tick();
    expect(all[0].signedFor(3n)).to.equal(undefined);
    expect(all[0].status().refusal).to.match(/commitment-mismatch at record 2/);
    expect(all[1].status().refusal).to.equal(undefined);
  });

  it("refuses a bad configuration, by path", async function () {
    const f = await networkHelpers.loadFixture(deploySupervision);
    const e = await expectRejects(
      SupervisorNode.open({ ledger: "nope", quorum: await f.quorum.getAddress(), index: -1, stateDir: "" } as never, f.supervisors[0]),
      "INVALID_CONFIG",
    );
    expect((e.details.issues as { path: string }[]).map((i) => i.path).sort()).to.deep.equal(["index", "ledger", "stateDir"]);
    const other = await ethers.deployContract("PrepaidLedger", [f.admin.address, f.regulator.address, 0, 3_600]);
    const wrong = await expectRejects(
      SupervisorNode.open(
        { ledger: await other.getAddress(), quorum: await f.quorum.getAddress(), index: 0, stateDir: tempDir() },
        f.supervisors[0],
      ),
      "INVALID_CONFIG",
    );
    expect(wrong.shortMessage).to.include("another ledger");
  });
});
