//! Events in, incidents out.
//!
//! [`Detector`] is the one judgement shared by `scan` (history), `watch`
//! (live) and, later, `policy`: feed it events in time order and it keeps
//! per-message, per-account and per-IP state in bounded memory. It reads no
//! file and no clock: time is the events' own, so the same events in the same
//! order always give the same incidents.
//!
//! - [`account_id`] is the id every detector knows an account by;
//! - [`correlate`] joins the lines of a message by queue id;
//! - [`compromise`] keeps the table of accounts and scores each account's
//!   traffic per sending IP (`compromised_account`);
//! - [`summary`] makes the report's table of accounts;
//! - [`guessing`] counts failed logins per IP and per network
//!   (`password_guessing`);
//! - [`limits`] holds each account to the admin's outbound limits
//!   (`limit_exceeded`), counted by `mailfuse-limits`, as `policy` counts;
//! - [`window`] holds the sliding windows they share;
//! - [`geo`] places IPs with the admin's GeoIP databases, when there are
//!   any (a new country or network for an account, impossible travel);
//! - [`hourly`] keeps hour-by-hour series for the report's charts (`scan`
//!   only);
//! - [`sends`] notes each message, recipient and failure as it counts, for
//!   `simulate`'s replay of sending limits.

pub mod account_id;
pub mod audit;
pub mod compromise;
pub mod correlate;
mod distinct;
pub mod geo;
pub mod guessing;
pub mod hourly;
pub mod incident;
pub mod limits;
pub mod local_domains;
mod packed;
pub mod sends;
pub mod summary;
pub mod window;

use std::net::{IpAddr, Ipv4Addr};

use mailfuse_core::canary::Canaries;
use mailfuse_core::rows::{self, RowChange, RowDictionary, RowsOf};
use mailfuse_core::safety::Safety;
use mailfuse_core::{Client, DeliveryStatus, Event, Timestamp};
use serde::{Deserialize, Serialize};

pub use compromise::{CompromiseConfig, Counts};
pub use geo::{GeoConfig, GeoError, GeoLookup};
pub use guessing::{Forgotten, GuessingConfig};
pub use hourly::Hourly;
pub use incident::{Confidence, GuessingPattern, Incident, IncidentKind, ProtectedIp};
pub use local_domains::LocalDomain;
pub use mailfuse_limits::{LimitRules, LimitsConfig, Usage};
pub use summary::{AccountRows, AccountSummary};

use account_id::AccountId;
use compromise::Accounts;
use correlate::{Lifetimes, MessageTable, RecipientChange};
use guessing::{Guessing, Success};
use hourly::HourlyCollector;
use limits::Limits;
use sends::{Send, SendKind, SendLog};

/// Every threshold of the detectors.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Thresholds of the `compromised_account` detector (`[detect.compromise]`):
    /// local domains, learning period, score threshold, minimum recipients.
    pub compromise: CompromiseConfig,
    /// Thresholds of the `password_guessing` detector (`[detect.guessing]`):
    /// failed logins per IP per hour, per network per day.
    pub guessing: GuessingConfig,
    /// The GeoIP databases (`[detect.geoip]`), none by default: with them,
    /// a new country or network for an account and impossible travel add
    /// to a stream's score. Opened by the binary ([`GeoConfig::open`]).
    pub geoip: GeoConfig,
    /// Outbound limits per account (none by default): the top-level
    /// `[limits]` section, which `policy` enforces too.
    #[serde(skip)]
    pub limits: LimitRules,
    /// Which addresses are this server's and which the admin allows to be
    /// blocked (the `[safety]` section, with the host's interfaces for
    /// `watch`): mail an account submits from the server itself is
    /// attributed to its webmail login, and incidents say which IPs must
    /// not be blocked.
    #[serde(skip)]
    pub safety: Safety,
    /// The canary recipients (the `[canary]` section): an account's
    /// counted message to one is a `compromised_account` at once.
    #[serde(skip)]
    pub canaries: Canaries,
    /// Also count each account's messages over the last hour when no
    /// limit is set, for [`Detector::top_senders`]: `watch` sets it for its
    /// dashboard (not a setting of the file). Part of the configuration so
    /// that a restored state keeps those counts.
    #[serde(skip)]
    pub count_senders: bool,
    /// Seconds a message stays open for its delivery lines.
    pub message_ttl_secs: i64,
    /// Seconds a message whose recipients all have their final fate stays
    /// open for more delivery lines (Kerio names only one recipient in its
    /// `Recv:` line, so settled is not always finished).
    pub settled_grace_secs: i64,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            compromise: CompromiseConfig::default(),
            guessing: GuessingConfig::default(),
            geoip: GeoConfig::default(),
            limits: LimitRules::default(),
            safety: Safety::default(),
            canaries: Canaries::default(),
            count_senders: false,
            message_ttl_secs: 2 * 24 * 3600,
            settled_grace_secs: 3600,
        }
    }
}

/// A snapshot that could not be written or read back (a bug, or a stored
/// state from an incompatible version).
#[derive(Debug, thiserror::Error)]
#[error("detector state: {0}")]
pub struct SnapshotError(String);

/// What changed in a detector since its last save ([`Detector::changes`]).
#[derive(Debug)]
pub struct Changes {
    /// The state apart from its keyed collections, whole.
    pub rest: Vec<u8>,
    /// A row per entry of a keyed collection changed or removed.
    pub rows: Vec<RowChange>,
    /// The dictionaries rows may be compressed with: every one this
    /// process knows (a few, written once: the store keeps each id once).
    pub dictionaries: Vec<RowDictionary>,
}

/// Puts saved rows back into a detector being restored
/// ([`Detector::restore_rows`]).
pub struct RowLoader<'a> {
    rows: RowsOf<'a>,
}

impl RowLoader<'_> {
    /// Puts back one row of collection `map`.
    pub fn load(&mut self, map: &str, key: &[u8], value: &[u8]) -> Result<(), SnapshotError> {
        let (name, rows) = self
            .rows
            .iter_mut()
            .find(|(name, _)| *name == map)
            .ok_or_else(|| SnapshotError(format!("rows of an unknown collection {map:?}")))?;
        rows.load(name, key, value)
            .map_err(|e| SnapshotError(e.to_string()))
    }
}

/// Counters of what the detector was fed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Events fed to [`Detector::observe`], of every kind.
    pub events: u64,
    /// Messages counted as submitted: a queue id whose envelope sender was
    /// seen (Kerio `Recv:`, Postfix `qmgr … from=<…>`), each once.
    pub messages: u64,
    /// Recipients named in submission or delivery lines, each counted once
    /// per message.
    pub recipients: u64,
    /// Delivery lines, and how they ended.
    pub deliveries: u64,
    /// Delivery lines that delivered their recipient locally or handed it to
    /// the next hop.
    pub delivered: u64,
    /// Delivery lines that deferred their recipient (temporary failure: the
    /// server will try again, so one recipient may count several times).
    pub deferred: u64,
    /// Delivery lines that failed their recipient permanently (5.x.x).
    pub failed: u64,
    /// Delivery lines whose message was never seen (before the log began, or
    /// forgotten after the time to live).
    pub orphan_deliveries: u64,
    /// Failed login attempts (a summary line counts its attempts).
    pub auth_failures: u64,
    /// Successful logins (SASL, IMAP, POP3, webmail…), one per line.
    pub auth_successes: u64,
    /// Refusals the server imposed itself (anti-hammering, relay attempts,
    /// DNS blacklists…), of every [`mailfuse_core::BlockKind`].
    pub server_blocks: u64,
    /// Time (UTC seconds) of the earliest event fed: the start of the
    /// period read, even when a later-stamped line comes first (lines merged
    /// from files whose clocks disagree, a log written out of order).
    /// `None` until an event comes.
    pub first_event: Option<Timestamp>,
    /// Time of the latest event fed (the greatest, should one arrive out of
    /// order). `None` until an event comes.
    pub last_event: Option<Timestamp>,
}

/// What a whole run concluded.
#[derive(Clone, Debug, Serialize)]
pub struct Findings {
    /// Compromised accounts first, then guessing, then limits exceeded;
    /// the surest first.
    pub incidents: Vec<Incident>,
    /// One row per account that submitted mail, busiest first.
    pub accounts: AccountRows,
    /// What the detector was fed over the whole run (lines by kind, first
    /// and last event).
    pub stats: Stats,
    /// Hour-by-hour activity, when the detector collected it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hourly: Option<Hourly>,
    /// The domains taken as this server's own, and why (configured, or
    /// inferred: see [`local_domains`]); by name.
    pub local_domains: Vec<LocalDomain>,
    /// Inferred local domains not kept past
    /// [`local_domains::MAX_INFERRED`].
    pub local_domains_not_kept: u64,
    /// Guessing IPs and networks forgotten, by time or for room.
    pub forgotten: Forgotten,
}

/// The detectors with their state. Feed events in time order.
#[derive(Debug, Serialize, Deserialize)]
pub struct Detector {
    messages: MessageTable,
    accounts: Accounts,
    guessing: Guessing,
    /// Defaulted so that snapshots from before limits still restore;
    /// renamed when it moved onto `mailfuse-limits`, so the older form is
    /// skipped (those counts start afresh).
    #[serde(default, rename = "sending_limits")]
    limits: Limits,
    stats: Stats,
    /// Incidents already handed out by [`Detector::new_incidents`].
    handed_out: (usize, usize),
    /// Limit incidents already handed out (apart from `handed_out`, for
    /// the same reasons).
    #[serde(default, rename = "sending_limits_handed_out")]
    limits_handed_out: usize,
    /// Suspicious-activity incidents already handed out.
    #[serde(default)]
    suspected_handed_out: usize,
    /// Only `scan` draws charts; a live detector does not carry them.
    #[serde(skip)]
    hourly: Option<HourlyCollector>,
    /// Only `simulate` replays the sending; nothing else collects it.
    #[serde(skip)]
    sends: Option<SendLog>,
    /// Set from the configuration, not stored.
    #[serde(skip)]
    safety: Safety,
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new(DetectConfig::default())
    }
}

impl Detector {
    /// A detector with `config`'s thresholds.
    pub fn new(config: DetectConfig) -> Self {
        let mut accounts = Accounts::new(config.compromise, config.safety.clone());
        accounts.set_geo(config.geoip.lookup);
        accounts.set_canaries(config.canaries);
        Detector {
            messages: MessageTable::new(Lifetimes {
                ttl_secs: config.message_ttl_secs,
                settled_grace_secs: config.settled_grace_secs,
            }),
            accounts,
            guessing: Guessing::new(config.guessing),
            limits: Limits::new(&config.limits, config.count_senders),
            stats: Stats::default(),
            handed_out: (0, 0),
            limits_handed_out: 0,
            suspected_handed_out: 0,
            hourly: None,
            sends: None,
            safety: config.safety,
        }
    }

    /// The accounts `mailfuse audit --save` found nobody logs into
    /// (forward-only, never logged in): their sending is strong evidence
    /// of a hijack, and the incident says so. Not saved with the state:
    /// watch reads them from the store at start and at each save.
    pub fn set_never_logs_in(&mut self, accounts: impl IntoIterator<Item = String>) {
        self.accounts.set_never_logs_in(accounts);
    }

    /// The `n` accounts closest to (or past) their limits, as of the
    /// newest message counted.
    pub fn top_senders(&mut self, n: usize) -> Vec<Usage> {
        self.limits.top(n)
    }

    /// Also collect hour-by-hour series for charts ([`Findings::hourly`]).
    pub fn collect_hourly(&mut self) {
        self.hourly.get_or_insert_with(HourlyCollector::default);
    }

    /// Also note every message, recipient and failure as it counts, for
    /// [`Detector::take_sends`].
    pub fn collect_sends(&mut self) {
        self.sends.get_or_insert_with(SendLog::default);
    }

    /// Hands each sending event noted since the last call to `visit`, with
    /// its account's name, and forgets them.
    pub fn take_sends(&mut self, mut visit: impl FnMut(&str, &Send)) {
        let Some(log) = &mut self.sends else { return };
        let mut pending = std::mem::take(&mut log.pending);
        for send in &pending {
            visit(&self.accounts.name(send.account), send);
        }
        pending.clear();
        if let Some(log) = &mut self.sends {
            log.pending = pending;
        }
    }

    /// [`observe`](Self::observe) for a line of mail server `host`, one of
    /// several sending their logs to one `watch` (0: its own files). Queue
    /// ids are a server's own, so its messages are joined apart from the
    /// others'; accounts and IPs are the same on every server.
    pub fn observe_from(&mut self, host: u32, event: &Event<'_>, line: &[u8]) {
        self.messages.set_host(host);
        self.observe(event, line);
        self.messages.set_host(0);
    }

    /// Takes in one event and the log line it came from (kept as evidence).
    pub fn observe(&mut self, event: &Event<'_>, line: &[u8]) {
        let at = event.at();
        self.stats.events += 1;
        self.stats.first_event = Some(self.stats.first_event.map_or(at, |t| t.min(at)));
        self.stats.last_event = Some(self.stats.last_event.map_or(at, |t| t.max(at)));
        self.accounts.note_time(at);
        match event {
            Event::Submission(s) => self.on_submission(s, line),
            Event::Delivery(d) => self.on_delivery(d, line),
            Event::AuthFailure(f) => {
                self.stats.auth_failures = self
                    .stats
                    .auth_failures
                    .saturating_add(u64::from(f.attempts));
                self.guessing.on_failure(f, line);
                if let (Some(hourly), Client::Ip(ip), true) =
                    (&mut self.hourly, f.client, f.kind.is_guess())
                {
                    hourly.on_failure(ip, f.at, f.attempts);
                }
            }
            Event::AuthSuccess(s) => {
                self.stats.auth_successes += 1;
                let id = self.accounts.id(s.account, s.at);
                if let Client::Ip(ip) = s.client {
                    self.accounts.on_login(id, ip, s.service, s.at);
                    let name = self.accounts.name(id);
                    self.guessing.on_success(ip, &name, s.at, Success::LoggedIn);
                }
            }
            Event::ServerBlock(b) => {
                self.stats.server_blocks += u64::from(b.refusals);
                self.guessing.on_block(b);
            }
            Event::Removed(r) => self.messages.remove(r.queue_id),
        }
    }

    fn on_submission(&mut self, s: &mailfuse_core::Submission<'_>, line: &[u8]) {
        let Detector {
            messages,
            accounts,
            guessing,
            limits,
            stats,
            hourly,
            sends,
            ..
        } = self;
        accounts.on_submission_line(s.queue_id, s.unqualified_sender, s.envelope_from);
        let message = messages.entry(s.queue_id, s.at);
        if s.client.is_some() {
            message.arrival_seen = true;
        }
        // A server's notice, or a queue pass with no arrival before it (a
        // probe, or mail queued before the log began), is no submission.
        if s.notice_of.is_some() || (s.queue_pass && !message.arrival_seen && !message.counted) {
            message.not_submission = true;
        }
        if let Some(login) = s.account {
            let id = *message
                .account
                .get_or_insert_with(|| accounts.id(login, s.at));
            if let Some(service) = s.service {
                accounts.note_service(id, service);
            }
            // Postfix names the login (smtpd) before the sender (qmgr): keep
            // the line naming it as the evidence for when the message counts.
            if !message.counted && s.envelope_from.is_none() && message.first_line.is_none() {
                message.first_line = Some(line.into());
            }
        }
        if let Some(Client::Ip(ip)) = s.client {
            message.ip.get_or_insert(ip);
        }
        if let Some(count) = s.recipient_count {
            message.expected_recipients = Some(count);
        }
        let change = s.recipient.map(|r| (r, message.note_recipient(r, None)));
        stats.recipients +=
            u64::from(!message.not_submission && change.is_some_and(|(_, c)| c.new_recipient));
        let newly_counted =
            !message.counted && !message.not_submission && s.envelope_from.is_some();
        if newly_counted {
            message.counted = true;
            stats.messages += 1;
        }
        let more_recipients = match (s.recipient_count, message.counted) {
            (Some(n), true) => message.count_recipients_up_to(n),
            _ => 0,
        };
        stats.recipients += u64::from(more_recipients);
        let Some(id) = message.account else { return };
        if let Some(ip) = smtp_login(s) {
            stats.auth_successes += 1;
            guessing.on_success(ip, &accounts.name(id), s.at, Success::LoggedIn);
        }
        if newly_counted {
            let first_line = message.first_line.take();
            let evidence = first_line.as_deref().unwrap_or(line);
            let ip = accounts.on_message(
                id,
                message.ip,
                s.at,
                s.envelope_from.unwrap_or_default(),
                evidence,
                |ip, account| guessing.prior_failures(ip, account),
            );
            message.ip = Some(ip);
            if let Some(log) = sends {
                message.send_number = log.message(id, ip, s.at);
            }
            guessing.on_success(ip, &accounts.name(id), s.at, Success::SentMail);
            limits.on_message(id, &accounts.name(id), ip, s.at, evidence);
            if let Some(hourly) = hourly {
                hourly.on_message(id, ip, s.at);
            }
        }
        let ip = message.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let number = message.send_number;
        if let (Some((recipient, change)), true) = (change, message.counted) {
            self.on_account_recipient(id, ip, s.at, recipient, change, line, number);
        }
        // Recipients the server counted that no line named yet (their
        // addresses are not known: counted as local ones).
        let named = RecipientChange {
            new_recipient: true,
            new_address: false,
            new_failure: false,
        };
        for _ in 0..more_recipients {
            self.on_account_recipient(id, ip, s.at, b"", named, line, number);
        }
    }

    fn on_delivery(&mut self, d: &mailfuse_core::Delivery<'_>, line: &[u8]) {
        // The hop into a content filter only names the recipient: its fate
        // comes under the re-injected queue id.
        let hop = correlate::filter_hop(d).filter(|copy| self.messages.is_filter_copy(copy));
        if hop.is_none() {
            self.stats.deliveries += 1;
            match d.status {
                DeliveryStatus::Delivered => {
                    self.stats.delivered += 1;
                    self.accounts.on_delivered(d.recipient, d.relay);
                }
                DeliveryStatus::Deferred => self.stats.deferred += 1,
                DeliveryStatus::Failed => self.stats.failed += 1,
            }
        }
        let Some((handle, message)) = self.messages.get_with_handle(d.queue_id, d.at) else {
            self.stats.orphan_deliveries += 1;
            return;
        };
        let change = message.note_recipient(d.recipient, hop.is_none().then_some(d.status));
        self.stats.recipients += u64::from(change.new_recipient && !message.not_submission);
        let owner = message.counted.then_some(message.account).flatten();
        let ip = message.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let settled = message.is_settled();
        let number = message.send_number;
        if let Some(id) = owner {
            self.on_account_recipient(id, ip, d.at, d.recipient, change, line, number);
        }
        if let Some(reinjected) = hop {
            let merged = self.messages.hand_off(d.queue_id, reinjected, d.at);
            if self
                .messages
                .get(d.queue_id, d.at)
                .is_some_and(|message| message.is_settled())
            {
                self.messages.settle(d.queue_id, d.at);
            }
            self.stats.messages -= u64::from(merged.was_counted).min(self.stats.messages);
            self.stats.recipients -=
                u64::from(merged.uncounted_recipients).min(self.stats.recipients);
            self.stats.recipients += u64::from(merged.new_recipients);
            if let Some(id) = owner {
                // The copy's fates that came before the hop (its address is
                // not kept: only counted).
                for n in 0..merged.new_recipients.max(merged.new_failures) {
                    let change = RecipientChange {
                        new_recipient: n < merged.new_recipients,
                        new_address: false,
                        new_failure: n < merged.new_failures,
                    };
                    self.on_account_recipient(id, ip, d.at, b"", change, line, number);
                }
            }
        } else if settled {
            self.messages.settle_handle(handle, d.at);
        }
    }

    /// One recipient line of an account's counted message (`number`: the
    /// message's in [`sends`], 0 when they are not collected). A line that
    /// only names a recipient again (Kerio's `Sent:` after its `Recv:`)
    /// adds to no count or window: the account is left untouched.
    #[allow(clippy::too_many_arguments)]
    fn on_account_recipient(
        &mut self,
        id: AccountId,
        ip: IpAddr,
        at: Timestamp,
        recipient: &[u8],
        change: RecipientChange,
        line: &[u8],
        number: u64,
    ) {
        if !change.is_news() {
            return;
        }
        let external = self
            .accounts
            .on_recipient(id, ip, at, recipient, change, line);
        if let Some(log) = &mut self.sends {
            let send = |kind| Send {
                account: id,
                ip,
                at,
                message: number,
                kind,
            };
            // When a line first names it: as a policy server sees each
            // RCPT, and only then is it known to be external (recipients
            // Postfix's `nrcpt` counted come with their delivery lines).
            if change.new_address {
                log.pending.push(send(SendKind::Recipient { external }));
            }
            if change.new_failure {
                log.pending.push(send(SendKind::Failure));
            }
        }
        if let Some(hourly) = &mut self.hourly {
            hourly.on_recipient(id, at, change);
        }
        if change.new_recipient {
            let name = self.accounts.name(id);
            self.limits.on_recipient(id, &name, at, line);
        }
    }

    /// The detector's whole state (windows, open messages, accounts, what
    /// was handed out), for [`Detector::restore`].
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        rmp_serde::to_vec_named(self).map_err(|e| SnapshotError(e.to_string()))
    }

    /// A detector in the state `snapshot` saved, with `config`'s thresholds
    /// (the configuration may have changed since).
    pub fn restore(snapshot: &[u8], config: DetectConfig) -> Result<Self, SnapshotError> {
        let detector: Detector =
            rmp_serde::from_slice(snapshot).map_err(|e| SnapshotError(e.to_string()))?;
        Ok(detector.checked()?.configured(config))
    }

    /// `self` if its parts agree, as a saved state read back must: every
    /// account id they hold names an account of the table (a damaged or
    /// partly written state may not, and would panic at its first use).
    fn checked(self) -> Result<Self, SnapshotError> {
        match self.accounts.stray_id(self.messages.accounts()) {
            None => Ok(self),
            Some(id) => Err(SnapshotError(format!(
                "account {} is referred to but not saved: the state is damaged",
                id.index()
            ))),
        }
    }

    /// The counters of a saved state (whole, or its rest beside rows),
    /// without restoring the rest of it: what `status` shows.
    pub fn saved_stats(saved: &[u8]) -> Result<Stats, SnapshotError> {
        #[derive(Deserialize)]
        struct StatsOnly {
            stats: Stats,
        }
        let only: StatsOnly =
            rmp_serde::from_slice(saved).map_err(|e| SnapshotError(e.to_string()))?;
        Ok(only.stats)
    }

    /// `self` restored, with `config`'s thresholds and what is derived
    /// rather than saved rebuilt.
    fn configured(mut self, config: DetectConfig) -> Self {
        self.messages.set_lifetimes(Lifetimes {
            ttl_secs: config.message_ttl_secs,
            settled_grace_secs: config.settled_grace_secs,
        });
        self.messages.rebuild_queues();
        self.accounts.set_config(config.compromise);
        self.accounts.set_safety(config.safety.clone());
        self.accounts.set_geo(config.geoip.lookup);
        self.accounts.set_canaries(config.canaries);
        self.safety = config.safety;
        self.guessing.set_config(config.guessing);
        self.limits.set_rules(&config.limits, config.count_senders);
        self
    }

    /// The keyed collections (open messages, accounts, guessing IPs and
    /// networks, limit windows), each under its row name.
    fn rows(&mut self) -> RowsOf<'_> {
        let mut rows = self.messages.rows();
        rows.extend(self.accounts.rows());
        rows.extend(self.guessing.rows());
        rows.extend(self.limits.rows());
        rows
    }

    /// Starts noting what changes, for [`Detector::changes`]: `watch`
    /// saves only that. Everything held now counts as changed, so the
    /// first save writes it all.
    pub fn track_changes(&mut self) {
        for (_, rows) in self.rows() {
            rows.mark_all();
        }
    }

    /// What changed since the last [`Detector::changes_saved`]: the state
    /// apart from its keyed collections (small: counters, what was handed
    /// out, bounded lists), and a row for each entry changed or removed.
    pub fn changes(&mut self) -> Result<Changes, SnapshotError> {
        let rest = rows::apart(|| rmp_serde::to_vec_named(&*self))
            .map_err(|e| SnapshotError(e.to_string()))?;
        let mut changed = Vec::new();
        for (name, rows) in self.rows() {
            rows.changes(name, &mut changed)
                .map_err(|e| SnapshotError(e.to_string()))?;
        }
        Ok(Changes {
            rest,
            rows: changed,
            dictionaries: packed::registered(),
        })
    }

    /// How many entries each keyed collection holds, by row name: what
    /// memory and the saved state grow with; and how many of the accounts
    /// are packed while idle (`accounts_packed`).
    pub fn entries(&mut self) -> Vec<(&'static str, usize)> {
        let packed = self.accounts.packed_count();
        let mut entries: Vec<_> = self
            .rows()
            .into_iter()
            .map(|(name, rows)| (name, rows.len()))
            .collect();
        entries.push(("accounts_packed", packed));
        entries
    }

    /// The last [`Detector::changes`] are durable: forget them.
    pub fn changes_saved(&mut self) {
        for (_, rows) in self.rows() {
            rows.saved();
        }
    }

    /// A detector from the rest of its state saved by
    /// [`Detector::changes`] and its rows, which `rows` hands to the
    /// loader it is given (each collection's rows in key order), with
    /// `config`'s thresholds; it notes changes from here on. The
    /// `dictionaries` saved beside the rows are registered first.
    pub fn restore_rows<E: From<SnapshotError>>(
        rest: &[u8],
        config: DetectConfig,
        dictionaries: &[RowDictionary],
        rows: impl FnOnce(&mut RowLoader<'_>) -> Result<(), E>,
    ) -> Result<Self, E> {
        for dictionary in dictionaries {
            packed::register(dictionary).map_err(|e| SnapshotError(e.to_string()))?;
        }
        let mut detector: Detector =
            rmp_serde::from_slice(rest).map_err(|e| SnapshotError(e.to_string()))?;
        packed::take_converted();
        rows(&mut RowLoader {
            rows: detector.rows(),
        })?;
        // Rows of an older form were packed anew: the next save writes
        // every row, in the current form, rather than convert them again
        // at each start.
        let rewrite = packed::take_converted() > 0;
        let mut detector = detector.checked()?.configured(config);
        for (_, rows) in detector.rows() {
            if rewrite {
                rows.mark_all();
            } else {
                rows.track();
            }
        }
        Ok(detector)
    }

    /// Incidents that tripped since the last call, in the order they tripped
    /// (for live alerting).
    pub fn new_incidents(&mut self) -> Vec<Incident> {
        let (accounts_seen, guessing_seen) = self.handed_out;
        let mut fresh = self.accounts.incidents_since(accounts_seen);
        fresh.extend(self.guessing.incidents_since(guessing_seen));
        fresh.extend(self.limits.incidents_since(self.limits_handed_out));
        fresh.extend(
            self.accounts
                .suspicious_since(self.suspected_handed_out, false),
        );
        self.handed_out = (self.accounts.tripped_count(), self.guessing.tripped_count());
        self.limits_handed_out = self.limits.tripped_count();
        self.suspected_handed_out = self.accounts.suspected_count();
        self.finished(fresh)
    }

    /// `incidents`, each with its confidence and what would confirm it, and
    /// noting which of its IPs must not be blocked.
    fn finished(&self, mut incidents: Vec<Incident>) -> Vec<Incident> {
        for incident in &mut incidents {
            incident.assess();
            incident.note_protected(&self.safety);
        }
        incidents
    }

    /// Guessing IPs and networks forgotten so far, by time or for room.
    pub fn forgotten(&self) -> Forgotten {
        self.guessing.forgotten()
    }

    /// Messages still waiting for delivery lines.
    pub fn open_messages(&self) -> usize {
        self.messages.len()
    }

    /// Everything concluded so far.
    pub fn findings(&self) -> Findings {
        Findings {
            accounts: summary::rows(self.accounts.all()),
            ..self.findings_but_accounts()
        }
    }

    /// Everything concluded, at the end of a run: the accounts are taken
    /// out of the detector to build the report's table, so that the two
    /// are not in memory at once (a provider's hundreds of thousands).
    pub fn final_findings(&mut self) -> Findings {
        let findings = self.findings_but_accounts();
        Findings {
            accounts: self.accounts.take_rows(),
            ..findings
        }
    }

    /// The findings with an empty account table.
    fn findings_but_accounts(&self) -> Findings {
        let mut incidents = self.accounts.incidents();
        incidents.extend(self.accounts.suspicious_since(0, true));
        incidents.extend(self.guessing.incidents());
        incidents.extend(self.limits.incidents());
        incidents.sort_by(|a, b| {
            a.kind
                .cmp(&b.kind)
                .then(b.score.cmp(&a.score))
                .then(a.first_seen.cmp(&b.first_seen))
        });
        let (local_domains, local_domains_not_kept) = self.accounts.local_domains();
        Findings {
            local_domains,
            local_domains_not_kept,
            forgotten: self.guessing.forgotten(),
            incidents: self.finished(incidents),
            accounts: AccountRows::default(),
            stats: self.stats.clone(),
            hourly: self
                .hourly
                .as_ref()
                .map(|hourly| hourly.report(|id| self.accounts.name(id).into_owned())),
        }
    }
}

/// The client IP of a submission line that is itself the record of a
/// successful SMTP AUTH login: Postfix's smtpd `client=host[ip],
/// sasl_method=…, sasl_username=…` names the login and the client but not
/// yet the sender, and Postfix logs such logins nowhere else. Kerio's `Recv:`
/// and Exim's `<=` lines always name the sender (Kerio logs its logins in
/// audit.log), so they are not counted twice.
fn smtp_login(s: &mailfuse_core::Submission<'_>) -> Option<IpAddr> {
    match (s.account, s.client, s.envelope_from) {
        (Some(_), Some(Client::Ip(ip)), None) => Some(ip),
        _ => None,
    }
}
