//! The speed dashboard (`atenia-harness dashboard`): the bench history
//! (`reports/bench-history.jsonl`, schema `atenia.bench/1`) as one
//! self-contained HTML page with inline SVG plots, and beside it the drift of
//! the latest validate reports (schema `atenia.validate/1`).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use crate::bench::Record;
use crate::svg::{chart, escape, Chart, Marks, Series};

/// The figures of one validate report the dashboard shows (read leniently:
/// absent fields are `None`).
#[derive(Clone, Debug, Default)]
pub struct Drift {
    /// The report file, as given.
    pub report: String,
    /// The model file name (last component of `model.path`).
    pub model_file: String,
    pub model_name: String,
    pub max_abs_diff_prefill: Option<f64>,
    pub max_abs_diff_decode: Option<f64>,
    pub band: Option<f64>,
    pub bf16_max_abs_diff: Option<f64>,
    pub closer_than_bf16: Option<f64>,
    pub argmax_match: Option<u64>,
    pub argmax_total: Option<u64>,
    pub passed: Option<bool>,
    pub created_unix_s: Option<u64>,
    pub threads: Option<u64>,
    pub isa: Option<String>,
}

impl Drift {
    /// Reads the fields of a validate report; `None` when `v` is not one
    /// (no `schema` starting with `atenia.validate/`).
    pub fn from_report(report: &str, v: &Value) -> Option<Drift> {
        let schema = v.get("schema")?.as_str()?;
        if !schema.starts_with("atenia.validate/") {
            return None;
        }
        let s = v.get("summary").cloned().unwrap_or(Value::Null);
        let m = v.get("model").cloned().unwrap_or(Value::Null);
        let path = m.get("path").and_then(Value::as_str).unwrap_or("");
        let model_file = std::path::Path::new(path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.to_string());
        Some(Drift {
            report: report.to_string(),
            model_file,
            model_name: m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            max_abs_diff_prefill: s.get("max_abs_diff_prefill").and_then(Value::as_f64),
            max_abs_diff_decode: s.get("max_abs_diff_decode").and_then(Value::as_f64),
            band: v.pointer("/band/max_abs_diff").and_then(Value::as_f64),
            bf16_max_abs_diff: s.get("bf16_max_abs_diff").and_then(Value::as_f64),
            closer_than_bf16: s.get("closer_than_bf16").and_then(Value::as_f64),
            argmax_match: s.get("argmax_match").and_then(Value::as_u64),
            argmax_total: s.get("argmax_total").and_then(Value::as_u64),
            passed: v.get("passed").and_then(Value::as_bool),
            created_unix_s: v.get("created_unix_s").and_then(Value::as_u64),
            threads: v.get("threads").and_then(Value::as_u64),
            isa: v.get("isa").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// The larger of the two paths' max abs diff.
    pub fn max_abs_diff(&self) -> Option<f64> {
        match (self.max_abs_diff_prefill, self.max_abs_diff_decode) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A model file's name short enough for a chart legend: the stem without
/// `.gguf` and without `instruct`/`it`/`chat` segments, at most 20 characters.
pub fn short_model(file: &str) -> String {
    let stem = file.strip_suffix(".gguf").unwrap_or(file);
    // Pieces that start with their separator (the first has none).
    let mut pieces = Vec::new();
    let mut last = 0;
    for (i, c) in stem.char_indices() {
        if i > 0 && matches!(c, '-' | '.' | '_') {
            pieces.push(&stem[last..i]);
            last = i;
        }
    }
    pieces.push(&stem[last..]);
    let out: String = pieces
        .into_iter()
        .filter(|p| {
            let word = p.trim_start_matches(['-', '.', '_']).to_ascii_lowercase();
            !matches!(word.as_str(), "instruct" | "it" | "chat")
        })
        .collect();
    if out.chars().count() > 20 {
        out.chars().take(19).chain(std::iter::once('…')).collect()
    } else {
        out
    }
}

/// Which series a record belongs to: the model, then the kernel path when
/// the history holds that model on several (a machine with AVX-512 and one
/// with only AVX2 are not one series over time), then the thread count when
/// it holds that model at several.
fn series_keys(records: &[Record]) -> Vec<String> {
    let mut threads: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut isas: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in records {
        let t = threads.entry(r.model.file.as_str()).or_default();
        if !t.contains(&r.threads) {
            t.push(r.threads);
        }
        let i = isas.entry(r.model.file.as_str()).or_default();
        if !i.contains(&r.isa.as_str()) {
            i.push(&r.isa);
        }
    }
    records
        .iter()
        .map(|r| {
            let mut k = short_model(&r.model.file);
            if isas[r.model.file.as_str()].len() > 1 {
                k += &format!(" ·{}", r.isa);
            }
            if threads[r.model.file.as_str()].len() > 1 {
                k += &format!(" ·{}t", r.threads);
            }
            k
        })
        .collect()
}

/// The x axis of the history charts: one slot per commit, in the order the
/// records were made (a commit benched again later gets a new slot), each
/// labelled with the commit and the date of its first record (`MM-DD`).
/// Returns the slot of every record and the slot labels.
fn commit_axis(records: &[Record]) -> (Vec<usize>, Vec<String>) {
    let mut slots = Vec::with_capacity(records.len());
    let mut labels: Vec<String> = Vec::new();
    let mut last: Option<&str> = None;
    for r in records {
        if last != Some(r.commit.as_str()) {
            let day = r.date.get(5..10).unwrap_or("");
            labels.push(format!("{}\n{day}", r.commit));
            last = Some(&r.commit);
        }
        slots.push(labels.len() - 1);
    }
    (slots, labels)
}

/// One series per key, in order of first appearance over all records (so a
/// model keeps its colour in every chart, even one where it has no points);
/// points `(slot of the record, f(record))` where `f` gives a finite value.
fn series_by(
    records: &[Record],
    keys: &[String],
    slots: &[usize],
    f: impl Fn(&Record) -> Option<f64>,
) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for ((r, k), &x) in records.iter().zip(keys).zip(slots) {
        let at = match out.iter().position(|s| &s.name == k) {
            Some(at) => at,
            None => {
                out.push(Series {
                    name: k.clone(),
                    points: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let Some(y) = f(r).filter(|y| y.is_finite()) {
            out[at].points.push((x as f64, y));
        }
    }
    out
}

/// The peer engine's figure `field` (e.g. `decode_tokens_per_s`) of the
/// records that carry one (`bench --peer`), one series per model and
/// engine, named `"<model> · <engine>"`.
fn peer_series(records: &[Record], keys: &[String], slots: &[usize], field: &str) -> Vec<Series> {
    let peer_keys: Vec<String> = records
        .iter()
        .zip(keys)
        .map(|(r, k)| {
            let engine = r
                .peer
                .as_ref()
                .and_then(|p| p.get("engine"))
                .and_then(Value::as_str)
                .unwrap_or("peer");
            format!("{k} · {engine}")
        })
        .collect();
    series_by(records, &peer_keys, slots, |r| {
        r.peer.as_ref()?.get(field)?.as_f64()
    })
    .into_iter()
    .filter(|s| !s.points.is_empty())
    .collect()
}

/// A history chart: tok/s or ms by commit, lines joining each series over time.
fn history_chart(title: &str, y_label: &str, ticks: &[String], series: &[Series]) -> String {
    chart(
        &Chart {
            title,
            x_label: "commit (date of its first record)",
            y_label,
            x_ticks: Some(ticks),
            log_y: false,
            hline: None,
            marks: Marks::LinesAndPoints,
        },
        series,
    )
}

fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "–".into()
    }
}

fn sci(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or("–".into(), |x| format!("{x:.2e}"))
}

/// The whole page. `notes` are shown under the title (skipped lines, missing
/// reports). It depends on its inputs only (no clock), so that CI can check
/// that the committed page is the one the committed history gives.
pub fn render(records: &[Record], drifts: &[Drift], notes: &[String]) -> String {
    let mut h = String::new();
    page_head(&mut h, records, notes);
    let _ = write!(h, r#"<div class="row"><div class="col"><h2>Speed</h2>"#);
    if records.is_empty() {
        h.push_str("<p><em>The history holds no records yet: run <code>atenia-harness bench MODEL --record</code>.</em></p>");
    } else {
        speed_charts(&mut h, records);
    }
    h.push_str("</div>");

    // Beside it: the drift.
    h.push_str(r#"<div class="col"><h2>Drift (latest validate reports)</h2>"#);
    if drifts.is_empty() {
        h.push_str("<p><em>No validate reports given (<code>--validate reports/validate-*.json</code>).</em></p>");
    } else {
        h.push_str(&drift_chart(drifts));
        drift_table(&mut h, drifts);
        // Latest speed beside the drift, per model.
        if !records.is_empty() {
            latest_speed_table(&mut h, records, drifts);
        }
    }
    h.push_str("</div></div>");

    // Every record.
    if !records.is_empty() {
        records_table(&mut h, records);
    }
    h.push_str("</body></html>\n");
    h
}

/// The document head, the title, the introduction and the notes.
fn page_head(h: &mut String, records: &[Record], notes: &[String]) {
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Atenia speed dashboard</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1560px;margin:2em auto;padding:0 1em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}}td{{white-space:nowrap}}td.n{{text-align:right}}th{{background:#f4f4f4}}code{{background:#f4f4f4;padding:0 3px}}.row{{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}}.col{{flex:0 1 740px;min-width:0}}.pass{{color:#2ca02c;font-weight:bold}}.fail{{color:#d62728;font-weight:bold}}.note{{color:#666;font-size:13px}}</style></head><body>
<h1>Atenia speed dashboard</h1>
<p>{n} bench records from <code>atenia-harness bench --record</code> (median of each record's runs){latest}, and the drift of the latest validate reports.</p>"#,
        n = records.len(),
        latest = records.last().map_or(String::new(), |r| format!(
            ", the latest of {}",
            escape(&r.date)
        )),
    );
    for n in notes {
        let _ = write!(h, r#"<p class="note">{}</p>"#, escape(n));
    }
}

/// Every depth some record measured decode at, in order.
fn depths(records: &[Record]) -> Vec<usize> {
    let mut depths: Vec<usize> = records
        .iter()
        .flat_map(|r| r.decode_at_depth.keys().filter_map(|k| k.parse().ok()))
        .collect();
    depths.sort_unstable();
    depths.dedup();
    depths
}

/// Prefill, decode, time to first token and decode at each depth, one series
/// per model over the commits.
fn speed_charts(h: &mut String, records: &[Record]) {
    let keys = series_keys(records);
    let (slots, ticks) = commit_axis(records);
    // Prefill and decode: atenia's series first (the colours of the
    // other charts), then a peer engine's on the same model, if any.
    for (title, field) in [
        ("Prefill (tok/s, higher is better)", "prefill_tokens_per_s"),
        ("Decode (tok/s, higher is better)", "decode_tokens_per_s"),
    ] {
        let mut series = series_by(records, &keys, &slots, |r| {
            Some(if field == "prefill_tokens_per_s" {
                r.prefill_tokens_per_s
            } else {
                r.decode_tokens_per_s
            })
        });
        series.extend(peer_series(records, &keys, &slots, field));
        h.push_str(&history_chart(title, "tok/s", &ticks, &series));
    }
    h.push_str(&history_chart(
        "Time to first token (ms, lower is better)",
        "ms",
        &ticks,
        &series_by(records, &keys, &slots, |r| Some(r.ttft_ms)),
    ));
    // Decode at depth: one chart per depth, one series per model.
    for d in &depths(records) {
        let key = d.to_string();
        h.push_str(&history_chart(
            &format!("Decode after {d} tokens of context (tok/s)"),
            "tok/s",
            &ticks,
            &series_by(records, &keys, &slots, |r| {
                r.decode_at_depth.get(&key).copied()
            }),
        ));
    }
}

/// The chart of the drift: one line per model across its three figures,
/// against the band.
fn drift_chart(drifts: &[Drift]) -> String {
    let series: Vec<Series> = drifts
        .iter()
        .map(|d| Series {
            name: short_model(&d.model_file),
            points: [
                d.max_abs_diff_prefill,
                d.max_abs_diff_decode,
                d.bf16_max_abs_diff,
            ]
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i as f64, v)))
            .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let band = drifts.iter().find_map(|d| d.band);
    let band_label = band.map(|b| format!("band {b:.0e}"));
    // Three unrelated figures per model: dots, never a line between them.
    let ticks = [
        "engine, prefill".to_string(),
        "engine, decode".into(),
        "bfloat16 emulation".into(),
    ];
    chart(
        &Chart {
            title: "Max |logit − float64| per model (log scale)",
            x_label: "path checked against float64",
            y_label: "logits",
            x_ticks: Some(&ticks),
            log_y: true,
            hline: band.zip(band_label.as_deref()),
            marks: Marks::Points,
        },
        &series,
    )
}

/// Each validate report's figures and verdict.
fn drift_table(h: &mut String, drifts: &[Drift]) {
    h.push_str("<table><tr><th>model</th><th>max abs diff<br>prefill</th><th>max abs diff<br>decode</th><th>band</th><th>bf16 max<br>abs diff</th><th>closer<br>than bf16</th><th>argmax</th><th>gate</th><th>report (UTC)</th></tr>");
    for d in drifts {
        let gate = match d.passed {
            Some(true) => r#"<span class="pass">PASS</span>"#,
            Some(false) => r#"<span class="fail">FAIL</span>"#,
            None => "–",
        };
        let date = d
            .created_unix_s
            .map(crate::bench::iso_utc)
            .unwrap_or_default();
        let _ = write!(
            h,
            r#"<tr><td title="{}">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td>{gate}</td><td title="{}">{}</td></tr>"#,
            escape(&format!("{} ({})", d.model_name, d.model_file)),
            escape(&short_model(&d.model_file)),
            sci(d.max_abs_diff_prefill),
            sci(d.max_abs_diff_decode),
            sci(d.band),
            d.bf16_max_abs_diff
                .map_or("–".into(), |v| format!("{v:.3}")),
            d.closer_than_bf16.map_or("–".into(), |c| format!(
                "{}×",
                crate::report_html::times(c)
            )),
            match (d.argmax_match, d.argmax_total) {
                (Some(m), Some(t)) => format!("{m}/{t}"),
                _ => "–".into(),
            },
            escape(&d.report),
            escape(date.get(..16).unwrap_or(&date)),
        );
    }
    h.push_str("</table>");
}

/// The latest record of each model, with its drift.
fn latest_speed_table(h: &mut String, records: &[Record], drifts: &[Drift]) {
    h.push_str("<h3>Latest speed per model</h3><table><tr><th>model</th><th>commit</th><th>threads</th><th>prefill tok/s</th><th>decode tok/s</th><th>ttft ms</th><th>max abs diff<br>(validate)</th></tr>");
    let mut seen: Vec<&str> = Vec::new();
    for r in records.iter().rev() {
        if seen.contains(&r.model.file.as_str()) {
            continue;
        }
        seen.push(&r.model.file);
        let drift = drifts
            .iter()
            .find(|d| d.model_file == r.model.file)
            .and_then(Drift::max_abs_diff);
        let _ = write!(
            h,
            r#"<tr><td title="{}">{}</td><td><code>{}</code></td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            escape(&r.model.file),
            escape(&short_model(&r.model.file)),
            escape(&r.commit),
            r.threads,
            num(r.prefill_tokens_per_s, 1),
            num(r.decode_tokens_per_s, 1),
            num(r.ttft_ms, 1),
            sci(drift),
        );
    }
    h.push_str("</table>");
}

/// Every record, one row each.
fn records_table(h: &mut String, records: &[Record]) {
    let depth_cols = depths(records);
    h.push_str("<h2>Records</h2><table><tr><th>#</th><th>commit</th><th>date (UTC)</th><th>model</th><th>threads</th><th>isa</th><th title=\"cores kept busy by other work just before the bench\">busy<br>before</th><th>prompt / gen</th><th>runs</th><th>prefill tok/s</th><th>decode tok/s</th><th>ttft ms</th>");
    for d in &depth_cols {
        let _ = write!(h, "<th>decode @ {d}</th>");
    }
    let any_peer = records.iter().any(|r| r.peer.is_some());
    if any_peer {
        h.push_str("<th>peer prefill / decode tok/s</th>");
    }
    h.push_str("<th>cpu</th></tr>");
    for (i, r) in records.iter().enumerate() {
        record_row(h, i, r, &depth_cols, any_peer);
    }
    h.push_str("</table><p class=\"note\">* tracked files differed from the commit when the record was made. Hover a figure for its min and max, a model for its weight types, a CPU for its SIMD flags.</p>");
}

/// Record `i`'s row of the records table.
fn record_row(h: &mut String, i: usize, r: &Record, depth_cols: &[usize], any_peer: bool) {
    let d = &r.detail;
    let range = |s: &crate::bench::Stat| {
        if s.samples.is_empty() {
            String::new()
        } else {
            format!(
                "median of {}: min {:.1}, max {:.1}",
                s.samples.len(),
                s.min,
                s.max
            )
        }
    };
    let _ = write!(
        h,
        r#"<tr><td class="n">{i}</td><td><code>{}</code>{}</td><td>{}</td><td title="{}">{}</td><td class="n">{}</td><td>{}</td><td class="n">{}</td><td class="n">{} / {}</td><td class="n">{}</td><td class="n" title="{}">{}</td><td class="n" title="{}">{}</td><td class="n" title="{}">{}</td>"#,
        escape(&r.commit),
        if r.dirty == Some(true) {
            r#"<span title="tracked files modified">*</span>"#
        } else {
            ""
        },
        escape(&r.date),
        escape(&r.model.weight_types.join(" ")),
        escape(&r.model.file),
        r.threads,
        escape(&r.isa),
        r.busy_cores_before
            .map_or("–".into(), |b| format!("{b:.2}")),
        r.prompt_tokens,
        r.gen_tokens,
        r.runs,
        escape(&range(&d.prefill_tokens_per_s)),
        num(r.prefill_tokens_per_s, 1),
        escape(&range(&d.decode_tokens_per_s)),
        num(r.decode_tokens_per_s, 1),
        escape(&range(&d.ttft_ms)),
        num(r.ttft_ms, 1),
    );
    for dc in depth_cols {
        let v = r.decode_at_depth.get(&dc.to_string()).copied();
        let _ = write!(
            h,
            r#"<td class="n">{}</td>"#,
            v.map_or("–".into(), |v| num(v, 1))
        );
    }
    if any_peer {
        let (cell, title) = peer_cell(r);
        let _ = write!(
            h,
            r#"<td title="{}">{}</td>"#,
            escape(&title),
            escape(&cell)
        );
    }
    let _ = write!(
        h,
        r#"<td title="{}">{}</td></tr>"#,
        escape(&r.cpu_features.join(" ")),
        escape(&r.cpu_model)
    );
}

/// A peer engine's figures for a record's row, and their hover text.
fn peer_cell(r: &Record) -> (String, String) {
    r.peer.as_ref().map_or_else(
        || ("–".to_string(), String::new()),
        |p| {
            let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("?");
            let fig = |k: &str| {
                p.get(k)
                    .and_then(Value::as_f64)
                    .map_or("–".into(), |v| num(v, 1))
            };
            (
                format!(
                    "{} {}: {} / {}",
                    text("engine"),
                    text("commit"),
                    fig("prefill_tokens_per_s"),
                    fig("decode_tokens_per_s")
                ),
                format!("{}; {}", text("source"), text("build_flags")),
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{ModelId, SCHEMA};

    fn rec(file: &str, threads: usize, prefill: f64) -> Record {
        Record {
            schema: SCHEMA.into(),
            commit: "abc1234".into(),
            model: ModelId {
                file: file.into(),
                ..Default::default()
            },
            threads,
            prefill_tokens_per_s: prefill,
            decode_tokens_per_s: 100.0,
            ttft_ms: 50.0,
            decode_at_depth: [("512".to_string(), 90.0)].into_iter().collect(),
            ..Default::default()
        }
    }

    #[test]
    fn one_series_per_model_split_by_threads_only_when_needed() {
        let rs = vec![
            rec("a.gguf", 2, 1.0),
            rec("b.gguf", 2, 2.0),
            rec("a.gguf", 2, 3.0),
            rec("b.gguf", 1, 4.0),
        ];
        let keys = series_keys(&rs);
        assert_eq!(keys, vec!["a", "b ·2t", "a", "b ·1t"]);
        let slots = [0, 0, 1, 2];
        let s = series_by(&rs, &keys, &slots, |r| Some(r.prefill_tokens_per_s));
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].points, vec![(0.0, 1.0), (1.0, 3.0)]);
    }

    #[test]
    fn records_on_another_kernel_path_make_their_own_series() {
        let mut rs = vec![
            rec("a.gguf", 2, 1.0),
            rec("a.gguf", 2, 2.0),
            rec("b.gguf", 2, 3.0),
        ];
        rs[0].isa = "avx512".into();
        rs[1].isa = "avx2".into();
        rs[2].isa = "avx2".into();
        assert_eq!(series_keys(&rs), vec!["a ·avx512", "a ·avx2", "b"]);
        rs[1].threads = 1;
        assert_eq!(series_keys(&rs), vec!["a ·avx512 ·2t", "a ·avx2 ·1t", "b"]);
    }

    #[test]
    fn one_slot_per_commit_in_record_order() {
        let mut rs = vec![
            rec("a.gguf", 2, 1.0),
            rec("b.gguf", 2, 2.0),
            rec("a.gguf", 2, 3.0),
        ];
        rs[0].date = "2026-11-26T12:31:07Z".into();
        rs[2].commit = "def5678".into();
        rs[2].date = "2026-12-01T08:00:00Z".into();
        let (slots, labels) = commit_axis(&rs);
        assert_eq!(slots, vec![0, 0, 1]);
        assert_eq!(labels, vec!["abc1234\n11-26", "def5678\n12-01"]);
    }

    #[test]
    fn peer_figures_make_their_own_series() {
        let mut rs = vec![rec("a.gguf", 2, 1.0), rec("a.gguf", 2, 3.0)];
        rs[1].peer = Some(serde_json::json!({"engine": "llama.cpp", "decode_tokens_per_s": 7.0}));
        let keys = series_keys(&rs);
        let s = peer_series(&rs, &keys, &[0, 1], "decode_tokens_per_s");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "a · llama.cpp");
        assert_eq!(s[0].points, vec![(1.0, 7.0)]);
    }

    #[test]
    fn short_model_names() {
        assert_eq!(
            short_model("SmolLM2-135M-Instruct.Q4_1.gguf"),
            "SmolLM2-135M.Q4_1"
        );
        assert_eq!(
            short_model("gemma-3-270m-q4_k_m.gguf"),
            "gemma-3-270m-q4_k_m"
        );
        assert_eq!(short_model("gemma-3-1b-it-Q8_0.gguf"), "gemma-3-1b-Q8_0");
        assert_eq!(
            short_model("a-very-long-model-name-indeed.gguf"),
            "a-very-long-model-n…"
        );
    }

    #[test]
    fn drift_reads_a_validate_report() {
        let v: Value = serde_json::json!({
            "schema": "atenia.validate/1",
            "model": {"path": "/x/SmolLM2.gguf", "name": "S"},
            "band": {"name": "default", "max_abs_diff": 1e-4},
            "summary": {"max_abs_diff_prefill": 2e-5, "max_abs_diff_decode": 3e-5, "bf16_max_abs_diff": null},
            "passed": true
        });
        let d = Drift::from_report("r.json", &v).unwrap();
        assert_eq!(d.model_file, "SmolLM2.gguf");
        assert_eq!(d.max_abs_diff(), Some(3e-5));
        assert_eq!(d.bf16_max_abs_diff, None);
        assert!(Drift::from_report("x", &serde_json::json!({"schema": "other"})).is_none());
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let mut r = rec("<evil>.gguf", 2, 10.0);
        r.cpu_model = "A & B".into();
        let page = render(&[r], &[], &[]);
        assert!(page.contains("&lt;evil&gt;.gguf"));
        assert!(page.contains("A &amp; B"));
        assert!(!page.contains("<script"));
        // No external assets: the only URL is the SVG namespace.
        assert!(!page
            .replace(r#"xmlns="http://www.w3.org/2000/svg""#, "")
            .contains("http"));
        assert_eq!(page.matches("<svg").count(), 4); // prefill, decode, ttft, depth 512
    }
}
