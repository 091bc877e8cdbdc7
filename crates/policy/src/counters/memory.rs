//! The embedded store: everything in memory behind one mutex (a decision
//! holds it for microseconds), saved by the caller now and then
//! ([`Memory::save`], read back by [`Memory::load`]) so a restart keeps
//! the windows.
//!
//! Locks come from two places: the state database (`watch`'s locks and ours,
//! refreshed by [`Memory::set_locks`]) and locks tripped here that the
//! database has not shown yet, kept a minute so a refresh racing the write
//! cannot lift them.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use mailfuse_core::net::Network;
use serde::{Deserialize, Serialize};

use super::{Answer, Ask, Diversity, Trip, Usage};
use mailfuse_limits::{normalize, KeySeconds, LimitRules, Limiter};

/// How long a lock tripped here stands without the database showing it.
const PENDING_LOCK_SECS: u64 = 60;

/// IPs remembered per account at most: a bound for hostile traffic that
/// the thresholds (when off) would not give.
const MAX_IPS_PER_ACCOUNT: usize = 1_024;

/// The counts, the IPs seen and the locks of one server.
pub struct Memory {
    state: Mutex<State>,
    diversity: Diversity,
}

struct State {
    limiter: Limiter,
    /// Lower-cased account → the IPs it sent from, with when last.
    seen: HashMap<String, Vec<(IpAddr, u64)>>,
    /// Lower-cased accounts locked in the state database.
    confirmed: HashSet<String>,
    /// Lower-cased accounts tripped here → when.
    pending: HashMap<String, u64>,
    /// Lower-cased accounts `mailfuse audit --save` found nobody logs
    /// into, from the state database; one is taken at its first message.
    never_logs_in: HashSet<String>,
}

/// The counts and locks of a [`Memory`], from [`Memory::snapshot`].
pub struct Snapshot {
    /// The newest second counted: where the windows end.
    pub now: u64,
    /// Every key's windows, second by second.
    pub keys: Vec<KeySeconds>,
    /// The accounts locked here, normalised.
    pub locked: Vec<String>,
}

/// What a restart keeps, as saved...
#[derive(Serialize)]
struct Saving<'a> {
    limiter: &'a Limiter,
    seen: &'a HashMap<String, Vec<(IpAddr, u64)>>,
}

/// ...and as read back.
#[derive(Deserialize)]
struct Saved {
    limiter: Limiter,
    seen: HashMap<String, Vec<(IpAddr, u64)>>,
}

/// The limiter's seconds: the clock's, which no real clock takes past
/// `i64::MAX`.
fn secs(now: u64) -> i64 {
    i64::try_from(now).unwrap_or(i64::MAX)
}

impl Memory {
    /// An empty store applying `limits` and the trips' thresholds: no
    /// counts, IPs or locks until [`Memory::load`] and
    /// [`Memory::set_locks`] bring back the saved ones.
    pub fn new(limits: LimitRules, diversity: Diversity) -> Self {
        let state = State {
            limiter: Limiter::new(limits),
            seen: HashMap::new(),
            confirmed: HashSet::new(),
            pending: HashMap::new(),
            never_logs_in: HashSet::new(),
        };
        Memory {
            state: Mutex::new(state),
            diversity,
        }
    }

    /// A poisoned lock only means a panic elsewhere; the data is still sound.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// See [`super::Counters::check`].
    pub fn check(&self, ask: &Ask<'_>) -> Answer {
        let mut state = self.state();
        if let Some(account) = ask.account {
            let account = normalize(account);
            if state.is_locked(&account) {
                return Answer::Locked;
            }
            let allowed = state.limiter.limits_of(&account).is_none();
            if let (false, Some(ip)) = (allowed, ask.client) {
                if let Some(trip) = state.note_ip(&account, ip, ask.now, &self.diversity) {
                    if !self.diversity.dry_run {
                        state.pending.insert(account.into_owned(), ask.now);
                    }
                    return Answer::Tripped(trip);
                }
            }
        }
        state
            .limiter
            .check(ask.key, secs(ask.now), ask.messages, ask.recipients)
            .into()
    }

    /// See [`super::Counters::record`].
    pub fn record(&self, key: &str, now: u64, messages: u64, recipients: u64) {
        self.state()
            .limiter
            .record_now(key, secs(now), messages, recipients);
    }

    /// See [`Limiter::catch_up`].
    pub fn catch_up(&self, key: &str, now: u64, totals: &[u64]) {
        self.state().limiter.catch_up(key, secs(now), totals);
    }

    /// Locks `account` here until the database shows it (or a minute).
    pub fn lock(&self, account: &str, now: u64) {
        self.state()
            .pending
            .insert(normalize(account).into_owned(), now);
    }

    /// Whether `key` is allow-listed: never limited, never tripped.
    pub fn is_allowed(&self, key: &str) -> bool {
        self.state().limiter.limits_of(key).is_none()
    }

    /// Whether `account` (in any case) is locked: in the state database
    /// (by `watch`, or a trip here already written), or tripped here in
    /// the last minute. Asked at every stage, not only RCPT.
    pub fn is_locked(&self, account: &str) -> bool {
        self.state().is_locked(&normalize(account))
    }

    /// Replaces the locks read from the state database (an unlock there
    /// lifts the lock here and forgets the account's IPs); locks tripped
    /// here in the last minute stay.
    pub fn set_locks<I: IntoIterator<Item = String>>(&self, locked: I, now: u64) {
        let confirmed: HashSet<String> = locked
            .into_iter()
            .map(|account| normalize(&account).into_owned())
            .collect();
        let mut state = self.state();
        state.pending.retain(|account, since| {
            !confirmed.contains(account) && now.saturating_sub(*since) < PENDING_LOCK_SECS
        });
        // An unlocked account starts afresh: the IPs that tripped it would
        // trip it again at its next message.
        let unlocked: Vec<String> = state.confirmed.difference(&confirmed).cloned().collect();
        for account in unlocked {
            state.seen.remove(&account);
        }
        state.confirmed = confirmed;
    }

    /// Replaces the accounts the audit found nobody logs into (read from
    /// the state database with the locks).
    pub fn set_never_logs_in<I: IntoIterator<Item = String>>(&self, accounts: I) {
        self.state().never_logs_in = accounts
            .into_iter()
            .map(|account| normalize(&account).into_owned())
            .collect();
    }

    /// Whether `account` was marked by the audit, forgetting the mark: its
    /// first message is the evidence, once (the caller removes it from the
    /// database too).
    pub fn take_never_logs_in(&self, account: &str) -> bool {
        let mut state = self.state();
        !state.never_logs_in.is_empty() && state.never_logs_in.remove(normalize(account).as_ref())
    }

    /// Forgets what no window or trip can still use.
    pub fn prune(&self, now: u64) {
        let window = self.diversity.window_secs;
        let mut state = self.state();
        state.limiter.prune(secs(now));
        state.seen.retain(|_, ips| {
            ips.retain(|&(_, at)| now.saturating_sub(at) < window);
            !ips.is_empty()
        });
    }

    /// The `n` keys closest to (or furthest past) one of their limits.
    pub fn top(&self, now: u64, n: usize) -> Vec<Usage> {
        self.state().limiter.top(secs(now), n)
    }

    /// The counts and IPs seen, as bytes to save (MessagePack).
    pub fn save(&self) -> Vec<u8> {
        let state = self.state();
        let saving = Saving {
            limiter: &state.limiter,
            seen: &state.seen,
        };
        rmp_serde::to_vec(&saving).unwrap_or_default()
    }

    /// Takes back what [`Memory::save`] wrote, under today's limits.
    pub fn load(&self, bytes: &[u8]) -> Result<(), rmp_serde::decode::Error> {
        let saved: Saved = rmp_serde::from_slice(bytes)?;
        let mut state = self.state();
        state.limiter.restore(saved.limiter);
        state.seen.extend(saved.seen);
        Ok(())
    }

    /// What this store holds, to seed a shared store that lost its data.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.state();
        let now = state.limiter.newest().unwrap_or(0);
        Snapshot {
            now: u64::try_from(now).unwrap_or(0),
            keys: state.limiter.seconds(now),
            locked: state
                .confirmed
                .iter()
                .chain(state.pending.keys())
                .cloned()
                .collect(),
        }
    }

    /// How many keys hold counts.
    pub fn tracked_keys(&self) -> usize {
        self.state().limiter.tracked_keys()
    }
}

impl State {
    fn is_locked(&self, account: &str) -> bool {
        self.confirmed.contains(account) || self.pending.contains_key(account)
    }

    /// Notes that `account` sent from `ip` at `now`; the trip when that
    /// makes too many IPs or networks within the window.
    fn note_ip(
        &mut self,
        account: &str,
        ip: IpAddr,
        now: u64,
        diversity: &Diversity,
    ) -> Option<Trip> {
        if diversity.max_ips == 0 && diversity.max_networks == 0 {
            return None;
        }
        let window_secs = diversity.window_secs;
        let fresh = |at: &u64| now.saturating_sub(*at) < window_secs;
        // The usual request comes from an IP already seen: refresh it, no
        // allocation, and no trip (only a new IP can make too many).
        if let Some(ips) = self.seen.get_mut(account) {
            if let Some((_, at)) = ips.iter_mut().find(|(seen, at)| *seen == ip && fresh(at)) {
                *at = now.max(*at);
                return None;
            }
        }
        let ips = self.seen.entry(account.to_owned()).or_default();
        ips.retain(|(_, at)| fresh(at));
        if ips.len() >= MAX_IPS_PER_ACCOUNT {
            ips.remove(0);
        }
        ips.push((ip, now));
        let window = std::time::Duration::from_secs(window_secs);
        if diversity.max_ips > 0 && ips.len() > diversity.max_ips {
            return Some(Trip::ManyIps {
                count: ips.len(),
                window,
            });
        }
        if diversity.max_networks > 0 {
            let networks: HashSet<Network> = ips.iter().map(|&(ip, _)| Network::of(ip)).collect();
            if networks.len() > diversity.max_networks {
                return Some(Trip::ManyNetworks {
                    count: networks.len(),
                    window,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailfuse_limits::{Counting, Limit, LimitsConfig, WindowLimit};

    fn memory(limits: Vec<Limit>) -> Memory {
        let diversity = Diversity {
            max_ips: 3,
            max_networks: 0,
            window_secs: 3_600,
            dry_run: false,
        };
        let defaults = limits
            .iter()
            .map(|l| WindowLimit {
                window_secs: l.window_secs,
                messages: Some(l.max).filter(|_| l.counts == Counting::Messages),
                recipients: Some(l.max).filter(|_| l.counts == Counting::Recipients),
            })
            .collect();
        let config = LimitsConfig {
            defaults,
            ..LimitsConfig::default()
        };
        Memory::new(LimitRules::new(&config).unwrap(), diversity)
    }

    fn ask(key: &str, now: u64) -> Ask<'_> {
        Ask {
            key,
            account: Some(key),
            client: Some("192.0.2.1".parse().unwrap()),
            now,
            messages: 1,
            recipients: 1,
        }
    }

    const MINUTE: Limit = Limit {
        window_secs: 60,
        max: 2,
        counts: Counting::Messages,
    };
    const HOUR: Limit = Limit {
        window_secs: 3_600,
        max: 3,
        counts: Counting::Recipients,
    };

    #[test]
    fn saved_counts_and_ips_come_back_and_changed_windows_start_afresh() {
        let before = memory(vec![MINUTE, HOUR]);
        before.record("alice", 100, 1, 2);
        before.record("alice", 130, 1, 1);
        assert!(matches!(
            before.check(&ask("alice", 131)),
            Answer::Over { .. }
        ));
        let bytes = before.save();

        let after = memory(vec![MINUTE, HOUR]);
        after.load(&bytes).unwrap();
        assert_eq!(
            after.check(&ask("alice", 131)),
            before.check(&ask("alice", 131))
        );
        assert_eq!(
            after.check(&ask("alice", 160)),
            Answer::Over {
                limit: HOUR,
                count: 4
            }
        );
        assert_eq!(after.top(160, 5), before.top(160, 5));

        // Only the hour's window stayed: its count is kept, the new one is
        // empty; a new maximum over the same window keeps what was sent.
        let changed = memory(vec![
            Limit {
                window_secs: 120,
                ..MINUTE
            },
            HOUR,
        ]);
        changed.load(&bytes).unwrap();
        let usage = changed.top(131, 1);
        assert_eq!(usage[0].windows[0].1, 0);
        assert_eq!(usage[0].windows[1].1, 3);
        let raised = memory(vec![Limit { max: 10, ..MINUTE }, HOUR]);
        raised.load(&bytes).unwrap();
        assert_eq!(raised.top(131, 1)[0].windows[0].1, 2);

        assert!(after.load(b"not messagepack").is_err());
    }

    #[test]
    fn top_lists_the_fullest_keys_first() {
        let memory = memory(vec![HOUR]);
        memory.record("quiet", 10, 1, 1);
        memory.record("busy", 10, 1, 3);
        memory.record("medium", 10, 1, 2);
        let keys: Vec<String> = memory.top(20, 2).into_iter().map(|u| u.key).collect();
        assert_eq!(keys, ["busy", "medium"]);
        assert!(memory.top(10 + 3_600, 5).is_empty(), "all expired");
    }
}
