#!/usr/bin/env node
// A merchant's point-of-sale back end, in plain Node: it puts the till's sales on the ledger.
//
// The tills append one JSON line per sale to a sales file (an append-only log; a sale is never
// rewritten). This process reads it, turns each sale into a record, and uploads the records in
// batches through the SDK's Uploader, whose journal makes every upload exactly-once: kill this
// process at any moment (a deploy, a crash, a power cut), start it again, and it carries on
// where the journal says, with no sale lost or booked twice.
//
//   node backend.mjs sales.jsonl            upload every sale in the file, then exit
//   node backend.mjs --follow sales.jsonl   keep watching the file for new sales (Ctrl-C stops)
//
// One sale per line (amount in minor units: fen, cents):
//   {"order":"GYM-20261126-00042","type":"topup","card":"6200-0000-0042","amount":300000,
//    "time":"2026-11-26T09:30:00+08:00","memo":"annual card"}
// type is "topup", "consume" or "refund".
//
// Configuration from the environment; the keys only from there, never from a file in the repo:
//   RPC_URL               JSON-RPC endpoint of the chain
//   LEDGER                PrepaidLedger address
//   MERCHANT_ID           this merchant's id in the ledger
//   REGULATOR_PUBLIC_KEY  the regulator's published encryption key (0x04…)
//   RECORDER_PRIVATE_KEY  the key holding this merchant's recorder role (pays the gas)
//   CARD_SECRET           the merchant's secret for card ids: a card number never goes on chain,
//                         only HMAC-SHA256(CARD_SECRET, card number)
//   JOURNAL               the uploader's journal (default ./journal/merchant-<MERCHANT_ID>.jsonl);
//                         keep it on a disk that survives restarts, and back it up
//   BATCH_SIZE            records per transaction (default 100)
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import { JsonRpcProvider, Wallet } from "ethers";
import { RecordKind, Uploader, isError } from "prepaid-ledger";

const KINDS = { topup: RecordKind.TopUp, consume: RecordKind.Consume, refund: RecordKind.Refund };

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    console.error(`backend: ${name} is not set (see the top of backend.mjs)`);
    process.exit(2);
  }
  return value;
}

/** The sale on line `n` (1-based) as the ledger's record details. */
function recordOf(line, n, merchantId, cardSecret) {
  let sale;
  try {
    sale = JSON.parse(line);
  } catch {
    throw new Error(`line ${n}: not JSON`);
  }
  const kind = KINDS[sale.type];
  if (kind === undefined) throw new Error(`line ${n}: type must be topup, consume or refund, not ${JSON.stringify(sale.type)}`);
  if (typeof sale.card !== "string" || sale.card === "") throw new Error(`line ${n}: card is missing`);
  if (typeof sale.order !== "string" || sale.order === "") throw new Error(`line ${n}: order is missing`);
  const time = typeof sale.time === "number" ? sale.time : Math.floor(Date.parse(sale.time) / 1000);
  if (!Number.isSafeInteger(time)) throw new Error(`line ${n}: time ${JSON.stringify(sale.time)} is not a date`);
  return {
    kind,
    merchantId,
    account: "0x" + createHmac("sha256", cardSecret).update(sale.card).digest("hex"),
    amount: BigInt(sale.amount), // the Uploader checks the range
    time,
    orderRef: sale.order,
    memo: sale.memo ?? "",
  };
}

/** The complete lines of the sales file (a line still being written by a till is left for later). */
function salesLines(path) {
  const text = readFileSync(path, "utf8");
  return text.slice(0, text.lastIndexOf("\n") + 1).split("\n").filter((l) => l.trim() !== "");
}

const args = process.argv.slice(2);
const follow = args.includes("--follow");
const salesPath = args.find((a) => !a.startsWith("--"));
if (salesPath === undefined) {
  console.error("usage: node backend.mjs [--follow] <sales.jsonl>");
  process.exit(2);
}
const merchantId = Number(env("MERCHANT_ID"));
const cardSecret = env("CARD_SECRET");
const batchSize = Number(env("BATCH_SIZE", "100"));
const provider = new JsonRpcProvider(env("RPC_URL"));
const recorder = new Wallet(env("RECORDER_PRIVATE_KEY"), provider);

const uploader = await Uploader.open(
  {
    ledger: env("LEDGER"),
    merchantId,
    regulatorPublicKey: env("REGULATOR_PUBLIC_KEY"),
    journalPath: env("JOURNAL", `./journal/merchant-${merchantId}.jsonl`),
    batchSize,
  },
  recorder,
);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => (stopping = true));

// First settle what the journal holds from before a restart (resends a batch that never landed);
// the journal then says how many sales of the file are already taken care of.
await uploader.recover();
let done = uploader.journaledCount();
console.log(`resuming after ${done} sales already in the journal`);

while (!stopping) {
  const lines = salesLines(salesPath);
  while (done < lines.length && !stopping) {
    const chunk = lines.slice(done, done + batchSize).map((l, i) => recordOf(l, done + i + 1, merchantId, cardSecret));
    try {
      const uploaded = await uploader.upload(chunk);
      done += chunk.length;
      const last = uploaded[uploaded.length - 1];
      console.log(`uploaded ${done}/${lines.length} sales (records to #${last.recordIndex}, tx ${last.txHash})`);
    } catch (e) {
      // RPC_ERROR and TIMEOUT are retryable: the same records again get their first outcome.
      if (!isError(e, "RPC_ERROR") && !isError(e, "TIMEOUT")) throw e;
      console.error(`upload failed (${e.code}: ${e.shortMessage}); retrying in 2 s`);
      await sleep(2_000);
    }
  }
  if (!follow) break;
  await sleep(1_000);
}
uploader.close();
provider.destroy();
console.log(`stopped: ${done} sales uploaded`);
