//! `atenia-harness compare`: the engine against an outside reference file.

use serde::Serialize;

use crate::engine_run::{self, Path};
use crate::metrics::{compare_position, Band, PositionMetrics};
use crate::reference_file::LogitsFile;
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::Model;
use atenia_engine::{Error, Result};

#[derive(Debug, Serialize)]
pub struct CompareReport {
    pub path: Path,
    pub band: Band,
    /// Positions whose logits were compared.
    pub positions: Vec<usize>,
    pub max_abs_diff: f64,
    pub max_rel_l2: f64,
    pub max_kl: f64,
    /// Positions where the engine's argmax equals the reference's (logit rows
    /// and the optional per-position `argmax` together).
    pub argmax_match: usize,
    pub argmax_total: usize,
    pub per_position: Vec<PositionMetrics>,
    /// Why the gate failed; empty when it holds.
    pub failures: Vec<String>,
    pub passed: bool,
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

pub fn compare(
    model: &Model,
    rt: &Runtime,
    reference: &LogitsFile,
    path: Path,
    band: Band,
) -> Result<CompareReport> {
    let vocab = model.config.vocab;
    if reference.vocab != vocab {
        return Err(Error::argument(
            "--reference",
            format!(
                "holds {} logits per position but the model's vocabulary is {vocab}",
                reference.vocab
            ),
        ));
    }
    let ids = &reference.input_ids;
    let logits = engine_run::logits(model, rt, ids, path)?;
    let row = |p: usize| &logits[p * vocab..(p + 1) * vocab];
    let mut per_position = vec![];
    let mut failures = vec![];
    let mut argmax_match = 0;
    let mut argmax_total = 0;
    for (r, &p) in reference.logits.iter().zip(&reference.positions) {
        let e: Vec<f64> = row(p).iter().map(|&v| v as f64).collect();
        let m = compare_position(p, &e, r);
        if let Err(why) = band.check(&m) {
            failures.push(why);
        }
        per_position.push(m);
    }
    match &reference.argmax {
        Some(am) => {
            for (p, &want) in am.iter().enumerate() {
                argmax_total += 1;
                let got = argmax(row(p));
                if got == want {
                    argmax_match += 1;
                } else if !per_position
                    .iter()
                    .any(|m| m.position == p && band.check(m).is_ok())
                {
                    failures.push(format!("position {p}: argmax {got} ≠ reference {want}"));
                }
            }
        }
        None => {
            argmax_total = per_position.len();
            argmax_match = per_position.iter().filter(|m| m.argmax_equal).count();
        }
    }
    let fold = |f: fn(&PositionMetrics) -> f64| per_position.iter().map(f).fold(0.0, f64::max);
    Ok(CompareReport {
        path,
        positions: reference.positions.clone(),
        max_abs_diff: fold(|m| m.max_abs_diff),
        max_rel_l2: fold(|m| m.rel_l2),
        max_kl: fold(|m| m.kl),
        argmax_match,
        argmax_total,
        passed: failures.is_empty(),
        failures,
        per_position,
        band,
    })
}
