//! Per-key sending limits over sliding windows, exact to the second.
//!
//! Pure and in memory: no I/O and no clock reads, every call takes `now` in
//! seconds, so edges are testable. The server asks [`Limiter::check`] at RCPT
//! (would one more message or recipient exceed a limit?) and counts what
//! Postfix accepted with [`Limiter::record`] at END-OF-MESSAGE, where
//! `recipient_count` is known.
//!
//! Each key keeps, per limit, a queue of `(second, amount)` with the amounts
//! of one second merged, so a key's memory is bounded by its windows' lengths
//! in seconds, not by its traffic. Entries leave when their window has passed
//! them; [`Limiter::prune`] drops keys idle longer than their longest window.
//!
//! Keys (SASL user, sender…) are chosen by the client side; they are only
//! compared, case-insensitively (Unicode lower case), never interpreted.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Deserializer, Serialize};

/// The limits of every key, the per-key replacements, and the keys never
/// limited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default)]
    pub limits: Vec<Limit>,
    #[serde(default)]
    pub overrides: Vec<Override>,
    /// Keys (e.g. a newsletter account) that are never limited.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// At most `max` of what `counts` counts within any `window_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Written `"30s"`, `"10m"`, `"1h"` or `"1d"` in the config.
    #[serde(
        rename = "window",
        deserialize_with = "deserialize_window",
        serialize_with = "serialize_window"
    )]
    pub window_secs: u64,
    pub max: u64,
    pub counts: Counting,
}

/// What a limit counts: messages, or their accepted recipients (a message
/// to 50 people counts 50).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Counting {
    Messages,
    Recipients,
}

/// Limits that replace the defaults (not add to them) for one key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub key: String,
    pub limits: Vec<Limit>,
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Two overrides for one key (compared case-insensitively) would leave
    /// it unclear which applies.
    #[error("more than one override for key {0:?}")]
    DuplicateOverride(String),
}

/// The answer of [`Limiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// `limit` is the first in configured order that would be exceeded;
    /// `count` is what its window would hold with this request (> `max`).
    Over {
        limit: Limit,
        count: u64,
    },
}

/// Reads a window such as `"90s"`, `"10m"`, `"1h"` or `"1d"` into seconds.
/// Zero and overflowing windows are refused: neither can limit anything.
fn parse_window(text: &str) -> Option<u64> {
    mailfuse_core::time::parse_duration(text)
        .ok()
        .and_then(|secs| u64::try_from(secs).ok())
}

fn deserialize_window<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_window(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "invalid window {text:?}: expected a positive number then s, m, h, d or w (e.g. \"1h\")"
        ))
    })
}

fn serialize_window<S: serde::Serializer>(secs: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("{secs}s"))
}

/// The counts of a [`Limiter`], to persist across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimiterSnapshot {
    keys: Vec<KeySnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KeySnapshot {
    key: String,
    last_seen: u64,
    /// Each limit with its `(second, amount)` entries, oldest first.
    windows: Vec<(Limit, Vec<(u64, u64)>)>,
}

/// Lower-cases a key, borrowing it when it already is (the usual case).
pub fn normalize(key: &str) -> Cow<'_, str> {
    if key.chars().any(char::is_uppercase) {
        Cow::Owned(key.to_lowercase())
    } else {
        Cow::Borrowed(key)
    }
}

/// The recent amounts of one limit for one key, oldest first.
#[derive(Debug, Default)]
struct Window {
    entries: VecDeque<(u64, u64)>,
    total: u64,
}

impl Window {
    /// Forgets the entries `window_secs` or more seconds old, so the window
    /// at `now` covers the seconds `now - window_secs + 1 ..= now`.
    fn expire(&mut self, now: u64, window_secs: u64) {
        while let Some(&(second, amount)) = self.entries.front() {
            if now.saturating_sub(second) < window_secs {
                break;
            }
            self.total = self.total.saturating_sub(amount);
            self.entries.pop_front();
        }
    }

    /// Adds `amount` at `now`, merged into the newest entry when it has the
    /// same second, or a later one (a clock stepped back), so the queue stays
    /// ordered and grows by at most one entry per second.
    fn add(&mut self, now: u64, amount: u64) {
        if amount == 0 {
            return;
        }
        self.total = self.total.saturating_add(amount);
        match self.entries.back_mut() {
            Some((second, merged)) if *second >= now => *merged = merged.saturating_add(amount),
            _ => self.entries.push_back((now, amount)),
        }
    }
}

/// One key's windows, in the order of the limits that apply to it.
#[derive(Debug)]
struct KeyState {
    windows: Vec<Window>,
    last_seen: u64,
}

/// The configuration, lower-cased for lookups.
#[derive(Debug)]
struct Rules {
    defaults: Vec<Limit>,
    /// Lower-cased key → its replacement limits.
    overrides: HashMap<String, Vec<Limit>>,
    /// Lower-cased keys never limited.
    allow: HashSet<String>,
}

impl Rules {
    /// The limits for a lower-cased key; `None` when it is allow-listed.
    fn limits_of(&self, key: &str) -> Option<&[Limit]> {
        if self.allow.contains(key) {
            return None;
        }
        Some(self.overrides.get(key).unwrap_or(&self.defaults))
    }
}

/// The sending limits of every key, counted in memory.
#[derive(Debug)]
pub struct Limiter {
    rules: Rules,
    keys: HashMap<String, KeyState>,
}

impl Limit {
    fn amount(&self, messages: u64, recipients: u64) -> u64 {
        match self.counts {
            Counting::Messages => messages,
            Counting::Recipients => recipients,
        }
    }
}

impl Limiter {
    pub fn new(config: LimitsConfig) -> Result<Self, ConfigError> {
        let mut overrides = HashMap::with_capacity(config.overrides.len());
        for entry in config.overrides {
            let key = normalize(&entry.key).into_owned();
            if overrides.contains_key(&key) {
                return Err(ConfigError::DuplicateOverride(entry.key));
            }
            overrides.insert(key, entry.limits);
        }
        let allow = config
            .allow
            .iter()
            .map(|key| normalize(key).into_owned())
            .collect();
        let rules = Rules {
            defaults: config.limits,
            overrides,
            allow,
        };
        Ok(Self {
            rules,
            keys: HashMap::new(),
        })
    }

    /// Whether `messages` more messages carrying `recipients` recipients
    /// would stay within every limit of `key`, without counting them.
    /// Mutable only to forget expired entries.
    pub fn check(&mut self, key: &str, now: u64, messages: u64, recipients: u64) -> Verdict {
        let key = normalize(key);
        let Some(limits) = self.rules.limits_of(&key) else {
            return Verdict::Allowed;
        };
        let mut windows = self
            .keys
            .get_mut(key.as_ref())
            .map(|state| &mut state.windows);
        for (index, limit) in limits.iter().enumerate() {
            let held = match windows.as_mut().and_then(|windows| windows.get_mut(index)) {
                Some(window) => {
                    window.expire(now, limit.window_secs);
                    window.total
                }
                None => 0,
            };
            let count = held.saturating_add(limit.amount(messages, recipients));
            if count > limit.max {
                return Verdict::Over {
                    limit: *limit,
                    count,
                };
            }
        }
        Verdict::Allowed
    }

    /// Counts `messages` messages with `recipients` recipients against every
    /// limit of `key`, even past a limit: it records what Postfix accepted.
    pub fn record(&mut self, key: &str, now: u64, messages: u64, recipients: u64) {
        let key = normalize(key);
        let Some(limits) = self.rules.limits_of(&key) else {
            return;
        };
        if limits.is_empty() {
            return;
        }
        if !self.keys.contains_key(key.as_ref()) {
            let windows = limits.iter().map(|_| Window::default()).collect();
            let state = KeyState {
                windows,
                last_seen: now,
            };
            self.keys.insert(key.as_ref().to_owned(), state);
        }
        let Some(state) = self.keys.get_mut(key.as_ref()) else {
            return;
        };
        state.last_seen = state.last_seen.max(now);
        for (limit, window) in limits.iter().zip(&mut state.windows) {
            window.expire(now, limit.window_secs);
            window.add(now, limit.amount(messages, recipients));
        }
    }

    /// Raises `key`'s windows to at least `totals` (one per limit, in
    /// configured order), adding the difference at `now`: a server sharing
    /// counts through Redis learns the others' share, so that if Redis goes
    /// away its own counts are not short of what the cluster sent. Added at
    /// `now` rather than at their real seconds, the learnt amounts leave the
    /// window late, never early: the local answer errs towards the limit.
    pub fn catch_up(&mut self, key: &str, now: u64, totals: &[u64]) {
        let key = normalize(key);
        let Some(limits) = self.rules.limits_of(&key) else {
            return;
        };
        if limits.is_empty() || totals.iter().all(|&total| total == 0) {
            return;
        }
        let state = self
            .keys
            .entry(key.into_owned())
            .or_insert_with(|| KeyState {
                windows: limits.iter().map(|_| Window::default()).collect(),
                last_seen: now,
            });
        state.last_seen = state.last_seen.max(now);
        for ((limit, window), &total) in limits.iter().zip(&mut state.windows).zip(totals) {
            window.expire(now, limit.window_secs);
            if total > window.total {
                window.add(now, total - window.total);
            }
        }
    }

    /// Drops the keys idle for at least their longest window: all their
    /// entries have expired, so forgetting them changes no verdict.
    pub fn prune(&mut self, now: u64) {
        let rules = &self.rules;
        self.keys.retain(|key, state| {
            let longest = rules
                .limits_of(key)
                .and_then(|limits| limits.iter().map(|limit| limit.window_secs).max());
            longest.is_some_and(|longest| now.saturating_sub(state.last_seen) < longest)
        });
    }

    /// The limits that apply to `key`: `None` when it is allow-listed.
    pub fn limits_of(&self, key: &str) -> Option<&[Limit]> {
        self.rules.limits_of(&normalize(key))
    }

    /// What each limit of `key` holds at `now`, in configured order.
    pub fn usage(&mut self, key: &str, now: u64) -> Vec<(Limit, u64)> {
        let key = normalize(key);
        let Some(limits) = self.rules.limits_of(&key) else {
            return Vec::new();
        };
        let mut windows = self.keys.get_mut(key.as_ref()).map(|s| &mut s.windows);
        limits
            .iter()
            .enumerate()
            .map(|(index, limit)| {
                let held = windows
                    .as_mut()
                    .and_then(|windows| windows.get_mut(index))
                    .map_or(0, |window| {
                        window.expire(now, limit.window_secs);
                        window.total
                    });
                (*limit, held)
            })
            .collect()
    }

    /// The keys holding counts, for listings.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Every key's counts, each tagged with its limit, so a restart under a
    /// changed configuration keeps the counts of the limits that stayed.
    pub fn snapshot(&self) -> LimiterSnapshot {
        let keys = self
            .keys
            .iter()
            .filter_map(|(key, state)| {
                let limits = self.rules.limits_of(key)?;
                let windows = limits
                    .iter()
                    .zip(&state.windows)
                    .map(|(limit, window)| (*limit, window.entries.iter().copied().collect()))
                    .collect();
                Some(KeySnapshot {
                    key: key.clone(),
                    last_seen: state.last_seen,
                    windows,
                })
            })
            .collect();
        LimiterSnapshot { keys }
    }

    /// Takes back the counts of a [`Limiter::snapshot`]; counts of limits no
    /// longer configured for their key are dropped.
    pub fn restore(&mut self, snapshot: LimiterSnapshot) {
        for saved in snapshot.keys {
            let key = normalize(&saved.key).into_owned();
            let Some(limits) = self.rules.limits_of(&key) else {
                continue;
            };
            let windows = limits
                .iter()
                .map(|limit| {
                    let mut window = Window::default();
                    let entries = saved
                        .windows
                        .iter()
                        .find(|(saved, _)| saved == limit)
                        .map(|(_, entries)| entries.as_slice())
                        .unwrap_or_default();
                    for &(second, amount) in entries {
                        window.add(second, amount);
                    }
                    window
                })
                .collect();
            let state = KeyState {
                windows,
                last_seen: saved.last_seen,
            };
            self.keys.insert(key, state);
        }
    }

    /// How many keys hold counts (for metrics and tests).
    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }

    /// How many `(second, amount)` entries `key` holds over all its limits.
    #[cfg(test)]
    fn entries_of(&self, key: &str) -> usize {
        self.keys.get(normalize(key).as_ref()).map_or(0, |state| {
            state
                .windows
                .iter()
                .map(|window| window.entries.len())
                .sum()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    fn limit(window_secs: u64, max: u64, counts: Counting) -> Limit {
        Limit {
            window_secs,
            max,
            counts,
        }
    }

    fn limiter(limits: Vec<Limit>) -> Limiter {
        Limiter::new(LimitsConfig {
            limits,
            ..LimitsConfig::default()
        })
        .unwrap()
    }

    fn over(limit: Limit, count: u64) -> Verdict {
        Verdict::Over { limit, count }
    }

    #[test]
    fn thirtieth_passes_thirty_first_is_over_and_slides_out_after_the_window() {
        let per_minute = limit(60, 30, Counting::Messages);
        let mut limiter = limiter(vec![per_minute]);
        limiter.record("alice", T0, 1, 1);
        for second in 1..29 {
            limiter.record("alice", T0 + second, 1, 1);
        }
        assert_eq!(limiter.check("alice", T0 + 29, 1, 1), Verdict::Allowed);
        limiter.record("alice", T0 + 29, 1, 1);
        assert_eq!(limiter.check("alice", T0 + 30, 1, 1), over(per_minute, 31));
        assert_eq!(limiter.check("alice", T0 + 59, 1, 1), over(per_minute, 31));
        // At T0 + 60 the message sent at T0 is 60 s old: out of the window.
        assert_eq!(limiter.check("alice", T0 + 60, 1, 1), Verdict::Allowed);
        limiter.record("alice", T0 + 60, 1, 1);
        assert_eq!(limiter.check("alice", T0 + 60, 1, 1), over(per_minute, 31));
        assert_eq!(limiter.check("alice", T0 + 61, 1, 1), Verdict::Allowed);
    }

    #[test]
    fn a_burst_in_one_second_is_limited_exactly() {
        let per_minute = limit(60, 30, Counting::Messages);
        let mut limiter = limiter(vec![per_minute]);
        for _ in 0..30 {
            assert_eq!(limiter.check("alice", T0, 1, 1), Verdict::Allowed);
            limiter.record("alice", T0, 1, 1);
        }
        assert_eq!(limiter.check("alice", T0, 1, 1), over(per_minute, 31));
        assert_eq!(limiter.check("alice", T0 + 59, 1, 1), over(per_minute, 31));
        assert_eq!(limiter.check("alice", T0 + 60, 1, 1), Verdict::Allowed);
    }

    #[test]
    fn several_windows_report_the_first_exceeded_in_configured_order() {
        let per_minute = limit(60, 5, Counting::Messages);
        let per_hour = limit(3_600, 8, Counting::Messages);
        let per_day = limit(86_400, 8, Counting::Messages);
        let mut limiter = limiter(vec![per_minute, per_hour, per_day]);
        for _ in 0..5 {
            limiter.record("alice", T0, 1, 1);
        }
        assert_eq!(limiter.check("alice", T0, 1, 1), over(per_minute, 6));
        for _ in 0..3 {
            limiter.record("alice", T0 + 60, 1, 1);
        }
        // The minute is fine again, the hour and the day are both full: the
        // hour comes first in the configuration.
        assert_eq!(limiter.check("alice", T0 + 120, 1, 1), over(per_hour, 9));
        assert_eq!(limiter.check("alice", T0 + 3_600, 1, 1), over(per_day, 9));
        assert_eq!(limiter.check("alice", T0 + 86_400, 1, 1), Verdict::Allowed);
    }

    #[test]
    fn recipients_and_messages_are_counted_apart() {
        let messages = limit(3_600, 3, Counting::Messages);
        let recipients = limit(3_600, 100, Counting::Recipients);
        let mut limiter = limiter(vec![messages, recipients]);
        // One message to 100 recipients: a single message, a full recipient quota.
        limiter.record("alice", T0, 1, 100);
        assert_eq!(limiter.check("alice", T0 + 1, 1, 1), over(recipients, 101));
        assert_eq!(limiter.check("alice", T0 + 1, 1, 0), Verdict::Allowed);

        let mut limiter = self::limiter(vec![messages, recipients]);
        for _ in 0..3 {
            limiter.record("bob", T0, 1, 1);
        }
        assert_eq!(limiter.check("bob", T0, 1, 1), over(messages, 4));
    }

    #[test]
    fn a_multi_recipient_message_counts_its_recipient_count() {
        let recipients = limit(60, 10, Counting::Recipients);
        let mut limiter = limiter(vec![recipients]);
        limiter.record("alice", T0, 1, 7);
        assert_eq!(limiter.check("alice", T0, 1, 3), Verdict::Allowed);
        assert_eq!(limiter.check("alice", T0, 1, 4), over(recipients, 11));
        limiter.record("alice", T0 + 1, 1, 3);
        assert_eq!(limiter.check("alice", T0 + 1, 1, 1), over(recipients, 11));
        // The 7 leave at T0 + 60, the 3 at T0 + 61.
        assert_eq!(limiter.check("alice", T0 + 60, 1, 7), Verdict::Allowed);
        assert_eq!(limiter.check("alice", T0 + 60, 1, 8), over(recipients, 11));
    }

    #[test]
    fn check_does_not_count() {
        let per_minute = limit(60, 2, Counting::Messages);
        let mut limiter = limiter(vec![per_minute]);
        for _ in 0..1_000 {
            assert_eq!(limiter.check("alice", T0, 1, 1), Verdict::Allowed);
        }
        assert_eq!(limiter.tracked_keys(), 0);
        limiter.record("alice", T0, 2, 2);
        assert_eq!(limiter.check("alice", T0, 1, 1), over(per_minute, 3));
        assert_eq!(limiter.check("alice", T0, 0, 0), Verdict::Allowed);
    }

    #[test]
    fn overrides_replace_defaults_and_allow_list_skips_case_insensitively() {
        let default = limit(60, 1, Counting::Messages);
        let generous = limit(60, 100, Counting::Messages);
        let mut limiter = Limiter::new(LimitsConfig {
            limits: vec![default],
            overrides: vec![Override {
                key: "Sales@Example.COM".into(),
                limits: vec![generous],
            }],
            allow: vec!["NEWSLETTER@example.com".into()],
        })
        .unwrap();

        limiter.record("sales@example.com", T0, 50, 50);
        assert_eq!(
            limiter.check("SALES@example.com", T0, 1, 1),
            Verdict::Allowed
        );
        limiter.record("SALES@EXAMPLE.COM", T0, 50, 50);
        assert_eq!(
            limiter.check("sales@example.com", T0, 1, 1),
            over(generous, 101)
        );

        for _ in 0..10_000 {
            limiter.record("newsletter@EXAMPLE.com", T0, 1, 500);
        }
        assert_eq!(
            limiter.check("Newsletter@Example.Com", T0, 1_000, 1_000_000),
            Verdict::Allowed
        );
        assert_eq!(limiter.tracked_keys(), 1);

        limiter.record("Alice", T0, 1, 1);
        assert_eq!(limiter.check("aLICE", T0, 1, 1), over(default, 2));
        // A lookalike is another key, not the allow-listed one.
        assert_eq!(
            limiter.check("newsletter@example.com ", T0, 2, 2),
            over(default, 2)
        );
    }

    #[test]
    fn duplicate_override_is_refused() {
        let config = LimitsConfig {
            limits: vec![],
            overrides: vec![
                Override {
                    key: "alice".into(),
                    limits: vec![],
                },
                Override {
                    key: "ALICE".into(),
                    limits: vec![],
                },
            ],
            allow: vec![],
        };
        assert_eq!(
            Limiter::new(config).unwrap_err(),
            ConfigError::DuplicateOverride("ALICE".into())
        );
    }

    #[test]
    fn prune_releases_keys_idle_longer_than_their_longest_window() {
        let mut limiter = limiter(vec![
            limit(60, 10, Counting::Messages),
            limit(3_600, 100, Counting::Messages),
        ]);
        limiter.record("alice", T0, 1, 1);
        limiter.record("bob", T0 + 1_000, 1, 1);
        limiter.prune(T0 + 3_599);
        assert_eq!(limiter.tracked_keys(), 2);
        limiter.prune(T0 + 3_600);
        assert_eq!(limiter.tracked_keys(), 1);
        assert_eq!(limiter.entries_of("alice"), 0);
        limiter.prune(T0 + 4_600);
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[test]
    fn keys_without_limits_hold_no_memory() {
        let mut limiter = limiter(vec![]);
        limiter.record("alice", T0, 1, 1);
        assert_eq!(
            limiter.check("alice", T0, u64::MAX, u64::MAX),
            Verdict::Allowed
        );
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[test]
    fn memory_stays_bounded_per_second() {
        let mut limiter = limiter(vec![limit(86_400, 1_000_000, Counting::Recipients)]);
        for _ in 0..100_000 {
            limiter.record("alice", T0, 1, 3);
        }
        assert_eq!(limiter.entries_of("alice"), 1);
        assert_eq!(
            limiter.check("alice", T0, 1, 700_001),
            over(limit(86_400, 1_000_000, Counting::Recipients), 1_000_001)
        );
        // One entry per distinct second, and old seconds leave.
        let mut limiter = self::limiter(vec![limit(60, 10, Counting::Messages)]);
        for second in 0..10_000 {
            limiter.record("bob", T0 + second, 1, 1);
        }
        assert_eq!(limiter.entries_of("bob"), 60);
    }

    #[test]
    fn clock_stepping_back_keeps_counting_without_growing() {
        let per_minute = limit(60, 3, Counting::Messages);
        let mut limiter = limiter(vec![per_minute]);
        limiter.record("alice", T0 + 100, 1, 1);
        limiter.record("alice", T0, 1, 1);
        limiter.record("alice", 0, 1, 1);
        assert_eq!(limiter.entries_of("alice"), 1);
        assert_eq!(limiter.check("alice", T0, 1, 1), over(per_minute, 4));
        assert_eq!(limiter.check("alice", T0 + 160, 1, 1), Verdict::Allowed);
    }

    #[test]
    fn huge_amounts_saturate_instead_of_overflowing() {
        let recipients = limit(60, u64::MAX - 1, Counting::Recipients);
        let mut limiter = limiter(vec![recipients]);
        limiter.record("alice", T0, 1, u64::MAX);
        limiter.record("alice", T0, 1, u64::MAX);
        assert_eq!(limiter.check("alice", u64::MAX, 0, 0), Verdict::Allowed);
        limiter.record("alice", u64::MAX, 1, u64::MAX);
        assert_eq!(
            limiter.check("alice", u64::MAX, 0, 1),
            over(recipients, u64::MAX)
        );
    }

    #[test]
    fn catch_up_raises_windows_to_the_shared_totals_and_never_lowers_them() {
        let minute = limit(60, 10, Counting::Recipients);
        let hour = limit(3_600, 100, Counting::Messages);
        let mut limiter = limiter(vec![minute, hour]);
        limiter.record("alice", T0, 1, 4);
        limiter.catch_up("Alice", T0 + 5, &[9, 1]);
        assert_eq!(limiter.usage("alice", T0 + 5), vec![(minute, 9), (hour, 1)]);
        assert_eq!(limiter.check("alice", T0 + 5, 1, 2), over(minute, 11));
        // A lower total (the others' share expired first) changes nothing.
        limiter.catch_up("alice", T0 + 6, &[2, 0]);
        assert_eq!(limiter.usage("alice", T0 + 6), vec![(minute, 9), (hour, 1)]);
        // The learnt 5 leave a minute after they were learnt, not before.
        assert_eq!(
            limiter.usage("alice", T0 + 60),
            vec![(minute, 5), (hour, 1)]
        );
        assert_eq!(
            limiter.usage("alice", T0 + 65),
            vec![(minute, 0), (hour, 1)]
        );
    }

    #[test]
    fn config_reads_from_toml() {
        let config: LimitsConfig = toml::from_str(
            r#"
            allow = ["newsletter@example.com"]

            [[limits]]
            window = "1m"
            max = 30
            counts = "messages"

            [[limits]]
            window = "1h"
            max = 500
            counts = "recipients"

            [[limits]]
            window = "1d"
            max = 2000
            counts = "recipients"

            [[overrides]]
            key = "sales@example.com"
            limits = [{ window = "90s", max = 5, counts = "messages" }]
            "#,
        )
        .unwrap();
        assert_eq!(
            config.limits,
            vec![
                limit(60, 30, Counting::Messages),
                limit(3_600, 500, Counting::Recipients),
                limit(86_400, 2_000, Counting::Recipients),
            ]
        );
        assert_eq!(
            config.overrides,
            vec![Override {
                key: "sales@example.com".into(),
                limits: vec![limit(90, 5, Counting::Messages)],
            }]
        );
        assert_eq!(config.allow, vec!["newsletter@example.com".to_string()]);
        assert!(Limiter::new(config).is_ok());
        assert_eq!(
            toml::from_str::<LimitsConfig>("").unwrap(),
            LimitsConfig::default()
        );
    }

    #[test]
    fn config_refuses_unknown_fields_and_bad_values() {
        let bad = [
            "limit = []",
            "[[limits]]\nwindow = \"1m\"\nmax = 1\ncounts = \"messages\"\nburst = 2",
            "[[limits]]\nwindow = \"1m\"\nmax = 1\ncounts = \"bytes\"",
            "[[limits]]\nwindow = \"1m\"\nmax = -1\ncounts = \"messages\"",
            "[[limits]]\nwindow = 60\nmax = 1\ncounts = \"messages\"",
            "[[limits]]\nwindow = \"1m\"\ncounts = \"messages\"",
            "[[overrides]]\nkey = \"a\"",
        ];
        for text in bad {
            assert!(toml::from_str::<LimitsConfig>(text).is_err(), "{text}");
        }
        let error = toml::from_str::<LimitsConfig>(
            "[[limits]]\nwindow = \"0m\"\nmax = 1\ncounts = \"messages\"",
        )
        .unwrap_err();
        assert!(error.to_string().contains("invalid window"), "{error}");
    }

    #[test]
    fn window_spellings() {
        assert_eq!(parse_window("1s"), Some(1));
        assert_eq!(parse_window("90s"), Some(90));
        assert_eq!(parse_window("1m"), Some(60));
        assert_eq!(parse_window("2h"), Some(7_200));
        assert_eq!(parse_window("1d"), Some(86_400));
        assert_eq!(parse_window("007m"), Some(420));
        for bad in [
            "",
            "s",
            "1",
            "0s",
            "0d",
            "-1h",
            "+1h",
            "1 h",
            " 1h",
            "1H",
            "1y",
            "1hh",
            "1.5h",
            "1é",
            "é",
            "\u{0}1h",
            "99999999999999999999s",
            "999999999999999999d",
        ] {
            assert_eq!(parse_window(bad), None, "{bad:?}");
        }
    }
}
