//! Every logit, bit for bit: SHA-256 of the f32 logits of every fixture and
//! real model (prefill of all positions, and token-by-token decode), compared
//! with hashes committed in `golden/logit-hashes.json`.
//!
//! A refactor must leave these unchanged. A deliberate numeric change (a new
//! kernel arithmetic) re-records them with
//! `cargo test --profile test -p atenia-engine --test logit_hashes -- --ignored bless`
//! and says why in its commit.

use atenia_testkit as tk;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atenia_engine::exec::decoder::{Logits, Session};
use atenia_engine::exec::digest::logits_sha256;
use atenia_engine::formats::gguf::GgufFile;
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::Model;

/// The engine's logits digest without its `sha256:` prefix (the committed
/// file's form).
fn hash(logits: &[f32]) -> String {
    logits_sha256(logits)["sha256:".len()..].to_string()
}

/// Prefill of all positions, then `extra` greedy steps; and the same ids one
/// token at a time through the KV cache.
fn hashes(model: &Model, rt: &Runtime, ids: &[u32], extra: usize) -> [String; 2] {
    let vocab = model.config.vocab;
    let mut prefill = Vec::new();
    let mut s = Session::new(model, rt, ids.len() + extra).unwrap();
    s.forward(ids, Logits::All, &mut prefill).unwrap();
    let mut out = Vec::new();
    let mut last = tk::argmax(&prefill[(ids.len() - 1) * vocab..]) as u32;
    for _ in 0..extra {
        s.forward(&[last], Logits::Last, &mut out).unwrap();
        prefill.extend_from_slice(&out);
        last = tk::argmax(&out) as u32;
    }

    let mut decode = Vec::new();
    let mut s = Session::new(model, rt, ids.len()).unwrap();
    for &t in ids {
        s.forward(&[t], Logits::Last, &mut out).unwrap();
        decode.extend_from_slice(&out);
    }
    [hash(&prefill), hash(&decode)]
}

fn sorted_dir(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn compute() -> BTreeMap<String, [String; 2]> {
    let rt = Runtime::new(2, None).unwrap();
    let mut all = BTreeMap::new();
    let golden = tk::golden();
    for dir in sorted_dir(&golden.join("hf")) {
        if !dir.join("config.json").is_file() {
            continue;
        }
        let r = tk::read_reference(&dir.join("reference.safetensors"));
        let model = Model::from_hf_dir(&dir).unwrap();
        let name = format!("hf/{}", dir.file_name().unwrap().to_string_lossy());
        all.insert(name, hashes(&model, &rt, &r.input_ids, 4));
    }
    for arch in sorted_dir(&golden.join("gguf")) {
        if !arch.is_dir() {
            continue;
        }
        for file in sorted_dir(&arch) {
            if file.extension().is_none_or(|e| e != "gguf") {
                continue;
            }
            let r = tk::read_reference(&file.with_extension("reference.safetensors"));
            let g = GgufFile::open(&file).unwrap();
            let model = Model::from_gguf(&g, g.storage()).unwrap();
            let name = format!("gguf/{}", file.file_name().unwrap().to_string_lossy());
            all.insert(name, hashes(&model, &rt, &r.input_ids, 4));
        }
    }
    // The real models, with the length of their long-context case.
    for (file, fixtures, long) in [
        (
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "SmolLM2-135M-Instruct.Q4_1",
            280,
        ),
        ("gemma-3-270m-q4_k_m.gguf", "gemma-3-270m-q4_k_m", 530),
    ] {
        let g = GgufFile::open(tk::model_path(file)).unwrap();
        let model = Model::from_gguf(&g, g.storage()).unwrap();
        for case in sorted_dir(&golden.join("real").join(fixtures)) {
            if case.extension().is_none_or(|e| e != "safetensors") {
                continue;
            }
            let r = tk::read_reference(&case);
            let name = format!(
                "real/{fixtures}/{}",
                case.file_stem().unwrap().to_string_lossy()
            );
            all.insert(name, hashes(&model, &rt, &r.input_ids, 8));
        }
        // A long context: the tiled prefill, and decode past 256 keys (and,
        // for Gemma 3, past its 512-key sliding window) take the attention
        // kernel's own paths; these hashes were recorded before those paths
        // existed (the kernel then read every key once per head and row).
        let ids = long_prompt(&golden.join("real").join(fixtures), long);
        let name = format!("real/{fixtures}/long-{}", ids.len());
        all.insert(name, long_hashes(&model, &rt, &ids));
    }
    all
}

/// A long prompt, costed for a test (one session, last-position logits
/// only): the prefill of all but the last 8 ids, those 8 one at a time
/// through the KV cache, then 4 greedy steps. Returns the hashes of the
/// prefill's logits and of the 12 steps'.
fn long_hashes(model: &Model, rt: &Runtime, ids: &[u32]) -> [String; 2] {
    let vocab = model.config.vocab;
    let (head, tail) = ids.split_at(ids.len() - 8);
    let mut s = Session::new(model, rt, ids.len() + 4).unwrap();
    let mut prefill = Vec::new();
    s.forward(head, Logits::Last, &mut prefill).unwrap();
    let mut steps = Vec::new();
    let mut out = Vec::new();
    for &t in tail {
        s.forward(&[t], Logits::Last, &mut out).unwrap();
        steps.extend_from_slice(&out);
    }
    for _ in 0..4 {
        let next = tk::argmax(&steps[steps.len() - vocab..]) as u32;
        s.forward(&[next], Logits::Last, &mut out).unwrap();
        steps.extend_from_slice(&out);
    }
    [hash(&prefill), hash(&steps)]
}

/// `n` token ids: every real case's prompt, in file order, repeated.
fn long_prompt(dir: &Path, n: usize) -> Vec<u32> {
    let mut ids = Vec::new();
    for case in sorted_dir(dir) {
        if case.extension().is_some_and(|e| e == "safetensors") {
            ids.extend(tk::read_reference(&case).input_ids);
        }
    }
    assert!(!ids.is_empty(), "no cases in {}", dir.display());
    ids.iter().copied().cycle().take(n).collect()
}

fn committed_path() -> PathBuf {
    tk::golden().join("logit-hashes.json")
}

#[test]
fn every_logit_is_bit_identical_to_the_committed_hashes() {
    let want: BTreeMap<String, [String; 2]> =
        serde_json::from_str(&std::fs::read_to_string(committed_path()).unwrap()).unwrap();
    let got = compute();
    assert!(got.len() >= 30, "only {} cases found", got.len());
    let mut diffs = vec![];
    for (name, g) in &got {
        match want.get(name) {
            None => diffs.push(format!("{name}: not in the committed hashes")),
            Some(w) if w != g => diffs.push(format!("{name}: {w:?} -> {g:?}")),
            Some(_) => {}
        }
    }
    for name in want.keys() {
        if !got.contains_key(name) {
            diffs.push(format!("{name}: committed but no longer computed"));
        }
    }
    assert!(
        diffs.is_empty(),
        "logits changed (prefill, decode):\n{}",
        diffs.join("\n")
    );
}

/// Re-records `golden/logit-hashes.json`; run only on purpose (`--ignored`).
#[test]
#[ignore]
fn bless() {
    let all = compute();
    let text = serde_json::to_string_pretty(&all).unwrap() + "\n";
    std::fs::write(committed_path(), text).unwrap();
}
