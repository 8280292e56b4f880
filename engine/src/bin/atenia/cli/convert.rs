//! `atenia convert`: a GGUF file to a Hugging Face checkpoint directory.

use std::path::PathBuf;

use clap::ValueEnum;

use atenia_engine::cli::ui;
use atenia_engine::convert::{convert_gguf, Options, OutDtype};
use atenia_engine::family::spec::FamilySpec;
use atenia_engine::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    /// Exact: every dequantized weight is written as the f32 it is
    F32,
    /// Half the size; rounds each weight to the nearest bf16 (ties to even),
    /// which changes the logits slightly
    Bf16,
}

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    atenia convert SmolLM2-135M-Instruct.Q4_1.gguf --out smollm2-hf\n  \
    atenia convert gemma-3-270m-q4_k_m.gguf --out gemma3-hf --dtype bf16\n\n\
    Writes config.json, model.safetensors, tokenizer.json, tokenizer_config.json and\n\
    generation_config.json. Quantized weights are dequantized exactly; with --dtype f32\n\
    the checkpoint computes what the GGUF file computes (same logits up to the order of\n\
    a few float32 sums), while --dtype bf16 rounds every weight to bf16 and so changes\n\
    the logits slightly. What llama.cpp's converter changed is undone: Q/K rows of\n\
    `llama` files are un-permuted, and Gemma-family norm weights (stored as 1 + w) are\n\
    written as w. The checkpoint is loaded back before the command ends, to check that\n\
    it gives the engine the same model.")]
pub struct Args {
    /// The GGUF file to convert
    #[arg(value_name = "FILE.gguf")]
    pub file: PathBuf,
    /// Output directory (created; must be empty unless --force; checked to be writable first)
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
    /// Weight type of model.safetensors
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// A family spec (YAML) instead of the built-in one for the file's architecture;
    /// it needs an `hf:` section
    #[arg(long, value_name = "SPEC.yaml")]
    pub spec: Option<PathBuf>,
    /// Overwrite files in a non-empty output directory
    #[arg(long)]
    pub force: bool,
}

/// `[  12/273] name …`: the step and the total of a per-tensor progress line.
fn step_of(line: &str) -> Option<(u64, u64)> {
    let inner = line.strip_prefix('[')?.split(']').next()?;
    let (k, n) = inner.split_once('/')?;
    Some((k.trim().parse().ok()?, n.trim().parse().ok()?))
}

pub fn run(a: Args) -> Result<()> {
    if a.file.is_dir() {
        return Err(Error::argument(
            "FILE.gguf",
            format!(
                "{} is a directory; `atenia convert` takes a GGUF file (a checkpoint directory \
                 is what it writes, and runs as it is: `atenia generate -m {}`)",
                a.file.display(),
                a.file.display()
            ),
        ));
    }
    // Checked before the file is read: a bad --out fails at once.
    atenia_engine::cli::args::check_writable_dir(&a.out, "--out")?;
    let spec = a
        .spec
        .as_deref()
        .map(FamilySpec::from_yaml_file)
        .transpose()?;
    let opts = Options {
        dtype: match a.dtype {
            Dtype::F32 => OutDtype::F32,
            Dtype::Bf16 => OutDtype::Bf16,
        },
        spec,
        force: a.force,
    };
    let t0 = std::time::Instant::now();
    // On a terminal a bar shows the tensors written (each one's line is a
    // debug event, -v); otherwise each line is an info event, as a log.
    let bars = ui::progress_shown();
    let bar = ui::Progress::bar(0, format!("converting {}", a.file.display()));
    let r = convert_gguf(&a.file, &a.out, &opts, &mut |line| match step_of(line) {
        Some((k, n)) if bars => {
            bar.set_length(n);
            bar.set_position(k);
            let name = line.split_once("] ").map_or(line, |(_, rest)| rest);
            bar.set_message(name.to_string());
            tracing::debug!("{line}");
        }
        _ => tracing::info!("{line}"),
    });
    drop(bar);
    let r = r?;
    for w in &r.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        "converted {} ({}, family {}) to {} ({}): {} tensors, {} parameters, {:.1} MB of weights, {} embeddings{}{} in {:.1} s",
        a.file.display(),
        r.gguf_architecture,
        r.family,
        r.out.display(),
        r.hf_architecture,
        r.tensors,
        r.parameters,
        r.weight_bytes as f64 / 1e6,
        if r.tied { "tied" } else { "untied" },
        if r.unpermuted.is_empty() {
            String::new()
        } else {
            format!(", {} Q/K tensors un-permuted", r.unpermuted.len())
        },
        if r.shifted.is_empty() {
            String::new()
        } else {
            format!(", {} norms shifted by {:+}", r.shifted.len(), r.norm_shift)
        },
        t0.elapsed().as_secs_f64()
    );
    let list: String = r
        .files
        .iter()
        .map(|f| format!("{}\n", f.display()))
        .collect();
    super::load::emit(&list);
    Ok(())
}
