//! The `limit_exceeded` detector: per-account outbound limits.
//!
//! A second line of defence beside the behavioural detector: whatever the
//! traffic looks like, an account that sends more messages (or to more
//! recipients) within a window than the admin allows is reported. The
//! counting is `mailfuse-limits`' [`Limiter`], the one `mailfuse policy`
//! enforces the same `[limits]` with (windows exact to the second, at most
//! twice the limit kept per window, idle accounts forgotten); this module
//! turns its crossings into incidents. Time is the events' own: a line
//! older than the newest one of its account still counts if it falls
//! within the window.

use std::net::IpAddr;

use mailfuse_core::rows::{Rows, RowsOf, TrackedMap, TrackedVec};
use mailfuse_core::time::duration_words;
use mailfuse_core::Timestamp;
use mailfuse_limits::{Counting, Level, Limit, LimitRules, Limiter, Sent, Standing, Usage};
use serde::{Deserialize, Serialize};

use crate::account_id::AccountId;
use crate::incident::{evidence_line, Incident, IncidentKind};

/// The window counted for watch's top senders when no limit is set.
const TALLY_WINDOW_SECS: u64 = 3600;

/// Most sending IPs remembered per account and listed per incident.
const MAX_IPS: usize = 20;

/// What the detector keeps of one account beside its counts.
#[derive(Debug, Serialize, Deserialize)]
struct Account {
    /// Recent sending IPs with when each last sent.
    ips: Vec<(IpAddr, Timestamp)>,
    last_seen: Timestamp,
    /// Each limit crossed and not yet back under, with its crossing (an
    /// index in [`Limits::crossings`]).
    open: Vec<(Limit, usize)>,
}

impl Account {
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
}

/// One crossing of one limit: an incident.
#[derive(Debug, Serialize, Deserialize)]
struct Crossing {
    account: Box<str>,
    limit: Limit,
    /// The count when it crossed, and the highest it reached (exact below
    /// twice the limit).
    count: u64,
    peak: u64,
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
    counts: Counting,
    at: Timestamp,
    ip: Option<IpAddr>,
    line: &'l [u8],
}

impl Crossing {
    /// The crossing `level` reports for `event` of the account `name`.
    fn start(name: &str, account: &Account, level: &Level, event: &Sending<'_>) -> Self {
        let first_seen = level.since.map_or(event.at, Timestamp);
        Crossing {
            account: name.into(),
            limit: level.limit,
            count: level.count,
            peak: level.count,
            first_seen,
            last_seen: event.at,
            detected_at: event.at,
            sent: level.sent,
            ips: account
                .ips
                .iter()
                .filter(|(_, t)| *t >= first_seen)
                .map(|(ip, _)| *ip)
                .collect(),
            evidence: evidence_line(event.line),
        }
    }

    /// Takes in an event while still over the limit.
    fn extend(&mut self, level: &Level, event: &Sending<'_>) {
        self.last_seen = self.last_seen.max(event.at);
        match event.counts {
            Counting::Messages => self.sent.messages += 1,
            Counting::Recipients => self.sent.recipients += 1,
        }
        self.peak = self.peak.max(level.count);
        if let Some(ip) = event.ip {
            if self.ips.len() < MAX_IPS && !self.ips.contains(&ip) {
                self.ips.push(ip);
            }
        }
    }

    fn incident(&self) -> Incident {
        let limit = self.limit;
        let window = duration_words(limit.window_secs);
        let amount = |n: u64| format!("{n} {}", limit.counts.name());
        let sent = match limit.counts {
            Counting::Messages => format!("sent {}", amount(self.count)),
            Counting::Recipients => format!("sent to {}", amount(self.count)),
        };
        let mut reasons = vec![format!("{sent} within {window} (limit {})", limit.max)];
        if self.peak > self.count {
            // Windows stop counting at their cap.
            let at_least = if self.peak >= limit.cap() {
                "at least "
            } else {
                ""
            };
            reasons.push(format!(
                "peak of {at_least}{} within {window}",
                amount(self.peak)
            ));
        }
        reasons.push(format!(
            "{} messages to {} recipients between {} and {}",
            self.sent.messages, self.sent.recipients, self.first_seen, self.last_seen
        ));
        Incident {
            account: Some(self.account.to_string()),
            ips: self.ips.clone(),
            messages: self.sent.messages,
            recipients: self.sent.recipients,
            score: if self.peak >= limit.max.saturating_mul(2) {
                100
            } else {
                70
            },
            reasons,
            evidence: vec![self.evidence.clone()],
            ..Incident::new(
                IncidentKind::LimitExceeded,
                self.first_seen..=self.last_seen,
                self.detected_at,
            )
        }
    }
}

/// The limits detector's state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Limits {
    /// The counts (its rules are set from the configuration, not stored).
    limiter: Limiter,
    accounts: TrackedMap<AccountId, Account>,
    /// Incidents in the order they tripped.
    crossings: TrackedVec<Crossing>,
    /// When to forget the accounts idle for longer than the longest window.
    next_sweep: Option<Timestamp>,
    /// Some account has a limit (or a tally): without one, a message or
    /// recipient is not even looked up (set with the rules, not stored).
    #[serde(skip)]
    counting: bool,
}

impl Limits {
    /// The tracked collections, for saving and loading rows.
    pub fn rows(&mut self) -> RowsOf<'_> {
        let mut rows: RowsOf<'_> = vec![
            ("limit_accounts", &mut self.accounts as &mut dyn Rows),
            ("limit_crossings", &mut self.crossings),
        ];
        rows.extend(self.limiter.rows());
        rows
    }

    /// A detector with `rules`' limits; none: off, and it costs nothing,
    /// unless `count_senders` (see [`Limits::set_rules`]).
    pub fn new(rules: &LimitRules, count_senders: bool) -> Self {
        let mut limits = Limits::default();
        limits.set_rules(rules, count_senders);
        limits
    }

    /// Takes new limits (after a restore with a changed configuration),
    /// keeping the counts of the windows they still have. `count_senders`:
    /// with no limit set, each account's messages are counted over an hour
    /// all the same, for [`Limits::top`]. Both come together, so that a
    /// restored tally keeps its counts: rules without it would forget them.
    pub fn set_rules(&mut self, rules: &LimitRules, count_senders: bool) {
        let rules = if count_senders && rules.is_empty() {
            LimitRules::tally(Limit::tally(TALLY_WINDOW_SECS, Counting::Messages))
        } else {
            rules.clone()
        };
        self.counting = !rules.is_empty();
        self.limiter.set_rules(rules);
    }

    /// The `n` accounts closest to (or past) their limits, as of the
    /// newest message or recipient counted (the log's clock: other lines,
    /// failed logins, may run later).
    pub fn top(&mut self, n: usize) -> Vec<Usage> {
        let now = self.limiter.newest().unwrap_or_default();
        self.limiter.top(now, n)
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
        let counts = Counting::Messages;
        self.record(
            id,
            name,
            Sending {
                counts,
                at,
                ip,
                line,
            },
        );
    }

    /// A new recipient of a message the account `name` submitted.
    pub fn on_recipient(&mut self, id: AccountId, name: &str, at: Timestamp, line: &[u8]) {
        let counts = Counting::Recipients;
        let sending = Sending {
            counts,
            at,
            ip: None,
            line,
        };
        self.record(id, name, sending);
    }

    fn record(&mut self, id: AccountId, name: &str, event: Sending<'_>) {
        if !self.counting || self.limiter.limits_of(name).is_none_or(<[_]>::is_empty) {
            return;
        }
        self.sweep(event.at);
        let Limits {
            limiter,
            accounts,
            crossings,
            ..
        } = self;
        let account = accounts.entry(id).or_insert_with(|| Account {
            ips: Vec::new(),
            last_seen: event.at,
            open: Vec::new(),
        });
        account.last_seen = account.last_seen.max(event.at);
        if let Some(ip) = event.ip {
            account.note_ip(ip, event.at);
        }
        let (messages, recipients) = match event.counts {
            Counting::Messages => (1, 0),
            Counting::Recipients => (0, 1),
        };
        let at = event.at.as_secs();
        limiter.record_with(name, at, messages, recipients, |level| {
            let open = account.open.iter().position(|(l, _)| *l == level.limit);
            match (level.standing, open) {
                (Standing::Crossed, _) => {
                    let crossing = Crossing::start(name, account, &level, &event);
                    account.open.retain(|(l, _)| *l != level.limit);
                    account.open.push((level.limit, crossings.len()));
                    crossings.push(crossing);
                }
                (Standing::Over, Some(i)) => {
                    let crossing = account.open.get(i).and_then(|&(_, c)| crossings.get_mut(c));
                    if let Some(crossing) = crossing {
                        crossing.extend(&level, &event);
                    }
                }
                (Standing::Under, Some(i)) => {
                    account.open.swap_remove(i);
                }
                (Standing::Over | Standing::Under, None) => {}
            }
        });
    }

    /// Forgets, once per longest window, the accounts idle for longer than
    /// it: their windows are empty.
    fn sweep(&mut self, at: Timestamp) {
        if self.next_sweep.is_some_and(|next| at < next) {
            return;
        }
        let longest = i64::try_from(self.limiter.rules().longest_window()).unwrap_or(i64::MAX);
        let idle_before = at.as_secs().saturating_sub(longest);
        self.limiter.prune(at.as_secs());
        self.accounts
            .retain_unchanged(|_, account| account.last_seen.as_secs() > idle_before);
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
    use mailfuse_limits::{LimitsConfig, WindowLimit};
    use std::net::Ipv4Addr;

    const T0: i64 = 1_793_577_600;

    fn at(secs: i64) -> Timestamp {
        Timestamp(T0 + secs)
    }

    fn limits(defaults: Vec<WindowLimit>) -> Limits {
        let config = LimitsConfig {
            defaults,
            ..LimitsConfig::default()
        };
        Limits::new(&LimitRules::new(&config).unwrap(), false)
    }

    fn messages_per(window_secs: u64, max: u64) -> WindowLimit {
        WindowLimit {
            window_secs,
            messages: Some(max),
            recipients: None,
        }
    }

    /// A message from `user{account}@example.com`; `ids` hands out the ids.
    fn send(limits: &mut Limits, ids: &mut Accounts, account: u32, t: i64) {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let name = format!("user{account}@example.com");
        let id = ids.id(name.as_bytes(), at(t));
        limits.on_message(id, &name, ip, at(t), b"line");
    }

    #[test]
    fn without_limits_nothing_is_kept() {
        let (mut l, mut ids) = (
            Limits::new(&LimitRules::default(), false),
            Accounts::default(),
        );
        for t in 0..1000 {
            send(&mut l, &mut ids, 1, t);
        }
        assert!(l.accounts.is_empty() && l.crossings.is_empty());
        assert_eq!(l.limiter.tracked_keys(), 0);
    }

    #[test]
    fn idle_accounts_are_forgotten_after_the_longest_window() {
        let mut l = limits(vec![messages_per(60, 5), messages_per(3600, 50)]);
        let mut ids = Accounts::default();
        for account in 0..100 {
            send(&mut l, &mut ids, account, account as i64);
        }
        assert_eq!(l.accounts.len(), 100);
        send(&mut l, &mut ids, 1000, 2 * 3600 + 1);
        assert_eq!(
            (l.accounts.len(), l.limiter.tracked_keys()),
            (1, 1),
            "only the account active in the last hour"
        );
    }

    #[test]
    fn without_limits_a_tally_counts_the_last_hour_for_top_senders() {
        let (mut l, mut ids) = (
            Limits::new(&LimitRules::default(), true),
            Accounts::default(),
        );
        for t in 0..3 {
            send(&mut l, &mut ids, 1, t);
        }
        send(&mut l, &mut ids, 2, 3);
        let top = l.top(5);
        let seen: Vec<(&str, u64, Option<u64>)> = top
            .iter()
            .map(|u| (u.key.as_str(), u.windows[0].1, u.windows[0].0.maximum()))
            .collect();
        assert_eq!(
            seen,
            [
                ("user1@example.com", 3, None),
                ("user2@example.com", 1, None)
            ]
        );
        assert!(l.crossings.is_empty(), "a tally never trips");
        l.set_rules(
            &LimitRules::new(&LimitsConfig {
                defaults: vec![messages_per(60, 2)],
                ..LimitsConfig::default()
            })
            .unwrap(),
            true,
        );
        send(&mut l, &mut ids, 1, 4);
        assert_eq!(l.top(5)[0].windows[0].0.maximum(), Some(2));
        send(&mut l, &mut ids, 3, 3600 + 4);
        assert_eq!(l.top(5).len(), 1, "as of the newest message: 1 left");
    }
}
