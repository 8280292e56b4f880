//! The validate report as one self-contained HTML page (inline SVG, no
//! scripts or external assets).

use std::fmt::Write;

use crate::svg::{bar_chart, escape, line_chart, Series};
use crate::validate::{PathReport, PromptReport, Report, HISTOGRAM_EDGES};

fn sci(v: f64) -> String {
    format!("{v:.2e}")
}

/// A ratio for people ("40000", "12.3"): three significant digits, no
/// exponent below 1e9.
pub fn times(c: f64) -> String {
    if !c.is_finite() || c >= 1e9 {
        format!("{c:.2e}")
    } else if c >= 100.0 {
        let unit = 10f64.powi(c.log10().floor() as i32 - 2);
        format!("{:.0}", (c / unit).round() * unit)
    } else if c >= 10.0 {
        format!("{c:.1}")
    } else {
        format!("{c:.2}")
    }
}

/// The whole page: one self-contained HTML document.
pub fn render(r: &Report) -> String {
    let mut h = String::new();
    header(&mut h, r);
    summary(&mut h, r);
    drift_per_position(&mut h, r);
    drift_per_layer(&mut h, r);
    histogram(&mut h, r);
    greedy_paths(&mut h, r);
    per_prompt_table(&mut h, r);
    h
}

/// The document head, the verdict, the model and the band.
fn header(h: &mut String, r: &Report) {
    let verdict = if r.passed { "PASS" } else { "FAIL" };
    let color = if r.passed { "#2ca02c" } else { "#d62728" };
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Atenia validate: {name}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}}td{{white-space:nowrap}}td.wrap{{white-space:normal}}th{{background:#f4f4f4}}.v{{font-weight:bold;color:{color}}}code{{background:#f4f4f4;padding:0 3px}}.mono{{font-family:monospace;white-space:pre-wrap}}</style></head><body>
<h1>Atenia validate — <span class="v">{verdict}</span></h1>
<p>Model <code>{path}</code> ({arch}, family <b>{family}</b>, {layers} layers, vocab {vocab}; weights {types}). Engine {ver}, {isa}, {threads} threads. Schema <code>{schema}</code>.</p>
<p>The reference is a float64 forward pass over exactly the file's weights (<code>atenia-references</code>). Band <b>{band}</b>: max |engine − reference| ≤ {bound:.0e} at every position, argmax equal wherever the reference's top-1/top-2 margin exceeds {twice:.0e} (ADR-004).</p>"#,
        name = escape(&r.model.name),
        path = escape(&r.model.path),
        arch = escape(&r.model.architecture),
        family = escape(&r.model.family),
        layers = r.model.layers,
        vocab = r.model.vocab,
        types = escape(&r.model.weight_types.join(", ")),
        ver = r.engine_version,
        isa = r.isa,
        threads = r.threads,
        schema = r.schema,
        band = r.band.name,
        bound = r.band.max_abs_diff,
        twice = 2.0 * r.band.max_abs_diff,
    );
}

/// The summary table, the bfloat16 comparison and the failures.
fn summary(h: &mut String, r: &Report) {
    let s = &r.summary;
    let _ = write!(
        h,
        "<h2>Summary</h2><table><tr><th>prompts</th><th>positions</th><th>max abs diff (prefill)</th><th>max abs diff (decode)</th><th>max KL</th><th>argmax agreement</th><th>greedy paths on the float64 path</th><th>prefill = decode bit for bit</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}/{}</td><td>{}</td></tr></table>",
        s.prompts,
        s.positions,
        sci(s.max_abs_diff_prefill),
        sci(s.max_abs_diff_decode),
        sci(s.max_kl),
        s.argmax_match,
        s.argmax_total,
        s.prompts_on_reference_path,
        s.prompts,
        if s.all_prefill_decode_bit_identical { "yes" } else { "no" }
    );
    if let (Some(b), Some(m)) = (s.bf16_max_abs_diff, s.bf16_argmax_match) {
        let closer =
            s.closer_than_bf16
                .map_or("the engine's logits equal float64's".to_string(), |c| {
                    format!(
                        "the engine is <b>{}× closer</b> to float64 than bfloat16",
                        times(c)
                    )
                });
        let _ = write!(
            h,
            "<p class=\"bf16\">For scale: a <b>bfloat16</b> computation of the same model on the same sequences (PyTorch on the CPU in <code>torch.bfloat16</code>, emulated by <code>atenia_references::forward_bf16</code>) lands <b>{}</b> away from float64 (max abs logit diff) and flips the argmax at {} of {} positions: {closer}.</p>",
            if b >= 0.01 { format!("{b:.2}") } else { sci(b) },
            s.argmax_total - m,
            s.argmax_total,
        );
    }
    if !r.failures.is_empty() {
        h.push_str("<h3>Failures</h3><ul>");
        for f in &r.failures {
            let _ = write!(h, "<li>{}</li>", escape(f));
        }
        h.push_str("</ul>");
    }
}

/// One series per prompt, of the points `points` gives.
fn per_prompt(r: &Report, points: impl Fn(&PromptReport) -> Vec<(f64, f64)>) -> Vec<Series> {
    r.prompts
        .iter()
        .map(|p| Series {
            name: p.name.clone(),
            points: points(p),
        })
        .collect()
}

/// The drift of one path at each position.
fn by_position(path: &PathReport) -> Vec<(f64, f64)> {
    path.per_position
        .iter()
        .map(|m| (m.position as f64, m.max_abs_diff))
        .collect()
}

/// The per-position charts: prefill, decode, and (when every prompt has
/// one) the engine beside bfloat16.
fn drift_per_position(h: &mut String, r: &Report) {
    h.push_str("<h2>Drift per position</h2>");
    h.push_str(&line_chart(
        "max |engine − reference| per position (prefill path)",
        "position",
        "max abs logit diff",
        &per_prompt(r, |p| by_position(&p.prefill)),
        true,
        Some((r.band.max_abs_diff, "band")),
    ));
    h.push_str(&line_chart(
        "max |engine − reference| per position (decode path, KV cache)",
        "position",
        "max abs logit diff",
        &per_prompt(r, |p| by_position(&p.decode)),
        true,
        Some((r.band.max_abs_diff, "band")),
    ));
    if r.prompts.iter().all(|p| p.bf16.is_some()) && !r.prompts.is_empty() {
        h.push_str(&line_chart(
            "engine and bfloat16 against float64 (worst prompt at each position)",
            "position",
            "max abs logit diff",
            &engine_and_bf16(r),
            true,
            Some((r.band.max_abs_diff, "band")),
        ));
    }
}

/// The worst prompt at each position: engine (either path) and bf16.
fn engine_and_bf16(r: &Report) -> Vec<Series> {
    let mut eng: Vec<(f64, f64)> = vec![];
    let mut bf: Vec<(f64, f64)> = vec![];
    for p in &r.prompts {
        let b = p
            .bf16
            .as_ref()
            .map_or(&[][..], |b| &b.per_position_max_abs_diff[..]);
        for (i, (pm, dm)) in p
            .prefill
            .per_position
            .iter()
            .zip(&p.decode.per_position)
            .enumerate()
        {
            if eng.len() <= i {
                eng.push((i as f64, 0.0));
                bf.push((i as f64, 0.0));
            }
            eng[i].1 = eng[i].1.max(pm.max_abs_diff.max(dm.max_abs_diff));
            if let Some(&v) = b.get(i) {
                bf[i].1 = bf[i].1.max(v);
            }
        }
    }
    vec![
        Series {
            name: "bfloat16".into(),
            points: bf,
        },
        Series {
            name: "engine".into(),
            points: eng,
        },
    ]
}

/// The residual stream's drift per layer: absolute and relative.
fn drift_per_layer(h: &mut String, r: &Report) {
    h.push_str("<h2>Drift per layer</h2><p>The residual stream after each layer (the last point is the final norm's output), engine against reference, over all positions: where the error grows.</p>");
    h.push_str(&line_chart(
        "max |engine − reference| of the hidden state per layer",
        "layer",
        "max abs diff",
        &per_prompt(r, |p| {
            p.layers
                .iter()
                .map(|l| (l.layer as f64, l.max_abs_diff))
                .collect()
        }),
        true,
        None,
    ));
    h.push_str(&line_chart(
        "relative L2 error of the hidden state per layer",
        "layer",
        "‖e − r‖ / ‖r‖",
        &per_prompt(r, |p| {
            p.layers
                .iter()
                .map(|l| (l.layer as f64, l.rel_l2))
                .collect()
        }),
        true,
        None,
    ));
}

/// Every logit's error, binned by [`HISTOGRAM_EDGES`].
fn histogram(h: &mut String, r: &Report) {
    h.push_str("<h2>Histogram of logit errors</h2>");
    let mut counts = vec![0u64; HISTOGRAM_EDGES.len() + 1];
    for p in &r.prompts {
        for (c, v) in counts.iter_mut().zip(&p.error_histogram) {
            *c += v;
        }
    }
    let mut labels = vec![format!("<{:.0e}", HISTOGRAM_EDGES[0])];
    for w in HISTOGRAM_EDGES.windows(2) {
        labels.push(format!("{:.0e}–{:.0e}", w[0], w[1]));
    }
    labels.push(format!(
        "≥{:.0e}",
        HISTOGRAM_EDGES[HISTOGRAM_EDGES.len() - 1]
    ));
    h.push_str(&bar_chart(
        "every logit of every position (prefill path)",
        &labels,
        &counts,
    ));
}

/// The engine's greedy continuation beside the reference's argmax.
fn greedy_paths(h: &mut String, r: &Report) {
    h.push_str("<h2>Greedy paths side by side</h2><p>The engine's greedy continuation (decode path) and, at each of its positions, the float64 reference's argmax.</p><table><tr><th>prompt</th><th>engine</th><th>float64 reference</th><th>first divergence</th></tr>");
    for p in &r.prompts {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            escape(&p.name),
            escape(&p.engine_text),
            escape(&p.reference_text),
            p.first_divergence
                .map_or("none".to_string(), |i| format!("token {i}"))
        );
    }
    h.push_str("</table>");
}

/// One row of figures per prompt, and the page's end.
fn per_prompt_table(h: &mut String, r: &Report) {
    h.push_str("<h2>Per prompt</h2><table><tr><th>prompt</th><th>tokens</th><th>prefill max abs</th><th>decode max abs</th><th>max rel L2</th><th>max KL</th><th>argmax</th><th>min top-5 overlap</th><th>bit-identical</th><th>bf16 max abs</th><th>bf16 argmax</th><th>notes</th></tr>");
    for p in &r.prompts {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"wrap\">{}</td></tr>",
            escape(&p.name),
            p.prefill.argmax_total,
            sci(p.prefill.max_abs_diff),
            sci(p.decode.max_abs_diff),
            sci(p.prefill.max_rel_l2.max(p.decode.max_rel_l2)),
            sci(p.prefill.max_kl.max(p.decode.max_kl)),
            p.prefill.argmax_match.min(p.decode.argmax_match),
            p.prefill.argmax_total,
            p.prefill.min_top5_overlap.min(p.decode.min_top5_overlap),
            if p.prefill_decode_bit_identical { "yes" } else { "no" },
            p.bf16.as_ref().map_or("–".to_string(), |b| format!("{:.3}", b.max_abs_diff)),
            p.bf16.as_ref().map_or("–".to_string(), |b| format!("{}/{}", b.argmax_match, b.argmax_total)),
            escape(&p.notes.join("; "))
        );
    }
    h.push_str("</table></body></html>\n");
}
