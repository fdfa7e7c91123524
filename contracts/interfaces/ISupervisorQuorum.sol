// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ISupervisorQuorum
/// @notice Confirmation of a PrepaidLedger by several independent supervisors. Each supervisor
/// replays the ledger's records, rebuilds the books and signs a checkpoint: the ledger's hash
/// chain head after a record count and a digest of the books it rebuilt. A checkpoint becomes
/// final once `threshold` distinct supervisors of the current set have signed it (or of a set
/// replaced within SET_CHANGE_DELAY, for records booked while it was in force), and every
/// record up to its count is then confirmed. The governor cannot confirm anything: it can only
/// propose a new set, effective after SET_CHANGE_DELAY unless the current set's threshold
/// cancels it; the current set's threshold can install a new set at once.
/// @dev Supervisors sign EIP-712 typed data, domain {name: "PrepaidLedgerSupervision",
/// version: "1", chainId, verifyingContract: this quorum}, primary type
/// `Checkpoint(address ledger,uint64 recordCount,bytes32 chainHead,bytes32 stateDigest,uint64 setId)`.
/// The domain binds a signature to one chain and one quorum contract, `ledger` to one ledger,
/// and `setId` to one supervisor set, so nothing signed for one of them counts for another.
/// A checkpoint's head must be the ledger's: its current head when `recordCount` is its current
/// record count (one transaction per checkpoint, nothing marked), else the head it marked there
/// (`IPrepaidLedger.markCheckpoint`), for a checkpoint the ledger has since moved past.
/// `finalizeRecords` takes the checkpoint packed (no ABI padding; the ledger is implied), rebuilds the
/// signing set's member list from the recovered signers and the other members' addresses, and
/// checks it against a commitment kept in the same storage word as the last final record count
/// (docs/ARCHITECTURE.md, "Confirmation"): one cold read and one update of an already non-zero
/// word per checkpoint.
/// Set changes are signed under the same domain: `SupervisorSetChange(address ledger,uint64
/// setId,address[] supervisors,uint8 threshold)` (setId: the outgoing set) and
/// `SupervisorChangeCancellation(address ledger,uint64 setId,uint64 proposal)`.
interface ISupervisorQuorum {
    /// @notice Where a record stands.
    /// @custom:value Unknown Index 0, or beyond the ledger's record count.
    /// @custom:value Pending Booked, not yet covered by a final checkpoint.
    /// @custom:value Confirmed Covered by a final checkpoint.
    enum RecordStatus {
        Unknown,
        Pending,
        Confirmed
    }

    /// @notice What supervisors sign. The chain id is in the EIP-712 domain.
    /// @param ledger The ledger the checkpoint is about; must be this quorum's `LEDGER`.
    /// @param recordCount Records covered: the index of the last one.
    /// @param chainHead The ledger's chain head after record `recordCount` (docs/FORMAT.md 7).
    /// @param stateDigest A digest of the books the supervisor rebuilt from those records.
    /// @param setId The supervisor set the signature is given as a member of.
    struct Checkpoint {
        address ledger;
        uint64 recordCount;
        bytes32 chainHead;
        bytes32 stateDigest;
        uint64 setId;
    }

    // ---------------------------------------------------------------- events

    /// @notice A new supervisor set took effect (constructor, changeSupervisors or
    /// executeSupervisors). The outgoing set's signatures keep counting within its grace
    /// (SupervisorSetRetired).
    /// @param setId The new set's id (the first set, from the constructor, is 1).
    /// @param supervisors The set's members, in the order given.
    /// @param threshold How many distinct members must sign a checkpoint.
    event SupervisorsChanged(uint64 indexed setId, address[] supervisors, uint8 threshold);

    /// @notice A set was replaced. Its signatures still count for checkpoints up to
    /// `recordCount` until `graceEnds`, then no more.
    /// @param setId The replaced set.
    /// @param recordCount The ledger's record count when it was replaced.
    /// @param graceEnds The last second (block timestamp) its signatures count.
    event SupervisorSetRetired(uint64 indexed setId, uint64 recordCount, uint64 graceEnds);

    /// @notice The governor proposed a new set; anyone may carry it out from `executableAt` on,
    /// unless the current set's threshold cancels it first.
    /// @param proposal The proposal's number (counts from 1).
    /// @param setId The set it would replace.
    /// @param supervisors The proposed members.
    /// @param threshold The proposed threshold.
    /// @param executableAt From when it may be carried out.
    event SupervisorChangeProposed(
        uint64 indexed proposal, uint64 indexed setId, address[] supervisors, uint8 threshold, uint64 executableAt
    );

    /// @notice A pending proposal was dropped.
    /// @param proposal The proposal's number.
    /// @param by The governor when it proposed again; this quorum when the current set cancelled
    /// it or a set change superseded it.
    event SupervisorChangeCancelled(uint64 indexed proposal, address indexed by);

    /// @notice A checkpoint became final: every record up to `recordCount` is confirmed.
    /// @param recordCount Records covered.
    /// @param chainHead The ledger's chain head after record `recordCount`.
    /// @param stateDigest The books' digest the signers agreed on.
    /// @param setId The set the signers belong to.
    /// @param signers Who signed, as a bitmap of positions in set `setId`: bit i set when the
    /// member at index i (SupervisorsChanged's list) signed, or sent the finalizing transaction
    /// from its own unsigned place (finalizeRecords). A bitmap rather than addresses: it
    /// is what the contract computed anyway, and it costs a 32-byte word whatever the threshold.
    event CheckpointFinalized(
        uint64 indexed recordCount, bytes32 chainHead, bytes32 stateDigest, uint64 indexed setId, uint256 signers
    );

    /// @notice A supervisor was proven to have signed two different checkpoints for the same
    /// record count in the same set. Its signatures no longer count for that set; whether it is
    /// removed is a set change's call (changeSupervisors or proposeSupervisors).
    /// @param supervisor The equivocating supervisor.
    /// @param recordCount The record count both checkpoints claim.
    /// @param setId The set it signed as a member of.
    /// @param digestA The EIP-712 digest of the first checkpoint.
    /// @param digestB The EIP-712 digest of the second checkpoint.
    event EquivocationRecorded(
        address indexed supervisor, uint64 indexed recordCount, uint64 setId, bytes32 digestA, bytes32 digestB
    );

    // ---------------------------------------------------------------- errors

    /// @notice The governor or ledger given to the constructor is the zero address.
    error QuorumZeroAddress();
    /// @notice A supervisor set holds at most 255 members (a signer's position fits a uint8).
    error QuorumTooManySupervisors(uint256 count);
    /// @notice The threshold must be at least 1 and at most the number of supervisors.
    error QuorumInvalidThreshold(uint8 threshold, uint256 supervisors);
    /// @notice A supervisor in the new set is the zero address.
    error QuorumZeroSupervisor(uint256 index);
    /// @notice A supervisor appears twice in the new set.
    error QuorumDuplicateSupervisor(address supervisor);
    /// @notice The checkpoint names another ledger than this quorum's.
    error QuorumWrongLedger(address ledger, address expected);
    /// @notice The checkpoint names a set that does not exist (0 or beyond the current one).
    error QuorumWrongSet(uint64 setId, uint64 current);
    /// @notice The checkpoint names a replaced set whose signatures no longer count for it: the
    /// checkpoint is beyond what the set was in force for, or its grace is over.
    error QuorumSetRetired(uint64 setId, uint64 retiredAtCount, uint64 graceEnds);
    /// @notice There is no pending proposal.
    error QuorumNoPendingChange();
    /// @notice The set given is not the one proposed.
    error QuorumProposalMismatch(uint64 proposal, bytes32 given, bytes32 proposed);
    /// @notice The proposal's delay has not run out.
    error QuorumChangeNotDue(uint64 proposal, uint64 executableAt);
    /// @notice A deployment's delay is shorter than the contract's floor.
    error QuorumDelayTooShort(uint256 delay, uint256 minimum);
    /// @notice A packed checkpoint's length does not fit its layout (finalizeRecords), or its bitmap
    /// names places beyond its set size, or its set size is 0.
    error QuorumMalformedCheckpoint(uint256 length);
    /// @notice Checkpoints only move forward: this one covers no record the last final one did not.
    error QuorumCheckpointNotNewer(uint64 recordCount, uint64 lastFinal);
    /// @notice The record count is behind the ledger's and the ledger marked no head there.
    error QuorumUnmarkedCheckpoint(uint64 recordCount);
    /// @notice The checkpoint covers records the ledger has not booked.
    error QuorumBeyondLedger(uint64 recordCount, uint64 ledgerCount);
    /// @notice The member list given is not the one set `setId` signs as (signingMembers).
    /// @param given The commitment of the list given (the top 184 bits of its hash).
    /// @param expected The commitment kept for the set.
    error QuorumMembersMismatch(uint64 setId, uint256 given, uint256 expected);
    /// @notice The checkpoint's chain head is not the one the ledger marked at its record count.
    error QuorumHeadMismatch(uint64 recordCount, bytes32 claimed, bytes32 ledger);
    /// @notice A signature is malformed (length, high s, or recovers no address).
    /// @param index Its position in the signatures given.
    error QuorumInvalidSignature(uint256 index);
    /// @notice A signature recovers to an address that is not a member of the set.
    error QuorumSignerNotSupervisor(address signer, uint64 setId);
    /// @notice Two signatures recover to the same supervisor.
    error QuorumDuplicateSigner(address signer);
    /// @notice The signer was proven to equivocate in this set: its signatures do not count.
    error QuorumSignerEquivocated(address signer, uint64 setId);
    /// @notice Fewer valid signatures than the threshold.
    error QuorumBelowThreshold(uint256 valid, uint8 threshold);
    /// @notice An equivocation report needs two checkpoints for the same record count.
    error QuorumRecordCountMismatch(uint64 recordCountA, uint64 recordCountB);
    /// @notice An equivocation report needs two checkpoints for the same supervisor set.
    error QuorumSetMismatch(uint64 setIdA, uint64 setIdB);
    /// @notice An equivocation report needs two different checkpoints.
    error QuorumIdenticalCheckpoints(bytes32 digest);
    /// @notice The two signatures of an equivocation report recover to different addresses.
    error QuorumSignerMismatch(address signerA, address signerB);
    /// @notice This supervisor's equivocation in this set is already recorded.
    error QuorumEquivocationAlreadyRecorded(address supervisor, uint64 setId);

    // ---------------------------------------------------------------- governance

    /// @notice Installs a new set at once, approved by the current set: signatures of at least
    /// its threshold of distinct members, not proven to equivocate, over
    /// `setChangeDigest(supervisors, threshold)`. Anyone may submit. The new set gets the next
    /// `setId`; the outgoing one enters its grace; a pending proposal is dropped.
    /// @param supervisors The new members: 1 to 255 distinct, non-zero addresses.
    /// @param threshold How many distinct members must sign: 1 to `supervisors.length`.
    /// @param signatures 65-byte ECDSA signatures of members of the current set.
    function changeSupervisors(address[] calldata supervisors, uint8 threshold, bytes[] calldata signatures) external;

    /// @notice Proposes a new set; it may be carried out (executeSupervisors) SET_CHANGE_DELAY
    /// later unless the current set cancels it. Governor (DEFAULT_ADMIN_ROLE) only. Replaces any
    /// pending proposal.
    /// @param supervisors The proposed members: 1 to 255 distinct, non-zero addresses.
    /// @param threshold How many distinct members must sign: 1 to `supervisors.length`.
    /// @return proposal The proposal's number.
    function proposeSupervisors(address[] calldata supervisors, uint8 threshold) external returns (uint64 proposal);

    /// @notice Carries out the pending proposal once its delay ran out. Anyone may call it.
    /// @param supervisors The proposed members, as proposed.
    /// @param threshold The proposed threshold.
    function executeSupervisors(address[] calldata supervisors, uint8 threshold) external;

    /// @notice Cancels the pending proposal, with signatures of at least the current set's
    /// threshold of distinct members over `cancellationDigest(proposal)`. Anyone may submit.
    /// @param signatures 65-byte ECDSA signatures of members of the current set.
    function cancelSupervisorChange(bytes[] calldata signatures) external;

    // ---------------------------------------------------------------- checkpoints (anyone)

    /// @notice Makes a checkpoint final, given signatures of at least `threshold` distinct
    /// members of the set named by its `setId`: the current set, or a replaced one whose grace
    /// lasts and that was in force when record `recordCount` was booked (setInfo). Anyone may
    /// submit, in one transaction: no mark is needed when `recordCount` is the ledger's current
    /// record count. Every signature given must be valid, by a member that was not proven to
    /// equivocate in the set, at that member's place. A member that sends the transaction signs
    /// by sending it: its own place, left unsigned with its address listed, counts as signed
    /// (once; an equivocator's place lists zero, so it never does). What supervisor nodes do:
    /// one ecrecover and 44 bytes of calldata less.
    /// @dev The checkpoint comes packed, big-endian, no padding (docs/FORMAT.md 8):
    /// `recordCount u64 | chainHead bytes32 | stateDigest bytes32 | setId u64 | n u8 |
    /// signed (n + 7) / 8 bytes | k signatures | n - k addresses`. `signed` is a bitmap of the
    /// set's places (bit i: member i signed; k bits set); each signature is EIP-2098 compact,
    /// `r | vs` (64 bytes; vs = (v - 27) << 255 | s), over `checkpointDigest` of the checkpoint
    /// with `ledger` = LEDGER, in the order of the places; the addresses are the other members as
    /// `signingMembers(setId)` lists them (an equivocator's place holds zero), in order. The
    /// contract recovers the signers, puts them at their places, and checks the whole list
    /// against the set's commitment: so it needs neither the signers' addresses nor storage per
    /// member. An unsigned place whose address is `msg.sender` counts toward `threshold` and is
    /// set in the event's `signers`; the commitment check proves the place is the sender's. Reverts, changing nothing, with QuorumMalformedCheckpoint,
    /// QuorumCheckpointNotNewer, QuorumBeyondLedger, QuorumUnmarkedCheckpoint, QuorumHeadMismatch,
    /// QuorumInvalidSignature (index in the order given), QuorumWrongSet,
    /// QuorumSignerNotSupervisor, QuorumSignerEquivocated, QuorumDuplicateSigner,
    /// QuorumMembersMismatch (the list is the set's but for its places or other members),
    /// QuorumSetRetired or QuorumBelowThreshold.
    /// @param checkpoint The packed checkpoint: `setId` a set that counts, `recordCount` beyond
    /// the last final one, `chainHead` the ledger's head there (its current head, or the one it
    /// marked at that count).
    function finalizeRecords(bytes calldata checkpoint) external;

    /// @notice `finalizeRecords` without the ABI wrapping: the packed checkpoint is the calldata
    /// after the selector, exactly as `finalizeRecords` takes it in its `bytes` (same layout, same
    /// checks, same refusals, same event; QuorumMalformedCheckpoint gives the packed length, the
    /// calldata's minus 4). What supervisor nodes send: about 400 gas less calldata (no offset,
    /// length or padding words) and no ABI decoding. The name's suffix makes the selector
    /// 0x000047c6: two zero bytes (4 gas each instead of 16) and the first one the dispatcher tries.
    /// @dev Call it as `selector | packed` (src/supervisor/checkpoint.ts: finalizeTransaction); an
    /// ABI encoder given this signature sends no checkpoint, which is refused as malformed.
    function finalizePacked_11yn() external;

    /// @notice Records proof that a supervisor signed two different checkpoints (different
    /// chain head or state digest) for the same record count in the same set. Anyone may submit.
    /// From then on the supervisor's signatures do not count in `finalizeRecords` for that set.
    /// @dev Works for past sets too (membership of every set is kept), so the record survives a
    /// change of set. Neither checkpoint needs to match the ledger: signing both is the fault.
    /// @param a The first checkpoint; its `ledger` must be LEDGER.
    /// @param signatureA The supervisor's signature over `a`.
    /// @param b The second checkpoint: same ledger, record count and set as `a`, otherwise different.
    /// @param signatureB The supervisor's signature over `b`.
    function reportEquivocation(
        Checkpoint calldata a,
        bytes calldata signatureA,
        Checkpoint calldata b,
        bytes calldata signatureB
    ) external;

    // ---------------------------------------------------------------- views

    /// @notice The ledger this quorum confirms.
    /// @return The PrepaidLedger's address.
    function LEDGER() external view returns (address);

    /// @notice The EIP-712 typehash of `Checkpoint`.
    /// @return keccak256("Checkpoint(address ledger,uint64 recordCount,bytes32 chainHead,bytes32 stateDigest,uint64 setId)").
    function CHECKPOINT_TYPEHASH() external view returns (bytes32);

    /// @notice The EIP-712 digest supervisors sign for a checkpoint, under this quorum's domain.
    /// @param checkpoint The checkpoint.
    /// @return The digest (what `TypedDataEncoder.hash(domain, types, checkpoint)` gives off-chain).
    function checkpointDigest(Checkpoint calldata checkpoint) external view returns (bytes32);

    /// @notice How far the last final checkpoint reaches, 0 before the first. Its chain head,
    /// state digest and signers are in its CheckpointFinalized event (not kept in storage: a
    /// checkpoint updates one word).
    /// @return recordCount Records it covers.
    function lastFinal() external view returns (uint64 recordCount);

    /// @notice Whether a record is covered by a final checkpoint.
    /// @param recordIndex A ledger-wide record index (records count from 1).
    /// @return True if 1 <= recordIndex <= lastFinal().recordCount.
    function isConfirmed(uint64 recordIndex) external view returns (bool);

    /// @notice Where a record stands, reading the ledger's record count.
    /// @param recordIndex A ledger-wide record index (records count from 1).
    /// @return Unknown (index 0 or not booked yet), Pending (booked) or Confirmed (final).
    function status(uint64 recordIndex) external view returns (RecordStatus);

    /// @notice Seconds a governor's proposal waits, and how long a replaced set's signatures
    /// keep counting (set at deployment).
    /// @return The delay.
    function SET_CHANGE_DELAY() external view returns (uint32);

    /// @notice The shortest delay a deployment may give SET_CHANGE_DELAY: one hour.
    /// @return The floor, in seconds.
    function MIN_SET_CHANGE_DELAY() external view returns (uint32);

    /// @notice The EIP-712 typehash of `SupervisorSetChange`.
    /// @return keccak256("SupervisorSetChange(address ledger,uint64 setId,address[] supervisors,uint8 threshold)").
    function SET_CHANGE_TYPEHASH() external view returns (bytes32);

    /// @notice The EIP-712 typehash of `SupervisorChangeCancellation`.
    /// @return keccak256("SupervisorChangeCancellation(address ledger,uint64 setId,uint64 proposal)").
    function CANCELLATION_TYPEHASH() external view returns (bytes32);

    /// @notice The digest the current set's members sign to install a set at once.
    /// @param supervisors The new members.
    /// @param threshold The new threshold.
    /// @return The EIP-712 digest, bound to this chain, quorum, ledger and the current set id.
    function setChangeDigest(address[] calldata supervisors, uint8 threshold) external view returns (bytes32);

    /// @notice The digest the current set's members sign to cancel a proposal.
    /// @param proposal The proposal's number.
    /// @return The EIP-712 digest, bound to this chain, quorum, ledger and the current set id.
    function cancellationDigest(uint64 proposal) external view returns (bytes32);

    /// @notice The governor's pending proposal.
    /// @return proposal Its number, 0 if none is pending.
    /// @return changeHash keccak256(abi.encode(supervisors, threshold)).
    /// @return executableAt From when it may be carried out.
    function pendingSupervisorChange() external view returns (uint64 proposal, bytes32 changeHash, uint64 executableAt);

    /// @notice A set's threshold and grace.
    /// @param setId_ A set id, current or past.
    /// @return threshold Its threshold (0 for a set that never existed).
    /// @return retiredAtCount The ledger's record count when it was replaced (0 while current).
    /// @return graceEnds The last second its signatures count (0 while current).
    function setInfo(uint64 setId_) external view returns (uint8 threshold, uint64 retiredAtCount, uint64 graceEnds);

    /// @notice The current supervisor set.
    /// @return The members, in the order governance gave them.
    function supervisors() external view returns (address[] memory);

    /// @notice A set's members as `finalizeRecords` rebuilds them: in the order governance gave them,
    /// with the zero address in the place of each member proven to equivocate in that set.
    /// @param setId_ A set id, current or past (empty for a set that never existed).
    /// @return The list whose commitment the set keeps.
    function signingMembers(uint64 setId_) external view returns (address[] memory);

    /// @notice How many distinct members of the current set must sign a checkpoint.
    /// @return The threshold.
    function threshold() external view returns (uint8);

    /// @notice The current supervisor set's id; it grows by one with every set change.
    /// @return The id (the constructor's set is 1).
    function setId() external view returns (uint64);

    /// @notice Whether an address was a member of a supervisor set.
    /// @param setId_ A set id, current or past.
    /// @param account The address.
    /// @return True if `account` belongs to set `setId_`.
    function isSupervisor(uint64 setId_, address account) external view returns (bool);

    /// @notice Whether a supervisor was proven to equivocate in a set.
    /// @param setId_ A set id, current or past.
    /// @param supervisor The supervisor.
    /// @return True if an equivocation by `supervisor` in set `setId_` is recorded.
    function isEquivocator(uint64 setId_, address supervisor) external view returns (bool);

    /// @notice In how many sets a supervisor was proven to equivocate.
    /// @param supervisor The supervisor.
    /// @return The number of recorded equivocations (at most one per set).
    function equivocationCount(address supervisor) external view returns (uint256);
}
