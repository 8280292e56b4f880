//! Family specs as YAML files: the embedded built-in files equal what the Rust
//! builders produced before the families moved to YAML; the parser rejects
//! unknown fields with their line; validation tells errors from warnings; and
//! a new Llama-like family needs only a YAML file (`atenia load`).

use atenia_testkit as tk;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use atenia_engine::exec::decoder::{Logits, Session};
use atenia_engine::exec::digest::logits_sha256;
use atenia_engine::family::roles::{TensorFormat, TensorNames, TensorRole};
use atenia_engine::family::spec::{
    FamilySpec, HfLayerTypes, HfSliding, SlidingPattern, SpmFlavor, BUILTIN_SPEC_FILES,
};
use atenia_engine::formats::gguf::GgufFile;
use atenia_engine::kernels::activation::Activation;
use atenia_engine::kernels::rope::RopeStyle;
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::Model;
use serde_json::json;

// ---------------------------------------------------------------------------
// The role table: one default table of tensor names, per-family overrides.

/// What each built-in family is, in brief: the fields that tell the families
/// apart, and the tensor names each overrides (GGUF, Hugging Face).
#[test]
fn builtin_specs_are_the_families_they_claim() {
    type Row = (
        &'static str,
        &'static [&'static str],
        Activation,
        RopeStyle,
        [bool; 4], // embed_scale_sqrt_hidden, qk_norm, post_norms, fused_gate_up
        &'static [&'static str],
    );
    let sandwich: &[&str] = &["post_attn_norm", "ffn_norm"];
    let rows: [Row; 8] = [
        (
            "llama",
            &["llama"],
            Activation::Silu,
            RopeStyle::Interleaved,
            [false; 4],
            &[],
        ),
        (
            "mistral",
            &[],
            Activation::Silu,
            RopeStyle::Half,
            [false; 4],
            &[],
        ),
        (
            "qwen2",
            &["qwen2"],
            Activation::Silu,
            RopeStyle::Half,
            [false; 4],
            &[],
        ),
        (
            "qwen3",
            &["qwen3"],
            Activation::Silu,
            RopeStyle::Half,
            [false, true, false, false],
            &[],
        ),
        (
            "gemma",
            &["gemma"],
            Activation::GeluTanh,
            RopeStyle::Half,
            [true, false, false, false],
            &[],
        ),
        (
            "gemma2",
            &["gemma2"],
            Activation::GeluTanh,
            RopeStyle::Half,
            [true, false, true, false],
            sandwich,
        ),
        (
            "gemma3",
            &["gemma3"],
            Activation::GeluTanh,
            RopeStyle::Half,
            [true, true, true, false],
            sandwich,
        ),
        (
            "phi3",
            &["phi3"],
            Activation::Silu,
            RopeStyle::Half,
            [false, false, false, true],
            &["up"],
        ),
    ];
    let builtin = FamilySpec::builtin();
    assert_eq!(builtin.len(), rows.len());
    assert_eq!(builtin.len(), BUILTIN_SPEC_FILES.len());
    for (s, (name, archs, act, rope, flags, hf_over)) in builtin.iter().zip(rows) {
        assert_eq!(s.name, name);
        assert_eq!(s.gguf_architectures, archs, "{name}");
        assert_eq!(s.activation, act, "{name}");
        assert_eq!(s.rope_style, rope, "{name}");
        assert_eq!(
            [
                s.embed_scale_sqrt_hidden,
                s.qk_norm,
                s.post_norms,
                s.fused_gate_up
            ],
            flags,
            "{name}"
        );
        // How a GGUF SentencePiece vocabulary is tokenized: data, not a name.
        let spm = match name {
            "gemma" | "gemma2" | "gemma3" => Some(SpmFlavor::Gemma),
            "phi3" => Some(SpmFlavor::Phi3),
            _ => None,
        };
        assert_eq!(s.sentencepiece, spm, "{name}");
        assert!(s.tensors.overrides(TensorFormat::Gguf).is_empty(), "{name}");
        let hf = s.hf.as_ref().unwrap();
        let got: Vec<&str> = hf
            .tensors
            .overrides(TensorFormat::Hf)
            .iter()
            .map(|(r, _)| r.key())
            .collect();
        let mut want = hf_over.to_vec();
        want.sort_by_key(|k| TensorRole::from_key(k).unwrap());
        assert_eq!(got, want, "{name}");
    }
    // Each file is named after its family.
    for ((file, _), spec) in BUILTIN_SPEC_FILES.iter().zip(&builtin) {
        assert_eq!(*file, format!("{}.yaml", spec.name));
    }
}

/// Tensor names of a GGUF file or a checkpoint directory.
fn tensor_names(path: &Path) -> BTreeSet<String> {
    if path.is_dir() {
        let bytes = std::fs::read(path.join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        st.names().into_iter().map(str::to_string).collect()
    } else {
        let g = GgufFile::open(path).unwrap();
        g.tensors.iter().map(|t| t.name.clone()).collect()
    }
}

/// Roles a file of the family may lack: read only when present, or in
/// place of another (a fused qkv instead of q, k, v), or not read by it.
fn optional(spec: &FamilySpec, role: TensorRole, fused_qkv: bool) -> bool {
    use TensorRole as R;
    match role {
        R::Output | R::QBias | R::KBias | R::VBias => true,
        R::Qkv => !fused_qkv,
        R::Q | R::K | R::V => fused_qkv,
        R::QNorm | R::KNorm => !spec.qk_norm,
        R::PostAttnNorm | R::PostFfnNorm => !spec.post_norms,
        R::Gate => spec.fused_gate_up,
        _ => false,
    }
}

/// Every golden fixture with the built-in spec that reads it.
fn fixtures_by_family() -> Vec<(FamilySpec, TensorFormat, PathBuf)> {
    let mut out = vec![];
    for e in std::fs::read_dir(tk::golden().join("gguf")).unwrap() {
        let dir = e.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|x| x == "gguf") {
                let arch = GgufFile::open(&f)
                    .unwrap()
                    .architecture()
                    .unwrap()
                    .to_string();
                let spec = FamilySpec::for_gguf_architecture(&arch).unwrap();
                out.push((spec, TensorFormat::Gguf, f));
            }
        }
    }
    for e in std::fs::read_dir(tk::golden().join("hf")).unwrap() {
        let dir = e.unwrap().path();
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let arch = cfg["architectures"][0].as_str().unwrap();
        let spec = FamilySpec::for_hf_architecture(arch).unwrap();
        out.push((spec, TensorFormat::Hf, dir));
    }
    out
}

#[test]
fn every_role_resolves_to_a_tensor_of_the_familys_fixtures() {
    let fixtures = fixtures_by_family();
    let families: BTreeSet<&str> = fixtures.iter().map(|(s, _, _)| s.name.as_str()).collect();
    assert_eq!(families.len(), FamilySpec::builtin().len(), "{families:?}");
    for (spec, format, path) in &fixtures {
        let names = match format {
            TensorFormat::Gguf => &spec.tensors,
            TensorFormat::Hf => &spec.hf.as_ref().unwrap().tensors,
        };
        let present = tensor_names(path);
        let at = |role: TensorRole, layer: usize| names.layer(role, layer);
        let fused_qkv = present.contains(&at(TensorRole::Qkv, 0));
        let mut read = BTreeSet::new();
        for role in TensorRole::ALL {
            let found = present.contains(&at(role, 0));
            assert!(
                found || optional(spec, role, fused_qkv),
                "{}: {role} ({}) is not in {}",
                spec.name,
                at(role, 0),
                path.display()
            );
            for layer in 0..64 {
                read.insert(at(role, layer));
            }
        }
        // ...and no tensor of the fixture is left without a role.
        let unread: Vec<&String> = present
            .iter()
            .filter(|n| !read.contains(*n) && !n.ends_with("rotary_emb.inv_freq"))
            .collect();
        assert!(unread.is_empty(), "{}: {unread:?}", path.display());
    }
}

#[test]
fn a_family_override_replaces_the_default_name() {
    let phi3 = FamilySpec::builtin_named("phi3").unwrap();
    let llama = FamilySpec::builtin_named("llama").unwrap();
    let (p, l) = (&phi3.hf.unwrap().tensors, &llama.hf.unwrap().tensors);
    assert_eq!(
        p.get(TensorRole::Up),
        "model.layers.{i}.mlp.gate_up_proj.weight"
    );
    assert_eq!(l.get(TensorRole::Up), "model.layers.{i}.mlp.up_proj.weight");
    for role in TensorRole::ALL.into_iter().filter(|&r| r != TensorRole::Up) {
        assert_eq!(p.get(role), l.get(role), "{role}");
    }
    // In a file of one's own: a GGUF override, the rest left to the defaults.
    let text = format!(
        "{}tensors:\n  down: blk.{{i}}.mlp_out.weight\n",
        builtin_text("llama")
    );
    let s = FamilySpec::from_yaml(&text, "t.yaml").unwrap();
    assert_eq!(s.tensors.layer(TensorRole::Down, 3), "blk.3.mlp_out.weight");
    assert_eq!(s.tensors.get(TensorRole::Up), "blk.{i}.ffn_up.weight");
    assert_eq!(
        s.tensors.overrides(TensorFormat::Gguf),
        [(TensorRole::Down, "blk.{i}.mlp_out.weight")]
    );
    // The override reaches the binder: a llama file lacks that tensor.
    let g = GgufFile::open(llama_q8()).unwrap();
    let e = Model::from_gguf_with_spec(&g, g.storage(), s)
        .err()
        .unwrap();
    assert!(e.to_string().contains("blk.0.mlp_out.weight"), "{e}");
}

#[test]
fn an_unknown_role_is_refused_with_its_name_and_line() {
    let text = format!(
        "{}tensors:\n  down: blk.{{i}}.ffn_down.weight\n  dwn: blk.{{i}}.ffn_down.weight\n",
        builtin_text("llama")
    );
    let at = text.lines().count();
    let e = FamilySpec::from_yaml(&text, "t.yaml").unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.code(), "E-SPEC");
    assert!(msg.contains("unknown variant `dwn`"), "{msg}");
    assert!(msg.contains("expected one of `embed`"), "{msg}");
    assert!(msg.contains(&format!("line {at}")), "{msg}");
    assert!(msg.contains("t.yaml"), "{msg}");
}

/// A spec written with the whole table, as before the default table existed,
/// reads the same as one that lists only overrides.
#[test]
fn a_full_tensor_table_still_reads() {
    let full = FamilySpec::builtin_named("gemma3").unwrap().to_yaml();
    assert!(
        full.contains("    k_bias: model.layers.{i}.self_attn.k_proj.bias"),
        "{full}"
    );
    assert!(full.contains("  down: blk.{i}.ffn_down.weight"), "{full}");
    let back = FamilySpec::from_yaml(&full, "full.yaml").unwrap();
    assert_eq!(back, FamilySpec::builtin_named("gemma3").unwrap());
}

// ---------------------------------------------------------------------------

#[test]
fn builtin_specs_validate_without_errors_or_warnings() {
    for spec in FamilySpec::builtin() {
        let c = spec.check();
        assert!(c.errors.is_empty(), "{}: {:?}", spec.name, c.errors);
        assert!(c.warnings.is_empty(), "{}: {:?}", spec.name, c.warnings);
        assert_eq!(spec.validate().unwrap(), Vec::<String>::new());
    }
}

fn builtin_text(name: &str) -> &'static str {
    BUILTIN_SPEC_FILES
        .iter()
        .find(|(f, _)| *f == format!("{name}.yaml"))
        .unwrap()
        .1
}

/// The llama file with line `at` (1-based) replaced.
fn edit_line(at: usize, with: &str) -> String {
    let mut lines: Vec<String> = builtin_text("llama").lines().map(str::to_string).collect();
    lines[at - 1] = with.to_string();
    lines.join("\n")
}

fn line_of(text: &str, starts: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(starts))
        .unwrap()
        + 1
}

#[test]
fn unknown_fields_are_rejected_with_their_name_and_line() {
    let text = builtin_text("llama");
    // A misspelt top-level field.
    let at = line_of(text, "qk_norm:");
    let e = FamilySpec::from_yaml(&edit_line(at, "qk_normm: false"), "t.yaml").unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.code(), "E-SPEC");
    assert!(msg.contains("qk_normm"), "{msg}");
    assert!(msg.contains(&format!("line {at}")), "{msg}");
    assert!(msg.contains("t.yaml"), "{msg}");
    // A misspelt tensor role, nested two levels down.
    let at = line_of(text, "model_types:");
    let e = FamilySpec::from_yaml(
        &edit_line(
            at,
            "  tensors:\n    kbias: model.layers.{i}.self_attn.k_proj.bias\n  model_types:",
        ),
        "t.yaml",
    )
    .unwrap_err();
    let at = at + 1;
    let msg = e.to_string();
    assert!(msg.contains("kbias"), "{msg}");
    assert!(msg.contains(&format!("line {at}")), "{msg}");
    // An unknown variant of an enum.
    let at = line_of(text, "sliding: none");
    let e = FamilySpec::from_yaml(&edit_line(at, "sliding: sometimes"), "t.yaml").unwrap_err();
    assert!(e.to_string().contains("sometimes"), "{e}");
    // A value of the wrong type.
    let at = line_of(text, "qk_norm:");
    let e = FamilySpec::from_yaml(&edit_line(at, "qk_norm: 3"), "t.yaml").unwrap_err();
    assert!(e.to_string().contains(&format!("line {at}")), "{e}");
    // A missing required field.
    let at = line_of(text, "rope_style: interleaved");
    let e = FamilySpec::from_yaml(&edit_line(at, ""), "t.yaml").unwrap_err();
    assert!(e.to_string().contains("rope_style"), "{e}");
}

#[test]
fn the_schema_version_is_required_and_checked() {
    let text = builtin_text("llama");
    let at = line_of(text, "schema:");
    let e = FamilySpec::from_yaml(&edit_line(at, ""), "t.yaml").unwrap_err();
    assert!(e.to_string().contains("missing `schema:`"), "{e}");
    let e = FamilySpec::from_yaml(&edit_line(at, "schema: 2"), "t.yaml").unwrap_err();
    assert!(e.to_string().contains("schema 2 is not supported"), "{e}");
    let e = FamilySpec::from_yaml(&edit_line(at, "schema: one"), "t.yaml").unwrap_err();
    assert!(e.to_string().contains("schema one is not supported"), "{e}");
    let e = FamilySpec::from_yaml("- a\n- b\n", "t.yaml").unwrap_err();
    assert!(e.to_string().contains("not a YAML mapping"), "{e}");
}

/// The built-in llama spec, edited.
fn llama_with(f: impl FnOnce(&mut FamilySpec)) -> FamilySpec {
    let mut s = FamilySpec::builtin_named("llama").unwrap();
    f(&mut s);
    s
}

fn has(list: &[String], needle: &str) -> bool {
    list.iter().any(|m| m.contains(needle))
}

#[test]
fn validation_tells_errors_from_warnings() {
    // Errors.
    let cases: Vec<(FamilySpec, &str)> = vec![
        (
            llama_with(|s| s.tensors.set(TensorRole::Q, "blk.attn_q.weight".into())),
            "tensors.q: \"blk.attn_q.weight\" is a per-layer tensor but has no {i}",
        ),
        (
            llama_with(|s| {
                s.tensors
                    .set(TensorRole::Embed, "blk.{i}.token_embd.weight".into())
            }),
            "tensors.embed",
        ),
        (
            llama_with(|s| {
                s.tensors
                    .set(TensorRole::Q, "blk.{layer}.attn_q.weight".into())
            }),
            "placeholder {layer}",
        ),
        (
            llama_with(|s| {
                s.tensors
                    .set(TensorRole::K, s.tensors.get(TensorRole::Q).into())
            }),
            "two weights cannot be one tensor",
        ),
        (
            llama_with(|s| {
                s.gguf_architectures.clear();
                s.hf = None;
            }),
            "gguf_architectures: is empty",
        ),
        (
            llama_with(|s| s.hf.as_mut().unwrap().architectures.clear()),
            "hf.architectures: is empty",
        ),
        (
            llama_with(|s| {
                s.sliding = SlidingPattern::Periodic {
                    period: 0,
                    period_key: None,
                }
            }),
            "sliding.periodic.period: is 0",
        ),
        (
            llama_with(|s| {
                s.hf.as_mut().unwrap().sliding = HfSliding::LayerTypes {
                    default: HfLayerTypes::Periodic {
                        period: 0,
                        period_keys: vec![],
                    },
                    enable_key: None,
                }
            }),
            "hf.sliding.layer_types.default.periodic.period: is 0",
        ),
        (
            llama_with(|s| s.hf.as_mut().unwrap().activation_keys.clear()),
            "hf.activation_keys: is empty",
        ),
        (
            llama_with(|s| s.attn_softcap_key = Some("{model}.softcap".into())),
            "placeholder {model}",
        ),
        (llama_with(|s| s.name = " ".into()), "name: is empty"),
        (
            llama_with(|s| s.norm_weight_offset = f64::NAN),
            "norm_weight_offset: NaN",
        ),
        (
            llama_with(|s| s.sliding_rope_theta = Some(0.5)),
            "sliding_rope_theta: 0.5",
        ),
        (llama_with(|s| s.schema = 7), "schema: 7"),
    ];
    for (spec, want) in cases {
        let c = spec.check();
        assert!(has(&c.errors, want), "want error {want:?}, got {c:?}");
        let e = spec.validate().unwrap_err();
        assert_eq!(e.code(), "E-SPEC");
        assert!(e.to_string().contains(want), "{e}");
    }
    // Warnings only.
    let cases: Vec<(FamilySpec, &str)> = vec![
        (
            llama_with(|s| s.tensors.set(TensorRole::Q, "model.layers.{i}.self_attn.q_proj.weight".into())),
            "tensors.q: \"model.layers.{i}.self_attn.q_proj.weight\" does not look like a GGUF tensor name",
        ),
        (
            llama_with(|s| s.hf.as_mut().unwrap().tensors.set(TensorRole::Q, "blk.{i}.attn_q.weight".into())),
            "does not look like a Hugging Face tensor name",
        ),
        (
            llama_with(|s| s.tensors.set(TensorRole::QBias, "blk.{i}.attn_q.weight_b".into())),
            "does not end in .bias",
        ),
        (
            llama_with(|s| s.norm_weight_offset = 0.5),
            "norm_weight_offset: 0.5 is unusual",
        ),
        (
            llama_with(|s| {
                s.sliding = SlidingPattern::Periodic {
                    period: 1,
                    period_key: None,
                }
            }),
            "no layer slides",
        ),
        (
            llama_with(|s| s.sliding_rope_theta = Some(10000.0)),
            "no layer uses it",
        ),
        (
            llama_with(|s| s.gguf_architectures.push("llama".into())),
            "listed twice",
        ),
        (
            llama_with(|s| s.gguf_architectures = vec!["Llama".into()]),
            "lower case",
        ),
        (
            llama_with(|s| s.hf.as_mut().unwrap().rope_style = RopeStyle::Interleaved),
            "hf.rope_style",
        ),
        (
            llama_with(|s| s.hf.as_mut().unwrap().architectures = vec!["LlamaModel".into()]),
            "ForCausalLM",
        ),
        (
            llama_with(|s| {
                s.hf.as_mut().unwrap().defaults.remove("rope_theta");
            }),
            "has no rope_theta",
        ),
        (
            llama_with(|s| s.attn_softcap_key = Some("attn_logit_softcapping".into())),
            "lacks {arch}",
        ),
    ];
    for (spec, want) in cases {
        let c = spec.check();
        assert!(c.errors.is_empty(), "{want}: {:?}", c.errors);
        assert!(has(&c.warnings, want), "want warning {want:?}, got {c:?}");
        assert!(has(&spec.validate().unwrap(), want));
    }
    // Names that the binder never reads together may coincide.
    let s = llama_with(|s| {
        s.tensors
            .set(TensorRole::Gate, s.tensors.get(TensorRole::Up).into())
    });
    assert!(!s.check().errors.is_empty());
    let s = llama_with(|s| {
        s.fused_gate_up = true;
        s.tensors
            .set(TensorRole::Gate, s.tensors.get(TensorRole::Up).into());
    });
    assert!(s.check().errors.is_empty(), "{:?}", s.check());
}

#[test]
fn optional_fields_take_their_documented_defaults() {
    let text =
        "schema: 1\nname: tiny\ngguf_architectures: [tiny]\nactivation: silu\nrope_style: half\n";
    let s = FamilySpec::from_yaml(text, "tiny.yaml").unwrap();
    let mut want = FamilySpec::builtin_named("qwen2").unwrap();
    want.name = "tiny".into();
    want.gguf_architectures = vec!["tiny".into()];
    want.hf = None;
    assert_eq!(s, want);
    assert_eq!(s.tensors, TensorNames::defaults(TensorFormat::Gguf));
}

// ---------------------------------------------------------------------------
// The CLI: `atenia load` and `atenia inspect`.

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("atenia-specs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn atenia(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atenia"))
        .args(args)
        .output()
        .expect("the atenia binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `atenia load SPEC -m MODEL --ids IDS --json`, parsed.
fn cli_load(spec: &Path, model: &Path, ids: &[u32]) -> serde_json::Value {
    let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let (rc, out, err) = atenia(&[
        "load",
        spec.to_str().unwrap(),
        "-m",
        model.to_str().unwrap(),
        "--ids",
        &ids.join(","),
        "--threads",
        "2",
        "--json",
    ]);
    assert_eq!(rc, 0, "atenia load failed:\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The last position's logits of a model run in-process.
fn last_logits(model: &Model, ids: &[u32]) -> Vec<f32> {
    let rt = Runtime::new(2, None).unwrap();
    let mut s = Session::new(model, &rt, ids.len()).unwrap();
    let mut out = vec![];
    s.forward(ids, Logits::Last, &mut out).unwrap();
    out
}

fn builtin_gguf_logits(file: &Path, ids: &[u32]) -> Vec<f32> {
    let g = GgufFile::open(file).unwrap();
    let model = Model::from_gguf(&g, g.storage()).unwrap();
    last_logits(&model, ids)
}

/// Asserts the CLI's top tokens are the in-process logits' top tokens, bit for bit.
fn assert_same_top(v: &serde_json::Value, logits: &[f32]) {
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let top = v["top"].as_array().unwrap();
    assert_eq!(top.len(), 5);
    for (t, &i) in top.iter().zip(&idx) {
        assert_eq!(t["id"].as_u64().unwrap() as usize, i);
        assert_eq!(t["logit"].as_f64().unwrap() as f32, logits[i]);
    }
}

const IDS: &[u32] = &[1, 327, 273, 459, 472, 268, 316, 293, 456, 506, 305, 461];

fn llama_q8() -> PathBuf {
    tk::golden().join("gguf/llama/llama-Q8_0.gguf")
}

fn specs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("specs")
}

#[test]
fn a_new_llama_family_needs_only_a_yaml_file() {
    let dir = Scratch::new("my-llama");
    let spec = dir.0.join("my-llama.yaml");
    let mut text = String::from(
        "# A family the engine has never heard of, claiming llama files.\n\
         schema: 1\n\
         name: my-llama\n\
         gguf_architectures: [llama]\n\
         activation: silu\n\
         rope_style: interleaved\n",
    );
    text += "# No tensors: the names of engine/specs/tensors.yaml.\n";
    std::fs::write(&spec, &text).unwrap();

    let want = builtin_gguf_logits(&llama_q8(), IDS);
    let v = cli_load(&spec, &llama_q8(), IDS);
    assert_eq!(v["family"], "my-llama");
    assert_eq!(v["architecture"], "llama");
    assert_eq!(v["warnings"], json!([]));
    assert_eq!(v["n_layers"], 2);
    assert_eq!(v["input_ids"], json!(IDS));
    assert_eq!(
        v["logits_hash"],
        logits_sha256(&want),
        "logits differ from the built-in llama spec's"
    );
    assert_same_top(&v, &want);
    // The built-in file itself, through the same command, gives the same bits.
    let v = cli_load(&specs_dir().join("llama.yaml"), &llama_q8(), IDS);
    assert_eq!(v["family"], "llama");
    assert_eq!(v["logits_hash"], logits_sha256(&want));

    // A prompt goes through the file's tokenizer.
    let (rc, out, err) = atenia(&[
        "load",
        spec.to_str().unwrap(),
        "-m",
        llama_q8().to_str().unwrap(),
        "-p",
        "the light",
    ]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.contains("family my-llama"), "{out}");
    assert!(out.contains("top 5 next tokens"), "{out}");
}

#[test]
fn every_builtin_spec_file_loads_its_fixtures_through_the_cli() {
    // GGUF fixtures, and Hugging Face fixtures, with the files of engine/specs.
    for (family, gguf) in [
        ("llama", "llama/llama-Q4_K_M-mixed.gguf"),
        ("llama", "mistral/mistral-Q4_K_M-mixed.gguf"),
        ("qwen2", "qwen2/qwen2-Q4_K_M-mixed.gguf"),
        ("qwen3", "qwen3/qwen3-Q4_K_M-mixed.gguf"),
        ("gemma", "gemma/gemma-Q4_K_M-mixed.gguf"),
        ("gemma2", "gemma2/gemma2-Q4_K_M-mixed.gguf"),
        ("gemma3", "gemma3/gemma3-Q4_K_M-mixed.gguf"),
        ("phi3", "phi3/phi3-Q4_K_M-mixed.gguf"),
    ] {
        let file = tk::golden().join("gguf").join(gguf);
        let v = cli_load(&specs_dir().join(format!("{family}.yaml")), &file, IDS);
        assert_eq!(v["family"], family);
        assert_eq!(
            v["logits_hash"],
            logits_sha256(&builtin_gguf_logits(&file, IDS)),
            "{gguf}"
        );
    }
    for (family, dir) in [
        ("llama", "llama-tied-f32"),
        ("mistral", "mistral-swa-f16"),
        ("gemma3", "gemma3-text-bf16"),
        ("phi3", "phi3-longrope-f32"),
    ] {
        let dir = tk::golden().join("hf").join(dir);
        let ids = [1, 5, 9, 100, 200, 300];
        let v = cli_load(&specs_dir().join(format!("{family}.yaml")), &dir, &ids);
        assert_eq!(v["family"], family);
        assert_eq!(v["format"], "hf");
        let want = last_logits(&Model::from_hf_dir(&dir).unwrap(), &ids);
        assert_eq!(v["logits_hash"], logits_sha256(&want), "{}", dir.display());
    }
}

#[test]
fn load_errors_are_clear() {
    let dir = Scratch::new("load-errors");
    let q8 = llama_q8();
    let q8 = q8.to_str().unwrap();
    // A spec for another architecture.
    let qwen2 = specs_dir().join("qwen2.yaml");
    let (rc, _, err) = atenia(&["load", qwen2.to_str().unwrap(), "-m", q8, "--ids", "1"]);
    assert_eq!(rc, 2);
    assert!(err.contains("error[E-ARG]"), "{err}");
    assert!(
        err.contains("add \"llama\" to its gguf_architectures"),
        "{err}"
    );
    // An unknown field, with its line.
    let bad = dir.0.join("bad.yaml");
    let text = builtin_text("llama");
    let at = line_of(text, "qk_norm:");
    std::fs::write(&bad, edit_line(at, "qk_normm: false")).unwrap();
    let (rc, _, err) = atenia(&["load", bad.to_str().unwrap(), "-m", q8, "--ids", "1"]);
    assert_eq!(rc, 2);
    assert!(err.contains("error[E-SPEC]"), "{err}");
    assert!(err.contains("unknown field `qk_normm`"), "{err}");
    assert!(err.contains(&format!("line {at}")), "{err}");
    // A validation error.
    std::fs::write(&bad, format!("{text}tensors:\n  q: blk.attn_q.weight\n")).unwrap();
    let (rc, _, err) = atenia(&["load", bad.to_str().unwrap(), "-m", q8, "--ids", "1"]);
    assert_eq!(rc, 2);
    assert!(err.contains("has no {i}"), "{err}");
    // A warning does not stop the load.
    let at = line_of(text, "norm_weight_offset:");
    std::fs::write(&bad, edit_line(at, "norm_weight_offset: 0.0000001")).unwrap();
    let (rc, out, err) = atenia(&["load", bad.to_str().unwrap(), "-m", q8, "--ids", "1"]);
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains("warning:") && err.contains("is unusual"),
        "{err}"
    );
    assert!(out.contains("1 warning(s)"), "{out}");
    // Ids outside the vocabulary; neither --prompt nor --ids; a missing spec file.
    let llama = specs_dir().join("llama.yaml");
    let (rc, _, err) = atenia(&[
        "load",
        llama.to_str().unwrap(),
        "-m",
        q8,
        "--ids",
        "1,99999",
    ]);
    assert_eq!(rc, 2);
    assert!(err.contains("outside the vocabulary"), "{err}");
    let (rc, _, err) = atenia(&["load", llama.to_str().unwrap(), "-m", q8]);
    assert_eq!(rc, 2, "{err}");
    let (rc, _, err) = atenia(&["load", "/nonexistent.yaml", "-m", q8, "--ids", "1"]);
    assert_eq!(rc, 2);
    assert!(err.contains("error[E-IO]"), "{err}");
    // A spec without an hf section on a checkpoint directory.
    let (rc, _, err) = atenia(&[
        "load",
        dir.0.join("bad.yaml").to_str().unwrap(),
        "-m",
        tk::golden().join("hf/qwen2-bias-f32").to_str().unwrap(),
        "--ids",
        "1",
    ]);
    assert_eq!(rc, 2);
    assert!(err.contains("Qwen2ForCausalLM"), "{err}");
}

#[test]
fn inspect_shows_the_matching_builtin_spec() {
    for (path, family) in [
        (
            tk::golden().join("gguf/phi3/phi3-Q4_K_M-mixed.gguf"),
            "phi3",
        ),
        (
            tk::golden().join("gguf/mistral/mistral-Q4_K_M-mixed.gguf"),
            "llama",
        ),
        (tk::golden().join("hf/gemma2-softcap-f32"), "gemma2"),
        (tk::golden().join("hf/qwen3-qknorm-bf16"), "qwen3"),
    ] {
        let (rc, out, err) = atenia(&["inspect", path.to_str().unwrap()]);
        assert_eq!(rc, 0, "{err}");
        assert!(
            out.contains(&format!("Matches the built-in family `{family}`")),
            "{out}"
        );
        assert!(
            out.contains("Every tensor of the checkpoint has a field in it"),
            "{out}"
        );
        let spec = FamilySpec::from_yaml(&out, "inspect").unwrap();
        assert_eq!(spec, FamilySpec::builtin_named(family).unwrap());

        let (rc, out, err) = atenia(&["inspect", path.to_str().unwrap(), "--json"]);
        assert_eq!(rc, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["matching_spec"], family);
        assert_eq!(v["unread_by_spec"], json!([]));
        assert_eq!(v["tensors"]["unmapped"], json!([]));
        assert!(v["tensors"]["by_role"]["embed"].is_object(), "{v}");
    }
    // Tensor counts by type, for a GGUF file.
    let f = tk::golden().join("gguf/llama/llama-Q4_K_M-mixed.gguf");
    let (_, out, _) = atenia(&["inspect", f.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let g = GgufFile::open(&f).unwrap();
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for t in &g.tensors {
        *want.entry(t.dtype.to_string()).or_default() += 1;
    }
    assert_eq!(v["tensors"]["by_type"], json!(want));
    assert_eq!(v["tensors"]["count"], g.tensors.len());
    assert_eq!(v["architecture"], "llama");
    assert_eq!(v["hyperparameters"]["llama.block_count"], 2);
}

/// A copy of a GGUF file whose architecture is renamed `zebra` (same length,
/// so only header strings change: the architecture value and the key prefixes).
fn zebra_gguf(dir: &Path) -> PathBuf {
    let src = llama_q8();
    let g = GgufFile::open(&src).unwrap();
    let mut bytes = std::fs::read(&src).unwrap();
    let header = &mut bytes[..g.data_offset];
    let patch = |h: &mut [u8], from: &[u8], to: &[u8]| {
        let mut i = 0;
        while i + from.len() <= h.len() {
            if &h[i..i + from.len()] == from {
                h[i..i + to.len()].copy_from_slice(to);
                i += from.len();
            } else {
                i += 1;
            }
        }
    };
    patch(header, b"llama.", b"zebra.");
    // general.architecture: key, type 8 (string), length 5, "llama".
    let mut key = b"general.architecture".to_vec();
    key.extend_from_slice(&8u32.to_le_bytes());
    key.extend_from_slice(&5u64.to_le_bytes());
    let mut from = key.clone();
    from.extend_from_slice(b"llama");
    let mut to = key;
    to.extend_from_slice(b"zebra");
    patch(header, &from, &to);
    let out = dir.join("zebra.gguf");
    std::fs::write(&out, bytes).unwrap();
    assert_eq!(
        GgufFile::open(&out).unwrap().architecture().unwrap(),
        "zebra"
    );
    out
}

#[test]
fn inspect_drafts_a_spec_for_an_unknown_gguf_architecture() {
    let dir = Scratch::new("zebra");
    let file = zebra_gguf(&dir.0);
    let (rc, out, err) = atenia(&["inspect", file.to_str().unwrap()]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.contains("DRAFT"), "{out}");
    assert!(out.contains("CHECK"), "{out}");
    let draft = FamilySpec::from_yaml(&out, "draft").unwrap();
    assert_eq!(draft.name, "zebra");
    assert_eq!(draft.gguf_architectures, ["zebra"]);
    assert!(draft.validate().unwrap().is_empty());
    // The unknown architecture's rope pairing is a guess (NEOX); with the
    // human's correction the draft computes exactly what the llama spec does.
    let path = dir.0.join("zebra.yaml");
    std::fs::write(&path, &out).unwrap();
    let guessed = cli_load(&path, &file, IDS);
    assert_eq!(guessed["family"], "zebra");
    let fixed = out.replace("rope_style: half", "rope_style: interleaved");
    assert_ne!(fixed, out);
    std::fs::write(&path, &fixed).unwrap();
    let v = cli_load(&path, &file, IDS);
    let want = builtin_gguf_logits(&llama_q8(), IDS);
    assert_eq!(v["logits_hash"], logits_sha256(&want));
    assert_ne!(guessed["logits_hash"], v["logits_hash"]);

    let (rc, out, _) = atenia(&["inspect", file.to_str().unwrap(), "--json"]);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["matching_spec"], serde_json::Value::Null);
    assert_eq!(v["architecture"], "zebra");
    assert_eq!(v["hyperparameters"]["zebra.embedding_length"], 256);
}

/// A copy of a checkpoint directory with config.json's architecture renamed.
fn renamed_checkpoint(src: &Path, dir: &Path, arch: &str, model_type: &str) -> PathBuf {
    let out = dir.join(arch);
    std::fs::create_dir_all(&out).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, out.join(p.file_name().unwrap())).unwrap();
    }
    let cfg = out.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    v["architectures"] = json!([arch]);
    v["model_type"] = json!(model_type);
    std::fs::write(&cfg, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    out
}

#[test]
fn inspect_drafts_a_spec_for_an_unknown_checkpoint_architecture() {
    let dir = Scratch::new("hf-drafts");
    for (fixture, arch, model_type) in [
        ("llama-tied-f32", "ZebraForCausalLM", "zebra"),
        ("qwen2-bias-f32", "QuaggaForCausalLM", "quagga"),
        ("gemma3-text-bf16", "Gemma3ZebraForCausalLM", "gemma3_zebra"),
        (
            "gemma2-softcap-f32",
            "Gemma2ZebraForCausalLM",
            "gemma2_zebra",
        ),
        ("phi3-longrope-f32", "OkapiForCausalLM", "okapi"),
    ] {
        let src = tk::golden().join("hf").join(fixture);
        let ckpt = renamed_checkpoint(&src, &dir.0, arch, model_type);
        let (rc, out, err) = atenia(&["inspect", ckpt.to_str().unwrap()]);
        assert_eq!(rc, 0, "{err}");
        assert!(out.contains("DRAFT"), "{out}");
        let draft = FamilySpec::from_yaml(&out, "draft").unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(draft.hf.as_ref().unwrap().architectures, [arch]);
        let c = draft.check();
        assert!(c.errors.is_empty(), "{fixture}: {c:?}");
        let path = dir.0.join(format!("{model_type}.yaml"));
        std::fs::write(&path, &out).unwrap();
        let ids = [1, 5, 9, 100, 200, 300, 7, 8, 9, 10, 11, 12];
        let v = cli_load(&path, &ckpt, &ids);
        let want = last_logits(&Model::from_hf_dir(&src).unwrap(), &ids);
        assert_eq!(
            v["logits_hash"],
            logits_sha256(&want),
            "{fixture}: the draft computes another model\n{out}"
        );
    }
}
