//! GGUF files: the model configuration from `{arch}.*` metadata and the
//! family spec, then the weights bound from the file's tensors.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::family::roles::TensorRole;
use crate::family::spec::{FamilySpec, SlidingPattern};
use crate::formats::gguf::{GgufFile, GgufSource};
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

    pub fn from_gguf_with_spec(
        file: &GgufFile,
        storage: Arc<dyn Storage>,
        spec: FamilySpec,
    ) -> Result<Model> {
        let arch = file.architecture()?.to_string();
        let m = &file.metadata;
        let key = |k: &str| format!("{arch}.{k}");
        let n_layers = bounded(
            required(m.usize(&key("block_count"))?, &key("block_count"))?,
            &key("block_count"),
            MAX_LAYERS,
        )?;
        let hidden = bounded(
            required(m.usize(&key("embedding_length"))?, &key("embedding_length"))?,
            &key("embedding_length"),
            MAX_DIM,
        )?;
        let ffn_hidden = bounded(
            required(
                m.usize(&key("feed_forward_length"))?,
                &key("feed_forward_length"),
            )?,
            &key("feed_forward_length"),
            MAX_DIM,
        )?;
        let n_heads = bounded(
            required(
                m.usize(&key("attention.head_count"))?,
                &key("attention.head_count"),
            )?,
            &key("attention.head_count"),
            MAX_DIM,
        )?;
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
        let softcap = |k: &Option<String>| -> Result<Option<f64>> {
            match k {
                Some(k) => {
                    let k = k.replace("{arch}", &arch);
                    let v = m.f64(&k)?;
                    match v {
                        Some(c) if c <= 0.0 => {
                            Err(Error::config(k, format!("{c} must be positive")))
                        }
                        v => Ok(v),
                    }
                }
                None => Ok(None),
            }
        };
        let attn_softcap = softcap(&spec.attn_softcap_key)?;
        let final_softcap = softcap(&spec.final_softcap_key)?;
        let window = m.usize(&key("attention.sliding_window"))?;
        let period = match &spec.sliding {
            SlidingPattern::Periodic { period, period_key } => {
                let from_file = match period_key {
                    Some(k) => m.usize(&k.replace("{arch}", &arch))?,
                    None => None,
                };
                Some(required(
                    Some(from_file.unwrap_or(*period)),
                    "sliding window period",
                )?)
            }
            _ => None,
        };

        let mut ropes = vec![Rope::plain(spec.rope_style, rotary_dim, theta)];
        let sliding_rope = match spec.sliding_rope_theta {
            Some(t) if t != theta => {
                ropes.push(Rope::plain(spec.rope_style, rotary_dim, t));
                1
            }
            _ => 0,
        };
        let scale = 1.0 / (head_dim as f64).sqrt();
        let layers = (0..n_layers)
            .map(|i| {
                let sliding = match (&spec.sliding, window) {
                    (SlidingPattern::None, _) | (_, None) => false,
                    (SlidingPattern::All, Some(_)) => true,
                    (SlidingPattern::Periodic { .. }, Some(_)) => {
                        (i + 1) % period.unwrap_or(1) != 0
                    }
                };
                LayerConfig {
                    attn: AttnShape {
                        n_heads,
                        n_kv_heads,
                        head_dim,
                        scale,
                        softcap: attn_softcap,
                        window: if sliding { window } else { None },
                    },
                    rope: if sliding { sliding_rope } else { 0 },
                }
            })
            .collect();

        let plan = Plan {
            architecture: arch,
            n_layers,
            hidden,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_hidden,
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
        };
        let src = GgufSource { file, storage };
        let binder = Binder::new(&src);
        let names = spec.tensors.clone();
        let model = Model::bind(plan, &binder, &names, spec)?;
        // One embedding row per token, as llama.cpp requires: a vocabulary
        // that disagrees would feed the model ids it has no row for, or
        // sample ids the tokenizer cannot decode.
        if let Some(tokens) = m.array("tokenizer.ggml.tokens")? {
            if tokens.len() != model.config.vocab {
                return Err(Error::weights(
                    names.get(TensorRole::Embed),
                    format!(
                        "has {} rows but tokenizer.ggml.tokens has {} tokens; each token needs one row",
                        model.config.vocab,
                        tokens.len()
                    ),
                ));
            }
        }
        Ok(model)
    }
}
