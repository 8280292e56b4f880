//! RMSNorm. The mean of squares is accumulated in f64 and the scaling done in
//! f64, so the only rounding is the final one to f32.

/// `out[i] = x[i] / sqrt(mean(x²) + eps) * (offset + w[i])`.
///
/// `offset` is 0 for the usual norm and 1 for Gemma-style `(1 + w)` weights
/// stored without the one.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f64, offset: f64, out: &mut [f32]) {
    assert_eq!(x.len(), w.len());
    assert_eq!(x.len(), out.len());
    let r = inv_rms(x, eps);
    for ((o, &xi), &wi) in out.iter_mut().zip(x).zip(w) {
        *o = (xi as f64 * r * (offset + wi as f64)) as f32;
    }
}

/// In-place variant of [`rms_norm`].
pub fn rms_norm_inplace(x: &mut [f32], w: &[f32], eps: f64, offset: f64) {
    assert_eq!(x.len(), w.len());
    let r = inv_rms(x, eps);
    for (xi, &wi) in x.iter_mut().zip(w) {
        *xi = (*xi as f64 * r * (offset + wi as f64)) as f32;
    }
}

/// `1 / sqrt(mean(x²) + eps)` in f64.
pub fn inv_rms(x: &[f32], eps: f64) -> f64 {
    let ss: f64 = x.iter().map(|&v| v as f64 * v as f64).sum();
    1.0 / (ss / x.len() as f64 + eps).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rms_with_unit_weight_is_identity() {
        let x = [1.0f32, -1.0, 1.0, -1.0];
        let mut out = [0f32; 4];
        rms_norm(&x, &[1.0; 4], 0.0, 0.0, &mut out);
        assert_eq!(out, x);
        rms_norm(&x, &[0.0; 4], 0.0, 1.0, &mut out);
        assert_eq!(out, x);
    }
}
