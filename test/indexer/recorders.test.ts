/**
 * Who may write for each merchant, from the registry's events: the index's view of a merchant's
 * recorder keys and pending offers equals the contract's roles and offers after every kind of
 * change (register, offer + accept, offer + reject, offer left pending, offer carried out by
 * anyone after the delay, remove, renounce); a reorg that drops an addition rolls it back; an
 * index of schema version 2 is upgraded in place and says its recorder history is incomplete.
 */
import { join } from "node:path";

import { expect } from "chai";

import { Indexer } from "../../src/indexer/indexer.js";
import type { IndexQueries } from "../../src/indexer/queries.js";
import { SCHEMA_VERSION, hasTable } from "../../src/indexer/schema.js";
import { openIndex } from "../../src/indexer/open.js";
import { httpJsonRpc } from "../../src/rpc.js";
import { tempDir } from "../helpers/ledger.js";
import { blockNumber, mine, reorg, rpc, useReorgAnvil } from "../helpers/reorg.js";
import { indexDb, sqliteOnly } from "../helpers/index-db.js";

const DELAY = 3_600;
const M = 5;

describe("indexer: who may write for each merchant (recorder events)", function () {
  this.timeout(120_000);
  const chain = useReorgAnvil(["--accounts", "10"]);

  async function deploy() {
    const signers = await chain.connection.ethers.getSigners();
    const [admin, regulator] = signers;
    const contract = await chain.connection.ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, DELAY]);
    await contract.waitForDeployment();
    return { contract, address: (await contract.getAddress()).toLowerCase(), admin, regulator, keys: signers.slice(2) };
  }

  const open = (ledger: string, db: string, confirmations = 0) => Indexer.open({ ledger, db, confirmations }, httpJsonRpc(chain.url));

  /** The index's current keys and pending offers equal the contract's, for every candidate key. */
  async function expectEqualsContract(q: IndexQueries, contract: Awaited<ReturnType<typeof deploy>>["contract"], candidates: string[]) {
    const view = q.recorders(M);
    const role = await contract.recorderRole(M);
    for (const k of candidates.map((c) => c.toLowerCase())) {
      const onChain = await contract.hasRole(role, k);
      expect(view.current.some((c) => c.recorder === k), `recorder ${k}`).to.equal(onChain);
      const [regulator, executableAt] = await contract.recorderOffer(M, k);
      const offer = view.pending.find((o) => o.recorder === k);
      if (regulator === "0x0000000000000000000000000000000000000000") expect(offer, `offer of ${k}`).to.equal(undefined);
      else expect([offer?.by, offer?.executableAt]).to.deep.equal([regulator.toLowerCase(), Number(executableAt)]);
    }
    return view;
  }

  it("register, offer + accept, reject, pending offer, remove, renounce, carried out after the delay: the index equals the contract's roles", async function () {
    const { contract, address, regulator, keys } = await deploy();
    const [k1, k2, k3, k4, stranger, k6] = keys;
    const candidates = [k1, k2, k3, k4, stranger, k6].map((k) => k.address);
    const as = (s: typeof k1) => contract.connect(s);
    const db = indexDb(tempDir("index-recorders"), "i.sqlite");
    const indexer = await open(address, db);
    try {
      await (await as(regulator).registerMerchant(M, k1.address)).wait();
      await (await as(regulator).addRecorder(M, k2.address)).wait();
      await (await as(k1).acceptRecorder(M, k2.address)).wait(); // the merchant accepts at once
      await (await as(regulator).addRecorder(M, k3.address)).wait(); // left pending
      await (await as(regulator).addRecorder(M, k4.address)).wait();
      await (await as(k2).rejectRecorder(M, k4.address)).wait(); // the merchant refuses it
      await indexer.sync();
      let view = await expectEqualsContract(indexer.queries(), contract, candidates);
      expect(view.current.map((c) => c.recorder)).to.deep.equal([k1.address, k2.address].map((a) => a.toLowerCase()));
      expect(view.current.map((c) => c.via)).to.deep.equal(["registered", "added"]);
      expect(view.pending.map((o) => [o.recorder, o.executable])).to.deep.equal([[k3.address.toLowerCase(), false]]);
      expect(view.incompleteBefore).to.equal(null);

      await (await as(regulator).removeRecorder(M, k1.address)).wait();
      await (await as(k2).renounceRecorder(M)).wait();
      await indexer.sync();
      view = await expectEqualsContract(indexer.queries(), contract, candidates);
      expect(view.current).to.deep.equal([]); // the merchant lost every key; k3's offer is the way back

      // After the delay, with no recorder left to answer, anyone carries the offer out.
      await rpc(chain.url, "evm_increaseTime", [DELAY + 1]);
      await mine(chain.url, 1);
      await indexer.sync();
      view = indexer.queries().recorders(M);
      expect(view.pending.map((o) => [o.recorder, o.executable])).to.deep.equal([[k3.address.toLowerCase(), true]]);
      await (await as(stranger).acceptRecorder(M, k3.address)).wait();
      await (await as(regulator).addRecorder(M, k6.address)).wait(); // a new offer, pending at the end
      await indexer.sync();
      view = await expectEqualsContract(indexer.queries(), contract, candidates);
      expect(view.current.map((c) => c.recorder)).to.deep.equal([k3.address.toLowerCase()]);
      expect(view.pending.map((o) => o.recorder)).to.deep.equal([k6.address.toLowerCase()]);

      // The history names who did what, in chain order.
      const reg = regulator.address.toLowerCase();
      expect(view.history.map((e) => [e.event, e.recorder, e.actor])).to.deep.equal(
        [
          ["registered", k1, regulator],
          ["offered", k2, regulator],
          ["added", k2, regulator],
          ["offered", k3, regulator],
          ["offered", k4, regulator],
          ["offer_cancelled", k4, k2],
          ["removed", k1, regulator],
          ["removed", k2, k2], // renounced: the key itself
          ["added", k3, regulator],
          ["offered", k6, regulator],
        ].map(([e, k, a]) => [e, (k as typeof k1).address.toLowerCase(), (a as typeof k1).address.toLowerCase()]),
      );
      expect(view.history.every((e) => e.blockNumber > 0 && e.time > 0)).to.equal(true);
      expect(view.history.find((e) => e.event === "offered")!.actor).to.equal(reg);
    } finally {
      indexer.close();
    }
  });

  it("a reorg that drops an addition rolls it back: the key is no recorder in the index, as on the chain", async function () {
    const { contract, address, regulator, keys } = await deploy();
    const [k1, k2] = keys;
    await (await contract.connect(regulator).registerMerchant(M, k1.address)).wait();
    await mine(chain.url, 4); // the registration is settled
    const db = indexDb(tempDir("index-recorders"), "i.sqlite");
    const indexer = await open(address, db, 3);
    try {
      await (await contract.connect(regulator).addRecorder(M, k2.address)).wait();
      await (await contract.connect(k1).acceptRecorder(M, k2.address)).wait();
      await indexer.sync();
      expect(indexer.queries().recorders(M).current.map((c) => c.recorder)).to.deep.equal([k1.address, k2.address].map((a) => a.toLowerCase()));
      // The block of the acceptance is replaced by an empty one: the offer stands again, k2 is no recorder.
      const head = await blockNumber(chain.url);
      await reorg(chain.url, 1);
      const r = await indexer.sync();
      expect(r.reorgs).to.have.length(1);
      expect(r.reorgs[0].fork).to.equal(head - 1);
      const view = await expectEqualsContract(indexer.queries(), contract, [k1.address, k2.address]);
      expect(view.current.map((c) => c.recorder)).to.deep.equal([k1.address.toLowerCase()]);
      expect(view.pending.map((o) => o.recorder)).to.deep.equal([k2.address.toLowerCase()]);
      expect(view.history.map((e) => e.event)).to.deep.equal(["registered", "offered"]);
    } finally {
      indexer.close();
    }
  });

  it("an index of schema version 2 is upgraded in place and says which blocks' recorder events it lacks until --repair", async function () {
    sqliteOnly(this); // an SQLite file of an older version: PostgreSQL indexes start at version 6
    const { contract, address, regulator, keys } = await deploy();
    await (await contract.connect(regulator).registerMerchant(M, keys[0].address)).wait();
    const db = indexDb(tempDir("index-recorders"), "i.sqlite");
    const first = await open(address, db);
    const settled = (await first.sync()).settledBlock;
    first.close();
    // Make it the index an older version wrote: no recorder table, user_version 2.
    const raw = openIndex(db);
    raw.exec("DROP TABLE recorder_events; PRAGMA user_version = 2");
    raw.close();
    const readOnly = openIndex(db, { readOnly: true }); // an old index stays readable
    expect(hasTable(readOnly, "recorder_events")).to.equal(false);
    readOnly.close();
    const indexer = await open(address, db);
    try {
      const upgraded = openIndex(db, { readOnly: true });
      expect(Number((upgraded.prepare("PRAGMA user_version").get() as { user_version: number }).user_version)).to.equal(SCHEMA_VERSION);
      upgraded.close();
      let view = indexer.queries().recorders(M);
      expect([view.current, view.incompleteBefore]).to.deep.equal([[], settled + 1]);
      await (await contract.connect(regulator).addRecorder(M, keys[1].address)).wait();
      await indexer.sync();
      view = indexer.queries().recorders(M);
      expect(view.history.map((e) => e.event)).to.deep.equal(["offered"]); // only what came after the upgrade
      await indexer.repair();
      await indexer.sync();
      view = await expectEqualsContract(indexer.queries(), contract, [keys[0].address, keys[1].address]);
      expect([view.history.map((e) => e.event), view.incompleteBefore]).to.deep.equal([["registered", "offered"], null]);
    } finally {
      indexer.close();
    }
  });
});
