//! The guessing detector's memory stays bounded under a botnet's spray:
//! guessers idle for a day are forgotten, and past `max_ips` the least
//! recently seen make room — counted, and never the ones that tripped
//! while others can go.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use mailfuse_detect::{DetectConfig, Forgotten, GuessingConfig, GuessingPattern};
use support::feed::{Feed, DAY};

fn config(max_ips: usize) -> DetectConfig {
    DetectConfig {
        guessing: GuessingConfig {
            max_ips,
            ..GuessingConfig::default()
        },
        ..DetectConfig::default()
    }
}

/// An address of the spray: each in its own /24.
fn sprayer(n: u32) -> String {
    format!("10.{}.{}.7", n >> 8 & 255, n & 255)
}

fn entries(feed: &mut Feed, collection: &str) -> usize {
    let entries = feed.detector.entries();
    entries
        .iter()
        .find(|(name, _)| *name == collection)
        .map(|&(_, n)| n)
        .unwrap()
}

/// The IPs that tripped on their own (the spray also makes a brute force
/// at one account, naming all its IPs).
fn guessing_ips(feed: &Feed) -> Vec<String> {
    let mut ips: Vec<String> = feed
        .findings()
        .incidents
        .iter()
        .filter(|i| i.pattern == Some(GuessingPattern::Ip))
        .flat_map(|i| i.ips.iter().map(ToString::to_string))
        .collect();
    ips.sort();
    ips
}

#[test]
fn a_spray_past_the_cap_forgets_the_oldest_and_keeps_the_guesser_that_tripped() {
    let mut feed = Feed::with_config(config(100));
    // A real guesser first: 12 failures in a minute trip it.
    for t in 0..12 {
        feed.fail_login(t, "203.0.113.9", Some("sales@example.com"));
    }
    // Then 1,000 sprayers failing once each, a second apart.
    for n in 0..1000 {
        feed.fail_login(100 + i64::from(n), &sprayer(n), Some("info@example.com"));
    }
    assert!(entries(&mut feed, "guessers") <= 100, "the cap holds");
    assert!(entries(&mut feed, "guessing_networks") <= 100);
    let forgotten = feed.findings().forgotten;
    assert!(
        forgotten.ips_evicted >= 900 && forgotten.networks_evicted >= 900,
        "{forgotten:?}"
    );
    assert_eq!(forgotten.ips_expired, 0, "nothing was idle for a day");
    assert_eq!(guessing_ips(&feed), vec!["203.0.113.9".to_string()]);
    // The newest sprayers are still followed: the last one's later
    // failures add up to an incident.
    let last = sprayer(999);
    for t in 0..11 {
        feed.fail_login(1200 + t, &last, Some("info@example.com"));
    }
    assert_eq!(guessing_ips(&feed), vec![last, "203.0.113.9".to_string()]);
}

#[test]
fn guessers_idle_for_a_day_are_forgotten_unless_they_tripped() {
    let mut feed = Feed::new();
    for t in 0..12 {
        feed.fail_login(t, "203.0.113.9", Some("sales@example.com"));
    }
    for n in 0..50 {
        feed.fail_login(100 + i64::from(n), &sprayer(n), Some("info@example.com"));
    }
    assert_eq!(entries(&mut feed, "guessers"), 51);
    // Two days later, one more failure: the sweep forgets the idle ones.
    feed.fail_login(2 * DAY, &sprayer(500), Some("info@example.com"));
    // The guesser's network too: its failures before it tripped alone
    // counted there.
    let forgotten = feed.findings().forgotten;
    assert_eq!(
        forgotten,
        Forgotten {
            ips_expired: 50,
            ips_evicted: 0,
            networks_expired: 51,
            networks_evicted: 0,
        }
    );
    assert_eq!(
        entries(&mut feed, "guessers"),
        2,
        "the one that tripped and the new one"
    );
    assert_eq!(guessing_ips(&feed), vec!["203.0.113.9".to_string()]);
    // What was forgotten survives a restart as a count.
    feed.restart();
    assert_eq!(feed.findings().forgotten.ips_expired, 50);
}
