import { rmSync } from "node:fs";

import { expect } from "chai";
import { JsonRpcProvider } from "ethers";

import {
  PROVIDER_OPTIONS,
  deploySupervision,
  finalCheckpoint,
  lastFinal,
  startSupervisors,
  until,
  type Deployment,
  type SupervisorProcess,
} from "../../scripts/lib/supervision-network.js";
import { packBatch } from "../../src/ledger/codec.js";
import { sealBatch } from "../../src/upload/sealing.js";
import { REGULATOR_KEY, REGULATOR_PUB, openings, tempDir } from "../helpers/ledger.js";
import type { Running } from "../helpers/processes.js";
import { reorg, rpc, startReorgAnvil } from "../helpers/reorg.js";

const M = 1;

/**
 * The scenario with real processes (scripts/supervisor.ts, 3 of 4 must sign) on anvil:
 * a reorg removes a checkpoint all four signed and the quorum finalized. They must see it, stop
 * serving it, and finalize the records of the new branch, without a restart.
 */
describe("Supervisor processes under a reorg (anvil --prune-history=400)", function () {
  this.timeout(90_000);
  let anvil: Running & { url: string };
  let provider: JsonRpcProvider;
  let d: Deployment;
  let supervisors: SupervisorProcess[] = [];
  const dir = tempDir("supervision-reorg");
  let sequence = 0n;
  let opened = 0;

  before(async function () {
    anvil = await startReorgAnvil();
    provider = new JsonRpcProvider(anvil.url, undefined, PROVIDER_OPTIONS);
    d = await deploySupervision(provider, { supervisors: 4, threshold: 3, merchants: 1 });
    // anvil funds 10 dev accounts; the supervisors are accounts 10..13.
    for (const s of d.supervisors) await rpc(anvil.url, "anvil_setBalance", [s.address, "0x56BC75E2D63100000"]);
    supervisors = await startSupervisors(d, { rpc: anvil.url, stateRoot: dir, every: 1_000, intervalMs: 300, pollMs: 100, statusMs: 200, decryptionKey: REGULATOR_KEY, confirmations: 0, rpcTimeoutMs: 2_000 });
  });

  after(async function () {
    await Promise.all(supervisors.map((s) => s.stop("SIGKILL")));
    provider?.destroy();
    await anvil?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const tails = () => supervisors.map((s) => `--- supervisor ${s.index}\n${s.output().trimEnd().split("\n").slice(-4).join("\n")}`).join("\n");
  const waitFor = async (condition: () => Promise<boolean>, what: string, ms = 20_000) => {
    try {
      await until(condition, what, ms);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${tails()}`);
    }
  };
  const upload = async (count: number) => {
    const sealed = await sealBatch(openings(M, count, 100_000n, opened), [{ publicKey: REGULATOR_PUB, role: "regulator" }]);
    await (await d.ledger.connect(d.merchants[0].recorder).recordBatch(M, ++sequence, sealed.envelope, packBatch(sealed.records))).wait();
    opened += count;
  };
  const head = async () => Number(await rpc<string>(anvil.url, "eth_blockNumber"));

  it("a reorg removes a final checkpoint; every supervisor drops it, says so, and the new branch's records become final", async function () {
    await upload(6);
    await waitFor(async () => (await lastFinal(d.quorum)) === 6n, "checkpoint 6 final");
    const forkBlock = await head();
    await upload(4);
    await waitFor(async () => (await lastFinal(d.quorum)) === 10n, "checkpoint 10 final");

    await reorg(anvil.url, (await head()) - forkBlock);
    expect(await lastFinal(d.quorum)).to.equal(6n);
    await waitFor(
      async () => (await Promise.all(supervisors.map((s) => s.status()))).every((s) => s?.reorgs === 1 && s.recordsFollowed === "6"),
      "every supervisor to see the reorg",
    );
    for (const s of supervisors) expect(await s.signed(10n), `supervisor ${s.index} still serves checkpoint 10`).to.equal(undefined);

    sequence = 1n; // the new branch has batch 1 only
    await upload(3);
    await waitFor(async () => (await lastFinal(d.quorum)) === 9n, "checkpoint 9 final on the new branch");
    const [count, chainHead] = await d.ledger.chainHead();
    const final = await finalCheckpoint(d.quorum);
    expect([final.recordCount, final.chainHead]).to.deep.equal([count, chainHead]);
    for (const s of supervisors) {
      expect(s.alive).to.equal(true);
      const status = (await s.status())!;
      expect(status.refusal, status.refusal).to.equal(undefined);
      expect(s.output(), s.output().split("\n").slice(-3).join("\n")).to.match(/\| reorgs 1 \(last: depth \d+ blocks? after block \d+, deeper than 0 confirmations: replay rebuilt/);
    }
  });
});
