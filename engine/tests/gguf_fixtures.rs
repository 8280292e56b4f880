//! Every GGUF fixture written by llama.cpp's own converter and quantizer must
//! give logits within 1e-4 of its float64 reference with the argmax equal at
//! every position, in one prefill pass and token by token through the KV cache.

use atenia_testkit as tk;

use atenia_engine::exec::decoder::{Logits, Session};
use atenia_engine::formats::gguf::GgufFile;
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::Model;

fn check(file: &std::path::Path, rt: &Runtime) -> (f64, f64) {
    let reference = tk::read_reference(&file.with_extension("reference.safetensors"));
    let g = GgufFile::open(file).unwrap();
    let model = Model::from_gguf(&g, g.storage()).unwrap();
    let vocab = model.config.vocab;
    let ids = &reference.input_ids;

    let mut prefill = Vec::new();
    let mut s = Session::new(&model, rt, ids.len()).unwrap();
    s.forward(ids, Logits::All, &mut prefill).unwrap();

    let mut decode = Vec::new();
    let mut s = Session::new(&model, rt, ids.len()).unwrap();
    let mut out = Vec::new();
    for &t in ids {
        s.forward(&[t], Logits::Last, &mut out).unwrap();
        decode.extend_from_slice(&out);
    }

    let mut worst = [0f64; 2];
    for (which, logits) in [prefill, decode].iter().enumerate() {
        for (row, &p) in reference.positions.iter().enumerate() {
            let got = &logits[p * vocab..(p + 1) * vocab];
            let want = &reference.logits[row];
            let d = got
                .iter()
                .zip(want)
                .map(|(a, b)| (*a as f64 - b).abs())
                .fold(0.0, f64::max);
            worst[which] = worst[which].max(d);
            assert_eq!(
                tk::argmax(got),
                tk::argmax64(want),
                "{}: argmax differs at position {p}",
                file.display()
            );
        }
    }
    (worst[0], worst[1])
}

#[test]
fn every_gguf_fixture_matches_its_float64_reference() {
    let rt = Runtime::new(2, None).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(tk::golden().join("gguf"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    files.sort();
    let mut failures = vec![];
    let mut ran = 0;
    for f in &files {
        let arch = GgufFile::open(f)
            .unwrap()
            .architecture()
            .unwrap()
            .to_string();
        let (pre, dec) = check(f, &rt);
        ran += 1;
        eprintln!(
            "{:<40} {arch:<8} prefill {pre:.2e} decode {dec:.2e}",
            f.file_name().unwrap().to_string_lossy()
        );
        if pre > 1e-4 || dec > 1e-4 {
            failures.push(format!("{}: {pre:.3e} / {dec:.3e}", f.display()));
        }
    }
    assert!(ran >= 14, "only {ran} fixture files found");
    assert!(failures.is_empty(), "over 1e-4: {failures:#?}");
}
