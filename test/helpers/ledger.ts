/**
 * Shared setup for tests of the upload and regulator layers: keys, card ids and details.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { id } from "ethers";

import { publicKeyOf } from "../../src/crypto/ecies.js";
import type { RecordDetails } from "../../src/crypto/details.js";

/** The regulator's encryption key pair in tests. */
export const REGULATOR_KEY = id("test: regulator encryption key");
export const REGULATOR_PUB = publicKeyOf(REGULATOR_KEY);
/** A merchant's own encryption key pair in tests. */
export const MERCHANT_KEY = id("test: merchant encryption key");
export const MERCHANT_PUB = publicKeyOf(MERCHANT_KEY);

export const card = (n: number | string) => id(`test card ${n}`);

/** A fresh folder for journals. */
export const tempDir = (label = "journal") => mkdtempSync(join(tmpdir(), `prepaid-ledger-${label}-`));

/** Typical details for merchant `merchantId`. */
export function detail(
  merchantId: number,
  kind: 1 | 2 | 3,
  account: string,
  amount: bigint,
  n = 0,
): RecordDetails {
  return {
    kind,
    merchantId,
    account,
    amount,
    time: 1_795_000_000 + n,
    orderRef: `ORD-2026-11-${String(n).padStart(6, "0")}`,
    memo: kind === 1 ? "prepaid card" : kind === 2 ? "yoga class" : "refund",
  };
}

/** `count` top-ups opening cards `from`..`from+count-1`. */
export const openings = (merchantId: number, count: number, amount = 100_000n, from = 0) =>
  Array.from({ length: count }, (_, i) => detail(merchantId, 1, card(from + i), amount, from + i));
