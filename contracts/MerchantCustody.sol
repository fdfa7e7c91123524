// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {CustodyBooks} from "./base/CustodyBooks.sol";
import {HolderProtection} from "./base/HolderProtection.sol";
import {IMerchantCustody} from "./interfaces/IMerchantCustody.sol";
import {IPrepaidLedger} from "./interfaces/IPrepaidLedger.sol";

/// @title MerchantCustody
/// @notice Holds each merchant's deposit in one ERC-20 token for the card holders of a
/// PrepaidLedger. Merchants (their ledger recorders) and custodians deposit; regulators set each
/// merchant's coverage ratio; a merchant withdraws only what is above ratio × its liability on
/// the ledger, and nothing once closed; then its card holders claim what it holds
/// (HolderProtection). Docs: docs/CUSTODY.md.
/// @dev Fund invariant (test/contracts/MerchantCustody.invariants.test.ts):
/// TOKEN.balanceOf(this) == totalDeposited() - totalWithdrawn() - totalPaidOut() (plus any
/// tokens sent here by a plain transfer, which nobody is credited), and each merchant's held ==
/// its deposits - its withdrawals - what was paid out of it. Money moves after the books are
/// updated (checks, effects, interactions), through SafeERC20, and under a reentrancy guard
/// since the token is chosen at deployment.
contract MerchantCustody is HolderProtection {
    using SafeERC20 for IERC20;

    /// @param token The ERC-20 token held: 2 decimals, one unit a fen (on local networks a test
    /// token); any other is refused (CustodyTokenNotFen).
    /// @param ledger The PrepaidLedger whose merchants and liabilities custody follows.
    /// @param admin The default admin: manages regulators and custodians; handed over in two
    /// steps after `adminDelay`.
    /// @param regulator The first regulator: sets coverage ratios.
    /// @param adminDelay Seconds a default-admin handover (or renouncement) must wait.
    constructor(IERC20 token, IPrepaidLedger ledger, address admin, address regulator, uint48 adminDelay)
        AccessControlDefaultAdminRules(adminDelay, _nonZero(admin))
        CustodyBooks(token, ledger)
    {
        if (address(token) == address(0) || address(ledger) == address(0) || regulator == address(0)) {
            revert CustodyZeroAddress();
        }
        _checkFen(token);
        _grantRole(REGULATOR_ROLE, regulator);
    }

    // ---------------------------------------------------------------- generic roles

    /// @notice Grants a role. REGULATOR_ROLE only, by the default admin; custodians go through
    /// setCustodian, the default admin through beginDefaultAdminTransfer.
    /// @param role REGULATOR_ROLE (DEFAULT_ADMIN_ROLE reverts with OpenZeppelin's error).
    /// @param account The key.
    function grantRole(bytes32 role, address account) public override {
        _checkGeneric(role);
        super.grantRole(role, account);
    }

    /// @notice Revokes a role. REGULATOR_ROLE only, by the default admin.
    /// @param role REGULATOR_ROLE (DEFAULT_ADMIN_ROLE reverts with OpenZeppelin's error).
    /// @param account The key.
    function revokeRole(bytes32 role, address account) public override {
        _checkGeneric(role);
        super.revokeRole(role, account);
    }

    /// @notice Gives up one's own role: REGULATOR_ROLE, or DEFAULT_ADMIN_ROLE after its delayed
    /// two-step schedule; a custodian is revoked with setCustodian.
    /// @param role REGULATOR_ROLE or DEFAULT_ADMIN_ROLE.
    /// @param account The caller's own address.
    function renounceRole(bytes32 role, address account) public override {
        _checkGeneric(role);
        super.renounceRole(role, account);
    }

    /// @inheritdoc IMerchantCustody
    function setCustodian(address custodian, bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (custodian == address(0)) revert CustodyZeroAddress();
        if (allowed) _grantRole(CUSTODIAN_ROLE, custodian);
        else _revokeRole(CUSTODIAN_ROLE, custodian);
        emit CustodianSet(custodian, allowed, msg.sender);
    }

    // ---------------------------------------------------------------- regulator

    /// @inheritdoc IMerchantCustody
    function setCoverageRatio(uint32 merchantId, uint16 ratioBps) external onlyRole(REGULATOR_ROLE) {
        _status(merchantId);
        if (ratioBps > MAX_RATIO_BPS) revert CustodyRatioTooHigh(merchantId, ratioBps, MAX_RATIO_BPS);
        Account storage a = _accounts[merchantId];
        uint16 previous = a.ratioBps;
        a.ratioBps = ratioBps;
        emit CoverageRatioSet(merchantId, msg.sender, previous, ratioBps);
    }

    // ---------------------------------------------------------------- money

    /// @inheritdoc IMerchantCustody
    function deposit(uint32 merchantId, uint256 amount) external nonReentrant {
        _deposit(merchantId, amount);
    }

    /// @inheritdoc IMerchantCustody
    function depositWithPermit(uint32 merchantId, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        // A permit anyone saw in the mempool can be submitted first; the allowance it set is
        // what matters, and the pull below fails with the token's error if there is none.
        try IERC20Permit(address(_TOKEN)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        _deposit(merchantId, amount);
    }

    /// @inheritdoc IMerchantCustody
    function withdraw(uint32 merchantId, uint256 amount, address to) external nonReentrant {
        IPrepaidLedger.MerchantBooks memory books = _LEDGER.merchantBooks(merchantId);
        if (books.status == IPrepaidLedger.MerchantStatus.None) revert CustodyUnknownMerchant(merchantId);
        if (!_isRecorder(merchantId, msg.sender)) revert CustodyUnauthorizedWithdrawer(msg.sender, merchantId);
        if (books.status == IPrepaidLedger.MerchantStatus.Closed) revert CustodyMerchantClosed(merchantId);
        if (amount == 0) revert CustodyZeroAmount(merchantId);
        if (to == address(0)) revert CustodyZeroAddress();
        Account storage a = _accounts[merchantId];
        uint256 held = a.held;
        uint256 required = _required(a.ratioBps, books.liability);
        if (held < required || amount > held - required) revert CustodyWithdrawalTooLarge(merchantId, amount, held, required);
        // amount <= held - required <= held, and _totalWithdrawn never exceeds _totalDeposited.
        unchecked {
            a.held = uint240(held - amount);
            _totalWithdrawn += amount;
        }
        emit Withdrawn(merchantId, msg.sender, to, amount, held - amount, required);
        _TOKEN.safeTransfer(to, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IMerchantCustody
    function coverage(uint32 merchantId, uint256 liability) external view returns (uint256 required, uint256 held) {
        Account memory a = _accounts[merchantId];
        return (_required(a.ratioBps, liability), a.held);
    }

    /// @inheritdoc IMerchantCustody
    function custodyOf(uint32 merchantId) external view returns (Custody memory c) {
        IPrepaidLedger.MerchantBooks memory books = _LEDGER.merchantBooks(merchantId);
        Account memory a = _accounts[merchantId];
        c.held = a.held;
        c.ratioBps = a.ratioBps;
        c.liability = books.liability;
        c.required = _required(a.ratioBps, books.liability);
        if (books.status != IPrepaidLedger.MerchantStatus.Closed && c.held > c.required) c.withdrawable = c.held - c.required;
    }

    // ---------------------------------------------------------------- internal

    /// @dev Pulls `amount` from the caller and credits what arrived. The balance is measured
    /// around the pull so a token that takes a fee cannot make held exceed the balance; this is
    /// the one place the books follow the interaction, and nonReentrant guards it.
    function _deposit(uint32 merchantId, uint256 amount) private {
        _status(merchantId);
        if (!hasRole(CUSTODIAN_ROLE, msg.sender) && !_isRecorder(merchantId, msg.sender)) {
            revert CustodyUnauthorizedDepositor(msg.sender, merchantId);
        }
        // The claims' payout rate was fixed on what custody held when they opened.
        if (_claimsOpened(merchantId)) revert CustodyClaimsOpen(merchantId);
        if (amount == 0) revert CustodyZeroAmount(merchantId);
        uint256 before = _TOKEN.balanceOf(address(this));
        _TOKEN.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = _TOKEN.balanceOf(address(this)) - before;
        Account storage a = _accounts[merchantId];
        uint256 held = a.held + received;
        // held fits 240 bits as long as the token's supply does; a token beyond that is refused.
        if (held > type(uint240).max) revert CustodyHeldOverflow(merchantId, held);
        a.held = uint240(held);
        _totalDeposited += received;
        emit Deposited(merchantId, msg.sender, received, held);
    }

    /// @dev The generic role calls manage REGULATOR_ROLE and (OpenZeppelin's rules) the default admin.
    function _checkGeneric(bytes32 role) private pure {
        if (role != REGULATOR_ROLE && role != DEFAULT_ADMIN_ROLE) revert CustodyRoleNotManaged(role);
    }

    /// @dev Reverts unless the token has 2 decimals: one unit is one fen, the ledger's unit.
    function _checkFen(IERC20 token) private view {
        uint8 decimals;
        try IERC20Metadata(address(token)).decimals() returns (uint8 d) {
            decimals = d;
        } catch {
            decimals = 0;
        }
        if (decimals != 2) revert CustodyTokenNotFen(address(token), decimals);
    }

    /// @dev The constructor's admin check, before OpenZeppelin's (which has no custody error).
    function _nonZero(address admin) private pure returns (address) {
        if (admin == address(0)) revert CustodyZeroAddress();
        return admin;
    }
}
