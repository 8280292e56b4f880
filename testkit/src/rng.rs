//! The one seeded generator for test data.

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014): a 64-bit counter stepped by the golden-ratio
/// constant and passed through a bit mixer. Every seed, 0 included, gives a
/// full-period stream; the same seed gives the same values on every machine.
///
/// For test inputs only: a test states its data as a seed (and a proptest
/// case as a few numbers) instead of thousands of literals. Not for
/// cryptography, and not the engine's sampler (engine/src/exec/sampler.rs).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose state starts at `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next 32 random bits (the high half of [`Rng::next_u64`]).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in [0, 1), a multiple of 2^-53.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in [-1, 1) as f32, a multiple of 2^-23.
    pub fn signed_f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// In [0, n) (by remainder: the bias, below n/2^64, does not matter to
    /// test data). Panics when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// 1.0 or -1.0, evenly.
    pub fn sign(&mut self) -> f64 {
        if self.next_u64() & 1 == 0 {
            1.0
        } else {
            -1.0
        }
    }

    /// Random bytes, eight per [`Rng::next_u64`] (little-endian).
    pub fn fill_bytes(&mut self, out: &mut [u8]) {
        let mut chunks = out.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let last = self.next_u64().to_le_bytes();
            rest.copy_from_slice(&last[..rest.len()]);
        }
    }

    /// `±m·2^e` with a random 53-bit significand `m` in [1, 2) and `e`
    /// uniform in `[lo, hi)`, rounded to f32 (so subnormals appear for small
    /// `e`, and infinity for `e` ≥ 128).
    pub fn log_uniform_f32(&mut self, lo: i32, hi: i32) -> f32 {
        let e = lo + self.below((hi - lo) as u64) as i32;
        let m = 1.0 + self.unit();
        (self.sign() * m * 2f64.powi(e)) as f32
    }

    /// An f32 subnormal (never zero) with a random significand and sign.
    pub fn subnormal(&mut self) -> f32 {
        let bits = 1 + self.below((1 << 23) - 1) as u32;
        let s = if self.next_u64() & 1 == 0 { 0 } else { 1 << 31 };
        f32::from_bits(bits | s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_splitmix64() {
        // The first outputs of SplitMix64 from state 0, as published with
        // the reference implementation.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn the_same_seed_gives_the_same_values_and_another_seed_others() {
        let take = |seed| {
            let mut r = Rng::new(seed);
            (0..8).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(take(7), take(7));
        assert_ne!(take(7), take(8));
    }

    #[test]
    fn values_stay_in_their_ranges() {
        let mut r = Rng::new(42);
        for _ in 0..10_000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u), "{u}");
            let x = r.range(-3.0, 5.0);
            assert!((-3.0..5.0).contains(&x), "{x}");
            let f = r.signed_f32();
            assert!((-1.0..1.0).contains(&f), "{f}");
            assert!(r.below(7) < 7);
            let s = r.subnormal();
            assert!(s.is_subnormal(), "{s:e}");
            let l = r.log_uniform_f32(-10, 10).abs();
            assert!((2f32.powi(-10)..2f32.powi(10)).contains(&l), "{l:e}");
        }
    }

    #[test]
    fn fill_bytes_uses_the_stream_in_order() {
        let mut a = Rng::new(3);
        let mut bytes = [0u8; 11];
        a.fill_bytes(&mut bytes);
        let mut b = Rng::new(3);
        let first = b.next_u64().to_le_bytes();
        let second = b.next_u64().to_le_bytes();
        assert_eq!(bytes[..8], first);
        assert_eq!(bytes[8..], second[..3]);
    }
}
