//! Ids in, logits out, with no tokenizer (issue 11): `compare`, `logits --ids`
//! and `validate` with an ids prompt file run on a checkpoint directory with no
//! tokenizer.json and on a GGUF file with no `tokenizer.ggml.*` keys, while a
//! command that turns text into tokens still refuses such a model with
//! E-TOKENIZER (exit 2) when it gets to the text (`atenia generate` and
//! `diagnose`: engine/tests/lazy_tokenizer.rs).

use atenia_testkit as tk;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use atenia_harness::reference_file::LogitsFile;
use serde_json::Value;

/// A scratch directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("atenia-notok-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const TOKENIZER_FILES: [&str; 2] = ["tokenizer.json", "tokenizer_config.json"];

/// Every checkpoint directory under golden/hf, sorted.
fn hf_fixtures() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(tk::golden().join("hf"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("config.json").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 10, "only {} fixtures: {dirs:?}", dirs.len());
    dirs
}

/// `src` copied into a scratch directory without its tokenizer files.
fn without_tokenizer(src: &Path) -> TempDir {
    let name = src.file_name().unwrap().to_string_lossy().into_owned();
    let tmp = TempDir::new(&name);
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let file = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_file() && !TOKENIZER_FILES.contains(&file.as_str()) {
            std::fs::copy(&p, tmp.0.join(&file)).unwrap();
        }
    }
    for f in TOKENIZER_FILES {
        assert!(!tmp.0.join(f).exists());
    }
    assert!(tmp.0.join("reference.safetensors").is_file(), "{name}");
    tmp
}

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atenia-harness"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ids_arg(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// `compare MODEL --reference REF --json` (plus `extra`): exits 0 and says it passed.
fn assert_compare_passes(model: &Path, reference: &Path, extra: &[&str]) {
    let mut args = vec![
        "compare",
        s(model),
        "--reference",
        s(reference),
        "--json",
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    let o = harness(&args);
    let what = format!("{} {extra:?}", model.display());
    assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e})"));
    assert_eq!(v["passed"], true, "{what}: {v}");
    assert_eq!(v["failures"].as_array().map(Vec::len), Some(0), "{what}");
    let n = reference_ids(reference).len();
    assert_eq!(
        v["positions"].as_array().map(Vec::len),
        Some(n),
        "{what}: every position compared"
    );
    assert_eq!(v["argmax_match"], v["argmax_total"], "{what}: {v}");
    assert!(v["max_abs_diff"].as_f64().unwrap() < 1e-4, "{what}: {v}");
}

fn reference_ids(reference: &Path) -> Vec<u32> {
    LogitsFile::read(reference).unwrap().input_ids
}

/// The E-TOKENIZER refusal of a text command: exit 2, the code first, the
/// file it lacks named, and the ids-only commands pointed at.
fn assert_tokenizer_refusal(o: &Output, lacking: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error[E-TOKENIZER]: "), "{err}");
    assert!(err.contains(lacking), "{err}");
    assert!(err.contains("logits --ids"), "{err}");
    assert!(err.contains("  help: "), "{err}");
}

#[test]
fn compare_runs_every_hf_fixture_without_a_tokenizer() {
    for src in hf_fixtures() {
        let tmp = without_tokenizer(&src);
        assert_compare_passes(&tmp.0, &tmp.0.join("reference.safetensors"), &[]);
    }
}

#[test]
fn compare_decode_path_runs_without_a_tokenizer() {
    let tmp = without_tokenizer(&tk::golden().join("hf/gemma3-text-bf16"));
    assert_compare_passes(&tmp.0, &tmp.0.join("reference.safetensors"), &["--decode"]);
}

/// `logits --ids` on every fixture: the file it writes holds the ids and the
/// logits of every position, and those match the reference.
#[test]
fn logits_ids_writes_every_hf_fixture_without_a_tokenizer() {
    for src in hf_fixtures() {
        let tmp = without_tokenizer(&src);
        let reference = LogitsFile::read(&tmp.0.join("reference.safetensors")).unwrap();
        let ids = &reference.input_ids;
        let out = tmp.0.join("out.safetensors");
        let o = harness(&[
            "logits",
            "--model",
            s(&tmp.0),
            "--ids",
            &ids_arg(ids),
            "--threads",
            "2",
            "--out",
            s(&out),
        ]);
        let name = src.display();
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let got = LogitsFile::read(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&got.input_ids, ids, "{name}");
        assert_eq!(got.vocab, reference.vocab, "{name}");
        assert_eq!(got.positions, (0..ids.len()).collect::<Vec<_>>(), "{name}");
        for (row, &p) in reference.positions.iter().enumerate() {
            let d = got.logits[p]
                .iter()
                .zip(&reference.logits[row])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(d < 1e-4, "{name}: position {p} differs by {d}");
        }
    }
}

fn write_prompts(dir: &Path, json: &str) -> PathBuf {
    let p = dir.join("prompts.json");
    std::fs::write(&p, json).unwrap();
    p
}

#[test]
fn validate_with_an_ids_prompt_file_runs_without_a_tokenizer() {
    let tmp = without_tokenizer(&tk::golden().join("hf/llama-tied-f32"));
    let ids = reference_ids(&tmp.0.join("reference.safetensors"));
    let prompts = write_prompts(
        &tmp.0,
        &format!(
            r#"[{{"name": "reference", "ids": {ids:?}}}, {{"name": "short", "ids": [1, 17, 42]}}]"#
        ),
    );
    let report = tmp.0.join("report.json");
    let o = harness(&[
        "validate",
        s(&tmp.0),
        "--prompts",
        s(&prompts),
        "--gen-tokens",
        "4",
        "--no-bf16",
        "--threads",
        "2",
        "--json",
        s(&report),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    assert!(out.trim_end().ends_with("PASS"), "{out}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(v["summary"]["prompts"], 2);
    let p = &v["prompts"];
    assert_eq!(p[0]["name"], "reference");
    assert_eq!(p[0]["prompt_ids"], serde_json::json!(ids));
    assert_eq!(p[1]["prompt_ids"], serde_json::json!([1, 17, 42]));
    for p in p.as_array().unwrap() {
        // No tokenizer: no end-of-generation stop, no text, and a note saying so.
        assert_eq!(p["engine_greedy_ids"].as_array().unwrap().len(), 4, "{p}");
        assert_eq!(p["text"], "");
        assert_eq!(p["engine_text"], "");
        assert_eq!(p["reference_text"], "");
        let notes = p["notes"].to_string();
        assert!(notes.contains("no tokenizer"), "{notes}");
        assert!(notes.contains("not detokenized"), "{notes}");
        let positions = p["prompt_ids"].as_array().unwrap().len() + 4;
        assert_eq!(p["prefill"]["argmax_total"], positions);
        assert_eq!(p["prefill"]["passed"], true);
        assert_eq!(p["decode"]["passed"], true);
    }
}

/// A text prompt in the set needs the tokenizer: the run stops with
/// E-TOKENIZER before anything is computed.
#[test]
fn validate_with_a_text_prompt_needs_the_tokenizer() {
    let tmp = without_tokenizer(&tk::golden().join("hf/qwen2-bias-f32"));
    let prompts = write_prompts(
        &tmp.0,
        r#"[{"name": "ids", "ids": [1, 2, 3]}, {"name": "words", "text": "hi"}]"#,
    );
    let o = harness(&["validate", s(&tmp.0), "--prompts", s(&prompts)]);
    assert_tokenizer_refusal(&o, "has no tokenizer.json");
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // The built-in prompt set is text.
    let o = harness(&["validate", s(&tmp.0), "--no-bf16"]);
    assert_tokenizer_refusal(&o, "has no tokenizer.json");
}

/// (`atenia generate` and `diagnose` on such a directory: engine/tests/lazy_tokenizer.rs.)
#[test]
fn logits_prompt_still_refuses_a_checkpoint_without_a_tokenizer() {
    let tmp = without_tokenizer(&tk::golden().join("hf/llama-tied-f32"));
    let out = tmp.0.join("hi.safetensors");
    let o = harness(&[
        "logits",
        "--model",
        s(&tmp.0),
        "--prompt",
        "hi",
        "--out",
        s(&out),
    ]);
    assert_tokenizer_refusal(&o, "has no tokenizer.json");
    assert!(!out.exists(), "no file is written");
    // bench tokenizes its prompt text.
    let o = harness(&["bench", s(&tmp.0), "--no-history", "--runs", "1"]);
    assert_tokenizer_refusal(&o, "has no tokenizer.json");
}

#[test]
fn ids_prompt_files_are_checked() {
    let tmp = without_tokenizer(&tk::golden().join("hf/llama-tied-f32"));
    let cases = [
        (
            r#"[{"name": "x", "text": "hi", "ids": [1]}]"#,
            r#"prompt "x" has both "text" and "ids"; give one"#,
        ),
        (
            r#"[{"name": "x"}]"#,
            r#"prompt "x" has neither "text" nor "ids""#,
        ),
        (
            r#"[{"name": "x", "ids": []}]"#,
            r#"prompt "x" has an empty "ids" list"#,
        ),
        (
            r#"[{"name": "x", "ids": [1, 2], "chat": true}]"#,
            r#""chat" needs "text""#,
        ),
        (r#"[{"name": "x", "ids": [1, -2]}]"#, "invalid value"),
        (
            r#"[{"name": "x", "ids": [1], "bos": true}]"#,
            "unknown field",
        ),
    ];
    for (json, want) in cases {
        let prompts = write_prompts(&tmp.0, json);
        let o = harness(&["validate", s(&tmp.0), "--prompts", s(&prompts)]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{json}: {err}");
        assert!(err.starts_with("error[E-ARG]: "), "{json}: {err}");
        assert!(err.contains(want), "{json}: {err}");
        assert!(err.contains(r#"{"name": ..., "ids": [1, 2, 3]}"#), "{err}");
    }
    // An id past the vocabulary is refused by the engine, before the
    // reference runs.
    let prompts = write_prompts(&tmp.0, r#"[{"name": "x", "ids": [1, 512]}]"#);
    let o = harness(&["validate", s(&tmp.0), "--prompts", s(&prompts)]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("512 is outside the vocabulary of 512"),
        "{err}"
    );
}

// ---- GGUF ----------------------------------------------------------------

fn u32_at(b: &[u8], at: &mut usize) -> u32 {
    let v = u32::from_le_bytes(b[*at..*at + 4].try_into().unwrap());
    *at += 4;
    v
}

fn u64_at(b: &[u8], at: &mut usize) -> u64 {
    let v = u64::from_le_bytes(b[*at..*at + 8].try_into().unwrap());
    *at += 8;
    v
}

fn string_at(b: &[u8], at: &mut usize) -> String {
    let n = u64_at(b, at) as usize;
    let v = String::from_utf8(b[*at..*at + n].to_vec()).unwrap();
    *at += n;
    v
}

/// Steps over one GGUF value of type `t`.
fn skip_value(b: &[u8], at: &mut usize, t: u32) {
    match t {
        0 | 1 | 7 => *at += 1,
        2 | 3 => *at += 2,
        4..=6 => *at += 4,
        10..=12 => *at += 8,
        8 => {
            string_at(b, at);
        }
        9 => {
            let elem = u32_at(b, at);
            let n = u64_at(b, at);
            for _ in 0..n {
                skip_value(b, at, elem);
            }
        }
        _ => panic!("GGUF value type {t}"),
    }
}

/// `src` rewritten without its `tokenizer.*` keys: header, the other keys
/// and the tensor infos as they were, the tensor data at the same alignment.
fn strip_tokenizer(src: &Path, dst: &Path) -> usize {
    let b = std::fs::read(src).unwrap();
    assert_eq!(&b[..4], b"GGUF");
    let mut at = 4;
    let version = u32_at(&b, &mut at);
    let n_tensors = u64_at(&b, &mut at);
    let n_kv = u64_at(&b, &mut at);
    let mut kept = Vec::new();
    let (mut n_kept, mut dropped, mut alignment) = (0u64, 0, 32usize);
    for _ in 0..n_kv {
        let start = at;
        let key = string_at(&b, &mut at);
        let t = u32_at(&b, &mut at);
        let value_at = at;
        skip_value(&b, &mut at, t);
        if key == "general.alignment" {
            alignment = u32::from_le_bytes(b[value_at..value_at + 4].try_into().unwrap()) as usize;
        }
        if key.starts_with("tokenizer.") {
            dropped += 1;
        } else {
            kept.extend_from_slice(&b[start..at]);
            n_kept += 1;
        }
    }
    let infos_start = at;
    for _ in 0..n_tensors {
        string_at(&b, &mut at);
        let dims = u32_at(&b, &mut at);
        at += 8 * dims as usize + 4 + 8;
    }
    let infos = &b[infos_start..at];
    let data_start = at.div_ceil(alignment) * alignment;

    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&n_tensors.to_le_bytes());
    out.extend_from_slice(&n_kept.to_le_bytes());
    out.extend_from_slice(&kept);
    out.extend_from_slice(infos);
    out.resize(out.len().div_ceil(alignment) * alignment, 0);
    out.extend_from_slice(&b[data_start..]);
    std::fs::write(dst, out).unwrap();
    dropped
}

/// Every GGUF fixture with its tokenizer keys removed: `compare` and
/// `logits --ids` still run it, and `generate` refuses it with E-TOKENIZER.
#[test]
fn gguf_fixtures_without_tokenizer_metadata_run_ids() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(tk::golden().join("gguf"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    files.sort();
    assert!(files.len() >= 14, "{files:?}");
    let tmp = TempDir::new("gguf");
    for f in &files {
        let name = f.file_name().unwrap();
        let stripped = tmp.0.join(name);
        let dropped = strip_tokenizer(f, &stripped);
        assert!(
            dropped >= 4,
            "{}: only {dropped} tokenizer keys",
            f.display()
        );
        let reference = f.with_extension("reference.safetensors");
        assert_compare_passes(&stripped, &reference, &[]);

        let out = tmp.0.join("out.safetensors");
        let ids = reference_ids(&reference);
        let o = harness(&[
            "logits",
            "--model",
            s(&stripped),
            "--ids",
            &ids_arg(&ids),
            "--out",
            s(&out),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(LogitsFile::read(&out).unwrap().input_ids, ids);
        std::fs::remove_file(&out).unwrap();
    }
    // The stripped file has no tokenizer: text is refused.
    let stripped = tmp.0.join(files[0].file_name().unwrap());
    let hi = tmp.0.join("hi.safetensors");
    let o = harness(&[
        "logits",
        "--model",
        s(&stripped),
        "--prompt",
        "hi",
        "--out",
        s(&hi),
    ]);
    assert_tokenizer_refusal(&o, "tokenizer.ggml.model is missing");
    // The original, with its tokenizer, tokenizes.
    let o = harness(&[
        "logits",
        "--model",
        s(&files[0]),
        "--prompt",
        "hi",
        "--out",
        s(&hi),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(hi.is_file());
}

/// Validate's ids prompts on a stripped GGUF file.
#[test]
fn validate_ids_prompts_on_a_gguf_without_tokenizer_metadata() {
    let src = tk::golden().join("gguf/qwen3/qwen3-Q4_K_M-mixed.gguf");
    let tmp = TempDir::new("gguf-validate");
    let stripped = tmp.0.join("qwen3.gguf");
    strip_tokenizer(&src, &stripped);
    let prompts = write_prompts(&tmp.0, r#"[{"name": "ids", "ids": [5, 6, 7, 8, 9]}]"#);
    let o = harness(&[
        "validate",
        s(&stripped),
        "--prompts",
        s(&prompts),
        "--gen-tokens",
        "3",
        "--no-bf16",
        "--threads",
        "2",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    assert!(out.trim_end().ends_with("PASS"), "{out}");
    assert!(out.contains("ids"), "{out}");
}
