//! Binding weights: a format's configuration becomes a [`Plan`], and the
//! [`Binder`] reads each weight the plan needs, by role, out of a
//! [`TensorSource`], checking its shape. Shared by the GGUF and the Hugging
//! Face loaders.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::family::roles::{TensorNames, TensorRole};
use crate::family::spec::FamilySpec;
use crate::formats::limits::MAX_VOCAB;
use crate::formats::storage::{Matrix, TensorRef, TensorSource};
use crate::kernels::activation::Activation;
use crate::kernels::rope::Rope;
use crate::model::types::{LayerConfig, LayerWeights, LongContext, Model, ModelConfig, Weights};

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
    /// Binds the weights a plan needs from a tensor source.
    pub(crate) fn bind(
        plan: Plan,
        t: &Binder<'_>,
        names: &TensorNames,
        spec: FamilySpec,
    ) -> Result<Model> {
        let (embed, output, tied) = bind_embeddings(&plan, t, names)?;
        let vocab = embed.rows;
        let layers_w = (0..plan.n_layers)
            .map(|i| bind_layer(&plan, t, names, &spec, i))
            .collect::<Result<Vec<_>>>()?;
        let final_norm = t.vector(names.get(TensorRole::FinalNorm), plan.hidden)?;

        let Plan {
            architecture,
            n_layers,
            hidden,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_hidden,
            vocab: _,
            context_length,
            norm_eps,
            norm_weight_offset,
            activation,
            final_softcap,
            ropes,
            long_context,
            layers,
            tie: _,
        } = plan;
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
}

/// The embeddings (whose rows decide the vocabulary) and the output
/// projection, or the embeddings again when tied: `(embed, output, tied)`.
fn bind_embeddings(
    plan: &Plan,
    t: &Binder<'_>,
    names: &TensorNames,
) -> Result<(Matrix, Matrix, bool)> {
    let hidden = plan.hidden;
    let embed_name = names.get(TensorRole::Embed);
    let embed = t.matrix_any_rows(embed_name, hidden)?;
    let vocab = bounded(embed.rows, embed_name, MAX_VOCAB)?;
    if vocab == 0 {
        return Err(Error::weights(embed_name, "has no rows"));
    }
    if let Some(v) = plan.vocab {
        if v != vocab {
            return Err(Error::weights(
                embed_name,
                format!("has {vocab} rows but the configuration declares a vocabulary of {v}"),
            ));
        }
    }
    let output_name = names.get(TensorRole::Output);
    let untied = match plan.tie {
        Tie::IfAbsent => t.has(output_name)?,
        Tie::Tied => false,
        Tie::Untied => true,
    };
    if untied {
        let output = t.matrix(output_name, vocab, hidden)?;
        Ok((embed, output, false))
    } else {
        let output = embed.clone();
        Ok((embed, output, true))
    }
}

/// Layer `i`'s weights, each read by its role and checked for its shape.
fn bind_layer(
    plan: &Plan,
    t: &Binder<'_>,
    names: &TensorNames,
    spec: &FamilySpec,
    i: usize,
) -> Result<LayerWeights> {
    use TensorRole as R;
    let (hidden, head_dim, ffn) = (plan.hidden, plan.head_dim, plan.ffn_hidden);
    let q_dim = plan.n_heads * head_dim;
    let kv_dim = plan.n_kv_heads * head_dim;
    let n = |r: TensorRole| names.layer(r, i);
    let (q, k, v) = if !t.has(&n(R::Q))? && t.has(&n(R::Qkv))? {
        // q|k|v rows of one matrix.
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
        // gate|up rows of one matrix, under the `up` role.
        let gate_up = n(R::Up);
        let fused = t.matrix(&gate_up, 2 * ffn, hidden)?;
        (
            fused.slice_rows(format!("{gate_up}[gate]"), 0, ffn)?,
            fused.slice_rows(format!("{gate_up}[up]"), ffn, 2 * ffn)?,
        )
    } else {
        (
            t.matrix(&n(R::Gate), ffn, hidden)?,
            t.matrix(&n(R::Up), ffn, hidden)?,
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
    Ok(LayerWeights {
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
        down: t.matrix(&n(R::Down), hidden, ffn)?,
        post_ffn_norm,
    })
}
