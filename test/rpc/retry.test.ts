/**
 * Backoff when a node stays down (issue 10 item 5): `retryingRpc` calls again after waits that
 * double while the node is unreachable, answers 502 or hangs, passes a refusal on at once, and
 * after its attempts throws one typed RPC_ERROR "stayed down" with the count — through the fault
 * proxy in front of a real node, and against a port nobody listens on.
 */
import { expect } from "chai";

import { isError } from "../../src/errors.js";
import { httpJsonRpc, isNodeDown, retryingRpc } from "../../src/rpc.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";
import { freePort, startHardhatNode } from "../helpers/processes.js";

describe("rpc: backoff when a node stays down", function () {
  this.timeout(120_000);
  let node: Awaited<ReturnType<typeof startHardhatNode>>;

  before(async function () {
    node = await startHardhatNode();
  });
  after(async function () {
    await node?.stop();
  });

  for (const kind of ["drop", "http502", "hang"] as const) {
    it(`waits out ${kind} faults with doubling waits, then answers`, async function () {
      const proxy = await startFaultProxy({ target: node.url, hangMs: 2_000 });
      try {
        proxy.failNext(kind, { method: "eth_chainId", count: 2 });
        const waits: number[] = [];
        const rpc = retryingRpc(httpJsonRpc(proxy.url, { timeoutMs: 500 }), {
          baseDelayMs: 10,
          onRetry: (r) => waits.push(r.delayMs),
        });
        expect(await rpc.send("eth_chainId", [])).to.equal("0x7a69");
        expect(waits).to.deep.equal([10, 20]);
        expect(proxy.counts[kind]).to.equal(2);
      } finally {
        await proxy.stop();
      }
    });
  }

  it("passes a node's refusal on at once (no retry)", async function () {
    const proxy = await startFaultProxy({ target: node.url });
    try {
      proxy.failNext("unknownBlock", { method: "eth_getBlockByNumber" });
      let retries = 0;
      const rpc = retryingRpc(httpJsonRpc(proxy.url), { baseDelayMs: 10, onRetry: () => retries++ });
      const e = await rpc.send("eth_getBlockByNumber", ["latest", false]).catch((x: unknown) => x);
      expect(isError(e, "RPC_ERROR")).to.equal(true);
      expect(isNodeDown(e)).to.equal(false);
      expect(retries).to.equal(0);
    } finally {
      await proxy.stop();
    }
  });

  it("gives up after its attempts with one typed error naming them, the node's URL never in it", async function () {
    const port = await freePort();
    const slept: number[] = [];
    const rpc = retryingRpc(httpJsonRpc(`http://127.0.0.1:${port}/secret-api-key`), {
      attempts: 5,
      baseDelayMs: 100,
      maxDelayMs: 300,
      sleep: async (ms) => void slept.push(ms),
    });
    const e = await rpc.send("eth_blockNumber", []).catch((x: unknown) => x);
    expect(isError(e, "RPC_ERROR")).to.equal(true);
    if (!isError(e, "RPC_ERROR")) return;
    expect(e.shortMessage).to.equal("the JSON-RPC node stayed down: 5 attempts over 0.9 s");
    expect(e.details).to.include({ attempts: 5, waitedMs: 900, method: "eth_blockNumber", endpoint: `http://127.0.0.1:${port}` });
    expect(e.retryable).to.equal(true);
    expect(slept).to.deep.equal([100, 200, 300, 300]);
    expect(e.message).not.to.include("secret-api-key");
    expect(() => retryingRpc(httpJsonRpc("http://127.0.0.1:1"), { attempts: 0 })).to.throw().that.satisfies((x: unknown) => isError(x, "INVALID_ARGUMENT"));
  });
});
