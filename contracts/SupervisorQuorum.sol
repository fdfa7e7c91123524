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
/// in `finalize`. The ledger keeps only its current chain head, so a checkpoint's head is checked
/// against that head when the checkpoint is at the ledger's current record count (one
/// transaction per checkpoint), else against the head the ledger marked at its record count
/// (`IPrepaidLedger.markedHead`). A checkpoint reads and updates one storage word (`_state`,
/// SupervisorSets): the last final count, next to the current set's threshold and commitment. The governor (default
/// admin, two-step delayed handover) cannot confirm anything: it can only propose a supervisor
/// set, effective after SET_CHANGE_DELAY unless the current set cancels it (SupervisorSets).
contract SupervisorQuorum is SupervisorSets {
    /// @inheritdoc ISupervisorQuorum
    bytes32 public constant CHECKPOINT_TYPEHASH = keccak256(
        "Checkpoint(address ledger,uint64 recordCount,bytes32 chainHead,bytes32 stateDigest,uint64 setId)"
    );

    /// @dev secp256k1's order / 2: a larger s has a malleable twin (OpenZeppelin's ECDSA bound).
    uint256 private constant _HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    /// @dev The low 255 bits of an EIP-2098 `vs`: s.
    uint256 private constant _S_MASK = (1 << 255) - 1;

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
    function finalize(
        Checkpoint calldata checkpoint,
        address[] calldata members,
        CompactSignature[] calldata signatures
    ) external {
        if (checkpoint.ledger != LEDGER) revert QuorumWrongLedger(checkpoint.ledger, LEDGER);
        uint256 state = _state;
        uint64 count = checkpoint.recordCount;
        uint64 last = uint64(state);
        if (count <= last) revert QuorumCheckpointNotNewer(count, last);
        uint64 set = checkpoint.setId;
        uint8 t = _signingThreshold(state, set, count, members);
        _checkHead(count, checkpoint.chainHead);
        uint256 signers = _checkCompactSigners(set, t, _digest(checkpoint), members, signatures);
        // The same word, non-zero since the constructor: an update, not a fresh slot.
        _state = (state & ~_COUNT_MASK) | count;
        emit CheckpointFinalized(count, checkpoint.chainHead, checkpoint.stateDigest, set, signers);
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

    /// @dev The checkpoint's head against the ledger's own: its current head when the count is
    /// its current count (no mark needed), else the head it marked at that count.
    function _checkHead(uint64 count, bytes32 claimed) private view {
        (uint64 booked, bytes32 head) = IPrepaidLedger(LEDGER).chainHead();
        if (count > booked) revert QuorumBeyondLedger(count, booked);
        if (count < booked) {
            head = IPrepaidLedger(LEDGER).markedHead(count);
            if (head == 0) revert QuorumUnmarkedCheckpoint(count);
        }
        if (claimed != head) revert QuorumHeadMismatch(count, claimed, head);
    }

    /// @dev Checks that every signature is valid and by a distinct entry of `members` (already
    /// checked to be set `id`'s signing list, equivocators zeroed), and that there are at least
    /// `t`; returns the signers as a bitmap of positions. In assembly because it is most of what a
    /// checkpoint's execution costs beyond the three ecrecovers: no calldata bounds or cleanup
    /// checks (offsets come from the ABI decoder; a dirty member word simply never matches).
    function _checkCompactSigners(
        uint64 id,
        uint8 t,
        bytes32 digest,
        address[] calldata members,
        CompactSignature[] calldata signatures
    ) private view returns (uint256 seen) {
        uint256 failure; // 0: none; 1: malformed signature `at`; 2: `who` not signing; 3: `who` twice
        uint256 failedAt;
        address who;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let n := members.length
            for { let i := 0 } lt(i, signatures.length) { i := add(i, 1) } {
                let sig := add(signatures.offset, shl(6, i))
                let vs := calldataload(add(sig, 0x20))
                let s := and(vs, _S_MASK)
                let signer := 0
                // Low s only (no malleable twin), as OpenZeppelin's ECDSA; ecrecover returns
                // nothing for an invalid signature, so the zero left at 0x00 stands.
                if iszero(gt(s, _HALF_ORDER)) {
                    mstore(ptr, digest)
                    mstore(add(ptr, 0x20), add(shr(255, vs), 27))
                    mstore(add(ptr, 0x40), calldataload(sig))
                    mstore(add(ptr, 0x60), s)
                    mstore(0x00, 0)
                    pop(staticcall(gas(), 1, ptr, 0x80, 0x00, 0x20))
                    signer := mload(0x00)
                }
                if iszero(signer) {
                    failure := 1
                    failedAt := i
                    break
                }
                // A linear scan: sets are small, and no order is asked of whoever gathered the
                // signatures. A zeroed (equivocator's) place never matches a recovered signer.
                let p := 0
                for {} and(lt(p, n), iszero(eq(calldataload(add(members.offset, shl(5, p))), signer))) {
                    p := add(p, 1)
                } {}
                if eq(p, n) {
                    failure := 2
                    who := signer
                    break
                }
                let bit := shl(p, 1)
                if and(seen, bit) {
                    failure := 3
                    who := signer
                    break
                }
                seen := or(seen, bit)
            }
        }
        if (failure == 1) revert QuorumInvalidSignature(failedAt);
        if (failure == 2) _revertNotSigning(id, who);
        if (failure == 3) revert QuorumDuplicateSigner(who);
        if (signatures.length < t) revert QuorumBelowThreshold(signatures.length, t);
    }

    /// @dev The EIP-712 digest of a checkpoint under this contract's domain.
    function _digest(Checkpoint calldata c) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(CHECKPOINT_TYPEHASH, c.ledger, c.recordCount, c.chainHead, c.stateDigest, c.setId))
        );
    }
}
