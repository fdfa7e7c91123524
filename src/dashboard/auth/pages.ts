/**
 * The sign-in wall's pages: sign in, refusals (403, 429) and the audit log, plus the bar every
 * dashboard page gets when someone is signed in (who, the audit log for auditors, sign out).
 * Plain server-rendered HTML with the dashboard's colours, no script; forms post to the
 * dashboard itself (its CSP allows `form-action 'self'` only). They have their own small
 * stylesheet so they do not depend on the dashboard's page layout.
 */
import { dateTime } from "../format.js";
import { html, type Html, type HtmlPart } from "../html.js";
import type { AuditFilter, AuditRow, Role } from "./store.js";

const STYLE = html`<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
  header { background: #1d2a44; color: #fff; padding: 10px 24px; display: flex; gap: 24px; align-items: baseline; }
  header a { color: #cfe0ff; text-decoration: none; } header strong { font-size: 16px; }
  main { padding: 8px 24px 32px; max-width: 1280px; overflow-x: auto; }
  h1 { font-size: 22px; margin: 16px 0 8px; }
  form.signin { background: #fff; border: 1px solid #e3e6eb; border-radius: 6px; padding: 16px 20px; max-width: 340px; }
  form.signin label { display: block; margin: 8px 0 2px; color: #5b6475; font-size: 12px; }
  form.signin input[type=text], form.signin input[type=password] { width: 100%; box-sizing: border-box; padding: 6px 8px; font: inherit; border: 1px solid #c8ced8; border-radius: 4px; }
  button { margin-top: 12px; padding: 6px 14px; font: inherit; border: 0; border-radius: 4px; background: #2f6fde; color: #fff; cursor: pointer; }
  .message { border-radius: 6px; padding: 8px 12px; max-width: 560px; } .error { background: #fbd9d9; } .notice { background: #eef1f5; }
  table { border-collapse: collapse; background: #fff; width: 100%; }
  th, td { padding: 4px 8px; border-bottom: 1px solid #e3e6eb; text-align: left; vertical-align: top; white-space: nowrap; }
  th { background: #eef1f5; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
  td[data-field=request], td[data-field=card], td[data-field=detail] { white-space: normal; overflow-wrap: anywhere; min-width: 120px; }
  code { font-size: 12px; }
  form.filter { display: flex; gap: 8px; align-items: end; margin: 8px 0; } form.filter label { font-size: 12px; color: #5b6475; display: flex; flex-direction: column; }
  form.filter button { margin-top: 0; } .note { color: #5b6475; } nav.pager { margin: 8px 0; }
</style>`;

function page(title: string, body: Html, bar: Html | null): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · prepaid-ledger dashboard</title>${STYLE}</head>
<body><header><strong>prepaid-ledger</strong>${bar !== null && html`<a href="/">Overview</a><a href="/alerts">Alerts</a>${bar}`}</header>
<main>${body}</main></body></html>`;
}

/** The sign-in form, with a message (why the visitor is here) and the address to return to. */
export function signInPage(options: { csrf: string; next: string; name?: string; error?: string; notice?: string }): Html {
  return page(
    "Sign in",
    html`<h1>Sign in</h1>
  <p class="note">This dashboard shows decrypted card histories. Every page you open is recorded in its audit log.</p>
  ${options.notice !== undefined && html`<p class="message notice" data-field="notice">${options.notice}</p>`}
  ${options.error !== undefined && html`<p class="message error" role="alert" data-field="error">${options.error}</p>`}
  <form class="signin" method="post" action="/signin">
    <input type="hidden" name="csrf" value="${options.csrf}"><input type="hidden" name="next" value="${options.next}">
    <label for="name">Account</label><input type="text" id="name" name="name" autocomplete="username" required value="${options.name ?? ""}" autofocus>
    <label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
    <button type="submit">Sign in</button>
  </form>`,
    null,
  );
}

/** A refusal (403 forbidden or cross-site, 429 too many sign-ins) as a page. */
export function refusalPage(status: number, title: string, message: string, bar: Html | null): Html {
  return page(title, html`<h1 data-field="status">${status} ${title}</h1><p class="message error" data-field="message">${message}</p>
  <p><a href="${bar === null ? "/signin" : "/"}">${bar === null ? "Sign in" : "Back to the overview"}</a></p>`, bar);
}

/** What every page shows a signed-in person, in the header: who, the audit log (auditors), sign out. */
export function signedInBar(account: string, role: Role, csrf: string): Html {
  return html`<span data-field="signed-in" style="margin-left:auto">signed in as <strong data-field="account">${account}</strong> (${role})</span>${
    role === "auditor" && html`<a href="/audit">Audit log</a>`
  }<form method="post" action="/signout" style="display:inline;margin:0"><input type="hidden" name="csrf" value="${csrf}"><button type="submit" id="signout" style="margin:0;padding:2px 10px;font:inherit;border:0;border-radius:4px;background:#2f6fde;color:#fff;cursor:pointer">Sign out</button></form>`;
}

const time = (ms: number) => dateTime(Math.floor(ms / 1000));
const cell = (field: string, value: HtmlPart) => html`<td data-field="${field}">${value ?? "—"}</td>`;

/** The audit log, newest first, with filters and a link to older rows. */
export function auditPage(rows: AuditRow[], filter: AuditFilter, hasOlder: boolean, bar: Html): Html {
  const older = new URLSearchParams(Object.entries({ ...filter, beforeId: rows.at(-1)?.id, limit: undefined }).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)] as [string, string]));
  return page(
    "Audit log",
    html`<h1>Audit log</h1>
  <p class="note">Who signed in, failed to, signed out, and every page or API request a signed-in account made (the merchant, card and record it named).</p>
  <form class="filter" method="get" action="/audit">
    <label>Account<input name="account" value="${filter.account ?? ""}"></label>
    <label>Merchant<input name="merchant" value="${filter.merchant ?? ""}" size="6"></label>
    <label>Card<input name="card" value="${filter.card ?? ""}"></label>
    <label>Event<input name="event" value="${filter.event ?? ""}" size="12"></label><button type="submit">Filter</button>
  </form>
  <table id="audit"><thead><tr><th>Time</th><th>Event</th><th>Account</th><th>Client</th><th>Request</th><th>Merchant</th><th>Card</th><th>Record</th><th>Status</th><th>Detail</th></tr></thead><tbody>
  ${rows.map(
    (r) => html`<tr data-audit="${r.id}">${cell("time", time(r.time))}${cell("event", r.event)}${cell("account", r.account)}${cell("client", r.client)}${cell(
      "request",
      r.path === null ? null : `${r.method ?? ""} ${r.path}`,
    )}${cell("merchant", r.merchant)}${cell("card", r.card === null ? null : html`<code>${r.card}</code>`)}${cell("record", r.record)}${cell("status", r.status)}${cell("detail", r.detail)}</tr>`,
  )}
  </tbody></table>
  ${rows.length === 0 && html`<p class="note">No entries.</p>`}
  ${hasOlder && html`<nav class="pager"><a rel="next" href="/audit?${older.toString()}">older →</a></nav>`}`,
    bar,
  );
}
