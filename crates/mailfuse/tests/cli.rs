//! The `mailfuse` command as a user runs it: the bundled example, exit codes,
//! the JSON contract, `trace`, and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "support/run.rs"]
mod run;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use run::mailfuse;

use serde_json::Value;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kerio")
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn incidents_of_kind<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["incidents"]
        .as_array()
        .expect("incidents array")
        .iter()
        .filter(|i| i["kind"] == kind)
        .collect()
}

#[test]
fn example_scan_finds_the_hijacked_sales_account_and_the_guessers() {
    let dir = example_dir();
    let output = mailfuse(&["scan", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "exit 1 = incidents found");
    let report = json_of(&output);

    let hijacks = incidents_of_kind(&report, "compromised_account");
    assert_eq!(
        hijacks.len(),
        1,
        "exactly one hijacked account: {hijacks:#?}"
    );
    let sales = hijacks[0];
    assert_eq!(sales["account"], "sales@acme-tools.example");
    assert_eq!(sales["ips"], serde_json::json!(["173.16.65.213"]));
    assert!(sales["messages"].as_u64().unwrap() > 1000);
    assert!(
        sales["failed_recipients"].as_u64().unwrap() * 2 > sales["recipients"].as_u64().unwrap()
    );
    let evidence = sales["evidence"][0].as_str().unwrap();
    assert!(
        evidence.contains("Recv: Queue-ID:") && evidence.contains("User: sales@acme-tools.example"),
        "{evidence}"
    );
    assert!(
        evidence.contains("Sender-Host: 173.16.65.213"),
        "{evidence}"
    );
    for field in ["first_seen", "last_seen", "recipients", "score", "reasons"] {
        assert!(!sales[field].is_null(), "field {field} missing");
    }

    let guessing = incidents_of_kind(&report, "password_guessing");
    let by_ip = |ip: &str| {
        guessing.iter().find(|i| {
            i["ips"].as_array().unwrap().iter().any(|v| v == ip) && i["network"].is_null()
        })
    };
    let spray = by_ip("45.155.205.99").expect("the spray is found");
    assert!(spray["failed_logins"].as_u64().unwrap() >= 100);
    let sales_guesser = by_ip("173.16.65.213").expect("the sales guesser is found");
    assert_eq!(
        sales_guesser["succeeded_as"],
        serde_json::json!(["sales@acme-tools.example"])
    );
    let slow = guessing
        .iter()
        .find(|i| i["network"] == "185.220.101.0/24")
        .expect("the slow /24 guessing is found");
    assert!(slow["ips"].as_array().unwrap().len() >= 10);

    let accounts = report["accounts"].as_array().unwrap();
    let marketing = accounts
        .iter()
        .find(|a| a["account"] == "marketing@acme-tools.example")
        .expect("marketing row");
    assert_eq!(
        marketing["compromised"], false,
        "the newsletter is not an incident"
    );
    assert!(marketing["recipients"].as_u64().unwrap() >= 500);
    assert!(
        !hijacks.iter().chain(guessing.iter()).any(|i| i["ips"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "198.51.100.10")),
        "the office IP (with the user who mistyped a password) is never blamed"
    );
    assert_eq!(report["time_zone"]["zone"], "UTC+01:00");
}

#[test]
fn example_text_report_names_account_ip_and_evidence_and_is_terminal_safe() {
    let output = mailfuse(&["scan", example_dir().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).expect("UTF-8 report");
    assert!(
        text.contains("COMPROMISED ACCOUNT  sales@acme-tools.example"),
        "{text}"
    );
    assert!(text.contains("173.16.65.213"));
    assert!(text.contains("Recv: Queue-ID:"));
    assert!(!text.contains('\x1b'), "no raw escape reaches the terminal");
    let incidents_at = text.find("INCIDENTS").unwrap();
    let accounts_at = text.find("ACCOUNTS THAT SENT MAIL").unwrap();
    assert!(incidents_at < accounts_at, "incidents come first");
}

#[test]
fn trace_tells_the_story_of_the_first_spam_message() {
    let dir = example_dir();
    let scan = json_of(&mailfuse(&[
        "scan",
        "--format",
        "json",
        dir.to_str().unwrap(),
    ]));
    let evidence = scan["incidents"][0]["evidence"][0]
        .as_str()
        .unwrap()
        .to_string();
    let queue_id = evidence
        .split("Queue-ID: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("queue id in evidence");

    let output = mailfuse(&["trace", queue_id, dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("account:    sales@acme-tools.example"),
        "{text}"
    );
    assert!(text.contains("from host:  173.16.65.213"), "{text}");
    assert!(text.contains("failed logins from the same IP"), "{text}");

    let json = json_of(&mailfuse(&[
        "trace",
        "--format",
        "json",
        queue_id,
        dir.to_str().unwrap(),
    ]));
    assert_eq!(json["found"], true);
    assert_eq!(json["received"]["account"], "sales@acme-tools.example");
    // What the scan leaves unread, the story shows.
    let subject = json["received"]["subject"].as_str().unwrap();
    let evidence_subject = evidence.split("Subject: ").nth(1).unwrap();
    assert!(evidence_subject.starts_with(subject), "{subject}");
    assert!(json["received"]["message_id"].is_string());
    assert!(json["logins"]["failed_from_ip"].as_u64().unwrap() >= 10);
    assert!(!json["deliveries"].as_array().unwrap().is_empty());
}

#[test]
fn trace_of_an_unknown_queue_id_exits_1() {
    let output = mailfuse(&[
        "trace",
        "deadbeef-00000000",
        example_dir().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("is not in these logs"));
}

#[test]
fn missing_input_is_an_error_with_exit_2_and_a_clear_message() {
    let output = mailfuse(&["scan", "/nonexistent/mail.log"]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("/nonexistent/mail.log"), "{err}");
}

#[test]
fn a_clean_log_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mail.log"),
        "[02/Nov/2026 09:00:00] Recv: Queue-ID: 6ae84300-00000001, Service: SMTP, From: <a@acme.example>, To: <b@partner.example>, Size: 900, Sender-Host: 198.51.100.10, User: a@acme.example, SSL: yes\n\
         [02/Nov/2026 09:00:01] Sent: Queue-ID: 6ae84300-00000001, Recipient: <b@partner.example>, Result: relayed, Status: 2.0.0 OK\n",
    )
    .unwrap();
    let output = mailfuse(&["scan", "--format", "json", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let report = json_of(&output);
    assert_eq!(report["incidents"], serde_json::json!([]));
    assert_eq!(report["stats"]["messages"], 1);
    assert_eq!(
        report["time_zone"]["zone"], "UTC+01:00",
        "derived from the Queue-ID"
    );
}

/// A directory of hostile input: invalid UTF-8 (Windows code page), NUL
/// bytes, a 10 MB line, a truncated last line, an empty file, unrelated
/// files, terminal escapes and HTML in Subject/From.
fn hostile_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut mail = Vec::new();
    mail.extend_from_slice(b"[02/Nov/2026 09:00:00] Recv: Queue-ID: 6ae84300-00000001, Service: SMTP, From: <\x1b]0;pwned\x07evil@x.example>, To: <b@partner.example>, Size: 900, Sender-Host: 198.51.100.10, User: a@acme.example, SSL: yes, Subject: \x1b[2J<script>alert(1)</script> caf\xe9 \x9b31m\n");
    mail.extend_from_slice(b"[02/Nov/2026 09:00:01] Sent: Queue-ID: 6ae84300-00000001, Recipient: <b@partner.example>, Result: relayed, Status: 2.0.0 OK\n");
    mail.extend_from_slice(
        b"[02/Nov/2026 09:00:02] Recv: Queue-ID: \x00\x00\x00, Service: SMTP\x00\n",
    );
    mail.extend_from_slice(b"[02/Nov/2026 09:00:03] Recv: Queue-ID: 6ae84303-00000002, Subject: ");
    mail.extend(std::iter::repeat_n(b'A', 10 * 1024 * 1024));
    mail.push(b'\n');
    mail.extend_from_slice(b"[99/Zzz/2026 09:00:04] Sent: garbage\n");
    mail.extend_from_slice(b"complete nonsense \xff\xfe\n");
    mail.extend_from_slice(
        b"[02/Nov/2026 09:00:05] Sent: Queue-ID: 6ae84300-00000001, Recipient: <c@partner.ex",
    );
    std::fs::write(dir.path().join("mail.log"), mail).unwrap();
    std::fs::write(dir.path().join("security.log"), b"").unwrap();
    std::fs::write(
        dir.path().join("README.txt"),
        b"notes about the server\nnothing to see\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("logo.png"),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
    )
    .unwrap();
    dir
}

#[test]
fn hostile_input_never_crashes_is_counted_and_is_escaped() {
    let dir = hostile_dir();
    let output = mailfuse(&["scan", dir.path().to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("the report is valid UTF-8");
    assert!(
        !text.contains('\x1b') && !text.contains('\x07') && !text.contains('\u{9b}'),
        "{text}"
    );
    assert!(
        text.contains("too long"),
        "the 10 MB line is counted: {text}"
    );
    assert!(
        text.contains("README.txt") && text.contains("skipped"),
        "{text}"
    );

    let report = json_of(&mailfuse(&[
        "scan",
        "--format",
        "json",
        dir.path().to_str().unwrap(),
    ]));
    assert!(
        report["skipped_lines"].as_u64().unwrap() >= 3,
        "{:#}",
        report["inputs"]
    );
    let mail = report["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"].as_str().unwrap().ends_with("mail.log"))
        .unwrap();
    assert_eq!(mail["too_long"], 1);
    assert_eq!(mail["lines"], 7);
    assert_eq!(report["stats"]["messages"], 1);
    let raw = String::from_utf8(
        mailfuse(&["scan", "--format", "json", dir.path().to_str().unwrap()]).stdout,
    )
    .unwrap();
    assert!(!raw.contains('\x1b'), "JSON escapes control characters");
}

#[test]
fn trace_escapes_hostile_subjects() {
    let dir = hostile_dir();
    let output = mailfuse(&["trace", "6ae84300-00000001", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("\\x1b[2J<script>"),
        "escape shown as text: {text}"
    );
    assert!(!text.contains('\x1b'));
}

#[test]
fn reads_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(["scan", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::fs::read(example_dir().join("mail.log")).unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&log).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    assert_eq!(
        incidents_of_kind(&report, "compromised_account")[0]["account"],
        "sales@acme-tools.example"
    );
}

#[test]
fn scan_with_a_config_enforces_its_limits_and_refuses_old_keys() {
    let dir = example_dir();
    let scratch = tempfile::tempdir().unwrap();
    // The file watch and policy read: scan takes [limits] and [detect] from
    // it, and needs no [watch] section.
    let config = scratch.path().join("mailfuse.toml");
    std::fs::write(
        &config,
        "[limits]\nallow = [\"marketing@acme-tools.example\"]\n\n\
         [[limits.default]]\nwindow = \"1h\"\nmessages = 100\n",
    )
    .unwrap();
    let without = json_of(&mailfuse(&[
        "scan",
        "--format",
        "json",
        dir.to_str().unwrap(),
    ]));
    assert!(incidents_of_kind(&without, "limit_exceeded").is_empty());

    let output = mailfuse(&[
        "scan",
        "--format",
        "json",
        "-c",
        config.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    let over = incidents_of_kind(&report, "limit_exceeded");
    let accounts: Vec<&str> = over.iter().filter_map(|i| i["account"].as_str()).collect();
    assert_eq!(accounts, ["sales@acme-tools.example"], "{over:#?}");
    // The behavioural verdicts are the same with or without the file.
    assert_eq!(
        incidents_of_kind(&report, "compromised_account").len(),
        incidents_of_kind(&without, "compromised_account").len()
    );

    // A file in the old syntax is refused with the new key named.
    std::fs::write(
        &config,
        "[[detect.limits.default]]\nwindow = \"1h\"\nmessages = 100\n",
    )
    .unwrap();
    let old = mailfuse(&[
        "scan",
        "-c",
        config.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert_eq!(old.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&old.stderr);
    assert!(stderr.contains("limits.default"), "{stderr}");
}

#[test]
fn check_config_takes_the_path_alone_and_a_missing_file_says_how_to_give_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mailfuse.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nlogs = [\"{}\"]\nstate = \"{}\"\n",
            dir.path().join("mail.log").display(),
            dir.path().join("state.db").display()
        ),
    )
    .unwrap();
    let path = config.to_str().unwrap();
    for args in [&["check-config", path][..], &["check-config", "-c", path]] {
        let output = mailfuse(args);
        let out = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {out}");
        assert!(out.contains("valid"), "{out}");
    }

    let missing = dir.path().join("nothing.toml");
    let output = mailfuse(&["status", "-c", missing.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no such file")
            && err.contains("-c FILE")
            && err.contains("dist/mailfuse.toml"),
        "{err}"
    );
    assert_eq!(err.matches("no such file").count(), 1, "said once: {err}");
}

#[test]
fn check_config_warns_of_placeholders_and_missing_logs_but_passes() {
    let dir = tempfile::tempdir().unwrap();
    let present = dir.path().join("mail.log");
    std::fs::write(&present, b"").unwrap();
    let missing = dir.path().join("maillog");
    let config = dir.path().join("mailfuse.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nlogs = [\"{}\", \"{}\"]\nstate = \"{}\"\nhostname = \"mail.example.com\"\n\
             [detect.compromise]\nlocal_domains = [\"acme.example\", \"example.org\"]\n",
            present.display(),
            missing.display(),
            dir.path().join("state.db").display()
        ),
    )
    .unwrap();
    let output = mailfuse(&["check-config", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("valid"));
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 3, "{err}");
    assert!(
        err.contains("watch.hostname: names an example domain"),
        "{err}"
    );
    assert!(
        err.contains("detect.compromise.local_domains[1]: names an example domain"),
        "{err}"
    );
    assert!(
        err.contains("watch.logs[1]:") && err.contains("does not exist"),
        "{err}"
    );
    assert!(
        err.contains("journal"),
        "says where logs may be instead: {err}"
    );
}

#[test]
fn a_missing_state_directory_is_made_and_one_that_cannot_be_says_what_to_do_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mailfuse.toml");
    let write_config = |state: &std::path::Path| {
        std::fs::write(
            &config,
            format!(
                "[watch]\nlogs = [\"{}\"]\nstate = \"{}\"\n",
                dir.path().join("mail.log").display(),
                state.display()
            ),
        )
        .unwrap();
    };
    let state = dir.path().join("var/lib/mailfuse/state.db");
    write_config(&state);
    let output = mailfuse(&["status", "-c", config.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(state.is_file(), "the state and its directories were made");

    // /proc takes no new directories, whoever asks.
    write_config(std::path::Path::new("/proc/mailfuse-test/state.db"));
    let output = mailfuse(&["status", "-c", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot create the state directory /proc/mailfuse-test")
            && err.contains("choose another state file"),
        "{err}"
    );
    for phrase in ["cannot open", "state directory /proc", "No such file"] {
        assert_eq!(
            err.matches(phrase).count(),
            1,
            "{phrase:?} said once: {err}"
        );
    }
}

#[test]
fn a_taken_port_is_named_with_the_setting_to_change_and_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    // Held for the whole test: every server below finds the port taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let config = dir.path().join("mailfuse.toml");
    let base = format!(
        "[watch]\nlogs = [\"{}\"]\nstate = \"{}\"\n",
        dir.path().join("mail.log").display(),
        dir.path().join("state.db").display()
    );
    let cases = [
        (
            "watch",
            format!("metrics_listen = \"{address}\"\n"),
            "watch.metrics_listen",
        ),
        (
            "policy",
            format!("[policy]\nlisten = [\"{address}\"]\n"),
            "policy.listen",
        ),
        (
            "serve",
            format!("[web]\nlisten = \"{address}\"\nread_only = true\n"),
            "web.listen",
        ),
    ];
    for (command, section, setting) in cases {
        std::fs::write(&config, format!("{base}{section}")).unwrap();
        let output = mailfuse(&[command, "-c", config.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains(&format!("cannot listen on {address}"))
                && err.contains("another program listens there")
                && err.contains(&format!("set {setting} to a free port")),
            "{command}: {err}"
        );
        assert!(!err.contains("panicked"), "{command}: {err}");
    }
}
