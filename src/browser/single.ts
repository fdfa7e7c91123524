/**
 * Ciphertext format `0x01` (FORMAT.md 3.1) in a browser: one record encrypted on its own for
 * one recipient, `0x01 | recipientTag b4 | eciesCompressed`, over the noble ECIES
 * (src/browser/ecies.ts); the format itself is shared with Node (src/crypto/single-format.ts).
 */
import { singleFormat } from "../crypto/single-format.js";
import { eciesDecrypt, eciesEncrypt } from "./ecies.js";

export { FORMAT_SINGLE } from "../crypto/single-format.js";

/**
 * `sealSingle(recipientPublicKey, sealed)` encrypts a sealed payload for one recipient (format
 * `0x01`); `openSingle(privateKey, ciphertext)` decrypts one, as Node's. Errors: see `singleFormat`.
 */
export const { sealSingle, openSingle } = singleFormat({ encrypt: eciesEncrypt, decrypt: eciesDecrypt });
