import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import PrepaidLedgerModule from "./PrepaidLedger.js";

/**
 * Deploys a SupervisorQuorum confirming the ledger of PrepaidLedgerModule (deployed too, or
 * reused from Ignition's journal). Parameters (keyed by this module's id): `governor` (replaces
 * the supervisor set; defaults to the deploying account), `supervisors` (addresses) and
 * `threshold` (how many must sign), both required: a confirmation rule has no sensible default.
 */
export default buildModule("SupervisionModule", (m) => {
  const { ledger } = m.useModule(PrepaidLedgerModule);
  const governor = m.getParameter("governor", m.getAccount(0));
  const supervisors = m.getParameter<string[]>("supervisors");
  const threshold = m.getParameter<number>("threshold");
  const quorum = m.contract("SupervisorQuorum", [governor, ledger, supervisors, threshold]);
  return { ledger, quorum };
});
