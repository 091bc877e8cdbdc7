//! Where the policy server keeps what it counts: sent amounts per key, the
//! IPs each account sent from, and locked accounts.
//!
//! Two stores answer the same questions: [`Memory`] (one server; counts
//! saved to the state database now and then, locks there at once) and
//! `Redis` (several servers sharing one Redis or a Redis Cluster; one
//! atomic script per decision, falling back to its own [`Memory`] while
//! Redis is unreachable). [`Counters`] picks.

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
    /// The login, when there is one: locks and trips apply to it. Then it
    /// is also `key`: the shared store keeps an account's lock and IPs
    /// beside its counts, in one Redis Cluster slot, and one script reads
    /// them all.
    pub account: Option<&'a str>,
    /// The client, noted for the many-IPs trip (logins only).
    pub client: Option<IpAddr>,
    /// The policy clock's Unix seconds: where every window checked ends,
    /// and when `client` was seen.
    pub now: u64,
    /// Messages the request would add: 1, the message being sent (it is
    /// counted only once it is in).
    pub messages: u64,
    /// Recipients it would add: this one plus those already accepted for
    /// the same message, so under a limit of 30 the 31st recipient of one
    /// message is refused, not the next message.
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
    Over {
        /// The first limit, in configured order, this request would pass:
        /// the reply names it (`30 recipients per 1m`).
        limit: Limit,
        /// What its window would hold with this request (more than `max`).
        count: u64,
    },
}

/// Why an account was locked at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trip {
    /// Sent from `count` distinct IPs within `window`.
    ManyIps {
        /// Distinct client IPs the account sent from within `window`, this
        /// request's included: more than `trips.max_ips`.
        count: usize,
        /// `trips.window`.
        window: Duration,
    },
    /// Sent from `count` distinct networks (/24, /64) within `window`.
    ManyNetworks {
        /// Distinct /24 (IPv4) or /64 (IPv6) networks within `window`, this
        /// request's included: more than `trips.max_networks`.
        count: usize,
        /// `trips.window`.
        window: Duration,
    },
    /// A recipient that is a canary (`[canary] recipients`): an address
    /// planted for harvesters, which no one writes to.
    Canary {
        /// The canary, as configured (lower-cased).
        recipient: String,
    },
    /// The first submission of an account `mailfuse audit --save` found
    /// nobody logs into (the `sales` case).
    NeverLogsIn,
    /// An envelope sender in a domain the login has nothing to do with.
    ForgedSender {
        /// The sender's domain, lower-cased: neither the login's domain nor
        /// one of `local_domains`.
        domain: String,
    },
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
            Trip::Canary { recipient } => write!(f, "sent to canary address {recipient}"),
            Trip::ForgedSender { domain } => {
                write!(f, "sent as a sender at {domain}, not a domain of its own")
            }
            Trip::NeverLogsIn => write!(
                f,
                "first SMTP login of an account that never logs in (audit): `mailfuse audit \
                 --save` found nobody logs into it"
            ),
        }
    }
}

/// The thresholds of the many-IPs and many-networks trips (0: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diversity {
    /// More distinct client IPs than this within `window_secs` locks the
    /// account (`trips.max_ips`; 0: off).
    pub max_ips: usize,
    /// More distinct /24 or /64 networks than this within `window_secs`
    /// locks the account (`trips.max_networks`; 0: off).
    pub max_networks: usize,
    /// `trips.window` in seconds: how long an IP counts after the account
    /// last sent from it.
    pub window_secs: u64,
    /// A dry run (`[watch] dry_run`): a trip is answered, but locks nothing
    /// here or in Redis.
    pub dry_run: bool,
}

/// A counters store failed: the server answers its `on_error` action.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis refused, failed or did not answer within `[policy.redis]
    /// timeout`, or its URL is bad; the reason in words. The shared
    /// store's decisions never return it (they fall back to the local
    /// counts): [`Redis::connect`] and [`unlock`] do.
    #[error("redis: {0}")]
    Redis(String),
}

pub use mailfuse_limits::Usage;

/// The store in use.
// One per server, never moved around: the size gap does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Counters {
    /// One mail server: counts, seen IPs and locks in this process, saved
    /// to the state database by the binary's keeper thread.
    Memory(Memory),
    /// Several mail servers sharing counts and locks through Redis
    /// (`[policy.redis]`), with a local [`Memory`] for outages.
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
