//! `atenia-harness validate`: the engine against the float64 reference on a
//! prompt set, on both paths (one-pass prefill, and token-by-token decode
//! through the KV cache), position by position and layer by layer.
//!
//! The report's JSON schema is documented in docs/validate-report.md; its
//! version is [`SCHEMA`].

use atenia_engine::exec::digest::{combined_sha256, logits_sha256};
use serde::Serialize;

use crate::engine_run::{self, Path};
use crate::metrics::{compare_position, Band, PositionMetrics};
use crate::prompts::Prompt;
use atenia_engine::exec::decoder::{Logits, Session};
use atenia_engine::exec::sampler::argmax;
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::open::Loaded;
use atenia_engine::model::Model;
use atenia_engine::text::tokenizer::Tokenizer;
use atenia_engine::Result;
use atenia_references::Streaming;

pub const SCHEMA: &str = "atenia.validate/1";

/// Edges of the logit-error histogram (|engine − reference|); bin i counts
/// errors in `[EDGES[i-1], EDGES[i])`, the first bin everything below 1e-9
/// (exact included), the last everything from 1e-3 up.
pub const HISTOGRAM_EDGES: [f64; 7] = [1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3];

#[derive(Clone, Debug)]
pub struct Options {
    /// Greedy tokens generated after each prompt (positions checked along the engine's path).
    pub gen_tokens: usize,
    pub band: Band,
    /// Also run the bfloat16 emulation ([`atenia_references::forward_bf16`])
    /// on each prompt's sequence and report how far it lands from float64.
    pub bf16: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct PathReport {
    pub path: Path,
    pub max_abs_diff: f64,
    pub max_rel_l2: f64,
    pub max_kl: f64,
    pub argmax_match: usize,
    pub argmax_total: usize,
    pub min_top5_overlap: usize,
    pub per_position: Vec<PositionMetrics>,
    pub failures: Vec<String>,
    pub passed: bool,
}

/// How far a bfloat16 computation of the same model (PyTorch-style, emulated
/// by [`atenia_references::forward_bf16`]) lands from the float64 reference,
/// over the same sequence and positions as the engine.
#[derive(Clone, Debug, Serialize)]
pub struct Bf16Report {
    /// Max |bf16 − reference| over every logit of every position.
    pub max_abs_diff: f64,
    /// Positions where the bf16 argmax equals the reference's.
    pub argmax_match: usize,
    pub argmax_total: usize,
    /// Max |bf16 − reference| at each position, in position order.
    pub per_position_max_abs_diff: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerDrift {
    /// Layer index; `n_layers` is the final norm's output.
    pub layer: usize,
    /// Max |engine − reference| of the residual stream after this layer, over all positions.
    pub max_abs_diff: f64,
    /// ‖engine − reference‖₂ / ‖reference‖₂ over all positions.
    pub rel_l2: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PromptReport {
    pub name: String,
    pub text: String,
    pub chat: bool,
    pub prompt_ids: Vec<u32>,
    /// The engine's greedy continuation (decode path).
    pub engine_greedy_ids: Vec<u32>,
    /// The reference's argmax at the same positions (teacher-forced along the engine's path).
    pub reference_argmax_ids: Vec<u32>,
    /// Index of the first continuation token where the two differ.
    pub first_divergence: Option<usize>,
    pub engine_text: String,
    pub reference_text: String,
    pub prefill: PathReport,
    pub decode: PathReport,
    /// Prefill and decode logits equal bit for bit at every position.
    pub prefill_decode_bit_identical: bool,
    /// SHA-256 of the prefill logits of every position (little-endian f32
    /// bits): any two runs with equal digests computed the same bits.
    pub logits_sha256: String,
    /// The bfloat16 comparison; `None` (null) when [`Options::bf16`] is off.
    pub bf16: Option<Bf16Report>,
    pub layers: Vec<LayerDrift>,
    /// Counts per bin of [`HISTOGRAM_EDGES`] (prefill path, every logit).
    pub error_histogram: Vec<u64>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub path: String,
    pub name: String,
    pub architecture: String,
    pub family: String,
    pub layers: usize,
    pub vocab: usize,
    pub weight_types: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub prompts: usize,
    pub positions: usize,
    pub max_abs_diff_prefill: f64,
    pub max_abs_diff_decode: f64,
    pub max_kl: f64,
    pub argmax_match: usize,
    pub argmax_total: usize,
    pub prompts_on_reference_path: usize,
    pub all_prefill_decode_bit_identical: bool,
    /// SHA-256 of every prompt's prefill logits, prompts in order.
    pub logits_sha256: String,
    /// Max |bf16 − reference| over every prompt (`None` without [`Options::bf16`]).
    pub bf16_max_abs_diff: Option<f64>,
    /// Positions where the bf16 argmax equals the reference's, out of `argmax_total`.
    pub bf16_argmax_match: Option<usize>,
    /// `bf16_max_abs_diff` / the engine's max abs diff (prefill and decode):
    /// how many times closer to float64 the engine is than bfloat16. `None`
    /// without [`Options::bf16`], or when the engine's logits equal the reference's.
    pub closer_than_bf16: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub engine_version: &'static str,
    pub created_unix_s: u64,
    pub model: ModelInfo,
    pub isa: String,
    pub threads: usize,
    pub band: Band,
    pub gen_tokens: usize,
    pub summary: Summary,
    pub prompts: Vec<PromptReport>,
    pub failures: Vec<String>,
    pub passed: bool,
}

fn path_report(
    path: Path,
    engine: &[f32],
    reference: &[Vec<f64>],
    vocab: usize,
    band: &Band,
) -> PathReport {
    let mut per_position = vec![];
    let mut failures = vec![];
    for (p, r) in reference.iter().enumerate() {
        let e: Vec<f64> = engine[p * vocab..(p + 1) * vocab]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let m = compare_position(p, &e, r);
        if let Err(why) = band.check(&m) {
            failures.push(format!("{}: {why}", path.name()));
        }
        per_position.push(m);
    }
    let fold = |f: fn(&PositionMetrics) -> f64| per_position.iter().map(f).fold(0.0, f64::max);
    PathReport {
        path,
        max_abs_diff: fold(|m| m.max_abs_diff),
        max_rel_l2: fold(|m| m.rel_l2),
        max_kl: fold(|m| m.kl),
        argmax_match: per_position.iter().filter(|m| m.argmax_equal).count(),
        argmax_total: per_position.len(),
        min_top5_overlap: per_position
            .iter()
            .map(|m| m.top5_overlap)
            .min()
            .unwrap_or(5),
        passed: failures.is_empty(),
        failures,
        per_position,
    }
}

fn bf16_report(bf16: &[Vec<f64>], reference: &[Vec<f64>]) -> Bf16Report {
    let per_position: Vec<PositionMetrics> = bf16
        .iter()
        .zip(reference)
        .enumerate()
        .map(|(p, (b, r))| compare_position(p, b, r))
        .collect();
    Bf16Report {
        max_abs_diff: per_position
            .iter()
            .map(|m| m.max_abs_diff)
            .fold(0.0, f64::max),
        argmax_match: per_position.iter().filter(|m| m.argmax_equal).count(),
        argmax_total: per_position.len(),
        per_position_max_abs_diff: per_position.iter().map(|m| m.max_abs_diff).collect(),
    }
}

/// The token ids of a prompt as validate runs it: an ids prompt's ids as they
/// are (no tokenizer asked for), a text prompt tokenized, through the chat
/// template when the prompt asks and the model has one (`notes` says when it
/// has not).
pub fn prompt_ids(loaded: &Loaded, p: &Prompt, notes: &mut Vec<String>) -> Result<Vec<u32>> {
    if let Some(ids) = &p.ids {
        return Ok(ids.clone());
    }
    let tok = loaded.tokenizer()?;
    if p.chat {
        if tok.chat_template.is_some() {
            let msg = atenia_engine::text::chat_template::ChatMessage::new("user", p.text.clone());
            return tok.apply_chat_template(&[msg], true);
        }
        notes.push("the model has no chat template: the text was used as it is".into());
    }
    tok.encode(&p.text, true)
}

/// The tokenizer, which detokenizes the continuations and says where
/// generation ends. A text prompt has one already; an ids prompt runs
/// without one when the model has none (`notes` says so).
fn tokenizer_for<'a>(
    loaded: &'a Loaded,
    p: &Prompt,
    notes: &mut Vec<String>,
) -> Result<Option<&'a Tokenizer>> {
    match loaded.tokenizer() {
        Ok(t) => Ok(Some(t)),
        Err(e) if p.ids.is_some() => {
            notes.push(format!(
                "no tokenizer ({e}): the continuations are not detokenized (texts left empty) \
                 and generation does not stop at an end-of-generation token"
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The engine's greedy path through the KV cache: up to `gen_tokens` ids
/// after `prompt`, ending early at an end-of-generation token.
fn greedy_path(
    loaded: &Loaded,
    rt: &Runtime,
    prompt: &[u32],
    gen_tokens: usize,
    tok: Option<&Tokenizer>,
) -> Result<Vec<u32>> {
    let mut session = Session::new(&loaded.model, rt, prompt.len() + gen_tokens + 1)?;
    let mut out = Vec::new();
    session.forward(prompt, Logits::Last, &mut out)?;
    let mut greedy = vec![];
    for _ in 0..gen_tokens {
        let next = argmax(&out);
        if tok.is_some_and(|t| t.is_end_of_generation(next)) {
            break;
        }
        greedy.push(next);
        session.forward(&[next], Logits::Last, &mut out)?;
    }
    Ok(greedy)
}

/// Engine against reference at one layer: the largest difference and the
/// relative L2 error of the layer's residual stream.
fn layer_drift(layer: usize, e: &[f64], r: &[f64]) -> LayerDrift {
    let n = e.len().min(r.len());
    let (mut max, mut d2, mut r2) = (0f64, 0f64, 0f64);
    for i in 0..n {
        let d = e[i] - r[i];
        max = max.max(d.abs());
        d2 += d * d;
        r2 += r[i] * r[i];
    }
    LayerDrift {
        layer,
        max_abs_diff: max,
        rel_l2: if r2 > 0.0 { (d2 / r2).sqrt() } else { 0.0 },
    }
}

/// How the reference passes read the weights: like the engine, a model
/// under a memory budget is streamed with each chunk's pages released after
/// use (the reference then holds only its activations, the logits and one
/// chunk of weights); without a budget the pages stay mapped for the
/// engine's next session. The reference's numbers are the same either way.
pub fn reference_streaming(model: &Model) -> Streaming {
    match model.memory.budget() {
        Some(_) => Streaming::release(),
        None => Streaming::default(),
    }
}

/// Counts of |engine − reference| over every logit of every position
/// (`engine`: the prefill path's rows of `vocab`), per bin of [`HISTOGRAM_EDGES`].
fn error_histogram(engine: &[f32], reference: &[Vec<f64>], vocab: usize) -> Vec<u64> {
    let mut counts = vec![0u64; HISTOGRAM_EDGES.len() + 1];
    for (p, r) in reference.iter().enumerate() {
        for (e, rv) in engine[p * vocab..(p + 1) * vocab].iter().zip(r) {
            let d = (*e as f64 - rv).abs();
            let bin = HISTOGRAM_EDGES
                .iter()
                .position(|&edge| d < edge)
                .unwrap_or(HISTOGRAM_EDGES.len());
            counts[bin] += 1;
        }
    }
    counts
}

/// The reference's argmax at the `n` positions that predict the
/// continuation (the first ties win), from the prompt's last token on.
fn reference_argmax(reference: &[Vec<f64>], prompt_len: usize, n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| {
            let row = &reference[prompt_len - 1 + i];
            let mut best = 0;
            for (j, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = j;
                }
            }
            best as u32
        })
        .collect()
}

/// Validates one prompt.
pub fn validate_prompt(
    loaded: &Loaded,
    rt: &Runtime,
    p: &Prompt,
    opts: &Options,
) -> Result<PromptReport> {
    let model = &loaded.model;
    let vocab = model.config.vocab;
    let hid = model.config.hidden;
    let mut notes = vec![];
    let prompt = prompt_ids(loaded, p, &mut notes)?;
    if prompt.is_empty() {
        return Err(atenia_engine::Error::argument(
            "prompt",
            format!("{:?} gives no tokens", p.name),
        ));
    }
    let tok = tokenizer_for(loaded, p, &mut notes)?;
    let greedy = greedy_path(loaded, rt, &prompt, opts.gen_tokens, tok)?;
    let mut seq = prompt.clone();
    seq.extend_from_slice(&greedy);

    // Engine, both paths; the prefill run records the residual stream too.
    let mut eng_layers: Vec<Vec<f64>> = vec![];
    let prefill = {
        let mut obs = |_l: usize, rows: &[f64]| eng_layers.push(rows.to_vec());
        engine_run::logits_observed(model, rt, &seq, Path::Prefill, Some(&mut obs))?
    };
    debug_assert!(eng_layers.iter().all(|l| l.len() % hid == 0));
    let decode = engine_run::logits(model, rt, &seq, Path::Decode)?;

    // Reference, compared with the engine's residual stream layer by layer
    // as it goes (only the engine's layers are kept).
    let how = reference_streaming(model);
    let mut layers = vec![];
    let reference = {
        let mut obs = |l: usize, rows: &[f64]| {
            if let Some(e) = eng_layers.get(l) {
                layers.push(layer_drift(l, e, rows));
            }
        };
        atenia_references::forward_f64_with(model, &seq, Some(&mut obs), &how)
    };
    drop(eng_layers);
    let bf16 = opts.bf16.then(|| {
        let b = atenia_references::forward_bf16_with(model, &seq, &how);
        bf16_report(&b, &reference)
    });

    let error_histogram = error_histogram(&prefill, &reference, vocab);
    let reference_argmax_ids = reference_argmax(&reference, prompt.len(), greedy.len());
    let first_divergence = greedy
        .iter()
        .zip(&reference_argmax_ids)
        .position(|(a, b)| a != b);
    let bit_identical = prefill
        .iter()
        .zip(&decode)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    let detokenize = |ids: &[u32]| tok.map_or(Ok(String::new()), |t| t.decode(ids));
    Ok(PromptReport {
        name: p.name.clone(),
        text: p.text.clone(),
        chat: p.chat,
        engine_text: detokenize(&greedy)?,
        reference_text: detokenize(&reference_argmax_ids)?,
        prompt_ids: prompt,
        engine_greedy_ids: greedy,
        reference_argmax_ids,
        first_divergence,
        prefill: path_report(Path::Prefill, &prefill, &reference, vocab, &opts.band),
        decode: path_report(Path::Decode, &decode, &reference, vocab, &opts.band),
        prefill_decode_bit_identical: bit_identical,
        logits_sha256: logits_sha256(&prefill),
        bf16,
        layers,
        error_histogram,
        notes,
    })
}

/// Validates every prompt; `progress` is told each prompt's name as it starts.
pub fn validate(
    loaded: &Loaded,
    rt: &Runtime,
    prompts: &[Prompt],
    opts: &Options,
    progress: &mut dyn FnMut(usize, &str),
) -> Result<Report> {
    let mut reports = vec![];
    for (i, p) in prompts.iter().enumerate() {
        progress(i, &p.name);
        reports.push(validate_prompt(loaded, rt, p, opts)?);
    }
    let mut failures = vec![];
    for r in &reports {
        for f in r.prefill.failures.iter().chain(&r.decode.failures) {
            failures.push(format!("{}: {f}", r.name));
        }
    }
    let fold = |f: &dyn Fn(&PromptReport) -> f64| reports.iter().map(f).fold(0.0, f64::max);
    let bf16: Option<Vec<&Bf16Report>> = reports.iter().map(|r| r.bf16.as_ref()).collect();
    let bf16_max_abs_diff = bf16
        .as_ref()
        .map(|b| b.iter().map(|b| b.max_abs_diff).fold(0.0, f64::max));
    let engine_max = fold(&|r| r.prefill.max_abs_diff.max(r.decode.max_abs_diff));
    let summary = Summary {
        prompts: reports.len(),
        positions: reports.iter().map(|r| r.prefill.argmax_total).sum(),
        max_abs_diff_prefill: fold(&|r| r.prefill.max_abs_diff),
        max_abs_diff_decode: fold(&|r| r.decode.max_abs_diff),
        max_kl: fold(&|r| r.prefill.max_kl.max(r.decode.max_kl)),
        argmax_match: reports
            .iter()
            .map(|r| r.prefill.argmax_match.min(r.decode.argmax_match))
            .sum(),
        argmax_total: reports.iter().map(|r| r.prefill.argmax_total).sum(),
        prompts_on_reference_path: reports
            .iter()
            .filter(|r| r.first_divergence.is_none())
            .count(),
        all_prefill_decode_bit_identical: reports.iter().all(|r| r.prefill_decode_bit_identical),
        logits_sha256: combined_sha256(reports.iter().map(|r| r.logits_sha256.as_str())),
        bf16_max_abs_diff,
        bf16_argmax_match: bf16
            .as_ref()
            .map(|b| b.iter().map(|b| b.argmax_match).sum()),
        closer_than_bf16: bf16_max_abs_diff
            .filter(|_| engine_max > 0.0)
            .map(|b| b / engine_max),
    };
    let model = &loaded.model;
    Ok(Report {
        schema: SCHEMA,
        engine_version: env!("CARGO_PKG_VERSION"),
        created_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        model: ModelInfo {
            path: loaded.path.display().to_string(),
            name: loaded.name.clone(),
            architecture: model.config.architecture.clone(),
            family: model.config.family.clone(),
            layers: model.config.n_layers,
            vocab: model.config.vocab,
            weight_types: model
                .matrix_types()
                .iter()
                .map(|(t, n)| format!("{t}×{n}"))
                .collect(),
        },
        isa: rt.isa.name().into(),
        threads: rt.threads(),
        band: opts.band.clone(),
        gen_tokens: opts.gen_tokens,
        summary,
        passed: failures.is_empty(),
        failures,
        prompts: reports,
    })
}
