//! What the generated logs promise the rest of mailfuse: Kerio's formats and
//! queue-id arithmetic, time order, reproducibility, and the scenarios the
//! example is there to show. Checked on the text, as a parser would see it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use mailfuse_core::time::{month_from_abbrev, parse_digits};
use mailfuse_core::Timestamp;
use mailfuse_loggen::bench::{self, BenchConfig};
use mailfuse_loggen::example::{self, ExampleLogs};

/// The example week, generated once for all tests.
fn week() -> &'static ExampleLogs {
    static WEEK: OnceLock<ExampleLogs> = OnceLock::new();
    WEEK.get_or_init(|| example::generate(example::DEFAULT_SEED))
}

/// A small benchmark file: a few staff so that a couple of MB span several
/// days and reach the hijack burst.
fn small_bench(seed: u64) -> Vec<u8> {
    let config = BenchConfig {
        seed,
        staff: 40,
        ..BenchConfig::new(3 << 20)
    };
    let mut out = Vec::new();
    bench::generate(&mut out, &config).unwrap();
    out
}

fn lines(bytes: &[u8]) -> Vec<&str> {
    let text = std::str::from_utf8(bytes).expect("generated logs are UTF-8");
    assert!(text.ends_with('\n'), "files end with a line end");
    text.lines().collect()
}

/// The wall time of a `[DD/Mon/YYYY HH:MM:SS] ` line, as seconds.
fn wall(line: &str) -> i64 {
    let b = line.as_bytes();
    assert!(b[0] == b'[' && &b[21..23] == b"] ", "bad stamp: {line}");
    let d = |at: usize| parse_digits::<2>(&b[at..]).unwrap() as u8;
    let year = parse_digits::<4>(&b[8..]).unwrap() as i32;
    let month = month_from_abbrev(&b[4..7]).unwrap();
    Timestamp::from_civil(year, month, d(1), d(13), d(16), d(19))
        .unwrap_or_else(|| panic!("bad stamp: {line}"))
        .0
}

/// The value of `key` (e.g. `"Queue-ID: "`) up to the next `", "`.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(key)? + key.len();
    let rest = &line[start..];
    Some(&rest[..rest.find(", ").unwrap_or(rest.len())])
}

fn queue_id(line: &str) -> (u32, u32) {
    let id = field(line, "Queue-ID: ").unwrap();
    assert_eq!(id.len(), 17, "{line}");
    let (time, counter) = id.split_once('-').unwrap();
    (
        u32::from_str_radix(time, 16).unwrap(),
        u32::from_str_radix(counter, 16).unwrap(),
    )
}

fn assert_time_ordered(name: &str, lines: &[&str]) {
    for pair in lines.windows(2) {
        assert!(
            wall(pair[0]) <= wall(pair[1]),
            "{name} out of order:\n{}\n{}",
            pair[0],
            pair[1]
        );
    }
}

/// The mail.log invariants shared by the example and the benchmark file.
fn assert_mail_log_invariants(mail: &[&str], utc_offset: i64) {
    let mut queued: HashMap<&str, i64> = HashMap::new();
    let mut last_counter = None;
    for line in mail {
        let at = wall(line);
        let id = field(line, "Queue-ID: ").unwrap();
        if line[23..].starts_with("Recv: ") {
            let (utc, counter) = queue_id(line);
            assert_eq!(
                i64::from(utc),
                at - utc_offset,
                "queue time ≠ line time − offset: {line}"
            );
            if let Some(last) = last_counter {
                assert_eq!(counter, last + 1, "counter must count messages: {line}");
            }
            last_counter = Some(counter);
            assert!(queued.insert(id, at).is_none(), "queue id reused: {line}");
            for key in [
                "Service: ",
                "From: <",
                "To: <",
                "Size: ",
                "Sender-Host: ",
                "Subject: ",
                "Msg-Id: <",
            ] {
                assert!(line.contains(key), "{key} missing: {line}");
            }
        } else {
            assert!(line[23..].starts_with("Sent: "), "unexpected line: {line}");
            let recv_at = queued
                .get(id)
                .unwrap_or_else(|| panic!("Sent before Recv: {line}"));
            assert!(*recv_at <= at);
            let result = field(line, "Result: ").unwrap();
            assert!(
                ["delivered", "relayed", "failed", "deferred"].contains(&result),
                "{line}"
            );
            let status = &line[line.find("Status: ").unwrap()..];
            let ok = match result {
                "failed" => status.starts_with("Status: 5.1.1 550 "),
                "deferred" => status.starts_with("Status: 4."),
                _ => status.starts_with("Status: 2.0.0 "),
            };
            assert!(ok, "status does not match result: {line}");
            assert!(line.contains(", Remote-Host: "), "{line}");
        }
    }
}

#[test]
fn example_mail_log_is_consistent() {
    let mail = lines(&week().mail);
    assert_time_ordered("mail.log", &mail);
    assert_mail_log_invariants(&mail, example::UTC_OFFSET);
    let first = wall(mail[0]);
    let last = wall(mail.last().unwrap());
    let monday = example::week_start().0;
    assert!(
        first >= monday && last < monday + 7 * 86_400,
        "stays within the week"
    );
}

#[test]
fn example_security_and_audit_logs_are_time_ordered() {
    assert_time_ordered("security.log", &lines(&week().security));
    assert_time_ordered("audit.log", &lines(&week().audit));
}

#[test]
fn same_seed_same_bytes() {
    let again = example::generate(example::DEFAULT_SEED);
    assert_eq!(again.mail, week().mail);
    assert_eq!(again.security, week().security);
    assert_eq!(again.audit, week().audit);
    let other = example::generate(example::DEFAULT_SEED + 1);
    assert_ne!(other.mail, week().mail);

    assert_eq!(small_bench(7), small_bench(7));
    assert_ne!(small_bench(7), small_bench(8));
}

#[test]
fn example_contains_the_sales_hijack() {
    let mail = lines(&week().mail);
    let is_spam = |l: &&str| {
        l.contains("Recv: ")
            && l.contains("From: <admin@redbullcarwrap.com>")
            && l.contains("User: sales@acme-tools.example")
    };
    let spam: Vec<&str> = mail.iter().copied().filter(is_spam).collect();
    assert!(
        (2_300..=2_700).contains(&spam.len()),
        "{} spam messages",
        spam.len()
    );
    assert!(spam
        .iter()
        .all(|l| field(l, "Sender-Host: ") == Some("173.16.65.213")));

    // It starts Thursday 02:13 local, and sales never sent anything before.
    let first = &week().first_spam;
    assert_eq!(first.line, spam[0]);
    assert!(
        first.line.starts_with("[05/Nov/2026 02:13:"),
        "{}",
        first.line
    );
    assert!(first
        .line
        .contains(&format!("Queue-ID: {}", first.queue_id)));
    let first_pos = mail.iter().position(|l| *l == first.line).unwrap();
    assert!(!mail[..first_pos].iter().any(|l| l.contains("User: sales@")));
    assert!(spam.last().unwrap().starts_with("[05/Nov/2026 06:"));

    // About 60 % of its recipients are refused as unknown users.
    let spam_ids: HashSet<&str> = spam
        .iter()
        .map(|l| field(l, "Queue-ID: ").unwrap())
        .collect();
    let (mut failed, mut total) = (0, 0);
    for l in mail.iter().filter(|l| l.contains("Sent: ")) {
        if spam_ids.contains(field(l, "Queue-ID: ").unwrap())
            && field(l, "Result: ") != Some("deferred")
        {
            total += 1;
            failed += usize::from(field(l, "Result: ") == Some("failed"));
        }
    }
    assert_eq!(total, spam.len(), "one final delivery per spam message");
    let pct = failed * 100 / total;
    assert!((54..=66).contains(&pct), "{pct} % failed");

    // The guessing before it: ~30 failed SMTP logins from the spammer's
    // address on Wednesday evening, then a successful login.
    let security = lines(&week().security);
    let guesses: Vec<&&str> = security
        .iter()
        .filter(|l| l.contains("Failed SMTP login from 173.16.65.213 "))
        .collect();
    assert_eq!(guesses.len(), 30);
    assert!(guesses.iter().all(|l| l.starts_with("[04/Nov/2026 2")));
    let audit = lines(&week().audit);
    assert!(audit.iter().any(|l| l.starts_with("[04/Nov/2026 2")
        && l.ends_with(
            "SMTP: User sales@acme-tools.example authenticated from IP address 173.16.65.213"
        )));
}

#[test]
fn example_newsletter_is_clean() {
    let mail = lines(&week().mail);
    let ids: HashSet<&str> = mail
        .iter()
        .filter(|l| l.contains("Recv: ") && l.contains("Subject: Acme Tools – November offers"))
        .map(|l| {
            assert!(l.starts_with("[04/Nov/2026 10:"), "{l}");
            assert!(
                l.contains("From: <marketing@acme-tools.example>")
                    && l.contains("User: marketing@")
            );
            assert_eq!(field(l, "Sender-Host: "), Some("198.51.100.10"));
            field(l, "Queue-ID: ").unwrap()
        })
        .collect();
    let finals: Vec<&&str> = mail
        .iter()
        .filter(|l| l.contains("Sent: ") && ids.contains(field(l, "Queue-ID: ").unwrap()))
        .filter(|l| field(l, "Result: ") != Some("deferred"))
        .collect();
    assert_eq!(finals.len(), 800);
    let failed = finals
        .iter()
        .filter(|l| field(l, "Result: ") == Some("failed"))
        .count();
    assert!(failed * 100 <= 2 * finals.len(), "{failed} of 800 failed");
}

#[test]
fn webmail_submissions_follow_a_webmail_login() {
    let audit = lines(&week().audit);
    let mail = lines(&week().mail);
    let mut checked = 0;
    for l in mail
        .iter()
        .filter(|l| l.contains("Service: Kerio Connect Client"))
    {
        assert_eq!(field(l, "Sender-Host: "), Some("0.0.0.0"), "{l}");
        let user = field(l, "User: ").unwrap();
        let at = wall(l);
        let login = audit
            .iter()
            .rev()
            .find(|a| {
                wall(a) <= at && a.contains(&format!("HTTP/WebMail: User {user} authenticated"))
            })
            .unwrap_or_else(|| panic!("no webmail login before {l}"));
        assert!(at - wall(login) < 12 * 3_600, "login too old for {l}");
        checked += 1;
    }
    assert!(checked > 50, "{checked} webmail messages");
}

#[test]
fn example_contains_the_other_scenarios() {
    let security = lines(&week().security);
    let count = |needle: &str| security.iter().filter(|l| l.contains(needle)).count();

    // Tuesday morning typos of k.dvorak, then his login.
    let typos: Vec<&&str> = security
        .iter()
        .filter(|l| l.contains("Invalid password for user k.dvorak@"))
        .collect();
    assert_eq!(typos.len(), 4);
    assert!(typos
        .iter()
        .all(|l| l.starts_with("[03/Nov/2026 0") && l.ends_with("198.51.100.10")));
    let audit = lines(&week().audit);
    assert!(audit.iter().any(|l| wall(l) > wall(typos[3])
        && wall(l) - wall(typos[3]) < 600
        && l.contains("HTTP/WebMail: User k.dvorak@acme-tools.example authenticated from IP address 198.51.100.10")));

    // Monday's spray with AntiHammering blocks.
    let spray = count("Failed SMTP login from 45.155.205.99 with SASL method LOGIN.");
    assert!((180..=220).contains(&spray), "{spray}");
    assert!(count("SMTP: User admin@acme-tools.example doesn't exist. Attempt from IP address 45.155.205.99.") > 0);
    assert!(
        count("SMTP: AntiHammering - IP address 45.155.205.99 will be blocked for 5 minutes") >= 15
    );

    // Slow distributed guessing: 40 addresses of one /24, ≤ 2 tries per
    // address and hour, ~300 names.
    let mut per_ip_hour: HashMap<(&str, i64), u32> = HashMap::new();
    let mut users = HashSet::new();
    for l in security
        .iter()
        .filter(|l| l.contains("Failed IMAP login from 185.220.101."))
    {
        let rest = &l[l.find("from ").unwrap() + 5..];
        let (ip, user) = rest.split_once(", user ").unwrap();
        *per_ip_hour.entry((ip, wall(l) / 3_600)).or_default() += 1;
        users.insert(user);
    }
    let ips: HashSet<&str> = per_ip_hour.keys().map(|(ip, _)| *ip).collect();
    assert_eq!(ips.len(), 40);
    assert!(per_ip_hour.values().all(|&n| n <= 2));
    assert!((250..=320).contains(&users.len()), "{} names", users.len());

    // Noise.
    for needle in [
        "Relay attempt from IP address ",
        " found in DNS blacklist ",
        "Attempt to deliver to unknown recipient <",
    ] {
        assert!(count(needle) > 0, "{needle}");
    }
    let mail = lines(&week().mail);
    assert!(mail
        .iter()
        .any(|l| l.contains("Subject: \x1b[31mURGENT") && l.contains("<script>alert(1)</script>")));
}

#[test]
fn bench_file_is_consistent_and_has_the_burst() {
    let bytes = small_bench(bench::DEFAULT_SEED);
    assert!(bytes.len() >= 3 << 20);
    let mail = lines(&bytes);
    assert_time_ordered("bench mail.log", &mail);
    assert_mail_log_invariants(&mail, bench::UTC_OFFSET);
    let spam = mail
        .iter()
        .filter(|l| {
            l.contains("From: <admin@redbullcarwrap.com>")
                && l.contains("User: sales@globex.example")
        })
        .count();
    assert!(spam > 2_000, "{spam} spam messages");
    let mean = bytes.len() / mail.len();
    assert!((150..=300).contains(&mean), "mean line length {mean}");
}
