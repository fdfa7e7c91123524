import { rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import { expect } from "chai";
import { JsonRpcProvider } from "ethers";

import {
  FinalityWatch,
  MerchantTraffic,
  PROVIDER_OPTIONS,
  deploySupervision,
  finalCheckpoint,
  lastFinal,
  ledgerHeadAt,
  startSupervisors,
  until,
  type Deployment,
  type Finalized,
  type SupervisorProcess,
} from "../../scripts/lib/supervision-network.js";
import { REGULATOR_KEY, tempDir } from "../helpers/ledger.js";
import { startHardhatNode, type Running } from "../helpers/processes.js";

const RecordStatus = { Unknown: 0n, Pending: 1n, Confirmed: 2n } as const;
/** The supervisors mark every 500 ms while records flow (K never binds at this traffic). */
const INTERVAL_MS = 500;

/**
 * One scenario, in order, on one `hardhat node` and four supervisor processes (3 of 4 must
 * sign): all up; one killed; two down, then one back; one signing a wrong digest.
 */
describe("Supervisor network (real processes: hardhat node, 4 supervisors peer to peer over HTTP)", function () {
  this.timeout(120_000);
  let node: Running & { url: string };
  let provider: JsonRpcProvider;
  let d: Deployment;
  let supervisors: SupervisorProcess[] = [];
  let traffic: MerchantTraffic | undefined;
  let finality: FinalityWatch;
  const finalized: Finalized[] = [];
  const dir = tempDir("supervision");

  before(async function () {
    node = await startHardhatNode();
    provider = new JsonRpcProvider(node.url, undefined, PROVIDER_OPTIONS);
    d = await deploySupervision(provider, { supervisors: 4, threshold: 3, merchants: 2 });
    finality = new FinalityWatch(provider, d.quorumAddress, d.fromBlock);
    supervisors = await startSupervisors(d, {
      rpc: node.url,
      stateRoot: dir,
      every: 1_000,
      intervalMs: INTERVAL_MS,
      pollMs: 100,
      decryptionKey: REGULATOR_KEY,
    });
    traffic = await MerchantTraffic.open(d, { regulatorKey: REGULATOR_KEY, journalDir: dir, batchSize: 10 });
  });

  after(async function () {
    traffic?.close();
    await Promise.all(supervisors.map((s) => s.stop("SIGKILL")));
    provider?.destroy();
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The last lines each supervisor printed: what a failed wait is reported with. */
  const tails = () =>
    supervisors.map((s) => `--- supervisor ${s.index} (${s.alive ? "running" : "stopped"})\n${s.output().trimEnd().split("\n").slice(-6).join("\n")}`).join("\n");

  const waitFor = async (condition: () => Promise<boolean>, what: string, ms: number) => {
    try {
      await until(condition, what, ms);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${tails()}`);
    }
  };

  const recordCount = async () => (await d.ledger.chainHead())[0];
  const allFinal = async () => (await lastFinal(d.quorum)) === (await recordCount());

  /** Uploads a batch every ~300 ms for `ms`; returns lastFinal as sampled after each batch. */
  async function flow(ms: number): Promise<bigint[]> {
    const samples: bigint[] = [];
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const started = Date.now();
      await traffic!.next();
      samples.push(await lastFinal(d.quorum));
      await sleep(Math.max(0, 300 - (Date.now() - started)));
    }
    return samples;
  }

  /** The checkpoints finalized since the last call, from the CheckpointFinalized logs. */
  async function newlyFinalized(): Promise<Finalized[]> {
    const fresh = await finality.poll();
    finalized.push(...fresh);
    return fresh;
  }

  const address = (i: number) => d.supervisors[i].address;

  it("with all 4 up, checkpoints become final while records flow", async function () {
    const before = await lastFinal(d.quorum);
    const samples = await flow(4_000);
    // Each distinct value after the first is a checkpoint that became final during the traffic.
    const increases = new Set(samples.filter((s) => s > before)).size;
    expect(increases, `lastFinal during traffic: ${samples.join(", ")}\n${tails()}`).to.be.at.least(2);
    await waitFor(allFinal, "a checkpoint over every record", 15_000);
    const statuses = await Promise.all(supervisors.map((s) => s.status()));
    for (const s of statuses) {
      expect(s, tails()).to.not.equal(undefined);
      expect(s!.refusal, s!.refusal).to.equal(undefined);
      expect(s!.peersSeen).to.equal(3);
    }
    expect((await newlyFinalized()).length).to.be.at.least(increases);
  });

  it("with 1 of 4 killed (SIGKILL, supervisor 0: the first to mark and to submit), records uploaded after still become final", async function () {
    await supervisors[0].stop("SIGKILL");
    const before = await recordCount();
    await flow(2_000);
    const count = await recordCount();
    expect(count > before).to.equal(true);
    await waitFor(allFinal, `a checkpoint over record ${count} without supervisor 0`, 15_000);
    const fresh = await newlyFinalized();
    expect(fresh.length).to.be.at.least(1);
    for (const f of fresh) expect(f.signers).to.not.include(address(0));
  });

  it("with 2 of 4 down nothing new becomes final; one restarted (same state, same port), finality resumes and skips nothing", async function () {
    await supervisors[1].stop("SIGTERM");
    const frozen = await lastFinal(d.quorum);
    expect(frozen).to.equal(await recordCount());
    const during = await flow(2_000);
    const count = await recordCount();
    expect(count > frozen).to.equal(true);
    // The two live nodes still sign the last records (the ledger's head, unmarked)…
    await waitFor(async () => (await supervisors[2].status())?.lastSigned === count.toString(), `supervisor 2 to sign record ${count}`, 10_000);
    await waitFor(async () => (await supervisors[3].status())?.lastSigned === count.toString(), `supervisor 3 to sign record ${count}`, 5_000);
    await sleep(3 * INTERVAL_MS);
    // …but two signatures are not three: nothing became final, during the traffic or after.
    expect(during.every((f) => f === frozen), `lastFinal during traffic: ${during.join(", ")}`).to.equal(true);
    expect(await lastFinal(d.quorum)).to.equal(frozen);
    expect(await newlyFinalized()).to.deep.equal([]);
    for (const i of [2, 3]) expect((await supervisors[i].status())?.lastFinal).to.equal(frozen.toString());

    await supervisors[0].start(); // killed in the previous test: what it signed is on disk
    await waitFor(allFinal, `finality to resume up to record ${count}`, 20_000);

    const { recordCount: finalCount, chainHead: finalHead } = await finalCheckpoint(d.quorum);
    const [chainCount, chainHead] = await d.ledger.chainHead();
    expect([finalCount, finalHead]).to.deep.equal([chainCount, chainHead]);
    // Every record is confirmed, the first to the last; the next one is not booked yet.
    const indices = Array.from({ length: Number(chainCount) }, (_, i) => BigInt(i + 1));
    const statuses: bigint[] = [];
    for (let i = 0; i < indices.length; i += 50) {
      statuses.push(...(await Promise.all(indices.slice(i, i + 50).map((n) => d.quorum.status(n)))));
    }
    expect(statuses.every((s) => s === RecordStatus.Confirmed), `statuses: ${statuses.join("")}`).to.equal(true);
    expect(await d.quorum.status(chainCount + 1n)).to.equal(RecordStatus.Unknown);
    // The finalized checkpoints only moved forward, each over the ledger's head at its count.
    await newlyFinalized();
    const counts = finalized.map((f) => f.recordCount);
    expect(counts).to.deep.equal([...counts].sort((a, b) => (a < b ? -1 : 1)));
    expect(new Set(counts).size).to.equal(counts.length);
    expect(counts.at(-1)).to.equal(chainCount);
    for (const f of finalized) expect(f.chainHead).to.equal(await ledgerHeadAt(d.ledger, f.recordCount));
  });

  it("a supervisor signing a wrong state digest: the honest digest becomes final, never the wrong one", async function () {
    await supervisors[1].start(["--fault", "wrong-digest"]);
    await flow(1_500);
    const count = await recordCount();
    await waitFor(
      async () => (await allFinal()) && (await supervisors[1].signed(count)) !== undefined,
      `record ${count} final and signed by the faulty supervisor`,
      15_000,
    );
    const { recordCount: finalCount, chainHead: finalHead, stateDigest: finalDigest } = await finalCheckpoint(d.quorum);
    expect(finalCount).to.equal(count);
    const honest = (await supervisors[0].signed(count))!.checkpoints[0];
    const wrong = (await supervisors[1].signed(count))!.checkpoints[0];
    expect(finalDigest).to.equal(honest.stateDigest);
    expect(wrong.chainHead).to.equal(finalHead);
    expect(wrong.stateDigest).to.not.equal(finalDigest);
    const last = (await newlyFinalized()).at(-1)!;
    expect(last.recordCount).to.equal(count);
    expect(last.signers).to.not.include(address(1));
    // One checkpoint per count, so it is wrong but not an equivocator.
    expect(await d.quorum.isEquivocator(1, address(1))).to.equal(false);
  });
});
