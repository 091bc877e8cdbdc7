//! What mailfuse does when an incident trips, for `watch`, `policy`,
//! `serve`, `unlock`, `unblock` and `check-config`: record the incident
//! once, then act — locks first (they stop the spam), then the account's
//! queued mail, then blocks, then alerts that say what was done.
//!
//! [`registry`] builds the configured actions and selects them per incident
//! kind; [`journal`] runs and records each action once; [`queue`] sends
//! the alerts apart, for the daemons (`watch`, `policy`), so that a slow
//! alert never holds up the next lock.

mod journal;
mod metrics;
mod queue;
mod registry;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use mailfuse_act::capability::{alert_id, Blocking, Fault};
use mailfuse_act::ActError;
use mailfuse_core::safety::Safety;
use mailfuse_core::Timestamp;
use mailfuse_detect::{Incident, IncidentKind};
use mailfuse_store::{Block, Lock, Store, StoredIncident};
use tracing::{error, info, warn};

use crate::config::{AllowConfig, Config};
use journal::{Journal, Unwritten};
pub use metrics::RespondMetrics;
use queue::AlertQueue;
use registry::Actions;

/// The journal key of what `unlock` undid.
const UNLOCK: &str = "unlock";
/// The journal key of what `unblock` (or a block's expiry) undid.
const UNBLOCK: &str = "unblock";

/// The incident being acted on.
#[derive(Clone, Copy)]
struct Case<'a> {
    key: &'a str,
    kind: IncidentKind,
    now: Timestamp,
}

/// Acts on incidents as configured.
pub struct Responder {
    allow: AllowConfig,
    /// What is never blocked (loopback, private ranges, this server…)
    /// unless `[safety] blockable` allows it.
    safety: Safety,
    block_secs: i64,
    act_within: i64,
    actions: Arc<Actions>,
    journal: Journal,
    /// Where alerts go when a daemon sends them apart ([`Responder::queue_alerts`]);
    /// without it they are sent inline.
    queue: Option<AlertQueue>,
    /// The mail server's name, for alerts.
    host: String,
    /// Where `mailfuse policy` servers share their locks, if they do.
    policy_redis: Option<mailfuse_policy::config::RedisConfig>,
}

impl Responder {
    /// The actions of `config`, counting what they do in `metrics`.
    pub fn new(config: &Config, metrics: RespondMetrics) -> Result<Responder> {
        Responder::with_actions(config, Actions::new(&config.actions)?, metrics)
    }

    /// The responder of `config` acting with `actions` (tests give fakes).
    fn with_actions(
        config: &Config,
        actions: Actions,
        metrics: RespondMetrics,
    ) -> Result<Responder> {
        let journal = Journal::new(metrics, config.watch.dry_run)
            .context("cannot start the actions' runtime")?;
        Ok(Responder {
            allow: config.allow.clone(),
            safety: config.detect.safety.clone(),
            block_secs: config.actions.block_for,
            act_within: config.actions.act_within,
            actions: Arc::new(actions),
            journal,
            queue: None,
            host: config.watch.hostname.clone().unwrap_or_else(this_host),
            policy_redis: config.policy.redis.clone(),
        })
    }

    /// From now on, sends alerts from a queue of their own (a worker
    /// thread), persisted in `store`'s file: detection and locks never wait
    /// on an alert, and a restart sends what was pending.
    pub fn queue_alerts(&mut self, store: &mut Store) -> Result<()> {
        self.queue = Some(AlertQueue::start(
            store,
            self.actions.clone(),
            self.host.clone(),
            self.journal.metrics().clone(),
            self.journal.unwritten(),
        )?);
        Ok(())
    }

    /// This mail server's name, as alerts say it (`[watch] hostname`, else
    /// the machine's).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Records `incident` and acts on it; `queued` are the queue ids its
    /// account submitted lately (held if the account is locked).
    pub fn respond(&mut self, incident: &Incident, queued: &[String], store: &mut Store) {
        // Judged again with this server's addresses: the alerts and the
        // stored incident say which IPs are not blocked, and why.
        let mut incident = incident.clone();
        incident.note_protected(&self.safety);
        let incident = &incident;
        let key = incident_key(incident);
        let stored = StoredIncident {
            key: key.clone(),
            kind: incident.kind.name().to_string(),
            subject: subject(incident),
            detected_at: incident.detected_at,
            json: serde_json::to_string(incident).unwrap_or_default(),
        };
        let metrics = self.journal.metrics();
        match store.add_incident(&stored) {
            Ok(true) => {
                metrics.incident(incident.kind.name());
                let hosts = incident.hosts.join(",");
                warn!(
                    key,
                    score = incident.score,
                    hosts,
                    "incident: {}",
                    stored.subject
                );
            }
            Ok(false) => info!(
                key,
                "incident already known (restart): finishing its actions"
            ),
            Err(e) => {
                metrics.store_error();
                metrics.incident(incident.kind.name());
                error!(
                    key,
                    "cannot record the incident (acting on it, recorded later): {e}"
                );
                self.journal.keep(Unwritten::Incident(stored.clone()));
            }
        }
        let now = crate::source::now();
        if now.as_secs() - incident.detected_at.as_secs() > self.act_within {
            warn!(
                key,
                "detected at {}, before actions.act_within: recorded, not acted on",
                incident.detected_at
            );
            return;
        }
        let case = Case {
            key: &key,
            kind: incident.kind,
            now,
        };
        let mut done = Vec::new();
        if let (true, Some(account)) =
            (self.actions.locks_account(incident.kind), &incident.account)
        {
            self.lock(store, &case, account, queued, &mut done);
        }
        if Actions::blocks_ips(incident.kind) {
            for &ip in &incident.ips {
                self.block(store, &case, ip, &mut done);
            }
        }
        if self.journal.dry_run() {
            done.push("dry run: nothing was locked, removed or blocked".to_string());
        }
        let host = self.host.as_str();
        for (name, alert) in self.actions.with(Some(incident.kind), |a| a.alert()) {
            let id = alert_id(host, &key, name.as_str());
            match &self.queue {
                Some(queue) => {
                    if !self
                        .journal
                        .succeeded(store, &key, name.as_str(), queue::ADMIN)
                    {
                        queue.incident(store, &key, name, incident, &done);
                    }
                }
                None => {
                    let send = alert.alert(incident, host, &done, &id);
                    self.journal
                        .once(store, &key, name.as_str(), queue::ADMIN, send);
                }
            }
        }
    }

    /// Writes what the store refused while it could not be written (a full
    /// disk), once it takes writes again; how many records were written.
    pub fn write_unwritten(&self, store: &mut Store) -> usize {
        self.journal.write_unwritten(store)
    }

    /// Tells the admin of `fault`, a fault of mailfuse itself, through
    /// every configured alert (not journaled: the fault may be the store's;
    /// queued in memory when alerts are queued).
    pub fn alert_fault(&self, fault: &Fault) {
        let told = queue::told_now();
        for (name, alert) in self.actions.with(None, |a| a.alert()) {
            if let Some(queue) = &self.queue {
                queue.fault(name, fault, told);
                continue;
            }
            let name = name.as_str();
            let id = alert_id(&self.host, &queue::fault_told(fault, told), name);
            let sent = self.journal.block_on(alert.fault(fault, &self.host, &id));
            self.journal.metrics().action(name, sent.is_ok());
            match sent {
                Ok(done) => info!(action = name, fault = fault.kind, "{done}"),
                Err(e) => error!(
                    action = name,
                    fault = fault.kind,
                    "cannot tell the admin: {e}"
                ),
            }
        }
    }

    /// Locks `account` in the store and with the lock actions selected,
    /// then stops its queued mail.
    fn lock(
        &mut self,
        store: &mut Store,
        case: &Case<'_>,
        account: &str,
        queued: &[String],
        done: &mut Vec<String>,
    ) {
        let Case { key, kind, now } = *case;
        if self.allow.allows_account(account) {
            info!(account, "allow-listed: not locked");
            return;
        }
        let locks = || self.actions.with(Some(kind), |a| a.lock());
        let queues = || self.actions.with(Some(kind), |a| a.queue());
        if self.journal.dry_run() {
            let steps: Vec<&str> = std::iter::once("lock")
                .chain(locks().map(|(_, lock)| lock.journal_name()))
                .chain(queues().map(|(_, queue)| queue.journal_name()))
                .collect();
            let what = format!("would lock {account} ({})", steps.join(", "));
            self.journal.would(store, key, account, &what);
            return;
        }
        let reason = match kind {
            IncidentKind::LimitExceeded => "over its sending limit",
            _ => "sent spam",
        };
        let lock = Lock {
            account: account.to_string(),
            since: now,
            reason: reason.to_string(),
            incident_key: Some(key.to_string()),
        };
        // Once per incident, as every action: an unlock since is not undone
        // by the incident read again after a restart.
        let mut unrecorded = false;
        if !self.journal.succeeded(store, key, "lock", account) {
            let outcome: Result<String, String> = match store.lock(&lock) {
                Ok(_) => Ok(format!("{account} locked by mailfuse")),
                Err(e) => {
                    self.journal.metrics().store_error();
                    error!(
                        account,
                        "cannot record the lock (locking, recorded later): {e}"
                    );
                    self.journal.keep(Unwritten::Lock(lock));
                    unrecorded = true;
                    Ok(format!(
                        "{account} locked by mailfuse (recorded once the state can be saved)"
                    ))
                }
            };
            done.extend(self.journal.record(store, key, "lock", account, outcome));
        }
        let mut locked = self.locked_accounts(store);
        // Not in the store when it could not take the lock.
        if unrecorded {
            locked.push(account.to_string());
        }
        for (_, lock) in locks() {
            let change = lock.lock(account, &locked);
            done.extend(
                self.journal
                    .once(store, key, lock.journal_name(), account, change),
            );
        }
        for (_, queue) in queues() {
            let stop = queue.stop_queued(account, queued);
            done.extend(
                self.journal
                    .once(store, key, queue.journal_name(), account, stop),
            );
        }
    }

    /// Stops messages a locked account got in before the lock took effect.
    pub fn hold_late(&mut self, store: &mut Store, account: &str, queue_ids: &[String]) {
        if self.journal.dry_run() || queue_ids.is_empty() {
            return;
        }
        for (_, queue) in self.actions.with(None, |a| a.queue()) {
            if let Some(stop) = queue.stop_late(queue_ids) {
                self.journal
                    .every_time(store, "late", queue.journal_name(), account, stop);
            }
        }
    }

    /// Blocks `ip` in the store and with the block actions selected.
    fn block(&mut self, store: &mut Store, case: &Case<'_>, ip: IpAddr, done: &mut Vec<String>) {
        let Case { key, kind, now } = *case;
        if self.allow.allows_ip(ip) {
            info!(%ip, "allow-listed: not blocked");
            return;
        }
        let target = ip.to_string();
        let ip = match self.safety.check(ip) {
            Ok(ip) => ip,
            Err(why) => {
                let said = format!("{ip} not blocked: it is {why}");
                warn!(%ip, key, "{said}");
                self.journal.skipped(store, key, &target, &said);
                return;
            }
        };
        let blocks = || self.actions.with(Some(kind), |a| a.block());
        if self.journal.dry_run() {
            let steps: Vec<&str> = std::iter::once("block")
                .chain(blocks().map(|(_, block)| block.journal_name()))
                .collect();
            let what = format!("would block {ip} ({})", steps.join(", "));
            self.journal.would(store, key, &target, &what);
            return;
        }
        let block = Block {
            ip: ip.ip(),
            since: now,
            until: now.plus(self.block_secs),
            reason: "attack".to_string(),
            incident_key: Some(key.to_string()),
        };
        if !self.journal.succeeded(store, key, "block", &target) {
            let outcome = store
                .block(&block)
                .map(|_| format!("{ip} blocked until {}", block.until));
            done.extend(self.journal.record(store, key, "block", &target, outcome));
        }
        let duration = crate::config::describe_duration(self.block_secs);
        let blocking = Blocking {
            ip,
            secs: self.block_secs,
            duration: &duration,
            until: block.until,
            incident_key: key,
            kind: Some(kind),
        };
        for (_, blocker) in blocks() {
            let add = blocker.block(blocking);
            done.extend(
                self.journal
                    .once(store, key, blocker.journal_name(), &target, add),
            );
        }
    }

    /// Unlocks `account` (`mailfuse unlock`, the dashboard), also where the
    /// lock was made and in the policy servers' Redis, and lets go of the
    /// mail that the queue actions froze; false if it was not locked.
    pub fn unlock(&mut self, store: &mut Store, account: &str) -> Result<bool> {
        let lowered = account.to_lowercase();
        let still_locked: Vec<String> = store
            .locks()?
            .into_iter()
            .map(|l| l.account)
            .filter(|locked| *locked != lowered)
            .collect();
        for (name, lock) in self.actions.with(None, |a| a.lock()) {
            let outcome = self.journal.block_on(lock.unlock(account, &still_locked));
            self.undone(store, UNLOCK, lock.journal_name(), account, said(&outcome));
            outcome.with_context(|| format!("actions.{name}: cannot unlock {account}"))?;
        }
        for (name, queue) in self.actions.with(None, |a| a.queue()) {
            if let Some(release) = queue.release(account) {
                let outcome = self.journal.block_on(release);
                self.undone(store, UNLOCK, queue.journal_name(), account, said(&outcome));
                outcome
                    .with_context(|| format!("actions.{name}: cannot release {account}'s mail"))?;
            }
        }
        let mut unlocked = store.unlock(account)?;
        // A lock made by another mail server of a policy cluster is in
        // Redis only.
        if let Some(redis) = &self.policy_redis {
            let shared = self
                .journal
                .block_on(mailfuse_policy::counters::unlock(redis, account))
                .context("policy.redis: cannot lift the shared lock")?;
            if shared {
                info!(account, "shared lock lifted in Redis");
            }
            unlocked |= shared;
        }
        if unlocked {
            let done = format!("{account} unlocked");
            self.undone(store, UNLOCK, "lock", account, Ok(&done));
        }
        Ok(unlocked)
    }

    /// Records what undoing `action` (`exim.lock`…) on `target` did, under
    /// the journal key `key` (`unlock`, `unblock`), so that `status` and
    /// the dashboard show the undoing beside the doing.
    fn undone(
        &self,
        store: &mut Store,
        key: &str,
        action: &str,
        target: &str,
        outcome: Result<&str, String>,
    ) {
        if let Ok(done) = outcome {
            info!(target, "{done}");
        }
        let outcome = outcome.map(str::to_string);
        self.journal
            .record(store, key, &format!("undo {action}"), target, outcome);
    }

    /// Lifts the block of `ip` (`mailfuse unblock`, or at its expiry), also
    /// where it was made; false if it had none.
    pub fn unblock(&mut self, store: &mut Store, ip: IpAddr) -> Result<bool> {
        let target = ip.to_string();
        for (name, blocker) in self.actions.with(None, |a| a.block()) {
            let outcome = self.journal.block_on(blocker.unblock(ip));
            // Nothing to undo (never blocked there) is not worth a record.
            match &outcome {
                Ok(None) => {}
                Ok(Some(done)) => {
                    self.undone(store, UNBLOCK, blocker.journal_name(), &target, Ok(done));
                }
                Err(e) => {
                    self.undone(
                        store,
                        UNBLOCK,
                        blocker.journal_name(),
                        &target,
                        Err(e.to_string()),
                    );
                }
            }
            outcome.with_context(|| format!("actions.{name}: cannot unblock {ip}"))?;
        }
        let unblocked = store.unblock(ip)?;
        if unblocked {
            let done = format!("{ip} unblocked");
            self.undone(store, UNBLOCK, "block", &target, Ok(&done));
        }
        Ok(unblocked)
    }

    /// Puts the blocks still running back where a restart loses them
    /// (nftables sets are empty after a reboot; the store remembers), and
    /// lifts those the safety rules forbid (made before they existed, or
    /// before `[safety]` changed): a blocked loopback cuts the server off
    /// its own webmail and filters.
    pub fn restore_blocks(&mut self, store: &mut Store, now: Timestamp) {
        self.lift_protected_blocks(store);
        let mut forgetful = self
            .actions
            .with(None, |a| a.block())
            .filter(|(_, blocker)| blocker.forgets_on_restart())
            .peekable();
        if forgetful.peek().is_none() {
            return;
        }
        let blocks = match store.blocks() {
            Ok(blocks) => blocks,
            Err(e) => {
                self.journal.metrics().store_error();
                error!("cannot read blocks: {e}");
                return;
            }
        };
        for (_, blocker) in forgetful {
            for block in blocks.iter().filter(|b| b.until > now) {
                let Ok(ip) = self.safety.check(block.ip) else {
                    continue;
                };
                let secs = block.until.as_secs() - now.as_secs();
                let duration = crate::config::describe_duration(secs);
                let key = block.incident_key.as_deref().unwrap_or_default();
                let blocking = Blocking {
                    ip,
                    secs,
                    duration: &duration,
                    until: block.until,
                    incident_key: key,
                    kind: kind_of_key(key),
                };
                if let Err(e) = self.journal.block_on(blocker.block(blocking)) {
                    error!(ip = %block.ip, "cannot restore the block: {e}");
                }
            }
        }
    }

    /// Lifts the stored blocks of addresses the safety rules protect.
    fn lift_protected_blocks(&mut self, store: &mut Store) {
        let protected: Vec<(IpAddr, _)> = match store.blocks() {
            Ok(blocks) => blocks
                .iter()
                .filter_map(|b| Some((b.ip, self.safety.protection(b.ip)?)))
                .collect(),
            Err(e) => {
                self.journal.metrics().store_error();
                error!("cannot read blocks: {e}");
                return;
            }
        };
        for (ip, why) in protected {
            match self.unblock(store, ip) {
                Ok(_) => warn!(%ip, "block lifted: {ip} is {why}, never blocked"),
                Err(e) => error!(%ip, "cannot lift the block of a protected address: {e:#}"),
            }
        }
    }

    /// Lifts the blocks whose time is up.
    pub fn expire_blocks(&mut self, store: &mut Store, now: Timestamp) {
        let expired = match store.expired_blocks(now) {
            Ok(expired) => expired,
            Err(e) => {
                self.journal.metrics().store_error();
                error!("cannot read blocks: {e}");
                return;
            }
        };
        for block in expired {
            match self.unblock(store, block.ip) {
                Ok(_) => info!(ip = %block.ip, "block expired and lifted"),
                Err(e) => error!(ip = %block.ip, "cannot lift the block: {e:#}"),
            }
        }
    }

    /// The accounts locked now, for lock maps rewritten whole.
    fn locked_accounts(&self, store: &Store) -> Vec<String> {
        match store.locks() {
            Ok(locks) => locks.into_iter().map(|l| l.account).collect(),
            Err(e) => {
                self.journal.metrics().store_error();
                error!("cannot read locks: {e}");
                Vec::new()
            }
        }
    }
}

/// An action's outcome as the journal keeps it.
fn said(outcome: &Result<String, ActError>) -> Result<&str, String> {
    outcome.as_deref().map_err(ToString::to_string)
}

/// This machine's host name (the kernel's), for alerts, and to tell this
/// server's journal records from other hosts'.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "this mail server".to_string())
}

/// IPs an incident's subject lists; past them it names the first and
/// counts the others (a botnet's campaign has a thousand: its key, log
/// line and `status` row would be tens of kilobytes).
const SUBJECT_IPS: usize = 4;

/// What an incident is about: the account, else the network or the IPs.
fn subject(incident: &Incident) -> String {
    if let Some(account) = &incident.account {
        return account.clone();
    }
    if let Some(network) = &incident.network {
        return network.to_string();
    }
    match incident.ips.as_slice() {
        [first, others @ ..] if incident.ips.len() > SUBJECT_IPS => {
            format!("{first} and {} other IPs", others.len())
        }
        ips => ips
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The kind of the incident whose key is `key` ([`incident_key`]).
fn kind_of_key(key: &str) -> Option<IncidentKind> {
    IncidentKind::named(key.split(':').next()?)
}

/// The same incident found again (after a restart, replaying lines) gets
/// the same key: kind, subject and the time its run began.
pub fn incident_key(incident: &Incident) -> String {
    format!(
        "{}:{}:{}",
        incident.kind.name(),
        subject(incident),
        incident.first_seen
    )
}
