//! `atenia-harness compare` (command line).

use std::path::PathBuf;

use atenia_engine::guard::wiring::RunGuard;
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::open::TokenizerLoad;
use atenia_engine::Result;
use atenia_harness::compare::compare;
use atenia_harness::engine_run::Path;
use atenia_harness::metrics::DEFAULT_BAND;
use atenia_harness::reference_file::LogitsFile;

#[derive(clap::Args)]
#[command(
    after_help = "The reference holds `input_ids` (I64 [seq]), `logits` ([k, vocab], F32 or F64),\n\
optional `positions` (I64 [k]: which positions the rows are; default all) and optional\n\
`argmax` (I64 [seq]). Exit code 0 when the ADR-004 default band holds, 1 when it does not.\n\
The reference's ids are run as they are: the model needs no tokenizer. Under --memory-budget\n\
the weights that do not fit are streamed from the file (a model larger than memory compares\n\
the same bits).\n\
Examples:\n  atenia-harness compare SmolLM2-135M-Instruct.Q4_1.gguf --reference capital.safetensors\n  \
atenia-harness compare model.gguf --reference ref.safetensors --decode --json\n  \
atenia-harness compare golden/hf/llama-tied-f32 --reference golden/hf/llama-tied-f32/reference.safetensors\n  \
atenia-harness compare big.gguf --reference ref.safetensors --memory-budget 512MiB"
)]
pub struct Args {
    /// Model: a GGUF file or a Hugging Face checkpoint directory
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Reference logits (safetensors)
    #[arg(short, long, value_name = "FILE")]
    pub reference: PathBuf,
    /// Feed the first token, then decode the rest one at a time through the KV cache
    #[arg(long)]
    pub decode: bool,
    #[command(flatten)]
    pub json: atenia_engine::cli::args::JsonArgs,
    #[command(flatten)]
    pub threads: atenia_engine::cli::args::ThreadsArgs,
    #[command(flatten)]
    pub guard: atenia_engine::cli::args::GuardArgs,
}

pub fn run(a: Args) -> Result<i32> {
    a.json.check()?;
    let rt = Runtime::new(a.threads.threads, None)?;
    let loaded = atenia_engine::cli::ui::load_model(&a.model, TokenizerLoad::Lazy)?;
    let reference = LogitsFile::read(&a.reference)?;
    // The memory guard's start decision (one session of the reference's
    // length); it sets the model's budget.
    let _guard = RunGuard::start(
        &loaded.model,
        a.guard.options(
            reference.input_ids.len().max(1),
            rt.threads(),
            "atenia-harness compare",
            0,
        ),
    )?;
    let path = if a.decode {
        Path::Decode
    } else {
        Path::Prefill
    };
    let r = compare(&loaded.model, &rt, &reference, path, DEFAULT_BAND)?;
    if !a.json.emit(&serde_json::to_value(&r).unwrap_or_default())? {
        atenia_engine::outln!(
            "{} vs {} ({} path)",
            a.model.display(),
            a.reference.display(),
            path.name()
        );
        atenia_engine::outln!(
            "  positions compared   {} of {}",
            r.positions.len(),
            reference.input_ids.len()
        );
        atenia_engine::outln!(
            "  max abs logit diff   {:.3e} (band {}: ≤ {:.0e})",
            r.max_abs_diff,
            r.band.name,
            r.band.max_abs_diff
        );
        atenia_engine::outln!("  max relative L2      {:.3e}", r.max_rel_l2);
        atenia_engine::outln!("  max KL(ref‖engine)   {:.3e}", r.max_kl);
        atenia_engine::outln!(
            "  argmax agreement     {}/{}",
            r.argmax_match,
            r.argmax_total
        );
        for f in &r.failures {
            atenia_engine::outln!("  FAIL {f}");
        }
        atenia_engine::outln!("{}", if r.passed { "PASS" } else { "FAIL" });
    }
    Ok(if r.passed { 0 } else { 1 })
}
