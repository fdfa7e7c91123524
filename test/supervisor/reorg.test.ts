import { rmSync } from "node:fs";
import type { Server } from "node:http";
import { join } from "node:path";

import { expect } from "chai";
import { JsonRpcProvider, Network, Wallet } from "ethers";

import { PROVIDER_OPTIONS, deploySupervision, finalCheckpoint, lastFinal, ledgerHeadAt, type Deployment } from "../../scripts/lib/supervision-network.js";
import { PrepaidLedgerError } from "../../src/errors.js";
import { packBatch } from "../../src/ledger/codec.js";
import { serveSupervisor } from "../../src/supervisor/http.js";
import { SupervisorNode, packCheckpoint, type SupervisorConfigInput } from "../../src/supervisor/node.js";
import { toSupervisorError } from "../../src/supervisor/revert.js";
import { sealBatch } from "../../src/upload/sealing.js";
import { FAULT_KINDS, startFaultProxy } from "../helpers/fault-proxy.js";
import { REGULATOR_KEY, REGULATOR_PUB, openings, tempDir } from "../helpers/ledger.js";
import { freePort, type Running } from "../helpers/processes.js";
import { mine, reorg, rpc, startReorgAnvil } from "../helpers/reorg.js";

const M = 1;

/**
 * Four in-process supervisors (3 of 4 must sign) on anvil (`--prune-history=400`, so
 * `anvil_reorg` works), ticked by the test round by round: what each saw is exact.
 */
describe("SupervisorNode under reorgs (anvil, 4 in-process supervisors)", function () {
  this.timeout(60_000);
  let anvil: Running & { url: string };
  let provider: JsonRpcProvider;
  const servers: Server[] = [];
  const dirs: string[] = [];

  before(async function () {
    anvil = await startReorgAnvil();
    provider = new JsonRpcProvider(anvil.url, undefined, PROVIDER_OPTIONS);
  });

  afterEach(async function () {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  after(async function () {
    provider?.destroy();
    await anvil?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh ledger and quorum, and four supervisors (dev accounts 10..13, funded on anvil) serving on 127.0.0.1. */
  async function network(overrides: Partial<SupervisorConfigInput>, nodesVia: JsonRpcProvider = provider) {
    const d = await deploySupervision(provider, { supervisors: 4, threshold: 3, merchants: 1 });
    const ports = await Promise.all(d.supervisors.map(() => freePort()));
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const dir = tempDir("supervisor-reorg");
    dirs.push(dir);
    const nodes: SupervisorNode[] = [];
    /** Opens supervisor `i` (again: the same key, state folder and settings, as after a restart). */
    const open = (s: (typeof d.supervisors)[number]) =>
      SupervisorNode.open(
        {
          ledger: d.ledgerAddress,
          quorum: d.quorumAddress,
          index: s.index,
          decryptionKey: s.index === 0 ? REGULATOR_KEY : undefined,
          peers: urls.filter((_, j) => j !== s.index),
          stateDir: join(dir, String(s.index)),
          fromBlock: d.fromBlock,
          checkpointEvery: 100,
          checkpointIntervalMs: 50,
          staggerMs: 0,
          ...overrides,
        },
        new Wallet(s.key, nodesVia),
      );
    for (const s of d.supervisors) {
      await rpc(anvil.url, "anvil_setBalance", [s.address, "0x56BC75E2D63100000"]); // 100 ETH
      const node = await open(s);
      servers.push(await serveSupervisor(node, ports[s.index]));
      nodes.push(node);
    }
    let sequence = 0n;
    let opened = 0;
    /** Records a batch of `count` new cards under the merchant's next sequence number. */
    const upload = async (count: number) => {
      const sealed = await sealBatch(openings(M, count, 100_000n, opened), [{ publicKey: REGULATOR_PUB, role: "regulator" }]);
      const recorder = d.merchants[0].recorder;
      await (await d.ledger.connect(recorder).recordBatch(M, ++sequence, sealed.envelope, packBatch(sealed.records))).wait();
      opened += count;
    };
    /** After a reorg removed batches: the chain's next sequence number again. */
    const resync = async () => {
      sequence = (await d.ledger.merchantBooks(M)).nextSequence - 1n;
      opened = Number((await d.ledger.chainHead())[0]);
    };
    return { d, nodes, upload, resync, reopen: (i: number) => open(d.supervisors[i]) };
  }

  /** Ticks every node once, as run() would (an error is the node's to retry next round). */
  const errors: string[] = [];
  /** Every error a tick threw, as the node classifies it. */
  const failures: unknown[] = [];
  async function tickAll(nodes: SupervisorNode[]) {
    for (const n of nodes) {
      await n.tick().catch((e: unknown) => {
        const error = toSupervisorError(e);
        failures.push(error);
        errors.push(`node ${n.config.index}: ${(error as Error).message}`);
      });
    }
  }

  /** Ticks (mining `mineEach` empty blocks after each round) until `done()`; fails with every node's status. */
  async function until(nodes: SupervisorNode[], done: () => Promise<boolean>, what: string, o: { rounds?: number; mineEach?: number } = {}) {
    for (let r = 0; r < (o.rounds ?? 30); r++) {
      await tickAll(nodes);
      if (await done()) return;
      if (o.mineEach) await mine(anvil.url, o.mineEach);
      await new Promise((res) => setTimeout(res, 60));
    }
    throw new Error(`${what}: not within ${o.rounds ?? 30} rounds\n${JSON.stringify(nodes.map((n) => n.status()), null, 1)}\n${errors.slice(-8).join("\n")}`);
  }

  const headNumber = async () => Number(await rpc<string>(anvil.url, "eth_blockNumber"));
  const finalIs = (d: Deployment, n: bigint) => async () => (await lastFinal(d.quorum)) === n;

  it("with confirmations 0: a reorg removes a signed, final checkpoint; they drop it and finalize on the new branch without a restart", async function () {
    const { d, nodes, upload, resync } = await network({ confirmations: 0 });
    await upload(6);
    await until(nodes, finalIs(d, 6n), "checkpoint 6 final");
    const forkBlock = await headNumber();

    await upload(4);
    await until(nodes, finalIs(d, 10n), "checkpoint 10 final");
    expect(nodes.filter((n) => n.signedFor(10n) !== undefined).length).to.be.at.least(3);

    // Everything since block `forkBlock` goes: the batch, its mark, the finalization.
    await reorg(anvil.url, (await headNumber()) - forkBlock);
    expect((await d.ledger.chainHead())[0]).to.equal(6n);
    expect(await lastFinal(d.quorum)).to.equal(6n);

    await tickAll(nodes);
    for (const n of nodes) {
      const s = n.status();
      expect(n.signedFor(10n), `node ${s.index} still serves the dead checkpoint`).to.equal(undefined);
      expect(s, JSON.stringify(s)).to.include({ recordsFollowed: "6", refusal: undefined });
      expect(s.reorgs).to.equal(1);
      expect(s.lastReorg).to.match(/deeper than 0 confirmations: replay rebuilt/);
      expect(["0", "6"], "a node that met mark 6 after it was final did not sign it").to.include(s.lastSigned);
    }

    // New records on the new branch: marked, signed and finalized by the same nodes.
    await resync();
    await upload(3);
    await until(nodes, finalIs(d, 9n), "checkpoint 9 final on the new branch");
    await upload(5);
    await until(nodes, finalIs(d, 14n), "checkpoint 14 final on the new branch");
    const [count, head] = await d.ledger.chainHead();
    const final = await finalCheckpoint(d.quorum);
    expect([final.recordCount, final.chainHead]).to.deep.equal([count, head]);
    for (const n of nodes) expect(n.status().refusal).to.equal(undefined);
  });

  it("with confirmations 3: a mark that a 2-block reorg removes is never signed; its records are marked again and finalized", async function () {
    const { d, nodes, upload } = await network({ confirmations: 3 });
    await upload(6);
    await until(nodes, finalIs(d, 6n), "checkpoint 6 final", { mineEach: 1, rounds: 40 });

    await upload(4);
    // Before the batch settles: the settled replay is not at the ledger's head, so node 0 marks
    // the head (in the head block) rather than signing it unmarked.
    await new Promise((res) => setTimeout(res, 60)); // the checkpoint interval (50 ms) passed
    await tickAll(nodes);
    expect(await d.ledger.markedHead(10n)).to.not.equal(`0x${"0".repeat(64)}`);
    const markBlock = await headNumber();
    await mine(anvil.url, 1);
    await tickAll(nodes);
    await tickAll(nodes);
    for (const n of nodes) {
      const s = n.status();
      // The mark is 1 block deep: followed (nobody marks again), not signed.
      expect(n.signedFor(10n), `node ${s.index} signed an unsettled mark`).to.equal(undefined);
      expect(["0", "6"]).to.include(s.lastSigned);
      expect(s, JSON.stringify(s)).to.include({ lastMarked: "10", confirmations: 3, settledBlock: markBlock - 2 });
    }

    await reorg(anvil.url, 2); // the mark's block and the one after it
    expect(await d.ledger.markedHead(10n)).to.equal(`0x${"0".repeat(64)}`);
    await tickAll(nodes); // node 0 sees the reorg first, forgets the mark, and marks its records again
    expect(await d.ledger.markedHead(10n)).to.not.equal(`0x${"0".repeat(64)}`);
    for (const n of nodes) {
      const s = n.status();
      expect(s, JSON.stringify(s)).to.include({ reorgs: 1 });
      expect(["0", "6"]).to.include(s.lastSigned);
      expect(n.signedFor(10n)).to.equal(undefined);
      expect(s.lastReorg).to.match(/^depth 2 blocks after block \d+, unsettled blocks only$/);
    }

    await until(nodes, finalIs(d, 10n), "checkpoint 10 final on the new branch", { mineEach: 1, rounds: 40 });
    const { chainHead: head } = await finalCheckpoint(d.quorum);
    expect(head).to.equal(await ledgerHeadAt(d.ledger, 10n));
    for (const n of nodes) expect(n.status()).to.include({ reorgs: 1, refusal: undefined });
  });

  it("a node down through a reorg withdraws, at its next start, what it signed for a mark the chain no longer has", async function () {
    const { d, nodes, upload, reopen } = await network({ confirmations: 0 });
    await upload(6);
    await until(nodes, finalIs(d, 6n), "checkpoint 6 final");
    const forkBlock = await headNumber();
    await upload(4);
    // Only nodes 0 and 1 run: they mark and sign 10, but two are not a quorum.
    await until(nodes.slice(0, 2), async () => nodes[1].signedFor(10n) !== undefined, "nodes 0 and 1 to sign 10");
    expect(nodes[0].signedFor(10n)).to.not.equal(undefined);
    expect(await lastFinal(d.quorum)).to.equal(6n);

    await reorg(anvil.url, (await headNumber()) - forkBlock); // while node 0 is "down"
    const restarted = await reopen(0);
    expect(restarted.signedFor(10n), "loaded from disk").to.not.equal(undefined);
    await restarted.tick();
    expect(restarted.signedFor(10n), "a checkpoint the chain no longer has, still served").to.equal(undefined);
    expect(restarted.status().lastReorg).to.match(/record 10, signed before this start, is no longer on the chain/);
  });

  it("through a seeded faulty JSON-RPC proxy they still finalize, and every failure they meet is typed and retryable", async function () {
    const proxy = await startFaultProxy({ target: anvil.url, seed: 7, hangMs: 2_000 });
    const through = new JsonRpcProvider(proxy.url, undefined, { ...PROVIDER_OPTIONS, staticNetwork: Network.from(31337) });
    try {
      const { d, nodes, upload } = await network({ confirmations: 0, rpcTimeoutMs: 400 }, through);
      failures.length = 0;
      for (const kind of FAULT_KINDS) proxy.failNext(kind); // each kind at least once…
      proxy.setRates({ drop: 0.01, lose: 0.01, http502: 0.01, truncate: 0.01, unknownBlock: 0.01, hang: 0.005 }); // …and more at random
      await upload(6);
      await until(nodes, finalIs(d, 6n), "checkpoint 6 final through the faulty proxy", { rounds: 60 });
      await upload(4);
      await until(nodes, finalIs(d, 10n), "checkpoint 10 final through the faulty proxy", { rounds: 60 });
      proxy.setRates({});
      for (const kind of FAULT_KINDS) expect(proxy.counts[kind], `${kind}: ${JSON.stringify(proxy.counts)}`).to.be.at.least(1);
      const untyped = failures.filter((e) => !(e instanceof PrepaidLedgerError) || !e.retryable);
      expect(untyped.map((e) => String((e as Error).message ?? e)), "failures neither typed nor retryable").to.deep.equal([]);
      expect(failures.length, "the faults reached the nodes").to.be.at.least(1);
    } finally {
      through.destroy();
      await proxy.stop();
    }
  });

  it("names the quorum's custom errors with their values, and says a node failure is retryable", async function () {
    const { d } = await network({});
    const checkpoint = { ledger: d.ledgerAddress, recordCount: 1262n, chainHead: `0x${"11".repeat(32)}`, stateDigest: `0x${"22".repeat(32)}`, setId: 1n };
    const members = [...(await d.quorum.signingMembers(1n))];
    const packed = packCheckpoint({ ...checkpoint, recordCount: "1262", setId: "1" }, members, new Map());
    const refused = toSupervisorError(await d.quorum.finalizeRecords.staticCall(packed).catch((e: unknown) => e));
    expect(refused).to.be.instanceOf(PrepaidLedgerError);
    const e = refused as PrepaidLedgerError;
    const [booked] = await d.ledger.chainHead();
    expect([e.code, e.retryable, e.details.error, e.details.args]).to.deep.equal(["LEDGER_REVERTED", false, "QuorumBeyondLedger", { recordCount: 1262n, ledgerCount: booked }]);
    expect(e.shortMessage).to.equal(`the quorum refused the call: QuorumBeyondLedger(recordCount=1262, ledgerCount=${booked})`);

    const down = new JsonRpcProvider(`http://127.0.0.1:${await freePort()}`, undefined, { ...PROVIDER_OPTIONS, staticNetwork: Network.from(31337) });
    const failed = toSupervisorError(await d.quorum.connect(down).lastFinal().catch((x: unknown) => x)) as PrepaidLedgerError;
    down.destroy();
    expect([failed.code, failed.retryable]).to.deep.equal(["RPC_ERROR", true]);
  });

  it("gives up on a JSON-RPC call that never answers after --rpc-timeout, as a retryable TIMEOUT", async function () {
    const { d } = await network({});
    const proxy = await startFaultProxy({ target: anvil.url, hangMs: 20_000 });
    const through = new JsonRpcProvider(proxy.url, undefined, PROVIDER_OPTIONS);
    try {
      const node = await SupervisorNode.open(
        { ledger: d.ledgerAddress, quorum: d.quorumAddress, index: 0, stateDir: dirs[dirs.push(tempDir("supervisor-timeout")) - 1], fromBlock: d.fromBlock, rpcTimeoutMs: 500 },
        new Wallet(d.supervisors[0].key, through),
      );
      await node.tick();
      for (const method of ["eth_call", "eth_blockNumber", "eth_getBlockByNumber"]) {
        await mine(anvil.url, 1); // a new block: every kind of call is made
        proxy.failNext("hang", { method });
        const started = Date.now();
        const e = (await node.tick().then(() => undefined, (x: unknown) => toSupervisorError(x))) as PrepaidLedgerError | undefined;
        expect(e, method).to.be.instanceOf(PrepaidLedgerError);
        expect([e!.code, e!.retryable], method).to.deep.equal(["TIMEOUT", true]);
        expect(Date.now() - started, method).to.be.lessThan(3_000);
        await node.tick(); // and the next round goes through
      }
      // A log query that never answers is asked again after the timeout, within the round.
      await mine(anvil.url, 1);
      proxy.failNext("hang", { method: "eth_getLogs" });
      const started = Date.now();
      await node.tick();
      expect(Date.now() - started).to.be.lessThan(3_000);
      expect(proxy.counts.hang).to.equal(4);
    } finally {
      through.destroy();
      await proxy.stop();
    }
  });
});
