use std::sync::Mutex;

use super::*;
use crate::clock::ManualClock;
use crate::counters::Diversity;
use crate::protocol::RequestReader;

const T0: u64 = 1_800_000_000;

/// A policy on a manual clock; its trips land in the returned list.
struct Fixture {
    policy: Policy,
    clock: ManualClock,
    trips: Arc<Mutex<Vec<TripReport>>>,
}

/// A policy configured by `toml`: `[policy]`'s keys, and a `[limits]`
/// section (the built-in limits without one).
fn fixture(toml: &str) -> Fixture {
    let mut table: toml::Table = toml.parse().unwrap();
    let limits = match table.remove("limits") {
        Some(limits) => limits.try_into().unwrap(),
        None => crate::config::default_limits(),
    };
    // What the binary takes from other sections: `[canary] recipients`
    // and `[watch] dry_run`.
    let canaries: Vec<String> = table
        .remove("canaries")
        .map_or_else(Vec::new, |list| list.try_into().unwrap());
    let dry_run = table
        .remove("dry_run")
        .is_some_and(|v| v.as_bool() == Some(true));
    let mut config: PolicyConfig = table.try_into().unwrap();
    config.canaries = Canaries::new(&canaries).unwrap();
    config.dry_run = dry_run;
    let diversity = Diversity {
        max_ips: config.trips.max_ips,
        max_networks: config.trips.max_networks,
        window_secs: config.trips.window.as_secs(),
        dry_run,
    };
    let rules = mailfuse_limits::LimitRules::new(&limits).unwrap();
    let counters = Counters::memory(rules, diversity);
    let clock = ManualClock::at(T0);
    let trips = Arc::new(Mutex::new(Vec::new()));
    let sink = trips.clone();
    let policy = Policy::new(
        &config,
        counters,
        Arc::new(clock.clone()),
        Box::new(move |report| sink.lock().unwrap().push(report)),
        Arc::new(PolicyMetrics::default()),
    );
    Fixture {
        policy,
        clock,
        trips,
    }
}

fn request(attributes: &[(&str, &str)]) -> Request {
    let mut bytes = Vec::new();
    for (name, value) in attributes {
        bytes.extend_from_slice(format!("{name}={value}\n").as_bytes());
    }
    bytes.push(b'\n');
    let mut reader = RequestReader::new(64 * 1024);
    reader.feed(&bytes);
    reader.next_request().unwrap().unwrap()
}

/// The request of `state` from `login` (empty: none) at `client`.
fn ask(state: &str, login: &str, client: &str, sender: &str, extra: &[(&str, &str)]) -> Request {
    let mut attributes = vec![
        ("request", "smtpd_access_policy"),
        ("protocol_state", state),
        ("protocol_name", "ESMTP"),
        ("client_address", client),
        ("sender", sender),
        ("sasl_username", login),
    ];
    attributes.extend_from_slice(extra);
    request(&attributes)
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

impl Fixture {
    fn decide(&self, request: &Request, session: &mut Session) -> Action {
        block_on(self.policy.decide(request, session))
    }

    /// One message from `login` with `recipients` recipients: the RCPT
    /// answers, then the end-of-message count if any was accepted.
    fn send(&self, login: &str, instance: &str, recipients: usize) -> Vec<Action> {
        let mut session = Session::default();
        let mut answers = Vec::new();
        let mut accepted = 0;
        for i in 0..recipients {
            let rcpt = format!("r{i}@elsewhere.test");
            let request = ask(
                "RCPT",
                login,
                "192.0.2.10",
                login,
                &[("instance", instance), ("recipient", &rcpt)],
            );
            let answer = self.decide(&request, &mut session);
            if answer == Action::Dunno {
                accepted += 1;
            }
            answers.push(answer);
        }
        if accepted > 0 {
            let count = accepted.to_string();
            let end = ask(
                "END-OF-MESSAGE",
                login,
                "192.0.2.10",
                login,
                &[("instance", instance), ("recipient_count", &count)],
            );
            assert_eq!(self.decide(&end, &mut session), Action::Dunno);
        }
        answers
    }
}

const FIVE_RECIPIENTS_A_MINUTE: &str = r#"
    [[limits.default]]
    window = "1m"
    recipients = 5
"#;

fn is_defer(action: &Action) -> bool {
    matches!(action, Action::DeferIfPermit(text) if text.contains("sending limit of 5 recipients per 1m"))
}

#[test]
fn recipients_are_counted_per_message_and_the_window_is_exact_at_its_edge() {
    let f = fixture(FIVE_RECIPIENTS_A_MINUTE);
    // A message to 3 counts 3; within one message the recipients already
    // accepted count at the next RCPT.
    assert_eq!(f.send("alice@example.com", "a1", 3), vec![Action::Dunno; 3]);
    f.clock.advance(10);
    let answers = f.send("alice@example.com", "a2", 3);
    assert_eq!(answers[..2], [Action::Dunno, Action::Dunno]);
    assert!(is_defer(&answers[2]), "{answers:?}");
    // 59 s after the first message it still counts; at 60 s it has left.
    f.clock.set(T0 + 59);
    assert!(is_defer(&f.send("alice@example.com", "a3", 1)[0]));
    f.clock.set(T0 + 60);
    assert_eq!(
        f.send("alice@example.com", "a4", 3),
        vec![Action::Dunno; 3],
        "the 3 of T0 left the window, the 2 of T0+10 stay"
    );
    assert!(is_defer(&f.send("alice@example.com", "a5", 1)[0]));
    // Other accounts have their own windows.
    assert_eq!(f.send("bob@example.com", "b1", 5), vec![Action::Dunno; 5]);
}

#[test]
fn counting_happens_at_the_configured_stage_only() {
    let f = fixture(&format!("count_at = \"data\"\n{FIVE_RECIPIENTS_A_MINUTE}"));
    let mut session = Session::default();
    let data = ask(
        "DATA",
        "alice@example.com",
        "192.0.2.10",
        "alice@example.com",
        &[("recipient_count", "5")],
    );
    assert_eq!(f.decide(&data, &mut session), Action::Dunno);
    // Counted at DATA: an END-OF-MESSAGE adds nothing.
    let end = ask(
        "END-OF-MESSAGE",
        "alice@example.com",
        "192.0.2.10",
        "alice@example.com",
        &[("recipient_count", "5")],
    );
    assert_eq!(f.decide(&end, &mut session), Action::Dunno);
    let answers = f.send("alice@example.com", "x", 1);
    assert!(is_defer(&answers[0]), "{answers:?}");
    let count = f.policy.counters().local().top(T0, 10);
    assert_eq!(count[0].windows[0].1, 5);
}

#[test]
fn over_limit_verdict_is_configurable() {
    for (name, check) in [
        (
            "hold",
            (|a: &Action| matches!(a, Action::Hold(_))) as fn(&Action) -> bool,
        ),
        ("reject", |a| matches!(a, Action::Reject(_))),
        ("defer", |a| matches!(a, Action::Defer(_))),
    ] {
        let f = fixture(&format!(
            "over_limit = \"{name}\"\n{FIVE_RECIPIENTS_A_MINUTE}"
        ));
        f.send("alice@example.com", "1", 5);
        let answer = &f.send("alice@example.com", "2", 1)[0];
        assert!(check(answer), "{name}: {answer:?}");
    }
}

#[test]
fn inbound_mail_is_never_limited_and_trusted_relays_are_keyed_by_sender_or_ip() {
    let f = fixture(&format!(
        "trusted_networks = [\"10.0.0.0/8\"]\n{FIVE_RECIPIENTS_A_MINUTE}"
    ));
    let mut session = Session::default();
    // From the internet without a login: inbound, whatever the volume.
    for i in 0..20 {
        let inbound = ask(
            "RCPT",
            "",
            "198.51.100.7",
            "news@elsewhere.test",
            &[("instance", &i.to_string())],
        );
        assert_eq!(f.decide(&inbound, &mut session), Action::Dunno);
    }
    // A web server in 10/8 relaying without a login: one key per sender.
    let relay = |sender: &str, instance: &str| {
        ask("RCPT", "", "10.1.2.3", sender, &[("instance", instance)])
    };
    for i in 0..5 {
        let mut session = Session::default();
        assert_eq!(
            f.decide(&relay("shop@example.com", &i.to_string()), &mut session),
            Action::Dunno
        );
        let end = ask(
            "END-OF-MESSAGE",
            "",
            "10.1.2.3",
            "shop@example.com",
            &[("recipient_count", "1")],
        );
        assert_eq!(f.decide(&end, &mut session), Action::Dunno);
    }
    let mut session = Session::default();
    assert!(is_defer(
        &f.decide(&relay("shop@example.com", "6"), &mut session)
    ));
    assert_eq!(
        f.decide(&relay("blog@example.com", "7"), &mut session),
        Action::Dunno
    );

    let by_ip = fixture(&format!(
        "trusted_networks = [\"10.0.0.0/8\"]\nrelay_key = \"client_address\"\n{FIVE_RECIPIENTS_A_MINUTE}"
    ));
    let end = ask(
        "END-OF-MESSAGE",
        "",
        "10.1.2.3",
        "shop@example.com",
        &[("recipient_count", "5")],
    );
    assert_eq!(by_ip.decide(&end, &mut Session::default()), Action::Dunno);
    let other_sender = ask("RCPT", "", "10.1.2.3", "blog@example.com", &[]);
    assert!(is_defer(
        &by_ip.decide(&other_sender, &mut Session::default())
    ));
}

#[test]
fn the_server_itself_is_never_limited_as_one_ip_but_its_senders_and_logins_are() {
    let by_ip = fixture(&format!(
        "trusted_networks = [\"127.0.0.0/8\", \"203.0.113.25/32\", \"10.0.0.0/8\"]\nrelay_key = \"client_address\"\n{FIVE_RECIPIENTS_A_MINUTE}"
    ));
    let by_ip = Fixture {
        policy: by_ip.policy.with_safety(Safety::new(
            vec!["203.0.113.25".parse().unwrap()],
            Vec::new(),
        )),
        ..by_ip
    };
    // The webmail and a content filter relay for many senders, and bounces
    // (no sender) through loopback: none of it counts against "127.0.0.1".
    for client in ["127.0.0.1", "::1", "203.0.113.25"] {
        for i in 0..20 {
            let sender = format!("user{i}@example.com");
            let rcpt = ask("RCPT", "", client, &sender, &[]);
            assert_eq!(
                by_ip.decide(&rcpt, &mut Session::default()),
                Action::Dunno,
                "{client}"
            );
            let end = ask(
                "END-OF-MESSAGE",
                "",
                client,
                &sender,
                &[("recipient_count", "1")],
            );
            assert_eq!(by_ip.decide(&end, &mut Session::default()), Action::Dunno);
            let bounce = ask("RCPT", "", client, "", &[]);
            assert_eq!(
                by_ip.decide(&bounce, &mut Session::default()),
                Action::Dunno
            );
        }
    }
    // One sender through the webmail is still held to its limit…
    let shop = |state: &str| {
        ask(
            state,
            "",
            "127.0.0.1",
            "shop@example.com",
            &[("recipient_count", "5")],
        )
    };
    assert_eq!(
        by_ip.decide(&shop("END-OF-MESSAGE"), &mut Session::default()),
        Action::Dunno
    );
    assert!(is_defer(
        &by_ip.decide(&shop("RCPT"), &mut Session::default())
    ));
    // …and so is an account logged in through it.
    let f = fixture(FIVE_RECIPIENTS_A_MINUTE);
    let login = |state: &str| {
        ask(
            state,
            "eva@example.com",
            "127.0.0.1",
            "eva@example.com",
            &[("recipient_count", "5")],
        )
    };
    assert_eq!(
        f.decide(&login("END-OF-MESSAGE"), &mut Session::default()),
        Action::Dunno
    );
    assert!(is_defer(&f.decide(&login("RCPT"), &mut Session::default())));
    // Another trusted host is still one client.
    let web = |sender: &str| {
        ask(
            "END-OF-MESSAGE",
            "",
            "10.1.2.3",
            sender,
            &[("recipient_count", "5")],
        )
    };
    assert_eq!(
        by_ip.decide(&web("a@example.com"), &mut Session::default()),
        Action::Dunno
    );
    let next = ask("RCPT", "", "10.1.2.3", "b@example.com", &[]);
    assert!(is_defer(&by_ip.decide(&next, &mut Session::default())));
}

/// A RCPT request of sales@example.com, as itself, from `client`.
fn sales_from(client: &str) -> Request {
    ask(
        "RCPT",
        "sales@example.com",
        client,
        "sales@example.com",
        &[],
    )
}

fn is_locked_reply(action: &Action) -> bool {
    matches!(action, Action::Reject(text) if text.contains("is locked"))
}

#[test]
fn a_forged_sender_domain_locks_the_account_once_and_for_every_stage() {
    let f = fixture("local_domains = [\"example.org\"]");
    let mut session = Session::default();
    let own = ask(
        "RCPT",
        "sales@example.com",
        "192.0.2.10",
        "sales@example.com",
        &[],
    );
    let alias = ask(
        "RCPT",
        "sales@example.com",
        "192.0.2.10",
        "sales@EXAMPLE.org",
        &[],
    );
    let bounce = ask("RCPT", "sales@example.com", "192.0.2.10", "", &[]);
    for request in [&own, &alias, &bounce] {
        assert_eq!(f.decide(request, &mut session), Action::Dunno);
    }
    assert!(f.trips.lock().unwrap().is_empty());
    let forged = ask(
        "RCPT",
        "sales@example.com",
        "192.0.2.10",
        "ceo@paypal.test",
        &[],
    );
    assert!(is_locked_reply(&f.decide(&forged, &mut session)));
    // Locked: refused at every stage, its own domain included; no new trip.
    for state in ["MAIL", "RCPT", "END-OF-MESSAGE"] {
        let request = ask(
            state,
            "SALES@example.com",
            "192.0.2.10",
            "sales@example.com",
            &[],
        );
        assert!(
            is_locked_reply(&f.decide(&request, &mut session)),
            "{state}"
        );
    }
    // Forged again, seconds later: still one lock, one trip.
    f.clock.advance(5);
    assert!(is_locked_reply(&f.decide(&forged, &mut session)));
    let trips = f.trips.lock().unwrap();
    assert_eq!(trips.len(), 1);
    assert_eq!(trips[0].account, "sales@example.com");
    assert_eq!(
        trips[0].trip,
        Trip::ForgedSender {
            domain: "paypal.test".into()
        }
    );
    assert_eq!(trips[0].client, Some("192.0.2.10".parse().unwrap()));
    // Other accounts are untouched.
    let alice = ask(
        "RCPT",
        "alice@example.com",
        "192.0.2.11",
        "alice@example.com",
        &[],
    );
    assert_eq!(f.decide(&alice, &mut session), Action::Dunno);
}

#[test]
fn a_login_without_domain_is_judged_only_against_local_domains() {
    let unknown = fixture("");
    let request = ask("RCPT", "sales", "192.0.2.10", "anyone@anywhere.test", &[]);
    assert_eq!(
        unknown.decide(&request, &mut Session::default()),
        Action::Dunno
    );
    let known = fixture("local_domains = [\"example.com\"]");
    assert!(is_locked_reply(
        &known.decide(&request, &mut Session::default())
    ));
}

#[test]
fn many_networks_lock_the_account_and_an_unlock_in_the_database_lifts_it() {
    let f = fixture("[trips]\nmax_ips = 0\nmax_networks = 2\nwindow = \"1h\"");
    let mut session = Session::default();
    // Two IPs of one /24 and a second network: fine.
    for client in ["192.0.2.10", "192.0.2.99", "198.51.100.1"] {
        assert_eq!(
            f.decide(&sales_from(client), &mut session),
            Action::Dunno,
            "{client}"
        );
    }
    // A third network within the hour trips.
    f.clock.advance(3_000);
    assert!(is_locked_reply(
        &f.decide(&sales_from("203.0.113.5"), &mut session)
    ));
    assert_eq!(
        f.trips.lock().unwrap()[0].trip,
        Trip::ManyNetworks {
            count: 3,
            window: std::time::Duration::from_secs(3_600)
        }
    );
    // The keeper confirms the lock from the database, then the admin
    // unlocks there: the next refresh lifts it.
    let local = f.policy.counters().local();
    local.set_locks(vec!["sales@example.com".to_string()], f.clock.now());
    assert!(is_locked_reply(
        &f.decide(&sales_from("192.0.2.10"), &mut session)
    ));
    local.set_locks(Vec::new(), f.clock.now());
    assert_eq!(
        f.decide(&sales_from("192.0.2.10"), &mut session),
        Action::Dunno
    );
}

#[test]
fn ips_seen_longer_ago_than_the_window_do_not_count() {
    let f = fixture("[trips]\nmax_ips = 2\nmax_networks = 0\nwindow = \"10m\"");
    let mut session = Session::default();
    assert_eq!(
        f.decide(&sales_from("192.0.2.1"), &mut session),
        Action::Dunno
    );
    assert_eq!(
        f.decide(&sales_from("192.0.2.2"), &mut session),
        Action::Dunno
    );
    f.clock.advance(600);
    // 192.0.2.1 and .2 were seen exactly 10 minutes ago: out of the window.
    assert_eq!(
        f.decide(&sales_from("192.0.2.3"), &mut session),
        Action::Dunno
    );
    assert_eq!(
        f.decide(&sales_from("192.0.2.4"), &mut session),
        Action::Dunno
    );
    assert!(is_locked_reply(
        &f.decide(&sales_from("192.0.2.5"), &mut session)
    ));
}

#[test]
fn allow_listed_accounts_are_never_limited_nor_tripped() {
    let f = fixture(
        "local_domains = [\"example.com\"]\n\
         [trips]\nmax_ips = 1\n\
         [limits]\nallow = [\"Newsletter@example.com\"]\n\
         [[limits.default]]\nwindow = \"1m\"\nrecipients = 5\n",
    );
    let mut session = Session::default();
    for i in 0..20 {
        let client = format!("192.0.2.{i}");
        let request = ask(
            "RCPT",
            "newsletter@example.com",
            &client,
            "promo@partner.test",
            &[],
        );
        assert_eq!(f.decide(&request, &mut session), Action::Dunno);
    }
    assert!(f.trips.lock().unwrap().is_empty());
}

#[test]
fn other_stages_and_requests_without_state_get_dunno() {
    let f = fixture(FIVE_RECIPIENTS_A_MINUTE);
    let mut session = Session::default();
    for state in ["CONNECT", "EHLO", "MAIL", "VRFY", "", "SOMETHING-NEW"] {
        let request = ask(
            state,
            "alice@example.com",
            "192.0.2.10",
            "alice@example.com",
            &[],
        );
        assert_eq!(f.decide(&request, &mut session), Action::Dunno, "{state}");
    }
    let bare = request(&[("request", "smtpd_access_policy")]);
    assert_eq!(f.decide(&bare, &mut session), Action::Dunno);
    assert_eq!(
        f.policy.metrics().decisions(crate::metrics::Outcome::Dunno),
        7
    );
}

#[test]
fn a_canary_recipient_locks_the_account_at_rcpt_with_one_trip() {
    let f = fixture(
        "canaries = [\"trap@example.com\"]\n\
         [limits]\nallow = [\"monitor@example.com\"]\n",
    );
    let mut session = Session::default();
    let to = |login: &str, recipient: &str| {
        ask(
            "RCPT",
            login,
            "192.0.2.10",
            "sales@example.com",
            &[("recipient", recipient)],
        )
    };
    assert_eq!(
        f.decide(
            &to("sales@example.com", "partner@partner.test"),
            &mut session
        ),
        Action::Dunno
    );
    let canary = f.decide(&to("sales@example.com", "<Trap@Example.COM>"), &mut session);
    assert!(is_locked_reply(&canary), "{canary:?}");
    let Action::Reject(text) = &canary else {
        unreachable!()
    };
    assert!(
        !text.contains("canary") && !text.contains("trap"),
        "the reply does not give the trap away: {text}"
    );
    // Locked from then on, for every recipient; the canary again trips
    // nothing more.
    for recipient in ["partner@partner.test", "trap@example.com"] {
        assert!(is_locked_reply(
            &f.decide(&to("sales@example.com", recipient), &mut session)
        ));
    }
    {
        let trips = f.trips.lock().unwrap();
        assert_eq!(trips.len(), 1);
        assert_eq!(
            trips[0].trip,
            Trip::Canary {
                recipient: "trap@example.com".into()
            }
        );
        assert_eq!(
            trips[0].trip.to_string(),
            "sent to canary address trap@example.com"
        );
    }
    // Inbound mail to the trap (no login) and an allow-listed account
    // (the admin's own check that the trap takes mail) trip nothing.
    assert_eq!(
        f.decide(
            &ask(
                "RCPT",
                "",
                "203.0.113.9",
                "x@elsewhere.test",
                &[("recipient", "trap@example.com")]
            ),
            &mut session
        ),
        Action::Dunno
    );
    assert_eq!(
        f.decide(&to("monitor@example.com", "trap@example.com"), &mut session),
        Action::Dunno
    );
    assert_eq!(f.trips.lock().unwrap().len(), 1);
}

#[test]
fn a_dry_run_refuses_nothing_locks_nothing_and_reports_each_account_once() {
    let f = fixture(
        "dry_run = true\n\
         canaries = [\"trap@example.com\"]\n\
         local_domains = [\"example.com\"]\n\
         [trips]\nmax_ips = 1\nmax_networks = 0\n\
         [[limits.default]]\nwindow = \"1m\"\nrecipients = 5\n",
    );
    let mut session = Session::default();
    let forged = ask(
        "RCPT",
        "sales@example.com",
        "192.0.2.10",
        "ceo@paypal.test",
        &[("recipient", "a@partner.test")],
    );
    let canary = ask(
        "RCPT",
        "alice@example.com",
        "192.0.2.11",
        "alice@example.com",
        &[("recipient", "trap@example.com")],
    );
    let hopping = |client: &str| {
        ask(
            "RCPT",
            "bob@example.com",
            client,
            "bob@example.com",
            &[("recipient", "a@partner.test")],
        )
    };
    // Twice each, and again after a tripped lock would have lapsed here.
    for _ in 0..2 {
        for request in [
            &forged,
            &canary,
            &hopping("192.0.2.20"),
            &hopping("198.51.100.1"),
        ] {
            assert_eq!(f.decide(request, &mut session), Action::Dunno);
        }
        f.clock.advance(120);
    }
    let trips: Vec<Trip> = f
        .trips
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.trip.clone())
        .collect();
    assert_eq!(trips.len(), 3, "{trips:?}");
    assert!(matches!(trips[0], Trip::ForgedSender { .. }));
    assert!(matches!(trips[1], Trip::Canary { .. }));
    assert!(matches!(trips[2], Trip::ManyIps { .. }));
    let local = f.policy.counters().local();
    for account in ["sales@example.com", "alice@example.com", "bob@example.com"] {
        assert!(!local.is_locked(account), "{account}");
    }
    // Over the limit: let through too.
    let answers = f.send("carol@example.com", "m1", 8);
    assert!(answers.iter().all(|a| *a == Action::Dunno), "{answers:?}");
    // A lock in the database (from before the dry run) refuses nothing.
    local.set_locks(vec!["dave@example.com".to_string()], f.clock.now());
    let dave = ask(
        "MAIL",
        "dave@example.com",
        "192.0.2.30",
        "dave@example.com",
        &[],
    );
    assert_eq!(f.decide(&dave, &mut session), Action::Dunno);
}

/// Another account's ordinary RCPT, from another IP.
fn alice_rcpt() -> Request {
    ask(
        "RCPT",
        "alice@example.com",
        "192.0.2.11",
        "alice@example.com",
        &[],
    )
}

#[test]
fn an_account_the_audit_marked_is_locked_at_its_first_message_once() {
    let f = fixture("");
    let mut session = Session::default();
    f.policy
        .counters()
        .local()
        .set_never_logs_in(["Sales@Example.com".to_owned()]);
    assert_eq!(f.decide(&alice_rcpt(), &mut session), Action::Dunno);
    assert!(is_locked_reply(
        &f.decide(&sales_from("192.0.2.10"), &mut session)
    ));
    assert!(is_locked_reply(
        &f.decide(&sales_from("192.0.2.10"), &mut session)
    ));
    let trips = f.trips.lock().unwrap();
    assert_eq!(trips.len(), 1);
    assert_eq!(trips[0].account, "sales@example.com");
    assert_eq!(trips[0].trip, Trip::NeverLogsIn);
    assert!(trips[0]
        .trip
        .to_string()
        .starts_with("first SMTP login of an account that never logs in (audit)"));
    drop(trips);
    // Unlocked (in the database), it sends: the mark was taken at the
    // first message, nothing trips again.
    f.policy.counters().local().set_locks(Vec::new(), T0 + 120);
    f.clock.advance(120);
    assert_eq!(
        f.decide(&sales_from("192.0.2.10"), &mut session),
        Action::Dunno
    );
    assert_eq!(f.trips.lock().unwrap().len(), 1);
}
