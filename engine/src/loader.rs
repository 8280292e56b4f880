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

/// Opens a GGUF file.
pub fn load(path: &Path) -> Result<Loaded> {
    if path.is_dir() {
        return Err(Error::unsupported(
            format!("{}", path.display()),
            "Hugging Face checkpoint directories are not supported yet; pass a .gguf file",
        ));
    }
    let file = GgufFile::open(path)?;
    let model = Model::from_gguf(&file, file.storage())?;
    let tokenizer = Tokenizer::from_gguf(&file.metadata)?;
    let name = file
        .metadata
        .str("general.name")?
        .map(str::to_string)
        .unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    Ok(Loaded {
        path: path.to_path_buf(),
        model,
        tokenizer,
        name,
    })
}
