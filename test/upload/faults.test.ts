/**
 * The Uploader on an imperfect network: a `hardhat node` behind the fault proxy
 * (test/helpers/fault-proxy.ts), a recorder key signing locally (eth_sendRawTransaction).
 * Every record must be on chain exactly once, read back from the ledger's Recorded logs.
 */
import { join } from "node:path";

import { expect } from "chai";
import { Contract, ContractFactory, JsonRpcProvider, Wallet, id, type InterfaceAbi } from "ethers";
import { artifacts } from "hardhat";

import { isError } from "../../src/errors.js";
import { Uploader, type UploadedRecord, type UploaderConfigInput } from "../../src/upload/uploader.js";
import { expectRejects } from "../helpers/errors.js";
import { FAULT_KINDS, startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";
import { startHardhatNode, type Running } from "../helpers/processes.js";

/** Keys of the public test mnemonic (funded on hardhat node): the admin/regulator, the recorder. */
const ADMIN_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const RECORDER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const RECORDED = id("Recorded(bytes32,uint32,bytes32)");

describe("Uploader on an imperfect network (hardhat node behind the fault proxy)", function () {
  this.timeout(120_000);
  let node: Running & { url: string };
  let proxy: FaultProxy;
  let direct: JsonRpcProvider;
  let ledger: string;
  let ledgerAbi: InterfaceAbi;
  let admin: Wallet;
  let adminNonce: number;
  let merchants = 0;

  before(async function () {
    node = await startHardhatNode();
    proxy = await startFaultProxy({ target: node.url, hangMs: 60_000, delayMs: 1_500 });
    direct = new JsonRpcProvider(node.url, undefined, { staticNetwork: true });
    admin = new Wallet(ADMIN_KEY, direct);
    const artifact = await artifacts.readArtifact("PrepaidLedger");
    ledgerAbi = artifact.abi;
    adminNonce = await direct.getTransactionCount(admin.address);
    const contract = await new ContractFactory(artifact.abi, artifact.bytecode, admin).deploy(admin.address, admin.address, 0, 3_600, { nonce: adminNonce++ });
    await contract.waitForDeployment();
    ledger = await contract.getAddress();
  });

  after(async function () {
    direct?.destroy();
    await proxy?.stop();
    await node?.stop();
  });

  /** A newly registered merchant and an Uploader for it that talks through the proxy. */
  async function merchant(overrides: Partial<UploaderConfigInput> = {}) {
    const m = ++merchants;
    const registry = new Contract(ledger, ledgerAbi, admin);
    await (await registry.getFunction("registerMerchant")(m, new Wallet(RECORDER_KEY).address, { nonce: adminNonce++ })).wait();
    const provider = new JsonRpcProvider(proxy.url, undefined, { staticNetwork: true, batchMaxCount: 1, pollingInterval: 50 });
    const config: UploaderConfigInput = {
      ledger,
      merchantId: m,
      regulatorPublicKey: REGULATOR_PUB,
      journalPath: join(tempDir("faults"), "journal.jsonl"),
      batchSize: 2,
      rpcTimeoutMs: 1_000,
      pollingIntervalMs: 50,
      finalityTimeoutMs: 30_000,
      ...overrides,
    };
    const signer = new Wallet(RECORDER_KEY, provider);
    return { m, config, signer, provider, uploader: await Uploader.open(config, signer) };
  }

  /** The commitments of merchant `m`'s records on chain, in ledger order. */
  async function onChain(m: number): Promise<string[]> {
    // Raw: ethers' getLogs would answer a repeated query from its 250 ms cache.
    const filter = { address: ledger, fromBlock: "0x0", toBlock: "latest", topics: [RECORDED, null, "0x" + m.toString(16).padStart(64, "0")] };
    const logs = (await direct.send("eth_getLogs", [filter])) as { topics: string[] }[];
    return logs.map((l) => l.topics[3]);
  }

  /** Calls `upload()` until it succeeds (at most `tries` times); every failure must be retryable. */
  async function untilLanded(uploader: Uploader, records: Parameters<Uploader["upload"]>[0], tries = 4) {
    const errors: string[] = [];
    for (let i = 0; i < tries; i++) {
      try {
        return { records: await uploader.upload(records), errors };
      } catch (e) {
        expect(isError(e), String(e)).to.equal(true);
        expect((e as { retryable: boolean }).retryable, String(e)).to.equal(true);
        errors.push((e as { code: string }).code);
      }
    }
    expect.fail(`still failing after ${tries} calls: ${errors.join(", ")}`);
  }

  const strip = (rs: UploadedRecord[]) => rs.map((r) => [r.recordIndex, r.commitment, r.txHash, r.salt]);

  /**
   * One batch at a time (the default, with preflight) and two in flight (no preflight): the fault
   * hits the first batch of the call, or the second, sent while the first is in flight.
   */
  const variants = [
    { label: "", overrides: {}, records: 3, nth: 1 },
    { label: ", 2 in flight, first batch", overrides: { preflight: false, inFlight: 2 }, records: 5, nth: 1 },
    { label: ", 2 in flight, middle batch", overrides: { preflight: false, inFlight: 2 }, records: 5, nth: 2 },
  ];

  describe("a retry after a fault never books a record twice", function () {
    for (const v of variants) {
      // Where a batch landed is read from its BatchRecorded log (eth_getLogs), and from the
      // receipt when that fails or finds nothing: the receipt cases fail the log question first.
      for (const method of ["eth_sendRawTransaction", "eth_getLogs", "eth_getTransactionReceipt"]) {
        for (const kind of FAULT_KINDS) {
          it(`${kind} on ${method}${v.label}`, async function () {
            const { m, config, signer, uploader } = await merchant(v.overrides);
            const first = await uploader.upload(openings(m, 2, 100_000n));
            const more = Array.from({ length: v.records }, (_, i) => detail(m, 2, card(i % 2), 1_000n + BigInt(i), 100 + i));
            if (method === "eth_getTransactionReceipt") {
              let logs = 0;
              proxy.failNext("http502", { method: "eth_getLogs", match: () => ++logs === v.nth });
            }
            // The receipt asked is the nth batch's, the first receipt of the call.
            const nth = method === "eth_getTransactionReceipt" ? 1 : v.nth;
            let seen = 0;
            proxy.failNext(kind, { method, match: () => ++seen === nth });
            const fault = await uploader.upload(more).then(
              (records) => ({ records, error: undefined }),
              (error: unknown) => ({ records: undefined, error }),
            );
            if (fault.error !== undefined) {
              expect(isError(fault.error), String(fault.error)).to.equal(true);
              expect((fault.error as { retryable: boolean }).retryable, String(fault.error)).to.equal(true);
            }
            // As the docs say: call again with the same records (here with the earlier ones too).
            const again = await untilLanded(uploader, [...openings(m, 2, 100_000n), ...more]);
            expect(strip(again.records.slice(0, 2))).to.deep.equal(strip(first));
            if (fault.records !== undefined) expect(strip(again.records.slice(2))).to.deep.equal(strip(fault.records));

            // And after a restart, with the same journal: still the first outcome.
            uploader.close();
            const restarted = await Uploader.open(config, signer);
            expect(strip(await restarted.upload([...openings(m, 2, 100_000n), ...more]))).to.deep.equal(strip(again.records));
            restarted.close();

            const chain = await onChain(m);
            expect(chain).to.have.length(2 + v.records);
            expect(chain).to.deep.equal(again.records.map((r) => r.commitment));
            expect(proxy.pendingForced()).to.equal(0);
          });
        }
      }
    }
  });

  it("finds a batch whose send answer was lost in seconds, not ethers' 300 s", async function () {
    this.timeout(30_000);
    const { m, uploader } = await merchant({ rpcTimeoutMs: 2_000 });
    proxy.failNext("hang", { method: "eth_sendRawTransaction" }); // forwarded, mined, never answered
    const started = Date.now();
    const records = await uploader.upload(openings(m, 3));
    expect(Date.now() - started).to.be.below(10_000);
    expect(await onChain(m)).to.deep.equal(records.map((r) => r.commitment));
    uploader.close();
  });

  it("never wedges: after a batch failed to land, the next upload of other records sends it first, then them", async function () {
    const { m, uploader } = await merchant();
    await uploader.upload(openings(m, 2, 100_000n));
    const a = detail(m, 2, card(0), 500n, 10);
    proxy.failNext("drop", { method: "eth_sendRawTransaction" }); // journaled, never reached the node
    const e = await expectRejects(uploader.upload([a]), "RPC_ERROR");
    expect(e.retryable).to.equal(true);
    expect(e.details).to.include({ landed: 0, notLanded: 1 });
    expect(await onChain(m)).to.have.length(2);

    // A clean network, and other records: the pending batch goes first, in order.
    const b = detail(m, 2, card(1), 700n, 11);
    const [later] = await uploader.upload([b]);
    const [earlier] = await uploader.upload([a]); // a retry of `a` returns its outcome
    expect([earlier.sequence, later.sequence]).to.deep.equal([2n, 3n]);
    expect(earlier.recordIndex < later.recordIndex).to.equal(true);
    const chain = await onChain(m);
    expect(chain).to.have.length(4);
    expect(chain.slice(2)).to.deep.equal([earlier.commitment, later.commitment]);
    expect(await uploader.recover()).to.deep.equal([]);
    uploader.close();
  });

  it("refuses a record that reuses an identity with other details, and sends nothing", async function () {
    const { m, uploader } = await merchant();
    const [sold] = await uploader.upload(openings(m, 1, 100_000n));
    const e = await expectRejects(uploader.upload([{ ...openings(m, 1, 100_000n)[0], amount: 99_000n }]), "RECORD_CONFLICT");
    expect(e.details).to.include({ index: 0, sequence: "1" });
    await expectRejects(uploader.upload([detail(m, 2, card(0), 5n, 1), detail(m, 2, card(0), 6n, 1)]), "INVALID_ARGUMENT");
    expect(await onChain(m)).to.deep.equal([sold.commitment]);
    uploader.close();
  });

  it("reports a node failure on its reads as a typed retryable error (truncated, 502, unknown block)", async function () {
    const { m, uploader } = await merchant();
    for (const kind of ["truncate", "http502", "unknownBlock"] as const) {
      proxy.failNext(kind, { method: "eth_call" }); // merchantBooks
      const e = await expectRejects(uploader.upload(openings(m, 1, 1_000n, 50)), "RPC_ERROR");
      expect(e.retryable).to.equal(true);
      await new Promise((r) => setTimeout(r, 300)); // past ethers' 250 ms cache of a failed request
    }
    proxy.failNext("truncate", { method: "eth_getLogs" });
    proxy.failNext("lose", { method: "eth_sendRawTransaction" });
    const records = await untilLanded(uploader, openings(m, 1, 1_000n, 50));
    expect(await onChain(m)).to.deep.equal(records.records.map((r) => r.commitment));
    uploader.close();
  });
});
