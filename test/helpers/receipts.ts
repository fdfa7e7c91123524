/**
 * Shared setup for the receipt tests: a ledger with a 1-of-1 supervisors' quorum, a merchant
 * whose uploader returns receipts, a way to finalize a checkpoint, and the in-process chain served
 * over HTTP on 127.0.0.1 for the command line and the dashboard.
 */
import { createServer, type Server } from "node:http";
import { join } from "node:path";

import type { TypedDataDomain } from "ethers";
import { id } from "ethers";
import type { network } from "hardhat";

import type { RecordDetails } from "../../src/crypto/details.js";
import { Uploader } from "../../src/upload/uploader.js";
import { CHECKPOINT_TYPES, packCheckpoint, toCompact } from "./quorum-types.js";
import { REGULATOR_PUB, card, tempDir } from "./ledger.js";

type Connection = Awaited<ReturnType<typeof network.create>>;

export const MERCHANT = 7;

/** A day's worth of records for one card and a second card: top-ups, a class, a refund. */
export function receiptRecords(): RecordDetails[] {
  const base = { merchantId: MERCHANT, time: 1_795_000_000 };
  return [
    { ...base, kind: 1, account: card("alice"), amount: 300_000n, orderRef: "GYM-20261126-00042", memo: "annual card" },
    { ...base, kind: 1, account: card("bob"), amount: 50_000n, orderRef: "GYM-20261126-00043", memo: "10 classes" },
    { ...base, kind: 2, account: card("alice"), amount: 7_000n, time: base.time + 3_600, orderRef: "GYM-20261126-00044", memo: "yoga class 瑜伽" },
    { ...base, kind: 3, account: card("bob"), amount: 1_000n, time: base.time + 7_200, orderRef: "GYM-20261126-00045", memo: "refund: class cancelled" },
  ];
}

/** Deploys a ledger and its quorum (one supervisor, threshold 1), registers the merchant, opens its uploader. */
export async function deployWithQuorum(connection: Connection) {
  const { ethers } = connection;
  const [admin, regulator, recorder, supervisor] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const ledgerAddress = await ledger.getAddress();
  const quorum = await ethers.deployContract("SupervisorQuorum", [admin.address, ledgerAddress, [supervisor.address], 1, 86_400, 3_600]);
  const quorumAddress = await quorum.getAddress();
  await ledger.connect(regulator).getFunction("registerMerchant").send(MERCHANT, recorder.address).then((tx) => tx.wait());
  const uploader = await Uploader.open(
    { ledger: ledgerAddress, merchantId: MERCHANT, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir("receipts"), "journal.jsonl") },
    recorder,
  );
  const { chainId } = await ethers.provider.getNetwork();

  /** Marks the ledger's current head and has the supervisor finalize it: every record so far is confirmed. */
  async function confirmAll(): Promise<bigint> {
    await ledger.getFunction("markCheckpoint").send().then((tx) => tx.wait());
    const [recordCount, chainHead] = (await ledger.getFunction("chainHead").staticCall()) as [bigint, string];
    const checkpoint = { ledger: ledgerAddress, recordCount, chainHead, stateDigest: id(`books after ${recordCount}`), setId: 1n };
    const domain: TypedDataDomain = { name: "PrepaidLedgerSupervision", version: "1", chainId, verifyingContract: quorumAddress };
    const signature = await supervisor.signTypedData(domain, CHECKPOINT_TYPES, checkpoint);
    const members = [...((await quorum.getFunction("signingMembers").staticCall(1n)) as string[])];
    const packed = packCheckpoint(checkpoint, members, [{ place: 0, signature: toCompact([signature])[0] }]);
    await quorum.getFunction("finalizeRecords").send(packed).then((tx) => tx.wait());
    return recordCount;
  }

  return { ledger, ledgerAddress, quorum, quorumAddress, uploader, chainId, recorder, confirmAll };
}

/**
 * Serves `provider` (an EIP-1193 `request`) as a JSON-RPC endpoint on 127.0.0.1, so the command
 * line and the dashboard can talk HTTP to the in-process chain. `close()` stops it.
 */
export async function serveRpc(provider: { request(args: { method: string; params?: unknown[] }): Promise<unknown> }): Promise<{ url: string; close(): Promise<void>; calls: string[] }> {
  const calls: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const call = JSON.parse(body) as { id: number; method: string; params?: unknown[] };
      calls.push(call.method);
      provider.request({ method: call.method, params: call.params ?? [] }).then(
        (result) => res.end(JSON.stringify({ jsonrpc: "2.0", id: call.id, result })),
        (e: unknown) => res.end(JSON.stringify({ jsonrpc: "2.0", id: call.id, error: { code: -32000, message: e instanceof Error ? e.message : String(e) } })),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
