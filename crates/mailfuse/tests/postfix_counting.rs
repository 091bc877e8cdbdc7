//! What a Postfix log counts as a message, a recipient and a delivery, on
//! the set-ups real servers run: a content filter (amavis) that re-injects
//! every message, a backed-up queue, address-verification probes, bounce
//! notices and retries of mail queued before the log began. Synthetic logs
//! with the lines Postfix writes, read by `scan --format json`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::fmt::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Scans `log` (written as `mail.log`) and returns the JSON report.
fn scan(log: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    std::fs::write(&path, log).unwrap();
    // The file's modification time (now) dates syslog's yearless lines.
    let output = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(["scan", "--format", "json"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn account<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|row| row["account"] == name)
        .unwrap_or_else(|| panic!("no row for {name}: {report:#}"))
}

/// `Dec  1 HH:MM:SS` for `secs` seconds after 08:00.
fn stamp(secs: u32) -> String {
    let secs = 8 * 3600 + secs;
    format!(
        "Dec  1 {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A queue id as Postfix writes it (upper-case hex).
fn qid(prefix: u32, n: u32) -> String {
    format!("{prefix:X}{n:07X}")
}

/// One message from `login` at `ip` through amavis (10024 → 10025), whose
/// one recipient bounces after the filter, with the bounce notice the
/// server then sends back to the sender.
fn through_amavis(log: &mut String, t: u32, n: u32, login: &str, ip: &str) {
    let (orig, new, notice) = (qid(0xA, n), qid(0xB, n), qid(0xC, n));
    let (s0, s1, s2) = (stamp(t), stamp(t + 1), stamp(t + 2));
    let pid = 3000 + n;
    for line in [
        format!("{s0} mx postfix/submission/smtpd[{pid}]: connect from unknown[{ip}]"),
        format!("{s0} mx postfix/submission/smtpd[{pid}]: {orig}: client=unknown[{ip}], sasl_method=LOGIN, sasl_username={login}"),
        format!("{s0} mx postfix/cleanup[2101]: {orig}: message-id=<{n}.offer@{login}>"),
        format!("{s0} mx postfix/qmgr[2010]: {orig}: from=<{login}>, size=2431, nrcpt=1 (queue active)"),
        format!("{s0} mx postfix/submission/smtpd[{pid}]: disconnect from unknown[{ip}] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8"),
        // amavis re-injects before it answers: the copy's lines come first.
        format!("{s1} mx postfix/smtpd[2200]: connect from localhost[127.0.0.1]"),
        format!("{s1} mx postfix/smtpd[2200]: {new}: client=localhost[127.0.0.1]"),
        format!("{s1} mx postfix/cleanup[2102]: {new}: message-id=<{n}.offer@{login}>"),
        format!("{s1} mx postfix/qmgr[2010]: {new}: from=<{login}>, size=3012, nrcpt=1 (queue active)"),
        format!("{s1} mx amavis[1811]: ({n}-01) Passed CLEAN {{RelayedOutbound}}, ORIGINATING LOCAL [{ip}] <{login}> -> <nobody{n}@faraway.test>, Queue-ID: {orig}, Message-ID: <{n}.offer@{login}>, mail_id: x{n}, Hits: 1.2, size: 2431, queued_as: {new}, 812 ms"),
        format!("{s1} mx postfix/smtp[2300]: {orig}: to=<nobody{n}@faraway.test>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.91, delays=0.05/0/0.01/0.85, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as {new})"),
        format!("{s1} mx postfix/qmgr[2010]: {orig}: removed"),
        format!("{s1} mx postfix/smtpd[2200]: disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"),
        format!("{s2} mx postfix/smtp[2301]: {new}: to=<nobody{n}@faraway.test>, relay=mx.faraway.test[198.51.100.25]:25, delay=1.3, delays=0.01/0/0.6/0.7, dsn=5.1.1, status=bounced (host mx.faraway.test[198.51.100.25] said: 550 5.1.1 <nobody{n}@faraway.test>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))"),
        format!("{s2} mx postfix/cleanup[2101]: {notice}: message-id=<20261201080000.{notice}@mx.example.com>"),
        format!("{s2} mx postfix/bounce[2400]: {new}: sender non-delivery notification: {notice}"),
        format!("{s2} mx postfix/qmgr[2010]: {notice}: from=<>, size=5120, nrcpt=1 (queue active)"),
        format!("{s2} mx postfix/qmgr[2010]: {new}: removed"),
        format!("{s2} mx postfix/virtual[2500]: {notice}: to=<{login}>, relay=virtual, delay=0.02, delays=0/0/0/0.02, dsn=2.0.0, status=sent (delivered to maildir)"),
        format!("{s2} mx postfix/qmgr[2010]: {notice}: removed"),
    ] {
        writeln!(log, "{line}").unwrap();
    }
}

#[test]
fn content_filter_hop_is_no_delivery_and_the_account_owns_its_bounces() {
    let mut log = String::new();
    for n in 0..40 {
        through_amavis(&mut log, n * 20, n, "jdoe@example.com", "203.0.113.50");
    }
    let report = scan(&log);
    let jdoe = account(&report, "jdoe@example.com");
    assert_eq!(jdoe["messages"], 40, "{jdoe:#}");
    assert_eq!(jdoe["recipients"], 40, "{jdoe:#}");
    assert_eq!(jdoe["failed_recipients"], 40, "{jdoe:#}");
    let stats = &report["stats"];
    assert_eq!(stats["messages"], 40, "no copy, no notice: {stats:#}");
    assert_eq!(stats["recipients"], 40, "not the notices': {stats:#}");
    assert_eq!(stats["failed"], 40, "{stats:#}");
    assert_eq!(
        stats["delivered"], 40,
        "the notices, not the hops: {stats:#}"
    );
}

/// A spam run whose queue is backed up: qmgr takes each message in with
/// its recipient count, but few deliveries are logged before the log ends.
#[test]
fn nrcpt_counts_recipients_of_a_backed_up_queue() {
    let mut log = String::new();
    for n in 0..30u32 {
        let (id, s) = (qid(0xD, n), stamp(n * 3));
        let ip = "198.51.100.77";
        writeln!(log, "{s} mx postfix/submission/smtpd[4100]: {id}: client=unknown[{ip}], sasl_method=PLAIN, sasl_username=sales@example.com").unwrap();
        writeln!(
            log,
            "{s} mx postfix/cleanup[4101]: {id}: message-id=<{n}.run@example.com>"
        )
        .unwrap();
        writeln!(log, "{s} mx postfix/qmgr[4102]: {id}: from=<sales@example.com>, size=1804, nrcpt=5 (queue active)").unwrap();
        if n < 2 {
            // Two messages get one attempt each in: the first recipient is
            // deferred, the other four never show up.
            writeln!(log, "{s} mx postfix/smtp[4103]: {id}: to=<r{n}@far.test>, relay=none, delay=30, delays=0.01/0/30/0, dsn=4.4.1, status=deferred (connect to mx.far.test[192.0.2.9]:25: Connection timed out)").unwrap();
        }
    }
    // A message whose two deliveries settle its nrcpt=2: counted twice, not four times.
    let (id, s) = (qid(0xE, 1), stamp(200));
    for line in [
        format!("{s} mx postfix/submission/smtpd[4200]: {id}: client=pc1.example.com[192.0.2.10], sasl_method=PLAIN, sasl_username=ann@example.com"),
        format!("{s} mx postfix/qmgr[4102]: {id}: from=<ann@example.com>, size=900, nrcpt=2 (queue active)"),
        format!("{s} mx postfix/smtp[4103]: {id}: to=<a@far.test>, relay=mx.far.test[192.0.2.9]:25, delay=0.4, delays=0/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4F2A1)"),
        format!("{s} mx postfix/smtp[4103]: {id}: to=<b@far.test>, relay=mx.far.test[192.0.2.9]:25, delay=0.4, delays=0/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4F2A2)"),
        format!("{s} mx postfix/qmgr[4102]: {id}: removed"),
    ] {
        writeln!(log, "{line}").unwrap();
    }
    let report = scan(&log);
    let sales = account(&report, "sales@example.com");
    assert_eq!(sales["messages"], 30, "{sales:#}");
    assert_eq!(sales["recipients"], 150, "the sum of nrcpt: {sales:#}");
    assert_eq!(account(&report, "ann@example.com")["recipients"], 2);
    assert_eq!(report["stats"]["recipients"], 152, "{:#}", report["stats"]);
}

/// Lines of messages no account submitted: a retry of mail queued before
/// the log begins, an address-verification probe, and the server's bounce
/// notice about a message an account did submit.
#[test]
fn retries_probes_and_bounce_notices_are_no_submissions() {
    let report = scan(RETRY_PROBE_NOTICE);
    let stats = &report["stats"];
    assert_eq!(stats["messages"], 1, "bob's only: {stats:#}");
    assert_eq!(stats["recipients"], 1, "{stats:#}");
    assert_eq!(
        stats["delivered"], 3,
        "2 retried + the notice, no probe: {stats:#}"
    );
    assert_eq!(stats["failed"], 1, "{stats:#}");
    let bob = account(&report, "bob@example.com");
    assert_eq!(bob["messages"], 1);
    assert_eq!(bob["failed_recipients"], 1);
}

/// A retry (queued 35 hours before the log, `delay=126000`), a probe, and
/// bob's bounced message with the server's notice about it.
const RETRY_PROBE_NOTICE: &str = "\
Dec  1 08:00:00 mx postfix/qmgr[2010]: 3A1B2C4D5E: from=<newsletter@example.com>, size=40123, nrcpt=3 (queue active)
Dec  1 08:00:01 mx postfix/smtp[2301]: 3A1B2C4D5E: to=<a@far.test>, relay=mx.far.test[192.0.2.9]:25, delay=126000, delays=125999/0.01/0.4/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 91F3A)
Dec  1 08:00:01 mx postfix/smtp[2301]: 3A1B2C4D5E: to=<b@far.test>, relay=mx.far.test[192.0.2.9]:25, delay=126000, delays=125999/0.01/0.4/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 91F3B)
Dec  1 08:00:01 mx postfix/qmgr[2010]: 3A1B2C4D5E: removed
Dec  1 08:01:00 mx postfix/cleanup[2101]: 4B2C3D4E5F: message-id=<20261201080100.4B2C3D4E5F@mx.example.com>
Dec  1 08:01:00 mx postfix/qmgr[2010]: 4B2C3D4E5F: from=<double-bounce@mx.example.com>, size=287, nrcpt=1 (queue active)
Dec  1 08:01:01 mx postfix/smtp[2302]: 4B2C3D4E5F: to=<someone@far.test>, relay=mx.far.test[192.0.2.9]:25, delay=0.9, delays=0/0/0.5/0.4, dsn=2.1.5, status=deliverable (250 2.1.5 Ok)
Dec  1 08:01:01 mx postfix/qmgr[2010]: 4B2C3D4E5F: removed
Dec  1 08:02:00 mx postfix/submission/smtpd[3001]: 5C3D4E5F6A: client=laptop.example.com[192.0.2.44], sasl_method=PLAIN, sasl_username=bob@example.com
Dec  1 08:02:00 mx postfix/cleanup[2101]: 5C3D4E5F6A: message-id=<abc@laptop>
Dec  1 08:02:00 mx postfix/qmgr[2010]: 5C3D4E5F6A: from=<bob@example.com>, size=1200, nrcpt=1 (queue active)
Dec  1 08:02:01 mx postfix/smtp[2303]: 5C3D4E5F6A: to=<typo@far.test>, relay=mx.far.test[192.0.2.9]:25, delay=0.7, delays=0/0/0.3/0.4, dsn=5.1.1, status=bounced (host mx.far.test[192.0.2.9] said: 550 5.1.1 User unknown (in reply to RCPT TO command))
Dec  1 08:02:01 mx postfix/cleanup[2101]: 6D4E5F6A7B: message-id=<20261201080201.6D4E5F6A7B@mx.example.com>
Dec  1 08:02:01 mx postfix/bounce[2400]: 5C3D4E5F6A: sender non-delivery notification: 6D4E5F6A7B
Dec  1 08:02:01 mx postfix/qmgr[2010]: 6D4E5F6A7B: from=<>, size=3120, nrcpt=1 (queue active)
Dec  1 08:02:01 mx postfix/qmgr[2010]: 5C3D4E5F6A: removed
Dec  1 08:02:02 mx postfix/virtual[2500]: 6D4E5F6A7B: to=<bob@example.com>, relay=virtual, delay=0.02, delays=0/0/0/0.02, dsn=2.0.0, status=sent (delivered to maildir)
Dec  1 08:02:02 mx postfix/qmgr[2010]: 6D4E5F6A7B: removed
";

/// `trace` of a retry dates its arrival by `delay=` (35 hours before the
/// log), and `trace` of a bounced message links the server's notice.
#[test]
fn trace_dates_a_retry_by_delay_and_links_the_bounce_notice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    std::fs::write(&path, RETRY_PROBE_NOTICE).unwrap();
    let trace = |id: &str| -> Value {
        let output = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
            .args(["trace", "--format", "json", id])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let retry = trace("3A1B2C4D5E");
    // Delivered 2026-12-01 08:00:01 after 126,000 s (35 hours) in the queue.
    assert_eq!(retry["deliveries"][0]["at"], "2026-12-01T08:00:01Z");
    assert_eq!(retry["received"]["at"], "2026-11-29T21:00:01Z", "{retry:#}");
    assert_eq!(retry["received"]["at_from_delay"], true);

    let bounced = trace("5C3D4E5F6A");
    assert_eq!(
        bounced["notices"],
        serde_json::json!(["6D4E5F6A7B"]),
        "{bounced:#}"
    );
    let notice = trace("6D4E5F6A7B");
    assert_eq!(notice["received"]["notice_of"], "5C3D4E5F6A", "{notice:#}");

    // The text story says the same in words.
    let text = |id: &str| -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
            .args(["trace", id])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    let retry = text("3A1B2C4D5E");
    assert!(
        retry.contains("received:   2026-11-29T21:00:01Z (from delay=:"),
        "{retry}"
    );
    let bounced = text("5C3D4E5F6A");
    assert!(bounced.contains("notices:    6D4E5F6A7B ("), "{bounced}");
    let notice = text("6D4E5F6A7B");
    assert!(notice.contains("notice of:  5C3D4E5F6A ("), "{notice}");
}

/// A bounce notice of a UTC+01:00 server: Postfix made its Message-ID in
/// UTC (20:46:27) and syslog wrote the line in local time (21:46:28).
const OWN_MESSAGE_ID: &str = "\
Dec 14 21:40:01 mx postfix/smtpd[3101]: 5B1A2C3D4E: client=unknown[198.51.100.7], sasl_method=LOGIN, sasl_username=alice@example.com
Dec 14 21:40:01 mx postfix/cleanup[3120]: 5B1A2C3D4E: message-id=<abc@client.example>
Dec 14 21:40:01 mx postfix/qmgr[3050]: 5B1A2C3D4E: from=<alice@example.com>, size=900, nrcpt=1 (queue active)
Dec 14 21:46:27 mx postfix/smtp[3130]: 5B1A2C3D4E: to=<nobody@remote.example>, relay=mx.remote.example[203.0.113.5]:25, delay=386, delays=0.1/0/0.2/386, dsn=5.1.1, status=bounced (host mx.remote.example[203.0.113.5] said: 550 5.1.1 no such user (in reply to RCPT TO command))
Dec 14 21:46:27 mx postfix/cleanup[3120]: 7C2201C2F: message-id=<20141214204627.7C2201C2F@mx.example.com>
Dec 14 21:46:27 mx postfix/bounce[3140]: 5B1A2C3D4E: sender non-delivery notification: 7C2201C2F
Dec 14 21:46:28 mx postfix/qmgr[3050]: 7C2201C2F: from=<>, size=2400, nrcpt=1 (queue active)
";

/// The zone is derived from the notice's Message-ID, a thousand lines into
/// the log, and every local time read with it.
#[test]
fn the_server_offset_comes_from_a_message_id_postfix_made() {
    let mut log = String::new();
    for n in 0..1000 {
        writeln!(
            log,
            "Dec 14 21:3{}:00 mx postfix/smtpd[3101]: connect from unknown[192.0.2.{}]",
            n % 10,
            n % 250
        )
        .unwrap();
    }
    log.push_str(OWN_MESSAGE_ID);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    std::fs::write(&path, &log).unwrap();
    let run = |format: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
            .args(["scan", "--year", "2014", "--format", format])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    let report: Value = serde_json::from_str(&run("json")).unwrap();
    assert_eq!(report["time_zone"]["zone"], "UTC+01:00", "{report:#}");
    assert_eq!(report["stats"]["first_event"], "2014-12-14T20:40:01Z");
    assert_eq!(report["stats"]["last_event"], "2014-12-14T20:46:28Z");
    let text = run("text");
    assert!(
        text.contains("server clock UTC+01:00, derived from a Message-ID Postfix made in UTC)"),
        "{text}"
    );
}
