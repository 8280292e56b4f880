//! Mistakes a person makes on `atenia-harness`'s command line (issue 11):
//! clear errors with exit status 2 at once, before any work, no hang, no
//! panic; and the JSON convention (`--json` on stdout, `--json-out FILE`,
//! validate's old `--json FILE`).

use atenia_testkit::{self as tk, run_bounded, text};

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Bad input is answered before any model is read: in well under a second on
/// a quiet machine. The test allows far more, so that a fully loaded CI
/// machine cannot fail it, and still far less than any work would take.
const PROMPT: Duration = Duration::from_secs(20);

/// Runs `atenia-harness`; a run past 120 s is killed and fails the test,
/// so does a panic.
fn harness(args: &[&str]) -> (Output, Duration) {
    run_bounded(
        env!("CARGO_BIN_EXE_atenia-harness"),
        args,
        Duration::from_secs(120),
    )
}

fn refused(args: &[&str], needles: &[&str]) {
    let (o, took) = harness(args);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(took < PROMPT, "{args:?} took {took:?}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: no {n:?} in: {err}");
    }
    assert!(!err.contains("   "), "{args:?}: a run of spaces in: {err}");
    assert!(!err.contains("E-PANIC"), "{err}");
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("atenia-harness-args-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn base() -> String {
    tk::golden()
        .join("hostile/gguf/base.gguf")
        .display()
        .to_string()
}

#[test]
fn too_many_threads_is_refused() {
    let m = base();
    for cmd in ["validate", "bench", "compare"] {
        let mut args = vec![cmd, &m, "--threads", "100000"];
        if cmd == "compare" {
            args.extend(["--reference", "/nonexistent.safetensors"]);
        }
        refused(
            &args,
            &["error[E-ARG]", "100000 threads is more than", "--threads 0"],
        );
    }
    refused(
        &[
            "logits", "-m", &m, "-p", "hi", "-t", "100000", "--out", "/tmp/x",
        ],
        &["100000 threads is more than"],
    );
}

#[test]
fn unwritable_outputs_are_refused_before_the_work() {
    let m = base();
    refused(
        &["validate", &m, "--html", "/proc/x.html"],
        &["error[E-ARG]", "--html", "cannot write /proc/x.html"],
    );
    // The old spelling and the new one.
    refused(
        &["validate", &m, "--json", "/proc/x.json"],
        &["--json", "cannot write /proc/x.json"],
    );
    refused(
        &["validate", &m, "--json-out", "/proc/x.json"],
        &["--json-out", "cannot write /proc/x.json"],
    );
    refused(
        &["bench", &m, "--json-out", "/proc/x.json", "--no-history"],
        &["--json-out", "cannot write /proc/x.json"],
    );
    refused(
        &["bench", &m, "--record", "/proc/h.jsonl"],
        &["--record", "cannot write /proc/h.jsonl"],
    );
    refused(
        &[
            "logits",
            "-m",
            &m,
            "-p",
            "hi",
            "--out",
            "/proc/x.safetensors",
        ],
        &["--out", "cannot write /proc/x.safetensors"],
    );
    refused(
        &["dashboard", "--out", "/proc/d.html"],
        &["--out", "cannot write /proc/d.html"],
    );
    refused(
        &["validate", &m, "--trace", "/proc/t.jsonl", "--no-bf16"],
        &["--trace", "cannot write /proc/t.jsonl"],
    );
}

#[test]
fn a_memory_budget_without_a_unit_is_refused() {
    refused(
        &["bench", &base(), "--memory-budget", "16"],
        &["--memory-budget", "has no unit: 16MiB?"],
    );
}

/// validate: `--json` alone prints the report on stdout (no summary);
/// `--json-out FILE` and the old `--json FILE` write it, the summary on stdout.
#[test]
fn validate_json_on_stdout_and_in_files() {
    let m = tk::model_path(SMOL);
    let m = m.to_str().unwrap();
    let prompts = tmp("prompts.json");
    std::fs::write(
        &prompts,
        r#"[{"name": "capital", "text": "The capital of France is", "chat": false}]"#,
    )
    .unwrap();
    let p = prompts.to_str().unwrap();
    let common_args = ["--prompts", p, "--gen-tokens", "1", "--no-bf16", "-t", "2"];
    let new = tmp("new.json");
    let mut a = vec!["validate", m, "--json", "--json-out", new.to_str().unwrap()];
    a.extend(common_args);
    let (o, _) = harness(&a);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the JSON report ({e}): {}", text(&o.stdout)));
    assert_eq!(out["passed"], true);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&new).unwrap()).unwrap();
    assert_eq!(file["schema"], out["schema"]);
    assert_eq!(file["prompts"][0]["name"], "capital");

    let old = tmp("old.json");
    let mut a = vec!["validate", m, "--json", old.to_str().unwrap()];
    a.extend(common_args);
    let (o, _) = harness(&a);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("PASS"), "{}", text(&o.stdout));
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&old).unwrap()).unwrap();
    assert_eq!(file["passed"], true);

    // The logits' digest: the same bits on one thread of the scalar path as
    // on two of the fastest, and a report diff says so.
    let digest = out["summary"]["logits_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(
        out["prompts"][0]["logits_sha256"].as_str().unwrap().len(),
        71
    );
    let a = [
        "validate",
        m,
        "--prompts",
        p,
        "--gen-tokens",
        "1",
        "--no-bf16",
    ];
    let (o, _) = harness(&[&a[..], &["-t", "1", "--isa", "scalar", "--json"]].concat());
    assert!(o.status.success(), "{}", text(&o.stderr));
    let scalar: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        scalar["summary"]["logits_sha256"].as_str(),
        Some(digest.as_str())
    );
    let (o, _) = harness(&["report-diff", old.to_str().unwrap(), new.to_str().unwrap()]);
    assert!(
        text(&o.stdout).contains("bit-identical"),
        "{}",
        text(&o.stdout)
    );
    for f in [&prompts, &new, &old] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn help_states_the_json_convention() {
    let (o, _) = harness(&["--help"]);
    let help = text(&o.stdout);
    assert!(help.contains("--json-out FILE writes it to FILE"), "{help}");
    let (o, _) = harness(&["validate", "--help"]);
    let help = text(&o.stdout);
    assert!(help.contains("--json [<FILE>]"), "{help}");
    assert!(help.contains("--json-out <FILE>"), "{help}");
}

/// `--threads` is the engine's shared flag (cli::args::ThreadsArgs): every
/// harness command that runs a model shows it the same way.
#[test]
fn threads_reads_the_same_in_every_command() {
    for cmd in ["validate", "compare", "logits", "bench"] {
        let (o, _) = harness(&[cmd, "--help"]);
        let help = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{cmd}: {help}");
        assert!(help.contains("-t, --threads <N>"), "{cmd}: {help}");
        assert!(help.contains("at most 4 per core"), "{cmd}: {help}");
    }
    let (o, _) = harness(&["bench", "--help"]);
    let help = text(&o.stdout);
    assert!(help.contains("--isa <ISA>"), "{help}");
}
