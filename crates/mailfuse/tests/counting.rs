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

/// The account's row of a report.
fn account_row<'a>(report: &'a Value, account: &str) -> &'a Value {
    report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["account"] == account)
        .unwrap_or_else(|| panic!("no row for {account}: {report:#}"))
}

/// A backed-up queue: the arrivals name their recipients and no delivery
/// has come yet. Exim's `for …` (`+received_recipients`) counts them.
#[test]
fn exim_arrival_recipients_count_before_any_delivery() {
    let log = "\
2024-03-21 19:26:06 1rnN8g-000A9w-2C <= alice@example.com H=(client) [198.51.100.7] P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_plain:alice@example.com S=1234 id=abc@client.example T=\"Offer\" for a@remote.example b@remote.example c@remote.example
2024-03-21 19:26:07 1rnN8h-000A9x-3D <= alice@example.com H=(client) [198.51.100.7] P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_plain:alice@example.com S=1234 id=abd@client.example T=\"Offer\" for d@remote.example e@remote.example
";
    let report = scan("mainlog", log);
    assert_eq!(report["stats"]["messages"], 2, "{report:#}");
    assert_eq!(report["stats"]["recipients"], 5);
    assert_eq!(account_row(&report, "alice@example.com")["recipients"], 5);
}

/// Kerio writes one `Recv:` line per recipient: a message's recipients are
/// counted from them before (and without) its `Sent:` lines, each once.
#[test]
fn kerio_recv_lines_count_recipients_before_any_delivery() {
    let recv = |to: &str| {
        format!(
            "[21/Mar/2024 19:26:06] Recv: Queue-ID: 65fc8a0e-00000001, Service: SMTP, From: <alice@example.com>, To: <{to}>, Size: 1234, Sender-Host: 198.51.100.7, User: alice@example.com, SSL: yes\n"
        )
    };
    let log = recv("a@remote.example") + &recv("b@remote.example") + &recv("c@remote.example")
        // The first recipient again, delivered: no new recipient.
        + "[21/Mar/2024 19:26:08] Sent: Queue-ID: 65fc8a0e-00000001, Recipient: <a@remote.example>, Result: relayed, Status: 2.0.0 , Remote-Host: 203.0.113.5\n";
    let report = scan("mail.log", &log);
    assert_eq!(report["stats"]["messages"], 1, "{report:#}");
    assert_eq!(report["stats"]["recipients"], 3);
    let row = account_row(&report, "alice@example.com");
    assert_eq!(
        (row["messages"].as_u64(), row["recipients"].as_u64()),
        (Some(1), Some(3))
    );
}
