//! The detectors' decisions on the scenarios an admin meets, built from
//! events directly (the parsers have their own tests).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "support/feed.rs"]
mod feed;

use feed::{at, ip, Feed, DAY};
use mailfuse_core::canary::Canaries;
use mailfuse_core::{Client, Delivery, DeliveryStatus, Event, Submission};
use mailfuse_detect::summary::AccountSummary;
use mailfuse_detect::{DetectConfig, Findings, GuessingPattern, Incident, IncidentKind};

/// The scenarios' shared stories, told through the feed.
trait Stories {
    fn office_week(&mut self);
    fn seed_story_with_restarts(&mut self, restart_every: Option<usize>);
}

impl Stories for Feed {
    /// Three ordinary working days for a few office users, to give the
    /// detector a baseline.
    fn office_week(&mut self) {
        for day in 0..3 {
            for hour in 8..17 {
                for (i, user) in ["j.novak", "m.svoboda", "marketing"].iter().enumerate() {
                    let t = day * DAY + hour * 3600 + i as i64 * 600;
                    let account = format!("{user}@acme.example");
                    self.send(
                        t,
                        &account,
                        "198.51.100.10",
                        &account,
                        &[("partner@partner.example", false)],
                    );
                }
            }
        }
    }

    fn seed_story_with_restarts(&mut self, restart_every: Option<usize>) {
        self.office_week();
        for i in 0..30 {
            self.fail_login(3 * DAY + 21 * 3600 + i * 60, "173.16.65.213", None);
        }
        for i in 0..600 {
            if restart_every.is_some_and(|every| i % every == every - 1) {
                self.restart();
            }
            let t = 4 * DAY + 2 * 3600 + i as i64 * 10;
            let rcpt = spam_recipient(i);
            let from = "admin@redbullcarwrap.example";
            self.send(
                t,
                "sales@acme.example",
                "173.16.65.213",
                from,
                &[(&rcpt, i % 5 < 3)],
            );
        }
    }
}

/// The compromised-account incident of `findings`.
fn the_hijack(findings: &Findings) -> &mailfuse_detect::Incident {
    findings
        .incidents
        .iter()
        .find(|i| i.kind == IncidentKind::CompromisedAccount)
        .expect("the hijack is found")
}

fn spam_recipient(i: usize) -> String {
    format!("victim{i}@aol.example")
}

#[test]
fn seed_story_dormant_sales_account_guessed_then_relaying() {
    let mut feed = Feed::new();
    feed.office_week();
    for i in 0..30 {
        feed.fail_login(3 * DAY + 21 * 3600 + i * 60, "173.16.65.213", None);
    }
    let rcpts: Vec<String> = (0..600).map(spam_recipient).collect();
    for (i, r) in rcpts.iter().enumerate() {
        let t = 4 * DAY + 2 * 3600 + i as i64 * 10;
        feed.send(
            t,
            "sales@acme.example",
            "173.16.65.213",
            "admin@redbullcarwrap.example",
            &[(r, i % 5 < 3)],
        );
    }
    let findings = feed.findings();
    let hijack = the_hijack(&findings);
    assert_eq!(hijack.account.as_deref(), Some("sales@acme.example"));
    assert_eq!(hijack.ips, vec![ip("173.16.65.213")]);
    assert_eq!(
        (hijack.messages, hijack.recipients, hijack.failed_recipients),
        (600, 600, 360)
    );
    assert_eq!(hijack.first_seen, at(4 * DAY + 2 * 3600));
    assert!(
        hijack.evidence[0].contains("User: sales@acme.example"),
        "{:?}",
        hijack.evidence
    );
    let reasons = hijack.reasons.join("\n");
    for expected in [
        "sent no mail",
        "failed 30 logins",
        "refused permanently",
        "admin@redbullcarwrap.example",
    ] {
        assert!(
            reasons.contains(expected),
            "missing {expected:?} in:\n{reasons}"
        );
    }
    assert_eq!(hijack.score, 100);
    let guessing = findings
        .incidents
        .iter()
        .find(|i| i.kind == IncidentKind::PasswordGuessing)
        .expect("the guessing is found");
    assert_eq!(guessing.ips, vec![ip("173.16.65.213")]);
    assert_eq!(
        guessing.succeeded_as,
        vec!["sales@acme.example".to_string()]
    );
    assert_eq!(guessing.score, 100);
    assert_eq!(findings.incidents.len(), 2, "{:#?}", findings.incidents);
    let sales = findings
        .accounts
        .iter()
        .find(|a| a.account == "sales@acme.example")
        .unwrap();
    assert!(sales.compromised);
    assert_eq!(sales.new_ips, vec![ip("173.16.65.213")]);
}

#[test]
fn phished_account_sending_with_its_own_from_from_a_foreign_ip() {
    let mut feed = Feed::new();
    feed.office_week();
    let rcpts: Vec<String> = (0..300).map(spam_recipient).collect();
    for (i, r) in rcpts.iter().enumerate() {
        let t = 3 * DAY + 20 * 3600 + i as i64 * 6;
        feed.send(
            t,
            "j.novak@acme.example",
            "41.58.12.9",
            "j.novak@acme.example",
            &[(r, i % 4 == 0)],
        );
    }
    let findings = feed.findings();
    assert_eq!(findings.incidents.len(), 1, "{:#?}", findings.incidents);
    let incident = &findings.incidents[0];
    assert_eq!(incident.kind, IncidentKind::CompromisedAccount);
    assert_eq!(incident.account.as_deref(), Some("j.novak@acme.example"));
    assert_eq!(
        incident.ips,
        vec![ip("41.58.12.9")],
        "the office IP is not blamed"
    );
    assert_eq!(incident.messages, 300);
    let reasons = incident.reasons.join("\n");
    assert!(
        reasons.contains("41.58.12.9 had never been used"),
        "{reasons}"
    );
    assert!(
        !reasons.contains("another domain"),
        "own From is not forged: {reasons}"
    );
}

#[test]
fn spray_from_one_ip_is_password_guessing_with_accounts_tried() {
    let mut feed = Feed::new();
    let names = ["admin", "info", "sales", "support", "test", "postmaster"];
    for i in 0..200 {
        let account = format!("{}@acme.example", names[i % names.len()]);
        feed.fail_login(i as i64 * 9, "45.155.205.99", Some(&account));
    }
    let findings = feed.findings();
    assert_eq!(findings.incidents.len(), 1, "{:#?}", findings.incidents);
    let incident = &findings.incidents[0];
    assert_eq!(incident.kind, IncidentKind::PasswordGuessing);
    assert_eq!(incident.ips, vec![ip("45.155.205.99")]);
    assert_eq!(incident.failed_logins, 200);
    assert_eq!(incident.accounts_tried_total, 6);
    assert!(incident
        .accounts_tried
        .contains(&"postmaster@acme.example".to_string()));
    assert_eq!(
        incident.detected_at,
        at(9 * 9),
        "trips at the 10th failure in the hour"
    );
    assert!(incident.network.is_none());
}

#[test]
fn slow_guessing_spread_over_a_slash_24_is_caught_per_network() {
    let mut feed = Feed::new();
    for hour in 0..48i64 {
        for host in 0..40i64 {
            if (hour + host) % 3 == 0 {
                let account = format!("user{}@acme.example", hour * 40 + host);
                feed.fail_login(
                    hour * 3600 + host * 60,
                    &format!("185.220.101.{}", host + 10),
                    Some(&account),
                );
            }
        }
    }
    let findings = feed.findings();
    assert_eq!(findings.incidents.len(), 1, "{:#?}", findings.incidents);
    let incident = &findings.incidents[0];
    assert_eq!(incident.kind, IncidentKind::PasswordGuessing);
    assert_eq!(
        incident.network.map(|n| n.to_string()).as_deref(),
        Some("185.220.101.0/24")
    );
    assert_eq!(incident.ips.len(), 40);
    assert!(
        incident.reasons[0].contains("slow distributed guessing from 40 IPs"),
        "{:?}",
        incident.reasons
    );
}

#[test]
fn clean_newsletter_from_the_usual_office_ip_is_not_an_incident() {
    let mut feed = Feed::new();
    feed.office_week();
    for i in 0..800usize {
        let r = format!("customer{i}@customers.example");
        let t = 3 * DAY + 10 * 3600 + i as i64 * 4;
        feed.send(
            t,
            "marketing@acme.example",
            "198.51.100.10",
            "marketing@acme.example",
            &[(&r, i % 100 == 0)],
        );
    }
    let findings = feed.findings();
    assert!(findings.incidents.is_empty(), "{:#?}", findings.incidents);
    let marketing = findings
        .accounts
        .iter()
        .find(|a| a.account == "marketing@acme.example")
        .unwrap();
    assert_eq!(marketing.counts.messages, 827);
    assert!(
        marketing.peak_per_hour.count >= 800,
        "{:?}",
        marketing.peak_per_hour
    );
    assert!(!marketing.compromised);
}

#[test]
fn user_who_mistyped_the_password_four_times_is_not_an_incident() {
    let mut feed = Feed::new();
    feed.office_week();
    for i in 0..4 {
        feed.fail_login(
            DAY + 8 * 3600 + i * 20,
            "198.51.100.10",
            Some("k.dvorak@acme.example"),
        );
    }
    feed.login(
        DAY + 8 * 3600 + 100,
        "198.51.100.10",
        "k.dvorak@acme.example",
        "HTTP/WebMail",
    );
    let findings = feed.findings();
    assert!(findings.incidents.is_empty(), "{:#?}", findings.incidents);
    assert_eq!(findings.stats.auth_failures, 4);
}

/// One user mistypes her password behind a new office NAT; her colleagues
/// then send from it. Her failures named her account: they were no guesses
/// at theirs, so no colleague is told "the password was guessed".
#[test]
fn typos_behind_a_shared_nat_convict_no_colleague() {
    let mut feed = Feed::new();
    feed.office_week();
    let nat = "198.51.100.20";
    for i in 0..4 {
        feed.fail_login(
            3 * DAY + 8 * 3600 + i * 20,
            nat,
            Some("k.dvorak@acme.example"),
        );
    }
    for (n, user) in ["j.novak", "m.svoboda", "marketing"].iter().enumerate() {
        let account = format!("{user}@acme.example");
        for i in 0..25 {
            let t = 3 * DAY + 9 * 3600 + n as i64 * 3600 + i * 60;
            let rcpt = format!("client{i}@partner.example");
            feed.send(t, &account, nat, &account, &[(&rcpt, false)]);
        }
    }
    let findings = feed.findings();
    assert!(findings.incidents.is_empty(), "{:#?}", findings.incidents);

    // A stranger who tried j.novak's name and then sent as j.novak did guess.
    let mut feed = Feed::new();
    feed.office_week();
    for i in 0..4 {
        feed.fail_login(3 * DAY + 8 * 3600 + i * 20, "203.0.113.66", Some("j.novak"));
    }
    for i in 0..25 {
        let rcpt = format!("client{i}@partner.example");
        let account = "j.novak@acme.example";
        feed.send(
            3 * DAY + 9 * 3600 + i * 60,
            account,
            "203.0.113.66",
            account,
            &[(&rcpt, false)],
        );
    }
    let findings = feed.findings();
    let hijack = findings
        .incidents
        .iter()
        .find(|i| i.kind == IncidentKind::CompromisedAccount)
        .expect("the guessed account");
    assert!(
        hijack
            .reasons
            .iter()
            .any(|r| r.contains("the password was guessed")),
        "{:#?}",
        hijack.reasons
    );
}

#[test]
fn webmail_submissions_take_the_ip_of_the_webmail_login() {
    let mut feed = Feed::new();
    feed.login(100, "203.0.113.50", "eva@acme.example", "HTTP/WebMail");
    feed.send(
        200,
        "eva@acme.example",
        "0.0.0.0",
        "eva@acme.example",
        &[("x@y.example", false)],
    );
    let findings = feed.findings();
    assert_eq!(
        findings.accounts.get(0).unwrap().sending_ips,
        vec![ip("203.0.113.50")]
    );
}

/// A phished account's spam sent through the webmail on the server:
/// Postfix sees it from `127.0.0.1`, the webmail's login names the sender.
fn phished_through_the_webmail(feed: &mut Feed, webmail_login: Option<&str>) {
    feed.office_week();
    let start = 3 * DAY + 20 * 3600;
    if let Some(service) = webmail_login {
        for i in 0..12 {
            feed.fail_login(
                start - 3600 + i * 30,
                "198.51.100.7",
                Some("j.novak@acme.example"),
            );
        }
        feed.login(start - 60, "198.51.100.7", "j.novak@acme.example", service);
    }
    for i in 0..300 {
        feed.send(
            start + i * 6,
            "j.novak@acme.example",
            "127.0.0.1",
            "j.novak@acme.example",
            &[(&spam_recipient(i as usize), i % 4 == 0)],
        );
    }
}

#[test]
fn mail_from_loopback_takes_the_ip_of_the_accounts_webmail_login() {
    for service in ["webmail", "IMAP via webmail", "HTTP/WebMail"] {
        let mut feed = Feed::new();
        phished_through_the_webmail(&mut feed, Some(service));
        let findings = feed.findings();
        let hijack = the_hijack(&findings);
        assert_eq!(hijack.ips, vec![ip("198.51.100.7")], "{service}");
        assert!(hijack.protected_ips.is_empty());
        let reasons = hijack.reasons.join("\n");
        // The new-IP and guessing signals judge the webmail's client.
        assert!(
            reasons.contains("198.51.100.7 had never been used"),
            "{reasons}"
        );
        assert!(
            reasons.contains("198.51.100.7 failed 12 logins before it sent"),
            "{reasons}"
        );
        assert!(!reasons.contains("127.0.0.1"), "{reasons}");
        let guessing = findings
            .incidents
            .iter()
            .find(|i| i.kind == IncidentKind::PasswordGuessing)
            .expect("the guessing is found");
        assert_eq!(guessing.succeeded_as, ["j.novak@acme.example"]);
    }
}

#[test]
fn mail_from_loopback_without_a_webmail_login_names_the_server_and_never_as_one_to_block() {
    let mut feed = Feed::new();
    // An IMAP login through the webmail that did not pass the client's IP
    // on (`rip=127.0.0.1`) names no one.
    feed.login(
        3 * DAY + 19 * 3600,
        "127.0.0.1",
        "j.novak@acme.example",
        "IMAP via webmail",
    );
    phished_through_the_webmail(&mut feed, None);
    let findings = feed.findings();
    assert_eq!(findings.incidents.len(), 1, "{:#?}", findings.incidents);
    let hijack = &findings.incidents[0];
    assert_eq!(hijack.ips, vec![ip("127.0.0.1")]);
    assert_eq!(
        hijack.protected_ips,
        [mailfuse_detect::ProtectedIp {
            ip: ip("127.0.0.1"),
            why: mailfuse_core::safety::Protected::Loopback
        }]
    );
    assert!(hijack.blockable_ips().is_empty());
    assert_eq!(
        hijack.not_blocked(),
        ["127.0.0.1 is this server (loopback: its webmail, content filter or scripts): not blocked; lock the account instead"]
    );
    let reasons = hijack.reasons.join("\n");
    assert!(
        reasons.contains("127.0.0.1 is this server: the sender's real IP is unknown (webmail?"),
        "{reasons}"
    );
}

#[test]
fn the_servers_own_address_is_attributed_like_loopback() {
    let config = DetectConfig {
        safety: mailfuse_core::safety::Safety::new(
            vec!["203.0.113.25".parse().unwrap()],
            Vec::new(),
        ),
        ..DetectConfig::default()
    };
    let mut feed = Feed::with_config(config);
    feed.login(100, "198.51.100.7", "eva@acme.example", "webmail");
    feed.send(
        200,
        "eva@acme.example",
        "203.0.113.25",
        "eva@acme.example",
        &[("x@y.example", false)],
    );
    assert_eq!(
        feed.findings().accounts.get(0).unwrap().sending_ips,
        vec![ip("198.51.100.7")]
    );
}

#[test]
fn same_events_same_incidents_and_each_handed_out_once() {
    let run = || {
        let mut feed = Feed::new();
        feed.office_week();
        for i in 0..200 {
            feed.fail_login(DAY + i * 5, "45.155.205.99", Some("admin@acme.example"));
        }
        let first = feed.detector.new_incidents();
        let second = feed.detector.new_incidents();
        (first, second, feed.findings().incidents)
    };
    let (first, second, all) = run();
    assert_eq!(first.len(), 1);
    assert!(second.is_empty(), "an incident is handed out once");
    assert_eq!(all, run().2, "deterministic");
}

/// The two feeds' detectors concluded the same, and hand out the same.
fn assert_same_findings(one: &mut Feed, other: &mut Feed) {
    let (a, b) = (one.findings(), other.findings());
    assert_eq!(a.incidents, b.incidents);
    assert_eq!(a.accounts, b.accounts);
    assert_eq!(a.stats, b.stats);
    assert_eq!(a.local_domains, b.local_domains);
    assert_eq!(one.detector.new_incidents(), other.detector.new_incidents());
}

#[test]
fn a_restored_detector_goes_on_as_if_it_never_stopped() {
    let mut straight = Feed::new();
    straight.seed_story_with_restarts(None);
    let mut restarted = Feed::new();
    restarted.seed_story_with_restarts(Some(7));

    assert_same_findings(&mut straight, &mut restarted);
    restarted.restart();
    assert!(
        restarted.detector.new_incidents().is_empty(),
        "what was handed out before a restart is not handed out again"
    );
}

/// The logins are not saved a row each: a restored detector finds each
/// account again by its name, and logins that are not UTF-8 (saved apart,
/// as their names are lossy) stay accounts of their own.
#[test]
fn a_restored_detector_finds_every_login_again_even_those_not_utf8() {
    let mut feed = Feed::new();
    let logins: [&[u8]; 3] = [
        b"alice@example.com",
        b"b\xffob@example.com",
        b"b\xfeob@example.com",
    ];
    for (n, login) in logins.iter().enumerate() {
        feed.send_as(n as i64, login, "192.0.2.1", "alice@example.com", &[]);
    }
    let saved_logins = feed
        .detector
        .changes()
        .unwrap()
        .rows
        .iter()
        .filter(|row| row.map == "account_ids")
        .count();
    assert_eq!(saved_logins, 2, "only the logins that are not UTF-8");
    feed.restart();
    for (n, login) in logins.iter().enumerate() {
        feed.send_as(100 + n as i64, login, "192.0.2.1", "alice@example.com", &[]);
    }
    let messages: Vec<(String, u64)> = feed
        .findings()
        .accounts
        .iter()
        .map(|row| (row.account, row.counts.messages))
        .collect();
    assert_eq!(
        messages,
        [
            ("alice@example.com".to_string(), 2),
            ("b\u{fffd}ob@example.com".to_string(), 2),
            ("b\u{fffd}ob@example.com".to_string(), 2),
        ]
    );
}

#[test]
fn open_messages_do_not_grow_with_the_log() {
    let mut feed = Feed::new();
    for i in 0..5000 {
        feed.send(
            i * 120,
            "j.novak@acme.example",
            "198.51.100.10",
            "j.novak@acme.example",
            &[("p@q.example", false)],
        );
    }
    let two_days_of_messages = (2 * DAY / 120) as usize + 1;
    assert!(
        feed.detector.open_messages() <= two_days_of_messages,
        "{}",
        feed.detector.open_messages()
    );
}

#[test]
fn accounts_tried_past_the_kept_names_are_counted_exactly_once_each() {
    let mut feed = Feed::new();
    // 700 distinct names, each tried three times: 2,100 failures.
    for round in 0..3 {
        for i in 0..700 {
            let t = round * 1000 + i;
            feed.fail_login(t, "198.51.100.66", Some(&format!("user{i}@example.com")));
        }
    }
    let findings = feed.findings();
    let incident = findings
        .incidents
        .iter()
        .find(|i| i.kind == IncidentKind::PasswordGuessing)
        .unwrap();
    assert_eq!(incident.accounts_tried_total, 700);
    assert!(incident.accounts_tried_exact);
    assert!(incident
        .reasons
        .iter()
        .any(|r| r.starts_with("700 accounts tried")));
}

#[test]
fn the_period_runs_from_the_earliest_to_the_latest_event_whatever_their_order() {
    let mut feed = Feed::new();
    feed.fail_login(3_600, "203.0.113.9", Some("a@acme.example"));
    feed.fail_login(60, "203.0.113.9", Some("b@acme.example"));
    feed.fail_login(7_200, "203.0.113.9", Some("c@acme.example"));
    feed.fail_login(1_800, "203.0.113.9", Some("d@acme.example"));
    let stats = feed.findings().stats;
    assert_eq!(stats.first_event, Some(at(60)));
    assert_eq!(stats.last_event, Some(at(7_200)));
}

#[test]
fn an_ipv6_network_past_the_kept_ips_counts_each_ip_once_then_says_at_least() {
    let mut feed = Feed::new();
    // 1,500 addresses of one /64, each failing once, then all of them again:
    // the count stops at the IPs kept and says so, never counting one twice.
    for round in 0..2i64 {
        for host in 0..1_500i64 {
            feed.fail_login(
                round * 3_000 + host,
                &format!("2001:db8:7:1::{host:x}"),
                Some("admin@acme.example"),
            );
        }
    }
    let findings = feed.findings();
    let network = findings
        .incidents
        .iter()
        .find(|i| i.network.is_some())
        .expect("a network incident");
    assert!(
        network.reasons[0].starts_with("slow distributed guessing from at least 1024 IPs"),
        "{:?}",
        network.reasons
    );
}

/// An IP in network `n` (a different /24 for each `n`).
fn botnet_ip(n: usize, host: usize) -> String {
    format!(
        "{}.{}.{}.{}",
        20 + n % 180,
        (n / 180) % 250,
        n % 250,
        1 + host % 250
    )
}

/// The guessing incidents of a pattern.
fn guessing_with(findings: &Findings, pattern: GuessingPattern) -> Vec<&Incident> {
    findings
        .incidents
        .iter()
        .filter(|i| i.kind == IncidentKind::PasswordGuessing && i.pattern == Some(pattern))
        .collect()
}

/// 151 IPs in as many networks, about seven tries each within an hour, at
/// a list of role accounts: one campaign naming every IP, not nine small
/// incidents and nothing else.
#[test]
fn a_campaign_across_many_networks_is_one_incident_with_every_ip() {
    let mut feed = Feed::new();
    feed.office_week();
    let roles = [
        "admin", "info", "sales", "office", "test", "support", "billing",
    ];
    for n in 0..151 {
        for k in 0..7 {
            let t = 3 * DAY + 20 * 3600 + (n as i64 * 7 + k) * 3;
            let account = format!("{}@acme.example", roles[(n + k as usize) % roles.len()]);
            feed.fail_login(t, &botnet_ip(n, n), Some(&account));
        }
    }
    let findings = feed.findings();
    let campaigns = guessing_with(&findings, GuessingPattern::Campaign);
    assert_eq!(campaigns.len(), 1, "{:#?}", findings.incidents);
    assert_eq!(campaigns[0].ips.len(), 151);
    assert_eq!(campaigns[0].failed_logins, 151 * 7);
    assert_eq!(campaigns[0].accounts_tried_total, 7);
    assert!(findings
        .incidents
        .iter()
        .all(|i| i.kind != IncidentKind::CompromisedAccount));
}

/// A leaked list: 120 accounts, each tried once from each of a few of 300
/// IPs worldwide over a day; then one of them logs in from one of the IPs.
#[test]
fn credential_stuffing_is_told_from_guessing_and_names_the_account_it_opened() {
    let mut feed = Feed::new();
    feed.office_week();
    for n in 0..300 {
        for k in 0..4 {
            let t = 3 * DAY + (n as i64 * 4 + k) * 70;
            let account = format!("user{}@acme.example", (n * 4 + k as usize) % 120);
            feed.fail_login(t, &botnet_ip(n, 7), Some(&account));
        }
    }
    // user5 was tried by IP 1 (n = 1, k = 1).
    feed.login(4 * DAY, &botnet_ip(1, 7), "user5@acme.example", "IMAP");
    let findings = feed.findings();
    let stuffing = guessing_with(&findings, GuessingPattern::CredentialStuffing);
    assert_eq!(stuffing.len(), 1, "{:#?}", findings.incidents);
    assert_eq!(stuffing[0].ips.len(), 300);
    assert_eq!(stuffing[0].accounts_tried_total, 120);
    assert_eq!(
        stuffing[0].succeeded_as,
        vec!["user5@acme.example".to_string()]
    );
    assert!(guessing_with(&findings, GuessingPattern::Campaign).is_empty());
}

/// One account tried from 200 IPs in many networks, one to three times
/// each: brute force at that account, named.
#[test]
fn brute_force_at_one_account_from_many_ips_names_the_account() {
    let mut feed = Feed::new();
    feed.office_week();
    for n in 0..200 {
        for k in 0..(1 + n % 3) {
            let t = 3 * DAY + (n as i64 * 3 + k as i64) * 40;
            feed.fail_login(t, &botnet_ip(n, 3), Some("j.novak@acme.example"));
        }
    }
    let findings = feed.findings();
    let brute = guessing_with(&findings, GuessingPattern::BruteForce);
    assert_eq!(brute.len(), 1, "{:#?}", findings.incidents);
    assert_eq!(brute[0].account.as_deref(), Some("j.novak@acme.example"));
    assert_eq!(brute[0].ips.len(), 200);
}

/// What is no spread guessing: a phone with a stale password failing from
/// the carrier's IPs all day, and the everyday trickle of a few strangers'
/// guesses a day over a week.
#[test]
fn a_stale_phone_and_a_daily_trickle_are_no_campaign_and_no_brute_force() {
    let mut failures = Vec::new();
    for n in 0..12 {
        for k in 0..20 {
            let t = 3 * DAY + (n * 20 + k) * 300;
            let carrier = format!("100.{}.{}.9", 64 + n, k % 3);
            failures.push((t, carrier, "m.svoboda@acme.example"));
        }
    }
    for n in 0..7 * 30 {
        let t = n as i64 * DAY / 30;
        failures.push((t, botnet_ip(n, n), "admin@acme.example"));
    }
    failures.sort();
    let mut feed = Feed::new();
    for (t, ip, account) in &failures {
        feed.fail_login(*t, ip, Some(account));
    }
    let findings = feed.findings();
    for pattern in [
        GuessingPattern::Campaign,
        GuessingPattern::CredentialStuffing,
        GuessingPattern::BruteForce,
    ] {
        assert!(
            guessing_with(&findings, pattern).is_empty(),
            "{pattern:?}: {:#?}",
            findings.incidents
        );
    }
}

/// An infected office PC: j.novak's usual IP, after three days of honest
/// mail, sends spam at night. The incident starts with the spam.
#[test]
fn a_hijack_from_the_usual_ip_starts_when_the_spam_does() {
    let mut feed = Feed::new();
    feed.office_week();
    let spam_start = 3 * DAY + 22 * 3600;
    for i in 0..60 {
        let rcpt = spam_recipient(i);
        feed.send(
            spam_start + i as i64 * 30,
            "j.novak@acme.example",
            "198.51.100.10",
            "promo@pharma.example",
            &[(&rcpt, i % 3 == 0)],
        );
    }
    let findings = feed.findings();
    let hijack = findings
        .incidents
        .iter()
        .find(|i| i.kind == IncidentKind::CompromisedAccount)
        .expect("the infected PC's spam");
    assert_eq!(hijack.account.as_deref(), Some("j.novak@acme.example"));
    assert_eq!(hijack.first_seen, at(spam_start));
}

/// The log begins a few hours before a phished account is used: 40
/// messages in a minute from a new IP, 46 % refused. A short history still
/// tells the IP is new; the same user's second IP with honest mail is no
/// incident.
#[test]
fn a_short_history_still_tells_a_new_ip() {
    let mut feed = Feed::new();
    for i in 0..6 {
        let rcpt = format!("client{i}@partner.example");
        let account = "eva@acme.example";
        feed.send(
            i * 600,
            account,
            "198.51.100.10",
            account,
            &[(&rcpt, false)],
        );
    }
    // Her home IP in the evening: honest mail, a refused typo.
    for i in 0..25 {
        let rcpt = format!("friend{i}@mail.example");
        let account = "eva@acme.example";
        feed.send(
            2 * 3600 + i * 60,
            account,
            "192.0.2.77",
            account,
            &[(&rcpt, i == 3)],
        );
    }
    assert!(
        feed.findings().incidents.is_empty(),
        "{:#?}",
        feed.findings().incidents
    );
    for i in 0..40 {
        let rcpt = spam_recipient(i);
        let account = "eva@acme.example";
        feed.send(
            4 * 3600 + i as i64,
            account,
            "203.0.113.99",
            account,
            &[(&rcpt, i % 13 < 6)],
        );
    }
    let findings = feed.findings();
    let hijack = findings
        .incidents
        .iter()
        .find(|i| i.kind == IncidentKind::CompromisedAccount)
        .expect("the phished account");
    assert_eq!(hijack.ips, vec![ip("203.0.113.99")]);
    assert_eq!(hijack.first_seen, at(4 * 3600));
}

/// A newsletter account that sent nothing for days mails 300 subscribers
/// from the office NAT three colleagues use every day: the office is the
/// organisation's own network, so the account waking up there is no hijack.
#[test]
fn a_dormant_account_mailing_from_the_office_network_is_no_incident() {
    let mut feed = Feed::new();
    feed.office_week();
    for i in 0..300 {
        let rcpt = format!("subscriber{i}@mail.example");
        let account = "news@acme.example";
        feed.send(
            3 * DAY + 10 * 3600 + i * 5,
            account,
            "198.51.100.10",
            account,
            &[(&rcpt, i % 100 == 0)],
        );
    }
    let findings = feed.findings();
    assert!(findings.incidents.is_empty(), "{:#?}", findings.incidents);
}

/// An old mail program at m.svoboda's home keeps the old password and
/// retries every five minutes for six hours, while her phone logs in fine
/// from the same address: a misconfigured client, low, never guessing.
#[test]
fn a_stale_password_at_home_is_a_misconfigured_client_not_guessing() {
    let mut feed = Feed::new();
    feed.office_week();
    let home = "192.0.2.44";
    let start = 3 * DAY + 18 * 3600;
    feed.login(start - 600, home, "m.svoboda@acme.example", "IMAP");
    for i in 0..72 {
        let t = start + i * 300;
        feed.fail_login(t, home, Some("m.svoboda@acme.example"));
        if i % 12 == 6 {
            feed.login(t + 30, home, "m.svoboda@acme.example", "IMAP");
        }
    }
    let findings = feed.findings();
    assert!(
        findings
            .incidents
            .iter()
            .all(|i| i.kind == IncidentKind::MisconfiguredClient),
        "{:#?}",
        findings.incidents
    );
    let stale = &findings.incidents[0];
    assert_eq!(stale.account.as_deref(), Some("m.svoboda@acme.example"));
    assert_eq!(stale.ips, vec![ip(home)]);
    assert!(stale.score < 40);
    assert!(!stale.kind.may_act());
}

/// A user with a history mails 150 people within the hour from an IP she
/// never used, her own From, nothing refused: some marks of a hijack (a new
/// IP, a burst), not enough to lock — suspicious activity, alerted only.
#[test]
fn a_burst_from_a_new_ip_with_nothing_else_is_suspicious_not_compromised() {
    let mut feed = Feed::new();
    feed.office_week();
    for i in 0..150 {
        let rcpt = format!("contact{i}@partner.example");
        let account = "j.novak@acme.example";
        feed.send(
            3 * DAY + 20 * 3600 + i * 20,
            account,
            "203.0.113.40",
            account,
            &[(&rcpt, false)],
        );
    }
    let findings = feed.findings();
    assert_eq!(findings.incidents.len(), 1, "{:#?}", findings.incidents);
    let suspicious = &findings.incidents[0];
    assert_eq!(suspicious.kind, IncidentKind::SuspiciousActivity);
    assert_eq!(suspicious.account.as_deref(), Some("j.novak@acme.example"));
    assert!(!suspicious.kind.may_act());
    assert_ne!(suspicious.confidence, mailfuse_detect::Confidence::High);
    assert!(!suspicious.to_confirm.is_empty());
}

/// Proxies taking turns: 30 IPs new to the account, two messages each, a
/// third of the recipients refused. No one IP has enough to judge; summed,
/// they are a hijack naming every IP. A phone on a carrier's changing IPs
/// sending its owner's mail (nothing refused) is not.
#[test]
fn proxies_taking_turns_add_up_and_every_ip_is_named() {
    let mut feed = Feed::new();
    feed.office_week();
    let proxies: Vec<String> = (0..30).map(|n| botnet_ip(n, 9)).collect();
    for (n, proxy) in proxies.iter().enumerate() {
        for k in 0..2 {
            let t = 3 * DAY + 10 * 3600 + (n as i64 * 2 + k) * 600;
            let rcpt = spam_recipient(n * 2 + k as usize);
            let account = "m.svoboda@acme.example";
            feed.send(
                t,
                account,
                proxy,
                account,
                &[(&rcpt, (n + k as usize).is_multiple_of(3))],
            );
        }
    }
    let mut phone = Feed::new();
    phone.office_week();
    for n in 0..30 {
        let t = 3 * DAY + 10 * 3600 + n as i64 * 1200;
        let carrier = format!("176.{}.{}.9", 64 + n % 4, n);
        let rcpt = format!("friend{n}@mail.example");
        let account = "j.novak@acme.example";
        phone.send(t, account, &carrier, account, &[(&rcpt, false)]);
    }
    assert!(
        phone.findings().incidents.is_empty(),
        "{:#?}",
        phone.findings().incidents
    );
    let findings = feed.findings();
    let hijack = findings
        .incidents
        .iter()
        .find(|i| i.kind == IncidentKind::CompromisedAccount)
        .expect("the proxies' hijack");
    assert_eq!(hijack.account.as_deref(), Some("m.svoboda@acme.example"));
    let mut named: Vec<String> = hijack.ips.iter().map(ToString::to_string).collect();
    named.sort();
    let mut expected = proxies.clone();
    expected.sort();
    assert_eq!(named, expected);
}

/// The seed story with a foreign From domain that later turns out local
/// (an account of it logs in), so that packed accounts are forgiven too;
/// with a restart in the middle, and idle accounts packed after
/// `pack_idle_secs`.
fn packing_story(pack_idle_secs: i64) -> Feed {
    let mut config = DetectConfig::default();
    config.compromise.pack_idle_secs = pack_idle_secs;
    config.guessing.pack_idle_secs = pack_idle_secs;
    let mut feed = Feed::with_config(config);
    feed.office_week();
    // A few failures from a network's IPs, one of which logs in later
    // (a guess that worked, found in a packed guesser).
    for i in 0..4 {
        let ip = format!("203.0.113.{}", 10 + i);
        for n in 0..6 {
            feed.fail_login(
                3 * DAY + i * 900 + n * 60,
                &ip,
                Some("m.svoboda@acme.example"),
            );
        }
    }
    feed.restart();
    feed.send(
        3 * DAY + 9 * 3600,
        "j.novak@acme.example",
        "198.51.100.10",
        "j.novak@acme-branch.example",
        &[("partner@partner.example", false)],
    );
    feed.login(
        3 * DAY + 11 * 3600,
        "203.0.113.12",
        "m.svoboda@acme.example",
        "IMAP",
    );
    // …and then guesses at others: its incident says the guess worked.
    for n in 0..12 {
        feed.fail_login(
            3 * DAY + 11 * 3600 + 60 + n * 10,
            "203.0.113.12",
            Some("info@acme.example"),
        );
    }
    // A login of that domain makes it local.
    feed.login(
        3 * DAY + 12 * 3600,
        "198.51.100.10",
        "boss@acme-branch.example",
        "IMAP",
    );
    feed.seed_story_with_restarts(Some(250));
    feed
}

#[test]
fn packing_idle_accounts_changes_no_verdict() {
    let mut packed = packing_story(0);
    let mut live = packing_story(i64::MAX);
    assert_same_findings(&mut packed, &mut live);
    let a = packed.findings();
    // Packed after every line, all five are: the last line, a delivery
    // naming its message's recipient again, tells its account nothing new
    // and leaves it packed.
    assert_eq!(packed_accounts(&mut packed), 5);
    // Never packed while live, but restored packed: all but the hijacked
    // account, which sent after the last restart.
    assert_eq!(packed_accounts(&mut live), 4);
    assert!(the_hijack(&a).messages > 0);
    assert!(
        a.incidents
            .iter()
            .any(|i| i.kind == IncidentKind::PasswordGuessing && i.ips.len() > 1),
        "the network's guessing is found: {:?}",
        a.incidents
    );
    assert!(
        a.incidents
            .iter()
            .any(|i| i.ips == [ip("203.0.113.12")] && i.succeeded_as == ["m.svoboda@acme.example"]),
        "the network's guessing is found: {:?}",
        a.incidents
    );
}

/// How many of the feed's accounts are packed.
fn packed_accounts(feed: &mut Feed) -> usize {
    let entries = feed.detector.entries();
    entries
        .iter()
        .find(|(name, _)| *name == "accounts_packed")
        .map(|&(_, n)| n)
        .unwrap()
}

/// The report's table at the end of a run reads packed accounts from their
/// bytes, without unpacking them: the rows are those of the unpacked
/// accounts, new IPs, services, peaks and all.
#[test]
fn the_final_table_reads_packed_accounts_as_unpacked_ones() {
    let mut feed = packing_story(0);
    // One more line, of an account that sends nothing: the five others,
    // the hijacked one too, are packed.
    feed.login(30 * DAY, "192.0.2.77", "late@acme.example", "IMAP");
    assert_eq!(packed_accounts(&mut feed), 5);
    let unpacked: Vec<AccountSummary> = feed.findings().accounts.iter().collect();
    let read: Vec<AccountSummary> = feed.detector.final_findings().accounts.iter().collect();
    assert_eq!(read, unpacked);
    assert_eq!(read.len(), 4, "those that sent: {read:#?}");
    assert!(
        read.iter()
            .any(|row| row.compromised && !row.new_ips.is_empty()),
        "{read:#?}"
    );
    assert!(read.iter().all(|row| !row.services.is_empty()
        && !row.sending_ips.is_empty()
        && row.peak_per_hour.count > 0
        && row.first_seen < row.last_seen));
}

/// A detector that knows the canary `trap@acme.example`, packing idle
/// accounts at once (so the hit is saved and read back with the row).
fn canary_feed() -> Feed {
    let mut config = DetectConfig {
        canaries: Canaries::new(&["trap@acme.example"]).unwrap(),
        ..DetectConfig::default()
    };
    config.compromise.pack_idle_secs = 0;
    Feed::with_config(config)
}

#[test]
fn one_message_to_a_canary_is_a_hijack_at_once_and_once() {
    let mut feed = canary_feed();
    feed.office_week();
    assert!(feed.detector.new_incidents().is_empty());
    // From the usual IP, one message: no behaviour would ever trip.
    feed.send(
        3 * DAY + 12 * 3600,
        "j.novak@acme.example",
        "198.51.100.10",
        "j.novak@acme.example",
        &[
            ("partner@partner.example", false),
            ("Trap@ACME.example", false),
        ],
    );
    let incidents = feed.detector.new_incidents();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let hijack = &incidents[0];
    assert_eq!(hijack.kind, IncidentKind::CompromisedAccount);
    assert_eq!(hijack.account.as_deref(), Some("j.novak@acme.example"));
    assert_eq!(hijack.score, 100);
    assert!(
        hijack.reasons[0]
            .starts_with("sent to canary address trap@acme.example from 198.51.100.10"),
        "{:?}",
        hijack.reasons
    );
    assert!(
        hijack.evidence[0].contains("Trap@ACME.example"),
        "{:?}",
        hijack.evidence
    );
    assert_eq!(hijack.ips, vec![ip("198.51.100.10")]);
    assert!(hijack.kind.may_act());

    // Later messages to it, across a restart, are the same hijack.
    feed.restart();
    for i in 0..3 {
        feed.send(
            3 * DAY + 13 * 3600 + i * 60,
            "j.novak@acme.example",
            "203.0.113.7",
            "j.novak@acme.example",
            &[("trap@acme.example", false)],
        );
    }
    assert!(feed.detector.new_incidents().is_empty());
    let findings = feed.findings();
    let hijacks: Vec<_> = findings
        .incidents
        .iter()
        .filter(|i| i.kind == IncidentKind::CompromisedAccount)
        .collect();
    assert_eq!(hijacks.len(), 1, "{hijacks:#?}");
    assert!(
        hijacks[0].reasons[0].contains("canary address"),
        "kept across the restart"
    );
}

#[test]
fn mail_to_a_canary_without_a_login_or_to_a_look_alike_is_nothing() {
    let mut feed = canary_feed();
    feed.office_week();
    // Inbound: a stranger writes to the trap (it is on a web page).
    let inbound = Submission {
        at: at(3 * DAY + 9 * 3600),
        queue_id: b"inbound-1",
        client: Some(Client::Ip(ip("192.0.2.99"))),
        envelope_from: Some(b"spammer@elsewhere.example"),
        recipient: Some(b"trap@acme.example"),
        ..Submission::default()
    };
    feed.detector
        .observe(&Event::Submission(inbound), b"inbound to the trap");
    let delivery = Delivery {
        at: at(3 * DAY + 9 * 3600 + 1),
        queue_id: b"inbound-1",
        recipient: b"trap@acme.example",
        status: DeliveryStatus::Delivered,
        dsn: Some(b"2.0.0"),
        detail: b"",
        relay: None,
    };
    feed.detector
        .observe(&Event::Delivery(delivery), b"delivered to the trap");
    // Authenticated, to addresses that only look like it.
    feed.send(
        3 * DAY + 10 * 3600,
        "m.svoboda@acme.example",
        "198.51.100.10",
        "m.svoboda@acme.example",
        &[
            ("trap@acme.example.org", false),
            ("trap@partner.example", false),
        ],
    );
    assert!(feed.detector.new_incidents().is_empty());
    assert!(feed.findings().incidents.is_empty());
}

/// `orders` sends 20 ordinary-looking messages, one every ten minutes, its
/// own From, all delivered: nothing alone, unless the audit marked it.
fn orders_wakes_up(marked: bool) -> Findings {
    let mut feed = Feed::new();
    if marked {
        feed.detector
            .set_never_logs_in(["Orders@acme.example".to_owned()]);
    }
    feed.office_week();
    for i in 0..20 {
        let r = format!("client{i}@customers.example");
        feed.send(
            4 * DAY + 10 * 3600 + i * 600,
            "orders@acme.example",
            "198.51.100.77",
            "orders@acme.example",
            &[(&r, false)],
        );
    }
    feed.findings()
}

#[test]
fn an_account_the_audit_found_nobody_logs_into_sending_is_a_hijack() {
    let unmarked = orders_wakes_up(false);
    assert!(
        !unmarked
            .incidents
            .iter()
            .any(|i| i.kind == IncidentKind::CompromisedAccount),
        "{:#?}",
        unmarked.incidents
    );
    let marked = orders_wakes_up(true);
    let hijack = the_hijack(&marked);
    assert_eq!(hijack.account.as_deref(), Some("orders@acme.example"));
    assert!(
        hijack
            .reasons
            .iter()
            .any(|r| r.starts_with("first SMTP login of an account that never logs in (audit)")),
        "{:#?}",
        hijack.reasons
    );
}
