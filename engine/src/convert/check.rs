//! The converter's own check: the written checkpoint must load back into the
//! plan the GGUF file gave.

use std::path::Path;

use crate::error::{Error, Result};
use crate::family::spec::FamilySpec;
use crate::model::types::Model;

/// Loads the checkpoint in `out` with `spec` and fails when its plan differs
/// from `model`'s (the rope pairing aside when the rows were `restyled`).
pub(crate) fn loads_back(
    out: &Path,
    spec: &FamilySpec,
    model: &Model,
    restyled: bool,
) -> Result<()> {
    let back = crate::model::hf::load_dir_with_spec(
        out,
        &crate::model::hf::read_config(out)?,
        spec.clone(),
    )?;
    let diffs = plan_differences(model, &back, restyled);
    if !diffs.is_empty() {
        return Err(Error::Runtime(format!(
            "the converted checkpoint loads into a different plan ({}); this is a bug in atenia convert",
            diffs.join("; ")
        )));
    }
    Ok(())
}

/// Where two models' plans differ (the rope pairing aside when `restyled`).
pub fn plan_differences(a: &Model, b: &Model, restyled: bool) -> Vec<String> {
    let (x, y) = (&a.config, &b.config);
    let mut d = vec![];
    macro_rules! same {
        ($($f:ident),*) => {$(
            if x.$f != y.$f {
                d.push(format!("{}: {:?} vs {:?}", stringify!($f), x.$f, y.$f));
            }
        )*};
    }
    same!(
        n_layers,
        hidden,
        n_heads,
        n_kv_heads,
        head_dim,
        ffn_hidden,
        vocab,
        context_length,
        norm_eps,
        activation,
        embed_scale,
        final_softcap
    );
    if a.weights.tied != b.weights.tied {
        d.push(format!("tied: {} vs {}", a.weights.tied, b.weights.tied));
    }
    let ropes = |r: &[crate::kernels::rope::Rope]| -> Vec<(usize, Vec<f64>, f64)> {
        r.iter()
            .map(|r| (r.rotary_dim, r.inv_freq.clone(), r.attention_factor))
            .collect()
    };
    if ropes(&x.ropes) != ropes(&y.ropes) {
        d.push("rotary frequencies".into());
    }
    if !restyled
        && x.ropes
            .iter()
            .map(|r| r.style)
            .ne(y.ropes.iter().map(|r| r.style))
    {
        d.push("rope style".into());
    }
    if x.long_context.is_some() != y.long_context.is_some() {
        d.push("long-context rotations".into());
    }
    for (i, (l, m)) in x.layers.iter().zip(&y.layers).enumerate() {
        if l.rope != m.rope
            || l.attn.window != m.attn.window
            || l.attn.scale != m.attn.scale
            || l.attn.softcap != m.attn.softcap
            || l.attn.n_heads != m.attn.n_heads
            || l.attn.n_kv_heads != m.attn.n_kv_heads
        {
            d.push(format!("layer {i}: {:?} vs {:?}", l, m));
        }
    }
    d
}
