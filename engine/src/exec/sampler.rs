//! Token sampling: greedy, temperature, top-k, top-p, min-p and a repetition
//! penalty, driven by a seeded generator so a run can be reproduced exactly.

use crate::error::{Error, Result};

/// Sampling settings. `temperature == 0` is greedy decoding.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches `top_p` (1 = all).
    pub top_p: f32,
    /// Drop tokens whose probability is below `min_p` times the top one (0 = off).
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of recently seen tokens by this (1 = off).
    pub repetition_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repetition_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

impl SamplerConfig {
    pub fn greedy() -> Self {
        SamplerConfig {
            temperature: 0.0,
            ..Default::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::argument(
                "--temperature",
                "must be a finite number ≥ 0",
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::argument("--top-p", "must be in (0, 1]"));
        }
        if !(self.min_p >= 0.0 && self.min_p <= 1.0) {
            return Err(Error::argument("--min-p", "must be in [0, 1]"));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(Error::argument(
                "--repeat-penalty",
                "must be a finite number > 0",
            ));
        }
        Ok(())
    }
}

/// xoshiro256** seeded through splitmix64: small, fast, reproducible everywhere.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A sampler with its own generator and reusable buffers.
pub struct Sampler {
    pub config: SamplerConfig,
    rng: Rng,
    cand: Vec<(f32, u32)>,
    probs: Vec<f64>,
    seen: Vec<u32>,
}

/// The index of the largest value (the lowest index on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Result<Sampler> {
        config.validate()?;
        Ok(Sampler {
            rng: Rng::new(config.seed),
            config,
            cand: Vec::new(),
            probs: Vec::new(),
            seen: Vec::new(),
        })
    }

    /// Picks the next token from `logits` (modified in place by the penalty);
    /// `history` holds the tokens so far (prompt and generated).
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let c = &self.config;
        if c.repetition_penalty != 1.0 {
            let start = history.len().saturating_sub(c.repeat_last_n);
            // A reused buffer: no allocation per token once it has grown.
            self.seen.clear();
            self.seen.extend_from_slice(&history[start..]);
            self.seen.sort_unstable();
            self.seen.dedup();
            for &t in &self.seen {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l > 0.0 {
                        *l / c.repetition_penalty
                    } else {
                        *l * c.repetition_penalty
                    };
                }
            }
        }
        if c.temperature == 0.0 {
            return argmax(logits);
        }
        self.cand.clear();
        self.cand
            .extend(logits.iter().enumerate().map(|(i, &l)| (l, i as u32)));
        // Highest logit first; ties by lower id, so the order is deterministic.
        let by_logit = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if c.top_k > 0 && c.top_k < self.cand.len() {
            self.cand.select_nth_unstable_by(c.top_k - 1, by_logit);
            self.cand.truncate(c.top_k);
        }
        self.cand.sort_unstable_by(by_logit);
        let max = self.cand[0].0 as f64;
        let t = c.temperature as f64;
        self.probs.clear();
        self.probs
            .extend(self.cand.iter().map(|&(l, _)| ((l as f64 - max) / t).exp()));
        let sum: f64 = self.probs.iter().sum();
        for p in self.probs.iter_mut() {
            *p /= sum;
        }
        // top-p: the smallest prefix reaching top_p.
        let mut keep = self.probs.len();
        if c.top_p < 1.0 {
            let mut acc = 0.0;
            for (i, p) in self.probs.iter().enumerate() {
                acc += p;
                if acc >= c.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
        }
        // min-p: relative to the most likely token.
        if c.min_p > 0.0 {
            let floor = self.probs[0] * c.min_p as f64;
            keep = keep.min(
                self.probs
                    .iter()
                    .take_while(|&&p| p >= floor)
                    .count()
                    .max(1),
            );
        }
        let total: f64 = self.probs[..keep].iter().sum();
        let mut r = self.rng.next_f64() * total;
        for i in 0..keep {
            r -= self.probs[i];
            if r < 0.0 {
                return self.cand[i].1;
            }
        }
        self.cand[keep - 1].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_argmax() {
        let mut s = Sampler::new(SamplerConfig::greedy()).unwrap();
        let mut l = vec![0.1, 3.0, 2.0, 3.0];
        assert_eq!(s.sample(&mut l, &[]), 1);
    }

    #[test]
    fn same_seed_same_tokens_and_different_seed_differs() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 37) % 17) as f32 * 0.3).collect();
        let run = |seed| {
            let mut s = Sampler::new(SamplerConfig {
                temperature: 1.5,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                seed,
                ..Default::default()
            })
            .unwrap();
            (0..50)
                .map(|_| s.sample(&mut logits.clone(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn top_k_one_is_greedy_and_filters_hold() {
        let logits = vec![1.0f32, 5.0, 4.9, -3.0];
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 1,
            ..Default::default()
        })
        .unwrap();
        for _ in 0..20 {
            assert_eq!(s.sample(&mut logits.clone(), &[]), 1);
        }
        // min_p 0.5: token 2 (p ratio e^-0.1) stays, tokens 0 and 3 never appear.
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.5,
            seed: 3,
            ..Default::default()
        })
        .unwrap();
        let mut seen = [0; 4];
        for _ in 0..400 {
            seen[s.sample(&mut logits.clone(), &[]) as usize] += 1;
        }
        assert_eq!(seen[0] + seen[3], 0);
        assert!(seen[1] > 100 && seen[2] > 100, "{seen:?}");
        // top_p small: only the top token.
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.1,
            min_p: 0.0,
            ..Default::default()
        })
        .unwrap();
        for _ in 0..20 {
            assert_eq!(s.sample(&mut logits.clone(), &[]), 1);
        }
    }

    #[test]
    fn repetition_penalty_pushes_seen_tokens_down() {
        let mut s = Sampler::new(SamplerConfig {
            temperature: 0.0,
            repetition_penalty: 2.0,
            ..Default::default()
        })
        .unwrap();
        let mut l = vec![1.0f32, 1.5, -1.0];
        assert_eq!(s.sample(&mut l, &[1]), 0);
        assert_eq!(l, vec![1.0, 0.75, -1.0]);
    }

    #[test]
    fn bad_settings_are_rejected() {
        for c in [
            SamplerConfig {
                temperature: -1.0,
                ..Default::default()
            },
            SamplerConfig {
                top_p: 0.0,
                ..Default::default()
            },
            SamplerConfig {
                min_p: 2.0,
                ..Default::default()
            },
            SamplerConfig {
                repetition_penalty: 0.0,
                ..Default::default()
            },
        ] {
            assert!(Sampler::new(c).is_err());
        }
    }
}
