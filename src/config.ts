/**
 * Configuration checking at the edge: a zod schema reports every wrong field by its path, then
 * defaults are filled in. Meaning checks that span fields live next to the schema that needs them.
 */
import { SigningKey } from "ethers";
import { z } from "zod";

import { PrepaidLedgerError } from "./errors.js";

/**
 * Parses `input` with `schema`, or throws INVALID_CONFIG listing every issue as
 * `{ path: "a.b", message }`.
 */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: i.path.join(".") || "(root)", message: i.message }));
  throw new PrepaidLedgerError("INVALID_CONFIG", `invalid ${what} configuration`, { details: { issues } });
}

/** A secp256k1 public key: uncompressed (64 or 65 bytes) or compressed (33 bytes), hex. */
export const publicKeySchema = z.string().refine((k) => {
  try {
    const hex = k.startsWith("0x") ? k.slice(2) : k;
    SigningKey.computePublicKey("0x" + (hex.length === 128 ? "04" + hex : hex));
    return true;
  } catch {
    return false;
  }
}, "expected a secp256k1 public key (hex, compressed or uncompressed)");

/** A secp256k1 private key: 32 bytes hex. The value is never echoed in errors. */
export const privateKeySchema = z.string().refine((k) => {
  try {
    new SigningKey(k.startsWith("0x") ? k : "0x" + k);
    return true;
  } catch {
    return false;
  }
}, "expected a 32-byte secp256k1 private key (hex)");

/** A 20-byte hex address. */
export const addressSchema = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "expected a 20-byte hex address");
