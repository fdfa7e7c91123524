/**
 * Besu QBFT consortium chains: the genesis `extraData` codec, the genesis file, and how many
 * validators may fail. docs/QBFT.md is the operator's guide.
 *
 * ```ts
 * const genesis = qbftGenesis({ chainId: 1337, evmVersion: "london", validators });
 * faultTolerance(4); // 1: four validators survive one faulty or offline validator
 * ```
 *
 * extraData is `RLP([vanity, [validators], vote, round, [seals]])`, as Besu's QbftExtraDataCodec
 * writes it (hyperledger/besu, consensus/qbft/src/main/java/org/hyperledger/besu/consensus/qbft/
 * QbftExtraDataCodec.java):
 * - vanity: 32 bytes;
 * - validators: a list of 20-byte addresses, in the order given;
 * - vote: the empty list for no vote, else `[recipient, 0xFF]` to add a validator or
 *   `[recipient, ""]` (an empty string, written `0x80`) to remove one;
 * - round: an RLP scalar: the big-endian integer without leading zero bytes (0 is `0x80`);
 * - seals: a list of 65-byte signatures `r ‖ s ‖ v` (the committed seals).
 */
import { decodeRlp, encodeRlp, getAddress, getBytes, hexlify, isHexString, type BytesLike } from "ethers";
import { z } from "zod";

import { addressSchema, parseConfig } from "../config.js";
import { PrepaidLedgerError } from "../errors.js";

/** Bytes of vanity data at the start of extraData. */
export const QBFT_VANITY_BYTES = 32;
/** Bytes of one committed seal (secp256k1 `r ‖ s ‖ v`). */
export const QBFT_SEAL_BYTES = 65;
/** Besu writes a round as a Java `int`: never negative, so at most 2^31 - 1. */
export const QBFT_MAX_ROUND = 0x7fffffff;
/** The mixHash every BFT block carries ("ctical byzantine fault tolerance"). */
export const QBFT_MIX_HASH = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365";
/** The vote byte for "add this validator"; a removal is the empty string. */
const ADD_VOTE = "0xff";

/** A validator vote carried in a block header. */
export interface QbftVote {
  /** The validator to add or remove. */
  recipient: string;
  /** true to add the recipient, false to remove it. */
  add: boolean;
}

/** What `encodeQbftExtraData` takes. */
export interface QbftExtraDataInput {
  /** 32 bytes; zeros when omitted. */
  vanity?: BytesLike;
  /** Validator addresses, encoded in this order (a genesis wants them sorted: `sortValidators`). */
  validators: readonly string[];
  /** No vote when omitted (as in every genesis block). */
  vote?: QbftVote | undefined;
  /** 0 when omitted (as in every genesis block). */
  round?: number;
  /** 65-byte committed seals; none when omitted (as in every genesis block). */
  seals?: readonly BytesLike[];
}

/** Decoded extraData: hex strings, validators lowercase as Besu prints them. */
export interface QbftExtraData {
  vanity: string;
  validators: string[];
  vote: QbftVote | undefined;
  round: number;
  seals: string[];
}

function invalid(message: string, details: Record<string, unknown>): PrepaidLedgerError {
  return new PrepaidLedgerError("INVALID_ARGUMENT", message, { details });
}

function malformed(reason: string, details: Record<string, unknown> = {}, cause?: unknown): PrepaidLedgerError {
  return new PrepaidLedgerError("MALFORMED_DATA", `malformed QBFT extraData: ${reason}`, { details, cause });
}

/**
 * A 20-byte address as lowercase hex. Mixed case must be a valid EIP-55 checksum, so a typo in a
 * checksummed address is caught rather than written into a genesis file.
 */
function normalizeAddress(value: unknown, field: string): string {
  if (typeof value !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(value)) {
    throw invalid(`${field} is not a 20-byte hex address`, { field, value: String(value) });
  }
  const digits = value.slice(2);
  if (digits !== digits.toLowerCase() && digits !== digits.toUpperCase()) {
    try {
      getAddress(value);
    } catch (cause) {
      throw new PrepaidLedgerError("INVALID_ARGUMENT", `${field} has a bad EIP-55 checksum`, {
        details: { field, value },
        cause,
      });
    }
  }
  return value.toLowerCase();
}

function fixedBytes(value: BytesLike, length: number, field: string): string {
  let bytes: Uint8Array;
  try {
    bytes = getBytes(value);
  } catch (cause) {
    throw new PrepaidLedgerError("INVALID_ARGUMENT", `${field} is not bytes`, { details: { field }, cause });
  }
  if (bytes.length !== length) {
    throw invalid(`${field} must be ${length} bytes`, { field, length: bytes.length });
  }
  return hexlify(bytes);
}

/** The minimal big-endian bytes of `n` (none for 0): an RLP scalar. */
function scalarHex(n: number): string {
  if (n === 0) return "0x";
  const hex = n.toString(16);
  return "0x" + (hex.length % 2 === 1 ? "0" + hex : hex);
}

/**
 * Checks validator addresses: each 20-byte hex (EIP-55 if mixed case), none twice.
 * @returns the addresses lowercase, in the order given
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` naming the first bad or repeated address
 */
function checkValidators(validators: readonly string[]): string[] {
  if (!Array.isArray(validators)) throw invalid("validators must be an array of addresses", {});
  const seen = new Map<string, number>();
  return validators.map((v, i) => {
    const address = normalizeAddress(v, `validators[${i}]`);
    const first = seen.get(address);
    if (first !== undefined) throw invalid("a validator is listed twice", { address, indexes: [first, i] });
    seen.set(address, i);
    return address;
  });
}

/**
 * Sorts validator addresses in ascending order of their bytes, as a QBFT genesis lists them
 * (Besu's docs: "a list of the initial validators, in ascending order").
 * @returns a new array, lowercase
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for a bad or repeated address
 */
export function sortValidators(validators: readonly string[]): string[] {
  // Same-length lowercase hex compares like the bytes it spells.
  return checkValidators(validators).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Encodes QBFT extraData exactly as Besu does (see the file comment).
 * @returns 0x-prefixed hex
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` for a vanity that is not 32 bytes, a bad or
 *   repeated validator address, a bad vote, a round outside 0..2^31-1, or a seal not 65 bytes
 */
export function encodeQbftExtraData(input: QbftExtraDataInput): string {
  const vanity = fixedBytes(input.vanity ?? new Uint8Array(QBFT_VANITY_BYTES), QBFT_VANITY_BYTES, "vanity");
  const validators = checkValidators(input.validators);
  let vote: string[] = [];
  if (input.vote !== undefined) {
    if (typeof input.vote.add !== "boolean") throw invalid("vote.add must be a boolean", { add: String(input.vote.add) });
    vote = [normalizeAddress(input.vote.recipient, "vote.recipient"), input.vote.add ? ADD_VOTE : "0x"];
  }
  const round = input.round ?? 0;
  if (!Number.isInteger(round) || round < 0 || round > QBFT_MAX_ROUND) {
    throw invalid("round must be an integer from 0 to 2^31 - 1", { round: String(round) });
  }
  const seals = (input.seals ?? []).map((s, i) => fixedBytes(s, QBFT_SEAL_BYTES, `seals[${i}]`));
  return encodeRlp([vanity, validators, vote, scalarHex(round), seals]);
}

function expectBytes(item: unknown, what: string, length?: number): string {
  if (typeof item !== "string") throw malformed(`${what} is a list, expected bytes`);
  if (length !== undefined && (item.length - 2) / 2 !== length) {
    throw malformed(`${what} is ${(item.length - 2) / 2} bytes, expected ${length}`);
  }
  return item;
}

function expectList(item: unknown, what: string): unknown[] {
  if (!Array.isArray(item)) throw malformed(`${what} is bytes, expected a list`);
  return item;
}

/**
 * Decodes QBFT extraData. Strict like Besu's decoder: exactly five items, 20-byte validators,
 * a vote byte of 0xFF (add) or empty/0x00 (remove), a round without leading zero bytes that fits
 * Besu's int, 65-byte seals; and, stricter, a 32-byte vanity and canonical RLP only.
 * @throws PrepaidLedgerError `MALFORMED_DATA` naming what is wrong
 */
export function decodeQbftExtraData(hex: string): QbftExtraData {
  if (typeof hex !== "string" || !isHexString(hex) || hex.length <= 2) {
    throw malformed("expected non-empty 0x-prefixed hex", { length: typeof hex === "string" ? hex.length : null });
  }
  let root: unknown;
  try {
    root = decodeRlp(hex);
  } catch (cause) {
    throw malformed("not RLP", {}, cause);
  }
  // decodeRlp accepts non-minimal lengths and single bytes written long; Besu does not.
  if (encodeRlp(root as string).toLowerCase() !== hex.toLowerCase()) throw malformed("not canonical RLP");
  const items = expectList(root, "extraData");
  if (items.length !== 5) throw malformed(`extraData has ${items.length} items, expected 5`);
  const [vanityItem, validatorItems, voteItem, roundItem, sealItems] = items;

  const vanity = expectBytes(vanityItem, "vanity", QBFT_VANITY_BYTES);
  const validators = expectList(validatorItems, "validators").map((v, i) => expectBytes(v, `validators[${i}]`, 20));

  let vote: QbftVote | undefined;
  const voteFields = expectList(voteItem, "vote");
  if (voteFields.length > 0) {
    if (voteFields.length !== 2) throw malformed(`vote has ${voteFields.length} items, expected 2`);
    const recipient = expectBytes(voteFields[0], "vote.recipient", 20);
    const kind = expectBytes(voteFields[1], "vote type");
    if (kind === ADD_VOTE) vote = { recipient, add: true };
    else if (kind === "0x" || kind === "0x00") vote = { recipient, add: false };
    else throw malformed("vote type is neither 0xFF (add) nor empty (remove)", { voteType: kind });
  }

  const roundHex = expectBytes(roundItem, "round");
  if (roundHex.startsWith("0x00")) throw malformed("round has a leading zero byte", { round: roundHex });
  if (roundHex.length > 10) throw malformed("round is longer than 4 bytes", { round: roundHex });
  const round = roundHex === "0x" ? 0 : Number.parseInt(roundHex.slice(2), 16);
  if (round > QBFT_MAX_ROUND) throw malformed("round exceeds 2^31 - 1", { round: roundHex });

  const seals = expectList(sealItems, "seals").map((s, i) => expectBytes(s, `seals[${i}]`, QBFT_SEAL_BYTES));
  return { vanity, validators, vote, round, seals };
}

/** Byzantine validators a QBFT network of `n` survives: f = floor((n - 1) / 3). */
export function faultTolerance(n: number): number {
  checkCount(n);
  return Math.floor((n - 1) / 3);
}

/**
 * Validators that must sign a block (commit seals) for a network of `n`: ceil(2n / 3), as Besu's
 * BftHelpers.calculateRequiredValidatorQuorum computes it (hyperledger/besu,
 * consensus/common/src/main/java/org/hyperledger/besu/consensus/common/bft/BftHelpers.java).
 */
export function quorum(n: number): number {
  checkCount(n);
  return Math.ceil((2 * n) / 3);
}

function checkCount(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1) throw invalid("a validator count must be a positive integer", { n: String(n) });
}

/** What `n` validators can lose, in numbers and in one sentence. */
export interface FaultSummary {
  count: number;
  /** Byzantine (faulty or lying) validators tolerated: floor((n - 1) / 3). */
  faultTolerance: number;
  /** Signatures a block needs: ceil(2n / 3). */
  quorum: number;
  /** Offline validators the chain keeps producing blocks through: n - quorum. */
  offlineTolerance: number;
  /** Offline validators that stall the chain: n - quorum + 1. */
  stallsAt: number;
  /** e.g. "4 validators: tolerates 1 faulty or offline; the chain stalls if 2 fail". */
  message: string;
}

/**
 * Describes how many of `n` validators may fail. Where more may be offline than may lie (n = 3,
 * 6, 9: a block needs ceil(2n/3) signatures, which leaves one more validator spare than f) the
 * sentence says both numbers.
 */
export function describeFaultTolerance(n: number): FaultSummary {
  const f = faultTolerance(n);
  const q = quorum(n);
  const offline = n - q;
  const stallsAt = offline + 1;
  const who = `${n} validator${n === 1 ? "" : "s"}`;
  const tolerates = offline === f ? `tolerates ${f} faulty or offline` : `tolerates ${f} faulty, or ${offline} offline`;
  const stalls = `the chain stalls if ${stallsAt} ${stallsAt === 1 ? "fails" : "fail"}`;
  return { count: n, faultTolerance: f, quorum: q, offlineTolerance: offline, stallsAt, message: `${who}: ${tolerates}; ${stalls}` };
}

/**
 * The hard forks a genesis can start at, and the solc `evmVersion` to compile for on each.
 * "paris" writes the same milestones as "london": a QBFT chain never makes the Merge's switch to
 * proof of stake, and paris adds no opcode (DIFFICULTY is renamed PREVRANDAO; on QBFT it reads
 * the constant difficulty 1). Shanghai adds PUSH0; Cancun adds TLOAD, TSTORE, MCOPY, BLOBHASH
 * and BLOBBASEFEE.
 */
export const QBFT_EVM_VERSIONS = {
  london: { solcEvmVersion: "london" },
  paris: { solcEvmVersion: "paris" },
  shanghai: { solcEvmVersion: "shanghai" },
  cancun: { solcEvmVersion: "cancun" },
} as const;
export type QbftEvmVersion = keyof typeof QBFT_EVM_VERSIONS;

/** Block-numbered milestones, all at block 0: Besu's genesis item names, oldest first. */
const BLOCK_MILESTONES = [
  "homesteadBlock",
  "eip150Block",
  "eip155Block",
  "eip158Block",
  "byzantiumBlock",
  "constantinopleBlock",
  "petersburgBlock",
  "istanbulBlock",
  "muirGlacierBlock",
  "berlinBlock",
  "londonBlock",
] as const;

/** Timestamped milestones (from Shanghai on, forks activate by time), all at time 0. */
const TIME_MILESTONES: Record<QbftEvmVersion, readonly string[]> = {
  london: [],
  paris: [],
  shanghai: ["shanghaiTime"],
  cancun: ["shanghaiTime", "cancunTime"],
};

const quantity = z
  .union([
    z.bigint().nonnegative(),
    z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    z.string().regex(/^(0x[0-9a-fA-F]+|[0-9]+)$/, "expected a decimal or 0x-hex integer"),
  ])
  .transform((v) => "0x" + BigInt(v).toString(16));

/** A 20-byte hex address; in mixed case, a valid EIP-55 checksum (a typo is caught). */
const checkedAddress = addressSchema.refine((a) => {
  if (a === a.toLowerCase() || a.slice(2) === a.slice(2).toUpperCase()) return true;
  try {
    getAddress(a);
    return true;
  } catch {
    return false;
  }
}, "bad EIP-55 checksum (write the address all lowercase to skip the check)");

/** What `qbftGenesis` takes; see docs/QBFT.md. */
export const QbftGenesisOptions = z.strictObject({
  chainId: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  /** The initial validators (node addresses); written sorted ascending. */
  validators: z
    .array(checkedAddress)
    .min(1, "at least one validator is required (4 to survive a fault)")
    .superRefine((validators, ctx) => {
      const seen = new Map<string, number>();
      validators.forEach((v, i) => {
        const first = seen.get(v.toLowerCase());
        if (first === undefined) seen.set(v.toLowerCase(), i);
        else ctx.addIssue({ code: "custom", path: [i], message: `duplicate of validators.${first}` });
      });
    }),
  /** The fork the chain starts at; compile contracts for QBFT_EVM_VERSIONS[evmVersion]. */
  evmVersion: z.enum(Object.keys(QBFT_EVM_VERSIONS) as [QbftEvmVersion, ...QbftEvmVersion[]]).default("london"),
  /** Minimum seconds between blocks (Besu's example: 5). */
  blockPeriodSeconds: z.number().int().min(1).default(5),
  /** Blocks after which pending validator votes are reset (Besu's example: 30000). */
  epochLength: z.number().int().min(1).default(30_000),
  /** Seconds a consensus round may take before a round change (Besu: about 2 × block period). */
  requestTimeoutSeconds: z.number().int().min(1).default(10),
  /** Block gas limit; 30,000,000 (0x1c9c380) holds one maximum-size batch (2^24 gas) and more. */
  gasLimit: quantity.default("0x1c9c380"),
  /** Prefunded accounts (admin, regulator, recorders): address → balance in wei. */
  alloc: z
    .record(checkedAddress, quantity)
    .default({})
    .superRefine((alloc, ctx) => {
      const funded = new Set<string>();
      for (const address of Object.keys(alloc)) {
        if (funded.has(address.toLowerCase())) {
          ctx.addIssue({ code: "custom", path: [address], message: "this account is listed twice (letter case differs)" });
        }
        funded.add(address.toLowerCase());
      }
    }),
  /** Genesis timestamp; Besu recommends 0. */
  timestamp: quantity.default("0x0"),
  coinbase: checkedAddress.default("0x0000000000000000000000000000000000000000"),
});
export type QbftGenesisOptionsInput = z.input<typeof QbftGenesisOptions>;

/** A Besu QBFT genesis file (block header validator selection). */
export interface QbftGenesis {
  config: Record<string, number | { blockperiodseconds: number; epochlength: number; requesttimeoutseconds: number }>;
  nonce: string;
  timestamp: string;
  extraData: string;
  gasLimit: string;
  difficulty: string;
  mixHash: string;
  coinbase: string;
  alloc: Record<string, { balance: string }>;
  number: string;
  gasUsed: string;
  parentHash: string;
}

/**
 * Builds a Besu QBFT genesis: the chosen fork's milestones at 0, the `qbft` block, and extraData
 * naming the validators sorted ascending (zero vanity, no vote, round 0, no seals), following the
 * genesis file in Besu's "Configure QBFT consensus" page.
 * @throws PrepaidLedgerError `INVALID_CONFIG` listing every wrong option by path
 */
export function qbftGenesis(options: QbftGenesisOptionsInput): QbftGenesis {
  const o = parseConfig(QbftGenesisOptions, options, "QBFT genesis");
  const config: QbftGenesis["config"] = { chainId: o.chainId };
  for (const milestone of BLOCK_MILESTONES) config[milestone] = 0;
  for (const milestone of TIME_MILESTONES[o.evmVersion]) config[milestone] = 0;
  config.qbft = {
    blockperiodseconds: o.blockPeriodSeconds,
    epochlength: o.epochLength,
    requesttimeoutseconds: o.requestTimeoutSeconds,
  };
  const alloc: QbftGenesis["alloc"] = {};
  // Besu's examples key alloc by the address without 0x, lowercase.
  for (const [address, balance] of Object.entries(o.alloc)) alloc[address.slice(2).toLowerCase()] = { balance };
  return {
    config,
    nonce: "0x0",
    timestamp: o.timestamp,
    extraData: encodeQbftExtraData({ validators: sortValidators(o.validators) }),
    gasLimit: o.gasLimit,
    difficulty: "0x1",
    mixHash: QBFT_MIX_HASH,
    coinbase: o.coinbase.toLowerCase(),
    alloc,
    number: "0x0",
    gasUsed: "0x0",
    parentHash: "0x" + "00".repeat(32),
  };
}
