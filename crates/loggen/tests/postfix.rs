//! What the Postfix benchmark file promises: syslog lines in time order, each
//! message's life told completely and in order (arrival, `qmgr` activation,
//! one final outcome per recipient, removal), increasing queue ids, the
//! generator's counts matching the lines, and the hijack with the guessing
//! before it. Checked on the text, as a parser would see it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::collections::HashMap;
use std::sync::OnceLock;

use mailfuse_core::time::month_from_abbrev;
use mailfuse_core::Timestamp;
use mailfuse_loggen::bench::{self, BenchConfig, BenchReport, Format};

const TARGET: u64 = 4 << 20;

/// A small Postfix benchmark file: a few staff so that a few MB span several
/// days and reach the hijack burst.
fn generate(seed: u64) -> (Vec<u8>, BenchReport) {
    let config = BenchConfig {
        target_bytes: TARGET,
        seed,
        staff: 40,
        format: Format::Postfix,
    };
    let mut out = Vec::new();
    let report = bench::generate(&mut out, &config).unwrap();
    (out, report)
}

fn file() -> &'static (Vec<u8>, BenchReport) {
    static FILE: OnceLock<(Vec<u8>, BenchReport)> = OnceLock::new();
    FILE.get_or_init(|| generate(bench::DEFAULT_SEED))
}

fn lines() -> Vec<&'static str> {
    let text = std::str::from_utf8(&file().0).expect("generated logs are UTF-8");
    assert!(text.ends_with('\n'), "files end with a line end");
    text.lines().collect()
}

/// A line split into its parts.
struct Line<'a> {
    /// Seconds, taking the year as 2026 (the file starts in November 2026).
    at: i64,
    /// `postfix/qmgr`, `dovecot`…
    program: &'a str,
    /// After `program[pid]: ` (or `dovecot: `).
    text: &'a str,
}

fn parse(line: &str) -> Line<'_> {
    let month = month_from_abbrev(&line.as_bytes()[..3]).unwrap_or_else(|| panic!("{line}"));
    let day: u8 = line[4..6].trim_start().parse().unwrap();
    let hms: Vec<u8> = line[7..15].split(':').map(|p| p.parse().unwrap()).collect();
    assert_eq!(&line[15..21], " mail ", "{line}");
    let at = Timestamp::from_civil(2026, month, day, hms[0], hms[1], hms[2])
        .unwrap_or_else(|| panic!("bad stamp: {line}"))
        .0;
    let rest = &line[21..];
    let (head, text) = rest.split_once(": ").unwrap();
    let program = head.split('[').next().unwrap();
    if program != "dovecot" {
        let pid = head[program.len()..].trim_matches(['[', ']']);
        assert!(pid.parse::<u32>().is_ok(), "pid: {line}");
    }
    Line { at, program, text }
}

/// The queue id a Postfix line is about, if any.
fn queue_id<'a>(line: &Line<'a>) -> Option<&'a str> {
    let (id, _) = line.text.split_once(": ")?;
    let is_id = id.len() == 10
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase());
    is_id.then_some(id)
}

/// The value of `key=` up to the next `, ` or the end.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(key)? + key.len();
    let rest = &text[start..];
    Some(&rest[..rest.find(", ").unwrap_or(rest.len())])
}

#[derive(Default)]
struct Queued {
    /// `nrcpt=` of the first activation.
    nrcpt: Option<u32>,
    settled: u32,
    removed: bool,
}

#[test]
fn lines_are_syslog_in_time_order() {
    let mut last = i64::MIN;
    for line in lines() {
        let parsed = parse(line);
        assert!(parsed.at >= last, "out of order: {line}");
        last = parsed.at;
        assert!(
            [
                "postfix/smtpd",
                "postfix/submission/smtpd",
                "postfix/cleanup",
                "postfix/qmgr",
                "postfix/smtp",
                "postfix/lmtp",
                "postfix/bounce",
                "dovecot",
            ]
            .contains(&parsed.program),
            "unexpected program: {line}"
        );
    }
}

#[test]
fn every_message_is_told_completely_and_in_order() {
    let mut queue: HashMap<&str, Queued> = HashMap::new();
    let mut last_id = 0u64;
    for line in lines() {
        let parsed = parse(line);
        let Some(id) = queue_id(&parsed) else {
            continue;
        };
        let rest = &parsed.text[12..];
        let announces = rest.starts_with("client=");
        if announces {
            let n = u64::from_str_radix(id, 16).unwrap();
            assert!(n > last_id, "queue ids must increase: {line}");
            last_id = n;
            assert!(
                queue.insert(id, Queued::default()).is_none(),
                "reused: {line}"
            );
        } else if let Some(notice) = rest.strip_prefix("sender non-delivery notification: ") {
            let n = u64::from_str_radix(notice, 16).unwrap();
            assert!(n > last_id, "queue ids must increase: {line}");
            last_id = n;
            assert!(
                queue.insert(notice, Queued::default()).is_none(),
                "reused: {line}"
            );
        }
        let Some(q) = queue.get_mut(id) else {
            panic!("queue id before its arrival: {line}");
        };
        assert!(!q.removed, "line after removal: {line}");
        if rest.starts_with("from=<") {
            let nrcpt: u32 = field(rest, "nrcpt=")
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(field(rest, "size=").unwrap().parse::<u32>().unwrap() > 0);
            q.nrcpt.get_or_insert(nrcpt);
        } else if rest.starts_with("to=<") {
            assert!(q.nrcpt.is_some(), "delivery before qmgr's from=: {line}");
            let status = field(rest, "status=").unwrap();
            let dsn = field(rest, "dsn=").unwrap();
            let ok = match status.split(' ').next().unwrap() {
                "sent" => dsn.starts_with("2."),
                "bounced" => dsn.starts_with("5.") && status.contains(" said: 5"),
                "deferred" => dsn.starts_with("4."),
                other => panic!("status {other}: {line}"),
            };
            assert!(ok, "dsn does not match status: {line}");
            assert!(
                rest.contains(", delay=") && rest.contains(", delays="),
                "{line}"
            );
            if !status.starts_with("deferred") {
                q.settled += 1;
            }
        } else if rest == "removed" {
            assert_eq!(
                q.nrcpt,
                Some(q.settled),
                "removed before all recipients settled: {line}"
            );
            q.removed = true;
        }
    }
    assert!(queue.len() > 2_000, "{} messages", queue.len());
    let open: Vec<&&str> = queue
        .iter()
        .filter(|(_, q)| !q.removed)
        .map(|(id, _)| id)
        .collect();
    assert!(open.is_empty(), "never removed: {open:?}");
}

#[test]
fn every_connection_is_closed() {
    let mut open: HashMap<&str, i64> = HashMap::new();
    for line in lines() {
        let parsed = parse(line);
        if !parsed.program.ends_with("smtpd") {
            continue;
        }
        let pid = &line[22 + parsed.program.len()..line.find("]: ").unwrap()];
        if parsed.text.starts_with("connect from ") {
            assert!(
                open.insert(pid, parsed.at).is_none(),
                "pid reused while open: {line}"
            );
        } else if parsed.text.starts_with("disconnect from ") {
            assert!(
                open.remove(pid).is_some(),
                "disconnect without connect: {line}"
            );
            assert!(parsed.text.contains(" commands="), "{line}");
        } else {
            assert!(
                open.contains_key(pid),
                "smtpd line outside a connection: {line}"
            );
        }
    }
    assert!(open.is_empty(), "left open: {open:?}");
}

#[test]
fn counts_match_the_lines() {
    let (bytes, report) = file();
    let lines = lines();
    assert!(report.bytes >= TARGET);
    assert_eq!(report.bytes, bytes.len() as u64);
    assert_eq!(report.lines, lines.len() as u64);
    let tally = |name: &str| {
        report
            .tally
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no {name} in the tally"))
            .1
    };
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count() as u64;
    assert_eq!(tally("received"), count(": client="));
    assert_eq!(tally("received"), report.messages);
    assert_eq!(tally("delivered"), count(", status=sent ("));
    assert_eq!(tally("bounced"), count(", status=bounced ("));
    assert_eq!(tally("deferrals"), count(", status=deferred ("));
    assert_eq!(
        tally("non-delivery notifications"),
        count(": sender non-delivery notification: ")
    );
    assert_eq!(
        tally("SASL failures"),
        count(": SASL LOGIN authentication failed: ")
    );
    assert_eq!(tally("IMAP logins"), count(" dovecot: imap-login: Login: "));
    for kind in [
        "deferred",
        "bounced",
        "non-delivery notifications",
        "IMAP logins",
    ] {
        assert!(tally(kind) > 0, "no {kind}");
    }
    assert!(count(", orig_to=<") > 0, "forwards");
    assert!(count(" dovecot: lmtp(") > 0);
    assert!(count("relay=none, ") > 0, "connection failures");
}

#[test]
fn hijack_follows_the_guessing() {
    let (_, report) = file();
    let lines = lines();
    let spam: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            lines[i].contains("postfix/smtpd[")
                && lines[i].contains(": client=unknown[173.16.65.213], sasl_method=LOGIN, sasl_username=sales@globex.example")
        })
        .collect();
    assert_eq!(spam.len() as u64, report.spam_messages);
    assert!(spam.len() > 1_000, "{} spam messages", spam.len());
    let first = spam[0];
    let (burst_id, _) = report.burst.as_ref().unwrap();
    assert!(
        lines[first].contains(&format!(": {burst_id}: client=")),
        "{}",
        lines[first]
    );
    assert!(!lines[..first]
        .iter()
        .any(|l| l.contains("sasl_username=sales@") && l.contains("client=")));

    let guesses = lines[..first]
        .iter()
        .filter(|l| {
            l.ends_with(
                "warning: unknown[173.16.65.213]: SASL LOGIN authentication failed: \
                 UGFzc3dvcmQ6, sasl_username=sales@globex.example",
            )
        })
        .count();
    assert!((25..=35).contains(&guesses), "{guesses} guesses");
    assert!(lines[..first]
        .iter()
        .any(|l| l
            .ends_with("disconnect from unknown[173.16.65.213] ehlo=1 auth=1 quit=1 commands=3")));
    // About 60 % of the spam bounces, and each bounce notifies the forged sender.
    let notices = lines[first..]
        .iter()
        .filter(|l| {
            l.contains("to=<admin@redbullcarwrap.com>, relay=mx.redbullcarwrap.com[192.0.2.199]:25")
        })
        .count();
    let pct = notices * 100 / spam.len();
    assert!((50..=70).contains(&pct), "{pct} % notified");
}

#[test]
fn same_seed_same_bytes() {
    assert_eq!(generate(7).0, generate(7).0);
    assert_ne!(generate(7).0, generate(8).0);
}
