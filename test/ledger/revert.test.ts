/**
 * toLedgerError on real ethers errors: each produced by a real node (hardhat node, anvil) and
 * ethers' JsonRpcProvider, with the faults injected by test/helpers/fault-proxy.ts.
 */
import { expect } from "chai";
import { Contract, ContractFactory, JsonRpcProvider, Wallet, ZeroHash } from "ethers";
import { artifacts } from "hardhat";

import { PrepaidLedgerError } from "../../src/errors.js";
import { toLedgerError } from "../../src/ledger/revert.js";
import { SUPERVISOR_QUORUM_ABI } from "../../src/ledger/quorum-abi.js";
import { startFaultProxy, type FaultKind, type FaultProxy } from "../helpers/fault-proxy.js";
import { startAnvil, startHardhatNode, type Running } from "../helpers/processes.js";

/** The first keys of the public test mnemonic: funded on hardhat node and anvil alike. */
const KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
];

/** Resolves with what `p` rejects with (fails if it resolves). */
async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  expect.fail("expected the call to fail");
}

function classified(e: unknown): PrepaidLedgerError {
  const error = toLedgerError(e, { call: "test" });
  expect(error, `not classified: ${String(e)}`).to.be.instanceOf(PrepaidLedgerError);
  return error as PrepaidLedgerError;
}

async function deploy(url: string) {
  const provider = new JsonRpcProvider(url, undefined, { staticNetwork: true });
  const admin = new Wallet(KEYS[0], provider);
  const ledgerArtifact = await artifacts.readArtifact("PrepaidLedger");
  const quorumArtifact = await artifacts.readArtifact("SupervisorQuorum");
  let nonce = await provider.getTransactionCount(admin.address);
  const ledger = await new ContractFactory(ledgerArtifact.abi, ledgerArtifact.bytecode, admin).deploy(admin.address, admin.address, 0, 3_600, { nonce: nonce++ });
  await ledger.waitForDeployment();
  const address = await ledger.getAddress();
  const quorum = await new ContractFactory(quorumArtifact.abi, quorumArtifact.bytecode, admin).deploy(admin.address, address, [admin.address], 1, 0, 3_600, {
    nonce: nonce++,
  });
  await quorum.waitForDeployment();
  await (await (ledger.connect(admin) as Contract).getFunction("registerMerchant")(1, admin.address, { nonce: nonce++ })).wait();
  provider.destroy();
  return { ledger: address, quorum: await quorum.getAddress(), ledgerAbi: ledgerArtifact.abi, quorumAbi: quorumArtifact.abi };
}

describe("ledger/revert: toLedgerError", function () {
  this.timeout(120_000);

  describe("through the fault proxy (hardhat node)", function () {
    let node: Running & { url: string };
    let proxy: FaultProxy;
    let d: Awaited<ReturnType<typeof deploy>>;

    before(async function () {
      node = await startHardhatNode();
      proxy = await startFaultProxy({ target: node.url, hangMs: 600, delayMs: 100 });
      d = await deploy(node.url);
    });
    after(async function () {
      await proxy?.stop();
      await node?.stop();
    });

    /** A fresh provider per call: ethers caches an identical request's failure for 250 ms. */
    async function through(fault: FaultKind | undefined, method: string, run: (p: JsonRpcProvider, w: Wallet) => Promise<unknown>) {
      const provider = new JsonRpcProvider(proxy.url, undefined, { staticNetwork: true, batchMaxCount: 1 });
      try {
        if (fault !== undefined) proxy.failNext(fault, { method });
        return await caught(run(provider, new Wallet(KEYS[0], provider)));
      } finally {
        provider.destroy();
      }
    }

    const calls: Record<string, [string, (p: JsonRpcProvider, w: Wallet) => Promise<unknown>]> = {
      "eth_call (merchantBooks)": ["eth_call", (p) => new Contract(d.ledger, d.ledgerAbi, p).getFunction("merchantBooks")(1)],
      eth_estimateGas: ["eth_estimateGas", (_p, w) => new Contract(d.ledger, d.ledgerAbi, w).getFunction("markCheckpoint").estimateGas()],
      eth_sendRawTransaction: ["eth_sendRawTransaction", (_p, w) => w.sendTransaction({ to: w.address, value: 1n, gasLimit: 21_000n })],
      eth_getTransactionReceipt: ["eth_getTransactionReceipt", (p) => p.send("eth_getTransactionReceipt", [ZeroHash])],
      eth_getLogs: ["eth_getLogs", (p) => p.getLogs({ address: d.ledger, fromBlock: 0 })],
    };
    const faults: FaultKind[] = ["drop", "lose", "http502", "truncate", "hang", "unknownBlock"];

    for (const [name, [method, run]] of Object.entries(calls)) {
      it(`makes every node fault on ${name} a retryable RPC_ERROR`, async function () {
        const seen: Record<string, string> = {};
        for (const fault of faults) {
          const error = classified(await through(fault, method, run));
          seen[fault] = `${error.code}/${error.retryable}`;
        }
        expect(proxy.pendingForced()).to.equal(0);
        expect(seen).to.deep.equal(Object.fromEntries(faults.map((f) => [f, "RPC_ERROR/true"])));
      });
    }

    it("keeps a revert with data LEDGER_REVERTED, not retryable, with the decoded error", async function () {
      const e = await through(undefined, "", (_p, w) =>
        new Contract(d.ledger, d.ledgerAbi, w).getFunction("recordBatch").estimateGas(1, 7, "0x", "0x01"),
      );
      const error = classified(e);
      expect([error.code, error.retryable, error.details.error]).to.deep.equal(["LEDGER_REVERTED", false, "LedgerSequenceGap"]);
      expect(error.details.args).to.deep.equal({ merchantId: 1n, sequence: 7n, expected: 1n });
    });

    it("decodes another contract's errors with the ABIs it is given", async function () {
      // Nothing packed: not even a record count.
      const e = await through(undefined, "", (_p, w) => new Contract(d.quorum, d.quorumAbi, w).getFunction("finalizeRecords").estimateGas("0x"));
      const bare = classified(e);
      expect([bare.code, bare.retryable, bare.details.error]).to.deep.equal(["LEDGER_REVERTED", false, undefined]);
      expect(bare.details.data).to.match(/^0x[0-9a-f]{8}/);
      const decoded = toLedgerError(e, {}, { abis: [SUPERVISOR_QUORUM_ABI] }) as PrepaidLedgerError;
      expect([decoded.code, decoded.retryable, decoded.details.error, decoded.details.args]).to.deep.equal(["LEDGER_REVERTED", false, "QuorumMalformedCheckpoint", { length: 0n }]);
    });

    it("makes a call at a block the node does not have yet a retryable RPC_ERROR (hardhat node)", async function () {
      const e = await through(undefined, "", async (p) => {
        const head = await p.getBlockNumber();
        const data = new Contract(d.ledger, d.ledgerAbi).interface.encodeFunctionData("merchantBooks", [1]);
        return p.call({ to: d.ledger, data, blockTag: head + 1_000 });
      });
      const error = classified(e);
      expect([error.code, error.retryable]).to.deep.equal(["RPC_ERROR", true]);
    });
  });

  it("makes anvil's BlockOutOfRangeError a retryable RPC_ERROR", async function () {
    const anvil = await startAnvil();
    const provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true });
    try {
      const d = await deploy(anvil.url);
      const data = new Contract(d.ledger, d.ledgerAbi).interface.encodeFunctionData("merchantBooks", [1]);
      const e = await caught(provider.call({ to: d.ledger, data, blockTag: (await provider.getBlockNumber()) + 1_000 }));
      // ethers calls it "missing revert data"; the node's own words are in its answer.
      expect(JSON.stringify((e as { info?: unknown }).info)).to.match(/BlockOutOfRange/i);
      const error = classified(e);
      expect([error.code, error.retryable]).to.deep.equal(["RPC_ERROR", true]);
    } finally {
      provider.destroy();
      await anvil.stop();
    }
  });
});
