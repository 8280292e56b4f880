//! What changed between two validate reports (JSON, schema
//! [`crate::validate::SCHEMA`]): a short summary for people, e.g. in CI after
//! regenerating the committed reports.
//!
//! Reports are read as untyped JSON so that an old report of another schema
//! version is recognized and named rather than refused.

use std::fmt::Write;

use serde_json::Value;

use crate::report_html::times;
use crate::validate::SCHEMA;

/// Fields that differ between two runs of the same build on the same numbers
/// (when, where, on how many threads): ignored when deciding "no change".
const VOLATILE: [&[&str]; 5] = [
    &["created_unix_s"],
    &["engine_version"],
    &["isa"],
    &["threads"],
    &["model", "path"],
];

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    at(v, path).and_then(Value::as_f64)
}

fn text(v: &Value, path: &[&str]) -> String {
    match at(v, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "?".into(),
        Some(other) => other.to_string(),
    }
}

fn sci(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2e}"))
}

/// A logit difference: "1.83" when it is large (bfloat16's), "9.65e-5" when small.
fn logits(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 0.1 && v.is_finite() => format!("{v:.2}"),
        v => sci(v),
    }
}

fn verdict(v: &Value) -> &'static str {
    match v.get("passed").and_then(Value::as_bool) {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "?",
    }
}

fn yes_no(v: &Value, path: &[&str]) -> &'static str {
    match at(v, path).and_then(Value::as_bool) {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

fn fraction(v: &Value, num_path: &[&str], den_path: &[&str]) -> String {
    match (
        at(v, num_path).and_then(Value::as_u64),
        at(v, den_path).and_then(Value::as_u64),
    ) {
        (Some(n), Some(d)) => format!("{n}/{d}"),
        _ => "–".into(),
    }
}

/// `new / old` for people: "×0.94", "=" when equal.
fn ratio(old: Option<f64>, new: Option<f64>) -> String {
    match (old, new) {
        (Some(o), Some(n)) if o == n => "=".into(),
        (Some(o), Some(n)) if o > 0.0 => format!("×{}", times(n / o)),
        _ => "".into(),
    }
}

fn without_volatile(v: &Value) -> Value {
    let mut v = v.clone();
    for path in VOLATILE {
        let (last, parents) = path.split_last().expect("non-empty path");
        let mut cur = Some(&mut v);
        for k in parents {
            cur = cur.and_then(|c| c.get_mut(*k));
        }
        if let Some(Value::Object(m)) = cur {
            m.remove(*last);
        }
    }
    v
}

/// One line: the model's name, verdict and main figures.
pub fn headline(r: &Value) -> String {
    format!("{}: {}", text(r, &["model", "name"]), figures(r))
}

/// The verdict and main figures.
fn figures(r: &Value) -> String {
    let mut s = format!(
        "{}, max abs diff prefill {} decode {}, argmax {}, greedy on the float64 path {}",
        verdict(r),
        sci(num(r, &["summary", "max_abs_diff_prefill"])),
        sci(num(r, &["summary", "max_abs_diff_decode"])),
        fraction(
            r,
            &["summary", "argmax_match"],
            &["summary", "argmax_total"]
        ),
        fraction(
            r,
            &["summary", "prompts_on_reference_path"],
            &["summary", "prompts"]
        ),
    );
    if let Some(b) = num(r, &["summary", "bf16_max_abs_diff"]) {
        let _ = write!(s, ", bf16 {}", logits(Some(b)));
        if let Some(c) = num(r, &["summary", "closer_than_bf16"]) {
            let _ = write!(s, " ({}× closer)", times(c));
        }
    }
    s
}

/// The summary of what changed from `old` (`None`: there is no old report)
/// to `new`. Several lines, each ending in a newline.
pub fn diff(old: Option<&Value>, new: &Value) -> String {
    let mut out = String::new();
    let new_schema = text(new, &["schema"]);
    if new_schema != SCHEMA {
        let _ = writeln!(
            out,
            "note: NEW has schema {new_schema}; this harness reads {SCHEMA}: figures may be missing"
        );
    }
    let Some(old) = old else {
        let _ = writeln!(
            out,
            "no previous report to compare with (OLD is missing): {}",
            headline(new)
        );
        return out;
    };
    let old_schema = text(old, &["schema"]);
    if old_schema != new_schema {
        let _ = writeln!(
            out,
            "note: OLD has schema {old_schema}, NEW {new_schema}: not compared field by field"
        );
        let _ = writeln!(out, "  old {}", headline(old));
        let _ = writeln!(out, "  new {}", headline(new));
        return out;
    }
    let (old_name, new_name) = (text(old, &["model", "name"]), text(new, &["model", "name"]));
    if old_name != new_name {
        let _ = writeln!(
            out,
            "note: the reports are of different models ({old_name} → {new_name})"
        );
    }
    if without_volatile(old) == without_volatile(new) {
        let _ = writeln!(out, "{new_name}: no change ({})", figures(new));
        return out;
    }

    let _ = writeln!(out, "{new_name} ({new_schema}): old → new");
    summary_rows(&mut out, old, new);
    prompt_changes(&mut out, old, new);
    out
}

/// The summary's figures, old → new, a `*` on each line that changed.
fn summary_rows(out: &mut String, old: &Value, new: &Value) {
    let mut row = |label: &str, o: String, n: String, extra: String| {
        let mark = if o == n { " " } else { "*" };
        let _ = writeln!(
            out,
            "{mark} {label:<28} {o} → {n}{}",
            if extra.is_empty() {
                extra
            } else {
                format!("  ({extra})")
            }
        );
    };
    row(
        "verdict",
        verdict(old).into(),
        verdict(new).into(),
        String::new(),
    );
    for (label, key) in [
        ("max abs diff, prefill", "max_abs_diff_prefill"),
        ("max abs diff, decode", "max_abs_diff_decode"),
    ] {
        let (o, n) = (num(old, &["summary", key]), num(new, &["summary", key]));
        row(label, sci(o), sci(n), ratio(o, n));
    }
    row(
        "argmax agreement",
        fraction(
            old,
            &["summary", "argmax_match"],
            &["summary", "argmax_total"],
        ),
        fraction(
            new,
            &["summary", "argmax_match"],
            &["summary", "argmax_total"],
        ),
        String::new(),
    );
    row(
        "greedy on the float64 path",
        fraction(
            old,
            &["summary", "prompts_on_reference_path"],
            &["summary", "prompts"],
        ),
        fraction(
            new,
            &["summary", "prompts_on_reference_path"],
            &["summary", "prompts"],
        ),
        String::new(),
    );
    row(
        "prefill = decode bit for bit",
        yes_no(old, &["summary", "all_prefill_decode_bit_identical"]).into(),
        yes_no(new, &["summary", "all_prefill_decode_bit_identical"]).into(),
        String::new(),
    );
    // The digest of every logit: reports before it have none.
    let digest = |r: &Value| {
        at(r, &["summary", "logits_sha256"])
            .and_then(Value::as_str)
            .map(String::from)
    };
    let (od, nd) = (digest(old), digest(new));
    let short = |d: &Option<String>| {
        d.as_deref()
            .map_or("–".into(), |d| d.chars().take(19).collect())
    };
    row(
        "logits (SHA-256)",
        short(&od),
        short(&nd),
        match (&od, &nd) {
            (Some(a), Some(b)) if a == b => "bit-identical".into(),
            (Some(_), Some(_)) => "changed".into(),
            _ => String::new(),
        },
    );
    let bf = |r: &Value| match num(r, &["summary", "bf16_max_abs_diff"]) {
        Some(b) => format!(
            "{} ({}× closer)",
            logits(Some(b)),
            num(r, &["summary", "closer_than_bf16"]).map_or("–".into(), times)
        ),
        None => "not run".into(),
    };
    row("bfloat16 max abs diff", bf(old), bf(new), String::new());
}

/// Prompts added, removed, or whose figures or greedy path moved.
fn prompt_changes(out: &mut String, old: &Value, new: &Value) {
    let prompts = |r: &Value| -> Vec<Value> {
        r.get("prompts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (op, np) = (prompts(old), prompts(new));
    let name = |p: &Value| text(p, &["name"]);
    let old_names: Vec<String> = op.iter().map(name).collect();
    let new_names: Vec<String> = np.iter().map(name).collect();
    let added: Vec<&String> = new_names
        .iter()
        .filter(|n| !old_names.contains(n))
        .collect();
    let removed: Vec<&String> = old_names
        .iter()
        .filter(|n| !new_names.contains(n))
        .collect();
    if !added.is_empty() {
        let _ = writeln!(out, "  prompts added: {}", join(&added));
    }
    if !removed.is_empty() {
        let _ = writeln!(out, "  prompts removed: {}", join(&removed));
    }
    let mut changed = vec![];
    for n in &np {
        let Some(o) = op.iter().find(|o| name(o) == name(n)) else {
            continue;
        };
        let what = prompt_change(o, n);
        if !what.is_empty() {
            changed.push(format!("{}: {}", name(n), what.join(", ")));
        }
    }
    if changed.is_empty() {
        let _ = writeln!(out, "  per prompt: no change");
    } else {
        let _ = writeln!(out, "  per prompt ({} changed):", changed.len());
        for c in changed {
            let _ = writeln!(out, "    {c}");
        }
    }
}

/// What moved between two reports of one prompt (empty: nothing).
fn prompt_change(o: &Value, n: &Value) -> Vec<String> {
    let mut what = vec![];
    if at(o, &["prompt_ids"]) != at(n, &["prompt_ids"]) {
        what.push("prompt tokens".to_string());
    }
    if at(o, &["engine_greedy_ids"]) != at(n, &["engine_greedy_ids"]) {
        what.push("greedy path".to_string());
    }
    if at(o, &["first_divergence"]) != at(n, &["first_divergence"]) {
        let d = |v: &Value| match at(v, &["first_divergence"]).and_then(Value::as_u64) {
            Some(i) => format!("token {i}"),
            None => "none".into(),
        };
        what.push(format!("first divergence {} → {}", d(o), d(n)));
    }
    for (label, path) in [
        ("prefill", ["prefill", "max_abs_diff"]),
        ("decode", ["decode", "max_abs_diff"]),
        ("bf16", ["bf16", "max_abs_diff"]),
    ] {
        let (a, b) = (num(o, &path), num(n, &path));
        if a != b {
            what.push(format!("{label} {} → {}", logits(a), logits(b)));
        }
    }
    if at(o, &["prefill_decode_bit_identical"]) != at(n, &["prefill_decode_bit_identical"]) {
        what.push(format!(
            "bit-identical {} → {}",
            yes_no(o, &["prefill_decode_bit_identical"]),
            yes_no(n, &["prefill_decode_bit_identical"])
        ));
    }
    what
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Value {
        json!({
            "schema": SCHEMA,
            "engine_version": "0.1.0",
            "created_unix_s": 1,
            "isa": "avx2",
            "threads": 2,
            "model": {"name": "m", "path": "/a/m.gguf"},
            "summary": {
                "prompts": 1, "positions": 3,
                "max_abs_diff_prefill": 2e-5, "max_abs_diff_decode": 2e-5,
                "argmax_match": 3, "argmax_total": 3, "prompts_on_reference_path": 1,
                "all_prefill_decode_bit_identical": true,
                "bf16_max_abs_diff": 1.0, "bf16_argmax_match": 3, "closer_than_bf16": 50000.0
            },
            "prompts": [{
                "name": "p", "prompt_ids": [1, 2], "engine_greedy_ids": [3], "first_divergence": null,
                "prefill": {"max_abs_diff": 2e-5}, "decode": {"max_abs_diff": 2e-5},
                "bf16": {"max_abs_diff": 1.0}, "prefill_decode_bit_identical": true
            }],
            "passed": true
        })
    }

    #[test]
    fn identical_numbers_are_no_change_whatever_the_machine() {
        let old = report();
        let mut new = report();
        new["created_unix_s"] = json!(99);
        new["threads"] = json!(16);
        new["model"]["path"] = json!("/b/m.gguf");
        let d = diff(Some(&old), &new);
        assert!(d.starts_with("m: no change (PASS"), "{d}");
        assert!(d.contains("50000× closer"), "{d}");
    }

    #[test]
    fn changes_show_old_new_and_ratio() {
        let old = report();
        let mut new = report();
        new["summary"]["max_abs_diff_prefill"] = json!(4e-5);
        new["prompts"][0]["prefill"]["max_abs_diff"] = json!(4e-5);
        new["prompts"][0]["engine_greedy_ids"] = json!([4]);
        let d = diff(Some(&old), &new);
        assert!(
            d.contains("* max abs diff, prefill        2.00e-5 → 4.00e-5  (×2.00)"),
            "{d}"
        );
        assert!(
            d.contains("  max abs diff, decode         2.00e-5 → 2.00e-5  (=)"),
            "{d}"
        );
        assert!(
            d.contains("p: greedy path, prefill 2.00e-5 → 4.00e-5"),
            "{d}"
        );
    }

    #[test]
    fn missing_old_and_other_schemas_are_named() {
        let new = report();
        assert!(diff(None, &new).starts_with("no previous report"));
        let mut old = report();
        old["schema"] = json!("atenia.validate/0");
        let d = diff(Some(&old), &new);
        assert!(
            d.starts_with("note: OLD has schema atenia.validate/0"),
            "{d}"
        );
        let mut old = report();
        old["summary"]["bf16_max_abs_diff"] = Value::Null;
        old["summary"]["closer_than_bf16"] = Value::Null;
        let d = diff(Some(&old), &new);
        assert!(
            d.contains("bfloat16 max abs diff        not run → 1.00 (50000× closer)"),
            "{d}"
        );
    }
}
