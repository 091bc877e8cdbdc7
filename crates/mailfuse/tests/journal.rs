//! `mailfuse scan` of the systemd journal: an export (`journalctl -o
//! export`) and journalctl's JSON, from a file or standard input, and
//! journal files and directories written by a real `systemd-journal-remote`
//! (read through journalctl) say what the plain syslog log of the same
//! lines says: the same counts, the same incidents.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "support/journal.rs"]
mod journal;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use mailfuse_loggen::bench::{generate, BenchConfig, Format};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mailfuse");

/// The year the generated log's stamps are of.
const YEAR: i32 = 2026;

/// A Postfix and Dovecot syslog log of about 2 MB with its hijack (of
/// `sales@globex.example`, after a password guessed by 173.16.65.213).
fn postfix_log() -> String {
    let mut cfg = BenchConfig::new(2 << 20);
    cfg.staff = 40;
    cfg.format = Format::Postfix;
    let mut text = Vec::new();
    generate(&mut text, &cfg).unwrap();
    String::from_utf8(text).unwrap()
}

/// `scan --format json` of `paths`, `stdin` on its standard input.
fn scan(paths: &[&Path], stdin: Option<&[u8]>, path_env: Option<&str>) -> (Output, Value) {
    let mut command = Command::new(BIN);
    command
        .args(["scan", "--format", "json", "--timezone", "UTC"])
        .args(["--year", &YEAR.to_string()])
        .args(paths)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = path_env {
        command.env("PATH", path);
    }
    let mut child = command.spawn().expect("scan runs");
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.unwrap_or_default().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

/// What a report found: its counts and its incidents (kind and subject).
fn findings(report: &Value) -> (Value, Vec<(String, String)>) {
    let incidents = report["incidents"]
        .as_array()
        .unwrap_or_else(|| panic!("a report: {report:#}"))
        .iter()
        .map(|i| {
            let subject = i["account"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| i["ips"].to_string());
            (i["kind"].as_str().unwrap().to_string(), subject)
        })
        .collect();
    (report["stats"].clone(), incidents)
}

/// The one input's line counts: lines, events, unknown, too long, errors.
fn input_counts(report: &Value) -> (u64, u64, u64, u64, Value) {
    let input = &report["inputs"][0];
    let n = |key: &str| input[key].as_u64().unwrap();
    (
        n("lines"),
        n("events"),
        n("unknown"),
        n("too_long"),
        input["errors"].clone(),
    )
}

#[test]
fn exports_json_and_journal_files_find_what_the_plain_log_finds() {
    let dir = tempfile::tempdir().unwrap();
    let log = postfix_log();
    let plain = dir.path().join("mail.log");
    std::fs::write(&plain, &log).unwrap();
    let (_, expected) = scan(&[&plain], None, None);
    let (stats, incidents) = findings(&expected);
    assert!(
        incidents.contains(&("compromised_account".into(), "sales@globex.example".into())),
        "the plain log shows the hijack: {incidents:?}"
    );
    let lines = log.lines().count() as u64;
    assert_eq!(input_counts(&expected).0, lines);

    let records = journal::records(&log, YEAR);
    let export = journal::export(&records, 7);
    let json = journal::json(&records, 5);
    let export_file = dir.path().join("mail.export");
    std::fs::write(&export_file, &export).unwrap();
    let json_file = dir.path().join("mail.json");
    std::fs::write(&json_file, &json).unwrap();
    let journal_dir = dir.path().join("journal");
    let machine = journal_dir.join("0123456789abcdef0123456789abcdef");
    std::fs::create_dir_all(&machine).unwrap();
    let journal_file = machine.join("system.journal");
    journal::write_journal(&journal_file, &export);

    let stdin = Path::new("-");
    /// What is read, how it is named, what comes on standard input.
    type Case<'a> = (&'a str, &'a [&'a Path], Option<&'a [u8]>);
    let cases: [Case<'_>; 6] = [
        ("an export", &[&export_file], None),
        ("an export on standard input", &[stdin], Some(&export)),
        ("JSON", &[&json_file], None),
        ("JSON on standard input", &[stdin], Some(&json)),
        ("a journal directory", &[&journal_dir], None),
        ("a journal file", &[&journal_file], None),
    ];
    for (what, paths, input) in cases {
        let (output, report) = scan(paths, input, None);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{what}: incidents found: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            findings(&report),
            (stats.clone(), incidents.clone()),
            "{what}"
        );
        assert_eq!(
            input_counts(&report),
            input_counts(&expected),
            "{what}: every record one line"
        );
        assert_eq!(report["inputs"][0]["format"], "syslog", "{what}");
    }
}

#[test]
fn broken_records_are_counted_and_told_the_others_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = postfix_log();
    let records = journal::records(&log, YEAR);
    let mut export = journal::export(&records[..100], 0);
    // A field name no journal writes, a length past reason, a message over
    // the line limit, a record without a time: each skipped, each told.
    export.extend_from_slice(b"__CURSOR=x\nbad name=1\nMESSAGE=x\n\n");
    export.extend_from_slice(b"MESSAGE\n\xff\xff\xff\xff\xff\xff\xff\xff\n\n");
    export.extend_from_slice(b"__REALTIME_TIMESTAMP=1796497567875319\nMESSAGE=");
    export.extend_from_slice(&[b'x'; 70_000]);
    export.extend_from_slice(b"\n\nMESSAGE=no time\n\n");
    export.extend_from_slice(&journal::export(&records[100..200], 0));
    let file = dir.path().join("broken.export");
    std::fs::write(&file, &export).unwrap();
    let (output, report) = scan(&[&file], None, None);
    assert!(output.status.code().unwrap_or(2) < 2, "{output:?}");
    let (lines, _, unknown, _, errors) = input_counts(&report);
    assert_eq!((lines, unknown), (200, 0), "{report:#}");
    assert_eq!(
        errors,
        serde_json::json!([format!(
            "{}: 3 malformed journal record(s) skipped, 1 journal record(s) with a message too long to read skipped (over 65536 bytes, or null: journalctl -o json without --all)",
            file.display()
        )])
    );
}

#[test]
fn a_journal_needs_journalctl_and_is_named_not_piped() {
    let dir = tempfile::tempdir().unwrap();
    let records = journal::records(&postfix_log(), YEAR);
    let export = journal::export(&records[..50], 0);
    let journal_dir = dir.path().join("journal");
    std::fs::create_dir(&journal_dir).unwrap();
    let file = journal_dir.join("system.journal");
    journal::write_journal(&file, &export);
    journal::journalctl();

    let (output, _) = scan(&[&journal_dir], None, Some("/nonexistent"));
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains(
            "journalctl is not installed: reading the journal needs systemd's journalctl"
        ),
        "{said}"
    );

    let bytes = std::fs::read(&file).unwrap();
    let (output, _) = scan(&[Path::new("-")], Some(&bytes), None);
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains(
            "standard input: cannot open: a journal file, which journalctl reads in place"
        ),
        "{said}"
    );
}
