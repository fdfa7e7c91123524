/**
 * The regulator's reader and settlements (`Settled`, docs/FORMAT.md 7.3): refunds the attached
 * custody booked when it paid card holders (claims, cooling-off returns) count in the books as
 * the contract counts them, link into the hash chain between batches, and a tampered one is a
 * chain break.
 */
import { expect } from "chai";
import { AbiCoder, getBytes, solidityPackedKeccak256 } from "ethers";
import { network } from "hardhat";

import { SETTLEMENT_LINK_TAG, SettlementReason, linkSettlement } from "../../src/ledger/codec.js";
import { LEDGER_TOPICS } from "../../src/regulator/events.js";
import type { JsonRpcLike, RpcLog } from "../../src/regulator/logs.js";
import { RegulatorReader, type VerifiedRecord } from "../../src/regulator/reader.js";
import { formatReport } from "../../src/regulator/report.js";
import { REGULATOR_KEY } from "../helpers/ledger.js";
import { FULL, OWING, PAID, PRO_RATA, closeUploaders, protectionScenario, type Scenario } from "../helpers/protection.js";

const { ethers } = await network.create();

describe("regulator reader: settlements", function () {
  this.timeout(180_000);
  let s: Scenario;
  let address: string;

  before(async function () {
    s = await protectionScenario(ethers);
    // A batch after the settlements, so they sit between batches in the chain.
    await s.upload(PAID, [[1, s.cards.B.account, 10_000n]]);
    address = await s.ledger.getAddress();
  });
  after(() => closeUploaders(s));

  const read = async (rpc?: JsonRpcLike, accountCache?: number) =>
    (await RegulatorReader.open({ ledger: address, privateKey: REGULATOR_KEY, keepRecords: true, accountCache }, ethers.provider, { rpc })).read();

  /** A node that logs the claim paid in full (merchant FULL's settlement) as ¥1 less. */
  const tampered: JsonRpcLike = {
    async send(method, params) {
      const out = await ethers.provider.send(method, params);
      if (method !== "eth_getLogs") return out;
      return (out as RpcLog[]).map((l) => {
        if (l.topics[0] !== LEDGER_TOPICS.Settled || BigInt(l.topics[1]) !== BigInt(FULL)) return l;
        const words = AbiCoder.defaultAbiCoder().decode(["uint64", "uint8", "uint48", "bytes32"], l.data);
        return { ...l, data: AbiCoder.defaultAbiCoder().encode(["uint64", "uint8", "uint48", "bytes32"], [words[0], words[1], words[2] - 100n, words[3]]) };
      });
    },
  };

  it("counts each settlement as a refund of its card, as merchantBooks and accountBooks do, and the chain verifies", async function () {
    const report = await read();
    expect(report.discrepancies).to.deep.equal([]);
    expect(report.ok).to.equal(true);
    const [count, head] = await s.ledger.chainHead();
    expect([report.chain.recordCount, report.chain.head]).to.deep.equal([count, head.toLowerCase()]);
    expect(report.verified).to.equal(report.records);
    expect(report.settlements).to.equal(4);
    expect(formatReport(report)).to.include("and 4 settlements by custody").and.to.include("Every settlement is linked in the chain and within its card's balance.");
    for (const m of [PAID, OWING, FULL, PRO_RATA]) {
      const c = await s.ledger.merchantBooks(m);
      const mine = report.merchants.find((x) => x.merchantId === m)!;
      expect([mine.recordCount, mine.refunded, mine.liability, mine.status].map(BigInt), `merchant ${m}`).to.deep.equal([
        c.recordCount,
        c.refunded,
        c.liability,
        c.status,
      ]);
    }
    // The settlements, in order: cooling-off paid (A), met (C), claims in full (E) and pro rata (F).
    const settled = report.kept!.filter((r) => r.settlement !== undefined);
    const summary = (r: VerifiedRecord) => [r.merchantId, r.account, r.kind, r.amount, r.settlement!.reason, r.settlement!.holder];
    const { A, C, E, F } = s.cards;
    expect(settled.map(summary)).to.deep.equal([
      [PAID, A.account, 3, 200_000n, SettlementReason.CoolingOff, A.holder.address.toLowerCase()],
      [OWING, C.account, 3, 100_000n, SettlementReason.CoolingOff, C.holder.address.toLowerCase()],
      [FULL, E.account, 3, 100_000n, SettlementReason.Claim, E.holder.address.toLowerCase()],
      [PRO_RATA, F.account, 3, 100_000n, SettlementReason.Claim, F.holder.address.toLowerCase()],
    ]);
    expect(settled.every((r) => r.ciphertext.length === 0 && r.commitment === "" && r.problems.length === 0)).to.equal(true);
    for (const r of settled) {
      const c = await s.ledger.accountBooks(r.merchantId, r.account);
      expect(c.recordCount, `card ${r.account}`).to.equal(2n + (r.account === s.cards.E.account ? 1n : 0n));
    }
    // A batch followed the settlements: its records come after them in the chain.
    const last = report.kept!.at(-1)!;
    expect(last.settlement).to.equal(undefined);
    expect(last.recordIndex).to.be.greaterThan(settled.at(-1)!.recordIndex);
  });

  it("links a settlement as keccak256(head | settlement tag | n | merchantId | account | holder | reason | amount)", async function () {
    const logs = await s.ledger.queryFilter(s.ledger.filters.Settled(), 0);
    expect(logs).to.have.length(4);
    for (const log of logs) {
      const [merchantId, account, holder, recordIndex, reason, amount, chainHead] = log.args;
      const previous = recordIndex === 1n ? undefined : await s.ledger.chainHead({ blockTag: log.blockNumber - 1 });
      const byDoc = solidityPackedKeccak256(
        ["bytes32", "bytes32", "uint64", "uint32", "bytes32", "address", "uint8", "uint48"],
        [previous![1], SETTLEMENT_LINK_TAG, recordIndex, merchantId, account, holder, reason, amount],
      );
      expect(byDoc).to.equal(chainHead);
      const mine = linkSettlement(getBytes(previous![1]), { recordIndex, merchantId: Number(merchantId), account, holder, reason: Number(reason), amount });
      expect("0x" + Buffer.from(mine).toString("hex")).to.equal(chainHead);
    }
  });

  it("reports a tampered settlement as a chain break at its record", async function () {
    const report = await read(tampered);
    expect(report.ok).to.equal(false);
    const breaks = report.discrepancies.filter((d) => d.kind === "chain-break");
    const claim = (await s.ledger.queryFilter(s.ledger.filters.Settled(FULL), 0))[0];
    expect(breaks.map((d) => [d.recordIndex, d.merchantId, d.account])).to.deep.equal([[claim.args.recordIndex, FULL, s.cards.E.account]]);
    // …and the books rebuilt from the altered log differ from the contract's.
    expect(report.discrepancies.filter((d) => d.kind === "books-mismatch").map((d) => d.details?.field)).to.include("refunded");
  });

  it("books settlements into cards that left memory: the same reports with one card in memory", async function () {
    for (const rpc of [undefined, tampered]) {
      const all = await read(rpc);
      const one = await read(rpc, 1);
      expect(one).to.deep.equal(all);
      expect([one.ok, one.settlements]).to.deep.equal([rpc === undefined, 4]);
    }
  });
});
