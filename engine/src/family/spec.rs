//! Family adapter specs: everything that differs between model families is
//! data here, and the decoder executes it without knowing which family it runs.
//!
//! A spec is a YAML file (schema in `engine/specs/README.md`). The built-in
//! families are the files of `engine/specs/`, embedded in the binary; a new
//! family whose parts the engine already has (a Llama-like model under another
//! architecture name, other tensor names...) needs only a new file, loaded with
//! [`FamilySpec::from_yaml_file`] (`atenia load SPEC.yaml --model ...`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::family::roles::{self, TensorFormat, TensorNames, TensorRole};
use crate::kernels::activation::Activation;
use crate::kernels::rope::RopeStyle;

/// The schema version this engine reads (`schema:` in every spec file).
pub const SCHEMA_VERSION: u32 = 1;

/// The built-in specs: file name and text, embedded from `engine/specs/`.
pub const BUILTIN_SPEC_FILES: &[(&str, &str)] = &[
    ("llama.yaml", include_str!("../../specs/llama.yaml")),
    ("mistral.yaml", include_str!("../../specs/mistral.yaml")),
    ("qwen2.yaml", include_str!("../../specs/qwen2.yaml")),
    ("qwen3.yaml", include_str!("../../specs/qwen3.yaml")),
    ("gemma.yaml", include_str!("../../specs/gemma.yaml")),
    ("gemma2.yaml", include_str!("../../specs/gemma2.yaml")),
    ("gemma3.yaml", include_str!("../../specs/gemma3.yaml")),
    ("phi3.yaml", include_str!("../../specs/phi3.yaml")),
];

/// Which layers use sliding-window attention.
///
/// In YAML: `none`, `all`, or `{periodic: {period: 6, period_key: ...}}`.
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

fn sliding_none() -> SlidingPattern {
    SlidingPattern::None
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

fn hf_sliding_none() -> HfSliding {
    HfSliding::None
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
    /// Tensor names in the safetensors files: `engine/specs/tensors.yaml`'s
    /// `hf` table with the roles this family names otherwise.
    #[serde(
        default = "roles::hf_defaults",
        deserialize_with = "roles::hf_overrides"
    )]
    pub tensors: TensorNames,
    /// Added to every norm weight; HF Gemma checkpoints store `w` of `(1 + w)`.
    #[serde(default)]
    pub norm_weight_offset: f64,
    /// HF checkpoints pair rotary dimensions `(i, i + d/2)` in every family.
    pub rope_style: RopeStyle,
    /// Keys naming the MLP activation; the first present and non-null wins.
    pub activation_keys: Vec<String>,
    #[serde(
        default = "hf_sliding_none",
        with = "serde_norway::with::singleton_map_recursive"
    )]
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

/// How a SentencePiece vocabulary of a GGUF file (`tokenizer.ggml.model =
/// "llama"`) is tokenized: the shape transformers gives the family's tokenizer.
///
/// In YAML: `llama`, `gemma` or `phi3`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpmFlavor {
    /// A `Metaspace` pre-tokenizer puts `▁` before the text's start only
    /// (not with `tokenizer.ggml.add_space_prefix = false`).
    #[default]
    Llama,
    /// No prefix `▁`; spaces become `▁` and split the text; merges are ranked
    /// by vocabulary position; runs of spaces in the vocabulary are `▁` runs.
    Gemma,
    /// A normalizer puts `▁` before every piece of text, after special
    /// tokens too (not with `tokenizer.ggml.add_space_prefix = false`).
    Phi3,
}

/// One family's adapter spec.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FamilySpec {
    /// The schema version of the file ([`SCHEMA_VERSION`]).
    pub schema: u32,
    pub name: String,
    /// `general.architecture` values this spec reads.
    #[serde(default)]
    pub gguf_architectures: Vec<String>,
    /// Added to every norm weight (`(offset + w)`); GGUF Gemma files store `1 + w` already.
    #[serde(default)]
    pub norm_weight_offset: f64,
    pub activation: Activation,
    /// Multiply embeddings by sqrt(hidden) (Gemma).
    #[serde(default)]
    pub embed_scale_sqrt_hidden: bool,
    pub rope_style: RopeStyle,
    /// Per-head RMSNorm on q and k.
    #[serde(default)]
    pub qk_norm: bool,
    /// Norms after attention and after the MLP, before the residual add (Gemma 2/3).
    #[serde(default)]
    pub post_norms: bool,
    #[serde(
        default = "sliding_none",
        with = "serde_norway::with::singleton_map_recursive"
    )]
    pub sliding: SlidingPattern,
    /// Rope base of sliding layers when it differs from the global one (Gemma 3).
    #[serde(default)]
    pub sliding_rope_theta: Option<f64>,
    /// Metadata keys (with `{arch}`) of the attention and final soft-caps.
    #[serde(default)]
    pub attn_softcap_key: Option<String>,
    #[serde(default)]
    pub final_softcap_key: Option<String>,
    /// The MLP's gate and up are one fused matrix (`up` holds gate|up).
    #[serde(default)]
    pub fused_gate_up: bool,
    /// Tensor names in GGUF files: `engine/specs/tensors.yaml`'s `gguf`
    /// table with the roles this family names otherwise.
    #[serde(
        default = "roles::gguf_defaults",
        deserialize_with = "roles::gguf_overrides"
    )]
    pub tensors: TensorNames,
    /// How Hugging Face checkpoints of the family are read (none: GGUF only).
    #[serde(default)]
    pub hf: Option<HfFormat>,
    /// How SentencePiece vocabularies of GGUF files are tokenized (none: `llama`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentencepiece: Option<SpmFlavor>,
}

/// The outcome of [`FamilySpec::check`]: errors make a spec unusable,
/// warnings point at values that are legal but probably not meant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecCheck {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Only the version field, read before the rest so that a file of another
/// schema gets a message about the version rather than about its fields.
#[derive(serde::Deserialize)]
struct SchemaOnly {
    #[serde(default)]
    schema: Option<serde_norway::Value>,
}

impl FamilySpec {
    /// Parses a spec from YAML text; `origin` (a path, or `builtin:NAME`) names
    /// it in messages. Unknown fields, a missing required field or a value of
    /// the wrong type are errors naming the field and its line. Semantic
    /// checks are [`FamilySpec::check`]'s.
    pub fn from_yaml(text: &str, origin: &str) -> Result<FamilySpec> {
        let err = |msg: String| Error::spec(origin, msg);
        let head: SchemaOnly =
            serde_norway::from_str(text).map_err(|e| err(format!("not a YAML mapping: {e}")))?;
        match head.schema {
            None => {
                return Err(err(format!(
                    "missing `schema:` (this engine reads `schema: {SCHEMA_VERSION}`)"
                )))
            }
            Some(serde_norway::Value::Number(n)) if n.as_u64() == Some(SCHEMA_VERSION as u64) => {}
            Some(v) => {
                let shown = serde_norway::to_string(&v).unwrap_or_default();
                return Err(err(format!(
                    "schema {} is not supported (this engine reads schema {SCHEMA_VERSION})",
                    shown.trim()
                )));
            }
        }
        serde_norway::from_str(text).map_err(|e| err(e.to_string()))
    }

    /// Reads and parses a spec file.
    pub fn from_yaml_file(path: &Path) -> Result<FamilySpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        FamilySpec::from_yaml(&text, &path.display().to_string())
    }

    /// The spec as YAML (enums as `name` or `{name: {...}}`), parseable by [`FamilySpec::from_yaml`].
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).expect("a spec always serializes")
    }

    /// The families built into the engine: the embedded `engine/specs/*.yaml`.
    pub fn builtin() -> Vec<FamilySpec> {
        static BUILTIN: OnceLock<Vec<FamilySpec>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                BUILTIN_SPEC_FILES
                    .iter()
                    .map(|(file, text)| {
                        FamilySpec::from_yaml(text, &format!("builtin:{file}"))
                            .unwrap_or_else(|e| panic!("built-in spec {file}: {e}"))
                    })
                    .collect()
            })
            .clone()
    }

    /// The built-in spec called `name`.
    pub fn builtin_named(name: &str) -> Option<FamilySpec> {
        FamilySpec::builtin().into_iter().find(|s| s.name == name)
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

    /// Checks what serde cannot: errors (the spec cannot work) and warnings
    /// (legal, but probably not what was meant).
    pub fn check(&self) -> SpecCheck {
        let mut c = SpecCheck::default();
        self.check_identity(&mut c);
        check_offset(&mut c, "norm_weight_offset", self.norm_weight_offset);
        self.check_sliding(&mut c);
        for (field, key) in [
            ("attn_softcap_key", &self.attn_softcap_key),
            ("final_softcap_key", &self.final_softcap_key),
        ] {
            if let Some(k) = key {
                check_key(&mut c, field, k, true);
            }
        }
        check_tensors(&mut c, "tensors", &self.tensors, TensorFormat::Gguf, self);
        if let Some(hf) = &self.hf {
            check_hf(&mut c, hf, self);
        }
        c
    }

    /// The schema, the name, and which files the spec reads.
    fn check_identity(&self, c: &mut SpecCheck) {
        if self.schema != SCHEMA_VERSION {
            c.errors.push(format!(
                "schema: {} is not supported (this engine reads {SCHEMA_VERSION})",
                self.schema
            ));
        }
        if self.name.trim().is_empty() {
            c.errors.push("name: is empty".into());
        } else if !self
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            c.warnings.push(format!(
                "name: {:?} has characters other than letters, digits, '-', '_' and '.'",
                self.name
            ));
        }
        if self.gguf_architectures.is_empty() && self.hf.is_none() {
            c.errors.push(
                "gguf_architectures: is empty and there is no `hf:` section, so the spec reads no file"
                    .into(),
            );
        }
        check_list(c, "gguf_architectures", &self.gguf_architectures);
        for a in &self.gguf_architectures {
            if a.chars()
                .any(|ch| ch.is_ascii_uppercase() || ch.is_whitespace())
            {
                c.warnings.push(format!(
                    "gguf_architectures: {a:?} has upper-case letters or spaces; \
                     llama.cpp writes general.architecture in lower case"
                ));
            }
        }
    }

    /// The GGUF sliding pattern and the sliding layers' rope base.
    fn check_sliding(&self, c: &mut SpecCheck) {
        match &self.sliding {
            SlidingPattern::Periodic { period, period_key } => {
                check_period(c, "sliding.periodic.period", *period);
                if let Some(k) = period_key {
                    check_key(c, "sliding.periodic.period_key", k, true);
                }
            }
            SlidingPattern::None => {
                if self.sliding_rope_theta.is_some() {
                    c.warnings.push(
                        "sliding_rope_theta: is set but `sliding: none`, so no layer uses it"
                            .into(),
                    );
                }
            }
            SlidingPattern::All => {}
        }
        if let Some(t) = self.sliding_rope_theta {
            if !(t.is_finite() && t > 1.0) {
                c.errors.push(format!(
                    "sliding_rope_theta: {t} must be a finite number above 1"
                ));
            }
        }
    }

    /// [`FamilySpec::check`] as a result: the warnings, or one error listing every problem.
    pub fn validate(&self) -> Result<Vec<String>> {
        let c = self.check();
        if c.errors.is_empty() {
            Ok(c.warnings)
        } else {
            Err(Error::spec(
                &self.name,
                format!("{} error(s): {}", c.errors.len(), c.errors.join("; ")),
            ))
        }
    }
}

/// The `hf:` section.
fn check_hf(c: &mut SpecCheck, hf: &HfFormat, spec: &FamilySpec) {
    if hf.architectures.is_empty() {
        c.errors.push(
            "hf.architectures: is empty; list the config.json `architectures` entries this spec reads"
                .into(),
        );
    }
    check_list(c, "hf.architectures", &hf.architectures);
    check_list(c, "hf.model_types", &hf.model_types);
    for a in &hf.architectures {
        if !a.ends_with("ForCausalLM") {
            c.warnings.push(format!(
                "hf.architectures: {a:?} does not end in ForCausalLM; \
                 decoder-only checkpoints name a *ForCausalLM class"
            ));
        }
    }
    check_offset(c, "hf.norm_weight_offset", hf.norm_weight_offset);
    if hf.rope_style != RopeStyle::Half {
        c.warnings.push(
            "hf.rope_style: Hugging Face checkpoints pair rotary dimensions (i, i + d/2) \
             in every family (`half`)"
                .into(),
        );
    }
    if hf.activation_keys.is_empty() {
        c.errors.push(
            "hf.activation_keys: is empty; name the config.json key of the MLP activation \
             (usually hidden_act)"
                .into(),
        );
    }
    for k in &hf.activation_keys {
        check_key(c, "hf.activation_keys", k, false);
    }
    check_hf_sliding(c, &hf.sliding);
    for (field, key) in [
        ("hf.attn_scale_key", &hf.attn_scale_key),
        ("hf.attn_softcap_key", &hf.attn_softcap_key),
        ("hf.final_softcap_key", &hf.final_softcap_key),
        ("hf.sliding_rope_theta_key", &hf.sliding_rope_theta_key),
    ] {
        if let Some(k) = key {
            check_key(c, field, k, false);
        }
    }
    for key in ["rope_theta", "rms_norm_eps"] {
        if !hf.defaults.contains_key(key) {
            c.warnings.push(format!(
                "hf.defaults: has no {key}; a config.json without it will not load"
            ));
        }
    }
    check_tensors(c, "hf.tensors", &hf.tensors, TensorFormat::Hf, spec);
}

fn check_hf_sliding(c: &mut SpecCheck, sliding: &HfSliding) {
    let HfSliding::LayerTypes {
        default,
        enable_key,
    } = sliding
    else {
        return;
    };
    if let Some(k) = enable_key {
        check_key(c, "hf.sliding.layer_types.enable_key", k, false);
    }
    match default {
        HfLayerTypes::Periodic {
            period,
            period_keys,
        } => {
            check_period(c, "hf.sliding.layer_types.default.periodic.period", *period);
            for k in period_keys {
                check_key(
                    c,
                    "hf.sliding.layer_types.default.periodic.period_keys",
                    k,
                    false,
                );
            }
        }
        HfLayerTypes::FromLayer { key } => check_key(
            c,
            "hf.sliding.layer_types.default.from_layer.key",
            key,
            false,
        ),
    }
}

fn check_list(c: &mut SpecCheck, field: &str, list: &[String]) {
    for (i, a) in list.iter().enumerate() {
        if a.trim().is_empty() {
            c.errors.push(format!("{field}: entry {i} is empty"));
        }
        if list[..i].contains(a) {
            c.warnings.push(format!("{field}: {a:?} is listed twice"));
        }
    }
}

fn check_offset(c: &mut SpecCheck, field: &str, v: f64) {
    if !v.is_finite() {
        c.errors
            .push(format!("{field}: {v} is not a finite number"));
    } else if v != 0.0 && v != 1.0 {
        c.warnings.push(format!(
            "{field}: {v} is unusual; norms use `w` (0) or Gemma's `1 + w` (1)"
        ));
    }
}

fn check_period(c: &mut SpecCheck, field: &str, period: usize) {
    if period == 0 {
        c.errors
            .push(format!("{field}: is 0; the period must be at least 1"));
    } else if period == 1 {
        c.warnings.push(format!(
            "{field}: 1 makes every layer global, so no layer slides (use `none`)"
        ));
    } else if period > 64 {
        c.warnings.push(format!(
            "{field}: {period} is unusually long (Gemma 2 uses 2, Gemma 3 uses 6)"
        ));
    }
}

/// The `{...}` placeholders of a template.
fn placeholders(s: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = s;
    while let Some(a) = rest.find('{') {
        match rest[a..].find('}') {
            Some(b) => {
                out.push(rest[a + 1..a + b].to_string());
                rest = &rest[a + b + 1..];
            }
            None => {
                out.push(rest[a + 1..].to_string());
                break;
            }
        }
    }
    out
}

/// A metadata or config.json key: `{arch}` allowed in GGUF keys only.
fn check_key(c: &mut SpecCheck, field: &str, key: &str, gguf: bool) {
    if key.trim().is_empty() {
        c.errors.push(format!("{field}: is empty"));
        return;
    }
    for p in placeholders(key) {
        if !(gguf && p == "arch") {
            c.errors.push(format!(
                "{field}: {key:?} has the placeholder {{{p}}}; {}",
                if gguf {
                    "metadata keys know only {arch}"
                } else {
                    "config.json keys take no placeholder"
                }
            ));
        }
    }
    if gguf && !key.contains("{arch}") && !key.starts_with("general.") {
        c.warnings.push(format!(
            "{field}: {key:?} lacks {{arch}}; llama.cpp prefixes a model's keys with its architecture"
        ));
    }
}

fn check_tensors(
    c: &mut SpecCheck,
    at: &str,
    t: &TensorNames,
    format: TensorFormat,
    spec: &FamilySpec,
) {
    let mut seen: Vec<(TensorRole, &str)> = vec![];
    for (role, name) in t.entries() {
        let path = format!("{at}.{role}");
        if name.trim().is_empty() {
            c.errors.push(format!("{path}: is empty"));
            continue;
        }
        check_placeholders(c, &path, name, role.per_layer());
        if let Some((other, _)) = seen.iter().find(|(_, n)| *n == name) {
            // Roles the binder never reads together may share a name.
            let unused = |r: TensorRole| {
                (r == TensorRole::Gate && spec.fused_gate_up)
                    || ((r == TensorRole::PostAttnNorm || r == TensorRole::PostFfnNorm)
                        && !spec.post_norms)
            };
            if !unused(role) && !unused(*other) {
                c.errors.push(format!(
                    "{path}: {name:?} is also {at}.{other}; two weights cannot be one tensor"
                ));
            }
        }
        seen.push((role, name));
        check_name_style(c, &path, name, role, format);
    }
}

/// `{i}` in exactly the per-layer names, and no other placeholder.
fn check_placeholders(c: &mut SpecCheck, path: &str, name: &str, per_layer: bool) {
    let ph = placeholders(name);
    for p in &ph {
        if p != "i" {
            c.errors.push(format!(
                "{path}: {name:?} has the placeholder {{{p}}}; tensor names know only {{i}} (the layer)"
            ));
        }
    }
    let has_i = ph.iter().any(|p| p == "i");
    if per_layer && !has_i {
        c.errors.push(format!(
            "{path}: {name:?} is a per-layer tensor but has no {{i}}, so every layer would read the same tensor"
        ));
    }
    if !per_layer && has_i {
        c.errors.push(format!(
            "{path}: {name:?} has {{i}} but names one tensor of the whole model"
        ));
    }
}

/// Warns about names no file of the format will have.
fn check_name_style(
    c: &mut SpecCheck,
    path: &str,
    name: &str,
    role: TensorRole,
    format: TensorFormat,
) {
    let looks = match format {
        TensorFormat::Gguf => {
            if role.per_layer() {
                name.starts_with("blk.{i}.")
            } else {
                !name.contains('{') && !name.starts_with("model.")
            }
        }
        TensorFormat::Hf => !name.starts_with("blk."),
    };
    if !looks {
        c.warnings.push(format!(
            "{path}: {name:?} does not look like a {} tensor name (expected {})",
            if format == TensorFormat::Gguf {
                "GGUF"
            } else {
                "Hugging Face"
            },
            if format == TensorFormat::Gguf {
                "`blk.{i}.NAME.weight` per layer, e.g. `token_embd.weight` otherwise"
            } else {
                "e.g. `model.layers.{i}.self_attn.q_proj.weight`"
            }
        ));
    }
    let kind = if role.is_bias() { "bias" } else { "weight" };
    if looks && !name.ends_with(&format!(".{kind}")) {
        c.warnings.push(format!(
            "{path}: {name:?} does not end in .{kind}; files name {kind} tensors that way"
        ));
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
            let yaml = spec.to_yaml();
            let back = FamilySpec::from_yaml(&yaml, "round-trip").unwrap();
            assert_eq!(back, spec, "{}: {yaml}", spec.name);
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

    #[test]
    fn placeholders_are_found() {
        assert_eq!(placeholders("blk.{i}.attn_q.{x}"), ["i", "x"]);
        assert_eq!(placeholders("{arch}.foo"), ["arch"]);
        assert!(placeholders("plain").is_empty());
    }
}
