//! Which tensors a converted checkpoint holds, under which names, and what is
//! undone in each before it is written (Q/K rows un-permuted, norm weights
//! shifted).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::family::roles::{TensorNames, TensorRole};
use crate::family::spec::{FamilySpec, HfFormat};
use crate::formats::ggml_type::GgmlType;
use crate::formats::gguf::GgufFile;
use crate::kernels::rope::RopeStyle;
use crate::model::types::Model;

/// One tensor to write.
pub(crate) struct Item {
    pub(crate) gguf: String,
    pub(crate) hf: String,
    pub(crate) field: &'static str,
    pub(crate) dtype: GgmlType,
    pub(crate) shape: Vec<usize>,
    pub(crate) offset: usize,
    pub(crate) size: usize,
}

impl Item {
    /// Elements.
    pub(crate) fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// `(rows, cols)`: the last dimension is a row.
    pub(crate) fn rows_cols(&self) -> (usize, usize) {
        let cols = *self.shape.last().unwrap_or(&1);
        (self.len() / cols.max(1), cols)
    }

    /// Bytes of one row in the file; the rows must fill the tensor's bytes.
    pub(crate) fn row_bytes(&self) -> Result<usize> {
        let (rows, cols) = self.rows_cols();
        let row_bytes = self
            .dtype
            .row_bytes(cols)
            .ok_or_else(|| Error::weights(&self.gguf, "rows are not whole blocks"))?;
        if row_bytes * rows != self.size {
            return Err(Error::weights(&self.gguf, "size does not match its shape"));
        }
        Ok(row_bytes)
    }
}

/// The `(field, gguf name, hf name)` triples the engine reads for this model,
/// mirroring what the weight binding reads (see `Model::bind`).
fn read_set(
    file: &GgufFile,
    model: &Model,
    g: &TensorNames,
    h: &TensorNames,
) -> Result<Vec<(&'static str, String, String)>> {
    let mut out = vec![];
    let has = |n: &str| file.tensor(n).is_some();
    let mut push = |role: TensorRole, layer: Option<usize>| {
        let sub = |s: &str| match layer {
            Some(i) => s.replace("{i}", &i.to_string()),
            None => s.to_string(),
        };
        out.push((role.key(), sub(g.get(role)), sub(h.get(role))));
    };
    use TensorRole as R;
    push(R::Embed, None);
    if !model.weights.tied {
        push(R::Output, None);
    }
    let spec = &model.spec;
    for i in 0..model.config.n_layers {
        let n = |r: TensorRole| g.layer(r, i);
        push(R::AttnNorm, Some(i));
        if !has(&n(R::Q)) && has(&n(R::Qkv)) {
            push(R::Qkv, Some(i));
        } else {
            push(R::Q, Some(i));
            push(R::K, Some(i));
            push(R::V, Some(i));
        }
        push(R::O, Some(i));
        for r in [R::QBias, R::KBias, R::VBias, R::QNorm, R::KNorm] {
            if has(&n(r)) {
                push(r, Some(i));
            }
        }
        if spec.post_norms {
            push(R::PostAttnNorm, Some(i));
            push(R::PostFfnNorm, Some(i));
        }
        push(R::FfnNorm, Some(i));
        if !spec.fused_gate_up {
            push(R::Gate, Some(i));
        }
        push(R::Up, Some(i));
        push(R::Down, Some(i));
    }
    push(R::FinalNorm, None);
    Ok(out)
}

/// Rows of one head, un-permuted: llama.cpp wrote HF row `h·d + j·d/2 + r` of
/// each head at row `h·d + 2r + j`; this puts it back.
fn unpermute_rows(data: &mut [f32], rows: usize, cols: usize, heads: usize) -> Result<()> {
    if heads == 0 || !rows.is_multiple_of(heads) || !(rows / heads).is_multiple_of(2) {
        return Err(Error::weights(
            "q/k",
            format!("{rows} rows do not split into {heads} heads of an even size"),
        ));
    }
    let d = rows / heads;
    let src = data.to_vec();
    for h in 0..heads {
        for r in 0..d / 2 {
            for j in 0..2 {
                let from = h * d + 2 * r + j;
                let to = h * d + j * (d / 2) + r;
                data[to * cols..(to + 1) * cols]
                    .copy_from_slice(&src[from * cols..(from + 1) * cols]);
            }
        }
    }
    Ok(())
}

/// The tensors to write, in the order the engine reads them: every one the
/// engine reads, each under its own Hugging Face name, and an error for a
/// tensor of the file the engine would not read.
pub(crate) fn select(
    file: &GgufFile,
    model: &Model,
    spec: &FamilySpec,
    hf: &HfFormat,
) -> Result<Vec<Item>> {
    let triples = read_set(file, model, &spec.tensors, &hf.tensors)?;
    let mut items = Vec::with_capacity(triples.len());
    let mut seen_hf = BTreeMap::new();
    for (field, g, h) in &triples {
        let info = file
            .tensor(g)
            .ok_or_else(|| Error::weights(g, "missing from the file"))?;
        if let Some(prev) = seen_hf.insert(h.clone(), g.clone()) {
            return Err(Error::unsupported(
                format!("tensor {h}"),
                format!("both {prev} and {g} would be written under this name"),
            ));
        }
        items.push(Item {
            gguf: g.clone(),
            hf: h.clone(),
            field,
            dtype: info.dtype,
            shape: info.shape(),
            offset: info.offset,
            size: info.size,
        });
    }
    let read: BTreeSet<&str> = items.iter().map(|i| i.gguf.as_str()).collect();
    let extra: Vec<&str> = file
        .tensors
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| !read.contains(n))
        .collect();
    if !extra.is_empty() {
        let shown: Vec<&str> = extra.iter().take(5).copied().collect();
        return Err(Error::unsupported(
            format!("tensor {}", extra[0]),
            format!(
                "the file holds {} tensor(s) the {} spec does not read ({}); the engine runs \
                 without them, and a checkpoint without them would be a different model",
                extra.len(),
                spec.name,
                shown.join(", ")
            ),
        ));
    }
    Ok(items)
}

/// What is undone in the weights: llama.cpp's Q/K row permutation and the
/// norm weight offset.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Undo {
    /// Q/K rows are un-permuted (interleaved GGUF pairs to half pairs).
    pub(crate) unpermute: bool,
    /// Added to every norm weight.
    pub(crate) shift: f64,
    n_heads: usize,
    n_kv_heads: usize,
    q_dim: usize,
    kv_dim: usize,
}

/// What is done to one tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rows {
    Keep,
    /// Un-permuted in heads of this many.
    Heads(usize),
    /// A fused qkv matrix: its Q and K parts are un-permuted.
    Qkv,
}

impl Undo {
    /// What the spec's GGUF and Hugging Face formats differ in; an error for
    /// what the converter cannot undo.
    pub(crate) fn between(spec: &FamilySpec, hf: &HfFormat, model: &Model) -> Result<Undo> {
        let c = &model.config;
        let unpermute =
            spec.rope_style == RopeStyle::Interleaved && hf.rope_style == RopeStyle::Half;
        if unpermute && c.ropes.iter().any(|r| r.rotary_dim != c.head_dim) {
            return Err(Error::unsupported(
                "partial rotary embedding",
                "un-permuting Q/K rows for a rotary dimension below the head size is not implemented",
            ));
        }
        if !unpermute && spec.rope_style != hf.rope_style {
            return Err(Error::unsupported(
                format!("rope styles {:?} -> {:?}", spec.rope_style, hf.rope_style),
                "only interleaved GGUF rows to half-paired Hugging Face rows are converted",
            ));
        }
        Ok(Undo {
            unpermute,
            shift: spec.norm_weight_offset - hf.norm_weight_offset,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            q_dim: c.q_dim(),
            kv_dim: c.kv_dim(),
        })
    }

    /// How the rows of this tensor are un-permuted.
    pub(crate) fn rows(&self, it: &Item) -> Rows {
        if !self.unpermute {
            return Rows::Keep;
        }
        let heads = |f: &str| match f {
            "q" | "q_bias" => Some(self.n_heads),
            "k" | "k_bias" => Some(self.n_kv_heads),
            _ => None,
        };
        if let Some(h) = heads(it.field) {
            Rows::Heads(h)
        } else if it.field == "qkv" {
            Rows::Qkv
        } else {
            Rows::Keep
        }
    }

    /// Whether this tensor is shifted by [`Undo::shift`].
    pub(crate) fn shifts(&self, it: &Item) -> bool {
        self.shift != 0.0 && TensorRole::from_key(it.field).is_some_and(TensorRole::is_norm)
    }

    /// Undoes in `buf` (the tensor's dequantized weights) what this tensor
    /// needs; returns the note for its progress line.
    pub(crate) fn apply(&self, it: &Item, buf: &mut [f32]) -> Result<String> {
        let n = it.len();
        let (rows, cols) = it.rows_cols();
        let mut note = String::new();
        match self.rows(it) {
            Rows::Keep => {}
            Rows::Heads(h) => {
                let (r, cc) = if it.shape.len() == 1 {
                    (n, 1)
                } else {
                    (rows, cols)
                };
                unpermute_rows(buf, r, cc, h)?;
                note.push_str(", rows un-permuted");
            }
            Rows::Qkv => {
                let (qd, kd) = (self.q_dim, self.kv_dim);
                unpermute_rows(&mut buf[..qd * cols], qd, cols, self.n_heads)?;
                unpermute_rows(
                    &mut buf[qd * cols..(qd + kd) * cols],
                    kd,
                    cols,
                    self.n_kv_heads,
                )?;
                note.push_str(", q/k rows un-permuted");
            }
        }
        if self.shifts(it) {
            let shift = self.shift;
            for x in buf.iter_mut() {
                *x = (*x as f64 + shift) as f32;
            }
            note.push_str(&format!(", {shift:+} (norm offset)"));
        }
        Ok(note)
    }
}
