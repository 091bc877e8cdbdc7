//! Dovecot's `(auth failed, N attempts)` with the largest `N` a line can
//! give (`u32::MAX`; past it the line is malformed), parsed as `scan` and
//! `watch` parse it and fed to the detector: no sum may overflow (a debug
//! build would panic, a release one wrap and report small counts), whatever
//! the windows do as they slide.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use mailfuse_detect::{DetectConfig, Detector, IncidentKind};
use mailfuse_formats::{Format, ParseContext, Parsed};

/// A Dovecot line for `detector`, stamped `secs` after 08:00 on a day;
/// whether it was an event (else it is malformed).
fn feed(detector: &mut Detector, secs: i64, message: &str) -> bool {
    let line = format!(
        "2026-11-02T{:02}:{:02}:{:02}+00:00 mail dovecot: {message}",
        8 + secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
    let mut parser = Format::Syslog.parser(&ParseContext::default());
    match parser.parse(line.as_bytes()) {
        Parsed::Event(event) => {
            detector.observe(&event, line.as_bytes());
            true
        }
        Parsed::Malformed(_) => false,
        other => panic!("{line}: {other:?}"),
    }
}

fn failed(count: &str, ip: &str, user: &str) -> String {
    format!(
        "imap-login: Disconnected (auth failed, {count} attempts in 4 secs): user=<{user}>, method=PLAIN, rip={ip}, lip=192.0.2.1, TLS"
    )
}

#[test]
fn the_largest_attempt_counts_add_up_without_overflow_through_parse_and_detect() {
    let mut detector = Detector::new(DetectConfig::default());
    detector.collect_hourly();
    let max = u32::MAX.to_string();
    let counts = [max.as_str(), "99999999999", "4294967296", max.as_str()];
    let mut events = 0u64;
    // Every 10 minutes for 14 hours: the hour window slides over full
    // buckets, the network's day window fills.
    for step in 0..84 {
        let secs = step * 600;
        let count = counts[step as usize % counts.len()];
        let neighbour = format!("198.51.100.{}", 10 + step % 50);
        let parsed = [
            feed(
                &mut detector,
                secs,
                &failed(count, "198.51.100.7", "bob@example.test"),
            ),
            // Its neighbours: the /24 adds them up over a day.
            feed(
                &mut detector,
                secs + 1,
                &failed(count, &neighbour, "eve@example.test"),
            ),
        ];
        assert_eq!(
            parsed,
            [count == max; 2],
            "{count}: an event up to u32::MAX only"
        );
        events += u64::from(count == max) * 2;
    }
    // The guess succeeds: the account's stream carries the IP's failures.
    assert!(feed(
        &mut detector,
        84 * 600,
        "imap-login: Login: user=<bob@example.test>, method=PLAIN, rip=198.51.100.7, lip=192.0.2.1, mpid=1234, TLS, session=<abc>",
    ));
    let findings = detector.findings();
    assert_eq!(
        findings.stats.auth_failures,
        events * u64::from(u32::MAX),
        "each line counts u32::MAX attempts, summed without wrapping"
    );
    let ip = "198.51.100.7".parse().unwrap();
    let guessing = findings
        .incidents
        .iter()
        .find(|i| i.kind == IncidentKind::PasswordGuessing && i.ips.contains(&ip))
        .expect("the IP is guessing");
    assert!(
        guessing.failed_logins >= u64::from(u32::MAX),
        "{}",
        guessing.failed_logins
    );
    assert!(
        findings.hourly.is_some(),
        "the hourly series counted them too"
    );
}
