// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {CustodyLink} from "./base/CustodyLink.sol";
import {MerchantRegistry} from "./base/MerchantRegistry.sol";
import {IMerchantCustody} from "./interfaces/IMerchantCustody.sol";
import {IPrepaidLedger} from "./interfaces/IPrepaidLedger.sol";
import {PackedAccount} from "./libraries/PackedAccount.sol";

/// @title PrepaidLedger
/// @notice Keeps the books of every prepaid card of every supervised merchant, and a hash chain
/// over every record, from batches of encrypted records uploaded by the merchants' systems.
/// @dev The details of a record travel only in calldata and events (`Recorded`): storage holds
/// one word per account, two per merchant and the chain head, because a stored byte costs about
/// twenty times a logged one. Formats: docs/FORMAT.md. With a custody contract attached
/// (CustodyLink, docs/CUSTODY.md), a batch that raises a merchant's liability is checked once,
/// at its end, against what the merchant holds in custody.
contract PrepaidLedger is CustodyLink, Pausable {
    using PackedAccount for uint256;

    /// @notice The packed-records version this contract reads (docs/FORMAT.md 5).
    uint8 public constant BATCH_VERSION = 1;

    /// @inheritdoc IPrepaidLedger
    uint8 public constant CHAIN_VERSION = 2;

    /// @dev kind u8 + amount u48 + account b32 + commitment b32 + ciphertextLength u16.
    uint256 private constant _RECORD_HEAD = 73;
    /// @dev version u8 + count u16.
    uint256 private constant _BATCH_HEAD = 3;

    /// @dev Recorded.selector (the event's topic 0) as a literal, for the hand-written log in
    /// _bookAll; the constructor checks the two agree.
    uint256 private constant _RECORDED_TOPIC = 0xf224eeb88d3d92740fd18c6f84a660cb680dbe9e1f177842394edd65ea7ca6d5;

    /// @dev The batch link's tag (docs/FORMAT.md 7): sits where a record link has its index, so
    /// no batch link reads as a record link.
    bytes32 private constant _BATCH_TAG = keccak256("prepaid-ledger.batch.v2");

    /// @dev The settlement link's tag (docs/FORMAT.md 7.3), in the same place as the batch tag.
    bytes32 private constant _SETTLEMENT_TAG = keccak256("prepaid-ledger.settlement.v2");

    /// @dev PackedAccount's bits 0-215 (all but the cooling-off run): what a top-up keeps of the
    /// word when its run restarts.
    uint256 private constant _BELOW_RUN = 0x0000000000ffffffffffffffffffffffffffffffffffffffffffffffffffffff;

    bytes32 private immutable GENESIS_HEAD;

    /// @dev A batch's running state, shared by the booking loop and recordBatch.
    struct Batch {
        uint32 merchantId;
        /// @dev The storage slot of _accounts[merchantId], hashed once per batch.
        bytes32 accounts;
        uint64 index;
        bytes32 head;
        uint256 offset;
        uint256 opened;
        uint256 toppedUp;
        uint256 consumed;
        uint256 refunded;
        /// @dev The merchant's card cap (0: none), read once per batch.
        uint256 cap;
        /// @dev The merchant's cooling-off period in seconds (0: none), from the same word.
        uint256 coolingOff;
    }

    /// @dev Accounts are keyed by merchant first: a card id is only ever one merchant's, so no
    /// merchant can open (squat) a card id another merchant is about to use and make its
    /// batches revert.
    mapping(uint32 merchantId => mapping(bytes32 account => uint256 packed)) private _accounts;
    bytes32 private _head;
    uint64 private _recordCount;
    /// @dev The attached custody contract (CustodyLink), in the slot of _recordCount, which every
    /// batch reads anyway: reading it costs a batch no cold slot.
    address private _custody;
    /// @dev Chain heads kept for checkpoints, by record count: one slot per mark, written only by
    /// markCheckpoint, so recordBatch's per-record cost does not move.
    mapping(uint64 recordCount => bytes32 head) private _marks;

    /// @param admin The default admin: manages regulators, pauses; handed over in two steps
    /// (beginDefaultAdminTransfer, acceptDefaultAdminTransfer) after `adminDelay`.
    /// @param regulator The first regulator: registers and supervises merchants.
    /// @param adminDelay Seconds a default-admin handover (or renouncement) must wait.
    /// @param recorderDelay Seconds after which a recorder offer nobody rejected may be carried
    /// out without the merchant; at least MIN_RECORDER_DELAY.
    constructor(address admin, address regulator, uint48 adminDelay, uint32 recorderDelay)
        MerchantRegistry(admin, regulator, adminDelay, recorderDelay)
    {
        assert(bytes32(_RECORDED_TOPIC) == Recorded.selector);
        bytes32 genesis = keccak256(abi.encode(keccak256("prepaid-ledger.chain.v2"), block.chainid, address(this)));
        GENESIS_HEAD = genesis;
        _head = genesis;
    }

    /// @inheritdoc IPrepaidLedger
    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pause();
    }

    /// @inheritdoc IPrepaidLedger
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    /// @notice Gives up one's own role, as MerchantRegistry allows, except that the default
    /// admin may not renounce while the ledger is paused (LedgerRenounceWhilePaused): a paused
    /// ledger always keeps an admin who can unpause it.
    /// @param role REGULATOR_ROLE or DEFAULT_ADMIN_ROLE.
    /// @param account The caller's own address.
    function renounceRole(bytes32 role, address account) public override {
        if (role == DEFAULT_ADMIN_ROLE && paused()) revert LedgerRenounceWhilePaused();
        super.renounceRole(role, account);
    }

    /// @inheritdoc IPrepaidLedger
    function recordBatch(uint32 merchantId, uint64 sequence, bytes calldata envelope, bytes calldata records)
        external
        whenNotPaused
        returns (uint64 firstRecordIndex, uint16 count)
    {
        Merchant storage m = _merchant(merchantId);
        MerchantStatus status = m.status;
        _checkUpload(merchantId, status, sequence, m.nextSequence);
        count = _batchCount(records);

        bytes32 accounts;
        assembly ("memory-safe") {
            mstore(0x00, merchantId)
            mstore(0x20, _accounts.slot)
            accounts := keccak256(0x00, 0x40)
        }
        Batch memory b = Batch({
            merchantId: merchantId,
            accounts: accounts,
            index: _recordCount,
            head: _batchLink(merchantId, sequence, envelope, count),
            offset: _BATCH_HEAD,
            opened: 0,
            toppedUp: 0,
            consumed: 0,
            refunded: 0,
            cap: m.cardCap,
            coolingOff: uint256(m.coolingOffDays) * 1 days
        });
        firstRecordIndex = b.index + 1;
        if (!_bookAll(b, records, count)) _explainFailure(merchantId, records, b.offset, b.cap, b.coolingOff);
        if (b.offset != records.length) revert LedgerMalformedBatch(b.offset, records.length);
        // Amounts are at least 1, so non-zero sums mean a top-up or a consumption was booked.
        if (status == MerchantStatus.WindingDown && (b.toppedUp | b.consumed) != 0) _explainRefundsOnly(merchantId, records);

        _head = b.head;
        _recordCount = b.index;
        uint256 accountCount = m.accountCount + b.opened;
        if (accountCount > type(uint32).max) revert LedgerMerchantOverflow(merchantId, accountCount);
        m.nextSequence = sequence + 1;
        m.recordCount += count;
        m.accountCount = uint32(accountCount);
        // A batch's sums are below 2^64 (_bookAll), so the casts keep them whole. With at most
        // 2^32 - 1 accounts of at most 2^40 - 1 top-ups each, toppedUp stays below 2^72 in its
        // 88 bits, and consumed and refunded (each at most toppedUp) too: the checked additions
        // below cannot revert (MerchantRegistry.Merchant).
        m.toppedUp += uint88(b.toppedUp);
        m.consumed += uint88(b.consumed);
        m.refunded += uint88(b.refunded);
        // Only a batch that raises the liability can leave it less covered than before; one
        // that lowers it (consumption, refunds) always books, so an under-covered merchant still
        // serves and pays back its card holders.
        if (b.toppedUp > b.consumed + b.refunded) {
            address custodyContract = _custody;
            if (custodyContract != address(0)) _checkCoverage(custodyContract, merchantId, m);
        }
        emit BatchRecorded(merchantId, sequence, msg.sender, firstRecordIndex, count, b.head, envelope);
    }

    /// @inheritdoc IPrepaidLedger
    function settle(uint32 merchantId, bytes32 account, address holder, SettlementReason reason, uint256 amount)
        external
        whenNotPaused
        returns (uint64 recordIndex)
    {
        address custodyContract = _custody;
        if (msg.sender != custodyContract || custodyContract == address(0)) {
            revert LedgerNotCustody(msg.sender, custodyContract);
        }
        if (reason != SettlementReason.Claim && reason != SettlementReason.CoolingOff) {
            revert LedgerInvalidSettlement(uint8(reason));
        }
        Merchant storage m = _registered(merchantId);
        // book() refuses an unopened card, a zero amount and more than the balance (which is
        // below 2^40), so the casts below keep `amount` whole. A cooling-off return also leaves
        // the card's cooling-off run, so the same money cannot be returned twice.
        uint256 packed = _accounts[merchantId][account];
        _accounts[merchantId][account] = reason == SettlementReason.CoolingOff
            ? packed.bookCoolingOffReturn(account, amount)
            : packed.book(0, 0, account, uint256(RecordKind.Refund), amount);
        recordIndex = _recordCount + 1;
        bytes32 head = keccak256(
            abi.encodePacked(_head, _SETTLEMENT_TAG, recordIndex, merchantId, account, holder, uint8(reason), uint48(amount))
        );
        _head = head;
        _recordCount = recordIndex;
        m.recordCount += 1;
        m.refunded += uint88(amount);
        emit Settled(merchantId, account, holder, recordIndex, reason, uint48(amount), head);
    }

    /// @inheritdoc IPrepaidLedger
    function markCheckpoint() external returns (uint64 recordCount, bytes32 head) {
        recordCount = _recordCount;
        if (recordCount == 0) revert LedgerNothingToMark();
        head = _head;
        // Heads never change once booked, so a stored mark already equals `head`.
        if (_marks[recordCount] != 0) return (recordCount, head);
        _marks[recordCount] = head;
        emit CheckpointMarked(recordCount, head);
    }

    /// @inheritdoc IPrepaidLedger
    function accountBooks(uint32 merchantId, bytes32 account) external view returns (AccountBooks memory books) {
        uint256 packed = _accounts[merchantId][account];
        books = AccountBooks({
            merchantId: packed == 0 ? 0 : merchantId,
            recordCount: packed.recordCount(),
            initialAmount: packed.initialAmount(),
            toppedUp: packed.toppedUp(),
            consumed: packed.consumed(),
            refunded: packed.refunded(),
            balance: packed.balance(),
            lastTopUpAt: packed.lastTopUpAt(),
            coolingOffTopUps: packed.coolingOffTopUps()
        });
    }

    /// @inheritdoc IPrepaidLedger
    function balanceOf(uint32 merchantId, bytes32 account) external view returns (uint256 balance) {
        balance = _accounts[merchantId][account].balance();
    }

    /// @inheritdoc IPrepaidLedger
    function merchantBooks(uint32 merchantId) external view returns (MerchantBooks memory books) {
        Merchant storage m = _merchant(merchantId);
        books = MerchantBooks({
            status: m.status,
            nextSequence: m.nextSequence,
            recordCount: m.recordCount,
            accountCount: m.accountCount,
            toppedUp: m.toppedUp,
            consumed: m.consumed,
            refunded: m.refunded,
            liability: uint256(m.toppedUp) - m.consumed - m.refunded
        });
    }

    /// @inheritdoc IPrepaidLedger
    function chainHead() external view returns (uint64 recordCount, bytes32 head) {
        return (_recordCount, _head);
    }

    /// @inheritdoc IPrepaidLedger
    function markedHead(uint64 recordCount) external view returns (bytes32) {
        return _marks[recordCount];
    }

    /// @inheritdoc IPrepaidLedger
    function genesisHead() external view returns (bytes32) {
        return GENESIS_HEAD;
    }

    /// @inheritdoc CustodyLink
    function _custodyAddress() internal view override returns (address) {
        return _custody;
    }

    /// @inheritdoc CustodyLink
    function _setCustody(address next) internal override {
        _custody = next;
    }

    /// @dev The one call to custody per batch: reverts unless it holds what the merchant's
    /// liability after the batch requires.
    function _checkCoverage(address custodyContract, uint32 merchantId, Merchant storage m) private view {
        uint256 liability = uint256(m.toppedUp) - m.consumed - m.refunded;
        (uint256 required, uint256 held) = IMerchantCustody(custodyContract).coverage(merchantId, liability);
        if (held < required) revert LedgerUndercovered(merchantId, liability, required, held);
    }

    /// @dev Who may upload, and whether this batch is the merchant's next one. A winding-down
    /// merchant passes here; recordBatch refuses its batch after booking if it holds anything
    /// but refunds.
    function _checkUpload(uint32 merchantId, MerchantStatus status, uint64 sequence, uint64 expected) private view {
        if (status != MerchantStatus.Active && status != MerchantStatus.WindingDown) {
            if (status == MerchantStatus.None) revert LedgerUnknownMerchant(merchantId);
            if (status == MerchantStatus.Closed) revert LedgerMerchantClosed(merchantId);
            revert LedgerMerchantSuspended(merchantId);
        }
        if (!hasRole(recorderRole(merchantId), msg.sender)) revert LedgerUnauthorizedRecorder(msg.sender, merchantId);
        if (sequence != expected) {
            if (sequence < expected) revert LedgerBatchReplayed(merchantId, sequence, expected);
            revert LedgerSequenceGap(merchantId, sequence, expected);
        }
    }

    /// @dev The chain's batch link, folded in before the batch's records (docs/FORMAT.md 7):
    /// keccak256(head | tag | merchantId u32 | sequence u64 | recorder | keccak256(envelope) | count u16).
    /// Once per batch, so the per-record cost does not move.
    function _batchLink(uint32 merchantId, uint64 sequence, bytes calldata envelope, uint16 count)
        private
        view
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(_head, _BATCH_TAG, merchantId, sequence, msg.sender, keccak256(envelope), count));
    }

    /// @dev Reads and checks the batch header; returns the record count.
    function _batchCount(bytes calldata records) private pure returns (uint16 count) {
        if (records.length < _BATCH_HEAD) revert LedgerMalformedBatch(0, records.length);
        uint8 version = uint8(records[0]);
        if (version != BATCH_VERSION) revert LedgerUnsupportedVersion(version);
        count = uint16(bytes2(records[1:3]));
        if (count == 0) revert LedgerEmptyBatch();
    }

    /// @dev Books `count` records: for each, its one state change (the account's packed books,
    /// with the same rules as PackedAccount.book), its chain link and its `Recorded` event.
    /// This loop runs once per record, so it is hand-written: Solidity's checked arithmetic and
    /// ABI encoder would spend more gas than the record's own bytes cost. On the first record
    /// that breaks a rule it stops and returns false with `b.offset` at that record, and the
    /// caller replays that record through the checked Solidity path to revert with the reason.
    function _bookAll(Batch memory b, bytes calldata records, uint256 count) private returns (bool ok) {
        assembly ("memory-safe") {
            let merchantId := mload(b)
            let accounts := mload(add(b, 0x20))
            let index := mload(add(b, 0x40))
            let head := mload(add(b, 0x60))
            let offset := mload(add(b, 0x80))
            // Sums of the batch, one word: toppedUp | consumed << 64 | refunded << 128 | opened << 192.
            let sums := 0
            let coolingOff := mload(add(b, 0x140))
            // Scratch memory past the free-memory pointer; nothing in this block allocates.
            let ptr := mload(0x40)
            ok := 1
            for { let last := add(index, count) } lt(index, last) {} {
                // kind u8 | amount u48 | account b32 | commitment b32 | length u16 | ciphertext
                let p := add(records.offset, offset)
                let word := calldataload(p)
                let account := calldataload(add(p, 7))
                let length := shr(240, calldataload(add(p, 71)))
                let next := add(add(offset, 73), length)
                let amount := and(shr(200, word), 0xffffffffffff)
                // `next` is past the end if the record's head or its ciphertext is cut short.
                if or(or(gt(next, records.length), iszero(amount)), or(iszero(calldataload(add(p, 39))), iszero(length))) {
                    ok := 0
                    break
                }

                // The account's books, _accounts[merchantId][account], laid out as in PackedAccount.
                mstore(0x00, account)
                mstore(0x20, accounts)
                let slot := keccak256(0x00, 0x40)
                let packed := sload(slot)
                let kind := shr(248, word)
                if iszero(packed) {
                    // A new account: only a top-up opens it.
                    if iszero(eq(kind, 1)) {
                        ok := 0
                        break
                    }
                    packed := or(timestamp(), shl(56, amount))
                    sums := add(sums, shl(192, 1))
                }
                // kind - 1 wraps for 0, so this admits kinds 1-3 only.
                if or(gt(sub(kind, 1), 2), eq(and(shr(32, packed), 0xffffff), 0xffffff)) {
                    ok := 0
                    break
                }
                let topped := and(shr(96, packed), 0xffffffffff)
                switch kind
                case 1 {
                    let total := add(topped, amount)
                    if gt(total, 0xffffffffff) {
                        ok := 0
                        break
                    }
                    // The card cap (0: none) binds the balance the top-up leaves.
                    let cap := mload(add(b, 0x120))
                    if cap {
                        let spent := add(and(shr(136, packed), 0xffffffffff), and(shr(176, packed), 0xffffffffff))
                        if gt(sub(total, spent), cap) {
                            ok := 0
                            break
                        }
                    }
                    // The cooling-off run (top 40 bits) restarts unless this top-up comes within
                    // the period after the previous one; then the top-up joins it and
                    // lastTopUpAt (low 32 bits) becomes now. The run is a part of toppedUp, so
                    // it stays below 2^40 and adding to it carries nothing out of the word.
                    let previous := and(packed, 0xffffffff)
                    if gt(timestamp(), add(previous, coolingOff)) { packed := and(packed, _BELOW_RUN) }
                    packed := add(sub(packed, previous), add(timestamp(), shl(216, amount)))
                }
                default {
                    // balance = toppedUp - consumed - refunded, never negative.
                    let spent := add(and(shr(136, packed), 0xffffffffff), and(shr(176, packed), 0xffffffffff))
                    if gt(amount, sub(topped, spent)) {
                        ok := 0
                        break
                    }
                }
                // Raise the kind's total (bit 56 + 40 × kind) and the record count (bit 32).
                sstore(slot, add(add(packed, shl(add(56, mul(40, kind)), amount)), 0x100000000))
                sums := add(sums, shl(mul(64, sub(kind, 1)), amount))

                // head_n = keccak256(head_{n-1} | n u64 | merchantId u32 | record)
                index := add(index, 1)
                mstore(ptr, head)
                mstore(add(ptr, 32), or(shl(192, index), shl(160, merchantId)))
                calldatacopy(add(ptr, 44), p, add(73, length))
                head := keccak256(ptr, add(117, length))

                // Recorded(account, merchantId, commitment); data = recordIndex u64 | kind u8 |
                // amount u48 | ciphertext, packed (docs/FORMAT.md 6).
                mstore(ptr, shl(136, or(shl(56, index), shr(200, word))))
                calldatacopy(add(ptr, 15), add(p, 73), length)
                log4(ptr, add(15, length), _RECORDED_TOPIC, account, merchantId, calldataload(add(p, 39)))
                offset := next
            }
            // Each sum is < 2^16 records × 2^48 < 2^64, so no field spills into the next.
            mstore(add(b, 0x40), index)
            mstore(add(b, 0x60), head)
            mstore(add(b, 0x80), offset)
            mstore(add(b, 0xa0), shr(192, sums))
            mstore(add(b, 0xc0), and(sums, 0xffffffffffffffff))
            mstore(add(b, 0xe0), and(shr(64, sums), 0xffffffffffffffff))
            mstore(add(b, 0x100), and(shr(128, sums), 0xffffffffffffffff))
        }
    }

    /// @dev Finds the batch's first record that is not a refund and reverts with it. Called only
    /// when the batch's sums show one, so it never returns; it runs only on that failure path,
    /// so an active merchant's batches pay nothing for it.
    function _explainRefundsOnly(uint32 merchantId, bytes calldata records) private pure {
        uint256 offset = _BATCH_HEAD;
        // Every record parsed in _bookAll, so each head and ciphertext lies within `records`.
        while (true) {
            bytes calldata r = records[offset:];
            uint8 kind = uint8(r[0]);
            if (kind != uint8(RecordKind.Refund)) revert LedgerRefundsOnly(merchantId, bytes32(r[7:39]), kind);
            offset += _RECORD_HEAD + uint16(bytes2(r[71:73]));
        }
    }

    /// @dev Replays the record at `offset` through the checked path, which reverts with the
    /// rule it breaks. Called only after `_bookAll` stopped there, so it never returns.
    function _explainFailure(uint32 merchantId, bytes calldata records, uint256 offset, uint256 cap, uint256 coolingOff)
        private
        view
    {
        uint256 end = records.length;
        if (offset + _RECORD_HEAD > end) revert LedgerMalformedBatch(offset, end);
        bytes calldata r = records[offset:];
        uint256 kind = uint8(r[0]);
        uint256 amount = uint48(bytes6(r[1:7]));
        bytes32 account = bytes32(r[7:39]);
        bytes32 commitment = bytes32(r[39:71]);
        uint256 cipherLength = uint16(bytes2(r[71:73]));
        if (offset + _RECORD_HEAD + cipherLength > end) revert LedgerMalformedBatch(offset, end);
        if (amount == 0) revert LedgerZeroAmount(account);
        if (commitment == 0 || cipherLength == 0) revert LedgerMissingCommitment(account);
        uint256 updated = _accounts[merchantId][account].book(uint32(block.timestamp), coolingOff, account, kind, amount);
        if (kind == uint256(RecordKind.TopUp) && cap != 0 && updated.balance() > cap) {
            revert LedgerCardCapExceeded(merchantId, account, updated.balance(), cap);
        }
        // book() admitted what the fast path refused: the two disagree, which must never happen.
        assert(false);
    }
}
