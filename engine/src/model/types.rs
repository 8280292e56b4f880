//! What a loaded model is: its normalized hyperparameters ([`ModelConfig`],
//! per layer [`LayerConfig`]) and its weights ([`Weights`], per layer
//! [`LayerWeights`]). The decoder reads only these.

use std::sync::Arc;

use crate::family::roles::TensorRole;
use crate::family::spec::FamilySpec;
use crate::formats::ggml_type::GgmlType;
use crate::formats::storage::Matrix;
use crate::kernels::activation::Activation;
use crate::kernels::attention::AttnShape;
use crate::kernels::rope::Rope;

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

impl Model {
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
