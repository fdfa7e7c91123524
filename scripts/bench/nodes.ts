/**
 * Records per second over HTTP, against real node processes: Foundry's anvil and a `hardhat node`,
 * each started here on 127.0.0.1 and stopped before this returns. The same work as
 * throughput.ts (same cards, details and amounts), through the same Uploader and RegulatorReader,
 * but every call crosses JSON-RPC over a socket to another process, as it does in production.
 * Every figure comes from a run whose result was checked on chain, so a broken run throws.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";

import { ContractFactory, JsonRpcProvider } from "ethers";
import { artifacts } from "hardhat";

import { RecordKind } from "../../src/crypto/index.js";
import type { UploaderConfigInput } from "../../src/upload/uploader.js";
import { startAnvil, startHardhatNode } from "../../test/helpers/processes.js";
import type { PrepaidLedger } from "../../types/ethers-contracts/index.js";
import { VERIFY_RUNS, timeUpload, timeVerify, type UploadCase, type VerifyCase } from "./throughput.js";
import { CARDS, MERCHANT, OPENING, RECORDS, benchUploader, consumptions, details } from "./workload.js";

/** What one node did: both upload configurations and the regulator's read. */
export interface NodeCase {
  /** "anvil" or "hardhat node". */
  node: string;
  /** The node's `web3_clientVersion`. */
  clientVersion: string;
  upload: { throughput: UploadCase; default: UploadCase };
  /** Over the ledger the throughput configuration wrote, compareAccounts "none". */
  verify: VerifyCase;
}

/** What {@link benchNodes} measured. */
export interface NodeFigures {
  /** `os.availableParallelism()`: the node process and the client share these. */
  cores: number;
  nodes: NodeCase[];
}


/** See {@link benchNode}; printed with the figures. */
const PROVIDER_OPTIONS = { staticNetwork: true, pollingInterval: 20, batchMaxCount: 1, cacheTimeout: -1 } as const;




/** Runs the whole bench against one node at `url`; throws if any upload or read is wrong. */
async function benchNode(node: string, url: string, journals: string): Promise<NodeCase> {
  // Not ethers' defaults, which would time ethers rather than the node: they poll every 4 s (a
  // receipt would wait for the poll), hold every request 10 ms to batch it with others (the
  // uploader has one request in flight at a time, so each waits for nothing: 30-60 ms a batch
  // here), and keep each answer 250 ms (a read right after an upload could miss its last blocks).
  const provider = new JsonRpcProvider(url, undefined, PROVIDER_OPTIONS);
  try {
    const clientVersion = String(await provider.send("web3_clientVersion", []));
    // The node's unlocked dev accounts sign (eth_sendTransaction), as in throughput.ts.
    const [admin, regulator, recorder] = await Promise.all([0, 1, 2].map((i) => provider.getSigner(i)));
    const artifact = await artifacts.readArtifact("PrepaidLedger");
    const factory = new ContractFactory(artifact.abi, artifact.bytecode, admin);

    /** A fresh ledger with the merchant registered, and an uploader for it (journal in `journals`). */
    const setUp = async (label: string, config: Partial<UploaderConfigInput>) => {
      const deployed = await factory.deploy(admin.address, regulator.address, 0, 3_600);
      await deployed.waitForDeployment();
      // The factory is built from the artifact, so the contract has PrepaidLedger's ABI.
      const ledger = deployed as unknown as PrepaidLedger;
      await (await ledger.connect(regulator).registerMerchant(MERCHANT, recorder.address)).wait();
      const address = await ledger.getAddress();
      const uploader = await benchUploader(address, recorder, join(journals, `${node.replace(/\W+/g, "-")}-${label}.jsonl`), config);
      return { ledger, address, uploader };
    };

    /** Opens the cards (not timed), then times `count` consumptions. */
    const uploadCase = async (label: string, config: Partial<UploaderConfigInput>) => {
      const { ledger, address, uploader } = await setUp(label.replace(/\W+/g, "-"), config);
      try {
        await uploader.upload(Array.from({ length: CARDS }, (_, c) => details(RecordKind.TopUp, c, OPENING, c)));
        const measured = await timeUpload(label, ledger, uploader, consumptions(RECORDS, CARDS, 20261126), node);
        return { measured, ledger, address };
      } finally {
        uploader.close();
      }
    };

    const fast = await uploadCase("throughput config", { batchSize: 1_000, preflight: false });
    const byDefault = await uploadCase("default config", {});

    const verify = await timeVerify(fast.ledger, provider, "none", node);
    return {
      node,
      clientVersion,
      upload: { throughput: fast.measured, default: byDefault.measured },
      verify,
    };
  } finally {
    provider.destroy();
  }
}

/** Starts each node in turn, benches it and stops it (also when the bench throws). */
export async function benchNodes(): Promise<NodeFigures> {
  const journals = mkdtempSync(join(tmpdir(), "prepaid-ledger-bench-nodes-"));
  try {
    const nodes: NodeCase[] = [];
    const anvil = await startAnvil();
    try {
      nodes.push(await benchNode("anvil", anvil.url, journals));
    } finally {
      await anvil.stop();
      rmSync(anvil.home, { recursive: true, force: true });
    }
    const hardhat = await startHardhatNode();
    try {
      nodes.push(await benchNode("hardhat node", hardhat.url, journals));
    } finally {
      await hardhat.stop();
    }
    return { cores: availableParallelism(), nodes };
  } finally {
    rmSync(journals, { recursive: true, force: true });
  }
}

const int = (x: number): string => Math.round(x).toLocaleString("en-US");

/** The figures as table lines for the bench printout, below throughput.ts's table. */
export function formatNodes(f: NodeFigures): string {
  const row = (label: string, batch: string, preflight: string, records: number, txs: string, seconds: number, rate: number) =>
    [
      label.padEnd(34),
      batch.padStart(5),
      preflight.padStart(9),
      int(records).padStart(7),
      txs.padStart(5),
      seconds.toFixed(2).padStart(7),
      int(rate).padStart(9),
    ].join("  ");
  const up = (c: UploadCase): string =>
    row(c.label, String(c.batchSize), c.preflight ? "yes" : "no", c.records, int(c.transactions), c.seconds, c.recordsPerSecond);
  const lines = [
    `throughput over HTTP: each node a process of its own on 127.0.0.1, started and stopped by the bench; ${f.cores} cores shared`,
    "the table above is the in-process figure (node and client in one process); same work, Uploader and reader here",
    `${int(CARDS)} cards opened (not timed), then ${int(RECORDS)} consumptions timed; ethers JsonRpcProvider polling ` +
      `every ${PROVIDER_OPTIONS.pollingInterval} ms, no request batching, no response cache`,
    "upload end to end: seal, pack, journal (fsync), send, mined; chain checked to advance by every record",
    `verify: the throughput config's ledger, compareAccounts "none", median of ${VERIFY_RUNS} reads; ` +
      "report ok and every record verified",
  ];
  for (const n of f.nodes) {
    lines.push(
      `over HTTP: ${n.node} (${n.clientVersion})`,
      `${"case".padEnd(34)}  batch  preflight  records    txs  seconds  records/s`,
      up(n.upload.throughput),
      up(n.upload.default),
      row(`verify (${int(n.verify.batches)} batches)`, "", "", n.verify.records, "", n.verify.seconds, n.verify.recordsPerSecond),
    );
  }
  return lines.map((line) => line.trimEnd()).join("\n");
}
