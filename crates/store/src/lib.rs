//! mailfuse's durable state, in one SQLite database (WAL mode): what `watch`
//! must not forget across restarts, and what `status`, `unlock` and
//! `unblock` read and change from another process.
//!
//! - **progress**: the detector's state and the read position of every
//!   followed log (and the journal's cursor), saved together in one
//!   transaction, so a restart (even after `kill -9`) neither loses nor
//!   counts twice a line;
//! - **incidents**: each once, by a key the caller derives from what tripped;
//! - **actions**: every action taken or attempted, for idempotency and audit;
//! - **locks** (accounts) and **blocks** (IPs, with expiry);
//! - **senders**: each daemon's (`source`) latest view of the busiest
//!   accounts and their sending windows, replaced every few seconds, for
//!   the dashboard.
//!
//! Times are stored as UTC seconds. Names of accounts are stored lower-case.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mailfuse_core::rows::{RowChange, RowDictionary};
use mailfuse_core::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use rustc_hash::FxHashMap;

mod row_journal;

/// The schema, one step per version (SQLite's `user_version` counts the
/// steps applied): a database written by an older mailfuse gets the steps
/// it lacks, in order; never change a step once released.
const MIGRATIONS: [&str; 11] = [
    SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8,
    SCHEMA_V9, SCHEMA_V10, SCHEMA_V11,
];

const SCHEMA_V1: &str = "
CREATE TABLE progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    saved_at INTEGER NOT NULL,
    detector BLOB NOT NULL,
    positions TEXT NOT NULL
);
CREATE TABLE incidents (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    detected_at INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX incidents_by_time ON incidents (detected_at);
CREATE TABLE actions (
    id INTEGER PRIMARY KEY,
    incident_key TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    at INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX actions_by_incident ON actions (incident_key, action, target);
CREATE TABLE locks (
    account TEXT PRIMARY KEY,
    since INTEGER NOT NULL,
    reason TEXT NOT NULL,
    incident_key TEXT
);
CREATE TABLE blocks (
    ip TEXT PRIMARY KEY,
    since INTEGER NOT NULL,
    until INTEGER NOT NULL,
    reason TEXT NOT NULL,
    incident_key TEXT
);
";

/// Version 2: named state saved whole now and then (the policy server's
/// counters), and the top senders watch and policy publish.
const SCHEMA_V2: &str = "
CREATE TABLE blobs (
    name TEXT PRIMARY KEY,
    saved_at INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE senders (
    source TEXT NOT NULL,
    account TEXT NOT NULL,
    window_secs INTEGER NOT NULL,
    metric TEXT NOT NULL,
    count INTEGER NOT NULL,
    max INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source, account, window_secs, metric)
);
";

/// Version 3: the detector's keyed state (accounts, IPs, networks, open
/// messages) as one row per entry, so a save writes only the entries that
/// changed; `progress.detector` then holds the rest of its state. (A rowid
/// table with an index while rows were a few hundred bytes: see version 4.)
const SCHEMA_V3: &str = "
ALTER TABLE progress ADD COLUMN rows INTEGER NOT NULL DEFAULT 0;
CREATE TABLE detector_rows (
    map TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL
);
CREATE UNIQUE INDEX detector_rows_by_key ON detector_rows (map, key);
";

/// Version 4: the dictionaries compressed detector rows need, each saved
/// once under its id; and the rows in a `WITHOUT ROWID` table keyed by
/// (map, key). Compressed, a row is a hundred or two bytes, small enough
/// for it, and the table no longer holds every key twice (a quarter of
/// its size) nor updates two B-trees per changed row.
const SCHEMA_V4: &str = "
CREATE TABLE row_dictionaries (
    id INTEGER PRIMARY KEY,
    table_name TEXT NOT NULL,
    bytes BLOB NOT NULL
);
CREATE TABLE detector_rows_keyed (
    map TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (map, key)
) WITHOUT ROWID;
INSERT INTO detector_rows_keyed (map, key, value) SELECT map, key, value FROM detector_rows;
DROP TABLE detector_rows;
ALTER TABLE detector_rows_keyed RENAME TO detector_rows;
";

/// Version 5: the journal a save appends its changed detector rows to
/// (`row_journal`), folded into `detector_rows` in the background; a row
/// without a value deletes its key.
const SCHEMA_V5: &str = "
CREATE TABLE row_journal (
    seq INTEGER PRIMARY KEY,
    map TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB
);
";

/// Version 6: the accounts `mailfuse audit --save` found nobody logs into
/// (forward-only, never logged in): their first SMTP login is strong
/// evidence of a hijack for watch.
const SCHEMA_V6: &str = "
CREATE TABLE audit_marks (
    account TEXT PRIMARY KEY,
    problem TEXT NOT NULL,
    marked_at INTEGER NOT NULL
);
";

/// Version 7: alerts waiting to be sent (the responder's queue), so that
/// a restart sends what was pending; one per incident and action.
const SCHEMA_V7: &str = "
CREATE TABLE pending_alerts (
    id INTEGER PRIMARY KEY,
    incident_key TEXT NOT NULL,
    action TEXT NOT NULL,
    queued_at INTEGER NOT NULL,
    payload TEXT NOT NULL,
    UNIQUE (incident_key, action)
);
";

/// Version 8: the cursor of the last journal record watch read
/// (`[watch.journal]`), saved with the read positions of the files.
const SCHEMA_V8: &str = "
ALTER TABLE progress ADD COLUMN journal_cursor TEXT;
";

/// The detector no longer saves a row per login (`account_ids`): it
/// rebuilds them from its accounts' names, saving only the logins that
/// are not UTF-8, whose names are lossy. The old rows go; the few such
/// logins of an older state start a new account at their next line.
const SCHEMA_V9: &str = "
DELETE FROM detector_rows WHERE map = 'account_ids';
DELETE FROM row_journal WHERE map = 'account_ids';
";

/// Each row names its collection by a small number (`row_maps`) rather
/// than by its name: a provider's millions of rows repeated the names.
const SCHEMA_V10: &str = "
CREATE TABLE row_maps (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO row_maps (name)
    SELECT map FROM detector_rows UNION SELECT map FROM row_journal;
CREATE TABLE detector_rows_by_id (
    map INTEGER NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (map, key)
) WITHOUT ROWID;
INSERT INTO detector_rows_by_id (map, key, value)
    SELECT row_maps.id, key, value FROM detector_rows JOIN row_maps ON row_maps.name = map;
DROP TABLE detector_rows;
ALTER TABLE detector_rows_by_id RENAME TO detector_rows;
CREATE TABLE row_journal_by_id (
    seq INTEGER PRIMARY KEY,
    map INTEGER NOT NULL,
    key BLOB NOT NULL,
    value BLOB
);
INSERT INTO row_journal_by_id (seq, map, key, value)
    SELECT seq, row_maps.id, key, value FROM row_journal JOIN row_maps ON row_maps.name = map;
DROP TABLE row_journal;
ALTER TABLE row_journal_by_id RENAME TO row_journal;
";

/// Compressed rows name their dictionary by its id, in a byte for the
/// first 127: the dictionaries saved before, under ids zstd's header gave
/// them (billions), are numbered 1, 2… in the order of those ids (which
/// was each table's order of training). Their rows name them by zstd's id
/// still, which their bytes keep.
const SCHEMA_V11: &str = "
CREATE TABLE row_dictionaries_numbered (
    id INTEGER PRIMARY KEY,
    table_name TEXT NOT NULL,
    bytes BLOB NOT NULL
);
INSERT INTO row_dictionaries_numbered (id, table_name, bytes)
    SELECT ROW_NUMBER() OVER (ORDER BY id), table_name, bytes FROM row_dictionaries;
DROP TABLE row_dictionaries;
ALTER TABLE row_dictionaries_numbered RENAME TO row_dictionaries;
";

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused: the file cannot be opened or written, the disk is
    /// full, or another process held the lock past the busy timeout.
    #[error("state database")]
    Sqlite(#[from] rusqlite::Error),
    /// The directory of a new state file does not exist and cannot be made.
    #[error(
        "cannot create the state directory {}: {source}: create it, writable by the user mailfuse runs as, or choose another state file (watch.state, --state)",
        directory.display()
    )]
    Directory {
        /// The directory.
        directory: std::path::PathBuf,
        /// Why it could not be made.
        source: std::io::Error,
    },
    /// The file was written by a newer mailfuse (its `user_version` is past
    /// the migrations this one knows): refused rather than misread.
    #[error(
        "state database has schema version {found}, this mailfuse knows up to {}: \
         use the mailfuse that wrote it, or move the file away to start afresh",
        MIGRATIONS.len()
    )]
    Version {
        /// The schema version the file says it has.
        found: i64,
    },
    /// A row holds a value this crate never writes (e.g. a blocked IP that
    /// does not parse); the message names it.
    #[error("state database holds a bad value: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the filesystem holding the state is full: SQLite's "full",
    /// or its shared-memory file (WAL mode) that cannot grow.
    pub fn is_disk_full(&self) -> bool {
        /// `SQLITE_IOERR_SHMSIZE`: the `-shm` file could not be extended.
        const SHM_SIZE: std::ffi::c_int = 19 << 8 | 10;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull || e.extended_code == SHM_SIZE
            }
            _ => false,
        }
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// The saved progress of `watch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The wall-clock time of the save (UTC seconds), not a log time.
    pub saved_at: Timestamp,
    /// The detector's state: whole, or with `rows` its rest apart from
    /// the rows saved beside it ([`Store::detector_rows`]).
    pub detector: Vec<u8>,
    /// The followers' checkpoints, as JSON (the caller's format).
    pub positions: String,
    /// The detector's keyed collections are saved as rows.
    pub rows: bool,
    /// The cursor of the last journal record read, when watch follows the
    /// journal: it starts again after it.
    pub journal_cursor: Option<String>,
}

/// An incident as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredIncident {
    /// Identifies the incident across restarts (`watch` derives it from the
    /// kind, subject and start of the run): a second incident with the same
    /// key is not stored, so it is not acted on twice.
    pub key: String,
    /// `compromised_account`, `password_guessing` or `limit_exceeded`.
    pub kind: String,
    /// The account or IP (or network) it is about.
    pub subject: String,
    /// When the evidence crossed the threshold, in log time (UTC seconds);
    /// incidents are listed newest first by it.
    pub detected_at: Timestamp,
    /// The whole incident, as JSON.
    pub json: String,
}

/// One action taken or attempted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRecord {
    /// The [`StoredIncident::key`] the action answered.
    pub incident_key: String,
    /// Which action (`email`, `kerio.disable_user`…).
    pub action: String,
    /// What it acted on (an account, an IP, an address).
    pub target: String,
    /// When it was attempted (UTC seconds).
    pub at: Timestamp,
    /// Whether it succeeded; only a success stops it from being retried
    /// ([`Store::action_succeeded`]).
    pub ok: bool,
    /// What happened, in words (or why it failed).
    pub outcome: String,
}

/// An account the audit found nobody logs into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditMark {
    /// The login, stored lower-case.
    pub account: String,
    /// The audit's problem (`never_logged_in`, `forward_only`…).
    pub problem: String,
    /// When the audit ran (UTC seconds, wall clock).
    pub marked_at: Timestamp,
}

/// An alert queued to be sent ([`Store::queue_alert`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAlert {
    /// Its row, to remove once it is sent or given up.
    pub id: i64,
    /// The [`StoredIncident::key`] it tells of.
    pub incident_key: String,
    /// The alert action (`webhook`, `email`…).
    pub action: String,
    /// When it was queued (UTC seconds, wall clock).
    pub queued_at: Timestamp,
    /// What it says, as the caller wrote it (JSON).
    pub payload: String,
}

/// A locked account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    /// The login that may not send; stored lower-case, so `Foo@x` and
    /// `foo@x` are one lock.
    pub account: String,
    /// When it was locked (UTC seconds, wall clock).
    pub since: Timestamp,
    /// Why, in words, for the dashboard and `status` (e.g. `sent spam`).
    pub reason: String,
    /// The incident that caused the lock, if one did.
    pub incident_key: Option<String>,
}

/// A blocked IP, until an expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The blocked client address (stored in its canonical text form).
    pub ip: IpAddr,
    /// When it was first blocked (UTC seconds, wall clock).
    pub since: Timestamp,
    /// When the block expires (UTC seconds); `watch` lifts blocks whose time
    /// is up ([`Store::expired_blocks`]).
    pub until: Timestamp,
    /// Why, in words, for the dashboard and `status`.
    pub reason: String,
    /// The incident that caused the block, if one did.
    pub incident_key: Option<String>,
}

/// How much an account sent within one window, as a daemon counts it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderWindow {
    /// Lower-case account name.
    pub account: String,
    /// Length of the sliding window counted over, in seconds (e.g. 3600).
    pub window_secs: i64,
    /// What is counted: `messages` or `recipients`.
    pub metric: String,
    /// How many messages or recipients the account sent within the window.
    pub count: u64,
    /// The account's limit over the window, if one is set.
    pub max: Option<u64>,
}

/// A [`SenderWindow`] as stored, with who counted it and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sender {
    /// The daemon that counted (`watch`, `policy`).
    pub source: String,
    /// When that daemon last refreshed its rows (UTC seconds, wall clock),
    /// so the dashboard can say how old a count is.
    pub updated_at: Timestamp,
    /// The count itself.
    pub window: SenderWindow,
}

/// The state database.
pub struct Store {
    conn: Connection,
    /// The file, for the journal's folder (none in memory).
    path: Option<PathBuf>,
    /// Folds saved rows into place; started by the first save that
    /// journals rows.
    folder: Option<row_journal::Folder>,
}

impl Store {
    /// The file it is in (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Opens (creating if needed) the database at `path`, and its directory
    /// (private to mailfuse's user, as systemd's `StateDirectory=` makes it).
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !directory.exists() {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o750)
                    .create(directory)
                    .map_err(|source| StoreError::Directory {
                        directory: directory.to_path_buf(),
                        source,
                    })?;
            }
        }
        // Switching a new file to WAL needs a moment alone with it, and
        // SQLite reports "busy" at once rather than waiting when another
        // process is opening it too: try again for a few seconds.
        let mut attempts = 0;
        loop {
            match Store::open_once(path) {
                Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && attempts < 200 =>
                {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(10 + attempts % 7));
                }
                result => return result,
            }
        }
    }

    fn open_once(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Durable at each commit: an acted-on incident must not be redone.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The first save of a big state writes every row at once: give the
        // write-ahead log's disk space back after it is checkpointed.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        // A save updates rows all over a state of hundreds of megabytes:
        // pages read through a mapping (the kernel's page cache, shared and
        // given back under pressure) rather than a read call each, and the
        // B-tree's upper pages kept in a 32 MiB cache.
        conn.pragma_update(None, "mmap_size", 1i64 << 32)?;
        conn.pragma_update(None, "cache_size", -32 * 1024)?;
        let mut store = Store::prepare(conn)?;
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// A database in memory, for tests and `--dry-run` sessions.
    pub fn in_memory() -> Result<Store> {
        Store::prepare(Connection::open_in_memory()?)
    }

    fn prepare(mut conn: Connection) -> Result<Store> {
        // `status` or `unlock` may run while `watch` writes.
        conn.busy_timeout(Duration::from_secs(10))?;
        // Two processes opening a new file at once: the write lock taken
        // first makes one create the schema and the other see it.
        let transaction =
            conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 =
            transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let applied = usize::try_from(version)
            .ok()
            .filter(|&applied| applied <= MIGRATIONS.len())
            .ok_or(StoreError::Version { found: version })?;
        for (step, schema) in MIGRATIONS.iter().enumerate().skip(applied) {
            transaction.execute_batch(schema)?;
            transaction.pragma_update(None, "user_version", step as i64 + 1)?;
        }
        transaction.commit()?;
        Ok(Store {
            conn,
            path: None,
            folder: None,
        })
    }

    /// Saves the detector's state, its changed rows and the read positions,
    /// together (one transaction): after a crash the store holds the state
    /// as of one save, never part of one. A whole state (`progress.rows`
    /// false) replaces every row. Of the `dictionaries` the rows may need,
    /// those not saved yet are added.
    ///
    /// The rows of a file's store go to its journal, which a background
    /// thread folds into place: the save costs what changed, not what is
    /// held. A big change (a first save) is written in place at once.
    pub fn save_progress(
        &mut self,
        progress: &Progress,
        rows: &[RowChange],
        dictionaries: &[RowDictionary],
    ) -> Result<()> {
        let journaled =
            self.path.is_some() && progress.rows && rows.len() < row_journal::DIRECT_ROWS;
        let transaction = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !progress.rows {
            transaction.execute("DELETE FROM detector_rows", [])?;
            transaction.execute("DELETE FROM row_journal", [])?;
        }
        {
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO row_dictionaries (id, table_name, bytes) VALUES (?1, ?2, ?3)",
            )?;
            for dictionary in dictionaries {
                insert.execute(params![dictionary.id, dictionary.table, dictionary.bytes])?;
            }
        }
        // Named as they are written: a first save's millions of rows are
        // not copied for it.
        let mut maps = row_journal::MapIds::default();
        let numbered = rows.iter().map(|row| {
            let map = maps.id(&transaction, row.map)?;
            Ok((map, row.key.as_slice(), row.value.as_deref()))
        });
        if journaled {
            row_journal::append(&transaction, numbered)?;
        } else {
            // The journal's older changes first, then these over them.
            row_journal::fold(&transaction, None)?;
            row_journal::write_rows(&transaction, numbered)?;
        }
        transaction.execute(
            "INSERT INTO progress (id, saved_at, detector, positions, rows, journal_cursor)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET saved_at = ?1, detector = ?2, positions = ?3,
             rows = ?4, journal_cursor = ?5",
            params![
                progress.saved_at.as_secs(),
                progress.detector,
                progress.positions,
                progress.rows,
                progress.journal_cursor
            ],
        )?;
        transaction.commit()?;
        if journaled && !rows.is_empty() {
            self.wake_folder();
        }
        Ok(())
    }

    /// Tells the journal's folder that rows were appended, starting it
    /// first if need be. Without a folder (no thread to be had) the rows
    /// wait in the journal until they are read back.
    fn wake_folder(&mut self) {
        if self.folder.is_none() {
            let Some(path) = &self.path else { return };
            match row_journal::Folder::spawn(path) {
                Ok(folder) => {
                    // The folder checkpoints: a save only appends to the log.
                    if let Err(e) = self.conn.pragma_update(None, "wal_autocheckpoint", 0) {
                        tracing::warn!("cannot leave checkpoints to the folder: {e}");
                    }
                    self.folder = Some(folder);
                }
                Err(e) => tracing::warn!("cannot start the thread that folds saved rows: {e}"),
            }
        }
        if let Some(folder) = &self.folder {
            folder.wake();
        }
    }

    /// The last saved progress, if any.
    pub fn progress(&self) -> Result<Option<Progress>> {
        Ok(self
            .conn
            .query_row(
                "SELECT saved_at, detector, positions, rows, journal_cursor FROM progress WHERE id = 1",
                [],
                |row| {
                    Ok(Progress {
                        saved_at: Timestamp(row.get(0)?),
                        detector: row.get(1)?,
                        positions: row.get(2)?,
                        rows: row.get(3)?,
                        journal_cursor: row.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// The dictionaries saved for compressed detector rows.
    pub fn row_dictionaries(&self) -> Result<Vec<RowDictionary>> {
        let mut select = self
            .conn
            .prepare("SELECT id, table_name, bytes FROM row_dictionaries ORDER BY id")?;
        let dictionaries = select
            .query_map([], |row| {
                Ok(RowDictionary {
                    id: row.get(0)?,
                    table: row.get(1)?,
                    bytes: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(dictionaries)
    }

    /// Hands every saved detector row to `each` (collection name, key,
    /// value), by collection and then key, bytewise: a vector's rows come
    /// in index order. The journal is folded first.
    pub fn detector_rows<E: From<StoreError>>(
        &mut self,
        mut each: impl FnMut(&str, &[u8], &[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let transaction = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        row_journal::fold(&transaction, None)?;
        transaction.commit().map_err(StoreError::from)?;
        let names: FxHashMap<i64, String> = self
            .conn
            .prepare("SELECT id, name FROM row_maps")
            .and_then(|mut select| {
                select
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            })
            .map_err(StoreError::from)?;
        let mut select = self
            .conn
            .prepare("SELECT map, key, value FROM detector_rows ORDER BY map, key")
            .map_err(StoreError::from)?;
        let mut rows = select.query([]).map_err(StoreError::from)?;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            let id: i64 = row.get(0).map_err(StoreError::from)?;
            let map = names.get(&id).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "a detector row of collection {id}, which has no name"
                ))
            })?;
            let key = row
                .get_ref(1)
                .and_then(|v| Ok(v.as_blob()?))
                .map_err(StoreError::from)?;
            let value = row
                .get_ref(2)
                .and_then(|v| Ok(v.as_blob()?))
                .map_err(StoreError::from)?;
            each(map, key, value)?;
        }
        Ok(())
    }

    /// Saves `data` under `name`, replacing what was saved before.
    pub fn save_blob(&mut self, name: &str, saved_at: Timestamp, data: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT INTO blobs (name, saved_at, data) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET saved_at = ?2, data = ?3",
            params![name, saved_at.as_secs(), data],
        )?;
        Ok(())
    }

    /// What was last saved under `name`, with when.
    pub fn blob(&self, name: &str) -> Result<Option<(Timestamp, Vec<u8>)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT saved_at, data FROM blobs WHERE name = ?1",
                [name],
                |row| Ok((Timestamp(row.get(0)?), row.get(1)?)),
            )
            .optional()?)
    }

    /// Records an incident; false if one with the same key is already known.
    pub fn add_incident(&mut self, incident: &StoredIncident) -> Result<bool> {
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO incidents (key, kind, subject, detected_at, json)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                incident.key,
                incident.kind,
                incident.subject,
                incident.detected_at.as_secs(),
                incident.json
            ],
        )?;
        Ok(added == 1)
    }

    /// The latest incidents, newest first.
    pub fn recent_incidents(&self, limit: usize) -> Result<Vec<StoredIncident>> {
        let mut statement = self.conn.prepare(
            "SELECT key, kind, subject, detected_at, json FROM incidents
             ORDER BY detected_at DESC, key LIMIT ?1",
        )?;
        let rows = statement.query_map([limit_of(limit)], |row| {
            Ok(StoredIncident {
                key: row.get(0)?,
                kind: row.get(1)?,
                subject: row.get(2)?,
                detected_at: Timestamp(row.get(3)?),
                json: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records an action taken or attempted.
    pub fn record_action(&mut self, record: &ActionRecord) -> Result<()> {
        insert_action(&self.conn, record)
    }

    /// Whether `action` on `target` already succeeded for the incident: an
    /// action is never repeated (one alert per incident, even across restarts).
    pub fn action_succeeded(&self, incident_key: &str, action: &str, target: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM actions
                 WHERE incident_key = ?1 AND action = ?2 AND target = ?3 AND ok
                 LIMIT 1",
                params![incident_key, action, target],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Queues the alert `action` of the incident `incident_key`; its row
    /// id, or `None` when that alert is queued already (an incident found
    /// again after a restart).
    pub fn queue_alert(
        &mut self,
        incident_key: &str,
        action: &str,
        queued_at: Timestamp,
        payload: &str,
    ) -> Result<Option<i64>> {
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO pending_alerts (incident_key, action, queued_at, payload)
             VALUES (?1, ?2, ?3, ?4)",
            params![incident_key, action, queued_at.as_secs(), payload],
        )?;
        Ok((added == 1).then(|| self.conn.last_insert_rowid()))
    }

    /// The alerts queued and not yet sent or given up, oldest first.
    pub fn pending_alerts(&self) -> Result<Vec<PendingAlert>> {
        let mut statement = self.conn.prepare(
            "SELECT id, incident_key, action, queued_at, payload FROM pending_alerts ORDER BY id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(PendingAlert {
                id: row.get(0)?,
                incident_key: row.get(1)?,
                action: row.get(2)?,
                queued_at: Timestamp(row.get(3)?),
                payload: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Ends the queued alert `id` (sent, given up or dropped), recording
    /// its last outcome with it when there is one, in one transaction: a
    /// crash leaves it either pending or recorded, never sent and pending.
    pub fn finish_alert(&mut self, id: i64, outcome: Option<&ActionRecord>) -> Result<()> {
        let transaction = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(record) = outcome {
            insert_action(&transaction, record)?;
        }
        transaction.execute("DELETE FROM pending_alerts WHERE id = ?1", [id])?;
        transaction.commit()?;
        Ok(())
    }

    /// The latest actions, newest first.
    pub fn recent_actions(&self, limit: usize) -> Result<Vec<ActionRecord>> {
        let mut statement = self.conn.prepare(
            "SELECT incident_key, action, target, at, ok, outcome FROM actions
             ORDER BY at DESC, id DESC LIMIT ?1",
        )?;
        let rows = statement.query_map([limit_of(limit)], |row| {
            Ok(ActionRecord {
                incident_key: row.get(0)?,
                action: row.get(1)?,
                target: row.get(2)?,
                at: Timestamp(row.get(3)?),
                ok: row.get(4)?,
                outcome: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Locks an account; false if it already was.
    pub fn lock(&mut self, lock: &Lock) -> Result<bool> {
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO locks (account, since, reason, incident_key)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                lock.account.to_lowercase(),
                lock.since.as_secs(),
                lock.reason,
                lock.incident_key
            ],
        )?;
        Ok(added == 1)
    }

    /// Unlocks an account; false if it was not locked.
    pub fn unlock(&mut self, account: &str) -> Result<bool> {
        let removed = self.conn.execute(
            "DELETE FROM locks WHERE account = ?1",
            [account.to_lowercase()],
        )?;
        Ok(removed == 1)
    }

    /// Whether the account is locked.
    pub fn is_locked(&self, account: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM locks WHERE account = ?1",
                [account.to_lowercase()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Every locked account, oldest lock first.
    pub fn locks(&self) -> Result<Vec<Lock>> {
        let mut statement = self.conn.prepare(
            "SELECT account, since, reason, incident_key FROM locks ORDER BY since, account",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(Lock {
                account: row.get(0)?,
                since: Timestamp(row.get(1)?),
                reason: row.get(2)?,
                incident_key: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Blocks an IP until `block.until`; false if it already was (an
    /// existing block is extended when the new one lasts longer).
    pub fn block(&mut self, block: &Block) -> Result<bool> {
        // Begun as a writer: one begun as a reader (the look-up first) fails
        // at its write, without waiting, if another connection of the file
        // (the thread folding saved rows, `mailfuse unblock`) writes meanwhile.
        let transaction = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ip = block.ip.to_string();
        let existing: Option<i64> = transaction
            .query_row("SELECT until FROM blocks WHERE ip = ?1", [&ip], |row| {
                row.get(0)
            })
            .optional()?;
        let added = match existing {
            Some(until) => {
                if until < block.until.as_secs() {
                    transaction.execute(
                        "UPDATE blocks SET until = ?2 WHERE ip = ?1",
                        params![ip, block.until.as_secs()],
                    )?;
                }
                false
            }
            None => {
                transaction.execute(
                    "INSERT INTO blocks (ip, since, until, reason, incident_key)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        ip,
                        block.since.as_secs(),
                        block.until.as_secs(),
                        block.reason,
                        block.incident_key
                    ],
                )?;
                true
            }
        };
        transaction.commit()?;
        Ok(added)
    }

    /// Lifts a block; false if the IP was not blocked.
    pub fn unblock(&mut self, ip: IpAddr) -> Result<bool> {
        let removed = self
            .conn
            .execute("DELETE FROM blocks WHERE ip = ?1", [ip.to_string()])?;
        Ok(removed == 1)
    }

    /// Whether `ip` is blocked at `now` (a block whose time is up but not
    /// lifted yet no longer counts).
    pub fn is_blocked(&self, ip: IpAddr, now: Timestamp) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM blocks WHERE ip = ?1 AND until > ?2",
                params![ip.to_string(), now.as_secs()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Every block, soonest expiry first.
    pub fn blocks(&self) -> Result<Vec<Block>> {
        self.blocks_where("1", [])
    }

    /// Blocks whose time is up at `now`.
    pub fn expired_blocks(&self, now: Timestamp) -> Result<Vec<Block>> {
        self.blocks_where("until <= ?1", [now.as_secs()])
    }

    fn blocks_where(&self, condition: &str, values: impl rusqlite::Params) -> Result<Vec<Block>> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT ip, since, until, reason, incident_key FROM blocks
             WHERE {condition} ORDER BY until, ip"
        ))?;
        let rows = statement.query_map(values, |row| {
            Ok((
                row.get::<_, String>(0)?,
                Timestamp(row.get(1)?),
                Timestamp(row.get(2)?),
                row.get::<_, String>(3)?,
                row.get::<_, Option<String>>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (ip, since, until, reason, incident_key) = row?;
            let ip = ip
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("blocked IP {ip:?}")))?;
            Ok(Block {
                ip,
                since,
                until,
                reason,
                incident_key,
            })
        })
        .collect()
    }
}

impl Store {
    /// Replaces everything `source` said of the senders with `rows`, in
    /// one transaction (readers never see half a refresh).
    pub fn replace_senders(
        &mut self,
        source: &str,
        updated_at: Timestamp,
        rows: &[SenderWindow],
    ) -> Result<()> {
        let transaction = self.conn.transaction()?;
        transaction.execute("DELETE FROM senders WHERE source = ?1", [source])?;
        {
            let mut insert = transaction.prepare(
                "INSERT OR REPLACE INTO senders
                 (source, account, window_secs, metric, count, max, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for row in rows {
                insert.execute(params![
                    source,
                    row.account.to_lowercase(),
                    row.window_secs,
                    row.metric,
                    count_of(row.count),
                    row.max.map(count_of),
                    updated_at.as_secs()
                ])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Replaces the audit's marks with `marks`, in one transaction: an
    /// account the new audit no longer finds is no longer marked.
    pub fn replace_audit_marks(&mut self, marks: &[AuditMark]) -> Result<()> {
        let transaction = self.conn.transaction()?;
        transaction.execute("DELETE FROM audit_marks", [])?;
        {
            let mut insert = transaction.prepare(
                "INSERT OR REPLACE INTO audit_marks (account, problem, marked_at) VALUES (?1, ?2, ?3)",
            )?;
            for mark in marks {
                insert.execute(params![
                    mark.account.to_lowercase(),
                    mark.problem,
                    mark.marked_at.as_secs()
                ])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Removes the mark of `account` (its first message was seen); false
    /// if it had none.
    pub fn remove_audit_mark(&mut self, account: &str) -> Result<bool> {
        let removed = self.conn.execute(
            "DELETE FROM audit_marks WHERE account = ?1",
            [account.to_lowercase()],
        )?;
        Ok(removed == 1)
    }

    /// The audit's marks, by account.
    pub fn audit_marks(&self) -> Result<Vec<AuditMark>> {
        let mut statement = self
            .conn
            .prepare("SELECT account, problem, marked_at FROM audit_marks ORDER BY account")?;
        let rows = statement.query_map([], |row| {
            Ok(AuditMark {
                account: row.get(0)?,
                problem: row.get(1)?,
                marked_at: Timestamp(row.get(2)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every sender row, busiest first (by count, then nearest its limit).
    pub fn senders(&self) -> Result<Vec<Sender>> {
        let mut statement = self.conn.prepare(
            "SELECT source, updated_at, account, window_secs, metric, count, max FROM senders
             ORDER BY count DESC, account, window_secs, metric, source",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(Sender {
                source: row.get(0)?,
                updated_at: Timestamp(row.get(1)?),
                window: SenderWindow {
                    account: row.get(2)?,
                    window_secs: row.get(3)?,
                    metric: row.get(4)?,
                    count: u64::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
                    max: row
                        .get::<_, Option<i64>>(6)?
                        .map(|max| u64::try_from(max).unwrap_or(0)),
                },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many incidents of each kind are stored, by kind.
    pub fn incident_counts(&self) -> Result<Vec<(String, u64)>> {
        let mut statement = self
            .conn
            .prepare("SELECT kind, COUNT(*) FROM incidents GROUP BY kind ORDER BY kind")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// A count as SQLite takes it.
fn count_of(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// A row limit as SQLite takes it.
fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Writes one row of the actions' journal.
fn insert_action(conn: &Connection, record: &ActionRecord) -> Result<()> {
    conn.execute(
        "INSERT INTO actions (incident_key, action, target, at, ok, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            record.incident_key,
            record.action,
            record.target,
            record.at.as_secs(),
            record.ok,
            record.outcome
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
