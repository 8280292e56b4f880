//! Speed measurement (`atenia-harness bench`): time to first token, prefill
//! and decode throughput through the engine's own generation loop, and decode
//! throughput at a given context depth; one JSON record per run for
//! `reports/bench-history.jsonl` (schema `atenia.bench/1`).
//!
//! The prompt is a fixed English paragraph, tokenized once (with BOS when the
//! tokenizer adds one), its ids (BOS excluded) repeated until the prompt has
//! exactly the asked number of tokens. It is the same on every run and every
//! machine for a given tokenizer. Generation is greedy and never stops early
//! (end-of-generation tokens are ignored), so every run times exactly
//! `gen_tokens` single-token forward passes.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use atenia_engine::exec::decoder::{Logits, Session};
use atenia_engine::exec::digest::logits_sha256;
use atenia_engine::exec::generate::{generate, Timings};
use atenia_engine::exec::sampler::{Sampler, SamplerConfig};
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::open::Loaded;
use atenia_engine::{Error, Result};

/// The schema string of a bench record.
pub const SCHEMA: &str = "atenia.bench/1";

/// The text the prompt is made of (repeated and truncated to the asked length).
pub const PROMPT_TEXT: &str = "The history of astronomy is the story of how people learned to read the sky. \
Early farmers watched the rising of bright stars to know when to plant, sailors steered by the pole star, \
and careful observers in Babylon, Greece, India, China and the Islamic world recorded the motions of the \
planets for centuries. With the telescope came moons around Jupiter, phases of Venus and countless faint \
stars in the Milky Way; with spectroscopy, the chemistry of the Sun; and with large modern instruments, \
galaxies racing away from one another in an expanding universe. ";

/// Default depths for decode-at-depth.
pub const DEFAULT_DEPTHS: [usize; 2] = [512, 2048];

/// What to measure.
#[derive(Clone, Debug)]
pub struct Options {
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    /// Measured runs (after one warm-up run).
    pub runs: usize,
    /// Context depths for decode-at-depth (empty: none).
    pub depths: Vec<usize>,
    /// The commit to record instead of asking git (a build outside its checkout).
    pub commit: Option<String>,
}

/// Median, extremes and every sample of one figure.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: Vec<f64>,
}

impl Stat {
    pub fn of(samples: Vec<f64>) -> Stat {
        let mut s = samples.clone();
        s.sort_by(|a, b| a.total_cmp(b));
        let n = s.len();
        let median = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => s[n / 2],
            _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        };
        Stat {
            median,
            min: s.first().copied().unwrap_or(f64::NAN),
            max: s.last().copied().unwrap_or(f64::NAN),
            samples,
        }
    }
}

/// The model as a record names it: file name and size (no hash: hashing
/// hundreds of MB on every run would cost more than the run).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ModelId {
    /// The file (or checkpoint directory) name, without its directory.
    pub file: String,
    /// Size in bytes (the sum of the files for a checkpoint directory).
    pub bytes: u64,
    /// `general.name`, or the file name.
    pub name: String,
    pub architecture: String,
    /// Matrix weight types and counts, e.g. `"Q4_1×210"`.
    pub weight_types: Vec<String>,
}

/// Decode throughput at one context depth.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DepthStat {
    pub depth: usize,
    /// Asked depth, when it had to be lowered to fit the model's context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<usize>,
    pub decode_tokens_per_s: Stat,
}

/// One bench record: the JSON `bench --json` prints and one line of the history.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Record {
    pub schema: String,
    /// `git rev-parse --short HEAD`, or `"unknown"`.
    pub commit: String,
    /// Tracked files differed from that commit (`git status`), when known.
    #[serde(default)]
    pub dirty: Option<bool>,
    /// UTC, ISO 8601 (`2025-11-26T10:05:00Z`).
    pub date: String,
    pub engine_version: String,
    pub model: ModelId,
    /// `model name` of /proc/cpuinfo, or `"unknown"`.
    pub cpu_model: String,
    /// The SIMD-relevant flags of /proc/cpuinfo (sse4*, avx*, fma, f16c, amx*, ...).
    pub cpu_features: Vec<String>,
    pub threads: usize,
    pub isa: String,
    /// The 1-minute load average (/proc/loadavg) just before the bench (it
    /// lags: it still counts work that ended in the last minutes).
    #[serde(default)]
    pub load_avg_1m: Option<f64>,
    /// Cores kept busy by other work during the half second before the
    /// bench (/proc/stat; the bench itself is idle then): well above 0 means
    /// other work competed for the CPU and the figures are low.
    #[serde(default)]
    pub busy_cores_before: Option<f64>,
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    /// Measured runs (a warm-up run comes before them and is not counted).
    pub runs: usize,
    /// How the prompt was made.
    pub prompt: String,
    /// Medians over the runs.
    pub ttft_ms: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    /// Median decode tok/s by depth (`"512"`, `"2048"`).
    pub decode_at_depth: std::collections::BTreeMap<String, f64>,
    /// Medians, extremes and samples of every figure.
    pub detail: Detail,
    /// `--memory-budget` (the requested budget), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_budget_bytes: Option<u64>,
    /// Memory placement and telemetry over the whole bench (warm-up and
    /// depth runs included): the `memory` object of docs/validate-report.md
    /// (bytes resident, mapped and streamed, read-ahead hits, I/O wait
    /// against compute). Absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<serde_json::Value>,
    /// A peer engine's run on the same model, as `bench --peer FILE` gave
    /// it (scripts/peer-llama-cpp.sh: llama.cpp's figures, its commit and
    /// its build flags). Absent when the bench ran alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<serde_json::Value>,
    /// SHA-256 of the last position's logits of one prefill of the bench
    /// prompt (`sha256:` and hex): equal in two records when the runs
    /// computed the same bits, whatever the memory budget. Absent in records
    /// made before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logits_sha256: Option<String>,
    /// `bench --disk`: the disk read on the model file itself with the
    /// streaming reader's read size, at one read in flight and at its queue
    /// depth (`O_DIRECT`), and decode's read bandwidth as a fraction of the
    /// latter. Absent without `--disk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Detail {
    pub ttft_ms: Stat,
    pub prefill_tokens_per_s: Stat,
    pub decode_tokens_per_s: Stat,
    pub decode_at_depth: Vec<DepthStat>,
    /// Wall time of the whole bench (loading excluded), seconds.
    pub bench_s: f64,
}

/// `n` prompt ids: [`PROMPT_TEXT`] tokenized (BOS first when the tokenizer
/// adds one), its ids repeated and truncated to exactly `n`.
pub fn prompt_ids(loaded: &Loaded, n: usize) -> Result<Vec<u32>> {
    let tok = loaded.tokenizer()?;
    let with = tok.encode(PROMPT_TEXT, true)?;
    let without = tok.encode(PROMPT_TEXT, false)?;
    if without.is_empty() {
        return Err(Error::Tokenizer(
            "the bench prompt text gives no tokens".into(),
        ));
    }
    // The leading special tokens (BOS) the tokenizer adds, if any: what
    // comes before the plain ids inside the ids with specials.
    let lead = (0..=with.len().saturating_sub(without.len()))
        .find(|&i| with[i..].starts_with(&without))
        .unwrap_or(0);
    let mut ids: Vec<u32> = with[..lead].to_vec();
    while ids.len() < n {
        ids.extend_from_slice(&without);
    }
    ids.truncate(n);
    let vocab = loaded.model.config.vocab;
    if let Some(&bad) = ids.iter().find(|&&t| t as usize >= vocab) {
        return Err(Error::Tokenizer(format!(
            "the bench prompt has token {bad}, outside the model's {vocab} embedding rows"
        )));
    }
    Ok(ids)
}

/// The depths that fit: each lowered to `context - gen_tokens - 1` when it
/// exceeds it, duplicates and zeros dropped, ascending.
pub fn fit_depths(
    depths: &[usize],
    context: usize,
    gen_tokens: usize,
) -> Vec<(usize, Option<usize>)> {
    let cap = context.saturating_sub(gen_tokens + 1);
    let mut out: Vec<(usize, Option<usize>)> = Vec::new();
    let mut sorted: Vec<usize> = depths.iter().copied().filter(|&d| d > 0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    for d in sorted {
        let (got, req) = if d > cap { (cap, Some(d)) } else { (d, None) };
        if got == 0 || out.iter().any(|(g, _)| *g == got) {
            continue;
        }
        out.push((got, req));
    }
    out
}

/// What the bench reports while it runs: a phase name, and the run within it.
pub type Progress<'a> = dyn FnMut(&str, usize, usize) + 'a;

fn greedy() -> Result<Sampler> {
    Sampler::new(SamplerConfig::greedy())
}

fn never_stop(_: u32) -> bool {
    false
}

/// Runs the bench: one warm-up run and `runs` measured runs of prefill +
/// decode from an empty context, then decode at each depth (the deepest
/// context is prefilled once, untimed, and every run rewinds the session to
/// the depth with `Session::truncate`).
pub fn run(
    loaded: &Loaded,
    rt: &Runtime,
    o: &Options,
    progress: &mut Progress<'_>,
) -> Result<Record> {
    let ctx = loaded.model.config.context_length;
    let need = check_options(o, ctx)?;
    let load_avg_1m = load_avg();
    let busy_cores_before = busy_cores(std::time::Duration::from_millis(500));
    let started = Instant::now();
    let times = measure_runs(loaded, rt, o, need, progress)?;
    let depths = fit_depths(&o.depths, ctx, o.gen_tokens);
    let at_depth = measure_depths(loaded, rt, o, &depths, progress)?;
    let digest = prompt_logits_sha256(loaded, rt, o)?;
    let mut r = record(
        loaded,
        rt,
        o,
        Measured {
            load_avg_1m,
            busy_cores_before,
            started,
            times,
            at_depth,
        },
    );
    r.logits_sha256 = Some(digest);
    Ok(r)
}

/// The digest of the bench prompt's last-position logits, from one untimed
/// prefill after the measured runs.
fn prompt_logits_sha256(loaded: &Loaded, rt: &Runtime, o: &Options) -> Result<String> {
    let ids = prompt_ids(loaded, o.prompt_tokens)?;
    let mut session = Session::new(&loaded.model, rt, ids.len())?;
    let mut out = Vec::new();
    session.forward(&ids, Logits::Last, &mut out)?;
    Ok(logits_sha256(&out))
}

/// Refuses a bench that measures nothing or does not fit the model's
/// context (`ctx`); else the context one run needs.
fn check_options(o: &Options, ctx: usize) -> Result<usize> {
    if o.prompt_tokens == 0 {
        return Err(Error::argument("--prompt-tokens", "must be at least 1"));
    }
    if o.gen_tokens == 0 {
        return Err(Error::argument("--gen-tokens", "must be at least 1"));
    }
    if o.runs == 0 {
        return Err(Error::argument("--runs", "must be at least 1"));
    }
    let need = o.prompt_tokens + o.gen_tokens + 1;
    if need > ctx {
        return Err(Error::argument(
            "--prompt-tokens",
            format!(
                "{} prompt + {} generated tokens do not fit the model's context of {ctx}",
                o.prompt_tokens, o.gen_tokens
            ),
        ));
    }
    Ok(need)
}

/// One warm-up run and `o.runs` measured runs of prefill + decode from an
/// empty context (a session of `need` positions): the measured runs' timings.
fn measure_runs(
    loaded: &Loaded,
    rt: &Runtime,
    o: &Options,
    need: usize,
    progress: &mut Progress<'_>,
) -> Result<Vec<Timings>> {
    let model = &loaded.model;
    let ids = prompt_ids(loaded, o.prompt_tokens)?;
    let mut session = Session::new(model, rt, need)?;
    let mut times: Vec<Timings> = Vec::with_capacity(o.runs);
    for r in 0..=o.runs {
        progress(
            if r == 0 {
                "warm-up"
            } else {
                "prefill + decode"
            },
            r,
            o.runs,
        );
        session.reset();
        let mut sampler = greedy()?;
        let (_, _, t) = generate(
            &mut session,
            &ids,
            o.gen_tokens + 1,
            &mut sampler,
            &never_stop,
            &mut |_| Ok(true),
        )?;
        if t.decode_steps != o.gen_tokens {
            return Err(Error::Runtime(format!(
                "bench: {} decode steps ran, {} expected",
                t.decode_steps, o.gen_tokens
            )));
        }
        if r > 0 {
            times.push(t);
        }
    }
    Ok(times)
}

/// Decode at each of `depths` (as [`fit_depths`] gives them), shallowest
/// first; none when `depths` is empty.
fn measure_depths(
    loaded: &Loaded,
    rt: &Runtime,
    o: &Options,
    depths: &[(usize, Option<usize>)],
    progress: &mut Progress<'_>,
) -> Result<Vec<DepthStat>> {
    let model = &loaded.model;
    let mut at_depth = Vec::new();
    let Some(&(deepest, _)) = depths.last() else {
        return Ok(at_depth);
    };
    // Decode at depth D: the context holds D tokens; each run feeds one
    // token at position D (timed as its "prefill") and then times
    // `gen_tokens` decode steps at positions D+1..=D+gen_tokens.
    progress(&format!("prefill {deepest} (untimed)"), 0, 0);
    let ctx_ids = prompt_ids(loaded, deepest + 1)?;
    let mut session = Session::new(model, rt, deepest + o.gen_tokens + 1)?;
    let mut out = Vec::new();
    // In pieces, so that the prefill's scratch stays small.
    for chunk in ctx_ids[..deepest].chunks(512) {
        session.forward(chunk, Logits::Last, &mut out)?;
    }
    // Deepest first: `truncate` only rewinds, and a run at depth D
    // overwrites positions from D on, never those of a shallower depth's context.
    for &(d, requested) in depths.iter().rev() {
        let mut samples = Vec::with_capacity(o.runs);
        for r in 0..=o.runs {
            progress(&format!("decode at depth {d}"), r, o.runs);
            session.truncate(d);
            let mut sampler = greedy()?;
            let (_, _, t) = generate(
                &mut session,
                &ctx_ids[d..d + 1],
                o.gen_tokens + 1,
                &mut sampler,
                &never_stop,
                &mut |_| Ok(true),
            )?;
            if r > 0 {
                samples.push(t.decode_tokens_per_s());
            }
        }
        at_depth.push(DepthStat {
            depth: d,
            requested,
            decode_tokens_per_s: Stat::of(samples),
        });
    }
    at_depth.reverse();
    Ok(at_depth)
}

/// What [`run`] measured, besides the options.
struct Measured {
    load_avg_1m: Option<f64>,
    busy_cores_before: Option<f64>,
    started: Instant,
    times: Vec<Timings>,
    at_depth: Vec<DepthStat>,
}

/// The record of a bench: the medians, their samples, and where they ran.
fn record(loaded: &Loaded, rt: &Runtime, o: &Options, m: Measured) -> Record {
    let Measured {
        load_avg_1m,
        busy_cores_before,
        started,
        times,
        at_depth,
    } = m;
    let ttft = Stat::of(times.iter().map(|t| t.ttft_ms).collect());
    let prefill = Stat::of(times.iter().map(|t| t.prefill_tokens_per_s()).collect());
    let decode = Stat::of(times.iter().map(|t| t.decode_tokens_per_s()).collect());
    let (cpu_model, cpu_features) = cpu_info();
    let (commit, dirty) = match &o.commit {
        Some(c) => (c.clone(), None),
        None => git_commit(),
    };
    Record {
        schema: SCHEMA.into(),
        commit,
        dirty,
        date: utc_now_iso(),
        engine_version: env!("CARGO_PKG_VERSION").into(),
        model: model_id(loaded),
        cpu_model,
        cpu_features,
        threads: rt.threads(),
        isa: rt.isa.name().into(),
        load_avg_1m,
        busy_cores_before,
        prompt_tokens: o.prompt_tokens,
        gen_tokens: o.gen_tokens,
        runs: o.runs,
        prompt: "fixed English paragraph (bench::PROMPT_TEXT), BOS + its ids repeated and truncated; greedy, no early stop".into(),
        ttft_ms: ttft.median,
        prefill_tokens_per_s: prefill.median,
        decode_tokens_per_s: decode.median,
        decode_at_depth: at_depth
            .iter()
            .map(|d| (d.depth.to_string(), d.decode_tokens_per_s.median))
            .collect(),
        detail: Detail {
            ttft_ms: ttft,
            prefill_tokens_per_s: prefill,
            decode_tokens_per_s: decode,
            decode_at_depth: at_depth,
            bench_s: started.elapsed().as_secs_f64(),
        },
        memory_budget_bytes: None,
        memory: None,
        peer: None,
        logits_sha256: None,
        disk: None,
    }
}

/// The model's identity for a record.
pub fn model_id(loaded: &Loaded) -> ModelId {
    let path = &loaded.path;
    let bytes = if path.is_dir() {
        std::fs::read_dir(path)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    } else {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    };
    ModelId {
        file: path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
        bytes,
        name: loaded.name.clone(),
        architecture: loaded.model.config.architecture.clone(),
        weight_types: loaded
            .model
            .matrix_types()
            .iter()
            .map(|(t, n)| format!("{t}×{n}"))
            .collect(),
    }
}

/// The CPU flags worth recording for kernel speed.
fn relevant_flag(f: &str) -> bool {
    const PREFIXES: [&str; 6] = ["avx", "amx", "sse4", "fma", "f16c", "vnni"];
    PREFIXES.iter().any(|p| f.starts_with(p)) || matches!(f, "ssse3" | "bmi2" | "popcnt")
}

/// `model name` and the SIMD-relevant `flags` of /proc/cpuinfo (`"unknown"`
/// and nothing where there is no such file).
pub fn cpu_info() -> (String, Vec<String>) {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    parse_cpuinfo(&text)
}

pub fn parse_cpuinfo(text: &str) -> (String, Vec<String>) {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let model = field("model name")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let mut flags: Vec<String> = field("flags")
        .unwrap_or_default()
        .split_whitespace()
        .filter(|f| relevant_flag(f))
        .map(str::to_string)
        .collect();
    flags.sort();
    flags.dedup();
    (model, flags)
}

/// The 1-minute load average, where /proc/loadavg exists.
pub fn load_avg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Busy and total jiffies of all CPUs together (the `cpu` line of /proc/stat).
fn cpu_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// How many cores were busy, on average, over the next `over` (this thread sleeps).
pub fn busy_cores(over: std::time::Duration) -> Option<f64> {
    let (b0, t0) = cpu_jiffies()?;
    std::thread::sleep(over);
    let (b1, t1) = cpu_jiffies()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    (t1 > t0).then(|| (b1 - b0) as f64 / (t1 - t0) as f64 * cores)
}

/// The short hash of HEAD and whether tracked files differ from it;
/// `("unknown", None)` outside a git checkout or without git.
pub fn git_commit() -> (String, Option<bool>) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let dirty =
                git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
            (c, dirty)
        }
        _ => ("unknown".into(), None),
    }
}

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    iso_utc(secs)
}

/// Seconds since 1970-01-01 UTC as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso_utc(secs: u64) -> String {
    atenia_engine::text::chat_template::strftime_utc("%Y-%m-%dT%H:%M:%SZ", secs as i64)
}

/// Appends `r` as one line to the history file (created with its directory if needed).
pub fn append_history(path: &Path, r: &Record) -> Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let line =
        serde_json::to_string(r).map_err(|e| Error::Runtime(format!("bench record: {e}")))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    writeln!(f, "{line}").map_err(|e| Error::io(path, e))
}

/// Reads a history file: one record per non-empty line. Lines that are not
/// records (another schema, or not JSON) are skipped and counted.
pub fn read_history(path: &Path) -> Result<(Vec<Record>, usize)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    let mut skipped = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match serde_json::from_str::<Record>(line) {
            Ok(r) if r.schema == SCHEMA => out.push(r),
            _ => skipped += 1,
        }
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(1_764_151_500), "2025-11-26T10:05:00Z");
    }

    #[test]
    fn medians() {
        let s = Stat::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(s.samples, vec![3.0, 1.0, 2.0]);
        assert_eq!(Stat::of(vec![4.0, 1.0, 2.0, 3.0]).median, 2.5);
    }

    #[test]
    fn depths_fit_the_context() {
        assert_eq!(
            fit_depths(&[512, 2048], 8192, 64),
            vec![(512, None), (2048, None)]
        );
        assert_eq!(
            fit_depths(&[2048, 512, 512, 0], 1024, 64),
            vec![(512, None), (959, Some(2048))]
        );
        assert_eq!(fit_depths(&[4096, 8192], 1024, 64), vec![(959, Some(4096))]);
    }

    #[test]
    fn cpuinfo_fields() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu sse4_2 avx2 fma avx512f avx512_vnni f16c pni\n";
        let (m, f) = parse_cpuinfo(text);
        assert_eq!(m, "AMD EPYC 9B14");
        assert_eq!(
            f,
            vec!["avx2", "avx512_vnni", "avx512f", "f16c", "fma", "sse4_2"]
        );
        assert_eq!(parse_cpuinfo("").0, "unknown");
    }

    #[test]
    fn records_round_trip() {
        let r = Record {
            schema: SCHEMA.into(),
            commit: "abc1234".into(),
            decode_at_depth: [("512".to_string(), 80.0)].into_iter().collect(),
            ..Default::default()
        };
        let line = serde_json::to_string(&r).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for key in [
            "prefill_tokens_per_s",
            "decode_tokens_per_s",
            "ttft_ms",
            "threads",
            "isa",
            "cpu_model",
            "cpu_features",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["decode_at_depth"]["512"], 80.0);
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back.commit, "abc1234");
    }
}
