//! Rotary position embeddings. Angles, their cosines and sines and the
//! rotation itself are computed in f64; the result is rounded once to f32.

/// How a head's dimensions are paired for rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RopeStyle {
    /// Pairs `(2i, 2i+1)`: GGUF `llama` files, whose Q/K rows the converter permuted.
    Interleaved,
    /// Pairs `(i, i + d/2)`: Hugging Face checkpoints and NEOX-style GGUF files.
    Half,
}

/// The rotation of one attention type: inverse frequencies per pair and the
/// factor cos and sin are multiplied by (LongRoPE / YaRN attention factor; 1 otherwise).
#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    pub style: RopeStyle,
    /// Rotated dimensions (≤ head_dim); the rest pass through.
    pub rotary_dim: usize,
    pub inv_freq: Vec<f64>,
    pub attention_factor: f64,
}

impl Rope {
    /// Plain RoPE with base `theta` over `rotary_dim` dimensions.
    pub fn plain(style: RopeStyle, rotary_dim: usize, theta: f64) -> Rope {
        let inv_freq = (0..rotary_dim / 2)
            .map(|i| 1.0 / theta.powf((2 * i) as f64 / rotary_dim as f64))
            .collect();
        Rope {
            style,
            rotary_dim,
            inv_freq,
            attention_factor: 1.0,
        }
    }

    /// Fills `cs` (length `rotary_dim`) with `(cos, sin)` pairs for position `pos`.
    pub fn cos_sin(&self, pos: usize, cs: &mut [f64]) {
        for (i, &f) in self.inv_freq.iter().enumerate() {
            let a = pos as f64 * f;
            cs[2 * i] = a.cos() * self.attention_factor;
            cs[2 * i + 1] = a.sin() * self.attention_factor;
        }
    }

    /// Rotates each `head_dim`-wide head in `x` by the angles in `cs` (from [`Rope::cos_sin`]).
    pub fn apply(&self, x: &mut [f32], head_dim: usize, cs: &[f64]) {
        let half = self.rotary_dim / 2;
        for head in x.chunks_exact_mut(head_dim) {
            for i in 0..half {
                let (c, s) = (cs[2 * i], cs[2 * i + 1]);
                let (ia, ib) = match self.style {
                    RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                    RopeStyle::Half => (i, i + half),
                };
                let a = head[ia] as f64;
                let b = head[ib] as f64;
                head[ia] = (a * c - b * s) as f32;
                head[ib] = (a * s + b * c) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_zero_is_identity_and_norm_is_kept() {
        let rope = Rope::plain(RopeStyle::Half, 8, 10000.0);
        let mut cs = vec![0.0; 8];
        rope.cos_sin(0, &mut cs);
        let mut x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let orig = x;
        rope.apply(&mut x, 8, &cs);
        assert_eq!(x, orig);
        rope.cos_sin(17, &mut cs);
        rope.apply(&mut x, 8, &cs);
        let n0: f32 = orig.iter().map(|v| v * v).sum();
        let n1: f32 = x.iter().map(|v| v * v).sum();
        assert!((n0 - n1).abs() < 1e-4);
    }
}
