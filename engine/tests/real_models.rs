//! The real models against their float64 references (fixtures computed by
//! transformers from the files' own dequantized weights, in float64).

use atenia_testkit as tk;

use atenia_engine::exec::decoder::{Logits, Session};
use atenia_engine::formats::gguf::GgufFile;
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::Model;

fn run(model_file: &str, fixture_dir: &str) {
    let path = tk::model_path(model_file);
    let g = GgufFile::open(&path).unwrap();
    let model = Model::from_gguf(&g, g.storage()).unwrap();
    let rt = Runtime::new(2, None).unwrap();
    let vocab = model.config.vocab;
    let dir = tk::golden().join("real").join(fixture_dir);
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    for (case, info) in index.as_object().unwrap() {
        let r = tk::read_reference(&dir.join(format!("{case}.safetensors")));
        let ids = &r.input_ids;
        let mut s = Session::new(&model, &rt, ids.len() + 20).unwrap();
        let mut logits = Vec::new();
        s.forward(ids, Logits::All, &mut logits).unwrap();
        // Argmax at every position.
        let am = r.argmax.as_ref().unwrap();
        for (p, &want) in am.iter().enumerate() {
            assert_eq!(
                tk::argmax(&logits[p * vocab..(p + 1) * vocab]),
                want,
                "{case} position {p}"
            );
        }
        // Last-position logits.
        let p = r.positions[0];
        let d = logits[p * vocab..(p + 1) * vocab]
            .iter()
            .zip(&r.logits[0])
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        eprintln!("{model_file} {case}: max abs diff at last position {d:.3e}");
        assert!(d <= 1e-4, "{case}: {d}");
        // Greedy continuation through the KV cache.
        let want: Vec<u32> = info["greedy_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let mut got = vec![];
        let mut last = tk::argmax(&logits[(ids.len() - 1) * vocab..]) as u32;
        let mut out = Vec::new();
        for _ in 0..want.len() {
            got.push(last);
            s.forward(&[last], Logits::Last, &mut out).unwrap();
            last = tk::argmax(&out) as u32;
        }
        assert_eq!(got, want, "{model_file} {case}: greedy continuation");
    }
}

#[test]
fn smollm2_matches_float64() {
    run(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct.Q4_1",
    );
}

#[test]
fn gemma3_matches_float64() {
    run("gemma-3-270m-q4_k_m.gguf", "gemma-3-270m-q4_k_m");
}

/// The prefill's last logits, then 2 greedy decode steps' logits (the
/// output matrix is the costliest product on the scalar path, so only the
/// last position's; the others reach it through the KV cache).
fn logits_on(model: &Model, rt: &Runtime, ids: &[u32]) -> Vec<f32> {
    let mut s = Session::new(model, rt, ids.len() + 2).unwrap();
    let mut out = Vec::new();
    s.forward(ids, Logits::Last, &mut out).unwrap();
    let mut all = out.clone();
    for _ in 0..2 {
        let next = tk::argmax(&out) as u32;
        s.forward(&[next], Logits::Last, &mut out).unwrap();
        all.extend_from_slice(&out);
    }
    all
}

/// Every kernel path this CPU offers (scalar, AVX2, AVX-512 where present)
/// and 1 or 2 threads give the same logit bits on a real model, in prefill
/// and in decode: the reduction order does not depend on the path taken.
/// (The scalar path runs with 2 threads only: it is the slow one.)
fn every_isa_same_bits(model_file: &str, fixture_dir: &str) {
    use atenia_engine::kernels::Isa;
    let path = tk::model_path(model_file);
    let g = GgufFile::open(&path).unwrap();
    let model = Model::from_gguf(&g, g.storage()).unwrap();
    let dir = tk::golden().join("real").join(fixture_dir);
    let ids = tk::read_reference(&dir.join("capital.safetensors")).input_ids;
    let isas = Isa::available();
    let want = logits_on(&model, &Runtime::new(2, None).unwrap(), &ids);
    for &isa in &isas {
        for threads in [1, 2] {
            if isa == Isa::Scalar && threads == 1 {
                continue;
            }
            let got = logits_on(&model, &Runtime::new(threads, Some(isa)).unwrap(), &ids);
            assert_eq!(got.len(), want.len());
            let differ = got
                .iter()
                .zip(&want)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(
                differ, 0,
                "{model_file}: {isa} with {threads} threads differs from the default path in {differ} logits"
            );
        }
    }
    eprintln!("{model_file}: same bits on {isas:?} with 1 and 2 threads");
}

#[test]
fn smollm2_same_bits_on_every_isa() {
    every_isa_same_bits(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct.Q4_1",
    );
}

#[test]
fn gemma3_same_bits_on_every_isa() {
    every_isa_same_bits("gemma-3-270m-q4_k_m.gguf", "gemma-3-270m-q4_k_m");
}
