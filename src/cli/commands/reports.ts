/**
 * The report commands: `status`, `merchants`, `merchant <id>`, `account <id>` and `alerts`.
 * Each reads the index only (never the chain), prints tables for people or, with `--json`, one
 * JSON document with amounts in integer fen.
 */
import { PrepaidLedgerError } from "../../errors.js";
import type { AccountRow, AlertRow, IndexQueries, MerchantRow, RecordRow } from "../../indexer/queries.js";
import { CUSTODY_EVENT_NAMES, coverageText, isOutflow, percent, type CustodyFigures, type CustodyView } from "../../indexer/custody.js";
import { RECORDER_EVENT_NAMES, describeRecorderEvent, type RecorderView } from "../../indexer/recorders.js";
import { RISK_RULES, type RiskRule } from "../../indexer/risk.js";
import { redactUrl } from "../../indexer/store/database.js";
import { choice, intOption, stringOption } from "../args.js";
import type { Command, Context } from "../command.js";
import { EXIT_CODES } from "../exit.js";
import { keyValues, localTime, plural, table, tableOrNone, yuan, type Cell } from "../format.js";
import { merchantId, withQueries } from "../index-file.js";
import { protectionText } from "./protection.js";

/** Records of one account read per query (an account rarely has more). */
const HISTORY_PAGE = 1_000;
/** More alerts than the risk rules can produce (they cap per merchant). */
const ALL_ALERTS = 1_000_000;

const time = (seconds: number | null): string | null => (seconds === null ? null : localTime(seconds));

// ---------------------------------------------------------------- status

async function status(ctx: Context): Promise<number> {
  return withQueries(ctx, async (q) => {
    const info = q.info();
    const totals = q.totals(info);
    const discrepancies = q.count("discrepancies");
    const reorg = info.reorg;
    if (ctx.json) {
      await ctx.writeJson({ index: redactUrl(ctx.db), info, totals, discrepancies, followsChain: reorg === null });
      return 0;
    }
    if (reorg !== null) {
      await ctx.write(
        `WARNING: the index does NOT follow the chain. Block ${reorg.block}, which it treated as settled ` +
          `(${reorg.confirmations} confirmations), was replaced by a reorg (detected ${reorg.detectedAt}); ` +
          "the figures below may include records of a dead branch. Run `prepaid sync --repair`.\n\n",
      );
    }
    const provisional = info.settledBlock > info.confirmedBlock ? `; blocks ${info.confirmedBlock + 1}–${info.settledBlock} provisional` : "";
    const confirmation =
      info.quorum === null ? "no quorum followed" : `${info.finalRecordCount} confirmed by the quorum, ${totals.pending} pending`;
    await ctx.write(
      keyValues([
        ["Index", redactUrl(ctx.db)],
        ["Chain", info.chainId],
        ["Ledger", info.ledger],
        ["Quorum", info.quorum ?? "none"],
        ["Decrypted for", info.decryptedFor ?? "not decrypted (no regulator key at sync)"],
        ["Settled block", `${info.settledBlock} (${localTime(info.settledTime)}), from block ${info.fromBlock}, ${info.confirmations} confirmations${provisional}`],
        ["Follows chain", reorg === null ? "yes" : `NO: reorg deeper than the confirmations at block ${reorg.block}; run \`prepaid sync --repair\``],
        ["Records", `${info.recordCount} (${confirmation})`],
        ["Verification", `${totals.verified} verified, ${totals.failed} failed, ${totals.encrypted} encrypted`],
        ["Chain head", info.chainHead],
        ["Merchants", `${totals.merchants} (${totals.accounts} accounts)`],
        ["Liability", `${yuan(totals.liability)} (topped up ${yuan(totals.toppedUp)}, consumed ${yuan(totals.consumed)}, refunded ${yuan(totals.refunded)})`],
        ["Discrepancies", reorg === null ? discrepancies : `${discrepancies} (not meaningful until the index is repaired)`],
        ["Alerts", totals.alerts],
      ]),
    );
    return 0;
  });
}

// ---------------------------------------------------------------- merchants

const MERCHANT_COLUMNS = [
  { header: "merchant", numeric: true },
  { header: "name" },
  { header: "status" },
  { header: "accounts", numeric: true },
  { header: "records", numeric: true },
  { header: "topped up", numeric: true },
  { header: "consumed", numeric: true },
  { header: "refunded", numeric: true },
  { header: "liability", numeric: true },
  { header: "failed records", numeric: true },
  { header: "alerts", numeric: true },
];

/** The custody columns of `prepaid merchants`, when a custody contract is attached. */
const CUSTODY_COLUMNS = [{ header: "custody held", numeric: true }, { header: "required", numeric: true }, { header: "coverage", numeric: true }];

function merchantCells(m: MerchantRow): Cell[] {
  return [m.merchantId, m.name ?? "", m.status, m.accountCount, m.recordCount, yuan(m.toppedUp), yuan(m.consumed), yuan(m.refunded), yuan(m.liability), m.failedRecords, m.alerts];
}

/** held, required, coverage (held ÷ required), the last marked "BELOW" when held < required. */
function custodyCells(f: CustodyFigures | undefined): Cell[] {
  if (f === undefined) return [null, null, null];
  return [yuan(f.held), yuan(f.required), coverageText(f.coverage) + (f.belowRequirement ? " BELOW" : f.claimsOpened ? " claims" : "")];
}

async function merchants(ctx: Context): Promise<number> {
  return withQueries(ctx, async (q) => {
    const rows = q.merchants();
    const t = q.totals();
    const custody = q.custodies(rows);
    if (ctx.json) {
      await ctx.writeJson({
        merchants: rows.map((m) => ({ ...m, custody: custody.merchants.get(m.merchantId) ?? null })),
        totals: t,
        custody: custody.custody,
      });
      return 0;
    }
    if (rows.length === 0) {
      await ctx.write("No merchants in the index.\n");
      return 0;
    }
    const total: Cell[] = ["total", "", "", t.accounts, t.records, yuan(t.toppedUp), yuan(t.consumed), yuan(t.refunded), yuan(t.liability), t.failed, t.alerts];
    if (custody.custody === null) {
      await ctx.write(table(MERCHANT_COLUMNS, [...rows.map(merchantCells), total]) + "\nCustody: no custody attached to the ledger.\n");
      return 0;
    }
    const held = [...custody.merchants.values()].reduce((sum, f) => sum + f.held, 0);
    // A closed merchant in claims has no requirement any more (its custody is its holders' pool).
    const required = [...custody.merchants.values()].reduce((sum, f) => sum + (f.claimsOpened ? 0 : f.required), 0);
    await ctx.write(
      table(
        [...MERCHANT_COLUMNS, ...CUSTODY_COLUMNS],
        [...rows.map((m) => [...merchantCells(m), ...custodyCells(custody.merchants.get(m.merchantId))]), [...total, yuan(held), yuan(required), null]],
      ) + `\nCustody ${custody.custody}: required = ceil(ratio × liability / 10,000); coverage = held ÷ required.\n`,
    );
    return 0;
  });
}

// ---------------------------------------------------------------- merchant <id>

const ALERT_COLUMNS = [{ header: "severity" }, { header: "rule" }, { header: "merchant", numeric: true }, { header: "name" }, { header: "message" }];
const alertCells = (a: AlertRow): Cell[] => [a.severity, a.rule, a.merchantId, a.merchantName ?? "", a.message];

const ACCOUNT_COLUMNS = [
  { header: "account" },
  { header: "balance", numeric: true },
  { header: "records", numeric: true },
  { header: "topped up", numeric: true },
  { header: "consumed", numeric: true },
  { header: "refunded", numeric: true },
  { header: "last record" },
];
const accountCells = (a: AccountRow): Cell[] => [a.account, yuan(a.balance), a.recordCount, yuan(a.toppedUp), yuan(a.consumed), yuan(a.refunded), localTime(a.lastRecordTime)];

function merchantFigures(m: MerchantRow): string {
  return keyValues([
    ...(m.profile === null
      ? []
      : ([
          ["Name", m.profile.name],
          ["Licence", m.profile.licence],
          ["Category", m.profile.category],
          ["District", m.profile.district],
        ] as [string, string][])),
    ["Status", m.status + (m.suspendedReason === null ? "" : ` (${m.suspendedReason})`)],
    ["First key", m.recorder],
    ["Accounts", m.accountCount],
    ["Records", `${m.recordCount} in ${m.batches} batches (${m.failedRecords} failed records)`],
    ["Topped up", yuan(m.toppedUp)],
    ["Consumed", yuan(m.consumed)],
    ["Refunded", yuan(m.refunded)],
    ["Liability", yuan(m.liability)],
    ["First record", time(m.firstRecordTime)],
    ["Last record", time(m.lastRecordTime)],
    ["Last service", m.lastServiceTime === null ? null : `${localTime(m.lastServiceTime)} (last consumption or refund)`],
  ]);
}

const KEY_COLUMNS = [{ header: "key" }, { header: "since" }, { header: "block", numeric: true }, { header: "how" }];
const OFFER_COLUMNS = [{ header: "key" }, { header: "offered by" }, { header: "offered" }, { header: "executable from" }, { header: "now" }];
const RECORDER_HISTORY_COLUMNS = [{ header: "block", numeric: true }, { header: "time" }, { header: "event" }, { header: "key" }, { header: "what happened" }];

/** "Who may write": the merchant's recorder keys now, the standing offers, and the history of both. */
function recordersText(r: RecorderView): string {
  const parts = [`\nWho may write (${plural(r.current.length, "key")}, from the registry's events, as of ${localTime(r.asOfTime)}):\n`];
  if (r.incompleteBefore !== null) {
    parts.push(
      r.incompleteBefore === Number.MAX_SAFE_INTEGER
        ? "WARNING: this index was made by an older version and holds no recorder events: run `prepaid sync`.\n"
        : `WARNING: the index holds recorder events only from block ${r.incompleteBefore} on (made by an older version): ` +
            "keys added before are missing. Run `prepaid sync --repair` to read them.\n",
    );
  }
  parts.push(
    r.current.length === 0
      ? "none: no key may upload for this merchant\n"
      : table(
          KEY_COLUMNS,
          r.current.map((k) => [k.recorder, localTime(k.sinceTime), k.sinceBlock, k.via === "registered" ? `registered by ${k.by}` : `offered by ${k.by}, accepted`]),
        ),
  );
  parts.push(`\nPending recorder offers (${r.pending.length}):\n`);
  parts.push(
    tableOrNone(
      OFFER_COLUMNS,
      r.pending.map((o) => [o.recorder, o.by, localTime(o.offeredTime), localTime(o.executableAt), o.executable ? "anyone may carry it out" : "awaiting a recorder's answer"]),
    ),
  );
  parts.push(`\nRecorder history (${r.history.length}):\n`);
  parts.push(
    tableOrNone(RECORDER_HISTORY_COLUMNS, r.history.map((e) => [e.blockNumber, localTime(e.time), RECORDER_EVENT_NAMES[e.event], e.recorder, describeRecorderEvent(e)])),
  );
  return parts.join("");
}

const CUSTODY_HISTORY_COLUMNS = [
  { header: "block", numeric: true },
  { header: "time" },
  { header: "event" },
  { header: "amount", numeric: true },
  { header: "held after", numeric: true },
  { header: "ratio" },
  { header: "by" },
  { header: "to" },
];

/** "Custody": what the merchant holds, what it must hold, and every deposit, withdrawal and ratio change. */
function custodyText(c: CustodyView): string {
  if (c.custody === null) return "\nCustody: no custody attached to the ledger.\n";
  const parts = [
    `\nCustody (contract ${c.custody}, from its events):\n`,
    keyValues([
      ["Held", yuan(c.held)],
      ["Coverage ratio", c.ratioBps === 0 ? "0 % (no ratio set)" : percent(c.ratioBps)],
      ["Required", `${yuan(c.required)} (ceil(ratio × liability ${yuan(c.liability)} / 10,000))`],
      [
        "Coverage",
        c.claimsOpened
          ? `${coverageText(c.coverage)} — claims are open: custody is the card holders' pool, no requirement applies`
          : c.coverage === null
            ? "— (nothing is required)"
            : `${coverageText(c.coverage)}${c.belowRequirement ? ` — BELOW the requirement by ${yuan(c.required - c.held)}` : " (held ÷ required)"}`,
      ],
    ]),
    `\nCustody history (${c.history.length}):\n`,
    tableOrNone(
      CUSTODY_HISTORY_COLUMNS,
      c.history.map((e) => [
        e.blockNumber,
        localTime(e.time),
        CUSTODY_EVENT_NAMES[e.event],
        e.amount === null ? null : (isOutflow(e.event) ? "-" : "+") + yuan(e.amount),
        e.heldAfter === null ? null : yuan(e.heldAfter),
        e.event === "ratio-set" ? `${percent(e.ratioBefore ?? 0)} → ${percent(e.ratioBps ?? 0)}` : null,
        e.actor,
        e.to,
      ]),
    ),
  ];
  return parts.join("");
}

async function merchant(ctx: Context): Promise<number> {
  const id = merchantId(ctx.args.positionals[0], "<id>");
  const top = intOption(ctx.args, "top", 1) ?? 10;
  return withQueries(ctx, async (q) => {
    const m = q.merchant(id);
    const accounts = q.accounts(id, { limit: top });
    const alerts = q.alerts({ merchantId: id, limit: ALL_ALERTS });
    const recorders = q.recorders(id);
    const custody = q.custody(id);
    const protection = q.protection(id);
    if (ctx.json) {
      await ctx.writeJson({ merchant: m, recorders, custody, protection, topAccounts: accounts, alerts });
      return 0;
    }
    const parts = [
      `Merchant ${m.merchantId}${m.name === null ? "" : ` ${m.name}`}\n`,
      merchantFigures(m),
      recordersText(recorders),
      custodyText(custody),
      protectionText(protection, m.status),
      `\nLargest balances (${accounts.length} of ${m.accountCount} accounts):\n`,
      tableOrNone(ACCOUNT_COLUMNS, accounts.map(accountCells)),
      `\nAlerts (${alerts.length}):\n`,
      tableOrNone(ALERT_COLUMNS, alerts.map(alertCells)),
    ];
    await ctx.write(parts.join(""));
    return 0;
  });
}

// ---------------------------------------------------------------- account <id>

const HISTORY_COLUMNS = [
  { header: "record", numeric: true },
  { header: "block time" },
  { header: "kind" },
  { header: "amount", numeric: true },
  { header: "balance after", numeric: true },
  { header: "order ref" },
  { header: "memo" },
  { header: "verification" },
  { header: "confirmation" },
];

/** Top-ups add to the card, consumption and refunds take from it. */
const signed = (r: RecordRow) => (r.kind === 1 ? r.amount : -r.amount);
const confirmationText = (c: boolean | null) => (c === null ? null : c ? "confirmed" : "pending");

function historyCells(r: RecordRow & { balanceAfter: number }): Cell[] {
  const problems = r.problems.length === 0 ? "" : ` (${r.problems.join(", ")})`;
  return [
    r.recordIndex,
    localTime(r.blockTime),
    r.kindName,
    (signed(r) >= 0 ? "+" : "") + yuan(signed(r)),
    yuan(r.balanceAfter),
    r.details?.orderRef ?? null,
    // A settlement has no details: say who custody paid.
    r.settlement !== null ? `custody paid holder ${r.settlement.holder}` : (r.details?.memo ?? null),
    r.verification + problems,
    confirmationText(r.confirmed),
  ];
}

/** Every record of one account, oldest first, each with the card's balance once it is booked. */
function history(q: IndexQueries, a: AccountRow): (RecordRow & { balanceAfter: number })[] {
  const out: (RecordRow & { balanceAfter: number })[] = [];
  let balance = 0;
  for (let offset = 0; ; offset += HISTORY_PAGE) {
    const page = q.records({ merchantId: a.merchantId, account: a.account, limit: HISTORY_PAGE, offset });
    out.push(...page.map((r) => ({ ...r, balanceAfter: (balance += signed(r)) })));
    if (page.length < HISTORY_PAGE) return out;
  }
}

function accountText(a: AccountRow, records: (RecordRow & { balanceAfter: number })[]): string {
  return [
    `Account ${a.account} at merchant ${a.merchantId}\n`,
    keyValues([
      ["Balance", yuan(a.balance)],
      ["Initial amount", yuan(a.initialAmount)],
      ["Topped up", yuan(a.toppedUp)],
      ["Consumed", yuan(a.consumed)],
      ["Refunded", yuan(a.refunded)],
      ["Opened", localTime(a.openedTime)],
      ["Last record", localTime(a.lastRecordTime)],
    ]),
    `\nHistory (${records.length} records${a.failedRecords > 0 ? `, ${a.failedRecords} failed records` : ""}; + adds to the card, - takes from it):\n`,
    table(HISTORY_COLUMNS, records.map(historyCells)),
  ].join("");
}

async function account(ctx: Context): Promise<number> {
  const only = stringOption(ctx.args, "merchant");
  return withQueries(ctx, async (q) => {
    const id = q.resolveAccount(ctx.args.positionals[0]);
    const rows = only === undefined ? q.findAccount(id) : [q.account(merchantId(only, "--merchant"), id)];
    if (rows.length === 0) throw new PrepaidLedgerError("NOT_FOUND", "no merchant in the index has this account", { details: { account: id } });
    const found = rows.map((a) => ({ ...a, records: history(q, a) }));
    await (ctx.json ? ctx.writeJson({ account: rows[0].account, merchants: found }) : ctx.write(found.map((a) => accountText(a, a.records)).join("\n")));
    return 0;
  });
}

// ---------------------------------------------------------------- alerts

async function alerts(ctx: Context): Promise<number> {
  const ruleText = stringOption(ctx.args, "rule");
  const rule = ruleText === undefined ? undefined : choice(ruleText, Object.keys(RISK_RULES) as RiskRule[], "--rule");
  const merchantText = stringOption(ctx.args, "merchant");
  return withQueries(ctx, async (q) => {
    const id = merchantText === undefined ? undefined : q.merchant(merchantId(merchantText, "--merchant")).merchantId;
    const rows = q.alerts({ merchantId: id, rule, limit: ALL_ALERTS });
    const info = q.info();
    if (ctx.json) {
      await ctx.writeJson({ asOfBlock: info.settledBlock, asOfTime: info.settledTime, alerts: rows });
    } else {
      const asOf = `as of block ${info.settledBlock} (${localTime(info.settledTime)})`;
      await ctx.write(rows.length === 0 ? `No alerts ${asOf}.\n` : table(ALERT_COLUMNS, rows.map(alertCells)) + `\n${plural(rows.length, "alert")} ${asOf}.\n`);
    }
    return ctx.args.values["exit-code"] === true && rows.length > 0 ? EXIT_CODES.ALERTS.code : 0;
  });
}

// ---------------------------------------------------------------- the commands

/** `prepaid status` */
export const statusCommand: Command = {
  name: "status",
  positionals: [],
  summary: "what the index covers: chain, ledger, settled block, records, confirmation",
  description: "Shows the chain and contracts the index follows, the block it is settled at, how many records it\nholds and how many of them are verified and confirmed by the supervisors' quorum.",
  options: {},
  examples: ["prepaid status", "prepaid status --json | jq .info.settledBlock"],
  run: status,
};

/** `prepaid merchants` */
export const merchantsCommand: Command = {
  name: "merchants",
  positionals: [],
  summary: "every merchant's books: accounts, records, top-ups, consumption, refunds, liability, custody",
  description:
    "One line per merchant, with a total. The liability is what the merchant owes its card holders:\ntopped up minus consumed minus refunded. \"failed records\" counts records that failed verification.\nWith a custody contract attached to the ledger: what custody holds for the merchant, what it must\nhold (ceil(ratio × liability / 10,000)) and the coverage (held ÷ required); else a note says none is.",
  options: {},
  examples: ["prepaid merchants", "prepaid merchants --json | jq '.merchants[] | {merchantId, liability}'"],
  run: merchants,
};

/** `prepaid merchant <id>` */
export const merchantCommand: Command = {
  name: "merchant",
  positionals: ["id"],
  summary: "one merchant: its figures, who may write for it, custody, card rules, claims, cooling-off, largest balances, alerts",
  description:
    "The merchant's books; who may write for it (its recorder keys now, the regulators' pending offers\nand when anyone may carry them out, and every recorder event, from the registry's events); its\ncustody (held, ratio, required, coverage, and every deposit, withdrawal, ratio change and payout);\nits card rules (cap, cooling-off days), its claims round once closed (pool, liability, rate,\ndeadline, paid, unpaid, swept, every claim) and its cooling-off returns (paid, owed with due\ndates, OVERDUE ones marked); its accounts with the largest balances, and every alert about it.\nExits 6 if the index has no such merchant.",
  options: { top: { type: "string", value: "N", help: "how many of the largest accounts to list (default 10)" } },
  examples: ["prepaid merchant 101", "prepaid merchant 101 --top 50 --json"],
  run: merchant,
};

/** `prepaid account <id>` */
export const accountCommand: Command = {
  name: "account",
  positionals: ["id"],
  summary: "a card account under each merchant that has it, with its decrypted history",
  description:
    "The account's books and every record of it, oldest first: block time, kind, signed amount (+ adds to\nthe card, - takes from it), the balance after it, order reference and memo (decrypted at sync),\nverification, and confirmation (confirmed by the supervisors' quorum, or pending).\nAn account id is 32 bytes of hex, or a unique prefix of it (at least 8 hex digits, as reports\nprint ids: 0x17312af8…); the same id may exist under several merchants. Exits 6 if none has it.",
  options: { merchant: { type: "string", value: "ID", help: "only the account under this merchant" } },
  examples: ["prepaid account 0x17312af8…", "prepaid account 0x17312af8 --merchant 101 --json"],
  run: account,
};

/** `prepaid alerts` */
export const alertsCommand: Command = {
  name: "alerts",
  positionals: [],
  summary: "the risk rules' alerts at the last sync (--exit-code: exit 10 if any)",
  description: `The alerts the risk rules raised at the last sync, most severe first. Rules: ${Object.keys(RISK_RULES).join(", ")}
(thresholds in the config file's "risk", explained in docs/RISK.md). With --exit-code the command
exits 10 when it lists any alert, for schedulers and CI.`,
  options: {
    merchant: { type: "string", value: "ID", help: "only this merchant's alerts (exits 6 if it is not in the index)" },
    rule: { type: "string", value: "RULE", help: "only this rule's alerts" },
    "exit-code": { type: "boolean", help: "exit 10 if any alert is listed" },
  },
  examples: ["prepaid alerts", "prepaid alerts --rule dormant-merchant --exit-code || notify-team"],
  run: alerts,
};
