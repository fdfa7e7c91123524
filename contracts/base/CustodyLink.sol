// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {IMerchantCustody} from "../interfaces/IMerchantCustody.sol";
import {IPrepaidLedger} from "../interfaces/IPrepaidLedger.sol";
import {MerchantRegistry} from "./MerchantRegistry.sol";

/// @title CustodyLink
/// @notice Which custody contract the ledger checks coverage against, and how it changes. The
/// first attachment is immediate (it can only make the ledger stricter). Replacing or detaching
/// the attached contract is a public proposal by the default admin that waits `custodyDelay()`
/// (the admin handover delay, at least MIN_CUSTODY_DELAY) and that the admin or any regulator can
/// cancel: no single key can detach custody at once to let an under-covered merchant book.
/// @dev The attached address itself lives in the implementation (`_custodyAddress`,
/// `_setCustody`) so that it can share a storage slot with what every batch reads anyway.
abstract contract CustodyLink is MerchantRegistry {
    /// @dev A pending change (one slot); executableAt == 0 means none.
    struct CustodyChange {
        address custody;
        uint64 executableAt;
    }

    /// @notice The shortest wait of a custody replacement or detachment: one hour.
    uint32 public constant MIN_CUSTODY_DELAY = 1 hours;

    CustodyChange private _change;

    /// @inheritdoc IPrepaidLedger
    function proposeCustody(address next) external onlyRole(DEFAULT_ADMIN_ROLE) {
        address current = _custodyAddress();
        if (next == current) revert LedgerCustodyUnchanged(next);
        if (next != address(0)) _checkBound(next);
        if (current == address(0)) {
            delete _change;
            _setCustody(next);
            emit CustodyAttached(address(0), next);
            return;
        }
        uint64 executableAt = uint64(block.timestamp + custodyDelay());
        _change = CustodyChange(next, executableAt);
        emit CustodyChangeProposed(next, msg.sender, executableAt);
    }

    /// @inheritdoc IPrepaidLedger
    function attachCustody() external {
        CustodyChange memory change = _change;
        if (change.executableAt == 0) revert LedgerNoCustodyChange();
        if (block.timestamp < change.executableAt) revert LedgerCustodyChangeNotDue(change.custody, change.executableAt);
        delete _change;
        address previous = _custodyAddress();
        _setCustody(change.custody);
        emit CustodyAttached(previous, change.custody);
    }

    /// @inheritdoc IPrepaidLedger
    function cancelCustodyChange() external {
        if (!hasRole(REGULATOR_ROLE, msg.sender) && msg.sender != defaultAdmin()) {
            revert AccessControlUnauthorizedAccount(msg.sender, REGULATOR_ROLE);
        }
        CustodyChange memory change = _change;
        if (change.executableAt == 0) revert LedgerNoCustodyChange();
        delete _change;
        emit CustodyChangeCancelled(change.custody, msg.sender);
    }

    /// @inheritdoc IPrepaidLedger
    function custody() external view returns (address) {
        return _custodyAddress();
    }

    /// @inheritdoc IPrepaidLedger
    function pendingCustody() external view returns (address proposed, uint64 executableAt) {
        return (_change.custody, _change.executableAt);
    }

    /// @inheritdoc IPrepaidLedger
    function custodyDelay() public view returns (uint256) {
        return Math.max(defaultAdminDelay(), MIN_CUSTODY_DELAY);
    }

    /// @dev The attached custody contract (zero if none).
    function _custodyAddress() internal view virtual returns (address);

    /// @dev Stores the attached custody contract.
    function _setCustody(address next) internal virtual;

    /// @dev A custody contract must follow this ledger; a call that fails or returns anything
    /// but 32 bytes counts as naming no ledger.
    function _checkBound(address next) private view {
        (bool ok, bytes memory ret) = next.staticcall(abi.encodeCall(IMerchantCustody.LEDGER, ()));
        address bound = ok && ret.length == 32 ? abi.decode(ret, (address)) : address(0);
        if (bound != address(this)) revert LedgerCustodyForAnotherLedger(next, bound);
    }
}
