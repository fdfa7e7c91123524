// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IPrepaidLedger} from "../interfaces/IPrepaidLedger.sol";

/// @title PackedAccount
/// @notice An account's books packed into one storage word, so that booking a record costs one
/// SSTORE. Layout, from the least significant bit:
/// openedAt u32 | recordCount u32 | initialAmount u48 | toppedUp u48 | consumed u48 | refunded u48
/// (32 + 32 + 4 × 48 = 256 bits). openedAt is the block timestamp of the first top-up (seconds,
/// until 2106), never 0 once opened, so a zero word means an unopened account. 48 bits hold 2.8e14 minor units (2.8 trillion yuan) per card.
library PackedAccount {
    uint256 internal constant MAX_AMOUNT = type(uint48).max;
    uint256 private constant _MASK32 = type(uint32).max;
    uint256 private constant _MASK48 = type(uint48).max;

    function openedAt(uint256 packed) internal pure returns (uint32) {
        return uint32(packed);
    }

    function recordCount(uint256 packed) internal pure returns (uint32) {
        return uint32(packed >> 32);
    }

    function initialAmount(uint256 packed) internal pure returns (uint48) {
        return uint48(packed >> 64);
    }

    function toppedUp(uint256 packed) internal pure returns (uint48) {
        return uint48(packed >> 112);
    }

    function consumed(uint256 packed) internal pure returns (uint48) {
        return uint48(packed >> 160);
    }

    function refunded(uint256 packed) internal pure returns (uint48) {
        return uint48(packed >> 208);
    }

    /// @dev Cannot underflow: every booking keeps consumed + refunded <= toppedUp.
    function balance(uint256 packed) internal pure returns (uint256) {
        unchecked {
            return uint256(toppedUp(packed)) - consumed(packed) - refunded(packed);
        }
    }

    /// @notice Applies one record to an account's books, or reverts with the reason.
    /// @param opened The opening time to store if this record opens the account (non-zero).
    /// @return updated The new packed books.
    function book(uint256 packed, uint32 opened, bytes32 account, uint256 kind, uint256 amount)
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
            packed = uint256(opened) | (amount << 64);
        }
        uint256 count = ((packed >> 32) & _MASK32) + 1;
        if (count > _MASK32) revert IPrepaidLedger.LedgerAccountOverflow(account, count);
        // Each field is < 2^48 and `amount` < 2^48, so no sum below can exceed 2^49.
        unchecked {
            uint256 shift;
            if (kind == uint256(IPrepaidLedger.RecordKind.TopUp)) {
                uint256 total = ((packed >> 112) & _MASK48) + amount;
                if (total > _MASK48) revert IPrepaidLedger.LedgerAccountOverflow(account, total);
                shift = 112;
            } else {
                // kind - 2 wraps for 0 and 1 (1 took the branch above), so this admits 2 and 3 only.
                if (kind - 2 >= 2) revert IPrepaidLedger.LedgerInvalidKind(account, uint8(kind));
                uint256 available = balance(packed);
                if (amount > available) revert IPrepaidLedger.LedgerInsufficientBalance(account, available, amount);
                shift = kind == uint256(IPrepaidLedger.RecordKind.Consume) ? 160 : 208;
            }
            // The field being raised cannot pass 2^48: top-ups were checked above, and
            // consumed + refunded never exceed toppedUp.
            updated = (packed & ~(_MASK32 << 32)) | (count << 32);
            updated += amount << shift;
        }
    }
}
