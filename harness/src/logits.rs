//! `atenia-harness logits`.

use std::path::PathBuf;

use atenia_engine::exec::decoder::{Logits, Session};
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::open::TokenizerLoad;
use atenia_engine::{Error, Result};
use atenia_harness::reference_file::write_logits;

#[derive(clap::Args)]
#[command(
    after_help = "The file holds `input_ids` (I64 [seq]) and `logits` (F32 [seq, vocab]).\n\
With --ids the model needs no tokenizer (a checkpoint directory without tokenizer.json,\n\
a GGUF file without tokenizer.ggml.* keys); --prompt needs one.\n\
Examples:\n  atenia-harness logits --model SmolLM2-135M-Instruct.Q4_1.gguf --prompt \"Hello\" --out hello.safetensors\n  \
atenia-harness logits --model model.gguf --ids 1,2,3 --out ids.safetensors"
)]
pub struct Args {
    /// Model: a GGUF file or a Hugging Face checkpoint directory
    #[arg(short, long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Text to tokenize (with the model's BOS rule)
    #[arg(
        short,
        long,
        value_name = "TEXT",
        conflicts_with = "ids",
        required_unless_present = "ids"
    )]
    pub prompt: Option<String>,
    /// Token ids, comma-separated, run as they are (no tokenizer needed; no BOS added)
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub ids: Option<Vec<u32>>,
    #[command(flatten)]
    pub threads: atenia_engine::cli::args::ThreadsArgs,
    /// Output safetensors file
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// Memory budget (e.g. 16MiB): weights that do not fit are streamed; the logits are the same bits
    #[arg(long, value_name = "SIZE", value_parser = atenia_engine::cli::args::parse_budget)]
    pub memory_budget: Option<u64>,
}

pub fn run(a: Args) -> Result<()> {
    atenia_engine::cli::args::check_writable(&a.out, "--out")?;
    let rt = Runtime::new(a.threads.threads, None)?;
    // Ids are run as they are: only --prompt needs the tokenizer.
    let when = match a.prompt {
        Some(_) => TokenizerLoad::Now,
        None => TokenizerLoad::Lazy,
    };
    let loaded = atenia_engine::cli::ui::load_model(&a.model, when)?;
    // Tokenized before the budget measures the fixed overhead (which counts the tokenizer).
    let ids = match (&a.ids, &a.prompt) {
        (Some(ids), _) => ids.clone(),
        (None, Some(p)) => loaded.tokenizer()?.encode(p, true)?,
        (None, None) => return Err(Error::argument("--prompt", "give --prompt or --ids")),
    };
    atenia_engine::exec::decoder::set_memory_budget(&loaded.model, a.memory_budget);
    if ids.is_empty() {
        return Err(Error::argument("--ids", "no tokens to run"));
    }
    let mut session = Session::new(&loaded.model, &rt, ids.len())?;
    let mut logits = Vec::new();
    session.forward(&ids, Logits::All, &mut logits)?;
    write_logits(&a.out, &ids, &logits, loaded.model.config.vocab)?;
    tracing::info!(
        "wrote {} positions × {} logits to {}",
        ids.len(),
        loaded.model.config.vocab,
        a.out.display()
    );
    Ok(())
}
