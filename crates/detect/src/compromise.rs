//! The `compromised_account` detector: the table of accounts (it hands out
//! the [`AccountId`]s every detector indexes by), their traffic per sending
//! IP, and the signals that score it.
//!
//! Volume alone never makes an incident (a newsletter is volume). Each
//! account's traffic is split by sending IP into streams, and a stream becomes
//! suspect through behaviour: an account that had never sent mail waking up, an
//! IP the account had never used, an IP that failed logins first, recipients
//! refused en masse (spam lists are full of dead addresses), a foreign envelope
//! From. A stream trips when its score crosses the threshold with enough
//! recipients behind it; the account's incident gathers its tripped streams.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use mailfuse_core::canary::Canaries;
use mailfuse_core::net::is_internal;
use mailfuse_core::rows::{Rows, RowsOf, TrackedMap, TrackedVec};
use mailfuse_core::safety::Safety;
use mailfuse_core::Timestamp;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::account_id::AccountId;
use crate::correlate::RecipientChange;
use crate::geo::{GeoEvidence, GeoHistory, GeoLookup};
use crate::guessing::PriorFailures;
use crate::incident::{evidence_line, lossy, Incident, IncidentKind};
use crate::local_domains::{split_address, LocalDomain, LocalDomains};
use crate::packed::{Held, IdleQueue, Pack, Packed};
use crate::summary::{self, AccountRows};
use crate::window::{HourWindow, Peak};

mod packed_row;

/// Thresholds of the compromised-account detector.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompromiseConfig {
    /// Domains of this mail server. Empty: inferred (see
    /// [`crate::local_domains`]).
    pub local_domains: Vec<String>,
    /// Learning period, in seconds: an IP is usual for an account once it was
    /// used this long ago; an account that sent nothing for this long after
    /// the log starts counts as dormant when it starts sending.
    pub baseline_secs: i64,
    /// Score (0–100) at which a stream trips (`compromised_account`: watch
    /// may lock).
    pub score_threshold: u32,
    /// Score at which a stream is suspicious (`suspicious_activity`: alerts
    /// only), below the threshold above.
    pub suspicious_threshold: u32,
    /// Recipients a stream needs before it can trip (a traveller sending three
    /// mails from a hotel is not an incident).
    pub min_recipients: u32,
    /// Recipients within a sliding hour that count as a burst.
    pub burst_recipients_per_hour: u32,
    /// Share of recipients refused permanently that looks like a spam list…
    pub failure_ratio: f64,
    /// …with at least this many refused.
    pub min_failed_recipients: u32,
    /// Share of messages with a foreign envelope From that looks forged.
    pub foreign_from_ratio: f64,
    /// A lower share of recipients refused permanently that still counts
    /// (weaker): phished accounts mailing their own contacts' lists.
    pub some_failure_ratio: f64,
    /// Recipients within one minute that no person types: a program.
    pub rapid_recipients_per_minute: u32,
    /// Seconds without a login or a message after which an account's state
    /// is packed into a few hundred bytes (unpacked at its next line), once
    /// more than 10,000 accounts are live: a provider's million mailboxes
    /// are mostly idle. 0 packs after every line, however few (slow; for
    /// tests).
    pub pack_idle_secs: i64,
}

impl Default for CompromiseConfig {
    fn default() -> Self {
        CompromiseConfig {
            local_domains: Vec::new(),
            baseline_secs: 24 * 3600,
            score_threshold: 50,
            suspicious_threshold: 30,
            min_recipients: 15,
            burst_recipients_per_hour: 60,
            failure_ratio: 0.2,
            min_failed_recipients: 8,
            foreign_from_ratio: 0.5,
            some_failure_ratio: 0.08,
            rapid_recipients_per_minute: 20,
            pack_idle_secs: 3600,
        }
    }
}

/// Points each signal adds to a stream's score.
mod points {
    pub const DORMANT: u32 = 30;
    pub const NEW_IP: u32 = 25;
    pub const NEW_INTERNAL_IP: u32 = 10;
    pub const NEW_IP_SHORT_HISTORY: u32 = 15;
    pub const GUESSED: u32 = 35;
    pub const FAILURES: u32 = 40;
    pub const FOREIGN_FROM: u32 = 30;
    pub const BURST: u32 = 20;
    pub const SOME_REFUSED: u32 = 15;
    pub const RAPID: u32 = 15;
    pub const ROTATION: u32 = 35;
    /// An account `mailfuse audit --save` found nobody logs into sends: the
    /// `sales` case, a hijack alone once the stream has its recipients.
    pub const NEVER_LOGS_IN: u32 = 50;
}

/// Message and recipient counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Messages submitted (counted once their envelope sender is known).
    pub messages: u64,
    /// Distinct recipients of those messages, each counted once per message
    /// whether named at submission or only in a delivery line.
    pub recipients: u64,
    /// Recipients outside the local domains (configured, else inferred from
    /// the logins' domains): the ones spam goes to.
    pub external_recipients: u64,
    /// Recipients refused permanently (5.x.x), each once per message: a high
    /// share of them is the mark of a bought or scraped address list.
    pub failed_recipients: u64,
    /// Messages whose envelope From is in neither the account's own domain
    /// nor a local one (a null sender does not count): spammers forge the
    /// sender of their campaign.
    pub foreign_from_messages: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.messages += other.messages;
        self.recipients += other.recipients;
        self.external_recipients += other.external_recipients;
        self.failed_recipients += other.failed_recipients;
        self.foreign_from_messages += other.foreign_from_messages;
    }
}

/// How new a sending IP was for its account when it first sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Novelty {
    /// Used by the account for longer than the learning period.
    Usual,
    /// Too early in the log to tell.
    Learning,
    /// Never used by an account that was established.
    NewIp { account_since: Timestamp },
    /// Not among the IPs an account used before, though the log shows it
    /// for less than the learning period: new, with less confidence.
    NewIpShortHistory { account_since: Timestamp },
    /// The account sent nothing for a long time and now sends from here.
    Dormant { quiet_since: Timestamp },
}

impl Novelty {
    /// Whether the IP was new to the account (not its usual, nor too early
    /// to tell).
    fn is_new(self) -> bool {
        !matches!(self, Novelty::Usual | Novelty::Learning)
    }
}

/// A stream's messages more than this apart belong to separate runs.
const RUN_GAP_SECS: i64 = 6 * 3600;

/// One account's traffic from one IP.
#[derive(Debug, Serialize, Deserialize)]
struct Stream {
    ip: IpAddr,
    first_seen: Timestamp,
    last_seen: Timestamp,
    /// When the current run of messages began (after a gap of
    /// [`RUN_GAP_SECS`]), and its first message with a foreign From or a
    /// refused recipient: a usual IP (an infected office PC) turns
    /// suspicious mid-stream, and the incident starts there, not at the
    /// days of honest mail before.
    #[serde(default)]
    run: Option<(Timestamp, Option<Timestamp>)>,
    /// When the suspicious activity began, fixed when the stream trips.
    #[serde(default)]
    suspect_since: Option<Timestamp>,
    counts: Counts,
    hour: HourWindow,
    peak_hour: Peak,
    /// The most recipients in one minute.
    #[serde(default)]
    peak_minute: Peak,
    /// Recipients refused within the sliding hour…
    #[serde(default = "HourWindow::hour")]
    failures_hour: HourWindow,
    /// …and the first hour whose refusals looked like a spam list's (refused,
    /// recipients, when): an infected office PC's spam among days of honest
    /// mail from the same IP, which the whole stream's share would hide.
    #[serde(default)]
    spam_hour: Option<(u32, u32, Timestamp)>,
    novelty: Novelty,
    prior_failures: Option<PriorFailures>,
    first_line: String,
    example_failure: Option<String>,
    example_foreign_from: Option<String>,
    /// The foreign From domains of its messages, with their counts.
    #[serde(default)]
    foreign_tally: Tally,
    tripped_at: Option<Timestamp>,
    /// When it reached the suspicious threshold without tripping.
    #[serde(default)]
    suspected_at: Option<Timestamp>,
    /// What the GeoIP databases said of its IP when it first sent.
    #[serde(default)]
    geo: Option<Box<GeoEvidence>>,
}

/// Lower-case foreign From domains with how many messages used each (at most
/// [`MAX_FOREIGN_TALLY`]): when one turns out local later in the log
/// (delivered locally, say), its messages are taken back out of the foreign
/// counts. Messages of domains past the cap stay counted as judged.
type Tally = Vec<(Box<[u8]>, u64)>;

/// Most foreign From domains tallied per stream and per account.
const MAX_FOREIGN_TALLY: usize = 8;

fn tally(tally: &mut Tally, domain: &[u8]) {
    if let Some(entry) = tally.iter_mut().find(|(d, _)| **d == *domain) {
        entry.1 += 1;
    } else if tally.len() < MAX_FOREIGN_TALLY {
        tally.push((domain.into(), 1));
    }
}

/// Removes `domain` from the tally; how many messages it had.
fn untally(tally: &mut Tally, domain: &[u8]) -> u64 {
    match tally.iter().position(|(d, _)| **d == *domain) {
        Some(i) => tally.remove(i).1,
        None => 0,
    }
}

/// The signals a stream shows, with their points.
struct Signals {
    score: u32,
    behavioural: bool,
}

/// How far back a webmail login is taken as the sender of the account's
/// mail from the server itself (Kerio's `0.0.0.0`, loopback): a webmail
/// session lasts hours, and the newest login wins.
const WEB_LOGIN_WINDOW_SECS: i64 = 24 * 3600;

/// Most IP streams kept per account; traffic from further IPs is only totalled.
const MAX_STREAMS: usize = 256;
/// Streams an account may have and still be scanned for an IP's; past
/// them, the stream is looked up in an index ([`Account::stream_of`]).
const STREAMS_SCANNED: usize = 8;
/// How much earlier than an IP an account must have been seen for the IP to
/// count as new to it (a mail program's logins from two addresses at once
/// are one start).
const NEW_IP_MARGIN_SECS: i64 = 600;

/// Tripped streams whose reasons an incident spells out.
const MAX_STREAMS_EXPLAINED: usize = 3;

/// IPs new to an account that make a rotation, within one episode.
const ROTATION_MIN_IPS: u64 = 5;
/// A rotation that has not tripped ends after this long without mail.
const ROTATION_QUIET_SECS: i64 = 24 * 3600;
/// Most rotation IPs kept per account (the rest are counted).
const MAX_ROTATION_IPS: usize = 256;

/// An account's mail from IPs new to it, summed over all of them: proxies
/// taking turns send a handful each, so no one IP's stream has enough to
/// judge, and the incident must name every one.
#[derive(Debug, Serialize, Deserialize)]
struct Rotation {
    first_seen: Timestamp,
    last_seen: Timestamp,
    counts: Counts,
    ips: Vec<IpAddr>,
    ips_total: u64,
    tripped_at: Option<Timestamp>,
}

impl Rotation {
    fn new(at: Timestamp) -> Self {
        Rotation {
            first_seen: at,
            last_seen: at,
            counts: Counts::default(),
            ips: Vec::new(),
            ips_total: 0,
            tripped_at: None,
        }
    }

    fn note_ip(&mut self, ip: IpAddr) {
        if !self.ips.contains(&ip) {
            self.ips_total += 1;
            if self.ips.len() < MAX_ROTATION_IPS {
                self.ips.push(ip);
            }
        }
    }

    /// Its score, if it has evidence beyond the new IPs (a phone on a
    /// carrier's changing IPs sends its owner's mail: nothing refused,
    /// nothing forged).
    fn score(&self, config: &CompromiseConfig) -> Option<u32> {
        if self.ips_total < ROTATION_MIN_IPS
            || self.counts.recipients < u64::from(config.min_recipients)
        {
            return None;
        }
        let evidence = [
            (failures_signal(&self.counts, config), points::FAILURES),
            (
                some_refused_signal(&self.counts, config),
                points::SOME_REFUSED,
            ),
            (
                foreign_from_signal(&self.counts, config),
                points::FOREIGN_FROM,
            ),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, points)| points)
        .sum::<u32>();
        (evidence > 0).then_some(points::ROTATION + evidence)
    }
}

/// Days of the organisation's mail kept (the latest).
const DAYS_KEPT: usize = 60;

/// Messages per UTC day, all accounts together.
#[derive(Debug, Default, Serialize, Deserialize)]
struct OrganisationDays {
    /// (day number, messages), oldest first.
    days: Vec<(i64, u64)>,
}

impl OrganisationDays {
    fn count(&mut self, at: Timestamp) {
        let day = at.as_secs().div_euclid(86_400);
        // Lines come in time order: today is the newest day, or near it.
        match self.days.iter_mut().rev().find(|(d, _)| *d == day) {
            Some((_, n)) => *n += 1,
            None => {
                if self.days.len() >= DAYS_KEPT {
                    self.days.remove(0);
                }
                self.days.push((day, 1));
            }
        }
    }

    /// Whole days before `at`'s on which the organisation worked: at least
    /// 10 messages and 30 % of its busiest day's.
    fn busy_before(&self, at: Timestamp) -> usize {
        let today = at.as_secs().div_euclid(86_400);
        let busiest = self.days.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let busy = (busiest * 3 / 10).max(10);
        self.days
            .iter()
            .filter(|(day, n)| *day < today && *n >= busy)
            .count()
    }
}

/// Most known IPs remembered per account.
const MAX_KNOWN_IPS: usize = 1024;
/// Accounts that make an IP the organisation's own, once the first of them
/// used it [`SHARED_SINCE_SECS`] ago (an office on Monday morning after a
/// weekend without mail; an attacker logging into three accounts at once
/// does not make its IP the office's).
const SHARED_BY: usize = 3;
const SHARED_SINCE_SECS: i64 = 1800;
/// Most IPs followed for sharing.
const MAX_SHARED_IPS: usize = 100_000;

/// The accounts that used one IP, and since when.
#[derive(Debug, Serialize, Deserialize)]
struct SharedIp {
    since: Timestamp,
    accounts: Vec<AccountId>,
}

impl SharedIp {
    fn is_organisations(&self, at: Timestamp) -> bool {
        self.accounts.len() >= SHARED_BY && at.as_secs() - self.since.as_secs() >= SHARED_SINCE_SECS
    }
}

/// One account: what the table knows of it, and its streams.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Account {
    pub(crate) name: String,
    /// Lower-case domain of the login, if it has one.
    domain: Option<Box<[u8]>>,
    /// For a login without a domain: the domain of the first envelope From
    /// whose local part is the login, sent from an IP that was not suspect
    /// (the account's own domain, as a login's domain would be).
    #[serde(default)]
    from_domain: Option<Box<[u8]>>,
    pub(crate) first_seen: Timestamp,
    pub(crate) last_seen: Timestamp,
    first_sent: Option<Timestamp>,
    /// When a dormant account started sending.
    woke_at: Option<(Timestamp, Timestamp)>,
    pub(crate) totals: Counts,
    hour: HourWindow,
    pub(crate) peak_minute: Peak,
    pub(crate) peak_hour: Peak,
    pub(crate) services: Vec<String>,
    /// A hash of the service last noted, as written: the same one nearly
    /// always comes back, and matching it spares reading the names from
    /// the heap, a cache miss or two at every message. Not saved.
    #[serde(skip)]
    last_service: u64,
    known_ips: FxHashMap<IpAddr, Timestamp>,
    /// The newest webmail login from elsewhere than this server (Kerio's
    /// `HTTP/WebMail`, Roundcube, Dovecot behind a local webmail): mail the
    /// account submits from the server itself is attributed to it.
    web_login: Option<(IpAddr, Timestamp)>,
    streams: Vec<Stream>,
    /// Where each stream's IP is in `streams`, once they are more than a
    /// scan is worth ([`STREAMS_SCANNED`]): a hijacked account sending from
    /// a botnet's IPs has up to [`MAX_STREAMS`] streams, some 470 bytes
    /// apart, and scanning them at every line of its mail missed the cache
    /// at each. Built when first needed; not saved.
    #[serde(skip)]
    stream_index: Option<Box<FxHashMap<IpAddr, usize>>>,
    unattributed: Counts,
    pub(crate) detected_at: Option<Timestamp>,
    /// When its first stream became suspicious.
    #[serde(default)]
    suspected_at: Option<Timestamp>,
    /// Its mail from IPs new to it, summed.
    #[serde(default)]
    rotation: Option<Box<Rotation>>,
    /// The foreign From domains of all its messages, with their counts.
    #[serde(default)]
    foreign_tally: Tally,
    /// Where its logins and messages came from (with GeoIP databases).
    #[serde(default)]
    geo: Option<Box<GeoHistory>>,
    /// Its first message to a canary recipient: proof of a hijack.
    #[serde(default)]
    canary: Option<Box<CanaryHit>>,
}

/// An account's first message to a canary recipient (`[canary]`).
#[derive(Debug, Serialize, Deserialize)]
struct CanaryHit {
    /// The canary, as configured.
    recipient: String,
    /// The IP the message came from (as its stream's).
    ip: IpAddr,
    at: Timestamp,
    /// The log line that named the canary.
    line: String,
}

impl Account {
    /// An account with nothing known but its name.
    fn new(name: &str) -> Account {
        Account {
            name: name.to_owned(),
            domain: None,
            from_domain: None,
            first_seen: Timestamp::default(),
            last_seen: Timestamp::default(),
            first_sent: None,
            woke_at: None,
            totals: Counts::default(),
            hour: HourWindow::hour(),
            peak_minute: Peak::default(),
            peak_hour: Peak::default(),
            services: Vec::new(),
            last_service: 0,
            known_ips: FxHashMap::default(),
            web_login: None,
            streams: Vec::new(),
            stream_index: None,
            unattributed: Counts::default(),
            detected_at: None,
            suspected_at: None,
            rotation: None,
            foreign_tally: Tally::new(),
            geo: None,
            canary: None,
        }
    }

    /// The index of `ip`'s stream, if the account has one. Each IP has one
    /// stream at most (one is added only when none is found).
    fn stream_of(&mut self, ip: IpAddr) -> Option<usize> {
        if self.streams.len() <= STREAMS_SCANNED {
            return self.streams.iter().position(|s| s.ip == ip);
        }
        let streams = &self.streams;
        let index = self.stream_index.get_or_insert_with(|| {
            let mut index = FxHashMap::default();
            for (i, stream) in streams.iter().enumerate() {
                index.entry(stream.ip).or_insert(i);
            }
            Box::new(index)
        });
        index.get(&ip).copied()
    }

    /// Appends `stream` (of an IP with none yet) and returns its index,
    /// kept in the index once there is one: streams are only ever
    /// appended, so the indexes [`Account::stream_of`] gives hold.
    fn add_stream(&mut self, stream: Stream) -> usize {
        // Most accounts send from one IP or two: grow by half, not to the
        // four streams a first push would make room for.
        if self.streams.len() == self.streams.capacity() {
            self.streams
                .reserve_exact(self.streams.len().div_ceil(2).max(1));
        }
        let index = self.streams.len();
        if let Some(streams_of) = &mut self.stream_index {
            streams_of.insert(stream.ip, index);
        }
        self.streams.push(stream);
        index
    }

    /// Distinct sending IPs (0.0.0.0 = webmail with no login to match).
    pub(crate) fn sending_ips(&self) -> Vec<IpAddr> {
        self.streams.iter().map(|s| s.ip).collect()
    }

    /// Sending IPs that were new for the account when they first sent.
    pub(crate) fn new_ips(&self) -> Vec<IpAddr> {
        self.streams
            .iter()
            .filter(|s| {
                matches!(
                    s.novelty,
                    Novelty::NewIp { .. }
                        | Novelty::NewIpShortHistory { .. }
                        | Novelty::Dormant { .. }
                )
            })
            .map(|s| s.ip)
            .collect()
    }
}

/// An idle account packs to the bytes of its saved row; its name is the
/// first field.
impl Pack for Account {
    const TABLE: &'static str = "accounts";

    fn last_seen(&self) -> Timestamp {
        self.last_seen
    }

    fn salvage(bytes: &[u8]) -> Account {
        Account::new(packed_name(bytes))
    }
}

/// The account's name, packed or not.
fn name_of(slot: &Packed<Account>) -> Cow<'_, str> {
    match slot {
        Packed::Live(account) => Cow::Borrowed(&account.name),
        Packed::Bytes { .. } => Cow::Owned(
            slot.read_packed(|plain| packed_name(plain).to_owned())
                .unwrap_or_default(),
        ),
    }
}

/// The account of `id` in `accounts`, unpacked (and queued in `live`) if
/// it was packed. A function of the two fields, not a method, so that
/// callers keep using the table's other fields beside it.
fn live_account<'a>(
    accounts: &'a mut TrackedVec<Packed<Account>>,
    live: &mut IdleQueue<AccountId>,
    id: AccountId,
) -> &'a mut Account {
    live.unpack(id, &mut accounts[id.index()])
}

/// A lower-case login as the ids' key: held in place up to 32 bytes (most
/// logins), so a look-up compares it in the table's own memory instead of
/// reading a name from the heap, a cache miss at every message.
type LoginKey = smallvec::SmallVec<[u8; 32]>;

/// The hash [`Account::last_service`] holds of `service` (never 0, the
/// hash of no service yet).
fn service_hash(service: &[u8]) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    std::hash::Hasher::write(&mut hasher, service);
    std::hash::Hasher::finish(&hasher) | 1
}

/// The name a packed account starts with (its first field), read without
/// decoding the rest.
fn packed_name(bytes: &[u8]) -> &str {
    let mut rest = bytes;
    rmp::decode::read_array_len(&mut rest)
        .ok()
        .and_then(|_| rmp::decode::read_str_from_slice(rest).ok())
        .map_or("", |(name, _)| name)
}

/// `bytes` in ASCII lower case, written into `scratch`.
///
/// Copied whole, then lowered in place: a loop without a branch per byte,
/// which the compiler runs on vectors (an `extend` of mapped bytes went
/// byte by byte, at every login and recipient).
fn lowercase_into<'s>(bytes: &[u8], scratch: &'s mut Vec<u8>) -> &'s [u8] {
    scratch.clear();
    scratch.extend_from_slice(bytes);
    scratch.make_ascii_lowercase();
    scratch
}

/// Whether `address`'s domain (the part after its last `@`) is `domain`
/// (lower-case, without `@`) in any case. The address's end is compared:
/// as `domain` has no `@`, the one before it is the last. The bytes are
/// compared whole before case folding, as they nearly always come
/// lower-case.
fn has_domain(address: &[u8], domain: &[u8]) -> bool {
    let Some(at) = address.len().checked_sub(domain.len() + 1) else {
        return false;
    };
    let tail = &address[at + 1..];
    !domain.is_empty()
        && address[at] == b'@'
        && (tail == domain || tail.eq_ignore_ascii_case(domain))
}

/// The part after the last `@`, if any.
fn domain_of(address: &[u8]) -> Option<&[u8]> {
    let at = address.iter().rposition(|&b| b == b'@')?;
    Some(&address[at + 1..]).filter(|d| !d.is_empty())
}

/// The compromised-account detector's state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Accounts {
    /// Set from the configuration, not stored.
    #[serde(skip)]
    config: CompromiseConfig,
    /// Which addresses are this server; set from the configuration.
    #[serde(skip)]
    safety: Safety,
    /// Lower-case logins the audit found nobody logs into (`audit --save`,
    /// read from the state by watch); not stored with the detector.
    #[serde(skip)]
    never_logs_in: HashSet<Box<[u8]>>,
    /// Each lower-case login's account; not saved: rebuilt from the
    /// accounts' names when restored ([`Accounts::reindex`]), a million
    /// rows fewer in a provider's state.
    #[serde(skip)]
    ids: FxHashMap<LoginKey, AccountId>,
    /// The logins that are not UTF-8, whose names are lossy: saved, so
    /// that the rebuilt ids still tell them apart.
    #[serde(default)]
    raw_ids: TrackedMap<Box<[u8]>, AccountId>,
    /// Boxed or packed: growing the table moves pointers, not accounts.
    accounts: TrackedVec<Packed<Account>>,
    /// The accounts held live, to pack once idle (restored ones are
    /// packed); set from the configuration.
    #[serde(skip)]
    live: IdleQueue<AccountId>,
    /// Renamed and defaulted when reasons came in, so that snapshots from
    /// before still restore (their plain set is skipped; the logins'
    /// domains are taken again by [`Accounts::set_config`]).
    #[serde(default, rename = "local_domains")]
    local: LocalDomains,
    log_start: Option<Timestamp>,
    /// Accounts in the order their incident tripped.
    tripped: Vec<AccountId>,
    /// Accounts in the order their suspicious activity was noticed.
    #[serde(default)]
    suspected: Vec<AccountId>,
    /// Messages the organisation sent per day: which days it worked.
    #[serde(default)]
    days: OrganisationDays,
    /// IPs by the accounts that logged in or sent from them (up to
    /// [`SHARED_BY`]): the organisation's own networks (an office NAT) are
    /// used by many accounts.
    #[serde(default)]
    shared_ips: TrackedMap<IpAddr, SharedIp>,
    /// Reused buffer for lower-casing names without allocating.
    #[serde(skip)]
    scratch: Vec<u8>,
    /// The GeoIP databases, if configured; set from the configuration.
    #[serde(skip)]
    geo: Option<Arc<GeoLookup>>,
    /// The canary recipients (`[canary]`); set from the configuration.
    #[serde(skip)]
    canaries: Canaries,
}

impl Accounts {
    /// A detector with `config`'s thresholds, knowing this server's
    /// addresses from `safety`.
    pub fn new(config: CompromiseConfig, safety: Safety) -> Self {
        let local = LocalDomains::configured(&config.local_domains);
        Accounts {
            live: IdleQueue::new(config.pack_idle_secs),
            config,
            safety,
            local,
            ..Accounts::default()
        }
    }

    /// Takes this server's addresses anew (after a restore).
    pub fn set_safety(&mut self, safety: Safety) {
        self.safety = safety;
    }

    /// Takes the canary recipients (none: no canary trips).
    pub fn set_canaries(&mut self, canaries: Canaries) {
        self.canaries = canaries;
    }

    /// Takes the GeoIP databases (none: no geo evidence).
    pub fn set_geo(&mut self, geo: Option<Arc<GeoLookup>>) {
        self.geo = geo;
    }

    /// Notes the time of an event: the first is the start of learning; now
    /// and then, the accounts idle since long enough are packed.
    pub fn note_time(&mut self, at: Timestamp) {
        self.log_start.get_or_insert(at);
        self.pack_idle(at);
    }

    /// Packs the live accounts without a login or message for
    /// [`CompromiseConfig::pack_idle_secs`].
    fn pack_idle(&mut self, now: Timestamp) {
        while let Some(id) = self.live.next_due(now) {
            if let Some(slot) = self.accounts.get_mut_unchanged(id.index()) {
                self.live.settle(id, slot, now);
            }
        }
    }

    /// The accounts the audit found nobody logs into: their sending is
    /// strong evidence (`points::NEVER_LOGS_IN`).
    pub fn set_never_logs_in(&mut self, accounts: impl IntoIterator<Item = String>) {
        self.never_logs_in = accounts
            .into_iter()
            .map(|a| a.to_ascii_lowercase().into_bytes().into_boxed_slice())
            .collect();
    }

    /// Takes new thresholds and local domains (after a restore with a
    /// changed configuration); inferred local domains are kept unless
    /// domains are now configured.
    pub fn set_config(&mut self, config: CompromiseConfig) {
        let infer_domains = config.local_domains.is_empty();
        if !infer_domains {
            self.local = LocalDomains::configured(&config.local_domains);
        }
        self.reindex(infer_domains);
        self.live.set_idle_secs(config.pack_idle_secs);
        self.config = config;
    }

    /// Rebuilds, in one pass over the accounts (each read once, packed or
    /// not), what a restored state derives rather than saves: the ids of
    /// their logins, and, if `infer_domains`, the local domains their
    /// logins show.
    fn reindex(&mut self, infer_domains: bool) {
        let raw: FxHashSet<AccountId> = self.raw_ids.values().copied().collect();
        let mut ids = FxHashMap::default();
        ids.reserve(self.accounts.len());
        for (index, account) in self.accounts.iter().map(Packed::read).enumerate() {
            let id = AccountId::from_index(index);
            if !raw.contains(&id) {
                ids.insert(LoginKey::from_slice(account.name.as_bytes()), id);
            }
            if infer_domains {
                if let Some(domain) = &account.domain {
                    self.local.note_login_domain(domain);
                }
                if let Some(domain) = &account.from_domain {
                    self.local.note_login_from(domain);
                }
            }
        }
        ids.extend(
            self.raw_ids
                .iter()
                .map(|(key, id)| (LoginKey::from_slice(key), *id)),
        );
        self.ids = ids;
    }

    /// The tracked collections, for saving and loading rows.
    pub fn rows(&mut self) -> RowsOf<'_> {
        vec![
            ("account_ids", &mut self.raw_ids as &mut dyn Rows),
            ("accounts", &mut self.accounts),
            ("shared_ips", &mut self.shared_ips),
        ]
    }

    /// The id of `login` (case-insensitive), registering it if new.
    pub fn id(&mut self, login: &[u8], at: Timestamp) -> AccountId {
        // Logins nearly always come lower-case: looked up as they are first.
        // Every key is lower-case, so a hit is the one the lowered login
        // finds; only a miss pays for lowering.
        if let Some(id) = self.ids.get(login) {
            return *id;
        }
        let key = lowercase_into(login, &mut self.scratch);
        if let Some(id) = self.ids.get(key) {
            return *id;
        }
        let key: Box<[u8]> = key.into();
        let id = AccountId::from_index(self.accounts.len());
        let domain: Option<Box<[u8]>> = domain_of(&key).map(Into::into);
        let newly_local = domain
            .as_ref()
            .and_then(|d| self.local.note_login_domain(d));
        self.accounts.push(Packed::new(Account {
            domain,
            first_seen: at,
            last_seen: at,
            ..Account::new(&lossy(&key))
        }));
        self.live.note(id, at);
        if std::str::from_utf8(&key).is_err() {
            self.raw_ids.insert(key.clone(), id);
        }
        self.ids.insert(LoginKey::from_slice(&key), id);
        if let Some(d) = newly_local {
            self.forgive(&d);
        }
        id
    }

    /// `domain` (lower-case) was found local: messages counted with a
    /// foreign From of it are taken back out of the foreign counts.
    fn forgive(&mut self, domain: &[u8]) {
        // A packed account tallied the domain only if its bytes hold the
        // domain as written there.
        let Ok(written) = rmp_serde::to_vec(domain) else {
            return;
        };
        let finder = memchr::memmem::Finder::new(&written);
        self.accounts.update_each(|slot| {
            let packed = match slot.read_packed(|plain| finder.find(plain).is_some()) {
                Some(false) => return false,
                Some(true) => true,
                None => false,
            };
            let account = slot.live();
            let n = untally(&mut account.foreign_tally, domain);
            account.totals.foreign_from_messages =
                account.totals.foreign_from_messages.saturating_sub(n);
            let mut changed = n > 0;
            for stream in &mut account.streams {
                let n = untally(&mut stream.foreign_tally, domain);
                stream.counts.foreign_from_messages =
                    stream.counts.foreign_from_messages.saturating_sub(n);
                changed |= n > 0;
            }
            if packed {
                slot.repack();
            }
            changed
        });
    }

    /// Notes a service the account submitted mail through (SMTP, webmail,
    /// Postfix's `submission`…).
    pub fn note_service(&mut self, id: AccountId, service: &[u8]) {
        let account = live_account(&mut self.accounts, &mut self.live, id);
        let hash = service_hash(service);
        if account.last_service == hash {
            return;
        }
        account.last_service = hash;
        let services = &mut account.services;
        // The same spelling nearly always comes back: compared whole first,
        // before byte-by-byte case folding.
        let known = services
            .iter()
            .any(|s| s.as_bytes() == service || s.as_bytes().eq_ignore_ascii_case(service));
        if !known && services.len() < 8 {
            services.push(lossy(service));
        }
    }

    /// Every account seen, in id order (for the report table).
    pub(crate) fn all(&self) -> impl Iterator<Item = Held<'_, Account>> {
        self.accounts.iter().map(Packed::read)
    }

    /// The report's rows of every account seen, taken out of the table: a
    /// run's report is built while the table is freed, not beside it. A
    /// packed account's row is read from its bytes ([`packed_row`]), not
    /// unpacked.
    pub(crate) fn take_rows(&mut self) -> AccountRows {
        self.ids = FxHashMap::default();
        self.raw_ids = TrackedMap::default();
        self.live.clear();
        std::mem::take(&mut self.accounts)
            .into_iter()
            .filter_map(|slot| match slot.read_packed(packed_row::row).flatten() {
                Some(row) => row,
                None => summary::row(&slot.into_inner()),
            })
            .collect()
    }

    /// An account id held here or in `more` that names no account of the
    /// table (ids index it): only a damaged saved state has one, which
    /// must be refused rather than indexed.
    pub fn stray_id(&self, more: impl IntoIterator<Item = AccountId>) -> Option<AccountId> {
        let count = self.accounts.len();
        self.raw_ids
            .values()
            .copied()
            .chain(self.tripped.iter().copied())
            .chain(self.suspected.iter().copied())
            .chain(
                self.shared_ips
                    .values()
                    .flat_map(|s| s.accounts.iter().copied()),
            )
            .chain(more)
            .find(|id| id.index() >= count)
    }

    /// The account's normalised name (a packed account's, copied out).
    pub fn name(&self, id: AccountId) -> Cow<'_, str> {
        name_of(&self.accounts[id.index()])
    }

    /// A successful login: the IP becomes known for the account. A webmail
    /// login from elsewhere than this server is what the account's mail
    /// from the server itself is attributed to.
    pub fn on_login(&mut self, id: AccountId, ip: IpAddr, service: &[u8], at: Timestamp) {
        note_shared(&mut self.shared_ips, ip, id, at);
        let account = live_account(&mut self.accounts, &mut self.live, id);
        account.last_seen = account.last_seen.max(at);
        remember_ip(account, ip, at);
        if let Some(geo) = &self.geo {
            geo.observe(account.geo.get_or_insert_with(Box::default), ip, at);
        }
        let webmail =
            contains_ignore_case(service, b"http") || contains_ignore_case(service, b"web");
        if webmail && !self.safety.is_this_server(ip) {
            account.web_login = Some((ip, at));
        }
    }

    /// A message submitted by the account. Returns the IP the message is
    /// attributed to: one from this server (webmail's `0.0.0.0`, loopback,
    /// the server's own address) takes the account's newest webmail login
    /// of the last day when there is one.
    #[allow(clippy::too_many_arguments)]
    pub fn on_message(
        &mut self,
        id: AccountId,
        ip: Option<IpAddr>,
        at: Timestamp,
        envelope_from: &[u8],
        line: &[u8],
        prior_failures: impl FnOnce(IpAddr, &str) -> Option<PriorFailures>,
    ) -> IpAddr {
        let baseline = self.config.baseline_secs;
        let log_start = self.log_start.unwrap_or(at);
        let account = live_account(&mut self.accounts, &mut self.live, id);
        let ip = resolve_ip(account, ip, at, &self.safety);
        account.last_seen = account.last_seen.max(at);
        if account.first_sent.is_none() {
            // Silent through a working day of the organisation: a weekend
            // or a holiday at the log's start silences everyone.
            if at.as_secs() - log_start.as_secs() > baseline && self.days.busy_before(at) > 0 {
                account.woke_at = Some((at, log_start));
            }
            account.first_sent = Some(at);
        }
        self.days.count(at);
        let (in_hour, in_minute) = account.hour.add_with_bucket(at, 1);
        account.peak_hour.offer(in_hour, at);
        account.peak_minute.offer(in_minute, at);
        let geo = self
            .geo
            .as_ref()
            .and_then(|g| g.observe(account.geo.get_or_insert_with(Box::default), ip, at));

        let found = account.stream_of(ip);
        let index = match found {
            Some(i) => Some(i),
            None if account.streams.len() < MAX_STREAMS => {
                let organisations = self
                    .shared_ips
                    .get(&ip)
                    .is_some_and(|shared| shared.is_organisations(at));
                let novelty = if organisations {
                    Novelty::Usual
                } else {
                    novelty_of(account, ip, at, baseline)
                };
                let prior_failures = prior_failures(ip, &account.name);
                Some(account.add_stream(Stream {
                    ip,
                    first_seen: at,
                    last_seen: at,
                    run: None,
                    suspect_since: None,
                    counts: Counts::default(),
                    hour: HourWindow::hour(),
                    peak_hour: Peak::default(),
                    peak_minute: Peak::default(),
                    failures_hour: HourWindow::hour(),
                    spam_hour: None,
                    novelty,
                    prior_failures,
                    first_line: evidence_line(line),
                    example_failure: None,
                    example_foreign_from: None,
                    foreign_tally: Tally::new(),
                    tripped_at: None,
                    suspected_at: None,
                    geo: geo.map(Box::new),
                }))
            }
            None => None,
        };
        // An IP with a stream was remembered when its stream began (at the
        // stream's first_seen, which never moves; `known_ips` never shrinks):
        // only a line from before that, out of order, has anything to add.
        // Skipped, its map is not fetched at every message.
        if found.is_none_or(|i| at < account.streams[i].first_seen) {
            remember_ip(account, ip, at);
        }
        let trusted = index.is_some_and(|i| is_trusted(&account.streams[i]));
        if trusted {
            note_shared(&mut self.shared_ips, ip, id, at);
        }
        let newly_local = learn_own_domain(account, &mut self.local, envelope_from, trusted);
        let foreign_from = is_foreign_from(account, &self.local, envelope_from);
        account.totals.messages += 1;
        account.totals.foreign_from_messages += u64::from(foreign_from);
        // Searched for only when foreign: most From's are the account's own.
        let foreign_domain: Option<Box<[u8]>> = foreign_from
            .then(|| domain_of(envelope_from))
            .flatten()
            .map(|d| d.to_ascii_lowercase().into_boxed_slice());
        if let Some(d) = &foreign_domain {
            tally(&mut account.foreign_tally, d);
        }
        if index.is_some_and(|i| account.streams[i].is_new()) {
            let rotation = account
                .rotation
                .get_or_insert_with(|| Box::new(Rotation::new(at)));
            if rotation.tripped_at.is_none()
                && at.as_secs() - rotation.last_seen.as_secs() > ROTATION_QUIET_SECS
            {
                **rotation = Rotation::new(at);
            }
            rotation.note_ip(ip);
            rotation.last_seen = rotation.last_seen.max(at);
            rotation.counts.messages += 1;
            rotation.counts.foreign_from_messages += u64::from(foreign_from);
        }
        match index {
            Some(i) => {
                let stream = &mut account.streams[i];
                stream.note_run(at, foreign_from);
                stream.last_seen = stream.last_seen.max(at);
                stream.counts.messages += 1;
                if foreign_from {
                    stream.counts.foreign_from_messages += 1;
                    if let Some(d) = &foreign_domain {
                        tally(&mut stream.foreign_tally, d);
                    }
                    if stream.example_foreign_from.is_none() {
                        stream.example_foreign_from = Some(lossy(envelope_from));
                    }
                }
            }
            None => {
                account.unattributed.messages += 1;
                account.unattributed.foreign_from_messages += u64::from(foreign_from);
            }
        }
        if let Some(d) = newly_local {
            self.forgive(&d);
        }
        self.evaluate(id, index, at);
        ip
    }

    /// A recipient of a message the account submitted: newly seen, and/or
    /// newly refused permanently. True when this line named it for the
    /// first time and its domain is not local (an external recipient).
    pub fn on_recipient(
        &mut self,
        id: AccountId,
        ip: IpAddr,
        at: Timestamp,
        recipient: &[u8],
        change: RecipientChange,
        line: &[u8],
    ) -> bool {
        let canary = self.canaries.matching(recipient).map(str::to_owned);
        // Only a line naming the address for the first time tells whether
        // it is external (Kerio's delivery lines name it again).
        let external =
            change.new_address && domain_of(recipient).is_some_and(|d| !self.local.contains(d));
        let account = live_account(&mut self.accounts, &mut self.live, id);
        let mut delta = Counts::default();
        if change.new_recipient {
            delta.recipients = 1;
        }
        // Counted by `nrcpt` before its address was named, a recipient is
        // known to be external only when a line names it.
        delta.external_recipients = u64::from(external);
        delta.failed_recipients = u64::from(change.new_failure);
        account.totals.add(&delta);
        let index = account.stream_of(ip);
        match index.and_then(|i| account.streams.get_mut(i)) {
            Some(stream) => {
                if change.new_failure {
                    stream.note_run(at, true);
                }
                if stream.is_new() {
                    if let Some(rotation) = &mut account.rotation {
                        rotation.counts.add(&delta);
                    }
                }
                stream.counts.add(&delta);
                let in_hour = if change.new_recipient {
                    let (in_hour, in_minute) = stream.hour.add_with_bucket(at, 1);
                    stream.peak_hour.offer(in_hour, at);
                    stream.peak_minute.offer(in_minute, at);
                    in_hour
                } else {
                    stream.hour.add(at, 0)
                };
                let failed_in_hour = stream.failures_hour.add(at, u32::from(change.new_failure));
                let hour = Counts {
                    recipients: u64::from(in_hour),
                    failed_recipients: u64::from(failed_in_hour),
                    ..Counts::default()
                };
                if stream.spam_hour.is_none() && failures_signal(&hour, &self.config) {
                    stream.spam_hour = Some((failed_in_hour, in_hour, at));
                }
                if change.new_failure && stream.example_failure.is_none() {
                    stream.example_failure = Some(evidence_line(line));
                }
            }
            None => account.unattributed.add(&delta),
        }
        if let (Some(recipient), None) = (canary, &account.canary) {
            // The one incident of the account: a later canary is evidence
            // of the same hijack, not a new one.
            account.canary = Some(Box::new(CanaryHit {
                recipient,
                ip,
                at,
                line: evidence_line(line),
            }));
            if account.detected_at.is_none() {
                account.detected_at = Some(at);
                self.tripped.push(id);
            }
        }
        self.evaluate(id, index, at);
        delta.external_recipients > 0
    }

    /// A submission line, for the domain the server qualifies a local
    /// program's bare sender with (Postfix `pickup` → `qmgr`).
    pub fn on_submission_line(
        &mut self,
        queue_id: &[u8],
        unqualified_sender: Option<&[u8]>,
        envelope_from: Option<&[u8]>,
    ) {
        if let Some(d) = self
            .local
            .on_submission(queue_id, unqualified_sender, envelope_from)
        {
            self.forgive(&d);
        }
    }

    /// A recipient delivered (any message, authenticated or not): one put
    /// into a local mailbox makes its domain local.
    pub fn on_delivered(&mut self, recipient: &[u8], relay: Option<&[u8]>) {
        if let Some(d) = self.local.on_delivered(recipient, relay) {
            self.forgive(&d);
        }
    }

    /// The local domains and why each is local, by name; and how many
    /// inferred ones were not kept past the cap.
    pub fn local_domains(&self) -> (Vec<LocalDomain>, u64) {
        (self.local.report(), self.local.dropped())
    }

    /// Re-scores the account's stream at `index` (the caller found it by
    /// its IP: streams are only ever appended, so the index holds) and
    /// trips it if it crossed the threshold.
    fn evaluate(&mut self, id: AccountId, index: Option<usize>, at: Timestamp) {
        let Some(index) = index else { return };
        let config = &self.config;
        let account = live_account(&mut self.accounts, &mut self.live, id);
        let Some(stream) = account.streams.get(index) else {
            return;
        };
        if stream.is_new() && evaluate_rotation(account, config, at) {
            if account.detected_at.is_none() {
                account.detected_at = Some(at);
                self.tripped.push(id);
            }
            return;
        }
        let Some(stream) = account.streams.get_mut(index) else {
            return;
        };
        if stream.tripped_at.is_some()
            || stream.counts.recipients < u64::from(config.min_recipients)
        {
            return;
        }
        let marked = is_marked(&self.never_logs_in, &account.name);
        let signals = signals(stream, config, marked);
        if !signals.behavioural {
            return;
        }
        if signals.score >= config.score_threshold {
            stream.tripped_at = Some(at);
            stream.suspect_since = Some(stream.suspicious_since());
            if account.detected_at.is_none() {
                account.detected_at = Some(at);
                self.tripped.push(id);
            }
        } else if signals.score >= config.suspicious_threshold && stream.suspected_at.is_none() {
            stream.suspected_at = Some(at);
            if account.suspected_at.is_none() {
                account.suspected_at = Some(at);
                self.suspected.push(id);
            }
        }
    }

    /// How many accounts were found suspicious so far.
    pub fn suspected_count(&self) -> usize {
        self.suspected.len()
    }

    /// Suspicious-activity incidents noticed after the first `skip`; with
    /// `skip_compromised`, not those of accounts found compromised since
    /// (the hijack says more).
    pub fn suspicious_since(&self, skip: usize, skip_compromised: bool) -> Vec<Incident> {
        self.suspected
            .iter()
            .skip(skip)
            .map(|id| self.accounts[id.index()].read())
            .filter(|account| !(skip_compromised && account.detected_at.is_some()))
            .map(|account| self.incident(&account, IncidentKind::SuspiciousActivity))
            .collect()
    }

    /// How many accounts are packed while idle.
    pub fn packed_count(&self) -> usize {
        self.accounts.iter().filter(|slot| slot.is_packed()).count()
    }

    /// How many account incidents have tripped so far.
    pub fn tripped_count(&self) -> usize {
        self.tripped.len()
    }

    /// Incidents in the order they tripped.
    pub fn incidents(&self) -> Vec<Incident> {
        self.incidents_since(0)
    }

    /// Incidents that tripped after the first `skip`.
    pub fn incidents_since(&self, skip: usize) -> Vec<Incident> {
        self.tripped
            .iter()
            .skip(skip)
            .map(|id| {
                let account = self.accounts[id.index()].read();
                self.incident(&account, IncidentKind::CompromisedAccount)
            })
            .collect()
    }

    /// The account's incident of `kind`: its tripped streams (a hijack), or
    /// its suspicious ones.
    fn incident(&self, account: &Account, kind: IncidentKind) -> Incident {
        let suspicious = kind == IncidentKind::SuspiciousActivity;
        let mut tripped: Vec<&Stream> = account
            .streams
            .iter()
            .filter(|s| {
                if suspicious {
                    s.suspected_at.is_some()
                } else {
                    s.tripped_at.is_some()
                }
            })
            .collect();
        tripped.sort_by_key(|s| s.suspicious_since());
        let mut counts = Counts::default();
        let mut failed_logins = 0;
        let mut score = 0;
        let mut reasons = Vec::new();
        let mut evidence = Vec::new();
        if let Some(rotation) = account
            .rotation
            .as_ref()
            .filter(|r| r.tripped_at.is_some() && !suspicious)
        {
            score = score.max(rotation.score(&self.config).unwrap_or(0));
            reasons.push(format!(
                "{} messages to {} recipients from {} IPs new to the account between {} and {}, a handful each: proxies taking turns ({} refused permanently, {} with a foreign From)",
                rotation.counts.messages,
                rotation.counts.recipients,
                rotation.ips_total,
                rotation.first_seen,
                rotation.last_seen,
                rotation.counts.failed_recipients,
                rotation.counts.foreign_from_messages,
            ));
        }
        let marked = is_marked(&self.never_logs_in, &account.name);
        if marked && !tripped.is_empty() {
            reasons.push(
                "first SMTP login of an account that never logs in (audit): `mailfuse audit \
                 --save` found nobody logs into it, yet it sent mail"
                    .to_owned(),
            );
        }
        for (n, stream) in tripped.iter().enumerate() {
            counts.add(&stream.counts);
            failed_logins += stream.prior_failures.as_ref().map_or(0, |p| p.count);
            score = score.max(signals(stream, &self.config, marked).score);
            // The IPs' own reasons for the first few: a rotation has hundreds.
            if n < MAX_STREAMS_EXPLAINED {
                reasons.extend(reasons_for(stream, &self.config, &self.safety));
            }
        }
        if tripped.len() > MAX_STREAMS_EXPLAINED {
            reasons.push(format!(
                "and {} more IPs (all in `ips`)",
                tripped.len() - MAX_STREAMS_EXPLAINED
            ));
        }
        if let Some(first) = tripped.first() {
            evidence.push(first.first_line.clone());
            evidence.extend(first.example_failure.clone());
            evidence.extend(first.prior_failures.as_ref().map(|p| p.first_line.clone()));
        }
        let mut first_seen = tripped.iter().map(|s| s.suspicious_since()).min();
        let mut last_seen = tripped.iter().map(|s| s.last_seen).max();
        let mut ips: Vec<IpAddr> = tripped.iter().map(|s| s.ip).collect();
        if let Some(hit) = account.canary.as_ref().filter(|_| !suspicious) {
            // Proof, not a score: it leads, whatever else was seen.
            score = 100;
            reasons.insert(
                0,
                format!(
                    "sent to canary address {} from {} at {}: an address no one writes to, planted for harvesters to find",
                    hit.recipient, hit.ip, hit.at
                ),
            );
            evidence.insert(0, hit.line.clone());
            if !ips.contains(&hit.ip) {
                ips.insert(0, hit.ip);
                if let Some(stream) = account.streams.iter().find(|s| s.ip == hit.ip) {
                    counts.add(&stream.counts);
                }
            }
            first_seen = Some(first_seen.map_or(hit.at, |t| t.min(hit.at)));
            last_seen = Some(last_seen.map_or(hit.at, |t| t.max(hit.at)));
        }
        Incident {
            account: Some(account.name.clone()),
            ips,
            messages: counts.messages,
            recipients: counts.recipients,
            failed_recipients: counts.failed_recipients,
            external_recipients: counts.external_recipients,
            failed_logins,
            score: score.min(100),
            reasons,
            evidence,
            ..Incident::new(
                kind,
                first_seen.unwrap_or(account.first_seen)..=last_seen.unwrap_or(account.last_seen),
                if suspicious {
                    account.suspected_at
                } else {
                    account.detected_at
                }
                .unwrap_or(account.last_seen),
            )
        }
    }
}

/// Trips the account's rotation when it has the evidence, and with it
/// every stream of its IPs (new ones join while it goes on); whether the
/// rotation has tripped.
fn evaluate_rotation(account: &mut Account, config: &CompromiseConfig, at: Timestamp) -> bool {
    let Some(rotation) = &mut account.rotation else {
        return false;
    };
    if rotation.tripped_at.is_none() {
        match rotation.score(config) {
            Some(score) if score >= config.score_threshold => rotation.tripped_at = Some(at),
            _ => return false,
        }
    }
    for stream in account
        .streams
        .iter_mut()
        .filter(|s| s.tripped_at.is_none() && rotation.ips.contains(&s.ip))
    {
        stream.tripped_at = Some(at);
        stream.suspect_since = Some(stream.first_seen);
    }
    true
}

impl Stream {
    /// Whether its IP was new to the account (not its usual, nor too early
    /// to tell).
    fn is_new(&self) -> bool {
        self.novelty.is_new()
    }

    /// Notes a message or recipient at `at` for the stream's runs;
    /// `suspicious` when it had a foreign From or was refused.
    fn note_run(&mut self, at: Timestamp, suspicious: bool) {
        let last = self.last_seen;
        let run = self.run.get_or_insert((self.first_seen, None));
        if at.as_secs() - last.as_secs() > RUN_GAP_SECS {
            *run = (at, None);
        }
        if suspicious && run.1.is_none() {
            run.1 = Some(at);
        }
    }

    /// When the suspicious activity began: a new IP's or a woken account's
    /// first message; on a usual IP, the first foreign From or refused
    /// recipient of the run that tripped (else the run's start).
    fn suspicious_since(&self) -> Timestamp {
        if let Some(since) = self.suspect_since {
            return since;
        }
        match (self.novelty, self.run) {
            (Novelty::Usual | Novelty::Learning, Some((start, suspect))) => {
                suspect.unwrap_or(start).max(self.first_seen)
            }
            _ => self.first_seen,
        }
    }
}

/// Whether the envelope From is of neither the account's own domain nor a
/// local one (a null sender or bare name is not).
fn is_foreign_from(account: &Account, local: &LocalDomains, envelope_from: &[u8]) -> bool {
    // Most From's are of the account's own domain: their ends are compared
    // with it before the `@` is searched for.
    let own = |d: &Option<Box<[u8]>>| d.as_deref().is_some_and(|d| has_domain(envelope_from, d));
    if own(&account.domain) || own(&account.from_domain) {
        return false;
    }
    domain_of(envelope_from).is_some_and(|from_domain| !local.contains(from_domain))
}

/// A stream whose messages may teach the account's own domain: its IP was
/// not new for the account, did not guess passwords, and has not tripped.
fn is_trusted(stream: &Stream) -> bool {
    matches!(stream.novelty, Novelty::Usual | Novelty::Learning)
        && stream.prior_failures.is_none()
        && stream.tripped_at.is_none()
}

/// For a login without a domain (`jdent`), the first From of its own name
/// (`jdent@seaglass.com`) from a trusted stream gives the account its
/// domain, and makes that domain local. A forged From of another local
/// part, or one sent from a suspect IP, teaches nothing.
fn learn_own_domain(
    account: &mut Account,
    local: &mut LocalDomains,
    envelope_from: &[u8],
    trusted: bool,
) -> Option<Box<[u8]>> {
    if !trusted || account.domain.is_some() || account.from_domain.is_some() {
        return None;
    }
    let (local_part, domain) = split_address(envelope_from)?;
    if !local_part.eq_ignore_ascii_case(account.name.as_bytes()) {
        return None;
    }
    account.from_domain = Some(domain.to_ascii_lowercase().into_boxed_slice());
    local.note_login_from(domain)
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Notes that account `id` used `ip` at `at` (see [`SharedIp`]).
fn note_shared(
    shared_ips: &mut TrackedMap<IpAddr, SharedIp>,
    ip: IpAddr,
    id: AccountId,
    at: Timestamp,
) {
    if shared_ips.len() >= MAX_SHARED_IPS && !shared_ips.contains_key(&ip) {
        return;
    }
    let shared = shared_ips.entry(ip).or_insert(SharedIp {
        since: at,
        accounts: Vec::new(),
    });
    shared.since = shared.since.min(at);
    if shared.accounts.len() < SHARED_BY && !shared.accounts.contains(&id) {
        shared.accounts.push(id);
    }
}

fn remember_ip(account: &mut Account, ip: IpAddr, at: Timestamp) {
    if account.known_ips.len() < MAX_KNOWN_IPS || account.known_ips.contains_key(&ip) {
        let first = account.known_ips.entry(ip).or_insert(at);
        *first = (*first).min(at);
    }
}

/// The IP a message is attributed to: one submitted from this server
/// (Kerio's webmail `0.0.0.0`, no IP, Roundcube over loopback, the server's
/// own address) by an account takes the account's webmail login of the
/// last day, if any; else it stays the server's (`0.0.0.0` when none).
fn resolve_ip(account: &Account, ip: Option<IpAddr>, at: Timestamp, safety: &Safety) -> IpAddr {
    let ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !safety.is_this_server(ip) {
        return ip;
    }
    match account.web_login {
        Some((login_ip, login_at))
            if at.as_secs() - login_at.as_secs() <= WEB_LOGIN_WINDOW_SECS =>
        {
            login_ip
        }
        _ => ip,
    }
}

/// Decides how new `ip` is for `account` at `at` (before it is remembered).
fn novelty_of(account: &Account, ip: IpAddr, at: Timestamp, baseline: i64) -> Novelty {
    let long_ago = |t: Timestamp| at.as_secs() - t.as_secs() >= baseline;
    if account
        .known_ips
        .get(&ip)
        .is_some_and(|first| long_ago(*first))
    {
        return Novelty::Usual;
    }
    if let Some((woke, quiet_since)) = account.woke_at {
        if at.as_secs() - woke.as_secs() <= baseline {
            return Novelty::Dormant { quiet_since };
        }
    }
    if long_ago(account.first_seen) {
        return Novelty::NewIp {
            account_since: account.first_seen,
        };
    }
    // Judged against what came before, however little: a phished account
    // may be used hours after the log begins, and the attacker's own login
    // a minute before its mail does not make the IP the account's.
    let ip_known_since = account.known_ips.get(&ip).copied().unwrap_or(at);
    if account.first_seen.as_secs() + NEW_IP_MARGIN_SECS < ip_known_since.as_secs() {
        return Novelty::NewIpShortHistory {
            account_since: account.first_seen,
        };
    }
    Novelty::Learning
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The stream's recipients, or those of one hour of it, were refused like a
/// spam list's.
fn refused_like_spam(stream: &Stream, config: &CompromiseConfig) -> bool {
    failures_signal(&stream.counts, config) || stream.spam_hour.is_some()
}

/// The weaker refusal signal on a stream, unless one hour of it already
/// looked like a spam list's (the stronger signal then holds).
fn somewhat_refused(stream: &Stream, config: &CompromiseConfig) -> bool {
    some_refused_signal(&stream.counts, config) && stream.spam_hour.is_none()
}

fn failures_signal(counts: &Counts, config: &CompromiseConfig) -> bool {
    counts.failed_recipients >= u64::from(config.min_failed_recipients)
        && ratio(counts.failed_recipients, counts.recipients) >= config.failure_ratio
}

/// Fewer refused than a spam list's, still many more than a person's own
/// correspondents refuse.
fn some_refused_signal(counts: &Counts, config: &CompromiseConfig) -> bool {
    !failures_signal(counts, config)
        && counts.failed_recipients >= u64::from(config.min_failed_recipients)
        && ratio(counts.failed_recipients, counts.recipients) >= config.some_failure_ratio
}

fn rapid_signal(stream: &Stream, config: &CompromiseConfig) -> bool {
    stream.peak_minute.count >= config.rapid_recipients_per_minute
}

fn foreign_from_signal(counts: &Counts, config: &CompromiseConfig) -> bool {
    counts.foreign_from_messages >= 3
        && ratio(counts.foreign_from_messages, counts.messages) >= config.foreign_from_ratio
}

fn burst_signal(stream: &Stream, config: &CompromiseConfig) -> bool {
    stream.peak_hour.count >= config.burst_recipients_per_hour
}

fn guessed_signal(stream: &Stream) -> bool {
    stream.prior_failures.is_some()
}

/// The stream's score; `behavioural` says whether anything but volume counts.
/// Whether the audit marked the account `name` as one nobody logs into.
fn is_marked(never_logs_in: &HashSet<Box<[u8]>>, name: &str) -> bool {
    !never_logs_in.is_empty() && never_logs_in.contains(name.to_ascii_lowercase().as_bytes())
}

/// The stream's score; `marked`: the audit found nobody logs into the
/// account.
fn signals(stream: &Stream, config: &CompromiseConfig, marked: bool) -> Signals {
    let mut score = 0;
    let mut behavioural = false;
    let mut add = |on: bool, pts: u32, is_behaviour: bool| {
        if on {
            score += pts;
            behavioural |= is_behaviour;
        }
    };
    match stream.novelty {
        Novelty::Dormant { .. } => add(true, points::DORMANT, true),
        Novelty::NewIp { .. } if is_internal(stream.ip) => add(true, points::NEW_INTERNAL_IP, true),
        Novelty::NewIp { .. } => add(true, points::NEW_IP, true),
        Novelty::NewIpShortHistory { .. } if !is_internal(stream.ip) => {
            add(true, points::NEW_IP_SHORT_HISTORY, true);
        }
        Novelty::NewIpShortHistory { .. } | Novelty::Usual | Novelty::Learning => {}
    }
    add(guessed_signal(stream), points::GUESSED, true);
    add(refused_like_spam(stream, config), points::FAILURES, true);
    // On the account's usual IP, another domain in the From is most often
    // its own program's (an invoicing account's shop domain): it adds to
    // other evidence there, and is no evidence alone.
    let usual_ip = matches!(stream.novelty, Novelty::Usual | Novelty::Learning);
    add(
        foreign_from_signal(&stream.counts, config),
        points::FOREIGN_FROM,
        !usual_ip,
    );
    add(somewhat_refused(stream, config), points::SOME_REFUSED, true);
    add(burst_signal(stream, config), points::BURST, false);
    // A program sending is no evidence on the account's usual IP (a mail
    // merge), but adds to a new IP's.
    add(rapid_signal(stream, config), points::RAPID, !usual_ip);
    let geo_points = stream.geo.as_deref().map_or(0, GeoEvidence::points);
    add(geo_points > 0, geo_points, true);
    add(marked, points::NEVER_LOGS_IN, true);
    Signals { score, behavioural }
}

/// The stream's signals in plain words, with figures.
fn reasons_for(stream: &Stream, config: &CompromiseConfig, safety: &Safety) -> Vec<String> {
    let c = &stream.counts;
    let mut reasons = vec![format!(
        "{} messages to {} recipients from {} between {} and {}",
        c.messages, c.recipients, stream.ip, stream.first_seen, stream.last_seen
    )];
    if safety.is_this_server(stream.ip) {
        reasons.push(format!(
            "{} is this server: the sender's real IP is unknown (webmail? no webmail login of the account in the {} hours before names it)",
            stream.ip,
            WEB_LOGIN_WINDOW_SECS / 3600
        ));
    }
    match stream.novelty {
        Novelty::Dormant { quiet_since } => reasons.push(format!(
            "the account had sent no mail since the log began ({}, {} days earlier): a forgotten or forwarding-only account woke up",
            quiet_since,
            (stream.first_seen.as_secs() - quiet_since.as_secs()) / 86_400
        )),
        Novelty::NewIp { account_since } => reasons.push(format!(
            "{} had never been used by this account (active since {}){}",
            stream.ip,
            account_since,
            if is_internal(stream.ip) { ", though it is an internal address" } else { "" }
        )),
        Novelty::NewIpShortHistory { account_since } if !is_internal(stream.ip) => {
            reasons.push(format!(
                "{} is not among the IPs this account used before, though the log shows the account only since {} (a short history: less sure)",
                stream.ip, account_since
            ));
        }
        Novelty::NewIpShortHistory { .. } | Novelty::Usual | Novelty::Learning => {}
    }
    if let Some(prior) = &stream.prior_failures {
        reasons.push(format!(
            "{} failed {} logins before it sent as this account: the password was guessed",
            stream.ip, prior.count
        ));
    }
    if failures_signal(&stream.counts, config) {
        reasons.push(format!(
            "{} of {} recipients ({:.0}%) were refused permanently (5.x.x), typical of a spam list",
            c.failed_recipients,
            c.recipients,
            100.0 * ratio(c.failed_recipients, c.recipients)
        ));
    } else if let Some((failed, recipients, at)) = stream.spam_hour {
        reasons.push(format!(
            "in the hour to {at}, {failed} of {recipients} recipients ({:.0}%) were refused permanently (5.x.x), typical of a spam list",
            100.0 * ratio(u64::from(failed), u64::from(recipients))
        ));
    }
    if foreign_from_signal(&stream.counts, config) {
        reasons.push(format!(
            "{} of {} messages used an envelope From of another domain, e.g. {}",
            c.foreign_from_messages,
            c.messages,
            stream.example_foreign_from.as_deref().unwrap_or("?")
        ));
    }
    if somewhat_refused(stream, config) {
        reasons.push(format!(
            "{} of {} recipients ({:.0}%) were refused permanently (5.x.x), more than a person's own correspondents",
            c.failed_recipients,
            c.recipients,
            100.0 * ratio(c.failed_recipients, c.recipients)
        ));
    }
    if burst_signal(stream, config) {
        reasons.push(format!(
            "burst: {} recipients within one hour (peak at {})",
            stream.peak_hour.count, stream.peak_hour.at
        ));
    }
    if rapid_signal(stream, config) {
        reasons.push(format!(
            "{} recipients within one minute (at {}): a program, not a person typing",
            stream.peak_minute.count, stream.peak_minute.at
        ));
    }
    reasons.extend(stream.geo.iter().flat_map(|geo| geo.reasons(stream.ip)));
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row saved before canaries were known (one field fewer) restores,
    /// with no canary hit.
    #[test]
    fn an_account_row_saved_before_canaries_restores() {
        let now = rmp_serde::to_vec(&Account::new("a@example.com")).unwrap();
        // Arrays of 16 to 65,535 elements: 0xdc and a big-endian length.
        assert_eq!(now[0], 0xdc);
        assert_eq!(now.last(), Some(&0xc0), "the canary is last, nil");
        let fields = u16::from_be_bytes([now[1], now[2]]);
        let mut old = vec![0xdc];
        old.extend((fields - 1).to_be_bytes());
        old.extend(&now[3..now.len() - 1]);
        let account: Account = rmp_serde::from_slice(&old).unwrap();
        assert_eq!(account.name, "a@example.com");
        assert!(account.canary.is_none());
    }

    /// Each service is listed once, whatever its case, in the order first
    /// seen, however the services alternate and after the account was
    /// packed (the last one is remembered apart, and not saved).
    #[test]
    fn each_service_is_listed_once_however_it_comes_back() {
        let config = CompromiseConfig {
            pack_idle_secs: 60,
            ..CompromiseConfig::default()
        };
        let mut accounts = Accounts::new(config, Safety::default());
        let start = Timestamp::default();
        let id = accounts.id(b"a@example.com", start);
        for service in [
            "SMTP",
            "SMTP",
            "smtp",
            "HTTP/WebMail",
            "SMTP",
            "http/webmail",
        ] {
            accounts.note_service(id, service.as_bytes());
        }
        accounts.note_time(start.plus(3_600));
        for service in ["HTTP/WebMail", "SMTP", "IMAP"] {
            accounts.note_service(id, service.as_bytes());
        }
        let services = accounts.all().next().unwrap().services.clone();
        assert_eq!(services, ["SMTP", "HTTP/WebMail", "IMAP"]);
    }

    /// However many streams an account has, scanned or looked up in their
    /// index (built past [`STREAMS_SCANNED`], streams added after it
    /// included), each line counts in its own IP's stream.
    #[test]
    fn each_ip_counts_in_its_own_stream_however_many_there_are() {
        let mut accounts = Accounts::new(CompromiseConfig::default(), Safety::default());
        let start = Timestamp(1_700_000_000);
        let id = accounts.id(b"a@example.com", start);
        let ip = |n: usize| IpAddr::V4(Ipv4Addr::new(203, 0, 113, n as u8));
        let named = RecipientChange {
            new_recipient: true,
            new_address: true,
            new_failure: false,
        };
        let rounds = 3;
        for round in 1..=rounds {
            for n in 0..STREAMS_SCANNED * round {
                let at = start.plus((round * 100 + n) as i64);
                let sent =
                    accounts.on_message(id, Some(ip(n)), at, b"a@example.com", b"", |_, _| None);
                assert_eq!(sent, ip(n));
                accounts.on_recipient(id, ip(n), at, b"b@example.net", named, b"");
            }
        }
        let account = accounts.all().next().unwrap();
        assert_eq!(account.streams.len(), STREAMS_SCANNED * rounds);
        for (n, stream) in account.streams.iter().enumerate() {
            let rounds_sent = (1..=rounds)
                .filter(|round| n < STREAMS_SCANNED * round)
                .count();
            assert_eq!(stream.ip, ip(n));
            assert_eq!(stream.counts.messages, rounds_sent as u64, "{n}");
            assert_eq!(stream.counts.recipients, rounds_sent as u64, "{n}");
        }
    }

    /// An IP is known from the first message it sent, later messages from
    /// its stream leave that time as it is (they skip the map), and a line
    /// from before it, out of order, moves it back.
    #[test]
    fn an_ip_is_known_from_its_earliest_message_whatever_the_order() {
        let mut accounts = Accounts::new(CompromiseConfig::default(), Safety::default());
        let start = Timestamp(1_700_000_000);
        let id = accounts.id(b"a@example.com", start);
        let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
        let known_since = |accounts: &Accounts| {
            let account = accounts.all().next().unwrap();
            account.known_ips.get(&ip).copied()
        };
        for (offset, expected) in [(100, 100), (200, 100), (300, 100), (50, 50), (150, 50)] {
            let at = start.plus(offset);
            accounts.on_message(id, Some(ip), at, b"a@example.com", b"", |_, _| None);
            assert_eq!(
                known_since(&accounts),
                Some(start.plus(expected)),
                "{offset}"
            );
        }
        let account = accounts.all().next().unwrap();
        assert_eq!(account.streams.len(), 1);
        assert_eq!(account.streams[0].counts.messages, 5);
    }

    /// `has_domain` says what comparing the lowered part after the last
    /// `@` says, for the lower-case domains accounts hold.
    #[test]
    fn an_address_has_the_domain_its_last_at_gives() {
        let addresses = [
            &b"jdent@seaglass.com"[..],
            b"JDent@SeaGlass.COM",
            b"jdent@mail.seaglass.com",
            b"jdent@seaglass.co",
            b"jdent@xseaglass.com",
            b"a@b@seaglass.com",
            b"seaglass.com",
            b"@seaglass.com",
            b"jdent@",
            b"",
        ];
        for address in addresses {
            for domain in [&b"seaglass.com"[..], b"com"] {
                let lowered = domain_of(address).map(<[u8]>::to_ascii_lowercase);
                assert_eq!(
                    has_domain(address, domain),
                    lowered.as_deref() == Some(domain),
                    "{:?} {:?}",
                    String::from_utf8_lossy(address),
                    String::from_utf8_lossy(domain)
                );
            }
        }
    }
}
