//! `atenia-harness report-diff` (command line).

use std::path::{Path, PathBuf};

use atenia_engine::Result;
use atenia_harness::report_diff::diff;
use serde_json::Value;

#[derive(clap::Args)]
#[command(
    after_help = "Prints what changed between two `validate --json` reports: per model the max abs\n\
logit diff (prefill, decode) old → new with the ratio, argmax agreement, greedy paths,\n\
bit-identity and the bfloat16 figure, then the prompts that moved; \"no change\" when the\n\
numbers are identical. A missing or empty OLD (no previous report) is noted, not an error.\n\
Exit code 0 whatever changed, 2 when a file cannot be read or is not JSON.\n\
Example:\n  atenia-harness report-diff reports/validate-smollm2.json new.json"
)]
pub struct Args {
    /// The previous report (may be missing: then there is nothing to compare)
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The new report
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
}

/// `Ok(None)`: the file is absent or empty. `Err`: a message for people.
fn read(path: &Path, may_be_missing: bool) -> std::result::Result<Option<Value>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if may_be_missing && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if may_be_missing && text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{} is not a JSON report: {e}", path.display()))
}

pub fn run(a: Args) -> Result<i32> {
    let loaded = read(&a.old, true).and_then(|old| match read(&a.new, false)? {
        Some(new) => Ok((old, new)),
        None => Err(format!("cannot read {}", a.new.display())),
    });
    match loaded {
        Ok((old, new)) => {
            atenia_engine::out!("{}", diff(old.as_ref(), &new));
            Ok(0)
        }
        Err(msg) => {
            eprintln!("error[E-REPORT]: {msg}");
            eprintln!("  help: pass two files written by `atenia-harness validate --json`");
            Ok(2)
        }
    }
}
