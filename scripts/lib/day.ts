/**
 * "A history worth supervising", shared by the main job (scripts/main-job.ts) and its end-to-end
 * tests: deploy through Ignition, register a town's merchants with their registry data, then
 * `days` simulated days (default three weeks) whose blocks carry the simulated clock's
 * timestamps. Day 1 the merchants open and sell their cards (and a holder takes a new card back
 * within its cooling-off period); every day they serve card holders
 * and sell a few more, each upload encrypted and batched by the upload module, the supervisors
 * confirm the books each evening and the regulator's index runs the risk rules (watch.ts). On
 * day 3 the regulator
 * suspends Lotus Salon; in the middle weeks Jade Dragon Fitness, the precursor (town.ts), sells
 * heavily discounted long cards and then falls silent. Every merchant keeps 30 % of what it owes
 * in custody (a test token in fen, on local networks). On the last evening Sunrise Gym withdraws
 * half of what custody no longer needs, Harbor Swim Club closes fully covered, Lotus Salon and
 * the precursor are closed short, and their card holders claim (scripts/lib/exit.ts).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import type { HardhatEthersProvider, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { Contract, encodeBytes32String, id } from "ethers";

import LocalCustodyModule from "../../ignition/modules/LocalCustody.js";
import { publicKeyOf } from "../../src/crypto/ecies.js";
import type { RecordDetails } from "../../src/crypto/details.js";
import { PrepaidLedgerError, isError } from "../../src/errors.js";
import { RegulatorReader, type SupervisionReport } from "../../src/regulator/reader.js";
import { yuan } from "../../src/regulator/report.js";
import { serveSupervisor } from "../../src/supervisor/http.js";
import { SupervisorNode } from "../../src/supervisor/node.js";
import { Uploader, type UploadedRecord } from "../../src/upload/uploader.js";
import { CLOSING_COVERED, CLOSING_SHORT, type ExitResult, demoCard, runExit } from "./exit.js";
import { freePort } from "./ports.js";
import { DEFAULT_DAYS, DEMO_RISK, MAX_DAYS, MERCHANTS, MIN_DAYS, type Merchant, PRECURSOR, Traffic, firstMorning, precursorPlan } from "./town.js";
import { type EarlyWarning, type FirstAlert, RegulatorWatch, earlyWarning, isExpected } from "./watch.js";

export { DEFAULT_DAYS, DEMO_RISK, MERCHANTS, PRECURSOR, type Merchant } from "./town.js";

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

/** The merchant the regulator suspends (midday of day 3). */
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
/** The card whose holder changes their mind at noon of day 1 and takes its money back. */
export const RETURNED_CARD = { merchantId: 102, n: 3 };

export interface DayOptions {
  /** Simulated days, {@link MIN_DAYS} to {@link MAX_DAYS} (default {@link DEFAULT_DAYS}). */
  days?: number;
  /** Where the regulator's evening index is kept (default: a temporary folder). */
  index?: string;
}

export interface DayResult {
  ledgerAddress: string;
  quorumAddress: string;
  custodyAddress: string;
  uploaded: UploadedRecord[];
  /** Uploads the ledger refused (the suspended merchant's afternoon). */
  refused: { merchantId: number; records: number; error: string }[];
  report: SupervisionReport;
  names: Map<number, string>;
  /** The merchants that closed, and what their card holders were owed and paid. */
  exit: ExitResult;
  days: number;
  /** Block times of the first and the last block of the history (the sweep a week after the last day). */
  span: { from: number; to: number };
  /** The 09:00 of each day, day 1 first. */
  mornings: number[];
  /** The regulator's evening index (its path), synced last on the last evening. */
  index: string;
  /** Every (merchant, rule) the evening risk rules flagged, with its first evening. */
  alerts: FirstAlert[];
  /** Those the simulation did not mean to cause (watch.ts isExpected), about this run's merchants. */
  unexpected: FirstAlert[];
  /** Those about the merchants of earlier runs on the same ledger (a rerun): they serve nobody any more. */
  earlier: FirstAlert[];
  /** How early the precursor was flagged. */
  warning: EarlyWarning;
  /** The ids this run used (a rerun on the same node adds 100). */
  ids: { suspended: number; precursor: number; closingCovered: number; closingShort: number };
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



/** `days` as the main job takes it (`DAYS=28 npm start`): a whole number of days in range, or a usage error. */
export function parseDays(value: string | number | undefined): number {
  if (value === undefined || value === "") return DEFAULT_DAYS;
  const days = Number(value);
  if (!Number.isInteger(days) || days < MIN_DAYS || days > MAX_DAYS) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", `days must be a whole number from ${MIN_DAYS} to ${MAX_DAYS}`, { details: { days: String(value) } });
  }
  return days;
}

/** The next block gets timestamp `t` (or the one after the last block's, if `t` is not later). */
async function clockAt(provider: HardhatEthersProvider, t: number): Promise<void> {
  const latest = (await provider.getBlock("latest"))!.timestamp;
  await provider.send("evm_setNextBlockTimestamp", [Math.max(t, latest + 1)]);
}

const dateOf = (t: number) => new Date(t * 1000).toISOString().slice(0, 10);

/** Runs the history. `log` receives one line per step. */
export async function runDay(conn: DayConnection, log: (line: string) => void = () => {}, options: DayOptions = {}): Promise<DayResult> {
  const days = parseDays(options.days);
  const signers = await conn.ethers.getSigners();
  const [admin, regulator] = signers;
  const provider = conn.ethers.provider;

  await forgetStaleDeployment(conn);
  const supervisors = signers.slice(10, 10 + SUPERVISORS);
  if (supervisors.length < SUPERVISORS || signers.length < 11 + SUPERVISORS) {
    throw new Error(
      `the history needs ${11 + SUPERVISORS} accounts (the supervisors are accounts 10-13, the consumer-protection fund 14); this network has ${signers.length} (anvil: start it with --accounts 20)`,
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
  // A rerun against the same node finds the earlier runs' merchants there, three of them closed
  // for good: the next history opens the town's merchants again, 100 ids further on.
  let offset = 0;
  while ((await ledger.merchantBooks(MERCHANTS[0].id + offset)).status !== 0n) offset += 100;
  const merchants = MERCHANTS.map((m) => ({ ...m, id: m.id + offset }));
  const ids = { suspended: SUSPENDED + offset, precursor: PRECURSOR + offset, closingCovered: CLOSING_COVERED + offset, closingShort: CLOSING_SHORT + offset };
  const [withdrawing, returnedMerchant] = [WITHDRAWING + offset, RETURNED_CARD.merchantId + offset];
  const byId = (id: number) => merchants.find((m) => m.id === id)!;
  const recorders = new Map(merchants.map((m, i) => [m.id, signers[2 + i]]));
  const plan = precursorPlan(days);
  const start = firstMorning((await provider.getBlock("latest"))!.timestamp);
  const mornings = Array.from({ length: days }, (_, k) => start + k * 86_400);
  log(`  ledger at ${ledgerAddress}`);
  log(`  quorum at ${quorumAddress}: ${SUPERVISORS} supervisors, ${THRESHOLD} must sign`);
  log(`  custody at ${custodyAddress}, holding test token ${await token.getAddress()} (fen), attached to the ledger`);

  await clockAt(provider, start - 3_600);
  for (const m of merchants) {
    await (await asRegulator.registerMerchant(m.id, recorders.get(m.id)!.address)).wait();
    await (await asRegulator.setMerchantProfile(m.id, m.name, m.licence, m.category, m.district)).wait();
    log(`  registered merchant ${m.id} ${m.name} (${m.category}, ${m.district}, licence ${m.licence})`);
  }
  log(`Card rules: at most ${yuan(CARD_CAP)} on a card, and ${COOLING_OFF_DAYS} days to take back what is unused of a top-up…`);
  for (const m of merchants) await (await asRegulator.setMerchantPolicy(m.id, CARD_CAP, COOLING_OFF_DAYS)).wait();
  log(`Custody: the regulator requires ${Number(COVERAGE_BPS) / 100} % of every merchant's liability in custody; each merchant deposits what its sales need.`);
  for (const m of merchants) await (await (custody.connect(regulator) as Contract).setCoverageRatio(m.id, COVERAGE_BPS)).wait();
  const deposited = new Map<number, bigint>();
  /** Before a merchant's upload: it deposits what custody lacks to cover the top-ups it books. */
  const cover = async (m: Merchant, details: RecordDetails[]) => {
    const topUps = details.reduce((s, d) => s + (d.kind === 1 ? d.amount : 0n), 0n);
    if (topUps === 0n) return;
    const c = await custody.custodyOf(m.id);
    // The requirement after the upload, and a margin of a tenth of the top-ups: a cooling-off
    // return paid from custody lowers what it holds by more than the requirement falls.
    const required = ((c.liability as bigint) + topUps) * COVERAGE_BPS;
    const need = (required + 9_999n) / 10_000n + topUps / 10n - (c.held as bigint);
    if (need <= 0n) return;
    const recorder = recorders.get(m.id)!;
    await (await (token.connect(recorder) as Contract).mint(recorder.address, need)).wait();
    await (await (token.connect(recorder) as Contract).approve(custodyAddress, need)).wait();
    await (await (custody.connect(recorder) as Contract).deposit(m.id, need)).wait();
    deposited.set(m.id, (deposited.get(m.id) ?? 0n) + need);
  };

  const journals = mkdtempSync(join(tmpdir(), "prepaid-ledger-day-"));
  const uploaders = new Map<number, Uploader>();
  for (const m of merchants) {
    uploaders.set(
      m.id,
      await Uploader.open(
        { ledger: ledgerAddress, merchantId: m.id, regulatorPublicKey: publicKeyOf(DEMO_REGULATOR_KEY), journalPath: join(journals, `merchant-${m.id}.jsonl`) },
        recorders.get(m.id)!,
      ),
    );
  }
  const index = options.index ?? join(journals, "index.sqlite");
  const watch = await RegulatorWatch.open(
    { ledger: ledgerAddress, quorum: quorumAddress, privateKey: DEMO_REGULATOR_KEY, db: index, risk: DEMO_RISK },
    provider,
  );

  const traffic = new Traffic((day) => mornings[day - 1]);
  const uploaded: UploadedRecord[] = [];
  const refused: DayResult["refused"] = [];
  const stopped = new Set<number>(); // tills that were refused: they take no more money
  /** One upload of a merchant, a minute after its last record: a till books what has happened. */
  const upload = async (m: Merchant, details: RecordDetails[], when: string, quiet = false) => {
    if (details.length === 0 || stopped.has(m.id)) return 0;
    await cover(m, details);
    await clockAt(provider, Math.max(...details.map((d) => d.time)) + 60);
    try {
      const records = await uploaders.get(m.id)!.upload(details);
      uploaded.push(...records);
      if (!quiet) log(`  ${when}: ${m.name} uploaded ${records.length} records in ${new Set(records.map((r) => r.sequence)).size} batch(es)`);
      return records.length;
    } catch (e) {
      if (!isError(e, "LEDGER_REVERTED")) throw e;
      refused.push({ merchantId: m.id, records: details.length, error: String(e.details.error) });
      stopped.add(m.id);
      log(`  ${when}: ${m.name}'s ${details.length} records REFUSED by the ledger: ${e.details.error}; its till takes no more money`);
      return 0;
    }
  };

  let watched: FirstAlert[] = [];
  const evening = async (day: number) => {
    await clockAt(provider, mornings[day - 1] + 11 * 3_600);
    const confirmed = await confirmWithSupervisors(ledgerAddress, quorumAddress, supervisors, journals);
    const fresh = await watch.evening(day);
    watched = watch.firsts();
    return { confirmed, fresh };
  };
  const alertLine = (a: FirstAlert) =>
    `  ! alert [${a.severity}] ${a.rule} on ${byId(a.merchantId ?? 0)?.name ?? "an earlier run's merchant"}${isExpected(a, ids.precursor, ids.suspended) || (a.merchantId ?? Infinity) < merchants[0].id ? "" : " (UNEXPECTED)"}: ${a.message}`;

  log(`Day 1 (${dateOf(mornings[0])}), opening day: cards sold in the morning (each card's first top-up is its initial amount)…`);
  for (const m of merchants) await upload(m, traffic.opening(m), "09:00-11:00");
  {
    const returned = demoCard(returnedMerchant, RETURNED_CARD.n);
    const holder = returned.holder.connect(provider);
    await clockAt(provider, mornings[0] + 3 * 3_600);
    await (await admin.sendTransaction({ to: holder.address, value: 10n ** 16n })).wait();
    const [back, paidNow] = await (custody.connect(holder) as Contract).requestCoolingOff.staticCall(returnedMerchant, returned.secret, holder.address);
    await (await (custody.connect(holder) as Contract).requestCoolingOff(returnedMerchant, returned.secret, holder.address)).wait();
    traffic.balances.set(returned.id, 0n);
    log(
      `  noon: a ${byId(returnedMerchant).name} customer changes their mind and returns the card bought this morning: ${yuan(back)} ` +
        `${paidNow ? "paid back at once from custody" : "owed by the merchant within 15 days"}`,
    );
  }
  log("  classes, lessons, appointments until the evening…");
  for (const m of merchants) await upload(m, traffic.session(m, 1, 180, 540), "12:00-18:00");
  for (const [id, amount] of deposited) log(`  ${byId(id).name} deposited ${yuan(amount)} in custody for its sales`);
  const first = await evening(1);
  log(`  evening: checkpoint at record ${first.confirmed} final, signed by ${THRESHOLD} of ${SUPERVISORS} supervisors; the regulator's index synced, ${first.fresh.length} alerts`);

  for (let day = 2; day <= days; day++) {
    const morning = mornings[day - 1];
    const counts: string[] = [];
    for (const m of merchants) {
      if (m.id === ids.suspended && day === 3) {
        await upload(m, traffic.session(m, day, 0, 180), "09:00-12:00", true);
        await clockAt(provider, morning + 4 * 3_600);
        await (await asRegulator.suspendMerchant(m.id, encodeBytes32String("complaints: closing"))).wait();
        log(`Day 3 (${dateOf(morning)}), midday: the regulator suspends ${m.name} (complaints about closing)…`);
        await upload(m, traffic.session(m, day, 300, 540), "13:00-18:00");
        continue;
      }
      let details: RecordDetails[];
      if (m.id === ids.precursor && day >= plan.campaignFrom && day <= plan.campaignTo) {
        if (day === plan.campaignFrom) log(`Day ${day} (${dateOf(morning)}): ${m.name} starts selling lifetime cards at 65 % off…`);
        details = traffic.campaign(m, day);
      } else if (m.id === ids.precursor && day > plan.campaignTo) {
        if (day === plan.campaignTo + 1) log(`Day ${day} (${dateOf(morning)}): ${m.name} uploads nothing more (its doors stay shut)…`);
        continue;
      } else {
        details = traffic.session(m, day, 0, 540);
      }
      const n = await upload(m, details, "", true);
      if (n > 0) counts.push(`${m.name} ${n}`);
    }
    const { confirmed, fresh } = await evening(day);
    log(`Day ${day} (${dateOf(morning)}): records uploaded — ${counts.join(", ") || "none"}; supervisors final at record ${confirmed}`);
    for (const a of fresh) log(alertLine(a));
  }
  for (const u of uploaders.values()) u.close();

  log(`Last evening (day ${days}): custody follows the books (what consumption and refunds freed may be withdrawn)…`);
  for (const m of merchants) {
    const c = await custody.custodyOf(m.id);
    log(`  ${m.name}: holds ${yuan(c.held)}, must keep ${yuan(c.required)} of ${yuan(c.liability)} owed, may withdraw ${yuan(c.withdrawable)}`);
  }
  const half = ((await custody.custodyOf(withdrawing)).withdrawable as bigint) / 2n;
  if (half > 0n) {
    const recorder = recorders.get(withdrawing)!;
    await (await (custody.connect(recorder) as Contract).withdraw(withdrawing, half, recorder.address)).wait();
    log(`  ${byId(withdrawing).name} withdrew ${yuan(half)}, keeping as much as a margin for tomorrow's sales`);
  }

  const exit = await runExit(
    {
      provider,
      ledger,
      custody,
      token,
      admin,
      regulator,
      fund: signers[10 + SUPERVISORS],
      recorders,
      merchants: merchants.map((m) => ({ id: m.id, name: m.name, cards: traffic.cards.get(m.id) ?? 0 })),
      closing: [
        { id: ids.closingCovered, covered: true, reason: "closing: lease ended" },
        { id: ids.closingShort, covered: false, reason: "closed: owner gone" },
        { id: ids.precursor, covered: false, reason: "closed: shut, no notice" },
      ],
    },
    log,
  );

  log("The supervisors confirm the books again, the claims' settlements included…");
  const confirmedAtEnd = await confirmWithSupervisors(ledgerAddress, quorumAddress, supervisors, journals);
  log(`  checkpoint at record ${confirmedAtEnd} final`);
  watch.close();

  log("Regulator: reading every record back, decrypting and verifying…");
  const reader = await RegulatorReader.open(
    // From block 0: a local chain is short, and a rerun against `hardhat node` reuses the
    // deployment Ignition journaled, so the whole history is read either way.
    { ledger: ledgerAddress, privateKey: DEMO_REGULATOR_KEY, fromBlock: 0, quorum: quorumAddress },
    provider,
  );
  const report = await reader.read();
  // Alerts about the merchants of earlier runs on this ledger: they trade no more in this one.
  const earlier = (a: FirstAlert) => a.merchantId !== null && a.merchantId < MERCHANTS[0].id + offset;
  const firstBlock = await provider.getBlock(Number((await ledger.queryFilter(ledger.filters.MerchantRegistered(merchants[0].id)))[0].blockNumber));
  return {
    ledgerAddress,
    quorumAddress,
    custodyAddress,
    uploaded,
    refused,
    report,
    // Every history's merchants on this ledger, the earlier runs' too (the report lists them all).
    names: new Map(Array.from({ length: offset / 100 + 1 }, (_, k) => MERCHANTS.map((m) => [m.id + 100 * k, m.name] as const)).flat()),
    exit,
    days,
    span: { from: firstBlock!.timestamp, to: (await provider.getBlock("latest"))!.timestamp },
    mornings,
    index,
    alerts: watched,
    unexpected: watched.filter((a) => !earlier(a) && !isExpected(a, ids.precursor, ids.suspended)),
    earlier: watched.filter(earlier),
    warning: earlyWarning(watched, ids.precursor, byId(ids.precursor).name, plan.closedOn),
    ids,
  };
}
