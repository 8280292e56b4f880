//! The `atenia` binary end to end: help texts, the informational commands'
//! JSON, error rendering and exit codes, `generate` on the real SmolLM2 and
//! the `chat` REPL.

use atenia_testkit::{self as tk, json_of, smollm2, text};

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn atenia() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atenia"));
    c.stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    atenia().args(args).output().expect("run atenia")
}

fn golden(rel: &str) -> String {
    tk::golden().join(rel).display().to_string()
}

/// Every subcommand the top-level help lists.
fn commands() -> Vec<String> {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let help = text(&o.stdout);
    let mut in_list = false;
    let mut out = vec![];
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_list = true;
            continue;
        }
        if in_list {
            if !line.starts_with("  ") {
                break;
            }
            let name = line.split_whitespace().next().unwrap().to_string();
            if name != "help" {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn every_help_teaches_with_examples() {
    let cmds = commands();
    for want in ["generate", "chat", "doctor", "diagnose", "capabilities"] {
        assert!(
            cmds.iter().any(|c| c == want),
            "{want} missing from {cmds:?}"
        );
    }
    let o = run(&["--help"]);
    assert!(text(&o.stdout).contains("Examples"), "top-level help");
    for c in &cmds {
        let o = run(&[c, "--help"]);
        assert!(o.status.success(), "{c} --help: {}", text(&o.stderr));
        let help = text(&o.stdout);
        assert!(
            help.contains("Examples"),
            "{c} --help has no Examples:\n{help}"
        );
        assert!(
            help.contains(&format!("atenia {c}")),
            "{c} --help shows no `atenia {c}` example"
        );
    }
}

#[test]
fn doctor_json() {
    let o = run(&["doctor", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = json_of(&o);
    for key in [
        "cpu",
        "kernels",
        "threads",
        "memory",
        "model_dir",
        "real_models",
        "notes",
    ] {
        assert!(v.get(key).is_some(), "doctor --json lacks {key}: {v}");
    }
    assert!(v["cpu"]["features"].is_object());
    let selected = v["kernels"]["selected"].as_str().unwrap();
    assert!(v["kernels"]["available"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == selected));
    assert!(v["threads"]["available"].as_u64().unwrap() >= 1);
    assert!(v["memory"].get("total_bytes").is_some());
    assert!(v["memory"].get("cgroup_limit_bytes").is_some());
    assert!(v["model_dir"].get("free_bytes").is_some());
    let models = v["real_models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert!(models.iter().all(|m| m["present"].is_boolean()));
    // The text form works too.
    let o = run(&["doctor"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("Kernels:"));
}

#[test]
fn doctor_finds_models_in_atenia_model_dir() {
    let dir = tk::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
    let dir = dir.parent().unwrap();
    let o = atenia()
        .args(["doctor", "--json"])
        .env("ATENIA_MODEL_DIR", dir)
        .output()
        .unwrap();
    let v = json_of(&o);
    assert_eq!(v["model_dir"]["path"], dir.display().to_string());
    assert_eq!(v["model_dir"]["exists"], true);
    assert_eq!(v["real_models"][0]["present"], true);
    assert!(v["model_dir"]["free_bytes"].as_u64().is_some());
}

#[test]
fn capabilities_json() {
    let o = run(&["capabilities", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = json_of(&o);
    let families: Vec<&str> = v["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for f in ["llama", "qwen2", "gemma3", "phi3"] {
        assert!(families.contains(&f), "{f} not in {families:?}");
    }
    let formats: Vec<&str> = v["formats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["gguf", "hf"]);
    assert_eq!(v["formats"][0]["versions"], serde_json::json!([2, 3]));
    let quants: Vec<&str> = v["quant_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(quants.len(), atenia_engine::GgmlType::ALL.len());
    for q in ["F32", "BF16", "Q4_0", "Q8_0", "Q4_K", "Q6_K"] {
        assert!(quants.contains(&q), "{q} not in {quants:?}");
    }
    let isa = v["isa"]["available"].as_array().unwrap();
    assert_eq!(isa[0], "scalar");
    assert!(isa.iter().any(|i| *i == v["isa"]["selected"]));
    let o = run(&["capabilities"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("Q4_K"));
}

#[test]
fn diagnose_json_on_a_gguf_file() {
    let o = run(&[
        "diagnose",
        &golden("gguf/llama/llama-Q4_K_M-mixed.gguf"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = json_of(&o);
    assert_eq!(v["can_run"], true);
    assert!(v["error"].is_null());
    assert_eq!(v["format"], "gguf v3");
    assert_eq!(v["family"], "llama");
    assert_eq!(v["architecture"], "llama");
    let h = &v["hyperparameters"];
    assert_eq!(h["layers"], 2);
    assert_eq!(h["hidden"], 256);
    assert_eq!(h["heads"], 4);
    assert_eq!(h["kv_heads"], 2);
    assert_eq!(h["vocab"], 512);
    let types: Vec<&str> = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["F32", "Q4_K", "Q6_K"]);
    let t = &v["tokenizer"];
    assert_eq!(t["vocab_size"], 512);
    assert_eq!(t["bos"]["id"], 1);
    assert_eq!(t["eos"]["id"], 2);
    assert_eq!(t["chat_template"], false);
    // 2 layers × (K and V) × 4096 positions × 2 kv heads × 64 × 4 bytes.
    assert_eq!(
        v["memory"]["kv_cache_bytes_at_4096"],
        2 * 2 * 4096 * 128 * 4
    );
    assert_eq!(
        v["memory"]["kv_cache_bytes_at_context"],
        2 * 2 * 2048 * 128 * 4
    );
    assert!(v["memory"]["weights_mapped_bytes"].as_u64().unwrap() > 700_000);
}

#[test]
fn diagnose_json_on_a_checkpoint_dir_and_the_real_model() {
    let o = run(&["diagnose", &golden("hostile/hf/base"), "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = json_of(&o);
    assert_eq!(v["format"], "hf");
    assert_eq!(v["family"], "llama");
    assert_eq!(v["tokenizer"]["kind"]["model"], "tokenizer.json");
    assert_eq!(v["tensors"][0]["type"], "BF16");

    let o = run(&["diagnose", &smollm2(), "--json"]);
    let v = json_of(&o);
    assert_eq!(v["can_run"], true);
    assert_eq!(v["tokenizer"]["chat_template"], true);
    assert_eq!(v["tokenizer"]["kind"]["model"], "gpt2");
    assert_eq!(v["hyperparameters"]["context_length"], 8192);
}

#[test]
fn diagnose_reports_why_a_model_cannot_run() {
    let o = run(&[
        "diagnose",
        &golden("hostile/gguf/rms-eps-nan.gguf"),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let v = json_of(&o);
    assert_eq!(v["can_run"], false);
    assert_eq!(v["format"], "gguf v3");
    assert_eq!(v["family"], "llama");
    assert_eq!(v["error"]["code"], "E-CONFIG");
    assert!(text(&o.stderr).starts_with("error[E-CONFIG]"));

    let o = run(&["diagnose", &golden("hostile/gguf/truncated-000024.gguf")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stdout).contains("Can run:      no (E-GGUF)"));
    assert!(text(&o.stderr).starts_with("error[E-GGUF]"));
}

#[test]
fn a_missing_model_is_exit_2_and_e_io() {
    let missing = "/nonexistent/atenia-test/model.gguf";
    for args in [
        vec!["generate", "-m", missing, "-p", "hi", "-n", "1"],
        vec!["diagnose", missing],
        vec!["diagnose", missing, "--json"],
        vec!["chat", "-m", missing],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(err.starts_with("error[E-IO]: "), "{args:?}: {err}");
        assert!(err.contains("\n  help: "), "{args:?}: {err}");
    }
}

#[test]
fn generate_smollm2_greedy_is_the_float64_continuation() {
    let m = smollm2();
    let o = run(&[
        "generate",
        "-m",
        &m,
        "-p",
        "The capital of France is",
        "--temperature",
        "0",
        "-n",
        "20",
        "-t",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), " Paris.\n\nThe answer is: 2018-01-22 \n");
    assert!(
        text(&o.stderr).contains("tok/s"),
        "the timing line goes to stderr"
    );

    let o = run(&[
        "generate",
        "-m",
        &m,
        "-p",
        "Why is the sky blue? Answer in one sentence.",
        "--chat",
        "--temperature",
        "0",
        "-n",
        "20",
        "-t",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "The sky is blue because of a process called Rayleigh Scavenger Blood, which is a natural\n"
    );
}

#[test]
fn generate_json_output() {
    let o = run(&[
        "generate",
        "-m",
        &smollm2(),
        "-p",
        "The capital of France is",
        "--temperature",
        "0",
        "-n",
        "5",
        "-t",
        "2",
        "--output",
        "json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = json_of(&o);
    for key in [
        "prompt_ids",
        "token_ids",
        "text",
        "ttft_ms",
        "prefill_tokens_per_s",
        "decode_tokens_per_s",
    ] {
        assert!(v.get(key).is_some(), "--output json lacks {key}: {v}");
    }
    assert_eq!(
        v["prompt_ids"],
        serde_json::json!([504, 3575, 282, 4649, 314])
    );
    assert_eq!(v["token_ids"], serde_json::json!([7042, 30, 198, 198, 504]));
    assert_eq!(v["text"], " Paris.\n\nThe");
}

/// Runs `atenia chat` with `input` on stdin.
fn chat(model: &str, extra: &[&str], input: &str) -> Output {
    let mut child = atenia()
        .args(["chat", "-m", model, "--temperature", "0", "-t", "2"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The `[turn N: A new prompt tokens, B reused from the cache ...]` lines.
fn turns(stderr: &str) -> Vec<(usize, usize)> {
    stderr
        .lines()
        .filter(|l| l.starts_with("[turn "))
        .map(|l| {
            let num = |after: &str| -> usize {
                let i = l.find(after).unwrap();
                l[..i]
                    .rsplit(|c: char| !c.is_ascii_digit())
                    .find(|s| !s.is_empty())
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            (num(" new prompt tokens"), num(" reused from the cache"))
        })
        .collect()
}

#[test]
fn chat_keeps_the_conversation_in_the_kv_cache() {
    let m = smollm2();
    let o = chat(
        &m,
        &["-n", "24"],
        "What is the capital of France?\nAnd of Italy?\n/exit\nnot read\n",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let err = text(&o.stderr);
    let replies: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(replies.len(), 2, "stdout: {out:?}\nstderr: {err}");
    assert!(replies[0].contains("Paris"), "{out}");
    assert!(replies[1].contains("Rome"), "{out}");
    let t = turns(&err);
    assert_eq!(t.len(), 2, "{err}");
    assert_eq!(t[0].1, 0, "the first turn has nothing cached: {err}");
    // The second turn prefills only its own tokens: the first turn's prompt
    // and reply are reused from the cache.
    assert!(t[1].1 > t[0].0, "{err}");
    assert!(t[1].0 < t[0].0, "{err}");
    assert!(!err.contains("re-prefilled"), "{err}");
}

#[test]
fn chat_reset_starts_over_and_eof_quits() {
    let m = smollm2();
    // No /exit: end of input ends the program.
    let o = chat(
        &m,
        &["-n", "12", "--system", "You are a geography teacher."],
        "What is the capital of France?\n/reset\nWhat is the capital of France?\n",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let err = text(&o.stderr);
    let replies: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(replies.len(), 2, "{out:?}\n{err}");
    assert_eq!(
        replies[0], replies[1],
        "the same turn after /reset gives the same reply"
    );
    assert!(err.contains("[conversation cleared]"), "{err}");
    let t = turns(&err);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0], t[1], "{err}");
    assert_eq!(t[1].1, 0, "{err}");
}

#[test]
fn chat_needs_a_chat_template() {
    let o = chat(&golden("gguf/llama/llama-Q8_0.gguf"), &[], "hi\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).starts_with("error[E-TEMPLATE]"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
}

/// Runs `atenia ARGS` with its stdout a pipe whose read end is closed before
/// the command writes (`atenia … | head -c 0`), and returns the output.
fn run_with_stdout_closed(args: &[&str]) -> Output {
    let mut child = atenia()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run atenia");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for atenia")
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let base = golden("hostile/gguf/base.gguf");
    let hf = golden("hostile/hf/base");
    let spec = format!("{}/specs/llama.yaml", env!("CARGO_MANIFEST_DIR"));
    let cases: Vec<Vec<&str>> = vec![
        vec!["--help"],
        vec!["generate", "--help"],
        vec!["capabilities"],
        vec!["capabilities", "--json"],
        vec!["doctor"],
        vec!["doctor", "--json"],
        vec!["diagnose", &base],
        vec!["diagnose", "--json", &hf],
        vec!["inspect", &base],
        vec!["inspect", "--json", &hf],
        vec!["load", &spec, "-m", &base, "-p", "hi"],
        vec![
            "generate",
            "-m",
            &base,
            "-p",
            "hi",
            "-n",
            "8",
            "--temperature",
            "0",
        ],
        vec![
            "generate", "-m", &hf, "-p", "hi", "-n", "4", "--output", "json",
        ],
    ];
    for args in cases {
        let o = run_with_stdout_closed(&args);
        let err = text(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(0)),
            "atenia {args:?} with stdout closed: {:?}\n{err}",
            o.status
        );
        assert!(
            !err.contains("E-PANIC") && !err.contains("panicked"),
            "atenia {args:?} panicked on a closed stdout:\n{err}"
        );
    }
}

#[test]
fn generate_on_the_real_model_stops_quietly_when_the_reader_goes() {
    let m = smollm2();
    // `| head -c 5`: the reader takes a few bytes and leaves mid-stream.
    let mut child = atenia()
        .args(["generate", "-m", &m, "-p", "Once upon a time", "-n", "64"])
        .args(["--temperature", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run atenia");
    let mut first = [0u8; 5];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // It stopped early instead of generating all 64 tokens into the void.
    assert!(err.contains("stop: interrupted"), "{err}");
}

#[test]
fn quiet_leaves_stderr_empty_and_stdout_the_result() {
    let base = golden("hostile/gguf/base.gguf");
    let o = run(&[
        "-q", "generate", "-m", &base, "-p", "hi", "-n", "3", "--output", "json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stderr), "", "-q prints nothing but errors");
    assert_eq!(json_of(&o)["generated_tokens"], 3);
    // Without -q the timing line is there; the global flag also works after the subcommand.
    let o = run(&[
        "generate",
        "-m",
        &base,
        "-p",
        "hi",
        "-n",
        "3",
        "--temperature",
        "0",
    ]);
    assert!(
        text(&o.stderr).contains("tok/s decode"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["generate", "-m", &base, "-p", "hi", "-n", "3", "--quiet"]);
    assert_eq!(text(&o.stderr), "");
    // Errors still print under -q.
    let o = run(&["-q", "generate", "-m", "/nonexistent.gguf", "-p", "hi"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("error[E-IO]"),
        "{}",
        text(&o.stderr)
    );
    // -q and -v contradict each other.
    let o = run(&["-q", "-v", "capabilities"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn verbose_and_json_logs_go_to_stderr() {
    let base = golden("hostile/gguf/base.gguf");
    let args = [
        "generate",
        "-m",
        &base,
        "-p",
        "hi",
        "-n",
        "2",
        "--temperature",
        "0",
    ];
    let plain = run(&args);
    assert!(
        !text(&plain.stderr).contains("loaded "),
        "{}",
        text(&plain.stderr)
    );
    let o = run(&[&["-v"][..], &args[..]].concat());
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("debug atenia_engine::cli::ui: loaded "),
        "{err}"
    );
    // The results on stdout are the same whatever the logging.
    assert_eq!(o.stdout, plain.stdout);
    let o = run(&[&["--log-format", "json", "-v"][..], &args[..]].concat());
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(o.stdout, plain.stdout);
    let events: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let timing = events
        .iter()
        .find(|e| e["level"] == "INFO" && e["prompt_tokens"].is_u64())
        .unwrap_or_else(|| panic!("no timing event in {err}"));
    assert_eq!(timing["generated_tokens"], 2);
    assert!(timing["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(events.iter().any(|e| e["level"] == "DEBUG"));
    // Errors keep their rendering even with JSON logs.
    let o = run(&["--log-format", "json", "diagnose", "/nonexistent.gguf"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("error[E-IO]"));
}

#[test]
fn no_progress_bars_when_stderr_is_not_a_terminal() {
    let base = golden("hostile/gguf/base.gguf");
    let o = run(&["generate", "-m", &base, "-p", "hi", "-n", "2"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains('\r') && !err.contains('\x1b'), "{err:?}");
    assert!(!err.contains("loading"), "{err}");
}
