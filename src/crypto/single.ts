/**
 * Ciphertext format `0x01` (FORMAT.md 3.1): one record encrypted on its own for one recipient,
 * `0x01 | recipientTag b4 | eciesCompressed`, over Node's ECIES (src/crypto/ecies.ts). The format
 * itself, shared with the browser, is src/crypto/single-format.ts.
 */
import { eciesDecrypt, eciesEncrypt } from "./ecies.js";
import { singleFormat } from "./single-format.js";

export { FORMAT_SINGLE } from "./single-format.js";

/**
 * `sealSingle(recipientPublicKey, sealed)` encrypts a sealed payload for one recipient (format
 * `0x01`); `openSingle(privateKey, ciphertext)` decrypts one. Errors: see `singleFormat`.
 */
export const { sealSingle, openSingle } = singleFormat({ encrypt: eciesEncrypt, decrypt: eciesDecrypt });
