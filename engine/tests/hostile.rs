//! The hostile-file corpus (golden/hostile/, written by scripts/gen_hostile.py):
//! every case goes through `atenia generate` and must fail cleanly — exit
//! status 2, the `error[E-...]` code its manifest names, no caught panic —
//! within a wall-clock limit (a hang is a failure) and under an address-space
//! limit (an allocation sized by a lying number is a failure). The valid bases
//! (`ok`) must run under the same limits.

use atenia_testkit as tk;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A case that takes longer than this hangs. A hang detector, not a speed check: a hostile file is refused in milliseconds on a
/// quiet machine, and the limit leaves room for a CI machine under full load.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Virtual address space allowed to the child, in KiB (`ulimit -v`). The
/// engine memory-maps the model and the corpus files are tens of KiB; the
/// valid bases run in under 32 MiB with two threads, so 256 MiB leaves room
/// for the allocator and thread stacks while any allocation sized by a lying
/// count (GiBs) fails.
const ADDRESS_SPACE_KIB: u64 = 256 * 1024;

struct Case {
    path: String,
    expect: String,
    what: String,
}

fn corpus() -> PathBuf {
    tk::golden().join("hostile")
}

fn manifest() -> Vec<Case> {
    let text = std::fs::read_to_string(corpus().join("manifest.json"))
        .expect("golden/hostile/manifest.json (run python3 scripts/gen_hostile.py)");
    let v: serde_json::Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    v.as_array()
        .expect("manifest.json is a list")
        .iter()
        .map(|c| Case {
            path: c["path"].as_str().unwrap().to_string(),
            expect: c["expect"].as_str().unwrap().to_string(),
            what: c["what"].as_str().unwrap().to_string(),
        })
        .collect()
}

struct Outcome {
    /// `None` when killed for running past [`TIMEOUT`] (or by a signal).
    status: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `atenia generate` on `model` under the time and memory limits.
fn run_limited(model: &Path) -> Outcome {
    run_limited_args(
        &[
            "generate",
            "--prompt",
            "hi",
            "--max-tokens",
            "1",
            "--threads",
            "2",
            "--model",
        ],
        model,
    )
}

/// Runs `atenia ARGS MODEL` under the time and memory limits.
fn run_limited_args(args: &[&str], model: &Path) -> Outcome {
    let bin = env!("CARGO_BIN_EXE_atenia");
    // `ulimit -v` in a shell that then execs the engine: std has no setrlimit.
    let script = format!("ulimit -v {ADDRESS_SPACE_KIB} || exit 97; exec \"$@\"");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(bin)
        .args(args)
        .arg(model)
        // glibc reserves 64 MiB of address space per thread arena.
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Outcome {
        status: status.code(),
        timed_out,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        elapsed: start.elapsed(),
    }
}

/// What is wrong with the outcome of a case, if anything.
fn judge(case: &Case, o: &Outcome) -> Option<String> {
    if o.timed_out {
        return Some(format!("hung: killed after {TIMEOUT:?}"));
    }
    if o.status == Some(97) {
        return Some("the shell could not set the address-space limit".into());
    }
    if o.stderr.contains("E-PANIC") {
        return Some(format!("panicked: {}", o.stderr.trim()));
    }
    if case.expect == "ok" {
        if o.status != Some(0) {
            return Some(format!(
                "a valid file failed ({:?}): {}",
                o.status,
                o.stderr.trim()
            ));
        }
        if o.stdout.is_empty() {
            return Some("a valid file printed no text".into());
        }
        return None;
    }
    let want = format!("error[{}]:", case.expect);
    let first = o.stderr.lines().next().unwrap_or("");
    if o.status != Some(2) {
        let how = match o.status {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal (abort on allocation failure? stack overflow?)".into(),
        };
        return Some(format!("{how}, want 2 and {want}: {}", o.stderr.trim()));
    }
    if !first.starts_with(&want) {
        return Some(format!("want {want}, got: {first}"));
    }
    if !o.stderr.lines().any(|l| l.starts_with("  help: ")) {
        return Some(format!("no `  help:` line: {}", o.stderr.trim()));
    }
    if !o.stdout.is_empty() {
        return Some(format!("printed to stdout on failure: {:?}", o.stdout));
    }
    None
}

#[test]
fn every_hostile_file_fails_cleanly() {
    let cases = manifest();
    assert!(
        cases.len() > 150,
        "the corpus has only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for case in &cases {
        let o = run_limited(&corpus().join(&case.path));
        if o.elapsed > slowest.0 {
            slowest = (o.elapsed, case.path.clone());
        }
        if let Some(why) = judge(case, &o) {
            failures.push(format!("{} ({}): {why}", case.path, case.what));
        }
    }
    eprintln!(
        "{} hostile cases; slowest {} in {:?}",
        cases.len(),
        slowest.1,
        slowest.0
    );
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The limits themselves must not break a legitimate run, or every case
/// would "fail cleanly" for the wrong reason.
#[test]
fn the_limits_let_valid_models_run() {
    for model in [
        corpus().join("gguf/base.gguf"),
        corpus().join("hf/base"),
        tk::golden().join("gguf/llama/llama-F32.gguf"),
    ] {
        let o = run_limited(&model);
        assert_eq!(o.status, Some(0), "{}: {}", model.display(), o.stderr);
    }
}

/// The manifest, the README and the files on disk describe the same corpus.
#[test]
fn manifest_matches_the_files() {
    let cases = manifest();
    let readme = std::fs::read_to_string(corpus().join("README.md")).unwrap();
    let mut listed: Vec<String> = cases.iter().map(|c| c.path.clone()).collect();
    for c in &cases {
        assert!(
            corpus().join(&c.path).exists(),
            "{} is in the manifest but not on disk",
            c.path
        );
        assert!(
            readme.contains(&format!("`{}`", c.path)),
            "{} is not documented in README.md",
            c.path
        );
        assert!(
            c.expect == "ok" || (c.expect.starts_with("E-") && c.expect != "E-PANIC"),
            "{}: bad expectation {}",
            c.path,
            c.expect
        );
    }
    let mut on_disk = Vec::new();
    for sub in ["gguf", "hf"] {
        for e in std::fs::read_dir(corpus().join(sub)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            on_disk.push(format!("{sub}/{name}"));
        }
    }
    listed.sort();
    on_disk.sort();
    assert_eq!(
        listed, on_disk,
        "files not in the manifest, or cases without files"
    );
}

/// `diagnose` reads every hostile file too: it must report, not crash, and
/// exit with the same code as loading does.
#[test]
fn diagnose_survives_every_hostile_file() {
    let mut failures = Vec::new();
    for case in manifest() {
        let o = run_limited_args(&["diagnose", "--json"], &corpus().join(&case.path));
        let v: Option<serde_json::Value> = serde_json::from_str(&o.stdout).ok();
        let why = if o.timed_out {
            Some("hung".to_string())
        } else if o.stderr.contains("E-PANIC") || o.status.is_none() {
            Some(format!("crashed ({:?}): {}", o.status, o.stderr.trim()))
        } else if let Some(v) = v {
            let code = v["error"]["code"].as_str().unwrap_or("ok");
            let status = if case.expect == "ok" { 0 } else { 2 };
            (code != case.expect || o.status != Some(status)).then(|| {
                format!(
                    "diagnose says {code} (exit {:?}), loading says {}",
                    o.status, case.expect
                )
            })
        } else {
            Some(format!("stdout is not JSON: {:?}", o.stdout))
        };
        if let Some(why) = why {
            failures.push(format!("{}: {why}", case.path));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Inputs the fuzzers (fuzz/, scripts/fuzz.sh) found, kept in the corpus as
/// regression cases: each once crashed the CLI and must now be a clean refusal.
const FUZZ_FINDINGS: &[(&str, &str)] = &[
    // tokenizers 0.22 panicked (exit 101) on malformed JSON inside "decoder".
    ("hf/tokenizer-decoder-control-char", "E-TOKENIZER"),
    ("hf/tokenizer-decoder-bad-utf8", "E-TOKENIZER"),
    // Not found by the fuzzer but the same hole: an escape that is valid
    // syntax but not a character.
    ("hf/tokenizer-decoder-lone-surrogate", "E-TOKENIZER"),
];

#[test]
fn fuzz_findings_stay_fixed() {
    let cases = manifest();
    for &(path, code) in FUZZ_FINDINGS {
        let case = cases
            .iter()
            .find(|c| c.path == path)
            .unwrap_or_else(|| panic!("{path} missing from manifest.json"));
        assert_eq!(case.expect, code, "{path}");
        let o = run_limited(&corpus().join(path));
        assert_eq!(judge(case, &o), None, "{path}");
        assert_eq!(o.status, Some(2), "{path}: {}", o.stderr);
        assert!(
            o.stderr.starts_with(&format!("error[{code}]:")) && o.stderr.contains("not valid JSON"),
            "{path}: {}",
            o.stderr
        );
    }
}
