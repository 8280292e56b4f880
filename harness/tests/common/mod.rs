//! Shared helpers for the harness's tests.
#![allow(dead_code)]

use std::path::PathBuf;

#[path = "../../../engine/tests/common/process.rs"]
mod process;
#[allow(unused_imports)]
pub use process::{json_of, run_bounded, text};

pub fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../golden")
}

/// Where the real models are: `$ATENIA_MODEL_DIR`, `<workspace>/models`, then
/// `~/.cache/atenia/models`. Panics (never skips) when absent: CI fetches them.
pub fn model_path(name: &str) -> PathBuf {
    let mut dirs = vec![];
    if let Ok(d) = std::env::var("ATENIA_MODEL_DIR") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"));
    if let Ok(h) = std::env::var("HOME") {
        dirs.push(PathBuf::from(h).join(".cache/atenia/models"));
    }
    for d in &dirs {
        let p = d.join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("model {name} not found in {dirs:?}: run scripts/fetch-models.sh first");
}

/// Two significant digits: stable across machines (the engine's bits do not
/// depend on ISA or threads) yet any real change in drift shows in a diff.
pub fn sig2(v: f64) -> String {
    format!("{v:.1e}")
}

pub fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(golden().join("snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}
