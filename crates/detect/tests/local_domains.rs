//! Local domains inferred from a Postfix server's own log, as an admin would
//! read it: logins without a domain sending as themselves, Postfix's own
//! rewriting of a bare sender, and domains delivered into local mailboxes.
//! Lines are real Postfix forms, parsed as `scan` parses them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use mailfuse_detect::{
    AccountSummary, CompromiseConfig, DetectConfig, Detector, Findings, IncidentKind,
};
use mailfuse_formats::{Format, LineParser, ParseContext, Parsed};

const DAY: i64 = 86_400;
/// 2026-11-02T00:00:00Z.
const START: i64 = 1_793_577_600;

/// Writes Postfix lines and feeds them through the syslog parser.
struct Server {
    parser: Box<dyn LineParser>,
    detector: Detector,
    queue: u64,
}

impl Server {
    fn new(config: DetectConfig) -> Self {
        Server {
            parser: Format::Syslog.parser(&ParseContext::default()),
            detector: Detector::new(config),
            queue: 0,
        }
    }

    fn line(&mut self, t: i64, program: &str, text: &str) {
        let stamp = mailfuse_core::Timestamp(START + t);
        let line = format!("{} mail postfix/{program}[4242]: {text}", rfc3339(stamp));
        match self.parser.parse(line.as_bytes()) {
            Parsed::Event(event) => self.detector.observe(&event, line.as_bytes()),
            Parsed::Ignored => {}
            other => panic!("{line}: {other:?}"),
        }
    }

    fn next_id(&mut self) -> String {
        self.queue += 1;
        format!("4B{:08X}", self.queue)
    }

    /// A message from `client` (with a SASL login or none) with envelope
    /// `from`, to `rcpts`, each delivered through `relay` (`None`: bounced).
    fn message(
        &mut self,
        t: i64,
        client: &str,
        login: Option<&str>,
        from: &str,
        rcpts: &[(&str, Option<&str>)],
    ) {
        let id = self.next_id();
        let sasl = login.map_or(String::new(), |l| {
            format!(", sasl_method=PLAIN, sasl_username={l}")
        });
        self.line(t, "smtpd", &format!("{id}: client=unknown[{client}]{sasl}"));
        self.line(
            t,
            "qmgr",
            &format!(
                "{id}: from=<{from}>, size=2048, nrcpt={} (queue active)",
                rcpts.len()
            ),
        );
        self.deliver(t + 1, &id, rcpts);
    }

    fn deliver(&mut self, t: i64, id: &str, rcpts: &[(&str, Option<&str>)]) {
        for (rcpt, relay) in rcpts {
            let text = match relay {
                Some(relay) => format!(
                    "{id}: to=<{rcpt}>, relay={relay}, delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
                ),
                None => format!(
                    "{id}: to=<{rcpt}>, relay=mx.example.net[192.0.2.80]:25, delay=0.4, delays=0.1/0/0.1/0.2, dsn=5.1.1, status=bounced (host mx.example.net[192.0.2.80] said: 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown)"
                ),
            };
            let program = if relay.is_some_and(|r| r.contains("lmtp")) {
                "lmtp"
            } else {
                "smtp"
            };
            self.line(t, program, &text);
        }
        self.line(t, "qmgr", &format!("{id}: removed"));
    }

    /// A local program's mail (`sendmail` as root): pickup names the bare
    /// sender, qmgr the one Postfix qualified it with.
    fn cron_mail(&mut self, t: i64) {
        let id = self.next_id();
        self.line(t, "pickup", &format!("{id}: uid=0 from=<root>"));
        self.line(
            t,
            "qmgr",
            &format!("{id}: from=<root@mail.seaglass.com>, size=900, nrcpt=1 (queue active)"),
        );
        self.deliver(t + 1, &id, &[("root@mail.seaglass.com", Some("local"))]);
    }

    fn findings(&self) -> Findings {
        self.detector.findings()
    }
}

fn rfc3339(t: mailfuse_core::Timestamp) -> String {
    // Days since 2026-11-02 within November/December 2026 are enough here.
    let secs = t.0 - START;
    let (day, rest) = (secs / DAY, secs % DAY);
    let (month, mday) = if day < 29 {
        (11, day + 2)
    } else {
        (12, day - 28)
    };
    format!(
        "2026-{month:02}-{mday:02}T{:02}:{:02}:{:02}+00:00",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

const LMTP: Option<&str> = Some("mail.seaglass.com[private/dovecot-lmtp]");
const REMOTE: Option<&str> = Some("mx.partner.example[192.0.2.5]:25");
const OFFICE: &str = "198.51.100.10";

/// Three working days: `jdent` and `mwhite` log in without a domain and
/// send as themselves at seaglass.com, `jdent` also as the second company's
/// `info@seaglass-tours.com`; the partner writes to both companies'
/// mailboxes; cron mails root.
fn office_days(server: &mut Server) {
    for day in 0..3 {
        for hour in 8..17 {
            let t = day * DAY + hour * 3600;
            server.message(
                t,
                "192.0.2.5",
                None,
                "partner@partner.example",
                &[
                    ("anna@seaglass-tours.com", LMTP),
                    ("jdent@seaglass.com", LMTP),
                ],
            );
            server.message(
                t + 60,
                OFFICE,
                Some("jdent"),
                "jdent@seaglass.com",
                &[("partner@partner.example", REMOTE)],
            );
            server.message(
                t + 120,
                OFFICE,
                Some("jdent"),
                "info@seaglass-tours.com",
                &[("partner@partner.example", REMOTE)],
            );
            server.message(
                t + 180,
                "198.51.100.11",
                Some("mwhite"),
                "mwhite@seaglass.com",
                &[("partner@partner.example", REMOTE)],
            );
        }
        server.cron_mail(day * DAY + 6 * 3600);
    }
}

/// `mwhite`'s password is used from a new IP to send spam with forged
/// From's, half of them with its own name at a foreign domain.
fn hijack(server: &mut Server) {
    for i in 0..40 {
        let from = if i % 2 == 0 {
            "mwhite@spam-offers.example".to_string()
        } else {
            format!("promo{i}@cheap-pills.example")
        };
        let rcpts: Vec<String> = (0..3)
            .map(|r| format!("buyer{i}x{r}@victims.example"))
            .collect();
        let rcpts: Vec<(&str, Option<&str>)> = rcpts
            .iter()
            .enumerate()
            .map(|(r, a)| (a.as_str(), if r == 0 { None } else { REMOTE }))
            .collect();
        server.message(
            3 * DAY + 2 * 3600 + i * 30,
            "203.0.113.66",
            Some("mwhite"),
            &from,
            &rcpts,
        );
    }
}

/// The report's row of `name`.
fn account(findings: &Findings, name: &str) -> AccountSummary {
    findings
        .accounts
        .find(name)
        .unwrap_or_else(|| panic!("no account {name}"))
}

#[test]
fn own_domains_are_inferred_with_their_reasons_and_a_hijack_still_shows_its_forged_from() {
    let mut server = Server::new(DetectConfig::default());
    office_days(&mut server);
    hijack(&mut server);
    let findings = server.findings();

    let local: Vec<(String, Vec<&str>)> = findings
        .local_domains
        .iter()
        .map(|d| (d.domain.clone(), d.reasons.clone()))
        .collect();
    assert_eq!(
        local,
        [
            (
                "mail.seaglass.com".to_string(),
                vec!["delivered locally", "the server's own address rewriting"]
            ),
            ("seaglass-tours.com".to_string(), vec!["delivered locally"]),
            (
                "seaglass.com".to_string(),
                vec!["delivered locally", "the From of logins without a domain"]
            ),
        ]
    );

    // jdent's own and second-company From's are not foreign: no incident.
    let jdent = account(&findings, "jdent");
    assert_eq!(
        (jdent.counts.messages, jdent.counts.foreign_from_messages),
        (54, 0)
    );
    assert_eq!(jdent.counts.external_recipients, 54);
    assert!(!jdent.compromised);

    // The hijack: its forged From's (even with the login's own name) stay
    // foreign, and its recipients external.
    let incidents: Vec<_> = findings
        .incidents
        .iter()
        .filter(|i| i.kind == IncidentKind::CompromisedAccount)
        .collect();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let incident = incidents[0];
    assert_eq!(incident.account.as_deref(), Some("mwhite"));
    assert_eq!((incident.messages, incident.external_recipients), (40, 120));
    assert!(
        incident
            .reasons
            .iter()
            .any(|r| r.starts_with("40 of 40 messages used an envelope From of another domain")),
        "{:#?}",
        incident.reasons
    );
}

#[test]
fn a_configured_local_domain_is_the_only_one() {
    let config = DetectConfig {
        compromise: CompromiseConfig {
            local_domains: vec!["seaglass.com".into()],
            ..CompromiseConfig::default()
        },
        ..DetectConfig::default()
    };
    let mut server = Server::new(config);
    office_days(&mut server);
    let findings = server.findings();
    let local: Vec<_> = findings
        .local_domains
        .iter()
        .map(|d| (d.domain.as_str(), d.reasons.clone()))
        .collect();
    assert_eq!(local, [("seaglass.com", vec!["configured"])]);
    // The second company's From is foreign then, as configured.
    let jdent = account(&findings, "jdent");
    assert_eq!(jdent.counts.foreign_from_messages, 27);
}

#[test]
fn without_inference_every_sender_of_such_a_server_would_be_foreign() {
    // The same office with logins that carry no domain and no local
    // delivery seen: nothing is inferred from the remote deliveries.
    let mut server = Server::new(DetectConfig::default());
    for hour in 8..12 {
        server.message(
            hour * 3600,
            "203.0.113.9",
            None,
            "news@elsewhere.example",
            &[("partner@partner.example", REMOTE)],
        );
    }
    assert!(server.findings().local_domains.is_empty());
}

#[test]
fn a_guessed_login_without_a_domain_cannot_make_its_forged_domain_local() {
    let mut server = Server::new(DetectConfig::default());
    office_days(&mut server);
    // `backup` never sent before; its password is guessed, then the
    // guesser sends as `backup@` a foreign domain.
    let t = 3 * DAY;
    for i in 0..12 {
        server.line(
            t + i * 20,
            "submission/smtpd",
            "warning: unknown[203.0.113.77]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
        );
    }
    for i in 0..30 {
        let rcpts: Vec<String> = (0..2)
            .map(|r| format!("r{i}x{r}@victims.example"))
            .collect();
        let rcpts: Vec<(&str, Option<&str>)> = rcpts.iter().map(|a| (a.as_str(), REMOTE)).collect();
        server.message(
            t + 600 + i * 30,
            "203.0.113.77",
            Some("backup"),
            "backup@bulk.example",
            &rcpts,
        );
    }
    let findings = server.findings();
    assert!(findings
        .local_domains
        .iter()
        .all(|d| d.domain != "bulk.example"));
    let backup = account(&findings, "backup");
    assert_eq!(backup.counts.foreign_from_messages, 30);
    assert!(backup.compromised);
}

/// Parses `lines` of `format` into a fresh detector and lists its local
/// domains.
fn local_domains_of(format: Format, lines: &[&[u8]]) -> Vec<(String, Vec<&'static str>)> {
    let mut parser = format.parser(&ParseContext::default());
    let mut detector = Detector::default();
    for line in lines {
        match parser.parse(line) {
            Parsed::Event(event) => detector.observe(&event, line),
            other => panic!("{}: {other:?}", String::from_utf8_lossy(line)),
        }
    }
    detector
        .findings()
        .local_domains
        .into_iter()
        .map(|d| (d.domain, d.reasons))
        .collect()
}

#[test]
fn exim_local_transports_deliver_locally_and_remote_smtp_does_not() {
    let local = local_domains_of(
        Format::Exim,
        &[
            b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= partner@partner.example H=mx.partner.example [192.0.2.5] P=esmtps S=2275",
            b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd => jdent <jdent@seaglass.com> R=local_user T=local_delivery",
            b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd => anna@seaglass-tours.com R=dovecot_router T=dovecot_lmtp",
            b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd => bob@partner.example R=dnslookup T=remote_smtp H=mx.partner.example [192.0.2.5]",
            // The hop into a content scanner on this machine is no delivery.
            b"2024-03-21 19:26:08 1rK9Xb-0001ab-Cd <= spam@bulk.example H=(x) [203.0.113.9] P=esmtp S=900",
            b"2024-03-21 19:26:08 1rK9Xb-0001ab-Cd => victim@victims.example R=amavis T=amavis_smtp H=127.0.0.1 [127.0.0.1]:10024 C=\"250 2.0.0 Ok\"",
        ],
    );
    assert_eq!(
        local,
        [
            ("seaglass-tours.com".to_string(), vec!["delivered locally"]),
            ("seaglass.com".to_string(), vec!["delivered locally"]),
        ]
    );
}

#[test]
fn kerio_deliveries_to_loopback_are_local() {
    let local = local_domains_of(
        Format::Kerio,
        &[
            b"[11/Mar/2024 11:40:40] Sent: Queue-ID: 65ee8b47-00000009, Recipient: <b@example.vn>, Result: delivered, Status: 2.0.0 , Remote-Host: 127.0.0.1, Msg-Id: <x@example.vn>",
            b"[11/Mar/2024 11:40:41] Sent: Queue-ID: 65ee8b47-0000000a, Recipient: <c@example.net>, Result: relayed, Status: 250 2.0.0 OK, Remote-Host: mx.example.net, Msg-Id: <y@example.vn>",
        ],
    );
    assert_eq!(
        local,
        [("example.vn".to_string(), vec!["delivered locally"])]
    );
}

#[test]
fn local_domains_and_their_reasons_survive_a_restart_of_watch() {
    let mut server = Server::new(DetectConfig::default());
    office_days(&mut server);
    let before = server.findings().local_domains;
    let snapshot = server.detector.snapshot().unwrap();
    let restored = Detector::restore(&snapshot, DetectConfig::default()).unwrap();
    assert_eq!(restored.findings().local_domains, before);
    assert_eq!(before.len(), 3);
}

#[test]
fn a_domain_found_local_later_takes_back_the_messages_counted_foreign() {
    let mut server = Server::new(DetectConfig::default());
    // Early in the log `jdent` writes as the second company before any mail
    // to it was delivered here.
    for i in 0..5 {
        server.message(
            i * 60,
            OFFICE,
            Some("jdent"),
            "info@seaglass-tours.com",
            &[("partner@partner.example", REMOTE)],
        );
    }
    let early = server.findings();
    let jdent = account(&early, "jdent");
    assert_eq!(jdent.counts.foreign_from_messages, 5);
    // Then the partner writes to the second company's mailbox.
    server.message(
        3600,
        "192.0.2.5",
        None,
        "partner@partner.example",
        &[("anna@seaglass-tours.com", LMTP)],
    );
    let later = server.findings();
    let jdent = account(&later, "jdent");
    assert_eq!(
        (jdent.counts.messages, jdent.counts.foreign_from_messages),
        (5, 0)
    );
}
