//! Sliding-window counters with a fixed memory footprint.

use mailfuse_core::{time, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

/// Counts what happened in the last `N × width` seconds, in `N` buckets of
/// `width` seconds each. Only the buckets that hold something are kept —
/// three inline, more on the heap while they last — so an
/// idle window costs a few words and one sits in every account's and every
/// IP's state; a busy one holds at most `N` buckets.
///
/// The window slides by whole buckets: at time `t` it covers the bucket of
/// `t` and the `N - 1` before it. Events older than the window are ignored
/// (they can only come from out-of-order input); time never needs a timer —
/// the window moves when an event arrives.
#[derive(Clone, Debug)]
pub struct Rolling<const N: usize> {
    width: i64,
    /// Absolute index (`secs / width`) of the newest bucket.
    newest: i64,
    /// The buckets within the window that hold something, oldest first,
    /// each by the low 32 bits of its absolute index (see
    /// [`Rolling::index_of`]) with its count: 8 bytes, so that an account
    /// sending a few messages an hour keeps its buckets inline, beside the
    /// window's other fields, not on the heap (a cache miss at every message
    /// it sent: 5 % of the misses of a Kerio scan).
    buckets: SmallVec<[(u32, u32); INLINE_BUCKETS]>,
    /// The buckets' total, wide enough never to saturate.
    sum: u64,
}

/// Buckets a window holds without the heap: an account's few messages of
/// an hour.
const INLINE_BUCKETS: usize = 3;
/// Buckets a window takes room for when it first needs the heap (see
/// [`Rolling::make_room`]): 64 bytes, while it has something in its span.
const FIRST_HEAP_BUCKETS: usize = 8;

/// A [`Rolling`] as stored: its non-empty buckets by absolute index, or,
/// as earlier versions stored it, all `N` by position (serde's arrays stop
/// at 32 elements). Within [`time::relative_to`], indexes are stored as
/// their distance from the base's bucket, as times are.
#[derive(Serialize, Deserialize)]
struct StoredRolling {
    width: i64,
    #[serde(default)]
    buckets: Vec<u32>,
    newest: i64,
    #[serde(default)]
    sparse: Vec<(i64, u32)>,
}

/// The bucket of the base times are stored relative to, if any (wrapping
/// arithmetic reads every index back exactly).
fn base_bucket(width: i64) -> i64 {
    time::relative_base().map_or(0, |base| base.as_secs().div_euclid(width.max(1)))
}

impl<const N: usize> Serialize for Rolling<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let base = base_bucket(self.width);
        StoredRolling {
            width: self.width,
            buckets: Vec::new(),
            newest: self.newest.wrapping_sub(base),
            sparse: self
                .indexed()
                .map(|(index, count)| (index.wrapping_sub(base), count))
                .collect(),
        }
        .serialize(serializer)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Rolling<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredRolling::deserialize(deserializer)?;
        let base = base_bucket(stored.width);
        let newest = stored.newest.wrapping_add(base);
        let mut buckets: Vec<(i64, u32)> = stored
            .sparse
            .into_iter()
            .map(|(index, count)| (index.wrapping_add(base), count))
            .collect();
        if !stored.buckets.is_empty() && newest != i64::MIN {
            // The whole ring: position `i` held absolute index `s` with
            // `s ≡ i (mod N)` within the window.
            let n = stored.buckets.len() as i64;
            buckets.extend(
                stored
                    .buckets
                    .iter()
                    .enumerate()
                    .map(|(i, &count)| (newest - (newest - i as i64).rem_euclid(n), count)),
            );
        }
        buckets.retain(|&(index, count)| count > 0 && index <= newest && index > newest - N as i64);
        buckets.sort_unstable();
        buckets.dedup_by_key(|&mut (index, _)| index);
        Ok(Rolling {
            width: stored.width.max(1),
            newest,
            sum: buckets.iter().map(|&(_, n)| u64::from(n)).sum(),
            buckets: buckets
                .into_iter()
                .map(|(index, count)| (low_bits(index), count))
                .collect(),
        })
    }
}

/// The low 32 bits of absolute bucket `index`, as a bucket is kept.
fn low_bits(index: i64) -> u32 {
    index as u32
}

impl<const N: usize> Rolling<N> {
    /// The absolute index of the bucket kept as `low`: the one within the
    /// window (`newest - N` exclusive to `newest`), where every kept bucket
    /// is. Its distance from the newest, below `N`, is the wrapping
    /// difference of their low bits: a subtraction, where a ring of `N`
    /// places took a division by `N` (every line adds to several windows).
    #[inline]
    fn index_of(&self, low: u32) -> i64 {
        self.newest - i64::from(low_bits(self.newest).wrapping_sub(low))
    }

    /// The kept buckets by absolute index, oldest first.
    fn indexed(&self) -> impl Iterator<Item = (i64, u32)> + '_ {
        self.buckets
            .iter()
            .map(|&(low, count)| (self.index_of(low), count))
    }

    /// An empty window of `N` buckets of `width` seconds (`width` ≥ 1).
    pub fn new(width: i64) -> Self {
        Rolling {
            width: width.max(1),
            newest: i64::MIN,
            buckets: SmallVec::new(),
            sum: 0,
        }
    }

    /// Adds `n` at `at` and returns the window's total after adding.
    pub fn add(&mut self, at: Timestamp, n: u32) -> u32 {
        self.add_in(at, n);
        self.total()
    }

    /// [`Rolling::add`], with what [`Rolling::bucket_at`] gives after it:
    /// the adding has just found the bucket, so it is not searched again.
    pub fn add_with_bucket(&mut self, at: Timestamp, n: u32) -> (u32, u32) {
        let in_bucket = match self.add_in(at, n) {
            Some(i) => self.buckets[i].1,
            None => self.bucket_at(at),
        };
        (self.total(), in_bucket)
    }

    /// The absolute index of `at`'s bucket. Most events fall in the newest
    /// bucket, which a multiplication and a comparison tell: a division
    /// takes tens of cycles, and every line adds to several windows.
    #[inline]
    fn slot(&self, at: Timestamp) -> i64 {
        let secs = at.as_secs();
        let into_newest = self
            .newest
            .checked_mul(self.width)
            .and_then(|start| secs.checked_sub(start));
        match into_newest {
            Some(into) if (0..self.width).contains(&into) => self.newest,
            _ => secs.div_euclid(self.width),
        }
    }

    /// Adds `n` at `at`; the index of the bucket it went to, if any.
    fn add_in(&mut self, at: Timestamp, n: u32) -> Option<usize> {
        let slot = self.slot(at);
        self.advance(slot);
        if slot <= self.newest - N as i64 || n == 0 {
            return None; // older than the window, or nothing
        }
        // Usually the newest bucket, or a new one after it; a late event's
        // is somewhere before.
        let low = low_bits(slot);
        let at = match self.buckets.last() {
            Some(&(last, _)) if last == low => Ok(self.buckets.len() - 1),
            Some(&(last, _)) if self.index_of(last) > slot => self.find(slot),
            _ => Err(self.buckets.len()),
        };
        let i = at.unwrap_or_else(|i| {
            self.make_room();
            // Mostly a new newest bucket: pushed, as `insert` would call
            // `memmove` to shift nothing.
            if i == self.buckets.len() {
                self.buckets.push((low, 0));
            } else {
                self.buckets.insert(i, (low, 0));
            }
            i
        });
        let count = &mut self.buckets[i].1;
        let before = *count;
        *count = count.saturating_add(n);
        self.sum += u64::from(*count - before);
        Some(i)
    }

    /// Room for one more bucket: a window that needs a second bucket
    /// mostly goes on to need more (a busy hour has one a minute), so the
    /// heap is taken for [`FIRST_HEAP_BUCKETS`] at once, then doubled up to
    /// the `N` a window can hold. Growing one by one through 2, 4 and 8
    /// reallocated at every step, and a window left empty frees its heap, so
    /// a busy account went through the steps again every active spell.
    fn make_room(&mut self) {
        let len = self.buckets.len();
        if len == self.buckets.capacity() {
            let room = (2 * len).max(FIRST_HEAP_BUCKETS).min(N).max(len + 1);
            self.buckets.reserve_exact(room - len);
        }
    }

    /// The window's total as of `at` (buckets that slid out are dropped).
    pub fn total_at(&mut self, at: Timestamp) -> u32 {
        self.advance(self.slot(at));
        self.total()
    }

    /// The total, as a count (at most `u32::MAX`).
    fn total(&self) -> u32 {
        u32::try_from(self.sum).unwrap_or(u32::MAX)
    }

    /// The count in the bucket holding `at`, if `at` is within the window.
    pub fn bucket_at(&self, at: Timestamp) -> u32 {
        let slot = self.slot(at);
        if slot > self.newest || slot <= self.newest - N as i64 {
            return 0;
        }
        self.find(slot).map_or(0, |i| self.buckets[i].1)
    }

    /// Where bucket `slot` (within the window) is among the kept ones, or
    /// would go.
    fn find(&self, slot: i64) -> Result<usize, usize> {
        self.buckets
            .binary_search_by_key(&slot, |&(low, _)| self.index_of(low))
    }

    /// Moves the newest bucket forward to `slot`, dropping what slides out
    /// (and the heap memory of a window left empty).
    fn advance(&mut self, slot: i64) {
        if slot <= self.newest {
            return;
        }
        // A whole window or more later, everything slid out: the buckets
        // are not read. Else their low bits are read against the newest
        // bucket they were kept under.
        let all_gone = slot
            .checked_sub(self.newest)
            .is_none_or(|later| later >= N as i64);
        let gone = if all_gone {
            self.buckets.len()
        } else {
            let oldest_kept = slot - N as i64 + 1;
            self.indexed()
                .take_while(|&(index, _)| index < oldest_kept)
                .count()
        };
        self.newest = slot;
        if gone == 0 {
            return;
        }
        if gone == self.buckets.len() {
            self.buckets = SmallVec::new();
            self.sum = 0;
            return;
        }
        for &(_, count) in &self.buckets[..gone] {
            self.sum -= u64::from(count);
        }
        self.buckets.drain(..gone);
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
    fn the_slot_is_the_division_whatever_the_newest_bucket() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for width in [1, 7, 60, 3600] {
            for _ in 0..20_000 {
                let mut w = Rolling::<60>::new(width);
                let base = (next() % 4_000_000_000) as i64 - 1_000_000_000;
                // Before any event, near the newest bucket, and far from it.
                for secs in [
                    base,
                    base + (next() % 200) as i64 - 100,
                    base + (next() % 500_000) as i64,
                ] {
                    assert_eq!(
                        w.slot(Timestamp(secs)),
                        secs.div_euclid(width),
                        "{width} {secs}"
                    );
                    w.add(Timestamp(secs), 1);
                }
            }
            let mut w = Rolling::<60>::new(width);
            w.newest = i64::MAX / 2;
            for secs in [i64::MIN, -1, 0, 1, i64::MAX] {
                assert_eq!(
                    w.slot(Timestamp(secs)),
                    secs.div_euclid(width),
                    "{width} {secs}"
                );
            }
        }
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
    fn adding_tells_the_bucket_as_bucket_at_would() {
        let mut w = Rolling::<3>::new(10);
        for (secs, n) in [(5, 2), (7, 0), (12, 1), (3, 4), (31, 1), (1, 1), (35, 2)] {
            let (total, in_bucket) = w.add_with_bucket(t(secs), n);
            assert_eq!(
                (total, in_bucket),
                (w.total(), w.bucket_at(t(secs))),
                "{secs}"
            );
        }
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
    fn an_idle_window_keeps_no_buckets_and_a_saved_one_comes_back_equal() {
        let mut w = HourWindow::hour();
        for minute in 0..60 {
            w.add(t(60 * minute), 2);
        }
        assert_eq!(w.buckets.len(), 60);
        let saved = rmp_serde::to_vec(&w).unwrap();
        let back: HourWindow = rmp_serde::from_slice(&saved).unwrap();
        let indexed = |w: &HourWindow| w.indexed().collect::<Vec<_>>();
        assert_eq!((indexed(&back), back.sum), (indexed(&w), 120));
        assert_eq!(w.total_at(t(60 * 200)), 0);
        assert!(
            w.buckets.is_empty() && !w.buckets.spilled(),
            "the heap is given back"
        );
    }

    #[test]
    fn a_window_saved_whole_by_an_earlier_version_reads_as_the_same_buckets() {
        // Newest bucket 62 of a 3-bucket window: positions hold 60 (0), 61
        // (1) and 62 (2).
        let dense = StoredRolling {
            width: 10,
            buckets: vec![4, 0, 1],
            newest: 62,
            sparse: Vec::new(),
        };
        let bytes = rmp_serde::to_vec_named(&dense).unwrap();
        let mut w: Rolling<3> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(w.indexed().collect::<Vec<_>>(), vec![(60, 4), (62, 1)]);
        assert_eq!(w.total_at(Timestamp(625)), 5);
        assert_eq!(w.total_at(Timestamp(635)), 1, "bucket 60 slid out");
    }

    #[test]
    fn buckets_whose_low_bits_wrap_keep_their_order_and_totals() {
        // One-second buckets around 2³² s and around 0: the kept low bits
        // wrap, the indexes read back do not.
        for start in [(1_i64 << 32) - 3, -3] {
            let mut w: Rolling<10> = Rolling::new(1);
            for (offset, n) in [(0, 1), (1, 2), (3, 4), (2, 3), (5, 5)] {
                w.add(Timestamp(start + offset), n);
            }
            let expected: Vec<(i64, u32)> = [(0, 1), (1, 2), (2, 3), (3, 4), (5, 5)]
                .iter()
                .map(|&(offset, n)| (start + offset, n))
                .collect();
            assert_eq!(w.indexed().collect::<Vec<_>>(), expected);
            assert_eq!(w.bucket_at(Timestamp(start + 2)), 3);
            assert_eq!(w.total_at(Timestamp(start + 9)), 15);
            assert_eq!(
                w.total_at(Timestamp(start + 11)),
                12,
                "seconds 0 and 1 slid out"
            );
        }
    }

    #[test]
    fn buckets_across_the_ring_keep_their_order_and_a_quiet_window_its_inline_room() {
        // Minutes 58 to 62, the 60th late: at places 58, 59, 0, 1 and 2 of
        // the hour's ring, they read back as the minutes they were, oldest
        // first.
        let mut w = HourWindow::hour();
        for (minute, n) in [(58, 1), (59, 2), (61, 3), (62, 4), (60, 5)] {
            w.add(t(60 * minute), n);
        }
        let minute = |secs: i64| t(secs).as_secs().div_euclid(60);
        let expected: Vec<(i64, u32)> = [(58, 1), (59, 2), (60, 5), (61, 3), (62, 4)]
            .iter()
            .map(|&(m, n)| (minute(60 * m), n))
            .collect();
        assert_eq!(w.indexed().collect::<Vec<_>>(), expected);
        assert_eq!(w.total_at(t(60 * 117)), 15, "minute 117 still sees 58");
        assert_eq!(w.total_at(t(60 * 118)), 14, "minute 58 slid out");
        assert_eq!(w.bucket_at(t(60 * 60)), 5);
        // A few messages an hour: never more buckets than fit inline.
        let mut quiet = HourWindow::hour();
        for minute in (0..24 * 60).step_by(25) {
            quiet.add(t(60 * minute), 1);
            assert!(!quiet.buckets.spilled(), "minute {minute}");
        }
        assert_eq!(quiet.total(), 3);
    }

    #[test]
    fn huge_counts_saturate_rather_than_wrap() {
        let mut w = HourWindow::hour();
        w.add(t(0), u32::MAX);
        assert_eq!(w.add(t(60), u32::MAX), u32::MAX);
        assert_eq!(
            w.total_at(t(60 * 60)),
            u32::MAX,
            "minute 1 is still in view"
        );
        assert_eq!(w.add(t(60 * 61), 1), 1);
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
