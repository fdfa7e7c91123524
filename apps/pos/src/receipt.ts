/**
 * The customer's receipt: what was recorded, where it is on chain, and a QR code carrying what
 * anyone needs to check it against the ledger (the details and salt open the on-chain commitment).
 */
import QRCode from "qrcode";

import type { PosConfig } from "./config.js";
import type { RecordView } from "./till.js";

/**
 * The QR code's text: JSON with the record's details, salt, commitment and place on chain.
 * With them, keccak256 of the canonical details (docs/FORMAT.md 2.1) must equal the commitment
 * of the `Recorded` log at `recordIndex` on `ledger`.
 */
export function receiptText(view: RecordView, config: PosConfig): string | undefined {
  if (view.landed === undefined) return undefined;
  const d = view.details;
  return JSON.stringify({
    type: "prepaid-ledger.receipt",
    chainId: config.chainId.toString(),
    ledger: config.ledger,
    recordIndex: view.landed.recordIndex.toString(),
    txHash: view.landed.txHash,
    kind: d.kind,
    merchantId: d.merchantId,
    account: d.account,
    amount: d.amount,
    time: d.time,
    orderRef: d.orderRef,
    memo: d.memo,
    salt: view.landed.salt,
    commitment: view.landed.commitment,
  });
}

/** The QR code of `text` as a PNG data URL. */
export function qrDataUrl(text: string): Promise<string> {
  return QRCode.toDataURL(text, { errorCorrectionLevel: "M", margin: 2, width: 240 });
}
