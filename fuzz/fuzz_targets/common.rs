//! What every target shares: a scratch directory per process, the valid
//! Hugging Face base checkpoint of the hostile corpus (compiled in), and
//! "load it the way `atenia generate` does, then run one token".

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use atenia_engine::exec::decoder::{Logits, Session};
use atenia_engine::model::open::{load, Loaded};
use atenia_engine::kernels::runtime::Runtime;

pub const BASE_CONFIG: &[u8] = include_bytes!("../../golden/hostile/hf/base/config.json");
pub const BASE_WEIGHTS: &[u8] = include_bytes!("../../golden/hostile/hf/base/model.safetensors");
pub const BASE_TOKENIZER: &[u8] = include_bytes!("../../golden/hostile/hf/base/tokenizer.json");
pub const BASE_TOKENIZER_CONFIG: &[u8] =
    include_bytes!("../../golden/hostile/hf/base/tokenizer_config.json");

/// A directory of this process's own (libFuzzer may run several jobs).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("atenia-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    })
}

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(1, None).expect("runtime"))
}

/// Writes a checkpoint directory from the base files, `name` replaced by `data`.
pub fn hf_dir_with(name: &str, data: &[u8]) -> PathBuf {
    let d = scratch().join("hf");
    std::fs::create_dir_all(&d).expect("hf dir");
    for (n, base) in [
        ("config.json", BASE_CONFIG),
        ("model.safetensors", BASE_WEIGHTS),
        ("tokenizer.json", BASE_TOKENIZER),
        ("tokenizer_config.json", BASE_TOKENIZER_CONFIG),
    ] {
        let bytes = if n == name { data } else { base };
        std::fs::write(d.join(n), bytes).expect("write scratch file");
    }
    d
}

/// Loads `path` as the CLI does; when it loads, tokenizes a prompt and runs
/// one forward pass of one token, as `atenia generate --max-tokens 1` would.
/// Errors are fine; a panic, an abort or a huge allocation is the bug.
pub fn load_and_run(path: &Path) {
    let Ok(loaded) = load(path) else { return };
    run_one(&loaded);
}

fn run_one(loaded: &Loaded) {
    let Ok(tok) = loaded.tokenizer() else { return };
    let ids = match tok.encode("hi", true) {
        Ok(ids) if !ids.is_empty() => ids,
        _ => return,
    };
    let _ = tok.decode(&ids);
    let ids = &ids[..ids.len().min(4)];
    let Ok(mut session) = Session::new(&loaded.model, runtime(), ids.len() + 1) else {
        return;
    };
    let mut logits = Vec::new();
    let _ = session.forward(ids, Logits::Last, &mut logits);
}
