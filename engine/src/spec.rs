//! Family adapter specs: everything that differs between model families is
//! data here, and the decoder executes it without knowing which family it runs.

use std::collections::BTreeMap;

use crate::kernels::activation::Activation;
use crate::kernels::rope::RopeStyle;

/// Which layers use sliding-window attention.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SlidingPattern {
    /// No layer slides.
    None,
    /// Every layer slides (when the file gives a window).
    All,
    /// Layer `i` is global when `(i + 1) % period == 0`, sliding otherwise
    /// (Gemma 2: period 2; Gemma 3: period 6). `period_key` (with `{arch}`)
    /// overrides the period when the file has it.
    Periodic {
        period: usize,
        #[serde(default)]
        period_key: Option<String>,
    },
}

/// Tensor names in a model file (GGUF or a Hugging Face checkpoint); `{i}` is the layer index.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TensorNames {
    pub embed: String,
    pub output: String,
    pub final_norm: String,
    pub attn_norm: String,
    pub q: String,
    pub k: String,
    pub v: String,
    /// A fused q|k|v matrix, used when `q` is absent.
    pub qkv: Option<String>,
    pub o: String,
    pub q_bias: String,
    pub k_bias: String,
    pub v_bias: String,
    pub q_norm: String,
    pub k_norm: String,
    pub post_attn_norm: String,
    pub ffn_norm: String,
    pub gate: String,
    pub up: String,
    pub down: String,
    pub post_ffn_norm: String,
}

impl TensorNames {
    /// The names llama.cpp's converter writes.
    pub fn gguf() -> TensorNames {
        let b = |s: &str| format!("blk.{{i}}.{s}.weight");
        TensorNames {
            embed: "token_embd.weight".into(),
            output: "output.weight".into(),
            final_norm: "output_norm.weight".into(),
            attn_norm: b("attn_norm"),
            q: b("attn_q"),
            k: b("attn_k"),
            v: b("attn_v"),
            qkv: Some(b("attn_qkv")),
            o: b("attn_output"),
            q_bias: "blk.{i}.attn_q.bias".into(),
            k_bias: "blk.{i}.attn_k.bias".into(),
            v_bias: "blk.{i}.attn_v.bias".into(),
            q_norm: b("attn_q_norm"),
            k_norm: b("attn_k_norm"),
            post_attn_norm: b("post_attention_norm"),
            ffn_norm: b("ffn_norm"),
            gate: b("ffn_gate"),
            up: b("ffn_up"),
            down: b("ffn_down"),
            post_ffn_norm: b("post_ffw_norm"),
        }
    }

    /// The names of a Hugging Face `*ForCausalLM` checkpoint (Llama layout:
    /// the MLP's pre-norm is `post_attention_layernorm`).
    pub fn hf() -> TensorNames {
        let l = |s: &str| format!("model.layers.{{i}}.{s}");
        TensorNames {
            embed: "model.embed_tokens.weight".into(),
            output: "lm_head.weight".into(),
            final_norm: "model.norm.weight".into(),
            attn_norm: l("input_layernorm.weight"),
            q: l("self_attn.q_proj.weight"),
            k: l("self_attn.k_proj.weight"),
            v: l("self_attn.v_proj.weight"),
            qkv: Some(l("self_attn.qkv_proj.weight")),
            o: l("self_attn.o_proj.weight"),
            q_bias: l("self_attn.q_proj.bias"),
            k_bias: l("self_attn.k_proj.bias"),
            v_bias: l("self_attn.v_proj.bias"),
            q_norm: l("self_attn.q_norm.weight"),
            k_norm: l("self_attn.k_norm.weight"),
            post_attn_norm: l("post_attention_norm.weight"),
            ffn_norm: l("post_attention_layernorm.weight"),
            gate: l("mlp.gate_proj.weight"),
            up: l("mlp.up_proj.weight"),
            down: l("mlp.down_proj.weight"),
            post_ffn_norm: l("post_feedforward_layernorm.weight"),
        }
    }

    /// The Hugging Face names of Gemma 2 and 3, whose four norms per layer are
    /// `input_layernorm`, `post_attention_layernorm` (after attention),
    /// `pre_feedforward_layernorm` and `post_feedforward_layernorm`.
    pub fn hf_sandwich() -> TensorNames {
        let l = |s: &str| format!("model.layers.{{i}}.{s}");
        TensorNames {
            post_attn_norm: l("post_attention_layernorm.weight"),
            ffn_norm: l("pre_feedforward_layernorm.weight"),
            ..TensorNames::hf()
        }
    }
}

/// How config.json decides which layers use sliding-window attention.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HfSliding {
    /// No layer slides; a `sliding_window` key is ignored (Llama, Gemma).
    None,
    /// Every layer slides when `sliding_window` is set (Mistral, Phi-3).
    All,
    /// Per layer, from the `layer_types` list (`sliding_attention` /
    /// `full_attention`); when config.json has none, from `default`.
    /// Layers typed sliding slide only when `sliding_window` is set and, if
    /// `enable_key` is given, that boolean is true (Qwen2: `use_sliding_window`).
    LayerTypes {
        default: HfLayerTypes,
        #[serde(default)]
        enable_key: Option<String>,
    },
}

/// The layer types a config class derives when config.json lists none.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HfLayerTypes {
    /// Layer `i` is full attention when `(i + 1) % period == 0`, sliding
    /// otherwise; the first of `period_keys` present in config.json overrides
    /// `period` (Gemma 2: 2; Gemma 3: 6, `sliding_window_pattern`).
    Periodic {
        period: usize,
        #[serde(default)]
        period_keys: Vec<String>,
    },
    /// Layers from index `config[key]` on slide (Qwen2: `max_window_layers`).
    FromLayer { key: String },
}

/// How a family's Hugging Face checkpoints (config.json + safetensors) are read,
/// with the values that differ from its GGUF files.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HfFormat {
    /// `architectures` entries of config.json this spec reads.
    pub architectures: Vec<String>,
    /// `model_type` values, used when config.json has no `architectures`.
    #[serde(default)]
    pub model_types: Vec<String>,
    pub tensors: TensorNames,
    /// Added to every norm weight; HF Gemma checkpoints store `w` of `(1 + w)`.
    pub norm_weight_offset: f64,
    /// HF checkpoints pair rotary dimensions `(i, i + d/2)` in every family.
    pub rope_style: RopeStyle,
    /// Keys naming the MLP activation; the first present and non-null wins.
    pub activation_keys: Vec<String>,
    pub sliding: HfSliding,
    /// Key whose value `s` scales attention scores by `1/sqrt(s)` (Gemma 2/3:
    /// `query_pre_attn_scalar`); `1/sqrt(head_dim)` when absent.
    #[serde(default)]
    pub attn_scale_key: Option<String>,
    /// Keys of the attention and final soft-caps (null in config.json: none).
    #[serde(default)]
    pub attn_softcap_key: Option<String>,
    #[serde(default)]
    pub final_softcap_key: Option<String>,
    /// Key of the rope base of sliding layers (Gemma 3: `rope_local_base_freq`).
    /// When set, sliding layers use plain RoPE with that base and `rope_scaling`
    /// applies to full-attention layers only.
    #[serde(default)]
    pub sliding_rope_theta_key: Option<String>,
    /// Values the family's config class uses when config.json lacks a key.
    #[serde(default)]
    pub defaults: BTreeMap<String, serde_json::Value>,
}

impl HfFormat {
    fn new(archs: &[&str], model_types: &[&str]) -> HfFormat {
        HfFormat {
            architectures: archs.iter().map(|s| s.to_string()).collect(),
            model_types: model_types.iter().map(|s| s.to_string()).collect(),
            tensors: TensorNames::hf(),
            norm_weight_offset: 0.0,
            rope_style: RopeStyle::Half,
            activation_keys: vec!["hidden_act".into()],
            sliding: HfSliding::None,
            attn_scale_key: None,
            attn_softcap_key: None,
            final_softcap_key: None,
            sliding_rope_theta_key: None,
            defaults: BTreeMap::new(),
        }
    }

    fn with_defaults(mut self, kv: &[(&str, serde_json::Value)]) -> HfFormat {
        for (k, v) in kv {
            self.defaults.insert(k.to_string(), v.clone());
        }
        self
    }
}

/// One family's adapter spec.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FamilySpec {
    pub name: String,
    /// `general.architecture` values this spec reads.
    pub gguf_architectures: Vec<String>,
    /// Added to every norm weight (`(offset + w)`); GGUF Gemma files store `1 + w` already.
    pub norm_weight_offset: f64,
    pub activation: Activation,
    /// Multiply embeddings by sqrt(hidden) (Gemma).
    pub embed_scale_sqrt_hidden: bool,
    pub rope_style: RopeStyle,
    /// Per-head RMSNorm on q and k.
    pub qk_norm: bool,
    /// Norms after attention and after the MLP, before the residual add (Gemma 2/3).
    pub post_norms: bool,
    pub sliding: SlidingPattern,
    /// Rope base of sliding layers when it differs from the global one (Gemma 3).
    pub sliding_rope_theta: Option<f64>,
    /// Metadata keys (with `{arch}`) of the attention and final soft-caps.
    pub attn_softcap_key: Option<String>,
    pub final_softcap_key: Option<String>,
    /// The MLP's gate and up are one fused matrix (`up` holds gate|up).
    pub fused_gate_up: bool,
    pub tensors: TensorNames,
    /// How Hugging Face checkpoints of the family are read (none: GGUF only).
    #[serde(default)]
    pub hf: Option<HfFormat>,
}

impl FamilySpec {
    fn base(name: &str, archs: &[&str]) -> FamilySpec {
        FamilySpec {
            name: name.into(),
            gguf_architectures: archs.iter().map(|s| s.to_string()).collect(),
            norm_weight_offset: 0.0,
            activation: Activation::Silu,
            embed_scale_sqrt_hidden: false,
            rope_style: RopeStyle::Half,
            qk_norm: false,
            post_norms: false,
            sliding: SlidingPattern::None,
            sliding_rope_theta: None,
            attn_softcap_key: None,
            final_softcap_key: None,
            fused_gate_up: false,
            tensors: TensorNames::gguf(),
            hf: None,
        }
    }

    /// The families built into the engine.
    pub fn builtin() -> Vec<FamilySpec> {
        use serde_json::json;
        // Defaults of transformers' config classes, for keys a config.json may lack.
        let common = [
            ("rope_theta", json!(10000.0)),
            ("rms_norm_eps", json!(1e-6)),
            ("hidden_act", json!("silu")),
            ("tie_word_embeddings", json!(false)),
        ];

        let mut llama = FamilySpec::base("llama", &["llama"]);
        // llama.cpp's converter permutes Q/K rows of `llama` files for interleaved pairs.
        llama.rope_style = RopeStyle::Interleaved;
        llama.hf = Some(
            HfFormat::new(&["LlamaForCausalLM"], &["llama"])
                .with_defaults(&common)
                .with_defaults(&[("max_position_embeddings", json!(2048))]),
        );

        // GGUF writes Mistral as `llama`; Hugging Face Mistral slides every layer.
        let mut mistral = FamilySpec::base("mistral", &[]);
        mistral.hf = Some(
            HfFormat::new(&["MistralForCausalLM"], &["mistral"])
                .with_defaults(&common)
                .with_defaults(&[
                    ("sliding_window", json!(4096)),
                    ("max_position_embeddings", json!(4096 * 32)),
                ]),
        );
        if let Some(hf) = mistral.hf.as_mut() {
            hf.sliding = HfSliding::All;
        }

        let qwen_sliding = HfSliding::LayerTypes {
            default: HfLayerTypes::FromLayer {
                key: "max_window_layers".into(),
            },
            enable_key: Some("use_sliding_window".into()),
        };
        let qwen_defaults = [
            ("use_sliding_window", json!(false)),
            ("sliding_window", json!(4096)),
            ("max_window_layers", json!(28)),
            ("max_position_embeddings", json!(32768)),
        ];
        let mut qwen2 = FamilySpec::base("qwen2", &["qwen2"]);
        let mut hf = HfFormat::new(&["Qwen2ForCausalLM"], &["qwen2"])
            .with_defaults(&common)
            .with_defaults(&qwen_defaults);
        hf.sliding = qwen_sliding.clone();
        qwen2.hf = Some(hf);

        let mut qwen3 = FamilySpec::base("qwen3", &["qwen3"]);
        qwen3.qk_norm = true;
        let mut hf = HfFormat::new(&["Qwen3ForCausalLM"], &["qwen3"])
            .with_defaults(&common)
            .with_defaults(&qwen_defaults);
        hf.sliding = qwen_sliding;
        qwen3.hf = Some(hf);

        let gemma_defaults = [
            ("rope_theta", json!(10000.0)),
            ("rms_norm_eps", json!(1e-6)),
            ("hidden_activation", json!("gelu_pytorch_tanh")),
            ("tie_word_embeddings", json!(true)),
            ("head_dim", json!(256)),
        ];
        let mut gemma = FamilySpec::base("gemma", &["gemma"]);
        gemma.activation = Activation::GeluTanh;
        gemma.embed_scale_sqrt_hidden = true;
        // GGUF Gemma files store the norm weights as `1 + w` already.
        let mut hf = HfFormat::new(&["GemmaForCausalLM"], &["gemma"])
            .with_defaults(&gemma_defaults)
            .with_defaults(&[("max_position_embeddings", json!(8192))]);
        hf.norm_weight_offset = 1.0;
        hf.activation_keys = vec!["hidden_activation".into()];
        gemma.hf = Some(hf);

        let mut gemma2 = gemma.clone();
        gemma2.name = "gemma2".into();
        gemma2.gguf_architectures = vec!["gemma2".into()];
        gemma2.post_norms = true;
        gemma2.sliding = SlidingPattern::Periodic {
            period: 2,
            period_key: None,
        };
        gemma2.attn_softcap_key = Some("{arch}.attn_logit_softcapping".into());
        gemma2.final_softcap_key = Some("{arch}.final_logit_softcapping".into());
        let mut hf = HfFormat::new(&["Gemma2ForCausalLM"], &["gemma2"])
            .with_defaults(&gemma_defaults)
            .with_defaults(&[
                ("max_position_embeddings", json!(8192)),
                ("query_pre_attn_scalar", json!(256)),
                ("attn_logit_softcapping", json!(50.0)),
                ("final_logit_softcapping", json!(30.0)),
                ("sliding_window", json!(4096)),
            ]);
        hf.tensors = TensorNames::hf_sandwich();
        hf.norm_weight_offset = 1.0;
        hf.activation_keys = vec!["hidden_activation".into()];
        hf.sliding = HfSliding::LayerTypes {
            default: HfLayerTypes::Periodic {
                period: 2,
                period_keys: vec![],
            },
            enable_key: None,
        };
        hf.attn_scale_key = Some("query_pre_attn_scalar".into());
        hf.attn_softcap_key = Some("attn_logit_softcapping".into());
        hf.final_softcap_key = Some("final_logit_softcapping".into());
        gemma2.hf = Some(hf);

        let mut gemma3 = gemma.clone();
        gemma3.name = "gemma3".into();
        gemma3.gguf_architectures = vec!["gemma3".into()];
        gemma3.post_norms = true;
        gemma3.qk_norm = true;
        gemma3.sliding = SlidingPattern::Periodic {
            period: 6,
            period_key: Some("{arch}.attention.sliding_window_pattern".into()),
        };
        gemma3.sliding_rope_theta = Some(10_000.0);
        let mut hf = HfFormat::new(&["Gemma3ForCausalLM"], &["gemma3_text"])
            .with_defaults(&gemma_defaults)
            .with_defaults(&[
                ("rope_theta", json!(1_000_000.0)),
                ("rope_local_base_freq", json!(10_000.0)),
                ("max_position_embeddings", json!(131_072)),
                ("query_pre_attn_scalar", json!(256)),
                ("attn_logit_softcapping", serde_json::Value::Null),
                ("final_logit_softcapping", serde_json::Value::Null),
                ("sliding_window", json!(4096)),
            ]);
        hf.tensors = TensorNames::hf_sandwich();
        hf.norm_weight_offset = 1.0;
        hf.activation_keys = vec!["hidden_activation".into()];
        hf.sliding = HfSliding::LayerTypes {
            default: HfLayerTypes::Periodic {
                period: 6,
                period_keys: vec![
                    "sliding_window_pattern".into(),
                    "_sliding_window_pattern".into(),
                ],
            },
            enable_key: None,
        };
        hf.attn_scale_key = Some("query_pre_attn_scalar".into());
        hf.attn_softcap_key = Some("attn_logit_softcapping".into());
        hf.final_softcap_key = Some("final_logit_softcapping".into());
        hf.sliding_rope_theta_key = Some("rope_local_base_freq".into());
        gemma3.hf = Some(hf);

        let mut phi3 = FamilySpec::base("phi3", &["phi3"]);
        phi3.fused_gate_up = true;
        phi3.sliding = SlidingPattern::None;
        let mut hf = HfFormat::new(&["Phi3ForCausalLM"], &["phi3"])
            .with_defaults(&common)
            .with_defaults(&[
                ("rms_norm_eps", json!(1e-5)),
                ("max_position_embeddings", json!(4096)),
                ("original_max_position_embeddings", json!(4096)),
                ("sliding_window", serde_json::Value::Null),
            ]);
        hf.tensors.up = "model.layers.{i}.mlp.gate_up_proj.weight".into();
        hf.sliding = HfSliding::All;
        phi3.hf = Some(hf);

        vec![llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3, phi3]
    }

    /// The built-in spec for a GGUF `general.architecture`.
    pub fn for_gguf_architecture(arch: &str) -> Option<FamilySpec> {
        FamilySpec::builtin()
            .into_iter()
            .find(|s| s.gguf_architectures.iter().any(|a| a == arch))
    }

    /// The built-in spec reading a config.json `architectures` entry.
    pub fn for_hf_architecture(arch: &str) -> Option<FamilySpec> {
        FamilySpec::builtin().into_iter().find(|s| {
            s.hf.as_ref()
                .is_some_and(|h| h.architectures.iter().any(|a| a == arch))
        })
    }

    /// The built-in spec reading a config.json `model_type` (when it has no `architectures`).
    pub fn for_hf_model_type(model_type: &str) -> Option<FamilySpec> {
        FamilySpec::builtin().into_iter().find(|s| {
            s.hf.as_ref()
                .is_some_and(|h| h.model_types.iter().any(|a| a == model_type))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_specs_round_trip_through_serde() {
        for spec in FamilySpec::builtin() {
            let json = serde_json::to_string(&spec).unwrap();
            let back: FamilySpec = serde_json::from_str(&json).unwrap();
            assert_eq!(back, spec, "{}", spec.name);
        }
    }

    #[test]
    fn every_hf_architecture_has_one_spec() {
        let specs = FamilySpec::builtin();
        for s in &specs {
            for a in s.hf.iter().flat_map(|h| &h.architectures) {
                let n = specs
                    .iter()
                    .filter(|t| t.hf.as_ref().is_some_and(|h| h.architectures.contains(a)))
                    .count();
                assert_eq!(n, 1, "{a}");
            }
        }
    }
}
