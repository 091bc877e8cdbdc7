//! Login attempt limiting: a token bucket per client address and one for
//! all clients together. An attempt takes a token from both before the
//! token it carries is compared, so a throttled attempt is refused (429)
//! whether its token is right or wrong: answering right tokens anyway would
//! let a throttled guesser go on learning which guesses are wrong. A
//! successful login gives its tokens back, so only failures use the budget.
//!
//! The trade-off: while guessers from many addresses empty the global
//! bucket, the admin's own login is refused too, for the second or so
//! until the next token (Retry-After says when). A guesser from one
//! address empties only its own bucket and never delays anyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Client addresses remembered at most; beyond, the fullest buckets (the
/// quietest clients) are forgotten first, which only forgives them.
const MAX_CLIENTS: usize = 4096;

/// Which limit refused an attempt (the metric's `scope` label).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabel {
    pub scope: &'static str,
}

/// A bucket of `per_minute` tokens, refilled continuously.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(per_minute: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(per_minute),
            at: now,
        }
    }

    fn refill(&mut self, per_minute: u32, now: Instant) {
        let rate = f64::from(per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(per_minute));
        self.at = now;
    }

    /// How long until a token is there again (at least a second).
    fn wait(&self, per_minute: u32) -> Duration {
        let rate = f64::from(per_minute.max(1)) / 60.0;
        Duration::from_secs_f64(((1.0 - self.tokens) / rate).ceil().max(1.0))
    }
}

struct Buckets {
    global: Bucket,
    clients: HashMap<IpAddr, Bucket>,
}

/// The login limits and what they refused.
pub struct Throttle {
    per_client: u32,
    global: u32,
    buckets: Mutex<Buckets>,
    /// `login_throttled_total{scope="client"|"global"}`.
    pub throttled: Family<ScopeLabel, Counter>,
}

/// An attempt let through: give it back with [`Throttle::succeeded`] if its
/// token was right.
#[derive(Debug)]
pub struct Permit(IpAddr);

impl Throttle {
    /// Limits of `per_client` attempts a minute from one address and
    /// `global` from all together (each also the burst allowed).
    pub fn new(per_client: u32, global: u32) -> Throttle {
        let now = Instant::now();
        Throttle {
            per_client,
            global,
            buckets: Mutex::new(Buckets {
                global: Bucket::full(global, now),
                clients: HashMap::new(),
            }),
            throttled: Family::default(),
        }
    }

    /// Takes a token for an attempt from `client`, or says how long to wait
    /// (the client's limit is asked first, so a throttled client does not
    /// use the global budget).
    pub fn attempt(&self, client: IpAddr) -> Result<Permit, Duration> {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Buckets { global, clients } = &mut *buckets;
        if !clients.contains_key(&client) && clients.len() >= MAX_CLIENTS {
            forget_quietest(clients, self.per_client, now);
        }
        let mine = clients
            .entry(client)
            .or_insert_with(|| Bucket::full(self.per_client, now));
        mine.refill(self.per_client, now);
        global.refill(self.global, now);
        let refused = if mine.tokens < 1.0 {
            Some(("client", mine.wait(self.per_client)))
        } else if global.tokens < 1.0 {
            Some(("global", global.wait(self.global)))
        } else {
            None
        };
        if let Some((scope, wait)) = refused {
            self.throttled.get_or_create(&ScopeLabel { scope }).inc();
            return Err(wait);
        }
        mine.tokens -= 1.0;
        global.tokens -= 1.0;
        Ok(Permit(client))
    }

    /// The attempt's token was right: its tokens go back.
    pub fn succeeded(&self, permit: Permit) {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (per_client, global) = (self.per_client, self.global);
        if let Some(mine) = buckets.clients.get_mut(&permit.0) {
            mine.tokens = (mine.tokens + 1.0).min(f64::from(per_client));
        }
        buckets.global.tokens = (buckets.global.tokens + 1.0).min(f64::from(global));
    }
}

/// Drops the clients whose buckets are full again (nothing to remember),
/// or, if none is, the fullest one.
fn forget_quietest(clients: &mut HashMap<IpAddr, Bucket>, per_minute: u32, now: Instant) {
    clients.retain(|_, bucket| {
        bucket.refill(per_minute, now);
        bucket.tokens < f64::from(per_minute)
    });
    if clients.len() >= MAX_CLIENTS {
        let fullest = clients
            .iter()
            .max_by(|a, b| a.1.tokens.total_cmp(&b.1.tokens))
            .map(|(ip, _)| *ip);
        if let Some(ip) = fullest {
            clients.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const TWO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_client_is_refused_after_its_budget_and_others_are_not() {
        let throttle = Throttle::new(3, 100);
        for _ in 0..3 {
            throttle.attempt(ONE).unwrap();
        }
        let wait = throttle.attempt(ONE).unwrap_err();
        assert!(wait >= Duration::from_secs(1), "{wait:?}");
        throttle.attempt(TWO).unwrap();
    }

    #[test]
    fn the_global_budget_refuses_every_client_and_successes_give_back() {
        let throttle = Throttle::new(100, 2);
        let right = throttle.attempt(ONE).unwrap();
        throttle.succeeded(right);
        throttle.attempt(ONE).unwrap();
        throttle.attempt(TWO).unwrap();
        assert!(throttle.attempt(TWO).is_err());
        assert!(throttle.attempt(ONE).is_err());
    }

    #[test]
    fn remembered_clients_stay_bounded() {
        let throttle = Throttle::new(1, u32::MAX);
        for n in 0..(MAX_CLIENTS as u32 + 10) {
            let _ = throttle.attempt(IpAddr::V4(n.into()));
        }
        let buckets = throttle.buckets.lock().unwrap();
        assert!(buckets.clients.len() <= MAX_CLIENTS);
    }
}
