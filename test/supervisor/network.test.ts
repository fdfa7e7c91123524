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
    // Each distinct value above `before` is a checkpoint that became final during the traffic.
    // Traffic runs 4 s, and on (up to 20 s) until two did: a loaded machine is slower, not wrong.
    const samples = await flow(4_000);
    const distinct = () => new Set(samples.filter((s) => s > before)).size;
    const end = Date.now() + 16_000;
    while (distinct() < 2 && Date.now() < end) samples.push(...(await flow(1_000)));
    const increases = distinct();
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
    // A checkpoint over records it signed before it died may still become final with its
    // signature (its peers had fetched it); none over the records uploaded after can.
    const after = (await newlyFinalized()).filter((f) => f.recordCount > before);
    expect(after.length).to.be.at.least(1);
    for (const f of after) expect(f.signers, `checkpoint at record ${f.recordCount}`).to.not.include(address(0));
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
    const start = await recordCount(); // every record is final (the previous test)
    await supervisors[1].start(["--fault", "wrong-digest"]);
    // Each supervisor signs the ledger's head when its own interval is due, so the faulty one and
    // the honest ones can pick different heads: traffic runs until they signed one count alike.
    const signedBy1 = new Set<bigint>();
    let shared: { count: bigint; honest: number } | undefined;
    const end = Date.now() + 20_000;
    while (shared === undefined && Date.now() < end) {
      await flow(600);
      const last = (await supervisors[1].status())?.lastSigned;
      if (last !== undefined && BigInt(last) > start) signedBy1.add(BigInt(last));
      for (const count of signedBy1) {
        for (const honest of [0, 2, 3]) if (shared === undefined && (await supervisors[honest].signed(count)) !== undefined) shared = { count, honest };
      }
    }
    expect(shared, `no record count signed by the faulty supervisor (${[...signedBy1].join(", ")}) and an honest one\n${tails()}`).to.not.equal(undefined);
    const count = await recordCount();
    await waitFor(allFinal, `a checkpoint over record ${count}`, 15_000);

    // At the count both signed: the same head, not the same digest.
    const wrong = (await supervisors[1].signed(shared!.count))!.checkpoints[0];
    const honest = (await supervisors[shared!.honest].signed(shared!.count))!.checkpoints[0];
    expect(wrong.chainHead).to.equal(honest.chainHead);
    expect(wrong.stateDigest).to.not.equal(honest.stateDigest);
    // Every checkpoint final since it started carries the honest digest, signed by the three
    // honest supervisors: the wrong signature never counted.
    const { recordCount: finalCount } = await finalCheckpoint(d.quorum);
    expect(finalCount).to.equal(count);
    const fresh = (await newlyFinalized()).filter((f) => f.recordCount > start);
    expect(fresh.length).to.be.at.least(1);
    expect(fresh.at(-1)!.recordCount).to.equal(count);
    const honestSet = [0, 2, 3].map((i) => address(i).toLowerCase()).sort();
    for (const f of fresh) {
      expect(f.signers.map((a) => a.toLowerCase()).sort(), `signers at record ${f.recordCount}`).to.deep.equal(honestSet);
      expect(f.stateDigest).to.equal((await supervisors[0].signed(f.recordCount))!.checkpoints[0].stateDigest);
      const faulty = await supervisors[1].signed(f.recordCount);
      if (faulty !== undefined) expect(faulty.checkpoints[0].stateDigest).to.not.equal(f.stateDigest);
    }
    // One checkpoint per count, so it is wrong but not an equivocator.
    expect(await d.quorum.isEquivocator(1, address(1))).to.equal(false);
  });
});
