/**
 * A ledger and a merchant to try the point-of-sale app (apps/pos) on a local chain; prints the
 * till's URL (README "Use it from your app", point of sale):
 *
 *   npx hardhat node                                                   # terminal 1
 *   npx hardhat run scripts/pos/till-setup.ts --network localhost      # terminal 2
 *   npm run pos                                                        # then open the printed URL
 *
 * Deploys PrepaidLedger with the network's first account as admin and its second as regulator,
 * and registers merchant MERCHANT_ID (default 101) with the third account as its recorder: the
 * cashier's wallet. test/pos/pos.test.ts runs this script and drives the app it sets up.
 *
 * Environment (nothing secret):
 *   REGULATOR_PUBLIC_KEY  the regulator's ECIES public key (hex); default: a fresh key pair,
 *                         whose private key is written to .pos/regulator.key (chmod 600), so
 *                         `prepaid sync --key-file .pos/regulator.key` can read the records back
 *   MERCHANT_ID           default 101
 *   SHOP_NAME             the name on receipts (default "Sunrise Gym")
 *   POS_URL               where the app is served (default http://127.0.0.1:5173/, `npm run pos`)
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Wallet } from "ethers";
import { network } from "hardhat";

import { publicKeySchema } from "../../src/config.js";
import { publicKeyOf } from "../../src/crypto/index.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const merchantId = Number(process.env.MERCHANT_ID ?? 101);
const shop = process.env.SHOP_NAME ?? "Sunrise Gym";
const base = process.env.POS_URL ?? "http://127.0.0.1:5173/";

let regulatorPublicKey: string;
let keyFile: string | undefined;
if (process.env.REGULATOR_PUBLIC_KEY !== undefined) {
  regulatorPublicKey = publicKeySchema.parse(process.env.REGULATOR_PUBLIC_KEY);
} else {
  const key = Wallet.createRandom().privateKey;
  keyFile = join(root, ".pos", "regulator.key");
  mkdirSync(dirname(keyFile), { recursive: true });
  writeFileSync(keyFile, key + "\n", { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  regulatorPublicKey = "0x04" + publicKeyOf(key);
}

const { ethers } = await network.create();
const [admin, regulator, cashier] = await ethers.getSigners();
const ledger = await ethers.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3600]);
await ledger.waitForDeployment();
await (await ledger.connect(regulator).registerMerchant(merchantId, cashier.address)).wait();
const { chainId } = await ethers.provider.getNetwork();
const address = await ledger.getAddress();
const query = new URLSearchParams({
  ledger: address,
  merchant: String(merchantId),
  regulator: regulatorPublicKey,
  chain: chainId.toString(),
  name: shop,
});

console.log(`ledger: ${address}`);
console.log(`merchant: ${merchantId} (recorder ${cashier.address})`);
if (keyFile !== undefined) console.log(`regulator key: ${keyFile}`);
console.log(`till: ${base}?${query}`);
console.log(`The cashier's wallet must hold the recorder ${cashier.address} (the node's third test account) on chain ${chainId}.`);
