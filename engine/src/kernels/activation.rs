//! Gated activations, evaluated in f64 and rounded once.

/// The activation of a gated MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x · sigmoid(x)` (SwiGLU).
    Silu,
    /// The tanh approximation of GELU (GeGLU as in Gemma).
    GeluTanh,
}

#[inline]
pub fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

#[inline]
pub fn gelu_tanh(x: f64) -> f64 {
    const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
    // 0.5·x·(1 + tanh z) = x·sigmoid(2z), written without the cancellation of 1 + tanh z for x ≪ 0.
    let z = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    x / (1.0 + (-2.0 * z).exp())
}

/// `gate[i] = act(gate[i]) * up[i]`.
pub fn gated(act: Activation, gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len());
    match act {
        Activation::Silu => {
            for (g, &u) in gate.iter_mut().zip(up) {
                *g = (silu(*g as f64) * u as f64) as f32;
            }
        }
        Activation::GeluTanh => {
            for (g, &u) in gate.iter_mut().zip(up) {
                *g = (gelu_tanh(*g as f64) * u as f64) as f32;
            }
        }
    }
}

/// `cap · tanh(x / cap)`, as Gemma 2 soft-caps attention scores and logits.
#[inline]
pub fn softcap(x: f64, cap: f64) -> f64 {
    cap * (x / cap).tanh()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(silu(0.0), 0.0);
        assert!((silu(1.0) - 0.731_058_578_630_004_9).abs() < 1e-15);
        assert!((gelu_tanh(1.0) - 0.841_191_990_607_477_3).abs() < 1e-12);
        assert!((softcap(100.0, 30.0) - 30.0 * (100.0f64 / 30.0).tanh()).abs() < 1e-12);
    }
}
