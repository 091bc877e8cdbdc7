//! The `password_guessing` detector: failed logins per IP and per network.
//!
//! A noisy spray trips the per-IP rule (many failures within an hour). A slow
//! distributed attack (each IP trying once or twice an hour, a whole /24
//! taking turns) stays under it, so failures of IPs that did not trip on their
//! own are also summed per /24 (/64 for IPv6) over a day. When an IP that
//! failed later logs in or sends mail, the guess probably succeeded: that is
//! the strongest signal there is, and it feeds the account detector too.

use std::net::IpAddr;

use mailfuse_core::net::Network;
use mailfuse_core::rows::{Rows, RowsOf, TrackedMap};
use mailfuse_core::{AuthFailure, BlockKind, Client, ServerBlock, Timestamp};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

mod spread;

use crate::incident::{evidence_line, lossy, GuessingPattern, Incident, IncidentKind};
use crate::packed::{IdleQueue, Pack, Packed};
use crate::window::{DayWindow, HourWindow, Peak};

/// Thresholds of the guessing detector.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuessingConfig {
    /// Failed logins from one IP within a sliding hour that make an incident.
    pub ip_failures_per_hour: u32,
    /// Failed logins from one network within a sliding day that make an
    /// incident, counting only IPs that did not trip on their own…
    pub network_failures_per_day: u32,
    /// …coming from at least this many distinct IPs.
    pub network_min_ips: u32,
    /// Failed logins before a success that mark the success as a likely
    /// successful guess.
    pub failures_before_success: u32,
    /// Distinct IPs of strangers (IPs no account logged in from) failing
    /// within one episode that make a campaign…
    pub campaign_min_ips: u32,
    /// …from at least this many networks (/24, /64).
    pub campaign_min_networks: u32,
    /// Distinct IPs failing at one account within one episode that make a
    /// brute force at it…
    pub account_min_ips: u32,
    /// …from at least this many networks.
    pub account_min_networks: u32,
    /// Most guessing IPs (and, apart, networks) followed at once. Past it
    /// the least recently seen that did not trip are forgotten first, and
    /// counted ([`Forgotten`]): a botnet's millions of IPs cannot exhaust
    /// memory.
    pub max_ips: usize,
    /// Seconds without a failure after which a guessing IP's or network's
    /// state is packed into a few hundred bytes (unpacked at its next
    /// failure), once more than 10,000 are live: a botnet's IPs mostly fail
    /// once. 0 packs at the next failure seen, however few (slow; for
    /// tests).
    pub pack_idle_secs: i64,
}

impl Default for GuessingConfig {
    fn default() -> Self {
        GuessingConfig {
            ip_failures_per_hour: 10,
            network_failures_per_day: 20,
            network_min_ips: 3,
            failures_before_success: 3,
            campaign_min_ips: 100,
            campaign_min_networks: 30,
            account_min_ips: 50,
            account_min_networks: 20,
            max_ips: 200_000,
            pack_idle_secs: 3600,
        }
    }
}

/// Most account names remembered per guesser.
const MAX_ACCOUNTS_KEPT: usize = 500;
/// Most further account names remembered per guesser, as 64-bit hashes
/// (eight bytes each), to keep counting distinct names exactly past
/// [`MAX_ACCOUNTS_KEPT`]; past both, the count is a lower bound.
const MAX_ACCOUNT_HASHES: usize = 100_000;
/// Most IPs remembered per network.
const MAX_IPS_KEPT: usize = 1024;
/// Seconds after its last failed login that a guesser (IP or network)
/// which never tripped is forgotten: its hour (a network's day) is empty,
/// and a login after that long is no longer "right after guessing".
pub const FORGET_AFTER_SECS: i64 = 86_400;

/// Most (IP, account) pairs remembered with their first login; past it new
/// pairs are not remembered (their failures are judged as a stranger's).
const MAX_KNOWN_CLIENTS: usize = 200_000;

/// Who is guessing: an IP, or a host name when the log gives no IP.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Guesser {
    Ip(IpAddr),
    Host(Box<[u8]>),
}

/// Everything known about one guesser (or one network of them).
#[derive(Debug, Serialize, Deserialize)]
struct Guesses {
    failures: u64,
    first_seen: Timestamp,
    last_seen: Timestamp,
    hour: HourWindow,
    peak_hour: Peak,
    /// Distinct accounts tried, counting those past the remembered ones.
    accounts_total: u64,
    /// Hashes of the names tried past the [`MAX_ACCOUNTS_KEPT`] kept whole.
    #[serde(default)]
    account_hashes: FxHashSet<u64>,
    /// Set once a name could be neither kept nor hashed: from then on
    /// `accounts_total` is a lower bound.
    #[serde(default)]
    accounts_inexact: bool,
    unknown_users: u64,
    /// Per account named (the first [`MAX_ACCOUNTS_KEPT`], kept whole),
    /// its first failed login here and how many: failures are judged per
    /// IP and account, so one user's typos behind a shared address say
    /// nothing of another's login.
    #[serde(default)]
    at_accounts: FxHashMap<Box<str>, (Timestamp, u64)>,
    services: Vec<Box<str>>,
    first_line: String,
    server_blocks: u64,
    tripped_at: Option<Timestamp>,
    succeeded_as: Vec<(String, Timestamp, Success)>,
}

impl Guesses {
    fn new(at: Timestamp, line: &[u8]) -> Self {
        Guesses {
            failures: 0,
            first_seen: at,
            last_seen: at,
            hour: HourWindow::hour(),
            peak_hour: Peak::default(),
            accounts_total: 0,
            account_hashes: FxHashSet::default(),
            accounts_inexact: false,
            unknown_users: 0,
            at_accounts: FxHashMap::default(),
            services: Vec::new(),
            first_line: evidence_line(line),
            server_blocks: 0,
            tripped_at: None,
            succeeded_as: Vec::new(),
        }
    }

    /// Counts a line's failed attempts at `account` (the name tried, in
    /// lower case); returns failures in the sliding hour.
    fn record(&mut self, failure: &AuthFailure<'_>, account: Option<&str>) -> u32 {
        self.failures = self.failures.saturating_add(u64::from(failure.attempts));
        self.last_seen = self.last_seen.max(failure.at);
        let in_hour = self.hour.add(failure.at, failure.attempts);
        self.peak_hour.offer(in_hour, failure.at);
        if failure.kind == mailfuse_core::AuthFailureKind::UnknownUser {
            self.unknown_users += 1;
        }
        if let Some(name) = account {
            let attempts = u64::from(failure.attempts);
            if let Some(at_account) = self.at_accounts.get_mut(name) {
                at_account.1 = at_account.1.saturating_add(attempts);
            } else if self.at_accounts.len() < MAX_ACCOUNTS_KEPT {
                self.at_accounts.insert(name.into(), (failure.at, attempts));
                self.accounts_total += 1;
            } else {
                self.note_hashed(name);
            }
        }
        if self.services.len() < 8
            && !self
                .services
                .iter()
                .any(|s| s.as_bytes() == failure.service)
        {
            self.services.push(lossy(failure.service).into_boxed_str());
        }
        in_hour
    }

    /// The account names tried that are kept whole.
    fn tried(&self) -> impl Iterator<Item = &str> {
        self.at_accounts.keys().map(|name| &**name)
    }

    /// Counts `name`, tried past the [`MAX_ACCOUNTS_KEPT`] names kept
    /// whole, once however often it is tried, by its hash; a name that
    /// fits in neither is not counted, and the count becomes "at least".
    fn note_hashed(&mut self, name: &str) {
        let hash = name_hash(name);
        if self.account_hashes.contains(&hash) {
            return;
        }
        if self.account_hashes.len() < MAX_ACCOUNT_HASHES {
            self.account_hashes.insert(hash);
            self.accounts_total += 1;
        } else {
            self.accounts_inexact = true;
        }
    }

    /// Whether these failures could have been guesses at `account`
    /// (lower-case): it was among the names tried — a bare name matching the
    /// account's local part, or the other way round — or no failure named
    /// an account (Kerio's security.log) and there were enough of them to be
    /// guessing rather than a typo. Failures at other names are someone
    /// else's: a colleague's typos behind the office NAT convict no one.
    fn may_have_guessed(&self, account: &str, unnamed_enough: u64) -> bool {
        if self.accounts_total == 0 {
            return self.failures >= unnamed_enough;
        }
        if self.accounts_inexact {
            return true;
        }
        let local_part = account.split_once('@').map(|(local, _)| local);
        let candidates = [Some(account), local_part];
        candidates.into_iter().flatten().any(|name| {
            self.at_accounts.contains_key(name) || self.account_hashes.contains(&name_hash(name))
        }) || self.tried().any(|tried| {
            tried
                .split_once('@')
                .is_some_and(|(local, _)| local == account)
        })
    }

    fn incident(&self, score_base: u32) -> Incident {
        let mut accounts: Vec<String> = self.tried().map(str::to_string).collect();
        accounts.sort();
        let mut reasons = vec![format!(
            "{} failed logins between {} and {} (peak {} in one hour) over {}",
            self.failures,
            self.first_seen,
            self.last_seen,
            self.peak_hour.count,
            self.services.join(", ")
        )];
        if self.accounts_total > 0 {
            let sample: Vec<&str> = accounts.iter().take(8).map(String::as_str).collect();
            let mut reason = format!(
                "{}{} accounts tried ({}{})",
                if self.accounts_inexact {
                    "at least "
                } else {
                    ""
                },
                self.accounts_total,
                sample.join(", "),
                if self.accounts_total > 8 { ", …" } else { "" },
            );
            if self.unknown_users > 0 {
                reason.push_str(&format!(
                    ", {} of the attempts for accounts that do not exist",
                    self.unknown_users
                ));
            }
            reasons.push(reason);
        }
        if self.server_blocks > 0 {
            reasons.push(format!(
                "the mail server blocked it {} times (anti-hammering)",
                self.server_blocks
            ));
        }
        let mut score = score_base + (self.failures / 10).min(30) as u32;
        if self.accounts_total >= 5 {
            score += 10;
        }
        for (account, at, how) in &self.succeeded_as {
            reasons.push(format!(
                "the guess succeeded: at {at} it {how} as {account}"
            ));
            score = 100;
        }
        Incident {
            failed_logins: self.failures,
            accounts_tried: accounts,
            accounts_tried_total: self.accounts_total,
            accounts_tried_exact: !self.accounts_inexact,
            succeeded_as: self
                .succeeded_as
                .iter()
                .map(|(a, _, _)| a.clone())
                .collect(),
            score: score.min(100),
            reasons,
            evidence: vec![self.first_line.clone()],
            ..Incident::new(
                IncidentKind::PasswordGuessing,
                self.first_seen..=self.last_seen,
                self.tripped_at.unwrap_or(self.last_seen),
            )
        }
    }
}

/// The successful logins from one IP.
#[derive(Debug, Serialize, Deserialize)]
struct IpLogins {
    /// The first account that logged in from it.
    account: Box<str>,
    /// Whether others did too (an office NAT).
    other_accounts: bool,
    first: Timestamp,
    last: Timestamp,
}

/// Most failed logins in an hour of a client that keeps an old password:
/// mail programs retry every few minutes, guessers as fast as they may.
const STALE_CLIENT_MAX_PER_HOUR: u32 = 30;

/// Forgets the least recently seen tenth of `map`'s entries that did not
/// trip (`guesses` finds their counts), or of all when every one tripped,
/// so the next tenth of `max` new entries fit; returns how many went. A
/// tenth at a time keeps the cost of finding them (a pass over the map)
/// to a few steps per entry added.
fn make_room<K, T>(map: &mut TrackedMap<K, Packed<T>>, max: usize) -> u64
where
    K: std::hash::Hash + Eq + Clone,
    T: Pack,
{
    let room = (max / 10).max(1);
    let mut candidates: Vec<Timestamp> = map
        .values()
        .filter(|v| !v.pinned())
        .map(Packed::last_seen)
        .collect();
    let tripped_too = candidates.len() < room;
    if tripped_too {
        candidates = map.values().map(Packed::last_seen).collect();
    }
    let Some(cut) = candidates.len().checked_sub(1).map(|last| room.min(last)) else {
        return 0;
    };
    let (_, &mut newest_gone, _) = candidates.select_nth_unstable(cut);
    let before = map.len();
    let mut left = room;
    map.retain_unchanged(|_, v| {
        let goes = left > 0 && v.last_seen() <= newest_gone && (tripped_too || !v.pinned());
        left -= usize::from(goes);
        !goes
    });
    (before - map.len()) as u64
}

/// Whether a guesser or network may be forgotten at `now`: it never
/// tripped, and failed nothing for [`FORGET_AFTER_SECS`].
fn forgettable<T: Pack>(entry: &Packed<T>, now: Timestamp) -> bool {
    !entry.pinned() && now.as_secs() - entry.last_seen().as_secs() > FORGET_AFTER_SECS
}

/// The hash an account name past [`MAX_ACCOUNTS_KEPT`] is kept as.
fn name_hash(name: &str) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    std::hash::Hash::hash(name, &mut hasher);
    std::hash::Hasher::finish(&hasher)
}

/// Failed logins from one network by IPs that did not trip on their own.
#[derive(Debug, Serialize, Deserialize)]
struct NetworkGuesses {
    guesses: Guesses,
    day: DayWindow,
    ips: FxHashSet<IpAddr>,
    /// Distinct IPs counted: exact while they fit in `ips`; past
    /// [`MAX_IPS_KEPT`] (an IPv6 /64) the others are not counted and the
    /// count is a lower bound.
    ips_total: u64,
    /// IPs past [`MAX_IPS_KEPT`] were left uncounted.
    #[serde(default)]
    ips_inexact: bool,
}

/// An idle guesser packs until its next failure; one that tripped stays
/// live (its incident is read).
impl Pack for Guesses {
    const TABLE: &'static str = "guessers";

    fn last_seen(&self) -> Timestamp {
        self.last_seen
    }

    fn packable(&self) -> bool {
        self.tripped_at.is_none()
    }

    fn salvage(_: &[u8]) -> Guesses {
        Guesses::new(Timestamp::default(), b"")
    }
}

impl Pack for NetworkGuesses {
    const TABLE: &'static str = "guessing_networks";

    fn last_seen(&self) -> Timestamp {
        self.guesses.last_seen
    }

    fn packable(&self) -> bool {
        self.guesses.packable()
    }

    fn salvage(bytes: &[u8]) -> NetworkGuesses {
        NetworkGuesses::new(Guesses::salvage(bytes))
    }
}

impl NetworkGuesses {
    fn new(guesses: Guesses) -> Self {
        NetworkGuesses {
            guesses,
            day: DayWindow::day(),
            ips: FxHashSet::default(),
            ips_total: 0,
            ips_inexact: false,
        }
    }
}

/// The live value of `key` in `map`, unpacked (and queued for packing
/// again) if it was packed.
fn live_entry<'a, K, T>(
    map: &'a mut TrackedMap<K, Packed<T>>,
    idle: &mut IdleQueue<K>,
    key: &K,
) -> Option<&'a mut T>
where
    K: std::hash::Hash + Eq + Clone,
    T: Pack,
{
    map.get_mut(key)
        .map(|entry| idle.unpack(key.clone(), entry))
}

/// The live value of `key` in a table and its idle queue, made by `fresh`
/// if it has none; room is made first past `max` entries (counting how
/// many went into `evicted`).
fn live_or_new<'a, K, T>(
    (map, idle): (&'a mut TrackedMap<K, Packed<T>>, &mut IdleQueue<K>),
    key: &K,
    at: Timestamp,
    (max, evicted): (usize, &mut u64),
    fresh: impl FnOnce() -> T,
) -> &'a mut T
where
    K: std::hash::Hash + Eq + Clone,
    T: Pack,
{
    if !map.contains_key(key) && map.len() >= max {
        *evicted += make_room(map, max);
    }
    let mut new = false;
    let entry = map.entry(key.clone()).or_insert_with(|| {
        new = true;
        Packed::new(fresh())
    });
    if new {
        idle.note(key.clone(), at);
    }
    idle.unpack(key.clone(), entry)
}

/// How a guessing IP showed it had the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Success {
    /// A successful login from the IP (any service: SMTP AUTH, IMAP, POP3,
    /// webmail).
    LoggedIn,
    /// A message submitted from the IP by an authenticated account.
    SentMail,
}

impl std::fmt::Display for Success {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Success::LoggedIn => "logged in",
            Success::SentMail => "sent mail",
        })
    }
}

/// The guessing detector's state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Guessing {
    /// Set from the configuration, not stored.
    #[serde(skip)]
    config: GuessingConfig,
    /// Boxed, as the networks: the table holds a pointer per guesser, so
    /// its unused slots cost little.
    guessers: TrackedMap<Guesser, Packed<Guesses>>,
    networks: TrackedMap<Network, Packed<NetworkGuesses>>,
    /// The live guessers and networks, to pack once idle; set from the
    /// configuration.
    #[serde(skip)]
    idle_guessers: IdleQueue<Guesser>,
    #[serde(skip)]
    idle_networks: IdleQueue<Network>,
    /// When each account first logged in from each IP (the name by
    /// [`name_hash`]): failures from an IP the account already used are its
    /// own client's, not a stranger's guesses.
    #[serde(default)]
    known_clients: TrackedMap<(IpAddr, u64), Timestamp>,
    /// IPs some account logged in from (their failures are no stranger's),
    /// with who and when.
    #[serde(default)]
    good_ips: TrackedMap<IpAddr, IpLogins>,
    /// Guessing spread over many networks (campaigns, stuffing, brute force
    /// at one account).
    #[serde(default)]
    spreads: spread::Spreads,
    /// Guessers and networks in the order they tripped.
    tripped: Vec<TripKey>,
    /// What was forgotten, by time or for room.
    #[serde(default)]
    forgotten: Forgotten,
    /// When guessers idle past [`FORGET_AFTER_SECS`] are next looked for.
    #[serde(default)]
    next_sweep: Option<Timestamp>,
}

/// Guessers and networks forgotten: by time (idle past
/// [`FORGET_AFTER_SECS`], without an incident: nothing lost), or for room
/// (past [`GuessingConfig::max_ips`]: their counts start afresh if they
/// come back, which an admin should know).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forgotten {
    /// Guessing IPs forgotten after a day without failures.
    pub ips_expired: u64,
    /// Guessing IPs forgotten for room, before their time.
    pub ips_evicted: u64,
    /// Networks forgotten after a day without failures.
    pub networks_expired: u64,
    /// Networks forgotten for room, before their time.
    pub networks_evicted: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum TripKey {
    Guesser(Guesser),
    Network(Network),
    /// An episode of [`spread::Spreads`], by index.
    Spread(usize),
}

/// What the detector knows of an IP's failed logins before a given moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorFailures {
    /// Failed login attempts (guesses) the IP has made so far, at least
    /// [`GuessingConfig::failures_before_success`]; a summary line counts all
    /// its attempts.
    pub count: u64,
    /// The IP's first failed login line, as evidence (capped, password
    /// removed: see [`crate::incident::evidence_line`]).
    pub first_line: String,
}

impl Guessing {
    /// The tracked collections, for saving and loading rows.
    pub fn rows(&mut self) -> RowsOf<'_> {
        let mut rows: RowsOf<'_> = vec![
            ("guessers", &mut self.guessers as &mut dyn Rows),
            ("guessing_networks", &mut self.networks),
            ("known_clients", &mut self.known_clients),
            ("good_ips", &mut self.good_ips),
        ];
        rows.extend(self.spreads.rows());
        rows
    }

    /// A detector with `config`'s thresholds.
    pub fn new(config: GuessingConfig) -> Self {
        Guessing {
            idle_guessers: IdleQueue::new(config.pack_idle_secs),
            idle_networks: IdleQueue::new(config.pack_idle_secs),
            config,
            ..Guessing::default()
        }
    }

    /// Counts a failed login. Returns true when it made a new incident.
    pub fn on_failure(&mut self, failure: &AuthFailure<'_>, line: &[u8]) -> bool {
        if !failure.kind.is_guess() {
            return false;
        }
        let guesser = match failure.client {
            Client::Ip(ip) => Guesser::Ip(ip),
            Client::Host(host) => Guesser::Host(host.into()),
            Client::Unknown => return false,
        };
        self.sweep(failure.at);
        self.pack_idle(failure.at);
        // The name tried, in lower case: once for every count it goes into.
        let account = failure.account.map(|a| lossy(a).to_ascii_lowercase());
        let account = account.as_deref();
        let state = live_or_new(
            (&mut self.guessers, &mut self.idle_guessers),
            &guesser,
            failure.at,
            (self.config.max_ips, &mut self.forgotten.ips_evicted),
            || Guesses::new(failure.at, line),
        );
        let in_hour = state.record(failure, account);
        let mut tripped = false;
        if state.tripped_at.is_none() && in_hour >= self.config.ip_failures_per_hour {
            state.tripped_at = Some(failure.at);
            self.tripped.push(TripKey::Guesser(guesser));
            tripped = true;
        }
        let alone_tripped = state.tripped_at.is_some();
        if let (Client::Ip(ip), false) = (failure.client, alone_tripped) {
            tripped |= self.count_for_network(ip, failure, account, line);
        }
        if let Client::Ip(ip) = failure.client {
            if !self.good_ips.contains_key(&ip) {
                let episodes = self
                    .spreads
                    .on_failure(&self.config, failure, ip, account, line);
                tripped |= !episodes.is_empty();
                self.tripped
                    .extend(episodes.into_iter().map(TripKey::Spread));
            }
        }
        tripped
    }

    fn count_for_network(
        &mut self,
        ip: IpAddr,
        failure: &AuthFailure<'_>,
        account: Option<&str>,
        line: &[u8],
    ) -> bool {
        let network = Network::of(ip);
        let net = live_or_new(
            (&mut self.networks, &mut self.idle_networks),
            &network,
            failure.at,
            (self.config.max_ips, &mut self.forgotten.networks_evicted),
            || NetworkGuesses::new(Guesses::new(failure.at, line)),
        );
        net.guesses.record(failure, account);
        let in_day = net.day.add(failure.at, failure.attempts);
        if !net.ips.contains(&ip) {
            // An IP not kept cannot be told from one seen before: counting
            // it would count a returning IP again.
            if net.ips.len() < MAX_IPS_KEPT {
                net.ips.insert(ip);
                net.ips_total += 1;
            } else {
                net.ips_inexact = true;
            }
        }
        if net.guesses.tripped_at.is_none()
            && in_day >= self.config.network_failures_per_day
            && net.ips_total >= u64::from(self.config.network_min_ips)
        {
            net.guesses.tripped_at = Some(failure.at);
            self.tripped.push(TripKey::Network(network));
            return true;
        }
        false
    }

    /// Forgets, once an hour of log time, the guessers and networks that
    /// never tripped and failed nothing for [`FORGET_AFTER_SECS`].
    fn sweep(&mut self, now: Timestamp) {
        if self.next_sweep.is_some_and(|next| now < next) {
            return;
        }
        self.next_sweep = Some(now.plus(3600));
        let before = self.guessers.len();
        self.guessers.retain_unchanged(|_, g| !forgettable(g, now));
        self.forgotten.ips_expired += (before - self.guessers.len()) as u64;
        let before = self.networks.len();
        self.networks.retain_unchanged(|_, n| !forgettable(n, now));
        self.forgotten.networks_expired += (before - self.networks.len()) as u64;
    }

    /// Packs the guessers and networks idle for
    /// [`GuessingConfig::pack_idle_secs`].
    fn pack_idle(&mut self, now: Timestamp) {
        while let Some(guesser) = self.idle_guessers.next_due(now) {
            if let Some(entry) = self.guessers.get_mut_unchanged(&guesser) {
                self.idle_guessers.settle(guesser, entry, now);
            }
        }
        while let Some(network) = self.idle_networks.next_due(now) {
            if let Some(entry) = self.networks.get_mut_unchanged(&network) {
                self.idle_networks.settle(network, entry, now);
            }
        }
    }

    /// What was forgotten so far.
    pub fn forgotten(&self) -> Forgotten {
        self.forgotten
    }

    /// Counts a block the server itself imposed on a client.
    pub fn on_block(&mut self, block: &ServerBlock<'_>) {
        if block.kind != BlockKind::AntiHammering {
            return;
        }
        if let Client::Ip(ip) = block.client {
            let guesser = Guesser::Ip(ip);
            let guessers = &mut self.guessers;
            if let Some(state) = live_entry(guessers, &mut self.idle_guessers, &guesser) {
                state.server_blocks += u64::from(block.refusals);
            }
        }
    }

    /// Failed logins `ip` had before now that may have been guesses at
    /// `account` (lower-case), if enough to matter.
    pub fn prior_failures(&self, ip: IpAddr, account: &str) -> Option<PriorFailures> {
        let state = self.guessers.get(&Guesser::Ip(ip))?.read();
        self.guessed(&state, ip, account).then(|| PriorFailures {
            count: state.failures,
            first_line: state.first_line.clone(),
        })
    }

    /// Whether `state`'s failures, from `ip`, make a success as `account` a
    /// guess that worked: enough of them, at this account (see
    /// [`Guesses::may_have_guessed`]), from an IP the account had not
    /// logged in from before they began.
    fn guessed(&self, state: &Guesses, ip: IpAddr, account: &str) -> bool {
        let per_ip_limit = u64::from(self.config.ip_failures_per_hour);
        // The failures at this account, and since when, where the log
        // names it; else all of the IP's.
        let (since, failures) = state
            .at_accounts
            .get(account)
            .copied()
            .unwrap_or((state.first_seen, state.failures));
        // Behind an address the organisation shares, a few failures and a
        // login are a typo: only as many as a guesser makes count.
        let needed = if self.is_shared(ip, since) {
            per_ip_limit
        } else {
            u64::from(self.config.failures_before_success)
        };
        let known_since = self.known_clients.get(&(ip, name_hash(account)));
        failures >= needed
            && state.may_have_guessed(account, per_ip_limit)
            && known_since.is_none_or(|known| *known >= since)
    }

    /// Whether several accounts logged in from `ip`, the first before `at`:
    /// an office's address.
    fn is_shared(&self, ip: IpAddr, at: Timestamp) -> bool {
        self.good_ips
            .get(&ip)
            .is_some_and(|logins| logins.other_accounts && logins.first < at)
    }

    /// Takes new thresholds (after a restore with a changed configuration).
    pub fn set_config(&mut self, config: GuessingConfig) {
        self.idle_guessers.set_idle_secs(config.pack_idle_secs);
        self.idle_networks.set_idle_secs(config.pack_idle_secs);
        self.config = config;
    }

    /// Records that `ip` logged in or sent mail as `account` (`how` says
    /// which, e.g. "sent mail"). After enough failures, that is a guess that
    /// succeeded.
    pub fn on_success(&mut self, ip: IpAddr, account: &str, at: Timestamp, how: Success) {
        let mark = |g: &mut Guesses| {
            if g.succeeded_as.len() < 16 && !g.succeeded_as.iter().any(|(a, _, _)| a == account) {
                g.succeeded_as.push((account.to_string(), at, how));
            }
        };
        let guesser = Guesser::Ip(ip);
        if self
            .guessers
            .get(&guesser)
            .is_some_and(|state| self.guessed(&state.read(), ip, account))
        {
            let guessers = &mut self.guessers;
            if let Some(state) = live_entry(guessers, &mut self.idle_guessers, &guesser) {
                mark(state);
            }
        }
        let network = Network::of(ip);
        if self.networks.get(&network).is_some_and(|net| {
            let net = net.read();
            net.ips.contains(&ip) && self.guessed(&net.guesses, ip, account)
        }) {
            let networks = &mut self.networks;
            if let Some(net) = live_entry(networks, &mut self.idle_networks, &network) {
                mark(&mut net.guesses);
            }
        }
        let guessed_there = self
            .guessers
            .get(&guesser)
            .map(Packed::read)
            .is_some_and(|state| {
                state.may_have_guessed(account, 1)
                    && self
                        .known_clients
                        .get(&(ip, name_hash(account)))
                        .is_none_or(|since| *since >= state.first_seen)
            });
        self.spreads.on_success(ip, account, at, how, guessed_there);
        if self.known_clients.len() < MAX_KNOWN_CLIENTS {
            self.known_clients
                .entry((ip, name_hash(account)))
                .or_insert(at);
        }
        if self.good_ips.len() < MAX_KNOWN_CLIENTS || self.good_ips.contains_key(&ip) {
            let logins = self.good_ips.entry(ip).or_insert_with(|| IpLogins {
                account: account.into(),
                other_accounts: false,
                first: at,
                last: at,
            });
            logins.other_accounts |= *logins.account != *account;
            logins.first = logins.first.min(at);
            logins.last = logins.last.max(at);
        }
    }

    /// The incident of a mail client that keeps an old password, if `ip`'s
    /// failures are that: at one account at most, no faster than a mail
    /// program retries, from an IP that account (or, where the log names no
    /// account, some account) logged in from before they began or while
    /// they went on — a guesser stops once it is in.
    fn stale_client(&self, ip: IpAddr, state: &Guesses) -> Option<Incident> {
        let logins = self.good_ips.get(&ip)?;
        // Every account named logged in from here too (a few at most: one
        // user's old laptop, a colleague's typos behind the same NAT).
        if state.accounts_total > 3 || state.accounts_total as usize != state.at_accounts.len() {
            return None;
        }
        let mut first_login = logins.first;
        for name in state.tried() {
            first_login = first_login.min(*self.known_clients.get(&(ip, name_hash(name)))?);
        }
        let owner = match state.at_accounts.len() {
            0 => (!logins.other_accounts).then(|| logins.account.to_string()),
            1 => state.tried().next().map(str::to_string),
            _ => None,
        };
        let around = first_login < state.first_seen || state.last_seen > first_login.plus(300);
        let max_per_hour = STALE_CLIENT_MAX_PER_HOUR * (state.at_accounts.len().max(1) as u32);
        if !around || state.peak_hour.count > max_per_hour {
            return None;
        }
        let mut tried: Vec<String> = state.tried().map(str::to_string).collect();
        tried.sort();
        let whose = match tried.as_slice() {
            [] => "accounts that log in fine from there".to_string(),
            names => names.join(", "),
        };
        let account = owner;
        Some(Incident {
            account: account.clone(),
            ips: vec![ip],
            failed_logins: state.failures,
            accounts_tried_total: state.accounts_total,
            accounts_tried: tried,
            score: 20,
            reasons: vec![
                format!(
                    "{} failed logins from {ip} between {} and {} over {}, at most {} in an hour: a mail program retrying",
                    state.failures,
                    state.first_seen,
                    state.last_seen,
                    state.services.join(", "),
                    state.peak_hour.count
                ),
                format!(
                    "{ip} also logged in successfully as {whose} (first at {first_login}): an old password saved in one of its mail programs, not a guesser"
                ),
            ],
            evidence: vec![state.first_line.clone()],
            ..Incident::new(
                IncidentKind::MisconfiguredClient,
                state.first_seen..=state.last_seen,
                state.tripped_at.unwrap_or(state.last_seen),
            )
        })
    }

    /// Incidents in the order they tripped.
    pub fn incidents(&self) -> Vec<Incident> {
        self.incidents_since(0)
    }

    /// How many incidents have tripped so far.
    pub fn tripped_count(&self) -> usize {
        self.tripped.len()
    }

    /// Incidents that tripped after the first `skip`.
    pub fn incidents_since(&self, skip: usize) -> Vec<Incident> {
        self.tripped
            .iter()
            .skip(skip)
            .filter_map(|key| match key {
                TripKey::Guesser(g) => {
                    let state = self.guessers.get(g)?.read();
                    if let Guesser::Ip(ip) = g {
                        if let Some(incident) = self.stale_client(*ip, &state) {
                            return Some(incident);
                        }
                    }
                    let mut incident = state.incident(40);
                    incident.pattern = Some(GuessingPattern::Ip);
                    match g {
                        Guesser::Ip(ip) => incident.ips = vec![*ip],
                        Guesser::Host(host) => incident.reasons.insert(
                            0,
                            format!("from host {} (the log gives no IP)", lossy(host)),
                        ),
                    }
                    Some(incident)
                }
                TripKey::Network(network) => {
                    let net = self.networks.get(network)?.read();
                    let mut incident = net.guesses.incident(50);
                    let mut ips: Vec<IpAddr> = net.ips.iter().copied().collect();
                    ips.sort();
                    incident.reasons.insert(
                        0,
                        format!(
                            "slow distributed guessing from {}{} IPs of {}, each staying under the per-IP limit",
                            if net.ips_inexact { "at least " } else { "" },
                            net.ips_total,
                            network
                        ),
                    );
                    incident.ips = ips;
                    incident.network = Some(*network);
                    incident.pattern = Some(GuessingPattern::Network);
                    Some(incident)
                }
                TripKey::Spread(index) => self.spreads.incident(*index),
            })
            .collect()
    }
}
