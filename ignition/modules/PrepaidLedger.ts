import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * Deploys PrepaidLedger. Parameters (ignition/parameters/<network>.json, keyed by this module's
 * id): `admin` (the default admin: manages regulators, pauses) and `regulator` (the first
 * regulator), both defaulting to the deploying account, which suits a local network only;
 * `adminDelay` (seconds a two-step admin handover must wait) and `recorderDelay` (seconds after
 * which a regulator's recorder offer that no recorder of the merchant rejected takes effect;
 * at least one hour), both required: each network's file states its own.
 */
export default buildModule("PrepaidLedgerModule", (m) => {
  const admin = m.getParameter("admin", m.getAccount(0));
  const regulator = m.getParameter("regulator", m.getAccount(0));
  const adminDelay = m.getParameter<number>("adminDelay");
  const recorderDelay = m.getParameter<number>("recorderDelay");
  const ledger = m.contract("PrepaidLedger", [admin, regulator, adminDelay, recorderDelay]);
  return { ledger };
});
