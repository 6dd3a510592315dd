//! A tiny seeded pseudo-random generator (SplitMix64): one seed decides every choice.
//!
//! Not cryptographic. Used by the core for timeout jitter and by the simulator for every fault,
//! so that a seed reproduces a run byte for byte. No `rand`, no OS entropy.

/// SplitMix64 (Steele, Lea, Flood 2014): 64 bits of state, passes BigCrush, trivially seedable.
#[derive(Clone, Debug)]
pub struct Prng {
    state: u64,
}

impl Prng {
    /// A generator whose whole future is decided by `seed`.
    pub fn new(seed: u64) -> Prng {
        Prng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound` > 0); the modulo bias is negligible for our small bounds.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0);
        self.next_u64() % bound
    }

    /// A value in `low..=high`.
    pub fn range_inclusive(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high);
        low + self.below(high - low + 1)
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        assert!(denominator > 0);
        self.below(denominator) < numerator
    }

    /// A derived, independent generator (for one node or one subsystem).
    pub fn fork(&mut self) -> Prng {
        Prng::new(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::Prng;

    #[test]
    fn same_seed_same_sequence_other_seed_other_sequence() {
        let mut first = Prng::new(7);
        let mut second = Prng::new(7);
        let mut other = Prng::new(8);
        let first_values: Vec<u64> = (0..8).map(|_| first.next_u64()).collect();
        let second_values: Vec<u64> = (0..8).map(|_| second.next_u64()).collect();
        let other_values: Vec<u64> = (0..8).map(|_| other.next_u64()).collect();
        assert_eq!(first_values, second_values);
        assert_ne!(first_values, other_values);
    }

    #[test]
    fn below_stays_in_bound() {
        let mut prng = Prng::new(1);
        for _ in 0..1000 {
            assert!(prng.below(3) < 3);
            let value = prng.range_inclusive(5, 6);
            assert!((5..=6).contains(&value));
        }
    }
}
