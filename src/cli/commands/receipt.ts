/**
 * `prepaid receipt verify <receipt>` and `prepaid receipt show <receipt>`: a card holder's (or a
 * merchant's, or a regulator's) check of a record's receipt (docs/FORMAT.md 10). The receipt is
 * a file (JSON or the compact string), JSON text, or the compact string itself. `verify` asks a
 * node of the receipt's chain; `show` reads the receipt alone.
 *
 * A receipt that is refused is the command's answer, not a failure of the tool: "NOT valid" and
 * which part is wrong go to stdout, and the exit code is 7.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";

import { pinpointFromIndex } from "../../dashboard/receipt.js";
import { PrepaidLedgerError, isError } from "../../errors.js";
import { IndexQueries } from "../../indexer/queries.js";
import { indexExists, openIndex } from "../../indexer/open.js";
import { parseReceipt, receiptToCompact, receiptToJson, validateReceipt, verifyReceipt, type Receipt, type ReceiptVerification } from "../../receipt/index.js";
import { httpJsonRpc } from "../../rpc.js";
import { choice, intOption, stringOption } from "../args.js";
import type { Command, Context } from "../command.js";
import { EXIT_CODES } from "../exit.js";
import { keyValues, localTime, printable, yuan } from "../format.js";

const DEFAULT_RPC_TIMEOUT_SECONDS = 30;
/** Receipt files are a few hundred bytes; anything much bigger is not one. */
const MAX_FILE_BYTES = 64 * 1024;
const KIND_NAMES: Record<number, string> = { 1: "Top-up", 2: "Consumption", 3: "Refund" };

/** The receipt argument: a file holding one, JSON text, or the compact string. */
export function readReceiptArgument(arg: string, cwd: string): Receipt {
  const t = arg.trim();
  if (!t.startsWith("{") && !/^PL\d+:/.test(t)) {
    const path = resolve(cwd, arg);
    if (existsSync(path) && statSync(path).isFile()) {
      if (statSync(path).size > MAX_FILE_BYTES) {
        throw new PrepaidLedgerError("RECEIPT_MALFORMED", "The receipt file is too big to be a receipt", { details: { field: "encoding", path } });
      }
      return parseReceipt(readFileSync(path, "utf8"));
    }
    throw new PrepaidLedgerError("RECEIPT_MALFORMED", "The receipt is neither a file, receipt JSON nor a compact receipt (PL1:…)", {
      details: { field: "encoding", path },
    });
  }
  return parseReceipt(t);
}

/** Codes that mean "this receipt is refused" (the answer), rather than "the check could not run". */
const REFUSALS = new Set(["RECEIPT_MALFORMED", "RECEIPT_MISMATCH", "RECEIPT_NOT_FOUND", "UNSUPPORTED_VERSION"]);

function describeDetails(r: Receipt): [string, string][] {
  const d = r.details;
  return [
    ["What", `${KIND_NAMES[d.kind]} of ${yuan(d.amount)}`],
    ["Merchant", String(d.merchantId)],
    ["Card", d.account],
    ["Time", localTime(d.time)],
    ["Order ref", d.orderRef === "" ? "—" : d.orderRef],
    ["Memo", d.memo === "" ? "—" : d.memo],
    ["Record", `#${r.recordIndex} on ledger ${r.ledger}, chain ${r.chainId}, block ${r.blockNumber}`],
  ];
}

/** The readable value of a mismatch's "receipt"/"chain" fact: amounts in yuan. */
function fact(field: unknown, v: unknown): string {
  if (field === "amount" && (typeof v === "bigint" || typeof v === "number")) return yuan(v);
  return typeof v === "string" ? v : String(v);
}

/** "NOT valid: <part>" and what the receipt and the chain say, for people. */
export function refusalText(e: PrepaidLedgerError): string {
  const field = typeof e.details.field === "string" ? e.details.field : e.code === "RECEIPT_NOT_FOUND" ? "record" : "receipt";
  const lines = [`Receipt NOT valid: ${field} — ${e.shortMessage}`];
  if (e.code === "RECEIPT_NOT_FOUND") lines.push("  The ledger holds no such record: the receipt is forged, or its record never landed.");
  if (Array.isArray(e.details.suspects)) lines.push(`  One of these was altered: ${(e.details.suspects as string[]).join(", ")}`);
  if (e.details.receipt !== undefined) lines.push(`  Receipt says: ${printable(fact(field, e.details.receipt))}`);
  if (e.details.chain !== undefined) lines.push(`  Ledger says:  ${printable(fact(field, e.details.chain))}`);
  if (e.details.expected !== undefined) lines.push(`  Expected:     ${printable(String(e.details.expected))}`);
  if (e.details.quorumLedger !== undefined) lines.push(`  The quorum supervises: ${String(e.details.quorumLedger)}`);
  return lines.join("\n") + "\n";
}

function confirmationText(v: ReceiptVerification): string {
  const c = v.confirmation;
  if (c.status === "unchecked") return "not checked (give --quorum, or \"quorum\" in the config file)";
  const through = c.confirmedThrough === 0n ? "no record confirmed yet" : `records 1–${c.confirmedThrough} confirmed`;
  return c.status === "confirmed" ? `CONFIRMED by the supervisors' quorum (${through})` : `pending: not yet confirmed by the supervisors' quorum (${through})`;
}

/** The card holder's cooling-off right, for people; undefined when the ledger has no custody. */
function coolingOffText(v: ReceiptVerification): string | undefined {
  const q = v.coolingOff;
  if (q === null) return undefined;
  if (q.endsAt === 0) return "none: the merchant's cards have no cooling-off period";
  if (q.amount > 0n) return `${yuan(q.amount)} can be taken back until ${localTime(q.endsAt)} (requestCoolingOff on custody ${q.custody})`;
  return `nothing to take back now (the period ends or ended ${localTime(q.endsAt)})`;
}

/** The human answer to a receipt that matched the chain. */
export function validText(v: ReceiptVerification): string {
  const b = v.books;
  return (
    `Receipt valid: the ledger booked exactly this ${KIND_NAMES[v.receipt.details.kind]!.toLowerCase()}.\n` +
    keyValues([
      ...describeDetails(v.receipt),
      ["Booked", `${localTime(v.record.blockTime)}, block ${v.record.blockNumber}, tx ${v.record.txHash}`],
      ["Commitment", "opens to exactly these details and salt"],
      ["Card balance", `${yuan(b.balance)} now (topped up ${yuan(b.toppedUp)}, consumed ${yuan(b.consumed)}, refunded ${yuan(b.refunded)}; block ${v.checkedAtBlock})`],
      ["Supervisors", confirmationText(v)],
      ...(coolingOffText(v) === undefined ? [] : [["Cooling-off", coolingOffText(v)!] as [string, string]]),
    ])
  );
}

/** The JSON answer: the receipt, and the verification or the refusal. */
export function verificationJson(v: ReceiptVerification) {
  const { blockTime, ...record } = v.record;
  return { valid: true, receipt: receiptToJson(v.receipt), record: { ...record, blockTime }, books: v.books, confirmation: v.confirmation, coolingOff: v.coolingOff, checkedAtBlock: v.checkedAtBlock };
}

async function verify(ctx: Context, receipt: Receipt): Promise<number> {
  const rpc = stringOption(ctx.args, "rpc") ?? ctx.config.rpc;
  if (rpc === undefined) throw new PrepaidLedgerError("INVALID_ARGUMENT", 'missing --rpc URL (or "rpc" in the config file): a node of the receipt\'s chain');
  const timeoutSeconds = intOption(ctx.args, "rpc-timeout", 1) ?? ctx.config.rpcTimeout ?? DEFAULT_RPC_TIMEOUT_SECONDS;
  let v: ReceiptVerification;
  try {
    v = await verifyReceipt(receipt, httpJsonRpc(rpc, { timeoutMs: timeoutSeconds * 1000 }), {
      quorum: stringOption(ctx.args, "quorum") ?? ctx.config.quorum,
      ledger: stringOption(ctx.args, "ledger") ?? ctx.config.ledger,
      fromBlock: intOption(ctx.args, "from-block") ?? ctx.config.fromBlock,
      maxBlockRange: intOption(ctx.args, "max-block-range", 1) ?? ctx.config.maxBlockRange,
    });
  } catch (e) {
    if (isError(e, "RECEIPT_MISMATCH") && e.details.field === "details") throw fromIndex(ctx.db, receipt) ?? e;
    throw e;
  }
  await (ctx.json ? ctx.writeJson(verificationJson(v)) : ctx.write(validText(v)));
  return 0;
}

/**
 * With a regulator's index of the receipt's ledger at hand (`--db`, or the default file), the
 * altered hidden detail named from its decrypted copy; otherwise nothing (the chain alone cannot
 * say which of time, order reference, memo and salt was altered).
 */
function fromIndex(db: string, receipt: Receipt): PrepaidLedgerError | undefined {
  if (!indexExists(db)) return undefined;
  let handle: ReturnType<typeof openIndex> | undefined;
  try {
    handle = openIndex(db, { mustExist: true, readOnly: true });
    return pinpointFromIndex(receipt, new IndexQueries(handle));
  } catch (e) {
    if (isError(e, "INDEX_CORRUPT") || isError(e, "INVALID_ARGUMENT")) return undefined;
    throw e;
  } finally {
    handle?.close();
  }
}

async function show(ctx: Context, receipt: Receipt): Promise<number> {
  let opens = true;
  try {
    validateReceipt(receipt);
  } catch (e) {
    if (!isError(e, "RECEIPT_MISMATCH")) throw e;
    opens = false;
  }
  const compact = receiptToCompact(receipt);
  if (ctx.json) {
    await ctx.writeJson({ receipt: receiptToJson(receipt), compact, commitmentOpens: opens });
  } else {
    await ctx.write(
      keyValues([
        ...describeDetails(receipt),
        ["Commitment", `${receipt.commitment} (${opens ? "opens to these details and salt" : "does NOT open to these details and salt"}; not checked against the chain: use \`prepaid receipt verify\`)`],
        ["Salt", receipt.salt],
        ["Compact", `${compact} (${compact.length} characters)`],
      ]),
    );
  }
  return opens ? 0 : EXIT_CODES.RECEIPT.code;
}

async function run(ctx: Context): Promise<number> {
  const [action, arg] = ctx.args.positionals;
  choice(action!, ["verify", "show"] as const, "the first argument");
  try {
    const receipt = readReceiptArgument(arg!, ctx.cwd);
    return await (action === "verify" ? verify(ctx, receipt) : show(ctx, receipt));
  } catch (e) {
    if (!isError(e) || !REFUSALS.has(e.code)) throw e;
    await (ctx.json
      ? ctx.writeJson({ valid: false, error: { code: e.code, message: e.shortMessage, details: e.details } })
      : ctx.write(refusalText(e)));
    return EXIT_CODES.RECEIPT.code;
  }
}

/** `prepaid receipt verify|show <receipt>` */
export const receiptCommand: Command = {
  name: "receipt",
  positionals: ["verify|show", "receipt"],
  summary: "check a record's receipt against the chain (verify), or read it (show)",
  description:
    "A merchant's uploader returns a receipt for every record (docs/FORMAT.md 10); the card holder keeps it.\n" +
    "<receipt> is a file holding one, its JSON text, or its compact string (PL1:…, from the QR code).\n" +
    "`verify` asks a node of the receipt's chain: the record exists at that index on that ledger, its\n" +
    "commitment opens to exactly these details and salt, the card's balance now, and (with --quorum)\n" +
    "whether the supervisors' quorum has confirmed it. It prints \"Receipt valid\" or \"Receipt NOT valid:\n" +
    "<part>\" (exit 7). With the regulator's index of that ledger (--db), an altered time, order reference,\n" +
    "memo or salt is named from its decrypted copy. `show` prints what the receipt says, offline.",
  options: {
    rpc: { type: "string", value: "URL", help: 'verify: JSON-RPC URL of a node of the receipt\'s chain (or "rpc" in the config file)' },
    quorum: { type: "string", value: "ADDRESS", help: "verify: the ledger's SupervisorQuorum, to say whether the record is confirmed" },
    ledger: { type: "string", value: "ADDRESS", help: "verify: the ledger you trust; a receipt naming another is NOT valid" },
    "from-block": { type: "string", value: "N", help: "verify: where to search for a record not in the receipt's block (default 0)" },
    "max-block-range": { type: "string", value: "N", help: "verify: blocks per eth_getLogs request of that search, at most (default 10000)" },
    "rpc-timeout": { type: "string", value: "SECONDS", help: `seconds one JSON-RPC call may take (default ${DEFAULT_RPC_TIMEOUT_SECONDS})` },
  },
  examples: [
    "prepaid receipt verify receipt.json --rpc http://127.0.0.1:8545 --quorum 0xe7f1…",
    "prepaid receipt verify PL1:AAAAAAAAem…kAX --rpc https://node.example --json",
    "prepaid receipt show receipt.txt",
  ],
  run,
};
