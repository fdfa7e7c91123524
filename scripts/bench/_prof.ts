// throwaway profiling harness (deleted at the end)
import { mkdtempSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { id } from "ethers";
import { network } from "hardhat";
import { publicKeyOf } from "../../src/crypto/ecies.js";
import { RegulatorReader } from "../../src/regulator/reader.js";
import { Uploader } from "../../src/upload/uploader.js";
const { ethers } = await network.create();
const [admin, reg, rec] = await ethers.getSigners();
const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, reg.address]);
await (await ledger.connect(reg).registerMerchant(1, rec.address)).wait();
const key = id("k");
const dir = mkdtempSync(join(tmpdir(), "pl-bench-"));
const bs = Number(process.env.BS ?? 1000);
const pf = process.env.PF !== "0";
const up = await Uploader.open({ ledger: await ledger.getAddress(), merchantId: 1, regulatorPublicKey: publicKeyOf(key), journalPath: join(dir, "j.jsonl"), batchSize: bs, preflight: pf }, rec);
const cards = Array.from({ length: 1000 }, (_, i) => id("card" + i));
const t0 = Math.floor(Date.now() / 1000);
await up.upload(cards.map((c, i) => ({ kind: 1 as const, merchantId: 1, account: c, amount: 10_000_000n, time: t0, orderRef: `ORD-2026-11-${String(i).padStart(6, "0")}`, memo: "prepaid card" })));
const N = Number(process.env.N ?? 20000);
const details = Array.from({ length: N }, (_, i) => ({ kind: 2 as const, merchantId: 1, account: cards[i % 1000], amount: 2800n + BigInt(i % 50) * 100n, time: t0 + i, orderRef: `ORD-2026-11-${String(i).padStart(6, "0")}`, memo: "yoga class" }));
const session = new Session();
session.connect();
const prof = process.env.PROF;
if (prof === "up") { await session.post("Profiler.enable"); await session.post("Profiler.setSamplingInterval", { interval: 200 }); await session.post("Profiler.start"); }
let t = performance.now();
await up.upload(details);
let s = (performance.now() - t) / 1000;
if (prof === "up") { const { profile } = await session.post("Profiler.stop"); writeFileSync("/tmp/prof/up.cpuprofile", JSON.stringify(profile)); }
console.log(`upload ${N} in ${s.toFixed(2)}s = ${Math.round(N / s)}/s (batch ${bs}, preflight ${pf})`);
const r = await RegulatorReader.open({ ledger: await ledger.getAddress(), privateKey: key, compareAccounts: (process.env.CMP as any) ?? "none" }, ethers.provider);
for (let k = 0; k < Number(process.env.READS ?? 1); k++) {
  if (prof === "read") { await session.post("Profiler.enable"); await session.post("Profiler.setSamplingInterval", { interval: 200 }); await session.post("Profiler.start"); }
  t = performance.now();
  const rep = await r.read();
  s = (performance.now() - t) / 1000;
  if (prof === "read") { const { profile } = await session.post("Profiler.stop"); writeFileSync("/tmp/prof/read.cpuprofile", JSON.stringify(profile)); }
  console.log(`read ${rep.records} in ${s.toFixed(2)}s = ${Math.round(rep.records / s)}/s ok=${rep.ok} verified=${rep.verified}`);
}
