/**
 * The `prepaid` command line as a regulator runs it: real processes (node bin/prepaid.mjs)
 * against a `hardhat node` carrying the main job's day of traffic, one shared sync in `before`.
 * Every run is checked for the regulator key in its output.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { PassThrough } from "node:stream";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { expect } from "chai";
import { id } from "ethers";
import { network } from "hardhat";

import { DEMO_REGULATOR_KEY, MERCHANTS, SUSPENDED, runDay, type DayConnection, type DayResult } from "../../scripts/lib/day.js";
import { RecordKind } from "../../src/crypto/details.js";
import { publicKeyOf } from "../../src/crypto/ecies.js";
import { csvCell, csvLine, yuan, yuanDecimal } from "../../src/cli/format.js";
import { main } from "../../src/cli/main.js";
import { IndexQueries } from "../../src/indexer/queries.js";
import { merchantStatusName } from "../../src/regulator/books.js";
import { indexExists, openIndex } from "../../src/indexer/open.js";
import { RegulatorReader } from "../../src/regulator/reader.js";
import { Uploader } from "../../src/upload/uploader.js";
import type { PrepaidLedger } from "../../types/ethers-contracts/index.js";
import { freePort, startHardhatNode } from "../helpers/processes.js";
import { TEST_BACKEND, indexDb, sqliteOnly } from "../helpers/index-db.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = join(root, "bin", "prepaid.mjs");
const COMMAND_NAMES = ["sync", "status", "merchants", "merchant", "account", "alerts", "export", "serve", "users", "audit", "receipt"];
/** A valid secp256k1 key that is not the regulator's. */
const OTHER_KEY = id("test: not the regulator's key");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Fails if `text` contains the regulator key, with or without its 0x. */
function expectNoKey(text: string, key = DEMO_REGULATOR_KEY): void {
  expect(text.toLowerCase()).not.to.include(key.slice(2).toLowerCase());
}

function collect(child: ChildProcess): Promise<Run> {
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

function start(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, PREPAID_REGULATOR_KEY: "", TZ: "UTC", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Parses RFC 4180 CSV (quoted cells, doubled quotes, CRLF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") row.push(cell), (cell = "");
    else if (c === "\r" && text[i + 1] === "\n") {
      rows.push([...row, cell]);
      (row = []), (cell = ""), i++;
    } else cell += c;
  }
  expect(cell === "" && row.length === 0, "the CSV ends with CRLF").to.equal(true);
  return rows;
}

const fenOf = (yuanText: string) => BigInt(yuanText.replace(".", ""));
const digestOf = (path: string) => {
  const db = openIndex(path, { mustExist: true, readOnly: true });
  try {
    return new IndexQueries(db).digest();
  } finally {
    db.close();
  }
};

describe("prepaid command line", function () {
  this.timeout(240_000);

  let node: Awaited<ReturnType<typeof startHardhatNode>>;
  let connection: Awaited<ReturnType<typeof network.create>>;
  let day: DayResult;
  let ledger: PrepaidLedger;
  let dir: string;
  let db: string;
  let sync: Run;
  /** The day's settlements (the evening's claims and the morning's cooling-off return): records of their cards beside the uploaded ones. */
  let settled: Awaited<ReturnType<PrepaidLedger["queryFilter"]>>;
  /** Every record of the ledger: uploaded and settled. */
  let records: number;
  const deploymentId = `test-cli-${process.pid}`;

  /** Runs `prepaid args…` to completion in the test folder, with the regulator key in the environment. */
  async function prepaid(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
    const run = await collect(start(args, dir, { PREPAID_REGULATOR_KEY: DEMO_REGULATOR_KEY, ...env }));
    expectNoKey(run.stdout + run.stderr);
    return run;
  }

  before(async function () {
    node = await startHardhatNode();
    // The node's URL overrides the `localhost` network's (a configuration variable is resolved
    // once per process: another file's node would be reached).
    connection = await network.create({ network: "localhost", override: { url: node.url } });
    // Ignition journals this deployment under ignition/deployments/test-cli-<pid> (git-ignored,
    // removed in `after`), not in chain-31337, which other runs against a local node share.
    const conn: DayConnection = {
      ethers: connection.ethers,
      ignition: { deploy: (module, options) => connection.ignition.deploy(module, { ...options, deploymentId }) },
    };
    day = await runDay(conn);
    ledger = await connection.ethers.getContractAt("PrepaidLedger", day.ledgerAddress);
    settled = await ledger.queryFilter(ledger.filters.Settled(), 0);
    records = day.uploaded.length + settled.length;
    dir = mkdtempSync(join(tmpdir(), "prepaid-cli-"));
    db = indexDb(dir, "index.sqlite");
    // Thresholds below the day's largest cards, so card-limit alerts fire (the defaults fire none).
    writeFileSync(join(dir, "cli.json"), JSON.stringify({ db: TEST_BACKEND === "sqlite" ? "index.sqlite" : db, risk: { maxCardBalance: 300_000 } }));
    sync = await prepaid(["sync", "--config", "cli.json", "--rpc", node.url, "--ledger", day.ledgerAddress, "--quorum", day.quorumAddress]);
  });

  after(async function () {
    await node?.stop();
    rmSync(join(root, "ignition", "deployments", deploymentId), { recursive: true, force: true });
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  describe("sync", function () {
    it("exits 0, prints a summary on stdout and progress on stderr", function () {
      expect(sync.code, sync.stderr).to.equal(0);
      expect(sync.stdout).to.match(new RegExp(`^Synced blocks 0–\\d+ of chain 31337 in [\\d.]+ s: ${records} new records`));
      expect(sync.stdout).to.include("Books match the contract");
      expect(sync.stdout).to.match(/0 discrepancies, [1-9]\d* alerts/);
      expect(sync.stderr).to.match(/^sync +\d+%  block \d+ of \d+/m);
      expect(sync.stderr).to.include("decrypting as regulator 0x");
    });

    it("status --json: the index covers every record and the quorum's confirmation", async function () {
      const run = await prepaid(["status", "--json", "--db", db]);
      expect(run.code, run.stderr).to.equal(0);
      const { info, totals } = JSON.parse(run.stdout);
      const quorum = await connection.ethers.getContractAt("SupervisorQuorum", day.quorumAddress);
      const final = await quorum.lastFinal();
      expect(info).to.include({ chainId: "31337", ledger: day.ledgerAddress, quorum: day.quorumAddress, recordCount: records });
      expect(info.finalRecordCount).to.equal(Number(final));
      expect(totals).to.include({ records, verified: records, failed: 0, pending: records - Number(final) });
    });
  });

  describe("reports", function () {
    it("merchants --json: every figure equals the contract's merchantBooks", async function () {
      const run = await prepaid(["merchants", "--json", "--db", db]);
      expect(run.code, run.stderr).to.equal(0);
      const { merchants } = JSON.parse(run.stdout) as { merchants: Record<string, number | string>[] };
      expect(merchants.map((m) => m.merchantId)).to.deep.equal(MERCHANTS.map((m) => m.id));
      for (const m of merchants) {
        const c = await ledger.merchantBooks(m.merchantId);
        expect(m.status).to.equal(merchantStatusName(Number(c.status)));
        const mine = [m.accountCount, m.recordCount, m.toppedUp, m.consumed, m.refunded, m.liability].map((v) => BigInt(v));
        expect(mine).to.deep.equal([c.accountCount, c.recordCount, c.toppedUp, c.consumed, c.refunded, c.liability]);
      }
    });

    it("merchants: a table in yuan with a total liability equal to the contract's", async function () {
      const run = await prepaid(["merchants", "--db", db]);
      let liability = 0n;
      for (const m of MERCHANTS) liability += (await ledger.merchantBooks(m.id)).liability;
      const total = run.stdout.split("\n").find((l) => l.trimStart().startsWith("total"))!;
      expect(total).to.include(`¥${(liability / 100n).toLocaleString("en-US")}.${String(liability % 100n).padStart(2, "0")}`);
      expect(run.stdout.split("\n")[0]).to.match(/^merchant +name +status +accounts +records +topped up +consumed +refunded +liability/);
      // Each merchant's name from the regulator's registry data (MerchantProfileSet).
      for (const m of MERCHANTS) expect(run.stdout).to.match(new RegExp(`^ *${m.id} +${m.name} +(active|closed)`, "m"));
    });

    it("merchant <id>: the suspended (then closed) merchant's figures, largest balances first, and only its alerts", async function () {
      const run = await prepaid(["merchant", String(SUSPENDED), "--db", db, "--json"]);
      expect(run.code, run.stderr).to.equal(0);
      const { merchant, topAccounts, alerts } = JSON.parse(run.stdout);
      // Suspended at midday, closed in the evening: closing ends the suspension's reason.
      expect(merchant).to.include({ merchantId: SUSPENDED, status: "closed", suspendedReason: null });
      const balances = topAccounts.map((a: { balance: number }) => a.balance);
      expect(balances).to.have.length(10);
      expect(balances).to.deep.equal([...balances].sort((a, b) => b - a));
      expect(alerts.every((a: { merchantId: number }) => a.merchantId === SUSPENDED)).to.equal(true);
      const text = await prepaid(["merchant", String(SUSPENDED), "--db", db, "--top", "3"]);
      expect(text.stdout).to.include("Status:        closed\n");
      const { accountCount } = await ledger.merchantBooks(SUSPENDED);
      expect(text.stdout).to.include(`Largest balances (3 of ${accountCount} accounts):`);
      // Its registry data heads the page.
      const lotus = MERCHANTS.find((m) => m.id === SUSPENDED)!;
      expect(text.stdout).to.include(`Merchant ${SUSPENDED} ${lotus.name}\n`);
      expect(text.stdout).to.include(`Licence:       ${lotus.licence}\n`);
      expect(merchant).to.include({ name: lotus.name });
    });

    it("merchant <id>: who may write — its recorder keys, a pending offer and the history, equal to the contract's roles", async function () {
      const id = MERCHANTS[0].id;
      const signers = await connection.ethers.getSigners();
      const [, regulator] = signers;
      const offered = signers[16].address.toLowerCase();
      await (await ledger.connect(regulator).addRecorder(id, offered)).wait();
      const resync = await prepaid(["sync", "--config", "cli.json", "--rpc", node.url]);
      expect(resync.code, resync.stderr).to.equal(0);
      const run = await prepaid(["merchant", String(id), "--db", db, "--json"]);
      expect(run.code, run.stderr).to.equal(0);
      const { recorders } = JSON.parse(run.stdout) as {
        recorders: { current: { recorder: string; via: string; by: string }[]; pending: { recorder: string; executableAt: number; executable: boolean }[]; history: { event: string }[] };
      };
      const role = await ledger.recorderRole(id);
      const first = signers[2].address.toLowerCase(); // the day registers MERCHANTS[i] with account 2 + i
      expect(recorders.current.map((k) => [k.recorder, k.via, k.by])).to.deep.equal([[first, "registered", regulator.address.toLowerCase()]]);
      expect(await ledger.hasRole(role, first)).to.equal(true);
      expect(await ledger.hasRole(role, offered)).to.equal(false);
      const [, executableAt] = await ledger.recorderOffer(id, offered);
      expect(recorders.pending).to.have.length(1);
      expect(recorders.pending[0]).to.include({ recorder: offered, executableAt: Number(executableAt), executable: false });
      expect(recorders.history.map((e) => e.event)).to.deep.equal(["registered", "offered"]);
      const text = (await prepaid(["merchant", String(id), "--db", db])).stdout;
      expect(text).to.include("Who may write (1 key, from the registry's events");
      expect(text).to.match(new RegExp(`^${first} +\\d{4}-\\d\\d-\\d\\d .+registered by ${regulator.address.toLowerCase()}`, "m"));
      expect(text).to.include("Pending recorder offers (1):");
      expect(text).to.match(new RegExp(`^${offered} +${regulator.address.toLowerCase()} .+awaiting a recorder's answer`, "m"));
      expect(text).to.include("Recorder history (2):");
      expect(text).to.match(/ offered +0x[0-9a-f]{40} +offered by regulator 0x/);
    });

    it("merchant <id> and merchants: custody — held, ratio, required and history equal to the contract's views and events", async function () {
      const id = MERCHANTS[1].id;
      const custody = await connection.ethers.getContractAt("MerchantCustody", day.custodyAddress);
      const signers = await connection.ethers.getSigners();
      // A ratio raised to 100 % after the day: the merchant falls below its requirement.
      await (await custody.connect(signers[1]).setCoverageRatio(id, 10_000)).wait();
      const resync = await prepaid(["sync", "--config", "cli.json", "--rpc", node.url]);
      expect(resync.code, resync.stderr).to.equal(0);
      const run = await prepaid(["merchant", String(id), "--db", db, "--json"]);
      expect(run.code, run.stderr).to.equal(0);
      const { custody: view } = JSON.parse(run.stdout) as {
        custody: { custody: string; held: number; ratioBps: number; liability: number; required: number; belowRequirement: boolean; history: { event: string; txHash: string; amount: number | null }[] };
      };
      const c = await custody.custodyOf(id);
      expect(view.custody).to.equal(day.custodyAddress.toLowerCase());
      expect([view.held, view.ratioBps, view.liability, view.required].map(BigInt)).to.deep.equal([c.held, c.ratioBps, c.liability, c.required]);
      expect(view.belowRequirement).to.equal(c.held < c.required);
      // Deposits, withdrawals, ratio changes, and the payouts out of the merchant's custody (the
      // morning's cooling-off return was a card of this merchant).
      const events = [
        ...(await custody.queryFilter(custody.filters.Deposited(id), 0)),
        ...(await custody.queryFilter(custody.filters.Withdrawn(id), 0)),
        ...(await custody.queryFilter(custody.filters.CoverageRatioSet(id), 0)),
        ...(await custody.queryFilter(custody.filters.CoolingOffPaid(id), 0)),
        ...(await custody.queryFilter(custody.filters.Claimed(id), 0)).filter((e) => e.args.paid > 0n),
        ...(await custody.queryFilter(custody.filters.ClaimsSwept(id), 0)),
      ].sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
      expect(view.history.map((e) => e.txHash)).to.deep.equal(events.map((e) => e.transactionHash.toLowerCase()));
      expect(view.history.map((e) => e.event)).to.deep.equal(["ratio-set", "deposited", "cooling-off-paid", "ratio-set"]);
      const text = (await prepaid(["merchant", String(id), "--db", db])).stdout;
      expect(text).to.include(`Custody (contract ${day.custodyAddress.toLowerCase()}, from its events):`);
      expect(text.split("\n").find((l) => l.startsWith("Held:"))).to.match(new RegExp(`^Held: +${yuan(c.held).replace(/[.]/g, "\\.")}$`));
      expect(text).to.match(/^Coverage ratio: +\d+ %$/m);
      expect(text).to.match(/Coverage: +\d+\.\d % — BELOW the requirement by ¥/);
      expect(text).to.include("Custody history (4):");
      expect(text).to.match(/ cooling-off return +-¥[\d,]+\.\d\d/);
      expect(text).to.match(/ ratio set .+30 % → 100 %/);
      const table = (await prepaid(["merchants", "--db", db])).stdout;
      expect(table.split("\n")[0]).to.match(/ liability +failed records +alerts +custody held +required +coverage/);
      const line = table.split("\n").find((l) => l.trimStart().startsWith(`${id} `))!;
      expect(line).to.include(yuan(c.held)).and.include(yuan(c.required)).and.match(/ BELOW\s*$/);
      const alerts = JSON.parse((await prepaid(["alerts", "--rule", "custody-below-requirement", "--json", "--db", db])).stdout) as { alerts: { merchantId: number }[] };
      expect(alerts.alerts.map((a) => a.merchantId)).to.deep.equal([id]);
      // The day's ratio again, so the tests after this one see the day's alerts only.
      await (await custody.connect(signers[1]).setCoverageRatio(id, 3_000)).wait();
      expect((await prepaid(["sync", "--config", "cli.json", "--rpc", node.url])).code).to.equal(0);
      const after = JSON.parse((await prepaid(["alerts", "--rule", "custody-below-requirement", "--json", "--db", db])).stdout) as { alerts: unknown[] };
      expect(after.alerts).to.deep.equal([]);
    });

    it("account <id>: every record of the card, decrypted, with verification and confirmation", async function () {
      // A card with a top-up in the afternoon, after the supervisors' noon checkpoint (and before
      // their end-of-day one).
      const uploaded = day.uploaded.filter((r) => r.account === day.uploaded.at(-1)!.account);
      // …and, if its holder claimed it in the evening, the claim custody booked on it.
      const claims = settled.filter((l) => l.args.account === uploaded[0].account).map((l) => Number(l.args.recordIndex));
      const reader = await RegulatorReader.open(
        { ledger: day.ledgerAddress, quorum: day.quorumAddress, privateKey: DEMO_REGULATOR_KEY, keepRecords: true },
        connection.ethers.provider,
      );
      const decrypted = new Map((await reader.read()).kept!.map((r) => [Number(r.recordIndex), r]));
      const run = await prepaid(["account", uploaded[0].account, "--db", db, "--json"]);
      expect(run.code, run.stderr).to.equal(0);
      const { merchants } = JSON.parse(run.stdout);
      expect(merchants).to.have.length(1);
      const [card] = merchants;
      expect(card.records.map((r: { recordIndex: number }) => r.recordIndex)).to.deep.equal([...uploaded.map((r) => Number(r.recordIndex)), ...claims]);
      const settlements = card.records.filter((r: { settlement: unknown }) => r.settlement !== null);
      expect(settlements.map((r: { recordIndex: number }) => r.recordIndex)).to.deep.equal(claims);
      card.records = card.records.filter((r: { settlement: unknown }) => r.settlement === null);
      for (const r of card.records) {
        const expected = decrypted.get(r.recordIndex)!;
        expect(r.details).to.deep.equal({ time: expected.details!.time, orderRef: expected.details!.orderRef, memo: expected.details!.memo });
        expect(r.verification).to.equal("verified");
        expect(r.confirmed).to.equal(expected.confirmed);
      }
      // The supervisors confirmed the books again at the end of the day: every record is final.
      expect(card.records.every((r: { confirmed: boolean }) => r.confirmed)).to.equal(true);
      const books = await ledger.accountBooks(card.merchantId, card.account);
      expect(BigInt(card.balance)).to.equal(books.toppedUp - books.consumed - books.refunded);

      const text = await prepaid(["account", uploaded[0].account, "--db", db]);
      for (const r of card.records) {
        const line = text.stdout.split("\n").find((l) => l.trimStart().startsWith(`${r.recordIndex} `))!;
        expect(line, text.stdout).to.include(r.details.orderRef).and.to.include(r.details.memo).and.to.include("verified");
        expect(line).to.include(r.confirmed ? "confirmed" : "pending");
        expect(line).to.match(r.kind === RecordKind.TopUp ? /\+¥[\d,]+\.\d\d/ : /-¥[\d,]+\.\d\d/);
      }
      // The running balance: each line's "balance after" is the sum of the signed amounts so far,
      // and the last is the card's balance on chain.
      const header = text.stdout.split("\n").find((l) => l.includes("balance after"))!;
      expect(header).to.match(/record +block time +kind +amount +balance after +order ref +memo +verification +confirmation/);
      const all = (JSON.parse(run.stdout) as { merchants: { records: { recordIndex: number; kind: number; amount: number }[] }[] }).merchants[0].records;
      let balance = 0n;
      for (const r of all) {
        balance += r.kind === RecordKind.TopUp ? BigInt(r.amount) : -BigInt(r.amount);
        const line = text.stdout.split("\n").find((l) => l.trimStart().startsWith(`${r.recordIndex} `))!;
        expect(line, `record ${r.recordIndex}`).to.match(new RegExp(`[+-]¥[\\d,]+\\.\\d\\d +${yuan(balance).replace(/[$.]/g, "\\$&")} `));
      }
      expect(balance).to.equal(books.balance);
    });

    it("alerts: --exit-code exits 10 when it lists alerts and 0 when none", async function () {
      const all = await prepaid(["alerts", "--db", db, "--json"]);
      const { alerts } = JSON.parse(all.stdout) as { alerts: { rule: string; merchantId: number; merchantName: string | null }[] };
      expect(alerts.length).to.be.greaterThan(0);
      // Each alert names its merchant as the registry data does.
      for (const a of alerts) expect(a.merchantName).to.equal(MERCHANTS.find((m) => m.id === a.merchantId)!.name);
      const first = MERCHANTS.find((m) => m.id === alerts[0].merchantId)!;
      expect((await prepaid(["alerts", "--db", db])).stdout).to.match(new RegExp(` ${first.id} +${first.name} +card `));
      expect(new Set(alerts.map((a) => a.rule))).to.deep.equal(new Set(["card-limit"]));
      expect((await prepaid(["alerts", "--db", db, "--exit-code"])).code).to.equal(10);
      expect((await prepaid(["alerts", "--db", db, "--rule", "dormant-merchant", "--exit-code"])).code).to.equal(0);
      const one = await prepaid(["alerts", "--db", db, "--merchant", String(alerts[0].merchantId), "--json"]);
      expect(JSON.parse(one.stdout).alerts).to.deep.equal(alerts.filter((a) => a.merchantId === alerts[0].merchantId));
    });

    it("account <id>: a card id as an alert prints it (0x + 8 hex digits + …) opens the card; a short, ambiguous or unknown prefix is refused", async function () {
      const text = await prepaid(["alerts", "--db", db, "--rule", "card-limit"]);
      const printed = /card (0x[0-9a-f]{8}…)/.exec(text.stdout)![1];
      const { alerts } = JSON.parse((await prepaid(["alerts", "--db", db, "--rule", "card-limit", "--json"])).stdout) as { alerts: { account: string }[] };
      const full = alerts.find((a) => a.account.startsWith(printed.slice(0, 10)))!.account;
      for (const id of [printed, printed.slice(0, -1), full.slice(0, 20).toUpperCase().replace("0X", "0x")]) {
        const run = await prepaid(["account", id, "--db", db, "--json"]);
        expect(run.code, run.stderr).to.equal(0);
        expect(JSON.parse(run.stdout).account).to.equal(full);
      }
      const short = await prepaid(["account", full.slice(0, 6), "--db", db]);
      expect([short.code, short.stderr]).to.satisfy(([code, err]: [number, string]) => code === 2 && err.includes("at least 8 hex digits"));
      const none = await prepaid(["account", "0x" + "f".repeat(8) + "0".repeat(20), "--db", db]);
      expect(none.code).to.equal(6);
    });
  });

  describe("export", function () {
    it("records as CSV: a header and one line per record, which parse back to the index's figures", async function () {
      const run = await prepaid(["export", "records", "--format", "csv", "--out", "records.csv", "--db", db]);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.equal(`Wrote ${records} records to ${join(dir, "records.csv")} (csv).\n`);
      const [header, ...rows] = parseCsv(readFileSync(join(dir, "records.csv"), "utf8"));
      expect(header).to.include.members(["record_index", "merchant_id", "account", "kind", "amount_yuan", "order_ref", "memo", "confirmed", "settlement", "holder"]);
      expect(rows).to.have.length(records);
      const col = (row: string[], name: string) => row[header.indexOf(name)];
      expect(rows.map((r) => Number(col(r, "record_index")))).to.deep.equal(Array.from({ length: records }, (_, i) => i + 1));
      // A settlement is a refund of its card, with its reason and holder; it has no order reference.
      expect(rows.filter((r) => col(r, "settlement") !== "").map((r) => [Number(col(r, "record_index")), col(r, "kind"), col(r, "holder")])).to.deep.equal(
        settled.map((l) => [Number(l.args.recordIndex), "refund", l.args.holder.toLowerCase()]),
      );
      for (const m of MERCHANTS) {
        const mine = rows.filter((r) => Number(col(r, "merchant_id")) === m.id);
        const sum = (kind: string) => mine.filter((r) => col(r, "kind") === kind).reduce((s, r) => s + fenOf(col(r, "amount_yuan")), 0n);
        const c = await ledger.merchantBooks(m.id);
        expect([sum("top-up"), sum("consume"), sum("refund")]).to.deep.equal([c.toppedUp, c.consumed, c.refunded]);
        expect(mine.every((r) => (col(r, "order_ref") !== "" || col(r, "settlement") !== "") && col(r, "verification") === "verified")).to.equal(true);
      }
      expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).to.deep.equal([]);
    });

    it("records, accounts, merchants and alerts as JSON documents that parse", async function () {
      const exported = JSON.parse((await prepaid(["export", "records", "--format", "json", "--db", db])).stdout);
      expect(exported).to.have.length(records);
      expect(exported[0].details.orderRef).to.be.a("string");
      const accounts = JSON.parse((await prepaid(["export", "accounts", "--format", "json", "--db", db])).stdout);
      const merchants = JSON.parse((await prepaid(["export", "merchants", "--json", "--db", db])).stdout);
      expect(accounts).to.have.length(merchants.reduce((s: number, m: { accountCount: number }) => s + m.accountCount, 0));
      const alerts = JSON.parse((await prepaid(["export", "alerts", "--format", "json", "--db", db])).stdout);
      const listed = JSON.parse((await prepaid(["alerts", "--json", "--db", db])).stdout).alerts;
      expect(alerts).to.deep.equal(listed);
      const one = JSON.parse((await prepaid(["export", "accounts", "--merchant", "101", "--format", "json", "--db", db])).stdout);
      expect(one.every((a: { merchantId: number }) => a.merchantId === 101)).to.equal(true);
      expect(one).to.have.length(merchants[0].accountCount);
    });

    it("leaves no file behind when it fails, and keeps the previous one", async function () {
      writeFileSync(join(dir, "keep.csv"), "previous export\n");
      const unknown = await prepaid(["export", "records", "--merchant", "999", "--out", "keep.csv", "--db", db]);
      expect(unknown.code).to.equal(6);
      expect(readFileSync(join(dir, "keep.csv"), "utf8")).to.equal("previous export\n");
      const nowhere = await prepaid(["export", "records", "--out", join(dir, "missing", "r.csv"), "--db", db]);
      expect(nowhere.code, nowhere.stderr).to.equal(2);
      expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).to.deep.equal([]);
    });
  });

  describe("exit codes", function () {
    it("2 for an unknown flag or command, with the usage line; errors as JSON with --json", async function () {
      const flag = await prepaid(["merchants", "--colour", "red", "--db", db]);
      expect(flag.code).to.equal(2);
      expect(flag.stderr).to.include("--colour").and.to.include("usage: prepaid merchants [options]");
      expect(flag.stdout).to.equal("");
      const json = await prepaid(["merchant", "--db", db, "--json"]);
      expect(json.code).to.equal(2);
      expect(JSON.parse(json.stderr).error).to.deep.include({ code: "INVALID_ARGUMENT", message: "missing <id>" });
      expect((await prepaid(["merchnts"])).code).to.equal(2);
      expect((await prepaid(["merchant", "abc", "--db", db])).code).to.equal(2);
    });

    it("2 with a suggestion for a mistyped command or flag, and for a directory given as --db", async function () {
      const command = await prepaid(["merchnts", "--db", db]);
      expect([command.code, command.stderr.split("\n")[0]]).to.deep.equal([2, 'error: unknown command "merchnts" (did you mean "merchants"?) [INVALID_ARGUMENT]']);
      const flag = await prepaid(["merchants", "--josn", "--db", db]);
      expect([flag.code, flag.stderr.split("\n")[0]]).to.deep.equal([2, "error: Unknown option '--josn' (did you mean --json?) [INVALID_ARGUMENT]"]);
      // Nothing close: no guess.
      expect((await prepaid(["xyzzy"])).stderr).to.not.include("did you mean");
      const directory = await prepaid(["merchants", "--db", dir]);
      expect(directory.code).to.equal(2);
      expect(directory.stderr).to.include("the index path is a directory").and.to.not.include("EISDIR");
    });

    it("3 when the node is unreachable, and no index file is created", async function () {
      const port = await freePort(); // free, so nothing listens on it
      const path = indexDb(dir, "unreachable.sqlite");
      const run = await prepaid(["sync", "--rpc", `http://127.0.0.1:${port}`, "--ledger", day.ledgerAddress, "--db", path]);
      expect(run.code, run.stderr).to.equal(3);
      expect(run.stderr).to.include("[RPC_ERROR]");
      expect(indexExists(path)).to.equal(false);
    });

    it("5 for another regulator key, never printing it, and the index is unchanged", async function () {
      const before = digestOf(db);
      const run = await prepaid(["sync", "--rpc", node.url, "--db", db], { PREPAID_REGULATOR_KEY: OTHER_KEY });
      expect(run.code, run.stderr).to.equal(5);
      expectNoKey(run.stdout + run.stderr, OTHER_KEY);
      expect(digestOf(db)).to.equal(before);
    });

    it("5 for another regulator key on a first sync, which leaves no half-made index behind", async function () {
      const path = indexDb(dir, "first-with-wrong-key.sqlite");
      const run = await prepaid(["sync", "--rpc", node.url, "--ledger", day.ledgerAddress, "--db", path], { PREPAID_REGULATOR_KEY: OTHER_KEY });
      expect(run.code, run.stderr).to.equal(5);
      expect(indexExists(path)).to.equal(false);
      if (TEST_BACKEND === "sqlite") for (const suffix of ["-wal", "-shm"]) expect(existsSync(path + suffix), path + suffix).to.equal(false);
      // The right key then builds the index from scratch.
      const again = await prepaid(["sync", "--rpc", node.url, "--ledger", day.ledgerAddress, "--db", path]);
      expect(again.code, again.stderr).to.equal(0);
      expect(indexExists(path)).to.equal(true);
    });

    it("2 for a sync without a key unless told --no-decrypt; an index built so goes on without one", async function () {
      const path = indexDb(dir, "no-key.sqlite");
      const base = ["sync", "--rpc", node.url, "--ledger", day.ledgerAddress, "--db", path];
      const refused = await prepaid(base, { PREPAID_REGULATOR_KEY: "" });
      expect(refused.code).to.equal(2);
      expect(refused.stderr).to.include("no regulator key").and.to.include("--no-decrypt");
      expect(indexExists(path)).to.equal(false);
      const both = await prepaid([...base, "--no-decrypt"]);
      expect([both.code, both.stderr.includes("give one or the other")]).to.deep.equal([2, true]);
      const chosen = await prepaid([...base, "--no-decrypt"], { PREPAID_REGULATOR_KEY: "" });
      expect(chosen.code, chosen.stderr).to.equal(0);
      const status = JSON.parse((await prepaid(["status", "--db", path, "--json"])).stdout);
      expect([status.info.decryptedFor, status.totals.verified]).to.deep.equal([null, 0]);
      // The index was built without a key: the next sync needs no flag.
      const again = await prepaid(["sync", "--rpc", node.url, "--db", path], { PREPAID_REGULATOR_KEY: "" });
      expect(again.code, again.stderr).to.equal(0);
    });

    it("2 for a key that is not a key, from the environment or a key file, without echoing it", async function () {
      const notAKey = DEMO_REGULATOR_KEY.slice(0, -1) + "g";
      const env = await prepaid(["sync", "--rpc", node.url, "--db", db], { PREPAID_REGULATOR_KEY: notAKey });
      expect(env.code).to.equal(2);
      expect(env.stderr).not.to.include(notAKey.slice(2, 40));
      writeFileSync(join(dir, "bad.key"), notAKey + "\n", { mode: 0o600 });
      const file = await prepaid(["sync", "--rpc", node.url, "--db", db, "--key-file", "bad.key"]);
      expect(file.code).to.equal(2);
      expect(file.stderr).not.to.include(notAKey.slice(2, 40));
      const inConfig = join(dir, "with-key.json");
      writeFileSync(inConfig, JSON.stringify({ privateKey: DEMO_REGULATOR_KEY }));
      const config = await prepaid(["status", "--config", inConfig, "--db", db]);
      expect(config.code).to.equal(2);
      expect(config.stderr).to.include("a private key never goes in the config file");
    });

    it("4 for an index built from another ledger", async function () {
      const [admin, regulator] = await connection.ethers.getSigners();
      const other = await connection.ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
      const before = digestOf(db);
      const run = await prepaid(["sync", "--rpc", node.url, "--db", db, "--ledger", await other.getAddress()]);
      expect(run.code, run.stderr).to.equal(4);
      expect(run.stderr).to.include("[INDEX_MISMATCH]");
      expect(digestOf(db)).to.equal(before);
    });

    it("4 for a file that is not an SQLite index, for sync and for reports", async function () {
      sqliteOnly(this); // a file; PostgreSQL: test/indexer/postgres.test.ts
      const path = indexDb(dir, "notes.sqlite");
      writeFileSync(path, "not a database\n");
      expect((await prepaid(["status", "--db", path])).code).to.equal(4);
      expect((await prepaid(["sync", "--rpc", node.url, "--ledger", day.ledgerAddress, "--db", path])).code).to.equal(4);
      expect(readFileSync(path, "utf8")).to.equal("not a database\n");
    });

    it("6 for a merchant or an account the index does not hold", async function () {
      const merchant = await prepaid(["merchant", "999", "--db", db, "--json"]);
      expect(merchant.code).to.equal(6);
      expect(JSON.parse(merchant.stderr).error).to.deep.include({ code: "NOT_FOUND", details: { merchantId: 999 } });
      expect((await prepaid(["account", id("no such card"), "--db", db])).code).to.equal(6);
      expect((await prepaid(["alerts", "--merchant", "999", "--db", db])).code).to.equal(6);
    });
  });

  describe("help", function () {
    it("the top-level help lists every command, the config file, the key and the exit codes", async function () {
      const run = await prepaid(["--help"]);
      expect(run.code).to.equal(0);
      for (const name of COMMAND_NAMES) expect(run.stdout).to.match(new RegExp(`^  ${name}\\b`, "m"));
      expect(run.stdout).to.include("prepaid.config.json").and.to.include("PREPAID_REGULATOR_KEY").and.to.include("--key-file");
      for (const code of [0, 1, 2, 3, 4, 5, 6, 7, 10]) expect(run.stdout).to.match(new RegExp(`^ +${code}  `, "m"));
    });

    it("each command's help shows its usage, options and an example (in-process main())", async function () {
      for (const name of COMMAND_NAMES) {
        const stdout = new PassThrough();
        const chunks: Buffer[] = [];
        stdout.on("data", (d: Buffer) => chunks.push(d));
        expect(await main([name, "--help"], { stdout, stderr: new PassThrough(), env: {} })).to.equal(0);
        const text = Buffer.concat(chunks).toString();
        expect(text).to.include(`Usage: prepaid ${name}`).and.to.match(new RegExp(`Examples:\n  .*prepaid ${name}`));
      }
    });
  });

  describe("serve", function () {
    it("prints a URL on 127.0.0.1 that answers 200, and stops on SIGTERM with exit 0", async function () {
      const child = start(["serve", "--db", db], dir);
      try {
        const done = collect(child);
        let url: string | undefined;
        child.stdout!.on("data", (d: Buffer) => (url ??= /http:\/\/127\.0\.0\.1:\d+/.exec(d.toString())?.[0]));
        const deadline = Date.now() + 30_000;
        while (url === undefined && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(url, "the URL printed").to.be.a("string");
        expect((await fetch(url!)).status).to.equal(200);
        child.kill("SIGTERM");
        const run = await done;
        expect(run.code, run.stderr).to.equal(0);
        expect(run.stderr).to.include("dashboard stopped");
      } finally {
        child.kill("SIGKILL"); // only if a failed expectation left it running
      }
    });

    it("exits 2 for an --explorer (or config \"explorer\") that is not an http(s) URL template with {tx}", async function () {
      for (const template of ["https://explorer.example/tx/", "ftp://explorer.example/{tx}"]) {
        const run = await prepaid(["serve", "--db", db, "--explorer", template]);
        expect(run.code, template).to.equal(2);
        expect(run.stderr).to.include("{tx}");
      }
      writeFileSync(join(dir, "explorer.json"), JSON.stringify({ explorer: "https://explorer.example/tx/" }));
      const run = await prepaid(["serve", "--db", db, "--config", "explorer.json"]);
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include("explorer");
    });
  });

  describe("sync --follow", function () {
    it("indexes new records as they land, and stops cleanly on SIGINT", async function () {
      const child = start(["sync", "--rpc", node.url, "--db", db, "--follow", "--interval", "1"], dir, {
        PREPAID_REGULATOR_KEY: DEMO_REGULATOR_KEY,
      });
      try {
        const done = collect(child);
        let out = "";
        child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
        const waitFor = async (pattern: RegExp) => {
          const deadline = Date.now() + 30_000;
          while (!pattern.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
          expect(out).to.match(pattern);
        };
        await waitFor(/Following new blocks every 1 s/);

        const recorder = (await connection.ethers.getSigners())[2]; // merchant 101's recorder in the day
        const uploader = await Uploader.open(
          { ledger: day.ledgerAddress, merchantId: 101, regulatorPublicKey: publicKeyOf(DEMO_REGULATOR_KEY), journalPath: join(dir, "journal.jsonl") },
          recorder,
        );
        const card = id("test: a card sold while the regulator follows");
        await uploader.upload([
          { kind: RecordKind.TopUp, merchantId: 101, account: card, amount: 50_000n, time: 1_795_700_000, orderRef: "SUN-FOLLOW-1", memo: "sold while following" },
        ]);
        uploader.close();
        await waitFor(/: 1 new record, \d+ in the index/);

        child.kill("SIGINT");
        const run = await done;
        expect(run.code, run.stderr).to.equal(0);
        expectNoKey(run.stdout + run.stderr);
        expect(run.stderr).to.include("stopped");
        const history = JSON.parse((await prepaid(["account", card, "--db", db, "--json"])).stdout);
        expect(history.merchants[0].records[0].details).to.deep.equal({ time: 1_795_700_000, orderRef: "SUN-FOLLOW-1", memo: "sold while following" });
      } finally {
        child.kill("SIGKILL"); // only if a failed expectation left it running
      }
    });
  });
});

describe("prepaid output formats", function () {
  it("formats fen as yuan with integer arithmetic", function () {
    expect([yuan(0), yuan(5), yuan(123_456), yuan(-10), yuan(10n ** 17n + 1n)]).to.deep.equal([
      "¥0.00",
      "¥0.05",
      "¥1,234.56",
      "-¥0.10",
      "¥1,000,000,000,000,000.01",
    ]);
    expect([yuanDecimal(123_456), yuanDecimal(-1)]).to.deep.equal(["1234.56", "-0.01"]);
  });

  it("quotes CSV cells by RFC 4180 and defuses formulas", function () {
    expect(csvLine(["a", 'say "hi"', "x,y", "two\nlines", null, 12, -3, true])).to.equal('a,"say ""hi""","x,y","two\nlines",,12,-3,true\r\n');
    expect(["=SUM(A1)", "+1", "-2", "@cmd", "\tx", "safe"].map(csvCell)).to.deep.equal(["'=SUM(A1)", "'+1", "'-2", "'@cmd", "'\tx", "safe"]);
    expect(csvCell('=HYPERLINK("http://x","y")')).to.equal(`"'=HYPERLINK(""http://x"",""y"")"`);
  });
});
