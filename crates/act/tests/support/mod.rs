//! Servers and incidents for the alert tests; nothing here reaches the
//! internet.

#![allow(dead_code)] // each test file uses part of it

pub mod http;
pub mod smtp;

use mailfuse_detect::Incident;

/// A hijacked account, as `mailfuse scan --format json` prints it.
pub fn hijacked() -> Incident {
    serde_json::from_str(
        r#"{
        "kind": "compromised_account",
        "account": "sales@example.com",
        "ips": ["173.16.65.213"],
        "first_seen": "2024-08-30T00:10:57Z",
        "last_seen": "2024-08-30T01:02:11Z",
        "detected_at": "2024-08-30T00:14:03Z",
        "messages": 120, "recipients": 4000, "failed_recipients": 900,
        "external_recipients": 3990, "failed_logins": 12, "score": 100,
        "reasons": ["new sending IP 173.16.65.213 for an account active since 2024-01-02",
                    "900 of 4000 recipients refused permanently (22%)"],
        "evidence": ["[30/Aug/2024 00:10:57] Recv: Queue-ID: 66d1, Service: SMTP, From: <sales@example.com>, To: <a@b.example>, Size: 2120, Sender-Host: 173.16.65.213, User: sales@example.com"]
    }"#,
    )
    .unwrap()
}

/// Password guessing from two IPs.
pub fn guessing() -> Incident {
    serde_json::from_str(
        r#"{
        "kind": "password_guessing",
        "ips": ["45.155.205.99", "2001:db8::7"],
        "first_seen": "2024-08-30T00:00:01Z",
        "last_seen": "2024-08-30T00:59:59Z",
        "detected_at": "2024-08-30T00:05:00Z",
        "messages": 0, "recipients": 0, "failed_recipients": 0,
        "external_recipients": 0, "failed_logins": 380, "score": 90,
        "accounts_tried": ["admin", "info@example.com"], "accounts_tried_total": 2,
        "reasons": ["380 failed logins in an hour"],
        "evidence": ["Aug 30 00:00:01 mail dovecot: auth: sql(admin,45.155.205.99): unknown user"]
    }"#,
    )
    .unwrap()
}
