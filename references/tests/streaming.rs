//! The reference passes stream their weights (chunk by chunk of rows, pages
//! released after use when asked) without changing a bit: SHA-256 of the
//! float64 logits, of every layer's residual stream the observer sees, and
//! of the bfloat16 emulation's logits, for every GGUF and Hugging Face
//! fixture and the real SmolLM2, compared with hashes committed in
//! `golden/reference-hashes.json`. They were recorded by the pass as it was
//! before it streamed (one matrix at a time, all rows at once, pages kept),
//! so equal hashes mean the streamed pass computes what the whole-matrix
//! pass computed, bit for bit.
//!
//! Each model runs with its pages kept and the default chunk, and with its
//! pages released and chunks down to a single row (so that every chunk
//! boundary, prefetch and release is crossed even on the tiny fixtures).
//!
//! A deliberate change of the reference's arithmetic re-records them with
//! `cargo test --profile test -p atenia-references --test streaming -- --ignored bless`
//! and says why in its commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atenia_engine::formats::gguf::GgufFile;
use atenia_engine::model::Model;
use atenia_references::{forward_bf16_with, forward_f64_with, Pages, Streaming};
use atenia_testkit::{gguf_fixtures, golden, model_path, read_reference};
use sha2::{Digest, Sha256};

fn hashes_file() -> PathBuf {
    golden().join("reference-hashes.json")
}

fn load_gguf(path: &Path) -> Model {
    let g = GgufFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Model::from_gguf(&g, g.storage()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every model the hashes cover, by a name relative to golden/ (the real
/// model by its file name), with the token ids its reference file runs.
fn cases() -> Vec<(String, Model, Vec<u32>)> {
    let mut v = vec![];
    for f in gguf_fixtures() {
        let ids = read_reference(&f.with_extension("reference.safetensors")).input_ids;
        let name = f.strip_prefix(golden()).unwrap().display().to_string();
        v.push((name, load_gguf(&f), ids));
    }
    let mut hf: Vec<PathBuf> = std::fs::read_dir(golden().join("hf"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("config.json").is_file())
        .collect();
    hf.sort();
    for d in hf {
        let ids = read_reference(&d.join("reference.safetensors")).input_ids;
        let name = d.strip_prefix(golden()).unwrap().display().to_string();
        let model = Model::from_hf_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        v.push((name, model, ids));
    }
    let file = "SmolLM2-135M-Instruct.Q4_1.gguf";
    let ids = read_reference(
        &golden()
            .join("real/SmolLM2-135M-Instruct.Q4_1")
            .join("capital.safetensors"),
    )
    .input_ids;
    v.push((file.to_string(), load_gguf(&model_path(file)), ids));
    assert!(v.len() >= 25, "only {} models found", v.len());
    v
}

fn hex(h: Sha256) -> String {
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_rows<'a>(rows: impl IntoIterator<Item = &'a [f64]>) -> String {
    let mut h = Sha256::new();
    for r in rows {
        for v in r {
            h.update(v.to_bits().to_le_bytes());
        }
    }
    hex(h)
}

/// `[f64 logits, observed residual streams, bf16 logits]`.
fn hashes(model: &Model, ids: &[u32], how: &Streaming) -> [String; 3] {
    let mut observed: Vec<Vec<f64>> = vec![];
    let mut obs = |_l: usize, rows: &[f64]| observed.push(rows.to_vec());
    let logits = forward_f64_with(model, ids, Some(&mut obs), how);
    let bf16 = forward_bf16_with(model, ids, how);
    [
        hash_rows(logits.iter().map(|r| &r[..])),
        hash_rows(observed.iter().map(|r| &r[..])),
        hash_rows(bf16.iter().map(|r| &r[..])),
    ]
}

/// The ways `name` is streamed: pages kept, whole default chunks (the
/// first, which `bless` records); pages released, chunks of an odd size
/// (4099 bytes: a few rows of a fixture, many chunks per matrix); and on two
/// fixtures pages released chunks of a single row (every row a chunk costs a
/// thread start per row, too slow for all of them).
fn ways(name: &str) -> Vec<Streaming> {
    let release = |chunk_bytes| Streaming {
        pages: Pages::Release,
        chunk_bytes,
    };
    let mut v = vec![Streaming::default(), release(4099)];
    if ["gguf/llama/llama-F32.gguf", "hf/llama-tied-f32"].contains(&name) {
        v.push(release(1));
    }
    v
}

/// Each model's hashes for each of [`ways`].
fn compute() -> BTreeMap<String, Vec<[String; 3]>> {
    cases()
        .into_iter()
        .map(|(name, model, ids)| {
            let h = ways(&name)
                .iter()
                .map(|how| hashes(&model, &ids, how))
                .collect();
            (name, h)
        })
        .collect()
}

fn committed() -> BTreeMap<String, [String; 3]> {
    let text = std::fs::read_to_string(hashes_file()).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (record it with --ignored bless)",
            hashes_file().display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

#[test]
fn reference_numbers_match_the_committed_hashes() {
    let want = committed();
    let got = compute();
    let mut bad = vec![];
    for (name, hs) in &got {
        for (how, h) in ways(name).iter().zip(hs) {
            match want.get(name) {
                Some(w) if w == h => {}
                Some(w) => bad.push(format!("{name} ({how:?}): {h:?} != committed {w:?}")),
                None => bad.push(format!("{name}: no committed hashes")),
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(
        got.len(),
        want.len(),
        "models differ from the committed set"
    );
}

/// Re-records golden/reference-hashes.json (see the module docs).
#[test]
#[ignore]
fn bless() {
    let first: BTreeMap<String, [String; 3]> = compute()
        .into_iter()
        .map(|(name, mut hs)| (name, hs.swap_remove(0)))
        .collect();
    let text = serde_json::to_string_pretty(&first).unwrap();
    std::fs::write(hashes_file(), text + "\n").unwrap();
}
