/**
 * Where one steady finalize's gas goes (t of N = t + 1, default t = 3), as supervisor nodes send
 * it (finalizeTransaction: finalizePacked_11yn with its access list), read from
 * `debug_traceTransaction` on the in-process network:
 *
 *   npx hardhat run scripts/bench/finalize-trace.ts          (TRACE_T=5 for t = 5; TRACE_OPS=1 prints every step)
 *
 * Prints gas used, intrinsic gas (base, calldata, access list), and the execution split into
 * the quorum's own code, the ledger's code, precompile calls and storage, log and hashing.
 */
import { id } from "ethers";
import { network } from "hardhat";

import { packBatch } from "../../src/ledger/codec.js";
import { checkpointDomain, checkpointHash, finalizeTransaction, packCheckpoint, type CheckpointJson } from "../../src/supervisor/checkpoint.js";
import { Consume, TopUp, account, record } from "../../test/helpers/records.js";
import { FIRST_SUPERVISOR_ACCOUNT, devWallet } from "../lib/supervision-network.js";

interface Step { pc: number; op: string; gas: number; gasCost: number; depth: number }

const t = Number(process.env.TRACE_T ?? 3);
const { ethers } = await network.create();
const signers = await ethers.getSigners();
const [admin, regulator, recorder] = signers;
const keys = Array.from({ length: t + 1 }, (_, i) => devWallet(FIRST_SUPERVISOR_ACCOUNT + i));
const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
const ledgerAddress = await ledger.getAddress();
const quorum = await ethers.deployContract("SupervisorQuorum", [admin.address, ledgerAddress, keys.map((k) => k.address), t, 0, 3_600]);
const quorumAddress = await quorum.getAddress();
await (await ledger.connect(regulator).registerMerchant(1, recorder.address)).wait();
const { chainId } = await ethers.provider.getNetwork();
const a = account("alice");

/** The quorum's `_state` slot: the one whose low 64 bits are lastFinal and whose commitment bits are set. */
async function stateSlot(): Promise<string> {
  for (let i = 0; i < 64; i++) {
    const v = BigInt(await ethers.provider.getStorage(quorumAddress, i));
    if (v >> 72n !== 0n && (v & 0xffffffffffffffffn) === (await quorum.lastFinal()) && ((v >> 64n) & 0xffn) === BigInt(t)) return ethers.toBeHex(i, 32);
  }
  throw new Error("state slot not found");
}

let last: { hash: string; gasUsed: bigint; data: string } | undefined;
for (let run = 0; run < 3; run++) {
  const sequence = (await ledger.merchantBooks(1)).nextSequence;
  const records = run === 0 ? [record(TopUp, a, 100_000n)] : [record(Consume, a, BigInt(run))];
  await (await ledger.connect(recorder).recordBatch(1, sequence, "0x", packBatch(records))).wait();
  const [count, head] = await ledger.chainHead();
  const c: CheckpointJson = { ledger: ledgerAddress, recordCount: count.toString(), chainHead: head, stateDigest: id(`state at ${count}`), setId: "1" };
  const hash = checkpointHash(checkpointDomain(chainId, quorumAddress), c);
  const bySigner = new Map(keys.slice(0, t).map((k) => [k.address.toLowerCase(), k.signingKey.sign(hash).serialized]));
  const packed = packCheckpoint(c, [...(await quorum.signingMembers(1n))], bySigner, { limit: t, sender: signers[FIRST_SUPERVISOR_ACCOUNT].address });
  const request = finalizeTransaction(quorumAddress, ledgerAddress, packed);
  if (process.env.TRACE_QUORUM_SLOT === "1") request.accessList = [...(request.accessList as { address: string; storageKeys: string[] }[]), { address: quorumAddress, storageKeys: [await stateSlot()] }];
  const receipt = await (await signers[FIRST_SUPERVISOR_ACCOUNT].sendTransaction(request)).wait();
  if (receipt === null || receipt.status !== 1) throw new Error("finalize failed");
  if ((await quorum.lastFinal()) !== count) throw new Error("lastFinal did not move");
  last = { hash: receipt.hash, gasUsed: receipt.gasUsed, data: String(request.data) };
}

const bytes = Buffer.from(last!.data.slice(2), "hex");
const zeros = bytes.filter((b) => b === 0).length;
const calldata = zeros * 4 + (bytes.length - zeros) * 16;
const accessList = 2_400 + 2 * 1_900 + (process.env.TRACE_QUORUM_SLOT === "1" ? 2_400 + 1_900 : 0);
const trace = (await ethers.provider.send("debug_traceTransaction", [last!.hash, { disableStorage: true, disableMemory: true }])) as { gas: number; structLogs: Step[] };
const steps = trace.structLogs;
const execution = Number(last!.gasUsed) - 21_000 - calldata - accessList;

const buckets = new Map<string, number>();
const add = (k: string, g: number) => buckets.set(k, (buckets.get(k) ?? 0) + g);
for (let i = 0; i < steps.length; i++) {
  const s = steps[i];
  const next = steps[i + 1];
  let cost = s.gasCost;
  // A call's gasCost in the struct log includes the gas forwarded; charge what the callee did not return.
  if (["STATICCALL", "CALL", "DELEGATECALL"].includes(s.op)) {
    if (next !== undefined && next.depth > s.depth) {
      // Find where we return to this depth.
      let j = i + 1;
      while (j < steps.length && steps[j].depth > s.depth) j++;
      const after = steps[j];
      cost = s.gas - after.gas; // the whole call, callee included
      const inside = steps.slice(i + 1, j).reduce((x, y) => x + (y.depth === s.depth + 1 ? y.gasCost : 0), 0);
      add(`depth ${s.depth} ${s.op} (call overhead incl. callee)`, cost - inside);
      i = i; // callee steps are counted below under their own depth
    } else {
      const after = next;
      cost = after === undefined ? s.gasCost : s.gas - after.gas;
      add(`depth ${s.depth} ${s.op} to precompile`, cost);
      continue;
    }
    continue;
  }
  const kind = ["SLOAD", "SSTORE"].includes(s.op)
    ? s.op
    : s.op.startsWith("LOG")
      ? "LOG"
      : s.op === "KECCAK256"
        ? "KECCAK256"
        : "other opcodes";
  add(`depth ${s.depth} ${kind}`, cost);
  if (process.env.TRACE_OPS === "1") console.log(s.depth, s.pc, s.op, cost, s.gas);
}
console.log(`t = ${t} of ${t + 1}: gasUsed ${last!.gasUsed}`);
console.log(`  base 21,000; calldata ${bytes.length} bytes (${zeros} zero) = ${calldata}; access list ${accessList}; execution ${execution}`);
console.log(`  steps ${steps.length}`);
for (const [k, g] of [...buckets].sort()) console.log(`  ${k.padEnd(52)} ${g}`);
console.log(`  sum of buckets ${[...buckets.values()].reduce((x, y) => x + y, 0)}`);
