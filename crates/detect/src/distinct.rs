//! How many distinct things were seen, without keeping them: a HyperLogLog
//! sketch (Flajolet, Fusy, Gandouet and Meunier, 2007), 4 KiB whatever the
//! count, within about 2 % of it (exact enough to tell one try per pair from
//! many, where the set of a botnet's pairs took megabytes).

use serde::{Deserialize, Serialize};

/// Bits of the hash that choose a register.
const INDEX_BITS: u32 = 12;
const REGISTERS: usize = 1 << INDEX_BITS;

/// A distinct count of hashed items.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct DistinctCount {
    /// Per register, the most leading zeros seen plus one; empty until the
    /// first item.
    registers: Vec<u8>,
}

impl DistinctCount {
    /// Counts the item whose 64-bit hash is `hash` (any hash: it is mixed
    /// again here, as the sketch needs every bit to look random).
    pub(crate) fn insert(&mut self, hash: u64) {
        if self.registers.len() != REGISTERS {
            self.registers = vec![0; REGISTERS];
        }
        let hash = mix(hash);
        let index = (hash >> (64 - INDEX_BITS)) as usize;
        let rank = (hash << INDEX_BITS).leading_zeros().min(64 - INDEX_BITS) + 1;
        let register = &mut self.registers[index];
        *register = (*register).max(rank as u8);
    }

    /// The estimated number of distinct items counted.
    pub(crate) fn estimate(&self) -> f64 {
        if self.registers.is_empty() {
            return 0.0;
        }
        let m = REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self
            .registers
            .iter()
            .map(|&rank| (-f64::from(rank)).exp2())
            .sum();
        let raw = alpha * m * m / sum;
        let empty = self.registers.iter().filter(|&&rank| rank == 0).count();
        if raw <= 2.5 * m && empty > 0 {
            // Few items: counting the empty registers is more exact.
            m * (m / empty as f64).ln()
        } else {
            raw
        }
    }
}

/// The 64-bit finaliser of MurmurHash3: spreads every input bit over the
/// output.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(items: impl IntoIterator<Item = u64>) -> f64 {
        let mut count = DistinctCount::default();
        for item in items {
            count.insert(item);
        }
        count.estimate()
    }

    #[test]
    fn estimates_are_within_a_few_percent_at_every_size() {
        assert_eq!(counted([]), 0.0);
        for n in [1u64, 20, 1_000, 30_000, 1_000_000] {
            let estimate = counted(0..n);
            let error = (estimate - n as f64).abs() / n as f64;
            assert!(error < 0.03, "{n} items estimated {estimate}");
        }
    }

    #[test]
    fn an_item_seen_again_is_not_counted_again() {
        let once = counted(0..5_000);
        let thrice = counted((0..3).flat_map(|_| 0..5_000));
        assert_eq!(once, thrice);
    }
}
