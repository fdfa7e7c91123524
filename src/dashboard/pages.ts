/**
 * The dashboard's pages, rendered on the server from the objects in `data.ts`: plain HTML with a
 * small inline stylesheet, no script. Cells that tests and scripts read carry `data-field`
 * attributes, rows carry their id (`data-merchant`, `data-account`, `data-record`, `data-alert`).
 */
import type { AccountRow, AlertRow, IndexInfo, MerchantRow, Overview, RecordRow } from "../indexer/queries.js";
import { alertsChart, flowsChart, liabilityByMerchantChart, liabilityChart } from "./chart.js";
import type { AccountView, AlertsView, HistoryRow, MerchantView, OverviewView, Paged, SearchView, TransactionView } from "./data.js";
import type { TxLink } from "./explorer.js";
import { shortHex, dateTime, yuan } from "./format.js";
import { Html, html, type HtmlPart } from "./html.js";
import { coverageBadge, custodySection } from "./custody.js";
import { protectionSection } from "./protection.js";
import { recordersSection } from "./recorders.js";
import { RECEIPT_STYLE } from "./receipt.js";

const STYLE = html`<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
  header { background: #1d2a44; color: #fff; padding: 10px 24px; display: flex; gap: 24px; align-items: baseline; }
  header a { color: #cfe0ff; text-decoration: none; } header strong { font-size: 16px; }
  main { padding: 8px 24px 32px; max-width: 1280px; overflow-x: auto; }
  h1 { font-size: 22px; margin: 16px 0 8px; } h2 { font-size: 17px; margin: 24px 0 8px; }
  table { border-collapse: collapse; background: #fff; width: 100%; }
  th, td { padding: 4px 8px; border-bottom: 1px solid #e3e6eb; text-align: left; vertical-align: top; white-space: nowrap; }
  th { white-space: normal; } td:has(> [data-field=name]) { white-space: normal; min-width: 9em; }
  td[data-field=message], td[data-field=memo] { white-space: normal; }
  th { background: #eef1f5; font-weight: 600; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .figures { display: flex; flex-wrap: wrap; gap: 8px; }
  .figure { background: #fff; border: 1px solid #e3e6eb; border-radius: 6px; padding: 8px 12px; min-width: 130px; }
  .figure .label { display: block; color: #5b6475; font-size: 12px; } .figure .value { font-size: 17px; font-weight: 600; }
  .badge { border-radius: 10px; padding: 1px 8px; font-size: 12px; background: #e3e6eb; }
  .active, .verified, .confirmed, .low { background: #dcf3e3; } .pending, .medium, .encrypted { background: #fff1cc; }
  .suspended, .closed, .failed, .high { background: #fbd9d9; }
  .winding-down { background: #fbeccb; }
  .figure .value .badge { font-size: inherit; padding: 0 8px; }
  code { font-size: 12px; word-break: break-all; } .note { color: #5b6475; }
  figure.chart { background: #fff; border: 1px solid #e3e6eb; border-radius: 6px; margin: 8px 0 16px; padding: 8px 12px; }
  figure.chart figcaption { font-weight: 600; font-size: 15px; margin-bottom: 4px; }
  .chart-image svg { width: 100%; height: auto; display: block; }
  figure.chart details { margin-top: 4px; } figure.chart summary { color: #2f5fb3; cursor: pointer; font-size: 13px; }
  table.chart-figures { width: auto; min-width: 40%; margin-top: 6px; }
  td.credit { color: #1e7b45; } td.debit { color: #a33a2c; }
  header form { margin-left: auto; display: flex; gap: 6px; } header input { width: 22em; padding: 3px 6px; border-radius: 4px; border: 1px solid #8894aa; }
  header button { padding: 3px 10px; border-radius: 4px; border: 1px solid #8894aa; background: #e9eef8; }
  .supervision-bar { display: flex; height: 14px; border-radius: 7px; overflow: hidden; background: #e3e6eb; max-width: 640px; margin: 6px 0; }
  .supervision-bar .confirmed { background: #2e9d5b; } .supervision-bar .pending { background: #e6a700; }
  nav.pager { margin: 8px 0; display: flex; gap: 16px; } footer { color: #5b6475; font-size: 12px; padding: 0 24px 24px; }
</style>`;

/** The receipt page around its body (src/dashboard/receipt.ts builds the body). */
export function receiptPage(body: Html, info: IndexInfo | null): Html {
  return layout("Check a receipt", html`<style>${new Html(RECEIPT_STYLE)}</style>${body}`, info);
}

/** A whole page: header with navigation, the body, and a footer saying what the index covers. */
function layout(title: string, body: Html, info: IndexInfo | null): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · prepaid-ledger dashboard</title>${STYLE}</head>
<body><header><strong>prepaid-ledger</strong><a href="/">Overview</a><a href="/alerts">Alerts</a><a href="/receipt">Check a receipt</a>
<form action="/search" method="get" role="search"><input name="q" type="search" aria-label="Search" placeholder="card id or prefix, record, merchant, tx hash" required><button>Search</button></form></header>
<main>${body}</main>
${info !== null && html`<footer>Index of ledger ${info.ledger} on chain ${info.chainId}, settled at block ${info.settledBlock} (${dateTime(info.settledTime)}). Amounts in yuan.</footer>`}
</body></html>`;
}

const figure = (field: string, label: string, value: HtmlPart) =>
  html`<div class="figure" data-field="${field}"><span class="label">${label}</span><span class="value">${value}</span></div>`;
const badge = (text: string) => html`<span class="badge ${text}">${text}</span>`;
const money = (field: string, fen: number) => html`<td class="num" data-field="${field}">${yuan(fen)}</td>`;
const count = (field: string, n: number) => html`<td class="num" data-field="${field}">${n}</td>`;
const merchantLink = (id: number) => html`<a href="/merchants/${id}">${id}</a>`;
const accountHref = (merchantId: number, account: string) => `/merchants/${merchantId}/accounts/${account}`;
const timeOrDash = (t: number | null) => (t === null ? "—" : dateTime(t));
/** A merchant as the charts' legends name it: its id and, when the index holds one, its name. */
const merchantLabel = (m: MerchantRow & { name?: string | null }) => (m.name ? `${m.merchantId} ${m.name}` : `merchant ${m.merchantId}`);

/** Links to the previous and next page of a table (the current query kept, `page` replaced). */
function pager(path: string, query: URLSearchParams, paged: Paged<unknown>): Html {
  const link = (page: number, text: string) => {
    const q = new URLSearchParams(query);
    q.set("page", String(page));
    return html`<a href="${path}?${q.toString()}" rel="${page < paged.page ? "prev" : "next"}">${text}</a>`;
  };
  const of = paged.pages === null ? "" : ` of ${paged.pages}`;
  if (paged.page === 1 && !paged.hasNext) return html``;
  return html`<nav class="pager">${paged.page > 1 && link(paged.page - 1, "← previous")}<span>page ${paged.page}${of}</span>${
    paged.hasNext && link(paged.page + 1, "next →")
  }</nav>`;
}

function infoFigures(info: IndexInfo, pending: number): Html {
  return html`${info.reorg !== null &&
    html`<p class="reorg" data-field="reorg" style="border:2px solid #c0392b;padding:8px 12px;color:#c0392b"><strong>The index does not follow the chain.</strong>
    Block ${info.reorg.block}, which it treated as settled (${info.reorg.confirmations} confirmations), was replaced by a reorg;
    the figures below may include records of a dead branch. Run <code>prepaid sync --repair</code>.</p>`}<div class="figures">
    ${figure("chain", "Chain id", info.chainId)}
    ${figure("ledger", "Ledger", html`<code>${info.ledger}</code>`)}
    ${figure("settled-block", "Settled block", html`${info.settledBlock} <span class="note">${dateTime(info.settledTime)}</span>`)}
    ${figure("records", "Records", info.recordCount)}
    ${info.quorum === null
      ? figure("confirmation", "Confirmation", "no supervisor quorum followed")
      : html`${figure("confirmed", "Confirmed records", info.recordCount - pending)}${figure("pending", "Pending records", pending)}`}
    ${figure("decrypted", "Decrypted for", info.decryptedFor === null ? "encrypted (no regulator key at sync)" : html`<code>${info.decryptedFor}</code>`)}
  </div>`;
}

function merchantsTable(merchants: MerchantRow[], custody: Overview["custody"]): Html {
  const withCustody = custody.contract !== null;
  const custodyCells = (id: number) => {
    const f = custody.merchants[id];
    if (f === undefined) return html`<td></td><td></td><td></td>`;
    return html`${money("custody-held", f.held)}${money("custody-required", f.required)}<td class="num" data-field="custody-coverage">${coverageBadge(f)}</td>`;
  };
  return html`<table id="merchants"><thead><tr><th>Merchant</th><th>Status</th><th class="num">Accounts</th><th class="num">Records</th>
    <th class="num">Topped up</th><th class="num">Consumed</th><th class="num">Refunded</th><th class="num">Liability</th>
    ${withCustody && html`<th class="num">Custody held</th><th class="num">Required</th><th class="num">Coverage</th>`}
    <th class="num">Failed records</th><th class="num">Alerts</th></tr></thead><tbody>
    ${merchants.map(
      (m) => html`<tr data-merchant="${m.merchantId}"><td>${merchantLink(m.merchantId)}${m.name !== null && html` <span data-field="name">${m.name}</span>`}</td><td data-field="status">${badge(m.status)}</td>
        ${count("accounts", m.accountCount)}${count("records", m.recordCount)}${money("topped-up", m.toppedUp)}${money("consumed", m.consumed)}
        ${money("refunded", m.refunded)}${money("liability", m.liability)}${withCustody && custodyCells(m.merchantId)}${count("failed-records", m.failedRecords)}
        <td class="num" data-field="alerts"><a href="/alerts?merchant=${m.merchantId}">${m.alerts}</a></td></tr>`,
    )}</tbody></table>
    ${withCustody
      ? html`<p class="note" data-field="custody-note">Custody contract <code>${custody.contract}</code>: required = ceil(ratio × liability ÷ 10,000); coverage = held ÷ required.</p>`
      : html`<p class="note" data-field="no-custody">No custody attached to the ledger.</p>`}`;
}

function alertsTable(alerts: AlertRow[]): Html {
  if (alerts.length === 0) return html`<p class="note" data-field="no-alerts">No alerts.</p>`;
  return html`<table class="alerts"><thead><tr><th>Severity</th><th>Rule</th><th>Merchant</th><th>Account</th><th>Record</th><th>Message</th></tr></thead><tbody>
    ${alerts.map(
      (a) => html`<tr data-alert="${a.id}"><td>${badge(a.severity)}</td><td data-field="rule"><a href="/alerts?rule=${encodeURIComponent(a.rule)}">${a.rule}</a></td>
        <td data-field="merchant">${a.merchantId !== null && merchantLink(a.merchantId)}</td>
        <td>${a.merchantId !== null && a.account !== null && html`<a href="${accountHref(a.merchantId, a.account)}" title="${a.account}">${shortHex(a.account)}</a>`}</td>
        <td>${a.recordIndex !== null && html`<a href="/records/${a.recordIndex}">${a.recordIndex}</a>`}</td>
        <td data-field="message">${a.message}</td></tr>`,
    )}</tbody></table>`;
}

/** The overview's figures of the card holders' protection (with custody attached): cooling-off owed and overdue, claims. */
function protectionFigures(o: Overview): Html {
  const p = o.protection;
  const overdue =
    p.coolingOffOverdueCount === 0
      ? yuan(0)
      : html`<span class="badge high">${yuan(p.coolingOffOverdue)} on ${p.coolingOffOverdueCount} card${p.coolingOffOverdueCount === 1 ? "" : "s"}</span>`;
  return html`${figure("cooling-off-owed", "Cooling-off owed by merchants", yuan(p.coolingOffOwed))}${figure("cooling-off-overdue", "Cooling-off overdue", overdue)}
    ${figure("claims-open", "Closed merchants with claims open", p.claimsOpen)}${figure("claims-paid", "Paid by claims", yuan(p.claimsPaid))}`;
}

/**
 * The supervision state: which records the supervisors' quorum has confirmed (its last final
 * checkpoint covers records 1..N) and which are pending, as a bar and in words.
 */
function supervisionSection(o: Overview): Html {
  const { info, totals: t } = o;
  if (info.quorum === null) {
    return html`<section id="supervision"><h2>Supervision</h2><p class="note" data-field="no-quorum">The index follows no supervisor quorum: no record is confirmed or pending.</p></section>`;
  }
  const share = (n: number) => (info.recordCount === 0 ? 0 : (100 * n) / info.recordCount).toFixed(2);
  const words =
    t.pending === 0
      ? html`All ${info.recordCount} records are confirmed by the quorum's last final checkpoint.`
      : html`Records 1–${t.confirmed} are confirmed by the quorum's last final checkpoint;
        records <a href="/records/${t.confirmed + 1}">${t.confirmed + 1}</a>–${info.recordCount} (${t.pending}) are pending.`;
  return html`<section id="supervision"><h2>Supervision</h2>
    <div class="supervision-bar" role="img" aria-label="${t.confirmed} records confirmed, ${t.pending} pending">
      <span class="confirmed" style="width:${share(t.confirmed)}%"></span><span class="pending" style="width:${share(t.pending)}%"></span></div>
    <p data-field="supervision">${words} Quorum <code>${info.quorum}</code>.</p></section>`;
}

/** `/`: what the index covers, the supervision state, the totals, the charts, every merchant and the most severe alerts. */
export function overviewPage(o: OverviewView): Html {
  const t = o.totals;
  const names = new Map(o.merchants.map((m) => [m.merchantId, merchantLabel(m)]));
  const body = html`<h1>Overview</h1>
    ${infoFigures(o.info, t.pending)}
    ${supervisionSection(o)}
    <h2>Totals</h2>
    <div class="figures">
      ${figure("total-liability", "Liability", yuan(t.liability))}
      ${figure("topped-up", "Topped up", yuan(t.toppedUp))}${figure("consumed", "Consumed", yuan(t.consumed))}
      ${figure("refunded", "Refunded", yuan(t.refunded))}${figure("merchants", "Merchants", t.merchants)}
      ${figure("accounts", "Accounts", t.accounts)}${figure("verified", "Verified records", t.verified)}
      ${figure("failed", "Failed records", t.failed)}${figure("encrypted", "Encrypted records", t.encrypted)}
      ${figure("alerts", "Alerts", html`<a href="/alerts">${t.alerts}</a>`)}
      ${o.custody.contract !== null &&
      html`${figure("custody-held", "Custody held", yuan(Object.values(o.custody.merchants).reduce((sum, f) => sum + f.held, 0)))}
      ${figure("custody-required", "Custody required", yuan(Object.values(o.custody.merchants).reduce((sum, f) => sum + (f.claimsOpened ? 0 : f.required), 0)))}
      ${figure("custody-below", "Merchants below their requirement", Object.values(o.custody.merchants).filter((f) => f.belowRequirement).length)}`}
      ${o.custody.contract !== null && protectionFigures(o)}
    </div>
    <h2>Over time</h2>
    ${liabilityByMerchantChart(o.history, names)}
    ${flowsChart(o.history)}
    <h2>Merchants</h2>${merchantsTable(o.merchants, o.custody)}
    <h2>Alerts</h2>
    ${alertsChart(o.alertCounts)}
    <h3>Most severe</h3>${alertsTable(o.alerts)}
    ${t.alerts > o.alerts.length && html`<p><a href="/alerts">All ${t.alerts} alerts →</a></p>`}`;
  return layout("Overview", body, o.info);
}

function accountsTable(merchantId: number, accounts: AccountRow[]): Html {
  return html`<table id="accounts"><thead><tr><th>Account</th><th class="num">Records</th><th class="num">Initial amount</th>
    <th class="num">Topped up</th><th class="num">Consumed</th><th class="num">Refunded</th><th class="num">Balance</th>
    <th class="num">Failed records</th><th>Opened</th><th>Last record</th></tr></thead><tbody>
    ${accounts.map(
      (a) => html`<tr data-account="${a.account}"><td><a href="${accountHref(merchantId, a.account)}" title="${a.account}"><code>${shortHex(a.account)}</code></a></td>
        ${count("records", a.recordCount)}${money("initial", a.initialAmount)}${money("topped-up", a.toppedUp)}${money("consumed", a.consumed)}
        ${money("refunded", a.refunded)}${money("balance", a.balance)}${count("failed-records", a.failedRecords)}
        <td>${dateTime(a.openedTime)}</td><td>${dateTime(a.lastRecordTime)}</td></tr>`,
    )}</tbody></table>`;
}

/** `/merchants/:id`: the merchant's books, who may write for it, its liability over time, its accounts and alerts. */
export function merchantPage(v: MerchantView, query: URLSearchParams, info: IndexInfo, tx: TxLink): Html {
  const m = v.merchant;
  const thinned = v.series.length < m.batches ? ` (${v.series.length} of them charted, evenly spaced)` : "";
  const body = html`<h1>Merchant ${m.merchantId}${m.name !== null && html` <span data-field="name">${m.name}</span>`} ${badge(m.status)}</h1>
    ${m.suspendedReason !== null && html`<p data-field="suspended-reason">Suspended: ${m.suspendedReason}</p>`}
    <div class="figures">
      ${figure("liability", "Liability", yuan(m.liability))}
      ${figure("topped-up", "Topped up", yuan(m.toppedUp))}${figure("consumed", "Consumed", yuan(m.consumed))}
      ${figure("refunded", "Refunded", yuan(m.refunded))}${figure("accounts", "Accounts", m.accountCount)}
      ${figure("records", "Records", m.recordCount)}${figure("batches", "Batches", m.batches)}
      ${figure("failed-records", "Failed records", m.failedRecords)}${figure("alerts", "Alerts", m.alerts)}
      ${figure("first-record-time", "First record", timeOrDash(m.firstRecordTime))}${figure("last-record-time", "Last record", timeOrDash(m.lastRecordTime))}
      ${figure("last-service-time", "Last service (consumption or refund)", timeOrDash(m.lastServiceTime))}
    </div>
    ${custodySection(v.custody, tx)}
    ${protectionSection(v.protection, m.status)}
    ${recordersSection(v.recorders, tx)}
    <h2>Liability over time</h2>
    ${liabilityChart(v.series, `Liability of merchant ${m.merchantId} after each of its batches and settlements`)}
    <p class="note">After each of its ${m.batches} batches and each refund custody booked for it${thinned}.</p>
    <h2>Accounts</h2>
    ${accountsTable(m.merchantId, v.accounts.items)}${pager(`/merchants/${m.merchantId}`, query, v.accounts)}
    <h2>Alerts</h2>${alertsTable(v.alerts)}
    ${m.alerts > v.alerts.length && html`<p><a href="/alerts?merchant=${m.merchantId}">All ${m.alerts} alerts of merchant ${m.merchantId} →</a></p>`}`;
  return layout(`Merchant ${m.merchantId}`, body, info);
}

function confirmation(confirmed: boolean | null): Html {
  return confirmed === null ? html`—` : badge(confirmed ? "confirmed" : "pending");
}

/** Top-ups add to the card (+), consumption and refunds take from it (-). */
const signedAmount = (r: RecordRow) => {
  const signed = r.kind === 1 ? r.amount : -r.amount;
  return html`<td class="num ${signed >= 0 ? "credit" : "debit"}" data-field="amount" data-fen="${signed}">${signed >= 0 ? "+" : ""}${yuan(signed)}</td>`;
};

/**
 * A table of records, oldest first: with `balanceAfter` (a card's history) a running-balance
 * column; without (a transaction's records) the merchant and card of each.
 */
function recordsTable(records: (RecordRow | HistoryRow)[], blockTime = true): Html {
  const running = records.length > 0 && "balanceAfter" in records[0];
  return html`<table id="records"><thead><tr><th class="num">Record</th>${blockTime && html`<th>Block time</th>`}<th>Kind</th><th class="num">Amount</th>
    ${running ? html`<th class="num">Balance after</th>` : html`<th>Merchant</th><th>Account</th>`}
    <th>Order ref</th><th>Memo</th><th>Merchant time</th><th>Verification</th><th>Confirmation</th></tr></thead><tbody>
    ${records.map(
      (r) => html`<tr data-record="${r.recordIndex}"><td class="num"><a href="/records/${r.recordIndex}">${r.recordIndex}</a></td>
        ${blockTime && html`<td>${dateTime(r.blockTime)}</td>`}<td data-field="kind">${r.kindName}</td>${signedAmount(r)}
        ${"balanceAfter" in r
          ? money("balance-after", r.balanceAfter)
          : html`<td>${merchantLink(r.merchantId)}</td><td><a href="${accountHref(r.merchantId, r.account)}" title="${r.account}"><code>${shortHex(r.account)}</code></a></td>`}
        <td data-field="order-ref">${r.details?.orderRef}</td><td data-field="memo">${r.settlement !== null ? html`custody paid holder <code title="${r.settlement.holder}">${shortHex(r.settlement.holder)}</code>` : r.details?.memo}</td>
        <td data-field="merchant-time">${r.details !== null && dateTime(r.details.time)}</td>
        <td><span data-field="verification">${badge(r.verification)}</span> <span data-field="problems">${r.problems.join(", ")}</span></td>
        <td data-field="confirmation">${confirmation(r.confirmed)}</td></tr>`,
    )}</tbody></table>`;
}

/** `/merchants/:id/accounts/:account`: one card's books and its records with their verification. */
export function accountPage(v: AccountView, query: URLSearchParams, info: IndexInfo): Html {
  const a = v.account;
  const body = html`<h1>Account of merchant ${merchantLink(a.merchantId)}</h1>
    <p><code data-field="account">${a.account}</code></p>
    <div class="figures">
      ${figure("balance", "Balance", yuan(a.balance))}${figure("initial", "Initial amount", yuan(a.initialAmount))}
      ${figure("topped-up", "Topped up", yuan(a.toppedUp))}${figure("consumed", "Consumed", yuan(a.consumed))}
      ${figure("refunded", "Refunded", yuan(a.refunded))}${figure("records", "Records", a.recordCount)}
      ${figure("failed-records", "Failed records", a.failedRecords)}${figure("opened", "Opened", dateTime(a.openedTime))}
      ${figure("last-record-time", "Last record", dateTime(a.lastRecordTime))}
    </div>
    <h2>History</h2>
    <p class="note">Oldest first: top-ups add to the card (+), consumption and refunds take from it (-); the balance after each record is the card's running balance.</p>
    ${recordsTable(v.records.items)}${pager(accountHref(a.merchantId, a.account), query, v.records)}
    <h2>Alerts about this card</h2>${alertsTable(v.alerts)}`;
  return layout(`Account ${shortHex(a.account)}`, body, info);
}

/** `/records/:index`: every field of one record. */
export function recordPage(r: RecordRow, info: IndexInfo, tx: TxLink, alerts: AlertRow[]): Html {
  const row = (field: string, label: string, value: HtmlPart) => html`<tr data-field="${field}"><th>${label}</th><td>${value}</td></tr>`;
  const body = html`<h1>Record ${r.recordIndex}</h1>
    <table id="record"><tbody>
      ${row("merchant", "Merchant", merchantLink(r.merchantId))}
      ${row("account", "Account", html`<a href="${accountHref(r.merchantId, r.account)}"><code>${r.account}</code></a>`)}
      ${row("kind", "Kind", r.kindName)}${row("amount", "Amount", html`${r.kind === 1 ? "+" : ""}${yuan(r.kind === 1 ? r.amount : -r.amount)}`)}
      ${row("block", "Block", html`${r.blockNumber} (block time ${dateTime(r.blockTime)})`)}
      ${row("tx", "Transaction", html`${tx(r.txHash)} log ${r.logIndex} · <a href="/transactions/${r.txHash}">every record of this transaction</a>`)}
      ${r.settlement === null
        ? row("commitment", "Commitment", html`<code>${r.commitment}</code>`)
        : row("settlement", "Settlement", html`${r.settlement.reason} — a refund custody paid to holder <code>${r.settlement.holder}</code>; public, no ciphertext or commitment`)}
      ${row("verification", "Verification", badge(r.verification))}${row("problems", "Problems", r.problems.join(", ") || "none")}
      ${row("confirmation", "Confirmation", confirmation(r.confirmed))}
      ${row("order-ref", "Order ref", r.details?.orderRef ?? "not decrypted")}${row("memo", "Memo", r.details?.memo ?? "not decrypted")}
      ${row("merchant-time", "Merchant time", r.details === null ? "not decrypted" : dateTime(r.details.time))}
    </tbody></table>
    ${alerts.length > 0 && html`<h2>Alerts about this record</h2>${alertsTable(alerts)}`}`;
  return layout(`Record ${r.recordIndex}`, body, info);
}

function alertFilters(v: AlertsView): Html {
  const link = (params: Record<string, string>, text: string, current: boolean) => {
    const q = new URLSearchParams(params);
    const href = q.size === 0 ? "/alerts" : `/alerts?${q.toString()}`;
    return current ? html`<strong>${text}</strong>` : html`<a href="${href}">${text}</a>`;
  };
  const merchant: Record<string, string> = v.filter.merchantId === null ? {} : { merchant: String(v.filter.merchantId) };
  return html`<p class="filters">Rule:
    ${link(merchant, "all", v.filter.rule === null)}
    ${v.rules.map((r) => html` · ${link({ ...merchant, rule: r }, r, v.filter.rule === r)}`)}
    ${v.filter.merchantId !== null &&
    html`<br>Merchant ${merchantLink(v.filter.merchantId)} only (${link(v.filter.rule === null ? {} : { rule: v.filter.rule }, "all merchants", false)})`}
  </p>`;
}

/** `/alerts`: every alert of the last risk evaluation, filtered by `?rule=` and `?merchant=`. */
export function alertsPage(v: AlertsView, query: URLSearchParams, info: IndexInfo): Html {
  const body = html`<h1>Alerts</h1>
    <p class="note">The risk rules' findings as of block ${info.settledBlock}, the most severe first.</p>
    ${alertFilters(v)}${alertsTable(v.alerts.items)}${pager("/alerts", query, v.alerts)}`;
  return layout("Alerts", body, info);
}

/** `/transactions/:hash`: the records one transaction booked. */
export function transactionPage(v: TransactionView, query: URLSearchParams, info: IndexInfo, tx: TxLink): Html {
  const [first] = v.records.items;
  const sum = (kind: number) => v.records.items.reduce((n, r) => n + (r.kind === kind ? r.amount : 0), 0);
  const merchants = [...new Set(v.records.items.map((r) => r.merchantId))];
  const body = html`<h1>Transaction</h1><p data-field="tx">${tx(v.txHash)}</p>
    <div class="figures">
      ${figure("block", "Block", html`${first.blockNumber} <span class="note">${dateTime(first.blockTime)}</span>`)}
      ${figure("merchant", merchants.length === 1 ? "Merchant" : "Merchants", html`${merchants.map((id, i) => html`${i > 0 && ", "}${merchantLink(id)}`)}`)}
      ${figure("records", "Records", v.records.hasNext || v.records.page > 1 ? `${v.records.items.length} on this page` : v.records.items.length)}
      ${figure("topped-up", "Topped up", yuan(sum(1)))}${figure("consumed", "Consumed", yuan(sum(2)))}${figure("refunded", "Refunded", yuan(sum(3)))}
    </div>
    <p class="note">The records this transaction booked (a merchant's batch, or the refunds custody settled), all in block ${first.blockNumber}.</p>
    ${recordsTable(v.records.items, false)}${pager(`/transactions/${v.txHash}`, query, v.records)}`;
  return layout(`Transaction ${shortHex(v.txHash)}`, body, info);
}

/** `/search?q=` with several matches (one redirects; none is a 404): each, linked. */
export function searchPage(v: SearchView, info: IndexInfo): Html {
  const body = html`<h1>Search</h1><p data-field="several">“${v.query}” matches ${v.matches.length} things${v.matches.length >= 20 ? " (at least)" : ""}: pick one, or type more of it.</p>
    <ul id="matches">${v.matches.map((m) => html`<li data-kind="${m.kind}"><a href="${m.href}">${m.label}</a></li>`)}</ul>`;
  return layout("Search", body, info);
}

/** The page for a request that failed: its status, one sentence, and the facts (never a stack). */
export function errorPage(status: number, title: string, message: string, details: Record<string, unknown>): Html {
  const facts = Object.entries(details).map(([k, v]) => html`<li>${k}: <code>${typeof v === "string" ? v : JSON.stringify(v)}</code></li>`);
  const body = html`<h1 data-status="${status}">${title}</h1><p data-field="message">${message.charAt(0).toUpperCase()}${message.slice(1)}.</p>
    ${facts.length > 0 && html`<ul>${facts}</ul>`}<p><a href="/">Back to the overview</a></p>`;
  return layout(title, body, null);
}
