//! Per-account outbound limits (`limit_exceeded`), fed as the parsers feed
//! the detector: Kerio-style one-line submissions and Postfix-style
//! submissions spread over `smtpd`, `qmgr` and delivery lines.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::net::IpAddr;

use mailfuse_core::{Client, Delivery, DeliveryStatus, Event, Submission, Timestamp};
use mailfuse_detect::{DetectConfig, Detector, Incident, IncidentKind, LimitRules, LimitsConfig};
use mailfuse_limits::{Override, WindowLimit};

#[path = "support/saved.rs"]
mod saved;
use saved::Saved;

/// Monday 2026-11-02 00:00 UTC.
const START: i64 = 1_793_577_600;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
const USER: &str = "j.novak@acme.example";
const IP: &str = "198.51.100.10";

fn at(secs: i64) -> Timestamp {
    Timestamp(START + secs)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn limit(window: &str, messages: Option<u64>, recipients: Option<u64>) -> WindowLimit {
    let window_secs = mailfuse_core::time::parse_duration(window).unwrap();
    WindowLimit {
        window_secs: window_secs.unsigned_abs(),
        messages,
        recipients,
    }
}

fn messages_per(window: &str, max: u64) -> LimitsConfig {
    LimitsConfig {
        defaults: vec![limit(window, Some(max), None)],
        ..LimitsConfig::default()
    }
}

fn config(limits: LimitsConfig) -> DetectConfig {
    DetectConfig {
        limits: LimitRules::new(&limits).unwrap(),
        ..DetectConfig::default()
    }
}

/// Feeds events as a log would, numbering the messages.
struct Feed {
    detector: Detector,
    config: DetectConfig,
    queue_ids: u64,
    /// Restart (save what changed, restore from what is saved) before
    /// every this many messages.
    restart_every: Option<u64>,
    saved: Saved,
}

impl Feed {
    fn new(limits: LimitsConfig) -> Self {
        let config = config(limits);
        let mut detector = Detector::new(config.clone());
        detector.track_changes();
        Feed {
            detector,
            config,
            queue_ids: 0,
            restart_every: None,
            saved: Saved::default(),
        }
    }

    fn next_queue_id(&mut self) -> String {
        self.queue_ids += 1;
        if self
            .restart_every
            .is_some_and(|n| self.queue_ids.is_multiple_of(n))
        {
            self.saved.restart(&mut self.detector, &self.config);
        }
        format!("{:08X}", self.queue_ids)
    }

    /// One Kerio message (`Recv:` naming the first recipient, then a `Sent:`
    /// per recipient, all at `t`) from `account` at `client`.
    fn send_as(&mut self, t: i64, account: &[u8], client: &str, recipients: usize) {
        let qid = self.next_queue_id();
        let rcpts: Vec<String> = (0..recipients.max(1))
            .map(|i| format!("r{i}@partner.example"))
            .collect();
        let line = format!(
            "[02/Nov/2026 10:00:00] Recv: Queue-ID: {qid}, Service: SMTP, From: <{}>, To: <{}>, Size: 2048, Sender-Host: {client}, User: {}",
            String::from_utf8_lossy(account),
            rcpts[0],
            String::from_utf8_lossy(account)
        );
        let submission = Submission {
            at: at(t),
            queue_id: qid.as_bytes(),
            account: Some(account),
            client: Some(Client::Ip(ip(client))),
            service: Some(b"SMTP"),
            envelope_from: Some(account),
            recipient: Some(rcpts[0].as_bytes()),
            ..Submission::default()
        };
        self.detector
            .observe(&Event::Submission(submission), line.as_bytes());
        for rcpt in &rcpts {
            self.deliver(t, &qid, rcpt, DeliveryStatus::Delivered);
        }
    }

    fn send(&mut self, t: i64, recipients: usize) {
        self.send_as(t, USER.as_bytes(), IP, recipients);
    }

    fn deliver(&mut self, t: i64, qid: &str, rcpt: &str, status: DeliveryStatus) {
        let line = format!("[02/Nov/2026 10:00:00] Sent: Queue-ID: {qid}, Recipient: <{rcpt}>, Result: delivered, Status: 2.0.0");
        let delivery = Delivery {
            at: at(t),
            queue_id: qid.as_bytes(),
            recipient: rcpt.as_bytes(),
            status,
            dsn: Some(b"2.0.0"),
            detail: b"",
            relay: Some(b"mx.partner.example"),
        };
        self.detector
            .observe(&Event::Delivery(delivery), line.as_bytes());
    }

    /// One Postfix message: `smtpd` names the login, `qmgr` the sender and
    /// `nrcpt`, then one line per delivery attempt (`recipients` are
    /// `(address, status)`, an address may come back after a deferral).
    fn send_postfix(&mut self, t: i64, recipients: &[(&str, DeliveryStatus)]) {
        let qid = self.next_queue_id();
        let smtpd = Submission {
            at: at(t),
            queue_id: qid.as_bytes(),
            account: Some(USER.as_bytes()),
            client: Some(Client::Ip(ip(IP))),
            service: Some(b"submission"),
            ..Submission::default()
        };
        let line = format!("Nov  2 10:00:00 mx postfix/submission/smtpd[4242]: {qid}: client=unknown[{IP}], sasl_method=PLAIN, sasl_username={USER}");
        self.detector
            .observe(&Event::Submission(smtpd), line.as_bytes());
        let mut distinct: Vec<&str> = recipients.iter().map(|(r, _)| *r).collect();
        distinct.dedup();
        let qmgr = Submission {
            at: at(t),
            queue_id: qid.as_bytes(),
            envelope_from: Some(USER.as_bytes()),
            recipient_count: Some(distinct.len() as u32),
            size: Some(1234),
            ..Submission::default()
        };
        let line = format!("Nov  2 10:00:00 mx postfix/qmgr[77]: {qid}: from=<{USER}>, size=1234, nrcpt={} (queue active)", distinct.len());
        self.detector
            .observe(&Event::Submission(qmgr), line.as_bytes());
        for (rcpt, status) in recipients {
            self.deliver(t, &qid, rcpt, *status);
        }
    }

    fn incidents(&self) -> Vec<Incident> {
        limit_incidents(self.detector.findings().incidents)
    }
}

fn limit_incidents(incidents: Vec<Incident>) -> Vec<Incident> {
    incidents
        .into_iter()
        .filter(|i| i.kind == IncidentKind::LimitExceeded)
        .collect()
}

#[test]
fn the_thirtieth_message_in_a_minute_passes_the_thirty_first_trips() {
    let mut feed = Feed::new(messages_per("1m", 30));
    for t in 0..30 {
        feed.send(t * 2, 1); // 30 messages within 0..=58 s
    }
    assert!(feed.incidents().is_empty());
    feed.send(59, 1);
    let incidents = feed.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let i = &incidents[0];
    assert_eq!(i.kind.name(), "limit_exceeded");
    assert_eq!(i.account.as_deref(), Some(USER));
    assert_eq!(i.reasons[0], "sent 31 messages within 1 minute (limit 30)");
    assert_eq!(
        (i.first_seen, i.last_seen, i.detected_at),
        (at(0), at(59), at(59))
    );
    assert_eq!((i.messages, i.recipients), (31, 31));
    assert_eq!(i.ips, vec![ip(IP)]);
    assert_eq!(i.score, 70);
    assert_eq!(i.evidence.len(), 1);
    assert!(
        i.evidence[0].contains("Queue-ID: 0000001F"),
        "the 31st message's line: {:?}",
        i.evidence
    );
}

#[test]
fn a_message_sixty_seconds_after_the_first_no_longer_sees_it() {
    let mut feed = Feed::new(messages_per("1m", 30));
    feed.send(0, 1);
    for t in 30..59 {
        feed.send(t, 1); // 29 more: 30 within the minute
    }
    feed.send(60, 1);
    assert!(
        feed.incidents().is_empty(),
        "the message of second 0 slid out at second 60"
    );
    feed.send(60, 1);
    assert_eq!(feed.incidents().len(), 1, "31 within (0, 60]");

    let mut feed = Feed::new(messages_per("1m", 30));
    feed.send(0, 1);
    for t in 30..59 {
        feed.send(t, 1);
    }
    feed.send(59, 1);
    assert_eq!(feed.incidents().len(), 1, "second 59 still sees second 0");
}

#[test]
fn several_limits_each_trip_with_their_own_reason() {
    let mut feed = Feed::new(LimitsConfig {
        defaults: vec![
            limit("1m", Some(5), None),
            limit("1h", Some(20), Some(40)),
            limit("1d", Some(100), None),
        ],
        ..LimitsConfig::default()
    });
    for t in 0..6 {
        feed.send(t, 1);
    }
    let incidents = feed.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(
        incidents[0].reasons[0],
        "sent 6 messages within 1 minute (limit 5)"
    );
    for n in 0..15 {
        feed.send(120 + n * 120, 1); // 21 within the hour, at most 1 a minute
    }
    let incidents = feed.incidents();
    assert_eq!(incidents.len(), 2, "{incidents:#?}");
    let hourly = incidents
        .iter()
        .find(|i| i.detected_at == at(120 + 14 * 120))
        .expect("the hourly limit tripped on the 21st message");
    assert_eq!(
        hourly.reasons[0],
        "sent 21 messages within 1 hour (limit 20)"
    );
    assert_eq!(hourly.first_seen, at(0));
}

#[test]
fn recipients_are_counted_not_messages() {
    let mut feed = Feed::new(LimitsConfig {
        defaults: vec![limit("1h", Some(5), Some(10))],
        ..LimitsConfig::default()
    });
    feed.send(0, 10);
    assert!(feed.incidents().is_empty(), "10 recipients are allowed");
    feed.send(600, 1);
    let incidents = feed.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let i = &incidents[0];
    assert_eq!(
        i.reasons[0],
        "sent to 11 recipients within 1 hour (limit 10)"
    );
    assert_eq!((i.messages, i.recipients), (2, 11));
    assert!(
        i.evidence[0].contains("Recv: Queue-ID: 00000002,"),
        "the line naming the recipient that crossed: {:?}",
        i.evidence
    );
}

#[test]
fn a_message_to_many_recipients_counts_each_once() {
    let mut feed = Feed::new(LimitsConfig {
        defaults: vec![limit("1h", Some(2), Some(5))],
        ..LimitsConfig::default()
    });
    use DeliveryStatus::{Deferred, Delivered, Failed};
    feed.send_postfix(
        0,
        &[
            ("a@partner.example", Deferred),
            ("a@partner.example", Delivered),
            ("b@partner.example", Failed),
            ("c@partner.example", Delivered),
        ],
    );
    feed.send_postfix(
        60,
        &[("d@x.example", Delivered), ("e@x.example", Delivered)],
    );
    assert!(
        feed.incidents().is_empty(),
        "2 messages to 5 recipients: a deferral and its retry are one recipient"
    );
    feed.send_postfix(120, &[("f@x.example", Delivered)]);
    let incidents = feed.incidents();
    let reasons: Vec<&str> = incidents.iter().map(|i| i.reasons[0].as_str()).collect();
    assert_eq!(
        reasons,
        [
            "sent 3 messages within 1 hour (limit 2)",
            "sent to 6 recipients within 1 hour (limit 5)"
        ]
    );
    assert!(
        incidents[0].evidence[0].contains("postfix/submission/smtpd"),
        "a message's evidence is the line naming the login: {:?}",
        incidents[0].evidence
    );
}

#[test]
fn an_override_replaces_the_defaults_and_allowed_accounts_are_never_limited() {
    let mut feed = Feed::new(LimitsConfig {
        defaults: vec![limit("1m", Some(5), None), limit("1d", Some(50), None)],
        overrides: vec![Override {
            account: "Newsletter@ACME.example".into(),
            limit: limit("1m", Some(100), None),
        }],
        allow: vec!["scanner@acme.example".into()],
    });
    for n in 0..100 {
        feed.send_as(n / 2, b"newsletter@acme.example", "198.51.100.20", 1);
        feed.send_as(n / 2, b"scanner@acme.example", "198.51.100.30", 3);
    }
    assert!(
        feed.incidents().is_empty(),
        "100 a minute for the newsletter; no daily limit for it"
    );
    feed.send_as(59, b"newsletter@acme.example", "198.51.100.20", 1);
    for t in 0..6 {
        feed.send(t, 1);
    }
    let incidents = feed.incidents();
    let seen: Vec<(&str, &str)> = incidents
        .iter()
        .map(|i| (i.account.as_deref().unwrap(), i.reasons[0].as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "newsletter@acme.example",
                "sent 101 messages within 1 minute (limit 100)"
            ),
            (USER, "sent 6 messages within 1 minute (limit 5)"),
        ]
    );
}

#[test]
fn no_second_incident_while_still_over_a_new_one_after_falling_under() {
    let mut feed = Feed::new(messages_per("1m", 10));
    for t in 0..=10 {
        feed.send(t, 1); // the 11th trips at second 10
    }
    for t in 60..200 {
        feed.send(t, 1); // one a second: always at the limit before each
    }
    let incidents = feed.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let i = &incidents[0];
    assert_eq!(i.detected_at, at(10));
    assert_eq!(i.last_seen, at(199), "it grows while over the limit");
    assert_eq!(i.messages, 11 + 140);
    assert_eq!(i.score, 100, "60 a minute is over twice the limit");
    assert_eq!(
        i.reasons[1], "peak of at least 20 messages within 1 minute",
        "{:?}",
        i.reasons
    );

    for t in 300..=310 {
        feed.send(t, 1); // quiet since 199: under the limit, then over again
    }
    let incidents = feed.incidents();
    assert_eq!(incidents.len(), 2, "{incidents:#?}");
    assert_eq!(
        (incidents[1].first_seen, incidents[1].detected_at),
        (at(300), at(310))
    );
    assert_eq!(incidents[1].score, 70);
    assert_eq!(incidents[1].messages, 11);
}

#[test]
fn at_the_limit_is_not_under_it() {
    let mut feed = Feed::new(messages_per("1m", 10));
    for t in 0..=10 {
        feed.send(t, 1);
    }
    // At second 61, (1, 61] holds 9 of them: under the limit, so the next
    // crossing (second 71) is a new incident.
    for t in 61..=71 {
        feed.send(t, 1);
    }
    assert_eq!(feed.incidents().len(), 2);

    let mut feed = Feed::new(messages_per("1m", 10));
    for t in 0..=10 {
        feed.send(t, 1);
    }
    // Keep exactly 10 in the window before each new message: never under.
    for t in 60..=70 {
        feed.send(t, 1);
    }
    assert_eq!(feed.incidents().len(), 1);
}

#[test]
fn the_sending_ips_of_the_window_are_listed_at_most_twenty() {
    let mut feed = Feed::new(messages_per("1h", 30));
    feed.send_as(0, USER.as_bytes(), "192.0.2.1", 1);
    for n in 0..31 {
        let client = format!("203.0.113.{}", n % 25);
        feed.send_as(2 * HOUR + n, USER.as_bytes(), &client, 1);
    }
    let incidents = feed.incidents();
    assert_eq!(incidents.len(), 1);
    let ips = &incidents[0].ips;
    assert_eq!(ips.len(), 20, "{ips:?}");
    assert!(
        !ips.contains(&ip("192.0.2.1")),
        "used two hours before the window"
    );
}

#[test]
fn new_incidents_hands_each_crossing_out_once() {
    let mut feed = Feed::new(messages_per("1m", 3));
    for t in 0..4 {
        feed.send(t, 1);
    }
    let fresh = limit_incidents(feed.detector.new_incidents());
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].messages, 4);
    for t in 4..10 {
        feed.send(t, 1);
    }
    assert!(limit_incidents(feed.detector.new_incidents()).is_empty());
    assert_eq!(
        feed.incidents()[0].messages,
        10,
        "findings show the whole run"
    );
}

/// A day with bursts that cross several limits several times.
fn busy_day(feed: &mut Feed) {
    for burst in 0..6 {
        let base = burst * 3 * HOUR;
        for n in 0..40 {
            let client = if n % 3 == 0 { "203.0.113.7" } else { IP };
            feed.send_as(base + n * 7, USER.as_bytes(), client, 1 + n as usize % 4);
            feed.send_as(base + n * 11, b"sales@acme.example", "192.0.2.44", 2);
        }
    }
}

fn busy_limits() -> LimitsConfig {
    LimitsConfig {
        defaults: vec![
            limit("1m", Some(8), None),
            limit("1h", Some(30), Some(60)),
            limit("1d", Some(150), Some(300)),
        ],
        ..LimitsConfig::default()
    }
}

#[test]
fn a_restart_in_the_middle_gives_the_same_incidents() {
    let mut straight = Feed::new(busy_limits());
    busy_day(&mut straight);
    let expected = straight.incidents();
    assert!(expected.len() >= 6, "{expected:#?}");
    for every in [1, 7, 50] {
        let mut restarted = Feed::new(busy_limits());
        restarted.restart_every = Some(every);
        busy_day(&mut restarted);
        assert_eq!(restarted.incidents(), expected, "restart every {every}");
    }
}

#[test]
fn a_restart_with_other_limits_applies_them() {
    let mut feed = Feed::new(messages_per("1m", 10));
    for t in 0..8 {
        feed.send(t, 1);
    }
    let snapshot = feed.detector.snapshot().unwrap();
    feed.detector = Detector::restore(&snapshot, config(messages_per("1m", 8))).unwrap();
    feed.send(8, 1);
    assert_eq!(feed.incidents().len(), 1, "9 > 8: the count survived");
    feed.detector = Detector::restore(
        &feed.detector.snapshot().unwrap(),
        config(LimitsConfig::default()),
    )
    .unwrap();
    for t in 9..100 {
        feed.send(t, 1);
    }
    assert_eq!(feed.incidents().len(), 1, "no limits any more");
}

#[test]
fn a_restart_keeps_the_top_senders_counted_without_limits() {
    let mut feed = Feed::new(LimitsConfig::default());
    feed.config.count_senders = true;
    feed.detector = Detector::new(feed.config.clone());
    feed.detector.track_changes();
    let top = |feed: &mut Feed| -> Vec<(String, u64)> {
        let usage = feed.detector.top_senders(5);
        usage.into_iter().map(|u| (u.key, u.windows[0].1)).collect()
    };
    for t in 0..5 {
        feed.send(t * 60, 1);
    }
    assert_eq!(top(&mut feed), [(USER.to_string(), 5)]);
    // Saved as watch saves (changed rows), restored from what is saved.
    feed.restart_every = Some(1);
    feed.send(300, 1);
    feed.send(360, 1);
    assert_eq!(
        top(&mut feed),
        [(USER.to_string(), 7)],
        "the counts from before the restarts stay"
    );
    assert!(feed.incidents().is_empty(), "a tally never trips");
}

#[test]
fn no_limits_by_default_no_incident_ever() {
    let mut feed = Feed::new(LimitsConfig::default());
    for n in 0..5000 {
        feed.send(n / 10, 20);
    }
    assert!(feed.incidents().is_empty());
    assert!(limit_incidents(feed.detector.new_incidents()).is_empty());
}

#[test]
fn state_size_does_not_grow_with_the_messages() {
    let mut feed = Feed::new(busy_limits());
    let mut sizes = Vec::new();
    for day in 0..4 {
        for n in 0..(DAY / 600) {
            feed.send(day * DAY + n * 600, 1); // 144 a day: under every limit
        }
        sizes.push(feed.detector.snapshot().unwrap().len());
    }
    assert!(feed.incidents().is_empty());
    // The first day fills the daily windows; later days only widen the
    // encoding of a few running totals.
    let (day3, day4) = (sizes[2], sizes[3]);
    assert!(day4 <= day3 + 64, "{sizes:?}");
}

#[test]
fn an_idle_accounts_counts_are_released() {
    let mut feed = Feed::new(busy_limits());
    for n in 0..140 {
        feed.send(n * 60, 1);
    }
    let busy = feed.detector.snapshot().unwrap().len();
    feed.send_as(3 * DAY, b"other@acme.example", "192.0.2.44", 1);
    let later = feed.detector.snapshot().unwrap().len();
    assert!(
        later + 1000 < busy,
        "the idle account's windows are forgotten: {busy} → {later}"
    );
}

#[test]
fn hostile_account_names_are_counted_and_reported_safely() {
    let mut feed = Feed::new(LimitsConfig {
        defaults: vec![limit("1m", Some(2), None)],
        allow: vec!["sp\u{fffd}m@x.example".into()],
        ..LimitsConfig::default()
    });
    let name: &[u8] = b"Sp\xffM\0@X.example, sasl_username=admin";
    for t in 0..3 {
        feed.send_as(t, name, IP, 1);
    }
    let incidents = feed.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        incidents[0].account.as_deref(),
        Some("sp\u{fffd}m\0@x.example, sasl_username=admin")
    );
    let huge = vec![b'a'; 100_000];
    for t in 0..3 {
        feed.send_as(t, &huge, IP, 1);
    }
    let incidents = feed.incidents();
    assert_eq!(incidents.len(), 2);
    assert!(incidents[1].evidence[0].len() < 3000, "evidence is capped");
}

#[test]
fn late_lines_within_the_window_still_count() {
    let mut feed = Feed::new(messages_per("1m", 3));
    feed.send(100, 1);
    feed.send(30, 1); // 70 s late: outside the window
    feed.send(50, 1);
    feed.send(60, 1);
    assert!(feed.incidents().is_empty(), "(40, 100] holds 3");
    feed.send(45, 1);
    assert_eq!(feed.incidents().len(), 1, "a 4th within (40, 100]");
}
