//! Opens a model path: picks the format, builds the model plan and the tokenizer.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::model::Model;
use crate::tokenizer::Tokenizer;

/// A model ready to run, with its tokenizer.
pub struct Loaded {
    pub path: PathBuf,
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// Metadata worth showing (name, quantization), for reports.
    pub name: String,
}

/// Opens a model: a GGUF file, or a Hugging Face checkpoint directory
/// (config.json, safetensors weights, tokenizer.json).
pub fn load(path: &Path) -> Result<Loaded> {
    if path.is_dir() {
        return load_hf_dir(path);
    }
    let file = GgufFile::open(path)?;
    let model = Model::from_gguf(&file, file.storage())?;
    let tokenizer = Tokenizer::from_gguf(&file.metadata)?;
    let name = file
        .metadata
        .str("general.name")?
        .map(str::to_string)
        .unwrap_or_else(|| file_name(path));
    Ok(Loaded {
        path: path.to_path_buf(),
        model,
        tokenizer,
        name,
    })
}

fn file_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn load_hf_dir(dir: &Path) -> Result<Loaded> {
    let model = Model::from_hf_dir(dir)?;
    let tj = dir.join("tokenizer.json");
    if !tj.is_file() {
        return Err(Error::Tokenizer(format!(
            "{} has no tokenizer.json; a checkpoint directory needs one to turn text into tokens",
            dir.display()
        )));
    }
    let tc = dir.join("tokenizer_config.json");
    let tokenizer = Tokenizer::from_tokenizer_json(&tj, tc.is_file().then_some(tc.as_path()))?;
    if tokenizer.vocab_size() > model.config.vocab {
        return Err(Error::Tokenizer(format!(
            "tokenizer.json has {} tokens but the embedding has only {} rows",
            tokenizer.vocab_size(),
            model.config.vocab
        )));
    }
    Ok(Loaded {
        path: dir.to_path_buf(),
        model,
        tokenizer,
        name: file_name(dir),
    })
}
