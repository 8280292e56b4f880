//! The one way in: [`open`] takes a path (a GGUF file or a Hugging Face
//! checkpoint directory), detects the format, reads the configuration and
//! chooses the family spec, checking that it reads the model. Nothing is bound
//! yet: [`Opened::model`] binds the weights, [`Opened::load`] gives a
//! [`Loaded`] model ready to run. GGUF and HF loading sit side by side behind
//! it (`Model::from_gguf_with_spec`, [`crate::model::hf`]).
//!
//! The tokenizer is built on first use ([`Loaded::tokenizer`]): a command that
//! only runs token ids (`atenia-harness logits --ids`, `compare`) works on a
//! checkpoint or GGUF file that has none, and never pays for building one
//! (Gemma 3's 262k-entry tokenizer keeps about 17 MiB, and its build peaks
//! near 56 MiB).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::family::spec::FamilySpec;
use crate::formats::gguf::{GgufFile, Metadata};
use crate::formats::storage::Storage;
use crate::model::hf;
use crate::model::types::Model;
use crate::text::tokenizer::Tokenizer;

/// A model's files as read from disk: the format detected and the
/// configuration parsed; no spec chosen and no weights bound.
pub enum Source {
    /// A GGUF file: its metadata and tensor table, the tensors mapped.
    Gguf(GgufFile),
    /// A Hugging Face checkpoint directory and its parsed config.json.
    Hf {
        dir: PathBuf,
        config: Map<String, Value>,
    },
}

impl Source {
    /// Reads `path`: a directory is a checkpoint (its config.json is read),
    /// anything else a GGUF file (its header and tables are parsed).
    pub fn read(path: &Path) -> Result<Source> {
        if path.is_dir() {
            Ok(Source::Hf {
                dir: path.to_path_buf(),
                config: hf::read_config(path)?,
            })
        } else {
            Source::read_gguf(path)
        }
    }

    /// Reads `path` as a GGUF file, whatever it is.
    pub fn read_gguf(path: &Path) -> Result<Source> {
        Ok(Source::Gguf(GgufFile::open(path)?))
    }

    /// `"gguf"` or `"hf"`.
    pub fn format(&self) -> &'static str {
        match self {
            Source::Gguf(_) => "gguf",
            Source::Hf { .. } => "hf",
        }
    }

    /// The built-in spec for the model's architecture (`general.architecture`
    /// of a GGUF file; `architectures`, else `model_type`, of a config.json).
    /// `flag`, when given, is the option that passes a spec of one's own, and
    /// a GGUF architecture no built-in spec reads is refused with that hint.
    pub fn builtin_spec(&self, flag: Option<&str>) -> Result<FamilySpec> {
        match self {
            Source::Gguf(file) => {
                let arch = file.architecture()?;
                FamilySpec::for_gguf_architecture(arch).ok_or_else(|| {
                    Error::unsupported(
                        format!("architecture {arch:?}"),
                        match flag {
                            Some(flag) => format!(
                                "no built-in family spec reads it; write one (atenia inspect \
                                 drafts it) and pass {flag}"
                            ),
                            None => "no built-in family spec reads it".to_string(),
                        },
                    )
                })
            }
            Source::Hf { config, .. } => hf::spec_for(config),
        }
    }

    /// Checks that `spec`, given with the option `flag`, reads this model's
    /// architecture; the error says what to add to the spec.
    pub fn check_spec(&self, path: &Path, spec: &FamilySpec, flag: &str) -> Result<()> {
        match self {
            Source::Gguf(file) => {
                let arch = file.architecture()?;
                if !spec.gguf_architectures.iter().any(|a| a == arch) {
                    return Err(Error::argument(
                        flag,
                        format!(
                            "the {} spec reads general.architecture {:?}, but {} is {arch:?}; \
                             add {arch:?} to its gguf_architectures",
                            spec.name,
                            spec.gguf_architectures,
                            path.display()
                        ),
                    ));
                }
                Ok(())
            }
            Source::Hf { dir, config } => check_hf_spec(dir, config, spec, flag),
        }
    }
}

fn check_hf_spec(
    dir: &Path,
    config: &Map<String, Value>,
    spec: &FamilySpec,
    flag: &str,
) -> Result<()> {
    let hf = spec.hf.as_ref().ok_or_else(|| {
        Error::argument(
            flag,
            format!(
                "the {} spec has no `hf:` section, so it cannot read the checkpoint directory {}",
                spec.name,
                dir.display()
            ),
        )
    })?;
    let archs: Vec<String> = config
        .get("architectures")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let model_type = config.get("model_type").and_then(|v| v.as_str());
    let matches = if archs.is_empty() {
        model_type.is_some_and(|m| hf.model_types.iter().any(|t| t == m))
    } else {
        archs.iter().any(|a| hf.architectures.contains(a))
    };
    if !matches {
        return Err(Error::argument(
            flag,
            format!(
                "the {} spec reads architectures {:?} (model types {:?}), but config.json \
                 declares {:?} (model_type {:?}); add the architecture to hf.architectures",
                spec.name, hf.architectures, hf.model_types, archs, model_type
            ),
        ));
    }
    Ok(())
}

/// A model opened: its files read and its family spec chosen and checked.
pub struct Opened {
    pub path: PathBuf,
    pub source: Source,
    pub spec: FamilySpec,
}

/// Opens a model with the built-in spec for its architecture: a GGUF file,
/// or a Hugging Face checkpoint directory (config.json and safetensors
/// weights; tokenizer.json when text is to be tokenized).
pub fn open(path: &Path) -> Result<Opened> {
    Source::read(path)?.with_spec(path, None, None)
}

/// Opens a model with `spec` when one is given (passed with the option
/// `flag`, and checked against the model), else with the built-in one.
pub fn open_with_spec(path: &Path, spec: Option<FamilySpec>, flag: &str) -> Result<Opened> {
    Source::read(path)?.with_spec(path, spec, Some(flag))
}

/// [`open_with_spec`] for a path that must be a GGUF file.
pub fn open_gguf(path: &Path, spec: Option<FamilySpec>, flag: &str) -> Result<Opened> {
    Source::read_gguf(path)?.with_spec(path, spec, Some(flag))
}

impl Source {
    /// Chooses the spec (the given one, checked, or the built-in one).
    pub fn with_spec(
        self,
        path: &Path,
        spec: Option<FamilySpec>,
        flag: Option<&str>,
    ) -> Result<Opened> {
        let spec = match spec {
            Some(spec) => {
                self.check_spec(path, &spec, flag.unwrap_or("--spec"))?;
                spec
            }
            None => self.builtin_spec(flag)?,
        };
        Ok(Opened {
            path: path.to_path_buf(),
            source: self,
            spec,
        })
    }
}

impl Opened {
    /// `"gguf"` or `"hf"`.
    pub fn format(&self) -> &'static str {
        self.source.format()
    }

    /// The GGUF file, for a command that reads it further (convert).
    pub fn gguf(&self) -> Result<&GgufFile> {
        match &self.source {
            Source::Gguf(file) => Ok(file),
            Source::Hf { dir, .. } => Err(Error::argument(
                "MODEL",
                format!(
                    "{} is a checkpoint directory, not a GGUF file",
                    dir.display()
                ),
            )),
        }
    }

    /// Binds the weights with the spec: the model plan, ready for a session.
    pub fn model(&self) -> Result<Model> {
        match &self.source {
            Source::Gguf(file) => {
                Model::from_gguf_with_spec(file, file.storage(), self.spec.clone())
            }
            Source::Hf { dir, config } => hf::load_dir_with_spec(dir, config, self.spec.clone()),
        }
    }

    /// Builds the model's tokenizer now. A model without one gives
    /// [`Error::Tokenizer`], saying that commands taking token ids need none.
    pub fn tokenizer(&self, vocab: usize) -> Result<Tokenizer> {
        match &self.source {
            Source::Gguf(file) => gguf_tokenizer(&self.path, &file.metadata, &self.spec),
            Source::Hf { dir, .. } => hf_tokenizer(dir, vocab),
        }
    }

    /// Binds the weights and gives the model ready to run, building the
    /// tokenizer at the time `when` says.
    pub fn load(self, when: TokenizerLoad) -> Result<Loaded> {
        let model = self.model()?;
        let tokenizer = match when {
            TokenizerLoad::Lazy => OnceLock::new(),
            TokenizerLoad::Now => OnceLock::from(self.tokenizer(model.config.vocab)?),
        };
        let (name, source) = match self.source {
            Source::Gguf(file) => (
                file.metadata
                    .str("general.name")?
                    .map(str::to_string)
                    .unwrap_or_else(|| file_name(&self.path)),
                TokenizerFrom::Gguf(file.storage()),
            ),
            Source::Hf { dir, .. } => (file_name(&dir), TokenizerFrom::HfDir(dir)),
        };
        Ok(Loaded {
            path: self.path,
            model,
            name,
            tokenizer,
            source,
        })
    }
}

/// A model ready to run; its tokenizer is built when first asked for.
pub struct Loaded {
    pub path: PathBuf,
    pub model: Model,
    /// Metadata worth showing (name, quantization), for reports.
    pub name: String,
    tokenizer: OnceLock<Tokenizer>,
    source: TokenizerFrom,
}

/// Where the tokenizer comes from when it is first needed.
enum TokenizerFrom {
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
            TokenizerFrom::Gguf(storage) => {
                let (metadata, _) = crate::formats::gguf::parse_bytes(storage.bytes())?;
                gguf_tokenizer(&self.path, &metadata, &self.model.spec)
            }
            TokenizerFrom::HfDir(dir) => hf_tokenizer(dir, self.model.config.vocab),
        }
    }
}

fn hf_tokenizer(dir: &Path, vocab: usize) -> Result<Tokenizer> {
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
    let tokenizer = Tokenizer::from_tokenizer_json(&tj, tc.is_file().then_some(tc.as_path()))?;
    if tokenizer.vocab_size() > vocab {
        return Err(Error::Tokenizer(format!(
            "tokenizer.json has {} tokens but the embedding has only {} rows",
            tokenizer.vocab_size(),
            vocab
        )));
    }
    Ok(tokenizer)
}

/// The GGUF file's tokenizer, its SentencePiece shape from the spec the model
/// is loaded with (built-in or given).
fn gguf_tokenizer(path: &Path, metadata: &Metadata, spec: &FamilySpec) -> Result<Tokenizer> {
    if !metadata.contains("tokenizer.ggml.model") {
        return Err(Error::Tokenizer(format!(
            "{} has no tokenizer (tokenizer.ggml.model is missing), so text cannot be \
             turned into tokens; commands that take token ids need none \
             (atenia-harness logits --ids, compare, validate with an ids prompt file)",
            path.display()
        )));
    }
    Tokenizer::from_gguf_with_spec(metadata, spec)
}

/// When [`Opened::load`] builds the tokenizer.
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

/// Opens a model with its built-in spec and loads it, the tokenizer built on
/// first use: `open(path)?.load(TokenizerLoad::Lazy)`.
pub fn load(path: &Path) -> Result<Loaded> {
    open(path)?.load(TokenizerLoad::Lazy)
}

fn file_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(rel: &str) -> PathBuf {
        atenia_testkit::golden().join(rel)
    }

    #[test]
    fn open_detects_the_format_and_chooses_the_builtin_spec() {
        let g = open(&golden("gguf/llama/llama-Q8_0.gguf")).unwrap();
        assert_eq!((g.format(), g.spec.name.as_str()), ("gguf", "llama"));
        assert!(g.gguf().is_ok());
        let h = open(&golden("hf/llama-tied-f32")).unwrap();
        assert_eq!((h.format(), h.spec.name.as_str()), ("hf", "llama"));
        assert_eq!(h.gguf().map(|_| ()).unwrap_err().code(), "E-ARG");
        // Nothing is bound until asked: the same model either way.
        let m = h.model().unwrap();
        let loaded = h.load(TokenizerLoad::Lazy).unwrap();
        assert_eq!(m.config.vocab, loaded.model.config.vocab);
        assert_eq!(loaded.name, "llama-tied-f32");
    }

    #[test]
    fn a_given_spec_must_read_the_architecture() {
        let gemma = FamilySpec::for_gguf_architecture("gemma3").unwrap();
        let e = open_with_spec(&golden("hf/llama-tied-f32"), Some(gemma.clone()), "SPEC")
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.code(), "E-ARG");
        assert!(
            e.to_string()
                .contains("add the architecture to hf.architectures"),
            "{e}"
        );
        let e = open_gguf(&golden("gguf/llama/llama-Q8_0.gguf"), Some(gemma), "--spec")
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("--spec"), "{e}");
        assert!(
            e.to_string()
                .contains("add \"llama\" to its gguf_architectures"),
            "{e}"
        );
    }

    #[test]
    fn open_gguf_reads_a_directory_as_a_file_and_fails_as_it_did() {
        let e = open_gguf(&golden("hf/llama-tied-f32"), None, "--spec")
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.code(), "E-IO");
    }
}
