// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IHolderProtection
/// @notice What card holders can do with a merchant's custody without the merchant: claim their
/// balance when the merchant is closed, and take back a new card within its cooling-off period.
/// Docs: docs/CUSTODY.md.
/// @dev A card holder proves a card theirs by calling from the address its id commits to, with
/// the secret printed on the card: id = keccak256(abi.encode(keccak256("prepaid-ledger.card.v1"),
/// merchantId, holder, secret)) (docs/FORMAT.md 2.4, `cardId`). Without the holder's key nobody
/// can claim, the merchant included; without the secret nobody can tell whose card an id is.
/// Every payout is booked on the ledger as a refund (IPrepaidLedger.settle), so the books stay
/// true: a claim books what was paid, so a pro-rata claim leaves the unpaid rest on the card as
/// the merchant's remaining debt.
interface IHolderProtection {
    /// @notice A closed merchant's claims round (`claimsOf`).
    /// @param pool What the merchant's custody held when claims opened.
    /// @param liability The merchant's outstanding liability when claims opened.
    /// @param deadline Claims are accepted until this time (seconds); after it, anyone may send
    /// what is left to `residualTo`.
    /// @param residualTo Where what nobody claimed goes after the deadline (named by the
    /// regulator when opening claims; docs/CUSTODY.md).
    /// @param paid What claims have paid so far.
    /// @param claims How many cards have claimed.
    /// @param swept Whether what was left has been sent to `residualTo`.
    struct ClaimsRound {
        uint256 pool;
        uint256 liability;
        uint64 deadline;
        address residualTo;
        uint256 paid;
        uint32 claims;
        bool swept;
    }

    /// @notice A cooling-off return the merchant's custody could not pay (`obligationOf`).
    /// @param holder The card holder owed.
    /// @param to Where the money goes.
    /// @param amount What is owed, in fen (0: no obligation).
    /// @param dueBy When the merchant must have paid it (seconds).
    struct Obligation {
        address holder;
        address to;
        uint48 amount;
        uint64 dueBy;
    }

    // ---------------------------------------------------------------- events

    /// @notice A regulator opened claims on a closed merchant's custody.
    /// @param pool What custody held for the merchant.
    /// @param liability The merchant's outstanding liability on the ledger.
    /// @param deadline Last moment a claim is accepted.
    /// @param residualTo Where what is unclaimed at the deadline goes.
    event ClaimsOpened(
        uint32 indexed merchantId,
        address indexed regulator,
        uint256 pool,
        uint256 liability,
        uint64 deadline,
        address residualTo
    );

    /// @notice A card holder claimed a card of a closed merchant.
    /// @param balance The card's balance before the claim.
    /// @param paid What was paid: the balance in full when custody covered the liability, else
    /// floor(balance × pool / liability).
    /// @param recordIndex The settlement record booked on the ledger (0 when nothing was paid).
    event Claimed(
        uint32 indexed merchantId,
        bytes32 indexed account,
        address indexed holder,
        address to,
        uint256 balance,
        uint256 paid,
        uint64 recordIndex
    );

    /// @notice What nobody claimed by the deadline went to the round's residualTo.
    event ClaimsSwept(uint32 indexed merchantId, address indexed to, uint256 amount, address by);

    /// @notice A holder took back a new card's unused money within its cooling-off period, paid
    /// at once from the merchant's custody.
    event CoolingOffPaid(
        uint32 indexed merchantId,
        bytes32 indexed account,
        address indexed holder,
        address to,
        uint256 amount,
        uint64 recordIndex
    );

    /// @notice A holder asked for a cooling-off return that custody could not cover: the merchant
    /// owes it by `dueBy` (meetObligation).
    event CoolingOffOwed(
        uint32 indexed merchantId,
        bytes32 indexed account,
        address indexed holder,
        address to,
        uint256 amount,
        uint64 dueBy
    );

    /// @notice An owed cooling-off return was paid (by the merchant or anyone on its behalf).
    event ObligationMet(
        uint32 indexed merchantId,
        bytes32 indexed account,
        address indexed payer,
        address to,
        uint256 amount,
        uint64 recordIndex
    );

    // ---------------------------------------------------------------- errors

    /// @notice Claims need a closed merchant; cooling-off an open one.
    error CustodyWrongStatus(uint32 merchantId, uint8 status);
    /// @notice The merchant's claims round was already opened.
    error CustodyClaimsAlreadyOpen(uint32 merchantId);
    /// @notice No claims round is open for the merchant.
    error CustodyClaimsNotOpen(uint32 merchantId);
    /// @notice The claims deadline has passed.
    error CustodyClaimsEnded(uint32 merchantId, uint64 deadline);
    /// @notice What is unclaimed can only be swept after the deadline, once.
    error CustodyClaimsNotEnded(uint32 merchantId, uint64 deadline);
    /// @notice What was left has already been swept.
    error CustodyClaimsSwept(uint32 merchantId);
    /// @notice A claims window shorter than MIN_CLAIM_WINDOW or longer than MAX_CLAIM_WINDOW.
    error CustodyClaimWindowOutOfRange(uint256 window, uint256 minimum, uint256 maximum);
    /// @notice The card has already been claimed.
    error CustodyAlreadyClaimed(uint32 merchantId, bytes32 account);
    /// @notice No money is on this card: the caller and secret name no opened card of the
    /// merchant, or its balance is 0.
    error CustodyNothingOwed(uint32 merchantId, bytes32 account);
    /// @notice Money may not be deposited once claims are open (the payout rate is fixed).
    error CustodyClaimsOpen(uint32 merchantId);
    /// @notice The merchant's cards have no cooling-off right (coolingOffDays is 0).
    error CustodyNoCoolingOff(uint32 merchantId);
    /// @notice The card's cooling-off period ended at `endsAt`.
    error CustodyCoolingOffEnded(uint32 merchantId, bytes32 account, uint256 endsAt);
    /// @notice Nothing of the card's top-ups in their cooling-off run is left unused.
    error CustodyNothingToReturn(uint32 merchantId, bytes32 account);
    /// @notice The card already has a cooling-off return owed.
    error CustodyObligationPending(uint32 merchantId, bytes32 account, uint256 amount, uint64 dueBy);
    /// @notice No cooling-off return is owed on this card.
    error CustodyNoObligation(uint32 merchantId, bytes32 account);

    // ---------------------------------------------------------------- claims

    /// @notice Opens claims on a closed merchant's custody. Regulator only; once per merchant.
    /// Fixes the payout rate for every card: in full when custody holds the whole liability,
    /// else held / liability, however early or late a holder claims.
    /// @param merchantId A merchant closed on the ledger (CustodyWrongStatus).
    /// @param window Seconds claims stay open, MIN_CLAIM_WINDOW to MAX_CLAIM_WINDOW.
    /// @param residualTo Where what nobody claimed goes after the deadline (docs/CUSTODY.md).
    function openClaims(uint32 merchantId, uint64 window, address residualTo) external;

    /// @notice Claims the caller's card: pays its balance (or its pro-rata share) to `to` and
    /// books the payment on the ledger as a refund. Only the card's holder can: the card id is
    /// derived from the caller's address and `secret`. Each card once.
    /// @param merchantId The closed merchant.
    /// @param secret The secret printed on the card.
    /// @param to Where to pay.
    /// @return paid What was paid, in fen.
    function claim(uint32 merchantId, bytes32 secret, address to) external returns (uint256 paid);

    /// @notice Sends what is left of a closed merchant's custody to the round's residualTo, after
    /// the deadline. Anyone may call it.
    /// @return amount What was sent.
    function sweepUnclaimed(uint32 merchantId) external returns (uint256 amount);

    /// @notice The merchant's claims round (deadline 0: none opened).
    function claimsOf(uint32 merchantId) external view returns (ClaimsRound memory round);

    /// @notice Whether a card has been claimed.
    function isClaimed(uint32 merchantId, bytes32 account) external view returns (bool);

    // ---------------------------------------------------------------- cooling-off

    /// @notice Takes back the unused part of the caller's card's recent top-ups within the
    /// merchant's cooling-off period (IPrepaidLedger.merchantPolicy), counted from the card's
    /// latest top-up. Recent top-ups: the latest and each earlier one booked within the period
    /// before the next (`AccountBooks.coolingOffTopUps`). Unused part: min(balance,
    /// coolingOffTopUps), as consumption and refunds use the oldest money first. Paid at once
    /// from the merchant's custody when it holds enough,
    /// and booked on the ledger; otherwise recorded as an obligation the merchant must meet
    /// within OBLIGATION_PERIOD. Not for a closed merchant (its holders claim instead).
    /// @param merchantId The merchant.
    /// @param secret The secret printed on the card.
    /// @param to Where to pay.
    /// @return amount The amount returned or owed.
    /// @return paid True if paid now, false if owed.
    function requestCoolingOff(uint32 merchantId, bytes32 secret, address to)
        external
        returns (uint256 amount, bool paid);

    /// @notice Pays an owed cooling-off return from the caller's own tokens (the merchant, a
    /// custodian, anyone), straight to the holder, and books it on the ledger. The card's
    /// balance must still hold the amount.
    function meetObligation(uint32 merchantId, bytes32 account) external;

    /// @notice What a cooling-off request on a card would return now, and until when.
    /// @return amount min(balance, coolingOffTopUps); 0 when the merchant has no cooling-off,
    /// is closed, the period has ended, or a return is already owed.
    /// @return endsAt The end of the card's cooling-off period (0 when the merchant has none or
    /// the card is unopened).
    function coolingOffQuote(uint32 merchantId, bytes32 account) external view returns (uint256 amount, uint256 endsAt);

    /// @notice The cooling-off return owed on a card (amount 0: none).
    function obligationOf(uint32 merchantId, bytes32 account) external view returns (Obligation memory);

    // ---------------------------------------------------------------- views

    /// @notice A card's id from its merchant, holder and secret (docs/FORMAT.md 2.4).
    function cardId(uint32 merchantId, address holder, bytes32 secret) external pure returns (bytes32);

    /// @notice The shortest claims window a regulator may open: 7 days.
    function MIN_CLAIM_WINDOW() external view returns (uint64);

    /// @notice The longest claims window: 5 × 365 days.
    function MAX_CLAIM_WINDOW() external view returns (uint64);

    /// @notice How long a merchant has to pay an owed cooling-off return: 15 days.
    function OBLIGATION_PERIOD() external view returns (uint64);

    /// @notice Everything paid out of custody to card holders and residual recipients (claims,
    /// cooling-off returns, sweeps).
    function totalPaidOut() external view returns (uint256);
}
