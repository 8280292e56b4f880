//! Criterion benches of the GGUF tokenizers of the two real test models
//! (the model files are needed: `scripts/fetch-models.sh`): encoding and
//! decoding a long mixed text with the engine's compact BPE model, beside
//! the same tokenizer with `tokenizers`' own BPE model as the peer
//! (`Tokenizer::inner`, what the engine used before the compact model).
//!
//!   cargo bench -p atenia-benches --bench tokenizer
//!   cargo bench -p atenia-benches --bench tokenizer -- gemma3

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use atenia_engine::formats::gguf::GgufFile;
use atenia_engine::text::tokenizer::Tokenizer;
use atenia_testkit::{model_path, Rng};

/// About 64 KiB of text: prose, code, numbers, whitespace runs and
/// non-Latin words, in a seeded order.
fn text() -> String {
    let parts = [
        "The quick brown fox jumps over the lazy dog. ",
        "fn main() {\n    println!(\"{}\", 42);\n}\n",
        "In 1969, 3 astronauts flew 384,400 km to the Moon.   ",
        "Ceci n'est pas une pipe — c'était l'été à Zürich. ",
        "東京は日本の首都です。 Привет, мир! ",
        "<start_of_turn>user\nHello!<end_of_turn>\n",
        "\t\tindented    spaces\n\n",
    ];
    let mut rng = Rng::new(7);
    let mut s = String::new();
    while s.len() < 64 << 10 {
        s.push_str(parts[rng.below(parts.len() as u64) as usize]);
    }
    s
}

fn bench_model(c: &mut Criterion, name: &str, file: &str) {
    let gguf = GgufFile::open(model_path(file)).expect("model file");
    let tok = Tokenizer::from_gguf(&gguf.metadata).expect("tokenizer");
    let peer = tok.inner();
    let text = text();
    let ids = tok.encode(&text, false).expect("encode");
    assert_eq!(
        peer.encode(text.as_str(), false).unwrap().get_ids(),
        &ids[..]
    );

    let mut g = c.benchmark_group(format!("tokenizer/{name}"));
    g.sample_size(10);
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("encode", |b| b.iter(|| tok.encode(&text, false).unwrap()));
    g.bench_function("encode_peer", |b| {
        b.iter(|| peer.encode(text.as_str(), false).unwrap())
    });
    g.bench_function("decode", |b| b.iter(|| tok.decode(&ids).unwrap()));
    g.finish();
}

fn tokenizers(c: &mut Criterion) {
    bench_model(c, "gemma3", "gemma-3-270m-q4_k_m.gguf");
    bench_model(c, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf");
}

criterion_group!(benches, tokenizers);
criterion_main!(benches);
