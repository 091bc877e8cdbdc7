//! Sliding-window counters with a fixed memory footprint.

use mailfuse_core::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Counts what happened in the last `N × width` seconds, in `N` buckets of
/// `width` seconds each. Memory is `N` counters whatever the traffic, so one
/// can sit in every account's and every IP's state.
///
/// The window slides by whole buckets: at time `t` it covers the bucket of
/// `t` and the `N - 1` before it. Events older than the window are ignored
/// (they can only come from out-of-order input); time never needs a timer —
/// the window moves when an event arrives.
#[derive(Clone, Debug)]
pub struct Rolling<const N: usize> {
    width: i64,
    buckets: [u32; N],
    /// Absolute index (`secs / width`) of the newest bucket.
    newest: i64,
    sum: u32,
}

/// A [`Rolling`] as stored (serde's arrays stop at 32 elements).
#[derive(Serialize, Deserialize)]
struct StoredRolling {
    width: i64,
    buckets: Vec<u32>,
    newest: i64,
}

impl<const N: usize> Serialize for Rolling<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredRolling {
            width: self.width,
            buckets: self.buckets.to_vec(),
            newest: self.newest,
        }
        .serialize(serializer)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Rolling<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredRolling::deserialize(deserializer)?;
        let buckets: [u32; N] = stored.buckets.try_into().map_err(|b: Vec<u32>| {
            serde::de::Error::custom(format!("a window of {N} buckets, not {}", b.len()))
        })?;
        Ok(Rolling {
            width: stored.width.max(1),
            sum: buckets.iter().fold(0u32, |sum, &n| sum.saturating_add(n)),
            buckets,
            newest: stored.newest,
        })
    }
}

impl<const N: usize> Rolling<N> {
    /// An empty window of `N` buckets of `width` seconds (`width` ≥ 1).
    pub fn new(width: i64) -> Self {
        Rolling {
            width: width.max(1),
            buckets: [0; N],
            newest: i64::MIN,
            sum: 0,
        }
    }

    /// Adds `n` at `at` and returns the window's total after adding.
    pub fn add(&mut self, at: Timestamp, n: u32) -> u32 {
        let slot = at.as_secs().div_euclid(self.width);
        self.advance(slot);
        if slot <= self.newest - N as i64 {
            return self.sum; // older than the window
        }
        let i = slot.rem_euclid(N as i64) as usize;
        self.buckets[i] = self.buckets[i].saturating_add(n);
        self.sum = self.sum.saturating_add(n);
        self.sum
    }

    /// The window's total as of `at` (buckets that slid out are dropped).
    pub fn total_at(&mut self, at: Timestamp) -> u32 {
        self.advance(at.as_secs().div_euclid(self.width));
        self.sum
    }

    /// The count in the bucket holding `at`, if `at` is within the window.
    pub fn bucket_at(&self, at: Timestamp) -> u32 {
        let slot = at.as_secs().div_euclid(self.width);
        if slot > self.newest || slot <= self.newest - N as i64 {
            return 0;
        }
        self.buckets[slot.rem_euclid(N as i64) as usize]
    }

    /// Moves the newest bucket forward to `slot`, clearing what slides out.
    fn advance(&mut self, slot: i64) {
        if slot <= self.newest {
            return;
        }
        if self.newest == i64::MIN || slot - self.newest >= N as i64 {
            self.buckets = [0; N];
            self.sum = 0;
        } else {
            for s in self.newest + 1..=slot {
                let i = s.rem_euclid(N as i64) as usize;
                self.sum -= self.buckets[i];
                self.buckets[i] = 0;
            }
        }
        self.newest = slot;
    }
}

/// A sliding hour in one-minute buckets.
pub type HourWindow = Rolling<60>;
/// A sliding day in one-hour buckets.
pub type DayWindow = Rolling<24>;

impl HourWindow {
    /// An empty sliding hour.
    pub fn hour() -> Self {
        Rolling::new(60)
    }
}

impl DayWindow {
    /// An empty sliding day.
    pub fn day() -> Self {
        Rolling::new(3600)
    }
}

/// The largest value a quantity has reached, and when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peak {
    /// The highest value offered (0 until something is offered).
    pub count: u32,
    /// Time of the event that first reached `count` (UTC seconds): a later
    /// tie does not move it.
    pub at: Timestamp,
}

impl Peak {
    /// Records `count` at `at` if it beats the current peak.
    pub fn offer(&mut self, count: u32, at: Timestamp) {
        if count > self.count {
            *self = Peak { count, at };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp(1_700_000_000 - 1_700_000_000 % 3600 + secs)
    }

    #[test]
    fn counts_within_the_window_and_forgets_after_it() {
        let mut w = HourWindow::hour();
        assert_eq!(w.add(t(0), 1), 1);
        assert_eq!(w.add(t(59), 2), 3);
        assert_eq!(w.add(t(60 * 59), 1), 4, "minute 59 still sees minute 0");
        assert_eq!(w.add(t(60 * 60), 1), 2, "minute 60 no longer sees minute 0");
        assert_eq!(w.total_at(t(60 * 200)), 0);
    }

    #[test]
    fn window_edges_are_exact() {
        let mut w = Rolling::<3>::new(10);
        w.add(t(0), 5); // bucket [0,10)
        assert_eq!(
            w.total_at(t(29)),
            5,
            "bucket [20,30) still has [0,10) in view"
        );
        assert_eq!(w.total_at(t(30)), 0, "bucket [30,40) does not");
    }

    #[test]
    fn late_events_inside_the_window_count_older_ones_do_not() {
        let mut w = Rolling::<3>::new(10);
        w.add(t(25), 1);
        assert_eq!(w.add(t(5), 1), 2);
        assert_eq!(w.bucket_at(t(5)), 1);
        w.add(t(35), 1);
        assert_eq!(w.add(t(5), 1), 2, "t=5 slid out: ignored");
    }

    #[test]
    fn peak_keeps_the_first_maximum() {
        let mut p = Peak::default();
        p.offer(3, t(1));
        p.offer(3, t(2));
        p.offer(2, t(3));
        assert_eq!(p, Peak { count: 3, at: t(1) });
    }
}
