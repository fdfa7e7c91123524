// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

import {IPrepaidLedger} from "../interfaces/IPrepaidLedger.sol";

/// @title MerchantRegistry
/// @notice The regulator's side of the ledger: which merchants exist, whether they may trade,
/// and which keys upload for them. Each merchant's recorders hold an AccessControl role of their
/// own, administered by the regulators, so a key can only ever book its own merchant's records.
abstract contract MerchantRegistry is IPrepaidLedger, AccessControl {
    /// @dev Two storage words: standing and counters in the first, money in the second, so a
    /// batch reads and writes each once.
    struct Merchant {
        MerchantStatus status;
        uint64 nextSequence;
        uint64 recordCount;
        uint32 accountCount;
        uint64 toppedUp;
        uint64 consumed;
        uint64 refunded;
    }

    /// @inheritdoc IPrepaidLedger
    bytes32 public constant REGULATOR_ROLE = keccak256("prepaid-ledger.regulator");

    mapping(uint32 merchantId => Merchant) private _merchants;

    /// @param admin Holds DEFAULT_ADMIN_ROLE: grants and revokes regulators, pauses.
    /// @param regulator The first regulator.
    constructor(address admin, address regulator) {
        if (admin == address(0) || regulator == address(0)) revert LedgerZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGULATOR_ROLE, regulator);
    }

    /// @inheritdoc IPrepaidLedger
    function registerMerchant(uint32 merchantId, address recorder) external onlyRole(REGULATOR_ROLE) {
        if (merchantId == 0) revert LedgerInvalidMerchantId(merchantId);
        if (recorder == address(0)) revert LedgerZeroAddress();
        Merchant storage m = _merchants[merchantId];
        if (m.status != MerchantStatus.None) revert LedgerMerchantExists(merchantId);
        m.status = MerchantStatus.Active;
        m.nextSequence = 1;
        bytes32 role = recorderRole(merchantId);
        _setRoleAdmin(role, REGULATOR_ROLE);
        emit MerchantRegistered(merchantId, recorder, msg.sender);
        _grantRole(role, recorder);
    }

    /// @inheritdoc IPrepaidLedger
    function suspendMerchant(uint32 merchantId, bytes32 reason) external onlyRole(REGULATOR_ROLE) {
        Merchant storage m = _registered(merchantId);
        if (m.status == MerchantStatus.Suspended) revert LedgerMerchantSuspended(merchantId);
        m.status = MerchantStatus.Suspended;
        emit MerchantSuspended(merchantId, msg.sender, reason);
    }

    /// @inheritdoc IPrepaidLedger
    function reinstateMerchant(uint32 merchantId) external onlyRole(REGULATOR_ROLE) {
        Merchant storage m = _registered(merchantId);
        if (m.status != MerchantStatus.Suspended) revert LedgerMerchantNotSuspended(merchantId);
        m.status = MerchantStatus.Active;
        emit MerchantReinstated(merchantId, msg.sender);
    }

    /// @inheritdoc IPrepaidLedger
    function addRecorder(uint32 merchantId, address recorder) external onlyRole(REGULATOR_ROLE) {
        _registered(merchantId);
        if (recorder == address(0)) revert LedgerZeroAddress();
        if (_grantRole(recorderRole(merchantId), recorder)) emit RecorderAdded(merchantId, recorder, msg.sender);
    }

    /// @inheritdoc IPrepaidLedger
    function removeRecorder(uint32 merchantId, address recorder) external onlyRole(REGULATOR_ROLE) {
        _registered(merchantId);
        if (_revokeRole(recorderRole(merchantId), recorder)) emit RecorderRemoved(merchantId, recorder, msg.sender);
    }

    /// @inheritdoc IPrepaidLedger
    function recorderRole(uint32 merchantId) public pure returns (bytes32) {
        return keccak256(abi.encode("prepaid-ledger.recorder", merchantId));
    }

    /// @dev The merchant's storage, for the ledger's bookkeeping.
    function _merchant(uint32 merchantId) internal view returns (Merchant storage) {
        return _merchants[merchantId];
    }

    /// @dev The merchant's storage, or a revert if it was never registered.
    function _registered(uint32 merchantId) private view returns (Merchant storage m) {
        m = _merchants[merchantId];
        if (m.status == MerchantStatus.None) revert LedgerUnknownMerchant(merchantId);
    }
}
