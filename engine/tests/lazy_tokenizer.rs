//! `open(path)?.load(TokenizerLoad::Lazy)` (and `load`) does not build the tokenizer: `Loaded::tokenizer` builds it
//! on the first call and keeps it, and a model without one loads and runs
//! token ids, giving E-TOKENIZER only when asked for its tokenizer. The text
//! commands of `atenia` still refuse such a model with E-TOKENIZER, exit 2.
//! (The ids-only harness commands: harness/tests/no_tokenizer.rs.)

use atenia_testkit as tk;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use atenia_engine::exec::decoder::{Logits, Session};
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::open::{load, open, TokenizerLoad};

fn load_with(
    path: &Path,
    when: TokenizerLoad,
) -> atenia_engine::Result<atenia_engine::model::open::Loaded> {
    open(path)?.load(when)
}

fn fixture(rel: &str) -> PathBuf {
    tk::golden().join(rel)
}

#[test]
fn gguf_tokenizer_is_built_on_first_use_and_kept() {
    let loaded = load(&fixture("gguf/llama/llama-Q8_0.gguf")).unwrap();
    assert!(!loaded.tokenizer_built(), "load must not build it");
    let first = loaded.tokenizer().unwrap();
    assert!(loaded.tokenizer_built());
    assert_eq!(first.vocab_size(), loaded.model.config.vocab);
    let ids = first.encode("The cat sat", true).unwrap();
    assert!(ids.len() > 1, "{ids:?}");
    let again = loaded.tokenizer().unwrap();
    assert!(std::ptr::eq(first, again), "built once");

    // Built while loading when asked: the same tokenizer.
    let now = load_with(&fixture("gguf/llama/llama-Q8_0.gguf"), TokenizerLoad::Now).unwrap();
    assert!(now.tokenizer_built());
    assert_eq!(
        now.tokenizer()
            .unwrap()
            .encode("The cat sat", true)
            .unwrap(),
        ids
    );
}

#[test]
fn checkpoint_without_tokenizer_json_loads_and_runs_ids() {
    // The golden checkpoints ship without tokenizer.json.
    let dir = fixture("hf/llama-tied-f32");
    assert!(!dir.join("tokenizer.json").exists());
    let loaded = load(&dir).unwrap();
    let reference = tk::read_reference(&dir.join("reference.safetensors"));
    let rt = Runtime::new(2, None).unwrap();
    let ids = &reference.input_ids;
    let mut session = Session::new(&loaded.model, &rt, ids.len()).unwrap();
    let mut out = Vec::new();
    session.forward(ids, Logits::Last, &mut out).unwrap();
    let last = reference.logits.last().unwrap();
    assert_eq!(tk::argmax(&out), tk::argmax64(last));

    for _ in 0..2 {
        // A failed build is not kept: the same error every time.
        let e = loaded.tokenizer().map(|_| ()).unwrap_err();
        assert_eq!(e.code(), "E-TOKENIZER");
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(msg.contains("has no tokenizer.json"), "{msg}");
        assert!(!loaded.tokenizer_built());
    }
    // Asked for while loading, the same error fails the load.
    let e = load_with(&dir, TokenizerLoad::Now).map(|_| ()).unwrap_err();
    assert_eq!(e.code(), "E-TOKENIZER");
    assert!(e.to_string().contains("has no tokenizer.json"), "{e}");
}

/// A copy of a checkpoint directory without tokenizer files, removed on drop.
struct NoTokenizerDir(PathBuf);

impl NoTokenizerDir {
    fn new(src: &Path) -> NoTokenizerDir {
        let name = src.file_name().unwrap().to_string_lossy().into_owned();
        let d = std::env::temp_dir().join(format!("atenia-lazytok-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for e in std::fs::read_dir(src).unwrap() {
            let p = e.unwrap().path();
            let f = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_file() && !f.starts_with("tokenizer") {
                std::fs::copy(&p, d.join(f)).unwrap();
            }
        }
        NoTokenizerDir(d)
    }
}

impl Drop for NoTokenizerDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn atenia(args: &[&str], model: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atenia"))
        .args(args)
        .arg(model)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn assert_tokenizer_refusal(o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error[E-TOKENIZER]: "), "{err}");
    assert!(err.contains("has no tokenizer.json"), "{err}");
    assert!(err.contains("logits --ids"), "{err}");
    assert!(err.contains("  help: "), "{err}");
}

#[test]
fn text_commands_refuse_a_checkpoint_without_a_tokenizer() {
    let dir = NoTokenizerDir::new(&fixture("hf/llama-tied-f32"));
    let o = atenia(&["generate", "-p", "hi", "-n", "1", "-m"], &dir.0);
    assert_tokenizer_refusal(&o);
    assert!(o.stdout.is_empty());
    let o = atenia(&["generate", "-p", "hi", "--output", "json", "-m"], &dir.0);
    assert_tokenizer_refusal(&o);
    let o = atenia(&["chat", "-m"], &dir.0);
    assert_tokenizer_refusal(&o);

    // diagnose shows the model but says it cannot run, with the same code.
    let o = atenia(&["diagnose", "--json"], &dir.0);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["can_run"], false);
    assert_eq!(v["error"]["code"], "E-TOKENIZER");
    assert_eq!(v["hyperparameters"]["vocab"], 512, "{v}");
    assert!(v.get("tokenizer").is_none(), "{v}");
}
