// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {SupervisorSets} from "./base/SupervisorSets.sol";
import {IPrepaidLedger} from "./interfaces/IPrepaidLedger.sol";
import {ISupervisorQuorum} from "./interfaces/ISupervisorQuorum.sol";

/// @title SupervisorQuorum
/// @notice Confirms one PrepaidLedger: a checkpoint over its records becomes final once enough
/// independent supervisors signed it, and a supervisor caught signing two different checkpoints
/// for the same record count is excluded from its set.
/// @dev Signatures are EIP-712 (ISupervisorQuorum explains the domain and type). The ledger
/// keeps only its current chain head, so a checkpoint's head is checked against the head the
/// ledger marked at its record count (`IPrepaidLedger.markedHead`). The governor (default
/// admin, two-step delayed handover) cannot confirm anything: it can only propose a supervisor
/// set, effective after SET_CHANGE_DELAY unless the current set cancels it (SupervisorSets).
contract SupervisorQuorum is SupervisorSets {
    /// @inheritdoc ISupervisorQuorum
    bytes32 public constant CHECKPOINT_TYPEHASH = keccak256(
        "Checkpoint(address ledger,uint64 recordCount,bytes32 chainHead,bytes32 stateDigest,uint64 setId)"
    );

    uint64 private _finalCount;
    bytes32 private _finalHead;
    bytes32 private _finalDigest;

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
    function finalize(Checkpoint calldata checkpoint, bytes[] calldata signatures) external {
        uint64 set = checkpoint.setId;
        if (checkpoint.ledger != LEDGER) revert QuorumWrongLedger(checkpoint.ledger, LEDGER);
        uint8 t = _thresholdFor(set, checkpoint.recordCount);
        _checkCheckpoint(checkpoint);
        address[] memory signers = _checkSigners(set, t, _digest(checkpoint), signatures);
        _finalCount = checkpoint.recordCount;
        _finalHead = checkpoint.chainHead;
        _finalDigest = checkpoint.stateDigest;
        emit CheckpointFinalized(checkpoint.recordCount, checkpoint.chainHead, checkpoint.stateDigest, set, signers);
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
    function lastFinal() external view returns (uint64 recordCount, bytes32 chainHead, bytes32 stateDigest) {
        return (_finalCount, _finalHead, _finalDigest);
    }

    /// @inheritdoc ISupervisorQuorum
    function isConfirmed(uint64 recordIndex) public view returns (bool) {
        return recordIndex != 0 && recordIndex <= _finalCount;
    }

    /// @inheritdoc ISupervisorQuorum
    function status(uint64 recordIndex) external view returns (RecordStatus) {
        if (isConfirmed(recordIndex)) return RecordStatus.Confirmed;
        (uint64 booked,) = IPrepaidLedger(LEDGER).chainHead();
        if (recordIndex == 0 || recordIndex > booked) return RecordStatus.Unknown;
        return RecordStatus.Pending;
    }

    /// @dev The checks of a checkpoint against the ledger, cheapest first.
    function _checkCheckpoint(Checkpoint calldata c) private view {
        uint64 last = _finalCount;
        if (c.recordCount <= last) revert QuorumCheckpointNotNewer(c.recordCount, last);
        bytes32 marked = IPrepaidLedger(LEDGER).markedHead(c.recordCount);
        if (marked == 0) revert QuorumUnmarkedCheckpoint(c.recordCount);
        if (c.chainHead != marked) revert QuorumHeadMismatch(c.recordCount, c.chainHead, marked);
    }

    /// @dev The EIP-712 digest of a checkpoint under this contract's domain.
    function _digest(Checkpoint calldata c) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(CHECKPOINT_TYPEHASH, c.ledger, c.recordCount, c.chainHead, c.stateDigest, c.setId))
        );
    }
}
