// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IPrepaidLedger
/// @notice A regulator-supervised ledger of prepaid cards (gym, school, salon cards). Each
/// merchant's system uploads its card transactions as records: a top-up, a consumption or a
/// refund, each with a ciphertext of its details (readable only by the regulator, optionally
/// the merchant) and a 32-byte hash commitment to them. The contract keeps every card's books
/// (initial amount, totals, remaining balance, number of records) and a running hash chain over
/// all batches and records, so a regulator can prove what every merchant owes its card holders.
/// @dev Byte formats (packed records, ciphertexts, envelope, hash chain) are specified in
/// docs/FORMAT.md. Amounts are integers in the card's minor unit (fen, cents).
interface IPrepaidLedger {
    /// @notice What a record does to its account. Values 4-255 are reserved for modules.
    enum RecordKind {
        None,
        TopUp,
        Consume,
        Refund
    }

    /// @notice A merchant's standing with the regulator. Active books everything; Suspended
    /// books nothing until reinstated; WindingDown books refunds only, so the merchant can pay
    /// its card holders back; Closed books nothing, for good (its custody is kept for its card
    /// holders). Regulators move a merchant: Active <-> Suspended, Active or Suspended ->
    /// WindingDown, any registered status but Closed -> Closed.
    enum MerchantStatus {
        None,
        Active,
        Suspended,
        WindingDown,
        Closed
    }

    /// @notice Why the attached custody contract booked a settlement on a card (`settle`): a
    /// closed merchant's card holder claimed from its custody, or a holder took back a new
    /// card within its cooling-off period.
    enum SettlementReason {
        None,
        Claim,
        CoolingOff
    }

    /// @notice The books of one prepaid account (card), as kept by the contract.
    /// @param merchantId The merchant that sold the card (0 while no top-up has opened it).
    /// @param recordCount Number of records booked against the account.
    /// @param initialAmount Amount of the first top-up.
    /// @param toppedUp Sum of all top-ups, the first included.
    /// @param consumed Sum of all consumptions.
    /// @param refunded Sum of all refunds paid back to the card holder.
    /// @param balance What the merchant still owes: toppedUp - consumed - refunded.
    /// @param lastTopUpAt When the latest top-up was booked (block timestamp, seconds; 0 while
    /// unopened): the card's cooling-off period runs from here.
    /// @param coolingOffTopUps The top-ups a cooling-off return may still take back: the latest
    /// one and each earlier one booked within the cooling-off period before the next (a run),
    /// less cooling-off returns paid (docs/CUSTODY.md).
    /// @dev Amounts are at most 2^40 - 1 and recordCount at most 2^24 - 1 (PackedAccount); the
    /// wider types keep the ABI of earlier versions.
    struct AccountBooks {
        uint32 merchantId;
        uint32 recordCount;
        uint48 initialAmount;
        uint48 toppedUp;
        uint48 consumed;
        uint48 refunded;
        uint256 balance;
        uint32 lastTopUpAt;
        uint48 coolingOffTopUps;
    }

    /// @notice The books and standing of one merchant.
    /// @param status Active, Suspended, WindingDown, Closed, or None if never registered.
    /// @param nextSequence The sequence number the merchant's next batch must carry.
    /// @param recordCount Number of records the merchant has uploaded.
    /// @param accountCount Number of accounts the merchant has opened.
    /// @param toppedUp Sum of all top-ups over the merchant's accounts (below 2^80: at most
    /// 2^32 - 1 accounts of at most 2^48 - 1 each).
    /// @param consumed Sum of all consumptions over the merchant's accounts.
    /// @param refunded Sum of all refunds over the merchant's accounts.
    /// @param liability Prepaid money outstanding: toppedUp - consumed - refunded.
    struct MerchantBooks {
        MerchantStatus status;
        uint64 nextSequence;
        uint64 recordCount;
        uint32 accountCount;
        uint256 toppedUp;
        uint256 consumed;
        uint256 refunded;
        uint256 liability;
    }

    // ---------------------------------------------------------------- events

    /// @notice A regulator registered a merchant.
    /// @param merchantId The new merchant's id.
    /// @param recorder The first key allowed to upload the merchant's records.
    /// @param regulator The regulator who registered it.
    event MerchantRegistered(uint32 indexed merchantId, address indexed recorder, address indexed regulator);

    /// @notice A regulator suspended a merchant: its recorders can upload nothing until reinstated.
    /// @param merchantId The suspended merchant.
    /// @param regulator The regulator who suspended it.
    /// @param reason A short reason code chosen by the regulator (for example "licence-revoked").
    event MerchantSuspended(uint32 indexed merchantId, address indexed regulator, bytes32 reason);

    /// @notice A regulator began winding a merchant down: its recorders may book refunds only.
    /// @param merchantId The merchant.
    /// @param regulator The regulator who decided it.
    /// @param reason A short reason code chosen by the regulator (for example "exit").
    event MerchantWindingDown(uint32 indexed merchantId, address indexed regulator, bytes32 reason);

    /// @notice A regulator closed a merchant: it books nothing more, and its custody stays for
    /// its card holders. Final.
    /// @param merchantId The merchant.
    /// @param regulator The regulator who closed it.
    /// @param reason A short reason code chosen by the regulator.
    event MerchantClosed(uint32 indexed merchantId, address indexed regulator, bytes32 reason);

    /// @notice The default admin proposed replacing (or detaching) the custody contract; anyone
    /// may carry it out from `executableAt` on, unless an admin or a regulator cancels it.
    /// @param custody The proposed custody contract, or zero to detach.
    /// @param admin The admin who proposed it.
    /// @param executableAt From when attachCustody carries it out.
    event CustodyChangeProposed(address indexed custody, address indexed admin, uint64 executableAt);

    /// @notice The custody contract whose coverage the ledger checks changed.
    /// @param previous The one before (zero if none).
    /// @param custody The one now (zero if detached).
    event CustodyAttached(address indexed previous, address indexed custody);

    /// @notice A proposed custody change was withdrawn.
    /// @param custody The custody contract that was proposed.
    /// @param by The admin or regulator who cancelled it.
    event CustodyChangeCancelled(address indexed custody, address indexed by);

    /// @notice A regulator reinstated a suspended merchant.
    /// @param merchantId The reinstated merchant.
    /// @param regulator The regulator who reinstated it.
    event MerchantReinstated(uint32 indexed merchantId, address indexed regulator);

    /// @notice A key was allowed to upload a merchant's records. Together with
    /// MerchantRegistered this names every key that ever held a merchant's recorder role: the
    /// role changes through no other path.
    /// @param merchantId The merchant.
    /// @param recorder The key.
    /// @param regulator The regulator who offered it (addRecorder).
    event RecorderAdded(uint32 indexed merchantId, address indexed recorder, address indexed regulator);

    /// @notice A key may no longer upload a merchant's records.
    /// @param merchantId The merchant.
    /// @param recorder The key.
    /// @param regulator Who removed it: the regulator (removeRecorder), or the key itself
    /// (renounceRecorder).
    event RecorderRemoved(uint32 indexed merchantId, address indexed recorder, address indexed regulator);

    /// @notice A regulator offered a merchant a new recorder key; it becomes a recorder when one
    /// of the merchant's recorders accepts it, or, unless one rejects it, from `executableAt` on.
    /// @param merchantId The merchant.
    /// @param recorder The key offered.
    /// @param regulator The regulator who offered it.
    /// @param executableAt From when anyone may carry out the offer without the merchant.
    event RecorderOffered(uint32 indexed merchantId, address indexed recorder, address indexed regulator, uint64 executableAt);

    /// @notice A recorder offer was withdrawn: rejected by one of the merchant's recorders, or
    /// cancelled by a regulator's removeRecorder.
    /// @param merchantId The merchant.
    /// @param recorder The key that was offered.
    /// @param by The recorder who rejected it or the regulator who cancelled it.
    event RecorderOfferCancelled(uint32 indexed merchantId, address indexed recorder, address indexed by);

    /// @notice One record was booked. Emitted once per record, in record order.
    /// @dev The log's data is NOT ABI-encoded: it is `recordIndex u64 | kind u8 | amount u48 |
    /// ciphertext`, packed (docs/FORMAT.md 6), decoded by src/ledger/codec.ts. A record's log is
    /// its largest cost after its storage word, and ABI encoding would add 64 bytes of offset
    /// and length plus padding to every one (about 700 gas a record). Everything a regulator
    /// filters by is an indexed topic, which any ABI decoder reads.
    /// @param account The prepaid account (opaque id).
    /// @param merchantId The merchant that owns the account.
    /// @param commitment keccak256 of the record's canonical salted details (docs/FORMAT.md 2.1):
    /// a card holder with a receipt can find the record by it.
    event Recorded(bytes32 indexed account, uint32 indexed merchantId, bytes32 indexed commitment);

    /// @notice A batch of records was booked; emitted after its records, in the same transaction.
    /// @param merchantId The merchant whose records these are.
    /// @param sequence The merchant's batch sequence number this batch consumed.
    /// @param recorder The key that uploaded the batch.
    /// @param firstRecordIndex Ledger-wide index of the batch's first record (records count from 1).
    /// @param count Number of records in the batch.
    /// @param chainHead The ledger's hash-chain head after the batch's last record: chain
    /// version 2 links the batch itself (merchantId, sequence, recorder, keccak256(envelope),
    /// count) before its records (docs/FORMAT.md 7).
    /// @param envelope The batch's data key wrapped for each recipient (docs/FORMAT.md 4); may be empty.
    event BatchRecorded(
        uint32 indexed merchantId,
        uint64 indexed sequence,
        address indexed recorder,
        uint64 firstRecordIndex,
        uint16 count,
        bytes32 chainHead,
        bytes envelope
    );

    /// @notice The regulator set a merchant's card rules.
    /// @param merchantId The merchant.
    /// @param regulator Who set them.
    /// @param cardCap The most a card of this merchant may hold after a top-up, in fen (0: no cap).
    /// @param coolingOffDays Days after a card's first top-up during which its holder may take
    /// back the unused part of it (0: no cooling-off right).
    event MerchantPolicySet(uint32 indexed merchantId, address indexed regulator, uint48 cardCap, uint16 coolingOffDays);

    /// @notice The regulator published a merchant's registry data: public business facts an
    /// indexer shows beside the merchant's id. Nothing is stored on chain; the last event of a
    /// merchant is its profile (docs/FORMAT.md 5).
    /// @param merchantId The merchant.
    /// @param regulator Who published it.
    /// @param name The merchant's trading name (UTF-8).
    /// @param licence Its business licence number.
    /// @param category What it sells (e.g. "fitness", "education").
    /// @param district Where it trades.
    event MerchantProfileSet(
        uint32 indexed merchantId,
        address indexed regulator,
        string name,
        string licence,
        string category,
        string district
    );

    /// @notice The attached custody contract booked a refund on a card it paid out (a claim or a
    /// cooling-off return). It is a record: it takes the next record index, counts in the card's
    /// and the merchant's books like a refund, and is linked into the hash chain as a settlement
    /// link (docs/FORMAT.md 7.3). It carries no ciphertext: everything about it is public.
    /// @param merchantId The merchant whose card it is.
    /// @param account The card.
    /// @param holder The card holder who proved the card theirs (docs/FORMAT.md 2.4).
    /// @param recordIndex Ledger-wide index of this record.
    /// @param reason Claim or CoolingOff.
    /// @param amount The refund booked, in fen.
    /// @param chainHead The chain head after this record.
    event Settled(
        uint32 indexed merchantId,
        bytes32 indexed account,
        address indexed holder,
        uint64 recordIndex,
        SettlementReason reason,
        uint48 amount,
        bytes32 chainHead
    );

    /// @notice The chain head at a record count was kept for checkpoints (see `markCheckpoint`).
    /// @param recordCount The number of records the head covers (the index of the last one).
    /// @param head The chain head after record `recordCount`.
    event CheckpointMarked(uint64 indexed recordCount, bytes32 head);

    // ---------------------------------------------------------------- errors

    /// @notice Merchant id 0 is reserved to mean "no merchant".
    error LedgerInvalidMerchantId(uint32 merchantId);
    /// @notice An address argument was the zero address.
    error LedgerZeroAddress();
    /// @notice The merchant is already registered.
    error LedgerMerchantExists(uint32 merchantId);
    /// @notice No merchant is registered under this id.
    error LedgerUnknownMerchant(uint32 merchantId);
    /// @notice The merchant is suspended and can upload nothing.
    error LedgerMerchantSuspended(uint32 merchantId);
    /// @notice The merchant is closed and can upload nothing, for good.
    error LedgerMerchantClosed(uint32 merchantId);
    /// @notice The merchant is winding down and may book refunds only.
    /// @param merchantId The merchant.
    /// @param account The account of the batch's first record that is not a refund.
    /// @param kind That record's kind.
    error LedgerRefundsOnly(uint32 merchantId, bytes32 account, uint8 kind);
    /// @notice A regulator may not move a merchant from this status to that one.
    /// @param merchantId The merchant.
    /// @param from Its status.
    /// @param to The status asked for.
    error LedgerIllegalTransition(uint32 merchantId, MerchantStatus from, MerchantStatus to);
    /// @notice The batch would leave the merchant's liability above what its custody covers.
    /// @param merchantId The merchant.
    /// @param liability Its liability after the batch.
    /// @param required What custody must hold for that liability (ratio × liability, rounded up).
    /// @param held What custody holds for the merchant.
    error LedgerUndercovered(uint32 merchantId, uint256 liability, uint256 required, uint256 held);
    /// @notice The proposed custody contract is already the one attached.
    error LedgerCustodyUnchanged(address custody);
    /// @notice The proposed custody contract does not follow this ledger.
    /// @param custody The contract proposed.
    /// @param ledger The ledger it names (zero if it names none).
    error LedgerCustodyForAnotherLedger(address custody, address ledger);
    /// @notice No custody change is pending.
    error LedgerNoCustodyChange();
    /// @notice The pending custody change may not be carried out yet.
    /// @param custody The contract proposed.
    /// @param executableAt From when it may.
    error LedgerCustodyChangeNotDue(address custody, uint64 executableAt);
    /// @notice The merchant is not suspended, so it cannot be reinstated.
    error LedgerMerchantNotSuspended(uint32 merchantId);
    /// @notice The caller is not a recorder of this merchant.
    error LedgerUnauthorizedRecorder(address caller, uint32 merchantId);
    /// @notice The batch's sequence number was already used: this batch (or another) landed before.
    error LedgerBatchReplayed(uint32 merchantId, uint64 sequence, uint64 expected);
    /// @notice The batch's sequence number skips ahead: an earlier batch is missing.
    error LedgerSequenceGap(uint32 merchantId, uint64 sequence, uint64 expected);
    /// @notice The packed batch does not parse: it ends early or has bytes after its last record.
    /// @param offset Where parsing stopped (byte offset into the packed records).
    /// @param length The packed records' length.
    error LedgerMalformedBatch(uint256 offset, uint256 length);
    /// @notice The packed batch's leading version byte is not one this contract reads.
    error LedgerUnsupportedVersion(uint8 version);
    /// @notice A batch must hold at least one record.
    error LedgerEmptyBatch();
    /// @notice The record's kind is not TopUp, Consume or Refund.
    error LedgerInvalidKind(bytes32 account, uint8 kind);
    /// @notice A record's amount must be at least 1 minor unit.
    error LedgerZeroAmount(bytes32 account);
    /// @notice A record must carry a non-zero commitment and a non-empty ciphertext.
    error LedgerMissingCommitment(bytes32 account);
    /// @notice Consumption or refund on an account that no top-up opened.
    error LedgerUnknownAccount(bytes32 account);
    /// @notice Consumption or refund beyond the account's balance.
    error LedgerInsufficientBalance(bytes32 account, uint256 balance, uint256 needed);
    /// @notice The account's top-up total (or record count) would exceed what its books can hold.
    error LedgerAccountOverflow(bytes32 account, uint256 total);
    /// @notice No record has been booked, so there is no chain head to mark.
    error LedgerNothingToMark();
    /// @notice The merchant's account count would pass 2^32 - 1, the bound that keeps its
    /// totals from overflowing.
    /// @param merchantId The merchant.
    /// @param accountCount The count the batch would have reached.
    error LedgerMerchantOverflow(uint32 merchantId, uint256 accountCount);
    /// @notice Recorder roles change only through the registry (addRecorder, acceptRecorder,
    /// removeRecorder, renounceRecorder), and the generic role calls manage REGULATOR_ROLE only.
    /// @param role The role given to grantRole, revokeRole or renounceRole.
    error LedgerRoleManagedByRegistry(bytes32 role);
    /// @notice No regulator offered this key to this merchant (or the offer was settled).
    error LedgerNoRecorderOffer(uint32 merchantId, address recorder);
    /// @notice Only one of the merchant's recorders may accept an offer before its delay ran out.
    /// @param executableAt From when anyone may carry it out.
    error LedgerRecorderOfferNotDue(uint32 merchantId, address recorder, uint64 executableAt);
    /// @notice The default admin may not renounce while the ledger is paused: nobody could unpause.
    error LedgerRenounceWhilePaused();
    /// @notice A deployment's delay is shorter than the contract's floor.
    error LedgerDelayTooShort(uint256 delay, uint256 minimum);
    /// @notice A top-up would leave a card above its merchant's card cap (setMerchantPolicy).
    /// @param balance The card's balance the top-up would leave.
    error LedgerCardCapExceeded(uint32 merchantId, bytes32 account, uint256 balance, uint256 cap);
    /// @notice `settle` was called by someone other than the attached custody contract.
    error LedgerNotCustody(address caller, address custody);
    /// @notice A cooling-off period longer than MAX_COOLING_OFF_DAYS.
    error LedgerCoolingOffTooLong(uint32 merchantId, uint256 coolingOffDays, uint256 maximum);
    /// @notice A settlement with no reason (SettlementReason.None) or an unknown one.
    error LedgerInvalidSettlement(uint8 reason);
    /// @notice A field of setMerchantProfile is empty or longer than MAX_PROFILE_FIELD_BYTES.
    /// @param field Which field: 0 name, 1 licence, 2 category, 3 district.
    /// @param length Its length in bytes (UTF-8).
    /// @param maximum The most a field may hold, in bytes.
    error LedgerInvalidProfileField(uint32 merchantId, uint8 field, uint256 length, uint256 maximum);

    // ---------------------------------------------------------------- merchants (regulator)

    /// @notice Registers a merchant and its first recorder. Regulator only.
    /// @param merchantId The merchant's id, chosen by the regulator; not 0, not yet used.
    /// @param recorder The first key the merchant's system uploads with.
    function registerMerchant(uint32 merchantId, address recorder) external;

    /// @notice Suspends a merchant: its uploads revert until it is reinstated. Regulator only.
    /// @param merchantId An active merchant (a suspended one reverts with
    /// LedgerMerchantSuspended, a winding-down or closed one with LedgerIllegalTransition).
    /// @param reason A short reason code, emitted for the record.
    function suspendMerchant(uint32 merchantId, bytes32 reason) external;

    /// @notice Starts winding a merchant down: from now on its recorders may book refunds only
    /// (LedgerRefundsOnly), so it can pay its card holders back; its custody's requirement falls
    /// with every refund. There is no way back to active. Regulator only.
    /// @param merchantId An active or suspended merchant (otherwise LedgerIllegalTransition).
    /// @param reason A short reason code, emitted for the record.
    function windDownMerchant(uint32 merchantId, bytes32 reason) external;

    /// @notice Closes a merchant for good: it books nothing more (LedgerMerchantClosed) and
    /// withdraws nothing from custody, which is kept for its card holders. Regulator only.
    /// @param merchantId An active, suspended or winding-down merchant (a closed one reverts
    /// with LedgerIllegalTransition).
    /// @param reason A short reason code, emitted for the record.
    function closeMerchant(uint32 merchantId, bytes32 reason) external;

    /// @notice Reinstates a suspended merchant. Regulator only.
    /// @param merchantId A suspended merchant.
    function reinstateMerchant(uint32 merchantId) external;

    /// @notice Sets a merchant's card rules. Regulator only. A cap binds top-ups booked after it
    /// (LedgerCardCapExceeded); a card already above a new cap keeps its balance and may be
    /// consumed and refunded. The cooling-off period applies to every top-up of the merchant's
    /// cards, counted from the card's latest top-up (`AccountBooks.lastTopUpAt`); the custody
    /// contract pays it. A new period binds top-ups booked after it is set.
    /// @param merchantId A registered merchant.
    /// @param cardCap The most a card may hold after a top-up, in fen; 0 for no cap (e.g. 500000
    /// for the ¥5,000 cap on cards without a registered name).
    /// @param coolingOffDays 0 to MAX_COOLING_OFF_DAYS (e.g. 7).
    function setMerchantPolicy(uint32 merchantId, uint48 cardCap, uint16 coolingOffDays) external;

    /// @notice Publishes a merchant's registry data (MerchantProfileSet) for indexers. Regulator
    /// only; stores nothing, so a later call replaces the profile for whoever reads the events.
    /// Each field is 1 to MAX_PROFILE_FIELD_BYTES bytes of UTF-8 (LedgerInvalidProfileField).
    /// @param merchantId A registered merchant (else LedgerUnknownMerchant), of any status.
    /// @param name Its trading name.
    /// @param licence Its business licence number.
    /// @param category What it sells.
    /// @param district Where it trades.
    function setMerchantProfile(
        uint32 merchantId,
        string calldata name,
        string calldata licence,
        string calldata category,
        string calldata district
    ) external;

    /// @notice The most bytes one field of a merchant profile may hold: 96 (32 Chinese characters in UTF-8).
    function MAX_PROFILE_FIELD_BYTES() external view returns (uint256);

    /// @notice Offers a merchant another recorder key. Regulator only. A regulator cannot make a
    /// key write for a merchant on its own: the key becomes a recorder when one of the merchant's
    /// recorders accepts it (acceptRecorder), or, if none rejects it (rejectRecorder), once
    /// RECORDER_DELAY has passed (the way back for a merchant that lost every key). A key that
    /// already is a recorder is left as it is, with no event. A new offer for the same key
    /// replaces the old one and restarts its delay.
    /// @param merchantId A registered merchant.
    /// @param recorder The key.
    function addRecorder(uint32 merchantId, address recorder) external;

    /// @notice Carries out a regulator's offer: the key becomes the merchant's recorder
    /// (RecorderAdded). A recorder of the merchant may call it at once; anyone else only from the
    /// offer's `executableAt` on.
    /// @param merchantId A registered merchant with an offer standing for `recorder`.
    /// @param recorder The key offered.
    function acceptRecorder(uint32 merchantId, address recorder) external;

    /// @notice Rejects a regulator's offer. A recorder of the merchant only.
    /// @param merchantId A registered merchant with an offer standing for `recorder`.
    /// @param recorder The key offered.
    function rejectRecorder(uint32 merchantId, address recorder) external;

    /// @notice Revokes a key's right to upload a merchant's records, and withdraws any standing
    /// offer of it. Regulator only; needs no consent (a compromised key must stop at once).
    /// @param merchantId A registered merchant.
    /// @param recorder The key.
    function removeRecorder(uint32 merchantId, address recorder) external;

    /// @notice Gives up the caller's own recorder role for a merchant (RecorderRemoved names the
    /// caller as remover). The generic renounceRole refuses recorder roles.
    /// @param merchantId A merchant the caller records for.
    function renounceRecorder(uint32 merchantId) external;

    // ---------------------------------------------------------------- administration

    /// @notice Stops all bookkeeping (uploads revert) until unpaused. Default admin only.
    /// Merchant and role management keep working, so an incident can be handled while paused.
    /// While paused the default admin cannot renounce (LedgerRenounceWhilePaused), so a paused
    /// ledger always has an admin who can unpause it; a handover to a new admin (two steps,
    /// after `defaultAdminDelay`) still works.
    function pause() external;

    /// @notice Resumes bookkeeping. Default admin only.
    function unpause() external;

    /// @notice Attaches a custody contract, or proposes replacing or detaching the attached one.
    /// Default admin only. With none attached, a custody contract is attached at once
    /// (CustodyAttached): it can only make the ledger stricter. Otherwise the change is a public
    /// proposal (CustodyChangeProposed) that anyone carries out with attachCustody after
    /// `custodyDelay()`, and that the admin or any regulator can cancel before, so one key
    /// cannot detach custody to let an under-covered merchant book. A new proposal replaces a
    /// pending one and restarts its delay.
    /// @param next A MerchantCustody whose LEDGER() is this ledger, or zero to detach.
    function proposeCustody(address next) external;

    /// @notice Carries out the pending custody change once due. Anyone may call it.
    function attachCustody() external;

    /// @notice Withdraws the pending custody change. The default admin or a regulator only.
    function cancelCustodyChange() external;

    // ---------------------------------------------------------------- records (recorders)

    /// @notice Books a batch of records for a merchant, all or none.
    /// @dev `records` is `0x01 | count u16 | record × count`, each record
    /// `kind u8 | amount u48 | account b32 | commitment b32 | ciphertextLength u16 | ciphertext`
    /// (docs/FORMAT.md 5). A single record is a batch of one. The batch (merchantId, sequence,
    /// the caller, keccak256(envelope), count) is linked into the hash chain, then each record
    /// (chain version 2, docs/FORMAT.md 7.1).
    /// @param merchantId The merchant whose records these are; the caller must be its recorder.
    /// @param sequence Must equal `merchant(merchantId).nextSequence`: a replayed batch reverts
    /// with LedgerBatchReplayed, a skipped one with LedgerSequenceGap. A suspended merchant's
    /// batch reverts with LedgerMerchantSuspended, a closed one's with LedgerMerchantClosed, a
    /// winding-down one's with LedgerRefundsOnly unless it holds refunds only; with custody
    /// attached, a batch that raises the liability beyond what custody covers reverts with
    /// LedgerUndercovered.
    /// @param envelope The batch data key wrapped for each recipient, or empty (docs/FORMAT.md 4).
    /// @param records The packed records.
    /// @return firstRecordIndex Ledger-wide index of the first record booked.
    /// @return count Number of records booked.
    function recordBatch(uint32 merchantId, uint64 sequence, bytes calldata envelope, bytes calldata records)
        external
        returns (uint64 firstRecordIndex, uint16 count);

    // ---------------------------------------------------------------- settlements (custody)

    /// @notice Books a refund the attached custody contract has paid to a card holder (a claim
    /// on a closed merchant's custody, or a cooling-off return), so the books stay true. Custody
    /// only (LedgerNotCustody); any registered merchant status. The record is linked into the
    /// hash chain (docs/FORMAT.md 7.3) and emitted as `Settled`.
    /// @param merchantId The merchant whose card it is.
    /// @param account The card; it must hold at least `amount` (LedgerInsufficientBalance).
    /// @param holder The card holder custody paid.
    /// @param reason Claim or CoolingOff.
    /// @param amount The refund, in fen, at least 1.
    /// @return recordIndex The record's ledger-wide index.
    function settle(uint32 merchantId, bytes32 account, address holder, SettlementReason reason, uint256 amount)
        external
        returns (uint64 recordIndex);

    // ---------------------------------------------------------------- checkpoints (anyone)

    /// @notice Keeps the current chain head under the current record count, so a checkpoint
    /// over exactly these records can later be checked against the ledger (SupervisorQuorum
    /// does). Anyone may call it, paused or not: it changes no books. Costs one storage slot
    /// per mark, nothing per record; calling it again at the same count changes nothing and
    /// emits nothing.
    /// @return recordCount Number of records booked so far, now marked.
    /// @return head The chain head after record `recordCount` (docs/FORMAT.md 7).
    function markCheckpoint() external returns (uint64 recordCount, bytes32 head);

    // ---------------------------------------------------------------- views

    /// @notice The books of one account; all zero if no top-up opened it. Accounts are per
    /// merchant: the same opaque id under two merchants is two accounts.
    /// @param merchantId The merchant that sold the card.
    /// @param account The opaque account id.
    /// @return books The account's books, with its balance computed.
    function accountBooks(uint32 merchantId, bytes32 account) external view returns (AccountBooks memory books);

    /// @notice What the merchant still owes on one account.
    /// @param merchantId The merchant that sold the card.
    /// @param account The opaque account id.
    /// @return balance toppedUp - consumed - refunded.
    function balanceOf(uint32 merchantId, bytes32 account) external view returns (uint256 balance);

    /// @notice A merchant's standing, sequence and books.
    /// @param merchantId The merchant.
    /// @return books The merchant's books, with its liability computed.
    function merchantBooks(uint32 merchantId) external view returns (MerchantBooks memory books);

    /// @notice The hash chain over all batches and records (docs/FORMAT.md 7).
    /// @return recordCount Number of records booked so far (the index of the last one).
    /// @return head The chain head after the last record, or the genesis head if none.
    function chainHead() external view returns (uint64 recordCount, bytes32 head);

    /// @notice The chain head kept by `markCheckpoint` at a record count.
    /// @param recordCount A record count.
    /// @return The chain head after record `recordCount`, or zero if that count was never marked.
    function markedHead(uint64 recordCount) external view returns (bytes32);

    /// @notice The chain's starting value, bound to this chain id, this contract's address and
    /// the chain version (its tag, docs/FORMAT.md 7): every version has this view, so a reader
    /// tells a ledger's version by which version's genesis it returns.
    /// @return The head before the first batch.
    function genesisHead() external view returns (bytes32);

    /// @notice The hash-chain rule this ledger links with (docs/FORMAT.md 7): 2 links each
    /// batch (merchantId, sequence, recorder, keccak256(envelope), count) before its records,
    /// from the genesis tag "prepaid-ledger.chain.v2". A ledger without this view is version 1
    /// (records only, genesis tag "prepaid-ledger.chain.v1").
    /// @return The chain version.
    function CHAIN_VERSION() external view returns (uint8);

    /// @notice The AccessControl role that lets a key upload a merchant's records.
    /// @param merchantId The merchant.
    /// @return The role id: keccak256(abi.encode("prepaid-ledger.recorder", merchantId)).
    function recorderRole(uint32 merchantId) external pure returns (bytes32);

    /// @notice A regulator's standing offer of a recorder key to a merchant.
    /// @param merchantId The merchant.
    /// @param recorder The key.
    /// @return regulator The regulator who offered it, or zero if no offer stands.
    /// @return executableAt From when anyone may carry it out.
    function recorderOffer(uint32 merchantId, address recorder)
        external
        view
        returns (address regulator, uint64 executableAt);

    /// @notice Seconds after which a recorder offer nobody rejected may be carried out without
    /// the merchant (set at deployment).
    /// @return The delay.
    function RECORDER_DELAY() external view returns (uint32);

    /// @notice The AccessControl role of regulators.
    /// @return keccak256("prepaid-ledger.regulator").
    function REGULATOR_ROLE() external pure returns (bytes32);

    /// @notice The custody contract whose coverage every liability-raising batch is checked
    /// against, or zero if none is attached (then no coverage is checked).
    /// @return The custody contract.
    function custody() external view returns (address);

    /// @notice The pending custody change, if any.
    /// @return proposed The proposed custody contract (zero: detach).
    /// @return executableAt From when attachCustody carries it out; zero if nothing is pending.
    function pendingCustody() external view returns (address proposed, uint64 executableAt);

    /// @notice How long a custody replacement or detachment waits: the default admin's handover
    /// delay, and at least MIN_CUSTODY_DELAY.
    /// @return Seconds.
    function custodyDelay() external view returns (uint256);

    /// @notice A merchant's card rules (setMerchantPolicy).
    /// @return cardCap The most a card may hold after a top-up, in fen (0: no cap).
    /// @return coolingOffDays Days of cooling-off after a card's first top-up (0: none).
    function merchantPolicy(uint32 merchantId) external view returns (uint48 cardCap, uint16 coolingOffDays);

    /// @notice The longest cooling-off period a regulator may set: 90 days.
    function MAX_COOLING_OFF_DAYS() external view returns (uint16);
}
