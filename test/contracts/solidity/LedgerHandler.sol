// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {PrepaidLedger} from "../../../contracts/PrepaidLedger.sol";
import {SupervisorQuorum} from "../../../contracts/SupervisorQuorum.sol";
import {ISupervisorQuorum} from "../../../contracts/interfaces/ISupervisorQuorum.sol";

/// @notice The few Hardhat/Foundry cheatcodes the handler uses (forge-std on npm has no StdInvariant).
interface Vm {
    function warp(uint256 timestamp) external;
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function addr(uint256 privateKey) external pure returns (address);
    function getCode(string calldata artifactPath) external view returns (bytes memory creationBytecode);
}

/// @notice Drives a PrepaidLedger and its SupervisorQuorum with random operations, keeping a
/// model (ghost books, ghost hash chain) and counting every outcome the model did not predict.
/// It is the merchants' recorder, the quorum's governor and the submitter of signatures; the
/// supervisors and the governor's own signing key are private keys it signs with.
contract LedgerHandler {
    Vm internal constant VM = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant MERCHANTS = 2;
    uint256 internal constant CARDS = 4;
    uint256 internal constant SUPERVISORS = 4;
    uint256 internal constant GOVERNOR_KEY = 0xB0B;
    uint48 internal constant MAX48 = type(uint48).max;
    /// @dev The most a card's books hold (PackedAccount): 2^40 - 1.
    uint48 internal constant MAX40 = (1 << 40) - 1;
    /// @dev Chain version 2's batch-link tag (docs/FORMAT.md 7), written out, not read from the ledger.
    bytes32 internal constant BATCH_TAG = keccak256("prepaid-ledger.batch.v2");

    PrepaidLedger public immutable ledger;
    SupervisorQuorum public immutable quorum;

    struct Books {
        uint256 toppedUp;
        uint256 consumed;
        uint256 refunded;
        uint256 initialAmount;
        uint256 recordCount;
    }

    mapping(uint256 merchant => mapping(uint256 card => Books)) public ghost;
    bytes32 public ghostHead;
    /// @notice The ghost chain's head after each record count.
    mapping(uint64 count => bytes32 head) public ghostHeadAt;
    uint64 public ghostCount;
    uint64[] public marks;
    /// @notice Outcomes the model did not predict; every invariant run requires 0.
    uint256 public surprises;
    /// @notice Whether a set holding the governor's own key was ever installed (only after the delay).
    bool public governorSetInstalled;
    /// @notice The head and state digest of the last checkpoint made final (the contract keeps
    /// only its count; these are what its CheckpointFinalized event said).
    bytes32 public finalHead;
    bytes32 public finalDigest;
    uint256 public calls;

    /// @dev Creates the quorum here, in the constructor, so that its bytecode sits in this
    /// contract's initcode, not its runtime code (which the 24,576-byte limit concerns).
    constructor(PrepaidLedger ledger_) {
        ledger = ledger_;
        address[] memory supervisors = new address[](SUPERVISORS);
        for (uint256 i; i < SUPERVISORS; ++i) supervisors[i] = VM.addr(supervisorKey(i));
        // This handler is the governor: it proposes; the supervisors' keys sign.
        quorum = new SupervisorQuorum(address(this), address(ledger_), supervisors, 3, 0, 3600);
        ghostHead = ledger_.genesisHead();
    }

    /// @notice The honest digest of the books after `count` records (what honest supervisors sign).
    function honestDigest(uint64 count) public pure returns (bytes32) {
        return keccak256(abi.encode("books", count));
    }

    /// @notice The opaque account id of card number `card`.
    function cardId(uint256 card) public pure returns (bytes32) {
        return keccak256(abi.encode("card", card));
    }

    /// @notice Supervisor `i`'s private key (test keys only).
    function supervisorKey(uint256 i) public pure returns (uint256) {
        return 0xA11CE + i;
    }

    // ------------------------------------------------------------------ ledger operations

    /// @notice One record (top-up, consumption or refund) as the merchant's next batch, with an
    /// empty envelope or 32 bytes derived from `envelopeSeed` (the ledger links its hash).
    function book(uint256 merchantSeed, uint256 cardSeed, uint256 kindSeed, uint256 amountSeed, uint256 envelopeSeed)
        external
    {
        ++calls;
        uint32 merchant = uint32(1 + merchantSeed % MERCHANTS);
        uint256 card = cardSeed % CARDS;
        uint8 kind = uint8(1 + kindSeed % 3);
        // Mostly small amounts, sometimes the most a card holds, or the most a record carries.
        uint48 amount = amountSeed % 8 == 0 ? MAX40 : amountSeed % 16 == 1 ? MAX48 : uint48(1 + amountSeed % 100_000);
        Books storage g = ghost[merchant][card];
        bool ok;
        if (kind == 1) ok = uint256(g.toppedUp) + amount <= MAX40;
        else ok = g.toppedUp != 0 && amount <= g.toppedUp - g.consumed - g.refunded;

        bytes memory rec =
            abi.encodePacked(kind, amount, cardId(card), keccak256(abi.encode(calls)), uint16(1), bytes1(0x02));
        uint64 sequence = ledger.merchantBooks(merchant).nextSequence;
        bytes memory envelope = envelopeSeed % 2 == 0 ? bytes("") : abi.encodePacked(keccak256(abi.encode(envelopeSeed)));
        try ledger.recordBatch(merchant, sequence, envelope, abi.encodePacked(uint8(1), uint16(1), rec)) {
            if (!ok) ++surprises;
            if (g.toppedUp == 0) g.initialAmount = amount;
            if (kind == 1) g.toppedUp += amount;
            else if (kind == 2) g.consumed += amount;
            else g.refunded += amount;
            ++g.recordCount;
            ++ghostCount;
            // Chain version 2: the batch link, then the record link.
            ghostHead = keccak256(
                abi.encodePacked(ghostHead, BATCH_TAG, merchant, sequence, address(this), keccak256(envelope), uint16(1))
            );
            ghostHead = keccak256(abi.encodePacked(ghostHead, ghostCount, merchant, rec));
            ghostHeadAt[ghostCount] = ghostHead;
        } catch {
            if (ok) ++surprises;
        }
    }

    /// @notice Marks the current head for checkpoints.
    function mark() external {
        ++calls;
        if (ghostCount == 0) return;
        (uint64 count,) = ledger.markCheckpoint();
        if (count != ghostCount) ++surprises;
        if (marks.length == 0 || marks[marks.length - 1] != count) marks.push(count);
    }

    // ------------------------------------------------------------------ quorum operations

    /// @notice Honest supervisors (a random subset) sign the latest mark, or the ledger's
    /// current head unmarked (bit 8 of the mask), and submit it.
    function finalize(uint256 signerMask) external {
        ++calls;
        uint64 count;
        bytes32 head;
        if (signerMask & 256 != 0) {
            (count, head) = ledger.chainHead();
            if (count == 0) return;
        } else {
            if (marks.length == 0) return;
            count = marks[marks.length - 1];
            head = ledger.markedHead(count);
        }
        uint64 last = quorum.lastFinal();
        uint64 set = quorum.setId();
        ISupervisorQuorum.Checkpoint memory c =
            ISupervisorQuorum.Checkpoint(address(ledger), count, head, honestDigest(count), set);
        address[] memory members = quorum.signingMembers(set);
        (bytes memory packed, uint256 signed) = _pack(c, members, _honestKeys(members.length, signerMask));
        bool ok = count > last && signed >= quorum.threshold() && !governorSetInstalled;
        try quorum.finalizeRecords(packed) {
            if (!ok) ++surprises;
            finalHead = head;
            finalDigest = c.stateDigest;
        } catch {
            if (ok) ++surprises;
        }
    }

    /// @notice The governor tries to make an invented digest final with its own key.
    function governorForges(uint256 countSeed) external {
        ++calls;
        if (marks.length == 0) return;
        uint64 count = marks[countSeed % marks.length];
        ISupervisorQuorum.Checkpoint memory c = ISupervisorQuorum.Checkpoint(
            address(ledger), count, ledger.markedHead(count), keccak256("invented"), quorum.setId()
        );
        address[] memory members = quorum.signingMembers(c.setId);
        // The governor's signature at the first place: its own when its set was installed.
        uint256[] memory keys = new uint256[](members.length);
        keys[0] = GOVERNOR_KEY;
        (bytes memory packed,) = _pack(c, members, keys);
        try quorum.finalizeRecords(packed) {
            // Possible only once a set of the governor's own key was installed after the delay.
            if (!governorSetInstalled) ++surprises;
            finalHead = c.chainHead;
            finalDigest = c.stateDigest;
        } catch {}
    }

    /// @notice The governor proposes a set of its own key.
    function governorProposes() external {
        ++calls;
        address[] memory mine = new address[](1);
        mine[0] = VM.addr(GOVERNOR_KEY);
        quorum.proposeSupervisors(mine, 1);
    }

    /// @notice Time passes (up to two delays), then anyone tries to carry out the proposal.
    function executeAfter(uint256 secondsSeed) external {
        ++calls;
        (uint64 proposal,, uint64 executableAt) = quorum.pendingSupervisorChange();
        VM.warp(block.timestamp + secondsSeed % (2 * quorum.SET_CHANGE_DELAY()));
        address[] memory mine = new address[](1);
        mine[0] = VM.addr(GOVERNOR_KEY);
        bool ok = proposal != 0 && block.timestamp >= executableAt;
        try quorum.executeSupervisors(mine, 1) {
            if (!ok) ++surprises;
            governorSetInstalled = true;
        } catch {
            if (ok) ++surprises;
        }
    }

    /// @notice The current set (if it is still the honest one) cancels the pending proposal.
    function supervisorsCancel(uint256 signerMask) external {
        ++calls;
        (uint64 proposal,,) = quorum.pendingSupervisorChange();
        if (proposal == 0 || governorSetInstalled) return;
        bytes32 digest = quorum.cancellationDigest(proposal);
        bytes[] memory sigs = _signDigest(digest, signerMask);
        bool ok = sigs.length >= quorum.threshold();
        try quorum.cancelSupervisorChange(sigs) {
            if (!ok) ++surprises;
        } catch {
            if (ok) ++surprises;
        }
    }

    // ------------------------------------------------------------------ helpers

    /// @notice How many distinct record counts were marked.
    function marksLength() external view returns (uint256) {
        return marks.length;
    }

    /// @dev The honest supervisors' keys at the places `mask` names (never none: bit 0 at least),
    /// for a signing list of `n` places (0 where nobody signs; places beyond the 4 stay 0).
    function _honestKeys(uint256 n, uint256 mask) private pure returns (uint256[] memory keys) {
        mask = (mask % 16) | 1;
        keys = new uint256[](n);
        for (uint256 i; i < SUPERVISORS && i < n; ++i) {
            if (mask & (1 << i) != 0) keys[i] = supervisorKey(i);
        }
    }

    /// @dev `finalizeRecords`'s packed checkpoint (ISupervisorQuorum.finalizeRecords): the signature of
    /// `keys[i]` at place i where it is non-zero, the other members' addresses after them; and
    /// how many signed. Sets here hold at most 8 members, so the bitmap is one byte.
    function _pack(ISupervisorQuorum.Checkpoint memory c, address[] memory members, uint256[] memory keys)
        private
        view
        returns (bytes memory packed, uint256 signed)
    {
        bytes32 digest = quorum.checkpointDigest(c);
        uint256 bitmap;
        bytes memory sigs;
        bytes memory others;
        for (uint256 i; i < members.length; ++i) {
            if (keys[i] == 0) {
                others = bytes.concat(others, bytes20(members[i]));
                continue;
            }
            (uint8 v, bytes32 r, bytes32 s) = VM.sign(keys[i], digest);
            sigs = bytes.concat(sigs, r, bytes32(uint256(s) | (uint256(v - 27) << 255)));
            bitmap |= 1 << i;
            ++signed;
        }
        packed = bytes.concat(
            abi.encodePacked(c.recordCount, c.chainHead, c.stateDigest, c.setId, uint8(members.length), uint8(bitmap)),
            sigs,
            others
        );
    }

    /// @dev Signatures of the supervisors whose bit is set in `mask` (never empty: bit 0 at least).
    function _signDigest(bytes32 digest, uint256 mask) private pure returns (bytes[] memory sigs) {
        mask = (mask % 16) | 1;
        uint256 n;
        for (uint256 i; i < SUPERVISORS; ++i) if (mask & (1 << i) != 0) ++n;
        sigs = new bytes[](n);
        uint256 k;
        for (uint256 i; i < SUPERVISORS; ++i) {
            if (mask & (1 << i) != 0) sigs[k++] = _sign(supervisorKey(i), digest);
        }
    }


    function _sign(uint256 key, bytes32 digest) private pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = VM.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }
}
