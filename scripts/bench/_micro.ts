// throwaway micro-benchmark (deleted at the end)
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Interface, id } from "ethers";
import { network } from "hardhat";
import { publicKeyOf } from "../../src/crypto/ecies.js";
import { PREPAID_LEDGER_ABI } from "../../src/ledger/abi.js";
import { Uploader } from "../../src/upload/uploader.js";
import { sealBatch } from "../../src/upload/sealing.js";
const { ethers } = await network.create();
const [admin, reg, rec] = await ethers.getSigners();
const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, reg.address]);
await (await ledger.connect(reg).registerMerchant(1, rec.address)).wait();
const address = await ledger.getAddress();
const key = id("k");
const dir = mkdtempSync(join(tmpdir(), "pl-bench-"));
const up = await Uploader.open({ ledger: address, merchantId: 1, regulatorPublicKey: publicKeyOf(key), journalPath: join(dir, "j.jsonl"), batchSize: 1000, preflight: false }, rec);
const cards = Array.from({ length: 1000 }, (_, i) => id("card" + i));
const t0 = Math.floor(Date.now() / 1000);
await up.upload(cards.map((c, i) => ({ kind: 1 as const, merchantId: 1, account: c, amount: 10_000_000n, time: t0, orderRef: `ORD-2026-11-${String(i).padStart(6, "0")}`, memo: "prepaid card" })));
const details = Array.from({ length: 1000 }, (_, i) => ({ kind: 2 as const, merchantId: 1, account: cards[i % 1000], amount: 2800n + BigInt(i % 50) * 100n, time: t0 + i, orderRef: `ORD-2026-11-${String(i).padStart(6, "0")}`, memo: "yoga class" }));
const iface = new Interface(PREPAID_LEDGER_ABI);
const recipients = [{ publicKey: publicKeyOf(key), role: "regulator" as const }];
const time = async (label: string, f: () => Promise<unknown> | unknown, reps = 5) => {
  await f();
  const t = performance.now();
  for (let i = 0; i < reps; i++) await f();
  console.log(label.padEnd(40), ((performance.now() - t) / reps).toFixed(2), "ms");
};
let seq = (await ledger.merchantBooks(1)).nextSequence as bigint;
const sealed = await sealBatch(details, recipients);
await time("sealBatch 1000", () => sealBatch(details, recipients));
await time("encodeFunctionData", () => iface.encodeFunctionData("recordBatch", [1, seq, sealed.envelope, sealed.packed]));
const gasLimit = 15_000_000n;
const rpc = ethers.provider as any;
await time("ledger.recordBatch + receipt", async () => {
  const tx = await (ledger.connect(rec) as any).recordBatch(1, seq++, sealed.envelope, sealed.packed, { gasLimit });
  await rpc.send("eth_getTransactionReceipt", [tx.hash]);
});
await time("sendTransaction(hex) + receipt", async () => {
  const data = iface.encodeFunctionData("recordBatch", [1, seq++, sealed.envelope, sealed.packed]);
  const tx = await rec.sendTransaction({ to: address, data, gasLimit });
  await rpc.send("eth_getTransactionReceipt", [tx.hash]);
});
await time("sendTransaction(bytes) + receipt", async () => {
  const data = ethers.getBytes(iface.encodeFunctionData("recordBatch", [1, seq++, sealed.envelope, sealed.packed]));
  const tx = await rec.sendTransaction({ to: address, data, gasLimit });
  await rpc.send("eth_getTransactionReceipt", [tx.hash]);
});
await time("raw eth_sendTransaction + receipt", async () => {
  const data = iface.encodeFunctionData("recordBatch", [1, seq++, sealed.envelope, sealed.packed]);
  const hash = await rpc.send("eth_sendTransaction", [{ from: rec.address, to: address, data, gas: "0x" + gasLimit.toString(16) }]);
  await rpc.send("eth_getTransactionReceipt", [hash]);
});
await time("raw eth_sendTransaction only", async () => {
  const data = iface.encodeFunctionData("recordBatch", [1, seq++, sealed.envelope, sealed.packed]);
  await rpc.send("eth_sendTransaction", [{ from: rec.address, to: address, data, gas: "0x" + gasLimit.toString(16) }]);
});
const data0 = iface.encodeFunctionData("recordBatch", [1, seq, sealed.envelope, sealed.packed]);
await time("eth_estimateGas raw", async () => {
  await rpc.send("eth_estimateGas", [{ from: rec.address, to: address, data: data0 }]);
});
await time("eth_getBlockNumber raw", async () => { await rpc.send("eth_blockNumber", []); }, 50);
