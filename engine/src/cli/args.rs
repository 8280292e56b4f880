//! Checks of command-line values that both binaries share: the range of the
//! sampling flags (negative numbers included, which clap would otherwise take
//! for flags), `--seed -1`, and the JSON output convention with its
//! destination checked before any work starts; and the flags that several
//! commands of both binaries take (`--threads`, `--isa`, `--ctx-size`),
//! declared once here and flattened into each command.
//!
//! The JSON convention of `atenia` and `atenia-harness`: `--json` prints the
//! result as one JSON object on stdout instead of the text; `--json-out FILE`
//! writes the same object to FILE (the text still goes to stdout). A file
//! named by `--json-out`, `--html`, `--out` and the like is checked to be
//! writable when the command starts, so a bad path fails at once, with exit
//! status 2, instead of after minutes of work.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::kernels::runtime::Runtime;
use crate::kernels::Isa;

fn number(s: &str) -> std::result::Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("{s:?} is not a number"))
}

/// `--temperature`: a finite number ≥ 0.
pub fn parse_temperature(s: &str) -> std::result::Result<f32, String> {
    let v = number(s)?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!(
            "must be a finite number ≥ 0, got {s} (0 picks the most likely token every time; 0.7–1.0 is usual)"
        ));
    }
    Ok(v as f32)
}

/// `--top-p`: in (0, 1].
pub fn parse_top_p(s: &str) -> std::result::Result<f32, String> {
    let v = number(s)?;
    if !(v > 0.0 && v <= 1.0) {
        return Err(format!(
            "must be in (0, 1], got {s} (1 turns top-p off; 0.9–0.95 is usual)"
        ));
    }
    Ok(v as f32)
}

/// `--min-p`: in [0, 1].
pub fn parse_min_p(s: &str) -> std::result::Result<f32, String> {
    let v = number(s)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!(
            "must be in [0, 1], got {s} (0 turns min-p off; 0.05 is usual)"
        ));
    }
    Ok(v as f32)
}

/// `--repeat-penalty`: a finite number > 0.
pub fn parse_repeat_penalty(s: &str) -> std::result::Result<f32, String> {
    let v = number(s)?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!(
            "must be a finite number > 0, got {s} (1 turns the penalty off; 1.1 is usual)"
        ));
    }
    Ok(v as f32)
}

fn count(s: &str, what: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    match t.parse::<i128>() {
        Ok(v) if v < 0 => Err(format!("must be ≥ 0, got {s} ({what})")),
        Ok(v) => usize::try_from(v).map_err(|_| format!("{s} is too large")),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// `--top-k`: a whole number ≥ 0.
pub fn parse_top_k(s: &str) -> std::result::Result<usize, String> {
    count(s, "0 samples among all tokens; 40 is usual")
}

/// `--repeat-last-n`: a whole number ≥ 0.
pub fn parse_repeat_last_n(s: &str) -> std::result::Result<usize, String> {
    count(s, "0 turns the repetition penalty off; 64 is usual")
}

/// A `--seed` value: the seed used, and whether it was drawn at random
/// (`--seed -1`, as in llama.cpp).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seed {
    pub value: u64,
    pub random: bool,
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)
    }
}

/// A seed from the process's own randomness (std's hash keys) and the clock.
fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.write_u32(std::process::id());
    h.finish()
}

/// `--seed`: a whole number ≥ 0, or -1 for a random seed.
pub fn parse_seed(s: &str) -> std::result::Result<Seed, String> {
    let t = s.trim();
    match t.parse::<i128>() {
        Ok(-1) => Ok(Seed {
            value: random_seed(),
            random: true,
        }),
        Ok(v) if v < 0 => Err(format!(
            "must be a whole number ≥ 0, or -1 for a random seed; got {s}"
        )),
        Ok(v) => u64::try_from(v)
            .map(|value| Seed {
                value,
                random: false,
            })
            .map_err(|_| format!("{s} is larger than the largest seed, {}", u64::MAX)),
        Err(_) => Err(format!(
            "{s:?} is not a whole number (give one ≥ 0, or -1 for a random seed)"
        )),
    }
}

/// Creates and removes a file in `dir`: whether files can be made there.
fn probe_dir(dir: &Path) -> std::result::Result<(), String> {
    let probe = dir.join(format!(".atenia-write-probe-{}", std::process::id()));
    let r = std::fs::File::create(&probe);
    let _ = std::fs::remove_file(&probe);
    r.map(|_| ())
        .map_err(|e| format!("cannot create files in {}: {e}", dir.display()))
}

/// The directory that decides whether `dir` can be written: `dir` itself if
/// it exists, else its nearest existing ancestor (the writers create the rest).
fn deciding_dir(dir: &Path) -> std::result::Result<&Path, String> {
    let a = dir
        .ancestors()
        .find(|a| !a.as_os_str().is_empty() && a.exists())
        .unwrap_or(Path::new("."));
    if !a.is_dir() {
        return Err(format!("{} is not a directory", a.display()));
    }
    Ok(a)
}

/// Checks that `path` can be written (a file that will be created or
/// replaced, its missing directories created first, as the writers do),
/// without leaving anything behind: an existing file is opened for writing
/// without truncating it; otherwise a file is created and removed in the
/// directory that decides. `flag` names the option in the error.
pub fn check_writable(path: &Path, flag: &str) -> Result<()> {
    let cannot = |why: String| {
        Error::argument(
            flag,
            format!(
                "cannot write {}: {why}; give a path in a directory you can write to",
                path.display()
            ),
        )
    };
    if path.as_os_str().is_empty() {
        return Err(Error::argument(flag, "the path is empty"));
    }
    if path.is_dir() {
        return Err(cannot(
            "it is a directory; name a file (e.g. report.json) inside it".into(),
        ));
    }
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(|_| ())
            .map_err(|e| cannot(e.to_string()));
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    let dir = deciding_dir(parent).map_err(cannot)?;
    probe_dir(dir).map_err(cannot)
}

/// Checks that `dir` can be an output directory: it is one (or can be
/// created) and files can be made in it. Nothing is left behind.
pub fn check_writable_dir(dir: &Path, flag: &str) -> Result<()> {
    let cannot = |why: String| {
        Error::argument(
            flag,
            format!(
                "cannot write to {}: {why}; give a directory you can write to",
                dir.display()
            ),
        )
    };
    if dir.exists() && !dir.is_dir() {
        return Err(cannot("it exists and is not a directory".into()));
    }
    let d = deciding_dir(dir).map_err(cannot)?;
    probe_dir(d).map_err(cannot)
}

/// Writes `text` to `path`, creating its directory first.
pub fn write_output(path: &Path, flag: &str, text: &str) -> Result<()> {
    let fail =
        |e: std::io::Error| Error::argument(flag, format!("cannot write {}: {e}", path.display()));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, text).map_err(fail)
}

/// `--json` and `--json-out FILE` (flattened into each command that reports).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct JsonArgs {
    /// Print the result as one JSON object on stdout instead of text
    #[arg(long)]
    pub json: bool,
    /// Write the result as one JSON object to FILE (text still goes to stdout
    /// unless --json); checked before the work starts
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl JsonArgs {
    /// Whether a JSON object is wanted at all (on stdout or in a file).
    pub fn wanted(&self) -> bool {
        self.json || self.json_out.is_some()
    }

    /// Checks the `--json-out` destination; call first in a command.
    pub fn check(&self) -> Result<()> {
        match &self.json_out {
            Some(p) => check_writable(p, "--json-out"),
            None => Ok(()),
        }
    }

    /// Writes `v` where asked: the `--json-out` file, and stdout with
    /// `--json`. Returns whether stdout got it (then the text is left out).
    pub fn emit(&self, v: &Value) -> Result<bool> {
        self.write_file(v)?;
        if self.json {
            let text = serde_json::to_string_pretty(v).unwrap_or_default();
            crate::cli::ui::write_stdout(format_args!("{text}\n"));
        }
        Ok(self.json)
    }

    /// Writes `v` to the `--json-out` file, if one was named.
    pub fn write_file(&self, v: &Value) -> Result<()> {
        if let Some(p) = &self.json_out {
            let text = serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
            write_output(p, "--json-out", &text)?;
            tracing::info!("wrote {}", p.display());
        }
        Ok(())
    }
}

/// A kernel path for `--isa`, spelled as [`Isa::name`] spells it.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsaArg {
    /// Portable Rust, on every CPU
    Scalar,
    /// x86-64 AVX2 with FMA3 and F16C
    Avx2,
    /// x86-64 AVX-512 (F, BW, VL)
    Avx512,
}

impl From<IsaArg> for Isa {
    fn from(a: IsaArg) -> Isa {
        match a {
            IsaArg::Scalar => Isa::Scalar,
            IsaArg::Avx2 => Isa::Avx2,
            IsaArg::Avx512 => Isa::Avx512,
        }
    }
}

/// `--threads`, for every command that runs a model.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ThreadsArgs {
    /// Worker threads (0 = one per core; at most 4 per core)
    #[arg(short, long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
}

/// `--isa`, for the commands that choose the kernel path.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct IsaArgs {
    /// Kernel path (default: the fastest this CPU runs)
    #[arg(long, value_enum, value_name = "ISA", ignore_case = true)]
    pub isa: Option<IsaArg>,
}

impl IsaArgs {
    /// The kernel runtime for `threads` worker threads on the chosen path;
    /// a path this CPU cannot run is refused (E-ARG).
    pub fn runtime(&self, threads: &ThreadsArgs) -> Result<Runtime> {
        Runtime::new(threads.threads, self.isa.map(Isa::from))
    }
}

/// `--ctx-size`, for the commands that hold a KV cache. What 0 means is the
/// command's to say: it replaces this help with its own
/// (`#[command(mut_arg("ctx_size", ...))]`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CtxSizeArgs {
    /// Context size in tokens (0 = the command's default)
    #[arg(short = 'c', long, default_value_t = 0, value_name = "N")]
    pub ctx_size: usize,
}

pub use crate::model::hf::MODEL_DIR_NEEDS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_ranges() {
        assert_eq!(parse_temperature("0").unwrap(), 0.0);
        assert!(parse_temperature("-1").unwrap_err().contains("≥ 0"));
        assert!(parse_temperature("inf").is_err());
        assert!(parse_temperature("warm")
            .unwrap_err()
            .contains("not a number"));
        assert_eq!(parse_top_p("1").unwrap(), 1.0);
        assert!(parse_top_p("0").is_err());
        assert!(parse_top_p("-0.5").unwrap_err().contains("(0, 1]"));
        assert!(parse_min_p("1.5").is_err());
        assert!(parse_min_p("-0.1").is_err());
        assert!(parse_repeat_penalty("0").is_err());
        assert_eq!(parse_top_k("0").unwrap(), 0);
        assert!(parse_top_k("-1").unwrap_err().contains("≥ 0"));
        assert!(parse_top_k("1.5").is_err());
        assert!(parse_repeat_last_n("-64").is_err());
    }

    #[test]
    fn seeds() {
        assert_eq!(
            parse_seed("42").unwrap(),
            Seed {
                value: 42,
                random: false
            }
        );
        assert!(parse_seed("-1").unwrap().random);
        assert!(parse_seed("-2")
            .unwrap_err()
            .contains("-1 for a random seed"));
        assert!(parse_seed("18446744073709551616").is_err());
        assert_eq!(parse_seed("18446744073709551615").unwrap().value, u64::MAX);
    }

    #[test]
    fn writable_paths() {
        let dir = std::env::temp_dir().join(format!("atenia-args-{}", std::process::id()));
        let f = dir.join("sub/report.json");
        check_writable(&f, "--json-out").unwrap();
        assert!(!dir.exists(), "the probe leaves nothing behind");
        std::fs::create_dir_all(&dir).unwrap();
        let e = check_writable(&dir, "--json-out").unwrap_err().to_string();
        assert!(e.contains("cannot write") && e.contains("directory"), "{e}");
        // An existing file is checked without being truncated.
        let kept = dir.join("kept.json");
        std::fs::write(&kept, "{}").unwrap();
        check_writable(&kept, "--json-out").unwrap();
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "{}");
        // Under a file, not a directory.
        let e = check_writable(&kept.join("x.json"), "--json-out")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a directory"), "{e}");
        let e = check_writable(Path::new("/proc/x.json"), "--json-out")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot write /proc/x.json"), "{e}");
        let out = dir.join("out/deeper");
        check_writable_dir(&out, "--out").unwrap();
        assert!(!out.exists(), "the probe makes no directory");
        let e = check_writable_dir(&kept, "--out").unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
        let e = check_writable_dir(Path::new("/proc/nope"), "--out")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot write to /proc/nope"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The memory flags of `generate`, `chat`, `validate` and `bench`
/// (flattened into each command's arguments).
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Memory")]
pub struct GuardArgs {
    /// Memory budget, with a unit (16MiB, 1.5GiB, 1048576B): weights that do not fit are
    /// streamed from the file; the KV cache counts too. A budget above the
    /// memory available is lowered, with a warning. validate's report and
    /// bench's record gain a `memory` object
    #[arg(long, value_name = "SIZE", value_parser = parse_budget)]
    pub memory_budget: Option<u64>,
    /// Write the memory guard's sensor readings, decisions and actions to FILE
    /// as JSONL (at start, then every 16 generated tokens in generate and
    /// chat, before every prompt after the first in validate, before every
    /// run in bench); check it with `atenia-harness replay FILE`
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Replay the memory readings in FILE (a JSON array, as in
    /// golden/traces/*-sensor.json) instead of reading /proc and the cgroup:
    /// for tests and for reproducing a recorded run under pressure
    #[arg(long, value_name = "FILE")]
    pub sensor_script: Option<PathBuf>,
    /// How weights streamed under --memory-budget are read from the file:
    /// `direct` (O_DIRECT: the page cache does not grow, for models larger
    /// than memory or a cgroup that counts the page cache), `cached` (buffered
    /// reads whose pages stay cached: a small model under a tiny budget reads
    /// from memory after the first pass), or `auto` (`cached` when a pass's
    /// streamed bytes fit in a quarter of the memory left, else `direct`).
    /// The logits are the same bits either way
    #[arg(long, value_name = "MODE", default_value = "auto",
          value_parser = clap::builder::PossibleValuesParser::new(crate::memory::control::StreamRead::NAMES))]
    pub stream_read: String,
}

impl GuardArgs {
    /// The guard's options for a run of `source` (the command) whose largest
    /// session holds `capacity` positions, with a reading every `every`
    /// progress units.
    pub fn options<'a>(
        &'a self,
        capacity: usize,
        threads: usize,
        source: &'a str,
        every: u64,
    ) -> crate::guard::wiring::GuardOptions<'a> {
        crate::guard::wiring::GuardOptions {
            capacity,
            threads,
            requested: self.memory_budget,
            trace: self.trace.as_deref(),
            source,
            every,
            sensor: None,
            sensor_script: self.sensor_script.as_deref(),
            stream_read: crate::memory::control::StreamRead::from_name(&self.stream_read)
                .unwrap_or_default(),
        }
    }
}

/// Parses a `--memory-budget` value (`16MiB`, `1.5GiB`, `1048576B`; a unit
/// is required). The error is the reason alone: clap names the flag.
pub fn parse_budget(s: &str) -> std::result::Result<u64, String> {
    crate::memory::placement::parse_size(s).map_err(|e| match e {
        Error::Argument { reason, .. } => reason,
        other => other.to_string(),
    })
}
