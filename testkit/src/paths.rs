//! Where the golden files and the real models are.

use std::path::PathBuf;

/// The workspace root (this crate sits one level below it).
fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The committed golden files: `<workspace>/golden`.
pub fn golden() -> PathBuf {
    workspace().join("golden")
}

/// Every GGUF fixture file under `golden/gguf/<arch>/`, sorted.
pub fn gguf_fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden().join("gguf"))
        .expect("golden/gguf")
        .filter_map(|d| d.ok())
        .filter(|d| d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten())
        .map(|e| e.expect("a golden/gguf entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    files.sort();
    files
}

/// A real model file: in `$ATENIA_MODEL_DIR`, then `<workspace>/models`, then
/// `~/.cache/atenia/models`. Panics (never skips) when absent: a test that
/// needs a model and cannot find it fails, and says how to fetch it.
pub fn model_path(name: &str) -> PathBuf {
    let mut dirs = vec![];
    if let Ok(d) = std::env::var("ATENIA_MODEL_DIR") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(workspace().join("models"));
    if let Ok(h) = std::env::var("HOME") {
        dirs.push(PathBuf::from(h).join(".cache/atenia/models"));
    }
    for d in &dirs {
        let p = d.join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "model {name} not found in {dirs:?}: run scripts/fetch-models.sh first \
         (or set ATENIA_MODEL_DIR to the directory holding it)"
    );
}

/// The real SmolLM2-135M-Instruct Q4_1 file, as a command-line argument.
pub fn smollm2() -> String {
    model_path("SmolLM2-135M-Instruct.Q4_1.gguf")
        .display()
        .to_string()
}
