import { expect } from "chai";
import { JsonRpcProvider } from "ethers";
import { network } from "hardhat";

import { DEMO_REGULATOR_KEY, MERCHANTS, SUSPENDED, runDay, type DayResult } from "../../scripts/lib/day.js";
import { balanceOf } from "../../src/regulator/books.js";
import { RegulatorReader, type SupervisionReport } from "../../src/regulator/reader.js";
import { cast, startAnvil } from "../helpers/processes.js";

/**
 * A second, independent EVM client: Foundry's anvil. The main job's day runs against it through
 * the project's own Ignition module and upload module, the regulator reader reads it back, and
 * Foundry's `cast` — a client nobody here wrote — checks the reader's figures.
 */
describe("on anvil (a second EVM client)", function () {
  this.timeout(180_000);
  let anvil: Awaited<ReturnType<typeof startAnvil>>;
  let day: DayResult;
  let detailed: SupervisionReport;

  before(async function () {
    anvil = await startAnvil(["--accounts", "20"]); // the day uses 14: admin, regulator, 4 recorders… 4 supervisors
    // Each test starts its own anvil: its URL overrides the `anvil` network's (a configuration
    // variable is resolved once per process, so a second file would reach the first file's node).
    const connection = await network.create({ network: "anvil", override: { url: anvil.url } });
    day = await runDay(connection);
    const provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true });
    try {
      const reader = await RegulatorReader.open(
        { ledger: day.ledgerAddress, privateKey: DEMO_REGULATOR_KEY, keepRecords: true },
        provider,
      );
      detailed = await reader.read();
    } finally {
      provider.destroy();
    }
  });

  after(async function () {
    await anvil?.stop();
  });

  it("runs the day: deploy through Ignition, upload, and a clean regulator report", function () {
    expect(anvil.output()).not.to.include("panicked");
    expect(day.report.discrepancies).to.deep.equal([]);
    // The evening's claims and the morning's cooling-off return are settlements, records too.
    expect(day.report.settlements).to.be.greaterThan(0);
    expect(day.report.records).to.equal(day.uploaded.length + day.report.settlements);
    expect(day.refused.map((r) => r.merchantId)).to.deep.equal([SUSPENDED]);
    expect(detailed.ok).to.equal(true);
    expect(detailed.records).to.equal(day.report.records);
  });

  it("cast reads the same events as the reader", async function () {
    const logs = JSON.parse(
      await cast(
        ["logs", "--json", "--rpc-url", anvil.url, "--address", day.ledgerAddress, "--from-block", "0", "Recorded(bytes32,uint32,bytes32)"],
        anvil.home,
      ),
    ) as { topics: string[]; data: string; transactionHash: string }[];
    // Settlements log `Settled`, not `Recorded` (docs/FORMAT.md 6): the uploaded records only.
    const kept = detailed.kept!.filter((r) => r.settlement === undefined);
    expect(logs).to.have.length(detailed.records - detailed.settlements).and.to.have.length(kept.length);
    logs.forEach((log, i) => {
      // data = recordIndex u64 | kind u8 | amount u48 | ciphertext (docs/FORMAT.md 6)
      const data = log.data.slice(2);
      expect(BigInt("0x" + data.slice(0, 16)), "record index").to.equal(kept[i].recordIndex);
      expect(parseInt(data.slice(16, 18), 16), "kind").to.equal(kept[i].kind);
      expect(BigInt("0x" + data.slice(18, 30)), "amount").to.equal(kept[i].amount);
      expect(log.topics[1].toLowerCase()).to.equal(kept[i].account);
      expect(Number(BigInt(log.topics[2]))).to.equal(kept[i].merchantId);
      expect(log.topics[3].toLowerCase()).to.equal(kept[i].commitment);
      expect(log.transactionHash.toLowerCase()).to.equal(kept[i].txHash.toLowerCase());
    });
  });

  it("cast agrees with the reader on every balance and every merchant's books", async function () {
    const call = (sig: string, ...args: string[]) =>
      cast(["call", "--rpc-url", anvil.url, day.ledgerAddress, sig, ...args], anvil.home);
    // Every account's balance, as the reader rebuilt it from the records alone.
    const rebuilt = new Map<string, { merchantId: number; account: string; toppedUp: bigint; consumed: bigint; refunded: bigint }>();
    for (const r of detailed.kept!) {
      const key = `${r.merchantId}:${r.account}`;
      const a = rebuilt.get(key) ?? { merchantId: r.merchantId, account: r.account, toppedUp: 0n, consumed: 0n, refunded: 0n };
      if (r.kind === 1) a.toppedUp += r.amount;
      else if (r.kind === 2) a.consumed += r.amount;
      else a.refunded += r.amount;
      rebuilt.set(key, a);
    }
    expect(rebuilt.size).to.equal(detailed.accounts);
    for (const a of rebuilt.values()) {
      const out = await call("balanceOf(uint32,bytes32)(uint256)", String(a.merchantId), a.account);
      expect(BigInt(out.split(" ")[0]), `balance of ${a.account}`).to.equal(balanceOf(a));
    }
    for (const m of detailed.merchants) {
      const out = await call("merchantBooks(uint32)((uint8,uint64,uint64,uint32,uint64,uint64,uint64,uint256))", String(m.merchantId));
      const fields = out.replace(/[()]/g, "").split(",").map((f) => BigInt(f.trim().split(" ")[0]));
      expect(fields, `merchant ${m.merchantId}`).to.deep.equal([
        BigInt(m.status),
        m.nextSequence,
        BigInt(m.recordCount),
        BigInt(m.accountCount),
        m.toppedUp,
        m.consumed,
        m.refunded,
        m.liability,
      ]);
    }
    expect(detailed.merchants.map((m) => m.merchantId)).to.deep.equal(MERCHANTS.map((m) => m.id));
    const [count, head] = (await call("chainHead()(uint64,bytes32)")).split("\n");
    expect([BigInt(count.split(" ")[0]), head]).to.deep.equal([detailed.chain.recordCount, detailed.chain.head]);
  });
});
