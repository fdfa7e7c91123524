/**
 * Card ids bound to their holders (docs/FORMAT.md 2.4). A card's id commits to its merchant, its
 * holder's address and a secret printed on the card:
 * `keccak256(abi.encode(keccak256("prepaid-ledger.card.v1"), uint32 merchantId, address holder, bytes32 secret))`,
 * the same as the custody contract's `cardId` (contracts/libraries/CardId.sol). Only the holder's
 * key can claim the card or take back its money (the contract derives the id from the caller),
 * and without the secret nobody can tell which holder an id belongs to.
 */
import { PrepaidLedgerError } from "../errors.js";
import { bytesToHex, hexToBytes, keccak256 } from "./hash.js";

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
const SECRET_RE = /^0x[0-9a-fA-F]{64}$/;
const CARD_TAG = keccak256(new TextEncoder().encode("prepaid-ledger.card.v1"));

/** What a card id is derived from. */
export interface CardOwnership {
  /** The merchant that sells the card, `1 ≤ merchantId < 2^32`. */
  merchantId: number;
  /** The holder's address (`0x` and 40 hex digits, any case). */
  holder: string;
  /** The card's secret: `0x` and 64 hex digits (see `newCardSecret`). */
  secret: string;
}

/**
 * A fresh card secret from the platform's cryptographic random source, to print on the card
 * (for example as a QR code) and hand to its holder.
 *
 * @returns `0x` and 64 hex digits
 */
export function newCardSecret(): string {
  return bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
}

/**
 * The card id of `ownership`, as the ledger and custody contracts know it.
 *
 * @param ownership - merchant, holder and secret
 * @returns the card id, `0x` and 64 hex digits
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` if a field is out of range or malformed
 */
export function cardId(ownership: CardOwnership): string {
  const { merchantId, holder, secret } = ownership ?? ({} as CardOwnership);
  if (!Number.isInteger(merchantId) || merchantId < 1 || merchantId > 0xffffffff) {
    throw invalid("merchantId", "an integer from 1 to 2^32 - 1");
  }
  if (typeof holder !== "string" || !ADDRESS_RE.test(holder)) throw invalid("holder", "0x and 40 hex digits");
  if (typeof secret !== "string" || !SECRET_RE.test(secret)) throw invalid("secret", "0x and 64 hex digits");
  const encoded = new Uint8Array(128);
  encoded.set(CARD_TAG, 0);
  new DataView(encoded.buffer).setUint32(60, merchantId);
  encoded.set(hexToBytes(holder), 76);
  encoded.set(hexToBytes(secret), 96);
  return bytesToHex(keccak256(encoded));
}

function invalid(field: string, expected: string): PrepaidLedgerError {
  return new PrepaidLedgerError("INVALID_ARGUMENT", `Card ${field} must be ${expected}`, { details: { field } });
}
