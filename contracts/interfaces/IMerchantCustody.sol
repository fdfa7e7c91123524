// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IHolderProtection} from "./IHolderProtection.sol";

/// @title IMerchantCustody
/// @notice Holds each supervised merchant's prepaid-card money in one ERC-20 token (the
/// deposit-bank account of China's 资金存管 rules), so that what the ledger proves merchants owe
/// is backed by money they cannot take back. A regulator sets each merchant's coverage ratio;
/// the merchant must keep `ratio × outstanding liability` (rounded up) in custody. The ledger
/// refuses a batch that would raise a merchant's liability beyond what its custody covers, and a
/// merchant withdraws only what is above its requirement, so consumption and refunds free
/// custody as they are booked (Weihai 预付保: money is released per consumption). A closed
/// merchant withdraws nothing: its custody stays for its card holders, who claim it
/// (IHolderProtection).
/// @dev Fund invariant: TOKEN.balanceOf(this) == totalDeposited() - totalWithdrawn() -
/// totalPaidOut(), and for every merchant held(m) == its deposits - its withdrawals - what was
/// paid out of it (anyone may still send tokens here directly with a plain transfer; such tokens
/// are credited to no one and only add to the balance). Amounts are in the token's smallest unit (fen for the 2-decimal local test token).
interface IMerchantCustody is IHolderProtection {
    /// @notice One merchant's custody, as `custodyOf` reports it.
    /// @param held Money held for the merchant: its deposits minus its withdrawals.
    /// @param ratioBps Coverage ratio in basis points (0-10,000) set by a regulator.
    /// @param liability The merchant's outstanding prepaid liability on the ledger.
    /// @param required ceil(ratioBps × liability / 10,000): what must stay in custody.
    /// @param withdrawable What the merchant may withdraw now: held - required if above it and
    /// the merchant is not closed, else 0.
    struct Custody {
        uint256 held;
        uint16 ratioBps;
        uint256 liability;
        uint256 required;
        uint256 withdrawable;
    }

    // ---------------------------------------------------------------- events

    /// @notice Money was deposited into a merchant's custody.
    /// @param merchantId The merchant credited.
    /// @param from Who paid: a recorder of the merchant or a custodian.
    /// @param amount What custody received (its balance's increase).
    /// @param held The merchant's custody after the deposit.
    event Deposited(uint32 indexed merchantId, address indexed from, uint256 amount, uint256 held);

    /// @notice A merchant withdrew money above its requirement.
    /// @param merchantId The merchant debited.
    /// @param by The merchant's recorder who withdrew.
    /// @param to Who received the tokens.
    /// @param amount The amount.
    /// @param held The merchant's custody after the withdrawal.
    /// @param required The merchant's requirement at that moment.
    event Withdrawn(uint32 indexed merchantId, address indexed by, address indexed to, uint256 amount, uint256 held, uint256 required);

    /// @notice A regulator set a merchant's coverage ratio.
    /// @param merchantId The merchant.
    /// @param regulator The regulator who set it.
    /// @param previousBps The ratio before, in basis points.
    /// @param ratioBps The new ratio, in basis points.
    event CoverageRatioSet(uint32 indexed merchantId, address indexed regulator, uint16 previousBps, uint16 ratioBps);

    /// @notice The default admin granted or revoked a custodian (a bank depositing for merchants).
    /// @param custodian The key.
    /// @param allowed True when granted, false when revoked.
    /// @param admin The admin who changed it.
    event CustodianSet(address indexed custodian, bool allowed, address indexed admin);

    // ---------------------------------------------------------------- errors

    /// @notice An address argument was the zero address.
    error CustodyZeroAddress();
    /// @notice The token does not count fen: custody compares its amounts with the ledger's,
    /// which are fen, so it takes only a token of 2 decimals (a deposit token of the yuan).
    /// @param token The token given.
    /// @param decimals What its `decimals()` returned (0 also when it has no such function).
    error CustodyTokenNotFen(address token, uint8 decimals);
    /// @notice A deposit or withdrawal of nothing.
    /// @param merchantId The merchant named.
    error CustodyZeroAmount(uint32 merchantId);
    /// @notice No merchant is registered on the ledger under this id.
    error CustodyUnknownMerchant(uint32 merchantId);
    /// @notice A coverage ratio above 100 % (10,000 basis points).
    error CustodyRatioTooHigh(uint32 merchantId, uint256 ratioBps, uint256 maximum);
    /// @notice The caller may not deposit for this merchant: it is neither one of its recorders
    /// nor a custodian.
    error CustodyUnauthorizedDepositor(address caller, uint32 merchantId);
    /// @notice The caller may not withdraw for this merchant: it is not one of its recorders.
    error CustodyUnauthorizedWithdrawer(address caller, uint32 merchantId);
    /// @notice The withdrawal would leave the merchant's custody below its requirement.
    /// @param merchantId The merchant.
    /// @param amount The amount asked for.
    /// @param held What custody holds for the merchant.
    /// @param required What must stay.
    error CustodyWithdrawalTooLarge(uint32 merchantId, uint256 amount, uint256 held, uint256 required);
    /// @notice The merchant is closed: its custody is kept for its card holders.
    error CustodyMerchantClosed(uint32 merchantId);
    /// @notice The merchant's custody would pass 2^240 - 1 (only a token with an absurd supply).
    error CustodyHeldOverflow(uint32 merchantId, uint256 held);
    /// @notice Roles change only through setCustodian (custodians) and the generic calls on
    /// REGULATOR_ROLE; any other role is refused.
    error CustodyRoleNotManaged(bytes32 role);

    // ---------------------------------------------------------------- money

    /// @notice Deposits `amount` tokens into a merchant's custody, pulled from the caller
    /// (approve first). The caller must be a recorder of the merchant on the ledger, or a
    /// custodian. Deposits into a suspended, winding-down or closed merchant's custody are taken:
    /// they only add to what its card holders are covered by.
    /// @param merchantId A registered merchant.
    /// @param amount The amount, at least 1; fee-on-transfer tokens are credited what arrived.
    function deposit(uint32 merchantId, uint256 amount) external;

    /// @notice Deposits with an EIP-2612 permit signed by the caller instead of an approval, in
    /// one transaction. If the permit was already used (someone front-ran it) but the allowance
    /// stands, the deposit goes through.
    /// @param merchantId A registered merchant.
    /// @param amount The amount, at least 1.
    /// @param deadline The permit's deadline.
    /// @param v The permit signature's v.
    /// @param r The permit signature's r.
    /// @param s The permit signature's s.
    function depositWithPermit(uint32 merchantId, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;

    /// @notice Withdraws money above the merchant's requirement. A recorder of the merchant only;
    /// never for a closed merchant.
    /// @param merchantId The merchant.
    /// @param amount At least 1, at most held - required.
    /// @param to Who receives the tokens.
    function withdraw(uint32 merchantId, uint256 amount, address to) external;

    // ---------------------------------------------------------------- governance

    /// @notice Sets a merchant's coverage ratio. Regulator only. Raising it never blocks a batch
    /// that lowers the merchant's liability (consumption, refunds), so an under-covered merchant
    /// still serves and pays back its card holders; it cannot sell more cards until it deposits.
    /// @param merchantId A registered merchant.
    /// @param ratioBps 0 to 10,000 basis points.
    function setCoverageRatio(uint32 merchantId, uint16 ratioBps) external;

    /// @notice Grants or revokes a custodian, a key that may deposit for any merchant (the
    /// deposit bank). Default admin only.
    /// @param custodian The key.
    /// @param allowed True to grant, false to revoke.
    function setCustodian(address custodian, bool allowed) external;

    // ---------------------------------------------------------------- views

    /// @notice What a merchant must keep in custody and what it holds, for a given liability.
    /// The ledger calls this once at the end of a batch that raised the merchant's liability.
    /// @param merchantId The merchant.
    /// @param liability The merchant's liability (after the batch).
    /// @return required ceil(ratio × liability / 10,000).
    /// @return held What custody holds for the merchant.
    function coverage(uint32 merchantId, uint256 liability) external view returns (uint256 required, uint256 held);

    /// @notice A merchant's custody against its current liability on the ledger.
    /// @param merchantId The merchant.
    /// @return custody Held, ratio, liability, requirement and what may be withdrawn now.
    function custodyOf(uint32 merchantId) external view returns (Custody memory custody);

    /// @notice Sum of all deposits ever credited.
    /// @return The total.
    function totalDeposited() external view returns (uint256);

    /// @notice Sum of all withdrawals ever paid.
    /// @return The total.
    function totalWithdrawn() external view returns (uint256);

    /// @notice The ERC-20 token custody holds (set at deployment).
    /// @return The token.
    function TOKEN() external view returns (address);

    /// @notice The ledger whose merchants and liabilities custody follows (set at deployment).
    /// @return The ledger.
    function LEDGER() external view returns (address);

    /// @notice The AccessControl role of regulators (set coverage ratios).
    /// @return keccak256("prepaid-ledger.regulator").
    function REGULATOR_ROLE() external pure returns (bytes32);

    /// @notice The AccessControl role of custodians (deposit for any merchant).
    /// @return keccak256("prepaid-ledger.custodian").
    function CUSTODIAN_ROLE() external pure returns (bytes32);

    /// @notice The largest coverage ratio: 10,000 basis points (100 %).
    /// @return 10,000.
    function MAX_RATIO_BPS() external pure returns (uint16);
}
