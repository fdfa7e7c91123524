/**
 * The customer's receipt (docs/FORMAT.md 10): built from what the till's journal knows of a
 * landed record, carried in the QR code in its compact form (`PL1:…`), and checked against the
 * ledger in the page with `verifyReceipt` before it is shown as valid.
 */
import QRCode from "qrcode";

import { makeReceipt, receiptToCompact, verifyReceipt, type Receipt, type ReceiptRpc, type ReceiptVerification } from "../../../src/receipt/index.js";
import type { PosConfig } from "./config.js";
import { toDetails, type RecordView } from "./till.js";

/** The receipt of a landed record, or undefined while it is not on chain. */
export function receiptOf(view: RecordView, config: PosConfig): Receipt | undefined {
  if (view.landed === undefined) return undefined;
  return makeReceipt({
    chainId: config.chainId,
    ledger: config.ledger,
    recordIndex: view.landed.recordIndex,
    blockNumber: view.landed.blockNumber,
    salt: view.landed.salt,
    details: toDetails(view.details),
  });
}

/** The QR code's text: the receipt's compact form. */
export const receiptText = (receipt: Receipt): string => receiptToCompact(receipt);

/** The QR code of `text` as a PNG data URL. */
export function qrDataUrl(text: string): Promise<string> {
  return QRCode.toDataURL(text, { errorCorrectionLevel: "M", margin: 2, width: 240 });
}

/** Checks a receipt against the ledger through the wallet's provider; only this ledger is trusted. */
export function checkReceipt(receipt: Receipt, rpc: ReceiptRpc, config: PosConfig): Promise<ReceiptVerification> {
  return verifyReceipt(receipt, rpc, { ledger: config.ledger });
}
