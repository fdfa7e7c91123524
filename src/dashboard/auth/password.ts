/**
 * Password hashing for the dashboard's accounts: scrypt (RFC 7914, node:crypto) with a random
 * 16-byte salt per password, compared in constant time. The stored string carries its own cost
 * parameters, so raising them later leaves existing hashes verifiable:
 *
 *   scrypt$<log2 N>$<r>$<p>$<salt, base64url>$<64-byte key, base64url>
 *
 * N = 2^15, r = 8, p = 1 (32 MiB; a verification takes 0.23–0.31 s on the shared 2-core CI machine) is OWASP's scrypt recommendation; it
 * makes each guess at a stolen auth file cost an attacker that much memory and time.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

import { PrepaidLedgerError } from "../../errors.js";

/** Cost parameters of new hashes. */
export const SCRYPT_PARAMS = { log2N: 15, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const KEY_BYTES = 64;
/** Passwords shorter than this are refused when an account is created or its password changed. */
export const MIN_PASSWORD_LENGTH = 12;
/** Longer input is refused before hashing (a sign-in form is never this big). */
export const MAX_PASSWORD_LENGTH = 1024;

const FORMAT = /^scrypt\$(\d{1,2})\$(\d{1,3})\$(\d{1,2})\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{16,})$/;

function derive(password: string, salt: Buffer, log2N: number, r: number, p: number, length: number): Promise<Buffer> {
  const N = 2 ** log2N;
  // Node refuses scrypt above 32 MiB unless told otherwise; allow twice what the parameters need.
  const options: ScryptOptions = { N, r, p, maxmem: 256 * N * r };
  return new Promise((resolve, reject) => scrypt(password.normalize("NFC"), salt, length, options, (e, key) => (e ? reject(e) : resolve(key))));
}

/**
 * Checks a new password's length (the only rule: long passphrases beat composition rules).
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` naming the bound
 */
export function checkNewPassword(password: string): void {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", `a password has ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`, {
      details: { length },
    });
  }
}

/**
 * Hashes a password with a fresh random salt.
 * @param params - cost parameters (tests use small ones); {@link SCRYPT_PARAMS} by default
 * @returns the self-describing string to store
 */
export async function hashPassword(password: string, params: { log2N: number; r: number; p: number } = SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params.log2N, params.r, params.p, KEY_BYTES);
  return ["scrypt", params.log2N, params.r, params.p, salt.toString("base64url"), key.toString("base64url")].join("$");
}

/**
 * Whether `password` opens `stored` (a {@link hashPassword} string), compared in constant time.
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` if `stored` is not such a string
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = FORMAT.exec(stored);
  const [log2N, r, p] = m === null ? [0, 0, 0] : [Number(m[1]), Number(m[2]), Number(m[3])];
  if (m === null || log2N < 1 || log2N > 20 || r < 1 || p < 1 || p > 16) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", "the stored password hash is not in the scrypt format");
  }
  if (password.length > MAX_PASSWORD_LENGTH) return false;
  const expected = Buffer.from(m[5], "base64url");
  const key = await derive(password, Buffer.from(m[4], "base64url"), log2N, r, p, expected.length);
  return timingSafeEqual(key, expected);
}
