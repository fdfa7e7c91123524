/**
 * The till's setup: which ledger, merchant and regulator key. From the URL's query
 * (`?ledger=0x…&merchant=101&regulator=0x04…&chain=31337`), kept in this browser's localStorage
 * so a bookmark without them works too; or from the setup form when neither has them.
 */
import { getAddress, isAddress } from "ethers";

import { normalizePublicKey } from "../../../src/crypto/keys.js";
import { PrepaidLedgerError } from "../../../src/errors.js";

/** Everything the till is set up with. */
export interface PosConfig {
  ledger: string;
  merchantId: number;
  regulatorPublicKey: string;
  /** The chain the ledger is on: the wallet must be on it. */
  chainId: bigint;
  /** The shop's name on the receipt. */
  merchantName: string;
  /** Mixed into every card's account id, so the chain never sees a card number. */
  cardSecret: string;
  /** Milliseconds records wait for others to share their batch. */
  batchMs: number;
}

const STORAGE_KEY = "prepaid-pos:config";
const FIELDS = ["ledger", "merchant", "regulator", "chain", "name", "secret", "batchMs"] as const;
type Field = (typeof FIELDS)[number];

/**
 * Checks a setup's fields (strings, as a URL or the form gives them).
 *
 * @throws PrepaidLedgerError `INVALID_CONFIG` listing every wrong field in `details.fields`
 */
export function parsePosConfig(raw: Partial<Record<Field, string>>): PosConfig {
  const wrong: Record<string, string> = {};
  const ledger = raw.ledger ?? "";
  if (!isAddress(ledger)) wrong.ledger = "the ledger's address: 0x and 40 hex digits";
  const merchantId = Number(raw.merchant);
  if (!Number.isInteger(merchantId) || merchantId < 1 || merchantId > 0xffffffff) wrong.merchant = "the merchant's id: a whole number from 1";
  let regulatorPublicKey = raw.regulator ?? "";
  try {
    regulatorPublicKey = "0x04" + normalizePublicKey(regulatorPublicKey);
  } catch {
    wrong.regulator = "the regulator's public key: 0x04 and 128 hex digits";
  }
  let chainId = 0n;
  try {
    chainId = BigInt(raw.chain ?? "");
    if (chainId <= 0n) throw new Error();
  } catch {
    wrong.chain = "the chain id: a whole number (31337 for a local hardhat node)";
  }
  const batchMs = raw.batchMs === undefined || raw.batchMs === "" ? 1500 : Number(raw.batchMs);
  if (!Number.isInteger(batchMs) || batchMs < 0 || batchMs > 60_000) wrong.batchMs = "milliseconds, 0 to 60000";
  if (Object.keys(wrong).length > 0) {
    throw new PrepaidLedgerError("INVALID_CONFIG", "The till's setup is incomplete or wrong", { details: { fields: wrong } });
  }
  return {
    ledger: getAddress(ledger),
    merchantId,
    regulatorPublicKey,
    chainId,
    merchantName: raw.name?.trim() || `Merchant ${merchantId}`,
    cardSecret: raw.secret ?? "prepaid-pos",
    batchMs,
  };
}

/** The setup's fields from the URL, else from what this browser stored. */
export function rawConfig(search: string): Partial<Record<Field, string>> {
  const params = new URLSearchParams(search);
  if (params.has("ledger")) {
    const raw: Partial<Record<Field, string>> = {};
    for (const f of FIELDS) {
      const v = params.get(f);
      if (v !== null) raw[f] = v;
    }
    return raw;
  }
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "{}") as Partial<Record<Field, string>>;
  } catch {
    return {};
  }
}

/** Keeps a setup in this browser. */
export function storeConfig(raw: Partial<Record<Field, string>>): void {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(raw));
}

export { FIELDS, type Field };
