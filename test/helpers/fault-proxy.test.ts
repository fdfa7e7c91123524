/**
 * The fault tests' own tools, checked: each fault kind reaches an ethers client as the failure
 * it stands for, forced faults hit only their method, and reorgs change the chain they claim to.
 * (What ethers makes of each kind is the input every classifier in src/ must handle.)
 */
import { expect } from "chai";
import { JsonRpcProvider } from "ethers";

import { startFaultProxy, type FaultKind } from "./fault-proxy.js";
import { startHardhatNode } from "./processes.js";
import { blockHash, blockNumber, mine, reorg, revertTo, rpc, snapshot, startReorgAnvil } from "./reorg.js";

describe("Test tools: fault proxy and reorgs", function () {
  this.timeout(120_000);

  it("anvil_reorg replaces blocks and drops their transactions", async function () {
    const anvil = await startReorgAnvil();
    try {
      const accounts = await rpc<string[]>(anvil.url, "eth_accounts");
      await mine(anvil.url, 5);
      const tx = await rpc<string>(anvil.url, "eth_sendTransaction", [{ from: accounts[0], to: accounts[1], value: "0x1" }]);
      await mine(anvil.url, 2);
      const head = await blockNumber(anvil.url);
      const r = await reorg(anvil.url, 4);
      expect(r.after).to.not.equal(r.before);
      expect(await blockNumber(anvil.url)).to.equal(head);
      expect(await rpc(anvil.url, "eth_getTransactionReceipt", [tx])).to.equal(null);
    } finally {
      await anvil.stop();
    }
  });

  describe("against a hardhat node", function () {
    let node: Awaited<ReturnType<typeof startHardhatNode>>;
    before(async () => (node = await startHardhatNode()));
    after(async () => node.stop());

    it("evm_revert then mining again gives the same heights with new hashes", async function () {
      const snap = await snapshot(node.url);
      await mine(node.url, 3);
      const top = await blockNumber(node.url);
      const old = await blockHash(node.url, top);
      await revertTo(node.url, snap);
      await mine(node.url, 3);
      expect(await blockNumber(node.url)).to.equal(top);
      expect(await blockHash(node.url, top)).to.not.equal(old);
    });

    it("each fault kind reaches ethers as the failure it stands for; forced faults hit only their method", async function () {
      const proxy = await startFaultProxy({ target: node.url, delayMs: 100, hangMs: 60_000 });
      const provider = new JsonRpcProvider(proxy.url, 31337, { staticNetwork: true, batchMaxCount: 1 });
      try {
        const expected: [FaultKind, string][] = [
          ["drop", "ECONNRESET"],
          ["lose", "ECONNRESET"],
          ["http502", "SERVER_ERROR"],
          ["truncate", "UNSUPPORTED_OPERATION"],
          ["unknownBlock", "UNKNOWN_ERROR"],
        ];
        for (const [kind, code] of expected) {
          proxy.failNext(kind, { method: "eth_blockNumber" });
          expect(await provider.send("eth_chainId", [])).to.equal("0x7a69"); // other methods pass
          const e = await provider.send("eth_blockNumber", []).then(() => undefined, (x: unknown) => x as { code?: string });
          expect(e?.code, kind).to.equal(code);
        }
        proxy.failNext("delay", { method: "eth_blockNumber" });
        const started = Date.now();
        expect(Number(await provider.send("eth_blockNumber", []))).to.be.greaterThan(0);
        expect(Date.now() - started).to.be.at.least(90);
        expect(proxy.counts).to.include({ drop: 1, lose: 1, http502: 1, truncate: 1, unknownBlock: 1, delay: 1 });
        expect(proxy.stats.forwarded).to.equal(proxy.stats.requests - 3); // drop, http502, unknownBlock are not
        expect(proxy.pendingForced()).to.equal(0);
      } finally {
        provider.destroy();
        await proxy.stop();
      }
    });

    it("random faults follow the seed: the same seed injects the same faults", async function () {
      const run = async () => {
        const proxy = await startFaultProxy({ target: node.url, seed: 42, rates: { http502: 0.3, unknownBlock: 0.2 } });
        const outcomes: string[] = [];
        for (let i = 0; i < 30; i++) {
          const res = await fetch(proxy.url, { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: i, method: "eth_chainId", params: [] }) });
          outcomes.push(res.status === 502 ? "502" : JSON.stringify(((await res.json()) as { error?: unknown }).error ?? "ok"));
        }
        await proxy.stop();
        return outcomes;
      };
      const a = await run();
      expect(a).to.deep.equal(await run());
      expect(new Set(a).size).to.equal(3);
    });
  });
});
