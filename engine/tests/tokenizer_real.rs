//! Tokenizers built from GGUF metadata against reference token ids:
//! * the two real models (`golden/real/<model>/index.json`: ids from the
//!   tokenizer transformers builds out of the GGUF, `chat` cases through the
//!   file's chat template), plus decoding of their greedy continuations;
//! * the tokenizer probe of every tiny fixture family
//!   (`golden/tokenizer/probes.json`: the trained tokenizer's ids, which
//!   llama.cpp reproduces).

use std::path::Path;
use std::time::Instant;

use atenia_engine::formats::gguf::GgufFile;
use atenia_engine::text::chat_template::{self, ChatMessage};
use atenia_engine::text::tokenizer::Tokenizer;
use atenia_testkit::{golden, model_path};

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn load(path: &Path) -> Tokenizer {
    let file = GgufFile::open(path).unwrap();
    let t0 = Instant::now();
    let tok = Tokenizer::from_gguf(&file.metadata).unwrap();
    eprintln!(
        "from_gguf({}): {:.1} ms, {} tokens, warnings {:?}",
        path.file_name().unwrap().to_string_lossy(),
        t0.elapsed().as_secs_f64() * 1e3,
        tok.vocab_size(),
        tok.warnings
    );
    tok
}

fn check_real_model(model: &str) {
    let tok = load(&model_path(&format!("{model}.gguf")));
    assert!(tok.warnings.is_empty(), "{:?}", tok.warnings);
    let index = json(&golden().join("real").join(model).join("index.json"));
    let cases = index.as_object().unwrap();
    assert!(!cases.is_empty());
    for (name, case) in cases {
        let text = case["text"].as_str().unwrap();
        let expected = ids(&case["input_ids"]);
        let got = match case["kind"].as_str().unwrap() {
            "text" => tok.encode(text, true).unwrap(),
            "chat" => {
                let template = tok
                    .chat_template
                    .as_deref()
                    .unwrap_or_else(|| panic!("{model}: chat case but no chat template"));
                let rendered = chat_template::render(
                    template,
                    &[ChatMessage::new("user", text)],
                    true,
                    &tok.bos_text(),
                    &tok.eos_text(),
                )
                .unwrap();
                let got = tok.encode_chat(&rendered).unwrap();
                assert_eq!(
                    tok.apply_chat_template(&[ChatMessage::new("user", text)], true)
                        .unwrap(),
                    got
                );
                got
            }
            other => panic!("{model}/{name}: unknown case kind {other}"),
        };
        assert_eq!(got, expected, "{model}/{name}: input ids");

        let greedy = ids(&case["greedy_ids"]);
        let greedy_text = case["greedy_text"].as_str().unwrap();
        assert_eq!(
            tok.decode(&greedy).unwrap(),
            greedy_text,
            "{model}/{name}: greedy text"
        );
        // The same through the streaming decoder, and via the tokenizers decoder.
        let mut stream = tok.stream_decoder();
        let mut streamed = String::new();
        for &id in &greedy {
            streamed.push_str(&stream.step(id).unwrap());
        }
        streamed.push_str(&stream.finish());
        assert_eq!(streamed, greedy_text, "{model}/{name}: streamed text");
        assert_eq!(tok.inner().decode(&greedy, false).unwrap(), greedy_text);
        // Prompt + continuation decodes as transformers would, too.
        let all: Vec<u32> = expected.iter().chain(&greedy).copied().collect();
        assert_eq!(
            tok.decode(&all).unwrap(),
            tok.inner().decode(&all, false).unwrap()
        );
    }
}

#[test]
fn smollm2_matches_transformers() {
    check_real_model("SmolLM2-135M-Instruct.Q4_1");
    let tok = load(&model_path("SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert_eq!((tok.bos_id, tok.eos_id), (Some(1), Some(2)));
    assert!(!tok.add_bos && !tok.add_eos);
    assert!(tok.is_end_of_generation(2), "<|im_end|>");
    assert!(tok.is_end_of_generation(0), "<|endoftext|>");
    assert!(!tok.is_end_of_generation(1));
    // Literal special tokens in text are single ids.
    assert_eq!(
        tok.encode("<|im_start|>user\nHi<|im_end|>", false).unwrap()[..2],
        [1, tok.token_to_id("user").unwrap()]
    );
}

#[test]
fn gemma3_matches_transformers() {
    check_real_model("gemma-3-270m-q4_k_m");
    let tok = load(&model_path("gemma-3-270m-q4_k_m.gguf"));
    assert_eq!(tok.vocab_size(), 262_144);
    assert_eq!((tok.bos_id, tok.eos_id), (Some(2), Some(1)));
    assert!(tok.add_bos && !tok.add_eos);
    assert!(tok.is_end_of_generation(1), "<eos>");
    assert!(tok.is_end_of_generation(106), "<end_of_turn>");
    assert!(!tok.is_end_of_generation(105));
    // Turn markers written in the text are single ids (the chat-sky case).
    let ids = tok.encode("<start_of_turn>user\n", false).unwrap();
    assert_eq!(ids, [105, 2364, 107]);
    // Byte fallback and multi-byte characters round-trip.
    for text in [
        "naïve café — 東京 🌍\t\ttabs  and   spaces\n\n",
        "  leading",
        "\u{1f}x",
    ] {
        let ids = tok.encode(text, false).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), text);
        assert_eq!(tok.inner().decode(&ids, false).unwrap(), text);
    }
}

#[test]
fn fixture_family_probes() {
    let probes = json(&golden().join("tokenizer/probes.json"));
    let probes = probes["probes"].as_object().unwrap();
    assert_eq!(probes.len(), 8, "all eight families");
    for (family, p) in probes {
        let tok = load(&golden().join(p["gguf"].as_str().unwrap()));
        assert!(tok.warnings.is_empty(), "{family}: {:?}", tok.warnings);
        let text = p["text"].as_str().unwrap();
        let expected = ids(&p["ids"]);
        assert_eq!(tok.encode(text, false).unwrap(), expected, "{family}");
        assert_eq!(tok.decode(&expected).unwrap(), text, "{family}: decode");
        assert_eq!(
            tok.inner().decode(&expected, false).unwrap(),
            text,
            "{family}"
        );
        // bos as the family's configuration states it, added for SentencePiece only.
        let bos = p["bos_token_id"].as_u64().map(|b| b as u32);
        assert_eq!(tok.bos_id, bos, "{family}: bos");
        let with_special = tok.encode(text, true).unwrap();
        let sentencepiece = p["tokenizer"].as_str().unwrap().starts_with("spm");
        assert_eq!(tok.add_bos, sentencepiece, "{family}: add_bos");
        if sentencepiece {
            assert_eq!(with_special[0], bos.unwrap(), "{family}");
            assert_eq!(with_special[1..], expected[..], "{family}");
        } else {
            assert_eq!(with_special, expected, "{family}");
        }
        let eos = p["eos_token_id"].as_u64().unwrap() as u32;
        assert!(tok.is_end_of_generation(eos), "{family}: eos {eos}");
        // Special tokens in text: the eos token's text becomes its id.
        let eos_text = tok.eos_text();
        let ids = tok.encode(&format!("{text}{eos_text}"), false).unwrap();
        assert_eq!(*ids.last().unwrap(), eos, "{family}: literal eos");
    }
}

/// Seeded texts mixing prose, code, numbers, whitespace runs, special
/// tokens, accented, CJK and emoji characters, and control bytes.
fn mixed_texts(seed: u64, n: usize) -> Vec<String> {
    let parts = [
        "The quick brown fox",
        " jumps",
        " over",
        "   ",
        "\t",
        "\n\n",
        "12345",
        "3.14",
        "fn main() { x += 1; }",
        "naïve",
        " café",
        " — ",
        "東京",
        "日本語のテキスト",
        "🌍",
        "😀👍",
        "<start_of_turn>",
        "<end_of_turn>",
        "<|im_start|>",
        "<|im_end|>",
        "<bos>",
        "<unk>",
        "\u{1f}",
        "\u{7f}",
        "Ǆ",
        "ﬁ",
        "Zürich",
        "Привет",
        "مرحبا",
        "'s",
        "'ll",
        "don't",
    ];
    let mut rng = atenia_testkit::Rng::new(seed);
    (0..n)
        .map(|_| {
            let k = 1 + rng.below(12) as usize;
            (0..k)
                .map(|_| parts[rng.below(parts.len() as u64) as usize])
                .collect()
        })
        .collect()
}

/// The engine's compact BPE model encodes the real vocabularies exactly as
/// `tokenizers`' BPE model with the same vocabulary, merges and pipeline.
#[test]
fn compact_model_encodes_as_the_tokenizers_bpe() {
    for (model, seed) in [
        ("gemma-3-270m-q4_k_m", 1),
        ("SmolLM2-135M-Instruct.Q4_1", 2),
    ] {
        let tok = load(&model_path(&format!("{model}.gguf")));
        let peer = tok.inner();
        for text in mixed_texts(seed, 400) {
            let ids = tok.encode(&text, false).unwrap();
            let expected = peer.encode(text.as_str(), false).unwrap();
            assert_eq!(ids, expected.get_ids(), "{model}: {text:?}");
            assert_eq!(tok.id_to_token(ids[0]), peer.id_to_token(ids[0]), "{model}");
        }
    }
}
