//! Runs the engine the two ways the gate checks: one prefill pass over the
//! whole sequence, or the first token then token-by-token decode through the
//! KV cache.

use atenia_engine::exec::decoder::{LayerObserver, Logits, Session};
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::Model;
use atenia_engine::Result;

/// How the engine consumes the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    Prefill,
    Decode,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::Prefill => "prefill",
            Path::Decode => "decode",
        }
    }
}

/// Logits of every position (`ids.len() × vocab`, row-major).
pub fn logits(model: &Model, rt: &Runtime, ids: &[u32], path: Path) -> Result<Vec<f32>> {
    logits_observed(model, rt, ids, path, None)
}

/// As [`logits`], reporting the residual stream after each layer. For the
/// decode path the observer is called once per token (rows of one position).
pub fn logits_observed(
    model: &Model,
    rt: &Runtime,
    ids: &[u32],
    path: Path,
    mut observer: Option<&mut LayerObserver<'_>>,
) -> Result<Vec<f32>> {
    let mut s = Session::new(model, rt, ids.len().max(1))?;
    match path {
        Path::Prefill => {
            let mut out = Vec::new();
            s.forward_observed(ids, Logits::All, &mut out, observer)?;
            Ok(out)
        }
        Path::Decode => {
            let vocab = model.config.vocab;
            let mut all = Vec::with_capacity(ids.len() * vocab);
            let mut out = Vec::new();
            for &t in ids {
                s.forward_observed(&[t], Logits::Last, &mut out, observer.as_deref_mut())?;
                all.extend_from_slice(&out);
            }
            Ok(all)
        }
    }
}
