//! The responder with fake actions: which run for which incident kind, in
//! which order, and what the journal keeps across a restart.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use mailfuse_act::capability::{
    ActFuture, Action, Alert, BlockIp, Blocking, LockAccount, QueuedMail,
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
    ) -> ActFuture<'a, String> {
        self.note(format!("{} alert after [{}]", self.name, done.join("; ")))
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
    assert_eq!(count("lock"), 2, "the store's lock is recorded each time");
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
            "nftables unblock 192.0.2.7"
        ]
    );
}
