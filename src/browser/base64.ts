/**
 * Standard base64 (RFC 4648, with `=` padding) without `Buffer`: the text eth-crypto's ECIES
 * carries (src/browser/ecies.ts).
 */
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]));

/**
 * Encodes bytes as padded base64.
 *
 * @param bytes - the bytes to encode
 * @returns their base64 text, as Node's `Buffer.toString("base64")`
 */
export function toBase64(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += ALPHABET[(n >> 18) & 63]! + ALPHABET[(n >> 12) & 63]!;
    out += i + 1 < bytes.length ? ALPHABET[(n >> 6) & 63]! : "=";
    out += i + 2 < bytes.length ? ALPHABET[n & 63]! : "=";
  }
  return out;
}

/**
 * Decodes padded base64 strictly: only the exact encoding of some bytes is accepted.
 *
 * @param text - base64 text
 * @returns the bytes, or undefined if `text` is not exactly `toBase64` of any bytes
 */
export function fromBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0) return undefined;
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = text[i + j]!;
      const last = i + 4 === text.length;
      if (c === "=" && last && j >= 4 - pad) {
        n <<= 6;
        continue;
      }
      const v = VALUE.get(c);
      if (v === undefined) return undefined;
      n = (n << 6) | v;
    }
    out[o++] = (n >> 16) & 0xff;
    if (o < out.length) out[o++] = (n >> 8) & 0xff;
    if (o < out.length) out[o++] = n & 0xff;
  }
  return toBase64(out) === text ? out : undefined;
}
