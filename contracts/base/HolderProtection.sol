// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IHolderProtection} from "../interfaces/IHolderProtection.sol";
import {IPrepaidLedger} from "../interfaces/IPrepaidLedger.sol";
import {CardId} from "../libraries/CardId.sol";
import {CustodyBooks} from "./CustodyBooks.sol";

/// @title HolderProtection
/// @notice The card holders' side of custody: claims on a closed merchant's custody, paid in
/// full or at one pro-rata rate fixed when claims open, and cooling-off returns of a card's
/// recent top-ups' unused money, paid from custody or owed by the merchant. Each payout is booked on the ledger
/// (IPrepaidLedger.settle) before the token moves. Docs: docs/CUSTODY.md.
abstract contract HolderProtection is CustodyBooks {
    using SafeERC20 for IERC20;

    /// @dev A claims round: fixed when opened, then counted up by claims. deadline == 0: none.
    /// Three slots: what opening fixes; what each claim updates (one write a claim); the
    /// recipient. liability < 2^80 (MerchantRegistry) and pool is checked to fit 128 bits.
    struct Round {
        uint128 pool;
        uint128 liability;
        uint128 paid;
        uint64 deadline;
        uint32 claims;
        bool swept;
        address residualTo;
    }

    /// @inheritdoc IHolderProtection
    uint64 public constant MIN_CLAIM_WINDOW = 7 days;
    /// @inheritdoc IHolderProtection
    uint64 public constant MAX_CLAIM_WINDOW = 5 * 365 days;
    /// @inheritdoc IHolderProtection
    uint64 public constant OBLIGATION_PERIOD = 15 days;

    mapping(uint32 merchantId => Round) private _rounds;
    mapping(uint32 merchantId => mapping(bytes32 account => bool)) private _claimed;
    mapping(uint32 merchantId => mapping(bytes32 account => Obligation)) private _obligations;

    // ---------------------------------------------------------------- claims

    /// @inheritdoc IHolderProtection
    function openClaims(uint32 merchantId, uint64 window, address residualTo) external onlyRole(REGULATOR_ROLE) {
        IPrepaidLedger.MerchantBooks memory books = _LEDGER.merchantBooks(merchantId);
        if (books.status == IPrepaidLedger.MerchantStatus.None) revert CustodyUnknownMerchant(merchantId);
        if (books.status != IPrepaidLedger.MerchantStatus.Closed) revert CustodyWrongStatus(merchantId, uint8(books.status));
        if (window < MIN_CLAIM_WINDOW || window > MAX_CLAIM_WINDOW) {
            revert CustodyClaimWindowOutOfRange(window, MIN_CLAIM_WINDOW, MAX_CLAIM_WINDOW);
        }
        if (residualTo == address(0)) revert CustodyZeroAddress();
        Round storage r = _rounds[merchantId];
        if (r.deadline != 0) revert CustodyClaimsAlreadyOpen(merchantId);
        uint256 pool = _accounts[merchantId].held;
        uint64 deadline = uint64(block.timestamp) + window;
        r.pool = SafeCast.toUint128(pool);
        r.liability = uint128(books.liability);
        r.deadline = deadline;
        r.residualTo = residualTo;
        emit ClaimsOpened(merchantId, msg.sender, pool, books.liability, deadline, residualTo);
    }

    /// @inheritdoc IHolderProtection
    function claim(uint32 merchantId, bytes32 secret, address to) external nonReentrant returns (uint256 paid) {
        if (to == address(0)) revert CustodyZeroAddress();
        Round storage r = _rounds[merchantId];
        uint64 deadline = r.deadline;
        if (deadline == 0) revert CustodyClaimsNotOpen(merchantId);
        if (block.timestamp > deadline) revert CustodyClaimsEnded(merchantId, deadline);
        bytes32 account = CardId.derive(merchantId, msg.sender, secret);
        if (_claimed[merchantId][account]) revert CustodyAlreadyClaimed(merchantId, account);
        uint256 balance = _LEDGER.balanceOf(merchantId, account);
        if (balance == 0) revert CustodyNothingOwed(merchantId, account);
        // One rate for every card. Balances of a closed merchant only fall after claims open
        // (settlements), so the cards' balances sum to at most r.liability and the payouts to at
        // most the pool.
        uint256 pool = r.pool;
        uint256 liability = r.liability;
        paid = pool >= liability ? balance : Math.mulDiv(balance, pool, liability);
        _claimed[merchantId][account] = true;
        // paid <= balance < 2^48, and the sum of payouts stays at most the pool.
        r.claims += 1;
        r.paid += uint128(paid);
        // An owed cooling-off return is part of the balance being claimed.
        delete _obligations[merchantId][account];
        uint64 recordIndex;
        if (paid != 0) {
            recordIndex = _LEDGER.settle(merchantId, account, msg.sender, IPrepaidLedger.SettlementReason.Claim, paid);
        }
        emit Claimed(merchantId, account, msg.sender, to, balance, paid, recordIndex);
        if (paid != 0) _payOut(merchantId, to, paid);
    }

    /// @inheritdoc IHolderProtection
    function sweepUnclaimed(uint32 merchantId) external nonReentrant returns (uint256 amount) {
        Round storage r = _rounds[merchantId];
        uint64 deadline = r.deadline;
        if (deadline == 0) revert CustodyClaimsNotOpen(merchantId);
        if (block.timestamp <= deadline) revert CustodyClaimsNotEnded(merchantId, deadline);
        if (r.swept) revert CustodyClaimsSwept(merchantId);
        r.swept = true;
        amount = _accounts[merchantId].held;
        address to = r.residualTo;
        emit ClaimsSwept(merchantId, to, amount, msg.sender);
        if (amount != 0) _payOut(merchantId, to, amount);
    }

    /// @inheritdoc IHolderProtection
    function claimsOf(uint32 merchantId) external view returns (ClaimsRound memory round) {
        Round storage r = _rounds[merchantId];
        round = ClaimsRound({
            pool: r.pool,
            liability: r.liability,
            deadline: r.deadline,
            residualTo: r.residualTo,
            paid: r.paid,
            claims: r.claims,
            swept: r.swept
        });
    }

    /// @inheritdoc IHolderProtection
    function isClaimed(uint32 merchantId, bytes32 account) external view returns (bool) {
        return _claimed[merchantId][account];
    }

    // ---------------------------------------------------------------- cooling-off

    /// @inheritdoc IHolderProtection
    function requestCoolingOff(uint32 merchantId, bytes32 secret, address to)
        external
        nonReentrant
        returns (uint256 amount, bool paid)
    {
        if (to == address(0)) revert CustodyZeroAddress();
        IPrepaidLedger.MerchantStatus status = _status(merchantId);
        if (status == IPrepaidLedger.MerchantStatus.Closed) revert CustodyWrongStatus(merchantId, uint8(status));
        (, uint16 coolingOffDays) = _LEDGER.merchantPolicy(merchantId);
        if (coolingOffDays == 0) revert CustodyNoCoolingOff(merchantId);
        bytes32 account = CardId.derive(merchantId, msg.sender, secret);
        IPrepaidLedger.AccountBooks memory card = _LEDGER.accountBooks(merchantId, account);
        if (card.balance == 0) revert CustodyNothingOwed(merchantId, account);
        uint256 endsAt = _coolingOffEnd(card.lastTopUpAt, coolingOffDays);
        if (block.timestamp > endsAt) revert CustodyCoolingOffEnded(merchantId, account, endsAt);
        Obligation storage owed = _obligations[merchantId][account];
        if (owed.amount != 0) revert CustodyObligationPending(merchantId, account, owed.amount, owed.dueBy);
        // Consumption and refunds use the oldest money first, so what is left of the recent
        // top-ups is at most the balance.
        amount = Math.min(card.coolingOffTopUps, card.balance);
        if (amount == 0) revert CustodyNothingToReturn(merchantId, account);
        if (_accounts[merchantId].held >= amount) {
            uint64 recordIndex =
                _LEDGER.settle(merchantId, account, msg.sender, IPrepaidLedger.SettlementReason.CoolingOff, amount);
            emit CoolingOffPaid(merchantId, account, msg.sender, to, amount, recordIndex);
            _payOut(merchantId, to, amount);
            return (amount, true);
        }
        uint64 dueBy = uint64(block.timestamp) + OBLIGATION_PERIOD;
        // amount <= the card's balance < 2^48.
        _obligations[merchantId][account] = Obligation(msg.sender, to, uint48(amount), dueBy);
        emit CoolingOffOwed(merchantId, account, msg.sender, to, amount, dueBy);
    }

    /// @inheritdoc IHolderProtection
    function meetObligation(uint32 merchantId, bytes32 account) external nonReentrant {
        Obligation memory owed = _obligations[merchantId][account];
        if (owed.amount == 0) revert CustodyNoObligation(merchantId, account);
        delete _obligations[merchantId][account];
        uint64 recordIndex =
            _LEDGER.settle(merchantId, account, owed.holder, IPrepaidLedger.SettlementReason.CoolingOff, owed.amount);
        emit ObligationMet(merchantId, account, msg.sender, owed.to, owed.amount, recordIndex);
        // Straight from the payer to the holder: custody's own balance does not move.
        _TOKEN.safeTransferFrom(msg.sender, owed.to, owed.amount);
    }

    /// @inheritdoc IHolderProtection
    function coolingOffQuote(uint32 merchantId, bytes32 account) external view returns (uint256 amount, uint256 endsAt) {
        IPrepaidLedger.MerchantStatus status = _status(merchantId);
        (, uint16 coolingOffDays) = _LEDGER.merchantPolicy(merchantId);
        IPrepaidLedger.AccountBooks memory card = _LEDGER.accountBooks(merchantId, account);
        if (coolingOffDays == 0 || card.lastTopUpAt == 0) return (0, 0);
        endsAt = _coolingOffEnd(card.lastTopUpAt, coolingOffDays);
        bool open = status != IPrepaidLedger.MerchantStatus.Closed && block.timestamp <= endsAt
            && _obligations[merchantId][account].amount == 0;
        amount = open ? Math.min(card.coolingOffTopUps, card.balance) : 0;
    }

    /// @inheritdoc IHolderProtection
    function obligationOf(uint32 merchantId, bytes32 account) external view returns (Obligation memory) {
        return _obligations[merchantId][account];
    }

    /// @inheritdoc IHolderProtection
    function cardId(uint32 merchantId, address holder, bytes32 secret) external pure returns (bytes32) {
        return CardId.derive(merchantId, holder, secret);
    }

    /// @dev The end of a card's cooling-off period: its latest top-up plus the merchant's period.
    function _coolingOffEnd(uint32 lastTopUpAt, uint16 coolingOffDays) private pure returns (uint256) {
        return uint256(lastTopUpAt) + uint256(coolingOffDays) * 1 days;
    }

    /// @dev Whether claims were opened for the merchant (deposits are then refused).
    function _claimsOpened(uint32 merchantId) internal view returns (bool) {
        return _rounds[merchantId].deadline != 0;
    }
}
