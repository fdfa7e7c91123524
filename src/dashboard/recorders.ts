/**
 * The merchant page's "Who may write" section: the keys that may upload the merchant's records
 * now, the regulators' offers still pending (and from when anyone may carry them out), and every
 * recorder event, all derived from the registry's events (src/indexer/recorders.ts).
 */
import { RECORDER_EVENT_NAMES, describeRecorderEvent, type RecorderView } from "../indexer/recorders.js";
import { dateTime, shortHex } from "./format.js";
import { html, type Html } from "./html.js";
import { NO_EXPLORER, type TxLink } from "./explorer.js";

const key = (address: string) => html`<code>${address}</code>`;
/** Someone who acted (a regulator, a recorder): shortened, the whole address in its title. */
const actor = (address: string) => html`<code title="${address}">${shortHex(address)}</code>`;
const EVENT_CLASS: Record<string, string> = { registered: "active", added: "active", offered: "pending", offer_cancelled: "", removed: "suspended" };

function warning(r: RecorderView): Html | false {
  if (r.incompleteBefore === null) return false;
  const text =
    r.incompleteBefore === Number.MAX_SAFE_INTEGER
      ? "This index was made by an older version and holds no recorder events: run prepaid sync."
      : `The index holds recorder events only from block ${r.incompleteBefore} on (it was made by an older version): keys added before are missing. Run prepaid sync --repair.`;
  return html`<p class="reorg" data-field="recorders-incomplete" style="border:2px solid #c0392b;padding:8px 12px;color:#c0392b">${text}</p>`;
}

function currentTable(r: RecorderView): Html {
  if (r.current.length === 0) {
    return html`<p data-field="no-recorder" style="border:1px solid #c0392b;padding:6px 12px;background:#fff">No key may upload records for this merchant.</p>`;
  }
  return html`<table id="recorders"><thead><tr><th>Key</th><th>Recorder since</th><th class="num">Block</th><th>How</th></tr></thead><tbody>
    ${r.current.map(
      (k) => html`<tr data-recorder="${k.recorder}"><td data-field="key">${key(k.recorder)}</td><td>${dateTime(k.sinceTime)}</td>
        <td class="num">${k.sinceBlock}</td><td data-field="how">${k.via === "registered" ? html`first key, registered by ${actor(k.by)}` : html`offered by ${actor(k.by)}, accepted`}</td></tr>`,
    )}</tbody></table>`;
}

function offersTable(r: RecorderView): Html {
  if (r.pending.length === 0) return html`<p class="note" data-field="no-offer">No offer pending.</p>`;
  return html`<table id="recorder-offers"><thead><tr><th>Key offered</th><th>Offered by</th><th>Offered</th><th>Executable by anyone from</th><th>Now</th></tr></thead><tbody>
    ${r.pending.map(
      (o) => html`<tr data-offer="${o.recorder}"><td data-field="key">${key(o.recorder)}</td><td>${actor(o.by)}</td><td>${dateTime(o.offeredTime)}</td>
        <td data-field="executable-at">${dateTime(o.executableAt)}</td>
        <td data-field="offer-state">${o.executable ? html`<span class="badge high">executable: anyone may carry it out</span>` : html`<span class="badge pending">awaiting a recorder's answer</span>`}</td></tr>`,
    )}</tbody></table>`;
}

function historyTable(r: RecorderView, tx: TxLink): Html {
  if (r.history.length === 0) return html`<p class="note">No recorder event in the index.</p>`;
  return html`<table id="recorder-history"><thead><tr><th class="num">Block</th><th>Time</th><th>Event</th><th>Key</th><th>What happened</th><th>Transaction</th></tr></thead><tbody>
    ${r.history.map(
      (e) => html`<tr data-event="${e.event}"><td class="num">${e.blockNumber}</td><td>${dateTime(e.time)}</td>
        <td><span class="badge ${EVENT_CLASS[e.event]}">${RECORDER_EVENT_NAMES[e.event]}</span></td><td data-field="key">${key(e.recorder)}</td>
        <td data-field="message">${describeRecorderEvent(e, shortHex)}</td><td>${tx(e.txHash, true)}</td></tr>`,
    )}</tbody></table>`;
}

/** The section: current keys, pending offers, history. */
export function recordersSection(r: RecorderView, tx: TxLink = NO_EXPLORER): Html {
  return html`<section id="who-may-write"><h2>Who may write</h2>
    <p class="note">Keys that may upload this merchant's records, from the registry's events, as of ${dateTime(r.asOfTime)}.</p>
    ${warning(r)}${currentTable(r)}
    <h3>Pending offers (${r.pending.length})</h3>${offersTable(r)}
    <h3>Recorder history (${r.history.length})</h3>${historyTable(r, tx)}</section>`;
}
