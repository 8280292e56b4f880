//! Mistakes a person makes on `atenia`'s command line, and what they get
//! back (issue 11): each is a clear error with exit status 2, at once, with
//! no hang and no panic; and the JSON convention (`--json` on stdout,
//! `--json-out FILE` to a file) across the commands.

use atenia_testkit::{self as tk, run_bounded, text};

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

/// Bad input is answered before any model is read: in well under a second on
/// a quiet machine. The test allows far more, so that a fully loaded CI
/// machine cannot fail it, and still far less than any work would take.
const PROMPT: Duration = Duration::from_secs(20);

/// Runs `atenia` with `args`; a run past 60 s is killed and fails the test
/// (a hang), so does a panic. Returns the output and how long it took.
fn atenia(args: &[&str]) -> (Output, Duration) {
    run_bounded(env!("CARGO_BIN_EXE_atenia"), args, Duration::from_secs(60))
}

/// Asserts a quick exit 2 whose stderr holds every one of `needles`.
fn refused(args: &[&str], needles: &[&str]) -> String {
    let (o, took) = atenia(args);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(took < PROMPT, "{args:?} took {took:?}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: no {n:?} in: {err}");
    }
    assert!(!err.contains("   "), "{args:?}: a run of spaces in: {err}");
    assert!(o.stdout.is_empty(), "{args:?}: {}", text(&o.stdout));
    err
}

fn base() -> String {
    tk::golden()
        .join("hostile/gguf/base.gguf")
        .display()
        .to_string()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("atenia-cli-args-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn too_many_threads_is_refused_with_the_limit_and_the_fix() {
    let max = 4 * cpus();
    let m = base();
    for args in [
        vec![
            "generate",
            "-m",
            &m,
            "-p",
            "hi",
            "-n",
            "1",
            "--threads",
            "100000",
        ],
        vec!["chat", "-m", &m, "-t", "100000"],
    ] {
        let err = refused(
            &args,
            &[
                "error[E-ARG]",
                "--threads",
                "100000 threads is more than",
                &format!("{max}, the most this machine accepts"),
                "--threads 0",
                "help:",
            ],
        );
        assert!(err.starts_with("error[E-ARG]"), "{err}");
    }
    // One over the limit is refused; the limit itself runs.
    let over = (max + 1).to_string();
    refused(
        &["generate", "-m", &m, "-p", "hi", "-n", "1", "-t", &over],
        &[
            "--threads",
            &format!("{} threads is more than {max}", max + 1),
        ],
    );
    let at = max.to_string();
    let (o, _) = atenia(&[
        "generate", "-m", &m, "-p", "hi", "-n", "1", "-t", &at, "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["threads"], max);
}

#[test]
fn negative_sampling_values_get_the_range_error() {
    let m = base();
    for (flag, value, range) in [
        ("--temperature", "-1", "must be a finite number ≥ 0"),
        ("--top-p", "-0.5", "must be in (0, 1]"),
        ("--top-p", "0", "must be in (0, 1]"),
        ("--top-k", "-1", "must be ≥ 0"),
        ("--min-p", "-0.1", "must be in [0, 1]"),
        ("--min-p", "1.5", "must be in [0, 1]"),
        ("--repeat-penalty", "-1.1", "must be a finite number > 0"),
        ("--repeat-last-n", "-1", "must be ≥ 0"),
        ("--seed", "-2", "or -1 for a random seed"),
    ] {
        let err = refused(
            &["generate", "-m", &m, "-p", "hi", flag, value],
            &[&format!("invalid value '{value}' for '{flag}"), range],
        );
        assert!(!err.contains("unexpected argument"), "{err}");
    }
    // chat shares the flags.
    refused(
        &["chat", "-m", &m, "--temperature", "-1"],
        &["'--temperature <T>'", "must be a finite number ≥ 0"],
    );
    // Not a number at all.
    refused(
        &["generate", "-m", &m, "-p", "hi", "--top-k", "many"],
        &["--top-k", "is not a whole number"],
    );
}

#[test]
fn seed_minus_one_is_random_and_reported() {
    let m = base();
    let args = |seed: &'static str| {
        [
            "generate", "-m", &m, "-p", "hi", "-n", "2", "--seed", seed, "--output", "json",
        ]
        .map(str::to_string)
    };
    let seed_of = |seed: &'static str| {
        let a = args(seed);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (o, _) = atenia(&a);
        let err = text(&o.stderr);
        assert!(o.status.success(), "{err}");
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        (v["seed"].as_u64().unwrap(), err)
    };
    let (s42, err) = seed_of("42");
    assert_eq!(s42, 42);
    assert!(!err.contains("random"), "{err}");
    let (a, err) = seed_of("-1");
    assert!(
        err.contains(&format!("seed {a} (random; --seed {a} repeats this run)")),
        "{err}"
    );
    let (b, _) = seed_of("-1");
    assert_ne!(a, b, "two random seeds in a row are the same");
}

#[test]
fn a_memory_budget_needs_a_unit() {
    let m = base();
    refused(
        &["generate", "-m", &m, "-p", "hi", "--memory-budget", "16"],
        &[
            "invalid value '16' for '--memory-budget <SIZE>'",
            "has no unit: 16MiB?",
            "16B is 16 bytes",
        ],
    );
    refused(
        &["chat", "-m", &m, "--memory-budget", "lots"],
        &["\"lots\" is not a size"],
    );
    // Explicit bytes with B.
    let (o, _) = atenia(&[
        "generate",
        "-m",
        &m,
        "-p",
        "hi",
        "-n",
        "1",
        "--memory-budget",
        "1073741824B",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["memory"]["budget_bytes"], 1u64 << 30);
}

/// A budget above the memory available is lowered, and says so.
#[test]
fn a_budget_above_the_memory_available_is_lowered_with_a_warning() {
    let script = tmp("sensor.json");
    let reading = |avail: u64| {
        serde_json::json!({
            "t_ms": 0,
            "mem_available_bytes": avail,
            "mem_total_bytes": 8u64 << 30,
            "cgroup_limit_bytes": null,
            "cgroup_current_bytes": null,
            "cgroup_file_bytes": null,
            "budget_bytes": null
        })
    };
    std::fs::write(&script, serde_json::json!([reading(4 << 30)]).to_string()).unwrap();
    let (o, _) = atenia(&[
        "generate",
        "-m",
        &base(),
        "-p",
        "hi",
        "-n",
        "1",
        "--memory-budget",
        "64GiB",
        "--sensor-script",
        script.to_str().unwrap(),
        "--json",
    ]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(
            "warning: --memory-budget 64.0 GiB is more than the 4.0 GiB of memory available \
             (MemAvailable and the cgroup limit): running under 2.0 GiB instead"
        ),
        "{err}"
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["memory"]["budget_bytes"], 2u64 << 30);
    // A budget that fits is kept, without a warning.
    let (o, _) = atenia(&[
        "generate",
        "-m",
        &base(),
        "-p",
        "hi",
        "-n",
        "1",
        "--memory-budget",
        "1GiB",
        "--sensor-script",
        script.to_str().unwrap(),
    ]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("warning"), "{err}");
    let _ = std::fs::remove_file(&script);
}

#[test]
fn unwritable_outputs_are_refused_before_the_work() {
    let m = base();
    let e = refused(
        &[
            "generate",
            "-m",
            &m,
            "-p",
            "hi",
            "--json-out",
            "/proc/x.json",
        ],
        &["error[E-ARG]", "--json-out", "cannot write /proc/x.json"],
    );
    assert!(!e.contains("cannot read"), "{e}");
    refused(
        &["diagnose", &m, "--json-out", "/proc/x.json"],
        &["cannot write /proc/x.json"],
    );
    refused(
        &["doctor", "--json-out", "/proc/x.json"],
        &["cannot write /proc/x.json"],
    );
    refused(
        &["generate", "-m", &m, "-p", "hi", "--trace", "/proc/t.jsonl"],
        &["--trace", "cannot write /proc/t.jsonl"],
    );
    // A directory where a file is wanted.
    let dir = tmp("a-dir");
    std::fs::create_dir_all(&dir).unwrap();
    refused(
        &["capabilities", "--json-out", dir.to_str().unwrap()],
        &["cannot write", "it is a directory"],
    );
    refused(
        &["convert", &m, "--out", "/proc/nope"],
        &["error[E-ARG]", "--out", "cannot write to /proc/nope"],
    );
    // A file where the output directory is wanted.
    refused(
        &["convert", &m, "--out", &m],
        &["cannot write to", "not a directory"],
    );
}

#[test]
fn convert_takes_a_gguf_file_not_a_directory() {
    let dir = tmp("not-a-gguf");
    std::fs::create_dir_all(&dir).unwrap();
    let out = tmp("convert-out");
    refused(
        &[
            "convert",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &["error[E-ARG]", "is a directory", "takes a GGUF file"],
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn a_directory_that_is_not_a_model_says_what_a_model_needs() {
    let empty = tmp("empty-model-dir");
    std::fs::create_dir_all(&empty).unwrap();
    let e = empty.to_str().unwrap();
    for args in [
        vec!["generate", "-m", e, "-p", "hi"],
        vec!["chat", "-m", e],
        vec!["diagnose", e],
    ] {
        refused_or_diagnosed(
            &args,
            &[
                "error[E-IO]",
                "is a directory without config.json, so not a model",
                "config.json",
                "model.safetensors",
                "tokenizer.json",
                "pass the .gguf file itself",
            ],
        );
    }
    // config.json but no weights.
    let no_weights = tmp("config-only");
    std::fs::create_dir_all(&no_weights).unwrap();
    copy_config(&no_weights);
    let (o, took) = atenia(&["generate", "-m", no_weights.to_str().unwrap(), "-p", "hi"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(took < PROMPT);
    assert!(
        err.contains("no model.safetensors nor model.safetensors.index.json")
            && err.contains("tokenizer.json"),
        "{err}"
    );
}

/// `diagnose` prints what it learned on stdout before the error; the others print nothing.
fn refused_or_diagnosed(args: &[&str], needles: &[&str]) {
    let (o, took) = atenia(args);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(took < PROMPT, "{args:?} took {took:?}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: no {n:?} in: {err}");
    }
}

/// A small valid config.json (from the HF fixtures) in `dir`.
fn copy_config(dir: &Path) {
    std::fs::write(
        dir.join("config.json"),
        r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": 8, "intermediate_size": 16, "num_attention_heads": 2,
            "num_hidden_layers": 1, "num_key_value_heads": 1, "vocab_size": 16,
            "max_position_embeddings": 32, "rms_norm_eps": 1e-5}"#,
    )
    .unwrap();
}

#[test]
fn json_goes_to_stdout_with_json_and_to_a_file_with_json_out() {
    let m = base();
    // --json on stdout for the informational commands.
    for args in [
        vec!["capabilities", "--json"],
        vec!["doctor", "--json"],
        vec!["diagnose", &m, "--json"],
    ] {
        let (o, _) = atenia(&args);
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&o.stdout)));
        assert!(v.is_object(), "{args:?}");
    }
    // --json-out FILE: the same object in the file, the text on stdout.
    let f = tmp("capabilities.json");
    let (o, _) = atenia(&["capabilities", "--json-out", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (j, _) = atenia(&["capabilities", "--json"]);
    let in_file: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    assert_eq!(in_file, serde_json::from_slice::<Value>(&j.stdout).unwrap());
    assert!(serde_json::from_slice::<Value>(&o.stdout).is_err());
    assert!(
        text(&o.stdout).contains("Model families:"),
        "{}",
        text(&o.stdout)
    );

    // generate: --json is --output json; --json-out keeps the text on stdout.
    let run = |extra: &[&str]| {
        let mut a = vec![
            "generate",
            "-m",
            &m,
            "-p",
            "hi",
            "-n",
            "3",
            "--temperature",
            "0",
        ];
        a.extend_from_slice(extra);
        let (o, _) = atenia(&a);
        assert!(o.status.success(), "{a:?}: {}", text(&o.stderr));
        o
    };
    let strip = |mut v: Value| {
        for k in [
            "ttft_ms",
            "prefill_tokens_per_s",
            "decode_tokens_per_s",
            "memory",
        ] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    let a: Value = serde_json::from_slice(&run(&["--json"]).stdout).unwrap();
    let b: Value = serde_json::from_slice(&run(&["--output", "json"]).stdout).unwrap();
    assert_eq!(strip(a.clone()), strip(b));
    let g = tmp("generate.json");
    let o = run(&["--json-out", g.to_str().unwrap()]);
    let in_file: Value = serde_json::from_str(&std::fs::read_to_string(&g).unwrap()).unwrap();
    assert_eq!(strip(in_file.clone()), strip(a));
    assert_eq!(
        text(&o.stdout).trim_end_matches('\n'),
        in_file["text"].as_str().unwrap()
    );
    let _ = std::fs::remove_file(&f);
    let _ = std::fs::remove_file(&g);
}

#[test]
fn top_level_help_states_the_json_convention() {
    let (o, _) = atenia(&["--help"]);
    let help = text(&o.stdout);
    assert!(help.contains("--json-out FILE"), "{help}");
    let (o, _) = atenia(&["generate", "--help"]);
    let help = text(&o.stdout);
    assert!(help.contains("--json-out <FILE>"), "{help}");
    assert!(help.contains("at most 4 per core"), "{help}");
    assert!(help.contains("-1 draws a random one"), "{help}");
}

/// `--threads`, `--ctx-size` and `--isa` are declared once (cli::args) and
/// flattened into each command: the same flag, the same help, and each
/// command's own words for what a context size of 0 means.
#[test]
fn shared_flags_read_the_same_in_every_command() {
    for cmd in ["generate", "chat", "load"] {
        let (o, _) = atenia(&[cmd, "--help"]);
        let help = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{cmd}: {help}");
        assert!(help.contains("-t, --threads <N>"), "{cmd}: {help}");
        assert!(help.contains("at most 4 per core"), "{cmd}: {help}");
        assert!(help.contains("--isa <ISA>"), "{cmd}: {help}");
        assert!(
            help.contains("scalar") && help.contains("avx512"),
            "{cmd}: {help}"
        );
    }
    let (o, _) = atenia(&["generate", "--help"]);
    let help = text(&o.stdout);
    assert!(help.contains("-c, --ctx-size <N>"), "{help}");
    assert!(help.contains("0 = prompt + max tokens"), "{help}");
    let (o, _) = atenia(&["chat", "--help"]);
    let help = text(&o.stdout);
    assert!(help.contains("-c, --ctx-size <N>"), "{help}");
    assert!(help.contains("for the whole conversation"), "{help}");
}

#[test]
fn an_unknown_isa_is_refused_with_the_paths_there_are() {
    let b = base();
    for args in [
        &["generate", "-m", &b, "-p", "x", "--isa", "neon"][..],
        &["chat", "-m", &b, "--isa", "neon"][..],
    ] {
        let err = refused(args, &["neon", "--isa", "scalar", "avx2", "avx512"]);
        assert!(!err.contains("panicked"), "{err}");
    }
    // A path this CPU cannot run is refused too (scalar runs everywhere,
    // so only the refusal of a missing one is checked, where there is one).
    if !atenia_engine::kernels::Isa::Avx512.is_supported() {
        refused(
            &["generate", "-m", &b, "-p", "x", "--isa", "avx512"],
            &["--isa", "cannot run the avx512 kernels"],
        );
    }
}
