//! [`convert_gguf`]: a GGUF file to a Hugging Face checkpoint directory, step
//! by step: the spec, the tensors, config.json, model.safetensors, the
//! tokenizer files, and the check that the checkpoint loads back.

use std::path::Path;

use serde_json::Value;

use crate::convert::check::loads_back;
use crate::convert::config::{hf_config, write_json};
use crate::convert::options::{Options, Report};
use crate::convert::tensors::{select, Rows, Undo};
use crate::convert::weights::write_safetensors;
use crate::error::{Error, Result};
use crate::family::spec::{FamilySpec, HfFormat};
use crate::text::tokenizer::Tokenizer;

/// Converts a GGUF file to a Hugging Face checkpoint directory (config.json,
/// model.safetensors, tokenizer.json, tokenizer_config.json,
/// generation_config.json). `progress` receives one line per step.
pub fn convert_gguf(
    src: &Path,
    out: &Path,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<Report> {
    let opened = crate::model::open::open_gguf(src, opts.spec.clone(), "--spec")?;
    let file = opened.gguf()?;
    let arch = file.architecture()?.to_string();
    let (spec, hf) = spec_and_hf(&opened.spec)?;
    progress(&format!(
        "reading {} ({arch}, family {})",
        src.display(),
        spec.name
    ));
    let model = opened.model()?;

    // What to write, and nothing the engine would not read.
    let items = select(file, &model, &spec, &hf)?;
    let undo = Undo::between(&spec, &hf, &model)?;
    let has_bias = items.iter().any(|i| i.field.ends_with("_bias"));

    // The tokenizer (optional: a file without one still converts, with a warning).
    let mut warnings = vec![];
    let tok = match Tokenizer::from_gguf_with_spec(&file.metadata, &spec) {
        Ok(t) => {
            warnings.extend(t.warnings.iter().map(|w| format!("tokenizer: {w}")));
            Some(t)
        }
        Err(e) => {
            warnings.push(format!("no tokenizer written: {e}"));
            None
        }
    };
    let config = hf_config(file, &model, &hf, opts.dtype, has_bias, tok.as_ref())?;

    prepare_out(out, opts.force)?;
    let cfg_path = out.join("config.json");
    write_json(&cfg_path, &Value::Object(config))?;
    let st_path = out.join("model.safetensors");
    write_safetensors(&st_path, file.bytes(), &items, undo, opts.dtype, progress)?;
    let mut files = vec![cfg_path, st_path];
    if let Some(t) = &tok {
        files.extend(crate::convert::tokenizer::write_all(
            t,
            out,
            model.config.context_length,
        )?);
    }

    // The checkpoint must load back into the same plan.
    progress("checking that the checkpoint loads into the same plan");
    loads_back(out, &spec, &model, undo.unpermute)?;

    let parameters: usize = items.iter().map(|i| i.len()).sum();
    Ok(Report {
        out: out.to_path_buf(),
        family: spec.name.clone(),
        gguf_architecture: arch,
        hf_architecture: hf.architectures[0].clone(),
        tensors: items.len(),
        parameters,
        weight_bytes: (parameters * opts.dtype.bytes()) as u64,
        tied: model.weights.tied,
        unpermuted: items
            .iter()
            .filter(|i| undo.rows(i) != Rows::Keep)
            .map(|i| i.hf.clone())
            .collect(),
        shifted: items
            .iter()
            .filter(|i| undo.shifts(i))
            .map(|i| i.hf.clone())
            .collect(),
        norm_shift: undo.shift,
        warnings,
        files,
    })
}

/// The spec [`crate::model::open`] chose (the one given, checked against the
/// file's architecture, or the built-in one), validated, and its Hugging Face
/// format.
fn spec_and_hf(spec: &FamilySpec) -> Result<(FamilySpec, HfFormat)> {
    spec.validate()?;
    let hf = spec.hf.clone().ok_or_else(|| {
        Error::unsupported(
            format!("family {}", spec.name),
            "its spec has no `hf:` section, so there are no Hugging Face names to write",
        )
    })?;
    Ok((spec.clone(), hf))
}

/// Creates the output directory; one that holds files needs `force`.
fn prepare_out(out: &Path, force: bool) -> Result<()> {
    if out.exists() {
        if !out.is_dir() {
            return Err(Error::argument(
                "--out",
                format!("{} exists and is not a directory", out.display()),
            ));
        }
        let non_empty = std::fs::read_dir(out)
            .map_err(|e| Error::io(out, e))?
            .next()
            .is_some();
        if non_empty && !force {
            return Err(Error::argument(
                "--out",
                format!(
                    "{} is not empty; choose a new directory or pass --force to overwrite its files",
                    out.display()
                ),
            ));
        }
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Error::argument("--out", format!("cannot write to {}: {e}", out.display())))?;
    // A shard index left from an earlier checkpoint would shadow model.safetensors.
    let stale = out.join("model.safetensors.index.json");
    if stale.exists() {
        std::fs::remove_file(&stale).map_err(|e| Error::io(&stale, e))?;
    }
    Ok(())
}
