/**
 * The merchant page's "Custody" section and the overview's custody columns: what custody holds
 * for the merchant, the ratio a regulator set, what it must hold (ceil(ratio × liability /
 * 10,000)), the coverage (held ÷ required), and every deposit, withdrawal and ratio change, all
 * derived from the custody events (src/indexer/custody.ts).
 */
import { CUSTODY_EVENT_NAMES, coverageText, isOutflow, percent, type CustodyFigures, type CustodyView } from "../indexer/custody.js";
import { dateTime, shortHex, yuan } from "./format.js";
import { html, type Html } from "./html.js";
import { NO_EXPLORER, type TxLink } from "./explorer.js";

const actor = (address: string) => html`<code title="${address}">${shortHex(address)}</code>`;
const EVENT_CLASS: Record<string, string> = { deposited: "active", withdrawn: "pending", "ratio-set": "", claimed: "pending", "cooling-off-paid": "pending", swept: "pending" };
const figure = (field: string, label: Html | string, value: Html | string) =>
  html`<div class="figure" data-field="${field}"><span class="label">${label}</span><span class="value">${value}</span></div>`;

/** Coverage as a badge: green at or above the requirement, red below it; grey once claims are open (no requirement then). */
export function coverageBadge(f: CustodyFigures): Html {
  if (f.claimsOpened) return html`<span class="badge" data-coverage="${f.coverage === null ? "" : f.coverage}" title="claims open: custody is the card holders' pool">${coverageText(f.coverage)} · claims</span>`;
  return html`<span class="badge ${f.belowRequirement ? "high" : "low"}" data-coverage="${f.coverage === null ? "" : f.coverage}">${coverageText(f.coverage)}</span>`;
}

function historyTable(c: CustodyView, tx: TxLink): Html {
  if (c.history.length === 0) return html`<p class="note" data-field="no-custody-event">No deposit, withdrawal, ratio change or payout for this merchant.</p>`;
  return html`<table id="custody-history"><thead><tr><th class="num">Block</th><th>Time</th><th>Event</th><th class="num">Amount</th>
    <th class="num">Held after</th><th>Ratio</th><th>By</th><th>To</th><th>Transaction</th></tr></thead><tbody>
    ${c.history.map(
      (e) => html`<tr data-event="${e.event}" data-tx="${e.txHash}" data-log-index="${e.logIndex}"><td class="num">${e.blockNumber}</td><td>${dateTime(e.time)}</td>
        <td><span class="badge ${EVENT_CLASS[e.event]}">${CUSTODY_EVENT_NAMES[e.event]}</span></td>
        <td class="num" data-field="amount" data-fen="${e.amount ?? ""}">${e.amount === null ? "" : `${isOutflow(e.event) ? "−" : "+"}${yuan(e.amount)}`}</td>
        <td class="num" data-field="held-after" data-fen="${e.heldAfter ?? ""}">${e.heldAfter === null ? "" : yuan(e.heldAfter)}</td>
        <td data-field="ratio" data-bps="${e.ratioBps ?? ""}">${e.event === "ratio-set" ? `${percent(e.ratioBefore ?? 0)} → ${percent(e.ratioBps ?? 0)}` : ""}</td>
        <td data-field="by">${actor(e.actor)}</td><td data-field="to">${e.to !== null && actor(e.to)}</td><td>${tx(e.txHash, true)}</td></tr>`,
    )}</tbody></table>`;
}

/** The section: figures, a warning when below the requirement, and the history. */
export function custodySection(c: CustodyView, tx: TxLink = NO_EXPLORER): Html {
  if (c.custody === null) {
    return html`<section id="custody"><h2>Custody</h2><p class="note" data-field="no-custody">No custody attached to the ledger: nothing is held for this merchant's card holders.</p></section>`;
  }
  return html`<section id="custody"><h2>Custody</h2>
    <p class="note">Money held for this merchant's card holders in custody contract <code data-field="custody-contract">${c.custody}</code>, from its events.
      Required = ceil(ratio × liability ÷ 10,000), rounded up in the card holders' favour; coverage = held ÷ required.</p>
    <div class="figures">
      ${figure("custody-held", "Held", yuan(c.held))}
      ${figure("custody-ratio", "Coverage ratio", c.ratioBps === 0 ? "0 % (none set)" : percent(c.ratioBps))}
      ${figure("custody-required", html`Required (of ${yuan(c.liability)} owed)`, yuan(c.required))}
      ${figure("custody-coverage", "Coverage (held ÷ required)", coverageBadge(c))}
    </div>
    ${c.claimsOpened &&
    html`<p class="note" data-field="claims-opened">Claims are open on this closed merchant: its custody is its card holders' pool, paid out by their claims
      (see “Card holders' protection”). Deposits are refused and the requirement no longer applies.</p>`}
    ${c.belowRequirement &&
    html`<p data-field="below-requirement" style="border:2px solid #c0392b;padding:8px 12px;color:#c0392b"><strong>Below the requirement by ${yuan(c.required - c.held)}.</strong>
      The ledger refuses this merchant's batches that raise its liability until it deposits; consumption and refunds still go through.</p>`}
    <h3>Custody history (${c.history.length})</h3>${historyTable(c, tx)}</section>`;
}
