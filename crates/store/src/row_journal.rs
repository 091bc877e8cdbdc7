//! Where a save's changed detector rows go first: appended to
//! `row_journal`, so a save writes a few pages one after another however
//! big the state is, where updating them in place in `detector_rows` would
//! write one page per row, anywhere in hundreds of megabytes. A background
//! thread, the [`Folder`], folds the oldest journal rows into
//! `detector_rows` a chunk at a time, each chunk its own short transaction,
//! so a save waits for at most one chunk; reading the rows back folds what
//! is left first. A row and the progress that saw it are committed
//! together, so after a crash the journal holds exactly the saves made.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection, Transaction, TransactionBehavior};
use rustc_hash::FxHashSet;

use crate::Result;

/// Rows a save writes straight into `detector_rows` rather than to the
/// journal from this many on (a first save, a catch-up after a long
/// stop): written in key order they are cheaper there than folded later.
pub(crate) const DIRECT_ROWS: usize = 65_536;
/// Journal rows left unfolded: a few saves' worth, so that a row changed
/// save after save is folded once, not every time.
pub(crate) const KEEP_ROWS: i64 = 4_096;
/// Journal rows folded per transaction: the longest a save may wait for
/// the folder (a few tens of milliseconds).
const CHUNK_ROWS: i64 = 1_024;

/// A row to write: its collection's id (see [`MapIds`]), key and value
/// (`None`: removed).
pub(crate) type Row<'r> = (i64, &'r [u8], Option<&'r [u8]>);

/// The ids rows name their collections by (`row_maps`), each looked up,
/// or added, once per save.
#[derive(Default)]
pub(crate) struct MapIds {
    known: Vec<(&'static str, i64)>,
}

impl MapIds {
    /// The id of collection `name`.
    pub(crate) fn id(&mut self, transaction: &Transaction<'_>, name: &'static str) -> Result<i64> {
        if let Some(&(_, id)) = self.known.iter().find(|(known, _)| *known == name) {
            return Ok(id);
        }
        transaction
            .prepare_cached("INSERT OR IGNORE INTO row_maps (name) VALUES (?1)")?
            .execute([name])?;
        let id = transaction
            .prepare_cached("SELECT id FROM row_maps WHERE name = ?1")?
            .query_row([name], |row| row.get(0))?;
        self.known.push((name, id));
        Ok(id)
    }
}

/// Appends `rows` to the journal, in the order given.
pub(crate) fn append<'r>(
    transaction: &Transaction<'_>,
    rows: impl IntoIterator<Item = Result<Row<'r>>>,
) -> Result<()> {
    let mut insert = transaction
        .prepare_cached("INSERT INTO row_journal (map, key, value) VALUES (?1, ?2, ?3)")?;
    for row in rows {
        let (map, key, value) = row?;
        insert.execute(params![map, key, value])?;
    }
    Ok(())
}

/// Upserts or deletes `rows` in `detector_rows`; a key given twice ends
/// with its last value.
pub(crate) fn write_rows<'r>(
    transaction: &Transaction<'_>,
    rows: impl IntoIterator<Item = Result<Row<'r>>>,
) -> Result<()> {
    let mut upsert = transaction.prepare_cached(
        "INSERT INTO detector_rows (map, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (map, key) DO UPDATE SET value = ?3",
    )?;
    let mut delete =
        transaction.prepare_cached("DELETE FROM detector_rows WHERE map = ?1 AND key = ?2")?;
    // In key order, each row's page is next to the last one's.
    let mut sorted = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| Ok((i, row?)))
        .collect::<Result<Vec<_>>>()?;
    sorted.sort_unstable_by(|(i, (map, key, _)), (j, (other_map, other_key, _))| {
        (map, key, i).cmp(&(other_map, other_key, j))
    });
    for (_, (map, key, value)) in sorted {
        match value {
            Some(value) => upsert.execute(params![map, key, value])?,
            None => delete.execute(params![map, key])?,
        };
    }
    Ok(())
}

/// Folds the oldest `limit` journal rows (all with `None`) into
/// `detector_rows`, in chunks; returns how many were folded.
pub(crate) fn fold(transaction: &Transaction<'_>, limit: Option<i64>) -> Result<i64> {
    let mut folded = 0;
    loop {
        let chunk = limit.map_or(CHUNK_ROWS, |limit| CHUNK_ROWS.min(limit - folded));
        if chunk <= 0 {
            return Ok(folded);
        }
        let rows = oldest(transaction, chunk)?;
        let Some(last) = rows.last().map(|row| row.seq) else {
            return Ok(folded);
        };
        // Only a key's newest value in the chunk needs writing.
        let mut seen = FxHashSet::default();
        let newest: Vec<&JournalRow> = rows
            .iter()
            .rev()
            .filter(|row| seen.insert((row.map, row.key.as_slice())))
            .collect();
        write_rows(
            transaction,
            newest
                .into_iter()
                .map(|row| Ok((row.map, row.key.as_slice(), row.value.as_deref()))),
        )?;
        transaction.execute("DELETE FROM row_journal WHERE seq <= ?1", [last])?;
        folded += i64::try_from(rows.len()).unwrap_or(i64::MAX);
    }
}

/// One journal row.
struct JournalRow {
    seq: i64,
    map: i64,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// The `limit` oldest journal rows, oldest first.
fn oldest(transaction: &Transaction<'_>, limit: i64) -> Result<Vec<JournalRow>> {
    let mut select = transaction
        .prepare_cached("SELECT seq, map, key, value FROM row_journal ORDER BY seq LIMIT ?1")?;
    let rows = select
        .query_map([limit], |row| {
            Ok(JournalRow {
                seq: row.get(0)?,
                map: row.get(1)?,
                key: row.get(2)?,
                value: row.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// How many rows the journal holds (its sequence numbers are contiguous:
/// rows are only ever taken from its start).
fn pending(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(seq) - MIN(seq) + 1, 0) FROM row_journal",
        [],
        |row| row.get(0),
    )?)
}

/// What the saving thread tells the folder.
#[derive(Default)]
struct Signal {
    /// Rows were appended since the folder last looked.
    appended: bool,
    /// The store is closing: finish the chunk at hand and stop.
    stop: bool,
}

type Shared = Arc<(Mutex<Signal>, Condvar)>;

/// The background thread that folds the journal, with its own connection
/// to the database; it also checkpoints the write-ahead log, which the
/// saving connection then leaves alone, so a save never copies pages
/// into the database file.
pub(crate) struct Folder {
    shared: Shared,
    thread: Option<JoinHandle<()>>,
}

impl Folder {
    /// Starts the folder of the database at `path`.
    pub(crate) fn spawn(path: &Path) -> std::io::Result<Folder> {
        let shared = Shared::default();
        let thread = std::thread::Builder::new()
            .name("state-folder".to_string())
            .spawn({
                let shared = Arc::clone(&shared);
                let path = path.to_path_buf();
                move || run(&path, &shared)
            })?;
        Ok(Folder {
            shared,
            thread: Some(thread),
        })
    }

    /// Rows were appended: fold if the journal is long enough.
    pub(crate) fn wake(&self) {
        let (signal, woken) = &*self.shared;
        signal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .appended = true;
        woken.notify_one();
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let (signal, woken) = &*self.shared;
        signal.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
        woken.notify_one();
        if let Some(thread) = self.thread.take() {
            // A panic there has been reported by the panic hook already.
            let _ = thread.join();
        }
    }
}

/// The folder's loop: wait for appended rows, fold while the journal is
/// long, checkpoint. A failure (a full disk) leaves the rows in the
/// journal, to be folded at the next wake or when they are read back.
fn run(path: &Path, shared: &Shared) {
    let mut conn = None;
    while wait(shared) {
        if conn.is_none() {
            conn = open(path)
                .inspect_err(|e| tracing::warn!("cannot open the state to fold saved rows: {e}"))
                .ok();
        }
        if let Some(conn) = conn.as_mut() {
            if let Err(e) = fold_pending(conn, shared) {
                tracing::warn!("cannot fold saved rows (they stay in the journal): {e}");
            }
        }
    }
}

/// Waits for appended rows; false once the store is closing.
fn wait(shared: &Shared) -> bool {
    let (signal, woken) = &**shared;
    let mut signal = signal.lock().unwrap_or_else(PoisonError::into_inner);
    while !signal.appended && !signal.stop {
        signal = woken.wait(signal).unwrap_or_else(PoisonError::into_inner);
    }
    signal.appended = false;
    !signal.stop
}

fn stopping(shared: &Shared) -> bool {
    shared.0.lock().unwrap_or_else(PoisonError::into_inner).stop
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // A fold changes where rows are, not what they say: the saves'
    // commits (synchronous=FULL) make it durable with theirs.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

fn fold_pending(conn: &mut Connection, shared: &Shared) -> Result<()> {
    while !stopping(shared) {
        let over = pending(conn)? - KEEP_ROWS;
        if over <= 0 {
            break;
        }
        let transaction = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        fold(&transaction, Some(over.min(CHUNK_ROWS)))?;
        transaction.commit()?;
    }
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    Ok(())
}
