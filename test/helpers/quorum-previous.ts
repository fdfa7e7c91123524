/**
 * The SupervisorQuorum that main held at 0eed400 (scripts/bench/fixtures/SupervisorQuorum.previous.json),
 * and a chain where it and the current contract can be asked the same question: the tests that
 * compare the two designs byte for byte.
 */
import { readFileSync } from "node:fs";

import { ContractFactory, Wallet, id, type InterfaceAbi } from "ethers";
import { network } from "hardhat";

import { packBatch } from "../../src/ledger/codec.js";
import { Consume, TopUp, account, fixedRecord } from "./records.js";

/** The previous contract's ABI and creation code. */
export const PREVIOUS = JSON.parse(readFileSync(new URL("../../scripts/bench/fixtures/SupervisorQuorum.previous.json", import.meta.url), "utf8")) as {
  abi: InterfaceAbi;
  bytecode: string;
};

const M = 1;

/**
 * A chain for comparing the designs: a ledger of 3 records (a mark at 2) and the current quorum at address A (n keys, threshold t); the previous
 * contract deployed elsewhere, for its runtime code, which the fuzz swaps in at A
 * (hardhat_setCode) to ask it the same question in the same state: same storage (the two share
 * one layout, and the constructor wrote the same words), same address, so the same EIP-712
 * domain and one set of signatures for both. Its cached domain separator, made for the other
 * address, is not used at A: OpenZeppelin's EIP712 rebuilds it for address(this).
 */
export async function deploySameAddress(n: number, t: number) {
  const { ethers: e } = await network.create();
  const [admin, regulator, recorder, submitter] = await e.getSigners();
  const keys = Array.from({ length: n }, (_, i) => new Wallet(id(`fast-path supervisor ${i}`)));
  const ledger = await e.deployContract("PrepaidLedger", [admin.address, regulator.address, 0, 3_600]);
  const ledgerAddress = await ledger.getAddress();
  await ledger.connect(regulator).registerMerchant(M, recorder.address);
  const a = account("alice");
  const upload = async (records: ReturnType<typeof fixedRecord>[]) =>
    (await ledger.connect(recorder).recordBatch(M, (await ledger.merchantBooks(M)).nextSequence, "0x", packBatch(records))).wait();
  await upload([fixedRecord(TopUp, a, 1_000n, "r1"), fixedRecord(Consume, a, 10n, "r2")]);
  await (await ledger.markCheckpoint()).wait();
  await upload([fixedRecord(Consume, a, 20n, "r3")]);
  const args = [admin.address, ledgerAddress, keys.map((k) => k.address), t, 0, 3_600] as const;
  const previous = await new ContractFactory(PREVIOUS.abi, PREVIOUS.bytecode, admin).deploy(...args);
  await previous.waitForDeployment();
  const current = await e.deployContract("SupervisorQuorum", [...args]);
  const quorum = await current.getAddress();
  const codes = [await e.provider.getCode(await previous.getAddress()), await e.provider.getCode(quorum)];
  const { chainId } = await e.provider.getNetwork();
  return { e, ledger, ledgerAddress, keys, submitter, chainId, quorum, codes };
}

