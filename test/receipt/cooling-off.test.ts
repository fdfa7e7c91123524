/**
 * A receipt tells its card holder the cooling-off right the card has now (docs/CUSTODY.md):
 * what a request to the ledger's custody would return, and until when; nothing when the ledger
 * has no custody attached.
 */
import { PassThrough } from "node:stream";

import { expect } from "chai";
import { network } from "hardhat";

import { main } from "../../src/cli/main.js";
import { receiptToCompact, verifyReceipt } from "../../src/receipt/index.js";
import { tempDir } from "../helpers/ledger.js";
import { MERCHANT, deployWithQuorum, receiptRecords, serveRpc } from "../helpers/receipts.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const DAY = 86_400;

async function landedWithCustody() {
  const f = await deployWithQuorum(connection);
  const uploaded = await f.uploader.upload(receiptRecords());
  const [admin, regulator] = await ethers.getSigners();
  const token = await ethers.deployContract("PrepaidTestToken", ["Test fen", "tFEN"]);
  const custody = await ethers.deployContract("MerchantCustody", [await token.getAddress(), f.ledgerAddress, admin.address, regulator.address, 0]);
  return { ...f, uploaded, custody, attach: () => f.ledger.connect(admin).getFunction("proposeCustody").send(custody.getAddress()).then((tx) => tx.wait()), regulator };
}

async function prepaid(args: string[]) {
  const stdout = new PassThrough();
  let out = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  const code = await main(args, { stdout, stderr: new PassThrough(), env: { TZ: "UTC" }, cwd: tempDir("receipt-cooling-off") });
  return { code, stdout: out };
}

describe("receipts: the card holder's cooling-off right", function () {
  this.timeout(120_000);

  it("is absent without custody, none without a period, and what a request would return until the period ends", async function () {
    const f = await networkHelpers.loadFixture(landedWithCustody);
    const alice = f.uploaded[2]!.receipt; // alice's class: ¥3,000 topped up, ¥70 consumed
    expect((await verifyReceipt(alice, ethers.provider)).coolingOff).to.equal(null);

    await f.attach();
    const custody = await f.custody.getAddress();
    expect((await verifyReceipt(alice, ethers.provider)).coolingOff).to.deep.equal({ amount: 0n, endsAt: 0, custody });

    await f.ledger.connect(f.regulator).getFunction("setMerchantPolicy").send(MERCHANT, 0, 7).then((tx) => tx.wait());
    const books = await f.ledger.getFunction("accountBooks").staticCall(MERCHANT, alice.details.account);
    const endsAt = Number(books.lastTopUpAt) + 7 * DAY;
    // The unused part of the card's top-ups: its balance, ¥2,930.
    const quote = (await verifyReceipt(alice, ethers.provider)).coolingOff;
    expect(quote).to.deep.equal({ amount: 293_000n, endsAt, custody });
    expect(await f.custody.getFunction("coolingOffQuote").staticCall(MERCHANT, alice.details.account)).to.deep.equal([293_000n, BigInt(endsAt)]);

    const rpc = await serveRpc(connection.provider);
    try {
      const open = await prepaid(["receipt", "verify", receiptToCompact(alice), "--rpc", rpc.url]);
      expect(open.code).to.equal(0);
      expect(open.stdout).to.match(new RegExp(`Cooling-off: +¥2,930\\.00 can be taken back until 20\\d\\d-.* \\(requestCoolingOff on custody ${custody}\\)`));
      const json = await prepaid(["receipt", "verify", receiptToCompact(alice), "--rpc", rpc.url, "--json"]);
      const doc = JSON.parse(json.stdout) as { coolingOff: { amount: string; endsAt: number; custody: string } };
      expect(doc.coolingOff).to.deep.equal({ amount: "293000", endsAt, custody });

      await networkHelpers.time.increaseTo(endsAt + 1);
      const ended = await prepaid(["receipt", "verify", receiptToCompact(alice), "--rpc", rpc.url]);
      expect(ended.stdout).to.match(/Cooling-off: +nothing to take back now \(the period ends or ended 20\d\d-/);
    } finally {
      await rpc.close();
    }
  });
});
