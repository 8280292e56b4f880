//! `atenia convert`: GGUF files become Hugging Face checkpoints that the
//! engine runs to the same logits (f32: bit-identical, except for the order
//! of the q·k sums where `llama` Q/K rows were un-permuted; bf16: close), with
//! a tokenizer that gives the same token ids.

use atenia_testkit as tk;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use atenia_engine::convert::{convert_gguf, write_tokenizer, Options, OutDtype, Report};
use atenia_engine::exec::decoder::{Logits, Session};
use atenia_engine::formats::gguf::GgufFile;
use atenia_engine::formats::safetensors::{SafetensorsFile, SafetensorsSet};
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::Model;
use atenia_engine::text::chat_template::ChatMessage;
use atenia_engine::text::tokenizer::Tokenizer;

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("atenia-convert-{}-{name}", std::process::id()));
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

fn convert(src: &Path, out: &Path, dtype: OutDtype) -> Report {
    let opts = Options {
        dtype,
        ..Options::default()
    };
    convert_gguf(src, out, &opts, &mut |_| {}).unwrap_or_else(|e| panic!("{}: {e}", src.display()))
}

/// Logits at every position of one prefill over `ids`.
fn all_logits(model: &Model, ids: &[u32]) -> Vec<f32> {
    let rt = Runtime::new(2, None).unwrap();
    let mut s = Session::new(model, &rt, ids.len()).unwrap();
    let mut out = vec![];
    s.forward(ids, Logits::All, &mut out).unwrap();
    out
}

fn max_abs(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max)
}

fn spread(a: &[f32]) -> f64 {
    let n = a.len() as f64;
    let mean = a.iter().map(|&x| x as f64).sum::<f64>() / n;
    (a.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
}

fn argmaxes(l: &[f32], vocab: usize) -> Vec<usize> {
    l.chunks(vocab).map(tk::argmax).collect()
}

fn gguf_model(g: &GgufFile) -> Model {
    Model::from_gguf(g, g.storage()).unwrap()
}

/// Every tiny fixture family, converted to f32 and bf16.
#[test]
fn fixture_families_convert_to_checkpoints_with_the_same_logits() {
    let dir = Scratch::new("fixtures");
    let cases = [
        ("llama/llama-Q4_K_M-mixed.gguf", "LlamaForCausalLM", true),
        ("llama/llama-F32.gguf", "LlamaForCausalLM", true),
        (
            "mistral/mistral-Q4_K_M-mixed.gguf",
            "LlamaForCausalLM",
            true,
        ),
        ("qwen2/qwen2-Q4_K_M-mixed.gguf", "Qwen2ForCausalLM", false),
        ("qwen3/qwen3-Q4_K_M-mixed.gguf", "Qwen3ForCausalLM", false),
        ("gemma/gemma-Q4_K_M-mixed.gguf", "GemmaForCausalLM", false),
        (
            "gemma2/gemma2-Q4_K_M-mixed.gguf",
            "Gemma2ForCausalLM",
            false,
        ),
        (
            "gemma3/gemma3-Q4_K_M-mixed.gguf",
            "Gemma3ForCausalLM",
            false,
        ),
        ("phi3/phi3-Q4_K_M-mixed.gguf", "Phi3ForCausalLM", false),
    ];
    eprintln!(
        "{:<36} {:>11} {:>11} {:>11} {:>9}",
        "file", "f32 max|d|", "bf16 max|d|", "bf16/std", "vs ref"
    );
    for (file, class, permuted) in cases {
        let src = tk::golden().join("gguf").join(file);
        let reference = tk::read_reference(&src.with_extension("reference.safetensors"));
        let ids = &reference.input_ids;
        let g = GgufFile::open(&src).unwrap();
        let model = gguf_model(&g);
        let vocab = model.config.vocab;
        let want = all_logits(&model, ids);

        let out = dir.0.join(format!("{}-f32", file.replace('/', "-")));
        let r = convert(&src, &out, OutDtype::F32);
        assert_eq!(r.hf_architecture, class);
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(cfg["architectures"][0], class);
        assert_eq!(cfg["torch_dtype"], "float32");
        assert_eq!(cfg["tie_word_embeddings"], model.weights.tied);
        assert_eq!(!r.unpermuted.is_empty(), permuted, "{file}");
        for f in [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "generation_config.json",
        ] {
            assert!(out.join(f).is_file(), "{file}: no {f}");
        }
        let hf = Model::from_hf_dir(&out).unwrap();
        assert_eq!(hf.config.family, model.config.family);
        let got = all_logits(&hf, ids);
        let d32 = max_abs(&got, &want);
        if permuted {
            // Un-permuted Q/K rows: the same products, summed in another order in q·k.
            assert!(d32 <= 2e-5 * spread(&want), "{file}: {d32:e}");
            assert_eq!(argmaxes(&got, vocab), argmaxes(&want, vocab), "{file}");
        } else {
            // Nothing but renaming and exact shifts: the very same bits.
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{file}: f32 checkpoint differs by {d32:e}"
            );
        }
        // And against the float64 reference, as the GGUF file itself is held.
        let mut vs_ref = 0f64;
        for (row, &p) in reference.positions.iter().enumerate() {
            let r = &reference.logits[row];
            let g = &got[p * vocab..(p + 1) * vocab];
            vs_ref = vs_ref.max(
                g.iter()
                    .zip(r)
                    .map(|(a, b)| (*a as f64 - b).abs())
                    .fold(0.0, f64::max),
            );
        }
        assert!(
            vs_ref <= 1e-4,
            "{file}: {vs_ref:e} from the float64 reference"
        );

        // bf16: every weight rounded once; the logits move a little.
        let out16 = dir.0.join(format!("{}-bf16", file.replace('/', "-")));
        convert(&src, &out16, OutDtype::Bf16);
        let hf16 = Model::from_hf_dir(&out16).unwrap();
        let got16 = all_logits(&hf16, ids);
        let d16 = max_abs(&got16, &want);
        let rel = d16 / spread(&want);
        assert!(
            rel < 0.05,
            "{file}: bf16 moved the logits by {d16:e} ({rel:.3} of their spread)"
        );
        let agree = argmaxes(&got16, vocab)
            .iter()
            .zip(argmaxes(&want, vocab))
            .filter(|(a, b)| **a == *b)
            .count();
        assert!(
            agree * 10 >= ids.len() * 8,
            "{file}: bf16 argmax agrees at {agree} of {}",
            ids.len()
        );
        eprintln!("{file:<36} {d32:>11.3e} {d16:>11.3e} {rel:>11.3e} {vs_ref:>9.2e}");
        let _ = std::fs::remove_dir_all(&out);
        let _ = std::fs::remove_dir_all(&out16);
    }
}

/// model.safetensors is the same bytes on every run (the `safetensors` crate
/// orders the tensors by name), and its header says it is a PyTorch file.
#[test]
fn the_checkpoint_is_the_same_bytes_on_every_run() {
    let dir = Scratch::new("reproducible");
    let src = tk::golden().join("gguf/phi3/phi3-Q4_K_M-mixed.gguf");
    let bytes = |out: &str| {
        convert(&src, &dir.0.join(out), OutDtype::Bf16);
        std::fs::read(dir.0.join(out).join("model.safetensors")).unwrap()
    };
    let a = bytes("a");
    assert_eq!(a, bytes("b"));
    let f = SafetensorsFile::open(dir.0.join("a/model.safetensors")).unwrap();
    assert_eq!(
        f.metadata,
        [("format".to_string(), "pt".to_string())].into()
    );
    let header_len = u64::from_le_bytes(a[..8].try_into().unwrap());
    assert_eq!(header_len % 8, 0);
    let names: Vec<&String> = f.tensors().keys().collect();
    assert!(
        names.iter().any(|n| n.ends_with("qkv_proj.weight")),
        "{names:?}"
    );
}

/// Gemma norms are stored as 1 + w in GGUF (q/k norms and the final norm
/// too); the checkpoint holds w. Llama Q/K rows come back in HF order.
#[test]
fn inverse_transforms_are_applied_to_the_right_tensors() {
    let dir = Scratch::new("transforms");
    let src = tk::golden().join("gguf/gemma3/gemma3-Q4_K_M-mixed.gguf");
    let r = convert(&src, &dir.0.join("g3"), OutDtype::F32);
    assert_eq!(r.norm_shift, -1.0);
    // Every norm of the checkpoint (4 per layer, q/k norms, the final norm).
    let g = GgufFile::open(&src).unwrap();
    let norms = g
        .tensors
        .iter()
        .filter(|t| t.name.ends_with("norm.weight"))
        .count();
    assert_eq!(r.shifted.len(), norms);
    assert!(r
        .shifted
        .contains(&"model.layers.0.self_attn.q_norm.weight".to_string()));
    assert!(r
        .shifted
        .contains(&"model.layers.5.self_attn.k_norm.weight".to_string()));
    assert!(r.shifted.contains(&"model.norm.weight".to_string()));
    let st = SafetensorsSet::single(dir.0.join("g3/model.safetensors")).unwrap();
    let read = |set: &SafetensorsSet, name: &str| -> Vec<f32> {
        let (f, t) = set.get(name).unwrap();
        f.data(t)
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let gq = g.tensor("blk.0.attn_q_norm.weight").unwrap();
    let gq: Vec<f32> = g
        .tensor_data(gq)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let hq = read(&st, "model.layers.0.self_attn.q_norm.weight");
    for (a, b) in gq.iter().zip(&hq) {
        assert_eq!(*b as f64, *a as f64 - 1.0);
    }
    assert!(r.unpermuted.is_empty());

    // Llama: HF row h·d + j·d/2 + r is GGUF row h·d + 2r + j (F32 file: exact rows).
    let src = tk::golden().join("gguf/llama/llama-F32.gguf");
    let r = convert(&src, &dir.0.join("llama"), OutDtype::F32);
    assert_eq!(r.unpermuted.len(), 4);
    assert!(r.shifted.is_empty());
    let g = GgufFile::open(&src).unwrap();
    let st = SafetensorsSet::single(dir.0.join("llama/model.safetensors")).unwrap();
    for (gname, hname, heads) in [
        (
            "blk.1.attn_q.weight",
            "model.layers.1.self_attn.q_proj.weight",
            4,
        ),
        (
            "blk.1.attn_k.weight",
            "model.layers.1.self_attn.k_proj.weight",
            2,
        ),
    ] {
        let info = g.tensor(gname).unwrap();
        let cols = info.dims[0];
        let rows = info.dims[1];
        let gw: Vec<f32> = g
            .tensor_data(info)
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let hw = read(&st, hname);
        let d = rows / heads;
        for h in 0..heads {
            for rr in 0..d / 2 {
                for j in 0..2 {
                    let hf_row = h * d + j * d / 2 + rr;
                    let gg_row = h * d + 2 * rr + j;
                    assert_eq!(
                        hw[hf_row * cols..(hf_row + 1) * cols],
                        gw[gg_row * cols..(gg_row + 1) * cols]
                    );
                }
            }
        }
    }
}

fn index(model: &str) -> serde_json::Value {
    let p = tk::golden().join("real").join(model).join("index.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn ids_of(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The tokenizer of a converted directory encodes the fixture prompts of
/// `golden/real/<model>/index.json` to their ids and decodes the continuations.
fn check_tokenizer(dir: &Path, model: &str) {
    let tok = Tokenizer::from_tokenizer_json(
        &dir.join("tokenizer.json"),
        Some(&dir.join("tokenizer_config.json")),
    )
    .unwrap();
    for (name, case) in index(model).as_object().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want = ids_of(&case["input_ids"]);
        let got = match case["kind"].as_str().unwrap() {
            "text" => tok.encode(text, true).unwrap(),
            "chat" => tok
                .apply_chat_template(&[ChatMessage::new("user", text)], true)
                .unwrap(),
            k => panic!("{k}"),
        };
        assert_eq!(
            got, want,
            "{model}/{name}: ids through the converted tokenizer"
        );
        let greedy = ids_of(&case["greedy_ids"]);
        assert_eq!(
            tok.decode(&greedy).unwrap(),
            case["greedy_text"].as_str().unwrap(),
            "{model}/{name}"
        );
    }
}

#[test]
fn smollm2_converts_to_the_same_logits_and_tokens() {
    let src = tk::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
    let dir = Scratch::new("smollm2");
    let g = GgufFile::open(&src).unwrap();
    let model = gguf_model(&g);
    let vocab = model.config.vocab;
    let prompts: Vec<Vec<u32>> = index("SmolLM2-135M-Instruct.Q4_1")
        .as_object()
        .unwrap()
        .values()
        .map(|c| ids_of(&c["input_ids"]))
        .collect();
    let want: Vec<Vec<f32>> = prompts.iter().map(|p| all_logits(&model, p)).collect();

    for (dtype, bound) in [(OutDtype::F32, 8e-5), (OutDtype::Bf16, 0.6)] {
        let out = dir.0.join(format!("{dtype:?}"));
        let t0 = Instant::now();
        let r = convert(&src, &out, dtype);
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(r.hf_architecture, "LlamaForCausalLM");
        assert_eq!(r.unpermuted.len(), 60);
        assert_eq!(r.parameters, 134_515_008);
        let hf = Model::from_hf_dir(&out).unwrap();
        let mut worst = 0f64;
        let mut rel = 0f64;
        let mut agree = 0;
        let mut positions = 0;
        for (p, w) in prompts.iter().zip(&want) {
            let got = all_logits(&hf, p);
            let d = max_abs(&got, w);
            worst = worst.max(d);
            rel = rel.max(d / spread(w));
            positions += p.len();
            agree += argmaxes(&got, vocab)
                .iter()
                .zip(argmaxes(w, vocab))
                .filter(|(a, b)| **a == *b)
                .count();
        }
        eprintln!(
            "SmolLM2 {dtype:?}: converted in {secs:.1} s ({:.0} MB); max |d| {worst:.3e} \
             ({rel:.2e} of the spread) over {positions} positions x {vocab}; argmax {agree}/{positions}",
            r.weight_bytes as f64 / 1e6
        );
        assert!(worst <= bound, "{dtype:?}: {worst:e}");
        if dtype == OutDtype::F32 {
            assert_eq!(agree, positions);
            check_tokenizer(&out, "SmolLM2-135M-Instruct.Q4_1");
        } else {
            assert!(
                agree * 10 >= positions * 8,
                "bf16 argmax {agree}/{positions}"
            );
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn gemma3_270m_tokenizer_converts() {
    // The weights are 1 GB in f32; the tokenizer alone is checked here (see
    // the ignored test below for the whole model).
    let src = tk::model_path("gemma-3-270m-q4_k_m.gguf");
    let g = GgufFile::open(&src).unwrap();
    let tok = Tokenizer::from_gguf(&g.metadata).unwrap();
    let dir = Scratch::new("gemma3-tok");
    write_tokenizer(&tok, &dir.0, 32768).unwrap();
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.0.join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["add_bos_token"], true);
    assert_eq!(cfg["bos_token"], "<bos>");
    check_tokenizer(&dir.0, "gemma-3-270m-q4_k_m");
}

/// The real Gemma 3 (q/k norms stored as 1 + w) converts bit-identically;
/// writes 1 GB, so it runs only when asked (`--ignored`).
#[test]
#[ignore]
fn gemma3_270m_converts_bit_identically() {
    let src = tk::model_path("gemma-3-270m-q4_k_m.gguf");
    let dir = Scratch::new("gemma3");
    let g = GgufFile::open(&src).unwrap();
    let model = gguf_model(&g);
    let ids = ids_of(&index("gemma-3-270m-q4_k_m")["capital"]["input_ids"]);
    let want = all_logits(&model, &ids);
    convert(&src, &dir.0, OutDtype::F32);
    let got = all_logits(&Model::from_hf_dir(&dir.0).unwrap(), &ids);
    assert!(got
        .iter()
        .zip(&want)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    check_tokenizer(&dir.0, "gemma-3-270m-q4_k_m");
}

fn atenia(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atenia"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_convert_command() {
    let dir = Scratch::new("cli");
    let src = tk::golden().join("gguf/qwen2/qwen2-Q4_K_M-mixed.gguf");
    let src = src.to_str().unwrap();
    let out = dir.0.join("q2");
    let o = out.to_str().unwrap();
    let (rc, stdout, err) = atenia(&["convert", src, "--out", o, "--dtype", "bf16"]);
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains("model.layers.1.mlp.down_proj.weight"),
        "progress: {err}"
    );
    assert!(err.contains("converted"), "{err}");
    assert!(stdout.contains("model.safetensors"), "{stdout}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["torch_dtype"], "bfloat16");
    assert_eq!(cfg["attention_bias"], true);
    assert_eq!(cfg["use_sliding_window"], false);
    // A non-empty directory needs --force.
    let (rc, _, err) = atenia(&["convert", src, "--out", o]);
    assert_eq!(rc, 2);
    assert!(
        err.contains("error[E-ARG]") && err.contains("--force"),
        "{err}"
    );
    let (rc, _, err) = atenia(&["convert", src, "--out", o, "--force", "-q"]);
    assert_eq!(rc, 0, "{err}");
    assert!(!err.contains("down_proj"), "-q prints no progress: {err}");
    // The converted checkpoint runs in `atenia load` with the built-in spec file.
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("specs/qwen2.yaml");
    let (rc, stdout, err) = atenia(&["load", spec.to_str().unwrap(), "-m", o, "--ids", "1,2,3"]);
    assert_eq!(rc, 0, "{err}");
    assert!(stdout.contains("Hugging Face checkpoint"), "{stdout}");
    // Not a GGUF file; a spec for another architecture.
    let (rc, _, err) = atenia(&[
        "convert",
        out.join("config.json").to_str().unwrap(),
        "--out",
        dir.0.join("x").to_str().unwrap(),
    ]);
    assert_eq!(rc, 2);
    assert!(err.contains("error[E-GGUF]"), "{err}");
    let llama = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("specs/llama.yaml");
    let (rc, _, err) = atenia(&[
        "convert",
        src,
        "--out",
        dir.0.join("y").to_str().unwrap(),
        "--spec",
        llama.to_str().unwrap(),
    ]);
    assert_eq!(rc, 2);
    assert!(err.contains("reads general.architecture"), "{err}");
}
