// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {IPrepaidLedger} from "../interfaces/IPrepaidLedger.sol";
import {ISupervisorQuorum} from "../interfaces/ISupervisorQuorum.sol";

/// @title SupervisorSets
/// @notice Who signs, how many must, and how that changes. A new set takes effect either at
/// once with the signatures of the outgoing set's threshold (changeSupervisors), or after
/// SET_CHANGE_DELAY when the governor proposed it (proposeSupervisors, then executeSupervisors)
/// and the outgoing set did not cancel it meanwhile (cancelSupervisorChange). Until then the
/// current set keeps confirming. A replaced set's signatures keep counting, for checkpoints up
/// to the record count booked when it was replaced, for SET_CHANGE_DELAY more: no signature in
/// flight is voided by a change. The membership of every set is kept, so an equivocation can be
/// proven against a set that was since replaced.
/// @dev What `finalizeRecords` reads of all this is one word, `_state`: the current set's threshold and
/// a commitment to its signing members, next to the last final record count (which the quorum
/// keeps there so that a checkpoint costs one cold read and one update of a non-zero word).
/// The commitment is the top 184 bits of keccak256(setId u64 | n u8 | members, 20 bytes each), an
/// equivocator's place zeroed: a list chosen to collide with an honest one needs ~2^92 hashes.
abstract contract SupervisorSets is ISupervisorQuorum, AccessControlDefaultAdminRules, EIP712 {
    /// @dev A member's entry in one set, one slot: a signature's membership, duplicate and
    /// exclusion checks read it once.
    struct Member {
        /// @dev 1 + the member's index in its set; 0 for a non-member. A set holds at most 255
        /// members, so positions 1-255 fit a uint8 and a uint256 bitmap.
        uint8 position;
        /// @dev Proven to equivocate in this set: its signatures no longer count.
        bool equivocated;
    }

    /// @dev A set's threshold and, once replaced, how far its signatures still count (one slot).
    struct SetInfo {
        uint8 threshold;
        /// @dev The ledger's record count when the set was replaced (0 while it is current).
        uint64 retiredAtCount;
        /// @dev Until when (inclusive) its signatures count for checkpoints up to retiredAtCount.
        uint64 graceEnds;
    }

    /// @dev The governor's pending proposal (two slots); id 0 means none.
    struct Proposal {
        uint64 id;
        uint64 executableAt;
        bytes32 changeHash;
    }

    uint256 private constant _MAX_SUPERVISORS = 255;
    /// @dev `_state`: bits 0-63 the last final record count, 64-71 the current set's threshold,
    /// 72-255 the current set's commitment.
    uint256 internal constant _COUNT_MASK = type(uint64).max;
    uint256 internal constant _THRESHOLD_SHIFT = 64;
    uint256 internal constant _COMMITMENT_SHIFT = 72;

    /// @inheritdoc ISupervisorQuorum
    uint32 public constant MIN_SET_CHANGE_DELAY = 1 hours;

    /// @inheritdoc ISupervisorQuorum
    bytes32 public constant SET_CHANGE_TYPEHASH =
        keccak256("SupervisorSetChange(address ledger,uint64 setId,address[] supervisors,uint8 threshold)");

    /// @inheritdoc ISupervisorQuorum
    bytes32 public constant CANCELLATION_TYPEHASH =
        keccak256("SupervisorChangeCancellation(address ledger,uint64 setId,uint64 proposal)");

    /// @inheritdoc ISupervisorQuorum
    address public immutable LEDGER;

    /// @inheritdoc ISupervisorQuorum
    uint32 public immutable SET_CHANGE_DELAY;

    mapping(uint64 setId => address[] supervisors) private _sets;
    mapping(uint64 setId => mapping(address account => Member)) private _members;
    mapping(uint64 setId => SetInfo) private _infos;
    mapping(address supervisor => uint256 count) private _equivocations;
    /// @dev A replaced set's commitment (the current set's is in `_state`).
    mapping(uint64 setId => uint256 commitment) private _retiredCommitments;
    /// @dev The one word a checkpoint reads and updates (layout above). Never zero after the
    /// constructor: the commitment of a set is not.
    uint256 internal _state;
    uint64 private _setId;
    uint64 private _proposalCount;
    Proposal private _pending;

    /// @param governor The default admin: proposes supervisor sets (effective after the delay).
    /// @param ledger The PrepaidLedger the quorum confirms.
    /// @param supervisors_ The first set (set id 1).
    /// @param threshold_ The first set's threshold.
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
    ) AccessControlDefaultAdminRules(adminDelay, _nonZero(governor)) EIP712("PrepaidLedgerSupervision", "1") {
        if (ledger == address(0)) revert QuorumZeroAddress();
        if (setChangeDelay < MIN_SET_CHANGE_DELAY) revert QuorumDelayTooShort(setChangeDelay, MIN_SET_CHANGE_DELAY);
        LEDGER = ledger;
        SET_CHANGE_DELAY = setChangeDelay;
        _validate(supervisors_, threshold_, false);
        _install(supervisors_, threshold_);
    }

    // ---------------------------------------------------------------- set changes

    /// @inheritdoc ISupervisorQuorum
    function changeSupervisors(address[] calldata supervisors_, uint8 threshold_, bytes[] calldata signatures)
        external
    {
        _validate(supervisors_, threshold_, false);
        _checkSigners(_setId, _currentThreshold(), setChangeDigest(supervisors_, threshold_), signatures);
        _install(supervisors_, threshold_);
    }

    /// @inheritdoc ISupervisorQuorum
    function proposeSupervisors(address[] calldata supervisors_, uint8 threshold_)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
        returns (uint64 proposal)
    {
        _validate(supervisors_, threshold_, true);
        _dropPending(msg.sender);
        proposal = ++_proposalCount;
        uint64 executableAt = uint64(block.timestamp) + SET_CHANGE_DELAY;
        _pending = Proposal(proposal, executableAt, _changeHash(supervisors_, threshold_));
        emit SupervisorChangeProposed(proposal, _setId, supervisors_, threshold_, executableAt);
    }

    /// @inheritdoc ISupervisorQuorum
    function executeSupervisors(address[] calldata supervisors_, uint8 threshold_) external {
        Proposal memory p = _pending;
        if (p.id == 0) revert QuorumNoPendingChange();
        bytes32 given = _changeHash(supervisors_, threshold_);
        if (given != p.changeHash) revert QuorumProposalMismatch(p.id, given, p.changeHash);
        if (block.timestamp < p.executableAt) revert QuorumChangeNotDue(p.id, p.executableAt);
        _install(supervisors_, threshold_);
    }

    /// @inheritdoc ISupervisorQuorum
    function cancelSupervisorChange(bytes[] calldata signatures) external {
        uint64 id = _pending.id;
        if (id == 0) revert QuorumNoPendingChange();
        _checkSigners(_setId, _currentThreshold(), cancellationDigest(id), signatures);
        _dropPending(address(this));
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ISupervisorQuorum
    function setChangeDigest(address[] calldata supervisors_, uint8 threshold_) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(SET_CHANGE_TYPEHASH, LEDGER, _setId, keccak256(abi.encodePacked(supervisors_)), threshold_)
            )
        );
    }

    /// @inheritdoc ISupervisorQuorum
    function cancellationDigest(uint64 proposal) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(CANCELLATION_TYPEHASH, LEDGER, _setId, proposal)));
    }

    /// @inheritdoc ISupervisorQuorum
    function pendingSupervisorChange() external view returns (uint64 proposal, bytes32 changeHash, uint64 executableAt) {
        Proposal memory p = _pending;
        return (p.id, p.changeHash, p.executableAt);
    }

    /// @inheritdoc ISupervisorQuorum
    function setInfo(uint64 setId_) external view returns (uint8 threshold_, uint64 retiredAtCount, uint64 graceEnds) {
        SetInfo memory info = _infos[setId_];
        return (info.threshold, info.retiredAtCount, info.graceEnds);
    }

    /// @inheritdoc ISupervisorQuorum
    function supervisors() external view returns (address[] memory) {
        return _sets[_setId];
    }

    /// @inheritdoc ISupervisorQuorum
    function signingMembers(uint64 setId_) public view returns (address[] memory members) {
        members = _sets[setId_];
        mapping(address => Member) storage entries = _members[setId_];
        for (uint256 i; i < members.length; ++i) {
            if (entries[members[i]].equivocated) members[i] = address(0);
        }
    }

    /// @inheritdoc ISupervisorQuorum
    function threshold() external view returns (uint8) {
        return _currentThreshold();
    }

    /// @inheritdoc ISupervisorQuorum
    function setId() external view returns (uint64) {
        return _setId;
    }

    /// @inheritdoc ISupervisorQuorum
    function isSupervisor(uint64 setId_, address account) external view returns (bool) {
        return _members[setId_][account].position != 0;
    }

    /// @inheritdoc ISupervisorQuorum
    function isEquivocator(uint64 setId_, address supervisor) external view returns (bool) {
        return _members[setId_][supervisor].equivocated;
    }

    /// @inheritdoc ISupervisorQuorum
    function equivocationCount(address supervisor) external view returns (uint256) {
        return _equivocations[supervisor];
    }

    // ---------------------------------------------------------------- internals

    /// @dev The threshold a checkpoint signed as set `id` needs, given `state` and the commitment
    /// `given` of the signing list it claims: the current set's when `given` is its commitment (no
    /// storage read: the commitment binds the set id; finalize checks this case itself first),
    /// else a replaced set's while its grace lasts
    /// and the checkpoint is within what it was in force for. A list that is not the set's is
    /// explained from `list` (setId u64 | n u8 | 20-byte members in memory) and `signed` (the
    /// places of signers in it): a signer not a member, an equivocator, a duplicate, else the lists.
    function _signingThreshold(uint256 state, uint64 id, uint64 recordCount, uint256 given, uint256 list, uint256 signed)
        internal
        view
        returns (uint8)
    {
        if (given == state >> _COMMITMENT_SHIFT) return uint8(state >> _THRESHOLD_SHIFT);
        uint64 current = _setId;
        if (id == 0 || id > current) revert QuorumWrongSet(id, current);
        uint256 expected = id == current ? state >> _COMMITMENT_SHIFT : _retiredCommitments[id];
        if (given != expected) _explainMismatch(id, list, signed, given, expected);
        SetInfo memory info = _infos[id];
        if (recordCount > info.retiredAtCount || block.timestamp > info.graceEnds) {
            revert QuorumSetRetired(id, info.retiredAtCount, info.graceEnds);
        }
        return info.threshold;
    }

    /// @dev Why a claimed signing list of set `id` is not the set's (see _signingThreshold).
    function _explainMismatch(uint64 id, uint256 list, uint256 signed, uint256 given, uint256 expected) private view {
        mapping(address => Member) storage entries = _members[id];
        uint256 seen;
        for (uint256 i; signed >> i != 0; ++i) {
            if ((signed >> i) & 1 == 0) continue;
            address signer;
            assembly ("memory-safe") {
                signer := shr(96, mload(add(list, add(9, mul(20, i)))))
            }
            Member memory m = entries[signer];
            if (m.position == 0) revert QuorumSignerNotSupervisor(signer, id);
            if (m.equivocated) revert QuorumSignerEquivocated(signer, id);
            uint256 bit = 1 << m.position;
            if (seen & bit != 0) revert QuorumDuplicateSigner(signer);
            seen |= bit;
        }
        revert QuorumMembersMismatch(id, given, expected);
    }

    /// @dev Checks that every signature is valid, by a distinct member of set `id` not proven
    /// to equivocate there, and that there are at least `t`; returns the signers in order.
    function _checkSigners(uint64 id, uint8 t, bytes32 digest, bytes[] calldata signatures)
        internal
        view
        returns (address[] memory signers)
    {
        uint256 count = signatures.length;
        signers = new address[](count);
        // Bit p is set once the member at position p has signed: duplicates are refused in any
        // order, with no sorting asked of whoever gathers the signatures.
        uint256 seen;
        mapping(address => Member) storage entries = _members[id];
        for (uint256 i; i < count; ++i) {
            address signer = _recover(digest, signatures[i], i);
            Member memory m = entries[signer];
            if (m.position == 0) revert QuorumSignerNotSupervisor(signer, id);
            if (m.equivocated) revert QuorumSignerEquivocated(signer, id);
            uint256 bit = 1 << m.position;
            if (seen & bit != 0) revert QuorumDuplicateSigner(signer);
            seen |= bit;
            signers[i] = signer;
        }
        // Every signature given was checked above, so all `count` are valid.
        if (count < t) revert QuorumBelowThreshold(count, t);
    }

    /// @dev Marks a member of set `id` as an equivocator, once; reverts if it already is.
    function _recordEquivocation(uint64 id, address supervisor) internal {
        Member storage m = _members[id][supervisor];
        if (m.position == 0) revert QuorumSignerNotSupervisor(supervisor, id);
        if (m.equivocated) revert QuorumEquivocationAlreadyRecorded(supervisor, id);
        m.equivocated = true;
        ++_equivocations[supervisor];
        uint256 c = _commitment(id, signingMembers(id));
        if (id == _setId) {
            _state = (_state & ~(type(uint256).max << _COMMITMENT_SHIFT)) | (c << _COMMITMENT_SHIFT);
        } else {
            _retiredCommitments[id] = c;
        }
    }

    /// @dev The signer of `digest`, or a revert naming the signature's `index` if it is malformed.
    function _recover(bytes32 digest, bytes calldata signature, uint256 index) internal pure returns (address signer) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err != ECDSA.RecoverError.NoError) revert QuorumInvalidSignature(index);
        return recovered;
    }

    /// @dev Refuses a malformed set: 1-255 non-zero members, 1 <= threshold <= size. Duplicates
    /// are caught by _install, which writes each member's entry anyway; a proposal, installed
    /// only later, checks them here (`pairwise`), at a cost quadratic in the set's size.
    function _validate(address[] memory members, uint8 t, bool pairwise) private pure {
        uint256 n = members.length;
        if (n > _MAX_SUPERVISORS) revert QuorumTooManySupervisors(n);
        if (t == 0 || t > n) revert QuorumInvalidThreshold(t, n);
        for (uint256 i; i < n; ++i) {
            if (members[i] == address(0)) revert QuorumZeroSupervisor(i);
            if (!pairwise) continue;
            for (uint256 j; j < i; ++j) {
                if (members[j] == members[i]) revert QuorumDuplicateSupervisor(members[i]);
            }
        }
    }

    /// @dev Installs a checked set under the next id; the outgoing set enters its grace, and a
    /// pending proposal (made for the outgoing set) is dropped.
    function _install(address[] memory members, uint8 t) private {
        uint64 old = _setId;
        uint64 id = old + 1;
        uint256 state = _state;
        if (old != 0) {
            (uint64 booked,) = IPrepaidLedger(LEDGER).chainHead();
            uint64 graceEnds = uint64(block.timestamp) + SET_CHANGE_DELAY;
            _infos[old] = SetInfo(uint8(state >> _THRESHOLD_SHIFT), booked, graceEnds);
            _retiredCommitments[old] = state >> _COMMITMENT_SHIFT;
            emit SupervisorSetRetired(old, booked, graceEnds);
            _dropPending(address(this));
        }
        mapping(address => Member) storage entries = _members[id];
        uint256 n = members.length;
        for (uint256 i; i < n; ++i) {
            address member = members[i];
            if (entries[member].position != 0) revert QuorumDuplicateSupervisor(member);
            // i < n <= 255, so i + 1 fits a uint8.
            entries[member].position = uint8(i + 1);
        }
        _sets[id] = members;
        _infos[id].threshold = t;
        _setId = id;
        // The last final record count stays; threshold and commitment are the new set's.
        _state = (_commitment(id, members) << _COMMITMENT_SHIFT) | (uint256(t) << _THRESHOLD_SHIFT)
            | (state & _COUNT_MASK);
        emit SupervisorsChanged(id, members, t);
    }

    /// @dev Drops the pending proposal, if any, naming who dropped it (this contract when the
    /// outgoing set cancelled it or a set change superseded it).
    function _dropPending(address by) private {
        uint64 id = _pending.id;
        if (id == 0) return;
        delete _pending;
        emit SupervisorChangeCancelled(id, by);
    }

    /// @dev The current set's threshold.
    function _currentThreshold() private view returns (uint8) {
        return uint8(_state >> _THRESHOLD_SHIFT);
    }

    /// @dev The commitment to a signing list: the top 184 bits of
    /// keccak256(setId u64 | n u8 | members as 20 bytes each), the bytes a packed checkpoint
    /// carries (ISupervisorQuorum.finalizeRecords), so finalize hashes a list where it rebuilt it.
    function _commitment(uint64 id, address[] memory members) private pure returns (uint256 c) {
        assembly ("memory-safe") {
            let n := mload(members)
            let ptr := mload(0x40)
            mstore(ptr, shl(192, id))
            mstore8(add(ptr, 8), n)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                // 32 bytes written, the next member's 20 overwrite the tail.
                mstore(add(ptr, add(9, mul(20, i))), shl(96, mload(add(members, shl(5, add(i, 1))))))
            }
            c := shr(_COMMITMENT_SHIFT, keccak256(ptr, add(9, mul(20, n))))
        }
    }

    /// @dev What a proposal commits to.
    function _changeHash(address[] calldata members, uint8 t) private pure returns (bytes32) {
        return keccak256(abi.encode(members, t));
    }

    /// @dev The constructor's governor check, before OpenZeppelin's (which has no quorum error).
    function _nonZero(address governor) private pure returns (address) {
        if (governor == address(0)) revert QuorumZeroAddress();
        return governor;
    }
}
