use super::*;

fn incident(key: &str, at: i64) -> StoredIncident {
    StoredIncident {
        key: key.to_string(),
        kind: "compromised_account".to_string(),
        subject: "sales@example.com".to_string(),
        detected_at: Timestamp(at),
        json: "{}".to_string(),
    }
}

fn action(key: &str, name: &str, ok: bool, at: i64) -> ActionRecord {
    ActionRecord {
        incident_key: key.to_string(),
        action: name.to_string(),
        target: "sales@example.com".to_string(),
        at: Timestamp(at),
        ok,
        outcome: if ok { "done" } else { "refused" }.to_string(),
    }
}

fn block(ip: &str, until: i64) -> Block {
    Block {
        ip: ip.parse().unwrap(),
        since: Timestamp(0),
        until: Timestamp(until),
        reason: "guessing".to_string(),
        incident_key: None,
    }
}

#[test]
fn progress_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let saved = Progress {
        saved_at: Timestamp(42),
        detector: vec![0, 159, 255],
        positions: r#"[{"offset":7}]"#.to_string(),
        rows: false,
        journal_cursor: Some("s=0a;i=1f".to_string()),
    };
    {
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.progress().unwrap(), None);
        store.save_progress(&saved, &[], &[]).unwrap();
        let newer = Progress {
            saved_at: Timestamp(43),
            ..saved.clone()
        };
        store.save_progress(&newer, &[], &[]).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let loaded = store.progress().unwrap().unwrap();
    assert_eq!(
        (loaded.saved_at, loaded.detector, loaded.rows),
        (Timestamp(43), saved.detector, false)
    );
    assert_eq!(loaded.journal_cursor, saved.journal_cursor);
}

fn row(map: &'static str, key: &[u8], value: Option<&[u8]>) -> RowChange {
    RowChange {
        map,
        key: key.to_vec(),
        value: value.map(<[u8]>::to_vec),
    }
}

fn all_rows(store: &mut Store) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut rows = Vec::new();
    store
        .detector_rows(|map, key, value| -> Result<()> {
            rows.push((map.to_string(), key.to_vec(), value.to_vec()));
            Ok(())
        })
        .unwrap();
    rows
}

fn dictionary(id: u32, bytes: &[u8]) -> RowDictionary {
    RowDictionary {
        id,
        table: "accounts".to_string(),
        bytes: bytes.to_vec(),
    }
}

#[test]
fn detector_rows_are_upserted_deleted_and_read_back_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let progress = Progress {
        saved_at: Timestamp(1),
        detector: vec![1],
        positions: "[]".to_string(),
        rows: true,
        journal_cursor: None,
    };
    {
        let mut store = Store::open(&path).unwrap();
        let first = [
            row("accounts", &[0, 0, 1, 0], Some(b"b")),
            row("accounts", &[0, 0, 0, 2], Some(b"a")),
            row("ips", b"x", Some(b"1")),
        ];
        store
            .save_progress(&progress, &first, &[dictionary(40_000, b"one")])
            .unwrap();
        let second = [
            row("ips", b"x", None),
            row("accounts", &[0, 0, 0, 2], Some(b"a2")),
        ];
        // Dictionaries are saved once: the same id again changes nothing.
        let again = [dictionary(40_000, b"other"), dictionary(33_000, b"two")];
        store.save_progress(&progress, &second, &again).unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert!(store.progress().unwrap().unwrap().rows);
    assert_eq!(
        store.row_dictionaries().unwrap(),
        vec![dictionary(33_000, b"two"), dictionary(40_000, b"one")]
    );
    assert_eq!(
        all_rows(&mut store),
        vec![
            ("accounts".to_string(), vec![0, 0, 0, 2], b"a2".to_vec()),
            ("accounts".to_string(), vec![0, 0, 1, 0], b"b".to_vec()),
        ]
    );
    // A whole state saved after rows replaces them all.
    let whole = Progress {
        rows: false,
        journal_cursor: None,
        ..progress
    };
    store.save_progress(&whole, &[], &[]).unwrap();
    assert_eq!(all_rows(&mut store), Vec::new());
}

/// Rows in the journal, not yet folded into place.
fn journal_rows(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM row_journal", [], |row| row.get(0))
        .unwrap()
}

fn rows_progress() -> Progress {
    Progress {
        saved_at: Timestamp(1),
        detector: vec![1],
        positions: "[]".to_string(),
        rows: true,
        journal_cursor: None,
    }
}

#[test]
fn journaled_rows_are_folded_in_the_background_and_read_back_as_last_saved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut expected = std::collections::BTreeMap::new();
    let mut store = Store::open(&path).unwrap();
    // Saves of 2,000 rows over 5,000 keys: keys change save after save,
    // and every seventh change deletes.
    for save in 0..12u32 {
        let changes: Vec<RowChange> = (0..2_000u32)
            .map(|i| {
                let key = ((save * 2_000 + i) * 7 % 5_000).to_be_bytes();
                let value = (i % 7 != 0).then(|| format!("{save}/{i}").into_bytes());
                match &value {
                    Some(value) => expected.insert(key.to_vec(), value.clone()),
                    None => expected.remove(key.as_slice()),
                };
                row("accounts", &key, value.as_deref())
            })
            .collect();
        store
            .save_progress(&rows_progress(), &changes, &[])
            .unwrap();
    }
    // 24,000 rows appended; the folder leaves a few saves' worth.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while journal_rows(&path) > row_journal::KEEP_ROWS {
        assert!(
            std::time::Instant::now() < deadline,
            "the journal was never folded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(journal_rows(&path) > 0, "rows kept for the next saves");
    drop(store);
    let mut store = Store::open(&path).unwrap();
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(key, value)| ("accounts".to_string(), key, value))
        .collect();
    assert_eq!(all_rows(&mut store), expected);
    assert_eq!(journal_rows(&path), 0, "reading folds what is left");
}

#[test]
fn a_big_change_goes_in_place_after_the_journal_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut store = Store::open(&path).unwrap();
    let small = [
        row("ips", b"kept", Some(b"journaled")),
        row("ips", b"replaced", Some(b"old")),
        row("ips", b"deleted", Some(b"old")),
    ];
    store.save_progress(&rows_progress(), &small, &[]).unwrap();
    assert_eq!(journal_rows(&path), 3);
    let mut big: Vec<RowChange> = (0..row_journal::DIRECT_ROWS as u32)
        .map(|i| row("accounts", &i.to_be_bytes(), Some(b"a")))
        .collect();
    big.push(row("ips", b"replaced", Some(b"new")));
    big.push(row("ips", b"deleted", None));
    store.save_progress(&rows_progress(), &big, &[]).unwrap();
    assert_eq!(journal_rows(&path), 0);
    let ips: Vec<_> = all_rows(&mut store)
        .into_iter()
        .filter(|(map, _, _)| map == "ips")
        .map(|(_, key, value)| (key, value))
        .collect();
    assert_eq!(
        ips,
        vec![
            (b"kept".to_vec(), b"journaled".to_vec()),
            (b"replaced".to_vec(), b"new".to_vec()),
        ]
    );
}

#[test]
fn an_incident_is_recorded_once_and_listed_newest_first() {
    let mut store = Store::in_memory().unwrap();
    assert!(store.add_incident(&incident("a", 10)).unwrap());
    assert!(!store.add_incident(&incident("a", 10)).unwrap());
    assert!(store.add_incident(&incident("b", 20)).unwrap());
    let keys: Vec<String> = store
        .recent_incidents(10)
        .unwrap()
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(keys, ["b", "a"]);
    assert_eq!(store.recent_incidents(1).unwrap().len(), 1);
}

#[test]
fn a_queued_alert_is_pending_once_until_finished_with_its_outcome() {
    let mut store = Store::in_memory().unwrap();
    let first = store
        .queue_alert("a", "webhook", Timestamp(1), "{}")
        .unwrap();
    assert!(first.is_some());
    assert_eq!(
        store
            .queue_alert("a", "webhook", Timestamp(2), "{}")
            .unwrap(),
        None,
        "the same alert of the same incident is queued once"
    );
    let second = store.queue_alert("a", "email", Timestamp(3), "{}").unwrap();
    let pending = store.pending_alerts().unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|p| p.action.as_str())
            .collect::<Vec<_>>(),
        ["webhook", "email"]
    );
    store
        .finish_alert(first.unwrap(), Some(&action("a", "webhook", true, 4)))
        .unwrap();
    store.finish_alert(second.unwrap(), None).unwrap();
    assert!(store.pending_alerts().unwrap().is_empty());
    assert!(store
        .action_succeeded("a", "webhook", "sales@example.com")
        .unwrap());
    assert_eq!(store.recent_actions(10).unwrap().len(), 1);
}

#[test]
fn only_a_successful_action_counts_as_done() {
    let mut store = Store::in_memory().unwrap();
    store
        .record_action(&action("a", "email", false, 1))
        .unwrap();
    assert!(!store
        .action_succeeded("a", "email", "sales@example.com")
        .unwrap());
    store.record_action(&action("a", "email", true, 2)).unwrap();
    assert!(store
        .action_succeeded("a", "email", "sales@example.com")
        .unwrap());
    assert!(!store
        .action_succeeded("b", "email", "sales@example.com")
        .unwrap());
    assert!(!store
        .action_succeeded("a", "webhook", "sales@example.com")
        .unwrap());
    let recent = store.recent_actions(10).unwrap();
    assert_eq!(
        recent.iter().map(|a| a.ok).collect::<Vec<_>>(),
        [true, false]
    );
}

#[test]
fn locks_ignore_case_and_unlock_once() {
    let mut store = Store::in_memory().unwrap();
    let lock = Lock {
        account: "Sales@Example.com".to_string(),
        since: Timestamp(5),
        reason: "sent spam".to_string(),
        incident_key: Some("a".to_string()),
    };
    assert!(store.lock(&lock).unwrap());
    assert!(!store.lock(&lock).unwrap());
    assert!(store.is_locked("SALES@example.COM").unwrap());
    assert_eq!(store.locks().unwrap()[0].account, "sales@example.com");
    assert!(store.unlock("sales@example.com").unwrap());
    assert!(!store.unlock("sales@example.com").unwrap());
    assert!(!store.is_locked("sales@example.com").unwrap());
}

#[test]
fn blocks_expire_and_a_longer_block_extends() {
    let mut store = Store::in_memory().unwrap();
    assert!(store.block(&block("203.0.113.7", 100)).unwrap());
    assert!(store.block(&block("2001:db8::1", 300)).unwrap());
    assert!(!store.block(&block("203.0.113.7", 50)).unwrap());
    assert_eq!(
        store.blocks().unwrap()[0].until,
        Timestamp(100),
        "not shortened"
    );
    assert!(!store.block(&block("203.0.113.7", 200)).unwrap());
    let expired = |now| {
        store
            .expired_blocks(Timestamp(now))
            .unwrap()
            .into_iter()
            .map(|b| b.ip.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(expired(150), Vec::<String>::new());
    assert_eq!(expired(250), ["203.0.113.7"]);
    assert_eq!(expired(300), ["203.0.113.7", "2001:db8::1"]);
    assert!(store.unblock("203.0.113.7".parse().unwrap()).unwrap());
    assert_eq!(store.blocks().unwrap().len(), 1);
}

#[test]
fn a_block_waits_for_another_writer_rather_than_failing() {
    // watch's store is written by more than one connection (its own, the
    // thread folding saved rows, `mailfuse unblock`): a block read then
    // written in a transaction begun as a reader fails outright when
    // another connection commits in between.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut store = Store::open(&path).unwrap();
    let (holding, held) = std::sync::mpsc::channel();
    let writer = std::thread::spawn({
        let path = path.clone();
        move || {
            let mut other = Store::open(&path).unwrap();
            let transaction = other
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .unwrap();
            transaction
                .execute(
                    "INSERT INTO blocks (ip, since, until, reason) VALUES ('192.0.2.1', 0, 9, 'x')",
                    [],
                )
                .unwrap();
            holding.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            transaction.commit().unwrap();
        }
    });
    held.recv().unwrap();
    assert!(store.block(&block("203.0.113.7", 100)).unwrap());
    writer.join().unwrap();
    let blocked: Vec<String> = store
        .blocks()
        .unwrap()
        .iter()
        .map(|b| b.ip.to_string())
        .collect();
    assert_eq!(blocked, ["192.0.2.1", "203.0.113.7"]);
}

#[test]
fn an_ip_is_blocked_until_its_time_is_up() {
    let mut store = Store::in_memory().unwrap();
    store.block(&block("2001:db8::1", 300)).unwrap();
    let blocked = |ip: &str, now| {
        store
            .is_blocked(ip.parse().unwrap(), Timestamp(now))
            .unwrap()
    };
    assert!(blocked("2001:db8::1", 299));
    assert!(!blocked("2001:db8::1", 300), "its time is up");
    assert!(!blocked("2001:db8::2", 0));
}

#[test]
fn a_database_from_a_newer_schema_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let error = Store::open(&path).err().expect("refused").to_string();
    assert!(error.contains("schema version 99"), "{error}");
}

#[test]
fn processes_opening_a_new_file_at_once_agree_on_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let openers: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || Store::open(&path).map(|_| ()))
        })
        .collect();
    for opener in openers {
        opener.join().unwrap().expect("every opener succeeds");
    }
}

#[test]
fn a_second_connection_sees_a_lock_made_by_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut daemon = Store::open(&path).unwrap();
    let cli = Store::open(&path).unwrap();
    daemon
        .lock(&Lock {
            account: "sales@example.com".to_string(),
            since: Timestamp(1),
            reason: "spam".to_string(),
            incident_key: None,
        })
        .unwrap();
    assert!(cli.is_locked("sales@example.com").unwrap());
}

#[test]
fn a_blob_is_replaced_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.blob("policy.counters").unwrap(), None);
    store
        .save_blob("policy.counters", Timestamp(10), b"first")
        .unwrap();
    store
        .save_blob("policy.counters", Timestamp(20), b"second")
        .unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.blob("policy.counters").unwrap(),
        Some((Timestamp(20), b"second".to_vec()))
    );
}

#[test]
fn a_database_of_the_first_schema_gains_the_later_tables_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(super::SCHEMA_V1).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn.execute(
        "INSERT INTO locks (account, since, reason) VALUES ('sales@example.com', 1, 'spam')",
        [],
    )
    .unwrap();
    drop(conn);
    let mut store = Store::open(&path).unwrap();
    assert!(store.is_locked("sales@example.com").unwrap());
    store.save_blob("x", Timestamp(1), b"y").unwrap();
    store
        .replace_senders(
            "watch",
            Timestamp(1),
            &[window("a@example.com", 60, 2, None)],
        )
        .unwrap();
    assert_eq!(store.senders().unwrap().len(), 1);
    let version: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, super::MIGRATIONS.len() as i64);
}

fn window(account: &str, window_secs: i64, count: u64, max: Option<u64>) -> SenderWindow {
    SenderWindow {
        account: account.to_string(),
        window_secs,
        metric: "messages".to_string(),
        count,
        max,
    }
}

#[test]
fn senders_are_replaced_per_source_and_listed_busiest_first() {
    let mut store = Store::in_memory().unwrap();
    store
        .replace_senders(
            "watch",
            Timestamp(10),
            &[
                window("Quiet@example.com", 60, 1, Some(30)),
                window("busy@example.com", 3600, 250, None),
            ],
        )
        .unwrap();
    store
        .replace_senders(
            "policy",
            Timestamp(11),
            &[window("p@example.com", 60, 5, None)],
        )
        .unwrap();
    let rows = store.senders().unwrap();
    let seen: Vec<(&str, &str, u64)> = rows
        .iter()
        .map(|r| (r.source.as_str(), r.window.account.as_str(), r.window.count))
        .collect();
    assert_eq!(
        seen,
        [
            ("watch", "busy@example.com", 250),
            ("policy", "p@example.com", 5),
            ("watch", "quiet@example.com", 1),
        ]
    );
    assert_eq!(rows[2].window.max, Some(30));
    assert_eq!(rows[0].updated_at, Timestamp(10));

    // A refresh replaces the source's rows only.
    store
        .replace_senders(
            "watch",
            Timestamp(20),
            &[window("busy@example.com", 60, u64::MAX, None)],
        )
        .unwrap();
    let rows = store.senders().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].window.count,
        i64::MAX as u64,
        "clamped, not wrapped"
    );
    assert_eq!(rows[1].source, "policy");
}

#[test]
fn incidents_are_counted_by_kind() {
    let mut store = Store::in_memory().unwrap();
    store.add_incident(&incident("a", 1)).unwrap();
    store.add_incident(&incident("b", 2)).unwrap();
    let mut guessing = incident("c", 3);
    guessing.kind = "password_guessing".to_string();
    store.add_incident(&guessing).unwrap();
    assert_eq!(
        store.incident_counts().unwrap(),
        [
            ("compromised_account".to_string(), 2),
            ("password_guessing".to_string(), 1)
        ]
    );
}

/// A database at `path` as a mailfuse of schema `version` left it.
fn database_of_schema(path: &Path, version: usize) -> Connection {
    let conn = Connection::open(path).unwrap();
    for schema in &super::MIGRATIONS[..version] {
        conn.execute_batch(schema).unwrap();
    }
    conn.pragma_update(None, "user_version", version as i64)
        .unwrap();
    conn
}

#[test]
fn detector_rows_of_the_third_schema_move_to_the_keyed_table_of_the_fourth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let conn = database_of_schema(&path, 3);
    conn.execute(
        "INSERT INTO detector_rows (map, key, value) VALUES ('accounts', x'00000001', x'91a161'), ('ips', x'01', x'02')",
        [],
    )
    .unwrap();
    drop(conn);
    let mut store = Store::open(&path).unwrap();
    assert_eq!(
        all_rows(&mut store),
        vec![
            (
                "accounts".to_string(),
                vec![0, 0, 0, 1],
                vec![0x91, 0xa1, 0x61]
            ),
            ("ips".to_string(), vec![1], vec![2]),
        ]
    );
    let progress = Progress {
        saved_at: Timestamp(1),
        detector: vec![1],
        positions: "[]".to_string(),
        rows: true,
        journal_cursor: None,
    };
    let changed = [row("ips", &[1], Some(b"3"))];
    store.save_progress(&progress, &changed, &[]).unwrap();
    assert_eq!(
        all_rows(&mut store)[1],
        ("ips".to_string(), vec![1], b"3".to_vec())
    );
    let without_rowid: String = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'detector_rows'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(without_rowid.contains("WITHOUT ROWID"), "{without_rowid}");
}

/// A state of schema 8: its logins' rows go (rebuilt at restore), the other
/// rows and a change still in the journal come back under their names,
/// now stored by number.
#[test]
fn detector_rows_of_the_eighth_schema_lose_their_login_rows_and_keep_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let conn = database_of_schema(&path, 8);
    conn.execute_batch(
        "INSERT INTO detector_rows (map, key, value) VALUES
             ('accounts', x'00000000', x'01'), ('account_ids', x'a161', x'00'), ('guessers', x'01', x'02');
         INSERT INTO row_journal (map, key, value) VALUES
             ('guessers', x'01', x'03'), ('account_ids', x'a162', x'01'), ('shared_ips', x'05', x'06');",
    )
    .unwrap();
    drop(conn);
    let mut store = Store::open(&path).unwrap();
    let mut rows = all_rows(&mut store);
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("accounts".to_string(), vec![0, 0, 0, 0], vec![1]),
            ("guessers".to_string(), vec![1], vec![3]),
            ("shared_ips".to_string(), vec![5], vec![6]),
        ]
    );
    let names: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM row_maps", [], |row| row.get(0))
        .unwrap();
    assert_eq!(names, 3, "one number per collection left");
}

/// A state of schema 10: its dictionaries, saved under zstd's ids, are
/// numbered from 1 in the order of those ids, bytes and tables unchanged;
/// one trained later is saved beside them.
#[test]
fn dictionaries_of_the_tenth_schema_are_numbered_from_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let conn = database_of_schema(&path, 10);
    conn.execute_batch(
        "INSERT INTO row_dictionaries (id, table_name, bytes) VALUES
             (1669488919, 'guessers', x'03'), (1384345512, 'accounts', x'01'),
             (1384345513, 'accounts', x'02');",
    )
    .unwrap();
    drop(conn);
    let mut store = Store::open(&path).unwrap();
    let named = |id, table: &str, bytes: &[u8]| RowDictionary {
        id,
        table: table.to_string(),
        bytes: bytes.to_vec(),
    };
    assert_eq!(
        store.row_dictionaries().unwrap(),
        vec![
            named(1, "accounts", &[1]),
            named(2, "accounts", &[2]),
            named(3, "guessers", &[3]),
        ]
    );
    store
        .save_progress(&rows_progress(), &[], &[named(4, "accounts", &[4])])
        .unwrap();
    assert_eq!(store.row_dictionaries().unwrap().len(), 4);
}

#[test]
fn audit_marks_are_replaced_whole() {
    let mut store = Store::in_memory().unwrap();
    let mark = |account: &str| AuditMark {
        account: account.to_string(),
        problem: "never_logged_in".to_string(),
        marked_at: Timestamp(10),
    };
    store
        .replace_audit_marks(&[mark("Sales@Example.com"), mark("info@example.com")])
        .unwrap();
    store
        .replace_audit_marks(&[mark("sales@example.com")])
        .unwrap();
    assert_eq!(store.audit_marks().unwrap(), [mark("sales@example.com")]);
    assert!(store.remove_audit_mark("SALES@example.com").unwrap());
    assert!(!store.remove_audit_mark("sales@example.com").unwrap());
    assert_eq!(store.audit_marks().unwrap(), []);
}
