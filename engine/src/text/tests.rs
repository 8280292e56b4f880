//! The tokenizer's unit tests: GGUF metadata written in memory, built into
//! every kind of tokenizer, encoded, decoded and streamed.

use crate::family::spec::FamilySpec;
use crate::formats::gguf::Metadata;
use crate::text::decode::{incomplete_tail_len, DecodeScheme};
use crate::text::tokenizer::{SpmFlavor, Tokenizer, TokenizerKind};
use crate::text::vocab::bytes_to_unicode;

/// A minimal GGUF writer for metadata-only files.
#[derive(Default)]
struct Kv {
    buf: Vec<u8>,
    n: u64,
}

impl Kv {
    fn key(&mut self, k: &str, ty: u32) {
        self.buf.extend((k.len() as u64).to_le_bytes());
        self.buf.extend(k.as_bytes());
        self.buf.extend(ty.to_le_bytes());
        self.n += 1;
    }
    fn s(mut self, k: &str, v: &str) -> Self {
        self.key(k, 8);
        self.buf.extend((v.len() as u64).to_le_bytes());
        self.buf.extend(v.as_bytes());
        self
    }
    fn u32(mut self, k: &str, v: u32) -> Self {
        self.key(k, 4);
        self.buf.extend(v.to_le_bytes());
        self
    }
    fn b(mut self, k: &str, v: bool) -> Self {
        self.key(k, 7);
        self.buf.push(v as u8);
        self
    }
    fn strs(mut self, k: &str, v: &[&str]) -> Self {
        self.key(k, 9);
        self.buf.extend(8u32.to_le_bytes());
        self.buf.extend((v.len() as u64).to_le_bytes());
        for s in v {
            self.buf.extend((s.len() as u64).to_le_bytes());
            self.buf.extend(s.as_bytes());
        }
        self
    }
    fn f32s(mut self, k: &str, v: &[f32]) -> Self {
        self.key(k, 9);
        self.buf.extend(6u32.to_le_bytes());
        self.buf.extend((v.len() as u64).to_le_bytes());
        for x in v {
            self.buf.extend(x.to_le_bytes());
        }
        self
    }
    fn i32s(mut self, k: &str, v: &[i32]) -> Self {
        self.key(k, 9);
        self.buf.extend(5u32.to_le_bytes());
        self.buf.extend((v.len() as u64).to_le_bytes());
        for x in v {
            self.buf.extend(x.to_le_bytes());
        }
        self
    }
    fn meta(&self) -> Metadata {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend(self.n.to_le_bytes());
        out.extend(&self.buf);
        while out.len() & 31 != 0 {
            out.push(0);
        }
        crate::formats::gguf::parse_bytes(&out).unwrap().0
    }
}

/// A SentencePiece vocabulary: specials, all 256 byte tokens, then pieces
/// in merge order (score = -rank).
fn spm_vocab(pieces: &[&str]) -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut tokens = vec!["<unk>".to_owned(), "<s>".to_owned(), "</s>".to_owned()];
    let mut scores = vec![0.0f32; 3];
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        scores.push(0.0);
        types.push(6);
    }
    for (i, p) in pieces.iter().enumerate() {
        tokens.push((*p).to_owned());
        scores.push(-(i as f32));
        types.push(1);
    }
    (tokens, scores, types)
}

const PIECES: &[&str] = &[
    "▁", "h", "e", "l", "o", "w", "r", "d", "<", ">", "|", "t", "a", "▁t", "he", "ll", "▁the",
    "▁h", "▁hell", "hell", "▁w", "or", "▁wor", "ld", "▁world", "▁hello", "lo", "▁a",
];

fn spm_meta(arch: &str, extra: impl FnOnce(Kv) -> Kv) -> Metadata {
    let (tokens, scores, types) = spm_vocab(PIECES);
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let kv = Kv::default()
        .s("general.architecture", arch)
        .s("tokenizer.ggml.model", "llama")
        .strs("tokenizer.ggml.tokens", &refs)
        .f32s("tokenizer.ggml.scores", &scores)
        .i32s("tokenizer.ggml.token_type", &types)
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2)
        .u32("tokenizer.ggml.unknown_token_id", 0);
    extra(kv).meta()
}

fn id(tok: &Tokenizer, s: &str) -> u32 {
    tok.token_to_id(s)
        .unwrap_or_else(|| panic!("{s:?} not in vocab"))
}

#[test]
fn sentencepiece_llama_encodes_and_decodes() {
    let tok = Tokenizer::from_gguf(&spm_meta("llama", |k| k)).unwrap();
    assert!(tok.warnings.is_empty(), "{:?}", tok.warnings);
    assert_eq!(
        tok.kind,
        TokenizerKind::SentencePiece {
            flavor: SpmFlavor::Llama
        }
    );
    assert!(tok.add_bos && !tok.add_eos);
    let ids = tok.encode("hello world", true).unwrap();
    assert_eq!(ids, vec![1, id(&tok, "▁hello"), id(&tok, "▁world")]);
    assert_eq!(tok.decode(&ids[1..]).unwrap(), "hello world");
    // The special token is recognized in the text, and the text after it
    // gets no prefix space (Metaspace "first").
    let ids = tok.encode("<s>hello", false).unwrap();
    assert_eq!(ids, vec![1, id(&tok, "hell"), id(&tok, "o")]);
    // Unknown characters fall back to bytes.
    let ids = tok.encode("é", false).unwrap();
    assert_eq!(ids, vec![id(&tok, "▁"), 3 + 0xC3, 3 + 0xA9]);
    assert_eq!(tok.decode(&ids).unwrap(), " é".trim_start());
}

#[test]
fn sentencepiece_without_space_prefix() {
    let tok = Tokenizer::from_gguf(&spm_meta("llama", |k| {
        k.b("tokenizer.ggml.add_space_prefix", false)
    }))
    .unwrap();
    let ids = tok.encode("hello", false).unwrap();
    assert_eq!(ids, vec![id(&tok, "hell"), id(&tok, "o")]);
    assert_eq!(
        tok.decode(&tok.encode(" hello", false).unwrap()).unwrap(),
        " hello"
    );
}

#[test]
fn gemma_and_phi3_flavors() {
    let tok = Tokenizer::from_gguf(&spm_meta("gemma3", |k| k)).unwrap();
    assert_eq!(
        tok.kind,
        TokenizerKind::SentencePiece {
            flavor: SpmFlavor::Gemma
        }
    );
    // No prefix space for Gemma.
    assert_eq!(
        tok.encode("hello", false).unwrap(),
        vec![id(&tok, "hell"), id(&tok, "o")]
    );
    assert_eq!(tok.decode(&[id(&tok, "▁hello")]).unwrap(), " hello");

    let tok = Tokenizer::from_gguf(&spm_meta("phi3", |k| k)).unwrap();
    assert_eq!(
        tok.kind,
        TokenizerKind::SentencePiece {
            flavor: SpmFlavor::Phi3
        }
    );
    // The prefix `▁` comes back after a special token too (a normalizer).
    let ids = tok.encode("<s>hello", false).unwrap();
    assert_eq!(ids, vec![1, id(&tok, "▁hello")]);
}

#[test]
fn byte_level_bpe_with_specials_and_pre() {
    let mut tokens: Vec<String> = vec![
        "<|endoftext|>".into(),
        "<|im_start|>".into(),
        "<|im_end|>".into(),
    ];
    let table = bytes_to_unicode();
    tokens.extend(table.iter().map(|c| c.to_string()));
    tokens.extend(["Ġh", "el", "lo", "hel", "hello", "Ġhello", "12"].map(String::from));
    let merges = ["Ġ h", "e l", "l o", "h el", "hel lo", "Ġh ello", "1 2"];
    // "ello" is needed by "Ġh ello": add it and its merge.
    tokens.push("ello".into());
    let merges: Vec<&str> = merges.iter().copied().chain(["el lo"]).collect();
    let mut types = vec![3i32; 3];
    types.extend(std::iter::repeat_n(1, tokens.len() - 3));
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let build = |pre: Option<&str>| {
        let mut kv = Kv::default()
            .s("general.architecture", "qwen2")
            .s("tokenizer.ggml.model", "gpt2")
            .strs("tokenizer.ggml.tokens", &refs)
            .i32s("tokenizer.ggml.token_type", &types)
            .strs("tokenizer.ggml.merges", &merges)
            .u32("tokenizer.ggml.eos_token_id", 2);
        if let Some(p) = pre {
            kv = kv.s("tokenizer.ggml.pre", p);
        }
        Tokenizer::from_gguf(&kv.meta()).unwrap()
    };
    let tok = build(Some("qwen2"));
    assert!(tok.warnings.is_empty(), "{:?}", tok.warnings);
    assert!(!tok.add_bos);
    let ids = tok
        .encode("<|im_start|>hello hello<|im_end|>", true)
        .unwrap();
    assert_eq!(ids, vec![1, id(&tok, "hello"), id(&tok, "Ġhello"), 2]);
    assert_eq!(
        tok.decode(&ids).unwrap(),
        "<|im_start|>hello hello<|im_end|>"
    );
    assert!(tok.is_end_of_generation(2));
    assert!(tok.is_end_of_generation(0), "<|endoftext|> ends generation");
    assert!(!tok.is_end_of_generation(1));
    // qwen2 splits digits one by one; gpt-2 keeps "12" together.
    assert_eq!(tok.encode("12", false).unwrap().len(), 2);
    let gpt2 = build(Some("gpt-2"));
    assert_eq!(gpt2.encode("12", false).unwrap(), vec![id(&gpt2, "12")]);
    let smol = build(Some("smollm"));
    assert_eq!(smol.encode("12", false).unwrap().len(), 2);
    // Unknown and missing pre values fall back to GPT-2 with a warning.
    let odd = build(Some("no-such-pre"));
    assert!(
        odd.warnings.iter().any(|w| w.contains("no-such-pre")),
        "{:?}",
        odd.warnings
    );
    assert_eq!(odd.encode("12", false).unwrap(), vec![id(&odd, "12")]);
    assert!(!build(None).warnings.is_empty());
}

#[test]
fn stream_decoding_matches_decode_and_the_tokenizers_decoder() {
    // SentencePiece with byte fallback: multi-byte characters split over
    // byte tokens, invalid runs, the leading-space rule.
    for arch in ["llama", "gemma", "phi3"] {
        let tok = Tokenizer::from_gguf(&spm_meta(arch, |k| k)).unwrap();
        let e_acute = [3 + 0xC3, 3 + 0xA9];
        let euro = [3 + 0xE2, 3 + 0x82, 3 + 0xAC];
        let hello = id(&tok, "▁hello");
        let cases: Vec<Vec<u32>> = vec![
            vec![hello, hello],
            e_acute.to_vec(),
            [&e_acute[..], &[hello], &euro[..]].concat(),
            [&euro[..2], &[hello]].concat(),
            vec![3 + 0x20, hello],
            vec![1, hello, 2],
            [&euro[..], &euro[..1]].concat(),
            vec![],
        ];
        for ids in cases {
            let reference = tok.inner().decode(&ids, false).unwrap();
            assert_eq!(tok.decode(&ids).unwrap(), reference, "{arch} {ids:?}");
            let mut s = tok.stream_decoder();
            let mut chunks = String::new();
            for &i in &ids {
                chunks.push_str(&s.step(i).unwrap());
            }
            chunks.push_str(&s.finish());
            assert_eq!(chunks, reference, "{arch} {ids:?}");
        }
    }
}

/// A byte-level (GPT-2) tokenizer with no merges: id 0 is
/// `<|endoftext|>`, id `1 + b` is byte `b`.
fn byte_level_tokenizer() -> Tokenizer {
    let mut tokens: Vec<String> = vec!["<|endoftext|>".into()];
    tokens.extend(bytes_to_unicode().iter().map(|c| c.to_string()));
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let meta = Kv::default()
        .s("tokenizer.ggml.model", "gpt2")
        .s("tokenizer.ggml.pre", "default")
        .strs("tokenizer.ggml.tokens", &refs)
        .strs("tokenizer.ggml.merges", &[])
        .meta();
    Tokenizer::from_gguf(&meta).unwrap()
}

#[test]
fn byte_level_stream_holds_incomplete_characters() {
    let tok = byte_level_tokenizer();
    let ids = tok.encode("a€b", false).unwrap();
    assert_eq!(ids.len(), 5);
    let mut s = tok.stream_decoder();
    let chunks: Vec<String> = ids.iter().map(|&i| s.step(i).unwrap()).collect();
    assert_eq!(chunks, ["a", "", "", "€", "b"]);
    // A truncated character, an invalid byte and a valid one afterwards.
    let byte = |b: u8| 1 + b as u32;
    for ids in [
        vec![byte(0xE2), byte(0x82)],
        vec![byte(0xFF), byte(b'x')],
        vec![byte(0xE2), byte(b'x')],
    ] {
        let reference = tok.inner().decode(&ids, false).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), reference);
    }
}

#[test]
fn finish_held_keeps_back_an_incomplete_last_character() {
    // Byte-level: 😀 is F0 9F 98 80, one byte token each.
    let tok = byte_level_tokenizer();
    let emoji = tok.encode("a😀", false).unwrap();
    assert_eq!(emoji.len(), 5);
    let run = |ids: &[u32]| {
        let mut s = tok.stream_decoder();
        let mut text: String = ids.iter().map(|&i| s.step(i).unwrap()).collect();
        let (tail, held) = s.finish_held();
        text.push_str(&tail);
        (text, held)
    };
    for cut in 2..5 {
        let (text, held) = run(&emoji[..cut]);
        assert_eq!(text, "a", "cut after {cut} ids");
        assert_eq!(held, &[0xF0, 0x9F, 0x98][..cut - 1]);
        // `finish` (and `decode`) still turn the tail into U+FFFD.
        assert!(tok.decode(&emoji[..cut]).unwrap().ends_with('\u{FFFD}'));
    }
    assert_eq!(run(&emoji), ("a😀".to_string(), vec![]));
    // An invalid byte is not "incomplete": it stays U+FFFD.
    let byte = |b: u8| 1 + b as u32;
    let (text, held) = run(&[emoji[0], byte(0xFF)]);
    assert!(
        held.is_empty() && text.ends_with('\u{FFFD}'),
        "{text:?} {held:?}"
    );

    // SentencePiece byte fallback: a run of byte tokens cut inside €.
    let tok = Tokenizer::from_gguf(&spm_meta("llama", |k| k)).unwrap();
    let hello = id(&tok, "▁hello");
    let euro = [3 + 0xE2, 3 + 0x82, 3 + 0xAC];
    let e_acute = [3 + 0xC3, 3 + 0xA9];
    let mut s = tok.stream_decoder();
    let mut text = String::new();
    for &i in [&[hello], &e_acute[..], &euro[..2]].concat().iter() {
        text.push_str(&s.step(i).unwrap());
    }
    let (tail, held) = s.finish_held();
    text.push_str(&tail);
    assert_eq!(
        (text.as_str(), held.as_slice()),
        ("hello\u{e9}", &[0xE2, 0x82][..])
    );
    assert_eq!(incomplete_tail_len(&[0xE2, 0x82, 0xAC]), 0);
    assert_eq!(incomplete_tail_len(&[b'x', 0xF0]), 1);
    assert_eq!(incomplete_tail_len(&[0x82, 0x82]), 0);
    assert_eq!(incomplete_tail_len(&[]), 0);
}

#[test]
fn errors_are_clear() {
    let err = |meta: Metadata| Tokenizer::from_gguf(&meta).unwrap_err().to_string();
    let e = err(Kv::default()
        .s("tokenizer.ggml.model", "bert")
        .strs("tokenizer.ggml.tokens", &["a"])
        .meta());
    assert!(e.contains("\"bert\"") && e.contains("not supported"), "{e}");
    let e = err(Kv::default().s("tokenizer.ggml.model", "rwkv").meta());
    assert!(e.contains("rwkv"), "{e}");
    let e = err(Kv::default().meta());
    assert!(e.contains("tokenizer.ggml.model"), "{e}");
    let e = err(Kv::default().s("tokenizer.ggml.model", "llama").meta());
    assert!(e.contains("tokenizer.ggml.tokens"), "{e}");

    let base = || {
        Kv::default()
            .s("tokenizer.ggml.model", "llama")
            .strs("tokenizer.ggml.tokens", &["<unk>", "a", "b", "ab"])
    };
    let e = err(base().f32s("tokenizer.ggml.scores", &[0.0, 1.0]).meta());
    assert!(
        e.contains("scores has 2 entries") && e.contains("has 4"),
        "{e}"
    );
    let e = err(base()
        .f32s("tokenizer.ggml.scores", &[0.0; 4])
        .i32s("tokenizer.ggml.token_type", &[2, 1, 1])
        .meta());
    assert!(e.contains("token_type has 3 entries"), "{e}");
    let e = err(base()
        .f32s("tokenizer.ggml.scores", &[0.0; 4])
        .i32s("tokenizer.ggml.token_type", &[2, 1, 1, 9])
        .meta());
    assert!(e.contains("token_type[3] = 9"), "{e}");
    let e = err(base()
        .f32s("tokenizer.ggml.scores", &[0.0, f32::NAN, 0.0, 0.0])
        .meta());
    assert!(e.contains("scores[1]"), "{e}");
    let e = err(base()
        .f32s("tokenizer.ggml.scores", &[0.0; 4])
        .u32("tokenizer.ggml.eos_token_id", 4)
        .meta());
    assert!(
        e.contains("eos_token_id = 4") && e.contains("out of range"),
        "{e}"
    );
    let e = err(base().meta());
    assert!(e.contains("scores is missing"), "{e}");
    // Works once complete.
    let tok = Tokenizer::from_gguf(
        &base()
            .f32s("tokenizer.ggml.scores", &[0.0, -1.0, -2.0, -3.0])
            .meta(),
    )
    .unwrap();
    assert_eq!(tok.encode("ab", false).unwrap(), vec![3]);

    let bpe = |merges: &[&str]| {
        Kv::default()
            .s("tokenizer.ggml.model", "gpt2")
            .s("tokenizer.ggml.pre", "gpt-2")
            .strs("tokenizer.ggml.tokens", &["a", "b", "ab"])
            .strs("tokenizer.ggml.merges", merges)
            .meta()
    };
    let e = err(bpe(&["a b", "ab"]));
    assert!(
        e.contains("merges[1]") && e.contains("not two tokens"),
        "{e}"
    );
    let e = err(bpe(&["a  b"]));
    assert!(e.contains("merges[0]"), "{e}");
    let e = err(bpe(&["a c"]));
    assert!(e.contains("\"c\" is not in the vocabulary"), "{e}");
    let e = err(bpe(&["b a"]));
    assert!(e.contains("merged token \"ba\""), "{e}");
    let e = err(Kv::default()
        .s("tokenizer.ggml.model", "gpt2")
        .strs("tokenizer.ggml.tokens", &["a"])
        .meta());
    assert!(e.contains("merges is missing"), "{e}");
    assert!(Tokenizer::from_gguf(&bpe(&["a b"])).is_ok());

    // Decoding an id that names no token is an error, not a panic.
    let tok = Tokenizer::from_gguf(&bpe(&["a b"])).unwrap();
    assert!(tok.decode(&[3]).unwrap_err().to_string().contains("id 3"));
    assert!(tok.stream_decoder().step(u32::MAX).is_err());
}

#[test]
fn duplicate_tokens_are_tolerated_with_a_warning() {
    let meta = Kv::default()
        .s("tokenizer.ggml.model", "llama")
        .strs("tokenizer.ggml.tokens", &["<unk>", "a", "b", "a"])
        .f32s("tokenizer.ggml.scores", &[0.0, -1.0, -2.0, -3.0])
        .meta();
    let tok = Tokenizer::from_gguf(&meta).unwrap();
    assert!(
        tok.warnings.iter().any(|w| w.contains("duplicate")),
        "{:?}",
        tok.warnings
    );
    assert_eq!(tok.decode(&[1, 3]).unwrap(), "aa");
}

#[test]
fn tokenizer_json_round_trip() {
    // Serialize a GGUF-built tokenizer as tokenizer.json and load it back.
    let gguf = Tokenizer::from_gguf(&spm_meta("llama", |k| k)).unwrap();
    let dir = std::env::temp_dir().join(format!("atenia-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("tokenizer.json");
    gguf.inner().save(&json, false).unwrap();
    let config = dir.join("tokenizer_config.json");
    std::fs::write(
        &config,
        r#"{"bos_token": "<s>", "eos_token": {"content": "</s>"}, "add_bos_token": true,
            "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"}"#,
    )
    .unwrap();
    let tok = Tokenizer::from_tokenizer_json(&json, Some(&config)).unwrap();
    assert_eq!(tok.bos_id, Some(1));
    assert_eq!(tok.eos_id, Some(2));
    assert!(tok.add_bos && !tok.add_eos);
    assert_eq!(
        tok.scheme,
        DecodeScheme::Spm {
            strip_leading_space: true
        }
    );
    let text = "hello world";
    assert_eq!(
        tok.encode(text, true).unwrap(),
        gguf.encode(text, true).unwrap()
    );
    let ids = gguf.encode(text, false).unwrap();
    assert_eq!(tok.decode(&ids).unwrap(), gguf.decode(&ids).unwrap());
    let msgs = [crate::text::chat_template::ChatMessage {
        role: "user".into(),
        content: "hello".into(),
    }];
    assert_eq!(
        tok.apply_chat_template(&msgs, false).unwrap(),
        vec![1, id(&tok, "hell"), id(&tok, "o")]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_family_spec_names_the_sentencepiece_shape() {
    let kind = |flavor| TokenizerKind::SentencePiece { flavor };
    // The built-in specs of the file's architecture: Gemma's and Phi-3's
    // name their shapes; the others, and an architecture without a built-in
    // spec, get Llama's.
    for (arch, flavor) in [
        ("gemma", SpmFlavor::Gemma),
        ("gemma2", SpmFlavor::Gemma),
        ("gemma3", SpmFlavor::Gemma),
        ("phi3", SpmFlavor::Phi3),
        ("llama", SpmFlavor::Llama),
        ("qwen2", SpmFlavor::Llama),
        ("no-such-family", SpmFlavor::Llama),
    ] {
        let tok = Tokenizer::from_gguf(&spm_meta(arch, |k| k)).unwrap();
        assert_eq!(tok.kind, kind(flavor), "{arch}");
    }
    // A spec given with the file names the shape, whatever the architecture.
    let mut spec = FamilySpec::builtin_named("llama").unwrap();
    spec.sentencepiece = Some(SpmFlavor::Phi3);
    let tok = Tokenizer::from_gguf_with_spec(&spm_meta("llama", |k| k), &spec).unwrap();
    assert_eq!(tok.kind, kind(SpmFlavor::Phi3));
    // Phi-3's prefix `▁` after a special token; Llama's shape gives none.
    assert_eq!(
        tok.encode("<s>hello", false).unwrap(),
        vec![1, id(&tok, "▁hello")]
    );
    spec.sentencepiece = None;
    let tok = Tokenizer::from_gguf_with_spec(&spm_meta("phi3", |k| k), &spec).unwrap();
    assert_eq!(tok.kind, kind(SpmFlavor::Llama));
    assert_eq!(
        tok.encode("<s>hello", false).unwrap(),
        vec![1, id(&tok, "hell"), id(&tok, "o")]
    );
}

/// A byte-level vocabulary with merges, specials and a repeated merge; the
/// `tokenizer.ggml.pre` value `pre`.
fn byte_level_with_merges(pre: &str) -> Tokenizer {
    let mut tokens: Vec<String> = vec!["<|endoftext|>".into(), "<|im_start|>".into()];
    tokens.extend(bytes_to_unicode().iter().map(|c| c.to_string()));
    tokens.extend(
        [
            "Ġh", "el", "lo", "hel", "hello", "Ġhello", "12", "ello", "ĠĠ", "123",
        ]
        .map(String::from),
    );
    let merges = [
        "Ġ h", "e l", "l o", "h el", "hel lo", "el lo", "Ġh ello", "1 2", "Ġ Ġ", "e l", "12 3",
    ];
    let mut types = vec![3i32; 2];
    types.extend(std::iter::repeat_n(1, tokens.len() - 2));
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let meta = Kv::default()
        .s("tokenizer.ggml.model", "gpt2")
        .s("tokenizer.ggml.pre", pre)
        .strs("tokenizer.ggml.tokens", &refs)
        .i32s("tokenizer.ggml.token_type", &types)
        .strs("tokenizer.ggml.merges", &merges)
        .meta();
    Tokenizer::from_gguf(&meta).unwrap()
}

/// Every GGUF shape: SentencePiece (Llama, Gemma, Phi-3; with and without
/// an unknown token and byte tokens; a duplicate spelling) and byte-level
/// (merging and `ignore_merges`).
fn every_shape() -> Vec<(&'static str, Tokenizer)> {
    let no_bytes = {
        let mut tokens = vec!["<unk>", "<s>", "</s>"];
        tokens.extend(PIECES.iter().copied());
        tokens.push("he");
        let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
        Kv::default()
            .s("tokenizer.ggml.model", "llama")
            .strs("tokenizer.ggml.tokens", &tokens)
            .f32s("tokenizer.ggml.scores", &scores)
            .u32("tokenizer.ggml.unknown_token_id", 0)
            .meta()
    };
    vec![
        (
            "llama",
            Tokenizer::from_gguf(&spm_meta("llama", |k| k)).unwrap(),
        ),
        (
            "gemma",
            Tokenizer::from_gguf(&spm_meta("gemma3", |k| k)).unwrap(),
        ),
        (
            "phi3",
            Tokenizer::from_gguf(&spm_meta("phi3", |k| k)).unwrap(),
        ),
        ("unk, no bytes", Tokenizer::from_gguf(&no_bytes).unwrap()),
        ("gpt2", byte_level_with_merges("qwen2")),
        ("ignore_merges", byte_level_with_merges("llama3")),
    ]
}

proptest::proptest! {
    /// The compact BPE model encodes as `tokenizers`' BPE model with the
    /// same vocabulary, merges and pipeline (`Tokenizer::inner`).
    #[test]
    fn compact_bpe_encodes_as_the_tokenizers_bpe(
        text in "(hello|hel|lo|world|the|12|3| |  |\t|\n|<s>|<\\|im_start\\|>|é|ö|日本|😀|[a-z<>|]){0,24}"
    ) {
        for (name, tok) in every_shape() {
            let ids = tok.encode(&text, false).unwrap();
            let peer = tok.inner().encode(text.as_str(), false).unwrap();
            proptest::prop_assert_eq!(&ids[..], peer.get_ids(), "{}: {:?}", name, text);
        }
    }
}
