//! `atenia-harness bench` (command line).

use std::path::PathBuf;

// Results go to stdout through `outln!`, which survives a closed pipe (`| head`).
use atenia_engine::cli::args::GuardArgs;
use atenia_engine::cli::ui::{load_model as load, Progress};
use atenia_engine::guard::wiring::RunGuard;
use atenia_engine::model::open::TokenizerLoad;
use atenia_engine::outln as println;
use atenia_engine::{Error, Result};
use atenia_harness::bench::{self, Options, Record, Stat};

#[derive(clap::Args)]
#[command(
    after_help = "Times the engine's generation loop: a prompt of exactly --prompt-tokens tokens (a fixed\n\
English paragraph, tokenized, its ids repeated and truncated; BOS first when the model adds one),\n\
then --gen-tokens greedy tokens (end-of-generation ignored). One warm-up run, then --runs measured\n\
runs; figures are medians [min – max]. Decode at depth D: the session is prefilled once to the\n\
deepest D (untimed), rewound with Session::truncate between runs, and each run times --gen-tokens\n\
decode steps after D tokens of context. Depths are capped by the model's context.\n\
Nothing is written unless --record: then one JSON line (the record --json prints and --json-out writes, schema\n\
atenia.bench/1) is appended to reports/bench-history.jsonl, or to FILE with --record FILE (the\n\
history the dashboard draws). --disk first reads up to 1 GiB of the model file with O_DIRECT in the streaming\n\
reader's read size, at one read in flight and at the reader's queue depth, and reports decode's read\n\
bandwidth (under --memory-budget) as a fraction of the latter. --peer FILE adds another engine's figures on the same model to the\n\
record (scripts/peer-llama-cpp.sh writes it). Exit code 0 when measured, 2 for bad input (a missing\n\
model or peer file, a prompt that does not fit the context, a\n\
--record or --json-out path that cannot be written: checked before the bench starts), 1 when the history cannot be written.\n\
Examples:\n  atenia-harness bench SmolLM2-135M-Instruct.Q4_1.gguf\n  \
atenia-harness bench gemma-3-270m-q4_k_m.gguf --threads 2 --json\n  \
atenia-harness bench SmolLM2-135M-Instruct.Q4_1.gguf --threads 2 --record\n  \
atenia-harness bench model.gguf --memory-budget 512MiB --disk --no-depth\n  \
atenia-harness bench model.gguf --prompt-tokens 512 --gen-tokens 32 --depth 4096 --runs 3 --record my-runs.jsonl"
)]
pub struct Args {
    /// Model file (GGUF) or Hugging Face checkpoint directory
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Prompt length in tokens
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub prompt_tokens: usize,
    /// Tokens generated (decode steps timed) per run
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub gen_tokens: usize,
    #[command(flatten)]
    pub threads: atenia_engine::cli::args::ThreadsArgs,
    /// Context depth for decode-at-depth (repeatable or comma-separated; default 512,2048)
    #[arg(long = "depth", value_name = "D", value_delimiter = ',')]
    pub depths: Vec<usize>,
    /// Skip decode-at-depth
    #[arg(long, conflicts_with = "depths")]
    pub no_depth: bool,
    /// Measured runs (after one warm-up run)
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub runs: usize,
    #[command(flatten)]
    pub isa: atenia_engine::cli::args::IsaArgs,
    #[command(flatten)]
    pub json: atenia_engine::cli::args::JsonArgs,
    /// Append the record to the history (JSON lines): reports/bench-history.jsonl, or FILE
    #[arg(
        long,
        value_name = "FILE",
        num_args = 0..=1,
        default_missing_value = DEFAULT_HISTORY
    )]
    pub record: Option<PathBuf>,
    /// Write nothing (the default; accepted for scripts written before --record)
    #[arg(long, hide = true, conflicts_with = "record")]
    pub no_history: bool,
    /// A peer engine's run on the same model (a JSON object with an "engine" name), stored in the record as "peer"
    #[arg(long, value_name = "FILE")]
    pub peer: Option<PathBuf>,
    /// Measure the disk on the model file (O_DIRECT, the streaming reader's
    /// read size and queue depth) and report decode's read bandwidth as a
    /// fraction of it.
    #[arg(long)]
    pub disk: bool,
    /// Record this commit instead of `git rev-parse --short HEAD` (for a build outside its checkout)
    #[arg(long, value_name = "HASH")]
    pub commit: Option<String>,
    #[command(flatten)]
    pub guard: GuardArgs,
}

/// The history `--record` appends to when it names no file.
pub const DEFAULT_HISTORY: &str = "reports/bench-history.jsonl";

/// Reads `--peer FILE`: a JSON object naming its engine.
fn read_peer(path: &std::path::Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::argument("--peer", format!("{} is not JSON: {e}", path.display())))?;
    match value.get("engine") {
        Some(serde_json::Value::String(name)) if !name.is_empty() => Ok(value),
        _ => Err(Error::argument(
            "--peer",
            format!(
                "{} must hold a JSON object with an \"engine\" name (e.g. {{\"engine\": \"llama.cpp\", ...}})",
                path.display()
            ),
        )),
    }
}

fn stat(s: &Stat, unit: &str) -> String {
    format!("{:>9.1} {unit:<6} [{:.1} – {:.1}]", s.median, s.min, s.max)
}

pub fn print_table(r: &Record) {
    let m = &r.model;
    println!(
        "model    {} ({:.1} MB, {}, {})",
        m.file,
        m.bytes as f64 / 1e6,
        m.architecture,
        m.weight_types.join(" ")
    );
    println!(
        "cpu      {}, {} threads, isa {}{}",
        r.cpu_model,
        r.threads,
        r.isa,
        r.busy_cores_before
            .map_or(String::new(), |b| format!(", {b:.2} cores busy before"))
    );
    println!(
        "commit   {}{}   {}",
        r.commit,
        if r.dirty == Some(true) {
            " (tracked files modified)"
        } else {
            ""
        },
        r.date
    );
    println!(
        "runs     {} measured after 1 warm-up; prompt {} tokens, {} generated; median [min – max]",
        r.runs, r.prompt_tokens, r.gen_tokens
    );
    println!();
    let d = &r.detail;
    println!("ttft                {}", stat(&d.ttft_ms, "ms"));
    println!(
        "prefill             {}",
        stat(&d.prefill_tokens_per_s, "tok/s")
    );
    println!(
        "decode              {}",
        stat(&d.decode_tokens_per_s, "tok/s")
    );
    for a in &d.decode_at_depth {
        let label = match a.requested {
            Some(q) => format!("decode @ {} (asked {q})", a.depth),
            None => format!("decode @ {}", a.depth),
        };
        println!("{label:<20}{}", stat(&a.decode_tokens_per_s, "tok/s"));
    }
    if let (Some(b), Some(m)) = (r.memory_budget_bytes, &r.memory) {
        let mib = |k: &str| m[k].as_u64().map_or(0.0, |v| v as f64 / (1 << 20) as f64);
        println!(
            "memory              budget {:.1} MiB: {:.1} MiB mapped, {:.1} MiB streamed a pass; read-ahead hit {}; I/O wait {:.0} ms vs compute {:.0} ms",
            b as f64 / (1 << 20) as f64,
            mib("mapped_bytes"),
            mib("streamed_bytes_per_pass"),
            m["readahead_hit_rate"]
                .as_f64()
                .map_or("-".to_string(), |h| format!("{:.1}%", 100.0 * h)),
            m["io_wait_ms"].as_f64().unwrap_or(0.0),
            m["compute_ms"].as_f64().unwrap_or(0.0),
        );
        let f = |k: &str, scale: f64| {
            m[k].as_f64()
                .map_or("-".to_string(), |v| format!("{:.2}", v / scale))
        };
        println!(
            "disk                {} MB read from the device a token against {} MB streamed (amplification {}); {} GB/s during decode; {}% of I/O hidden",
            f("device_read_bytes_per_token", 1e6),
            f("streamed_bytes_per_pass", 1e6),
            f("read_amplification", 1.0),
            f("read_bandwidth_bytes_per_s", 1e9),
            f("io_hidden_fraction", 0.01),
        );
    }
    if let Some(d) = &r.disk {
        let gb = |v: &serde_json::Value| v["bandwidth_bytes_per_s"].as_f64().unwrap_or(0.0) / 1e9;
        println!(
            "disk bench          {:.2} GB/s at 1 read in flight, {:.2} GB/s at {} ({} KiB {} reads); decode reads at {}",
            gb(&d["qd1"]),
            gb(&d["qd"]),
            d["qd"]["queue_depth"],
            d["qd"]["read_chunk_bytes"].as_u64().unwrap_or(0) / 1024,
            d["qd"]["mode"].as_str().unwrap_or("-"),
            d["decode_fraction_of_disk"]
                .as_f64()
                .map_or("-".to_string(), |x| format!("{:.0}% of it", 100.0 * x)),
        );
    }
}

/// Bytes `bench --disk` reads at each queue depth.
const DISK_BYTES: u64 = 1 << 30;

/// The disk read on the model file as the streaming reader reads it: one
/// read in flight, then the reader's queue depth, each over its own part of
/// the file (so neither finds what the other read in a device cache).
fn measure_disk(
    model: &std::path::Path,
) -> Result<[atenia_engine::formats::reader::DiskReading; 2]> {
    use atenia_engine::formats::reader;
    use atenia_engine::memory::placement::{RING_IO_THREADS, RING_READ_CHUNK};
    let len = std::fs::metadata(model)
        .map_err(|e| Error::io(model, e))?
        .len();
    let one = reader::measure_disk(model, 0, DISK_BYTES.min(len / 2), RING_READ_CHUNK, 1)?;
    let deep = reader::measure_disk(
        model,
        len / 2,
        DISK_BYTES.min(len / 2),
        RING_READ_CHUNK,
        RING_IO_THREADS,
    )?;
    Ok([one, deep])
}

/// The record's `disk` object: both readings and decode's fraction of the deeper one.
fn disk_json(
    d: [atenia_engine::formats::reader::DiskReading; 2],
    memory: Option<&serde_json::Value>,
) -> serde_json::Value {
    let reading = |r: &atenia_engine::formats::reader::DiskReading| {
        serde_json::json!({
            "mode": r.mode.name(),
            "read_chunk_bytes": r.read_chunk,
            "queue_depth": r.queue_depth,
            "bytes": r.bytes,
            "seconds": r.seconds,
            "bandwidth_bytes_per_s": r.bytes_per_s(),
        })
    };
    let decode = memory.and_then(|m| m["read_bandwidth_bytes_per_s"].as_f64());
    let best = d[1].bytes_per_s();
    serde_json::json!({
        "qd1": reading(&d[0]),
        "qd": reading(&d[1]),
        "decode_read_bandwidth_bytes_per_s": decode,
        "decode_fraction_of_disk": decode.filter(|_| best > 0.0).map(|b| b / best),
    })
}

pub fn run(a: Args) -> Result<i32> {
    a.json.check()?;
    if let Some(history) = &a.record {
        atenia_engine::cli::args::check_writable(history, "--record")?;
    }
    // Before the model loads: a bad peer file should not cost a bench.
    let peer = a.peer.as_deref().map(read_peer).transpose()?;
    let rt = a.isa.runtime(&a.threads)?;
    let disk = a.disk.then(|| measure_disk(&a.model)).transpose()?;
    // The bench tokenizes its prompt text: the tokenizer is built now, before
    // the guard measures the fixed overhead, so the overhead counts it (and a
    // model without one is refused before anything runs).
    let loaded = load(&a.model, TokenizerLoad::Now)?;
    let depths = if a.no_depth {
        vec![]
    } else if a.depths.is_empty() {
        bench::DEFAULT_DEPTHS.to_vec()
    } else {
        a.depths.clone()
    };
    let opts = Options {
        prompt_tokens: a.prompt_tokens,
        gen_tokens: a.gen_tokens,
        runs: a.runs,
        depths,
        commit: a.commit.clone(),
    };
    // The memory guard: refuse, proceed or tighten at start (for the largest
    // session the bench opens), then a reading before every run.
    let capacity = bench::fit_depths(
        &opts.depths,
        loaded.model.config.context_length,
        a.gen_tokens,
    )
    .last()
    .map_or(0, |&(d, _)| d + a.gen_tokens + 1)
    .max(a.prompt_tokens + a.gen_tokens + 1);
    let mut guard = RunGuard::start(
        &loaded.model,
        a.guard
            .options(capacity, rt.threads(), "atenia-harness bench", 1),
    )?;
    let mut readings = 0u64;
    let mut guard_error = None;
    let spinner = Progress::spinner("bench");
    let mut progress = |phase: &str, run: usize, runs: usize| {
        if guard_error.is_none() {
            readings += 1;
            if let Err(e) = guard.progress(readings) {
                guard_error = Some(e);
            }
        }
        let msg = if runs == 0 {
            format!("bench: {phase}")
        } else if run == 0 {
            format!("bench: {phase} [warm-up]")
        } else {
            format!("bench: {phase} [{run}/{runs}]")
        };
        tracing::debug!("{msg}");
        spinner.set_message(msg);
    };
    let result = bench::run(&loaded, &rt, &opts, &mut progress);
    drop(spinner);
    if let Some(e) = guard_error {
        return Err(e);
    }
    let mut record = result?;
    record.memory_budget_bytes = a.guard.memory_budget;
    record.memory = Some(
        loaded
            .model
            .memory
            .stats
            .to_json(loaded.model.memory.budget()),
    );
    if let Some(b) = record.busy_cores_before.filter(|&b| b >= 0.25) {
        tracing::warn!("other work kept {b:.2} cores busy just before the bench: it competed for the CPU, so these figures may be low");
    }
    if let Some(d) = disk {
        record.disk = Some(disk_json(d, record.memory.as_ref()));
    }
    record.peer = peer;
    let v =
        serde_json::to_value(&record).map_err(|e| Error::Runtime(format!("bench record: {e}")))?;
    if !a.json.emit(&v)? {
        print_table(&record);
    }
    if let Some(history) = &a.record {
        bench::append_history(history, &record)?;
        if !a.json.json {
            println!();
            println!("appended to {}", history.display());
        }
    }
    Ok(0)
}
