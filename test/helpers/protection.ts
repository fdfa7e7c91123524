/**
 * A ledger with custody attached and the card holders' protection used every way (issue 9):
 * card rules, cooling-off returns paid from custody, owed and met, claims on closed merchants
 * paid in full and pro rata, and a sweep after the deadline. Shared by the reader, indexer, CLI
 * and dashboard tests; it runs on any node with `evm_increaseTime` (Hardhat in-process, anvil).
 *
 * Card ids are bound to their holders (docs/FORMAT.md 2.4): taken from custody's `cardId` view,
 * so these tests depend on no TypeScript implementation of it.
 */
import { join } from "node:path";

import { encodeBytes32String, id } from "ethers";
import type { HardhatEthers, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";

import { Uploader } from "../../src/upload/uploader.js";
import { REGULATOR_PUB, detail, tempDir } from "./ledger.js";

const DAY = 86_400;

/** Active: card cap ¥5,000, 7 cooling-off days, 30 % custody; one card's cooling-off paid from custody. */
export const PAID = 11;
/** Active: 7 cooling-off days, nothing in custody: two cooling-off returns owed, one met, one left open. */
export const OWING = 12;
/** Closed with custody covering its whole liability: a claim paid in full. */
export const FULL = 13;
/** Closed with custody covering half its liability: a claim paid pro rata, the rest swept after the deadline. */
export const PRO_RATA = 14;

/** Moves the node's clock forward and mines a block (Hardhat and anvil alike). */
export async function increaseTime(ethers: HardhatEthers, seconds: number): Promise<void> {
  await ethers.provider.send("evm_increaseTime", [seconds]);
  await ethers.provider.send("evm_mine", []);
}

/** Deploys ledger, test token and custody (attached), registers the four merchants with their rules and ratios. */
export async function deployProtected(ethers: HardhatEthers) {
  const signers = await ethers.getSigners();
  const [admin, regulator, r11, r12, r13, r14, h1, h2, h3, h4, h5, h6, residual] = signers;
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  await ledger.waitForDeployment();
  const token = await ethers.deployContract("PrepaidTestToken", ["Test fen", "FEN"]);
  await token.waitForDeployment();
  const custody = await ethers.deployContract("MerchantCustody", [await token.getAddress(), await ledger.getAddress(), admin.address, regulator.address, 0]);
  await custody.waitForDeployment();
  await (await ledger.connect(admin).proposeCustody(await custody.getAddress())).wait();
  const recorders: Record<number, HardhatEthersSigner> = { [PAID]: r11, [OWING]: r12, [FULL]: r13, [PRO_RATA]: r14 };
  for (const [m, r] of Object.entries(recorders)) await (await ledger.connect(regulator).registerMerchant(Number(m), r.address)).wait();
  await (await ledger.connect(regulator).setMerchantPolicy(PAID, 500_000, 7)).wait();
  await (await ledger.connect(regulator).setMerchantPolicy(OWING, 0, 7)).wait();
  for (const [m, bps] of [[PAID, 3_000], [FULL, 10_000], [PRO_RATA, 5_000]] as const) {
    await (await custody.connect(regulator).setCoverageRatio(m, bps)).wait();
  }
  const custodyAddress = await custody.getAddress();
  /** Mints `amount` fen to `who` and lets custody pull it. */
  const fund = async (who: HardhatEthersSigner, amount: bigint) => {
    await (await token.connect(who).mint(who.address, amount)).wait();
    await (await token.connect(who).approve(custodyAddress, amount)).wait();
  };
  const deposit = async (m: number, amount: bigint) => {
    await fund(recorders[m], amount);
    await (await custody.connect(recorders[m]).deposit(m, amount)).wait();
  };
  const dir = tempDir("protection");
  const uploaders = new Map<number, Uploader>();
  const uploader = async (m: number) => {
    let u = uploaders.get(m);
    if (u === undefined) {
      u = await Uploader.open(
        { ledger: await ledger.getAddress(), merchantId: m, regulatorPublicKey: REGULATOR_PUB, journalPath: join(dir, `${m}.jsonl`) },
        recorders[m],
      );
      uploaders.set(m, u);
    }
    return u;
  };
  /** A card of merchant `m` held by `holder`: its secret and its id (custody's cardId view). */
  const card = async (m: number, holder: HardhatEthersSigner, name: string) => {
    const secret = id(`protection test card ${m} ${name}`);
    return { holder, secret, account: (await custody.cardId(m, holder.address, secret)).toLowerCase() };
  };
  let serial = 0;
  const upload = async (m: number, rows: [kind: 1 | 2 | 3, account: string, amount: bigint][]) =>
    (await uploader(m)).upload(rows.map(([kind, account, amount]) => detail(m, kind, account, amount, ++serial)));
  return { ledger, token, custody, admin, regulator, recorders, holders: { h1, h2, h3, h4, h5, h6 }, residual, fund, deposit, card, upload, uploaders };
}
export type Protected = Awaited<ReturnType<typeof deployProtected>>;

/**
 * Runs the scenario on a fresh deployment and returns it with its cards. Afterwards: PAID's card
 * A returned by cooling-off from custody (¥2,000); OWING's card C owed ¥1,000 then met by the
 * merchant, card D owed ¥800 and left open (due 15 days after it was asked); FULL's card E
 * claimed in full (¥1,000); PRO_RATA's card F claimed at half (¥1,000 of ¥2,000), card G not
 * claimed, and what was left (¥500) swept to the residual recipient after the deadline.
 */
export async function protectionScenario(ethers: HardhatEthers) {
  const d = await deployProtected(ethers);
  const { h1, h2, h3, h4, h5, h6 } = d.holders;
  const cards = {
    A: await d.card(PAID, h1, "A"),
    B: await d.card(PAID, h2, "B"),
    C: await d.card(OWING, h3, "C"),
    D: await d.card(OWING, h4, "D"),
    E: await d.card(FULL, h5, "E"),
    F: await d.card(PRO_RATA, h6, "F"),
    G: await d.card(PRO_RATA, h1, "G"),
  };
  // Custody before the cards it covers: the ledger refuses a batch its custody does not cover.
  await d.deposit(PAID, 300_000n);
  await d.deposit(FULL, 120_000n);
  await d.deposit(PRO_RATA, 150_000n);
  await d.upload(PAID, [[1, cards.A.account, 200_000n], [1, cards.B.account, 300_000n]]);
  await d.upload(PAID, [[2, cards.B.account, 50_000n]]);
  await d.upload(OWING, [[1, cards.C.account, 100_000n], [1, cards.D.account, 80_000n]]);
  await d.upload(FULL, [[1, cards.E.account, 120_000n]]);
  await d.upload(FULL, [[2, cards.E.account, 20_000n]]);
  await d.upload(PRO_RATA, [[1, cards.F.account, 200_000n], [1, cards.G.account, 100_000n]]);
  // Cooling-off: paid at once from PAID's custody; owed by OWING, which holds nothing.
  await (await d.custody.connect(h1).requestCoolingOff(PAID, cards.A.secret, h1.address)).wait();
  await (await d.custody.connect(h3).requestCoolingOff(OWING, cards.C.secret, h3.address)).wait();
  await (await d.custody.connect(h4).requestCoolingOff(OWING, cards.D.secret, h4.address)).wait();
  await d.fund(d.recorders[OWING], 100_000n);
  await (await d.custody.connect(d.recorders[OWING]).meetObligation(OWING, cards.C.account)).wait();
  // FULL and PRO_RATA wind down and close; claims open for 7 days.
  for (const m of [FULL, PRO_RATA]) {
    await (await d.ledger.connect(d.regulator).windDownMerchant(m, encodeBytes32String("exit"))).wait();
    await (await d.ledger.connect(d.regulator).closeMerchant(m, encodeBytes32String("closed"))).wait();
    await (await d.custody.connect(d.regulator).openClaims(m, 7 * DAY, d.residual.address)).wait();
  }
  await (await d.custody.connect(h5).claim(FULL, cards.E.secret, h5.address)).wait();
  await (await d.custody.connect(h6).claim(PRO_RATA, cards.F.secret, h6.address)).wait();
  await increaseTime(ethers, 8 * DAY);
  await (await d.custody.connect(d.admin).sweepUnclaimed(PRO_RATA)).wait();
  return { ...d, cards };
}
export type Scenario = Awaited<ReturnType<typeof protectionScenario>>;

/** Closes every uploader of the scenario (their journals). */
export function closeUploaders(d: Protected): void {
  for (const u of d.uploaders.values()) u.close();
}
