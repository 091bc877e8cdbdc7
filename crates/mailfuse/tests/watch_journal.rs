//! `mailfuse watch` following the systemd journal (`[watch.journal]`):
//! journal files a real `systemd-journal-remote` writes as the test hands
//! it a Postfix and Dovecot server's records (the test machines run no
//! journald), read through watch's child journalctl. Across stops, `kill
//! -9` and journalctl's own end, every record is counted once, and the
//! hijack is found; a journalctl missing or failing is said, counted and
//! tried again, and watch goes on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "support/journal.rs"]
mod journal;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mailfuse_loggen::bench::{generate, BenchConfig, Format};
use serde_json::Value;
use support::metrics::metric;
use support::watch::{wait_for_events, Watch};
use support::{free_port, wait_until};

/// The year the generated log's stamps are of.
const YEAR: i32 = 2026;

/// This server's name in the generated log (and in `[watch] hostname`).
const HOST: &str = "mail";

/// A Postfix and Dovecot syslog log of about 2 MB with its hijack (of
/// `sales@globex.example`, after a password guessed by 173.16.65.213).
fn postfix_log() -> Vec<String> {
    let mut cfg = BenchConfig::new(2 << 20);
    cfg.staff = 40;
    cfg.format = Format::Postfix;
    let mut text = Vec::new();
    generate(&mut text, &cfg).unwrap();
    String::from_utf8(text)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `scan --format json` of `lines` as a plain syslog file: what watch
/// must have counted once it read their records.
fn scan(dir: &Path, lines: &[String]) -> Value {
    let file = dir.join("plain.log");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(["scan", "--format", "json", "--timezone", "UTC", "--year"])
        .arg(YEAR.to_string())
        .arg(&file)
        .output()
        .expect("scan runs");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn events(report: &Value) -> u64 {
    report["stats"]["events"].as_u64().expect("events")
}

/// The export of `lines`' records, numbered from `first`, each 40th also
/// logged again by a unit watch does not follow (were it read, the
/// counts would be off).
fn export(lines: &[String], first: usize) -> Vec<u8> {
    let mut records = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let record = journal::record(line, YEAR, (first + i) as u64).expect("a syslog line");
        if (first + i).is_multiple_of(40) {
            let mut other = record.clone();
            for (name, value) in &mut other {
                if *name == "_SYSTEMD_UNIT" {
                    *value = b"other.service".to_vec();
                }
            }
            records.push(other);
        }
        records.push(record);
    }
    journal::export(&records, 9)
}

/// `[watch]` following the journal files of `journal_dir` (Postfix's and
/// Dovecot's units), its state and output in `dir`.
fn config(dir: &Path, journal_dir: &Path, metrics_port: u16) -> std::path::PathBuf {
    let config = dir.join("mailfuse.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nstate = \"{}\"\npoll_ms = 20\nsave_every_secs = 1\nhostname = \"{HOST}\"\n\
             metrics_listen = \"127.0.0.1:{metrics_port}\"\n\n\
             [watch.journal]\ndirectory = \"{}\"\nunits = [\"postfix@-.service\", \"dovecot.service\"]\n\n\
             [actions]\nact_within = \"3650d\"\n",
            dir.join("state.db").display(),
            journal_dir.display(),
        ),
    )
    .unwrap();
    config
}

#[test]
fn watch_follows_the_journal_across_restarts_and_kill_9_counting_each_record_once() {
    journal::journalctl();
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("journal");
    std::fs::create_dir(&journal_dir).unwrap();
    let mut remote = journal::JournalRemote::start(&journal_dir.join("remote.journal"));
    let port = free_port();
    let config = config(dir.path(), &journal_dir, port);
    let log = dir.path().join("watch.out");
    let lines = postfix_log();

    const CHUNKS: usize = 6;
    let per_chunk = lines.len().div_ceil(CHUNKS);
    let mut watch = Some(Watch::start(&config, &log));
    for chunk in 0..CHUNKS {
        let from = chunk * per_chunk;
        let to = (from + per_chunk).min(lines.len());
        let records = export(&lines[from..to], from);
        if chunk == 2 {
            // A clean stop, the chunk written while watch is away.
            watch.take().expect("running").stop();
            remote.append(&records);
            watch = Some(Watch::start(&config, &log));
        } else {
            remote.append(&records);
        }
        if chunk == 1 || chunk == 3 {
            // A crash while the chunk may be half read and unsaved.
            std::thread::sleep(Duration::from_millis(40 * chunk as u64));
            watch.take().expect("running").kill_9();
            watch = Some(Watch::start(&config, &log));
        }
        wait_for_events(&config, events(&scan(dir.path(), &lines[..to])), &log);
    }
    let full = scan(dir.path(), &lines);
    let status = wait_for_events(&config, events(&full), &log);
    watch.take().expect("running").stop();
    remote.finish();

    let counts = |stats: &Value| {
        ["events", "messages", "recipients", "deliveries"]
            .into_iter()
            .chain(["auth_failures", "auth_successes"])
            .map(|counter| (counter, stats[counter].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counts(&status["progress"]["stats"]),
        counts(&full["stats"]),
        "watch and scan agree"
    );
    let incidents = status["incidents"].as_array().unwrap();
    let hijack =
        |i: &&Value| i["kind"] == "compromised_account" && i["subject"] == "sales@globex.example";
    assert_eq!(
        incidents.iter().filter(hijack).count(),
        1,
        "the hijack is found, once: {incidents:#?}"
    );
    let progress = mailfuse_store::Store::open(&dir.path().join("state.db"))
        .and_then(|store| store.progress())
        .expect("the state reads")
        .expect("saved");
    let cursor = progress.journal_cursor.expect("the cursor is saved");
    assert!(cursor.starts_with("s="), "a journal cursor: {cursor}");
}

/// journalctl processes whose parent is `pid`.
fn journalctl_children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path().join("children");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        found.extend(
            text.split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    found.retain(|child| {
        std::fs::read_to_string(format!("/proc/{child}/comm"))
            .is_ok_and(|comm| comm.trim() == "journalctl")
    });
    found
}

#[test]
fn a_missing_or_failing_journalctl_is_told_counted_and_started_again() {
    journal::journalctl();
    let dir = tempfile::tempdir().unwrap();
    // A directory that does not exist yet: journalctl fails on it.
    let journal_dir = dir.path().join("journal");
    let port = free_port();
    let config = config(dir.path(), &journal_dir, port);
    let log = dir.path().join("watch.out");
    let said = || std::fs::read_to_string(&log).unwrap_or_default();

    // No journalctl at all: said, counted, and watch goes on.
    let mut watch = Watch::start_with_path(&config, &log, Some("/nonexistent"));
    wait_until("journalctl to be missed", Duration::from_secs(20), || {
        metric(port, "mailfuse_journalctl_exits_total") >= 1.0
    });
    assert!(
        said().contains(
            "journalctl is not installed: reading the journal needs systemd's journalctl"
        ),
        "{}",
        said()
    );
    assert_eq!(metric(port, "mailfuse_journalctl_running"), 0.0);
    watch.assert_running(&log);
    watch.stop();

    // journalctl failing on a directory not there yet, until it is.
    let port = free_port();
    let config = self::config(dir.path(), &journal_dir, port);
    let watch = Watch::start(&config, &log);
    wait_until("journalctl to fail", Duration::from_secs(20), || {
        metric(port, "mailfuse_journalctl_exits_total") >= 1.0
    });
    assert!(said().contains("the journal is not followed"), "{}", said());
    std::fs::create_dir(&journal_dir).unwrap();
    let mut remote = journal::JournalRemote::start(&journal_dir.join("remote.journal"));
    let lines = postfix_log();
    let half = lines.len() / 2;
    remote.append(&export(&lines[..half], 0));
    wait_for_events(&config, events(&scan(dir.path(), &lines[..half])), &log);
    assert_eq!(metric(port, "mailfuse_journalctl_running"), 1.0);

    // journalctl killed under watch: started again after the last record.
    let exits = metric(port, "mailfuse_journalctl_exits_total");
    let children = journalctl_children(watch.id());
    assert_eq!(children.len(), 1, "one journalctl follows: {children:?}");
    let killed = Command::new("kill")
        .args(["-KILL", &children[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_until(
        "journalctl's end to be counted",
        Duration::from_secs(20),
        || metric(port, "mailfuse_journalctl_exits_total") > exits,
    );
    remote.append(&export(&lines[half..], half));
    let full = scan(dir.path(), &lines);
    wait_for_events(&config, events(&full), &log);
    assert_eq!(metric(port, "mailfuse_journalctl_running"), 1.0);
    watch.stop();
    remote.finish();
}
