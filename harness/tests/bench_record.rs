//! `atenia-harness bench` writes the history only when asked (`--record
//! [FILE]`), attaches a peer engine's run with `--peer FILE`, and the
//! committed dashboard is the page the committed history gives.
//!
//! The bench runs on the tiny hostile-suite base model with a 4-token prompt,
//! 2 generated tokens and one measured run: seconds, and no timing is asserted.

use atenia_testkit::text;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn model() -> String {
    repo()
        .join("golden/hostile/gguf/base.gguf")
        .display()
        .to_string()
}

/// A fresh, empty working directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("atenia-bench-record-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `atenia-harness bench MODEL <fast settings> EXTRA...`, run in `cwd`.
fn bench(cwd: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atenia-harness"))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .args(["bench", &model()])
        .args(["--prompt-tokens", "4", "--gen-tokens", "2", "--runs", "1"])
        .args(["--no-depth", "-t", "1"])
        .args(extra)
        .output()
        .expect("run atenia-harness")
}

fn ok(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The history's lines, each checked to be a well-formed bench record.
fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            assert_eq!(v["schema"], "atenia.bench/1", "{l}");
            assert_eq!(v["model"]["file"], "base.gguf");
            assert_eq!(v["prompt_tokens"], 4);
            assert_eq!(v["gen_tokens"], 2);
            assert_eq!(v["runs"], 1);
            assert_eq!(v["threads"], 1);
            for k in ["ttft_ms", "prefill_tokens_per_s", "decode_tokens_per_s"] {
                assert!(v[k].is_f64(), "{k} is a number: {l}");
            }
            assert!(v["commit"].is_string() && v["date"].is_string(), "{l}");
            v
        })
        .collect()
}

#[test]
fn bench_without_record_writes_nothing() {
    let cwd = scratch("plain");
    let o = bench(&cwd, &[]);
    ok(&o);
    let out = text(&o.stdout);
    assert!(out.contains("decode") && out.contains("prefill"), "{out}");
    assert!(!out.contains("appended"), "{out}");
    // The default history (reports/bench-history.jsonl, relative to the
    // working directory) was not created, nor anything else.
    assert_eq!(files_under(&cwd), Vec::<String>::new());
    // --no-history, from scripts written before --record, is the same.
    let o = bench(&cwd, &["--json", "--no-history"]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], "atenia.bench/1");
    assert_eq!(files_under(&cwd), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&cwd);
}

#[test]
fn record_appends_exactly_one_record() {
    let cwd = scratch("record");
    // --record alone: the default history, created with its directory.
    let o = bench(&cwd, &["--record"]);
    ok(&o);
    assert!(
        text(&o.stdout).contains("appended to reports/bench-history.jsonl"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(files_under(&cwd), vec!["reports/bench-history.jsonl"]);
    assert_eq!(records(&cwd.join("reports/bench-history.jsonl")).len(), 1);

    // --record FILE: one more line after what the file held, which stays as it was.
    let file = cwd.join("mine.jsonl");
    std::fs::copy(cwd.join("reports/bench-history.jsonl"), &file).unwrap();
    let before = std::fs::read_to_string(&file).unwrap();
    let o = bench(&cwd, &["--json", "--record", "mine.jsonl"]);
    ok(&o);
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(after.starts_with(&before));
    let rs = records(&file);
    assert_eq!(rs.len(), 2);
    // The appended line is the record --json printed.
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rs[1], printed);
    // The default history was left alone.
    assert_eq!(records(&cwd.join("reports/bench-history.jsonl")).len(), 1);
    let _ = std::fs::remove_dir_all(&cwd);
}

#[test]
fn record_and_no_history_conflict() {
    let cwd = scratch("conflict");
    let o = bench(&cwd, &["--record", "--no-history"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("cannot be used with"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(files_under(&cwd), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&cwd);
}

#[test]
fn peer_figures_go_into_the_record() {
    let cwd = scratch("peer");
    let peer = serde_json::json!({
        "engine": "llama.cpp",
        "commit": "0c1e57098",
        "build_flags": "-DGGML_NATIVE=ON -DGGML_AMX_INT8=OFF",
        "prefill_tokens_per_s": 500.0,
        "decode_tokens_per_s": 150.0
    });
    std::fs::write(cwd.join("peer.json"), peer.to_string()).unwrap();
    let o = bench(&cwd, &["--peer", "peer.json", "--record", "h.jsonl"]);
    ok(&o);
    let rs = records(&cwd.join("h.jsonl"));
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0]["peer"], peer);

    // A record made without --peer has no peer field at all.
    let o = bench(&cwd, &["--json"]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.get("peer").is_none(), "{v}");
    let _ = std::fs::remove_dir_all(&cwd);
}

#[test]
fn a_bad_peer_file_is_bad_input_and_writes_nothing() {
    let cwd = scratch("bad-peer");
    for (name, body, msg) in [
        ("not-json.json", "{engine", "is not JSON"),
        (
            "no-engine.json",
            r#"{"decode_tokens_per_s": 1}"#,
            r#"must hold a JSON object with an "engine" name"#,
        ),
        ("array.json", "[1, 2]", r#"with an "engine" name"#),
    ] {
        std::fs::write(cwd.join(name), body).unwrap();
        let o = bench(&cwd, &["--peer", name, "--record", "h.jsonl"]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains("error[E-ARG]") && err.contains("--peer"),
            "{name}: {err}"
        );
        assert!(err.contains(msg), "{name}: {err}");
        assert!(err.contains("help:"), "{name}: {err}");
    }
    let o = bench(&cwd, &["--peer", "absent.json", "--record", "h.jsonl"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error[E-IO]") && err.contains("absent.json"),
        "{err}"
    );
    assert!(!cwd.join("h.jsonl").exists());
    let _ = std::fs::remove_dir_all(&cwd);
}

/// CI regenerates reports/dashboard.html from the committed history and
/// validate reports (scripts/ci-report.sh); the page has no clock in it, so
/// the committed one must be byte for byte what they give.
#[test]
fn the_committed_dashboard_is_the_history_rendered() {
    let dir = scratch("dashboard");
    let out = dir.join("dashboard.html");
    let o = Command::new(env!("CARGO_BIN_EXE_atenia-harness"))
        .current_dir(repo())
        .stdin(Stdio::null())
        .args(["dashboard", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    let fresh = std::fs::read_to_string(&out).unwrap();
    let committed = std::fs::read_to_string(repo().join("reports/dashboard.html")).unwrap();
    assert!(
        fresh == committed,
        "reports/dashboard.html is not what reports/bench-history.jsonl and reports/validate-*.json give: \
         run `atenia-harness dashboard` from the repository root (scripts/ci-report.sh does) and commit it"
    );
    // And rendering twice gives the same page.
    let o = Command::new(env!("CARGO_BIN_EXE_atenia-harness"))
        .current_dir(repo())
        .args(["dashboard", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), fresh);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The record's logits digest: the same bits with every weight in memory and
/// with most of them streamed from the file under a 16 MiB budget.
#[test]
fn the_logits_digest_is_the_same_at_every_budget() {
    let cwd = scratch("digest");
    let run = |extra: &[&str]| -> serde_json::Value {
        let o = Command::new(env!("CARGO_BIN_EXE_atenia-harness"))
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .args(["bench", &atenia_testkit::smollm2()])
            .args(["--prompt-tokens", "8", "--gen-tokens", "2", "--runs", "1"])
            .args(["--no-depth", "-t", "2", "--json"])
            .args(extra)
            .output()
            .unwrap();
        ok(&o);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let all = run(&[]);
    let streamed = run(&[
        "--memory-budget",
        "16MiB",
        "--stream-read",
        "direct",
        "--disk",
    ]);
    let d = all["logits_sha256"].as_str().unwrap();
    assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
    assert!(
        streamed["memory"]["streamed_bytes_per_pass"]
            .as_u64()
            .unwrap()
            > 0,
        "{streamed}"
    );
    assert_eq!(streamed["logits_sha256"].as_str(), Some(d));
    // --disk: the disk read on the model file at one read in flight and at
    // the reader's depth, and decode's read bandwidth as a fraction of it.
    let disk = &streamed["disk"];
    for qd in ["qd1", "qd"] {
        assert!(
            disk[qd]["bandwidth_bytes_per_s"].as_f64().unwrap() > 0.0,
            "{disk}"
        );
        assert!(disk[qd]["bytes"].as_u64().unwrap() > 0, "{disk}");
    }
    assert_eq!(disk["qd1"]["queue_depth"].as_u64(), Some(1), "{disk}");
    assert!(
        disk["decode_fraction_of_disk"].as_f64().unwrap() > 0.0,
        "{disk}"
    );
    let m = &streamed["memory"];
    assert!(m["read_amplification"].as_f64().is_some(), "{m}");
    assert!(m["stream_reader"]["slots"].as_u64().unwrap() >= 1, "{m}");
    assert!(all.get("disk").is_none(), "{all}");
    let _ = std::fs::remove_dir_all(&cwd);
}
