/**
 * Each merchant's custody, from events alone (docs/FORMAT.md 8.4 and 9; docs/CUSTODY.md).
 *
 * The ledger names the custody contract it consults in its custody-link events
 * (CustodyChangeProposed, CustodyChangeCancelled, CustodyAttached); the custody contract names
 * every movement of a merchant's money (Deposited, Withdrawn) and every ratio a regulator set
 * (CoverageRatioSet), and every custodian (CustodianSet). The index stores each of these as one
 * row of `custody_events`, keyed by (transaction, log index) like every other row from a log. A
 * merchant's custody is derived from those rows: the custody attached is the one of the last
 * `attached` row; what it holds for the merchant is the `held` of its last deposit or withdrawal
 * there (each event carries it), its ratio that of its last `ratio-set` row, and the requirement
 * `ceil(ratio × liability / 10,000)` of the liability the index's books hold, as the contract's
 * `coverage(merchantId, liability)` computes it. Nothing else is stored, so a reorg rolls the
 * view back by deleting the rows of dead blocks.
 */
import { Interface, getAddress } from "ethers";

import { PREPAID_LEDGER_ABI } from "../ledger/abi.js";
import type { RpcLog } from "../regulator/logs.js";
import { hasTable, num, numOrNull, type Database } from "./schema.js";

/** The custody events the index reads, as IMerchantCustody declares them (FORMAT.md 8.4). */
export const MERCHANT_CUSTODY_EVENTS_ABI = [
  "event Deposited(uint32 indexed merchantId, address indexed from, uint256 amount, uint256 held)",
  "event Withdrawn(uint32 indexed merchantId, address indexed by, address indexed to, uint256 amount, uint256 held, uint256 required)",
  "event CoverageRatioSet(uint32 indexed merchantId, address indexed regulator, uint16 previousBps, uint16 ratioBps)",
  "event CustodianSet(address indexed custodian, bool allowed, address indexed admin)",
] as const;

/** Basis points of 100 %. */
export const FULL_RATIO_BPS = 10_000;

const custodyInterface = new Interface(MERCHANT_CUSTODY_EVENTS_ABI);
const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);
const topicOf = (iface: Interface, name: string) => iface.getEvent(name)!.topicHash;

/** What a row of `custody_events` says happened. */
export type CustodyEventKind = "proposed" | "cancelled" | "attached" | "deposited" | "withdrawn" | "ratio-set" | "custodian-set";

/** topic0 of the custody contract's events the index keeps. */
export const CUSTODY_TOPICS: Readonly<Record<string, CustodyEventKind>> = {
  [topicOf(custodyInterface, "Deposited")]: "deposited",
  [topicOf(custodyInterface, "Withdrawn")]: "withdrawn",
  [topicOf(custodyInterface, "CoverageRatioSet")]: "ratio-set",
  [topicOf(custodyInterface, "CustodianSet")]: "custodian-set",
};

/** topic0 of the ledger's custody-link events. */
export const CUSTODY_LINK_TOPICS: Readonly<Record<string, CustodyEventKind>> = {
  [topicOf(ledgerInterface, "CustodyChangeProposed")]: "proposed",
  [topicOf(ledgerInterface, "CustodyChangeCancelled")]: "cancelled",
  [topicOf(ledgerInterface, "CustodyAttached")]: "attached",
};

/** One decoded custody or custody-link event, as stored. */
export interface DecodedCustodyEvent {
  /** The custody contract the event is about (for `attached`, the one attached; zero when detached). */
  custody: string;
  /** The merchant, for deposits, withdrawals and ratios; null for link and custodian events. */
  merchantId: number | null;
  event: CustodyEventKind;
  /**
   * Who acted: the depositor (`from`), the withdrawing recorder (`by`), the regulator, the admin
   * (proposed, custodian-set), the canceller; for `attached`, the custody it replaced.
   */
  actor: string;
  /** `withdrawn`: who received the tokens; `custodian-set`: the custodian. */
  counterparty: string | null;
  amount: number | null;
  /** The merchant's custody after a deposit or withdrawal. */
  heldAfter: number | null;
  /** `withdrawn`: the requirement at that moment. */
  requiredAt: number | null;
  /** `ratio-set`: the ratio before (bps); `custodian-set`: 1 granted, 0 revoked. */
  ratioBefore: number | null;
  /** `ratio-set`: the new ratio (bps). */
  ratioBps: number | null;
  /** `proposed`: from when anyone may carry the change out. */
  executableAt: number | null;
}

const word = (data: string, i: number) => BigInt("0x" + data.slice(2 + 64 * i, 2 + 64 * (i + 1)));
const addressOfTopic = (topic: string) => getAddress("0x" + topic.slice(-40)).toLowerCase();
const none = { counterparty: null, amount: null, heldAfter: null, requiredAt: null, ratioBefore: null, ratioBps: null, executableAt: null };

/** Decodes a log of the custody contract `log.address`, if it is one of the events kept. */
export function decodeCustodyEvent(log: RpcLog): DecodedCustodyEvent | undefined {
  const event = CUSTODY_TOPICS[log.topics[0]];
  if (event === undefined) return undefined;
  const custody = log.address.toLowerCase();
  const merchantId = Number(BigInt(log.topics[1]));
  const d = log.data;
  switch (event) {
    case "deposited":
      return { ...none, custody, merchantId, event, actor: addressOfTopic(log.topics[2]), amount: Number(word(d, 0)), heldAfter: Number(word(d, 1)) };
    case "withdrawn":
      return {
        ...none,
        custody,
        merchantId,
        event,
        actor: addressOfTopic(log.topics[2]),
        counterparty: addressOfTopic(log.topics[3]),
        amount: Number(word(d, 0)),
        heldAfter: Number(word(d, 1)),
        requiredAt: Number(word(d, 2)),
      };
    case "ratio-set":
      return { ...none, custody, merchantId, event, actor: addressOfTopic(log.topics[2]), ratioBefore: Number(word(d, 0)), ratioBps: Number(word(d, 1)) };
    default:
      return {
        ...none,
        custody,
        merchantId: null,
        event,
        actor: addressOfTopic(log.topics[2]),
        counterparty: addressOfTopic(log.topics[1]),
        ratioBefore: Number(word(d, 0)),
      };
  }
}

/** Decodes a ledger log if it is one of its custody-link events. */
export function decodeCustodyLinkEvent(log: RpcLog): DecodedCustodyEvent | undefined {
  const event = CUSTODY_LINK_TOPICS[log.topics[0]];
  if (event === undefined) return undefined;
  if (event === "attached") {
    return { ...none, custody: addressOfTopic(log.topics[2]), merchantId: null, event, actor: addressOfTopic(log.topics[1]) };
  }
  if (event === "proposed") {
    return { ...none, custody: addressOfTopic(log.topics[1]), merchantId: null, event, actor: addressOfTopic(log.topics[2]), executableAt: Number(word(log.data, 0)) };
  }
  return { ...none, custody: addressOfTopic(log.topics[1]), merchantId: null, event, actor: addressOfTopic(log.topics[2]) };
}

/** Stores one decoded event (a log already stored is ignored). */
export function insertCustodyEvent(
  db: Database,
  position: readonly [txHash: string, logIndex: number, blockNumber: number],
  time: number,
  e: DecodedCustodyEvent,
): void {
  db.prepare(
    `INSERT INTO custody_events (tx_hash, log_index, block_number, block_time, custody, merchant_id, event, actor, counterparty,
                                 amount, held_after, required_at, ratio_before, ratio_bps, executable_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  ).run(
    ...position,
    time,
    e.custody,
    e.merchantId,
    e.event,
    e.actor,
    e.counterparty,
    e.amount,
    e.heldAfter,
    e.requiredAt,
    e.ratioBefore,
    e.ratioBps,
    e.executableAt,
  );
}

const ZERO = "0x0000000000000000000000000000000000000000";

/** The custody contract the ledger consults as of the index's last block (its last `attached` row), or null. */
export function attachedCustody(db: Database): { address: string; block: number; time: number } | null {
  if (!hasTable(db, "custody_events")) return null;
  const row = db
    .prepare("SELECT custody, block_number, block_time FROM custody_events WHERE event = 'attached' ORDER BY block_number DESC, log_index DESC LIMIT 1")
    .get() as { custody: string; block_number: number; block_time: number } | undefined;
  if (row === undefined || row.custody === ZERO) return null;
  return { address: String(row.custody), block: Number(row.block_number), time: Number(row.block_time) };
}

/** Every custody contract the index has seen attached (their logs are read). */
export function custodyAddressesSeen(db: Database): string[] {
  if (!hasTable(db, "custody_events")) return [];
  return (db.prepare("SELECT DISTINCT custody FROM custody_events WHERE event = 'attached'").all() as { custody: string }[])
    .map((r) => String(r.custody))
    .filter((a) => a !== ZERO);
}

/** One row of a merchant's custody history. */
export interface CustodyEventRow {
  txHash: string;
  logIndex: number;
  blockNumber: number;
  time: number;
  /**
   * Deposits, withdrawals and ratio changes (`custody_events`), and the payouts to card holders
   * out of the merchant's custody (`protection_events`): a claim paid, a cooling-off return
   * paid, what was left swept to the residual recipient.
   */
  event: "deposited" | "withdrawn" | "ratio-set" | PayoutEvent;
  /** The depositor, the withdrawing recorder, the regulator; the claiming holder, the caller of a sweep. */
  actor: string;
  /** `withdrawn` and payouts: who received the tokens. */
  to: string | null;
  /** Deposited, withdrawn or paid out (fen); null for a ratio change. */
  amount: number | null;
  /** The merchant's custody after a deposit, withdrawal or payout. */
  heldAfter: number | null;
  /** `ratio-set`: the ratio before and after (bps). */
  ratioBefore: number | null;
  ratioBps: number | null;
}

/** A merchant's custody as of the index's last block. */
export interface CustodyFigures {
  /** What custody holds for the merchant (fen): its deposits minus its withdrawals and payouts to card holders. */
  held: number;
  /** The coverage ratio set by a regulator (basis points; 0 until one is set). */
  ratioBps: number;
  /** The merchant's liability in the index's books (fen). */
  liability: number;
  /** ceil(ratioBps × liability / 10,000): what must stay in custody (fen). */
  required: number;
  /** held ÷ required, or null when nothing is required. */
  coverage: number | null;
  /**
   * held < required: the merchant may not sell more cards until it deposits (rule
   * `custody-below-requirement`). Never once claims are open on the merchant.
   */
  belowRequirement: boolean;
  /**
   * Claims were opened on the (closed) merchant's custody: it is its card holders' pool, paid
   * out by claims; deposits are refused and the requirement no longer applies.
   */
  claimsOpened: boolean;
}

export interface CustodyView extends CustodyFigures {
  merchantId: number;
  /** The custody contract attached to the ledger, lowercase 0x-hex; null: "no custody attached". */
  custody: string | null;
  /** When it was attached. */
  attachedBlock: number | null;
  /** The merchant's deposits, withdrawals and ratio changes at that custody, in chain order. */
  history: CustodyEventRow[];
}

/** ceil(ratioBps × liability / 10,000), exactly (in integers), as MerchantCustody.coverage computes it. */
export function requiredCustody(ratioBps: number, liability: number): number {
  if (liability <= 0 || ratioBps <= 0) return 0;
  const product = BigInt(ratioBps) * BigInt(liability);
  return Number((product + BigInt(FULL_RATIO_BPS) - 1n) / BigInt(FULL_RATIO_BPS));
}

/** The figures of a merchant with `held`, `ratioBps` and `liability` (and claims opened on it, or not). */
export function custodyFigures(held: number, ratioBps: number, liability: number, claimsOpened = false): CustodyFigures {
  const required = requiredCustody(ratioBps, liability);
  return { held, ratioBps, liability, required, coverage: required === 0 ? null : held / required, belowRequirement: held < required && !claimsOpened, claimsOpened };
}

/** The merchants on whose custody at `custody` claims were opened. */
function withClaims(db: Database, custody: string): Set<number> {
  if (!hasTable(db, "protection_events")) return new Set();
  const rows = db.prepare("SELECT DISTINCT merchant_id FROM protection_events WHERE contract = ? AND event = 'claims-opened'").all(custody) as { merchant_id: number }[];
  return new Set(rows.map((r) => Number(r.merchant_id)));
}


/** Custody's payouts to card holders (src/indexer/protection.ts), which lower a merchant's held. */
export type PayoutEvent = "claimed" | "cooling-off-paid" | "swept";

/**
 * The rows that move a merchant's custody at `custody`, in chain order: its deposits,
 * withdrawals and ratio changes, and the payouts out of it (claims, cooling-off returns and
 * sweeps: their events carry no `held`, so it is what the last deposit or withdrawal left minus
 * the payouts since), all merchants or one.
 */
function custodyRows(db: Database, custody: string, merchantId?: number): Record<string, unknown>[] {
  const one = merchantId === undefined ? "" : " AND merchant_id = ?";
  const args = merchantId === undefined ? [custody] : [custody, merchantId];
  const payouts = hasTable(db, "protection_events")
    ? `UNION ALL SELECT tx_hash, log_index, block_number, block_time, merchant_id, event, actor, recipient AS counterparty, amount,
              NULL AS held_after, NULL AS ratio_before, NULL AS ratio_bps
         FROM protection_events WHERE contract = ? AND event IN ('claimed', 'cooling-off-paid', 'swept') AND amount > 0${one}`
    : "";
  return db
    .prepare(
      `SELECT tx_hash, log_index, block_number, block_time, merchant_id, event, actor, counterparty, amount, held_after, ratio_before, ratio_bps
         FROM custody_events WHERE custody = ? AND merchant_id IS NOT NULL${one}
       ${payouts}
       ORDER BY block_number, log_index`,
    )
    .all(...args, ...(payouts === "" ? [] : args)) as Record<string, unknown>[];
}

/** Applies one row of {@link custodyRows} to a merchant's held and ratio; returns held after it. */
function apply(m: { held: number; ratioBps: number }, r: Record<string, unknown>): number {
  if (r.event === "ratio-set") m.ratioBps = num(r.ratio_bps);
  else if (r.event === "deposited" || r.event === "withdrawn") m.held = num(r.held_after);
  else m.held -= num(r.amount);
  return m.held;
}

/** Held and ratio of every merchant at `custody`, from its rows (merchant id → figures). */
function latestByMerchant(db: Database, custody: string): Map<number, { held: number; ratioBps: number }> {
  const out = new Map<number, { held: number; ratioBps: number }>();
  for (const r of custodyRows(db, custody)) {
    const id = num(r.merchant_id);
    const m = out.get(id) ?? { held: 0, ratioBps: 0 };
    apply(m, r);
    out.set(id, m);
  }
  return out;
}

/**
 * Every merchant's custody figures against its liability (merchant id → liability), or null when
 * no custody is attached.
 */
export function custodyByMerchant(db: Database, liabilities: ReadonlyMap<number, number>): Map<number, CustodyFigures> | null {
  const attached = attachedCustody(db);
  if (attached === null) return null;
  const latest = latestByMerchant(db, attached.address);
  const claims = withClaims(db, attached.address);
  const out = new Map<number, CustodyFigures>();
  for (const [id, liability] of liabilities) {
    const m = latest.get(id) ?? { held: 0, ratioBps: 0 };
    out.set(id, custodyFigures(m.held, m.ratioBps, liability, claims.has(id)));
  }
  return out;
}

/** A merchant's custody, its figures and history, from the index. */
export function custodyView(db: Database, merchantId: number, liability: number): CustodyView {
  const attached = attachedCustody(db);
  if (attached === null) {
    return { merchantId, custody: null, attachedBlock: null, history: [], ...custodyFigures(0, 0, liability) };
  }
  // Held and ratio as the merchant's rows leave them (as latestByMerchant does for all).
  const m = { held: 0, ratioBps: 0 };
  const history: CustodyEventRow[] = custodyRows(db, attached.address, merchantId).map((r) => {
    const heldAfter = apply(m, r);
    return {
      txHash: String(r.tx_hash),
      logIndex: num(r.log_index),
      blockNumber: num(r.block_number),
      time: num(r.block_time),
      event: String(r.event) as CustodyEventRow["event"],
      actor: String(r.actor),
      to: (r.counterparty as string | null) ?? null,
      amount: numOrNull(r.amount),
      heldAfter: r.event === "ratio-set" ? null : heldAfter,
      ratioBefore: numOrNull(r.ratio_before),
      ratioBps: numOrNull(r.ratio_bps),
    };
  });
  return { merchantId, custody: attached.address, attachedBlock: attached.block, history, ...custodyFigures(m.held, m.ratioBps, liability, withClaims(db, attached.address).has(merchantId)) };
}

/** A ratio in basis points as a percentage: 3000 → "30 %", 3333 → "33.33 %". */
export function percent(bps: number): string {
  return `${(bps / 100).toLocaleString("en-US", { maximumFractionDigits: 2 })} %`;
}

/** held ÷ required as a percentage ("—" when nothing is required). */
export function coverageText(coverage: number | null): string {
  return coverage === null ? "—" : `${(coverage * 100).toLocaleString("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 })} %`;
}

/** Short names of the merchant's custody events, as shown in tables. */
export const CUSTODY_EVENT_NAMES: Readonly<Record<CustodyEventRow["event"], string>> = {
  deposited: "deposit",
  withdrawn: "withdrawal",
  "ratio-set": "ratio set",
  claimed: "claim paid",
  "cooling-off-paid": "cooling-off return",
  swept: "unclaimed swept",
};

/** Whether a custody history row takes money out (a withdrawal or a payout) rather than adding it. */
export const isOutflow = (event: CustodyEventRow["event"]): boolean => event !== "deposited" && event !== "ratio-set";
