//! Stream-id generation: non-zero, not in use, unpredictable.

use rand_core::{CryptoRng, RngCore};

/// xoshiro128++ seeded from the adapter's cryptographic RNG: ids cannot be guessed from
/// earlier ones or across restarts (the official client's are the same every run).
#[derive(Debug, Clone)]
pub(crate) struct IdGenerator {
    s: [u32; 4],
}

impl IdGenerator {
    pub(crate) fn new<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut s = [0u32; 4];
        for word in &mut s {
            *word = rng.next_u32();
        }
        let [a, b, c, d] = s;
        // The all-zero state is a fixed point: then the first word is 1 (one `or` chain,
        // no loop over the words).
        if a | b | c | d == 0 {
            s[0] = 1;
        }
        IdGenerator { s }
    }

    fn next_u32(&mut self) -> u32 {
        let [s0, s1, s2, s3] = self.s;
        let result = s0.wrapping_add(s3).rotate_left(7).wrapping_add(s0);
        let t = s1 << 9;
        let mut s = [s0, s1, s2 ^ s0, s3 ^ s1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(11);
        self.s = s;
        result
    }

    /// A fresh id for which `in_use` is false. Bounded: with fewer than a few hundred ids
    /// open, a free one is found in a handful of draws.
    pub(crate) fn next_id(&mut self, in_use: impl Fn(u16) -> bool) -> Option<u16> {
        for _ in 0..1024 {
            let id = (self.next_u32() >> 16) as u16;
            if id != 0 && !in_use(id) {
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u64);
    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            self.0 += 1;
            self.0 as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.next_u32() as u64
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.iter_mut().for_each(|b| *b = self.next_u32() as u8)
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for Counter {}

    /// An RNG that gives 0 forever: the seed that would fix the generator at 0.
    struct Zeros;
    impl RngCore for Zeros {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0)
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for Zeros {}

    #[test]
    fn an_all_zero_seed_still_gives_distinct_ids() {
        let mut ids = IdGenerator::new(&mut Zeros);
        assert_eq!(ids.s, [1, 0, 0, 0]);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let id = ids.next_id(|id| seen.contains(&id)).unwrap();
            assert!(id != 0);
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn ids_are_nonzero_unused_and_spread() {
        let mut ids = IdGenerator::new(&mut Counter(7));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let id = ids.next_id(|id| seen.contains(&id)).unwrap();
            assert!(id != 0);
            assert!(seen.insert(id));
        }
        let mut other = IdGenerator::new(&mut Counter(8));
        let a: std::vec::Vec<u16> = (0..4).map(|_| ids.next_id(|_| false).unwrap()).collect();
        let b: std::vec::Vec<u16> = (0..4).map(|_| other.next_id(|_| false).unwrap()).collect();
        assert_ne!(a, b);
    }
}
