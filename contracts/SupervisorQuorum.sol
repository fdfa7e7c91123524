// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {SupervisorSets} from "./base/SupervisorSets.sol";
import {IPrepaidLedger} from "./interfaces/IPrepaidLedger.sol";
import {ISupervisorQuorum} from "./interfaces/ISupervisorQuorum.sol";

/// @title SupervisorQuorum
/// @notice Confirms one PrepaidLedger: a checkpoint over its records becomes final once enough
/// independent supervisors signed it, and a supervisor caught signing two different checkpoints
/// for the same record count is excluded from its set.
/// A member sending the finalizing transaction signs by sending it: its own unsigned place counts
/// (ISupervisorQuorum.finalizeRecords), one ecrecover and 44 bytes of calldata less per checkpoint.
/// @dev Signatures are EIP-712 (ISupervisorQuorum explains the domain and type), EIP-2098 compact
/// in a packed checkpoint (ISupervisorQuorum.finalizeRecords gives the layout), which nodes send as
/// the calldata after `finalizePacked_11yn`'s selector and older nodes ABI-wrapped to
/// `finalizeRecords`: both run `_finalize`, the packed entry after `_finalizeFast`, a one-pass
/// path for the common case that finalizes only what `_finalize` would and otherwise changes
/// nothing.
/// The ledger keeps only its current chain head, so a checkpoint's head is checked against that
/// head when the checkpoint is at the ledger's current record count (one transaction per
/// checkpoint), else against the head the ledger marked at its record count
/// (`IPrepaidLedger.markedHead`). A checkpoint reads and updates one storage word (`_state`,
/// SupervisorSets): the last final count, next to the current set's threshold and commitment.
/// The governor (default admin, two-step delayed handover) cannot confirm anything: it can only
/// propose a supervisor set, effective after SET_CHANGE_DELAY unless the current set cancels it
/// (SupervisorSets). Why the names: `finalizePacked_11yn`'s selector (0x000047c6) has two zero
/// bytes (8 gas of calldata instead of 32) and is the first the dispatcher compares;
/// `finalizeRecords`'s (0x07f6ee1f) was chosen so, about 650 gas less than 0xa0345fca.
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

    /// @dev The EIP-712 domain separator at deployment, with the chain id and address it holds
    /// for: the fast path uses it when both still hold (else the slow path asks OpenZeppelin's
    /// `_domainSeparatorV4`, which rebuilds it), as OpenZeppelin's own cache does.
    bytes32 private immutable _SEPARATOR;
    uint256 private immutable _SEPARATOR_CHAIN_ID;
    address private immutable _SEPARATOR_THIS;

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
    ) SupervisorSets(governor, ledger, supervisors_, threshold_, adminDelay, setChangeDelay) {
        _SEPARATOR = _domainSeparatorV4();
        _SEPARATOR_CHAIN_ID = block.chainid;
        _SEPARATOR_THIS = address(this);
    }

    /// @inheritdoc ISupervisorQuorum
    function finalizePacked_11yn() external {
        (uint256 given, uint256 list, uint256 senderBit) = _finalizeFast();
        // The packed checkpoint is the whole calldata after the selector (a match proves 4 bytes,
        // so no bounds check is needed).
        bytes calldata p;
        assembly ("memory-safe") {
            p.offset := 4
            p.length := sub(calldatasize(), 4)
        }
        _finalize(p, given, list, senderBit);
    }

    /// @inheritdoc ISupervisorQuorum
    function finalizeRecords(bytes calldata checkpoint) external {
        _finalize(checkpoint, 0, 0, 0);
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

    /// @dev Makes the packed checkpoint `p` final (ISupervisorQuorum.finalizeRecords gives the
    /// layout and the checks), or reverts changing nothing. Parsing, the ledger's static call and
    /// the signing list are assembly: beyond the fixed costs (ecrecovers, the ledger's and this
    /// contract's words, calldata, the event) they were most of what a checkpoint paid. The
    /// refusals stay in Solidity, with their values, in the order the interface lists them.
    /// A member sending the transaction signs by sending it: its place, left unsigned with its
    /// address listed, counts as signed (`builtSenderBit`, the fast path's finding, is its bit).
    function _finalize(bytes calldata p, uint256 built, uint256 builtList, uint256 builtSenderBit) private {
        uint256 state = _state;
        uint256 n;
        uint256 bitmap;
        uint256 k;
        uint64 count;
        uint64 booked;
        bytes32 head;
        bool malformed;
        uint64 last = uint64(state);
        address ledger = LEDGER;
        bytes4 selector = IPrepaidLedger.chainHead.selector;
        assembly ("memory-safe") {
            let o := p.offset
            // Past the end of `p` this reads the caller's other bytes or zeros: a checkpoint that
            // short fails the exact length check below whatever they are.
            n := byte(0, calldataload(add(o, 80)))
            // The bitmap's (n + 7) / 8 <= 32 bytes, big-endian, in the top of the word read (a
            // shift by 256 when n = 0 leaves 0).
            let w := shr(3, add(n, 7))
            bitmap := shr(sub(256, shl(3, w)), calldataload(add(o, _FIXED)))
            for { let b := bitmap } b { b := and(b, sub(b, 1)) } { k := add(k, 1) }
            // No set is empty; bits beyond n name no member (and would make k > n); the length
            // is exact. n <= 255 and k <= 256: no overflow.
            malformed := or(or(iszero(n), shr(n, bitmap)), iszero(eq(p.length, add(add(_FIXED, w), add(shl(6, k), mul(20, sub(n, k)))))))
            count := shr(192, calldataload(o))
            // The ledger's record count and head (IPrepaidLedger.chainHead, two words): a static
            // call written out, the ledger being this contract's own immutable. Made only for a
            // well-formed, newer checkpoint, so a refusal costs no call.
            if iszero(or(malformed, iszero(gt(count, last)))) {
                mstore(0x00, selector)
                if iszero(staticcall(gas(), ledger, 0x00, 0x04, 0x00, 0x40)) {
                    returndatacopy(0, 0, returndatasize())
                    revert(0, returndatasize())
                }
                booked := mload(0x00)
                head := mload(0x20)
            }
        }
        if (malformed) revert QuorumMalformedCheckpoint(p.length);
        if (count <= last) revert QuorumCheckpointNotNewer(count, last);
        if (count > booked) revert QuorumBeyondLedger(count, booked);
        // Behind the ledger's head: the head the ledger marked at that count (no mark, no check).
        if (count < booked) head = _markedHead(count);
        bytes32 claimed;
        assembly ("memory-safe") {
            claimed := calldataload(add(p.offset, 8))
        }
        if (claimed != head) revert QuorumHeadMismatch(count, claimed, head);
        // The fast path's list when it rebuilt one (every signature valid): only a set other than
        // the current one brings it here, and its ecrecovers are not paid twice.
        (uint256 given, uint256 list, uint256 senderBit) =
            builtList != 0 ? (built, builtList, builtSenderBit) : _signingList(p, n, bitmap, k);
        // The sender's own place (members are distinct: at most one), counted once.
        if (senderBit != 0) {
            bitmap |= senderBit;
            ++k;
        }
        uint64 set;
        assembly ("memory-safe") {
            set := shr(192, calldataload(add(p.offset, 72)))
        }
        // The current set's own list (the commitment binds the set id): no storage read.
        uint8 t = given == state >> _COMMITMENT_SHIFT
            ? uint8(state >> _THRESHOLD_SHIFT)
            : _signingThreshold(state, set, count, given, list, bitmap);
        if (k < t) revert QuorumBelowThreshold(k, t);
        // The same word, non-zero since the constructor: an update, not a fresh slot.
        _state = (state & ~_COUNT_MASK) | count;
        bytes32 stateDigest;
        assembly ("memory-safe") {
            stateDigest := calldataload(add(p.offset, 40))
        }
        emit CheckpointFinalized(count, head, stateDigest, set, bitmap);
    }

    /// @dev The common case of `finalizePacked_11yn` in one pass, the packed checkpoint at
    /// calldata offset 4 (so every field is at a constant offset): well-formed, at the ledger's
    /// current record count and head, every signature valid, the current set's list and at least
    /// its threshold of signers. It then updates `_state`, emits CheckpointFinalized and stops the
    /// call: nothing is left to do. In every other case it returns, having changed nothing, and
    /// `_finalize` checks everything again in order and reverts with the refusal and its values
    /// (or finalizes a checkpoint behind the ledger's head, or of a replaced set). So this path
    /// refuses nothing itself, and finalizes only what every check of `_finalize` lets through.
    /// When it rebuilt the signing list with every signature valid it returns the list's
    /// commitment and memory (else `list` = 0), and the bit of the caller's own unsigned place
    /// (`senderBit`, 0 for none): a replaced set's checkpoint does not pay its ecrecovers twice.
    function _finalizeFast() private returns (uint256 given, uint256 list, uint256 senderBit) {
        address ledger = LEDGER;
        bytes32 typehash = CHECKPOINT_TYPEHASH;
        bytes32 separator = _SEPARATOR;
        uint256 separatorChainId = _SEPARATOR_CHAIN_ID;
        address separatorThis = _SEPARATOR_THIS;
        bytes32 topic = CheckpointFinalized.selector;
        bytes4 chainHeadSelector = IPrepaidLedger.chainHead.selector;
        assembly ("memory-safe") {
            // Offsets in calldata: recordCount 4, chainHead 12, stateDigest 44, setId 76, n 84,
            // the bitmap from 85 (_FIXED + 4), its (n + 7) / 8 bytes big-endian (as in _finalize).
            let state := sload(_state.slot)
            let n := byte(0, calldataload(84))
            let first := add(85, shr(3, add(n, 7)))
            let bitmap := shr(sub(256, shl(3, sub(first, 85))), calldataload(85))
            // k, the signatures given, from the length: what is left after the bitmap and n
            // addresses is 44 bytes per signature (64 in place of 20). The walk below accepts
            // only if the bitmap has exactly k bits set (its pointers end where they must), so
            // the length is then exact, as _finalize requires.
            let rest := sub(calldatasize(), add(first, mul(20, n)))
            let k := div(rest, 44)
            let count := shr(192, calldataload(4))
            // n > 0, no bit at or beyond n, k <= n and a whole number of signatures (an underflow
            // of `rest` gives k > n), newer than the last final, and the cached domain separator
            // valid (same chain, same address).
            if and(
                and(
                    and(iszero(iszero(n)), iszero(shr(n, bitmap))),
                    and(iszero(gt(k, n)), eq(mul(k, 44), rest))
                ),
                and(
                    gt(count, and(state, 0xffffffffffffffff)),
                    and(eq(chainid(), separatorChainId), eq(address(), separatorThis))
                )
            ) {
                mstore(0x00, chainHeadSelector)
                if iszero(staticcall(gas(), ledger, 0x00, 0x04, 0x00, 0x40)) {
                    returndatacopy(0x00, 0x00, returndatasize())
                    revert(0x00, returndatasize())
                }
                // At the ledger's current record count and head (no mark needed). Memory from 0x80
                // on is free (nothing is allocated before this path): fixed addresses keep the
                // walk's stack small. 0x80: hashing, then the ecrecover input; the list from
                // 0x100; `state` kept at 0x20 (scratch) across the walk.
                if and(
                    and(eq(mload(0x00), count), eq(mload(0x20), calldataload(12))),
                    eq(mload(0x40), 0x80)
                ) {
                    mstore(0x20, state)
                    // structHash = keccak256(typehash | ledger | recordCount | chainHead | stateDigest | setId)
                    mstore(0x80, typehash)
                    mstore(0xa0, ledger)
                    mstore(0xc0, count)
                    calldatacopy(0xe0, 12, 0x40)
                    mstore(0x120, shr(192, calldataload(76)))
                    let structHash := keccak256(0x80, 0xc0)
                    // digest = keccak256(0x1901 | separator | structHash): the ecrecover input's first word.
                    mstore(0x80, hex"1901")
                    mstore(0x82, separator)
                    mstore(0xa2, structHash)
                    mstore(0x80, keccak256(0x80, 0x42))
                    // The list as _signingList rebuilds it (setId u64 | n u8 | n members of 20
                    // bytes, from 0x100), written from the last place down: a recovered address
                    // goes straight to its place, the precompile's 12 zero bytes landing on the
                    // place before, written next (for place 0, on setId | n, written after).
                    let at := add(0xf5, mul(20, n))
                    let sig := add(first, shl(6, sub(k, 1)))
                    let other := sub(calldatasize(), 20)
                    let bad := 0
                    // Place n - 1 in the top bit; the walk ends when only the sentinel, set just
                    // below place 0, has reached the top.
                    for { let b := or(shl(sub(256, n), bitmap), shl(sub(255, n), 1)) } iszero(eq(b, shl(255, 1))) {
                        b := shl(1, b)
                    } {
                        switch shr(255, b)
                        case 0 {
                            calldatacopy(at, other, 20)
                            // The sender's own place: its transaction is its signature. Place
                            // i starts at 0x109 + 20i.
                            if eq(shr(96, calldataload(other)), caller()) {
                                senderBit := shl(div(sub(at, 0x109), 20), 1)
                            }
                            other := sub(other, 20)
                        }
                        default {
                            let vs := calldataload(add(sig, 0x20))
                            let s := and(vs, _S_MASK)
                            mstore(0xa0, add(shr(255, vs), 27))
                            mstore(0xc0, calldataload(sig))
                            mstore(0xe0, s)
                            // A high s, or no address recovered (the precompile returns no
                            // data), is bad: _finalize then names the signature.
                            pop(staticcall(gas(), 1, 0x80, 0x80, sub(at, 12), 0x20))
                            bad := or(bad, or(gt(s, _HALF_ORDER), iszero(returndatasize())))
                            sig := sub(sig, 0x40)
                        }
                        at := sub(at, 20)
                    }
                    calldatacopy(0x100, 76, 9)
                    // Exactly k places signed: the signatures were used up, first one last.
                    bad := or(bad, iszero(eq(sig, sub(first, 0x40))))
                    given := shr(_COMMITMENT_SHIFT, keccak256(0x100, add(9, mul(20, n))))
                    switch bad
                    case 0 {
                        state := mload(0x20)
                        if and(
                            eq(given, shr(_COMMITMENT_SHIFT, state)),
                            iszero(lt(add(k, iszero(iszero(senderBit))), and(shr(_THRESHOLD_SHIFT, state), 0xff)))
                        ) {
                            count := shr(192, calldataload(4))
                            // The same word, non-zero since the constructor: an update.
                            sstore(_state.slot, or(and(state, not(0xffffffffffffffff)), count))
                            // CheckpointFinalized(recordCount, chainHead, stateDigest, setId, signers)
                            calldatacopy(0x80, 12, 0x40)
                            mstore(0xc0, or(bitmap, senderBit))
                            log3(0x80, 0x60, topic, count, shr(192, calldataload(76)))
                            stop()
                        }
                        // Kept for _finalize: a replaced set's list, or too few signers.
                        list := 0x100
                        mstore(0x40, add(0x100, add(41, mul(20, n))))
                    }
                    default { }
                }
            }
        }
    }

    /// @dev The head the ledger marked at `count`, which must exist: the checkpoint is behind the
    /// ledger's head, which the quorum can check only against a mark.
    function _markedHead(uint64 count) private view returns (bytes32 head) {
        head = IPrepaidLedger(LEDGER).markedHead(count);
        if (head == 0) revert QuorumUnmarkedCheckpoint(count);
    }

    /// @dev Rebuilds the signing list the packed checkpoint `p` claims (setId | n | member i: the
    /// signer recovered from the next signature where bit i of `bitmap` is set, else the next
    /// listed address; `k` signatures, the bits set in `bitmap`) and returns its commitment. Every signature must be valid (low s, a
    /// recoverable key) over the checkpoint's EIP-712 digest under this domain, with `ledger` =
    /// LEDGER. Whether the list is the set's is for the caller: a match proves at once that every
    /// signer is a member, at its own place (so distinct), and not an equivocator (whose place
    /// holds zero, which no signature recovers to). `list` points at the list in memory
    /// (allocated), for the caller to explain a mismatch. `senderBit` is the bit of the unsigned
    /// place whose listed address is `msg.sender` (0 if none): a member signs by sending the
    /// transaction, and the commitment check proves that place is its own.
    function _signingList(bytes calldata p, uint256 n, uint256 bitmap, uint256 k)
        private
        view
        returns (uint256 commitment, uint256 list, uint256 senderBit)
    {
        uint256 failedAt = type(uint256).max;
        bytes32 separator = _domainSeparatorV4();
        bytes32 typehash = CHECKPOINT_TYPEHASH;
        address ledger = LEDGER;
        assembly ("memory-safe") {
            let o := p.offset
            let scratch := mload(0x40)
            // structHash = keccak256(typehash | ledger | recordCount | chainHead | stateDigest | setId)
            mstore(scratch, typehash)
            mstore(add(scratch, 0x20), ledger)
            mstore(add(scratch, 0x40), shr(192, calldataload(o)))
            calldatacopy(add(scratch, 0x60), add(o, 8), 0x40)
            mstore(add(scratch, 0xa0), shr(192, calldataload(add(o, 72))))
            let structHash := keccak256(scratch, 0xc0)
            // digest = keccak256(0x1901 | separator | structHash), as OpenZeppelin's toTypedDataHash
            mstore(scratch, hex"1901")
            mstore(add(scratch, 0x02), separator)
            mstore(add(scratch, 0x22), structHash)
            let digest := keccak256(scratch, 0x42)
            // The ecrecover input's first word is the digest for every signature.
            mstore(scratch, digest)
            list := add(scratch, 0x80)
            // 9 + 20n bytes, and the last member's 32-byte write: n <= 255 keeps this small.
            mstore(0x40, add(list, add(41, mul(20, n))))
            // setId (8 bytes) and n (1 byte), as they lie in the checkpoint.
            calldatacopy(list, add(o, 72), 9)
            let first := add(o, add(_FIXED, shr(3, add(n, 7))))
            let sig := first
            // The other members' addresses follow the k signatures.
            let other := add(first, shl(6, k))
            let at := add(list, 9)
            let end := add(at, mul(20, n))
            for { let b := bitmap } lt(at, end) { at := add(at, 20) } {
                switch and(b, 1)
                case 0 {
                    // 32 bytes written: the address, then bytes the next member overwrites (or,
                    // after the last, bytes past the list that are allocated and not hashed).
                    mstore(at, calldataload(other))
                    // The sender's own place, unsigned: its transaction is its signature.
                    if eq(shr(96, calldataload(other)), caller()) {
                        senderBit := shl(div(sub(at, add(list, 9)), 20), 1)
                    }
                    other := add(other, 20)
                }
                default {
                    let vs := calldataload(add(sig, 0x20))
                    let s := and(vs, _S_MASK)
                    let member := 0
                    // Low s only (no malleable twin), as OpenZeppelin's ECDSA; ecrecover returns
                    // nothing for an invalid signature, so the zero left at 0x00 stands.
                    if iszero(gt(s, _HALF_ORDER)) {
                        mstore(add(scratch, 0x20), add(shr(255, vs), 27))
                        mstore(add(scratch, 0x40), calldataload(sig))
                        mstore(add(scratch, 0x60), s)
                        mstore(0x00, 0)
                        pop(staticcall(gas(), 1, scratch, 0x80, 0x00, 0x20))
                        member := mload(0x00)
                    }
                    if iszero(member) {
                        // The signature's index in the order given.
                        failedAt := shr(6, sub(sig, first))
                        break
                    }
                    // 32 bytes written, the next member's 20 overwrite the tail.
                    mstore(at, shl(96, member))
                    sig := add(sig, 0x40)
                }
                b := shr(1, b)
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
