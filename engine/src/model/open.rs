//! Opens a model path: picks the format and builds the model plan. The
//! tokenizer is built on first use ([`Loaded::tokenizer`]): a command that
//! only runs token ids (`atenia-harness logits --ids`, `compare`) works on a
//! checkpoint or GGUF file that has none, and never pays for building one
//! (Gemma 3's 262k-entry tokenizer costs about 170 MiB).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::formats::gguf::{GgufFile, Metadata};
use crate::formats::storage::Storage;
use crate::model::types::Model;
use crate::text::tokenizer::Tokenizer;

/// A model ready to run; its tokenizer is built when first asked for.
pub struct Loaded {
    pub path: PathBuf,
    pub model: Model,
    /// Metadata worth showing (name, quantization), for reports.
    pub name: String,
    tokenizer: OnceLock<Tokenizer>,
    source: TokenizerSource,
}

/// Where the tokenizer comes from when it is first needed.
enum TokenizerSource {
    /// The GGUF file's `tokenizer.ggml.*` metadata, parsed again from the
    /// mapped file the model's weights already hold (so an unused tokenizer
    /// costs no memory at all).
    Gguf(Arc<dyn Storage>),
    /// A checkpoint directory's tokenizer.json (and tokenizer_config.json).
    HfDir(PathBuf),
}

impl Loaded {
    /// The model's tokenizer, built on the first call and kept. A model
    /// without one (a checkpoint directory with no tokenizer.json, a GGUF
    /// file with no `tokenizer.ggml.*` keys) gives [`Error::Tokenizer`] here,
    /// at the first command step that turns text into tokens or back, and not
    /// when the model is loaded. A failed build is not kept: each call tries
    /// again and gives the same error.
    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        if let Some(t) = self.tokenizer.get() {
            return Ok(t);
        }
        let built = self.build_tokenizer()?;
        // Two threads may race to build it; the first one's is kept.
        Ok(self.tokenizer.get_or_init(|| built))
    }

    /// Whether the tokenizer has been built (by a call to [`Loaded::tokenizer`]).
    pub fn tokenizer_built(&self) -> bool {
        self.tokenizer.get().is_some()
    }

    fn build_tokenizer(&self) -> Result<Tokenizer> {
        match &self.source {
            TokenizerSource::Gguf(storage) => {
                let (metadata, _) = crate::formats::gguf::parse_bytes(storage.bytes())?;
                gguf_tokenizer(&self.path, &metadata)
            }
            TokenizerSource::HfDir(dir) => {
                let tj = dir.join("tokenizer.json");
                if !tj.is_file() {
                    return Err(Error::Tokenizer(format!(
                        "{} has no tokenizer.json, so text cannot be turned into tokens; commands \
                         that take token ids need none (atenia-harness logits --ids, compare, \
                         validate with an ids prompt file)",
                        dir.display()
                    )));
                }
                let tc = dir.join("tokenizer_config.json");
                let tokenizer =
                    Tokenizer::from_tokenizer_json(&tj, tc.is_file().then_some(tc.as_path()))?;
                if tokenizer.vocab_size() > self.model.config.vocab {
                    return Err(Error::Tokenizer(format!(
                        "tokenizer.json has {} tokens but the embedding has only {} rows",
                        tokenizer.vocab_size(),
                        self.model.config.vocab
                    )));
                }
                Ok(tokenizer)
            }
        }
    }
}

fn gguf_tokenizer(path: &Path, metadata: &Metadata) -> Result<Tokenizer> {
    if !metadata.contains("tokenizer.ggml.model") {
        return Err(Error::Tokenizer(format!(
            "{} has no tokenizer (tokenizer.ggml.model is missing), so text cannot be \
             turned into tokens; commands that take token ids need none \
             (atenia-harness logits --ids, compare, validate with an ids prompt file)",
            path.display()
        )));
    }
    Tokenizer::from_gguf(metadata)
}

/// When [`load_with`] builds the tokenizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerLoad {
    /// On first use ([`Loaded::tokenizer`]): a command that only runs token
    /// ids never builds it, and a model without one loads.
    Lazy,
    /// While loading, for a command that tokenizes text first thing: a GGUF
    /// file's metadata is then parsed once, not again at first use, and the
    /// process's memory peak is what it was when loading always built it. A
    /// model without a tokenizer fails to load, with [`Error::Tokenizer`].
    Now,
}

/// Opens a model: a GGUF file, or a Hugging Face checkpoint directory
/// (config.json and safetensors weights; tokenizer.json when text is to be
/// tokenized). The tokenizer is not built here: see [`Loaded::tokenizer`].
pub fn load(path: &Path) -> Result<Loaded> {
    load_with(path, TokenizerLoad::Lazy)
}

/// [`load`], building the tokenizer at the time `when` says.
pub fn load_with(path: &Path, when: TokenizerLoad) -> Result<Loaded> {
    if path.is_dir() {
        let loaded = load_hf_dir(path)?;
        if when == TokenizerLoad::Now {
            loaded.tokenizer()?;
        }
        return Ok(loaded);
    }
    let file = GgufFile::open(path)?;
    let model = Model::from_gguf(&file, file.storage())?;
    let tokenizer = match when {
        TokenizerLoad::Lazy => OnceLock::new(),
        TokenizerLoad::Now => OnceLock::from(gguf_tokenizer(path, &file.metadata)?),
    };
    let name = file
        .metadata
        .str("general.name")?
        .map(str::to_string)
        .unwrap_or_else(|| file_name(path));
    Ok(Loaded {
        path: path.to_path_buf(),
        model,
        name,
        tokenizer,
        source: TokenizerSource::Gguf(file.storage()),
    })
}

fn file_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn load_hf_dir(dir: &Path) -> Result<Loaded> {
    let model = Model::from_hf_dir(dir)?;
    Ok(Loaded {
        path: dir.to_path_buf(),
        model,
        name: file_name(dir),
        tokenizer: OnceLock::new(),
        source: TokenizerSource::HfDir(dir.to_path_buf()),
    })
}
