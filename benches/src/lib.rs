//! Inputs for the criterion benches (benches/kernels.rs): synthetic weight
//! matrices of any stored type with the shapes of the real test models, and
//! seeded random activations. Nothing here reads a model file, so the benches
//! run on a fresh checkout.

use atenia_engine::formats::storage::{Bytes, Matrix};
use atenia_engine::GgmlType;
use atenia_testkit::Rng;

/// An f16 bit pattern of a normal number of magnitude in [2^-8, 2^-3)
/// (about 0.004 to 0.125: the range of real block scales), random sign
/// when `signed`.
fn f16_scale(rng: &mut Rng, signed: bool) -> u16 {
    let r = rng.next_u64();
    let exp = 7 + (r % 5) as u16; // biased exponent 7..=11 → 2^-8 .. 2^-4 × (1 + m)
    let mant = ((r >> 8) & 0x3FF) as u16;
    let sign = if signed && (r >> 20) & 1 == 1 {
        0x8000
    } else {
        0
    };
    sign | (exp << 10) | mant
}

/// A `rows × cols` matrix of type `t` made of random blocks with finite
/// scales (float types: random values in [-1, 1)).
pub fn synthetic_matrix(name: &str, t: GgmlType, rows: usize, cols: usize, seed: u64) -> Matrix {
    let row_bytes = t
        .row_bytes(cols)
        .unwrap_or_else(|| panic!("{cols} columns is not a whole number of {t} blocks"));
    let mut rng = Rng::new(seed);
    let mut data = vec![0u8; rows * row_bytes];
    match t {
        GgmlType::F32 => {
            for c in data.chunks_exact_mut(4) {
                c.copy_from_slice(&rng.signed_f32().to_le_bytes());
            }
        }
        GgmlType::BF16 => {
            for c in data.chunks_exact_mut(2) {
                c.copy_from_slice(&((rng.signed_f32().to_bits() >> 16) as u16).to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for c in data.chunks_exact_mut(2) {
                c.copy_from_slice(&f16_scale(&mut rng, true).to_le_bytes());
            }
        }
        _ => {
            rng.fill_bytes(&mut data);
            let fields = t.scale_offsets();
            for block in data.chunks_exact_mut(t.block_bytes()) {
                for (i, &o) in fields.iter().enumerate() {
                    // The second field of Q4_1/Q5_1 is a signed minimum; of
                    // Q2_K/Q4_K/Q5_K, the (positive) scale of the minima.
                    let signed = i == 1 && matches!(t, GgmlType::Q4_1 | GgmlType::Q5_1);
                    block[o..o + 2].copy_from_slice(&f16_scale(&mut rng, signed).to_le_bytes());
                }
            }
        }
    }
    Matrix::new(name, t, rows, cols, Bytes::from_vec(data)).expect("synthetic matrix")
}

/// `n` seeded values uniform in [-1, 1).
pub fn random_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.signed_f32()).collect()
}

/// One weight matrix of a real model: its role, stored type and shape (rows × cols).
#[derive(Clone, Copy, Debug)]
pub struct WeightShape {
    pub model: &'static str,
    pub role: &'static str,
    pub dtype: GgmlType,
    pub rows: usize,
    pub cols: usize,
    /// A layer matrix (runs in prefill matmuls), not the embedding/output.
    pub in_layer: bool,
}

const fn ws(
    model: &'static str,
    role: &'static str,
    dtype: GgmlType,
    rows: usize,
    cols: usize,
    in_layer: bool,
) -> WeightShape {
    WeightShape {
        model,
        role,
        dtype,
        rows,
        cols,
        in_layer,
    }
}

/// Every (type, shape) of weight matrix in SmolLM2-135M-Instruct Q4_1 and
/// Gemma 3 270M Q4_K_M, as their GGUF files hold them (the output
/// projection is the tied embedding in both).
pub const REAL_WEIGHTS: [WeightShape; 13] = [
    ws(
        "smollm2",
        "attn_q+attn_output",
        GgmlType::Q4_1,
        576,
        576,
        true,
    ),
    ws("smollm2", "attn_k+attn_v", GgmlType::Q4_1, 192, 576, true),
    ws(
        "smollm2",
        "ffn_gate+ffn_up",
        GgmlType::Q4_1,
        1536,
        576,
        true,
    ),
    ws("smollm2", "ffn_down", GgmlType::Q4_1, 576, 1536, true),
    ws("smollm2", "output", GgmlType::Q8_0, 49152, 576, false),
    ws("gemma3", "attn_q", GgmlType::Q5_0, 1024, 640, true),
    ws("gemma3", "attn_k+attn_v", GgmlType::Q5_0, 256, 640, true),
    ws("gemma3", "attn_v", GgmlType::Q8_0, 256, 640, true),
    ws("gemma3", "ffn_gate+ffn_up", GgmlType::Q5_0, 2048, 640, true),
    ws("gemma3", "attn_output", GgmlType::Q4K, 640, 1024, true),
    ws("gemma3", "ffn_down", GgmlType::Q4K, 640, 2048, true),
    ws("gemma3", "ffn_down", GgmlType::Q6K, 640, 2048, true),
    ws("gemma3", "output", GgmlType::Q8_0, 262144, 640, false),
];

/// Attention shapes of the two models: (model, heads, kv heads, head_dim).
pub const REAL_ATTENTION: [(&str, usize, usize, usize); 2] =
    [("smollm2", 9, 3, 64), ("gemma3", 4, 1, 256)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_matrices_dequantize_to_finite_values() {
        for t in GgmlType::ALL {
            let cols = 512;
            let m = synthetic_matrix("t", t, 3, cols, 7);
            let mut row = vec![0f32; cols];
            for r in 0..3 {
                m.dequantize_row_into(r, &mut row).unwrap();
                assert!(row.iter().all(|v| v.is_finite()), "{t}");
                assert!(row.iter().any(|&v| v != 0.0), "{t}");
            }
        }
    }

    #[test]
    fn real_shapes_are_whole_blocks() {
        for w in REAL_WEIGHTS {
            assert!(w.dtype.row_bytes(w.cols).is_some(), "{w:?}");
        }
    }

    #[test]
    fn rng_is_seeded() {
        assert_eq!(random_f32(4, 1), random_f32(4, 1));
        assert_ne!(random_f32(4, 1), random_f32(4, 2));
        assert!(random_f32(1000, 3).iter().all(|v| (-1.0..1.0).contains(v)));
    }
}
