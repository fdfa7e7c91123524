/**
 * The EIP-712 types SupervisorQuorum verifies, written out as ISupervisorQuorum's NatSpec states
 * them (not imported from src/, so the contract tests check the code against the interface).
 */

/** What a supervisor signs to confirm a checkpoint. */
export const CHECKPOINT_TYPES = {
  Checkpoint: [
    { name: "ledger", type: "address" },
    { name: "recordCount", type: "uint64" },
    { name: "chainHead", type: "bytes32" },
    { name: "stateDigest", type: "bytes32" },
    { name: "setId", type: "uint64" },
  ],
};

/** What a set's members sign to install the next set at once. */
export const SET_CHANGE_TYPES = {
  SupervisorSetChange: [
    { name: "ledger", type: "address" },
    { name: "setId", type: "uint64" },
    { name: "supervisors", type: "address[]" },
    { name: "threshold", type: "uint8" },
  ],
};

/** What a set's members sign to cancel the governor's proposal. */
export const CANCELLATION_TYPES = {
  SupervisorChangeCancellation: [
    { name: "ledger", type: "address" },
    { name: "setId", type: "uint64" },
    { name: "proposal", type: "uint64" },
  ],
};

/** secp256k1's group order, to build the high-s twin of a signature. */
export const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
