//! Where the policy server keeps what it counts: sent amounts per key, the
//! IPs each account sent from, and locked accounts.
//!
//! Two stores answer the same questions: [`Memory`] (one server; counts
//! saved to the state database now and then, locks there at once) and
//! `Redis` (several servers; one atomic script per decision, falling back
//! to its own [`Memory`] while Redis is unreachable). [`Counters`] picks.

pub mod memory;
pub mod redis;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use mailfuse_core::time::describe_duration;

use crate::config::RedisConfig;
use crate::metrics::PolicyMetrics;
use mailfuse_limits::{Limit, LimitRules, Verdict};

pub use memory::Memory;
pub use redis::{unlock, Redis, RedisStatus};

/// One question at RCPT: may `key` send `messages` more messages carrying
/// `recipients` more recipients?
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// What the limits count against (the login, a sender, a client IP).
    pub key: &'a str,
    /// The login, when there is one: locks and trips apply to it.
    pub account: Option<&'a str>,
    /// The client, noted for the many-IPs trip (logins only).
    pub client: Option<IpAddr>,
    pub now: u64,
    pub messages: u64,
    pub recipients: u64,
}

/// The answer to an [`Ask`], in order of precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The account is locked (by `policy` or `watch`).
    Locked,
    /// This request tripped a lock: the account is locked from now on.
    Tripped(Trip),
    /// Within every limit.
    Allowed,
    /// Over `limit`: its window would hold `count`.
    Over { limit: Limit, count: u64 },
}

/// Why an account was locked at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trip {
    /// Sent from `count` distinct IPs within `window`.
    ManyIps { count: usize, window: Duration },
    /// Sent from `count` distinct networks (/24, /64) within `window`.
    ManyNetworks { count: usize, window: Duration },
    /// An envelope sender in a domain the login has nothing to do with.
    ForgedSender { domain: String },
}

impl std::fmt::Display for Trip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trip::ManyIps { count, window } => write!(
                f,
                "sent from {count} different IPs within {}",
                describe_duration(window.as_secs())
            ),
            Trip::ManyNetworks { count, window } => write!(
                f,
                "sent from {count} different networks within {}",
                describe_duration(window.as_secs())
            ),
            Trip::ForgedSender { domain } => {
                write!(f, "sent as a sender at {domain}, not a domain of its own")
            }
        }
    }
}

/// The thresholds of the many-IPs and many-networks trips (0: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diversity {
    pub max_ips: usize,
    pub max_networks: usize,
    pub window_secs: u64,
}

/// A counters store failed: the server answers its `on_error` action.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(String),
}

pub use mailfuse_limits::Usage;

/// The store in use.
// One per server, never moved around: the size gap does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Counters {
    Memory(Memory),
    Redis(Redis),
}

impl Counters {
    /// An embedded store.
    pub fn memory(limits: LimitRules, diversity: Diversity) -> Self {
        Counters::Memory(Memory::new(limits, diversity))
    }

    /// A store shared through Redis; starts on local counts when Redis is
    /// down (see [`Redis::connect`]).
    pub async fn redis(
        config: &RedisConfig,
        limits: LimitRules,
        diversity: Diversity,
        metrics: Arc<PolicyMetrics>,
    ) -> Result<Self, StoreError> {
        Ok(Counters::Redis(
            Redis::connect(config, limits, diversity, metrics).await?,
        ))
    }

    /// Locked? Tripped? Within the limits? Notes the client's IP for the
    /// trips, counts nothing.
    pub async fn check(&self, ask: &Ask<'_>) -> Result<Answer, StoreError> {
        match self {
            Counters::Memory(memory) => Ok(memory.check(ask)),
            Counters::Redis(redis) => redis.check(ask).await,
        }
    }

    /// Counts an accepted message against every limit of `key`.
    pub async fn record(
        &self,
        key: &str,
        now: u64,
        messages: u64,
        recipients: u64,
    ) -> Result<(), StoreError> {
        match self {
            Counters::Memory(memory) => {
                memory.record(key, now, messages, recipients);
                Ok(())
            }
            Counters::Redis(redis) => redis.record(key, now, messages, recipients).await,
        }
    }

    /// Locks `account` at once (the state database follows).
    pub async fn lock(&self, account: &str, now: u64) -> Result<(), StoreError> {
        match self {
            Counters::Memory(memory) => {
                memory.lock(account, now);
                Ok(())
            }
            Counters::Redis(redis) => redis.lock(account, now).await,
        }
    }

    /// The store kept on this server: the whole store, or Redis's fallback.
    pub fn local(&self) -> &Memory {
        match self {
            Counters::Memory(memory) => memory,
            Counters::Redis(redis) => redis.local(),
        }
    }
}

/// The verdict of the limits as an [`Answer`].
impl From<Verdict> for Answer {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Allowed => Answer::Allowed,
            Verdict::Over { limit, count } => Answer::Over { limit, count },
        }
    }
}
