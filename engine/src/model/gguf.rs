//! GGUF files: the model configuration from `{arch}.*` metadata and the
//! family spec, then the weights bound from the file's tensors.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::family::roles::{TensorNames, TensorRole};
use crate::family::spec::{FamilySpec, SlidingPattern};
use crate::formats::gguf::{GgufFile, GgufSource, Metadata};
use crate::formats::limits::{MAX_DIM, MAX_LAYERS};
use crate::formats::storage::Storage;
use crate::kernels::attention::AttnShape;
use crate::kernels::rope::Rope;
use crate::model::binding::{bounded, required, Binder, Plan, Tie};
use crate::model::types::{LayerConfig, Model};

impl Model {
    /// Loads a GGUF model with the built-in spec for its architecture.
    pub fn from_gguf(file: &GgufFile, storage: Arc<dyn Storage>) -> Result<Model> {
        let arch = file.architecture()?.to_string();
        let spec = FamilySpec::for_gguf_architecture(&arch).ok_or_else(|| {
            Error::unsupported(
                format!("architecture {arch:?}"),
                "no built-in family spec reads it",
            )
        })?;
        Model::from_gguf_with_spec(file, storage, spec)
    }

    /// Loads a GGUF model with `spec`: the plan from the file's `{arch}.*`
    /// metadata, then the weights bound by the spec's tensor names.
    pub fn from_gguf_with_spec(
        file: &GgufFile,
        storage: Arc<dyn Storage>,
        spec: FamilySpec,
    ) -> Result<Model> {
        let arch = file.architecture()?.to_string();
        let m = &file.metadata;
        let plan = gguf_plan(m, arch, &spec)?;
        let src = GgufSource { file, storage };
        let binder = Binder::new(&src);
        let names = spec.tensors.clone();
        let model = Model::bind(plan, &binder, &names, spec)?;
        check_vocab(m, &model, &names)?;
        Ok(model)
    }
}

/// The attention and MLP sizes of a GGUF model.
struct Shape {
    n_layers: usize,
    hidden: usize,
    ffn_hidden: usize,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

/// The plan the metadata of a GGUF file describes, under `spec`.
fn gguf_plan(m: &Metadata, arch: String, spec: &FamilySpec) -> Result<Plan> {
    let key = |k: &str| format!("{arch}.{k}");
    let sh = read_shape(m, &key)?;
    let norm_eps = m
        .f64(&key("attention.layer_norm_rms_epsilon"))?
        .ok_or_else(|| Error::config(key("attention.layer_norm_rms_epsilon"), "missing"))?;
    if !(0.0..1.0).contains(&norm_eps) {
        return Err(Error::config(
            key("attention.layer_norm_rms_epsilon"),
            format!("{norm_eps} is not in [0, 1)"),
        ));
    }
    let context_length = m.usize(&key("context_length"))?.unwrap_or(2048).max(1);
    let (theta, rotary_dim) = read_rope(m, &key, sh.head_dim)?;
    let attn_softcap = softcap(m, &arch, &spec.attn_softcap_key)?;
    let final_softcap = softcap(m, &arch, &spec.final_softcap_key)?;
    let window = m.usize(&key("attention.sliding_window"))?;
    let period = sliding_period(m, &arch, spec)?;

    let mut ropes = vec![Rope::plain(spec.rope_style, rotary_dim, theta)];
    let sliding_rope = match spec.sliding_rope_theta {
        Some(t) if t != theta => {
            ropes.push(Rope::plain(spec.rope_style, rotary_dim, t));
            1
        }
        _ => 0,
    };
    let layers = layer_configs(spec, &sh, window, period, attn_softcap, sliding_rope);
    Ok(Plan {
        architecture: arch,
        n_layers: sh.n_layers,
        hidden: sh.hidden,
        n_heads: sh.n_heads,
        n_kv_heads: sh.n_kv_heads,
        head_dim: sh.head_dim,
        ffn_hidden: sh.ffn_hidden,
        vocab: None,
        context_length,
        norm_eps,
        norm_weight_offset: spec.norm_weight_offset,
        activation: spec.activation,
        final_softcap,
        ropes,
        long_context: None,
        layers,
        tie: Tie::IfAbsent,
    })
}

/// A required, non-zero size no larger than `max`.
fn size(m: &Metadata, key: &str, max: usize) -> Result<usize> {
    bounded(required(m.usize(key)?, key)?, key, max)
}

fn read_shape(m: &Metadata, key: &dyn Fn(&str) -> String) -> Result<Shape> {
    let n_layers = size(m, &key("block_count"), MAX_LAYERS)?;
    let hidden = size(m, &key("embedding_length"), MAX_DIM)?;
    let ffn_hidden = size(m, &key("feed_forward_length"), MAX_DIM)?;
    let n_heads = size(m, &key("attention.head_count"), MAX_DIM)?;
    let n_kv_heads = match m.usize(&key("attention.head_count_kv"))? {
        Some(v) => required(Some(v), &key("attention.head_count_kv"))?,
        None => n_heads,
    };
    if n_heads % n_kv_heads != 0 {
        return Err(Error::config(
            key("attention.head_count_kv"),
            format!("{n_kv_heads} does not divide the {n_heads} query heads"),
        ));
    }
    let head_dim = match m.usize(&key("attention.key_length"))? {
        Some(v) => bounded(
            required(Some(v), &key("attention.key_length"))?,
            &key("attention.key_length"),
            MAX_DIM,
        )?,
        None => {
            if hidden % n_heads != 0 {
                return Err(Error::config(
                    key("attention.head_count"),
                    format!("{n_heads} heads do not divide the hidden size {hidden}"),
                ));
            }
            hidden / n_heads
        }
    };
    if let Some(vl) = m.usize(&key("attention.value_length"))? {
        if vl != head_dim {
            return Err(Error::unsupported(
                key("attention.value_length"),
                format!("value width {vl} differs from key width {head_dim}"),
            ));
        }
    }
    Ok(Shape {
        n_layers,
        hidden,
        ffn_hidden,
        n_heads,
        n_kv_heads,
        head_dim,
    })
}

/// The rope base and the rotated dimensions; GGUF rope scaling is refused.
fn read_rope(m: &Metadata, key: &dyn Fn(&str) -> String, head_dim: usize) -> Result<(f64, usize)> {
    let theta = m.f64(&key("rope.freq_base"))?.unwrap_or(10_000.0);
    if theta <= 1.0 {
        return Err(Error::config(
            key("rope.freq_base"),
            format!("{theta} must exceed 1"),
        ));
    }
    let rotary_dim = m.usize(&key("rope.dimension_count"))?.unwrap_or(head_dim);
    if rotary_dim > head_dim || rotary_dim % 2 != 0 {
        return Err(Error::config(
            key("rope.dimension_count"),
            format!("{rotary_dim} must be even and at most the head size {head_dim}"),
        ));
    }
    if let Some(t) = m.str(&key("rope.scaling.type"))? {
        if t != "none" {
            return Err(Error::unsupported(
                key("rope.scaling.type"),
                format!("rope scaling {t:?} from GGUF is not implemented yet"),
            ));
        }
    }
    Ok((theta, rotary_dim))
}

/// The soft-cap under the spec's metadata key (`{arch}` filled in), if any.
fn softcap(m: &Metadata, arch: &str, key: &Option<String>) -> Result<Option<f64>> {
    match key {
        Some(k) => {
            let k = k.replace("{arch}", arch);
            match m.f64(&k)? {
                Some(c) if c <= 0.0 => Err(Error::config(k, format!("{c} must be positive"))),
                v => Ok(v),
            }
        }
        None => Ok(None),
    }
}

/// The period of a periodic sliding pattern (the file's, else the spec's).
fn sliding_period(m: &Metadata, arch: &str, spec: &FamilySpec) -> Result<Option<usize>> {
    match &spec.sliding {
        SlidingPattern::Periodic { period, period_key } => {
            let from_file = match period_key {
                Some(k) => m.usize(&k.replace("{arch}", arch))?,
                None => None,
            };
            Ok(Some(required(
                Some(from_file.unwrap_or(*period)),
                "sliding window period",
            )?))
        }
        _ => Ok(None),
    }
}

/// Each layer's attention shape and rope: sliding layers take the window
/// and the sliding rope (index `sliding_rope` of the plan's ropes).
fn layer_configs(
    spec: &FamilySpec,
    sh: &Shape,
    window: Option<usize>,
    period: Option<usize>,
    attn_softcap: Option<f64>,
    sliding_rope: usize,
) -> Vec<LayerConfig> {
    let scale = 1.0 / (sh.head_dim as f64).sqrt();
    (0..sh.n_layers)
        .map(|i| {
            let sliding = match (&spec.sliding, window) {
                (SlidingPattern::None, _) | (_, None) => false,
                (SlidingPattern::All, Some(_)) => true,
                (SlidingPattern::Periodic { .. }, Some(_)) => (i + 1) % period.unwrap_or(1) != 0,
            };
            LayerConfig {
                attn: AttnShape {
                    n_heads: sh.n_heads,
                    n_kv_heads: sh.n_kv_heads,
                    head_dim: sh.head_dim,
                    scale,
                    softcap: attn_softcap,
                    window: if sliding { window } else { None },
                },
                rope: if sliding { sliding_rope } else { 0 },
            }
        })
        .collect()
}

/// One embedding row per token, as llama.cpp requires: a vocabulary that
/// disagrees would feed the model ids it has no row for, or sample ids the
/// tokenizer cannot decode.
fn check_vocab(m: &Metadata, model: &Model, names: &TensorNames) -> Result<()> {
    if let Some(tokens) = m.array_len("tokenizer.ggml.tokens")? {
        if tokens != model.config.vocab {
            return Err(Error::weights(
                names.get(TensorRole::Embed),
                format!(
                    "has {} rows but tokenizer.ggml.tokens has {} tokens; each token needs one row",
                    model.config.vocab, tokens
                ),
            ));
        }
    }
    Ok(())
}
