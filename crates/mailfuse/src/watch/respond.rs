//! What `watch` does when an incident trips: record it once, then act —
//! locks first (they stop the spam), then blocks, then alerts that say what
//! was done. Every action is recorded in the store; one that already
//! succeeded for the incident (before a restart) is not repeated.

use std::future::Future;
use std::net::IpAddr;

use anyhow::{Context, Result};
use mailfuse_act::command::Command;
use mailfuse_act::email::Email;
use mailfuse_act::kerio::{Change, Kerio};
use mailfuse_act::nftables::Nftables;
use mailfuse_act::postfix::Postfix;
use mailfuse_act::webhook::Webhook;
use mailfuse_act::ActError;
use mailfuse_core::Timestamp;
use mailfuse_detect::{Incident, IncidentKind};
use mailfuse_store::{ActionRecord, Block, Lock, Store, StoredIncident};
use tracing::{error, info, warn};

use crate::config::{ActionName, AllowConfig, Config};
use crate::metrics::WatchMetrics;

/// The incident being acted on.
#[derive(Clone, Copy)]
struct Case<'a> {
    key: &'a str,
    kind: IncidentKind,
    now: Timestamp,
}

/// Acts on incidents as configured.
pub struct Responder {
    dry_run: bool,
    allow: AllowConfig,
    block_secs: i64,
    act_within: i64,
    for_accounts: Vec<ActionName>,
    for_guessing: Vec<ActionName>,
    for_limits: Vec<ActionName>,
    kerio: Option<Kerio>,
    email: Option<Email>,
    webhook: Option<Webhook>,
    command: Option<Command>,
    postfix: Option<Postfix>,
    nftables: Option<Nftables>,
    /// The mail server's name, for alerts.
    host: String,
    /// Runs the actions, which are async (network); one at a time, in order.
    runtime: tokio::runtime::Runtime,
    metrics: WatchMetrics,
    /// Where `mailfuse policy` servers share their locks, if they do.
    policy_redis: Option<mailfuse_policy::config::RedisConfig>,
}

impl Responder {
    /// The actions of `config`, counting what they do in `metrics`.
    pub fn new(config: &Config, metrics: WatchMetrics) -> Result<Responder> {
        let actions = &config.actions;
        let kerio = actions
            .kerio
            .clone()
            .map(Kerio::new)
            .transpose()
            .context("actions.kerio")?;
        let email = actions
            .email
            .clone()
            .map(Email::new)
            .transpose()
            .context("actions.email")?;
        let webhook = actions
            .webhook
            .clone()
            .map(Webhook::new)
            .transpose()
            .context("actions.webhook")?;
        let command = actions
            .command
            .clone()
            .map(Command::new)
            .transpose()
            .context("actions.command")?;
        let postfix = actions
            .postfix
            .clone()
            .map(Postfix::new)
            .transpose()
            .context("actions.postfix")?;
        let nftables = actions
            .nftables
            .clone()
            .map(Nftables::new)
            .transpose()
            .context("actions.nftables")?;
        let configured: Vec<ActionName> = [
            (kerio.is_some(), ActionName::Kerio),
            (postfix.is_some(), ActionName::Postfix),
            (nftables.is_some(), ActionName::Nftables),
            (email.is_some(), ActionName::Email),
            (webhook.is_some(), ActionName::Webhook),
            (command.is_some(), ActionName::Command),
        ]
        .into_iter()
        .filter_map(|(present, name)| present.then_some(name))
        .collect();
        let host = config.watch.hostname.clone().unwrap_or_else(this_host);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Responder {
            dry_run: config.watch.dry_run,
            allow: config.allow.clone(),
            block_secs: actions.block_for,
            act_within: actions.act_within,
            for_accounts: actions
                .compromised_account
                .clone()
                .unwrap_or_else(|| configured.clone()),
            for_limits: actions.limit_exceeded.clone().unwrap_or_else(|| {
                let alerts = [ActionName::Email, ActionName::Webhook, ActionName::Command];
                configured
                    .iter()
                    .copied()
                    .filter(|a| alerts.contains(a))
                    .collect()
            }),
            for_guessing: actions.password_guessing.clone().unwrap_or(configured),
            kerio,
            email,
            webhook,
            command,
            postfix,
            nftables,
            host,
            runtime,
            policy_redis: config.policy.redis.clone(),
            metrics,
        })
    }

    fn uses(&self, kind: IncidentKind, action: ActionName) -> bool {
        match kind {
            IncidentKind::CompromisedAccount => self.for_accounts.contains(&action),
            IncidentKind::PasswordGuessing => self.for_guessing.contains(&action),
            IncidentKind::LimitExceeded => self.for_limits.contains(&action),
        }
    }

    /// Records `incident` and acts on it; `queued` are the queue ids its
    /// account submitted lately (held if the account is locked).
    pub fn respond(&mut self, incident: &Incident, queued: &[String], store: &mut Store) {
        let key = incident_key(incident);
        let stored = StoredIncident {
            key: key.clone(),
            kind: incident.kind.name().to_string(),
            subject: subject(incident),
            detected_at: incident.detected_at,
            json: serde_json::to_string(incident).unwrap_or_default(),
        };
        match store.add_incident(&stored) {
            Ok(true) => {
                self.metrics.incident(incident.kind.name());
                warn!(key, score = incident.score, "incident: {}", stored.subject);
            }
            Ok(false) => info!(
                key,
                "incident already known (restart): finishing its actions"
            ),
            Err(e) => {
                self.metrics.store_error();
                error!(key, "cannot record the incident: {e}");
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
        let locks = match incident.kind {
            IncidentKind::CompromisedAccount => true,
            // Over a limit is not proof of a hijack: lock only when asked.
            IncidentKind::LimitExceeded => [ActionName::Postfix, ActionName::Kerio]
                .into_iter()
                .any(|lock| self.uses(incident.kind, lock)),
            IncidentKind::PasswordGuessing => false,
        };
        if let (true, Some(account)) = (locks, &incident.account) {
            self.lock(store, &case, account, queued, &mut done);
        }
        // A limit is crossed from the account's usual IPs, often the
        // office's own: those are never blocked for it.
        if incident.kind != IncidentKind::LimitExceeded {
            for &ip in &incident.ips {
                self.block(store, &case, ip, &mut done);
            }
        }
        if self.dry_run {
            done.push("dry run: nothing was locked, removed or blocked".to_string());
        }
        self.alert(store, &key, incident, &done);
    }

    /// Tells the admin, with what was done.
    fn alert(&mut self, store: &mut Store, key: &str, incident: &Incident, done: &[String]) {
        let kind = incident.kind;
        let host = self.host.as_str();
        if let (true, Some(email)) = (self.uses(kind, ActionName::Email), &self.email) {
            let send = async {
                email
                    .send(incident, host, done)
                    .await
                    .map(|()| "alert mailed".to_string())
            };
            act(
                &self.runtime,
                &self.metrics,
                store,
                key,
                "email",
                "admin",
                send,
            );
        }
        if let (true, Some(webhook)) = (self.uses(kind, ActionName::Webhook), &self.webhook) {
            let post = async {
                webhook
                    .send(incident, host, done)
                    .await
                    .map(|()| "webhook called".to_string())
            };
            act(
                &self.runtime,
                &self.metrics,
                store,
                key,
                "webhook",
                "admin",
                post,
            );
        }
        if let (true, Some(command)) = (self.uses(kind, ActionName::Command), &self.command) {
            let run = async {
                command
                    .run(incident, done)
                    .await
                    .map(|()| "command ran".to_string())
            };
            act(
                &self.runtime,
                &self.metrics,
                store,
                key,
                "command",
                "admin",
                run,
            );
        }
    }

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
        if self.dry_run {
            info!(account, "dry run: would lock");
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
        let outcome = store
            .lock(&lock)
            .map(|_| format!("{account} locked by mailfuse"));
        done.extend(record(
            store,
            &self.metrics,
            key,
            "lock",
            account,
            now,
            outcome,
        ));
        if let (true, Some(kerio)) = (self.uses(kind, ActionName::Kerio), &self.kerio) {
            let disable = async {
                Ok(said(
                    kerio.disable_user(account).await?,
                    "account disabled in Kerio",
                ))
            };
            done.extend(act(
                &self.runtime,
                &self.metrics,
                store,
                key,
                "kerio.disable_user",
                account,
                disable,
            ));
            let remove = async {
                let removed = kerio.remove_queued_from(account).await?;
                Ok(format!(
                    "{removed} queued messages it submitted removed from Kerio's queue"
                ))
            };
            done.extend(act(
                &self.runtime,
                &self.metrics,
                store,
                key,
                "kerio.remove_queued",
                account,
                remove,
            ));
        }
        if let (true, Some(postfix)) = (self.uses(kind, ActionName::Postfix), &self.postfix) {
            let locked = locked_accounts(store, &self.metrics);
            let write = async {
                postfix.write_locks(&locked).await?;
                Ok(format!("{account} refused by Postfix (lock map rebuilt)"))
            };
            done.extend(act(
                &self.runtime,
                &self.metrics,
                store,
                key,
                "postfix.lock",
                account,
                write,
            ));
            if postfix.holds() {
                let hold = async {
                    let held = postfix.hold(queued).await?;
                    Ok(format!("{held} of its queued messages put on hold (postsuper -H releases, -d deletes)"))
                };
                done.extend(act(
                    &self.runtime,
                    &self.metrics,
                    store,
                    key,
                    "postfix.hold",
                    account,
                    hold,
                ));
            }
        }
    }

    /// Holds messages a locked account got in before the lock took effect.
    pub fn hold_late(&mut self, store: &mut Store, account: &str, queue_ids: &[String]) {
        let Some(postfix) = self.postfix.as_ref().filter(|p| p.holds()) else {
            return;
        };
        if self.dry_run || queue_ids.is_empty() {
            return;
        }
        let outcome = self
            .runtime
            .block_on(postfix.hold(queue_ids))
            .map(|held| format!("{held} more messages put on hold ({})", queue_ids.join(" ")));
        let now = crate::source::now();
        record(
            store,
            &self.metrics,
            "late",
            "postfix.hold",
            account,
            now,
            outcome,
        );
    }

    fn block(&mut self, store: &mut Store, case: &Case<'_>, ip: IpAddr, done: &mut Vec<String>) {
        let Case { key, kind, now } = *case;
        if self.allow.allows_ip(ip) {
            info!(%ip, "allow-listed: not blocked");
            return;
        }
        if self.dry_run {
            info!(%ip, "dry run: would block");
            return;
        }
        let block = Block {
            ip,
            since: now,
            until: now.plus(self.block_secs),
            reason: "attack".to_string(),
            incident_key: Some(key.to_string()),
        };
        let outcome = store
            .block(&block)
            .map(|_| format!("{ip} blocked until {}", block.until));
        let target = ip.to_string();
        done.extend(record(
            store,
            &self.metrics,
            key,
            "block",
            &target,
            now,
            outcome,
        ));
        if let (true, Some(kerio)) = (self.uses(kind, ActionName::Kerio), &self.kerio) {
            let description = format!("mailfuse {key}, until {}", block.until);
            let add = async {
                Ok(said(
                    kerio.block_ip(ip, &description).await?,
                    "IP added to Kerio's blocked group",
                ))
            };
            done.extend(act(
                &self.runtime,
                &self.metrics,
                store,
                key,
                "kerio.block_ip",
                &target,
                add,
            ));
        }
        if let (true, Some(nftables)) = (self.uses(kind, ActionName::Nftables), &self.nftables) {
            let secs = self.block_secs;
            let add = async {
                nftables.block(ip, secs).await?;
                Ok(format!(
                    "{ip} dropped by nftables for {}",
                    crate::config::describe_duration(secs)
                ))
            };
            done.extend(act(
                &self.runtime,
                &self.metrics,
                store,
                key,
                "nftables.block",
                &target,
                add,
            ));
        }
    }

    /// Unlocks `account` (`mailfuse unlock`, the dashboard), also where the
    /// lock was made and in the policy servers' Redis; false if it was not
    /// locked.
    pub fn unlock(&mut self, store: &mut Store, account: &str) -> Result<bool> {
        if let Some(kerio) = &self.kerio {
            let change = self.runtime.block_on(kerio.enable_user(account))?;
            info!(account, "{}", said(change, "account enabled in Kerio"));
        }
        let mut unlocked = store.unlock(account)?;
        if let Some(postfix) = &self.postfix {
            let locked = locked_accounts(store, &self.metrics);
            self.runtime.block_on(postfix.write_locks(&locked))?;
            info!(account, "removed from Postfix's lock map");
        }
        // A lock made by another mail server of a policy cluster is in
        // Redis only.
        if let Some(redis) = &self.policy_redis {
            let shared = self
                .runtime
                .block_on(mailfuse_policy::counters::unlock(redis, account))
                .context("policy.redis: cannot lift the shared lock")?;
            if shared {
                info!(account, "shared lock lifted in Redis");
            }
            unlocked |= shared;
        }
        Ok(unlocked)
    }

    /// Lifts the block of `ip` (`mailfuse unblock`, or at its expiry), also
    /// where it was made; false if it had none.
    pub fn unblock(&mut self, store: &mut Store, ip: IpAddr) -> Result<bool> {
        if let Some(kerio) = &self.kerio {
            let change = self.runtime.block_on(kerio.unblock_ip(ip))?;
            info!(%ip, "{}", said(change, "IP removed from Kerio's blocked group"));
        }
        if let Some(nftables) = &self.nftables {
            if self.runtime.block_on(nftables.unblock(ip))? {
                info!(%ip, "removed from the nftables set");
            }
        }
        Ok(store.unblock(ip)?)
    }

    /// Puts the blocks still running back into nftables: its sets are
    /// empty after a reboot, and the store remembers what they held.
    pub fn restore_blocks(&mut self, store: &mut Store, now: Timestamp) {
        let Some(nftables) = &self.nftables else {
            return;
        };
        let blocks = match store.blocks() {
            Ok(blocks) => blocks,
            Err(e) => {
                self.metrics.store_error();
                error!("cannot read blocks: {e}");
                return;
            }
        };
        for block in blocks.iter().filter(|b| b.until > now) {
            let left = block.until.as_secs() - now.as_secs();
            if let Err(e) = self.runtime.block_on(nftables.block(block.ip, left)) {
                error!(ip = %block.ip, "cannot restore the block: {e}");
            }
        }
    }

    /// Lifts the blocks whose time is up.
    pub fn expire_blocks(&mut self, store: &mut Store, now: Timestamp) {
        let expired = match store.expired_blocks(now) {
            Ok(expired) => expired,
            Err(e) => {
                self.metrics.store_error();
                error!("cannot read blocks: {e}");
                return;
            }
        };
        for block in expired {
            match self.unblock(store, block.ip) {
                Ok(_) => info!(ip = %block.ip, "block expired and lifted"),
                Err(e) => error!(ip = %block.ip, "cannot lift the block: {e}"),
            }
        }
    }
}

/// Runs `action` on `target` for the incident `key` unless it already
/// succeeded (before a restart), and records the outcome. (A future does
/// nothing until run: building it before the check costs nothing.)
fn act(
    runtime: &tokio::runtime::Runtime,
    metrics: &WatchMetrics,
    store: &mut Store,
    key: &str,
    name: &str,
    target: &str,
    action: impl Future<Output = Result<String, ActError>>,
) -> Option<String> {
    match store.action_succeeded(key, name, target) {
        Ok(true) => return None,
        Ok(false) => {}
        Err(e) => {
            metrics.store_error();
            error!(name, target, "cannot read past actions: {e}");
        }
    }
    let outcome = runtime.block_on(action);
    if let Ok(done) = &outcome {
        info!(action = name, target, "{done}");
    }
    record(
        store,
        metrics,
        key,
        name,
        target,
        crate::source::now(),
        outcome,
    )
}

/// The accounts locked now, for the lock map.
fn locked_accounts(store: &Store, metrics: &WatchMetrics) -> Vec<String> {
    match store.locks() {
        Ok(locks) => locks.into_iter().map(|l| l.account).collect(),
        Err(e) => {
            metrics.store_error();
            error!("cannot read locks: {e}");
            Vec::new()
        }
    }
}

/// What a change did, in words.
fn said(change: Change, done: &str) -> String {
    match change {
        Change::Done => done.to_string(),
        Change::AlreadyDone => format!("{done} (already)"),
    }
}

/// Records an action's outcome, logging failures; what was done, if it
/// succeeded.
fn record(
    store: &mut Store,
    metrics: &WatchMetrics,
    key: &str,
    action: &str,
    target: &str,
    at: Timestamp,
    outcome: Result<String, impl std::fmt::Display>,
) -> Option<String> {
    let (ok, outcome) = match outcome {
        Ok(done) => (true, done),
        Err(e) => {
            error!(action, target, "failed: {e}");
            (false, e.to_string())
        }
    };
    metrics.action(action, ok);
    let record = ActionRecord {
        incident_key: key.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        at,
        ok,
        outcome,
    };
    if let Err(e) = store.record_action(&record) {
        metrics.store_error();
        error!(action, target, "cannot record the action: {e}");
    }
    ok.then_some(record.outcome)
}

/// This machine's host name, for alerts.
fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "this mail server".to_string())
}

/// What an incident is about: the account, else the network or the IPs.
fn subject(incident: &Incident) -> String {
    if let Some(account) = &incident.account {
        return account.clone();
    }
    if let Some(network) = &incident.network {
        return network.to_string();
    }
    incident
        .ips
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
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
