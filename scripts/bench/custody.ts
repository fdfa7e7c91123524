/**
 * Gas of custody's operations (issue 9) on the in-process network: deposit, withdrawal, a
 * cooling-off return paid and owed, meeting an owed return, opening claims, a claim in full and
 * pro rata, the residual sweep; and the payout of a closed merchant with N card holders
 * (`BENCH_HOLDERS`, default 10,000), each claiming from their own key: transactions and gas in
 * all, and the check that every holder was paid its share and the books match.
 */
import { Wallet, encodeBytes32String, getBytes, id, parseEther, type Signer, type TransactionResponse } from "ethers";
import { network } from "hardhat";

import { cardId } from "../../src/crypto/card.js";
import { packBatch } from "../../src/ledger/codec.js";
import type { MerchantCustody, PrepaidLedger, PrepaidTestToken } from "../../types/ethers-contracts/index.js";

const M = 7;
const CARD_AMOUNT = 50_000n;
const DAY = 86_400;

export interface CustodyGas {
  operations: { label: string; gas: bigint }[];
  payout: {
    holders: number;
    covered: string;
    /** Top-up batches (100 cards each) + claims + deposit, closure, opening and sweep. */
    transactions: number;
    gasTotal: bigint;
    claimGasAverage: number;
    paidTotal: bigint;
    owedTotal: bigint;
    seconds: number;
    booksMatch: boolean;
  };
}

type Ethers = Awaited<ReturnType<typeof network.create>>["ethers"];

async function gasOf(tx: Promise<TransactionResponse>): Promise<bigint> {
  const receipt = await (await tx).wait();
  if (receipt === null || receipt.status !== 1) throw new Error("bench transaction failed");
  return receipt.gasUsed;
}

async function deploy(ethers: Ethers) {
  const [admin, regulator, recorder, fund] = await ethers.getSigners();
  const ledger = (await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600])) as unknown as PrepaidLedger;
  const token = (await ethers.deployContract("PrepaidTestToken", ["Bench fen", "bFEN"])) as unknown as PrepaidTestToken;
  const custody = (await ethers.deployContract("MerchantCustody", [
    await token.getAddress(),
    await ledger.getAddress(),
    admin.address,
    regulator.address,
    0,
  ])) as unknown as MerchantCustody;
  await (await ledger.connect(admin).proposeCustody(await custody.getAddress())).wait();
  await (await ledger.connect(regulator).registerMerchant(M, recorder.address)).wait();
  await (await ledger.connect(regulator).setMerchantPolicy(M, 0n, 7)).wait();
  await (await token.mint(recorder.address, 10n ** 15n)).wait();
  await (await token.connect(recorder).approve(await custody.getAddress(), 10n ** 15n)).wait();
  return { ledger, token, custody, admin, regulator, recorder, fund };
}

type Setup = Awaited<ReturnType<typeof deploy>>;

/** Opens one card per holder, 100 top-ups a batch; returns the batches' gas and count. */
async function openCards(s: Setup, cards: string[]): Promise<{ gas: bigint; transactions: number }> {
  let gas = 0n;
  let transactions = 0;
  for (let i = 0; i < cards.length; i += 100) {
    const records = cards.slice(i, i + 100).map((card) => ({
      kind: 1,
      amount: CARD_AMOUNT,
      account: getBytes(card),
      commitment: getBytes(id(`commitment ${card}`)),
      ciphertext: Uint8Array.from([2, ...getBytes(id(card)), ...getBytes(id(card)).slice(0, 10)]),
    }));
    const { nextSequence } = await s.ledger.merchantBooks(M);
    gas += await gasOf(s.ledger.connect(s.recorder).recordBatch(M, nextSequence, "0x", packBatch(records)));
    transactions += 1;
  }
  return { gas, transactions };
}

/** Gas of each operation once, on a merchant of three cards. */
async function operations(ethers: Ethers): Promise<CustodyGas["operations"]> {
  const s = await deploy(ethers);
  const holders = (await ethers.getSigners()).slice(5, 8);
  const secret = (i: number) => id(`bench secret ${i}`);
  const cards = holders.map((h, i) => cardId({ merchantId: M, holder: h.address, secret: secret(i) }));
  const ops: CustodyGas["operations"] = [];
  ops.push({ label: "deposit (first)", gas: await gasOf(s.custody.connect(s.recorder).deposit(M, 200_000n)) });
  ops.push({ label: "deposit", gas: await gasOf(s.custody.connect(s.recorder).deposit(M, 10_000n)) });
  await openCards(s, cards);
  ops.push({ label: "withdraw", gas: await gasOf(s.custody.connect(s.recorder).withdraw(M, 10_000n, s.recorder.address)) });
  ops.push({
    label: "cooling-off request, paid from custody",
    gas: await gasOf(s.custody.connect(holders[0]).requestCoolingOff(M, secret(0), holders[0].address)),
  });
  await (await s.custody.connect(s.recorder).withdraw(M, (await s.custody.custodyOf(M)).withdrawable, s.recorder.address)).wait();
  ops.push({
    label: "cooling-off request, owed",
    gas: await gasOf(s.custody.connect(holders[1]).requestCoolingOff(M, secret(1), holders[1].address)),
  });
  ops.push({ label: "meet an owed return", gas: await gasOf(s.custody.connect(s.recorder).meetObligation(M, cards[1])) });
  await (await s.custody.connect(s.recorder).deposit(M, 100_000n)).wait();
  await (await s.ledger.connect(s.regulator).closeMerchant(M, encodeBytes32String("bench"))).wait();
  ops.push({ label: "open claims", gas: await gasOf(s.custody.connect(s.regulator).openClaims(M, 30 * DAY, s.fund.address)) });
  ops.push({ label: "claim", gas: await gasOf(s.custody.connect(holders[2]).claim(M, secret(2), holders[2].address)) });
  await ethers.provider.send("evm_increaseTime", [31 * DAY]);
  ops.push({ label: "sweep unclaimed", gas: await gasOf(s.custody.connect(s.fund).sweepUnclaimed(M)) });
  return ops;
}

/** A closed merchant with `n` holders, custody holding `coverBps` of its liability: all claim. */
async function payout(ethers: Ethers, n: number, coverBps: bigint): Promise<CustodyGas["payout"]> {
  const started = performance.now();
  const s = await deploy(ethers);
  const wallets = Array.from({ length: n }, (_, i) => new Wallet(id(`bench holder ${i}`), ethers.provider));
  const secret = id("bench card secret");
  const cards = wallets.map((w) => cardId({ merchantId: M, holder: w.address, secret }));
  const liability = CARD_AMOUNT * BigInt(n);
  let gasTotal = await gasOf(s.custody.connect(s.recorder).deposit(M, (liability * coverBps) / 10_000n));
  const opened = await openCards(s, cards);
  gasTotal += opened.gas;
  gasTotal += await gasOf(s.ledger.connect(s.regulator).closeMerchant(M, encodeBytes32String("bench")));
  gasTotal += await gasOf(s.custody.connect(s.regulator).openClaims(M, 30 * DAY, s.fund.address));
  // Holders pay their own gas: fund each key (not counted: it is the test network's faucet).
  for (const w of wallets) await ethers.provider.send("hardhat_setBalance", [w.address, "0x" + parseEther("1").toString(16)]);
  let claimGas = 0n;
  for (const w of wallets) {
    const tx = await s.custody.connect(w as unknown as Signer).claim(M, secret, w.address, { nonce: 0 });
    claimGas += await gasOf(Promise.resolve(tx));
  }
  const round = await s.custody.claimsOf(M);
  const paidTotal = round.paid;
  await ethers.provider.send("evm_increaseTime", [31 * DAY]);
  gasTotal += claimGas + (await gasOf(s.custody.connect(s.fund).sweepUnclaimed(M)));
  const books = await s.ledger.merchantBooks(M);
  const expectedShare = coverBps >= 10_000n ? CARD_AMOUNT : (CARD_AMOUNT * coverBps) / 10_000n;
  const firstPaid = await s.token.balanceOf(wallets[0].address);
  const lastPaid = await s.token.balanceOf(wallets[n - 1].address);
  const booksMatch =
    round.claims === BigInt(n) &&
    firstPaid === expectedShare &&
    lastPaid === expectedShare &&
    books.refunded === paidTotal &&
    books.liability === liability - paidTotal;
  return {
    holders: n,
    covered: `${Number(coverBps) / 100} %`,
    transactions: opened.transactions + n + 4,
    gasTotal,
    claimGasAverage: Number(claimGas) / n,
    paidTotal,
    owedTotal: liability,
    seconds: (performance.now() - started) / 1000,
    booksMatch,
  };
}

export async function benchCustody(): Promise<CustodyGas> {
  const { ethers } = await network.create();
  const holders = Number(process.env.BENCH_HOLDERS ?? 10_000);
  if (!Number.isInteger(holders) || holders < 1) throw new Error(`BENCH_HOLDERS must be a positive integer; got "${process.env.BENCH_HOLDERS}"`);
  return { operations: await operations(ethers), payout: await payout(ethers, holders, 6_000n) };
}

const yuan = (fen: bigint) => `¥${(Number(fen) / 100).toLocaleString("en-US", { minimumFractionDigits: 2 })}`;

export function formatCustody(c: CustodyGas): string {
  const p = c.payout;
  return [
    "custody — gas of each operation (in-process network)",
    ...c.operations.map((o) => `  ${o.label.padEnd(40)} ${o.gas.toLocaleString("en-US").padStart(9)} gas`),
    `payout of a closed merchant: ${p.holders.toLocaleString("en-US")} holders, custody ${p.covered} of the liability, every holder claims`,
    `  transactions ${p.transactions.toLocaleString("en-US")}, gas in all ${p.gasTotal.toLocaleString("en-US")} ` +
      `(claims ${Math.round(p.claimGasAverage).toLocaleString("en-US")} gas each on average), ${p.seconds.toFixed(0)} s`,
    `  owed ${yuan(p.owedTotal)}, paid ${yuan(p.paidTotal)}; each holder paid its pro-rata share and the books match: ${p.booksMatch ? "yes" : "NO"}`,
  ].join("\n");
}
