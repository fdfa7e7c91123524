import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import PrepaidLedgerModule from "./PrepaidLedger.js";

/**
 * Deploys a MerchantCustody holding `token` for the ledger of PrepaidLedgerModule (deployed too,
 * or reused from Ignition's journal), for a testnet or a production chain. Parameters (keyed by
 * this module's id): `token` (the ERC-20 custody holds; required: money has no sensible default),
 * `admin` (manages regulators and custodians; handed over in two steps) and `regulator` (sets
 * coverage ratios), both defaulting to the deploying account, and `adminDelay` (required).
 *
 * It does not attach custody to the ledger: that is the ledger admin's call (`proposeCustody`,
 * docs/CUSTODY.md), and the admin is often not the deploying key.
 */
export default buildModule("CustodyModule", (m) => {
  const { ledger } = m.useModule(PrepaidLedgerModule);
  const token = m.getParameter<string>("token");
  const admin = m.getParameter("admin", m.getAccount(0));
  const regulator = m.getParameter("regulator", m.getAccount(0));
  const adminDelay = m.getParameter<number>("adminDelay");
  const custody = m.contract("MerchantCustody", [token, ledger, admin, regulator, adminDelay]);
  return { ledger, custody };
});
