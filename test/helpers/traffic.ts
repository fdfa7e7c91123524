/**
 * The regulator reader tests' ledger: an honest day of traffic for two merchants, and a node
 * that alters the logs it returns. Shared by test/regulator/reader.test.ts and
 * test/regulator/reader-accounts.test.ts.
 */
import { join } from "node:path";

import { id } from "ethers";
import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";

import type { JsonRpcLike, RpcLog } from "../../src/regulator/logs.js";
import { Uploader } from "../../src/upload/uploader.js";
import { REGULATOR_PUB, card, detail, openings, tempDir } from "./ledger.js";

export const M1 = 1;
export const M2 = 2;

/**
 * Deploys a ledger with an honest day of traffic for two merchants: 36 records in 6 batches on
 * 18 cards (12 of merchant 1, 6 of merchant 2), merchant 2 suspended at the end.
 */
export async function deployTraffic(ethers: HardhatEthers) {
  const [admin, regulator, recorder1, recorder2] = await ethers.getSigners();
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const address = await ledger.getAddress();
  await ledger.connect(regulator).registerMerchant(M1, recorder1.address);
  await ledger.connect(regulator).registerMerchant(M2, recorder2.address);
  const open = (merchantId: number, signer: typeof recorder1) =>
    Uploader.open(
      { ledger: address, merchantId, regulatorPublicKey: REGULATOR_PUB, journalPath: join(tempDir(), "j.jsonl"), batchSize: 10 },
      signer,
    );
  const u1 = await open(M1, recorder1);
  const u2 = await open(M2, recorder2);
  await u1.upload(openings(M1, 12, 50_000n));
  await u2.upload(openings(M2, 6, 80_000n, 100));
  await u1.upload([
    ...Array.from({ length: 12 }, (_, i) => detail(M1, 2, card(i), 3_000n + BigInt(i), 200 + i)),
    detail(M1, 3, card(0), 10_000n, 300),
  ]);
  await u2.upload(Array.from({ length: 5 }, (_, i) => detail(M2, 2, card(100 + i), 9_000n, 400 + i)));
  await ledger.connect(regulator).suspendMerchant(M2, id("complaints"));
  return { ledger, address, admin, regulator, recorder1, recorder2 };
}
export type TrafficFixture = Awaited<ReturnType<typeof deployTraffic>>;

/** A node that passes every log `ethers`' node returns through `edit` (return undefined to drop it). */
export const editingNode = (ethers: HardhatEthers, edit: (log: RpcLog) => RpcLog | undefined): JsonRpcLike => ({
  send: async (method, params) => {
    const logs = (await ethers.provider.send(method, params)) as RpcLog[];
    return logs.map(edit).filter((l) => l !== undefined);
  },
});

/** The topic of `Recorded`, for editors of its logs. */
export const RECORDED_TOPIC = id("Recorded(bytes32,uint32,bytes32)");

/**
 * An edit raising the amount's low byte in the `Recorded` logs whose 1-based position among
 * them `pick` accepts: the decrypted amount, the chain link and the books then disagree.
 */
export function inflatingAmounts(pick: (position: number) => boolean): (log: RpcLog) => RpcLog {
  let seen = 0;
  return (l) => {
    if (l.topics[0] !== RECORDED_TOPIC || !pick(++seen)) return l;
    // data = recordIndex u64 | kind u8 | amount u48 | ciphertext: raise the amount's low byte
    const hex = l.data;
    const at = 2 + 2 * 14;
    const low = (parseInt(hex.slice(at, at + 2), 16) + 1) & 0xff;
    return { ...l, data: hex.slice(0, at) + low.toString(16).padStart(2, "0") + hex.slice(at + 2) };
  };
}
