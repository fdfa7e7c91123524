// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";

import {IPrepaidLedger} from "../interfaces/IPrepaidLedger.sol";

/// @title MerchantRegistry
/// @notice The regulator's side of the ledger: which merchants exist, whether they may trade
/// (active, suspended, winding down, closed), and which keys upload for them. Each merchant's
/// recorders hold an AccessControl role of their own, so a key can only ever book its own
/// merchant's records.
/// @dev Recorder roles change only through this registry (addRecorder + acceptRecorder,
/// removeRecorder, renounceRecorder), so every recorder a merchant ever had is named by a
/// RecorderAdded event and every removal by a RecorderRemoved event. The generic AccessControl
/// calls (grantRole, revokeRole, renounceRole) manage REGULATOR_ROLE only; on any other role
/// they revert with LedgerRoleManagedByRegistry. The default admin follows OpenZeppelin's
/// AccessControlDefaultAdminRules: one admin, handed over in two steps after a delay.
abstract contract MerchantRegistry is IPrepaidLedger, AccessControlDefaultAdminRules {
    /// @dev Two storage words. Word 1, from the least significant bit: status u8 (bits 0-7),
    /// nextSequence u64 (8-71), recordCount u64 (72-135), accountCount u32 (136-167), toppedUp
    /// u88 (168-255). Word 2: consumed u88 (0-87), refunded u88 (88-175), cardCap u48 (176-223),
    /// coolingOffDays u16 (224-239). A batch reads and writes each word once, so the card rules
    /// cost it no extra slot. The totals cannot overflow: an account's top-ups are at most
    /// 2^48 - 1 (PackedAccount), a merchant has at most 2^32 - 1 accounts (recordBatch refuses
    /// the next one with LedgerMerchantOverflow), so toppedUp < 2^80, and consumed and refunded
    /// never exceed toppedUp.
    struct Merchant {
        MerchantStatus status;
        uint64 nextSequence;
        uint64 recordCount;
        uint32 accountCount;
        uint88 toppedUp;
        uint88 consumed;
        uint88 refunded;
        uint48 cardCap;
        uint16 coolingOffDays;
    }

    /// @dev A regulator's standing offer of a recorder key to a merchant (one slot).
    struct Offer {
        address regulator;
        uint64 executableAt;
    }

    /// @inheritdoc IPrepaidLedger
    uint16 public constant MAX_COOLING_OFF_DAYS = 90;

    /// @inheritdoc IPrepaidLedger
    uint256 public constant MAX_PROFILE_FIELD_BYTES = 96;

    /// @notice The shortest delay a deployment may give RECORDER_DELAY: one hour.
    uint32 public constant MIN_RECORDER_DELAY = 1 hours;

    /// @inheritdoc IPrepaidLedger
    bytes32 public constant REGULATOR_ROLE = keccak256("prepaid-ledger.regulator");

    /// @inheritdoc IPrepaidLedger
    uint32 public immutable RECORDER_DELAY;

    mapping(uint32 merchantId => Merchant) private _merchants;
    mapping(uint32 merchantId => mapping(address recorder => Offer)) private _offers;

    /// @param admin The default admin: grants and revokes regulators, pauses.
    /// @param regulator The first regulator.
    /// @param adminDelay Seconds between the start and the end of a default-admin handover.
    /// @param recorderDelay Seconds after which a regulator's recorder offer that no recorder of
    /// the merchant accepted or rejected may be carried out by anyone; at least MIN_RECORDER_DELAY.
    constructor(address admin, address regulator, uint48 adminDelay, uint32 recorderDelay)
        AccessControlDefaultAdminRules(adminDelay, _nonZero(admin))
    {
        if (regulator == address(0)) revert LedgerZeroAddress();
        if (recorderDelay < MIN_RECORDER_DELAY) revert LedgerDelayTooShort(recorderDelay, MIN_RECORDER_DELAY);
        RECORDER_DELAY = recorderDelay;
        _grantRole(REGULATOR_ROLE, regulator);
    }

    // ---------------------------------------------------------------- generic roles

    /// @notice Grants a role. REGULATOR_ROLE only, by the default admin; recorder roles go
    /// through addRecorder/acceptRecorder, the default admin through beginDefaultAdminTransfer.
    /// @param role REGULATOR_ROLE (DEFAULT_ADMIN_ROLE reverts with OpenZeppelin's error).
    /// @param account The key.
    function grantRole(bytes32 role, address account) public override {
        _checkGeneric(role);
        super.grantRole(role, account);
    }

    /// @notice Revokes a role. REGULATOR_ROLE only, by the default admin; recorders are removed
    /// with removeRecorder.
    /// @param role REGULATOR_ROLE (DEFAULT_ADMIN_ROLE reverts with OpenZeppelin's error).
    /// @param account The key.
    function revokeRole(bytes32 role, address account) public virtual override {
        _checkGeneric(role);
        super.revokeRole(role, account);
    }

    /// @notice Gives up one's own role. REGULATOR_ROLE, or DEFAULT_ADMIN_ROLE after its delayed
    /// two-step schedule (beginDefaultAdminTransfer(address(0))); a recorder uses renounceRecorder.
    /// @param role REGULATOR_ROLE or DEFAULT_ADMIN_ROLE.
    /// @param account The caller's own address.
    function renounceRole(bytes32 role, address account) public virtual override {
        _checkGeneric(role);
        super.renounceRole(role, account);
    }

    // ---------------------------------------------------------------- merchants

    /// @inheritdoc IPrepaidLedger
    function registerMerchant(uint32 merchantId, address recorder) external onlyRole(REGULATOR_ROLE) {
        if (merchantId == 0) revert LedgerInvalidMerchantId(merchantId);
        if (recorder == address(0)) revert LedgerZeroAddress();
        Merchant storage m = _merchants[merchantId];
        if (m.status != MerchantStatus.None) revert LedgerMerchantExists(merchantId);
        m.status = MerchantStatus.Active;
        m.nextSequence = 1;
        emit MerchantRegistered(merchantId, recorder, msg.sender);
        _grantRole(recorderRole(merchantId), recorder);
    }

    /// @inheritdoc IPrepaidLedger
    function suspendMerchant(uint32 merchantId, bytes32 reason) external onlyRole(REGULATOR_ROLE) {
        Merchant storage m = _registered(merchantId);
        if (m.status == MerchantStatus.Suspended) revert LedgerMerchantSuspended(merchantId);
        _checkTransition(merchantId, m.status, MerchantStatus.Suspended);
        m.status = MerchantStatus.Suspended;
        emit MerchantSuspended(merchantId, msg.sender, reason);
    }

    /// @inheritdoc IPrepaidLedger
    function windDownMerchant(uint32 merchantId, bytes32 reason) external onlyRole(REGULATOR_ROLE) {
        Merchant storage m = _registered(merchantId);
        _checkTransition(merchantId, m.status, MerchantStatus.WindingDown);
        m.status = MerchantStatus.WindingDown;
        emit MerchantWindingDown(merchantId, msg.sender, reason);
    }

    /// @inheritdoc IPrepaidLedger
    function closeMerchant(uint32 merchantId, bytes32 reason) external onlyRole(REGULATOR_ROLE) {
        Merchant storage m = _registered(merchantId);
        _checkTransition(merchantId, m.status, MerchantStatus.Closed);
        m.status = MerchantStatus.Closed;
        emit MerchantClosed(merchantId, msg.sender, reason);
    }

    /// @inheritdoc IPrepaidLedger
    function reinstateMerchant(uint32 merchantId) external onlyRole(REGULATOR_ROLE) {
        Merchant storage m = _registered(merchantId);
        if (m.status != MerchantStatus.Suspended) revert LedgerMerchantNotSuspended(merchantId);
        m.status = MerchantStatus.Active;
        emit MerchantReinstated(merchantId, msg.sender);
    }

    /// @inheritdoc IPrepaidLedger
    function setMerchantPolicy(uint32 merchantId, uint48 cardCap, uint16 coolingOffDays)
        external
        onlyRole(REGULATOR_ROLE)
    {
        Merchant storage m = _registered(merchantId);
        if (coolingOffDays > MAX_COOLING_OFF_DAYS) {
            revert LedgerCoolingOffTooLong(merchantId, coolingOffDays, MAX_COOLING_OFF_DAYS);
        }
        m.cardCap = cardCap;
        m.coolingOffDays = coolingOffDays;
        emit MerchantPolicySet(merchantId, msg.sender, cardCap, coolingOffDays);
    }

    /// @inheritdoc IPrepaidLedger
    function setMerchantProfile(
        uint32 merchantId,
        string calldata name,
        string calldata licence,
        string calldata category,
        string calldata district
    ) external onlyRole(REGULATOR_ROLE) {
        _registered(merchantId);
        _checkProfileField(merchantId, 0, name);
        _checkProfileField(merchantId, 1, licence);
        _checkProfileField(merchantId, 2, category);
        _checkProfileField(merchantId, 3, district);
        emit MerchantProfileSet(merchantId, msg.sender, name, licence, category, district);
    }

    /// @inheritdoc IPrepaidLedger
    function merchantPolicy(uint32 merchantId) external view returns (uint48 cardCap, uint16 coolingOffDays) {
        Merchant storage m = _merchants[merchantId];
        return (m.cardCap, m.coolingOffDays);
    }

    // ---------------------------------------------------------------- recorders

    /// @inheritdoc IPrepaidLedger
    function addRecorder(uint32 merchantId, address recorder) external onlyRole(REGULATOR_ROLE) {
        _registered(merchantId);
        if (recorder == address(0)) revert LedgerZeroAddress();
        if (hasRole(recorderRole(merchantId), recorder)) return;
        uint64 executableAt = uint64(block.timestamp) + RECORDER_DELAY;
        _offers[merchantId][recorder] = Offer(msg.sender, executableAt);
        emit RecorderOffered(merchantId, recorder, msg.sender, executableAt);
    }

    /// @inheritdoc IPrepaidLedger
    function acceptRecorder(uint32 merchantId, address recorder) external {
        _registered(merchantId);
        Offer memory offer = _offers[merchantId][recorder];
        if (offer.regulator == address(0)) revert LedgerNoRecorderOffer(merchantId, recorder);
        bytes32 role = recorderRole(merchantId);
        if (!hasRole(role, msg.sender) && block.timestamp < offer.executableAt) {
            revert LedgerRecorderOfferNotDue(merchantId, recorder, offer.executableAt);
        }
        delete _offers[merchantId][recorder];
        if (_grantRole(role, recorder)) emit RecorderAdded(merchantId, recorder, offer.regulator);
    }

    /// @inheritdoc IPrepaidLedger
    function rejectRecorder(uint32 merchantId, address recorder) external {
        _registered(merchantId);
        if (!hasRole(recorderRole(merchantId), msg.sender)) revert LedgerUnauthorizedRecorder(msg.sender, merchantId);
        if (_offers[merchantId][recorder].regulator == address(0)) revert LedgerNoRecorderOffer(merchantId, recorder);
        delete _offers[merchantId][recorder];
        emit RecorderOfferCancelled(merchantId, recorder, msg.sender);
    }

    /// @inheritdoc IPrepaidLedger
    function removeRecorder(uint32 merchantId, address recorder) external onlyRole(REGULATOR_ROLE) {
        _registered(merchantId);
        if (_offers[merchantId][recorder].regulator != address(0)) {
            delete _offers[merchantId][recorder];
            emit RecorderOfferCancelled(merchantId, recorder, msg.sender);
        }
        if (_revokeRole(recorderRole(merchantId), recorder)) emit RecorderRemoved(merchantId, recorder, msg.sender);
    }

    /// @inheritdoc IPrepaidLedger
    function renounceRecorder(uint32 merchantId) external {
        if (!_revokeRole(recorderRole(merchantId), msg.sender)) revert LedgerUnauthorizedRecorder(msg.sender, merchantId);
        emit RecorderRemoved(merchantId, msg.sender, msg.sender);
    }

    /// @inheritdoc IPrepaidLedger
    function recorderOffer(uint32 merchantId, address recorder)
        external
        view
        returns (address regulator, uint64 executableAt)
    {
        Offer memory offer = _offers[merchantId][recorder];
        return (offer.regulator, offer.executableAt);
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
    function _registered(uint32 merchantId) internal view returns (Merchant storage m) {
        m = _merchants[merchantId];
        if (m.status == MerchantStatus.None) revert LedgerUnknownMerchant(merchantId);
    }

    /// @dev The moves to Suspended, WindingDown and Closed that IPrepaidLedger.MerchantStatus
    /// allows (reinstateMerchant checks its own): Active -> Suspended; Active or Suspended ->
    /// WindingDown; any registered status but Closed -> Closed. Anything else reverts with
    /// LedgerIllegalTransition.
    function _checkTransition(uint32 merchantId, MerchantStatus from, MerchantStatus to) private pure {
        bool allowed = to == MerchantStatus.Closed
            ? from != MerchantStatus.Closed
            : from == MerchantStatus.Active || (to == MerchantStatus.WindingDown && from == MerchantStatus.Suspended);
        if (!allowed) revert LedgerIllegalTransition(merchantId, from, to);
    }

    /// @dev One profile field: 1 to MAX_PROFILE_FIELD_BYTES bytes (the event is the only copy,
    /// so the bound keeps an indexer's rows and the regulator's gas small).
    function _checkProfileField(uint32 merchantId, uint8 field, string calldata value) private pure {
        uint256 length = bytes(value).length;
        if (length == 0 || length > MAX_PROFILE_FIELD_BYTES) {
            revert LedgerInvalidProfileField(merchantId, field, length, MAX_PROFILE_FIELD_BYTES);
        }
    }

    /// @dev The generic role calls manage REGULATOR_ROLE and (through OpenZeppelin's rules) the
    /// default admin; every other role, recorder roles included, is the registry's.
    function _checkGeneric(bytes32 role) private pure {
        if (role != REGULATOR_ROLE && role != DEFAULT_ADMIN_ROLE) revert LedgerRoleManagedByRegistry(role);
    }

    /// @dev The constructor's admin check, before OpenZeppelin's (which has no ledger error).
    function _nonZero(address admin) private pure returns (address) {
        if (admin == address(0)) revert LedgerZeroAddress();
        return admin;
    }
}
