// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestTokenWithDecimals
/// @notice TEST ONLY: an ERC-20 with any number of decimals, to show custody refuses a token that
/// does not count fen.
contract TestTokenWithDecimals is ERC20 {
    uint8 private immutable _DECIMALS;

    /// @param decimals_ What `decimals()` returns.
    constructor(uint8 decimals_) ERC20("Test token", "TEST") {
        _DECIMALS = decimals_;
    }

    /// @notice The decimals given at deployment.
    /// @return Them.
    function decimals() public view override returns (uint8) {
        return _DECIMALS;
    }
}
