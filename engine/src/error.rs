//! The engine's one error type. Every variant carries what happened; `code()`
//! gives the stable `E-…` code, `hint()` says how to fix it and `exit_code()`
//! the process exit status the binaries use (0 ok, 1 environment, 2 bad input
//! or bad file, 3 runtime failure).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A GGUF file is malformed: `field` names the part of the file at fault.
    #[error("malformed GGUF file: {field}: {reason}")]
    Gguf { field: String, reason: String },
    /// A safetensors file is malformed.
    #[error("malformed safetensors file: {field}: {reason}")]
    Safetensors { field: String, reason: String },
    /// A model configuration (GGUF metadata or config.json) is missing a value or holds a bad one.
    #[error("bad model configuration: {key}: {reason}")]
    Config { key: String, reason: String },
    /// An adapter spec (YAML) is malformed or inconsistent.
    #[error("bad adapter spec: {spec}: {reason}")]
    Spec { spec: String, reason: String },
    /// The model's tensors do not fit the configuration (missing, wrong shape or type).
    #[error("bad model weights: {tensor}: {reason}")]
    Weights { tensor: String, reason: String },
    /// The tokenizer could not be built or used.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template could not be parsed or rendered.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// The model or a feature of it is understood but deliberately not supported.
    #[error("unsupported: {what}: {reason}")]
    Unsupported { what: String, reason: String },
    /// A user-supplied argument is invalid.
    #[error("invalid argument {arg}: {reason}")]
    Argument { arg: String, reason: String },
    /// Memory or another resource of the machine is insufficient.
    #[error("not enough {resource}: {reason}")]
    Resource { resource: String, reason: String },
    /// A failure while running the model.
    #[error("runtime failure: {0}")]
    Runtime(String),
}

impl Error {
    pub fn gguf(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Gguf {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn safetensors(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Safetensors {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub fn spec(spec: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Spec {
            spec: spec.into(),
            reason: reason.into(),
        }
    }

    pub fn weights(tensor: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Weights {
            tensor: tensor.into(),
            reason: reason.into(),
        }
    }

    pub fn unsupported(what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Unsupported {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub fn argument(arg: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Argument {
            arg: arg.into(),
            reason: reason.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The stable error code printed as `error[E-CODE]`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Io { .. } => "E-IO",
            Error::Gguf { .. } => "E-GGUF",
            Error::Safetensors { .. } => "E-SAFETENSORS",
            Error::Config { .. } => "E-CONFIG",
            Error::Spec { .. } => "E-SPEC",
            Error::Weights { .. } => "E-WEIGHTS",
            Error::Tokenizer(_) => "E-TOKENIZER",
            Error::ChatTemplate(_) => "E-TEMPLATE",
            Error::Unsupported { .. } => "E-UNSUPPORTED",
            Error::Argument { .. } => "E-ARG",
            Error::Resource { .. } => "E-RESOURCE",
            Error::Runtime(_) => "E-RUNTIME",
        }
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Resource { .. } => 1,
            Error::Runtime(_) => 3,
            Error::Io { source, .. } if source.kind() != std::io::ErrorKind::NotFound => 1,
            _ => 2,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Error::Io { .. } => "check that the path exists and is readable",
            Error::Gguf { .. } => {
                "the file is truncated, corrupt or not GGUF; download it again or re-export it with llama.cpp's convert_hf_to_gguf.py"
            }
            Error::Safetensors { .. } => {
                "the file is truncated, corrupt or not safetensors; re-save the checkpoint"
            }
            Error::Config { .. } => {
                "the model's configuration is incomplete or inconsistent; compare it with the published config of the model"
            }
            Error::Spec { .. } => {
                "fix the spec file; every field is described in engine/specs/README.md (`atenia inspect MODEL` drafts one)"
            }
            Error::Weights { .. } => {
                "the weights do not match the configuration; check that the checkpoint is complete and of the declared architecture"
            }
            Error::Tokenizer(_) => "check the tokenizer metadata (tokenizer.ggml.* keys or tokenizer.json)",
            Error::ChatTemplate(_) => "run without --chat, or fix the template stored with the model",
            Error::Unsupported { .. } => "run `atenia capabilities` to see what this engine supports",
            Error::Argument { .. } => "see `--help` for the accepted values",
            Error::Resource { .. } => "free memory or lower the requested sizes (context, threads)",
            Error::Runtime(_) => "this is likely a bug; please report it with the command you ran",
        }
    }
}
