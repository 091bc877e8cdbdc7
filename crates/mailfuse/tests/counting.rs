//! Counts on real servers' lines that used to come out wrong (issue 12):
//! Postfix's SASL logins, syslog's `last message repeated N times`, and
//! counts past a cap. Each runs `mailfuse scan --format json` on a small log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::fs;
use std::process::{Command, Stdio};

use serde_json::Value;

/// `scan --format json` of a log file holding `text`.
fn scan(name: &str, text: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(["scan", "--format", "json", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .expect("mailfuse runs");
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Postfix's smtpd failing `n` SASL logins from `ip`, ten seconds apart.
fn postfix_failures(n: usize, ip: &str, account: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "Nov 22 21:{:02}:{:02} mail postfix/submission/smtpd[7094]: warning: unknown[{ip}]: \
                 SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username={account}\n",
                30 + i / 6,
                i % 6 * 10
            )
        })
        .collect()
}

/// One message `alice` submits over SMTP AUTH from `ip`, relayed out.
fn postfix_message(ip: &str) -> String {
    format!(
        "Nov 22 21:41:33 mail postfix/submission/smtpd[7094]: 2441AB4574: client=unknown[{ip}], sasl_method=LOGIN, sasl_username=alice@example.test
Nov 22 21:41:33 mail postfix/cleanup[7095]: 2441AB4574: message-id=<1@example.test>
Nov 22 21:41:33 mail postfix/qmgr[700]: 2441AB4574: from=<alice@example.test>, size=812, nrcpt=1 (queue active)
Nov 22 21:41:34 mail postfix/smtp[7096]: 2441AB4574: to=<bob@example.org>, relay=mx.example.org[203.0.113.5]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Nov 22 21:41:34 mail postfix/qmgr[700]: 2441AB4574: removed
"
    )
}

#[test]
fn postfix_sasl_logins_count_as_successful_logins() {
    let log =
        postfix_failures(2, "192.0.2.9", "alice@example.test") + &postfix_message("198.51.100.7");
    let report = scan("mail.log", &log);
    assert_eq!(report["stats"]["auth_failures"], 2);
    assert_eq!(report["stats"]["auth_successes"], 1);
    assert_eq!(report["stats"]["messages"], 1);
}

#[test]
fn a_guessing_ip_that_then_logs_in_over_sasl_is_a_guess_that_succeeded() {
    let log = postfix_failures(12, "198.51.100.7", "alice@example.test")
        + &postfix_message("198.51.100.7");
    let report = scan("mail.log", &log);
    let guessing = report["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "password_guessing")
        .expect("a guessing incident");
    let reasons = guessing["reasons"].to_string();
    assert!(
        reasons.contains("logged in as alice@example.test"),
        "{reasons}"
    );
}
