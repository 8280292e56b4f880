//! What a conversion is asked to do ([`Options`], [`OutDtype`]) and what it
//! did ([`Report`]).

use std::path::PathBuf;

use safetensors::Dtype;

use crate::family::spec::FamilySpec;

/// The element type of the written weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutDtype {
    /// Exact: every dequantized weight is an f32.
    F32,
    /// Half the size; each weight rounded to the nearest bf16 (ties to even).
    Bf16,
}

impl OutDtype {
    /// The name safetensors gives the type (`F32`, `BF16`).
    pub(crate) fn safetensors_name(self) -> &'static str {
        match self {
            OutDtype::F32 => "F32",
            OutDtype::Bf16 => "BF16",
        }
    }

    /// The type as the `safetensors` crate names it.
    pub(crate) fn safetensors_dtype(self) -> Dtype {
        match self {
            OutDtype::F32 => Dtype::F32,
            OutDtype::Bf16 => Dtype::BF16,
        }
    }

    /// The name config.json's `torch_dtype` gives the type.
    pub(crate) fn torch_name(self) -> &'static str {
        match self {
            OutDtype::F32 => "float32",
            OutDtype::Bf16 => "bfloat16",
        }
    }

    /// Bytes per weight.
    pub(crate) fn bytes(self) -> usize {
        match self {
            OutDtype::F32 => 4,
            OutDtype::Bf16 => 2,
        }
    }
}

/// Conversion settings.
#[derive(Clone, Debug)]
pub struct Options {
    pub dtype: OutDtype,
    /// The family spec; the built-in one for the file's architecture when `None`.
    pub spec: Option<FamilySpec>,
    /// Write into a directory that already holds files (they are overwritten).
    pub force: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            dtype: OutDtype::F32,
            spec: None,
            force: false,
        }
    }
}

/// What a conversion did.
#[derive(Clone, Debug)]
pub struct Report {
    pub out: PathBuf,
    pub family: String,
    pub gguf_architecture: String,
    /// The `architectures` entry written to config.json.
    pub hf_architecture: String,
    pub tensors: usize,
    pub parameters: usize,
    pub weight_bytes: u64,
    pub tied: bool,
    /// Tensors whose Q/K rows were un-permuted.
    pub unpermuted: Vec<String>,
    /// Norm tensors shifted back by the norm offset, and by how much.
    pub shifted: Vec<String>,
    pub norm_shift: f64,
    /// Things the converted checkpoint differs in or could not carry.
    pub warnings: Vec<String>,
    /// The files written, in the order written.
    pub files: Vec<PathBuf>,
}
