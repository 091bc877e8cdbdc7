//! The counts: per key, one sliding window per limit.

use std::collections::VecDeque;

use mailfuse_core::rows::{Rows, RowsOf, TrackedMap};
use serde::{Deserialize, Serialize};

use crate::config::{normalize, Counting, Limit, LimitRules};

/// Messages and recipients, counted together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// Messages, each counted once whatever its recipients.
    pub messages: u64,
    /// The recipients of those messages.
    pub recipients: u64,
}

impl Sent {
    /// The amount a limit counting `counts` sees.
    pub fn of(&self, counts: Counting) -> u64 {
        match counts {
            Counting::Messages => self.messages,
            Counting::Recipients => self.recipients,
        }
    }

    fn add(&mut self, messages: u64, recipients: u64) {
        self.messages = self.messages.wrapping_add(messages);
        self.recipients = self.recipients.wrapping_add(recipients);
    }
}

/// The answer of [`Limiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every limit of the key holds the request too (or the key is
    /// allow-listed, or has no limit).
    Allowed,
    /// One more would pass a limit.
    Over {
        /// The first limit, in configured order, that would be exceeded.
        limit: Limit,
        /// What its window would hold with this request (more than `max`).
        count: u64,
    },
}

/// Whether `messages` more messages to `recipients` more recipients stay
/// within `limits`, whose windows hold `held` (in the same order): the one
/// rule of both stores (memory, Redis).
pub fn judge(
    limits: &[Limit],
    held: impl IntoIterator<Item = u64>,
    messages: u64,
    recipients: u64,
) -> Verdict {
    for (limit, held) in limits.iter().zip(held) {
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

/// Where a limit stands after a [`Limiter::record_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Within the limit, or back under it.
    Under,
    /// This record took it over the limit.
    Crossed,
    /// Over since an earlier crossing, and not yet back under the limit.
    Over,
}

/// One limit of a key after a record: what the detector reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// One of the key's limits (they come in configured order).
    pub limit: Limit,
    /// Whether this record crossed it, it was over already, or it is under:
    /// the detector reports a crossing once, not every message while over.
    pub standing: Standing,
    /// What the window holds (exact below [`Limit::cap`], the cap above).
    pub count: u64,
    /// The oldest second the window holds.
    pub since: Option<i64>,
    /// Messages and recipients sent from `since` on (the limit's own
    /// metric is `count`; the other is the key's running total since).
    pub sent: Sent,
}

/// The amount of one second, with the key's running total of the other
/// metric when the second began (only differences are used: it wraps).
/// Stored as a tuple: a busy key holds hundreds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(from = "(i64, u64, u64)", into = "(i64, u64, u64)")]
struct Entry {
    second: i64,
    amount: u64,
    other_before: u64,
}

impl From<(i64, u64, u64)> for Entry {
    fn from((second, amount, other_before): (i64, u64, u64)) -> Self {
        Entry {
            second,
            amount,
            other_before,
        }
    }
}

impl From<Entry> for (i64, u64, u64) {
    fn from(e: Entry) -> Self {
        (e.second, e.amount, e.other_before)
    }
}

/// Whether `second` is in the window of `window_secs` ending at `now`:
/// `(now - window, now]`, exact to the second.
fn within(now: i64, second: i64, window_secs: u64) -> bool {
    i128::from(now) - i128::from(second) < i128::from(window_secs)
}

/// One key's counts as [`Limiter::seconds`] gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySeconds {
    /// The key, normalised.
    pub key: String,
    /// Each limit, and the `(second, amount)` its window holds, oldest
    /// first.
    pub windows: Vec<(Limit, Vec<(i64, u64)>)>,
}

/// One limit's window of one key, oldest first, one entry per second. It
/// keeps at most [`Limit::cap`] of the amount, dropping the oldest first:
/// those leave the window first, so below the cap the count is exact.
#[derive(Debug, Serialize, Deserialize)]
struct Window {
    limit: Limit,
    entries: VecDeque<Entry>,
    held: u64,
    /// Over since it last crossed (no new crossing until back under).
    over: bool,
}

impl Window {
    fn new(limit: Limit) -> Self {
        Window {
            limit,
            entries: VecDeque::new(),
            held: 0,
            over: false,
        }
    }

    /// Forgets the seconds that left the window ending at `now`.
    fn expire(&mut self, now: i64) {
        while let Some(front) = self.entries.front() {
            if within(now, front.second, self.limit.window_secs) {
                break;
            }
            self.held = self.held.saturating_sub(front.amount);
            self.entries.pop_front();
        }
    }

    /// Adds `amount` at `second` (in its place when late), then trims the
    /// oldest down to the cap.
    fn add(&mut self, second: i64, amount: u64, other_before: u64) {
        if amount == 0 {
            return;
        }
        let after = self.entries.iter().rposition(|e| e.second <= second);
        match after.and_then(|i| self.entries.get_mut(i)) {
            Some(entry) if entry.second == second => {
                entry.amount = entry.amount.saturating_add(amount);
            }
            _ => {
                let entry = Entry {
                    second,
                    amount,
                    other_before,
                };
                self.entries.insert(after.map_or(0, |i| i + 1), entry);
            }
        }
        self.held = self.held.saturating_add(amount);
        let cap = self.limit.cap();
        while self.held > cap {
            let Some(oldest) = self.entries.front_mut() else {
                break;
            };
            let drop = oldest.amount.min(self.held - cap);
            oldest.amount -= drop;
            self.held -= drop;
            if oldest.amount == 0 {
                self.entries.pop_front();
            }
        }
    }
}

/// One key's windows (in the order of its limits) and running totals.
#[derive(Debug, Serialize, Deserialize)]
struct KeyState {
    windows: Vec<Window>,
    /// The newest second counted: the key's clock.
    last_seen: i64,
    sent: Sent,
    /// `sent` when the second of `last_seen` began.
    sent_before_last_second: Sent,
}

impl KeyState {
    fn new(limits: &[Limit], at: i64) -> Self {
        KeyState {
            windows: limits.iter().copied().map(Window::new).collect(),
            last_seen: at,
            sent: Sent::default(),
            sent_before_last_second: Sent::default(),
        }
    }

    /// Takes `limits`, keeping the counts of the windows (length and
    /// metric) it still has — a count is what was sent, whatever the
    /// maximum — and a crossing under way only if the limit is the same.
    fn reconcile(&mut self, limits: &[Limit]) {
        let mut old = std::mem::take(&mut self.windows);
        self.windows = limits
            .iter()
            .map(|&limit| {
                let same = |w: &Window| {
                    w.limit.window_secs == limit.window_secs && w.limit.counts == limit.counts
                };
                match old.iter().position(same) {
                    Some(i) => {
                        let mut window = old.swap_remove(i);
                        window.over &= window.limit == limit;
                        window.limit = limit;
                        window
                    }
                    None => Window::new(limit),
                }
            })
            .collect();
    }

    fn longest_window(&self) -> u64 {
        self.windows
            .iter()
            .map(|w| w.limit.window_secs)
            .max()
            .unwrap_or(0)
    }
}

/// One key's windows now, for "top senders" listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The key, lower-cased: an account, or for `policy`'s relayed mail a
    /// sender or client IP.
    pub key: String,
    /// Each limit with what its window holds.
    pub windows: Vec<(Limit, u64)>,
}

/// The sending limits of every key and their counts. Pure: no I/O, no
/// clock; every call takes its time in seconds. Serialized, it is the
/// counts only: [`Limiter::set_rules`] (or [`Limiter::restore`]) gives a
/// deserialized one its rules back.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Limiter {
    #[serde(skip)]
    rules: LimitRules,
    keys: TrackedMap<Box<str>, KeyState>,
}

impl Limiter {
    /// The tracked collections, for saving and loading rows.
    pub fn rows(&mut self) -> RowsOf<'_> {
        vec![("limit_keys", &mut self.keys as &mut dyn Rows)]
    }

    /// A limiter applying `rules`, with no counts yet.
    pub fn new(rules: LimitRules) -> Self {
        Limiter {
            rules,
            keys: TrackedMap::default(),
        }
    }

    /// The rules it applies, for whoever changes them from what it had
    /// (the detector switching its tally on) or needs its longest window.
    pub fn rules(&self) -> &LimitRules {
        &self.rules
    }

    /// Takes new rules, keeping what each key's remaining windows hold.
    pub fn set_rules(&mut self, rules: LimitRules) {
        self.rules = rules;
        let Limiter { rules, keys } = self;
        keys.retain(|key, state| match rules.limits_of(key) {
            Some(limits) if !limits.is_empty() => {
                state.reconcile(limits);
                true
            }
            _ => false,
        });
    }

    /// Takes back the counts of a saved limiter (deserialized, so without
    /// rules) under this one's rules.
    pub fn restore(&mut self, saved: Limiter) {
        for (key, state) in saved.keys.into_map() {
            self.keys.insert(key, state);
        }
        self.set_rules(self.rules.clone());
    }

    /// The limits of `key`: `None` when it is allow-listed.
    pub fn limits_of(&self, key: &str) -> Option<&[Limit]> {
        if self.rules.same_for_every_key() {
            return self.rules.limits_of("");
        }
        self.rules.limits_of(&normalize(key))
    }

    /// Whether `messages` more messages to `recipients` more recipients
    /// would stay within every limit of `key` at `now`, without counting
    /// them. Mutable only to forget expired seconds.
    pub fn check(&mut self, key: &str, now: i64, messages: u64, recipients: u64) -> Verdict {
        let key = normalize(key);
        let Some(limits) = self.rules.limits_of(&key) else {
            return Verdict::Allowed;
        };
        match self.keys.get_mut_unchanged(key.as_ref()) {
            Some(state) => {
                let now = now.max(state.last_seen);
                let held = state.windows.iter_mut().map(|window| {
                    window.expire(now);
                    window.held
                });
                judge(limits, held, messages, recipients)
            }
            None => judge(limits, std::iter::repeat(0), messages, recipients),
        }
    }

    /// Counts what `key` sent at `at` (a log's own time): in every window
    /// of its limits that, ending at the key's newest second, still holds
    /// `at` — a late line counts in its place, an older one only in the
    /// longer windows.
    pub fn record(&mut self, key: &str, at: i64, messages: u64, recipients: u64) {
        self.record_with(key, at, messages, recipients, |_| {});
    }

    /// Counts what `key` sent now, by a wall clock: if the clock stepped
    /// back, at the newest second seen, so the amount leaves the window
    /// late, never early.
    pub fn record_now(&mut self, key: &str, now: i64, messages: u64, recipients: u64) {
        let latest = self.keys.get(normalize(key).as_ref()).map(|s| s.last_seen);
        self.record(key, now.max(latest.unwrap_or(now)), messages, recipients);
    }

    /// [`Limiter::record`], then tells `level` where each limit of the key
    /// stands, in configured order.
    pub fn record_with(
        &mut self,
        key: &str,
        at: i64,
        messages: u64,
        recipients: u64,
        mut level: impl FnMut(Level),
    ) {
        let key = normalize(key);
        let Some(limits) = self.rules.limits_of(&key) else {
            return;
        };
        if limits.is_empty() || (messages == 0 && recipients == 0) {
            return;
        }
        let state = match self.keys.get_mut(key.as_ref()) {
            Some(state) => state,
            None => self
                .keys
                .entry(key.into_owned().into_boxed_str())
                .or_insert_with(|| KeyState::new(limits, at)),
        };
        if at > state.last_seen {
            state.last_seen = at;
            state.sent_before_last_second = state.sent;
        }
        let before = state.sent_before_last_second;
        state.sent.add(messages, recipients);
        let (now, sent) = (state.last_seen, state.sent);
        for window in &mut state.windows {
            let limit = window.limit;
            window.expire(now);
            if window.held < limit.max {
                window.over = false;
            }
            let amount = limit.amount(messages, recipients);
            let counts = amount > 0 && within(now, at, limit.window_secs);
            if counts {
                window.add(at, amount, before.of(limit.counts.other()));
            }
            let standing = match (window.over, counts && window.held > limit.max) {
                (true, _) => Standing::Over,
                (false, true) => {
                    window.over = true;
                    Standing::Crossed
                }
                (false, false) => Standing::Under,
            };
            let oldest = window.entries.front();
            let other = limit.counts.other();
            let other_since = oldest.map_or(0, |e| sent.of(other).wrapping_sub(e.other_before));
            let (messages, recipients) = match limit.counts {
                Counting::Messages => (window.held, other_since),
                Counting::Recipients => (other_since, window.held),
            };
            level(Level {
                limit,
                standing,
                count: window.held,
                since: oldest.map(|e| e.second),
                sent: Sent {
                    messages,
                    recipients,
                },
            });
        }
    }

    /// Raises `key`'s windows to at least `totals` (one per limit, in
    /// configured order), adding the difference at `now`: a server sharing
    /// counts through Redis learns the others' share, so that if Redis goes
    /// away its own counts are not short of what the cluster sent. Added at
    /// `now` rather than at their real seconds, the learnt amounts leave the
    /// window late, never early: the local answer errs towards the limit.
    pub fn catch_up(&mut self, key: &str, now: i64, totals: &[u64]) {
        let key = normalize(key);
        let Some(limits) = self.rules.limits_of(&key) else {
            return;
        };
        if limits.is_empty() || totals.iter().all(|&total| total == 0) {
            return;
        }
        let state = self
            .keys
            .entry(key.into_owned().into_boxed_str())
            .or_insert_with(|| KeyState::new(limits, now));
        state.last_seen = state.last_seen.max(now);
        let now = state.last_seen;
        let before = state.sent_before_last_second;
        for (window, &total) in state.windows.iter_mut().zip(totals) {
            window.expire(now);
            if total > window.held {
                let other = before.of(window.limit.counts.other());
                window.add(now, total - window.held, other);
            }
        }
    }

    /// Drops the keys idle for at least their longest window: all their
    /// seconds have left, so forgetting them changes no verdict.
    pub fn prune(&mut self, now: i64) {
        self.keys
            .retain_unchanged(|_, state| within(now, state.last_seen, state.longest_window()));
    }

    /// What each limit of `key` holds at `now`, in configured order.
    pub fn usage(&mut self, key: &str, now: i64) -> Vec<(Limit, u64)> {
        let Some(state) = self.keys.get_mut_unchanged(normalize(key).as_ref()) else {
            return Vec::new();
        };
        let now = now.max(state.last_seen);
        state
            .windows
            .iter_mut()
            .map(|window| {
                window.expire(now);
                (window.limit, window.held)
            })
            .collect()
    }

    /// The `n` keys closest to (or furthest past) one of their limits at
    /// `now`, fullest first: the dashboard's "top senders".
    pub fn top(&mut self, now: i64, n: usize) -> Vec<Usage> {
        let keys: Vec<Box<str>> = self.keys.keys().cloned().collect();
        let mut usage: Vec<Usage> = keys
            .into_iter()
            .map(|key| {
                let windows = self.usage(&key, now);
                Usage {
                    key: key.into_string(),
                    windows,
                }
            })
            .filter(|usage| usage.windows.iter().any(|&(_, held)| held > 0))
            .collect();
        let fill = |usage: &Usage| {
            usage
                .windows
                .iter()
                .map(|(limit, held)| *held as f64 / limit.max.max(1) as f64)
                .fold(0.0, f64::max)
        };
        usage.sort_by(|a, b| fill(b).total_cmp(&fill(a)).then_with(|| a.key.cmp(&b.key)));
        usage.truncate(n);
        usage
    }

    /// The newest second any key counted: "now" for a log read behind the
    /// wall clock.
    pub fn newest(&self) -> Option<i64> {
        self.keys.values().map(|state| state.last_seen).max()
    }

    /// Each key's windows as they stand at `now`, in its limits' order:
    /// the seconds still inside and their amounts, oldest first. What a
    /// shared store that lost its data is seeded from.
    pub fn seconds(&self, now: i64) -> Vec<KeySeconds> {
        self.keys
            .iter()
            .map(|(key, state)| KeySeconds {
                key: key.to_string(),
                windows: state
                    .windows
                    .iter()
                    .map(|window| {
                        let seconds = window
                            .entries
                            .iter()
                            .filter(|e| within(now, e.second, window.limit.window_secs))
                            .map(|e| (e.second, e.amount))
                            .collect();
                        (window.limit, seconds)
                    })
                    .collect(),
            })
            .collect()
    }

    /// How many keys hold counts.
    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }

    /// How many entries `key` holds over all its windows.
    #[cfg(test)]
    fn entries_of(&self, key: &str) -> usize {
        self.keys.get(normalize(key).as_ref()).map_or(0, |state| {
            state.windows.iter().map(|w| w.entries.len()).sum()
        })
    }
}

#[cfg(test)]
mod tests;
