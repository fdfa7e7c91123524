// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerchantCustody} from "../../../contracts/MerchantCustody.sol";
import {PrepaidLedger} from "../../../contracts/PrepaidLedger.sol";
import {IMerchantCustody} from "../../../contracts/interfaces/IMerchantCustody.sol";
import {IPrepaidLedger} from "../../../contracts/interfaces/IPrepaidLedger.sol";
import {PrepaidTestToken} from "../../../contracts/test/PrepaidTestToken.sol";
import {Vm} from "./LedgerHandler.sol";

/// @notice Fuzz tests of custody's arithmetic with the ledger (`npx hardhat test solidity`):
/// the requirement is the least whole amount at or above ratio × liability, a batch books exactly
/// when custody covers the liability after it, and a withdrawal goes through exactly when it
/// leaves custody at or above the requirement. This contract is the admin, the regulator and
/// merchant 1's recorder. Inputs are bounded, not discarded.
contract CustodyFuzzTest {
    Vm internal constant VM = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint32 internal constant M = 1;
    bytes32 internal constant CARD = keccak256("custody fuzz card");
    uint256 internal constant MAX_AMOUNT = (1 << 40) - 1;

    PrepaidLedger internal ledger;
    PrepaidTestToken internal token;
    MerchantCustody internal custody;

    /// @dev The ledger comes from its artifact (getCode), as in Ledger.invariants.t.sol, to keep
    /// this contract's initcode under the limit.
    constructor() {
        bytes memory initcode = abi.encodePacked(
            VM.getCode("PrepaidLedger.sol:PrepaidLedger"), abi.encode(address(this), address(this), uint48(0), uint32(3600))
        );
        address created;
        assembly ("memory-safe") {
            created := create(0, add(initcode, 0x20), mload(initcode))
        }
        require(created != address(0), "ledger creation failed");
        ledger = PrepaidLedger(created);
        token = new PrepaidTestToken("Test fen", "tFEN");
        custody = new MerchantCustody(token, ledger, address(this), address(this), 0);
    }

    function setUp() public {
        ledger.registerMerchant(M, address(this));
        ledger.proposeCustody(address(custody));
        token.mint(address(this), type(uint128).max);
        token.approve(address(custody), type(uint256).max);
    }

    /// @notice required = ceil(ratio × liability / 10,000), for every liability a merchant can have.
    function testFuzz_requirementIsRatioTimesLiabilityRoundedUp(uint256 liability, uint256 ratio) public {
        liability %= 1 << 80;
        ratio %= 10_001;
        custody.setCoverageRatio(M, uint16(ratio));
        (uint256 required, uint256 held) = custody.coverage(M, liability);
        require(held == 0, "held");
        require(required * 10_000 >= ratio * liability, "below ratio x liability");
        require(required == 0 || (required - 1) * 10_000 < ratio * liability, "not the least such amount");
    }

    /// @notice A top-up books if and only if custody covers the liability after it; a refused one
    /// reverts with LedgerUndercovered and its values, and books nothing.
    function testFuzz_batchBooksExactlyWhenCovered(uint256 deposit, uint256 ratio, uint256 topUp) public {
        ratio %= 10_001;
        topUp = 1 + (topUp % MAX_AMOUNT);
        deposit %= MAX_AMOUNT;
        custody.setCoverageRatio(M, uint16(ratio));
        if (deposit > 0) custody.deposit(M, deposit);
        uint256 required = (ratio * topUp + 9_999) / 10_000;
        (bool ok, bytes memory ret) = _book(IPrepaidLedger.RecordKind.TopUp, topUp);
        if (deposit >= required) {
            require(ok, "a covered batch was refused");
            require(ledger.merchantBooks(M).liability == topUp, "liability");
        } else {
            require(!ok, "an under-covered batch booked");
            bytes memory expected =
                abi.encodeWithSelector(IPrepaidLedger.LedgerUndercovered.selector, M, topUp, required, deposit);
            require(keccak256(ret) == keccak256(expected), "wrong error or values");
            (uint64 count,) = ledger.chainHead();
            require(count == 0, "a refused batch changed the chain");
        }
    }

    /// @notice After a top-up and a consumption, a withdrawal goes through if and only if it is
    /// at most held - required; custody's token balance stays deposits - withdrawals.
    function testFuzz_withdrawOnlyAboveRequirement(
        uint256 ratio,
        uint256 topUp,
        uint256 extra,
        uint256 consume,
        uint256 amount
    ) public {
        ratio %= 10_001;
        topUp = 1 + (topUp % MAX_AMOUNT);
        uint256 deposit = (ratio * topUp + 9_999) / 10_000 + (extra % MAX_AMOUNT);
        consume %= topUp + 1;
        custody.setCoverageRatio(M, uint16(ratio));
        if (deposit > 0) custody.deposit(M, deposit);
        (bool booked,) = _book(IPrepaidLedger.RecordKind.TopUp, topUp);
        require(booked, "top-up");
        if (consume > 0) {
            (booked,) = _book(IPrepaidLedger.RecordKind.Consume, consume);
            require(booked, "consumption");
        }
        uint256 required = (ratio * (topUp - consume) + 9_999) / 10_000;
        require(custody.custodyOf(M).required == required, "required");
        amount %= deposit + 2;
        (bool ok, bytes memory ret) =
            address(custody).call(abi.encodeCall(IMerchantCustody.withdraw, (M, amount, address(0xBEEF))));
        if (amount == 0) {
            require(!ok && bytes4(ret) == IMerchantCustody.CustodyZeroAmount.selector, "zero amount");
        } else if (amount <= deposit - required) {
            require(ok, "a withdrawal above the requirement was refused");
            require(token.balanceOf(address(0xBEEF)) == amount, "paid");
        } else {
            bytes memory expected = abi.encodeWithSelector(
                IMerchantCustody.CustodyWithdrawalTooLarge.selector, M, amount, deposit, required
            );
            require(!ok && keccak256(ret) == keccak256(expected), "wrong error or values");
        }
        IMerchantCustody.Custody memory c = custody.custodyOf(M);
        require(c.held >= c.required, "custody below the requirement");
        require(
            token.balanceOf(address(custody)) == custody.totalDeposited() - custody.totalWithdrawn(), "fund invariant"
        );
    }

    /// @dev Books one record on the card as merchant 1's next batch; returns the call's outcome.
    function _book(IPrepaidLedger.RecordKind kind, uint256 amount) private returns (bool ok, bytes memory ret) {
        bytes memory records =
            abi.encodePacked(uint8(1), uint16(1), uint8(kind), uint48(amount), CARD, bytes32(uint256(1)), uint16(1), bytes1(0x02));
        uint64 sequence = ledger.merchantBooks(M).nextSequence;
        (ok, ret) = address(ledger).call(abi.encodeCall(IPrepaidLedger.recordBatch, (M, sequence, "", records)));
    }
}
