//! Family adapter specs: everything that differs between model families is
//! data here, and the decoder executes it without knowing which family it runs.

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

/// Tensor names in a GGUF file; `{i}` is the layer index.
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
        }
    }

    /// The families built into the engine.
    pub fn builtin() -> Vec<FamilySpec> {
        let mut llama = FamilySpec::base("llama", &["llama"]);
        llama.rope_style = RopeStyle::Interleaved;

        let qwen2 = FamilySpec::base("qwen2", &["qwen2"]);
        let mut qwen3 = FamilySpec::base("qwen3", &["qwen3"]);
        qwen3.qk_norm = true;

        let mut gemma = FamilySpec::base("gemma", &["gemma"]);
        gemma.activation = Activation::GeluTanh;
        gemma.embed_scale_sqrt_hidden = true;

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

        let mut phi3 = FamilySpec::base("phi3", &["phi3"]);
        phi3.fused_gate_up = true;
        phi3.sliding = SlidingPattern::None;

        vec![llama, qwen2, qwen3, gemma, gemma2, gemma3, phi3]
    }

    /// The built-in spec for a GGUF `general.architecture`.
    pub fn for_gguf_architecture(arch: &str) -> Option<FamilySpec> {
        FamilySpec::builtin()
            .into_iter()
            .find(|s| s.gguf_architectures.iter().any(|a| a == arch))
    }
}
