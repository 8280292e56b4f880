//! `atenia-harness validate` (command line).

use std::path::{Path, PathBuf};

use atenia_engine::cli::args::{check_writable, write_output};

// Results go to stdout through `outln!`, which survives a closed pipe (`| head`).
use atenia_engine::cli::args::GuardArgs;
use atenia_engine::cli::ui::{load_model as load, Progress};
use atenia_engine::guard::wiring::RunGuard;
use atenia_engine::model::open::TokenizerLoad;
use atenia_engine::outln as println;
use atenia_engine::Result;
use atenia_harness::metrics::DEFAULT_BAND;
use atenia_harness::prompts::{default_prompts, read_prompts};
use atenia_harness::report_html;
use atenia_harness::validate::{prompt_ids, validate, Options, Report};

#[derive(clap::Args)]
#[command(
    after_help = "Runs the engine (one-pass prefill, and token-by-token decode through the KV cache)\n\
and the float64 reference on a prompt set and checks the ADR-004 default band. It also\n\
runs a bfloat16 emulation of the same model (PyTorch on the CPU in torch.bfloat16) on the\n\
same sequences, to show how far bf16 lands from float64 (--no-bf16 skips it).\n\
A prompt file is a JSON array of {\"name\", \"text\", \"chat\"} objects, or of {\"name\", \"ids\"}\n\
objects whose token ids run as they are: a model without a tokenizer can be validated with\n\
those (its report then has no detokenized text). The two kinds may be mixed.\n\
Under a memory budget (--memory-budget, or one the guard sets from a cgroup limit) the engine\n\
streams the weights that do not fit, and the float64 and bfloat16 references stream the whole\n\
model chunk by chunk, dropping each chunk's pages after use: a model larger than memory can be\n\
validated (--max-prompts and --gen-tokens keep such a run short).\n\
Exit code 0 when the gate holds, 1 when it does not, 2 for bad input or a model the reference cannot run.\n\
Examples:\n  atenia-harness validate SmolLM2-135M-Instruct.Q4_1.gguf\n  \
atenia-harness validate model.gguf --prompts prompts.json --json-out report.json --html report.html\n  \
atenia-harness validate model.gguf --json | jq .summary\n  \
echo '[{\"name\": \"ids\", \"ids\": [1, 17, 42, 99]}]' > ids.json\n  \
atenia-harness validate checkpoint-dir --prompts ids.json --no-bf16\n  \
atenia-harness validate big.gguf --memory-budget 512MiB --max-prompts 1 --gen-tokens 4 --no-bf16"
)]
pub struct Args {
    /// Model file (GGUF) or Hugging Face checkpoint directory
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Prompt set: a JSON array of {"name", "text", "chat"} or {"name", "ids"} (default: the built-in set of 8)
    #[arg(long, value_name = "FILE")]
    pub prompts: Option<PathBuf>,
    /// Run only the first N prompts of the set (default: all)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_prompts: Option<u64>,
    /// Greedy tokens generated after each prompt and checked along the way
    #[arg(long, default_value_t = 24, value_name = "N")]
    pub gen_tokens: usize,
    /// Print the JSON report (schema atenia.validate/1, docs/validate-report.md) on stdout
    /// instead of the summary. `--json FILE`, the old spelling of --json-out FILE, writes it to FILE
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub json: Option<Option<PathBuf>>,
    /// Write the JSON report to FILE (the summary still goes to stdout)
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// Write the self-contained HTML report here
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
    /// Skip the bfloat16 comparison (a PyTorch-style bf16 forward pass of the same model)
    #[arg(long)]
    pub no_bf16: bool,
    #[command(flatten)]
    pub threads: atenia_engine::cli::args::ThreadsArgs,
    #[command(flatten)]
    pub isa: atenia_engine::cli::args::IsaArgs,
    #[command(flatten)]
    pub guard: GuardArgs,
}

impl Args {
    /// The files the JSON report goes to, with the flag that named each.
    fn json_files(&self) -> Vec<(&'static str, &Path)> {
        let old = self.json.as_ref().and_then(|j| j.as_deref());
        [("--json-out", self.json_out.as_deref()), ("--json", old)]
            .into_iter()
            .filter_map(|(f, p)| p.map(|p| (f, p)))
            .collect()
    }

    /// `--json` alone: the report goes to stdout instead of the summary.
    fn json_stdout(&self) -> bool {
        matches!(self.json, Some(None))
    }
}

pub fn print_summary(r: &Report) {
    println!(
        "model    {} ({}, family {})",
        r.model.path, r.model.architecture, r.model.family
    );
    println!(
        "engine   {} threads, {}; band {} (max abs ≤ {:.0e})",
        r.threads, r.isa, r.band.name, r.band.max_abs_diff
    );
    println!();
    println!(
        "{:<14} {:>5} {:>11} {:>11} {:>10} {:>9} {:>10} {:>9} {:>10} {:>9}",
        "prompt",
        "pos",
        "prefill",
        "decode",
        "max KL",
        "argmax",
        "greedy",
        "bits",
        "bf16",
        "bf16 argm"
    );
    for p in &r.prompts {
        println!(
            "{:<14} {:>5} {:>11.2e} {:>11.2e} {:>10.1e} {:>9} {:>10} {:>9} {:>10} {:>9}",
            p.name,
            p.prefill.argmax_total,
            p.prefill.max_abs_diff,
            p.decode.max_abs_diff,
            p.prefill.max_kl.max(p.decode.max_kl),
            format!(
                "{}/{}",
                p.prefill.argmax_match.min(p.decode.argmax_match),
                p.prefill.argmax_total
            ),
            p.first_divergence
                .map_or("on path".to_string(), |i| format!("off at {i}")),
            if p.prefill_decode_bit_identical {
                "same"
            } else {
                "differ"
            },
            p.bf16
                .as_ref()
                .map_or("-".to_string(), |b| format!("{:.3}", b.max_abs_diff)),
            p.bf16.as_ref().map_or("-".to_string(), |b| format!(
                "{}/{}",
                b.argmax_match, b.argmax_total
            )),
        );
    }
    let s = &r.summary;
    println!();
    println!(
        "max abs logit diff: prefill {:.3e}, decode {:.3e} over {} positions; argmax {}/{}; {}/{} greedy paths stay on the float64 path",
        s.max_abs_diff_prefill, s.max_abs_diff_decode, s.positions, s.argmax_match, s.argmax_total, s.prompts_on_reference_path, s.prompts
    );
    if let (Some(b), Some(m)) = (s.bf16_max_abs_diff, s.bf16_argmax_match) {
        let closer = s
            .closer_than_bf16
            .map_or("the engine equals float64".to_string(), |c| {
                format!(
                    "the engine is {}× closer to float64 than bfloat16",
                    report_html::times(c)
                )
            });
        println!("bfloat16 (PyTorch-style emulation) on the same positions: max abs logit diff {b:.3}, argmax {m}/{}; {closer}", s.argmax_total);
    }
    for f in &r.failures {
        println!("FAIL {f}");
    }
    println!("{}", if r.passed { "PASS" } else { "FAIL" });
}

pub fn run(a: Args) -> Result<i32> {
    // Every output is checked before the (minutes-long) run.
    for (flag, p) in a.json_files() {
        check_writable(p, flag)?;
    }
    if let Some(p) = &a.html {
        check_writable(p, "--html")?;
    }
    let rt = a.isa.runtime(&a.threads)?;
    // Built when a text prompt first needs it (an ids-only set may run a
    // model without one).
    let loaded = load(&a.model, TokenizerLoad::Lazy)?;
    let mut prompts = match &a.prompts {
        Some(p) => read_prompts(p)?,
        None => default_prompts(),
    };
    if let Some(n) = a.max_prompts {
        prompts.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }
    // The memory guard: refuse, proceed or tighten at start (for the longest
    // prompt's session), then a reading before every prompt after the first.
    let mut capacity = 1;
    for p in &prompts {
        let n = prompt_ids(&loaded, p, &mut vec![])?.len();
        capacity = capacity.max(n + a.gen_tokens + 1);
    }
    // Text prompts built the tokenizer above. An ids-only set uses it, when
    // the model has one, to detokenize the continuations: build it now too,
    // so that the guard's fixed overhead counts it. A model without one runs
    // the set all the same (each prompt's notes say so).
    if prompts.iter().all(|p| p.ids.is_some()) {
        if let Err(e) = loaded.tokenizer() {
            tracing::info!("running token ids without a tokenizer: {e}");
        }
    }
    let mut guard = RunGuard::start(
        &loaded.model,
        a.guard
            .options(capacity, rt.threads(), "atenia-harness validate", 1),
    )?;
    let mut guard_error = None;
    let opts = Options {
        gen_tokens: a.gen_tokens,
        band: DEFAULT_BAND,
        bf16: !a.no_bf16,
    };
    let bar = Progress::bar(prompts.len() as u64, "validating");
    let mut progress = |i: usize, name: &str| {
        // Progress units: prompts done.
        if guard_error.is_none() {
            if let Err(e) = guard.progress(i as u64) {
                guard_error = Some(e);
            }
        }
        bar.set_position(i as u64);
        bar.set_message(format!("validating {name}"));
        tracing::debug!(
            prompt = name,
            "validating prompt {} of {}",
            i + 1,
            prompts.len()
        );
    };
    let report = validate(&loaded, &rt, &prompts, &opts, &mut progress);
    drop(bar);
    if let Some(e) = guard_error {
        return Err(e);
    }
    let report = report?;
    if !a.json_stdout() {
        print_summary(&report);
    }
    if a.json_stdout() || !a.json_files().is_empty() {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "memory".into(),
                loaded
                    .model
                    .memory
                    .stats
                    .to_json(loaded.model.memory.budget()),
            );
        }
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        for (flag, p) in a.json_files() {
            write_output(p, flag, &text)?;
            tracing::info!("wrote {}", p.display());
        }
        if a.json_stdout() {
            println!("{text}");
        }
    }
    if let Some(p) = &a.html {
        write_output(p, "--html", &report_html::render(&report))?;
        tracing::info!("wrote {}", p.display());
    }
    Ok(if report.passed { 0 } else { 1 })
}
