//! `mailfuse audit`: the accounts that should not be able to send, found in
//! Postfix + Dovecot logs, in Exim + Dovecot logs (small hand-written logs)
//! and through Kerio's Admin API (the emulator the Kerio action's tests
//! use); exit statuses, the JSON shape and escaping; and `--save`: watch
//! takes the sending of an account nobody logs into for a hijack (policy:
//! `policy_protocol.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "support/run.rs"]
mod run;
// Watch as the lab's tests run it (`support::watch`).
mod support;

// The act crate's emulator of Kerio's Admin API, shared, not copied; this
// test uses only part of it.
#[allow(dead_code)]
#[path = "../../act/tests/kerio_emulator/mod.rs"]
mod kerio_emulator;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use kerio_emulator::{Emulator, ADMIN, ADMIN_PASSWORD};
use run::mailfuse;
use serde_json::Value;
use support::audit::{pairs, problems, report};
use support::watch::{locked_accounts, status, Watch};

/// A Postfix + Dovecot syslog: `anna` receives and reads her mail (IMAP),
/// `orders` receives and never logs in, `sales` only ever sends (SMTP
/// AUTH), `old` read her mail once, 40 days before the log ends.
const POSTFIX_DOVECOT: &str = "\
Nov  1 08:00:00 mail dovecot: imap-login: Login: user=<old@example.com>, method=PLAIN, rip=192.0.2.20, lip=192.0.2.1, mpid=100, TLS, session=<a1>
Dec 10 09:00:00 mail postfix/smtpd[200]: 1A2B3C4D5E: client=mx.example.org[198.51.100.5]
Dec 10 09:00:00 mail postfix/qmgr[300]: 1A2B3C4D5E: from=<partner@example.org>, size=900, nrcpt=2 (queue active)
Dec 10 09:00:01 mail postfix/lmtp[400]: 1A2B3C4D5E: to=<anna@example.com>, relay=mail.example.com[private/dovecot-lmtp], delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 <anna@example.com> Saved)
Dec 10 09:00:01 mail postfix/lmtp[400]: 1A2B3C4D5E: to=<orders@example.com>, relay=mail.example.com[private/dovecot-lmtp], delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 <orders@example.com> Saved)
Dec 10 09:00:02 mail postfix/qmgr[300]: 1A2B3C4D5E: removed
Dec 10 09:05:00 mail dovecot: imap-login: Login: user=<anna@example.com>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, mpid=101, TLS, session=<a2>
Dec 11 02:00:00 mail postfix/submission/smtpd[201]: 2B3C4D5E6F: client=unknown[203.0.113.66], sasl_method=LOGIN, sasl_username=sales@example.com
Dec 11 02:00:00 mail postfix/qmgr[300]: 2B3C4D5E6F: from=<sales@example.com>, size=812, nrcpt=1 (queue active)
Dec 11 02:00:01 mail postfix/smtp[401]: 2B3C4D5E6F: to=<x@example.net>, relay=mx.example.net[203.0.113.5]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Dec 11 02:00:01 mail postfix/qmgr[300]: 2B3C4D5E6F: removed
";

/// Exim's main log: mail for `anna` and `orders` delivered locally, `sales`
/// sending with SMTP AUTH; Dovecot's log beside it: `anna` reads hers.
const EXIM: &str = "\
2026-12-10 09:00:00 1rK9Xa-0001ab-Cd <= partner@example.org H=mx.example.org [198.51.100.5]:40112 P=esmtp S=812 id=x.y@example.org
2026-12-10 09:00:01 1rK9Xa-0001ab-Cd => anna <anna@example.com> R=localuser T=local_delivery
2026-12-10 09:00:01 1rK9Xa-0001ab-Cd => orders <orders@example.com> R=localuser T=local_delivery
2026-12-10 09:00:02 1rK9Xa-0001ab-Cd Completed
2026-12-11 02:00:00 1rK9Zz-0001ac-Ef <= sales@example.com H=(pc) [203.0.113.66]:51234 P=esmtpsa A=dovecot_login:sales@example.com S=2275 id=abc@pc
2026-12-11 02:00:01 1rK9Zz-0001ac-Ef => x@example.net R=dnslookup T=remote_smtp H=mx.example.net [203.0.113.5]
2026-12-11 02:00:02 1rK9Zz-0001ac-Ef Completed
";
const EXIM_DOVECOT: &str = "\
Dec 10 09:05:00 mail dovecot: imap-login: Login: user=<anna>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, mpid=101, TLS, session=<a2>
";

/// `audit ARGS… --format json` on files holding `logs`: status and report.
fn audit_logs(logs: &[(&str, &str)], args: &[&str]) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<String> = logs
        .iter()
        .map(|(name, text)| {
            let path = dir.path().join(name);
            fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_owned()
        })
        .collect();
    let mut all = args.to_vec();
    all.extend(paths.iter().map(String::as_str));
    report(&all)
}

/// `audit --kerio -c CONFIG --format json`, off the emulator's runtime.
async fn audit_kerio(config: String) -> (Option<i32>, Value) {
    tokio::task::spawn_blocking(move || report(&["--kerio", "-c", &config]))
        .await
        .unwrap()
}

#[test]
fn postfix_and_dovecot_logs_show_who_never_logs_in_who_only_sends_and_who_went_quiet() {
    let (status, report) = audit_logs(
        &[("mail.log", POSTFIX_DOVECOT)],
        &["--year", "2026", "--stale-days", "30"],
    );
    assert_eq!(status, Some(1));
    assert_eq!(
        problems(&report),
        pairs(&[
            ("old@example.com", "stale"),
            ("orders@example.com", "receives_never_logs_in"),
            ("sales@example.com", "smtp_only"),
            ("sales@example.com", "role_name"),
        ])
    );
    assert_eq!(report["accounts"], 3);
    assert_eq!(report["stale_days"], 30);
    assert_eq!(report["log_end"], "2026-12-11T02:00:01Z");
    assert_eq!(report["sources"], serde_json::json!(["the logs"]));
    let orders = &report["findings"][1];
    assert_eq!(orders["detail"], "1 messages delivered, no login");
    assert!(orders["recommendation"]
        .as_str()
        .unwrap()
        .starts_with("make it an alias"));
    // 50 days: `old` is not stale any more.
    let (_, report) = audit_logs(
        &[("mail.log", POSTFIX_DOVECOT)],
        &["--year", "2026", "--stale-days", "50"],
    );
    assert!(!problems(&report).iter().any(|(_, p)| p == "stale"));
}

#[test]
fn exim_and_dovecot_logs_show_the_same() {
    let (status, report) = audit_logs(
        &[("mainlog", EXIM), ("dovecot.log", EXIM_DOVECOT)],
        &["--year", "2026"],
    );
    assert_eq!(status, Some(1));
    assert_eq!(
        problems(&report),
        pairs(&[
            ("orders@example.com", "receives_never_logs_in"),
            ("sales@example.com", "smtp_only"),
            ("sales@example.com", "role_name"),
        ])
    );
}

#[test]
fn nothing_found_exits_0_and_errors_exit_2() {
    let (status, report) = audit_logs(
        &[
            ("mail.log", EXIM_DOVECOT),
            (
                "mainlog",
                &EXIM[..EXIM
                    .find("2026-12-10 09:00:01 1rK9Xa-0001ab-Cd => orders")
                    .unwrap()],
            ),
        ],
        &["--year", "2026"],
    );
    assert_eq!(status, Some(0), "{report}");
    assert_eq!(problems(&report), []);

    let nothing = mailfuse(&["audit"]);
    assert_eq!(nothing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("nothing to audit"));
    let missing = mailfuse(&["audit", "/nonexistent/mail.log"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn text_and_html_reports_say_what_to_do_and_escape_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    fs::write(
        &log,
        POSTFIX_DOVECOT.replace("sasl_username=sales@", "sasl_username=sa<i>les@"),
    )
    .unwrap();
    let log = log.to_str().unwrap();
    let text = mailfuse(&["audit", "--no-progress", "--year", "2026", log]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("3 accounts should not be able to send"),
        "{text}"
    );
    assert!(text.contains("orders@example.com\n  - receives mail but never logs in: 1 messages delivered, no login\n    → make it an alias"), "{text}");

    let html = dir.path().join("audit.html");
    let status = mailfuse(&[
        "audit",
        "--no-progress",
        "--year",
        "2026",
        "--format",
        "html",
        "-o",
        html.to_str().unwrap(),
        log,
    ]);
    assert_eq!(status.status.code(), Some(1));
    let html = fs::read_to_string(html).unwrap();
    assert!(html.contains("sa&lt;i&gt;les@example.com"), "{html}");
    assert!(!html.contains("<i>"));
    assert!(html.contains("<td class=\"t\">only ever logs in to send (SMTP)</td>"));
}

/// A configuration whose `[actions.kerio]` points at the emulator, the
/// password in the secrets file.
fn kerio_config(dir: &Path, emulator: &Emulator) -> String {
    let secrets = dir.join("secrets.toml");
    fs::write(
        &secrets,
        format!("[actions.kerio]\npassword = \"{ADMIN_PASSWORD}\"\n"),
    )
    .unwrap();
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.join("mailfuse.toml");
    fs::write(
        &config,
        format!(
            "[watch]\nlogs = []\nsecrets = \"{}\"\n\n[actions.kerio]\nurl = \"{}\"\n\
             user = \"{ADMIN}\"\ntls_pin_sha256 = \"{}\"\n",
            secrets.display(),
            emulator.url(),
            emulator.pin()
        ),
    )
    .unwrap();
    config.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kerio_users_forwarding_only_never_logged_in_or_stale_are_found_normal_ones_not() {
    let emulator = Emulator::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for user in ["sales", "anna", "petr", "jana", "gone"] {
        emulator.add_user(&format!("{user}@example.com"), user != "gone");
    }
    emulator.password_policy("example.com", true, 10, Some(180), 5);
    // The story's `sales`: forwards everything, nobody ever logged in.
    emulator.forward("sales@example.com", "boss@example.net", false);
    // Forwarding with a copy kept is normal.
    emulator.forward("anna@example.com", "anna@home.example", true);
    emulator.last_login("anna@example.com", now - 3_600, "IMAP");
    emulator.last_login("jana@example.com", now - 2 * 86_400, "HTTP/WebMail");
    // No login for 100 days.
    emulator.last_login("petr@example.com", now - 100 * 86_400, "POP3");
    let dir = tempfile::tempdir().unwrap();
    let config = kerio_config(dir.path(), &emulator);

    let (status, report) = audit_kerio(config).await;
    assert_eq!(status, Some(1), "{report}");
    assert_eq!(
        problems(&report),
        pairs(&[
            ("petr@example.com", "stale"),
            ("sales@example.com", "forward_only"),
            ("sales@example.com", "never_logged_in"),
            ("sales@example.com", "role_name"),
        ])
    );
    assert_eq!(
        report["findings"][1]["detail"],
        "forwards to boss@example.net"
    );
    assert!(report["sources"][0]
        .as_str()
        .unwrap()
        .starts_with("Kerio Connect at https://127.0.0.1:"));
    assert!(emulator.methods().contains(&"Session.logout".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kerio_users_whose_domain_has_no_password_policy_are_found_unless_a_directory_checks_them()
{
    let emulator = Emulator::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for user in [
        "anna@example.com",
        "eva@shop.example",
        "jan@shop.example",
        "ota@shop.example",
    ] {
        emulator.add_user(user, true);
        emulator.last_login(user, now - 3_600, "IMAP");
    }
    // example.com requires complex passwords and expires them; shop.example,
    // as a new domain, does neither.
    emulator.password_policy("example.com", true, 10, Some(180), 5);
    emulator.store_password_reversibly("ota@shop.example");
    // jan's password is checked by the directory (its policy applies).
    emulator.authenticated_by("jan@shop.example", "ULDAPAuth");
    let dir = tempfile::tempdir().unwrap();
    let config = kerio_config(dir.path(), &emulator);

    let (status, report) = audit_kerio(config.clone()).await;
    assert_eq!(status, Some(1), "{report}");
    assert_eq!(
        problems(&report),
        pairs(&[
            ("eva@shop.example", "no_password_policy"),
            ("ota@shop.example", "no_password_policy"),
        ])
    );
    assert_eq!(
        report["findings"][0]["detail"],
        "domain shop.example: no complexity required, passwords never expire, no history kept"
    );
    assert_eq!(
        report["findings"][1]["detail"],
        "domain shop.example: no complexity required, passwords never expire, no history kept; \
         this user's password is stored reversibly"
    );
    assert!(report["findings"][0]["recommendation"]
        .as_str()
        .unwrap()
        .starts_with("turn the password policy on"));

    // Once the domain's policy is on, nobody is found.
    emulator.password_policy("shop.example", true, 12, Some(365), 3);
    let (status, report) = audit_kerio(config).await;
    assert_eq!(status, Some(0), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kerio_refusing_the_login_exits_2_and_says_so() {
    let emulator = Emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = kerio_config(dir.path(), &emulator);
    fs::write(
        dir.path().join("secrets.toml"),
        "[actions.kerio]\npassword = \"wrong\"\n",
    )
    .unwrap();
    let output =
        tokio::task::spawn_blocking(move || mailfuse(&["audit", "--kerio", "-c", &config]))
            .await
            .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wrong user or password"), "{stderr}");
}

/// Kerio's 02/Nov/2026 at `hh:mm:ss` (UTC), and the Queue-ID prefix Kerio
/// derives from it.
fn kerio_time(secs_after_nine: u32) -> (String, String) {
    let (h, m, s) = (
        9 + secs_after_nine / 3600,
        secs_after_nine / 60 % 60,
        secs_after_nine % 60,
    );
    let epoch = 0x6ae8_5110 + secs_after_nine; // 2026-11-02 09:00:00 UTC
    (
        format!("[02/Nov/2026 {h:02}:{m:02}:{s:02}]"),
        format!("{epoch:08x}"),
    )
}

/// One Kerio message: its Recv line and a delivered Sent line per
/// recipient; `user` when sent with SMTP AUTH.
fn kerio_message(n: u32, at: u32, from: &str, user: Option<&str>, to: &str, host: &str) -> String {
    let (stamp, prefix) = kerio_time(at);
    let (sent, _) = kerio_time(at + 1);
    let qid = format!("{prefix}-{n:08x}");
    let user = user.map(|u| format!(", User: {u}")).unwrap_or_default();
    // Kerio delivers into its own mailboxes through 127.0.0.1.
    let relay = if to.ends_with("@example.com") {
        "127.0.0.1"
    } else {
        "203.0.113.5"
    };
    format!(
        "{stamp} Recv: Queue-ID: {qid}, Service: SMTP, From: <{from}>, To: <{to}>, Size: 900, Sender-Host: {host}{user}, SSL: yes\n\
         {sent} Sent: Queue-ID: {qid}, Recipient: <{to}>, Result: delivered, Status: 2.0.0 , Remote-Host: {relay}\n"
    )
}

#[test]
fn watch_takes_the_first_smtp_login_of_an_account_the_audit_saved_for_a_hijack() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    // Before: partners write to orders@ and anna@; anna reads and sends.
    let mut before = String::new();
    for n in 0..3 {
        before += &kerio_message(
            n,
            n * 60,
            "p@partner.example",
            None,
            "orders@example.com",
            "198.51.100.5",
        );
    }
    before += &kerio_message(
        3,
        300,
        "p@partner.example",
        None,
        "anna@example.com",
        "198.51.100.5",
    );
    before += &kerio_message(
        4,
        900,
        "anna@example.com",
        Some("anna@example.com"),
        "p@partner.example",
        "192.0.2.10",
    );
    let (login, _) = kerio_time(600);
    let audit_log =
        format!("{login} IMAP: User anna@example.com authenticated from IP address 192.0.2.10\n");
    // Then orders@, which nobody ever logged into, sends 20 quiet messages.
    let mut after = before.clone();
    for n in 0..20 {
        let to = format!("client{n}@customers.example");
        after += &kerio_message(
            10 + n,
            7200 + n * 600,
            "orders@example.com",
            Some("orders@example.com"),
            &to,
            "198.51.100.77",
        );
    }
    fs::write(logs.join("mail.log"), &before).unwrap();
    fs::write(logs.join("audit.log"), &audit_log).unwrap();
    let config = dir.path().join("mailfuse.toml");
    fs::write(
        &config,
        format!(
            "[watch]\nlogs = [\"{}\"]\nstate = \"{}\"\npoll_ms = 20\nsave_every_secs = 1\n\
             timezone = \"+00:00\"\n\n[actions]\nact_within = \"3650d\"\n",
            logs.display(),
            dir.path().join("state.db").display()
        ),
    )
    .unwrap();

    let audit = mailfuse(&[
        "audit",
        "--no-progress",
        "--save",
        "-c",
        config.to_str().unwrap(),
        "--timezone",
        "+00:00",
        logs.to_str().unwrap(),
    ]);
    assert_eq!(audit.status.code(), Some(1));
    let said = String::from_utf8_lossy(&audit.stderr);
    assert!(
        said.contains("1 accounts nobody logs into recorded"),
        "{said}"
    );

    // Without the audit's mark (scan reads no state) it is no hijack.
    fs::write(logs.join("mail.log"), &after).unwrap();
    let scan = mailfuse(&[
        "scan",
        "--no-progress",
        "--format",
        "json",
        "--timezone",
        "+00:00",
        logs.to_str().unwrap(),
    ]);
    let scanned: Value = serde_json::from_slice(&scan.stdout).unwrap();
    assert!(
        !scanned["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "compromised_account"),
        "{scanned}"
    );

    let watch_log = dir.path().join("watch.log");
    let watch = Watch::start(&config, &watch_log);
    let mut found = None;
    support::wait_until("watch to lock orders@", Duration::from_secs(30), || {
        found = status(&config).filter(|s| locked_accounts(s) == ["orders@example.com"]);
        found.is_some()
    });
    watch.stop();
    let status = found.unwrap();
    let incident = &status["incidents"][0]["incident"];
    assert_eq!(incident["kind"], "compromised_account");
    assert_eq!(incident["account"], "orders@example.com");
    assert!(
        incident["reasons"].as_array().unwrap().iter().any(|r| r
            .as_str()
            .unwrap()
            .starts_with("first SMTP login of an account that never logs in (audit)")),
        "{incident}"
    );
}
