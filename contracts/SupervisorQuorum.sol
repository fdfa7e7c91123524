// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {SupervisorSets} from "./base/SupervisorSets.sol";
import {IPrepaidLedger} from "./interfaces/IPrepaidLedger.sol";
import {ISupervisorQuorum} from "./interfaces/ISupervisorQuorum.sol";

/// @title SupervisorQuorum
/// @notice Confirms one PrepaidLedger: a checkpoint over its records becomes final once enough
/// independent supervisors signed it, and a supervisor caught signing two different checkpoints
/// for the same record count is excluded from its set.
/// @dev Signatures are EIP-712 (ISupervisorQuorum explains the domain and type), EIP-2098 compact
/// in `finalizeRecords`, which takes the checkpoint packed (ISupervisorQuorum gives the layout).
/// The ledger keeps only its current chain head, so a checkpoint's head is checked against that
/// head when the checkpoint is at the ledger's current record count (one transaction per
/// checkpoint), else against the head the ledger marked at its record count
/// (`IPrepaidLedger.markedHead`). A checkpoint reads and updates one storage word (`_state`,
/// SupervisorSets): the last final count, next to the current set's threshold and commitment.
/// The governor (default admin, two-step delayed handover) cannot confirm anything: it can only
/// propose a supervisor set, effective after SET_CHANGE_DELAY unless the current set cancels it
/// (SupervisorSets). Why `finalizeRecords` rather than `finalize`: its selector (0x07f6ee1f) is
/// among the first the dispatcher compares, about 650 gas less per checkpoint than 0xa0345fca.
contract SupervisorQuorum is SupervisorSets {
    /// @inheritdoc ISupervisorQuorum
    bytes32 public constant CHECKPOINT_TYPEHASH = keccak256(
        "Checkpoint(address ledger,uint64 recordCount,bytes32 chainHead,bytes32 stateDigest,uint64 setId)"
    );

    /// @dev secp256k1's order / 2: a larger s has a malleable twin (OpenZeppelin's ECDSA bound).
    uint256 private constant _HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    /// @dev The low 255 bits of an EIP-2098 `vs`: s.
    uint256 private constant _S_MASK = (1 << 255) - 1;
    /// @dev A packed checkpoint's fixed part: recordCount u64 | chainHead | stateDigest | setId
    /// u64 | n u8 (8 + 32 + 32 + 8 + 1 bytes); the bitmap follows.
    uint256 private constant _FIXED = 81;

    /// @param governor The default admin: proposes supervisor sets, effective after
    /// `setChangeDelay` unless the current set cancels; handed over in two steps after `adminDelay`.
    /// @param ledger The PrepaidLedger this quorum confirms.
    /// @param supervisors_ The first supervisor set (set id 1): 1 to 255 distinct, non-zero addresses.
    /// @param threshold_ How many of them must sign: 1 to `supervisors_.length`.
    /// @param adminDelay Seconds a governor handover (or renouncement) must wait.
    /// @param setChangeDelay Seconds a governor's proposal waits, and a replaced set's grace;
    /// at least MIN_SET_CHANGE_DELAY.
    constructor(
        address governor,
        address ledger,
        address[] memory supervisors_,
        uint8 threshold_,
        uint48 adminDelay,
        uint32 setChangeDelay
    ) SupervisorSets(governor, ledger, supervisors_, threshold_, adminDelay, setChangeDelay) {}

    /// @inheritdoc ISupervisorQuorum
    function finalizeRecords(bytes calldata checkpoint) external {
        (uint64 count, bytes32 head, uint64 set, uint256 n, uint256 bitmap, uint256 k) = _layout(checkpoint);
        uint256 state = _state;
        uint64 last = uint64(state);
        if (count <= last) revert QuorumCheckpointNotNewer(count, last);
        _checkHead(count, head);
        (uint256 given, uint256 list) = _signingList(checkpoint, _domainSeparatorV4(), n, bitmap);
        // The current set's own list (the commitment binds the set id): no storage read.
        uint8 t = given == state >> _COMMITMENT_SHIFT
            ? uint8(state >> _THRESHOLD_SHIFT)
            : _signingThreshold(state, set, count, given, list, bitmap);
        if (k < t) revert QuorumBelowThreshold(k, t);
        // The same word, non-zero since the constructor: an update, not a fresh slot.
        _state = (state & ~_COUNT_MASK) | count;
        bytes32 stateDigest;
        assembly ("memory-safe") {
            stateDigest := calldataload(add(checkpoint.offset, 40))
        }
        emit CheckpointFinalized(count, head, stateDigest, set, bitmap);
    }

    /// @inheritdoc ISupervisorQuorum
    function reportEquivocation(
        Checkpoint calldata a,
        bytes calldata signatureA,
        Checkpoint calldata b,
        bytes calldata signatureB
    ) external {
        if (a.ledger != LEDGER) revert QuorumWrongLedger(a.ledger, LEDGER);
        if (b.ledger != LEDGER) revert QuorumWrongLedger(b.ledger, LEDGER);
        if (a.recordCount != b.recordCount) revert QuorumRecordCountMismatch(a.recordCount, b.recordCount);
        if (a.setId != b.setId) revert QuorumSetMismatch(a.setId, b.setId);
        bytes32 digestA = _digest(a);
        bytes32 digestB = _digest(b);
        // Ledger, count and set are equal, so equal digests mean equal head and state digest.
        if (digestA == digestB) revert QuorumIdenticalCheckpoints(digestA);
        address signerA = _recover(digestA, signatureA, 0);
        address signerB = _recover(digestB, signatureB, 1);
        if (signerA != signerB) revert QuorumSignerMismatch(signerA, signerB);
        _recordEquivocation(a.setId, signerA);
        emit EquivocationRecorded(signerA, a.recordCount, a.setId, digestA, digestB);
    }

    /// @inheritdoc ISupervisorQuorum
    function checkpointDigest(Checkpoint calldata checkpoint) external view returns (bytes32) {
        return _digest(checkpoint);
    }

    /// @inheritdoc ISupervisorQuorum
    function lastFinal() external view returns (uint64 recordCount) {
        return uint64(_state);
    }

    /// @inheritdoc ISupervisorQuorum
    function isConfirmed(uint64 recordIndex) public view returns (bool) {
        return recordIndex != 0 && recordIndex <= uint64(_state);
    }

    /// @inheritdoc ISupervisorQuorum
    function status(uint64 recordIndex) external view returns (RecordStatus) {
        if (isConfirmed(recordIndex)) return RecordStatus.Confirmed;
        (uint64 booked,) = IPrepaidLedger(LEDGER).chainHead();
        if (recordIndex == 0 || recordIndex > booked) return RecordStatus.Unknown;
        return RecordStatus.Pending;
    }

    /// @dev Reads a packed checkpoint's fixed part (ISupervisorQuorum.finalizeRecords gives the layout)
    /// and checks that its length is exactly what its set size and bitmap call for; k is the
    /// number of signatures (bits set in the bitmap).
    function _layout(bytes calldata p)
        private
        pure
        returns (uint64 count, bytes32 head, uint64 set, uint256 n, uint256 bitmap, uint256 k)
    {
        bool malformed;
        assembly ("memory-safe") {
            let len := p.length
            if gt(len, 80) {
                n := byte(0, calldataload(add(p.offset, 80)))
            }
            // The bitmap's (n + 7) / 8 <= 32 bytes, big-endian, in the top of the word read (a
            // shift by 256 when n = 0 leaves 0).
            let w := shr(3, add(n, 7))
            bitmap := shr(sub(256, shl(3, w)), calldataload(add(p.offset, _FIXED)))
            for { let b := bitmap } b { b := and(b, sub(b, 1)) } { k := add(k, 1) }
            // No set is empty; bits beyond n name no member (and would make k > n); the length
            // is exact. n <= 255 and k <= 256: no overflow.
            malformed := or(or(iszero(n), shr(n, bitmap)), iszero(eq(len, add(add(_FIXED, w), add(shl(6, k), mul(20, sub(n, k)))))))
            count := shr(192, calldataload(p.offset))
            head := calldataload(add(p.offset, 8))
            set := shr(192, calldataload(add(p.offset, 72)))
        }
        if (malformed) revert QuorumMalformedCheckpoint(p.length);
    }

    /// @dev The checkpoint's head against the ledger's own: its current head when the count is
    /// its current count (no mark needed), else the head it marked at that count. A static call
    /// written out: the ledger is this contract's own immutable, and both views return words.
    function _checkHead(uint64 count, bytes32 claimed) private view {
        address ledger = LEDGER;
        bytes4 selector = IPrepaidLedger.chainHead.selector;
        uint64 booked;
        bytes32 head;
        assembly ("memory-safe") {
            mstore(0x00, selector)
            if iszero(staticcall(gas(), ledger, 0x00, 0x04, 0x00, 0x40)) {
                returndatacopy(0, 0, returndatasize())
                revert(0, returndatasize())
            }
            booked := mload(0x00)
            head := mload(0x20)
        }
        if (count > booked) revert QuorumBeyondLedger(count, booked);
        if (count < booked) {
            head = IPrepaidLedger(ledger).markedHead(count);
            if (head == 0) revert QuorumUnmarkedCheckpoint(count);
        }
        if (claimed != head) revert QuorumHeadMismatch(count, claimed, head);
    }

    /// @dev Rebuilds the signing list the packed checkpoint `p` claims (setId | n | member i: the
    /// signer recovered from the next signature where bit i of `bitmap` is set, else the next
    /// listed address) and returns its commitment. Every signature must be valid (low s, a
    /// recoverable key) over the checkpoint's EIP-712 digest under `separator` (this domain's),
    /// with `ledger` = LEDGER. Whether the list is the set's is for the caller: a match proves at
    /// once that every signer is a member, at its own place (so distinct), and not an equivocator
    /// (whose place holds zero, which no signature recovers to). In assembly because, beyond the
    /// ecrecovers, it is most of a checkpoint's execution. `list` points at the list in memory
    /// (allocated), for the caller to explain a mismatch.
    function _signingList(bytes calldata p, bytes32 separator, uint256 n, uint256 bitmap)
        private
        view
        returns (uint256 commitment, uint256 list)
    {
        uint256 failedAt = type(uint256).max;
        bytes32 typehash = CHECKPOINT_TYPEHASH;
        address ledger = LEDGER;
        assembly ("memory-safe") {
            let scratch := mload(0x40)
            // structHash = keccak256(typehash | ledger | recordCount | chainHead | stateDigest | setId)
            mstore(scratch, typehash)
            mstore(add(scratch, 0x20), ledger)
            mstore(add(scratch, 0x40), shr(192, calldataload(p.offset)))
            calldatacopy(add(scratch, 0x60), add(p.offset, 8), 0x40)
            mstore(add(scratch, 0xa0), shr(192, calldataload(add(p.offset, 72))))
            let structHash := keccak256(scratch, 0xc0)
            // digest = keccak256(0x1901 | separator | structHash), as OpenZeppelin's toTypedDataHash
            mstore(scratch, hex"1901")
            mstore(add(scratch, 0x02), separator)
            mstore(add(scratch, 0x22), structHash)
            let digest := keccak256(scratch, 0x42)
            list := add(scratch, 0x80)
            // 9 + 20n bytes, and the last member's 32-byte write: n <= 255 keeps this small.
            mstore(0x40, add(list, add(41, mul(20, n))))
            // setId (8 bytes) and n (1 byte), as they lie in the checkpoint.
            calldatacopy(list, add(p.offset, 72), 9)
            let sig := add(p.offset, add(_FIXED, shr(3, add(n, 7))))
            let other := sig
            for { let b := bitmap } b { b := and(b, sub(b, 1)) } { other := add(other, 0x40) }
            let j := 0
            let at := add(list, 9)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                let member := 0
                switch and(shr(i, bitmap), 1)
                case 0 {
                    member := shr(96, calldataload(other))
                    other := add(other, 20)
                }
                default {
                    let vs := calldataload(add(sig, 0x20))
                    let s := and(vs, _S_MASK)
                    // Low s only (no malleable twin), as OpenZeppelin's ECDSA; ecrecover returns
                    // nothing for an invalid signature, so the zero left at 0x00 stands.
                    if iszero(gt(s, _HALF_ORDER)) {
                        mstore(scratch, digest)
                        mstore(add(scratch, 0x20), add(shr(255, vs), 27))
                        mstore(add(scratch, 0x40), calldataload(sig))
                        mstore(add(scratch, 0x60), s)
                        mstore(0x00, 0)
                        pop(staticcall(gas(), 1, scratch, 0x80, 0x00, 0x20))
                        member := mload(0x00)
                    }
                    if iszero(member) {
                        failedAt := j
                        break
                    }
                    sig := add(sig, 0x40)
                    j := add(j, 1)
                }
                // 32 bytes written, the next member's 20 overwrite the tail.
                mstore(at, shl(96, member))
                at := add(at, 20)
            }
            commitment := shr(_COMMITMENT_SHIFT, keccak256(list, add(9, mul(20, n))))
        }
        if (failedAt != type(uint256).max) revert QuorumInvalidSignature(failedAt);
    }

    /// @dev The EIP-712 digest of a checkpoint under this contract's domain.
    function _digest(Checkpoint calldata c) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(CHECKPOINT_TYPEHASH, c.ledger, c.recordCount, c.chainHead, c.stateDigest, c.setId))
        );
    }
}
