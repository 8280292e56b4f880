//! The memory guard in `atenia-harness validate` and `bench` (issue 6):
//! both refuse to start with `E-RESOURCE` (exit 1) when even streaming
//! cannot fit, both write `--trace` files that replay, and both report the
//! memory telemetry in their JSON. The sensor is scripted
//! (`--sensor-script`, golden/traces/*-sensor.json) where the test needs
//! a given memory situation.

use atenia_testkit as tk;

use std::path::PathBuf;
use std::process::{Command, Output};

use atenia_harness::replay::{replay, Outcome};
use serde_json::Value;

const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn harness(args: &[&str], sensor: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atenia-harness"));
    cmd.args(args);
    if let Some(s) = sensor {
        cmd.arg("--sensor-script")
            .arg(tk::golden().join("traces").join(s));
    }
    cmd.output().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("atenia-guard-{}-{name}", std::process::id()))
}

fn events(path: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        matches!(replay(&text), Ok(Outcome::Identical(n)) if n > 0),
        "{text}"
    );
    let _ = std::fs::remove_file(path);
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn decisions(ev: &[Value]) -> Vec<String> {
    ev.iter()
        .filter(|v| v["kind"] == "decision")
        .map(|v| v["decision"]["decision"].as_str().unwrap().to_string())
        .collect()
}

fn assert_refused(out: &Output, trace: &PathBuf) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error[E-RESOURCE]"), "{err}");
    assert!(err.contains("only 1.0 MiB"), "{err}");
    let ev = events(trace);
    assert_eq!(decisions(&ev), ["refuse"]);
    assert!(ev.iter().any(|v| v["action"] == "refuse"));
}

#[test]
fn validate_and_bench_refuse_when_even_streaming_cannot_fit() {
    let m = tk::model_path(SMOL);
    let m = m.to_str().unwrap();
    let t = tmp("refuse-validate.jsonl");
    let out = harness(
        &["validate", m, "--no-bf16", "--trace", t.to_str().unwrap()],
        Some("refuse-sensor.json"),
    );
    assert_refused(&out, &t);
    let t = tmp("refuse-bench.jsonl");
    let out = harness(
        &["bench", m, "--trace", t.to_str().unwrap()],
        Some("refuse-sensor.json"),
    );
    assert_refused(&out, &t);
}

/// `bench --memory-budget 16MiB`: the record carries the budget and the
/// telemetry of a streamed run; the trace has the start decision and a
/// reading before each run (warm-up and one measured).
#[test]
fn bench_streams_under_a_budget_and_reports_it() {
    let m = tk::model_path(SMOL);
    let t = tmp("bench.jsonl");
    let out = harness(
        &[
            "bench",
            m.to_str().unwrap(),
            "--memory-budget",
            "16MiB",
            "--prompt-tokens",
            "8",
            "--gen-tokens",
            "4",
            "--runs",
            "1",
            "--no-depth",
            "--json",
            "-t",
            "2",
            "--trace",
            t.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["memory_budget_bytes"], 16u64 << 20);
    let mem = &r["memory"];
    assert_eq!(mem["budget_bytes"], 16u64 << 20);
    assert!(mem["tensors_streamed"].as_u64().unwrap() > 0, "{mem}");
    // Two runs (warm-up and one measured) of one prefill and four decode
    // passes, then the untimed prefill whose logits the record's digest is.
    assert_eq!(mem["passes"], 11, "{mem}");
    assert!(
        mem["streamed_bytes_total"].as_u64().unwrap()
            >= 10 * mem["streamed_bytes_per_pass"].as_u64().unwrap() / 2,
        "{mem}"
    );
    assert!(mem["readahead_pages"].as_u64().unwrap() > 0, "{mem}");
    assert!(mem["io_wait_ms"].as_f64().unwrap() > 0.0, "{mem}");
    assert!(mem["compute_ms"].as_f64().unwrap() > 0.0, "{mem}");
    let ev = events(&t);
    assert!(ev[0]["source"]
        .as_str()
        .unwrap()
        .starts_with("atenia-harness bench"));
    let ds = decisions(&ev);
    assert_eq!(ds[0], "proceed");
    assert_eq!(
        ds.len(),
        3,
        "start, before the warm-up, before the run: {ds:?}"
    );
}

/// `validate --memory-budget --trace --json` on two short prompts: the
/// report's `memory` object holds the telemetry, the trace a reading before
/// the second prompt, and the gate still passes (the logits are the same bits).
#[test]
fn validate_traces_its_guard_and_reports_memory() {
    let m = tk::model_path(SMOL);
    let prompts = tmp("prompts.json");
    std::fs::write(
        &prompts,
        r#"[{"name": "capital", "text": "The capital of France is", "chat": false},
            {"name": "count", "text": "One, two, three,", "chat": false}]"#,
    )
    .unwrap();
    let (t, json) = (tmp("validate.jsonl"), tmp("validate.json"));
    let out = harness(
        &[
            "validate",
            m.to_str().unwrap(),
            "--prompts",
            prompts.to_str().unwrap(),
            "--gen-tokens",
            "2",
            "--no-bf16",
            "-t",
            "2",
            "--memory-budget",
            "16MiB",
            "--trace",
            t.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        None,
    );
    let _ = std::fs::remove_file(&prompts);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(r["passed"], true, "{}", r["failures"]);
    let mem = &r["memory"];
    assert_eq!(mem["budget_bytes"], 16u64 << 20);
    assert!(mem["tensors_streamed"].as_u64().unwrap() > 0, "{mem}");
    assert!(mem["pieces_streamed"].as_u64().unwrap() > 0, "{mem}");
    assert!(mem["io_wait_fraction"].as_f64().is_some(), "{mem}");
    for k in ["evictions", "tightenings", "replans"] {
        assert!(mem[k].is_u64(), "{k}: {mem}");
    }
    let ev = events(&t);
    assert_eq!(
        decisions(&ev).len(),
        2,
        "start and before the second prompt"
    );
}
