// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title CardId
/// @notice A card's opaque id, bound to its holder without naming them (docs/FORMAT.md 2.4):
/// id = keccak256(abi.encode(keccak256("prepaid-ledger.card.v1"), merchantId, holder, secret)).
/// Only the holder's key can call with `holder`, and only someone with the card's secret can
/// tell which holder an id belongs to; src/crypto/card.ts derives the same ids.
library CardId {
    bytes32 internal constant TAG = keccak256("prepaid-ledger.card.v1");

    /// @notice The id of the card of `merchantId` held by `holder` with `secret`.
    function derive(uint32 merchantId, address holder, bytes32 secret) internal pure returns (bytes32) {
        return keccak256(abi.encode(TAG, merchantId, holder, secret));
    }
}
