//! GGUF to Hugging Face checkpoint conversion (`atenia convert`).
//!
//! Every tensor is dequantized exactly to f32 and written as f32 (exact) or
//! bf16 (round to nearest, ties to even), under the Hugging Face name the
//! family spec gives, with the inverse of what llama.cpp's converter did:
//!
//! * Q and K rows (and biases) of `llama`-architecture files were permuted so
//!   that rotary pairs are `(2i, 2i + 1)`; they are permuted back to the
//!   `(i, i + d/2)` pairing of every Hugging Face checkpoint. Generally: a
//!   spec whose GGUF `rope_style` is `interleaved` and whose `hf.rope_style`
//!   is `half` gets its Q/K rows un-permuted.
//! * Norm weights of Gemma, Gemma 2 and Gemma 3 files hold `1 + w` (every
//!   tensor whose name ends in `norm.weight`, q/k norms and the final norm
//!   included); `w` is written back. Generally: each norm weight is shifted by
//!   `spec.norm_weight_offset - hf.norm_weight_offset`.
//!
//! Nothing else is split or merged: a fused GGUF tensor (Phi-3's `attn_qkv`,
//! `ffn_up`) becomes the fused Hugging Face tensor the spec names.
//!
//! config.json is written so that the engine's Hugging Face reader builds the
//! very plan the GGUF file gave (every hyperparameter, rotation, window and
//! soft-cap; the converter checks this after writing), with the values the
//! GGUF file holds (f32 metadata is written as the f64 it widens to).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::family::roles::{TensorNames, TensorRole};
use crate::family::spec::{FamilySpec, HfFormat, HfSliding, SlidingPattern};
use crate::formats::ggml_type::GgmlType;
use crate::formats::gguf::GgufFile;
use crate::kernels::activation::Activation;
use crate::kernels::rope::RopeStyle;
use crate::model::types::Model;
use crate::text::tokenizer::Tokenizer;

/// The element type of the written weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutDtype {
    /// Exact: every dequantized weight is an f32.
    F32,
    /// Half the size; each weight rounded to the nearest bf16 (ties to even).
    Bf16,
}

impl OutDtype {
    fn safetensors_name(self) -> &'static str {
        match self {
            OutDtype::F32 => "F32",
            OutDtype::Bf16 => "BF16",
        }
    }

    fn torch_name(self) -> &'static str {
        match self {
            OutDtype::F32 => "float32",
            OutDtype::Bf16 => "bfloat16",
        }
    }

    fn bytes(self) -> usize {
        match self {
            OutDtype::F32 => 4,
            OutDtype::Bf16 => 2,
        }
    }
}

/// Conversion settings.
#[derive(Clone, Debug)]
pub struct Options {
    pub dtype: OutDtype,
    /// The family spec; the built-in one for the file's architecture when `None`.
    pub spec: Option<FamilySpec>,
    /// Write into a directory that already holds files (they are overwritten).
    pub force: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            dtype: OutDtype::F32,
            spec: None,
            force: false,
        }
    }
}

/// What a conversion did.
#[derive(Clone, Debug)]
pub struct Report {
    pub out: PathBuf,
    pub family: String,
    pub gguf_architecture: String,
    /// The `architectures` entry written to config.json.
    pub hf_architecture: String,
    pub tensors: usize,
    pub parameters: usize,
    pub weight_bytes: u64,
    pub tied: bool,
    /// Tensors whose Q/K rows were un-permuted.
    pub unpermuted: Vec<String>,
    /// Norm tensors shifted back by the norm offset, and by how much.
    pub shifted: Vec<String>,
    pub norm_shift: f64,
    /// Things the converted checkpoint differs in or could not carry.
    pub warnings: Vec<String>,
    /// The files written, in the order written.
    pub files: Vec<PathBuf>,
}

/// One tensor to write.
struct Item {
    gguf: String,
    hf: String,
    field: &'static str,
    dtype: GgmlType,
    shape: Vec<usize>,
    offset: usize,
    size: usize,
}

/// The `(field, gguf name, hf name)` triples the engine reads for this model,
/// mirroring what the weight binding reads (see `Model::bind`).
fn read_set(
    file: &GgufFile,
    model: &Model,
    g: &TensorNames,
    h: &TensorNames,
) -> Result<Vec<(&'static str, String, String)>> {
    let mut out = vec![];
    let has = |n: &str| file.tensor(n).is_some();
    let mut push = |role: TensorRole, layer: Option<usize>| {
        let sub = |s: &str| match layer {
            Some(i) => s.replace("{i}", &i.to_string()),
            None => s.to_string(),
        };
        out.push((role.key(), sub(g.get(role)), sub(h.get(role))));
    };
    use TensorRole as R;
    push(R::Embed, None);
    if !model.weights.tied {
        push(R::Output, None);
    }
    let spec = &model.spec;
    for i in 0..model.config.n_layers {
        let n = |r: TensorRole| g.layer(r, i);
        push(R::AttnNorm, Some(i));
        if !has(&n(R::Q)) && has(&n(R::Qkv)) {
            push(R::Qkv, Some(i));
        } else {
            push(R::Q, Some(i));
            push(R::K, Some(i));
            push(R::V, Some(i));
        }
        push(R::O, Some(i));
        for r in [R::QBias, R::KBias, R::VBias, R::QNorm, R::KNorm] {
            if has(&n(r)) {
                push(r, Some(i));
            }
        }
        if spec.post_norms {
            push(R::PostAttnNorm, Some(i));
            push(R::PostFfnNorm, Some(i));
        }
        push(R::FfnNorm, Some(i));
        if !spec.fused_gate_up {
            push(R::Gate, Some(i));
        }
        push(R::Up, Some(i));
        push(R::Down, Some(i));
    }
    push(R::FinalNorm, None);
    Ok(out)
}

/// Rows of one head, un-permuted: llama.cpp wrote HF row `h·d + j·d/2 + r` of
/// each head at row `h·d + 2r + j`; this puts it back.
fn unpermute_rows(data: &mut [f32], rows: usize, cols: usize, heads: usize) -> Result<()> {
    if heads == 0 || !rows.is_multiple_of(heads) || !(rows / heads).is_multiple_of(2) {
        return Err(Error::weights(
            "q/k",
            format!("{rows} rows do not split into {heads} heads of an even size"),
        ));
    }
    let d = rows / heads;
    let src = data.to_vec();
    for h in 0..heads {
        for r in 0..d / 2 {
            for j in 0..2 {
                let from = h * d + 2 * r + j;
                let to = h * d + j * (d / 2) + r;
                data[to * cols..(to + 1) * cols]
                    .copy_from_slice(&src[from * cols..(from + 1) * cols]);
            }
        }
    }
    Ok(())
}

/// A GGUF f32 value as config.json should hold it: the f64 it widens to, so
/// that the engine reads the very value the GGUF path uses.
fn num(v: f64) -> Value {
    json!(v)
}

fn act_name(a: Activation) -> &'static str {
    match a {
        Activation::Silu => "silu",
        Activation::GeluTanh => "gelu_pytorch_tanh",
    }
}

/// config.json for the model a GGUF file holds.
fn hf_config(
    file: &GgufFile,
    model: &Model,
    hf: &HfFormat,
    dtype: OutDtype,
    has_bias: bool,
    tok: Option<&Tokenizer>,
) -> Result<Map<String, Value>> {
    let c = &model.config;
    let spec = &model.spec;
    let arch = &c.architecture;
    let m = &file.metadata;
    let key = |k: &str| format!("{arch}.{k}");
    let theta = m.f64(&key("rope.freq_base"))?.unwrap_or(10_000.0);
    let mut o = Map::new();
    let hf_arch = hf.architectures.first().cloned().ok_or_else(|| {
        Error::unsupported(
            format!("family {}", spec.name),
            "its spec lists no hf.architectures to write",
        )
    })?;
    o.insert("architectures".into(), json!([hf_arch]));
    if let Some(mt) = hf.model_types.first() {
        o.insert("model_type".into(), json!(mt));
    }
    o.insert("vocab_size".into(), json!(c.vocab));
    o.insert("hidden_size".into(), json!(c.hidden));
    o.insert("intermediate_size".into(), json!(c.ffn_hidden));
    o.insert("num_hidden_layers".into(), json!(c.n_layers));
    o.insert("num_attention_heads".into(), json!(c.n_heads));
    o.insert("num_key_value_heads".into(), json!(c.n_kv_heads));
    o.insert("head_dim".into(), json!(c.head_dim));
    o.insert("max_position_embeddings".into(), json!(c.context_length));
    o.insert("rms_norm_eps".into(), num(c.norm_eps));
    o.insert("rope_theta".into(), num(theta));
    o.insert("rope_scaling".into(), Value::Null);
    let rotary_dim = c.ropes[0].rotary_dim;
    if rotary_dim != c.head_dim {
        o.insert(
            "partial_rotary_factor".into(),
            json!(rotary_dim as f64 / c.head_dim as f64),
        );
    }
    let act_key = hf.activation_keys.first().ok_or_else(|| {
        Error::unsupported(
            format!("family {}", spec.name),
            "its spec lists no hf.activation_keys",
        )
    })?;
    o.insert(act_key.clone(), json!(act_name(c.activation)));
    o.insert("tie_word_embeddings".into(), json!(model.weights.tied));
    o.insert("attention_bias".into(), json!(has_bias));
    o.insert("torch_dtype".into(), json!(dtype.torch_name()));
    if hf.defaults.contains_key("original_max_position_embeddings") {
        o.insert(
            "original_max_position_embeddings".into(),
            json!(c.context_length),
        );
    }

    // Attention: scale, soft-caps.
    let scale = c.layers[0].attn.scale;
    if let Some(k) = &hf.attn_scale_key {
        // The GGUF path scales by 1/sqrt(head_dim); so does `k = head_dim`.
        o.insert(k.clone(), json!(c.head_dim));
        debug_assert_eq!(scale, 1.0 / (c.head_dim as f64).sqrt());
    }
    let attn_cap = c.layers[0].attn.softcap;
    match (&hf.attn_softcap_key, attn_cap) {
        (Some(k), v) => {
            o.insert(k.clone(), v.map_or(Value::Null, num));
        }
        (None, Some(_)) => {
            return Err(Error::unsupported(
                "attention soft-capping",
                format!(
                    "the {} spec has no hf.attn_softcap_key to write it to",
                    spec.name
                ),
            ))
        }
        (None, None) => {}
    }
    match (&hf.final_softcap_key, c.final_softcap) {
        (Some(k), v) => {
            o.insert(k.clone(), v.map_or(Value::Null, num));
        }
        (None, Some(_)) => {
            return Err(Error::unsupported(
                "final soft-capping",
                format!(
                    "the {} spec has no hf.final_softcap_key to write it to",
                    spec.name
                ),
            ))
        }
        (None, None) => {}
    }

    // Sliding windows and the rotations of sliding layers.
    let windows: Vec<Option<usize>> = c.layers.iter().map(|l| l.attn.window).collect();
    let window = windows.iter().flatten().next().copied();
    if windows.iter().flatten().any(|w| Some(*w) != window) {
        return Err(Error::unsupported(
            "sliding windows",
            "layers with different window sizes cannot be written to config.json",
        ));
    }
    let any = window.is_some();
    match &hf.sliding {
        HfSliding::None => {
            if any {
                return Err(Error::unsupported(
                    "sliding-window attention",
                    format!(
                        "the {} spec's Hugging Face format has no sliding window (hf.sliding: none)",
                        spec.name
                    ),
                ));
            }
        }
        HfSliding::All => {
            if any && windows.iter().any(Option::is_none) {
                return Err(Error::unsupported(
                    "sliding-window attention",
                    format!(
                        "some layers slide and some do not, but the {} spec's Hugging Face format \
                         slides every layer or none (hf.sliding: all)",
                        spec.name
                    ),
                ));
            }
            o.insert("sliding_window".into(), json!(window));
        }
        HfSliding::LayerTypes { enable_key, .. } => {
            let types: Vec<&str> = windows
                .iter()
                .map(|w| {
                    if w.is_some() {
                        "sliding_attention"
                    } else {
                        "full_attention"
                    }
                })
                .collect();
            o.insert("layer_types".into(), json!(types));
            o.insert("sliding_window".into(), json!(window));
            if let Some(k) = enable_key {
                o.insert(k.clone(), json!(any));
            }
            if let SlidingPattern::Periodic { .. } = spec.sliding {
                // Older transformers versions derive the types from the pattern.
                if let Some(first_full) = windows.iter().position(Option::is_none) {
                    if any {
                        o.insert("sliding_window_pattern".into(), json!(first_full + 1));
                    }
                }
            }
        }
    }
    if let Some(k) = &hf.sliding_rope_theta_key {
        // Sliding layers use plain RoPE with this base (the global one when none slides).
        let t = match spec.sliding_rope_theta {
            Some(t) if any => t,
            _ => theta,
        };
        o.insert(k.clone(), num(t));
    }

    if let Some(t) = tok {
        let id = |v: Option<u32>| v.map_or(Value::Null, |i| json!(i));
        o.insert("bos_token_id".into(), id(t.bos_id));
        o.insert("eos_token_id".into(), id(t.eos_id));
        if t.pad_id.is_some() {
            o.insert("pad_token_id".into(), id(t.pad_id));
        }
    }
    Ok(o)
}

/// The tokenizer files of a converted checkpoint: tokenizer.json (the GGUF
/// tokenizer as `tokenizers` serializes it, with a post-processor adding bos/eos
/// as the file says) and tokenizer_config.json (special tokens, add_bos_token,
/// the chat template). Returns the files written.
pub fn write_tokenizer(
    tok: &Tokenizer,
    dir: &Path,
    model_max_length: usize,
) -> Result<Vec<PathBuf>> {
    let mut inner = tok.inner().clone();
    let text = |id: Option<u32>| id.and_then(|i| tok.id_to_token(i));
    let bos = text(tok.bos_id);
    let eos = text(tok.eos_id);
    let mut single: Vec<String> = vec![];
    let mut pair: Vec<String> = vec![];
    let mut specials: Vec<(String, u32)> = vec![];
    if let (true, Some(b), Some(id)) = (tok.add_bos, &bos, tok.bos_id) {
        single.push(format!("{b}:0"));
        pair.push(format!("{b}:0"));
        specials.push((b.clone(), id));
    }
    single.push("$A:0".into());
    pair.push("$A:0".into());
    if let (true, Some(e), Some(id)) = (tok.add_eos, &eos, tok.eos_id) {
        single.push(format!("{e}:0"));
        pair.push(format!("{e}:0"));
        if !specials.iter().any(|(t, _)| t == e) {
            specials.push((e.clone(), id));
        }
    }
    if let (true, Some(b)) = (tok.add_bos, &bos) {
        pair.push(format!("{b}:1"));
    }
    pair.push("$B:1".into());
    if let (true, Some(e)) = (tok.add_eos, &eos) {
        pair.push(format!("{e}:1"));
    }
    if !specials.is_empty() {
        let tp = tokenizers::processors::template::TemplateProcessing::builder()
            .try_single(single)
            .and_then(|b| b.try_pair(pair))
            .map_err(|e| Error::Tokenizer(format!("cannot build the bos/eos post-processor: {e}")))?
            .special_tokens(specials)
            .build()
            .map_err(|e| {
                Error::Tokenizer(format!("cannot build the bos/eos post-processor: {e}"))
            })?;
        inner.with_post_processor(Some(tp));
    }
    let tj = dir.join("tokenizer.json");
    inner
        .save(&tj, false)
        .map_err(|e| Error::Tokenizer(format!("cannot write {}: {e}", tj.display())))?;

    let mut cfg = Map::new();
    let tv = |t: Option<String>| t.map_or(Value::Null, Value::String);
    cfg.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
    cfg.insert("bos_token".into(), tv(bos));
    cfg.insert("eos_token".into(), tv(eos));
    cfg.insert("unk_token".into(), tv(text(tok.unk_id)));
    cfg.insert("pad_token".into(), tv(text(tok.pad_id)));
    cfg.insert("add_bos_token".into(), json!(tok.add_bos));
    cfg.insert("add_eos_token".into(), json!(tok.add_eos));
    cfg.insert("clean_up_tokenization_spaces".into(), json!(false));
    cfg.insert("model_max_length".into(), json!(model_max_length));
    if let Some(t) = &tok.chat_template {
        cfg.insert("chat_template".into(), json!(t));
    }
    let tc = dir.join("tokenizer_config.json");
    write_json(&tc, &Value::Object(cfg))?;
    Ok(vec![tj, tc])
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(v).expect("JSON values serialize");
    text.push('\n');
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// generation_config.json: the token ids generation starts and stops on.
fn generation_config(tok: &Tokenizer) -> Value {
    let mut o = Map::new();
    o.insert("_from_model_config".into(), json!(true));
    if let Some(b) = tok.bos_id {
        o.insert("bos_token_id".into(), json!(b));
    }
    let mut eos: Vec<u32> = tok.eos_id.into_iter().collect();
    eos.extend(tok.extra_eog_ids.iter().filter(|i| Some(**i) != tok.eos_id));
    match eos.len() {
        0 => {}
        1 => {
            o.insert("eos_token_id".into(), json!(eos[0]));
        }
        _ => {
            o.insert("eos_token_id".into(), json!(eos));
        }
    }
    if let Some(p) = tok.pad_id {
        o.insert("pad_token_id".into(), json!(p));
    }
    Value::Object(o)
}

/// Converts a GGUF file to a Hugging Face checkpoint directory (config.json,
/// model.safetensors, tokenizer.json, tokenizer_config.json,
/// generation_config.json). `progress` receives one line per step.
pub fn convert_gguf(
    src: &Path,
    out: &Path,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<Report> {
    let file = GgufFile::open(src)?;
    let arch = file.architecture()?.to_string();
    let spec = match &opts.spec {
        Some(s) => {
            if !s.gguf_architectures.contains(&arch) {
                return Err(Error::argument(
                    "--spec",
                    format!(
                        "the {} spec reads general.architecture {:?}, but the file is {arch:?}",
                        s.name, s.gguf_architectures
                    ),
                ));
            }
            s.clone()
        }
        None => FamilySpec::for_gguf_architecture(&arch).ok_or_else(|| {
            Error::unsupported(
                format!("architecture {arch:?}"),
                "no built-in family spec reads it; write one (atenia inspect drafts it) and pass --spec",
            )
        })?,
    };
    spec.validate()?;
    let hf = spec.hf.clone().ok_or_else(|| {
        Error::unsupported(
            format!("family {}", spec.name),
            "its spec has no `hf:` section, so there are no Hugging Face names to write",
        )
    })?;
    progress(&format!(
        "reading {} ({arch}, family {})",
        src.display(),
        spec.name
    ));
    let model = Model::from_gguf_with_spec(&file, file.storage(), spec.clone())?;
    let c = &model.config;

    // What to write, and nothing the engine would not read.
    let triples = read_set(&file, &model, &spec.tensors, &hf.tensors)?;
    let mut items = Vec::with_capacity(triples.len());
    let mut seen_hf = BTreeMap::new();
    for (field, g, h) in &triples {
        let info = file
            .tensor(g)
            .ok_or_else(|| Error::weights(g, "missing from the file"))?;
        if let Some(prev) = seen_hf.insert(h.clone(), g.clone()) {
            return Err(Error::unsupported(
                format!("tensor {h}"),
                format!("both {prev} and {g} would be written under this name"),
            ));
        }
        items.push(Item {
            gguf: g.clone(),
            hf: h.clone(),
            field,
            dtype: info.dtype,
            shape: info.shape(),
            offset: info.offset,
            size: info.size,
        });
    }
    let read: std::collections::BTreeSet<&str> = items.iter().map(|i| i.gguf.as_str()).collect();
    let extra: Vec<&str> = file
        .tensors
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| !read.contains(n))
        .collect();
    if !extra.is_empty() {
        let shown: Vec<&str> = extra.iter().take(5).copied().collect();
        return Err(Error::unsupported(
            format!("tensor {}", extra[0]),
            format!(
                "the file holds {} tensor(s) the {} spec does not read ({}); the engine runs \
                 without them, and a checkpoint without them would be a different model",
                extra.len(),
                spec.name,
                shown.join(", ")
            ),
        ));
    }

    let unpermute = spec.rope_style == RopeStyle::Interleaved && hf.rope_style == RopeStyle::Half;
    if unpermute && c.ropes.iter().any(|r| r.rotary_dim != c.head_dim) {
        return Err(Error::unsupported(
            "partial rotary embedding",
            "un-permuting Q/K rows for a rotary dimension below the head size is not implemented",
        ));
    }
    if !unpermute && spec.rope_style != hf.rope_style {
        return Err(Error::unsupported(
            format!("rope styles {:?} -> {:?}", spec.rope_style, hf.rope_style),
            "only interleaved GGUF rows to half-paired Hugging Face rows are converted",
        ));
    }
    let shift = spec.norm_weight_offset - hf.norm_weight_offset;
    let has_bias = items.iter().any(|i| i.field.ends_with("_bias"));

    // The tokenizer (optional: a file without one still converts, with a warning).
    let mut warnings = vec![];
    let tok = match Tokenizer::from_gguf(&file.metadata) {
        Ok(t) => {
            warnings.extend(t.warnings.iter().map(|w| format!("tokenizer: {w}")));
            Some(t)
        }
        Err(e) => {
            warnings.push(format!("no tokenizer written: {e}"));
            None
        }
    };

    let config = hf_config(&file, &model, &hf, opts.dtype, has_bias, tok.as_ref())?;

    // The output directory.
    if out.exists() {
        if !out.is_dir() {
            return Err(Error::argument(
                "--out",
                format!("{} exists and is not a directory", out.display()),
            ));
        }
        let non_empty = std::fs::read_dir(out)
            .map_err(|e| Error::io(out, e))?
            .next()
            .is_some();
        if non_empty && !opts.force {
            return Err(Error::argument(
                "--out",
                format!(
                    "{} is not empty; choose a new directory or pass --force to overwrite its files",
                    out.display()
                ),
            ));
        }
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Error::argument("--out", format!("cannot write to {}: {e}", out.display())))?;
    // A shard index left from an earlier checkpoint would shadow model.safetensors.
    let stale = out.join("model.safetensors.index.json");
    if stale.exists() {
        std::fs::remove_file(&stale).map_err(|e| Error::io(&stale, e))?;
    }
    let mut files = vec![];

    let cfg_path = out.join("config.json");
    write_json(&cfg_path, &Value::Object(config))?;
    files.push(cfg_path);

    // model.safetensors, streamed one tensor at a time.
    let st_path = out.join("model.safetensors");
    let dtype = opts.dtype;
    let mut header = Map::new();
    let mut meta = Map::new();
    meta.insert("format".into(), json!("pt"));
    meta.insert(
        "converted_from".into(),
        json!(src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()),
    );
    header.insert("__metadata__".into(), Value::Object(meta));
    let mut at = 0usize;
    let mut parameters = 0usize;
    for it in &items {
        let n: usize = it.shape.iter().product();
        parameters += n;
        let len = n * dtype.bytes();
        header.insert(
            it.hf.clone(),
            json!({"dtype": dtype.safetensors_name(), "shape": it.shape, "data_offsets": [at, at + len]}),
        );
        at += len;
    }
    let mut hbytes = serde_json::to_vec(&Value::Object(header)).expect("JSON serializes");
    while !hbytes.len().is_multiple_of(8) {
        hbytes.push(b' ');
    }
    let f = File::create(&st_path).map_err(|e| Error::io(&st_path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let io = |e| Error::io(&st_path, e);
    w.write_all(&(hbytes.len() as u64).to_le_bytes())
        .map_err(io)?;
    w.write_all(&hbytes).map_err(io)?;
    let bytes = file.bytes();
    let total = items.len();
    let mut unpermuted = vec![];
    let mut shifted = vec![];
    let mut buf: Vec<f32> = vec![];
    let mut outb: Vec<u8> = vec![];
    for (k, it) in items.iter().enumerate() {
        let n: usize = it.shape.iter().product();
        let cols = *it.shape.last().unwrap_or(&1);
        let rows = n / cols.max(1);
        let row_bytes = it
            .dtype
            .row_bytes(cols)
            .ok_or_else(|| Error::weights(&it.gguf, "rows are not whole blocks"))?;
        if row_bytes * rows != it.size {
            return Err(Error::weights(&it.gguf, "size does not match its shape"));
        }
        buf.clear();
        buf.resize(n, 0.0);
        let data = &bytes[it.offset..it.offset + it.size];
        buf.par_chunks_mut(cols.max(1))
            .zip(data.par_chunks(row_bytes.max(1)))
            .try_for_each(|(dst, src)| crate::formats::dequant::dequantize_row(it.dtype, src, dst))
            .map_err(|e| Error::weights(&it.gguf, e.to_string()))?;
        let mut note = String::new();
        if unpermute {
            let heads = |f: &str| match f {
                "q" | "q_bias" => Some(c.n_heads),
                "k" | "k_bias" => Some(c.n_kv_heads),
                _ => None,
            };
            if let Some(h) = heads(it.field) {
                let (r, cc) = if it.shape.len() == 1 {
                    (n, 1)
                } else {
                    (rows, cols)
                };
                unpermute_rows(&mut buf, r, cc, h)?;
                unpermuted.push(it.hf.clone());
                note.push_str(", rows un-permuted");
            } else if it.field == "qkv" {
                let (qd, kd) = (c.q_dim(), c.kv_dim());
                unpermute_rows(&mut buf[..qd * cols], qd, cols, c.n_heads)?;
                unpermute_rows(
                    &mut buf[qd * cols..(qd + kd) * cols],
                    kd,
                    cols,
                    c.n_kv_heads,
                )?;
                unpermuted.push(it.hf.clone());
                note.push_str(", q/k rows un-permuted");
            }
        }
        if shift != 0.0 && TensorRole::from_key(it.field).is_some_and(TensorRole::is_norm) {
            for x in buf.iter_mut() {
                *x = (*x as f64 + shift) as f32;
            }
            shifted.push(it.hf.clone());
            note.push_str(&format!(", {shift:+} (norm offset)"));
        }
        outb.clear();
        match dtype {
            OutDtype::F32 => {
                outb.reserve(n * 4);
                for x in &buf {
                    outb.extend_from_slice(&x.to_le_bytes());
                }
            }
            OutDtype::Bf16 => {
                outb.reserve(n * 2);
                for x in &buf {
                    outb.extend_from_slice(&half::bf16::from_f32(*x).to_bits().to_le_bytes());
                }
            }
        }
        w.write_all(&outb).map_err(io)?;
        progress(&format!(
            "[{:>4}/{total}] {} {:?} {} -> {}{note}",
            k + 1,
            it.hf,
            it.shape,
            it.dtype,
            dtype.safetensors_name()
        ));
    }
    w.flush().map_err(io)?;
    drop(w);
    files.push(st_path);

    if let Some(t) = &tok {
        files.extend(write_tokenizer(t, out, c.context_length)?);
        let gp = out.join("generation_config.json");
        write_json(&gp, &generation_config(t))?;
        files.push(gp);
    }

    // The checkpoint must load back into the same plan.
    progress("checking that the checkpoint loads into the same plan");
    let back = crate::model::hf::load_dir_with_spec(
        out,
        &crate::model::hf::read_config(out)?,
        spec.clone(),
    )?;
    let diffs = plan_differences(&model, &back, unpermute);
    if !diffs.is_empty() {
        return Err(Error::Runtime(format!(
            "the converted checkpoint loads into a different plan ({}); this is a bug in atenia convert",
            diffs.join("; ")
        )));
    }

    Ok(Report {
        out: out.to_path_buf(),
        family: spec.name.clone(),
        gguf_architecture: arch,
        hf_architecture: hf.architectures[0].clone(),
        tensors: items.len(),
        parameters,
        weight_bytes: at as u64,
        tied: model.weights.tied,
        unpermuted,
        shifted,
        norm_shift: shift,
        warnings,
        files,
    })
}

/// Where two models' plans differ (the rope pairing aside when `restyled`).
pub fn plan_differences(a: &Model, b: &Model, restyled: bool) -> Vec<String> {
    let (x, y) = (&a.config, &b.config);
    let mut d = vec![];
    macro_rules! same {
        ($($f:ident),*) => {$(
            if x.$f != y.$f {
                d.push(format!("{}: {:?} vs {:?}", stringify!($f), x.$f, y.$f));
            }
        )*};
    }
    same!(
        n_layers,
        hidden,
        n_heads,
        n_kv_heads,
        head_dim,
        ffn_hidden,
        vocab,
        context_length,
        norm_eps,
        activation,
        embed_scale,
        final_softcap
    );
    if a.weights.tied != b.weights.tied {
        d.push(format!("tied: {} vs {}", a.weights.tied, b.weights.tied));
    }
    let ropes = |r: &[crate::kernels::rope::Rope]| -> Vec<(usize, Vec<f64>, f64)> {
        r.iter()
            .map(|r| (r.rotary_dim, r.inv_freq.clone(), r.attention_factor))
            .collect()
    };
    if ropes(&x.ropes) != ropes(&y.ropes) {
        d.push("rotary frequencies".into());
    }
    if !restyled
        && x.ropes
            .iter()
            .map(|r| r.style)
            .ne(y.ropes.iter().map(|r| r.style))
    {
        d.push("rope style".into());
    }
    if x.long_context.is_some() != y.long_context.is_some() {
        d.push("long-context rotations".into());
    }
    for (i, (l, m)) in x.layers.iter().zip(&y.layers).enumerate() {
        if l.rope != m.rope
            || l.attn.window != m.attn.window
            || l.attn.scale != m.attn.scale
            || l.attn.softcap != m.attn.softcap
            || l.attn.n_heads != m.attn.n_heads
            || l.attn.n_kv_heads != m.attn.n_kv_heads
        {
            d.push(format!("layer {i}: {:?} vs {:?}", l, m));
        }
    }
    d
}
