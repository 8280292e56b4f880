//! Every Hugging Face checkpoint fixture (golden/hf/<case>/: config.json and
//! model.safetensors) must give logits within 1e-4 of transformers' float64
//! reference with the argmax equal at every position, in one prefill pass and
//! token by token through the KV cache. Also: sharded checkpoints with
//! unaligned data offsets, and loud refusals of what is not supported.

use atenia_testkit as tk;

use std::path::{Path, PathBuf};

use atenia_engine::exec::decoder::{Logits, Session};
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::Model;
use atenia_engine::GgmlType;

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(tk::golden().join("hf"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("config.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Logits of every position: one prefill pass, and token-by-token decode.
fn run(model: &Model, rt: &Runtime, ids: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let mut prefill = Vec::new();
    let mut s = Session::new(model, rt, ids.len()).unwrap();
    s.forward(ids, Logits::All, &mut prefill).unwrap();

    let mut decode = Vec::new();
    let mut s = Session::new(model, rt, ids.len()).unwrap();
    let mut out = Vec::new();
    for &t in ids {
        s.forward(&[t], Logits::Last, &mut out).unwrap();
        decode.extend_from_slice(&out);
    }
    (prefill, decode)
}

fn check(dir: &Path, rt: &Runtime) -> (f64, f64) {
    let reference = tk::read_reference(&dir.join("reference.safetensors"));
    let model = Model::from_hf_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let vocab = model.config.vocab;
    let (prefill, decode) = run(&model, rt, &reference.input_ids);
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
                "{}: {} argmax differs at position {p}",
                dir.display(),
                ["prefill", "decode"][which]
            );
        }
    }
    (worst[0], worst[1])
}

#[test]
fn every_hf_fixture_matches_its_float64_reference() {
    let rt = Runtime::new(2, None).unwrap();
    let mut failures = vec![];
    let mut ran = 0;
    for dir in cases() {
        let (pre, dec) = check(&dir, &rt);
        ran += 1;
        eprintln!(
            "{:<24} prefill {pre:.2e} decode {dec:.2e}",
            dir.file_name().unwrap().to_string_lossy()
        );
        if pre > 1e-4 || dec > 1e-4 {
            failures.push(format!("{}: {pre:.3e} / {dec:.3e}", dir.display()));
        }
    }
    assert!(ran >= 10, "only {ran} hf fixtures found");
    assert!(failures.is_empty(), "over 1e-4: {failures:#?}");
}

#[test]
fn sixteen_bit_weights_stay_sixteen_bit() {
    for (case, dtype) in [
        ("llama3-scaled-bf16", GgmlType::BF16),
        ("qwen3-qknorm-bf16", GgmlType::BF16),
        ("gemma3-text-bf16", GgmlType::BF16),
        ("mistral-swa-f16", GgmlType::F16),
        ("llama-tied-f32", GgmlType::F32),
    ] {
        let model = Model::from_hf_dir(&tk::golden().join("hf").join(case)).unwrap();
        let types = model.matrix_types();
        assert_eq!(types.len(), 1, "{case}: {types:?}");
        assert_eq!(types[0].0, dtype, "{case}");
    }
}

// ---------------------------------------------------------------------------
// Writing checkpoints for the tests below.

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("atenia-hf-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tensor as written to a safetensors header.
struct Raw {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn read_all(path: &Path) -> Vec<Raw> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<Raw> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| Raw {
            name,
            dtype: format!("{:?}", t.dtype()),
            shape: t.shape().to_vec(),
            data: t.data().to_vec(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The header JSON of a safetensors file holding `tensors` in order.
fn header(tensors: &[&Raw]) -> String {
    let mut header = String::from("{");
    let mut off = 0;
    for (i, t) in tensors.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"{}\":{{\"dtype\":\"{}\",\"shape\":{:?},\"data_offsets\":[{},{}]}}",
            t.name,
            t.dtype,
            t.shape,
            off,
            off + t.data.len()
        ));
        off += t.data.len();
    }
    header.push('}');
    header
}

/// Writes a safetensors file by hand, with `pad` spaces after the header JSON
/// (so the data may start at any offset, aligned or not).
fn write_st(path: &Path, tensors: &[&Raw], pad: usize) {
    let mut header = header(tensors);
    header.push_str(&" ".repeat(pad));
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    for t in tensors {
        bytes.extend_from_slice(&t.data);
    }
    std::fs::write(path, bytes).unwrap();
}

/// The padding that makes the data of a file holding `tensors` start at `rem` mod 4.
fn pad_to(tensors: &[&Raw], rem: usize) -> usize {
    let start = 8 + header(tensors).len();
    (rem + 4 - start % 4) % 4
}

#[test]
fn sharded_checkpoints_with_unaligned_offsets_give_identical_logits() {
    let rt = Runtime::new(2, None).unwrap();
    for case in ["llama3-scaled-bf16", "phi3-longrope-f32", "mistral-swa-f16"] {
        let src = tk::golden().join("hf").join(case);
        let tmp = TempDir::new(case);
        std::fs::copy(src.join("config.json"), tmp.0.join("config.json")).unwrap();
        let tensors = read_all(&src.join("model.safetensors"));
        let (a, b) = tensors.split_at(tensors.len() / 2);
        let (a, b): (Vec<&Raw>, Vec<&Raw>) = (a.iter().collect(), b.iter().collect());
        // The data of the two shards starts at offsets 1 and 3 (mod 4).
        let names = [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ];
        write_st(&tmp.0.join(names[0]), &a, pad_to(&a, 1));
        write_st(&tmp.0.join(names[1]), &b, pad_to(&b, 3));
        let mut map = serde_json::Map::new();
        for (shard, ts) in [(names[0], &a), (names[1], &b)] {
            for t in ts {
                map.insert(t.name.clone(), serde_json::Value::String(shard.into()));
            }
        }
        let index = serde_json::json!({"metadata": {}, "weight_map": map});
        std::fs::write(
            tmp.0.join("model.safetensors.index.json"),
            index.to_string(),
        )
        .unwrap();

        let ids = tk::read_reference(&src.join("reference.safetensors")).input_ids;
        let one = Model::from_hf_dir(&src).unwrap();
        let sharded = Model::from_hf_dir(&tmp.0).unwrap();
        let (p1, d1) = run(&one, &rt, &ids);
        let (p2, d2) = run(&sharded, &rt, &ids);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p1), bits(&p2), "{case}: prefill");
        assert_eq!(bits(&d1), bits(&d2), "{case}: decode");
    }
}

/// A copy of a fixture whose config.json is patched by `f`.
fn patched(
    case: &str,
    tag: &str,
    f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> TempDir {
    let src = tk::golden().join("hf").join(case);
    let tmp = TempDir::new(tag);
    let mut config: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    f(&mut config);
    std::fs::write(
        tmp.0.join("config.json"),
        serde_json::Value::Object(config).to_string(),
    )
    .unwrap();
    std::fs::copy(
        src.join("model.safetensors"),
        tmp.0.join("model.safetensors"),
    )
    .unwrap();
    tmp
}

fn load_err(dir: &Path) -> atenia_engine::Error {
    match Model::from_hf_dir(dir) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e,
    }
}

type Patch = Box<dyn FnOnce(&mut serde_json::Map<String, serde_json::Value>)>;

#[test]
fn unsupported_configs_fail_loud() {
    use serde_json::json;
    let cases: Vec<(&str, Patch, &str, &str)> = vec![
        (
            "moe",
            Box::new(|c| {
                c.insert("architectures".into(), json!(["MixtralForCausalLM"]));
                c.insert("num_local_experts".into(), json!(8));
            }),
            "E-UNSUPPORTED",
            "num_local_experts",
        ),
        (
            "vision",
            Box::new(|c| {
                c.insert("vision_config".into(), json!({"hidden_size": 32}));
            }),
            "E-UNSUPPORTED",
            "vision_config",
        ),
        (
            "encdec",
            Box::new(|c| {
                c.insert("is_encoder_decoder".into(), json!(true));
            }),
            "E-UNSUPPORTED",
            "is_encoder_decoder",
        ),
        (
            "unknown",
            Box::new(|c| {
                c.insert("architectures".into(), json!(["GPTNeoXForCausalLM"]));
            }),
            "E-UNSUPPORTED",
            "GPTNeoXForCausalLM",
        ),
        (
            "absurd",
            Box::new(|c| {
                c.insert("hidden_size".into(), json!(1e12));
            }),
            "E-CONFIG",
            "hidden_size",
        ),
        (
            "heads",
            Box::new(|c| {
                c.insert("num_key_value_heads".into(), json!(3));
            }),
            "E-CONFIG",
            "num_key_value_heads",
        ),
        (
            "eps",
            Box::new(|c| {
                c.insert("rms_norm_eps".into(), json!("tiny"));
            }),
            "E-CONFIG",
            "rms_norm_eps",
        ),
        (
            "vocab",
            Box::new(|c| {
                c.insert("vocab_size".into(), json!(1000));
            }),
            "E-WEIGHTS",
            "vocab",
        ),
    ];
    for (tag, f, code, needle) in cases {
        let tmp = patched("llama-tied-f32", tag, f);
        let e = load_err(&tmp.0);
        assert_eq!(e.code(), code, "{tag}: {e}");
        assert!(e.to_string().contains(needle), "{tag}: {e}");
    }
}

#[test]
fn unread_tensors_fail_loud() {
    // An untied config over tied weights lacks lm_head; a bias the family
    // does not read is refused rather than ignored.
    let tmp = patched("llama-tied-f32", "untied", |c| {
        c.insert("tie_word_embeddings".into(), serde_json::json!(false));
    });
    let e = load_err(&tmp.0);
    assert_eq!(e.code(), "E-WEIGHTS", "{e}");
    assert!(e.to_string().contains("lm_head.weight"), "{e}");

    let src = tk::golden().join("hf").join("llama-tied-f32");
    let tmp = TempDir::new("extra");
    std::fs::copy(src.join("config.json"), tmp.0.join("config.json")).unwrap();
    let mut tensors = read_all(&src.join("model.safetensors"));
    tensors.push(Raw {
        name: "model.layers.0.self_attn.o_proj.bias".into(),
        dtype: "F32".into(),
        shape: vec![64],
        data: vec![0; 256],
    });
    write_st(
        &tmp.0.join("model.safetensors"),
        &tensors.iter().collect::<Vec<_>>(),
        0,
    );
    let e = load_err(&tmp.0);
    assert_eq!(e.code(), "E-UNSUPPORTED", "{e}");
    assert!(e.to_string().contains("o_proj.bias"), "{e}");
}

#[test]
fn lying_safetensors_headers_are_refused() {
    let src = tk::golden().join("hf").join("llama-tied-f32");
    let tensors = read_all(&src.join("model.safetensors"));
    let good: Vec<&Raw> = tensors.iter().collect();
    let tmp = TempDir::new("lies");
    std::fs::copy(src.join("config.json"), tmp.0.join("config.json")).unwrap();
    let path = tmp.0.join("model.safetensors");

    // A shape that does not match the byte range.
    let mut t0 = Raw {
        name: tensors[0].name.clone(),
        dtype: tensors[0].dtype.clone(),
        shape: tensors[0].shape.clone(),
        data: tensors[0].data.clone(),
    };
    t0.shape[0] += 1;
    let mut lie: Vec<&Raw> = vec![&t0];
    lie.extend(&good[1..]);
    write_st(&path, &lie, 0);
    assert_eq!(load_err(&tmp.0).code(), "E-SAFETENSORS");

    // Truncated data.
    write_st(&path, &good, 0);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(load_err(&tmp.0).code(), "E-SAFETENSORS");

    // A header length past the end of the file.
    let mut bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    bytes[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(load_err(&tmp.0).code(), "E-SAFETENSORS");

    // Too short for a header.
    std::fs::write(&path, [1u8, 2, 3]).unwrap();
    assert_eq!(load_err(&tmp.0).code(), "E-SAFETENSORS");

    // An index naming a tensor its shard does not hold.
    std::fs::remove_file(&path).unwrap();
    write_st(&tmp.0.join("a.safetensors"), &good, 0);
    let index = serde_json::json!({"weight_map": {"model.norm.weight": "a.safetensors", "nope": "a.safetensors"}});
    std::fs::write(
        tmp.0.join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let e = load_err(&tmp.0);
    assert_eq!(e.code(), "E-SAFETENSORS", "{e}");
    // ... or a path outside the directory.
    let index = serde_json::json!({"weight_map": {"model.norm.weight": "../a.safetensors"}});
    std::fs::write(
        tmp.0.join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    assert_eq!(load_err(&tmp.0).code(), "E-SAFETENSORS");
}
