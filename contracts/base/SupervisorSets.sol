// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

import {ISupervisorQuorum} from "../interfaces/ISupervisorQuorum.sol";

/// @title SupervisorSets
/// @notice Governance's side of the quorum: which supervisors sign, and how many must. Each
/// `setSupervisors` installs a whole new set under the next set id; the membership of every set
/// is kept, so an equivocation can still be proven against a set that was since replaced.
abstract contract SupervisorSets is ISupervisorQuorum, AccessControl {
    /// @dev A member's entry in one set, one slot: a signature's membership, duplicate and
    /// exclusion checks read it once.
    struct Member {
        /// @dev 1 + the member's index in its set; 0 for a non-member. A set holds at most 255
        /// members, so positions 1-255 fit a uint8 and a uint256 bitmap.
        uint8 position;
        /// @dev Proven to equivocate in this set: its signatures no longer count.
        bool equivocated;
    }

    uint256 private constant _MAX_SUPERVISORS = 255;

    mapping(uint64 setId => address[] supervisors) private _sets;
    mapping(uint64 setId => mapping(address account => Member)) private _members;
    mapping(address supervisor => uint256 count) private _equivocations;
    /// @dev Packed in one slot, read together by every finalize.
    uint64 private _setId;
    uint8 private _threshold;

    /// @param governor Holds DEFAULT_ADMIN_ROLE: replaces the supervisor set.
    /// @param supervisors_ The first set (set id 1).
    /// @param threshold_ The first set's threshold.
    constructor(address governor, address[] memory supervisors_, uint8 threshold_) {
        if (governor == address(0)) revert QuorumZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, governor);
        _install(supervisors_, threshold_);
    }

    /// @inheritdoc ISupervisorQuorum
    function setSupervisors(address[] calldata supervisors_, uint8 threshold_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _install(supervisors_, threshold_);
    }

    /// @inheritdoc ISupervisorQuorum
    function supervisors() external view returns (address[] memory) {
        return _sets[_setId];
    }

    /// @inheritdoc ISupervisorQuorum
    function threshold() external view returns (uint8) {
        return _threshold;
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

    /// @dev The current set's id and threshold.
    function _currentSet() internal view returns (uint64 id, uint8 t) {
        return (_setId, _threshold);
    }

    /// @dev `account`'s entry in set `id` (all zero for a non-member).
    function _member(uint64 id, address account) internal view returns (Member memory) {
        return _members[id][account];
    }

    /// @dev Marks a member of set `id` as an equivocator, once; reverts if it already is.
    function _recordEquivocation(uint64 id, address supervisor) internal {
        Member storage m = _members[id][supervisor];
        if (m.position == 0) revert QuorumSignerNotSupervisor(supervisor, id);
        if (m.equivocated) revert QuorumEquivocationAlreadyRecorded(supervisor, id);
        m.equivocated = true;
        ++_equivocations[supervisor];
    }

    /// @dev Checks and installs a whole new set under the next id. Nothing of the old set is
    /// erased: its members stay provable, and its signatures stop counting because finalize
    /// accepts only the current id.
    function _install(address[] memory members, uint8 t) private {
        uint256 n = members.length;
        if (n > _MAX_SUPERVISORS) revert QuorumTooManySupervisors(n);
        if (t == 0 || t > n) revert QuorumInvalidThreshold(t, n);
        uint64 id = _setId + 1;
        mapping(address => Member) storage entries = _members[id];
        for (uint256 i; i < n; ++i) {
            address member = members[i];
            if (member == address(0)) revert QuorumZeroSupervisor(i);
            if (entries[member].position != 0) revert QuorumDuplicateSupervisor(member);
            // i < n <= 255, so i + 1 fits a uint8.
            entries[member].position = uint8(i + 1);
        }
        _sets[id] = members;
        _setId = id;
        _threshold = t;
        emit SupervisorsChanged(id, members, t);
    }
}
