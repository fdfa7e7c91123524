/** Money, cards and kinds as the till shows and reads them. */
import { id } from "ethers";

import { PrepaidLedgerError } from "../../../src/errors.js";

/** Labels of the record kinds (FORMAT.md 1), as the cashier sees them. */
export const KIND_LABEL: Record<1 | 2 | 3, string> = { 1: "Top-up", 2: "Class", 3: "Refund" };

/**
 * Fen as yuan: `¥1,234.56` (negative with a minus sign).
 *
 * @param fen - an amount in fen (1/100 yuan)
 */
export function formatYuan(fen: bigint): string {
  const sign = fen < 0n ? "−" : "";
  const abs = fen < 0n ? -fen : fen;
  const yuan = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${sign}¥${yuan}.${(abs % 100n).toString().padStart(2, "0")}`;
}

/**
 * Reads an amount the cashier typed in yuan (`45`, `45.5`, `1,200.00`, `¥45`) as fen.
 *
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for anything else, or zero
 */
export function parseYuan(text: string): bigint {
  const bare = text.trim().replace(/^[¥￥]\s*/, "").replace(/,/g, "");
  const m = /^(\d{1,12})(?:\.(\d{1,2}))?$/.exec(bare);
  if (m === null) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "Enter the amount in yuan, like 45 or 45.50", { details: { field: "amount" } });
  }
  const fen = BigInt(m[1]!) * 100n + BigInt((m[2] ?? "").padEnd(2, "0"));
  if (fen === 0n) throw new PrepaidLedgerError("INVALID_ARGUMENT", "The amount must be more than ¥0.00", { details: { field: "amount" } });
  return fen;
}

/**
 * A card number as typed (spaces and dashes ignored), checked.
 *
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` unless it is 6 to 24 digits
 */
export function normalizeCard(text: string): string {
  const digits = text.replace(/[\s-]/g, "");
  if (!/^\d{6,24}$/.test(digits)) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "Enter the card number: 6 to 24 digits", { details: { field: "card" } });
  }
  return digits;
}

/** A card number grouped by four for reading aloud: `6200 1234 5678`. */
export const groupCard = (digits: string): string => digits.replace(/(\d{4})(?=\d)/g, "$1 ");

/** A fresh 12-digit card number for a new card. */
export function newCardNumber(): string {
  const r = new Uint32Array(2);
  globalThis.crypto.getRandomValues(r);
  return "62" + String(r[0]! % 100_000).padStart(5, "0") + String(r[1]! % 100_000).padStart(5, "0");
}

/**
 * The card's opaque account id on chain: keccak256 of the merchant's card secret, its id and the
 * card number, so the chain never sees a card number (README "Use it from your app").
 */
export const cardAccount = (secret: string, merchantId: number, card: string): string => id(`${secret}:${merchantId}:${card}`);

/** A fresh order reference: `POS-<merchant>-<yyyymmdd>-<6 hex>`. */
export function newOrderRef(merchantId: number, now = new Date()): string {
  const r = new Uint8Array(3);
  globalThis.crypto.getRandomValues(r);
  const day = now.toISOString().slice(0, 10).replace(/-/g, "");
  return `POS-${merchantId}-${day}-${[...r].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** A time as the receipt prints it: `2026-12-02 14:05` (local time). */
export function formatTime(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}
