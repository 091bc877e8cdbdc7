//! What the labelled weeks promise: the same seed gives the same bytes,
//! the labels tell the truth about the logs (every labelled spam message
//! is in the log, from the labelled account and addresses; every attack's
//! address guesses in it), files are in time order; and the scorer's rules
//! on small hand-made reports.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::collections::{HashMap, HashSet};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use mailfuse_core::time::month_from_abbrev;
use mailfuse_core::Timestamp;
use mailfuse_loggen::labelled::judge::{self, ScanRequest};
use mailfuse_loggen::labelled::labels::{Class, Kind, Labels, Scenario};
use mailfuse_loggen::labelled::score::{parse_report, score_week, Report, Scores};
use mailfuse_loggen::labelled::{self, Form};

/// A fresh directory for one test's week.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mailfuse-labelled-test-{}-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn read_week(dir: &Path, labels: &Labels) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = labels
        .files
        .iter()
        .map(|f| (f.clone(), fs::read(dir.join(f)).unwrap()))
        .collect();
    files.push((
        "labels.json".into(),
        fs::read(dir.join("labels.json")).unwrap(),
    ));
    files
}

#[test]
fn same_seed_same_bytes_in_every_form() {
    for form in Form::ALL {
        let (a, b, c) = (
            scratch(&format!("{form}-a")),
            scratch(&format!("{form}-b")),
            scratch(&format!("{form}-c")),
        );
        let first = labelled::generate(form, 7, &a).unwrap();
        let again = labelled::generate(form, 7, &b).unwrap();
        let other = labelled::generate(form, 8, &c).unwrap();
        assert_eq!(first, again);
        assert_eq!(read_week(&a, &first), read_week(&b, &again), "{form}");
        assert_ne!(read_week(&a, &first), read_week(&c, &other), "{form}");
        for dir in [a, b, c] {
            fs::remove_dir_all(dir).unwrap();
        }
    }
}

/// A line's wall-clock time as seconds, for Kerio's `[DD/Mon/YYYY
/// HH:MM:SS]` and syslog's `Mon DD HH:MM:SS` (in `syslog_year`).
fn wall(line: &str, syslog_year: i32) -> i64 {
    let b = line.as_bytes();
    let num = |s: &str| s.trim().parse::<u8>().unwrap();
    let (year, month, day, time) = if b[0] == b'[' {
        let year = line[8..12].parse().unwrap();
        (
            year,
            month_from_abbrev(&b[4..7]),
            num(&line[1..3]),
            &line[13..21],
        )
    } else {
        (
            syslog_year,
            month_from_abbrev(&b[..3]),
            num(&line[4..6]),
            &line[7..15],
        )
    };
    let hms: Vec<u8> = time.split(':').map(num).collect();
    Timestamp::from_civil(year, month.unwrap(), day, hms[0], hms[1], hms[2])
        .unwrap()
        .0
}

/// The offset of `+07:00`, in seconds.
fn offset(text: &str) -> i64 {
    let sign = if text.starts_with('-') { -1 } else { 1 };
    let hours: i64 = text[1..3].parse().unwrap();
    let minutes: i64 = text[4..6].parse().unwrap();
    sign * (hours * 3_600 + minutes * 60)
}

/// Submissions in the log: (account, sending address as logged, wall
/// time), from Kerio's `Recv:` lines or Postfix's `client=` lines.
fn submissions(text: &str, year: i32) -> Vec<(String, String, i64)> {
    let field = |line: &str, key: &str| -> Option<String> {
        let start = line.find(key)? + key.len();
        let rest = &line[start..];
        let end = rest.find([',', ' ', '\n']).unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    };
    text.lines()
        .filter_map(|line| {
            if line.contains("] Recv: ") {
                let user = field(line, "User: ")?;
                let host = field(line, "Sender-Host: ")?;
                Some((user, host, wall(line, year)))
            } else if line.contains(": client=") {
                let user = field(line, "sasl_username=")?;
                let client = field(line, "client=")?;
                let ip = client[client.find('[')? + 1..client.find(']')?].to_owned();
                Some((user, ip, wall(line, year)))
            } else {
                None
            }
        })
        .collect()
}

fn check_labels_match_log(form: Form, seed: u64) {
    let dir = scratch(&format!("truth-{form}-{seed}"));
    let labels = labelled::generate(form, seed, &dir).unwrap();
    let year: i32 = labels.start.to_string()[..4].parse().unwrap();
    let shift = offset(&labels.utc_offset);
    let texts: Vec<String> = labels
        .files
        .iter()
        .map(|f| fs::read_to_string(dir.join(f)).unwrap())
        .collect();
    for (name, text) in labels.files.iter().zip(&texts) {
        let times: Vec<i64> = text.lines().map(|l| wall(l, year)).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{form} {seed}: {name} is out of time order"
        );
    }
    let mut sent: HashMap<(String, String, i64), usize> = HashMap::new();
    for key in submissions(&texts[0], year) {
        *sent.entry(key).or_default() += 1;
    }
    let everything = texts.join("\n");
    // Every address-like word of the logs.
    let addresses: HashSet<&str> = everything
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .collect();
    let classes: Vec<Class> = labels.scenarios.iter().map(|s| s.class).collect();
    assert!(classes.contains(&Class::Hijack) && classes.contains(&Class::Attack));
    for scenario in &labels.scenarios {
        match scenario.class {
            Class::Hijack => {
                assert!(!scenario.spam.is_empty(), "{scenario:?}");
                assert_eq!(scenario.spam.len() as u64, scenario.messages);
                let account = &scenario.accounts[0];
                for at in &scenario.spam {
                    let local = at.0 + shift;
                    // The message is logged from one of the labelled addresses
                    // (webmail: Kerio 9/10's 0.0.0.0, Postfix's 127.0.0.1).
                    let hosts = scenario
                        .ips
                        .iter()
                        .map(Ipv4Addr::to_string)
                        .chain(["0.0.0.0".into(), "127.0.0.1".into()]);
                    let found = hosts.into_iter().any(|host| {
                        let key = (account.clone(), host, local);
                        match sent.get_mut(&key) {
                            Some(n) if *n > 0 => {
                                *n -= 1;
                                true
                            }
                            _ => false,
                        }
                    });
                    assert!(
                        found,
                        "{form} {seed}: spam of {account} at {at} not in the log"
                    );
                }
                for ip in &scenario.ips {
                    assert!(
                        addresses.contains(ip.to_string().as_str()),
                        "{form} {seed}: {ip}"
                    );
                }
            }
            Class::Attack => {
                assert!(scenario.failed_logins > 0);
                for ip in &scenario.ips {
                    let ip = ip.to_string();
                    assert!(
                        addresses.contains(ip.as_str()),
                        "{form} {seed}: attacker {ip}"
                    );
                }
            }
            Class::Lookalike => {
                let account = &scenario.accounts[0];
                assert!(everything.contains(account.as_str()), "{account}");
            }
        }
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn labels_tell_the_truth_about_the_log() {
    for form in Form::ALL {
        for seed in [1, 2] {
            check_labels_match_log(form, seed);
        }
    }
}

#[test]
fn seeds_vary_the_organisation_and_the_scenarios() {
    let plans: Vec<_> = (1..=12)
        .map(|seed| labelled::plan(Form::Kerio10, seed).0)
        .collect();
    let sizes: Vec<usize> = plans.iter().map(|p| p.org.members.len()).collect();
    assert!(sizes.iter().min() < sizes.iter().max());
    let offsets: Vec<i64> = plans.iter().map(|p| p.org.utc_offset).collect();
    assert!(offsets.iter().any(|o| *o != offsets[0]));
    let mut kinds: Vec<Kind> = plans
        .iter()
        .flat_map(|p| p.scenarios.iter().map(|s| s.kind))
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds.len(), Kind::ALL.len(), "twelve weeks show every kind");
    for plan in &plans {
        let count = |class| plan.scenarios.iter().filter(|s| s.class == class).count();
        assert!((2..=4).contains(&count(Class::Hijack)));
        assert!((2..=5).contains(&count(Class::Lookalike)));
        assert!((2..=3).contains(&count(Class::Attack)));
    }
}

// The scorer, on hand-made weeks.

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, last)
}

fn scenario(kind: Kind, account: &str, ips: &[u8], start: &str) -> Scenario {
    Scenario {
        kind,
        class: kind.class(),
        accounts: if account.is_empty() {
            Vec::new()
        } else {
            vec![account.into()]
        },
        ips: ips.iter().map(|&n| ip(n)).collect(),
        guess_ips: Vec::new(),
        start: ts(start),
        end: ts(start),
        spam: Vec::new(),
        failed_logins: 0,
        messages: 0,
        summary: String::new(),
    }
}

fn week(scenarios: Vec<Scenario>) -> Labels {
    Labels {
        form: "kerio10".into(),
        seed: 1,
        domain: "example.com".into(),
        mailboxes: 20,
        region: "test".into(),
        utc_offset: "+00:00".into(),
        start: ts("2026-11-02T00:00:00Z"),
        end: ts("2026-11-09T00:00:00Z"),
        files: vec!["mail.log".into()],
        scan_options: Vec::new(),
        scenarios,
    }
}

/// A hijack of `account` from .1 and .2 with ten spam messages a minute
/// apart from 10:00.
fn hijack(account: &str) -> Scenario {
    let mut s = scenario(
        Kind::PhishedOwnFrom,
        account,
        &[1, 2],
        "2026-11-03T10:00:00Z",
    );
    s.spam = (0..10)
        .map(|m| ts("2026-11-03T10:00:00Z").plus(60 * m))
        .collect();
    s.messages = 10;
    s
}

fn report(json: &str) -> Report {
    parse_report(json).unwrap()
}

#[test]
fn a_hijack_found_late_and_with_one_address_of_two() {
    let labels = week(vec![hijack("eve@example.com")]);
    let found = report(
        r#"{"incidents": [{"kind": "compromised_account", "account": "Eve@Example.com",
            "ips": ["203.0.113.1"], "detected_at": "2026-11-03T10:04:00Z"}]}"#,
    );
    let score = score_week(&labels, &found);
    let h = &score.hijacks[0];
    assert!(h.found && !h.found_with_ips() && !h.alerted);
    assert_eq!((h.ips_named, h.ips_total), (1, 2));
    assert_eq!(h.delay_secs, Some(240));
    assert_eq!(
        (h.spam_before, h.spam),
        (5, 10),
        "messages at 10:00…10:04 count"
    );
    assert!(score.other_false_locks.is_empty());
}

#[test]
fn a_missed_hijack_counts_all_its_spam_and_an_alert_is_not_a_find() {
    let labels = week(vec![hijack("eve@example.com"), hijack("bob@example.com")]);
    let found = report(
        r#"{"incidents": [
            {"kind": "suspicious_activity", "account": "bob@example.com", "ips": ["203.0.113.1"],
             "detected_at": "2026-11-03T10:00:00Z"},
            {"kind": "limit_exceeded", "account": "eve@example.com", "ips": [],
             "detected_at": "2026-11-03T10:00:00Z"}]}"#,
    );
    let score = score_week(&labels, &found);
    let (eve, bob) = (&score.hijacks[0], &score.hijacks[1]);
    assert!(!eve.found && !eve.alerted, "limit_exceeded is not scored");
    assert!(!bob.found && bob.alerted);
    assert_eq!((eve.spam_before, eve.delay_secs), (10, None));
    let mut scores = Scores::default();
    scores.push(score);
    let acceptance = scores.acceptance();
    assert!(!acceptance.met);
    assert!(acceptance.failures[0].contains("0 of 2"), "{acceptance:?}");
    let table = scores.table();
    assert!(table.contains("phished_own_from"), "{table}");
    assert!(table.contains("NOT met"), "{table}");
}

#[test]
fn a_lookalike_locked_is_a_false_lock_and_unlabelled_accounts_count_too() {
    let labels = week(vec![
        scenario(
            Kind::Newsletter,
            "marketing@example.com",
            &[9],
            "2026-11-05T09:00:00Z",
        ),
        scenario(
            Kind::StalePassword,
            "ann@example.com",
            &[7],
            "2026-11-04T09:00:00Z",
        ),
        scenario(
            Kind::Traveller,
            "tom@example.com",
            &[8],
            "2026-11-04T09:00:00Z",
        ),
    ]);
    let found = report(
        r#"{"incidents": [
            {"kind": "compromised_account", "account": "marketing@example.com",
             "ips": ["203.0.113.9"], "detected_at": "2026-11-05T09:10:00Z"},
            {"kind": "compromised_account", "account": "colleague@example.com",
             "ips": ["203.0.113.9"], "detected_at": "2026-11-05T09:10:00Z"},
            {"kind": "password_guessing", "ips": ["203.0.113.7"],
             "detected_at": "2026-11-04T10:00:00Z"}]}"#,
    );
    let score = score_week(&labels, &found);
    let [newsletter, stale, traveller] = &score.lookalikes[..] else {
        panic!("three look-alikes");
    };
    assert!(newsletter.false_lock && !newsletter.false_alert);
    assert!(
        !stale.false_lock && stale.false_alert,
        "its address in a guessing incident"
    );
    assert!(!traveller.false_lock && !traveller.false_alert);
    assert_eq!(score.other_false_locks, vec!["colleague@example.com"]);
    let mut scores = Scores::default();
    scores.push(score);
    let summary = scores.overall();
    let all = summary.lookalikes.last().unwrap();
    assert_eq!((all.false_locks, all.false_alerts), (2, 1));
    assert!(scores.acceptance().failures[0].contains("locked: 2"));
}

#[test]
fn attacks_reported_by_coverage_or_target_and_fragments_counted() {
    let mut spread = scenario(
        Kind::CredentialStuffing,
        "",
        &[1, 2, 3, 4],
        "2026-11-04T00:00:00Z",
    );
    spread.failed_logins = 100;
    let labels = week(vec![
        spread,
        scenario(
            Kind::BruteForce,
            "ceo@example.com",
            &[11, 12, 13, 14, 15, 16],
            "2026-11-05T00:00:00Z",
        ),
        scenario(Kind::Spray, "", &[21], "2026-11-06T00:00:00Z"),
    ]);
    let found = report(
        r#"{"incidents": [
            {"kind": "password_guessing", "ips": ["203.0.113.1"], "detected_at": "2026-11-04T01:00:00Z"},
            {"kind": "password_guessing", "ips": ["203.0.113.2", "198.51.100.1"], "detected_at": "2026-11-04T00:30:00Z"},
            {"kind": "password_guessing", "ips": ["203.0.113.11"], "accounts_tried": ["CEO@example.com"],
             "detected_at": "2026-11-05T02:00:00Z"}]}"#,
    );
    let score = score_week(&labels, &found);
    let [stuffing, brute, spray] = &score.attacks[..] else {
        panic!("three attacks");
    };
    assert!(
        stuffing.reported && !stuffing.as_one,
        "two fragments cover half"
    );
    assert_eq!((stuffing.fragments, stuffing.ips_covered), (2, 2));
    assert_eq!(stuffing.delay_secs, Some(1_800));
    assert!(
        brute.reported && brute.as_one,
        "one address, but it names the target"
    );
    assert!(!spray.reported);
    assert_eq!((spray.fragments, spray.delay_secs), (0, None));
}

/// A report that finds exactly what the labels say, at once.
fn perfect_report(labels: &Labels) -> String {
    let incidents: Vec<serde_json::Value> = labels
        .scenarios
        .iter()
        .filter(|s| s.class != Class::Lookalike)
        .map(|s| {
            let ips: Vec<String> = s.ips.iter().map(Ipv4Addr::to_string).collect();
            if s.class == Class::Hijack {
                serde_json::json!({"kind": "compromised_account", "account": s.accounts[0],
                    "ips": ips, "detected_at": s.start.to_string()})
            } else {
                serde_json::json!({"kind": "password_guessing", "ips": ips,
                    "accounts_tried": s.accounts, "detected_at": s.start.to_string()})
            }
        })
        .collect();
    serde_json::json!({ "incidents": incidents }).to_string()
}

#[test]
fn score_form_meets_the_bar_with_a_perfect_scanner_and_not_with_a_blind_one() {
    let mut perfect = |request: &ScanRequest| {
        let dir = request.files[0].parent().unwrap();
        let labels = fs::read_to_string(dir.join("labels.json")).unwrap();
        let labels: Labels = serde_json::from_str(&labels).unwrap();
        Ok(perfect_report(&labels))
    };
    let scores = judge::score_form(Form::Postfix, 1..=2, &mut perfect).unwrap();
    assert_eq!(scores.weeks.len(), 2);
    assert!(scores.acceptance().met, "{}", scores.table());
    let mut blind = |_: &ScanRequest| Ok(r#"{"incidents": []}"#.to_owned());
    let scores = judge::score_form(Form::Kerio8, [3], &mut blind).unwrap();
    assert!(!scores.acceptance().met);
    assert!(scores.weeks[0].hijacks.iter().all(|h| !h.found));
}
