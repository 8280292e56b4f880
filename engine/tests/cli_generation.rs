//! Mistakes a person makes with `generate` and `chat`, through the binary:
//! a prompt longer than the context, a context above the trained one, a
//! generation that fills the context or stops inside a multi-byte character,
//! and the one spelling of stop reasons (stderr, JSON, trace).

use atenia_testkit::{json_of, smollm2, text};

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn atenia() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atenia"));
    c.stdin(Stdio::null());
    c
}

/// SmolLM2-135M: 30 layers, 3 KV heads of 64 (kv dim 192), trained context 8192.
const SMOL_LAYERS: u64 = 30;
const SMOL_KV_DIM: u64 = 192;
const SMOL_CONTEXT: usize = 8192;

fn generate(args: &[&str]) -> Output {
    atenia()
        .args(["generate", "-m", &smollm2(), "-t", "2"])
        .args(args)
        .output()
        .expect("run atenia")
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_at_once() {
    // " hello" is one token: about 10,000 tokens, past SmolLM2's 8192.
    let prompt = "hello ".repeat(10_000);
    let start = Instant::now();
    let o = generate(&["-p", &prompt]);
    let elapsed = start.elapsed();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error[E-ARG]: invalid argument --prompt: the prompt has 10"),
        "{err}"
    );
    assert!(
        err.contains("tokens but the model's context holds 8192 (and -n asks for 128 more)"),
        "{err}"
    );
    assert!(
        err.contains("shorten the prompt to at most 8064 tokens"),
        "{err}"
    );
    assert!(err.contains("--ctx-size above 8192"), "{err}");
    assert!(err.contains("  help: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(o.stdout.is_empty());
    // Before: 553 s of prefill. Loosely bounded: CI machines are busy.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");

    // A --ctx-size smaller than the prompt names both numbers and the fix.
    let o = generate(&["-p", &"hello ".repeat(200), "-c", "100", "-n", "5"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error[E-ARG]: invalid argument --ctx-size"),
        "{err}"
    );
    assert!(
        err.contains("--ctx-size 100 holds only 100 positions"),
        "{err}"
    );
    assert!(err.contains("(and -n asks for 5 more)"), "{err}");
    assert!(err.contains("up to the trained context of 8192"), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn a_generation_that_fills_the_context_stops_with_context_full() {
    let o = generate(&[
        "-p",
        "Once upon a time",
        "-n",
        "50",
        "-c",
        "12",
        "--temperature",
        "0",
        "--output",
        "json",
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let v = json_of(&o);
    assert_eq!(v["stop_reason"], "context_full", "{v}");
    assert_eq!(v["ctx_size"], 12);
    assert_eq!(v["trained_context"], SMOL_CONTEXT);
    let prompt = v["prompt_ids"].as_array().unwrap().len();
    // The first token comes from the prefill; the last is never cached.
    assert_eq!(v["generated_tokens"], 12 - prompt + 1, "{v}");
    let max = 12 - prompt + 1;
    assert!(
        err.contains(&format!(
            "and -n 50 need more than the 12 positions of the context: generation stops at context_full after at most {max} tokens"
        )),
        "{err}"
    );
    assert!(
        err.contains("[context full: all 12 positions of the context are used (the model was trained on 8192); shorten the prompt or raise --ctx-size]"),
        "{err}"
    );

    // The same in text mode: the timing line spells the reason the same way.
    let o = generate(&[
        "-p",
        "Once upon a time",
        "-n",
        "50",
        "-c",
        "12",
        "--temperature",
        "0",
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("| stop: context_full |"), "{err}");
    assert!(err.contains("[context full: all 12 positions"), "{err}");
}

#[test]
fn a_context_above_the_trained_one_is_warned_about_with_its_kv_cache_size() {
    // 100 million positions: the KV cache alone would take 4.2 TiB. The
    // warning and the size come before anything is allocated; the memory
    // guard then refuses.
    let positions: u64 = 100_000_000;
    let o = generate(&["-p", "Hi", "-n", "4", "-c", "100000000"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("warning: --ctx-size 100000000 is above the model's trained context of 8192 positions, and no rope scaling in its configuration extends it"),
        "{err}"
    );
    let kv = SMOL_LAYERS * positions * SMOL_KV_DIM * 2 * 4;
    assert_eq!(kv, 4_608_000_000_000);
    assert!(
        err.contains("KV cache 4.2 TiB = 30 layers × 100000000 positions × 192 (kv dim) × 2 (K, V) × 4 bytes (f32)"),
        "{err}"
    );
    let warn = err.find("warning: --ctx-size").unwrap();
    let line = err.find("KV cache 4.2 TiB").unwrap();
    let refusal = err.find("error[E-RESOURCE]").expect("the guard refuses");
    assert!(warn < refusal && line < refusal, "{err}");

    // Within the trained context: no warning, and JSON states the size,
    // equal to what the session's plan counted.
    let o = generate(&[
        "-p",
        "Hi",
        "-n",
        "2",
        "-c",
        "300",
        "--memory-budget",
        "1GiB",
        "--output",
        "json",
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("warning"), "{err}");
    assert!(
        err.contains("[context 300 positions (trained 8192) | KV cache 13.2 MiB"),
        "{err}"
    );
    let v = json_of(&o);
    assert_eq!(v["kv_cache_bytes"], SMOL_LAYERS * 300 * SMOL_KV_DIM * 2 * 4);
    assert_eq!(v["kv_cache_bytes"], v["memory"]["kv_cache_bytes"], "{v}");
}

#[test]
fn stop_reasons_have_one_spelling_in_text_json_and_trace() {
    let dir = std::env::temp_dir().join(format!("atenia-stop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("max.jsonl");
    let trace_s = trace.display().to_string();
    let o = generate(&[
        "-p",
        "The capital of France is",
        "-n",
        "3",
        "--temperature",
        "0",
        "--output",
        "json",
        "--trace",
        &trace_s,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(json_of(&o)["stop_reason"], "max_tokens");
    let events: Vec<Value> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stop = events.last().unwrap();
    assert_eq!(stop["kind"], "stop", "{stop}");
    assert_eq!(stop["stop_reason"], "max_tokens", "{stop}");
    assert_eq!(stop["generated_tokens"], 3, "{stop}");

    // A chat-wrapped question: the model ends its turn (eos).
    let o = generate(&[
        "-p",
        "Say hello.",
        "--chat",
        "-n",
        "64",
        "--temperature",
        "0",
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("| stop: eos |"), "{err}");
    let o = generate(&[
        "-p",
        "Say hello.",
        "--chat",
        "-n",
        "64",
        "--temperature",
        "0",
        "--output",
        "json",
    ]);
    assert_eq!(json_of(&o)["stop_reason"], "eos");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `atenia chat` on SmolLM2 with `input` on stdin.
fn chat(extra: &[&str], input: &str) -> Output {
    let mut child = atenia()
        .args(["chat", "-m", &smollm2(), "--temperature", "0", "-t", "2"])
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

#[test]
fn chat_reset_restarts_the_turn_count() {
    let o = chat(&["-n", "4"], "Hi\nHello\n/reset\nHi\n");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let turns: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("[turn "))
        .map(|l| &l[..8])
        .collect();
    assert_eq!(turns, ["[turn 1:", "[turn 2:", "[turn 1:"], "{err}");
    assert!(err.contains("| stop: max_tokens |"), "{err}");
}

#[test]
fn chat_reports_a_full_context_as_generate_does() {
    // SmolLM2's template adds its own system message (about 30 tokens): a
    // 48-position context leaves a short reply room, then fills.
    let o = chat(
        &["-n", "64", "-c", "48"],
        "Tell me a long story about a dragon.\nAnd then?\n",
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("| stop: context_full |"), "{err}");
    assert!(
        err.contains("[context full: all 48 positions of the context are used (the model was trained on 8192); /reset to start over, or raise --ctx-size]"),
        "{err}"
    );
    // The next message does not fit at all: refused, the same words.
    assert!(
        err.contains("error[E-ARG]: invalid argument --ctx-size: context full: all 48 positions"),
        "{err}"
    );
}

#[test]
fn ctrl_c_at_the_chat_prompt_exits_130() {
    let mut child = atenia()
        .args([
            "chat",
            "-m",
            &smollm2(),
            "--temperature",
            "0",
            "-t",
            "2",
            "-n",
            "2",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"Hi\n").unwrap();
    stdin.flush().unwrap();
    // Once the first turn's line is out, the REPL waits at the prompt.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("chat ended before its first turn: {seen}");
        }
        seen.push_str(&line);
        if line.starts_with("[turn 1:") {
            break;
        }
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let start = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    // At once on a quiet machine; the margin is for a loaded CI machine.
    assert!(start.elapsed() < Duration::from_secs(20));
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(!rest.contains("panicked"), "{rest}");
    drop(stdin);
}

#[test]
fn chat_help_documents_the_keys_and_exit_codes() {
    let o = atenia().args(["chat", "--help"]).output().unwrap();
    let help = text(&o.stdout);
    assert!(o.status.success());
    assert!(
        help.contains("at an empty prompt, quit with exit status 130"),
        "{help}"
    );
    assert!(
        help.contains("/exit    quit (exit status 0; so does end of input, Ctrl-D)"),
        "{help}"
    );
    assert!(
        help.contains("/reset   forget the conversation and start again at turn 1"),
        "{help}"
    );
    assert!(
        help.contains("eos, max_tokens, context_full, interrupted"),
        "{help}"
    );
    let o = atenia().args(["generate", "--help"]).output().unwrap();
    let help = text(&o.stdout);
    assert!(
        help.contains("context_full  every position of the context is used"),
        "{help}"
    );
    assert!(help.contains("incomplete_bytes"), "{help}");
}

#[test]
fn a_generation_cut_inside_an_emoji_holds_its_bytes_back() {
    // Greedy SmolLM2 continues the emoji list with 😏 (F0 9F 98 8F), split
    // over three byte-level tokens (10813 = F0 9F, 242 = 98, 233 = 8F).
    let prompt = "Emojis: 😀😃😄😁😆😅";
    let json = |n: &str| {
        let o = generate(&[
            "-p",
            prompt,
            "-n",
            n,
            "--temperature",
            "0",
            "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        json_of(&o)
    };
    let v = json("2");
    assert_eq!(v["token_ids"], serde_json::json!([10813, 242]), "{v}");
    assert_eq!(v["text"], "", "{v}");
    assert_eq!(v["incomplete_bytes"], serde_json::json!([0xF0, 0x9F, 0x98]));
    let v = json("4");
    assert_eq!(
        v["token_ids"],
        serde_json::json!([10813, 242, 233, 10813]),
        "{v}"
    );
    assert_eq!(v["text"], "😏", "no U+FFFD at the end: {v}");
    assert_eq!(v["incomplete_bytes"], serde_json::json!([0xF0, 0x9F]));
    let v = json("3");
    assert_eq!(v["text"], "😏");
    assert_eq!(v["incomplete_bytes"], serde_json::json!([]));

    // Text mode: stdout gets the whole characters only, stderr says what was held.
    let o = generate(&["-p", prompt, "-n", "5", "--temperature", "0"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(o.stdout, "😏\n".as_bytes(), "{:?}", text(&o.stdout));
    assert!(
        err.contains(
            "[generation stopped inside a multi-byte character: 3 byte(s) held back: f0 9f 98]"
        ),
        "{err}"
    );
}
