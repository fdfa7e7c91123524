import { expect } from "chai";

import { fetchLogPages, type JsonRpcLike, type LogPage, type RpcLog } from "../../src/regulator/logs.js";

/** A node whose blocks 0..99 hold one log each and blocks 100.. hold 1,000 each; it records the spans asked. */
function node(spans: number[]): JsonRpcLike {
  return {
    send: async (_method, params) => {
      const q = params[0] as { fromBlock: string; toBlock: string };
      const from = Number(BigInt(q.fromBlock));
      const to = Number(BigInt(q.toBlock));
      spans.push(to - from + 1);
      const logs: RpcLog[] = [];
      for (let b = from; b <= to; b++) {
        for (let i = 0; i < (b < 100 ? 1 : 1_000); i++) {
          logs.push({ address: "0x", blockNumber: "0x" + b.toString(16), transactionHash: "0x", logIndex: "0x" + i.toString(16), topics: [], data: "0x" });
        }
      }
      return logs;
    },
  };
}

describe("fetchLogPages", function () {
  it("grows a page at most twice over a sparse stretch, so a dense stretch after it is not asked for at once", async function () {
    const spans: number[] = [];
    const pages: LogPage[] = [];
    for await (const page of fetchLogPages(node(spans), { address: "0x", fromBlock: 0n, toBlock: 299n, maxBlockRange: 10_000 })) {
      pages.push(page);
    }
    for (let i = 1; i < spans.length; i++) expect(spans[i]).to.be.at.most(spans[i - 1] * 2);
    // Covers every block once, in order, and never asks for more than ~2 pages' worth of the dense part.
    expect(pages.map((p) => [p.fromBlock, p.toBlock])).to.deep.equal(
      pages.map((p, i) => [i === 0 ? 0n : pages[i - 1].toBlock + 1n, p.toBlock]),
    );
    expect(pages.at(-1)!.toBlock).to.equal(299n);
    expect(Math.max(...pages.map((p) => p.logs.length))).to.be.at.most(128_000);
    expect(pages.reduce((n, p) => n + p.logs.length, 0)).to.equal(100 + 200 * 1_000);
  });
});
