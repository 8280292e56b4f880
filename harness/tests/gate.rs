//! The ADR-004 gate on the real models, as `cargo test` runs it: validate
//! (both paths, every position, layer by layer) on SmolLM2 and Gemma 3 with the
//! built-in prompts, compare on every real fixture case, and snapshots of the
//! drift summaries and greedy paths under golden/snapshots.

use atenia_testkit as tk;

use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::open::load;
use atenia_harness::compare::compare;
use atenia_harness::engine_run::Path;
use atenia_harness::metrics::DEFAULT_BAND;
use atenia_harness::prompts::default_prompts;
use atenia_harness::reference_file::LogitsFile;
use atenia_harness::validate::{validate, Options, Report};

/// Two significant digits: stable across machines (the engine's bits do not
/// depend on ISA or threads) yet any real change in drift shows in a diff.
fn sig2(v: f64) -> String {
    format!("{v:.1e}")
}

/// Snapshots live in golden/snapshots, named without the module path.
fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(tk::golden().join("snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

fn summary(r: &Report) -> serde_json::Value {
    let prompts: Vec<serde_json::Value> = r
        .prompts
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "positions": p.prefill.argmax_total,
                "max_abs_diff_prefill": sig2(p.prefill.max_abs_diff),
                "max_abs_diff_decode": sig2(p.decode.max_abs_diff),
                "argmax": format!("{}/{}", p.prefill.argmax_match.min(p.decode.argmax_match), p.prefill.argmax_total),
                "prefill_decode_bit_identical": p.prefill_decode_bit_identical,
                "first_divergence": p.first_divergence,
                "engine_greedy_ids": p.engine_greedy_ids,
                "engine_text": p.engine_text,
            })
        })
        .collect();
    serde_json::json!({
        "model": r.model.name,
        "band": r.band.name,
        "passed": r.passed,
        "max_abs_diff_prefill": sig2(r.summary.max_abs_diff_prefill),
        "max_abs_diff_decode": sig2(r.summary.max_abs_diff_decode),
        "prompts": prompts,
    })
}

/// Greedy tokens after each prompt: the same as `atenia-harness validate`'s default.
const GEN_TOKENS: usize = 24;

fn gate(model_file: &str, snapshot: &str) {
    let loaded = load(&tk::model_path(model_file)).unwrap();
    let rt = Runtime::new(2, None).unwrap();
    let opts = Options {
        gen_tokens: GEN_TOKENS,
        band: DEFAULT_BAND,
        bf16: false,
    };
    let r = validate(&loaded, &rt, &default_prompts(), &opts, &mut |_, _| {}).unwrap();
    for p in &r.prompts {
        eprintln!(
            "{model_file} {:<12} prefill {:.3e} decode {:.3e} argmax {}/{} divergence {:?}",
            p.name,
            p.prefill.max_abs_diff,
            p.decode.max_abs_diff,
            p.prefill.argmax_match,
            p.prefill.argmax_total,
            p.first_divergence
        );
    }
    assert!(
        r.passed,
        "{model_file}: the default band fails: {:#?}",
        r.failures
    );
    assert!(
        r.summary.all_prefill_decode_bit_identical,
        "prefill and decode logits differ in bits"
    );
    snapshot_settings().bind(|| insta::assert_json_snapshot!(snapshot, summary(&r)));
    committed_report_has_these_bits(snapshot, &r);
}

/// The committed report (reports/<snapshot>.json, written by
/// `scripts/ci-report.sh` with the same prompts and greedy tokens) holds
/// the logits this run computed, bit for bit: a change that moves the
/// engine's numbers must regenerate the reports, and CI then needs no second
/// validate to say whether they are stale.
fn committed_report_has_these_bits(snapshot: &str, r: &Report) {
    let path = tk::golden().join(format!("../reports/{snapshot}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let committed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(committed["gen_tokens"], GEN_TOKENS, "{}", path.display());
    assert_eq!(
        committed["summary"]["logits_sha256"].as_str(),
        Some(r.summary.logits_sha256.as_str()),
        "{}: the committed report's logits are not this engine's; run \
         scripts/ci-report.sh and commit reports/",
        path.display()
    );
}

#[test]
fn smollm2_holds_the_default_band() {
    gate("SmolLM2-135M-Instruct.Q4_1.gguf", "validate-smollm2");
}

#[test]
fn gemma3_holds_the_default_band() {
    gate("gemma-3-270m-q4_k_m.gguf", "validate-gemma3");
}

#[test]
fn compare_passes_every_real_fixture_case_on_both_paths() {
    let rt = Runtime::new(2, None).unwrap();
    let mut ran = 0;
    for (model_file, dir) in [
        (
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "SmolLM2-135M-Instruct.Q4_1",
        ),
        ("gemma-3-270m-q4_k_m.gguf", "gemma-3-270m-q4_k_m"),
    ] {
        let loaded = load(&tk::model_path(model_file)).unwrap();
        let dir = tk::golden().join("real").join(dir);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let f = entry.unwrap().path();
            if f.extension().is_none_or(|e| e != "safetensors") {
                continue;
            }
            let reference = LogitsFile::read(&f).unwrap();
            for path in [Path::Prefill, Path::Decode] {
                let r = compare(&loaded.model, &rt, &reference, path, DEFAULT_BAND).unwrap();
                assert!(r.passed, "{}: {:?}: {:#?}", f.display(), path, r.failures);
                assert_eq!(r.argmax_match, r.argmax_total, "{}", f.display());
                ran += 1;
            }
        }
    }
    assert_eq!(ran, 8);
}
