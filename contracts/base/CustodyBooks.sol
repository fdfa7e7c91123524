// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IHolderProtection} from "../interfaces/IHolderProtection.sol";
import {IMerchantCustody} from "../interfaces/IMerchantCustody.sol";
import {IPrepaidLedger} from "../interfaces/IPrepaidLedger.sol";

/// @title CustodyBooks
/// @notice The money custody holds and its books, shared by the merchant's side
/// (MerchantCustody: deposits, withdrawals) and the card holders' side (HolderProtection: claims,
/// cooling-off): the token, the ledger it follows, each merchant's held amount and coverage
/// ratio, and the totals the fund invariant is stated in.
/// @dev Fund invariant: TOKEN.balanceOf(this) == _totalDeposited - _totalWithdrawn -
/// _totalPaidOut (plus tokens sent by plain transfer), and each merchant's held equals its
/// deposits minus its withdrawals minus what was paid out of it. Every change to `held` goes
/// with the matching total, before the token moves.
abstract contract CustodyBooks is IMerchantCustody, AccessControlDefaultAdminRules, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @dev One slot per merchant: held below 2^240 (a token's whole supply fits far below),
    /// ratio in basis points.
    struct Account {
        uint240 held;
        uint16 ratioBps;
    }

    /// @inheritdoc IMerchantCustody
    bytes32 public constant REGULATOR_ROLE = keccak256("prepaid-ledger.regulator");
    /// @inheritdoc IMerchantCustody
    bytes32 public constant CUSTODIAN_ROLE = keccak256("prepaid-ledger.custodian");
    /// @inheritdoc IMerchantCustody
    uint16 public constant MAX_RATIO_BPS = 10_000;

    IERC20 internal immutable _TOKEN;
    IPrepaidLedger internal immutable _LEDGER;

    mapping(uint32 merchantId => Account) internal _accounts;
    uint256 internal _totalDeposited;
    uint256 internal _totalWithdrawn;
    uint256 internal _totalPaidOut;

    constructor(IERC20 token, IPrepaidLedger ledger) {
        _TOKEN = token;
        _LEDGER = ledger;
    }

    /// @inheritdoc IMerchantCustody
    function totalDeposited() external view returns (uint256) {
        return _totalDeposited;
    }

    /// @inheritdoc IMerchantCustody
    function totalWithdrawn() external view returns (uint256) {
        return _totalWithdrawn;
    }

    /// @inheritdoc IHolderProtection
    function totalPaidOut() external view returns (uint256) {
        return _totalPaidOut;
    }

    /// @inheritdoc IMerchantCustody
    function TOKEN() external view returns (address) {
        return address(_TOKEN);
    }

    /// @inheritdoc IMerchantCustody
    function LEDGER() external view returns (address) {
        return address(_LEDGER);
    }

    /// @dev Takes `amount` out of the merchant's custody and sends it to a card holder or the
    /// residual recipient. Callers have checked held >= amount; the checked subtraction is the
    /// last guard.
    function _payOut(uint32 merchantId, address to, uint256 amount) internal {
        Account storage a = _accounts[merchantId];
        a.held = uint240(a.held - amount);
        _totalPaidOut += amount;
        _TOKEN.safeTransfer(to, amount);
    }

    /// @dev ceil(ratioBps × liability / 10,000). liability < 2^80 and ratioBps <= 10^4, so the
    /// product cannot overflow; mulDiv rounds up.
    function _required(uint16 ratioBps, uint256 liability) internal pure returns (uint256) {
        return Math.mulDiv(liability, ratioBps, MAX_RATIO_BPS, Math.Rounding.Ceil);
    }

    /// @dev The merchant's status on the ledger; reverts if it was never registered.
    function _status(uint32 merchantId) internal view returns (IPrepaidLedger.MerchantStatus status) {
        status = _LEDGER.merchantBooks(merchantId).status;
        if (status == IPrepaidLedger.MerchantStatus.None) revert CustodyUnknownMerchant(merchantId);
    }

    /// @dev Whether `account` uploads for the merchant on the ledger: that is who the merchant is.
    function _isRecorder(uint32 merchantId, address account) internal view returns (bool) {
        return IAccessControl(address(_LEDGER)).hasRole(_LEDGER.recorderRole(merchantId), account);
    }
}
