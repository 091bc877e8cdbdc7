//! From one request to one action: whom the request counts against, then
//! locks, trips and limits at RCPT, the count when the message is in.
//!
//! An account `mailfuse audit --save` found nobody logs into is locked at
//! its first RCPT: that someone sends as it is the evidence.
//!
//! Requests of other stages get `DUNNO`, except that a locked account is
//! refused at every stage it is asked about. Mail without a login from
//! outside `trusted_networks` is inbound mail: never limited.
//!
//! In a dry run (`[watch] dry_run`) every refusal is `DUNNO` and nothing is
//! locked; each trip is still reported, once per account and run, for the
//! responder to record what it would have done.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mailfuse_core::canary::Canaries;
use mailfuse_core::net::Cidr;
use mailfuse_core::safety::Safety;
use mailfuse_core::text::escape_invalid;
use tracing::{error, warn};

use crate::clock::Clock;
use crate::config::{CountAt, OnError, OverLimit, PolicyConfig, RelayKey};
use crate::counters::{Answer, Ask, Counters, Trip};
use crate::metrics::{Outcome, PolicyMetrics};
use crate::protocol::{Action, ProtocolState, Request};
use mailfuse_limits::{normalize, Limit};

/// A lock tripped by a request, for the caller to record and alert about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TripReport {
    /// The locked account: the request's SASL login (`sasl_username`).
    pub account: String,
    /// What gave the hijack away; its words are the incident's reason.
    pub trip: Trip,
    /// The request's `client_address`: the incident's IP.
    pub client: Option<IpAddr>,
    /// The envelope sender, lossily decoded.
    pub sender: String,
    /// When, in the policy clock's Unix seconds: the incident's time.
    pub at: u64,
}

/// What one connection remembers between requests: the recipients already
/// accepted for the message in progress, so a recipient limit is checked
/// with them.
#[derive(Debug, Default)]
pub struct Session {
    instance: Vec<u8>,
    accepted: u64,
}

impl Session {
    /// The recipients accepted so far for the message `instance`.
    fn accepted_for(&mut self, instance: &[u8]) -> u64 {
        if self.instance != instance {
            self.instance.clear();
            self.instance.extend_from_slice(instance);
            self.accepted = 0;
        }
        self.accepted
    }

    fn reset(&mut self) {
        self.instance.clear();
        self.accepted = 0;
    }
}

/// The settings a decision reads.
struct Settings {
    over_limit: OverLimit,
    count_at: CountAt,
    on_error: OnError,
    trusted_networks: Vec<Cidr>,
    relay_key: RelayKey,
    local_domains: Vec<String>,
    forged_sender: bool,
    canaries: Canaries,
    dry_run: bool,
    /// Which clients are this server (loopback, its own addresses): its
    /// webmail and content filters relay for everyone, so they are never
    /// limited as one client.
    safety: Safety,
}

/// Decides requests; shared by every connection.
pub struct Policy {
    settings: Settings,
    counters: Counters,
    clock: Arc<dyn Clock>,
    on_trip: Box<dyn Fn(TripReport) + Send + Sync>,
    metrics: Arc<PolicyMetrics>,
    /// Keys logged as over a limit → when.
    warned: Mutex<HashMap<String, u64>>,
    /// In a dry run, the accounts whose trip was reported (lower-cased):
    /// nothing locks them, so they would trip, and alert, at every request.
    reported: Mutex<HashSet<String>>,
}

/// Accounts remembered as reported in a dry run at most; past it the list
/// starts afresh (an account may then be reported once more).
const MAX_REPORTED: usize = 100_000;

/// How often an account over its limit is logged.
const WARN_EVERY_SECS: u64 = 60;

/// Whom a request counts against.
struct Subject<'a> {
    key: Cow<'a, str>,
    /// The login, when there is one (then also the key).
    account: Option<Cow<'a, str>>,
}

impl Policy {
    /// Decides with `config`'s settings (`over_limit`, `count_at`,
    /// `on_error`, `trusted_networks`, `relay_key`, `local_domains`,
    /// `trips.forged_sender`, `canaries`, `dry_run`) on `counters` (made
    /// with the same `dry_run`). `on_trip` gets each lock a
    /// request trips, once, for the caller to record the incident and run
    /// the actions; it runs on the request's task, so it must not block.
    pub fn new(
        config: &PolicyConfig,
        counters: Counters,
        clock: Arc<dyn Clock>,
        on_trip: Box<dyn Fn(TripReport) + Send + Sync>,
        metrics: Arc<PolicyMetrics>,
    ) -> Self {
        let settings = Settings {
            over_limit: config.over_limit,
            count_at: config.count_at,
            on_error: config.on_error,
            trusted_networks: config.trusted_networks.clone(),
            relay_key: config.relay_key,
            local_domains: config
                .local_domains
                .iter()
                .map(|domain| domain.trim().to_ascii_lowercase())
                .collect(),
            forged_sender: config.trips.forged_sender,
            canaries: config.canaries.clone(),
            dry_run: config.dry_run,
            safety: Safety::default(),
        };
        Policy {
            settings,
            counters,
            clock,
            on_trip,
            metrics,
            warned: Mutex::new(HashMap::new()),
            reported: Mutex::new(HashSet::new()),
        }
    }

    /// Knows this server's own addresses from `safety` (loopback is known
    /// without it).
    pub fn with_safety(mut self, safety: Safety) -> Self {
        self.settings.safety = safety;
        self
    }

    /// The store, for the binary's keeper thread: it saves the local
    /// counts, publishes the top senders and refreshes the locks from the
    /// state database.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The metrics the decisions are counted in, shared with the server
    /// (connections, protocol errors) and the keeper (store errors).
    pub fn metrics(&self) -> &PolicyMetrics {
        &self.metrics
    }

    /// The action for `request`, counting it when the message is in.
    pub async fn decide(&self, request: &Request, session: &mut Session) -> Action {
        let started = Instant::now();
        let (action, outcome) = self.answer(request, session).await;
        self.metrics.observe(outcome, started.elapsed());
        action
    }

    async fn answer(&self, request: &Request, session: &mut Session) -> (Action, Outcome) {
        let Some(subject) = self.subject(request) else {
            return (Action::Dunno, Outcome::Dunno);
        };
        let state = request.protocol_state();
        let counted_here = matches!(
            (state, self.settings.count_at),
            (ProtocolState::EndOfMessage, CountAt::EndOfMessage)
                | (ProtocolState::Data, CountAt::Data)
        );
        if state == ProtocolState::Rcpt {
            return self.at_rcpt(request, session, &subject).await;
        }
        if let Some(account) = &subject.account {
            if self.counters.local().is_locked(account) {
                return (self.locked(account), Outcome::Locked);
            }
        }
        if !counted_here {
            return (Action::Dunno, Outcome::Dunno);
        }
        session.reset();
        let recipients = u64::from(request.recipient_count().max(1));
        let now = self.clock.now();
        match self.counters.record(&subject.key, now, 1, recipients).await {
            Ok(()) => (Action::Dunno, Outcome::Dunno),
            Err(e) => {
                error!(key = %subject.key, "cannot count the message: {e}");
                // The message is in either way: the count is what was lost.
                (Action::Dunno, Outcome::Error)
            }
        }
    }

    async fn at_rcpt(
        &self,
        request: &Request,
        session: &mut Session,
        subject: &Subject<'_>,
    ) -> (Action, Outcome) {
        let now = self.clock.now();
        let account = subject.account.as_deref();
        if let Some(account) = account {
            if let Some(trip) = self.instant_trip(request, account) {
                // A locked account trips nothing more (one lock, one
                // incident, one alert).
                if self.counters.local().is_locked(account) {
                    return (self.locked(account), Outcome::Locked);
                }
                return self.trip(request, account, now, trip).await;
            }
            let local = self.counters.local();
            if !local.is_locked(account)
                && !local.is_allowed(account)
                && local.take_never_logs_in(account)
            {
                return self.trip(request, account, now, Trip::NeverLogsIn).await;
            }
        }
        let accepted = session.accepted_for(request.instance().unwrap_or_default());
        let ask = Ask {
            key: &subject.key,
            account,
            client: request.client_address(),
            now,
            messages: 1,
            recipients: accepted + 1,
        };
        match self.counters.check(&ask).await {
            Ok(Answer::Allowed) => {
                session.accepted += 1;
                (Action::Dunno, Outcome::Dunno)
            }
            Ok(Answer::Over { limit, .. }) => {
                if self.first_over(&subject.key, now) {
                    let dry = if self.settings.dry_run {
                        " (dry run: let through)"
                    } else {
                        ""
                    };
                    warn!(key = %subject.key, "over its limit of {}{dry}", limit.per());
                }
                (self.over_limit(&subject.key, &limit), Outcome::OverLimit)
            }
            Ok(Answer::Locked) => (
                self.locked(account.unwrap_or(&subject.key)),
                Outcome::Locked,
            ),
            Ok(Answer::Tripped(trip)) => {
                let account = account.unwrap_or(&subject.key);
                self.report(request, account, now, trip);
                (self.locked(account), Outcome::Tripped)
            }
            Err(e) => {
                error!(key = %subject.key, "cannot decide: {e}");
                (self.on_error(), Outcome::Error)
            }
        }
    }

    /// Locks `account` for `trip` (not in a dry run) and says so.
    async fn trip(
        &self,
        request: &Request,
        account: &str,
        now: u64,
        trip: Trip,
    ) -> (Action, Outcome) {
        if !self.settings.dry_run {
            if let Err(e) = self.counters.lock(account, now).await {
                error!(account, "cannot share the lock: {e}");
                self.counters.local().lock(account, now);
            }
        }
        self.report(request, account, now, trip);
        (self.locked(account), Outcome::Tripped)
    }

    /// Hands the trip to the caller; in a dry run only an account's first.
    fn report(&self, request: &Request, account: &str, now: u64, trip: Trip) {
        if self.settings.dry_run {
            let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
            if reported.len() >= MAX_REPORTED {
                reported.clear();
            }
            if !reported.insert(normalize(account).into_owned()) {
                return;
            }
            warn!(account, "dry run: would lock: {trip}");
        } else {
            warn!(account, "locked: {trip}");
        }
        (self.on_trip)(TripReport {
            account: account.to_string(),
            trip,
            client: request.client_address(),
            sender: String::from_utf8_lossy(request.sender().unwrap_or_default()).into_owned(),
            at: now,
        });
    }

    /// The login, else (from a trusted network) the sender or client.
    /// Bytes that are not UTF-8 are kept as `\xNN`, so distinct names stay
    /// distinct; a login without `@` is taken as one at the domain when
    /// `local_domains` names exactly one (with several, it could be anyone's
    /// and stays as it is).
    fn subject<'a>(&self, request: &'a Request) -> Option<Subject<'a>> {
        if let Some(login) = request.sasl_username() {
            let mut login = escape_invalid(login);
            if let [domain] = &self.settings.local_domains[..] {
                let local = normalize(&login);
                if !local.is_empty() && !local.contains('@') {
                    login = Cow::Owned(format!("{local}@{domain}"));
                }
            }
            return Some(Subject {
                key: login.clone(),
                account: Some(login),
            });
        }
        let client = request.client_address()?;
        if !self
            .settings
            .trusted_networks
            .iter()
            .any(|network| network.contains(client))
        {
            return None;
        }
        let sender = request.sender().filter(|sender| !sender.is_empty());
        // The server itself (its webmail, a content filter re-injecting)
        // relays for everyone: limited per sender, never as one IP that
        // would lock them all out.
        let this_server = self.settings.safety.is_this_server(client);
        let key = match (self.settings.relay_key, sender) {
            (RelayKey::Sender, Some(sender)) => escape_invalid(sender),
            (RelayKey::ClientAddress, Some(sender)) if this_server => escape_invalid(sender),
            _ if this_server => return None,
            _ => Cow::Owned(client.to_string()),
        };
        Some(Subject { key, account: None })
    }

    /// What locks `account` at once on this request, whatever the
    /// counts: a canary recipient (proof), then a forged sender. Never for
    /// an allow-listed account, as nothing else locks one.
    fn instant_trip(&self, request: &Request, account: &str) -> Option<Trip> {
        let canary = request
            .recipient()
            .and_then(|recipient| self.settings.canaries.matching(recipient));
        let trip = match canary {
            Some(canary) => Trip::Canary {
                recipient: canary.to_string(),
            },
            None => Trip::ForgedSender {
                domain: self.forged_domain(request, account)?,
            },
        };
        (!self.counters.local().is_allowed(account)).then_some(trip)
    }

    /// The sender's domain when it is neither the login's nor a local one;
    /// `None` when there is nothing to compare (a bounce, no domains known).
    fn forged_domain(&self, request: &Request, account: &str) -> Option<String> {
        if !self.settings.forged_sender {
            return None;
        }
        let sender = request.sender()?;
        let at = memchr::memrchr(b'@', sender)?;
        let domain = String::from_utf8_lossy(sender.get(at + 1..)?).to_ascii_lowercase();
        let own = account
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_ascii_lowercase());
        if own.is_none() && self.settings.local_domains.is_empty() {
            return None;
        }
        let known = own.as_deref() == Some(domain.as_str())
            || self.settings.local_domains.contains(&domain);
        (!known).then_some(domain)
    }

    /// Whether `key` went over a limit for the first time in a minute: a
    /// spammer is refused thousands of times, the log says it once.
    fn first_over(&self, key: &str, now: u64) -> bool {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.len() > 10_000 {
            warned.retain(|_, at| now.saturating_sub(*at) < WARN_EVERY_SECS);
        }
        match warned.get_mut(key) {
            Some(at) if now.saturating_sub(*at) < WARN_EVERY_SECS => false,
            Some(at) => {
                *at = now;
                true
            }
            None => {
                warned.insert(key.to_string(), now);
                true
            }
        }
    }

    fn over_limit(&self, key: &str, limit: &Limit) -> Action {
        if self.settings.dry_run {
            return Action::Dunno;
        }
        let reached = format!(
            "mailfuse: {key} reached its sending limit of {}",
            limit.per()
        );
        let later = || format!("{reached}, try again later");
        match self.settings.over_limit {
            OverLimit::DeferIfPermit => Action::DeferIfPermit(later()),
            OverLimit::Defer => Action::Defer(later()),
            // Accepted, for the postmaster to release or delete.
            OverLimit::Hold => Action::Hold(format!("{reached}, held for review")),
            OverLimit::Reject => Action::Reject(reached),
        }
    }

    /// The refusal of a locked account (`DUNNO` in a dry run). A canary's
    /// trip says no more: the trap stays a trap.
    fn locked(&self, account: &str) -> Action {
        if self.settings.dry_run {
            return Action::Dunno;
        }
        Action::Reject(format!(
            "mailfuse: {account} is locked after suspicious sending, contact your postmaster"
        ))
    }

    fn on_error(&self) -> Action {
        match self.settings.on_error {
            OnError::Dunno => Action::Dunno,
            OnError::Defer => Action::Defer("mailfuse: temporary policy failure".to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
