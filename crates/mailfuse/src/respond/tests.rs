//! The responder with fake actions: which run for which incident kind, in
//! which order, and what the journal keeps across a restart.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use mailfuse_act::capability::{
    ActFuture, Action, Alert, BlockIp, Blocking, Fault, LockAccount, QueuedMail,
};
use mailfuse_act::{ActionName, Registered};
use mailfuse_detect::{Incident, IncidentKind};
use mailfuse_store::Store;
use serde_json::json;

use super::registry::Actions;
use super::{RespondMetrics, Responder};
use crate::config::Config;

/// What the fakes did, in order.
type Calls = Arc<Mutex<Vec<String>>>;

/// An action with the capabilities it is given, noting each call.
struct Fake {
    name: &'static str,
    lock: bool,
    queue: bool,
    block: bool,
    alert: bool,
    calls: Calls,
}

impl Fake {
    fn note(&self, what: String) -> ActFuture<'_, String> {
        let calls = self.calls.clone();
        Box::pin(async move {
            calls.lock().unwrap().push(what.clone());
            Ok(what)
        })
    }
}

impl Action for Fake {
    fn lock(&self) -> Option<&dyn LockAccount> {
        self.lock.then_some(self as &dyn LockAccount)
    }
    fn queue(&self) -> Option<&dyn QueuedMail> {
        self.queue.then_some(self as &dyn QueuedMail)
    }
    fn block(&self) -> Option<&dyn BlockIp> {
        self.block.then_some(self as &dyn BlockIp)
    }
    fn alert(&self) -> Option<&dyn Alert> {
        self.alert.then_some(self as &dyn Alert)
    }
}

impl LockAccount for Fake {
    fn journal_name(&self) -> &'static str {
        self.name
    }
    fn lock<'a>(&'a self, account: &'a str, _locked: &'a [String]) -> ActFuture<'a, String> {
        self.note(format!("{} lock {account}", self.name))
    }
    fn unlock<'a>(&'a self, account: &'a str, _locked: &'a [String]) -> ActFuture<'a, String> {
        self.note(format!("{} unlock {account}", self.name))
    }
}

impl QueuedMail for Fake {
    fn journal_name(&self) -> &'static str {
        "queue"
    }
    fn stop_queued<'a>(&'a self, account: &'a str, _queued: &'a [String]) -> ActFuture<'a, String> {
        self.note(format!("{} queue {account}", self.name))
    }
    fn release<'a>(&'a self, account: &'a str) -> Option<ActFuture<'a, String>> {
        Some(self.note(format!("{} release {account}", self.name)))
    }
}

impl BlockIp for Fake {
    fn journal_name(&self) -> &'static str {
        self.name
    }
    fn block<'a>(&'a self, blocking: Blocking<'a>) -> ActFuture<'a, String> {
        self.note(format!("{} block {}", self.name, blocking.ip))
    }
    fn unblock(&self, ip: IpAddr) -> ActFuture<'_, Option<String>> {
        let said = self.note(format!("{} unblock {ip}", self.name));
        Box::pin(async move { said.await.map(Some) })
    }
}

impl Alert for Fake {
    fn alert<'a>(
        &'a self,
        _incident: &'a Incident,
        _host: &'a str,
        done: &'a [String],
        _id: &'a str,
    ) -> ActFuture<'a, String> {
        self.note(format!("{} alert after [{}]", self.name, done.join("; ")))
    }

    fn fault<'a>(
        &'a self,
        fault: &'a Fault,
        _host: &'a str,
        _id: &'a str,
    ) -> ActFuture<'a, String> {
        self.note(format!("{} fault {}", self.name, fault.kind))
    }
}

/// A lock action (`kerio`), a block action (`nftables`) and an alert
/// (`email`), registered in the order that is not the order they run in.
fn responder(config: &Config, calls: &Calls) -> Responder {
    let fake = |name, lock, block, alert| Registered {
        name: ActionName::of(name).unwrap(),
        action: Box::new(Fake {
            name,
            lock,
            queue: lock,
            block,
            alert,
            calls: calls.clone(),
        }),
    };
    let all = vec![
        fake("email", false, false, true),
        fake("nftables", false, true, false),
        fake("kerio", true, false, false),
    ];
    let actions = Actions::select(&config.actions, all);
    Responder::with_actions(config, actions, RespondMetrics::default()).unwrap()
}

fn incident(kind: IncidentKind, account: Option<&str>) -> Incident {
    let now = crate::source::now();
    serde_json::from_value(json!({
        "kind": kind, "account": account, "ips": ["192.0.2.7"],
        "first_seen": now, "last_seen": now, "detected_at": now,
        "messages": 10, "recipients": 10, "failed_recipients": 0,
        "external_recipients": 10, "failed_logins": 0, "score": 90,
        "reasons": ["a test"], "evidence": [],
    }))
    .unwrap()
}

fn taken(calls: &Calls) -> Vec<String> {
    std::mem::take(&mut *calls.lock().unwrap())
}

#[test]
fn a_hijack_locks_then_stops_the_queue_then_blocks_then_alerts() {
    let config = Config::policy_defaults();
    let calls = Calls::default();
    let mut responder = responder(&config, &calls);
    let mut store = Store::in_memory().unwrap();
    let hijack = incident(IncidentKind::CompromisedAccount, Some("sales@example.com"));
    responder.respond(&hijack, &[], &mut store);
    assert_eq!(
        taken(&calls),
        [
            "kerio lock sales@example.com",
            "kerio queue sales@example.com",
            "nftables block 192.0.2.7",
            "email alert after [sales@example.com locked by mailfuse; kerio lock sales@example.com; \
             kerio queue sales@example.com; 192.0.2.7 blocked until {until}; nftables block 192.0.2.7]"
                .replace(
                    "{until}",
                    &store.blocks().unwrap()[0].until.to_string()
                )
                .as_str(),
        ]
    );
}

#[test]
fn guessing_blocks_and_alerts_and_a_limit_only_alerts() {
    let config = Config::policy_defaults();
    let calls = Calls::default();
    let mut responder = responder(&config, &calls);
    let mut store = Store::in_memory().unwrap();
    responder.respond(
        &incident(IncidentKind::PasswordGuessing, None),
        &[],
        &mut store,
    );
    let guessing = taken(&calls);
    assert_eq!(guessing.len(), 2, "{guessing:?}");
    assert_eq!(guessing[0], "nftables block 192.0.2.7");
    assert!(guessing[1].starts_with("email alert"), "{guessing:?}");
    let over = incident(IncidentKind::LimitExceeded, Some("sales@example.com"));
    responder.respond(&over, &[], &mut store);
    assert_eq!(taken(&calls), ["email alert after []"]);
    assert!(store.locks().unwrap().is_empty());
}

/// The lower tiers only alert: no lock in the store, no lock, queue or
/// block action, whatever actions are configured.
#[test]
fn suspicious_activity_and_a_misconfigured_client_only_alert() {
    let config = Config::policy_defaults();
    let calls = Calls::default();
    let mut responder = responder(&config, &calls);
    let mut store = Store::in_memory().unwrap();
    for kind in [
        IncidentKind::SuspiciousActivity,
        IncidentKind::MisconfiguredClient,
    ] {
        let lower = incident(kind, Some("sales@example.com"));
        responder.respond(&lower, &[], &mut store);
        assert_eq!(taken(&calls), ["email alert after []"], "{kind:?}");
    }
    assert!(store.locks().unwrap().is_empty());
}

#[test]
fn a_limit_locks_when_a_lock_action_is_listed_and_never_blocks() {
    let mut config = Config::policy_defaults();
    config.actions.limit_exceeded = Some(vec![
        ActionName::of("kerio").unwrap(),
        ActionName::of("nftables").unwrap(),
    ]);
    let calls = Calls::default();
    let mut responder = responder(&config, &calls);
    let mut store = Store::in_memory().unwrap();
    let over = incident(IncidentKind::LimitExceeded, Some("sales@example.com"));
    responder.respond(&over, &[], &mut store);
    assert_eq!(
        taken(&calls),
        [
            "kerio lock sales@example.com",
            "kerio queue sales@example.com"
        ]
    );
    assert_eq!(store.locks().unwrap()[0].reason, "over its sending limit");
}

#[test]
fn an_action_done_before_a_restart_is_not_repeated() {
    let config = Config::policy_defaults();
    let calls = Calls::default();
    let mut store = Store::in_memory().unwrap();
    let hijack = incident(IncidentKind::CompromisedAccount, Some("sales@example.com"));
    responder(&config, &calls).respond(&hijack, &[], &mut store);
    assert_eq!(taken(&calls).len(), 4);
    // The same incident found again by a new process.
    responder(&config, &calls).respond(&hijack, &[], &mut store);
    assert_eq!(taken(&calls), Vec::<String>::new());
    let recorded = store.recent_actions(100).unwrap();
    let count = |name: &str| recorded.iter().filter(|a| a.action == name).count();
    assert_eq!(count("kerio"), 1);
    assert_eq!(count("email"), 1);
    assert_eq!(
        count("lock"),
        1,
        "the store's lock too is made once: an unlock since would stand"
    );
}

#[test]
fn a_dry_run_records_what_it_would_do_once_and_does_nothing() {
    let mut config = Config::policy_defaults();
    config.watch.dry_run = true;
    let calls = Calls::default();
    let mut store = Store::in_memory().unwrap();
    let hijack = incident(IncidentKind::CompromisedAccount, Some("sales@example.com"));
    for _restart in 0..2 {
        responder(&config, &calls).respond(&hijack, &[], &mut store);
    }
    assert_eq!(
        taken(&calls),
        ["email alert after [dry run: nothing was locked, removed or blocked]"]
    );
    assert!(store.locks().unwrap().is_empty());
    assert!(store.blocks().unwrap().is_empty());
    let mut would: Vec<String> = store
        .recent_actions(100)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "dry run")
        .map(|a| a.outcome)
        .collect();
    would.sort();
    assert_eq!(
        would,
        [
            "would block 192.0.2.7 (block, nftables)",
            "would lock sales@example.com (lock, kerio, queue)",
        ]
    );
}

#[test]
fn unlock_and_unblock_go_through_every_configured_action() {
    let mut config = Config::policy_defaults();
    config.actions.compromised_account = Some(vec![ActionName::of("email").unwrap()]);
    let calls = Calls::default();
    let mut responder = responder(&config, &calls);
    let mut store = Store::in_memory().unwrap();
    assert!(!responder.unlock(&mut store, "sales@example.com").unwrap());
    assert!(!responder
        .unblock(&mut store, [192, 0, 2, 7].into())
        .unwrap());
    assert_eq!(
        taken(&calls),
        [
            "kerio unlock sales@example.com",
            "kerio release sales@example.com",
            "nftables unblock 192.0.2.7"
        ]
    );
}

/// `incident` from `ips`.
fn incident_from(kind: IncidentKind, account: Option<&str>, ips: &[&str]) -> Incident {
    let mut incident = incident(kind, account);
    incident.ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
    incident
}

#[test]
fn loopback_private_and_the_servers_own_addresses_are_never_blocked_and_the_journal_says_why() {
    let mut config = Config::policy_defaults();
    config.detect.safety = mailfuse_core::safety::Safety::new(
        vec!["203.0.113.25".parse().unwrap()],
        vec!["10.9.0.0/16".parse().unwrap()],
    );
    let calls = Calls::default();
    let mut store = Store::in_memory().unwrap();
    let ips = [
        "127.0.0.1",
        "::ffff:127.0.0.1",
        "192.168.1.20",
        "203.0.113.25",
        "10.9.1.1",
        "192.0.2.7",
    ];
    for kind in [
        IncidentKind::CompromisedAccount,
        IncidentKind::PasswordGuessing,
    ] {
        let account = (kind == IncidentKind::CompromisedAccount).then_some("sales@example.com");
        responder(&config, &calls).respond(&incident_from(kind, account, &ips), &[], &mut store);
        let blocked: Vec<String> = taken(&calls)
            .into_iter()
            .filter(|call| call.starts_with("nftables block"))
            .collect();
        assert_eq!(
            blocked,
            ["nftables block 10.9.1.1", "nftables block 192.0.2.7"],
            "only the public IP and the network the admin allows"
        );
    }
    let mut stored: Vec<String> = store
        .blocks()
        .unwrap()
        .iter()
        .map(|b| b.ip.to_string())
        .collect();
    stored.sort();
    assert_eq!(stored, ["10.9.1.1", "192.0.2.7"]);
    let skipped: Vec<(String, String)> = store
        .recent_actions(100)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "skipped")
        .map(|a| (a.target, a.outcome))
        .collect();
    assert_eq!(
        skipped.len(),
        8,
        "each protected IP once per incident: {skipped:?}"
    );
    assert!(skipped.contains(&(
        "127.0.0.1".into(),
        "127.0.0.1 not blocked: it is this server (loopback: its webmail, content filter or scripts)".into()
    )));
    assert!(skipped.contains(&(
        "203.0.113.25".into(),
        "203.0.113.25 not blocked: it is one of this server's own addresses".into()
    )));
    // Found again after a restart: judged again, written once.
    let hijack = incident_from(
        IncidentKind::CompromisedAccount,
        Some("sales@example.com"),
        &ips,
    );
    responder(&config, &calls).respond(&hijack, &[], &mut store);
    let again = store.recent_actions(100).unwrap();
    assert_eq!(again.iter().filter(|a| a.action == "skipped").count(), 8);
}

#[test]
fn a_dry_run_would_not_block_loopback_either() {
    let mut config = Config::policy_defaults();
    config.watch.dry_run = true;
    let calls = Calls::default();
    let mut store = Store::in_memory().unwrap();
    let hijack = incident_from(
        IncidentKind::CompromisedAccount,
        Some("eva@example.com"),
        &["127.0.0.1"],
    );
    responder(&config, &calls).respond(&hijack, &[], &mut store);
    let outcomes: Vec<String> = store
        .recent_actions(100)
        .unwrap()
        .into_iter()
        .map(|a| format!("{}: {}", a.action, a.outcome))
        .collect();
    assert!(
        !outcomes.iter().any(|o| o.contains("would block")),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| o.starts_with("skipped: 127.0.0.1 not blocked")),
        "{outcomes:?}"
    );
}

#[test]
fn a_stored_block_of_loopback_is_lifted_at_start_and_never_restored() {
    let config = Config::policy_defaults();
    let calls = Calls::default();
    let mut store = Store::in_memory().unwrap();
    let now = crate::source::now();
    for ip in ["127.0.0.1", "192.0.2.7"] {
        store
            .block(&mailfuse_store::Block {
                ip: ip.parse().unwrap(),
                since: now,
                until: now.plus(3600),
                reason: "attack".into(),
                incident_key: None,
            })
            .unwrap();
    }
    responder(&config, &calls).restore_blocks(&mut store, now);
    assert_eq!(taken(&calls), ["nftables unblock 127.0.0.1"]);
    let left: Vec<IpAddr> = store.blocks().unwrap().iter().map(|b| b.ip).collect();
    assert_eq!(left, [IpAddr::from([192, 0, 2, 7])]);
}

/// A restored block's kind (CrowdSec's scenario) comes from its key.
#[test]
fn a_blocks_kind_is_read_back_from_its_incident_key() {
    for kind in IncidentKind::ALL {
        let incident = incident_from(kind, None, &["192.0.2.1"]);
        assert_eq!(
            super::kind_of_key(&super::incident_key(&incident)),
            Some(kind)
        );
    }
    assert_eq!(super::kind_of_key(""), None);
    assert_eq!(super::kind_of_key("attack:192.0.2.1:0"), None);
}

#[test]
fn a_campaigns_key_names_its_first_ip_and_counts_the_others() {
    let few = incident_from(
        IncidentKind::PasswordGuessing,
        None,
        &["192.0.2.1", "192.0.2.2"],
    );
    assert!(super::incident_key(&few).starts_with("password_guessing:192.0.2.1,192.0.2.2:"));
    let ips: Vec<String> = (0..1_000)
        .map(|i| format!("198.51.{}.{}", i / 250, i % 250))
        .collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    let campaign = incident_from(IncidentKind::PasswordGuessing, None, &ips);
    let key = super::incident_key(&campaign);
    assert!(
        key.starts_with("password_guessing:198.51.0.0 and 999 other IPs:"),
        "{key}"
    );
}

/// The real Exim and Dovecot actions (Exim's lock list and spool in `dir`,
/// a stand-in `doveadm` noting each call in `dir/kicked`) beside the fake
/// alert, which notes what it was told was done.
fn mail_servers(config: &Config, dir: &std::path::Path, calls: &Calls) -> Responder {
    use mailfuse_act::dovecot::{Dovecot, DovecotConfig};
    use mailfuse_act::exim::{Exim, EximConfig, QueuedMessages};
    let exim = Exim::new(EximConfig {
        exim: dir.join("no-exim-is-run"),
        config_file: None,
        spool_directory: Some(dir.join("spool")),
        lock_list: dir.join("locked"),
        queued: QueuedMessages::Freeze,
    })
    .unwrap();
    let dovecot = Dovecot::new(DovecotConfig {
        doveadm: dir.join("doveadm"),
        config_file: None,
    })
    .unwrap();
    let all = vec![
        Registered {
            name: ActionName::of("exim").unwrap(),
            action: Box::new(exim),
        },
        Registered {
            name: ActionName::of("dovecot").unwrap(),
            action: Box::new(dovecot),
        },
        Registered {
            name: ActionName::of("email").unwrap(),
            action: Box::new(Fake {
                name: "email",
                lock: false,
                queue: false,
                block: false,
                alert: true,
                calls: calls.clone(),
            }),
        },
    ];
    let actions = Actions::select(&config.actions, all);
    Responder::with_actions(config, actions, RespondMetrics::default()).unwrap()
}

/// The journal's records of `target`: (key, action, outcome).
fn records(store: &Store, target: &str) -> Vec<(String, String, String)> {
    let mut records: Vec<_> = store
        .recent_actions(100)
        .unwrap()
        .into_iter()
        .filter(|a| a.target == target && a.ok)
        .map(|a| (a.incident_key, a.action, a.outcome))
        .collect();
    records.sort();
    records
}

#[test]
fn exim_and_dovecot_are_recorded_alerted_once_undone_and_honour_allow_lists_and_dry_runs() {
    let dir = tempfile::tempdir().unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    std::fs::write(dir.path().join("locked"), "").unwrap();
    std::fs::create_dir_all(dir.path().join("spool/input")).unwrap();
    let doveadm = dir.path().join("doveadm");
    std::fs::write(
        &doveadm,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}/kicked\n",
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &doveadm,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut config = Config::policy_defaults();
    config.allow.accounts = vec!["boss@example.com".to_string()];
    let calls = Calls::default();
    let mut store = Store::in_memory().unwrap();

    // Locked in Exim and Dovecot, once across a restart, and said so once.
    let hijack = incident(IncidentKind::CompromisedAccount, Some("sales@example.com"));
    for _restart in 0..2 {
        mail_servers(&config, dir.path(), &calls).respond(&hijack, &[], &mut store);
    }
    assert!(read("locked").lines().any(|l| l == "sales@example.com"));
    assert_eq!(read("kicked"), "kick sales@example.com\n");
    let alerts = taken(&calls);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    for done in [
        "sales@example.com locked by mailfuse",
        "refused by Exim",
        "0 of its queued messages frozen",
        "its Dovecot sessions ended",
    ] {
        assert!(alerts[0].contains(done), "{done:?} in {alerts:?}");
    }
    let done: Vec<String> = records(&store, "sales@example.com")
        .into_iter()
        .map(|(_, action, _)| action)
        .collect();
    assert_eq!(done, ["dovecot.kick", "exim.freeze", "exim.lock", "lock"]);

    // Allow-listed: neither Exim nor Dovecot hears of it; the alert goes.
    let boss = incident(IncidentKind::CompromisedAccount, Some("Boss@example.com"));
    let mut responder = mail_servers(&config, dir.path(), &calls);
    responder.respond(&boss, &[], &mut store);
    assert!(!read("locked").to_lowercase().contains("boss"));
    assert_eq!(read("kicked"), "kick sales@example.com\n");
    assert_eq!(taken(&calls).len(), 1);

    // Unlocked: off Exim's list, and the undoing is recorded beside.
    assert!(responder.unlock(&mut store, "sales@example.com").unwrap());
    assert!(!read("locked").contains("sales@example.com"));
    let undone: Vec<String> = records(&store, "sales@example.com")
        .into_iter()
        .filter(|(key, _, _)| key == "unlock")
        .map(|(_, action, _)| action)
        .collect();
    assert_eq!(
        undone,
        [
            "undo dovecot.kick",
            "undo exim.freeze",
            "undo exim.lock",
            "undo lock"
        ]
    );
    // The same incident read again (a restart catching up) does not undo
    // the unlock.
    mail_servers(&config, dir.path(), &calls).respond(&hijack, &[], &mut store);
    assert!(store.locks().unwrap().is_empty());
    assert!(!read("locked").contains("sales@example.com"));
    assert_eq!(read("kicked"), "kick sales@example.com\n");

    // A dry run names what Exim and Dovecot would do, and does nothing.
    config.watch.dry_run = true;
    let other = incident(IncidentKind::CompromisedAccount, Some("other@example.com"));
    mail_servers(&config, dir.path(), &calls).respond(&other, &[], &mut store);
    assert!(!read("locked").contains("other@example.com"));
    assert_eq!(read("kicked"), "kick sales@example.com\n");
    let would: Vec<String> = records(&store, "other@example.com")
        .into_iter()
        .map(|(_, _, outcome)| outcome)
        .collect();
    assert_eq!(
        would,
        ["would lock other@example.com (lock, exim.lock, dovecot.kick, exim.freeze)"]
    );
}

/// With the queue, the lock is done when `respond` returns and the alert
/// follows from the worker; after a restart the incident found again is
/// not alerted twice, and an alert left pending is sent by the next start.
#[test]
fn queued_alerts_follow_the_lock_once_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let config = Config::policy_defaults();
    let calls = Calls::default();
    let hijack = incident(IncidentKind::CompromisedAccount, Some("sales@example.com"));
    let mut store = Store::open(&path).unwrap();
    let mut first = responder(&config, &calls);
    first.queue_alerts(&mut store).unwrap();
    first.respond(&hijack, &[], &mut store);
    assert!(!store.locks().unwrap().is_empty(), "locked inline");
    drop(first); // sends what is due before it stops
    let sent = |calls: &Calls| {
        taken(calls)
            .iter()
            .filter(|c| c.starts_with("email alert"))
            .count()
    };
    assert_eq!(sent(&calls), 1);
    assert!(store.pending_alerts().unwrap().is_empty());

    // Found again after a restart: nothing sent twice.
    let mut again = responder(&config, &calls);
    again.queue_alerts(&mut store).unwrap();
    again.respond(&hijack, &[], &mut store);
    drop(again);
    assert_eq!(sent(&calls), 0);

    // An alert pending when the process died is sent at the next start.
    let other = incident(IncidentKind::PasswordGuessing, None);
    let key = super::incident_key(&other);
    let payload = json!({ "incident": other, "done": [] }).to_string();
    store
        .queue_alert(&key, "email", crate::source::now(), &payload)
        .unwrap();
    let mut restarted = responder(&config, &calls);
    restarted.queue_alerts(&mut store).unwrap();
    drop(restarted);
    assert_eq!(sent(&calls), 1);
    assert!(store.action_succeeded(&key, "email", "admin").unwrap());
    assert!(store.pending_alerts().unwrap().is_empty());
}
