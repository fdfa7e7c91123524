import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * Deploys PrepaidLedger. Parameters (ignition/parameters/<network>.json, keyed by this module's
 * id): `admin` (DEFAULT_ADMIN_ROLE: manages regulators, pauses) and `regulator` (the first
 * regulator). Both default to the deploying account, which suits a local network only.
 */
export default buildModule("PrepaidLedgerModule", (m) => {
  const admin = m.getParameter("admin", m.getAccount(0));
  const regulator = m.getParameter("regulator", m.getAccount(0));
  const ledger = m.contract("PrepaidLedger", [admin, regulator]);
  return { ledger };
});
