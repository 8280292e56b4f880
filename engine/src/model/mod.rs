//! The model plan: normalized hyperparameters (per layer) and the weights,
//! built from a file and a family spec. The decoder reads only this.
//!
//! Weights come from a [`TensorSource`] (a GGUF file, or the safetensors of a
//! Hugging Face checkpoint, see [`crate::model::hf`]); each format turns its own
//! configuration into a [`Plan`] and the binding of weights is shared.

pub mod hf;
pub mod open;

use std::cell::RefCell;
use std::collections::BTreeSet;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::family::roles::{TensorNames, TensorRole};
use crate::family::spec::{FamilySpec, SlidingPattern};
use crate::formats::ggml_type::GgmlType;
use crate::formats::gguf::GgufFile;
use crate::formats::gguf::GgufSource;
use crate::formats::storage::{Matrix, Storage, TensorRef, TensorSource};
use crate::kernels::activation::Activation;
use crate::kernels::attention::AttnShape;
use crate::kernels::rope::Rope;

use crate::formats::limits::{MAX_DIM, MAX_LAYERS, MAX_VOCAB};

/// One layer's execution plan.
#[derive(Clone, Debug)]
pub struct LayerConfig {
    pub attn: AttnShape,
    /// Index into [`ModelConfig::ropes`].
    pub rope: usize,
}

/// Normalized hyperparameters.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub family: String,
    pub architecture: String,
    pub n_layers: usize,
    pub hidden: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn_hidden: usize,
    pub vocab: usize,
    pub context_length: usize,
    pub norm_eps: f64,
    pub norm_weight_offset: f64,
    pub activation: Activation,
    pub embed_scale: Option<f64>,
    pub final_softcap: Option<f64>,
    pub ropes: Vec<Rope>,
    /// Rotations that replace `ropes` in a session holding more positions
    /// than `above` (LongRoPE's long factors).
    pub long_context: Option<LongContext>,
    pub layers: Vec<LayerConfig>,
}

/// Alternative rotations for long contexts.
#[derive(Clone, Debug)]
pub struct LongContext {
    /// Used when the session's capacity exceeds this many positions.
    pub above: usize,
    /// Same length and meaning as [`ModelConfig::ropes`].
    pub ropes: Vec<Rope>,
}

impl ModelConfig {
    /// The rotations a session of `capacity` positions uses, indexed by [`LayerConfig::rope`].
    pub fn ropes_for(&self, capacity: usize) -> &[Rope] {
        match &self.long_context {
            Some(l) if capacity > l.above => &l.ropes,
            _ => &self.ropes,
        }
    }

    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }
}

/// One layer's weights.
pub struct LayerWeights {
    pub attn_norm: Vec<f32>,
    pub q: Matrix,
    pub k: Matrix,
    pub v: Matrix,
    pub o: Matrix,
    pub q_bias: Option<Vec<f32>>,
    pub k_bias: Option<Vec<f32>>,
    pub v_bias: Option<Vec<f32>>,
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub post_attn_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub gate: Matrix,
    pub up: Matrix,
    pub down: Matrix,
    pub post_ffn_norm: Option<Vec<f32>>,
}

impl LayerWeights {
    /// The matrix playing `role` (`None` for a role that is no matrix of a
    /// layer: norms, biases, and the fused `qkv`, bound as `q`, `k` and `v`).
    pub fn matrix(&self, role: TensorRole) -> Option<&Matrix> {
        match role {
            TensorRole::Q => Some(&self.q),
            TensorRole::K => Some(&self.k),
            TensorRole::V => Some(&self.v),
            TensorRole::O => Some(&self.o),
            TensorRole::Gate => Some(&self.gate),
            TensorRole::Up => Some(&self.up),
            TensorRole::Down => Some(&self.down),
            _ => None,
        }
    }
}

pub struct Weights {
    pub embed: Matrix,
    /// The output projection (the embedding matrix itself when tied).
    pub output: Matrix,
    pub tied: bool,
    pub final_norm: Vec<f32>,
    pub layers: Vec<LayerWeights>,
}

/// A loaded model: its plan and its weights.
pub struct Model {
    pub config: ModelConfig,
    pub weights: Weights,
    pub spec: FamilySpec,
    /// The memory budget and telemetry its sessions share (see [`crate::memory::placement`]).
    pub memory: Arc<crate::memory::control::MemoryControl>,
}

/// Reads weights by name out of a [`TensorSource`], remembering which it used.
pub(crate) struct Binder<'a> {
    src: &'a dyn TensorSource,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> Binder<'a> {
    pub(crate) fn new(src: &'a dyn TensorSource) -> Binder<'a> {
        Binder {
            src,
            used: RefCell::new(BTreeSet::new()),
        }
    }

    fn get(&self, name: &str) -> Result<Option<TensorRef>> {
        let t = self.src.tensor(name)?;
        if t.is_some() {
            self.used.borrow_mut().insert(name.to_string());
        }
        Ok(t)
    }

    fn require(&self, name: &str) -> Result<TensorRef> {
        self.get(name)?
            .ok_or_else(|| Error::weights(name, "missing from the file"))
    }

    fn has(&self, name: &str) -> Result<bool> {
        Ok(self.src.tensor(name)?.is_some())
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        let t = self.require(name)?;
        if t.shape != [rows, cols] {
            return Err(Error::weights(
                name,
                format!("shape {:?}, expected [{rows}, {cols}]", t.shape),
            ));
        }
        Matrix::new(name, t.dtype, rows, cols, t.data)
    }

    /// A matrix whose row count the file decides (checked by the caller).
    fn matrix_any_rows(&self, name: &str, cols: usize) -> Result<Matrix> {
        let t = self.require(name)?;
        if t.shape.len() != 2 {
            return Err(Error::weights(
                name,
                format!("shape {:?} is not 2-D", t.shape),
            ));
        }
        self.matrix(name, t.shape[0], cols)
    }

    /// A 1-D tensor widened exactly to f32.
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let t = self.require(name)?;
        if t.elements() != len || t.shape.iter().filter(|&&d| d != 1).count() > 1 {
            return Err(Error::weights(
                name,
                format!("shape {:?}, expected {len} elements", t.shape),
            ));
        }
        let mut v = vec![0f32; len];
        crate::formats::dequant::dequantize_row(t.dtype, t.data.as_slice(), &mut v)
            .map_err(|e| Error::weights(name, e.to_string()))?;
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::weights(name, "holds a NaN or infinite value"));
        }
        Ok(v)
    }

    fn opt_vector(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>> {
        if self.has(name)? {
            self.vector(name, len).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Names of the source's tensors that no weight was read from.
    pub(crate) fn unused(&self) -> Vec<String> {
        let used = self.used.borrow();
        self.src
            .names()
            .into_iter()
            .filter(|n| !used.contains(n))
            .collect()
    }
}

/// Whether the output projection is the embedding matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tie {
    /// Tied exactly when the file has no output matrix (GGUF).
    IfAbsent,
    /// Tied whatever the file holds (config.json `tie_word_embeddings: true`).
    Tied,
    /// The output matrix is required.
    Untied,
}

/// Normalized hyperparameters read from a format's configuration: everything
/// [`ModelConfig`] holds except what the weights decide (the vocabulary).
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub architecture: String,
    pub n_layers: usize,
    pub hidden: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn_hidden: usize,
    /// The vocabulary the configuration declares, checked against the embeddings.
    pub vocab: Option<usize>,
    pub context_length: usize,
    pub norm_eps: f64,
    pub norm_weight_offset: f64,
    pub activation: Activation,
    pub final_softcap: Option<f64>,
    pub ropes: Vec<Rope>,
    pub long_context: Option<LongContext>,
    pub layers: Vec<LayerConfig>,
    pub tie: Tie,
}

pub(crate) fn required(value: Option<usize>, key: &str) -> Result<usize> {
    let v = value.ok_or_else(|| Error::config(key, "missing"))?;
    if v == 0 {
        return Err(Error::config(key, "is zero"));
    }
    Ok(v)
}

pub(crate) fn bounded(v: usize, key: &str, max: usize) -> Result<usize> {
    if v > max {
        return Err(Error::config(
            key,
            format!("{v} exceeds the limit of {max}"),
        ));
    }
    Ok(v)
}

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

    /// Binds the weights a plan needs from a tensor source.
    pub(crate) fn bind(
        plan: Plan,
        t: &Binder<'_>,
        names: &TensorNames,
        spec: FamilySpec,
    ) -> Result<Model> {
        let Plan {
            architecture,
            n_layers,
            hidden,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_hidden,
            vocab: declared_vocab,
            context_length,
            norm_eps,
            norm_weight_offset,
            activation,
            final_softcap,
            ropes,
            long_context,
            layers,
            tie,
        } = plan;
        use TensorRole as R;
        let embed_name = names.get(R::Embed);
        let embed = t.matrix_any_rows(embed_name, hidden)?;
        let vocab = bounded(embed.rows, embed_name, MAX_VOCAB)?;
        if vocab == 0 {
            return Err(Error::weights(embed_name, "has no rows"));
        }
        if let Some(v) = declared_vocab {
            if v != vocab {
                return Err(Error::weights(
                    embed_name,
                    format!("has {vocab} rows but the configuration declares a vocabulary of {v}"),
                ));
            }
        }
        let untied = match tie {
            Tie::IfAbsent => t.has(names.get(R::Output))?,
            Tie::Tied => false,
            Tie::Untied => true,
        };
        let (output, tied) = if untied {
            (t.matrix(names.get(R::Output), vocab, hidden)?, false)
        } else {
            (embed.clone(), true)
        };
        let q_dim = n_heads * head_dim;
        let kv_dim = n_kv_heads * head_dim;
        let mut layers_w = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let n = |r: TensorRole| names.layer(r, i);
            let (q, k, v) = if !t.has(&n(R::Q))? && t.has(&n(R::Qkv))? {
                let qkv = n(R::Qkv);
                let fused = t.matrix(&qkv, q_dim + 2 * kv_dim, hidden)?;
                (
                    fused.slice_rows(format!("{qkv}[q]"), 0, q_dim)?,
                    fused.slice_rows(format!("{qkv}[k]"), q_dim, q_dim + kv_dim)?,
                    fused.slice_rows(format!("{qkv}[v]"), q_dim + kv_dim, q_dim + 2 * kv_dim)?,
                )
            } else {
                (
                    t.matrix(&n(R::Q), q_dim, hidden)?,
                    t.matrix(&n(R::K), kv_dim, hidden)?,
                    t.matrix(&n(R::V), kv_dim, hidden)?,
                )
            };
            let (gate, up) = if spec.fused_gate_up {
                let gate_up = n(R::Up);
                let fused = t.matrix(&gate_up, 2 * ffn_hidden, hidden)?;
                (
                    fused.slice_rows(format!("{gate_up}[gate]"), 0, ffn_hidden)?,
                    fused.slice_rows(format!("{gate_up}[up]"), ffn_hidden, 2 * ffn_hidden)?,
                )
            } else {
                (
                    t.matrix(&n(R::Gate), ffn_hidden, hidden)?,
                    t.matrix(&n(R::Up), ffn_hidden, hidden)?,
                )
            };
            let q_norm = t.opt_vector(&n(R::QNorm), head_dim)?;
            let k_norm = t.opt_vector(&n(R::KNorm), head_dim)?;
            if spec.qk_norm && (q_norm.is_none() || k_norm.is_none()) {
                return Err(Error::weights(
                    n(R::QNorm),
                    format!("the {} family needs per-head q and k norms", spec.name),
                ));
            }
            let (post_attn_norm, post_ffn_norm) = if spec.post_norms {
                (
                    Some(t.vector(&n(R::PostAttnNorm), hidden)?),
                    Some(t.vector(&n(R::PostFfnNorm), hidden)?),
                )
            } else {
                (None, None)
            };
            layers_w.push(LayerWeights {
                attn_norm: t.vector(&n(R::AttnNorm), hidden)?,
                q,
                k,
                v,
                o: t.matrix(&n(R::O), hidden, q_dim)?,
                q_bias: t.opt_vector(&n(R::QBias), q_dim)?,
                k_bias: t.opt_vector(&n(R::KBias), kv_dim)?,
                v_bias: t.opt_vector(&n(R::VBias), kv_dim)?,
                q_norm,
                k_norm,
                post_attn_norm,
                ffn_norm: t.vector(&n(R::FfnNorm), hidden)?,
                gate,
                up,
                down: t.matrix(&n(R::Down), hidden, ffn_hidden)?,
                post_ffn_norm,
            });
        }
        let final_norm = t.vector(names.get(R::FinalNorm), hidden)?;

        let config = ModelConfig {
            family: spec.name.clone(),
            architecture,
            n_layers,
            hidden,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_hidden,
            vocab,
            context_length,
            norm_eps,
            norm_weight_offset,
            activation,
            embed_scale: spec.embed_scale_sqrt_hidden.then(|| (hidden as f64).sqrt()),
            final_softcap,
            ropes,
            long_context,
            layers,
        };
        Ok(Model {
            config,
            weights: Weights {
                embed,
                output,
                tied,
                final_norm,
                layers: layers_w,
            },
            spec,
            memory: Arc::default(),
        })
    }

    /// Counts of weight matrices by stored type.
    pub fn matrix_types(&self) -> Vec<(GgmlType, usize)> {
        let mut counts: Vec<(GgmlType, usize)> = Vec::new();
        let mut add = |t: GgmlType| match counts.iter_mut().find(|(x, _)| *x == t) {
            Some((_, c)) => *c += 1,
            None => counts.push((t, 1)),
        };
        add(self.weights.embed.dtype);
        for l in &self.weights.layers {
            for m in [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down] {
                add(m.dtype);
            }
        }
        counts
    }
}
