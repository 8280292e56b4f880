//! The per-position metrics of ADR-004 (docs/adr/004-numeric-contract.md):
//! max abs logit difference, relative L2, KL(reference ‖ engine), argmax
//! agreement, top-5 overlap and the reference's top-1/top-2 margin.

use serde::Serialize;

/// How one position's engine logits compare with the reference's.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PositionMetrics {
    pub position: usize,
    pub max_abs_diff: f64,
    pub rel_l2: f64,
    /// KL(reference ‖ engine) of the softmax distributions, in nats.
    pub kl: f64,
    pub argmax_engine: usize,
    pub argmax_reference: usize,
    pub argmax_equal: bool,
    /// How many of the reference's top 5 tokens are in the engine's top 5.
    pub top5_overlap: usize,
    /// Reference logit of its top-1 minus its top-2.
    pub margin: f64,
}

fn top_k(v: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    let k = k.min(v.len());
    if k == 0 {
        return vec![];
    }
    idx.select_nth_unstable_by(k - 1, |&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
    idx
}

fn log_softmax(v: &[f64]) -> Vec<f64> {
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = v.iter().map(|x| (x - max).exp()).sum::<f64>().ln() + max;
    v.iter().map(|x| x - lse).collect()
}

/// Compares one position. Both slices have the vocabulary's length.
pub fn compare_position(position: usize, engine: &[f64], reference: &[f64]) -> PositionMetrics {
    assert_eq!(engine.len(), reference.len());
    let mut max_abs = 0f64;
    let mut diff2 = 0f64;
    let mut ref2 = 0f64;
    for (e, r) in engine.iter().zip(reference) {
        let d = e - r;
        max_abs = max_abs.max(d.abs());
        diff2 += d * d;
        ref2 += r * r;
    }
    let lp = log_softmax(reference);
    let lq = log_softmax(engine);
    let kl = lp
        .iter()
        .zip(&lq)
        .map(|(p, q)| p.exp() * (p - q))
        .sum::<f64>()
        .max(0.0);
    let te = top_k(engine, 5);
    let tr = top_k(reference, 5);
    let margin = if tr.len() >= 2 {
        reference[tr[0]] - reference[tr[1]]
    } else {
        f64::INFINITY
    };
    PositionMetrics {
        position,
        max_abs_diff: if max_abs.is_nan() {
            f64::INFINITY
        } else {
            max_abs
        },
        rel_l2: if ref2 > 0.0 {
            (diff2 / ref2).sqrt()
        } else {
            diff2.sqrt()
        },
        kl,
        argmax_engine: te.first().copied().unwrap_or(0),
        argmax_reference: tr.first().copied().unwrap_or(0),
        argmax_equal: te.first() == tr.first(),
        top5_overlap: tr.iter().filter(|t| te.contains(t)).count(),
        margin,
    }
}

/// The default band of ADR-004.
pub const DEFAULT_MAX_ABS: f64 = 1e-4;

/// A named band: the bound on max abs logit difference; argmax must agree
/// wherever the reference's margin exceeds twice the bound.
#[derive(Clone, Debug, Serialize)]
pub struct Band {
    pub name: &'static str,
    pub max_abs_diff: f64,
}

pub const DEFAULT_BAND: Band = Band {
    name: "default",
    max_abs_diff: DEFAULT_MAX_ABS,
};

impl Band {
    /// Whether a position holds the band, and if not, why.
    pub fn check(&self, m: &PositionMetrics) -> Result<(), String> {
        // Written so that a NaN difference fails the band.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(m.max_abs_diff <= self.max_abs_diff) {
            return Err(format!(
                "position {}: max abs diff {:.3e} > {:.0e}",
                m.position, m.max_abs_diff, self.max_abs_diff
            ));
        }
        if !m.argmax_equal && m.margin > 2.0 * self.max_abs_diff {
            return Err(format!(
                "position {}: argmax {} ≠ reference {} with margin {:.3e}",
                m.position, m.argmax_engine, m.argmax_reference, m.margin
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_rows_have_zero_drift() {
        let r = vec![1.0, 3.0, 2.0, -1.0, 0.5, 0.25];
        let m = compare_position(0, &r, &r);
        assert_eq!(m.max_abs_diff, 0.0);
        assert_eq!(m.kl, 0.0);
        assert!(m.argmax_equal);
        assert_eq!(m.top5_overlap, 5);
        assert_eq!(m.margin, 1.0);
        assert!(DEFAULT_BAND.check(&m).is_ok());
    }

    #[test]
    fn band_rejects_drift_and_confident_argmax_flips() {
        let r = vec![1.0, 3.0, 2.0];
        let e = vec![1.0, 3.0002, 2.0];
        let m = compare_position(4, &e, &r);
        assert!((m.max_abs_diff - 2e-4).abs() < 1e-12);
        assert!(DEFAULT_BAND.check(&m).unwrap_err().contains("position 4"));
        let e = vec![1.0, 2.0, 3.0];
        let m = compare_position(0, &e, &r);
        assert!(!m.argmax_equal);
        assert!(m.kl > 0.0);
        assert!(m.rel_l2 > 0.0);
        // A flip where the reference is undecided is allowed when the drift is in band.
        let r = vec![1.0, 2.0, 2.0 + 1e-5];
        let e = vec![1.0, 2.0 + 1e-5, 2.0];
        let m = compare_position(0, &e, &r);
        assert!(!m.argmax_equal);
        assert!(DEFAULT_BAND.check(&m).is_ok());
    }
}
