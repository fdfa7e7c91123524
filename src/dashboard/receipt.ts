/**
 * The receipt page (`/receipt?r=…`) and its JSON twin (`/api/receipt?r=…`): a card holder pastes
 * the compact string from their QR code (or the receipt's JSON) and sees whether the ledger booked
 * exactly that, the card's balance now, and whether the supervisors confirmed it.
 *
 * The record, the balance and the confirmation come from the chain (`prepaid serve --rpc URL`):
 * the card holder is told what the ledger says now, not what the index held at its last sync.
 * The index supplies what a regulator trusts — its ledger (a receipt naming another is refused)
 * and its quorum — and, when the chain says "one of time, order reference, memo or salt was
 * altered", the regulator's decrypted copy of the record names which one.
 */
import QRCode from "qrcode";

import { PrepaidLedgerError, isError } from "../errors.js";
import type { IndexInfo, IndexQueries } from "../indexer/queries.js";
import { parseReceipt, pinpointHidden, receiptToCompact, receiptToJson, verifyReceipt, type Receipt, type ReceiptJson, type ReceiptRpc } from "../receipt/index.js";
import { dateTime, yuan } from "./format.js";
import { Html, html } from "./html.js";

/** Longest `r` accepted: a compact receipt is about 230 characters, its JSON about 600. */
export const MAX_RECEIPT_INPUT = 4_096;
const KIND_NAMES: Record<number, string> = { 1: "Top-up", 2: "Consumption", 3: "Refund" };

/** What the receipt page shows (and `/api/receipt` returns). */
export interface ReceiptView {
  /** `empty`: no receipt given yet; `valid` / `invalid`: the verdict. */
  state: "empty" | "valid" | "invalid";
  /** What was pasted (echoed into the form). */
  input: string;
  receipt: ReceiptJson | null;
  compact: string | null;
  /** Set when valid: the record on chain, the card's books now, the confirmation. */
  record: { recordIndex: string; blockNumber: number; blockTime: number; txHash: string } | null;
  books: { balance: string; toppedUp: string; consumed: string; refunded: string; atBlock: number } | null;
  confirmation: { status: string; quorum: string | null; confirmedThrough: string | null } | null;
  /** Set when valid and the ledger has custody: what a cooling-off request would return now, and until when. */
  coolingOff: { amount: string; endsAt: number; custody: string } | null;
  /** Set when invalid: which part is wrong. */
  error: { code: string; field: string; message: string; details: Record<string, unknown> } | null;
}

const emptyView = (input: string): ReceiptView => ({ state: "empty", input, receipt: null, compact: null, record: null, books: null, confirmation: null, coolingOff: null, error: null });

/** `r` from the query string: absent or blank is no receipt; a very long one is refused (400). */
export function receiptInput(query: URLSearchParams): string {
  const r = (query.get("r") ?? "").trim();
  if (r.length > MAX_RECEIPT_INPUT) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "the receipt is too long to be one", { details: { length: r.length, max: MAX_RECEIPT_INPUT } });
  }
  return r;
}

const REFUSALS = new Set(["RECEIPT_MALFORMED", "RECEIPT_MISMATCH", "RECEIPT_NOT_FOUND", "UNSUPPORTED_VERSION"]);

function refusal(input: string, receipt: Receipt | null, e: PrepaidLedgerError): ReceiptView {
  const field = typeof e.details.field === "string" ? e.details.field : e.code === "RECEIPT_NOT_FOUND" ? "record" : "receipt";
  const details = JSON.parse(JSON.stringify(e.details, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))) as Record<string, unknown>;
  return {
    ...emptyView(input),
    state: "invalid",
    receipt: receipt === null ? null : receiptToJson(receipt),
    error: { code: e.code, field, message: e.shortMessage, details },
  };
}

/**
 * Checks a pasted receipt against the chain (and, to name an altered hidden detail, the index).
 *
 * @param input - the compact string or JSON, as pasted ("" for the empty form)
 * @param rpc - a node of the index's chain, or undefined when the dashboard has none
 * @param queries - the index, read in the caller's snapshot
 * @throws PrepaidLedgerError `INVALID_CONFIG` when the dashboard has no node (503);
 *   `RPC_ERROR` / `TIMEOUT` when the node fails
 */
export async function receiptView(input: string, rpc: ReceiptRpc | undefined, queries: IndexQueries): Promise<ReceiptView> {
  if (input === "") return emptyView(input);
  let receipt: Receipt | null = null;
  try {
    receipt = parseReceipt(input);
    if (rpc === undefined) {
      throw new PrepaidLedgerError("INVALID_CONFIG", "receipts are checked against the chain: start the dashboard with `prepaid serve --rpc URL`");
    }
    const info = queries.info();
    try {
      const v = await verifyReceipt(receipt, rpc, { ledger: info.ledger, quorum: info.quorum ?? undefined, fromBlock: info.fromBlock });
      return {
        ...emptyView(input),
        state: "valid",
        receipt: receiptToJson(receipt),
        compact: receiptToCompact(receipt),
        record: { recordIndex: v.record.recordIndex.toString(), blockNumber: v.record.blockNumber, blockTime: v.record.blockTime, txHash: v.record.txHash },
        books: { balance: v.books.balance.toString(), toppedUp: v.books.toppedUp.toString(), consumed: v.books.consumed.toString(), refunded: v.books.refunded.toString(), atBlock: v.checkedAtBlock },
        confirmation: { status: v.confirmation.status, quorum: v.confirmation.quorum, confirmedThrough: v.confirmation.confirmedThrough?.toString() ?? null },
        coolingOff: v.coolingOff === null ? null : { amount: v.coolingOff.amount.toString(), endsAt: v.coolingOff.endsAt, custody: v.coolingOff.custody },
      };
    } catch (e) {
      if (isError(e, "RECEIPT_MISMATCH") && e.details.field === "details") throw pinpointFromIndex(receipt, queries) ?? e;
      throw e;
    }
  } catch (e) {
    if (isError(e) && REFUSALS.has(e.code)) return refusal(input, receipt, e);
    throw e;
  }
}

/**
 * Names the altered hidden detail (time, orderRef, memo or salt) of a receipt the chain refused
 * with field `details`, from the index's decrypted copy of the record.
 *
 * @param receipt - the refused receipt
 * @param queries - an index of the receipt's chain and ledger
 * @returns the `RECEIPT_MISMATCH` error naming the field, or undefined when the index is of
 *   another ledger or chain, lacks the record, holds another commitment there, or holds it
 *   undecrypted
 */
export function pinpointFromIndex(receipt: Receipt, queries: IndexQueries): PrepaidLedgerError | undefined {
  const info = queries.info();
  if (info.ledger.toLowerCase() !== receipt.ledger.toLowerCase() || info.chainId !== receipt.chainId.toString()) return undefined;
  try {
    const row = queries.record(Number(receipt.recordIndex));
    return row.details === null || row.commitment.toLowerCase() !== receipt.commitment.toLowerCase() ? undefined : pinpointHidden(receipt, row.details);
  } catch (e) {
    if (isError(e, "NOT_FOUND")) return undefined;
    throw e;
  }
}

/** The QR code of a compact receipt, as inline SVG (the `qrcode` package's own markup: paths only). */
export async function receiptQr(compact: string): Promise<Html> {
  const svg = await QRCode.toString(compact, { type: "svg", errorCorrectionLevel: "M", margin: 2 });
  return new Html(svg.replace("<svg ", '<svg class="qr" role="img" aria-label="QR code of the receipt" '));
}

const FIELD_NAMES: Record<string, string> = {
  chainId: "chain",
  ledger: "ledger",
  recordIndex: "record number",
  blockNumber: "block",
  account: "card",
  merchantId: "merchant",
  kind: "kind of transaction",
  amount: "amount",
  commitment: "commitment",
  details: "time, order reference, memo or salt",
  time: "time",
  orderRef: "order reference",
  memo: "memo",
  salt: "salt",
  record: "record",
  encoding: "encoding",
  prefix: "prefix",
  version: "version",
};

function shown(field: string, v: unknown): string {
  if (field === "amount" && (typeof v === "string" || typeof v === "number") && /^\d+$/.test(String(v))) return yuan(BigInt(v));
  return String(v);
}

/** The table row each receipt field is shown in (salt and commitment are shown below the table). */
const ROW_OF: Record<string, string[]> = {
  kind: ["kind"],
  amount: ["amount"],
  merchantId: ["merchant"],
  account: ["account"],
  time: ["time"],
  orderRef: ["order-ref"],
  memo: ["memo"],
  details: ["time", "order-ref", "memo"],
  recordIndex: ["record-index"],
  blockNumber: ["record-index"],
  chainId: ["ledger"],
  ledger: ["ledger"],
};

/** What the receipt says, one row a field; the rows of `wrong` are marked. */
function detailsTable(r: ReceiptJson, wrong: string | null = null): Html {
  const d = r.details;
  const marked = new Set(wrong === null ? [] : (ROW_OF[wrong] ?? []));
  const row = (field: string, label: string, value: unknown) =>
    html`<tr class="${marked.has(field) ? "wrong" : ""}"><th>${label}</th><td data-field="${field}">${String(value)}</td></tr>`;
  return html`<table class="receipt">
    ${row("kind", "What", KIND_NAMES[d.kind] ?? String(d.kind))}
    ${row("amount", "Amount", yuan(BigInt(d.amount)))}
    ${row("merchant", "Merchant", d.merchantId)}
    ${row("account", "Card", d.account)}
    ${row("time", "Time", dateTime(d.time))}
    ${row("order-ref", "Order reference", d.orderRef === "" ? "—" : d.orderRef)}
    ${row("memo", "Memo", d.memo === "" ? "—" : d.memo)}
    ${row("record-index", "Record", `#${r.recordIndex} in block ${r.blockNumber}`)}
    ${row("ledger", "Ledger", `${r.ledger} on chain ${r.chainId}`)}
  </table>`;
}

/**
 * The receipt page's body: the form, then the verdict.
 *
 * @param view - what {@link receiptView} found
 * @param qr - the QR code of the compact receipt (valid receipts only)
 */
export function receiptBody(view: ReceiptView, qr: Html | null, info: IndexInfo | null): Html {
  const form = html`<form method="get" action="/receipt" class="receipt-form">
    <label for="r">Paste your receipt: the text under its QR code (PL1:…) or its JSON</label>
    <textarea id="r" name="r" rows="4" spellcheck="false">${view.input}</textarea>
    <button type="submit">Check the receipt</button>
  </form>`;
  if (view.state === "empty") {
    return html`<h1>Check a receipt</h1>${form}<p class="note">Your receipt is checked against the ledger${info === null ? "" : html` <code>${info.ledger}</code> on chain ${info.chainId}`}: the record exists, it holds exactly your receipt's details, your card's balance now, and whether the supervisors confirmed it.</p>`;
  }
  if (view.state === "invalid") {
    const e = view.error!;
    const said = (label: string, key: string) => e.details[key] !== undefined && html`<p>${label}: <strong class="said" data-field="${key}">${shown(e.field, e.details[key])}</strong></p>`;
    return html`<h1>Check a receipt</h1>
      <div class="verdict invalid" data-field="verdict" data-state="invalid"><strong>NOT valid</strong> — the <span data-field="wrong-part">${FIELD_NAMES[e.field] ?? e.field}</span> is wrong.
        <p data-field="reason">${e.message}.</p>
        ${e.code === "RECEIPT_NOT_FOUND" && html`<p>The ledger holds no such record: this receipt is forged, or its record never landed. Ask the merchant.</p>`}
        ${Array.isArray(e.details.suspects) && html`<p>One of these was altered: ${(e.details.suspects as string[]).map((s) => FIELD_NAMES[s] ?? s).join(", ")}.</p>`}
        ${said("The receipt says", "receipt")}${said("The ledger says", "chain")}${said("The trusted ledger is", "expected")}
      </div>
      ${view.receipt !== null && html`<h2>What the receipt says</h2>${detailsTable(view.receipt, e.field)}`}
      <h2>Check another</h2>${form}`;
  }
  const r = view.receipt!;
  const c = view.confirmation!;
  const b = view.books!;
  const confirmed = c.status === "confirmed";
  return html`<h1>Check a receipt</h1>
    <div class="verdict valid" data-field="verdict" data-state="valid"><strong>Valid</strong> — the ledger booked exactly this ${(KIND_NAMES[r.details.kind] ?? "record").toLowerCase()} of <span data-field="verdict-amount">${yuan(BigInt(r.details.amount))}</span>.</div>
    <div class="receipt-grid">
      <div>
        <div class="figures">
          <div class="figure" data-field="balance"><span class="label">Card balance now</span><span class="value">${yuan(BigInt(b.balance))}</span></div>
          <div class="figure" data-field="confirmation"><span class="label">Supervisors</span><span class="value"><span class="badge ${confirmed ? "confirmed" : "pending"}">${c.status === "unchecked" ? "not checked" : confirmed ? "confirmed" : "pending"}</span></span></div>
        </div>
        <p class="note">Topped up ${yuan(BigInt(b.toppedUp))}, consumed ${yuan(BigInt(b.consumed))}, refunded ${yuan(BigInt(b.refunded))} — read from the ledger at block ${b.atBlock}.
        ${c.status === "unchecked"
          ? "The index follows no supervisors' quorum."
          : confirmed
            ? html`The supervisors' quorum has confirmed every record up to #${c.confirmedThrough}.`
            : c.confirmedThrough === "0"
              ? "Not yet confirmed by the supervisors' quorum: it has confirmed no record yet."
              : html`Not yet confirmed by the supervisors' quorum (it has confirmed records up to #${c.confirmedThrough}).`}</p>
        ${coolingOffNote(view.coolingOff)}
        <h2>Your receipt</h2>
        ${detailsTable(r)}
        <p class="note">Booked ${dateTime(view.record!.blockTime)} in transaction <code>${view.record!.txHash}</code>. Its commitment <code>${r.commitment}</code> opens to exactly these details with the salt <code>${r.salt}</code>.</p>
      </div>
      <figure class="qr-box">${qr}<figcaption><code data-field="compact">${view.compact}</code></figcaption></figure>
    </div>
    <h2>Check another</h2>${form}`;
}

/** The card holder's cooling-off right, in words (nothing when the ledger has no custody). */
function coolingOffNote(q: ReceiptView["coolingOff"]): Html | "" {
  if (q === null) return "";
  if (q.endsAt === 0) return html`<p class="note" data-field="cooling-off">Cooling-off: the merchant's cards have no cooling-off period.</p>`;
  if (BigInt(q.amount) > 0n) {
    return html`<p class="note cooling-off" data-field="cooling-off">Cooling-off: you may take back <strong>${yuan(BigInt(q.amount))}</strong> of your recent top-ups until ${dateTime(q.endsAt)}, from the merchant's custody <code>${q.custody}</code> (<code>requestCoolingOff</code>, with the secret printed on your card).</p>`;
  }
  return html`<p class="note" data-field="cooling-off">Cooling-off: nothing to take back now (the period ends or ended ${dateTime(q.endsAt)}).</p>`;
}

/** CSS of the receipt page, added to the dashboard's stylesheet. */
export const RECEIPT_STYLE = `
  .receipt-form { display: flex; flex-direction: column; gap: 6px; max-width: 760px; }
  .receipt-form textarea { font: 13px/1.4 ui-monospace, monospace; padding: 6px; border: 1px solid #c5cad3; border-radius: 4px; }
  .receipt-form button { align-self: flex-start; font-size: 15px; padding: 6px 16px; border-radius: 4px; border: 0; background: #2f6fde; color: #fff; }
  .verdict { border-radius: 6px; padding: 10px 14px; margin: 8px 0 16px; font-size: 17px; max-width: 980px; }
  .verdict p { font-size: 14px; margin: 6px 0 0; }
  .verdict.valid { background: #dcf3e3; border: 2px solid #2e8b57; } .verdict.invalid { background: #fbd9d9; border: 2px solid #c0392b; }
  .receipt-grid { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
  .receipt-grid > div { flex: 1 1 520px; }
  .verdict .said { font-variant-numeric: tabular-nums; }
  table.receipt tr.wrong th, table.receipt tr.wrong td { background: #fbd9d9; color: #8e1c12; font-weight: 600; }
  table.receipt { width: auto; } table.receipt th { width: 140px; } table.receipt td { white-space: normal; word-break: break-all; }
  .qr-box { margin: 0; background: #fff; border: 1px solid #e3e6eb; padding: 8px; width: 260px; }
  .qr-box svg.qr { width: 244px; height: 244px; display: block; }
  .qr-box figcaption code { font-size: 10px; color: #5b6475; }
`;
