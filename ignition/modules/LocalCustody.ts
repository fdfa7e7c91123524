import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import SupervisionModule from "./Supervision.js";

/**
 * Everything a local network runs (`npm start`, `hardhat node`, anvil): the ledger and its
 * quorum (SupervisionModule), a TEST-ONLY 2-decimal token with EIP-2612 permit whose amounts are
 * fen (PrepaidTestToken: anyone may mint), and a MerchantCustody holding it, attached to the
 * ledger by its admin. Parameters (keyed by this module's id): `tokenName` and `tokenSymbol`,
 * `admin` and `regulator` of custody (default: the deploying account) and `adminDelay`
 * (required). The ledger's admin must be the deploying account (account 0), which attaches
 * custody; on any other chain use CustodyModule with a real token.
 */
export default buildModule("LocalCustodyModule", (m) => {
  const { ledger, quorum } = m.useModule(SupervisionModule);
  const tokenName = m.getParameter("tokenName", "Test fen");
  const tokenSymbol = m.getParameter("tokenSymbol", "tFEN");
  const admin = m.getParameter("admin", m.getAccount(0));
  const regulator = m.getParameter("regulator", m.getAccount(0));
  const adminDelay = m.getParameter<number>("adminDelay");
  const token = m.contract("PrepaidTestToken", [tokenName, tokenSymbol]);
  const custody = m.contract("MerchantCustody", [token, ledger, admin, regulator, adminDelay]);
  // The first custody contract is attached at once (CustodyLink.proposeCustody).
  m.call(ledger, "proposeCustody", [custody], { from: m.getAccount(0) });
  return { ledger, quorum, token, custody };
});
