/**
 * "A realistic day" on a prepaid-card ledger, shared by the main job (scripts/main-job.ts) and
 * its end-to-end test: deploy through Ignition, register merchants, open cards, upload a day of
 * top-ups, consumption and refunds through the upload module (encrypted, batched), suspend one
 * merchant at midday, then let the regulator read and verify everything. Every merchant keeps a
 * share of its card holders' money in custody (a test token in fen, on local networks): the
 * regulator sets the coverage ratio, the merchants deposit in the morning, and in the evening one
 * takes back half of what the day's consumption freed. At the end two merchants close and their
 * card holders claim what custody holds for them (scripts/lib/exit.ts).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import type { HardhatEthersProvider, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { Contract, encodeBytes32String, id } from "ethers";

import LocalCustodyModule from "../../ignition/modules/LocalCustody.js";
import { publicKeyOf } from "../../src/crypto/ecies.js";
import { RecordKind, type RecordDetails } from "../../src/crypto/details.js";
import { isError } from "../../src/errors.js";
import { RegulatorReader, type SupervisionReport } from "../../src/regulator/reader.js";
import { yuan } from "../../src/regulator/report.js";
import { serveSupervisor } from "../../src/supervisor/http.js";
import { SupervisorNode } from "../../src/supervisor/node.js";
import { Uploader, type UploadedRecord } from "../../src/upload/uploader.js";
import { type ExitResult, demoCard, runExit } from "./exit.js";
import { freePort } from "./ports.js";

/** What `network.create()` gives a script: ethers and Ignition. */
export interface DayConnection {
  ethers: {
    getSigners(): Promise<HardhatEthersSigner[]>;
    provider: HardhatEthersProvider;
  };
  ignition: {
    deploy: (
      module: typeof LocalCustodyModule,
      options: object,
    ) => Promise<{ ledger: Contract; quorum: Contract; token: Contract; custody: Contract }>;
  };
}

export interface Merchant {
  id: number;
  name: string;
  /** Cards sold this day, and a typical purchase in fen. */
  cards: number;
  cardPrice: bigint;
  purchase: bigint;
  memo: string;
}

export const MERCHANTS: readonly Merchant[] = [
  { id: 101, name: "Sunrise Gym", cards: 40, cardPrice: 150_000n, purchase: 8_000n, memo: "spin class" },
  { id: 102, name: "Little Scholars", cards: 30, cardPrice: 200_000n, purchase: 15_000n, memo: "math tutoring" },
  { id: 103, name: "Lotus Salon", cards: 25, cardPrice: 100_000n, purchase: 6_800n, memo: "haircut" },
  { id: 104, name: "Harbor Swim Club", cards: 35, cardPrice: 120_000n, purchase: 5_000n, memo: "swim lesson" },
];
/** The merchant the regulator suspends at midday. */
export const SUSPENDED = 103;
/** The coverage ratio the regulator sets for every merchant: 30 % of what it owes stays in custody. */
export const COVERAGE_BPS = 3_000n;
/**
 * The merchant that withdraws, in the evening, half of what the day's consumption freed: the
 * other half stays as a margin, so tomorrow's first card sales are still covered.
 */
export const WITHDRAWING = 101;
/** The card rules the regulator sets for every merchant: a ¥5,000 cap, 7 days of cooling-off. */
export const CARD_CAP = 500_000n;
export const COOLING_OFF_DAYS = 7;
/** The card whose holder changes their mind in the afternoon and takes its money back. */
export const RETURNED_CARD = { merchantId: 102, n: 3 };

export interface DayResult {
  ledgerAddress: string;
  quorumAddress: string;
  custodyAddress: string;
  uploaded: UploadedRecord[];
  /** Uploads the ledger refused (the suspended merchant's afternoon). */
  refused: { merchantId: number; records: number; error: string }[];
  report: SupervisionReport;
  names: Map<number, string>;
  /** The two merchants that closed, and what their card holders were owed and paid. */
  exit: ExitResult;
}

/**
 * The regulator's encryption key for the demo, derived from a label so every run can read the
 * last one's records. A real regulator generates its key offline and publishes only the public key.
 */
export const DEMO_REGULATOR_KEY = id("prepaid-ledger demo: regulator encryption key");

/**
 * Ignition journals a deployment per chain id (ignition/deployments/chain-31337) and reuses it on
 * the next run: that is what makes a rerun against the same `hardhat node` a no-op deploy. A
 * restarted `hardhat node` has the same chain id and an empty state, so the journaled contract
 * is gone; on the local chain id only, that stale demo deployment is forgotten and redone.
 */
async function forgetStaleDeployment(conn: DayConnection): Promise<void> {
  const { chainId } = await conn.ethers.provider.getNetwork();
  const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "ignition", "deployments", `chain-${chainId}`);
  const file = join(dir, "deployed_addresses.json");
  if (chainId !== 31337n || !existsSync(file)) return;
  const addresses = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
  const address = addresses["PrepaidLedgerModule#PrepaidLedger"];
  if (address === undefined || (await conn.ethers.provider.getCode(address)) === "0x") rmSync(dir, { recursive: true });
}

/** The supervisors: Hardhat's dev accounts 10-13; a checkpoint needs 3 of their signatures. */
export const SUPERVISORS = 4;
export const THRESHOLD = 3;

/**
 * Runs the supervisors in this process, each with its HTTP endpoint on 127.0.0.1, until a
 * checkpoint covering every record so far is final; returns its record count. The same nodes run
 * as separate processes in `npm run supervision`.
 */
async function confirmWithSupervisors(
  ledger: string,
  quorum: string,
  signers: HardhatEthersSigner[],
  dir: string,
): Promise<bigint> {
  const ports = await Promise.all(signers.map(() => freePort()));
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const nodes: SupervisorNode[] = [];
  const servers = [];
  try {
    for (const [i, signer] of signers.entries()) {
      const node = await SupervisorNode.open(
        {
          ledger,
          quorum,
          index: i,
          decryptionKey: i === 0 ? DEMO_REGULATOR_KEY : undefined,
          peers: urls.filter((_, j) => j !== i),
          stateDir: join(dir, `supervisor-${i}`),
          checkpointIntervalMs: 50,
          staggerMs: 0,
        },
        signer,
      );
      nodes.push(node);
      servers.push(await serveSupervisor(node, ports[i]));
    }
    const target = (await new Contract(ledger, ["function chainHead() view returns (uint64, bytes32)"], signers[0]).chainHead())[0] as bigint;
    for (let round = 0; round < 50; round++) {
      for (const node of nodes) await node.tick();
      if (BigInt(nodes[0].status().lastFinal) >= target) return target;
      await new Promise((r) => setTimeout(r, 60));
    }
    throw new Error(`the supervisors did not confirm record ${target}: ${JSON.stringify(nodes.map((n) => n.status()))}`);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/** A seeded generator, so a day's traffic is the same on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const cardId = (merchant: number, n: number) => demoCard(merchant, n).id;

/** Runs the day. `log` receives one line per step. */
export async function runDay(conn: DayConnection, log: (line: string) => void = () => {}): Promise<DayResult> {
  const signers = await conn.ethers.getSigners();
  const [admin, regulator] = signers;

  await forgetStaleDeployment(conn);
  const supervisors = signers.slice(10, 10 + SUPERVISORS);
  if (supervisors.length < SUPERVISORS || signers.length < 11 + SUPERVISORS) {
    throw new Error(
      `the day needs ${11 + SUPERVISORS} accounts (the supervisors are accounts 10-13, the consumer-protection fund 14); this network has ${signers.length}`,
    );
  }
  log("Deploying PrepaidLedger, its SupervisorQuorum and MerchantCustody (test token) through Ignition…");
  const { ledger, quorum, token, custody } = await conn.ignition.deploy(LocalCustodyModule, {
    parameters: {
      PrepaidLedgerModule: { admin: admin.address, regulator: regulator.address, adminDelay: 0, recorderDelay: 3_600 },
      SupervisionModule: { supervisors: supervisors.map((s) => s.address), threshold: THRESHOLD, adminDelay: 0, setChangeDelay: 3_600 },
      LocalCustodyModule: { admin: admin.address, regulator: regulator.address, adminDelay: 0 },
    },
    displayUi: false,
  });
  const ledgerAddress = await ledger.getAddress();
  const quorumAddress = await quorum.getAddress();
  const custodyAddress = await custody.getAddress();
  const asRegulator = ledger.connect(regulator) as Contract;
  // A rerun against the same node finds the first day's merchants there, two of them closed for
  // good: the next day opens four new merchants, 100 ids further on.
  let offset = 0;
  while ((await ledger.merchantBooks(MERCHANTS[0].id + offset)).status !== 0n) offset += 100;
  const merchants = MERCHANTS.map((m) => ({ ...m, id: m.id + offset }));
  const [suspended, withdrawing, returnedMerchant] = [SUSPENDED + offset, WITHDRAWING + offset, RETURNED_CARD.merchantId + offset];
  const recorders = new Map(merchants.map((m, i) => [m.id, signers[2 + i]]));
  log(`  ledger at ${ledgerAddress}`);
  log(`  quorum at ${quorumAddress}: ${SUPERVISORS} supervisors, ${THRESHOLD} must sign`);
  log(`  custody at ${custodyAddress}, holding test token ${await token.getAddress()} (fen), attached to the ledger`);

  for (const m of merchants) {
    await (await asRegulator.registerMerchant(m.id, recorders.get(m.id)!.address)).wait();
    log(`  registered merchant ${m.id} ${m.name}`);
  }

  log(`Card rules: at most ${yuan(CARD_CAP)} on a card, and ${COOLING_OFF_DAYS} days to return a new card…`);
  for (const m of merchants) await (await asRegulator.setMerchantPolicy(m.id, CARD_CAP, COOLING_OFF_DAYS)).wait();

  log(`Custody: the regulator requires ${Number(COVERAGE_BPS) / 100} % of every merchant's liability in custody; the merchants deposit…`);
  for (const m of merchants) {
    const recorder = recorders.get(m.id)!;
    await (await (custody.connect(regulator) as Contract).setCoverageRatio(m.id, COVERAGE_BPS)).wait();
    // Enough for the most the day can sell: two card prices per card and an afternoon top-up.
    const deposit = (BigInt(m.cards) * m.cardPrice * 3n * COVERAGE_BPS) / 10_000n;
    await (await (token.connect(recorder) as Contract).mint(recorder.address, deposit)).wait();
    await (await (token.connect(recorder) as Contract).approve(custodyAddress, deposit)).wait();
    await (await (custody.connect(recorder) as Contract).deposit(m.id, deposit)).wait();
    log(`  ${m.name} deposited ${yuan(deposit)}`);
  }

  const journals = mkdtempSync(join(tmpdir(), "prepaid-ledger-day-"));
  const uploaders = new Map<number, Uploader>();
  for (const m of merchants) {
    uploaders.set(
      m.id,
      await Uploader.open(
        {
          ledger: ledgerAddress,
          merchantId: m.id,
          regulatorPublicKey: publicKeyOf(DEMO_REGULATOR_KEY),
          journalPath: join(journals, `merchant-${m.id}.jsonl`),
        },
        recorders.get(m.id)!,
      ),
    );
  }

  const random = rng(20261126);
  const dayStart = Math.floor(Date.UTC(2026, 10, 26, 9, 0, 0) / 1000);
  const balances = new Map<string, bigint>();
  let order = 0;
  const detail = (m: Merchant, kind: RecordKind, card: string, amount: bigint, minute: number, memo: string): RecordDetails => ({
    kind,
    merchantId: m.id,
    account: card,
    amount,
    time: dayStart + minute * 60,
    orderRef: `${m.name.slice(0, 3).toUpperCase()}-20261126-${String(++order).padStart(5, "0")}`,
    memo,
  });

  /** One session of the day for one merchant: consumption on most cards, a few refunds. */
  const session = (m: Merchant, from: number, to: number): RecordDetails[] => {
    const out: RecordDetails[] = [];
    for (let n = 0; n < m.cards; n++) {
      const card = cardId(m.id, n);
      const visits = Math.floor(random() * 4);
      for (let v = 0; v < visits; v++) {
        const amount = m.purchase + BigInt(Math.floor(random() * 5)) * 500n;
        const left = balances.get(card) ?? 0n;
        if (amount > left) break;
        balances.set(card, left - amount);
        out.push(detail(m, RecordKind.Consume, card, amount, from + Math.floor(random() * (to - from)), m.memo));
      }
      if (random() < 0.05 && (balances.get(card) ?? 0n) > 0n) {
        const refund = balances.get(card)!;
        balances.set(card, 0n);
        out.push(detail(m, RecordKind.Refund, card, refund, to, "card cancelled, balance refunded"));
      }
    }
    return out.sort((a, b) => a.time - b.time);
  };

  const uploaded: UploadedRecord[] = [];
  const refused: DayResult["refused"] = [];
  const upload = async (m: Merchant, details: RecordDetails[], when: string) => {
    if (details.length === 0) return;
    try {
      const records = await uploaders.get(m.id)!.upload(details);
      uploaded.push(...records);
      const batches = new Set(records.map((r) => r.sequence)).size;
      log(`  ${when}: ${m.name} uploaded ${records.length} records in ${batches} batch(es)`);
    } catch (e) {
      if (!isError(e, "LEDGER_REVERTED")) throw e;
      refused.push({ merchantId: m.id, records: details.length, error: String(e.details.error) });
      log(`  ${when}: ${m.name}'s ${details.length} records REFUSED by the ledger: ${e.details.error}`);
    }
  };

  log("Morning: cards sold (each card's first top-up is its initial amount)…");
  for (const m of merchants) {
    const sales: RecordDetails[] = [];
    for (let n = 0; n < m.cards; n++) {
      const card = cardId(m.id, n);
      const amount = m.cardPrice * BigInt(1 + Math.floor(random() * 2));
      balances.set(card, (balances.get(card) ?? 0n) + amount);
      sales.push(detail(m, RecordKind.TopUp, card, amount, Math.floor(random() * 120), "prepaid card sold"));
    }
    await upload(m, sales, "09:00-11:00");
  }

  log("Late morning: classes, lessons, appointments…");
  for (const m of merchants) await upload(m, session(m, 120, 240), "11:00-13:00");

  log("Noon: the supervisors check the books and confirm them…");
  const confirmed = await confirmWithSupervisors(ledgerAddress, quorumAddress, supervisors, journals);
  log(`  checkpoint at record ${confirmed} final, signed by ${THRESHOLD} of ${SUPERVISORS} supervisors`);

  log(`Midday: the regulator suspends ${merchants.find((m) => m.id === suspended)!.name} (complaints about closing)…`);
  await (await asRegulator.suspendMerchant(suspended, encodeBytes32String("complaints: closing"))).wait();

  log("Afternoon: more consumption, some top-ups…");
  for (const m of merchants) {
    const details = session(m, 300, 480);
    for (let n = 0; n < m.cards; n += 7) {
      const card = cardId(m.id, n);
      balances.set(card, (balances.get(card) ?? 0n) + m.cardPrice / 2n);
      details.push(detail(m, RecordKind.TopUp, card, m.cardPrice / 2n, 480, "top-up"));
    }
    await upload(m, details, "13:00-18:00");
  }
  for (const u of uploaders.values()) u.close();

  const returned = demoCard(returnedMerchant, RETURNED_CARD.n);
  const returnedName = merchants.find((m) => m.id === returnedMerchant)!.name;
  const holder = returned.holder.connect(conn.ethers.provider);
  await (await admin.sendTransaction({ to: holder.address, value: 10n ** 16n })).wait();
  const [back, paidNow] = await (custody.connect(holder) as Contract).requestCoolingOff.staticCall(
    returnedMerchant,
    returned.secret,
    holder.address,
  );
  await (await (custody.connect(holder) as Contract).requestCoolingOff(returnedMerchant, returned.secret, holder.address)).wait();
  log(
    `  a ${returnedName} customer changes their mind and returns the card bought this morning: ${yuan(back)} ` +
      `${paidNow ? "paid back at once from custody" : "owed by the merchant within 15 days"}`,
  );

  log("Evening: custody follows the books (what consumption and refunds freed may be withdrawn)…");
  for (const m of merchants) {
    const c = await custody.custodyOf(m.id);
    log(`  ${m.name}: holds ${yuan(c.held)}, must keep ${yuan(c.required)} of ${yuan(c.liability)} owed, may withdraw ${yuan(c.withdrawable)}`);
  }
  const half = ((await custody.custodyOf(withdrawing)).withdrawable as bigint) / 2n;
  if (half > 0n) {
    const recorder = recorders.get(withdrawing)!;
    await (await (custody.connect(recorder) as Contract).withdraw(withdrawing, half, recorder.address)).wait();
    log(`  ${merchants.find((m) => m.id === withdrawing)!.name} withdrew ${yuan(half)}, keeping as much as a margin for tomorrow's sales`);
  }

  const exit = await runExit(
    {
      provider: conn.ethers.provider,
      ledger,
      custody,
      token,
      admin,
      regulator,
      fund: signers[10 + SUPERVISORS],
      recorders,
      offset,
      merchants: merchants.map((m) => ({ id: m.id, name: m.name, cards: m.cards })),
    },
    log,
  );

  log("The supervisors confirm the books again, the claims' settlements included…");
  const confirmedAtEnd = await confirmWithSupervisors(ledgerAddress, quorumAddress, supervisors, journals);
  log(`  checkpoint at record ${confirmedAtEnd} final`);

  log("Regulator: reading every record back, decrypting and verifying…");
  const reader = await RegulatorReader.open(
    // From block 0: a local chain is short, and a rerun against `hardhat node` reuses the
    // deployment Ignition journaled, so the whole history is read either way.
    { ledger: ledgerAddress, privateKey: DEMO_REGULATOR_KEY, fromBlock: 0, quorum: quorumAddress },
    conn.ethers.provider,
  );
  const report = await reader.read();
  return {
    ledgerAddress,
    quorumAddress,
    custodyAddress,
    uploaded,
    refused,
    report,
    // Every day's merchants on this ledger, the earlier runs' too (the report lists them all).
    names: new Map(Array.from({ length: offset / 100 + 1 }, (_, k) => MERCHANTS.map((m) => [m.id + 100 * k, m.name] as const)).flat()),
    exit,
  };
}
