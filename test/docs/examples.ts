/**
 * Reads the worked examples out of docs/FORMAT.md, and an ECIES written from that document's
 * description alone (node:crypto only), so test/docs/format.test.ts can hold every number in the
 * document to the code and to an independent computation.
 *
 * A block is a fenced code block titled `example: <name>`. Its lines are `name = value` (a value)
 * or `name  hex` (a field of the block's byte string); an indented line of hex continues the line
 * above; `#` starts a comment. A line that is none of these fails the parse, so a typo in the
 * document fails the test rather than being skipped.
 */
import { ECDH, createCipheriv, createDecipheriv, createECDH, createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";

import { concat, getBytes, keccak256, solidityPacked, toBeHex } from "ethers";

/** One `example: <name>` block. */
export interface Example {
  name: string;
  /** The fence's language (`text`, `solidity`). */
  language: string;
  /** Every line but blank ones, comments stripped, in order. */
  lines: string[];
  /** The byte fields, in order. */
  fields: { name: string; hex: string }[];
  /** The values, in order (a name may repeat). */
  values: { name: string; value: string }[];
  /** The fields concatenated. */
  bytes: Uint8Array;
}

export const FORMAT_MD = new URL("../../docs/FORMAT.md", import.meta.url);

const BLOCK_RE = /^```(\w+) title="example: ([^"]+)"\n([\s\S]*?)^```$/gm;
const HEX_RE = /^[0-9a-fA-F]+$/;

function parseBlock(name: string, language: string, body: string): Example {
  const lines: string[] = [];
  const fields: Example["fields"] = [];
  const values: Example["values"] = [];
  let last: { kind: "field" | "value"; index: number } | undefined;
  for (const raw of body.split("\n")) {
    if (/^\s*#/.test(raw)) continue; // a whole-line comment
    const line = raw.replace(/\s+#(\s.*)?$/, "").trimEnd();
    if (line.trim() === "") continue;
    lines.push(line.trim());
    if (language !== "text") continue; // declarations: the caller reads `lines`
    const continued = /^\s+([0-9a-fA-F]+)$/.exec(line);
    const assigned = /^(\S+?)\s*=\s*(.+)$/.exec(line);
    const field = /^(\S+)\s+([0-9a-fA-F]+)$/.exec(line);
    if (continued !== null && last !== undefined) {
      if (last.kind === "field") fields[last.index]!.hex += continued[1];
      else values[last.index]!.value += continued[1];
    } else if (assigned !== null) {
      values.push({ name: assigned[1]!, value: assigned[2]!.trim() });
      last = { kind: "value", index: values.length - 1 };
    } else if (field !== null) {
      fields.push({ name: field[1]!, hex: field[2]! });
      last = { kind: "field", index: fields.length - 1 };
    } else {
      throw new Error(`example "${name}": cannot read line ${JSON.stringify(raw)}`);
    }
  }
  for (const f of fields) {
    if (!HEX_RE.test(f.hex) || f.hex.length % 2 !== 0) throw new Error(`example "${name}": field ${f.name} is not whole bytes`);
  }
  const bytes = getBytes("0x" + fields.map((f) => f.hex).join(""));
  return { name, language, lines, fields, values, bytes };
}

/** Every example block of a markdown text, by name; a name used twice is an error. */
export function parseExamples(markdown: string): Map<string, Example> {
  const out = new Map<string, Example>();
  for (const m of markdown.matchAll(BLOCK_RE)) {
    const [, language, name, body] = m;
    if (out.has(name!)) throw new Error(`example "${name}" appears twice`);
    out.set(name!, parseBlock(name!, language!, body!));
  }
  return out;
}

/** Typed access to the examples, failing loudly on a missing name. */
export class Examples {
  readonly all: Map<string, Example>;

  constructor(markdown: string = readFileSync(FORMAT_MD, "utf8")) {
    this.all = parseExamples(markdown);
  }

  get(name: string): Example {
    const e = this.all.get(name);
    if (e === undefined) throw new Error(`docs/FORMAT.md has no example "${name}"`);
    return e;
  }

  /** The bytes of an example. */
  bytes(name: string): Uint8Array {
    return this.get(name).bytes;
  }

  /** Every value of that name in the example, as written. */
  values(example: string, name: string): string[] {
    return this.get(example).values.filter((v) => v.name === name).map((v) => v.value);
  }

  /** The one value of that name, as written. */
  raw(example: string, name: string): string {
    const found = this.values(example, name);
    if (found.length !== 1) throw new Error(`example "${example}" has ${found.length} values "${name}"`);
    return found[0]!;
  }

  /** A value as bytes: `0x` hex, or `example: <name>` for another example's bytes. */
  hex(example: string, name: string): Uint8Array {
    const v = this.raw(example, name);
    const ref = /^example: (.+)$/.exec(v);
    return ref !== null ? this.bytes(ref[1]!) : getBytes(v);
  }

  /** A value as a decimal integer. */
  int(example: string, name: string): bigint {
    const v = this.raw(example, name);
    if (!/^\d+$/.test(v)) throw new Error(`example "${example}": ${name} is not a decimal integer`);
    return BigInt(v);
  }

  /** A value as a JSON string. */
  str(example: string, name: string): string {
    const v = JSON.parse(this.raw(example, name)) as unknown;
    if (typeof v !== "string") throw new Error(`example "${example}": ${name} is not a string`);
    return v;
  }

  /** One field's bytes (the `index`-th of that name). */
  field(example: string, name: string, index = 0): Uint8Array {
    const found = this.get(example).fields.filter((f) => f.name === name);
    if (found[index] === undefined) throw new Error(`example "${example}" has no field "${name}" #${index}`);
    return getBytes("0x" + found[index].hex);
  }
}

/** What decrypting by FORMAT.md 3.1.1 computed along the way. */
export interface EciesSteps {
  iv: Buffer;
  ephemeralCompressed: Buffer;
  ephemeralUncompressed: Buffer;
  mac: Buffer;
  aesCiphertext: Buffer;
  sharedX: Buffer;
  aesKey: Buffer;
  macKey: Buffer;
  expectedMac: Buffer;
  /** The decrypted message (base64 text). */
  message: string;
  /** The payload: base64-decoded message. */
  payload: Buffer;
}

/** ECIES decryption exactly as FORMAT.md 3.1.1 describes it, node:crypto only. */
export function eciesDecryptByTheDoc(privateKey: Uint8Array, cipher: Uint8Array): EciesSteps {
  const c = Buffer.from(cipher);
  if (c.length < 97 || (c.length - 81) % 16 !== 0) throw new Error("bad ECIES length");
  const iv = c.subarray(0, 16);
  const ephemeralCompressed = c.subarray(16, 49);
  const mac = c.subarray(49, 81);
  const aesCiphertext = c.subarray(81);
  const ephemeralUncompressed = ECDH.convertKey(ephemeralCompressed, "secp256k1", undefined, undefined, "uncompressed") as Buffer;
  const ecdh = createECDH("secp256k1");
  ecdh.setPrivateKey(Buffer.from(privateKey));
  const sharedX = ecdh.computeSecret(ephemeralUncompressed);
  const k = createHash("sha512").update(sharedX).digest();
  const aesKey = k.subarray(0, 32);
  const macKey = k.subarray(32);
  const expectedMac = createHmac("sha256", macKey).update(iv).update(ephemeralUncompressed).update(aesCiphertext).digest();
  if (!expectedMac.equals(mac)) throw new Error("bad MAC");
  const decipher = createDecipheriv("aes-256-cbc", aesKey, iv); // PKCS#7 padding is node's default
  const message = Buffer.concat([decipher.update(aesCiphertext), decipher.final()]).toString("ascii");
  const payload = Buffer.from(message, "base64");
  if (payload.toString("base64") !== message) throw new Error("not exactly base64");
  return { iv, ephemeralCompressed, ephemeralUncompressed, mac, aesCiphertext, sharedX, aesKey, macKey, expectedMac, message, payload };
}

/** ECIES encryption exactly as FORMAT.md 3.1.1 describes it, with a given ephemeral key and IV. */
export function eciesEncryptByTheDoc(
  recipientPublicKey: Uint8Array,
  ephemeralPrivateKey: Uint8Array,
  iv: Uint8Array,
  payload: Uint8Array,
): Uint8Array {
  const message = Buffer.from(Buffer.from(payload).toString("base64"), "ascii");
  const ecdh = createECDH("secp256k1");
  ecdh.setPrivateKey(Buffer.from(ephemeralPrivateKey));
  const sharedX = ecdh.computeSecret(Buffer.from(recipientPublicKey));
  const k = createHash("sha512").update(sharedX).digest();
  const cipher = createCipheriv("aes-256-cbc", k.subarray(0, 32), Buffer.from(iv));
  const aesCiphertext = Buffer.concat([cipher.update(message), cipher.final()]);
  const mac = createHmac("sha256", k.subarray(32)).update(iv).update(ecdh.getPublicKey()).update(aesCiphertext).digest();
  return new Uint8Array(Buffer.concat([iv, ecdh.getPublicKey(undefined, "compressed"), mac, aesCiphertext]));
}

/**
 * The state digest by FORMAT.md 8.1's description, ethers only: account tuples
 * `[merchantId, account, recordCount, initialAmount, toppedUp, consumed, refunded]` and merchant
 * tuples `[merchantId, status, nextSequence, recordCount, accountCount, toppedUp, consumed, refunded]`.
 */
export function digestByTheDoc(recordCount: bigint, head: string, accounts: bigint[][], merchants: bigint[][]) {
  const sortedAccounts = [...accounts].sort((a, b) => (a[0] !== b[0] ? (a[0]! < b[0]! ? -1 : 1) : a[1]! < b[1]! ? -1 : a[1]! > b[1]! ? 1 : 0));
  const sortedMerchants = [...merchants].sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
  const accountBytes = concat(sortedAccounts.map((a) => solidityPacked(["uint32", "bytes32", "uint32", "uint48", "uint48", "uint48", "uint48"], [a[0], toBeHex(a[1]!, 32), ...a.slice(2)])));
  const merchantBytes = concat(sortedMerchants.map((m) => solidityPacked(["uint32", "uint8", "uint64", "uint64", "uint32", "uint64", "uint64", "uint64"], m)));
  const preimage = concat([new TextEncoder().encode("prepaid-ledger.state.v1"), toBeHex(recordCount, 8), head, keccak256(accountBytes), keccak256(merchantBytes)]);
  return { accountBytes, merchantBytes, preimage, digest: keccak256(preimage) };
}
