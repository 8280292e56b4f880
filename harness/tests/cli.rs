//! The `atenia-harness` binary's terminal contract: results on stdout that
//! survive a closed pipe, logs on stderr under -q / -v / --log-format json.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn harness() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atenia-harness"));
    c.stdin(Stdio::null());
    c
}

fn repo(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
        .display()
        .to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `atenia-harness ARGS | head -c 0`: the reader is gone before the first write.
fn run_with_stdout_closed(args: &[&str]) -> Output {
    let mut child = harness()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run atenia-harness");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait")
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let report = repo("reports/validate-smollm2.json");
    let base = repo("golden/hostile/gguf/base.gguf");
    let out = std::env::temp_dir().join(format!("atenia-harness-cli-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let dash = out.join("dash.html").display().to_string();
    let history = repo("reports/bench-history.jsonl");
    let json = out.join("v.json").display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["--help"],
        vec!["report-diff", &report, &report],
        vec![
            "dashboard",
            "--history",
            &history,
            "--validate",
            &report,
            "--out",
            &dash,
        ],
        vec![
            "validate",
            &base,
            "--gen-tokens",
            "2",
            "--no-bf16",
            "--json",
            &json,
        ],
        vec![
            "bench",
            &base,
            "--prompt-tokens",
            "4",
            "--gen-tokens",
            "2",
            "--runs",
            "1",
        ]
        .into_iter()
        .chain(["--no-depth"])
        .collect(),
    ];
    for args in cases {
        let o = run_with_stdout_closed(&args);
        let err = text(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "atenia-harness {args:?} with stdout closed: {:?}\n{err}",
            o.status
        );
        assert!(
            !err.contains("E-PANIC") && !err.contains("panicked"),
            "atenia-harness {args:?} panicked on a closed stdout:\n{err}"
        );
    }
    // validate still wrote its report although nobody read the summary.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["schema"], "atenia.validate/1");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn logs_follow_the_global_flags() {
    let base = repo("golden/hostile/gguf/base.gguf");
    let out = std::env::temp_dir().join(format!("atenia-harness-log-{}.json", std::process::id()));
    let o = out.display().to_string();
    let args = [
        "validate",
        &base,
        "--gen-tokens",
        "2",
        "--no-bf16",
        "--json",
        &o,
    ];
    let plain = harness().args(args).output().unwrap();
    assert!(
        text(&plain.stderr).contains("wrote "),
        "{}",
        text(&plain.stderr)
    );
    let quiet = harness().arg("-q").args(args).output().unwrap();
    assert_eq!(quiet.status.code(), plain.status.code());
    assert_eq!(text(&quiet.stderr), "", "-q: errors only");
    assert_eq!(
        quiet.stdout, plain.stdout,
        "stdout carries the same results"
    );
    let json = harness()
        .args(["--log-format", "json", "-v"])
        .args(args)
        .output()
        .unwrap();
    let err = text(&json.stderr);
    let events: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["level"] == "INFO"
                && e["message"].as_str().unwrap_or("").starts_with("wrote ")),
        "{err}"
    );
    assert!(events.iter().any(|e| e["level"] == "DEBUG"), "{err}");
    let _ = std::fs::remove_file(&out);
}
