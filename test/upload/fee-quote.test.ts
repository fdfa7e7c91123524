/**
 * A local key's fee quote (src/upload/chain.ts, `UploaderChain.feeQuote`): asked once and reused
 * while fresh, refreshed in the background while not too old, waited for when too old, a failed
 * background refresh keeps the last quote, and a failed awaited one is the call's typed error.
 */
import { join } from "node:path";

import { expect } from "chai";
import { Wallet, type Provider, type TransactionRequest } from "ethers";
import { network } from "hardhat";

import { isError } from "../../src/errors.js";
import { FEE_QUOTE_FRESH_MS, FEE_QUOTE_MAX_AGE_MS, UploaderChain } from "../../src/upload/chain.js";
import { Uploader } from "../../src/upload/uploader.js";
import { REGULATOR_PUB, card, detail, openings, tempDir } from "../helpers/ledger.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;

/** A Wallet that counts (and can fail) its fee questions. */
class CountingWallet extends Wallet {
  asks = 0;
  failing = false;
  /** Resolves the next question only when released (null: answer at once). */
  gate: Promise<void> | null = null;

  constructor(key: string, provider: Provider) {
    super(key, provider);
  }

  override async populateTransaction(tx: TransactionRequest) {
    this.asks++;
    if (this.gate !== null) await this.gate;
    if (this.failing) throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { code: "ECONNREFUSED" });
    return super.populateTransaction(tx);
  }
}

/** Runs `fn` with `Date.now` moved `offset` ms ahead; restores it after. */
async function later<T>(offset: number, fn: () => Promise<T>): Promise<T> {
  const real = Date.now;
  Date.now = () => real() + offset;
  try {
    return await fn();
  } finally {
    Date.now = real;
  }
}

async function setUp() {
  const [admin, regulator] = await ethers.getSigners();
  const recorder = new CountingWallet(Wallet.createRandom().privateKey, ethers.provider);
  await networkHelpers.setBalance(recorder.address, 10n ** 20n);
  const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  await (await ledger.connect(regulator).registerMerchant(1, recorder.address)).wait();
  const chain = new UploaderChain(recorder, await ledger.getAddress(), 1, 5_000);
  return { recorder, ledger, chain };
}

describe("a local key's fee quote", function () {
  it("is asked once for a run of batches while it is fresh, and the node takes every batch signed with it", async function () {
    const { recorder, ledger } = await setUp();
    const uploader = await Uploader.open(
      {
        ledger: await ledger.getAddress(),
        merchantId: 1,
        regulatorPublicKey: REGULATOR_PUB,
        journalPath: join(tempDir("fee-quote"), "journal.jsonl"),
        preflight: false,
        batchSize: 1,
      },
      recorder,
    );
    try {
      const records = await uploader.upload([...openings(1, 8), detail(1, 2, card(0), 5_000n, 5), detail(1, 2, card(1), 6_000n, 6)]);
      expect(records).to.have.length(10);
      expect(new Set(records.map((r) => r.txHash)).size).to.equal(10); // ten batches, ten transactions
      const [count] = await ledger.chainHead();
      expect(count).to.equal(10n);
      expect(recorder.asks).to.equal(1);
    } finally {
      uploader.close();
    }
  });

  it("past its freshness, is used at once while a new one is asked in the background", async function () {
    const { recorder, chain } = await setUp();
    const first = await chain.feeQuote();
    expect(recorder.asks).to.equal(1);
    let release!: () => void;
    recorder.gate = new Promise((resolve) => (release = resolve));
    // Stale but not too old: the old quote comes back without waiting for the gated question.
    const stale = await later(FEE_QUOTE_FRESH_MS + 10, () => chain.feeQuote());
    expect(stale).to.deep.equal(first);
    expect(recorder.asks).to.equal(2);
    // A second stale read joins the question already asked.
    await later(FEE_QUOTE_FRESH_MS + 20, () => chain.feeQuote());
    expect(recorder.asks).to.equal(2);
    recorder.gate = null;
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await chain.feeQuote(); // the refreshed quote is fresh: no new question
    expect(recorder.asks).to.equal(2);
  });

  it("too old, is waited for before the batch is signed", async function () {
    const { recorder, chain } = await setUp();
    await chain.feeQuote();
    let release!: () => void;
    recorder.gate = new Promise((resolve) => (release = resolve));
    let answered = false;
    const pending = later(FEE_QUOTE_MAX_AGE_MS + 10, () => chain.feeQuote()).then((q) => {
      answered = true;
      return q;
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(answered).to.equal(false);
    recorder.gate = null;
    release();
    const quote = await pending;
    expect(answered).to.equal(true);
    expect(quote.type).to.equal(2);
    expect(typeof quote.maxFeePerGas).to.equal("bigint");
    expect(recorder.asks).to.equal(2);
  });

  it("a failed background refresh keeps the last quote; a failed awaited one is RPC_ERROR with the call named", async function () {
    const { recorder, chain } = await setUp();
    const first = await chain.feeQuote();
    recorder.failing = true;
    const stale = await later(FEE_QUOTE_FRESH_MS + 10, () => chain.feeQuote());
    expect(stale).to.deep.equal(first);
    await new Promise((resolve) => setTimeout(resolve, 30));
    // The failure left the quote in place: still usable while not too old.
    expect(await later(FEE_QUOTE_FRESH_MS + 40, () => chain.feeQuote())).to.deep.equal(first);
    await new Promise((resolve) => setTimeout(resolve, 30)); // that read's background question fails too
    let caught: unknown;
    try {
      await later(FEE_QUOTE_MAX_AGE_MS + 10, () => chain.feeQuote({ sequence: 7n }));
    } catch (e) {
      caught = e;
    }
    expect(isError(caught, "RPC_ERROR"), String(caught)).to.equal(true);
    const details = (caught as { details: Record<string, unknown> }).details;
    expect(details).to.include({ call: "populateTransaction", merchantId: 1 });
    expect(details.sequence).to.equal(7n);
    // Forgotten after a refused send: the next quote is asked, not reused.
    recorder.failing = false;
    chain.forgetFeeQuote();
    const asks = recorder.asks;
    await chain.feeQuote();
    expect(recorder.asks).to.equal(asks + 1);
  });
});
