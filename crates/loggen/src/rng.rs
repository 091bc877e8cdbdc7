//! A small deterministic PRNG.
//!
//! SplitMix64 (Steele, Lea & Flood, 2014): a few arithmetic operations per
//! number, good enough statistics for synthetic data, and an output sequence
//! fully defined by the seed. Only integer operations are used on top of it —
//! no floating point, whose `ln`/`exp` may differ between platforms' math
//! libraries — so a seed reproduces the same bytes everywhere.

/// SplitMix64 state.
#[derive(Clone, Debug)]
pub struct Rng(u64);

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function: a bijective scramble of the state.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// An independent generator for sub-stream `stream` of this one's seed.
    ///
    /// Each scenario draws from its own stream, so changing how many numbers
    /// one scenario consumes does not reshuffle every other part of the output.
    pub fn fork(&self, stream: u64) -> Rng {
        Rng(mix(
            self.0 ^ mix(stream.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA))
        ))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix(self.0)
    }

    /// A number in `0..n` (`n > 0`), by Lemire's multiply-shift; the bias
    /// (below 2⁻³² for our ranges) does not matter for synthetic logs.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0, "below(0)");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi, "between({lo}, {hi})");
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// True with probability `per_mille`/1000.
    pub fn permille(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A uniformly chosen element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// `n` scaled by a random factor in `lo_pct..=hi_pct` percent, to keep
    /// counts and rates from looking machine-made.
    pub fn jitter(&mut self, n: u64, lo_pct: i64, hi_pct: i64) -> u64 {
        n * self.between(lo_pct, hi_pct) as u64 / 100
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_splitmix64_sequence() {
        // First outputs of SplitMix64 seeded with 0 (reference implementation).
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn ranges_stay_in_bounds_and_cover_them() {
        let mut rng = Rng::new(7);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let v = rng.between(-2, 2);
            assert!((-2..=2).contains(&v));
            seen[(v + 2) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn forks_are_independent_of_each_other() {
        let root = Rng::new(42);
        let a: Vec<u64> = (0..4).map(|_| root.fork(1).next_u64()).collect();
        assert!(
            a.windows(2).all(|w| w[0] == w[1]),
            "a fork is a pure function"
        );
        assert_ne!(root.fork(1).next_u64(), root.fork(2).next_u64());
    }
}
