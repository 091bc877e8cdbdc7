//! The `limit_exceeded` detector: per-account outbound limits.
//!
//! A second line of defence beside the behavioural detector: whatever the
//! traffic looks like, an account that sends more messages (or to more
//! recipients) within a window than the admin allows is reported. Limits are
//! counted per authenticated account; an account may have its own limits
//! (overrides replace the defaults) or none at all (exempt).
//!
//! # Precision
//!
//! Windows are exact to the second (log timestamps have no finer
//! resolution): at time `t` a window of `W` seconds holds the events of
//! `(t - W, t]`, so with 30 messages per minute the 31st message within 60
//! seconds trips, and a message sent 60 s after the first one no longer sees
//! it. Rather than buckets (which cost the same for a quiet account as for a
//! busy one and are off by up to a bucket at the old edge), each limit keeps
//! the times of its account's latest events, one entry per second, and at
//! most `2 × limit` events: that is all it takes to tell whether the window
//! is over the limit (and whether it reached twice the limit, which raises
//! the score), and the count is exact below that cap. Memory per account and
//! limit is therefore at most `min(2 × limit, window in seconds)` entries of
//! 16 bytes whatever the traffic — a few entries for a typical account — and
//! an account idle for longer than the longest window is forgotten.
//!
//! Time is the events' own. An event older than the newest one seen for its
//! account still counts if it falls within the window.

use std::collections::VecDeque;
use std::net::IpAddr;

use mailfuse_core::Timestamp;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::account_id::AccountId;
use crate::incident::{evidence_line, Incident, IncidentKind};

/// The limits: defaults for every account, per-account overrides, exempt
/// accounts. Empty (the default): the detector is off and costs nothing.
///
/// ```toml
/// [detect.limits]
/// exempt = ["scanner@example.com"]
///
/// [[detect.limits.default]]
/// window = "1m"
/// messages = 30
///
/// [[detect.limits.default]]
/// window = "1h"
/// messages = 200
/// recipients = 500
///
/// [[detect.limits.override]]
/// account = "newsletter@example.com"
/// window = "1h"
/// recipients = 20000
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Limits of every account that has no override.
    #[serde(rename = "default")]
    pub defaults: Vec<LimitSpec>,
    /// Limits of one account; all the entries naming an account replace
    /// the defaults for it.
    #[serde(rename = "override")]
    pub overrides: Vec<AccountLimit>,
    /// Accounts never limited (this wins over an override).
    pub exempt: Vec<String>,
}

/// At most `messages` messages and/or `recipients` recipients within
/// `window_secs` seconds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawLimit")]
pub struct LimitSpec {
    pub window_secs: i64,
    pub messages: Option<u32>,
    pub recipients: Option<u32>,
}

/// A limit of one account (case-insensitive).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawLimit")]
pub struct AccountLimit {
    pub account: String,
    pub limit: LimitSpec,
}

/// A limit as written in the configuration, before it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    account: Option<String>,
    window: String,
    messages: Option<u32>,
    recipients: Option<u32>,
}

impl RawLimit {
    fn spec(&self) -> Result<LimitSpec, String> {
        let window_secs = parse_window(&self.window)?;
        if self.messages.is_none() && self.recipients.is_none() {
            return Err(format!(
                "the limit over {} sets neither messages nor recipients",
                self.window
            ));
        }
        Ok(LimitSpec {
            window_secs,
            messages: self.messages,
            recipients: self.recipients,
        })
    }
}

impl TryFrom<RawLimit> for LimitSpec {
    type Error = String;

    fn try_from(raw: RawLimit) -> Result<Self, String> {
        if raw.account.is_some() {
            return Err("a limit naming an account belongs in [[detect.limits.override]]".into());
        }
        raw.spec()
    }
}

impl TryFrom<RawLimit> for AccountLimit {
    type Error = String;

    fn try_from(raw: RawLimit) -> Result<Self, String> {
        let limit = raw.spec()?;
        match raw.account {
            Some(account) if !account.trim().is_empty() => Ok(AccountLimit { account, limit }),
            _ => Err("an override needs the account it applies to".into()),
        }
    }
}

/// Seconds in a window written `90s`, `15m`, `1h` or `1d`.
pub fn parse_window(text: &str) -> Result<i64, String> {
    mailfuse_core::time::parse_duration(text.trim())
}

/// What a limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Metric {
    Messages,
    Recipients,
}

impl Metric {
    /// `31 messages`, `501 recipients`.
    fn amount(self, n: u32) -> String {
        match self {
            Metric::Messages => format!("{n} messages"),
            Metric::Recipients => format!("{n} recipients"),
        }
    }

    /// `sent 31 messages`, `sent to 501 recipients`.
    fn sent(self, n: u32) -> String {
        match self {
            Metric::Messages => format!("sent {}", self.amount(n)),
            Metric::Recipients => format!("sent to {}", self.amount(n)),
        }
    }
}

/// One number to keep under: at most `max` of `metric` within `window_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Limit {
    window_secs: i64,
    metric: Metric,
    max: u32,
}

impl Limit {
    /// Events a counter holds: enough to see the limit crossed and twice
    /// the limit reached.
    fn cap(self) -> u32 {
        self.max.saturating_mul(2).max(self.max.saturating_add(1))
    }

    fn twice(self) -> u64 {
        2 * u64::from(self.max)
    }
}

impl LimitSpec {
    fn limits(&self) -> impl Iterator<Item = Limit> + '_ {
        let limit = |metric, max: Option<u32>| {
            max.map(|max| Limit {
                window_secs: self.window_secs,
                metric,
                max,
            })
        };
        limit(Metric::Messages, self.messages)
            .into_iter()
            .chain(limit(Metric::Recipients, self.recipients))
    }
}

/// The configuration in the form the detector looks it up.
#[derive(Debug, Default)]
struct Resolved {
    defaults: Vec<Limit>,
    /// Lower-case account name → its limits.
    overrides: FxHashMap<Box<str>, Vec<Limit>>,
    exempt: FxHashSet<Box<str>>,
    longest_window: i64,
}

impl Resolved {
    fn new(config: &LimitsConfig) -> Self {
        let key = |name: &str| name.trim().to_lowercase().into_boxed_str();
        let mut overrides: FxHashMap<Box<str>, Vec<Limit>> = FxHashMap::default();
        for o in &config.overrides {
            overrides
                .entry(key(&o.account))
                .or_default()
                .extend(o.limit.limits());
        }
        let defaults: Vec<Limit> = config.defaults.iter().flat_map(LimitSpec::limits).collect();
        let longest_window = defaults
            .iter()
            .chain(overrides.values().flatten())
            .map(|l| l.window_secs)
            .max()
            .unwrap_or(0);
        Resolved {
            defaults,
            overrides,
            exempt: config.exempt.iter().map(|a| key(a)).collect(),
            longest_window,
        }
    }

    /// Whether any account has a limit.
    fn is_active(&self) -> bool {
        self.longest_window > 0
    }

    /// The limits of the account named `name` (lower case).
    fn limits_for(&self, name: &str) -> &[Limit] {
        if self.exempt.contains(name) {
            return &[];
        }
        self.overrides.get(name).unwrap_or(&self.defaults)
    }
}

/// Events within one second (stored as a tuple: a busy account holds
/// hundreds).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(from = "(i64, u32, u32)", into = "(i64, u32, u32)")]
struct Entry {
    secs: i64,
    count: u32,
    /// The account's running total of the other metric at the start of
    /// this second, truncated (only differences within a window are used),
    /// to tell the incident how many of it went with the crossing window.
    other_before: u32,
}

impl From<(i64, u32, u32)> for Entry {
    fn from((secs, count, other_before): (i64, u32, u32)) -> Self {
        Entry {
            secs,
            count: count.max(1),
            other_before,
        }
    }
}

impl From<Entry> for (i64, u32, u32) {
    fn from(e: Entry) -> Self {
        (e.secs, e.count, e.other_before)
    }
}

/// One account's latest events of one metric, oldest first: at most `cap`
/// of them, one entry per second. While it holds fewer than `cap` events,
/// it holds every event of the window (the oldest are dropped first, and
/// they leave the window first).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Recent {
    entries: VecDeque<Entry>,
    held: u32,
}

impl Recent {
    /// Drops the events at or before `start`.
    fn slide(&mut self, start: i64) {
        while let Some(front) = self.entries.front() {
            if front.secs > start {
                break;
            }
            self.held = self.held.saturating_sub(front.count);
            self.entries.pop_front();
        }
    }

    /// Adds one event at `secs` (in time order, or late but within the
    /// window) and keeps the newest `cap`.
    fn add(&mut self, secs: i64, other_before: u32, cap: u32) {
        let after = self.entries.iter().rposition(|e| e.secs <= secs);
        match after.and_then(|i| self.entries.get_mut(i)) {
            Some(entry) if entry.secs == secs => entry.count = entry.count.saturating_add(1),
            _ => {
                let entry = Entry {
                    secs,
                    count: 1,
                    other_before,
                };
                self.entries.insert(after.map_or(0, |i| i + 1), entry);
            }
        }
        self.held = self.held.saturating_add(1);
        while self.held > cap {
            let Some(oldest) = self.entries.front_mut() else {
                break;
            };
            oldest.count -= 1;
            self.held -= 1;
            if oldest.count == 0 {
                self.entries.pop_front();
            }
        }
    }

    fn oldest(&self) -> Option<&Entry> {
        self.entries.front()
    }
}

/// One limit of one account.
#[derive(Debug, Serialize, Deserialize)]
struct Counter {
    limit: Limit,
    recent: Recent,
    /// The crossing under way (an index in [`Limits::crossings`]): no new
    /// one until the count falls back under the limit.
    crossing: Option<usize>,
}

impl Counter {
    fn new(limit: Limit) -> Self {
        Counter {
            limit,
            recent: Recent::default(),
            crossing: None,
        }
    }
}

/// Most sending IPs remembered per account and listed per incident.
const MAX_IPS: usize = 20;

/// Messages and recipients an account sent.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Sent {
    messages: u64,
    recipients: u64,
}

impl Sent {
    fn of(&self, metric: Metric) -> u64 {
        match metric {
            Metric::Messages => self.messages,
            Metric::Recipients => self.recipients,
        }
    }

    fn count(&mut self, metric: Metric) {
        match metric {
            Metric::Messages => self.messages += 1,
            Metric::Recipients => self.recipients += 1,
        }
    }
}

/// The other metric of `metric`.
fn other(metric: Metric) -> Metric {
    match metric {
        Metric::Messages => Metric::Recipients,
        Metric::Recipients => Metric::Messages,
    }
}

/// What the detector keeps of one account.
#[derive(Debug, Serialize, Deserialize)]
struct AccountState {
    name: Box<str>,
    counters: Vec<Counter>,
    sent: Sent,
    /// `sent` at the start of the second of `last_seen`.
    sent_before_last_second: Sent,
    /// Recent sending IPs with when each last sent.
    ips: Vec<(IpAddr, Timestamp)>,
    last_seen: Timestamp,
}

/// One crossing of one limit: an incident.
#[derive(Debug, Serialize, Deserialize)]
struct Crossing {
    account: Box<str>,
    limit: Limit,
    /// The count when it crossed, and the highest it reached (exact below
    /// twice the limit).
    count: u32,
    peak: u32,
    first_seen: Timestamp,
    last_seen: Timestamp,
    detected_at: Timestamp,
    /// Sent from the start of the crossing window until it fell back.
    sent: Sent,
    ips: Vec<IpAddr>,
    evidence: String,
}

/// An event of an account, as the counters see it.
struct Sending<'l> {
    metric: Metric,
    at: Timestamp,
    ip: Option<IpAddr>,
    line: &'l [u8],
}

impl AccountState {
    fn new(name: &str, limits: &[Limit], at: Timestamp) -> Self {
        AccountState {
            name: name.into(),
            counters: limits.iter().copied().map(Counter::new).collect(),
            sent: Sent::default(),
            sent_before_last_second: Sent::default(),
            ips: Vec::new(),
            last_seen: at,
        }
    }

    /// Counts `event` in the limits of its metric and in the crossings
    /// under way; pushes the crossings it starts onto `crossings`.
    fn record(&mut self, event: &Sending<'_>, crossings: &mut Vec<Crossing>) {
        let metric = event.metric;
        if event.at > self.last_seen {
            self.last_seen = event.at;
            self.sent_before_last_second = self.sent;
        }
        let other_before = self.sent_before_last_second.of(other(metric)) as u32;
        self.sent.count(metric);
        if let Some(ip) = event.ip {
            self.note_ip(ip, event.at);
        }
        let now = self.last_seen.as_secs();
        for counter in &mut self.counters {
            let limit = counter.limit;
            let start = now.saturating_sub(limit.window_secs);
            counter.recent.slide(start);
            if counter.recent.held < limit.max {
                counter.crossing = None;
            }
            let counts = limit.metric == metric && event.at.as_secs() > start;
            if counts {
                counter
                    .recent
                    .add(event.at.as_secs(), other_before, limit.cap());
            }
            let held = counter.recent.held;
            match counter.crossing.and_then(|i| crossings.get_mut(i)) {
                Some(crossing) => {
                    crossing.last_seen = crossing.last_seen.max(event.at);
                    crossing.sent.count(metric);
                    crossing.peak = crossing.peak.max(held);
                    if let Some(ip) = event.ip {
                        if crossing.ips.len() < MAX_IPS && !crossing.ips.contains(&ip) {
                            crossing.ips.push(ip);
                        }
                    }
                }
                None if counts && held > limit.max => {
                    counter.crossing = Some(crossings.len());
                    crossings.push(start_crossing(
                        &self.name, &self.ips, self.sent, counter, event,
                    ));
                }
                None => {}
            }
        }
    }

    /// Remembers `ip` as used at `at`, forgetting the least recent if full.
    fn note_ip(&mut self, ip: IpAddr, at: Timestamp) {
        if let Some(known) = self.ips.iter_mut().find(|(i, _)| *i == ip) {
            known.1 = known.1.max(at);
        } else if self.ips.len() < MAX_IPS {
            self.ips.push((ip, at));
        } else if let Some(stalest) = self.ips.iter_mut().min_by_key(|(_, t)| *t) {
            *stalest = (ip, at);
        }
    }

    /// Takes the limits of a new configuration, keeping the counts of the
    /// windows and metrics it still limits (and a crossing under way if the
    /// limit is the same).
    fn reconcile(&mut self, limits: &[Limit]) {
        let mut old = std::mem::take(&mut self.counters);
        self.counters = limits
            .iter()
            .map(|&limit| {
                let same_window = |c: &Counter| {
                    c.limit.window_secs == limit.window_secs && c.limit.metric == limit.metric
                };
                match old.iter().position(same_window) {
                    Some(i) => {
                        let mut counter = old.swap_remove(i);
                        if counter.limit != limit {
                            counter.crossing = None;
                        }
                        counter.limit = limit;
                        counter
                    }
                    None => Counter::new(limit),
                }
            })
            .collect();
    }
}

/// The crossing `event` starts on `counter` of the account `name`.
fn start_crossing(
    name: &str,
    ips: &[(IpAddr, Timestamp)],
    sent: Sent,
    counter: &Counter,
    event: &Sending<'_>,
) -> Crossing {
    let held = counter.recent.held;
    let (first_seen, other_before) = counter
        .recent
        .oldest()
        .map_or((event.at, 0), |e| (Timestamp(e.secs), e.other_before));
    let other_in_window =
        u64::from((sent.of(other(event.metric)) as u32).wrapping_sub(other_before));
    let (messages, recipients) = match event.metric {
        Metric::Messages => (u64::from(held), other_in_window),
        Metric::Recipients => (other_in_window, u64::from(held)),
    };
    Crossing {
        account: name.into(),
        limit: counter.limit,
        count: held,
        peak: held,
        first_seen,
        last_seen: event.at,
        detected_at: event.at,
        sent: Sent {
            messages,
            recipients,
        },
        ips: ips
            .iter()
            .filter(|(_, t)| *t >= first_seen)
            .map(|(ip, _)| *ip)
            .collect(),
        evidence: evidence_line(event.line),
    }
}

impl Crossing {
    fn incident(&self) -> Incident {
        let limit = self.limit;
        let window = window_words(limit.window_secs);
        let mut reasons = vec![format!(
            "{} within {window} (limit {})",
            limit.metric.sent(self.count),
            limit.max
        )];
        if self.peak > self.count {
            // Counters stop counting at their cap.
            let at_least = if self.peak >= limit.cap() {
                "at least "
            } else {
                ""
            };
            reasons.push(format!(
                "peak of {at_least}{} within {window}",
                limit.metric.amount(self.peak)
            ));
        }
        reasons.push(format!(
            "{} messages to {} recipients between {} and {}",
            self.sent.messages, self.sent.recipients, self.first_seen, self.last_seen
        ));
        Incident {
            kind: IncidentKind::LimitExceeded,
            account: Some(self.account.to_string()),
            ips: self.ips.clone(),
            network: None,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            detected_at: self.detected_at,
            messages: self.sent.messages,
            recipients: self.sent.recipients,
            failed_recipients: 0,
            external_recipients: 0,
            failed_logins: 0,
            accounts_tried: Vec::new(),
            accounts_tried_total: 0,
            succeeded_as: Vec::new(),
            score: if u64::from(self.peak) >= limit.twice() {
                100
            } else {
                70
            },
            reasons,
            evidence: vec![self.evidence.clone()],
        }
    }
}

/// `1 minute`, `90 seconds`, `2 hours`, `1 day`, `36 hours`.
fn window_words(secs: i64) -> String {
    let (n, unit) = [(86_400, "day"), (3600, "hour"), (60, "minute")]
        .into_iter()
        .find(|(unit, _)| secs % unit == 0)
        .map_or((secs, "second"), |(unit, name)| (secs / unit, name));
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural}")
}

/// The limits detector's state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Set from the configuration, not stored.
    #[serde(skip)]
    config: Resolved,
    accounts: FxHashMap<AccountId, AccountState>,
    /// Incidents in the order they tripped.
    crossings: Vec<Crossing>,
    /// When to forget the accounts idle for longer than the longest window.
    next_sweep: Option<Timestamp>,
}

impl Limits {
    /// A detector with `config`'s limits.
    pub fn new(config: &LimitsConfig) -> Self {
        Limits {
            config: Resolved::new(config),
            ..Limits::default()
        }
    }

    /// Takes new limits (after a restore with a changed configuration).
    pub fn set_config(&mut self, config: &LimitsConfig) {
        self.config = Resolved::new(config);
        let Limits {
            config, accounts, ..
        } = self;
        for state in accounts.values_mut() {
            state.reconcile(config.limits_for(&state.name));
        }
    }

    /// A message the account `name` (lower case) submitted from `ip`.
    pub fn on_message(
        &mut self,
        id: AccountId,
        name: &str,
        ip: IpAddr,
        at: Timestamp,
        line: &[u8],
    ) {
        let ip = Some(ip).filter(|ip| !ip.is_unspecified());
        self.record(
            id,
            name,
            Sending {
                metric: Metric::Messages,
                at,
                ip,
                line,
            },
        );
    }

    /// A new recipient of a message the account `name` submitted.
    pub fn on_recipient(&mut self, id: AccountId, name: &str, at: Timestamp, line: &[u8]) {
        self.record(
            id,
            name,
            Sending {
                metric: Metric::Recipients,
                at,
                ip: None,
                line,
            },
        );
    }

    fn record(&mut self, id: AccountId, name: &str, event: Sending<'_>) {
        if !self.config.is_active() {
            return;
        }
        self.sweep(event.at);
        let Limits {
            config,
            accounts,
            crossings,
            ..
        } = self;
        let state = accounts
            .entry(id)
            .or_insert_with(|| AccountState::new(name, config.limits_for(name), event.at));
        if state.counters.is_empty() {
            state.last_seen = state.last_seen.max(event.at);
            return;
        }
        state.record(&event, crossings);
    }

    /// Forgets, once per longest window, the accounts idle for longer than
    /// it: their windows are empty.
    fn sweep(&mut self, at: Timestamp) {
        if self.next_sweep.is_some_and(|next| at < next) {
            return;
        }
        let longest = self.config.longest_window;
        let idle_before = at.as_secs().saturating_sub(longest);
        self.accounts
            .retain(|_, state| state.last_seen.as_secs() > idle_before);
        self.next_sweep = Some(Timestamp(at.as_secs().saturating_add(longest)));
    }

    /// How many incidents have tripped so far.
    pub fn tripped_count(&self) -> usize {
        self.crossings.len()
    }

    /// Incidents in the order they tripped.
    pub fn incidents(&self) -> Vec<Incident> {
        self.incidents_since(0)
    }

    /// Incidents that tripped after the first `skip`.
    pub fn incidents_since(&self, skip: usize) -> Vec<Incident> {
        self.crossings
            .iter()
            .skip(skip)
            .map(Crossing::incident)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compromise::Accounts;
    use std::net::Ipv4Addr;

    const T0: i64 = 1_793_577_600;

    fn at(secs: i64) -> Timestamp {
        Timestamp(T0 + secs)
    }

    fn spec(window: &str, messages: Option<u32>, recipients: Option<u32>) -> LimitSpec {
        LimitSpec {
            window_secs: parse_window(window).unwrap(),
            messages,
            recipients,
        }
    }

    fn limits(defaults: Vec<LimitSpec>) -> Limits {
        Limits::new(&LimitsConfig {
            defaults,
            ..LimitsConfig::default()
        })
    }

    /// A message from `user{account}@example.com`; `ids` hands out the ids.
    fn send(limits: &mut Limits, ids: &mut Accounts, account: u32, t: i64) {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let name = format!("user{account}@example.com");
        let id = ids.id(name.as_bytes(), at(t));
        limits.on_message(id, &name, ip, at(t), b"line");
    }

    #[test]
    fn windows_parse_in_seconds_minutes_hours_and_days() {
        assert_eq!(parse_window("90s"), Ok(90));
        assert_eq!(parse_window("1m"), Ok(60));
        assert_eq!(parse_window(" 2h "), Ok(7200));
        assert_eq!(parse_window("1d"), Ok(86_400));
        for bad in [
            "",
            "m",
            "0m",
            "1",
            "1y",
            "1 m",
            "-1m",
            "1.5h",
            "1mm",
            "99999999999999999d",
        ] {
            assert!(parse_window(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn recent_is_exact_below_its_cap_and_keeps_the_newest() {
        let mut r = Recent::default();
        for s in [0, 0, 1, 5] {
            r.add(s, 0, 3);
        }
        assert_eq!(r.held, 3, "capped");
        assert_eq!(r.oldest().map(|e| (e.secs, e.count)), Some((0, 1)));
        r.slide(0);
        assert_eq!(r.held, 2, "second 0 slid out: exact again");
        r.add(3, 0, 3);
        let secs: Vec<i64> = r.entries.iter().map(|e| e.secs).collect();
        assert_eq!(secs, [1, 3, 5], "a late event goes in its place");
    }

    #[test]
    fn memory_stays_bounded_by_the_limit_whatever_the_traffic() {
        let (mut l, mut ids) = (
            limits(vec![spec("1d", Some(100), None)]),
            Accounts::default(),
        );
        for t in 0..50_000 {
            send(&mut l, &mut ids, 1, t);
        }
        let entries: usize = l
            .accounts
            .values()
            .flat_map(|a| &a.counters)
            .map(|c| c.recent.entries.len())
            .sum();
        assert_eq!(
            entries, 200,
            "at most twice the limit, one entry per second"
        );
        let size = |l: &Limits| rmp_serde::to_vec_named(l).unwrap().len();
        let before = size(&l);
        for t in 50_000..150_000 {
            send(&mut l, &mut ids, 1, t);
        }
        // Only the figures' encodings may widen.
        assert!(
            size(&l) <= before + 16,
            "state does not grow with the messages"
        );
        assert_eq!(l.tripped_count(), 1, "one steady flood is one crossing");
    }

    #[test]
    fn without_limits_nothing_is_kept() {
        let (mut l, mut ids) = (Limits::new(&LimitsConfig::default()), Accounts::default());
        for t in 0..1000 {
            send(&mut l, &mut ids, 1, t);
        }
        assert!(l.accounts.is_empty() && l.crossings.is_empty());
    }

    #[test]
    fn idle_accounts_are_forgotten_after_the_longest_window() {
        let mut l = limits(vec![spec("1m", Some(5), None), spec("1h", Some(50), None)]);
        let mut ids = Accounts::default();
        for account in 0..100 {
            send(&mut l, &mut ids, account, account as i64);
        }
        assert_eq!(l.accounts.len(), 100);
        send(&mut l, &mut ids, 1000, 2 * 3600 + 1);
        assert_eq!(
            l.accounts.len(),
            1,
            "only the account active in the last hour"
        );
    }

    #[test]
    fn exempt_wins_over_an_override_and_names_match_in_any_case() {
        let config = LimitsConfig {
            defaults: vec![spec("1m", Some(1), None)],
            overrides: vec![AccountLimit {
                account: " User1@Example.COM".into(),
                limit: spec("1m", Some(3), None),
            }],
            exempt: vec!["USER2@example.com".into(), "user1@example.com".into()],
        };
        let resolved = Resolved::new(&config);
        assert!(resolved.limits_for("user1@example.com").is_empty());
        assert!(resolved.limits_for("user2@example.com").is_empty());
        assert_eq!(resolved.limits_for("user3@example.com").len(), 1);
    }

    #[test]
    fn a_new_configuration_keeps_the_counts_of_the_windows_it_still_limits() {
        let mut l = limits(vec![
            spec("1m", Some(10), None),
            spec("1h", Some(100), None),
        ]);
        let mut ids = Accounts::default();
        for t in 0..8 {
            send(&mut l, &mut ids, 1, t);
        }
        l.set_config(&LimitsConfig {
            defaults: vec![spec("1m", Some(8), None), spec("1d", Some(100), None)],
            ..LimitsConfig::default()
        });
        send(&mut l, &mut ids, 1, 9);
        assert_eq!(
            l.tripped_count(),
            1,
            "the minute kept its 8 messages: the 9th trips"
        );
        let windows: Vec<i64> = l
            .accounts
            .values()
            .flat_map(|a| &a.counters)
            .map(|c| c.limit.window_secs)
            .collect();
        assert_eq!(windows, [60, 86_400]);
    }

    #[test]
    fn window_words_pick_the_largest_whole_unit() {
        assert_eq!(window_words(60), "1 minute");
        assert_eq!(window_words(90), "90 seconds");
        assert_eq!(window_words(7200), "2 hours");
        assert_eq!(window_words(86_400), "1 day");
        assert_eq!(window_words(36 * 3600), "36 hours");
    }

    #[test]
    fn hostile_times_do_not_overflow() {
        let mut l = limits(vec![spec("1d", Some(1), None)]);
        let id = Accounts::default().id(b"a", Timestamp(0));
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for t in [i64::MAX, i64::MIN, 0, i64::MAX] {
            l.on_message(id, "a", ip, Timestamp(t), b"x");
        }
        assert_eq!(l.tripped_count(), 1);
    }
}
