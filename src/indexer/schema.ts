/**
 * The regulator's index: what the indexer read from one ledger on one chain, in one SQLite file
 * (Node 22's built-in `node:sqlite`, no native addon; the embedded default) or one PostgreSQL
 * database (`postgresql://…`, for a team: src/indexer/store/postgres.ts). This file is its
 * schema; src/indexer/open.ts opens (creates, upgrades) an index of either backend. The tables mirror the ledger's
 * data; every row that comes from a log is keyed by (transaction, log index), so the same log
 * can never be stored twice. docs/ARCHITECTURE.md ("Regulator's workbench") explains the data path.
 *
 * Amounts are INTEGER minor units (fen). SQLite integers are 64-bit; they are read back as JS
 * numbers, exact up to 2^53 fen (90 trillion yuan), far above any merchant's books.
 */
import { type Database, type Statement, getMeta, hasTable, inTransaction, num, numOrNull, setMeta } from "./store/database.js";

export { type Database, type Statement, getMeta, hasTable, inTransaction, num, numOrNull, setMeta };

/**
 * Bumped when a table changes; an index of another version is refused, except the in-place
 * upgrades of {@link openIndex} (1 to 5 → 6), which only add tables and nullable columns.
 */
export const SCHEMA_VERSION = 6;


/**
 * Version 2: what the indexer needs to follow a chain that reorganizes (src/indexer/reorg.ts).
 * An index of version 1 is upgraded in place by adding these (empty) tables: it holds no
 * unsettled rows, so nothing it holds needs them.
 */
export const REORG_DDL = `
-- The blocks the index has read that are not settled yet (newer than the confirmations), and
-- the newest settled one as the anchor: their hashes and parents, to find a fork point.
CREATE TABLE IF NOT EXISTS recent_blocks (
  block_number INTEGER PRIMARY KEY,
  hash         TEXT NOT NULL,
  parent_hash  TEXT NOT NULL
);

-- The undo log of pages with unsettled blocks: each row the page changed in merchants, accounts,
-- sync_state (and the discrepancies it added), as it was before. A reorg rolls pages back with it.
CREATE TABLE IF NOT EXISTS undo_log (
  seq          INTEGER PRIMARY KEY,
  page_from    INTEGER NOT NULL,
  page_to      INTEGER NOT NULL,
  tbl          TEXT NOT NULL,     -- 'merchants' | 'accounts' | 'sync_state' | 'discrepancies'
  row_key      TEXT NOT NULL,     -- JSON: the row's key (for 'discrepancies': the last id before the page)
  before       TEXT               -- JSON: the row before the page, NULL if the page created it
);
`;

/**
 * Version 3: who may write for each merchant (src/indexer/recorders.ts). One row per recorder
 * event of the registry, keyed like every row from a log; the current keys and standing offers
 * are derived from them, so a reorg rolls them back by deleting the rows of dead blocks. An index
 * of version 1 or 2 is upgraded in place by adding this (empty) table and noting, in meta
 * `recorders_from_block`, the first block whose events it will hold: the views then say the
 * history is incomplete until `prepaid sync --repair` reads it again from the first block.
 */
export const RECORDER_DDL = `
CREATE TABLE IF NOT EXISTS recorder_events (
  tx_hash       TEXT NOT NULL,
  log_index     INTEGER NOT NULL,
  block_number  INTEGER NOT NULL,
  block_time    INTEGER NOT NULL,
  merchant_id   INTEGER NOT NULL,
  event         TEXT NOT NULL,     -- 'registered' | 'offered' | 'offer_cancelled' | 'added' | 'removed'
  recorder      TEXT NOT NULL,     -- the key, 0x-hex lowercase
  actor         TEXT NOT NULL,     -- who: the regulator, the rejecting recorder, or the key itself (renounced)
  executable_at INTEGER,           -- 'offered' only: from when anyone may carry the offer out
  PRIMARY KEY (tx_hash, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recorder_events_by_merchant ON recorder_events (merchant_id, block_number, log_index);
`;

/**
 * Version 4: each merchant's custody (src/indexer/custody.ts). One row per custody event — the
 * ledger's custody-link events and the custody contract's deposits, withdrawals, ratios and
 * custodians — keyed like every row from a log; the figures are derived from them, so a reorg
 * rolls them back by deleting the rows of dead blocks. An index of version 1 to 3 is upgraded in
 * place by adding this (empty) table: the indexer reads the custody events of the blocks it had
 * read already at its next sync (meta `custody_read` names the custody contracts read from the
 * first block on), so nothing needs `--repair`.
 */
export const CUSTODY_DDL = `
CREATE TABLE IF NOT EXISTS custody_events (
  tx_hash       TEXT NOT NULL,
  log_index     INTEGER NOT NULL,
  block_number  INTEGER NOT NULL,
  block_time    INTEGER NOT NULL,
  custody       TEXT NOT NULL,     -- the custody contract (for 'attached': the one attached, zero when detached)
  merchant_id   INTEGER,           -- deposited, withdrawn, ratio-set; NULL for the others
  event         TEXT NOT NULL,     -- 'proposed' | 'cancelled' | 'attached' (ledger) | 'deposited' | 'withdrawn' | 'ratio-set' | 'custodian-set'
  actor         TEXT NOT NULL,     -- depositor, withdrawing recorder, regulator, admin, canceller; 'attached': the custody replaced
  counterparty  TEXT,              -- 'withdrawn': who received the tokens; 'custodian-set': the custodian
  amount        INTEGER,           -- deposited or withdrawn
  held_after    INTEGER,           -- the merchant's custody after a deposit or withdrawal
  required_at   INTEGER,           -- 'withdrawn': the requirement then
  ratio_before  INTEGER,           -- 'ratio-set': the ratio before (bps); 'custodian-set': 1 granted, 0 revoked
  ratio_bps     INTEGER,           -- 'ratio-set': the new ratio (bps)
  executable_at INTEGER,           -- 'proposed': from when anyone may carry the change out
  PRIMARY KEY (tx_hash, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS custody_events_by_merchant ON custody_events (custody, merchant_id, block_number, log_index);
`;

/**
 * Version 5: the card holders' protection (src/indexer/protection.ts). One row per
 * `MerchantPolicySet` of the ledger and per holder-protection event of a custody contract
 * (claims opened, claimed, swept; cooling-off paid, owed, met), keyed like every row from a log;
 * the card rules, claims rounds and cooling-off obligations are derived from them. The refunds
 * custody books on the ledger (`Settled`) are records: `records` gains `settlement` and `holder`
 * ({@link SETTLEMENT_COLUMNS}). An index of version 1 to 4 is upgraded in place by adding this
 * (empty) table and those (NULL) columns: it was made by code that knew no settlement, of a
 * ledger deployed before them, which logs neither settlements nor card rules.
 */
export const PROTECTION_DDL = `
CREATE TABLE IF NOT EXISTS protection_events (
  tx_hash          TEXT NOT NULL,
  log_index        INTEGER NOT NULL,
  block_number     INTEGER NOT NULL,
  block_time       INTEGER NOT NULL,
  contract         TEXT NOT NULL,     -- the ledger ('policy-set') or the custody contract
  merchant_id      INTEGER NOT NULL,
  event            TEXT NOT NULL,     -- 'policy-set' | 'claims-opened' | 'claimed' | 'swept' | 'cooling-off-paid' | 'cooling-off-owed' | 'obligation-met'
  account          TEXT,              -- the card: claimed, cooling-off-*, obligation-met
  actor            TEXT NOT NULL,     -- the regulator (policy-set, claims-opened), the holder (claimed, cooling-off-*), the payer (obligation-met), the caller (swept)
  recipient        TEXT,              -- where the money went or goes (to); claims-opened: the residual recipient
  amount           INTEGER,           -- paid (claimed), swept, returned or owed (cooling-off-*, obligation-met); claims-opened: the pool
  balance          INTEGER,           -- claimed: the card's balance before; claims-opened: the merchant's liability
  record_index     INTEGER,           -- the settlement record booked (claimed when paid, cooling-off-paid, obligation-met)
  due_by           INTEGER,           -- claims-opened: the deadline; cooling-off-owed: when the merchant must have paid
  card_cap         INTEGER,           -- policy-set: the card cap (fen, 0: none)
  cooling_off_days INTEGER,           -- policy-set: days of cooling-off (0: none)
  PRIMARY KEY (tx_hash, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS protection_events_by_merchant ON protection_events (merchant_id, block_number, log_index);
`;

/**
 * Version 6: the merchants' registry data (src/indexer/profiles.ts), one row per
 * `MerchantProfileSet`. An index of version 1 to 5 is upgraded in place by adding this (empty)
 * table and noting, in meta \`profiles_from_block\`, the first block whose events it holds: the
 * profiles published before need \`prepaid sync --repair\` (a ledger deployed before the event
 * has none to miss).
 */
export const PROFILE_DDL = `
CREATE TABLE IF NOT EXISTS merchant_profiles (
  tx_hash       TEXT NOT NULL,
  log_index     INTEGER NOT NULL,
  block_number  INTEGER NOT NULL,
  block_time    INTEGER NOT NULL,
  merchant_id   INTEGER NOT NULL,
  regulator     TEXT NOT NULL,     -- who published it, 0x-hex lowercase
  name          TEXT NOT NULL,
  licence       TEXT NOT NULL,
  category      TEXT NOT NULL,
  district      TEXT NOT NULL,
  PRIMARY KEY (tx_hash, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS merchant_profiles_by_merchant ON merchant_profiles (merchant_id, block_number, log_index);
`;

/** Settlements by merchant, in record order (the liability chart and the views read them; few rows). */
export const SETTLEMENT_INDEX = "CREATE INDEX IF NOT EXISTS records_settled ON records (merchant_id, record_index) WHERE settlement IS NOT NULL;";

/** Version 5's columns of `records`: set for a settlement (`Settled`), NULL for a record of a batch. */
export const SETTLEMENT_COLUMNS = [
  "settlement INTEGER", // 1 claim, 2 cooling-off (IPrepaidLedger.SettlementReason)
  "holder TEXT", // the card holder custody paid, 0x-hex lowercase
] as const;

export const DDL = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- The sync cursor and the replay's state at it, written in the same transaction as the rows.
CREATE TABLE IF NOT EXISTS sync_state (
  id                 INTEGER PRIMARY KEY CHECK (id = 1),
  settled_block      INTEGER NOT NULL,  -- every log up to this block is in the index
  settled_hash       TEXT NOT NULL,     -- its hash, to notice a reorg deeper than the confirmations
  settled_time       INTEGER NOT NULL,  -- its timestamp: "now" for the risk rules
  record_count       INTEGER NOT NULL,  -- records indexed (the last record index)
  chain_head         TEXT NOT NULL,     -- the hash chain rebuilt up to record_count
  final_record_count INTEGER NOT NULL   -- records covered by the quorum's last final checkpoint
);

CREATE TABLE IF NOT EXISTS merchants (
  merchant_id   INTEGER PRIMARY KEY,
  status        INTEGER NOT NULL DEFAULT 0,  -- 1 active, 2 suspended, 3 winding down, 4 closed, 0 never registered in the logs read
  recorder      TEXT,
  registered_block INTEGER,
  suspended_reason TEXT,
  record_count  INTEGER NOT NULL DEFAULT 0,
  account_count INTEGER NOT NULL DEFAULT 0,
  topped_up     INTEGER NOT NULL DEFAULT 0,
  consumed      INTEGER NOT NULL DEFAULT 0,
  refunded      INTEGER NOT NULL DEFAULT 0,
  batches       INTEGER NOT NULL DEFAULT 0,
  next_sequence INTEGER NOT NULL DEFAULT 1,
  bad_records   INTEGER NOT NULL DEFAULT 0,
  first_time    INTEGER,   -- block time of its first record
  last_time     INTEGER,   -- block time of its last record
  last_service_time INTEGER -- block time of its last consumption or refund
);

CREATE TABLE IF NOT EXISTS accounts (
  merchant_id    INTEGER NOT NULL,
  account        TEXT NOT NULL,   -- 0x-hex, lowercase
  record_count   INTEGER NOT NULL,
  initial_amount INTEGER NOT NULL,
  topped_up      INTEGER NOT NULL,
  consumed       INTEGER NOT NULL,
  refunded       INTEGER NOT NULL,
  balance        INTEGER NOT NULL,
  bad_records    INTEGER NOT NULL DEFAULT 0,
  opened_time    INTEGER NOT NULL,
  last_time      INTEGER NOT NULL,
  PRIMARY KEY (merchant_id, account)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS accounts_by_account ON accounts (account);
CREATE INDEX IF NOT EXISTS accounts_by_balance ON accounts (merchant_id, balance DESC);

CREATE TABLE IF NOT EXISTS batches (
  tx_hash      TEXT NOT NULL,
  log_index    INTEGER NOT NULL,
  block_number INTEGER NOT NULL,
  block_time   INTEGER NOT NULL,
  merchant_id  INTEGER NOT NULL,
  sequence     INTEGER NOT NULL,
  recorder     TEXT NOT NULL,
  first_record INTEGER NOT NULL,
  record_count INTEGER NOT NULL,
  chain_head   TEXT NOT NULL,
  topped_up    INTEGER NOT NULL,  -- this batch's sums, by kind
  consumed     INTEGER NOT NULL,
  refunded     INTEGER NOT NULL,
  liability_after INTEGER NOT NULL,  -- the merchant's liability once the batch is booked
  PRIMARY KEY (tx_hash, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batches_by_merchant ON batches (merchant_id, block_time);

CREATE TABLE IF NOT EXISTS records (
  record_index INTEGER PRIMARY KEY,
  tx_hash      TEXT NOT NULL,
  log_index    INTEGER NOT NULL,
  block_number INTEGER NOT NULL,
  block_time   INTEGER NOT NULL,
  merchant_id  INTEGER NOT NULL,
  account      TEXT NOT NULL,
  kind         INTEGER NOT NULL,
  amount       INTEGER NOT NULL,
  commitment   TEXT NOT NULL,     -- '' for a settlement (it has none)
  ciphertext   BLOB NOT NULL,     -- kept, so a later key or a re-check needs no RPC; empty for a settlement
  verification TEXT NOT NULL,     -- 'verified' | 'failed' | 'encrypted' (no key given)
  problems     TEXT NOT NULL,     -- comma-separated discrepancy kinds, '' when none
  d_time       INTEGER,           -- decrypted details, when the key opened them
  d_order_ref  TEXT,
  d_memo       TEXT,
  settlement   INTEGER,           -- a settlement booked by custody: 1 claim, 2 cooling-off; NULL for a record of a batch
  holder       TEXT,              -- a settlement's card holder
  UNIQUE (tx_hash, log_index)
);
CREATE INDEX IF NOT EXISTS records_by_account ON records (merchant_id, account, record_index);
CREATE INDEX IF NOT EXISTS records_failed ON records (verification) WHERE verification = 'failed';

CREATE TABLE IF NOT EXISTS merchant_events (
  tx_hash      TEXT NOT NULL,
  log_index    INTEGER NOT NULL,
  block_number INTEGER NOT NULL,
  block_time   INTEGER NOT NULL,
  merchant_id  INTEGER NOT NULL,
  event        TEXT NOT NULL,     -- 'registered' | 'suspended' | 'reinstated' | 'winding-down' | 'closed'
  detail       TEXT,
  PRIMARY KEY (tx_hash, log_index)
) WITHOUT ROWID;

-- Checkpoints: 'marked' by the ledger (CheckpointMarked), 'final' by the quorum (CheckpointFinalized).
CREATE TABLE IF NOT EXISTS checkpoints (
  tx_hash      TEXT NOT NULL,
  log_index    INTEGER NOT NULL,
  block_number INTEGER NOT NULL,
  block_time   INTEGER NOT NULL,
  source       TEXT NOT NULL,
  record_count INTEGER NOT NULL,
  chain_head   TEXT NOT NULL,
  state_digest TEXT,
  set_id       INTEGER,
  PRIMARY KEY (tx_hash, log_index)
) WITHOUT ROWID;

-- Every problem the replay found, with the record it names (if any).
CREATE TABLE IF NOT EXISTS discrepancies (
  id           INTEGER PRIMARY KEY,
  kind         TEXT NOT NULL,
  message      TEXT NOT NULL,
  record_index INTEGER,
  merchant_id  INTEGER,
  account      TEXT,
  tx_hash      TEXT,
  block_number INTEGER,
  log_index    INTEGER,
  details      TEXT,
  UNIQUE (kind, tx_hash, log_index, record_index)
);

-- The risk rules' findings at the last sync (replaced as a whole each time they are evaluated).
CREATE TABLE IF NOT EXISTS alerts (
  id           INTEGER PRIMARY KEY,
  rule         TEXT NOT NULL,
  severity     TEXT NOT NULL,
  merchant_id  INTEGER,
  account      TEXT,
  record_index INTEGER,
  message      TEXT NOT NULL,
  value        INTEGER,
  threshold    INTEGER,
  as_of_block  INTEGER NOT NULL,
  as_of_time   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_merchant ON alerts (merchant_id);
` + REORG_DDL + RECORDER_DDL + CUSTODY_DDL + PROTECTION_DDL + PROFILE_DDL + SETTLEMENT_INDEX;

/** The tables of data, in the order a digest covers them (not the reorg bookkeeping: recent_blocks, undo_log). */
export const TABLES = [
  "meta",
  "sync_state",
  "merchants",
  "accounts",
  "batches",
  "records",
  "merchant_events",
  "recorder_events",
  "custody_events",
  "protection_events",
  "merchant_profiles",
  "checkpoints",
  "discrepancies",
  "alerts",
] as const;
