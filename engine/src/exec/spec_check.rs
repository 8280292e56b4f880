//! What `atenia load` computes to check a family spec on a model file: the
//! model opened with the spec (which must read its architecture), one forward
//! pass, and the figures its report shows (the most likely next tokens, a
//! hash of the logits, the sliding layers, the weight types).

use std::path::Path;

use crate::error::{Error, Result};
use crate::exec::decoder::{Logits, Session};
use crate::family::spec::FamilySpec;
use crate::kernels::runtime::Runtime;
use crate::model::open::open_with_spec;
use crate::model::Model;
use crate::text::tokenizer::Tokenizer;

/// A model opened with a spec of one's own, and its tokenizer when it has one.
pub struct Checked {
    /// `"gguf"` or `"hf"`.
    pub format: &'static str,
    pub model: Model,
    pub tokenizer: Option<Tokenizer>,
    /// Why there is no tokenizer (the model is still checked, on token ids).
    pub tokenizer_error: Option<String>,
}

/// Opens the model at `path` with `spec`, given with the option `flag`: a
/// spec that does not read the model's architecture is refused (E-ARG, saying
/// what to add to it). The tokenizer is built now; a model without one opens.
pub fn open_checked(path: &Path, spec: FamilySpec, flag: &str) -> Result<Checked> {
    let opened = open_with_spec(path, Some(spec), flag)?;
    let model = opened.model()?;
    let (tokenizer, tokenizer_error) = match opened.tokenizer(model.config.vocab) {
        Ok(t) => (Some(t), None),
        Err(Error::Tokenizer(e)) => (None, Some(e)),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Checked {
        format: opened.format(),
        model,
        tokenizer,
        tokenizer_error,
    })
}

/// One forward pass over `ids`: the last position's logits and how long it
/// took, in milliseconds. NaN or infinite logits mean the spec does not fit
/// the model (E-RUNTIME).
pub fn last_logits(model: &Model, rt: &Runtime, ids: &[u32]) -> Result<(Vec<f32>, f64)> {
    let mut session = Session::new(model, rt, ids.len())?;
    let mut logits = Vec::new();
    let t0 = std::time::Instant::now();
    session.forward(ids, Logits::Last, &mut logits)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if logits.iter().any(|x| !x.is_finite()) {
        return Err(Error::Runtime(
            "the forward pass gave NaN or infinite logits; the spec probably does not fit this model".into(),
        ));
    }
    Ok((logits, ms))
}

/// The `k` largest logits, largest first (ties: the smaller id first).
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    idx.sort_by(|&a, &b| {
        logits[b as usize]
            .total_cmp(&logits[a as usize])
            .then(a.cmp(&b))
    });
    idx.into_iter()
        .take(k)
        .map(|i| (i, logits[i as usize]))
        .collect()
}

/// The layers with a sliding window.
pub fn sliding_layers(model: &Model) -> Vec<usize> {
    model
        .config
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.attn.window.is_some())
        .map(|(i, _)| i)
        .collect()
}

/// The weight matrices' types, with how many of each (`Q8_0 x12`).
pub fn type_counts(model: &Model) -> Vec<String> {
    model
        .matrix_types()
        .iter()
        .map(|(t, n)| format!("{t} x{n}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn golden(rel: &str) -> PathBuf {
        atenia_testkit::golden().join(rel)
    }

    #[test]
    fn top_k_orders_by_logit_then_id() {
        let l = [0.5, 2.0, -1.0, 2.0, f32::NEG_INFINITY];
        assert_eq!(top_k(&l, 3), vec![(1, 2.0), (3, 2.0), (0, 0.5)]);
        assert_eq!(top_k(&l, 9).len(), 5);
        assert!(top_k(&[], 3).is_empty());
    }

    #[test]
    fn a_spec_that_reads_another_architecture_is_refused_with_the_fix() {
        let file = golden("gguf/llama/llama-Q8_0.gguf");
        let qwen = FamilySpec::for_gguf_architecture("qwen2").unwrap();
        let e = open_checked(&file, qwen, "SPEC").map(|_| ()).unwrap_err();
        assert_eq!(e.code(), "E-ARG");
        assert!(
            e.to_string()
                .contains("add \"llama\" to its gguf_architectures"),
            "{e}"
        );
    }

    #[test]
    fn the_right_spec_opens_runs_and_names_the_weights() {
        let file = golden("gguf/llama/llama-Q8_0.gguf");
        let llama = FamilySpec::for_gguf_architecture("llama").unwrap();
        let c = open_checked(&file, llama, "SPEC").unwrap();
        assert_eq!(c.format, "gguf");
        assert!(c.tokenizer.is_some(), "{:?}", c.tokenizer_error);
        assert!(type_counts(&c.model)
            .iter()
            .any(|t| t.starts_with("Q8_0 x")));
        let rt = Runtime::new(1, None).unwrap();
        let (logits, _) = last_logits(&c.model, &rt, &[1, 2, 3]).unwrap();
        assert_eq!(logits.len(), c.model.config.vocab);
        assert_eq!(
            top_k(&logits, 1)[0].0,
            crate::exec::sampler::argmax(&logits)
        );
    }
}
