//! Guessing spread over many networks, as the report shows it: a brute
//! force at one account from many IPs in Postfix's lines, in text and JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::fmt::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

/// 60 IPs in 60 networks, one failed SASL login each at `jdoe`, two
/// minutes apart.
fn brute_force_log() -> String {
    let mut log = String::new();
    for n in 0..60u32 {
        let secs = n * 120;
        writeln!(
            log,
            "Nov 22 {:02}:{:02}:{:02} mail postfix/submission/smtpd[{}]: warning: unknown[{}.{}.7.9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=jdoe@example.test",
            10 + secs / 3600,
            secs / 60 % 60,
            secs % 60,
            7000 + n,
            30 + n,
            n * 3 % 250
        )
        .unwrap();
    }
    log
}

fn scan(format: &str, log: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    std::fs::write(&path, log).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(["scan", "--year", "2026", "--format", format])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "incidents found");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn brute_force_at_one_account_is_reported_with_the_account() {
    let log = brute_force_log();
    let report: Value = serde_json::from_str(&scan("json", &log)).unwrap();
    let incidents = report["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let brute = &incidents[0];
    assert_eq!(brute["kind"], "password_guessing");
    assert_eq!(brute["pattern"], "brute_force");
    assert_eq!(brute["account"], "jdoe@example.test");
    assert_eq!(brute["ips"].as_array().unwrap().len(), 60);
    assert_eq!(brute["failed_logins"], 60);
    // Tripped at the 50th IP.
    assert_eq!(brute["detected_at"], "2026-11-22T11:38:00Z");

    let text = scan("text", &log);
    assert!(
        text.contains("BRUTE FORCE  at jdoe@example.test from 60 IPs"),
        "{text}"
    );
    assert!(
        text.contains(
            "brute force at jdoe@example.test: 60 failed logins from 60 IPs in 60 networks"
        ),
        "{text}"
    );
}
