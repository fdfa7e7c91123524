// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IPrepaidLedger} from "../interfaces/IPrepaidLedger.sol";

/// @title PackedAccount
/// @notice An account's books packed into one storage word, so that booking a record costs one
/// SSTORE. Layout, from the least significant bit:
/// lastTopUpAt u32 | recordCount u24 | initialAmount u40 | toppedUp u40 | consumed u40 |
/// refunded u40 | coolingOffTopUps u40 (32 + 24 + 5 × 40 = 256 bits).
/// - lastTopUpAt: the block timestamp of the latest top-up (seconds, until 2106); never 0 once
///   opened, so a zero word means an unopened account.
/// - coolingOffTopUps: the top-ups still in their cooling-off run: the latest top-up plus every
///   earlier one that was itself booked within the merchant's cooling-off period of the top-up
///   after it (docs/CUSTODY.md), less what cooling-off returns paid. It is at most toppedUp.
/// 40 bits hold 1.1e12 fen (¥10,995,116,277.75) per card and field; 24 bits 16,777,215 records.
library PackedAccount {
    uint256 internal constant MAX_AMOUNT = (1 << 40) - 1;
    uint256 internal constant MAX_RECORDS = (1 << 24) - 1;
    uint256 private constant _MASK24 = (1 << 24) - 1;
    uint256 private constant _MASK40 = (1 << 40) - 1;
    uint256 internal constant RECORD_COUNT_SHIFT = 32;
    uint256 internal constant INITIAL_SHIFT = 56;
    uint256 internal constant TOPPED_UP_SHIFT = 96;
    uint256 internal constant CONSUMED_SHIFT = 136;
    uint256 internal constant REFUNDED_SHIFT = 176;
    uint256 internal constant COOLING_OFF_SHIFT = 216;

    function lastTopUpAt(uint256 packed) internal pure returns (uint32) {
        return uint32(packed);
    }

    function recordCount(uint256 packed) internal pure returns (uint24) {
        return uint24(packed >> RECORD_COUNT_SHIFT);
    }

    function initialAmount(uint256 packed) internal pure returns (uint40) {
        return uint40(packed >> INITIAL_SHIFT);
    }

    function toppedUp(uint256 packed) internal pure returns (uint40) {
        return uint40(packed >> TOPPED_UP_SHIFT);
    }

    function consumed(uint256 packed) internal pure returns (uint40) {
        return uint40(packed >> CONSUMED_SHIFT);
    }

    function refunded(uint256 packed) internal pure returns (uint40) {
        return uint40(packed >> REFUNDED_SHIFT);
    }

    function coolingOffTopUps(uint256 packed) internal pure returns (uint40) {
        return uint40(packed >> COOLING_OFF_SHIFT);
    }

    /// @dev Cannot underflow: every booking keeps consumed + refunded <= toppedUp.
    function balance(uint256 packed) internal pure returns (uint256) {
        unchecked {
            return uint256(toppedUp(packed)) - consumed(packed) - refunded(packed);
        }
    }

    /// @notice Applies one record to an account's books, or reverts with the reason. The checked
    /// reference for the ledger's hand-written booking loop, which it must agree with.
    /// @param now_ The block timestamp, stored as lastTopUpAt by a top-up.
    /// @param coolingOff The merchant's cooling-off period in seconds (0: none): a top-up booked
    /// within it of the previous top-up joins that top-up's run; otherwise it starts a new one.
    /// @return updated The new packed books.
    function book(uint256 packed, uint32 now_, uint256 coolingOff, bytes32 account, uint256 kind, uint256 amount)
        internal
        pure
        returns (uint256 updated)
    {
        if (amount == 0) revert IPrepaidLedger.LedgerZeroAmount(account);
        if (packed == 0) {
            // A new account: only a top-up opens it, and its first top-up is its initial amount.
            if (kind != uint256(IPrepaidLedger.RecordKind.TopUp)) {
                if (kind == uint256(IPrepaidLedger.RecordKind.Consume) || kind == uint256(IPrepaidLedger.RecordKind.Refund)) {
                    revert IPrepaidLedger.LedgerUnknownAccount(account);
                }
                revert IPrepaidLedger.LedgerInvalidKind(account, uint8(kind));
            }
            if (amount > MAX_AMOUNT) revert IPrepaidLedger.LedgerAccountOverflow(account, amount);
            packed = uint256(now_) | (amount << INITIAL_SHIFT);
        }
        uint256 count = recordCount(packed) + 1;
        if (count > MAX_RECORDS) revert IPrepaidLedger.LedgerAccountOverflow(account, count);
        // Each field is < 2^40 and `amount` < 2^48, so no sum below can exceed 2^49.
        unchecked {
            uint256 shift;
            if (kind == uint256(IPrepaidLedger.RecordKind.TopUp)) {
                uint256 total = uint256(toppedUp(packed)) + amount;
                if (total > MAX_AMOUNT) revert IPrepaidLedger.LedgerAccountOverflow(account, total);
                shift = TOPPED_UP_SHIFT;
                // The cooling-off run: joined within the period of the previous top-up, else
                // restarted. The run is a part of toppedUp, so it stays below 2^40 too.
                uint256 run = uint256(now_) > uint256(lastTopUpAt(packed)) + coolingOff ? 0 : coolingOffTopUps(packed);
                packed = (packed & ~(_MASK40 << COOLING_OFF_SHIFT) & ~uint256(type(uint32).max))
                    | ((run + amount) << COOLING_OFF_SHIFT) | now_;
            } else {
                // kind - 2 wraps for 0 and 1 (1 took the branch above), so this admits 2 and 3 only.
                if (kind - 2 >= 2) revert IPrepaidLedger.LedgerInvalidKind(account, uint8(kind));
                uint256 available = balance(packed);
                if (amount > available) revert IPrepaidLedger.LedgerInsufficientBalance(account, available, amount);
                shift = kind == uint256(IPrepaidLedger.RecordKind.Consume) ? CONSUMED_SHIFT : REFUNDED_SHIFT;
            }
            // The field being raised cannot pass 2^40: top-ups were checked above, and
            // consumed + refunded never exceed toppedUp.
            updated = (packed & ~(_MASK24 << RECORD_COUNT_SHIFT)) | (count << RECORD_COUNT_SHIFT);
            updated += amount << shift;
        }
    }

    /// @notice Books a cooling-off return's refund and takes it out of the cooling-off run.
    /// @dev The run loses what was returned, and never goes below 0 (a return may be smaller
    /// or larger than the run when it is paid late: an owed return met after later top-ups).
    function bookCoolingOffReturn(uint256 packed, bytes32 account, uint256 amount) internal pure returns (uint256 updated) {
        updated = book(packed, 0, 0, account, uint256(IPrepaidLedger.RecordKind.Refund), amount);
        uint256 run = coolingOffTopUps(updated);
        unchecked {
            uint256 left = run > amount ? run - amount : 0;
            updated = (updated & ~(_MASK40 << COOLING_OFF_SHIFT)) | (left << COOLING_OFF_SHIFT);
        }
    }
}
