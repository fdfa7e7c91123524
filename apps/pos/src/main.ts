/**
 * The point-of-sale page: wiring of the setup, the wallet, the till and the four panels.
 */
import { Contract, type BrowserProvider } from "ethers";

import { PREPAID_LEDGER_ABI } from "../../../src/ledger/abi.js";
import { isError } from "../../../src/errors.js";
import { FIELDS, parsePosConfig, rawConfig, storeConfig, type Field, type PosConfig } from "./config.js";
import { describeError } from "./errors.js";
import { KIND_LABEL, cardAccount, formatTime, formatYuan, groupCard, newCardNumber, newOrderRef, normalizeCard, parseYuan } from "./format.js";
import { databaseName, type Action } from "./journal.js";
import { checkReceipt, qrDataUrl, receiptOf, receiptText } from "./receipt.js";
import { Till, type RecordView } from "./till.js";
import { WalletProblem, connectWallet, switchChain } from "./wallet.js";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const ACTION: Record<Action, { kind: 1 | 2 | 3; label: string; memo: string }> = {
  sell: { kind: 1, label: "Card sold", memo: "new card" },
  topup: { kind: 1, label: KIND_LABEL[1], memo: "top-up" },
  class: { kind: 2, label: KIND_LABEL[2], memo: "class" },
  refund: { kind: 3, label: KIND_LABEL[3], memo: "refund" },
};

let selected: string | undefined;
let walletProvider: BrowserProvider;
/** Receipts checked against the ledger: what the check said (successes only are kept). */
const checked = new Map<string, { ok: boolean; text: string; balance?: bigint }>();

function showBanner(text: string, action?: { label: string; run: () => unknown }): void {
  const banner = $("banner");
  banner.hidden = false;
  banner.textContent = text;
  if (action !== undefined) {
    const button = document.createElement("button");
    button.textContent = action.label;
    button.onclick = () => void action.run();
    banner.append(button);
  }
}

function showSetup(raw: Partial<Record<Field, string>>, problem?: unknown): void {
  $("setup").hidden = false;
  $("wallet").textContent = "Not set up";
  const form = $<HTMLFormElement>("setup-form");
  for (const f of FIELDS) {
    const input = form.elements.namedItem(f) as HTMLInputElement | null;
    if (input !== null) input.value = raw[f] ?? "";
  }
  if (problem !== undefined && isError(problem, "INVALID_CONFIG")) {
    const fields = (problem.details.fields ?? {}) as Record<string, string>;
    $("setup-error").textContent = Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join("; ");
  }
  form.onsubmit = (event) => {
    event.preventDefault();
    const values: Partial<Record<Field, string>> = {};
    for (const f of FIELDS) {
      const input = form.elements.namedItem(f) as HTMLInputElement | null;
      if (input !== null && input.value.trim() !== "") values[f] = input.value.trim();
    }
    try {
      parsePosConfig(values);
      storeConfig(values);
      location.search = "";
    } catch (e) {
      $("setup-error").textContent = describeError(e) + (isError(e, "INVALID_CONFIG") ? ": " + Object.keys(e.details.fields as object).join(", ") : "");
    }
  };
}

async function start(): Promise<void> {
  const raw = rawConfig(location.search);
  let config: PosConfig;
  try {
    config = parsePosConfig(raw);
  } catch (e) {
    showSetup(raw, Object.keys(raw).length > 0 ? e : undefined);
    return;
  }
  storeConfig(raw);
  $("shop").textContent = `${config.merchantName} · Till`;
  document.title = `${config.merchantName} · Till`;
  let wallet: Awaited<ReturnType<typeof connectWallet>>;
  try {
    wallet = await connectWallet(config.chainId);
  } catch (e) {
    $("wallet").textContent = "Wallet not connected";
    if (e instanceof WalletProblem && e.kind === "wrong-chain") {
      showBanner(e.message, { label: "Switch network", run: () => switchChain(config.chainId).then(() => location.reload(), (err: unknown) => showBanner(describeError(err))) });
    } else showBanner(e instanceof WalletProblem ? e.message : describeError(e));
    return;
  }
  // One tab per till: two would each batch the records both load from IndexedDB.
  if (!(await holdTill(databaseName(config.chainId, config.ledger, config.merchantId)))) {
    showBanner("This till is already open in another tab or window of this browser. Use that one, or close it and reload this one.");
    return;
  }
  $("wallet").textContent = `Merchant ${config.merchantId} · wallet ${wallet.address.slice(0, 6)}…${wallet.address.slice(-4)} · chain ${config.chainId}`;
  const till = await Till.open(config, wallet.signer, config.chainId);
  $("app").hidden = false;
  wire(config, till, wallet.provider);
}

function wire(config: PosConfig, till: Till, provider: BrowserProvider): void {
  walletProvider = provider;
  const ledger = new Contract(config.ledger, PREPAID_LEDGER_ABI, provider);
  const form = $<HTMLFormElement>("entry-form");
  const action = (): Action => (form.elements.namedItem("action") as RadioNodeList).value as Action;
  for (const id of ["card", "balance-card"]) {
    const input = $<HTMLInputElement>(id);
    input.addEventListener("blur", () => {
      const digits = input.value.replace(/[\s-]/g, "");
      if (/^\d+$/.test(digits)) input.value = groupCard(digits);
    });
  }
  $("new-card").onclick = () => {
    $<HTMLInputElement>("card").value = groupCard(newCardNumber());
    (form.elements.namedItem("action") as RadioNodeList).value = "sell";
  };
  form.onsubmit = async (event) => {
    event.preventDefault();
    const error = $("entry-error");
    error.textContent = "";
    const button = $<HTMLButtonElement>("record");
    button.disabled = true;
    try {
      const card = normalizeCard($<HTMLInputElement>("card").value);
      const amount = parseYuan($<HTMLInputElement>("amount").value);
      const a = action();
      const account = cardAccount(config.cardSecret, config.merchantId, card);
      if (a === "sell") {
        const books = await ledger.accountBooks(config.merchantId, account);
        const known = till.views().some((v) => v.card === card && v.status !== "refused");
        if (books.recordCount > 0n || known) throw new Error("This card was sold before: use Top up");
      }
      const memo = $<HTMLInputElement>("memo").value.trim() || ACTION[a].memo;
      const view = await till.accept(
        { kind: ACTION[a].kind, merchantId: config.merchantId, account, amount, time: Math.floor(Date.now() / 1000), orderRef: newOrderRef(config.merchantId), memo },
        card,
        a,
      );
      selected = view.key;
      $<HTMLInputElement>("amount").value = "";
      $<HTMLInputElement>("memo").value = "";
      $<HTMLInputElement>("balance-card").value = groupCard(card);
      render(config, till, ledger);
    } catch (e) {
      error.textContent = describeError(e);
    } finally {
      button.disabled = false;
    }
  };
  $<HTMLFormElement>("balance-form").onsubmit = (event) => {
    event.preventDefault();
    void showBalance(config, ledger, till);
  };
  till.addEventListener("change", () => render(config, till, ledger));
  render(config, till, ledger);
}

/**
 * Takes the till's Web Lock for as long as this tab lives; false if another tab holds it.
 * Browsers without Web Locks (before 2022) go unguarded.
 */
function holdTill(name: string): Promise<boolean> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (locks === undefined) return Promise.resolve(true);
  return new Promise((resolve) => {
    void locks.request(name, { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      return lock === null ? undefined : new Promise<void>(() => undefined);
    });
  });
}

let rendering = Promise.resolve();
let lastBalanceKey = "";

function render(config: PosConfig, till: Till, ledger: Contract): void {
  rendering = rendering.then(() => renderNow(config, till, ledger)).catch((e: unknown) => showBanner(describeError(e)));
}

async function renderNow(config: PosConfig, till: Till, ledger: Contract): Promise<void> {
  const status = till.status();
  const sync = $("sync");
  const waiting = status.queued + status.sending;
  sync.className = status.problem !== undefined ? "bad" : waiting > 0 ? "wait" : "ok";
  sync.textContent =
    status.problem !== undefined
      ? `⚠ Not uploading: ${status.problem}. Records stay saved here.`
      : waiting > 0
        ? `Uploading ${waiting} record${waiting === 1 ? "" : "s"} (${status.sending} sent, ${status.queued} waiting)…`
        : "✓ Every record is on the ledger";
  if (status.problem !== undefined && !status.busy) {
    const retry = document.createElement("button");
    retry.id = "retry";
    retry.textContent = "Try again now";
    retry.onclick = () => till.retryNow();
    sync.append(" ", retry);
  }
  const stop = $("entry-stop");
  stop.hidden = !(status.problem ?? "").startsWith("Refused by the ledger");
  stop.textContent = `The ledger refuses this till's records: ${(status.problem ?? "").replace(/^Refused by the ledger — /, "")}. Do not take money until this is resolved.`;
  const views = till.views();
  $("history-rows").innerHTML = views
    .map((v) => {
      const [cls, text] = statusOf(v);
      return `<tr data-key="${v.key}" class="${v.key === selected ? "selected" : ""}"><td class="nowrap">${esc(formatTime(v.details.time))}</td><td class="nowrap">${esc(groupCard(v.card))}</td><td class="nowrap">${esc(ACTION[v.action].label)}</td><td>${esc(v.details.memo)}</td><td class="num">${esc(formatYuan(BigInt(v.details.amount)))}</td><td class="${cls}">${esc(text)}</td></tr>`;
    })
    .join("");
  for (const row of $("history-rows").querySelectorAll("tr")) {
    row.addEventListener("click", () => {
      selected = row.dataset.key;
      render(config, till, ledger);
    });
  }
  // The balance panel is read again when a record lands or starts uploading.
  const balanceKey = `${views.filter((v) => v.landed !== undefined).length}:${views.filter((v) => v.landed === undefined && v.status !== "refused").length}`;
  const view = views.find((v) => v.key === selected) ?? views[0];
  await renderReceipt(config, view);
  if (balanceKey !== lastBalanceKey && $<HTMLInputElement>("balance-card").value !== "") await showBalance(config, ledger, till);
  lastBalanceKey = balanceKey;
}

function statusOf(v: RecordView): [string, string] {
  if (v.landed !== undefined) return ["status-landed", `✓ On ledger · record #${v.landed.recordIndex}`];
  if (v.status === "refused") return ["status-refused", `✗ ${v.error ?? "Refused"}`];
  if (v.sending) return ["status-wait", "Sending to the ledger…"];
  return ["status-wait", "Saved here · waiting to upload"];
}

/** Checks a landed record's receipt against the ledger, in this page (src/receipt's verifyReceipt). */
async function receiptCheck(config: PosConfig, view: RecordView): Promise<{ ok: boolean; text: string; balance?: bigint } | undefined> {
  const receipt = receiptOf(view, config);
  if (receipt === undefined) return undefined;
  const known = checked.get(view.key);
  if (known !== undefined) return known;
  try {
    const verified = await checkReceipt(receipt, walletProvider, config);
    const result = { ok: true, text: `✓ Receipt checked against the ledger at block ${verified.checkedAtBlock}`, balance: verified.books.balance };
    checked.set(view.key, result);
    return result;
  } catch (e) {
    return { ok: false, text: `✗ The receipt does not check out: ${describeError(e)}` };
  }
}

async function renderReceipt(config: PosConfig, view: RecordView | undefined): Promise<void> {
  const body = $("receipt-body");
  if (view === undefined) return;
  const d = view.details;
  const [cls, text] = statusOf(view);
  const receipt = receiptOf(view, config);
  const check = await receiptCheck(config, view);
  const balance = check?.balance !== undefined ? `<dt>Card balance now</dt><dd><strong>${esc(formatYuan(check.balance))}</strong></dd>` : "";
  const refused = view.status === "refused";
  const qr = receipt !== undefined ? receiptText(receipt) : undefined;
  body.className = "";
  body.innerHTML = `<div class="receipt${refused ? " refused" : ""}">
    <div>
      <div class="shop">${esc(config.merchantName)}</div>
      ${refused ? `<div class="void">NOT RECORDED — do not take the customer's money</div>` : ""}
      <div>${esc(ACTION[view.action].label)}</div>
      <div class="amount">${esc(formatYuan(BigInt(d.amount)))}</div>
      <dl>
        <dt>Card</dt><dd>${esc(groupCard(view.card))}</dd>
        <dt>Time</dt><dd>${esc(formatTime(d.time))}</dd>
        <dt>Order</dt><dd>${esc(d.orderRef)}</dd>
        <dt>Note</dt><dd>${esc(d.memo)}</dd>
        ${balance}
        <dt>Status</dt><dd class="${cls}">${esc(text)}</dd>
        ${view.landed !== undefined ? `<dt>Transaction</dt><dd>${esc(view.landed.txHash.slice(0, 10))}…${esc(view.landed.txHash.slice(-8))}</dd>` : ""}
      </dl>
    </div>
    ${qr !== undefined ? `<img alt="Receipt QR code" id="receipt-qr" data-receipt="${esc(qr)}" src="${await qrDataUrl(qr)}" />` : ""}
    ${check !== undefined ? `<p id="receipt-check" class="${check.ok ? "status-landed" : "status-refused"}">${esc(check.text)}</p>` : ""}
    ${refused ? "" : `<p class="hint muted">${qr !== undefined ? "The customer scans the code to check this record on the ledger (prepaid receipt verify, or any receipt checker)." : "The QR code appears once the record is on the ledger."}</p>`}
  </div>`;
}

async function showBalance(config: PosConfig, ledger: Contract, till: Till): Promise<void> {
  const out = $("balance-result");
  let card: string;
  try {
    card = normalizeCard($<HTMLInputElement>("balance-card").value);
  } catch (e) {
    out.innerHTML = `<p class="error">${esc(describeError(e))}</p>`;
    return;
  }
  const account = cardAccount(config.cardSecret, config.merchantId, card);
  const books = await ledger.accountBooks(config.merchantId, account);
  const pending = till.views().filter((v) => v.card === card && v.landed === undefined && v.status !== "refused").length;
  if (books.recordCount === 0n) {
    out.innerHTML = `<p class="muted">Card ${esc(groupCard(card))}: no records on the ledger${pending > 0 ? ` yet (${pending} uploading)` : ""}.</p>`;
    return;
  }
  const row = (label: string, fen: bigint, cls = "") => `<tr class="${cls}"><td>${label}</td><td>${esc(formatYuan(fen))}</td></tr>`;
  out.innerHTML = `<p>Card <strong>${esc(groupCard(card))}</strong>${pending > 0 ? ` <span class="status-wait">(${pending} record${pending === 1 ? "" : "s"} still uploading)</span>` : ""}</p>
    <table class="books"><tbody>
      ${row("Paid at sale", books.initialAmount as bigint)}
      ${row("Topped up since", (books.toppedUp as bigint) - (books.initialAmount as bigint))}
      ${row("Classes", -(books.consumed as bigint))}
      ${row("Refunded", -(books.refunded as bigint))}
      ${row("Balance", books.balance as bigint, "total")}
    </tbody></table>
    <p class="muted">${books.recordCount} record${books.recordCount === 1n ? "" : "s"} on the ledger.</p>`;
}

void start().catch((e: unknown) => showBanner(describeError(e)));
