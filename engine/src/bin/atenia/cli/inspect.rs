//! `atenia inspect`: what a checkpoint holds, and a family spec for it — the
//! built-in one when its architecture has one, else a draft made from its
//! tensor names and hyperparameters, with what needs a human check marked.
//!
//! The reading and drafting live in the library: `family::inventory` and
//! `family::draft`.

use std::path::{Path, PathBuf};

use atenia_engine::family::draft::report;
use atenia_engine::family::inventory::{matching, summary, Inventory};
use atenia_engine::model::hf;
use atenia_engine::model::open::Source;
use atenia_engine::Result;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    atenia inspect SmolLM2-135M-Instruct.Q4_1.gguf          # the built-in llama spec, annotated\n  \
    atenia inspect new-model.gguf > new-family.yaml          # a draft spec for an unknown architecture\n  \
    atenia inspect ./checkpoint-dir --json                   # a JSON summary\n\n\
    Lines of a draft marked CHECK are guesses the file cannot settle; read them,\n\
    then try the spec with `atenia load new-family.yaml -m MODEL -p TEXT`.")]
pub struct Args {
    /// A GGUF file or a Hugging Face checkpoint directory
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    // --json prints a JSON summary (architecture, tensors by type,
    // hyperparameters, matching spec) instead of a spec.
    #[command(flatten)]
    pub json: atenia_engine::cli::args::JsonArgs,
}

/// What the GGUF file or checkpoint directory at `path` holds (read as every
/// command opens a model: [`Source::read`]).
fn read(path: &Path) -> Result<Inventory> {
    match Source::read(path)? {
        Source::Gguf(file) => Inventory::from_gguf(&file),
        Source::Hf { dir, config } => {
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
            Inventory::from_hf(name, config, || hf::open_weights(&dir))
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    a.json.check()?;
    let f = read(&a.path)?;
    let spec = matching(&f);
    if a.json.wanted() && a.json.emit(&summary(&a.path, &f, spec.as_ref()))? {
        return Ok(());
    }
    super::load::emit(&report(&a.path, &f, spec.as_ref()));
    Ok(())
}
