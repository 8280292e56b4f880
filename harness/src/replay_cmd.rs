//! `atenia-harness replay TRACE`.

use std::path::PathBuf;

use atenia_engine::{Error, Result};
use atenia_harness::replay::{replay, Outcome};

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  atenia generate -m SmolLM2-135M-Instruct.Q4_1.gguf -p \"Hi\" -n 64 --trace run.jsonl\n  atenia-harness replay run.jsonl"
)]
pub struct Args {
    /// A trace written by `atenia generate --trace FILE` (JSONL)
    #[arg(value_name = "TRACE")]
    pub trace: PathBuf,
}

/// Exit 0 when every decision replays identically, 1 at the first difference.
pub fn run(a: Args) -> Result<i32> {
    let text = std::fs::read_to_string(&a.trace).map_err(|e| Error::io(&a.trace, e))?;
    match replay(&text).map_err(|e| Error::argument("TRACE", e.to_string()))? {
        Outcome::Identical(n) => {
            atenia_engine::outln!("{n} decisions replayed identically");
            Ok(0)
        }
        Outcome::Differs {
            line,
            recorded,
            replayed,
        } => {
            atenia_engine::outln!(
                "first difference at line {line} of {}:\n  recorded: {recorded}\n  replayed: {replayed}",
                a.trace.display()
            );
            Ok(1)
        }
    }
}
