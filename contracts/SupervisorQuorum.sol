// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {SupervisorSets} from "./base/SupervisorSets.sol";
import {IPrepaidLedger} from "./interfaces/IPrepaidLedger.sol";
import {ISupervisorQuorum} from "./interfaces/ISupervisorQuorum.sol";

/// @title SupervisorQuorum
/// @notice Confirms one PrepaidLedger: a checkpoint over its records becomes final once enough
/// independent supervisors signed it, and a supervisor caught signing two different checkpoints
/// for the same record count is excluded from its set.
/// @dev Signatures are EIP-712 (ISupervisorQuorum explains the domain and type). The ledger
/// keeps only its current chain head, so a checkpoint's head is checked against the head the
/// ledger marked at its record count (`IPrepaidLedger.markedHead`).
contract SupervisorQuorum is SupervisorSets, EIP712 {
    /// @inheritdoc ISupervisorQuorum
    bytes32 public constant CHECKPOINT_TYPEHASH = keccak256(
        "Checkpoint(address ledger,uint64 recordCount,bytes32 chainHead,bytes32 stateDigest,uint64 setId)"
    );

    /// @inheritdoc ISupervisorQuorum
    address public immutable LEDGER;

    uint64 private _finalCount;
    bytes32 private _finalHead;
    bytes32 private _finalDigest;

    /// @param governor Holds DEFAULT_ADMIN_ROLE: replaces the supervisor set.
    /// @param ledger The PrepaidLedger this quorum confirms.
    /// @param supervisors_ The first supervisor set (set id 1): 1 to 255 distinct, non-zero addresses.
    /// @param threshold_ How many of them must sign: 1 to `supervisors_.length`.
    constructor(address governor, address ledger, address[] memory supervisors_, uint8 threshold_)
        SupervisorSets(governor, supervisors_, threshold_)
        EIP712("PrepaidLedgerSupervision", "1")
    {
        if (ledger == address(0)) revert QuorumZeroAddress();
        LEDGER = ledger;
    }

    /// @inheritdoc ISupervisorQuorum
    function finalize(Checkpoint calldata checkpoint, bytes[] calldata signatures) external {
        (uint64 set, uint8 t) = _currentSet();
        _checkCheckpoint(checkpoint, set);
        bytes32 digest = _digest(checkpoint);
        uint256 count = signatures.length;
        address[] memory signers = new address[](count);
        // Bit p is set once the member at position p has signed: duplicates are refused in any
        // order, with no sorting asked of whoever gathers the signatures.
        uint256 seen;
        for (uint256 i; i < count; ++i) {
            address signer = _recover(digest, signatures[i], i);
            Member memory m = _member(set, signer);
            if (m.position == 0) revert QuorumSignerNotSupervisor(signer, set);
            if (m.equivocated) revert QuorumSignerEquivocated(signer, set);
            uint256 bit = 1 << m.position;
            if (seen & bit != 0) revert QuorumDuplicateSigner(signer);
            seen |= bit;
            signers[i] = signer;
        }
        // Every signature given was checked above, so all `count` are valid.
        if (count < t) revert QuorumBelowThreshold(count, t);

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

    /// @dev The checks of a checkpoint that need no signature, cheapest first.
    function _checkCheckpoint(Checkpoint calldata c, uint64 set) private view {
        if (c.ledger != LEDGER) revert QuorumWrongLedger(c.ledger, LEDGER);
        if (c.setId != set) revert QuorumWrongSet(c.setId, set);
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

    /// @dev The signer of `digest`, or a revert naming the signature's `index` if it is malformed.
    function _recover(bytes32 digest, bytes calldata signature, uint256 index) private pure returns (address signer) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err != ECDSA.RecoverError.NoError) revert QuorumInvalidSignature(index);
        return recovered;
    }
}
