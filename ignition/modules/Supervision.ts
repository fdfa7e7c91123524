import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import PrepaidLedgerModule from "./PrepaidLedger.js";

/**
 * Deploys a SupervisorQuorum confirming the ledger of PrepaidLedgerModule (deployed too, or
 * reused from Ignition's journal). Parameters (keyed by this module's id): `governor` (proposes
 * supervisor sets; defaults to the deploying account), `supervisors` (addresses) and `threshold`
 * (how many must sign), `adminDelay` (seconds a two-step governor handover must wait) and
 * `setChangeDelay` (seconds a governor's proposal waits, cancellable by the current set, and a
 * replaced set's grace; at least one hour), all but `governor` required: a confirmation rule
 * has no sensible default.
 */
export default buildModule("SupervisionModule", (m) => {
  const { ledger } = m.useModule(PrepaidLedgerModule);
  const governor = m.getParameter("governor", m.getAccount(0));
  const supervisors = m.getParameter<string[]>("supervisors");
  const threshold = m.getParameter<number>("threshold");
  const adminDelay = m.getParameter<number>("adminDelay");
  const setChangeDelay = m.getParameter<number>("setChangeDelay");
  const quorum = m.contract("SupervisorQuorum", [governor, ledger, supervisors, threshold, adminDelay, setChangeDelay]);
  return { ledger, quorum };
});
