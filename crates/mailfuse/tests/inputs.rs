//! Inputs as admins have them: rotated sets with compressed members, globs,
//! compressed standard input, and a member cut off mid-stream.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/kerio")
        .join(name)
}

fn run(args: &[&str], stdin: Option<Vec<u8>>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailfuse runs");
    let mut pipe = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        // mailfuse may stop reading early: a broken pipe is fine.
        let _ = pipe.write_all(&stdin.unwrap_or_default());
    });
    let output = child.wait_with_output().expect("mailfuse ends");
    feeder.join().expect("feeder");
    output
}

fn scan_json(paths: &[&Path]) -> Value {
    let mut args = vec!["scan", "--format", "json"];
    args.extend(paths.iter().map(|p| p.to_str().expect("utf-8 path")));
    let output = run(&args, None);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON report")
}

/// What must not depend on how the log was stored.
fn findings(report: &Value) -> (Value, Value, Value) {
    (
        report["incidents"].clone(),
        report["accounts"].clone(),
        report["stats"].clone(),
    )
}

/// Writes a member as stored on disk.
type Encoder = fn(&[u8]) -> Vec<u8>;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("compress");
    encoder.finish().expect("compress")
}

/// `text` cut into `parts` pieces at line ends.
fn split_lines(text: &[u8], parts: usize) -> Vec<Vec<u8>> {
    let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    lines
        .chunks(lines.len().div_ceil(parts))
        .map(|chunk| chunk.concat())
        .collect()
}

#[test]
fn a_rotated_set_with_gz_and_zst_members_reads_like_the_plain_log() {
    let plain = scan_json(&[&example("")]);
    let mail = std::fs::read(example("mail.log")).expect("example");
    let dir = tempfile::tempdir().expect("temp dir");
    let parts = split_lines(&mail, 4);
    let names = ["mail.log.3.gz", "mail.log.2.zst", "mail.log.1", "mail.log"];
    let compress: [Encoder; 4] = [
        gzip,
        |p| zstd::encode_all(p, 3).expect("zstd"),
        |p| p.to_vec(),
        |p| p.to_vec(),
    ];
    for ((name, part), compress) in names.iter().zip(&parts).zip(compress) {
        std::fs::write(dir.path().join(name), compress(part)).expect("write");
    }
    for other in ["security.log", "audit.log"] {
        let data = std::fs::read(example(other)).expect("example");
        std::fs::write(dir.path().join(format!("{other}.1.gz")), gzip(&data)).expect("write");
    }
    let rotated = scan_json(&[dir.path()]);
    assert_eq!(findings(&rotated), findings(&plain));
    let mail_input = rotated["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .find(|i| i["path"].as_str().is_some_and(|p| p.ends_with("mail.log")))
        .expect("the mail set is one input");
    let members: Vec<&str> = mail_input["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m.as_str())
        .map(|m| m.rsplit('/').next().unwrap_or(m))
        .collect();
    assert_eq!(members, names, "oldest first");
}

#[test]
fn a_truncated_gzip_member_is_reported_and_the_rest_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mail = std::fs::read(example("mail.log")).expect("example");
    let parts = split_lines(&mail, 2);
    let old = gzip(&parts[0]);
    std::fs::write(dir.path().join("mail.log.1.gz"), &old[..old.len() / 2]).expect("write");
    std::fs::write(dir.path().join("mail.log"), &parts[1]).expect("write");
    let output = run(&["scan", dir.path().to_str().expect("path")], None);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("mail.log.1.gz: truncated gzip data after")
            && text.contains("the rest of this file was skipped"),
        "{text}"
    );
    let report = scan_json(&[dir.path()]);
    let input = &report["inputs"][0];
    assert_eq!(input["errors"].as_array().map(Vec::len), Some(1));
    let second_half_lines = parts[1].iter().filter(|&&b| b == b'\n').count() as u64;
    assert!(
        input["lines"].as_u64().expect("lines") > second_half_lines,
        "lines before the cut and every line after it are read"
    );
}

#[test]
fn a_quoted_glob_is_expanded_and_a_glob_matching_nothing_is_an_error() {
    let pattern = example("*.log");
    let report = scan_json(&[&pattern]);
    assert_eq!(report["inputs"].as_array().map(Vec::len), Some(3));
    let none = example("*.nothing");
    let output = run(&["scan", none.to_str().expect("path")], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no file matches this pattern"));
}

#[test]
fn compressed_standard_input_is_decompressed() {
    let mail = std::fs::read(example("mail.log")).expect("example");
    let output = run(&["scan", "--format", "json", "-"], Some(gzip(&mail)));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["inputs"][0]["format"], "kerio");
    let lines = mail.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(report["inputs"][0]["lines"].as_u64(), Some(lines));
}

/// The example's mail.log with `first` written before its first line.
fn mail_log_after(first: &[u8]) -> Vec<u8> {
    let mut log = first.to_vec();
    log.extend(std::fs::read(example("mail.log")).expect("example"));
    log
}

fn sales_is_found(report: &Value) -> bool {
    report["incidents"].as_array().is_some_and(|all| {
        all.iter()
            .any(|i| i["account"] == "sales@acme-tools.example")
    })
}

#[test]
fn a_file_named_twice_is_read_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mail = dir.path().join("mail.log");
    std::fs::copy(example("mail.log"), &mail).expect("copy");
    let once = scan_json(&[&mail]);
    let again = dir.path().join(".").join("mail.log");
    let twice = scan_json(&[&mail, &again]);
    assert_eq!(findings(&twice), findings(&once));
    assert_eq!(twice["inputs"].as_array().map(Vec::len), Some(1));

    // A link inside a scanned directory to a file named as well.
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("dir");
    std::os::unix::fs::symlink(&mail, logs.join("link.log")).expect("symlink");
    let linked = scan_json(&[&mail, &logs]);
    assert_eq!(findings(&linked), findings(&once));
}

#[test]
fn a_file_whose_first_line_is_over_long_is_recognised_and_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = b"[01/Nov/2026 00:00:00] Recv: Queue-ID: 6a80e8c0-00000001, Subject: ".to_vec();
    first.extend(std::iter::repeat_n(b'A', 70 * 1024));
    first.push(b'\n');
    let mail = dir.path().join("mail.log");
    std::fs::write(&mail, mail_log_after(&first)).expect("write");
    let report = scan_json(&[&mail]);
    assert_eq!(report["inputs"][0]["format"], "kerio");
    assert_eq!(report["inputs"][0]["too_long"], 1);
    assert!(sales_is_found(&report), "{:#}", report["incidents"]);
}

#[test]
fn a_junk_oldest_member_hides_nothing_else_of_its_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    let junk: Vec<u8> = (0..3000)
        .flat_map(|i| format!("junk {i}\n").into_bytes())
        .collect();
    std::fs::write(dir.path().join("mail.log.2"), &junk).expect("write");
    std::fs::write(dir.path().join("mail.log.1"), b"").expect("write");
    std::fs::copy(example("mail.log"), dir.path().join("mail.log")).expect("copy");
    let report = scan_json(&[dir.path()]);
    let input = &report["inputs"][0];
    assert_eq!(input["format"], "kerio");
    assert_eq!(input["members"].as_array().map(Vec::len), Some(3));
    let errors = input["errors"].to_string();
    assert!(
        errors.contains("mail.log.2: not a log format mailfuse knows"),
        "{errors}"
    );
    let plain = scan_json(&[&example("mail.log")]);
    assert_eq!(findings(&report), findings(&plain));
    assert_eq!(
        input["unknown"].as_u64(),
        Some(1000),
        "the junk lines looked at are counted, the rest left unread"
    );
}

#[test]
fn the_line_limit_is_the_same_for_a_file_and_a_pipe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = b"[01/Nov/2026 00:00:00] Sent: Queue-ID: 6a80e8c0-00000001, Subject: ".to_vec();
    first.extend(std::iter::repeat_n(b'B', 100 * 1024));
    first.push(b'\n');
    let log = mail_log_after(&first);
    let mail = dir.path().join("mail.log");
    std::fs::write(&mail, &log).expect("write");
    for limit in ["200", "1000", "150000"] {
        let path = mail.to_str().expect("path");
        let args = ["scan", "--format", "json", "--max-line-bytes", limit];
        let from_file = run(&[&args[..], &[path]].concat(), None);
        let from_pipe = run(&[&args[..], &["-"]].concat(), Some(log.clone()));
        let from_file: Value = serde_json::from_slice(&from_file.stdout).expect("JSON");
        let from_pipe: Value = serde_json::from_slice(&from_pipe.stdout).expect("JSON");
        assert_eq!(findings(&from_file), findings(&from_pipe), "limit {limit}");
        for key in ["lines", "too_long", "unknown", "events"] {
            assert_eq!(
                from_file["inputs"][0][key], from_pipe["inputs"][0][key],
                "{key} with limit {limit}"
            );
        }
        let skipped = from_file["inputs"][0]["too_long"].as_u64();
        assert!(
            skipped >= Some(1) || limit == "150000",
            "the 100 KB line is skipped under limit {limit}"
        );
    }
}

#[test]
fn an_unreadable_directory_is_reported_and_the_others_are_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let readable = dir.path().join("kerio");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&readable).expect("dir");
    std::fs::create_dir(&locked).expect("dir");
    std::fs::copy(example("mail.log"), readable.join("mail.log")).expect("copy");
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    mode(dir.path(), 0o755);
    mode(&readable, 0o755);
    mode(&readable.join("mail.log"), 0o644);
    mode(&locked, 0o000);
    let bin = env!("CARGO_BIN_EXE_mailfuse");
    let mut command = Command::new(if is_root() { "setpriv" } else { bin });
    if is_root() {
        // Root reads any directory: run as nobody.
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin]);
    }
    let output = command
        .args(["scan", "--format", "json"])
        .args([&readable, &locked])
        .output()
        .expect("mailfuse runs");
    mode(&locked, 0o755);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the readable log is scanned: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(sales_is_found(&report));
    let inputs = report["inputs"].as_array().expect("inputs");
    let locked_report = inputs
        .iter()
        .find(|i| i["path"].as_str().is_some_and(|p| p.ends_with("locked")))
        .expect("the directory is listed");
    assert!(
        locked_report["errors"]
            .to_string()
            .contains("cannot read this directory"),
        "{locked_report}"
    );
}

/// Whether the tests run as root (who reads any directory).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::tempdir().expect("temp dir");
    std::fs::metadata(probe.path()).is_ok_and(|meta| meta.uid() == 0)
}

#[test]
fn many_files_are_all_read_under_a_low_open_files_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::read(example("mail.log")).unwrap();
    // Each file larger than what its reader parses ahead, so that all of
    // them are open at once while the merge waits for the earliest line;
    // names rotation does not group, so each is an input of its own.
    let big = [log.as_slice(), log.as_slice()].concat();
    const FILES: usize = 16;
    for i in 0..FILES {
        std::fs::write(dir.path().join(format!("server{i:02}-mail.log")), &big).unwrap();
    }
    let scan_with = |ulimit: &str| -> Value {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit {ulimit} 12 && exec \"$0\" scan --format json \"$1\""
            ))
            .arg(env!("CARGO_BIN_EXE_mailfuse"))
            .arg(dir.path())
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&output.stderr));
        })
    };
    let unread = |report: &Value| -> usize {
        let inputs = report["inputs"].as_array().unwrap();
        assert_eq!(inputs.len(), FILES);
        inputs.iter().filter(|i| i.get("errors").is_some()).count()
    };
    // A soft limit below the number of files, as a login shell's `ulimit
    // -n` leaves it: scan raises it to the hard limit and reads them all.
    assert_eq!(unread(&scan_with("-Sn")), 0);
    // Where the hard limit itself is too low, the files it cannot open are
    // reported, not fatal (and this shows the test needs the raise).
    assert!(unread(&scan_with("-n")) > 0);
}

/// A Postfix and Dovecot server's lines over a minute, with each line's
/// syslog severity: info, warning or error.
fn debian_mail_lines() -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    for i in 0..30 {
        let (s, pid) = (10 + i, 2100 + i);
        lines.push((
            "info",
            format!(
                "Dec 14 20:46:{s:02} mail postfix/smtpd[{pid}]: connect from unknown[203.0.113.9]"
            ),
        ));
        lines.push((
            "warning",
            format!("Dec 14 20:46:{s:02} mail postfix/smtpd[{pid}]: warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"),
        ));
        if i % 10 == 0 {
            lines.push((
                "error",
                format!("Dec 14 20:46:{s:02} mail postfix/smtpd[{pid}]: error: open database /etc/postfix/sasl_passwd.db: No such file or directory"),
            ));
        }
        lines.push((
            "info",
            format!("Dec 14 20:46:{s:02} mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<jdent>, method=PLAIN, rip=198.51.100.4, lip=192.0.2.1, TLS, session=<x{i}>"),
        ));
    }
    // The same failure twice in one second from one process: two lines,
    // both real, in every file that holds them.
    let twice = "Dec 14 20:46:50 mail postfix/smtpd[2200]: warning: unknown[203.0.113.9]: SASL PLAIN authentication failed: ";
    lines.push(("warning", twice.to_string()));
    lines.push(("warning", twice.to_string()));
    lines
}

/// The lines of `lines` at `levels`, as rsyslog writes them to one file.
fn syslog_file(lines: &[(&str, String)], levels: &[&str]) -> String {
    let kept = lines.iter().filter(|(level, _)| levels.contains(level));
    kept.map(|(_, line)| format!("{line}\n")).collect()
}

#[test]
fn debian_overlapping_mail_files_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let lines = debian_mail_lines();
    let all = ["info", "warning", "error"];
    std::fs::write(dir.path().join("mail.log"), syslog_file(&lines, &all)).unwrap();
    std::fs::write(dir.path().join("mail.info"), syslog_file(&lines, &all)).unwrap();
    let warn = syslog_file(&lines, &["warning", "error"]);
    std::fs::write(dir.path().join("mail.warn"), &warn).unwrap();
    std::fs::write(dir.path().join("mail.err"), syslog_file(&lines, &["error"])).unwrap();

    let alone = scan_json(&[&dir.path().join("mail.log")]);
    let stats = &alone["stats"];
    assert_eq!(stats["auth_failures"], 62, "30 + 30 + the failure twice");
    let together = scan_json(&[dir.path()]);
    assert_eq!(findings(&together), findings(&alone), "each line once");

    let inputs = together["inputs"].as_array().unwrap();
    let input = |name: &str| {
        inputs
            .iter()
            .find(|i| i["path"].as_str().unwrap().ends_with(name))
            .unwrap()
    };
    let log = input("mail.log");
    assert_eq!(log["duplicate"], 0);
    assert_eq!(log["events"], alone["inputs"][0]["events"]);
    let mail_log = log["path"].clone();
    for name in ["mail.info", "mail.warn", "mail.err"] {
        let input = input(name);
        assert_eq!(input["duplicate"], input["lines"], "{name}");
        assert_eq!(input["events"], 0, "{name}");
        assert_eq!(
            input["duplicate_of"],
            serde_json::json!([mail_log]),
            "{name}"
        );
    }

    // mail.warn holds lines mail.log does not (mail.log was rotated
    // earlier): those are read; the rest, a subset from its middle, is not.
    let earlier = "Dec 14 20:45:59 mail postfix/smtpd[2000]: warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6\n";
    std::fs::write(dir.path().join("mail.warn"), format!("{earlier}{warn}")).unwrap();
    let report = scan_json(&[dir.path()]);
    assert_eq!(report["stats"]["auth_failures"], 63);
    assert_eq!(input_of(&report, "mail.warn")["events"], 1);

    let text = run(&["scan", dir.path().to_str().unwrap()], None);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("overlaps with") && text.contains("duplicate lines counted there only"),
        "{text}"
    );
}

fn input_of<'a>(report: &'a Value, name: &str) -> &'a Value {
    let inputs = report["inputs"].as_array().unwrap();
    inputs
        .iter()
        .find(|i| i["path"].as_str().unwrap().ends_with(name))
        .unwrap()
}

#[test]
fn year_dates_the_yearless_stamps_of_a_copied_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    std::fs::write(
        &log,
        syslog_file(&debian_mail_lines(), &["info", "warning"]),
    )
    .unwrap();
    let path = log.to_str().unwrap();
    let output = run(&["scan", "--format", "json", "--year", "2014", path], None);
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["stats"]["first_event"], "2014-12-14T20:46:10Z");
    assert_eq!(report["stats"]["last_event"], "2014-12-14T20:46:50Z");
    // With a zone, the year is that of the server's wall clock.
    let args = [
        "scan",
        "--format",
        "json",
        "--year",
        "2014",
        "--timezone=-05:00",
        path,
    ];
    let report: Value = serde_json::from_slice(&run(&args, None).stdout).unwrap();
    assert_eq!(report["stats"]["last_event"], "2014-12-15T01:46:50Z");

    let bad = run(&["scan", "--year", "14x", path], None);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a year that is not one is refused"
    );
}

#[test]
fn an_empty_log_is_zero_lines_not_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("mail.log");
    std::fs::write(&empty, b"").expect("write");
    let path = empty.to_str().expect("utf-8 path");
    let output = run(&["scan", path], None);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("0 lines"), "{text}");
    assert!(text.contains(": empty, 0 lines"), "{text}");

    let output = run(&["scan", "--format", "json", "-"], Some(Vec::new()));
    assert_eq!(output.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["inputs"][0]["lines"], 0);
    assert_eq!(report["incidents"].as_array().map(Vec::len), Some(0));

    // Beside an input that is no mail log, the empty one is named as such.
    let junk = dir.path().join("junk.log");
    std::fs::write(&junk, b"junk\n").expect("write");
    let output = run(&["scan", path, junk.to_str().expect("utf-8 path")], None);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{errors}");
    assert!(errors.contains("mail.log: empty"), "{errors}");
    assert!(errors.contains("junk.log: not a log format"), "{errors}");
}
