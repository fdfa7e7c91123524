// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IPrepaidLedger} from "../interfaces/IPrepaidLedger.sol";

/// @title SettlementCaller
/// @notice TEST ONLY: a stand-in custody contract that forwards `settle` as given, so tests can
/// reach the ledger's settlement checks with inputs the real custody never sends.
contract SettlementCaller {
    /// @notice The ledger this stand-in is attached to (the ledger checks it when attaching).
    address public immutable LEDGER;

    constructor(address ledger) {
        LEDGER = ledger;
    }

    /// @notice Requires nothing of any merchant, so the ledger's coverage check always passes.
    function coverage(uint32, uint256) external pure returns (uint256 required, uint256 held) {
        return (0, 0);
    }

    /// @notice Calls the ledger's settle with exactly these arguments.
    function settle(uint32 merchantId, bytes32 account, address holder, IPrepaidLedger.SettlementReason reason, uint256 amount)
        external
        returns (uint64)
    {
        return IPrepaidLedger(LEDGER).settle(merchantId, account, holder, reason, amount);
    }
}
