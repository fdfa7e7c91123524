/**
 * The merchant page's "Card holders' protection" section: the merchant's card rules (cap,
 * cooling-off days), its claims round once closed (pool, liability, rate, deadline, paid,
 * unpaid, claims, swept, and every claim) and its cooling-off returns (paid from custody, owed
 * with their due dates, met; overdue ones highlighted), derived from the index's protection
 * events (src/indexer/protection-view.ts).
 */
import type { ClaimsView, CoolingOffRow, ProtectionView } from "../indexer/protection-view.js";
import { dateTime, shortHex, yuan } from "./format.js";
import { html, type Html, type HtmlPart } from "./html.js";

const who = (address: string) => html`<code title="${address}">${shortHex(address)}</code>`;
const card = (merchantId: number, account: string) =>
  html`<a href="/merchants/${merchantId}/accounts/${account}" title="${account}"><code>${shortHex(account)}</code></a>`;
const record = (index: number | null) => (index === null ? html`` : html`<a href="/records/${index}">${index}</a>`);
const figure = (field: string, label: string, value: HtmlPart) =>
  html`<div class="figure" data-field="${field}"><span class="label">${label}</span><span class="value">${value}</span></div>`;
const ALARM = "border:2px solid #c0392b;padding:8px 12px;color:#c0392b";

/** The fixed payout rate as a percentage with two decimals. */
const rate = (r: number) => `${(r * 100).toFixed(2)} %`;

function rulesFigures(p: ProtectionView): Html {
  const r = p.rules;
  return html`<div class="figures">
    ${figure("card-cap", "Card cap (a card may hold at most)", r === null || r.cardCap === 0 ? "none" : yuan(r.cardCap))}
    ${figure("cooling-off-days", "Cooling-off period", r === null || r.coolingOffDays === 0 ? "none" : `${r.coolingOffDays} days`)}
    ${figure("rules-set", "Rules set", r === null ? "never" : html`${dateTime(r.time)} <span class="note">by ${who(r.by)}</span>`)}
  </div>`;
}

function claimsPart(merchantId: number, c: ClaimsView | null, closed: boolean): Html {
  if (c === null) {
    return closed
      ? html`<h3>Claims</h3><p class="note" data-field="no-claims">No claims opened yet on this closed merchant's custody.</p>`
      : html``;
  }
  const swept =
    c.swept !== null
      ? html`${yuan(c.swept.amount)} <span class="note">to ${who(c.residualTo)}</span>`
      : html`not yet <span class="note">(after the deadline, to ${who(c.residualTo)})</span>`;
  return html`<h3>Claims</h3>
    <p class="note">Opened ${dateTime(c.openedTime)} by ${who(c.openedBy)} on custody <code>${c.custody}</code>. Every card is paid at one rate,
      fixed when claims opened: in full when custody held the whole liability, else pool ÷ liability.</p>
    <div class="figures">
      ${figure("claims-pool", "Pool (held when opened)", yuan(c.pool))}
      ${figure("claims-liability", "Liability when opened", yuan(c.liability))}
      ${figure("claims-rate", "Rate paid on each card", html`<span class="badge ${c.rate < 1 ? "medium" : "low"}">${rate(c.rate)}</span>`)}
      ${figure("claims-deadline", "Deadline", html`${dateTime(c.deadline)} <span class="note">${c.ended ? "ended" : "open"}</span>`)}
      ${figure("claims-paid", "Paid to card holders", yuan(c.paid))}
      ${figure("claims-unpaid", "Unpaid (liability − paid)", yuan(c.unpaid))}
      ${figure("claims-count", "Cards claimed", c.claims)}
      ${figure("claims-swept", "Unclaimed swept", swept)}
    </div>
    ${c.list.length === 0
      ? html`<p class="note" data-field="no-claim">No card has claimed yet.</p>`
      : html`<table id="claims"><thead><tr><th class="num">Block</th><th>Time</th><th>Card</th><th>Holder</th><th>Paid to</th>
      <th class="num">Balance</th><th class="num">Paid</th><th class="num">Record</th></tr></thead><tbody>
      ${c.list.map(
        (x) => html`<tr data-account="${x.account}"><td class="num">${x.blockNumber}</td><td>${dateTime(x.time)}</td><td>${card(merchantId, x.account)}</td>
          <td>${who(x.holder)}</td><td>${who(x.to)}</td><td class="num" data-field="balance">${yuan(x.balance)}</td>
          <td class="num" data-field="paid">${yuan(x.paid)}</td><td class="num">${record(x.recordIndex)}</td></tr>`,
      )}</tbody></table>`}`;
}

const STATUS: Record<CoolingOffRow["status"], [string, string]> = {
  paid: ["paid from custody", "low"],
  met: ["met by merchant", "low"],
  claimed: ["ended by a claim", ""],
  owed: ["owed", "medium"],
};

function coolingOffPart(merchantId: number, p: ProtectionView): Html {
  const o = p.coolingOff;
  const rows = o.requests;
  return html`<h3>Cooling-off returns (${rows.length})</h3>
    <div class="figures">
      ${figure("cooling-off-paid", "Returned from custody", yuan(o.paidFromCustody))}
      ${figure("cooling-off-met", "Met by the merchant", yuan(o.metByMerchant))}
      ${figure("cooling-off-owed", "Owed by the merchant", yuan(o.owed))}
      ${figure("cooling-off-overdue", "Overdue", o.overdueCount === 0 ? yuan(0) : html`<span class="badge high">${yuan(o.overdue)} on ${o.overdueCount} card${o.overdueCount === 1 ? "" : "s"}</span>`)}
    </div>
    ${o.overdueCount > 0 &&
    html`<p data-field="cooling-off-overdue-warning" style="${ALARM}"><strong>${yuan(o.overdue)} of cooling-off returns are past their due date.</strong>
      Custody could not pay them when the holders asked; the merchant owes them and has not paid.</p>`}
    ${rows.length === 0
      ? html`<p class="note" data-field="no-cooling-off">No card holder has asked for a cooling-off return.</p>`
      : html`<table id="cooling-off"><thead><tr><th class="num">Block</th><th>Asked</th><th>Card</th><th>Holder</th><th class="num">Amount</th>
      <th>Status</th><th>Due by</th><th>Paid</th><th class="num">Record</th></tr></thead><tbody>
      ${rows.map((r) => {
        const [label, cls] = r.overdue ? ["OVERDUE", "high"] : STATUS[r.status];
        const paidAt = r.status === "paid" ? r.time : r.metTime;
        return html`<tr data-account="${r.account}" data-status="${r.overdue ? "overdue" : r.status}"${r.overdue ? html` style="background:#fbd9d9"` : ""}>
          <td class="num">${r.blockNumber}</td><td>${dateTime(r.time)}</td><td>${card(merchantId, r.account)}</td><td>${who(r.holder)}</td>
          <td class="num" data-field="amount">${yuan(r.amount)}</td><td data-field="status"><span class="badge ${cls}"${r.overdue ? html` style="background:#c0392b;color:#fff;font-weight:600"` : ""}>${label}</span></td>
          <td data-field="due-by">${r.dueBy === null ? "" : dateTime(r.dueBy)}</td><td>${paidAt === null ? "" : dateTime(paidAt)}</td>
          <td class="num">${record(r.recordIndex)}</td></tr>`;
      })}</tbody></table>`}`;
}

/** The section: card rules, claims (once closed) and cooling-off returns. */
export function protectionSection(p: ProtectionView, status: string): Html {
  return html`<section id="protection"><h2>Card holders' protection</h2>
    <p class="note">The card rules a regulator set on the ledger, and what card holders took back from custody without the merchant, from the events of the
      ledger and its custody contract as of ${dateTime(p.asOfTime)}. Each payout is booked on the ledger as a refund of its card.</p>
    ${rulesFigures(p)}${claimsPart(p.merchantId, p.claims, status === "closed")}${coolingOffPart(p.merchantId, p)}</section>`;
}
