//! The time the policy server decides at, injected so tests can stand on a
//! window's edge to the second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Now, in UTC seconds since the Unix epoch: the second every sliding
    /// window counts up to and every lock and trip is dated at.
    fn now(&self) -> u64;
}

/// The system's wall clock (shared with other mail servers through NTP,
/// which Redis-shared windows rely on).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at `now` (UTC seconds). Clones share one time: a
    /// test hands a clone to the policy and moves the time through its own.
    pub fn at(now: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(now)))
    }

    /// Puts the clock at `now`, forwards or back; every clone sees it.
    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// Moves the clock `secs` seconds forward, e.g. onto the last second of
    /// a window or the first one past it.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
