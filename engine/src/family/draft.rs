//! Spec drafting for `atenia inspect`: a family spec for a checkpoint that no
//! built-in family reads, made from its tensor names and hyperparameters
//! (see [`crate::family::inventory`]), with notes on what needs a human check;
//! and the report `atenia inspect` prints (the matching built-in spec, or the
//! draft, annotated).
//!
//! Uses [`crate::formats`] (through the inventory), the kernel enums of
//! [`crate::kernels`], and the specs of [`crate::family`].

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::family::inventory::{by_template, roles, unread, Inventory};
use crate::family::roles::{TensorNames, TensorRole};
use crate::family::spec::{
    FamilySpec, HfFormat, HfLayerTypes, HfSliding, SlidingPattern, BUILTIN_SPEC_FILES,
    SCHEMA_VERSION,
};
use crate::kernels::activation::Activation;
use crate::kernels::rope::RopeStyle;

/// Notes on a draft: dotted field path → what to check.
pub type Notes = BTreeMap<String, String>;

/// Spec field → the template of the checkpoint that fills it.
type Found = BTreeMap<&'static str, String>;

/// A draft spec and its notes (dotted field path → what to check).
pub fn draft(f: &Inventory) -> (FamilySpec, Notes) {
    let (found, _) = roles(f);
    let mut notes = Notes::new();
    let llama = FamilySpec::builtin_named("llama").expect("the llama spec is built in");
    let lower = f.architecture.to_ascii_lowercase();
    let gemma_like =
        lower.contains("gemma") || f.model_type.as_deref().is_some_and(|m| m.contains("gemma"));
    let mut spec = llama.clone();
    spec.schema = SCHEMA_VERSION;
    spec.sliding_rope_theta = None;
    spec.activation = if gemma_like {
        Activation::GeluTanh
    } else {
        Activation::Silu
    };
    notes.insert(
        "activation".into(),
        "CHECK: the MLP activation (silu or gelu_tanh) is not recorded in GGUF files".into(),
    );
    spec.embed_scale_sqrt_hidden = gemma_like;
    notes.insert(
        "embed_scale_sqrt_hidden".into(),
        "CHECK: true when the model multiplies embeddings by sqrt(hidden) (Gemma)".into(),
    );
    spec.qk_norm = found.contains_key("q_norm") && found.contains_key("k_norm");
    spec.post_norms = found.contains_key("post_attn_norm") && found.contains_key("post_ffn_norm");
    spec.fused_gate_up = !found.contains_key("gate") && found.contains_key("up");
    if spec.fused_gate_up {
        notes.insert(
            "fused_gate_up".into(),
            "no gate tensor found: up is taken as the fused gate|up matrix (2 x ffn rows); CHECK"
                .into(),
        );
    }
    match f.format {
        "gguf" => draft_gguf(&mut spec, &mut notes, f, &found, &llama),
        _ => draft_hf(&mut spec, &mut notes, f, &found, &llama, gemma_like),
    }
    (spec, notes)
}

/// The GGUF side of a draft: the architecture, rotation, sliding windows,
/// soft-caps and GGUF tensor names; no `hf` section.
fn draft_gguf(
    spec: &mut FamilySpec,
    notes: &mut Notes,
    f: &Inventory,
    found: &Found,
    llama: &FamilySpec,
) {
    let arch = &f.architecture;
    spec.name = arch.clone();
    spec.gguf_architectures = vec![arch.clone()];
    spec.hf = None;
    notes.insert(
        "hf".into(),
        "GGUF only; add an hf section (see engine/specs/README.md) to read checkpoints too".into(),
    );
    let key = |k: &str| format!("{arch}.{k}");
    let (style, note) = gguf_rope_style(arch);
    spec.rope_style = style;
    notes.insert("rope_style".into(), note.into());
    spec.norm_weight_offset = 0.0;
    notes.insert(
        "norm_weight_offset".into(),
        "GGUF files store the norm weight the model multiplies by (Gemma's 1 + w included)".into(),
    );
    let has = |k: &str| f.hyper.contains_key(&key(k));
    spec.sliding = gguf_sliding(notes, f);
    if let Some(t) = f
        .hyper
        .get(&key("rope.freq_base_swa"))
        .and_then(Value::as_f64)
    {
        spec.sliding_rope_theta = Some(t);
        notes.insert(
            "sliding_rope_theta".into(),
            "from rope.freq_base_swa".into(),
        );
    }
    spec.attn_softcap_key =
        has("attn_logit_softcapping").then(|| "{arch}.attn_logit_softcapping".into());
    spec.final_softcap_key =
        has("final_logit_softcapping").then(|| "{arch}.final_logit_softcapping".into());
    let mut t = llama.tensors.clone();
    for (field, name) in found {
        set_field(&mut t, field, name.clone());
    }
    for (role, _) in llama.tensors.entries() {
        let field = role.key();
        if !found.contains_key(field) {
            notes.insert(
                format!("tensors.{field}"),
                "not in this file (the usual name)".into(),
            );
        }
    }
    spec.tensors = t;
}

/// Which layers of a GGUF file slide, from its metadata.
fn gguf_sliding(notes: &mut Notes, f: &Inventory) -> SlidingPattern {
    let key = |k: &str| format!("{}.{k}", f.architecture);
    let has = |k: &str| f.hyper.contains_key(&key(k));
    if has("attention.sliding_window") {
        if has("attention.sliding_window_pattern") {
            let p = f.hyper[&key("attention.sliding_window_pattern")]
                .as_u64()
                .unwrap_or(2) as usize;
            notes.insert(
                "sliding".into(),
                "the file has a sliding-window pattern: layer i is global when (i + 1) % period == 0; CHECK".into(),
            );
            SlidingPattern::Periodic {
                period: p.max(1),
                period_key: Some("{arch}.attention.sliding_window_pattern".into()),
            }
        } else {
            notes.insert(
                "sliding".into(),
                "CHECK: the file has a sliding window; `all` slides every layer, `{periodic: {period: N}}` all but every Nth".into(),
            );
            SlidingPattern::All
        }
    } else {
        SlidingPattern::None
    }
}

/// The Hugging Face side of a draft: the `hf` section from config.json and
/// the checkpoint's tensor names; the GGUF fields stay llama's, marked.
fn draft_hf(
    spec: &mut FamilySpec,
    notes: &mut Notes,
    f: &Inventory,
    found: &Found,
    llama: &FamilySpec,
    gemma_like: bool,
) {
    let mt = f
        .model_type
        .clone()
        .unwrap_or_else(|| f.architecture.to_ascii_lowercase());
    spec.name = mt.replace('_', "-");
    spec.gguf_architectures = vec![];
    notes.insert(
        "gguf_architectures".into(),
        "CHECK: add the general.architecture llama.cpp writes for this family to read its GGUF files".into(),
    );
    spec.rope_style = RopeStyle::Half;
    notes.insert(
        "rope_style".into(),
        "GGUF files only: CHECK against llama.cpp's rope type when adding gguf_architectures"
            .into(),
    );
    let cfg = &f.config;
    let (act_keys, act, note) = hf_activation(cfg);
    spec.activation = act;
    notes.insert("activation".into(), note);
    let mut t = hf_conventional(found);
    for (field, name) in found {
        set_field(&mut t, field, name.clone());
    }
    for (role, _) in llama.hf.as_ref().unwrap().tensors.entries() {
        let field = role.key();
        if !found.contains_key(field) {
            notes.insert(
                format!("hf.tensors.{field}"),
                "not in this checkpoint (the usual name)".into(),
            );
        }
    }
    let has = |k: &str| cfg.contains_key(k);
    let mut hf = HfFormat {
        architectures: vec![f.architecture.clone()],
        model_types: f.model_type.iter().cloned().collect(),
        tensors: t,
        norm_weight_offset: if gemma_like { 1.0 } else { 0.0 },
        rope_style: RopeStyle::Half,
        activation_keys: if act_keys.is_empty() {
            vec!["hidden_act".into()]
        } else {
            act_keys
        },
        sliding: HfSliding::None,
        attn_scale_key: has("query_pre_attn_scalar").then(|| "query_pre_attn_scalar".into()),
        attn_softcap_key: has("attn_logit_softcapping").then(|| "attn_logit_softcapping".into()),
        final_softcap_key: has("final_logit_softcapping").then(|| "final_logit_softcapping".into()),
        sliding_rope_theta_key: has("rope_local_base_freq").then(|| "rope_local_base_freq".into()),
        defaults: BTreeMap::new(),
    };
    notes.insert(
        "hf.norm_weight_offset".into(),
        "CHECK: 1 when the model's RMSNorm multiplies by (1 + w) (Gemma), else 0".into(),
    );
    hf.sliding = hf_sliding(notes, cfg);
    hf_defaults(&mut hf, notes, cfg);
    spec.hf = Some(hf);
    spec.norm_weight_offset = 0.0;
    spec.sliding = SlidingPattern::None;
    notes.insert(
        "tensors".into(),
        "GGUF names (llama.cpp's usual ones): used only with gguf_architectures".into(),
    );
}

/// The activation keys config.json sets, the activation they name, and the
/// note saying where it came from.
fn hf_activation(cfg: &Map<String, Value>) -> (Vec<String>, Activation, String) {
    let act_keys: Vec<String> = ["hidden_activation", "hidden_act"]
        .iter()
        .filter(|k| cfg.get(**k).is_some_and(|v| !v.is_null()))
        .map(|k| k.to_string())
        .collect();
    let act_name = act_keys
        .first()
        .and_then(|k| cfg.get(k))
        .and_then(Value::as_str)
        .unwrap_or("silu");
    let (act, note) = match act_name {
        "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => {
            (Activation::GeluTanh, format!("config.json: {act_name}"))
        }
        "silu" | "swish" => (Activation::Silu, format!("config.json: {act_name}")),
        other => (
            Activation::Silu,
            format!("CHECK: config.json says {other:?}, which the engine does not have"),
        ),
    };
    (act_keys, act, note)
}

/// Which layers of a checkpoint slide, from the keys its config.json has.
fn hf_sliding(notes: &mut Notes, cfg: &Map<String, Value>) -> HfSliding {
    let has = |k: &str| cfg.contains_key(k);
    let window = cfg.get("sliding_window").is_some_and(|v| !v.is_null());
    if let Some(types) = cfg.get("layer_types").and_then(Value::as_array) {
        let period = types
            .iter()
            .position(|t| t.as_str() == Some("full_attention"))
            .map_or(1, |p| p + 1);
        notes.insert(
            "hf.sliding".into(),
            "from config.json layer_types; the period is the default for configs without the list: CHECK".into(),
        );
        HfSliding::LayerTypes {
            default: HfLayerTypes::Periodic {
                period: period.max(1),
                period_keys: vec![],
            },
            enable_key: has("use_sliding_window").then(|| "use_sliding_window".into()),
        }
    } else if has("use_sliding_window") && has("max_window_layers") {
        notes.insert("hf.sliding".into(), "Qwen2-style switch; CHECK".into());
        HfSliding::LayerTypes {
            default: HfLayerTypes::FromLayer {
                key: "max_window_layers".into(),
            },
            enable_key: Some("use_sliding_window".into()),
        }
    } else if window {
        notes.insert(
            "hf.sliding".into(),
            "config.json has a sliding_window: CHECK that every layer slides".into(),
        );
        HfSliding::All
    } else {
        HfSliding::None
    }
}

/// Defaults for keys a config.json may lack: this checkpoint's values.
fn hf_defaults(hf: &mut HfFormat, notes: &mut Notes, cfg: &Map<String, Value>) {
    let num = |k: &str, d: Value| cfg.get(k).cloned().filter(|v| !v.is_null()).unwrap_or(d);
    hf.defaults
        .insert("rope_theta".into(), num("rope_theta", json!(10000.0)));
    hf.defaults
        .insert("rms_norm_eps".into(), num("rms_norm_eps", json!(1e-6)));
    hf.defaults
        .insert("tie_word_embeddings".into(), json!(false));
    notes.insert(
        "hf.defaults".into(),
        "CHECK: the config class's defaults for keys a config.json may lack (transformers' configuration_<model_type>.py); these are this checkpoint's values".into(),
    );
}

/// The built-in llama HF names, under the checkpoint's own layer prefix.
fn hf_conventional(found: &Found) -> TensorNames {
    let llama = FamilySpec::builtin_named("llama").expect("the llama spec is built in");
    let mut t = llama.hf.expect("llama reads checkpoints").tensors;
    let prefix = found
        .values()
        .find_map(|n| n.find("{i}.").map(|p| n[..p + 4].to_string()));
    if let Some(p) = prefix {
        if p != "model.layers.{i}." {
            for role in TensorRole::ALL.into_iter().filter(|r| r.per_layer()) {
                let v = t.get(role).replace("model.layers.{i}.", &p);
                t.set(role, v);
            }
        }
    }
    t
}

/// Appends `# note` to the YAML lines whose dotted key path has one.
pub fn annotate(yaml: &str, notes: &Notes) -> String {
    let mut stack: Vec<(usize, String)> = vec![];
    let mut out = String::new();
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        let key = body
            .split_once(':')
            .map(|(k, _)| k)
            .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        out.push_str(line);
        if let Some(k) = key {
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            stack.push((indent, k.to_string()));
            let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
            if let Some(n) = notes.get(&path.join(".")) {
                out.push_str("  # ");
                out.push_str(n);
            }
        }
        out.push('\n');
    }
    out
}

/// What `atenia inspect` prints for the checkpoint at `path`: the built-in
/// spec that matches it (`spec`), or a draft, annotated.
pub fn report(path: &Path, f: &Inventory, spec: Option<&FamilySpec>) -> String {
    let what = if f.format == "gguf" {
        format!("GGUF file, general.architecture {:?}", f.architecture)
    } else {
        format!(
            "Hugging Face checkpoint, architectures {:?}, model_type {:?}",
            f.architecture,
            f.model_type.as_deref().unwrap_or("")
        )
    };
    let mut out = String::new();
    out.push_str(&format!("# atenia inspect {}\n", path.display()));
    out.push_str(&format!("# {what}, {} tensors.\n", f.tensors.len()));
    match spec {
        Some(s) => builtin_report(&mut out, f, s),
        None => draft_report(&mut out, path, f),
    }
    out
}

/// The matching built-in spec, as its file in `engine/specs/` says it.
fn builtin_report(out: &mut String, f: &Inventory, s: &FamilySpec) {
    let names = if f.format == "gguf" {
        &s.tensors
    } else {
        &s.hf.as_ref().expect("matched by its hf section").tensors
    };
    let missing = unread(f, names);
    out.push_str(&format!(
        "# Matches the built-in family `{}` (engine/specs/{}.yaml): no new spec is needed.\n\
         # Below is that spec, to copy and adapt.\n",
        s.name, s.name
    ));
    if missing.is_empty() {
        out.push_str("# Every tensor of the checkpoint has a field in it.\n");
    } else {
        out.push_str(&format!(
            "# CHECK: {} tensor name(s) of the checkpoint have no field in it: {}\n",
            missing.len(),
            missing.join(", ")
        ));
    }
    let text = BUILTIN_SPEC_FILES
        .iter()
        .find(|(file, _)| *file == format!("{}.yaml", s.name))
        .map(|(_, t)| t.to_string())
        .unwrap_or_else(|| s.to_yaml());
    out.push_str(&text);
}

/// A draft spec, its check, its notes, and the tensors it has no field for.
fn draft_report(out: &mut String, path: &Path, f: &Inventory) {
    let (d, notes) = draft(f);
    let (_, unmapped) = roles(f);
    out.push_str(&format!(
        "# No built-in family reads it. This is a DRAFT drafted from the tensor names and\n\
         # the {}; lines marked CHECK need a human (the file cannot settle them).\n\
         # Save it, then try it: atenia load {}.yaml -m {} -p \"Hello\"\n",
        if f.format == "gguf" {
            "metadata"
        } else {
            "config.json"
        },
        d.name,
        path.display()
    ));
    let check = d.check();
    for e in &check.errors {
        out.push_str(&format!("# CHECK (error): {e}\n"));
    }
    for w in &check.warnings {
        out.push_str(&format!("# CHECK (warning): {w}\n"));
    }
    out.push_str(&annotate(&d.to_yaml(), &notes));
    if !unmapped.is_empty() {
        let templates = by_template(f);
        out.push_str(
            "# CHECK: tensors with no field in a spec. The engine has no slot for them, so a\n\
             # model that needs them needs support in Rust, not only a spec:\n",
        );
        for t in &unmapped {
            let (n, types, shape) = &templates[t];
            out.push_str(&format!(
                "#   {t}  ({n} x {} {shape:?})\n",
                types.iter().cloned().collect::<Vec<_>>().join("/")
            ));
        }
    }
}

/// GGUF architectures whose rotary pairs are `(2i, 2i + 1)` in llama.cpp
/// (`LLAMA_ROPE_TYPE_NORM`), and some known to pair `(i, i + d/2)` (NEOX).
const ROPE_NORM: &[&str] = &[
    "llama",
    "llama4",
    "deci",
    "baichuan",
    "starcoder",
    "internlm2",
    "minicpm",
    "xverse",
    "command-r",
    "cohere2",
    "olmo",
    "arctic",
    "deepseek",
    "deepseek2",
    "plm",
    "chatglm",
    "glm4",
    "granite",
    "granitemoe",
    "chameleon",
    "bailingmoe",
    "smollm3",
    "arcee",
    "ernie4_5",
];
const ROPE_NEOX: &[&str] = &[
    "falcon",
    "grok",
    "dbrx",
    "stablelm",
    "bitnet",
    "qwen",
    "qwen2",
    "qwen2moe",
    "qwen3",
    "qwen3moe",
    "olmo2",
    "olmoe",
    "phi2",
    "phi3",
    "phimoe",
    "plamo",
    "gemma",
    "gemma2",
    "gemma3",
    "starcoder2",
    "openelm",
    "gptneox",
    "codeshell",
    "orion",
    "nemotron",
    "exaone",
    "minicpm3",
    "hunyuan-dense",
    "lfm2",
    "seed_oss",
];

/// How llama.cpp pairs the rotary dimensions of a GGUF architecture, and why
/// the draft says so (`CHECK` for an architecture in neither table).
pub fn gguf_rope_style(arch: &str) -> (RopeStyle, &'static str) {
    if ROPE_NORM.contains(&arch) {
        (
            RopeStyle::Interleaved,
            "llama.cpp ropes this architecture with (2i, 2i+1) pairs (LLAMA_ROPE_TYPE_NORM)",
        )
    } else if ROPE_NEOX.contains(&arch) {
        (
            RopeStyle::Half,
            "llama.cpp ropes this architecture with (i, i+d/2) pairs (LLAMA_ROPE_TYPE_NEOX)",
        )
    } else {
        (RopeStyle::Half, "CHECK: unknown architecture; llama.cpp's llama_model_rope_type() says: NORM -> interleaved, NEOX -> half")
    }
}

fn set_field(t: &mut TensorNames, field: &str, v: String) {
    if let Some(role) = TensorRole::from_key(field) {
        t.set(role, v);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::family::inventory::roles;
    use crate::formats::gguf::GgufFile;
    use crate::formats::safetensors::SafetensorsSet;

    fn golden() -> PathBuf {
        atenia_testkit::golden()
    }

    fn dirs(p: PathBuf) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        v
    }

    /// The sliding pattern's kind, not its keys (a draft cannot know those).
    fn kind<T: std::fmt::Debug>(t: &T) -> String {
        let s = format!("{t:?}");
        s.split([' ', '{', '(']).next().unwrap().to_string()
    }

    /// Where a draft differs from the built-in spec in what the engine
    /// computes with: `hf_side` picks the GGUF or the Hugging Face fields. A
    /// sliding pattern the draft marks CHECK (the file cannot settle it) may
    /// differ.
    fn differences(
        d: &FamilySpec,
        b: &FamilySpec,
        found: &Found,
        notes: &Notes,
        hf_side: bool,
    ) -> Vec<String> {
        let checked = |field: &str| notes.get(field).is_some_and(|n| n.contains("CHECK"));
        let mut out = vec![];
        let mut same = |what: &str, x: String, y: String| {
            if x != y {
                out.push(format!("{what}: draft {x}, built-in {y}"));
            }
        };
        same(
            "activation",
            format!("{:?}", d.activation),
            format!("{:?}", b.activation),
        );
        same(
            "embed_scale",
            d.embed_scale_sqrt_hidden.to_string(),
            b.embed_scale_sqrt_hidden.to_string(),
        );
        same("qk_norm", d.qk_norm.to_string(), b.qk_norm.to_string());
        same(
            "post_norms",
            d.post_norms.to_string(),
            b.post_norms.to_string(),
        );
        same(
            "fused_gate_up",
            d.fused_gate_up.to_string(),
            b.fused_gate_up.to_string(),
        );
        let (dt, bt) = if hf_side {
            let (dh, bh) = (d.hf.as_ref().unwrap(), b.hf.as_ref().unwrap());
            same(
                "hf.norm_weight_offset",
                dh.norm_weight_offset.to_string(),
                bh.norm_weight_offset.to_string(),
            );
            if !checked("hf.sliding") {
                same("hf.sliding", kind(&dh.sliding), kind(&bh.sliding));
            }
            same(
                "hf.attn_scale_key",
                format!("{:?}", dh.attn_scale_key),
                format!("{:?}", bh.attn_scale_key),
            );
            same(
                "hf.attn_softcap_key",
                format!("{:?}", dh.attn_softcap_key),
                format!("{:?}", bh.attn_softcap_key),
            );
            same(
                "hf.final_softcap_key",
                format!("{:?}", dh.final_softcap_key),
                format!("{:?}", bh.final_softcap_key),
            );
            (&dh.tensors, &bh.tensors)
        } else {
            same(
                "rope_style",
                format!("{:?}", d.rope_style),
                format!("{:?}", b.rope_style),
            );
            same(
                "norm_weight_offset",
                d.norm_weight_offset.to_string(),
                b.norm_weight_offset.to_string(),
            );
            if !checked("sliding") {
                same("sliding", kind(&d.sliding), kind(&b.sliding));
            }
            same(
                "sliding_rope_theta",
                format!("{:?}", d.sliding_rope_theta),
                format!("{:?}", b.sliding_rope_theta),
            );
            same(
                "attn_softcap_key",
                format!("{:?}", d.attn_softcap_key),
                format!("{:?}", b.attn_softcap_key),
            );
            same(
                "final_softcap_key",
                format!("{:?}", d.final_softcap_key),
                format!("{:?}", b.final_softcap_key),
            );
            (&d.tensors, &b.tensors)
        };
        for field in found.keys() {
            let role = TensorRole::from_key(field).expect("found keys are roles");
            same(
                &format!("tensors.{field}"),
                format!("{:?}", dt.get(role)),
                format!("{:?}", bt.get(role)),
            );
        }
        out
    }

    #[test]
    fn drafts_from_gguf_fixtures_match_the_builtin_specs() {
        let mut checked = 0;
        let mut wrong = vec![];
        for dir in dirs(golden().join("gguf")) {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
                .collect();
            files.sort();
            let file = GgufFile::open(&files[0]).unwrap();
            let inv = Inventory::from_gguf(&file).unwrap();
            let builtin = FamilySpec::for_gguf_architecture(&inv.architecture).unwrap();
            let (d, notes) = draft(&inv);
            assert_eq!(d.gguf_architectures, vec![inv.architecture.clone()]);
            assert!(d.hf.is_none() && notes.contains_key("hf"));
            let (found, unmapped) = roles(&inv);
            assert!(unmapped.is_empty(), "{}: {unmapped:?}", dir.display());
            assert!(notes["rope_style"].contains("LLAMA_ROPE_TYPE"));
            for w in differences(&d, &builtin, &found, &notes, false) {
                wrong.push(format!("{}: {w}", dir.display()));
            }
            checked += 1;
        }
        assert_eq!(checked, 8);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn drafts_from_hf_fixtures_match_the_builtin_specs() {
        let mut checked = 0;
        let mut wrong = vec![];
        for dir in dirs(golden().join("hf")) {
            let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
            let config: Map<String, Value> = serde_json::from_str(&text).unwrap();
            let inv = Inventory::from_hf(Some("case".into()), config, || {
                SafetensorsSet::single(dir.join("model.safetensors"))
            })
            .unwrap();
            let builtin = FamilySpec::for_hf_architecture(&inv.architecture).unwrap();
            // `sliding_window: null` slides no layer, whatever hf.sliding says.
            let no_window = inv.config.get("sliding_window").is_none_or(Value::is_null);
            let (mut d, notes) = draft(&inv);
            assert!(d.gguf_architectures.is_empty());
            let (found, _) = roles(&inv);
            if no_window && d.hf.as_ref().unwrap().sliding == HfSliding::None {
                d.hf.as_mut().unwrap().sliding = builtin.hf.as_ref().unwrap().sliding.clone();
            }
            for w in differences(&d, &builtin, &found, &notes, true) {
                wrong.push(format!("{}: {w}", dir.display()));
            }
            checked += 1;
        }
        assert_eq!(checked, 10);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn rope_tables() {
        assert_eq!(gguf_rope_style("llama").0, RopeStyle::Interleaved);
        assert_eq!(gguf_rope_style("qwen2").0, RopeStyle::Half);
        let (style, note) = gguf_rope_style("no-such-arch");
        assert_eq!(style, RopeStyle::Half);
        assert!(note.starts_with("CHECK"));
    }

    #[test]
    fn annotate_follows_nesting() {
        let mut n = Notes::new();
        n.insert("a.b".to_string(), "note".to_string());
        n.insert("c".to_string(), "top".to_string());
        let y = "a:\n  b: 1\n  c: 2\nc: 3\n";
        assert_eq!(annotate(y, &n), "a:\n  b: 1  # note\n  c: 2\nc: 3  # top\n");
    }
}
