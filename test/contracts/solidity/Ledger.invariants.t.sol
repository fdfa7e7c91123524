// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {PrepaidLedger} from "../../../contracts/PrepaidLedger.sol";
import {SupervisorQuorum} from "../../../contracts/SupervisorQuorum.sol";
import {IPrepaidLedger} from "../../../contracts/interfaces/IPrepaidLedger.sol";
import {LedgerHandler, Vm} from "./LedgerHandler.sol";

/// @notice Invariant tests of the ledger and its quorum, run by Hardhat's Solidity test runner
/// (`npx hardhat test solidity`): the fuzzer calls LedgerHandler's operations in random order
/// and checks every named invariant after each call. CI-sized depth inline; `npm run fuzz` runs
/// the mocha property tests deeper.
contract LedgerInvariantsTest {
    Vm internal constant VM = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    PrepaidLedger internal ledger;
    SupervisorQuorum internal quorum;
    LedgerHandler internal handler;

    /// @dev The contracts are created in the constructor, so no bytecode of theirs sits in this
    /// contract's runtime code (which the 24,576-byte limit concerns, and
    /// test/contracts/compiler.test.ts refuses any warning). The ledger is created from its
    /// artifact's bytecode (getCode; Hardhat has no deployCode), not with `new`: its initcode and
    /// the quorum's together would pass the 49,152-byte initcode limit here.
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
        handler = new LedgerHandler(ledger);
        quorum = handler.quorum();
    }

    function setUp() public {
        ledger.registerMerchant(1, address(handler));
        ledger.registerMerchant(2, address(handler));
    }

    /// @notice Only the handler is fuzzed.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @notice Every outcome (booked or refused, final or refused) was the one the model predicted.
    /// hardhat-config: invariant.runs = 24
    /// hardhat-config: invariant.depth = 40
    function invariant_modelPredictedEveryOutcome() public view {
        require(handler.surprises() == 0, "an outcome the model did not predict");
    }

    /// @notice Each card's books equal the model's, and balance = toppedUp - consumed - refunded.
    /// hardhat-config: invariant.runs = 24
    /// hardhat-config: invariant.depth = 40
    function invariant_booksEqualModel() public view {
        for (uint32 m = 1; m <= 2; ++m) {
            for (uint256 c; c < 4; ++c) {
                IPrepaidLedger.AccountBooks memory b = ledger.accountBooks(m, handler.cardId(c));
                (uint256 toppedUp, uint256 consumed, uint256 refunded, uint256 initialAmount, uint256 count) =
                    handler.ghost(m, c);
                require(b.toppedUp == toppedUp && b.consumed == consumed && b.refunded == refunded, "card totals");
                require(b.initialAmount == initialAmount && b.recordCount == count, "card counters");
                require(b.balance == toppedUp - consumed - refunded, "card balance");
                require(b.merchantId == (toppedUp == 0 ? 0 : m), "card merchant");
            }
        }
    }

    /// @notice A merchant's totals and liability are the sums over its cards.
    /// hardhat-config: invariant.runs = 24
    /// hardhat-config: invariant.depth = 40
    function invariant_merchantTotalsAreSumsOfCards() public view {
        for (uint32 m = 1; m <= 2; ++m) {
            IPrepaidLedger.MerchantBooks memory mb = ledger.merchantBooks(m);
            uint256 t;
            uint256 c;
            uint256 r;
            uint256 open;
            uint256 records;
            for (uint256 i; i < 4; ++i) {
                IPrepaidLedger.AccountBooks memory b = ledger.accountBooks(m, handler.cardId(i));
                t += b.toppedUp;
                c += b.consumed;
                r += b.refunded;
                records += b.recordCount;
                if (b.merchantId != 0) ++open;
            }
            require(mb.toppedUp == t && mb.consumed == c && mb.refunded == r, "merchant totals");
            require(mb.liability == t - c - r, "liability");
            require(mb.accountCount == open && mb.recordCount == records, "merchant counters");
        }
    }

    /// @notice The ledger's hash chain equals the one recomputed from the batches and records sent
    /// (chain version 2: each batch's link, then its records').
    /// hardhat-config: invariant.runs = 24
    /// hardhat-config: invariant.depth = 40
    function invariant_hashChainRecomputed() public view {
        (uint64 count, bytes32 head) = ledger.chainHead();
        require(count == handler.ghostCount() && head == handler.ghostHead(), "chain head");
    }

    /// @notice Whatever is final is the ledger's head at its count (marked, or the head then
    /// current: the ghost chain recomputes it) with the honest digest: the governor alone never
    /// made an invented digest final (it could only after its set waited out the delay).
    /// hardhat-config: invariant.runs = 24
    /// hardhat-config: invariant.depth = 40
    function invariant_finalOnlyByTheSupervisors() public view {
        uint64 count = quorum.lastFinal();
        (uint64 booked,) = ledger.chainHead();
        require(count <= booked, "final beyond the ledger");
        if (count == 0) return;
        (bytes32 head, bytes32 digest) = (handler.finalHead(), handler.finalDigest());
        require(head == handler.ghostHeadAt(count), "final head not the ledger's at its count");
        require(handler.governorSetInstalled() || digest == handler.honestDigest(count), "invented digest final");
        require(quorum.isConfirmed(count) && !quorum.isConfirmed(count + 1), "isConfirmed");
    }

    /// @notice The handler's operations do reach bookings, refusals, finality and a governor
    /// set change, so the invariants above are checked on states that matter.
    function test_handlerReachesEveryPath() public {
        handler.book(0, 0, 0, 5, 0); // top-up of card 0, empty envelope
        handler.book(0, 0, 1, 3, 1); // consumption, with an envelope
        handler.book(0, 1, 1, 3, 0); // consumption of an unopened card: refused, as predicted
        handler.book(1, 2, 0, 0, 3); // merchant 2, the largest top-up
        handler.mark();
        handler.finalize(1); // one signature: refused
        handler.finalize(7); // three: final
        handler.book(0, 0, 0, 5, 0); // a fourth record, not marked
        handler.finalize(7 | 256); // three, over the current head: final, with no mark
        handler.governorForges(0); // refused
        handler.governorProposes();
        handler.supervisorsCancel(15); // cancelled
        handler.executeAfter(7200); // nothing pending: refused
        handler.governorProposes();
        handler.executeAfter(3599); // not yet due
        handler.executeAfter(3600); // now due
        require(handler.governorSetInstalled(), "governor set after the delay");
        require(handler.ghostCount() == 4, "four records booked");
        uint64 final_ = quorum.lastFinal();
        require(final_ == 4, "final at 4");
        require(handler.surprises() == 0, "no surprise");
        invariant_booksEqualModel();
        invariant_merchantTotalsAreSumsOfCards();
        invariant_hashChainRecomputed();
        invariant_finalOnlyByTheSupervisors();
    }
}
