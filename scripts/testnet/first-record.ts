/**
 * The last step of README "Deploy to a testnet": a first record on a freshly deployed ledger.
 *
 *   REGULATOR_PUBLIC_KEY=<hex> npx hardhat run scripts/testnet/first-record.ts --network sepolia
 *
 * The network's first account (SEPOLIA_PRIVATE_KEY, …) plays both parts: the regulator, which
 * registers merchant MERCHANT_ID if it is not registered yet (so the account must hold
 * REGULATOR_ROLE: deploy with `regulator` set to it), and the merchant's recorder, which uploads
 * one top-up record through the SDK's Uploader, encrypted to the regulator's public key.
 *
 * Environment (none of it secret; the account's key comes from the network's configVariable):
 *   REGULATOR_PUBLIC_KEY  the regulator's ECIES public key, hex (required; `publicKeyOf(privateKey)`)
 *   MERCHANT_ID           the merchant to register and record for (default 1)
 *   LEDGER_ADDRESS        the ledger, instead of the one Ignition journaled in
 *                         ignition/deployments/chain-<chainId>/ (a deployment made with
 *                         --deployment-id, or any other)
 *
 * Idempotent: the upload journal (journal/, one file per chain, ledger and merchant) remembers
 * the record, so a rerun finishes an interrupted upload or reports the one already made; it
 * never books a second record.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

import { Contract, id, isAddress } from "ethers";
import { network } from "hardhat";

import { publicKeySchema } from "../../src/config.js";
import { RecordKind } from "../../src/crypto/details.js";
import { isError } from "../../src/errors.js";
import { PREPAID_LEDGER_ABI } from "../../src/ledger/abi.js";
import { receiptToCompact } from "../../src/receipt/index.js";
import { Uploader, type LandedRecord, type UploadedRecord } from "../../src/upload/uploader.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const FUTURE_ID = "PrepaidLedgerModule#PrepaidLedger";
/** Block explorers for the public chains the config names; other chains get a generic hint. */
const EXPLORERS: Record<string, string> = { "11155111": "https://sepolia.etherscan.io" };
const MERCHANT_ACTIVE = 1n;

/** A problem the user can fix: printed as it is, without a stack trace. */
class Stop extends Error {}

/** The ledger Ignition deployed on this chain (ignition/deployments/chain-<chainId>). */
function deployedLedger(chainId: bigint, networkName: string): string {
  const file = join(root, "ignition", "deployments", `chain-${chainId}`, "deployed_addresses.json");
  const address = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, string>)[FUTURE_ID] : undefined;
  if (address === undefined) {
    throw new Stop(
      `No PrepaidLedger deployment for chain ${chainId} in ${relative(process.cwd(), file)}.\n` +
        `Deploy it first:\n  npx hardhat ignition deploy ignition/modules/PrepaidLedger.ts --network ${networkName} ` +
        `--parameters ignition/parameters/${networkName}.json\nor set LEDGER_ADDRESS to a deployed ledger.`,
    );
  }
  return address;
}

function print(records: readonly (LandedRecord | UploadedRecord)[], ledger: string, chainId: bigint): void {
  for (const r of records) {
    console.log(`  recordIndex  ${r.recordIndex}   (the Recorded log's index, ledger-wide)`);
    console.log(`  tx hash      ${r.txHash}   (block ${r.blockNumber})`);
    console.log(`  commitment   ${r.commitment}`);
    console.log(`  salt         ${r.salt}   (with the details it opens the commitment)`);
    if ("receipt" in r) console.log(`  receipt      ${receiptToCompact(r.receipt)}   (the card holder's: prepaid receipt verify <it>)`);
    const explorer = EXPLORERS[chainId.toString()];
    console.log(
      explorer === undefined
        ? `Find tx ${r.txHash} in your chain's block explorer: its Recorded log carries the commitment.`
        : `Explorer: ${explorer}/tx/${r.txHash} (the ledger's logs: ${explorer}/address/${ledger}#events)`,
    );
  }
}

async function main(): Promise<void> {
  const regulatorPublicKey = process.env.REGULATOR_PUBLIC_KEY;
  if (regulatorPublicKey === undefined || regulatorPublicKey === "") {
    throw new Stop("Set REGULATOR_PUBLIC_KEY to the regulator's ECIES public key (hex): every record is encrypted to it.");
  }
  if (!publicKeySchema.safeParse(regulatorPublicKey).success) {
    throw new Stop("REGULATOR_PUBLIC_KEY is not a secp256k1 public key (hex, 33 bytes compressed or 64/65 uncompressed).");
  }
  const merchantId = Number(process.env.MERCHANT_ID ?? 1);
  if (!Number.isInteger(merchantId) || merchantId < 1 || merchantId >= 2 ** 32) {
    throw new Stop(`MERCHANT_ID must be an integer from 1 to ${2 ** 32 - 1}.`);
  }

  const override = process.env.LEDGER_ADDRESS;
  if (override !== undefined && !isAddress(override)) throw new Stop("LEDGER_ADDRESS is not a 20-byte hex address.");

  const { ethers, networkName } = await network.create();
  const { chainId } = await ethers.provider.getNetwork();
  const address = override ?? deployedLedger(chainId, networkName);
  const [account] = await ethers.getSigners();
  const ledger = new Contract(address, PREPAID_LEDGER_ABI, account);
  if ((await ethers.provider.getCode(address)) === "0x") {
    throw new Stop(`No contract at ${address} on ${networkName} (chain ${chainId}).`);
  }
  console.log(`Ledger ${address} on ${networkName} (chain ${chainId}); account ${account.address}`);

  const books = await ledger.merchantBooks(merchantId);
  if (books.status === 0n) {
    const regulatorRole: string = await ledger.REGULATOR_ROLE();
    if (!(await ledger.hasRole(regulatorRole, account.address))) {
      throw new Stop(
        `Account ${account.address} does not hold REGULATOR_ROLE on ${address}, so it cannot register merchant ${merchantId}.\n` +
          `Deploy with "regulator": "${account.address}" in the parameters file (ignition/parameters/${networkName}.json), ` +
          `or have the admin grant it: grantRole(REGULATOR_ROLE, ${account.address}).`,
      );
    }
    const tx = await ledger.registerMerchant(merchantId, account.address);
    await tx.wait();
    console.log(`Registered merchant ${merchantId} with this account as its recorder (tx ${tx.hash})`);
  } else if (books.status !== MERCHANT_ACTIVE) {
    throw new Stop(`Merchant ${merchantId} is suspended: the regulator reinstates it with reinstateMerchant(${merchantId}).`);
  } else if (!(await ledger.hasRole(await ledger.recorderRole(merchantId), account.address))) {
    throw new Stop(
      `Merchant ${merchantId} is registered, but ${account.address} is not one of its recorders: ` +
        `the regulator adds it with addRecorder(${merchantId}, ${account.address}), or choose another MERCHANT_ID.`,
    );
  }

  const journalPath = join(root, "journal", `chain-${chainId}-${address.toLowerCase()}-merchant-${merchantId}.jsonl`);
  const uploader = await Uploader.open({ ledger: address, merchantId, regulatorPublicKey, journalPath }, account);
  try {
    if (uploader.journaledCount() > 0) {
      // An earlier run made (or started) this merchant's first record: settle it, send nothing new.
      const settled = await uploader.recover();
      if (settled.length > 0) {
        console.log("Finished the upload an earlier run had started:");
        print(settled, address, chainId);
      } else {
        console.log(`The journal already holds this merchant's first record; nothing sent (${relative(process.cwd(), journalPath)}).`);
      }
      return;
    }
    const records = await uploader.upload([
      {
        kind: RecordKind.TopUp,
        merchantId,
        // An opaque card id: the merchant's system chooses it; a label's hash will do here.
        account: id(`first-record card of merchant ${merchantId}`),
        amount: 10_000n,
        time: Math.floor(Date.now() / 1000),
        orderRef: "FIRST-RECORD-1",
        memo: "prepaid card sold",
      },
    ]);
    console.log(`Uploaded one top-up record (journal ${relative(process.cwd(), journalPath)}):`);
    print(records, address, chainId);
  } finally {
    uploader.close();
  }
}

try {
  await main();
} catch (e) {
  if (!(e instanceof Stop) && !isError(e)) throw e;
  console.error(e.message);
  process.exitCode = 1;
}
