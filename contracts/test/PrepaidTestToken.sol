// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title PrepaidTestToken
/// @notice TEST ONLY: a 2-decimal ERC-20 with EIP-2612 permit whose amounts are fen, the token
/// MerchantCustody holds on local networks (ignition/modules/LocalCustody.ts). Anyone may mint:
/// it is worth nothing and must never be deployed where real money is meant.
contract PrepaidTestToken is ERC20, ERC20Permit {
    /// @param name The token's name.
    /// @param symbol The token's symbol.
    constructor(string memory name, string memory symbol) ERC20(name, symbol) ERC20Permit(name) {}

    /// @notice Mints test tokens to anyone (a faucet). Test networks only.
    /// @param to Who receives them.
    /// @param amount In fen.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Two decimals: one unit is one fen.
    /// @return 2.
    function decimals() public pure override returns (uint8) {
        return 2;
    }
}
