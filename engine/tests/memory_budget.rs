//! Beyond-RAM execution (issue 6): under a 16 MiB memory budget the logits
//! are the same f32 bits at every position as with no budget, and a
//! `generate` run stays within the budget plus its stated fixed overhead.
//!
//! Needs the real models: run scripts/fetch-models.sh first.

use std::path::PathBuf;

use atenia_engine::exec::decoder::{set_memory_budget, Logits, Session};
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::memory::control::StreamRead;
use atenia_engine::model::open::load;
use atenia_testkit::model_path;

const BUDGET: u64 = 16 << 20;

/// The most fixed overhead a budgeted run may state (issue 14: tokenizer and
/// runtime overhead at most 64 MiB, Gemma 3's 262k-entry tokenizer
/// included), so that the bound, budget + overhead, is at most 80 MiB here.
/// Measured: 40.8 MiB for Gemma 3, 21.3 MiB for SmolLM2.
const MAX_OVERHEAD: u64 = 64 << 20;

/// Prefill logits (every position) and then greedy decode logits, token by token.
fn run(
    loaded: &atenia_engine::model::open::Loaded,
    rt: &Runtime,
    ids: &[u32],
    steps: usize,
) -> Vec<f32> {
    let mut s = Session::new(&loaded.model, rt, ids.len() + steps).unwrap();
    let mut all = Vec::new();
    s.forward(ids, Logits::All, &mut all).unwrap();
    let vocab = loaded.model.config.vocab;
    let mut out = all[(ids.len() - 1) * vocab..].to_vec();
    for _ in 0..steps {
        let next = out
            .iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            )
            .0 as u32;
        s.forward(&[next], Logits::Last, &mut out).unwrap();
        all.extend_from_slice(&out);
    }
    all
}

fn bit_identical(file: &str, read: StreamRead) {
    let rt = Runtime::new(2, None).unwrap();
    let loaded = load(&model_path(file)).unwrap();
    let ids = loaded
        .tokenizer()
        .unwrap()
        .encode("The capital of France is", true)
        .unwrap();
    let free = run(&loaded, &rt, &ids, 4);
    loaded.model.memory.set_stream_read(read);
    set_memory_budget(&loaded.model, Some(BUDGET));
    let budgeted = run(&loaded, &rt, &ids, 4);
    let st = loaded.model.memory.stats.to_json(Some(BUDGET));
    eprintln!("{file}: {st}");
    assert!(
        st["tensors_streamed"].as_u64().unwrap() > 0,
        "nothing was streamed: {st}"
    );
    assert!(
        st["pieces_streamed"].as_u64().unwrap() > st["tensors_streamed"].as_u64().unwrap(),
        "{st}"
    );
    // The streamed matrices came through the reader's ring (read from the
    // file into owned buffers), not through the map.
    let reader = &st["stream_reader"];
    let want: &[&str] = match read {
        StreamRead::Direct => &["direct", "buffered"],
        StreamRead::Cached => &["cached"],
        StreamRead::Auto => &["direct", "buffered", "cached"],
    };
    assert!(
        reader["mode"].as_str().is_some_and(|m| want.contains(&m)),
        "{read:?}: {st}"
    );
    assert!(reader["slots"].as_u64().unwrap() >= 1, "{st}");
    assert!(
        st["reader_bytes_total"].as_u64().unwrap() >= st["streamed_bytes_total"].as_u64().unwrap(),
        "the reader read less than it delivered: {st}"
    );
    assert_eq!(free.len(), budgeted.len());
    for (i, (a, b)) in free.iter().zip(&budgeted).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{file}: logit {i} differs: {a} vs {b}"
        );
    }
}

#[test]
fn smollm2_logits_are_bit_identical_under_16mib() {
    bit_identical("SmolLM2-135M-Instruct.Q4_1.gguf", StreamRead::Direct);
}

#[test]
fn gemma3_logits_are_bit_identical_under_16mib() {
    bit_identical("gemma-3-270m-q4_k_m.gguf", StreamRead::Direct);
}

/// The same through the page cache (`--stream-read cached`).
#[test]
fn smollm2_logits_are_bit_identical_under_16mib_cached() {
    bit_identical("SmolLM2-135M-Instruct.Q4_1.gguf", StreamRead::Cached);
}

/// `atenia generate --output json` of `n` greedy tokens after `prompt`, with
/// `extra` arguments; the parsed output.
fn generate_json(
    file: &str,
    prompt: &str,
    n: usize,
    extra: &[std::ffi::OsString],
) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atenia"))
        .args(["generate", "-m"])
        .arg(model_path(file))
        .args([
            "-p",
            prompt,
            "-n",
            &n.to_string(),
            "--temperature",
            "0",
            "-t",
            "2",
        ])
        .args(["--output", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn rss_within_budget(file: &str) {
    let prompt = "The capital of France is";
    let free = generate_json(file, prompt, 8, &[]);
    let v = generate_json(file, prompt, 8, &["--memory-budget".into(), "16MiB".into()]);
    let m = &v["memory"];
    eprintln!(
        "{file}: peak RSS {} with 16 MiB (+ overhead {}), {} without a budget; decode {:.1} vs {:.1} tok/s",
        m["peak_rss_bytes"], m["fixed_overhead_bytes"], free["memory"]["peak_rss_bytes"],
        v["decode_tokens_per_s"].as_f64().unwrap_or(0.0), free["decode_tokens_per_s"].as_f64().unwrap_or(0.0)
    );
    assert_eq!(
        v["token_ids"], free["token_ids"],
        "{file}: tokens differ under the budget"
    );
    let overhead = m["fixed_overhead_bytes"].as_u64().unwrap();
    assert!(
        overhead <= MAX_OVERHEAD,
        "{file}: fixed overhead {overhead} over {MAX_OVERHEAD}: {m}"
    );
    if m["peak_rss_includes_loading"] == true {
        eprintln!("{file}: the OS would not reset the peak RSS; skipping the bound check");
        return;
    }
    assert_eq!(
        m["within_bound"], true,
        "{file}: peak RSS over budget + overhead: {m}"
    );
}

#[test]
fn smollm2_generate_stays_within_16mib() {
    rss_within_budget("SmolLM2-135M-Instruct.Q4_1.gguf");
}

#[test]
fn gemma3_generate_stays_within_16mib() {
    rss_within_budget("gemma-3-270m-q4_k_m.gguf");
}

/// The guard refuses at start (and the trace says so) when the budget cannot
/// hold even a streamed run; the error names the smallest budget that works.
#[test]
fn too_small_a_budget_names_the_smallest_that_works() {
    let trace = std::env::temp_dir().join(format!("atenia-small-{}.jsonl", std::process::id()));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_atenia"));
    let out = cmd
        .args(["generate", "-m"])
        .arg(model_path("SmolLM2-135M-Instruct.Q4_1.gguf"))
        .args(["-p", "Hi", "-n", "2", "--memory-budget", "64KiB", "--trace"])
        .arg(&trace)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error[E-RESOURCE]"), "{err}");
    assert!(err.contains("smallest budget that works"), "{err}");
    let text = std::fs::read_to_string(&trace).unwrap();
    let _ = std::fs::remove_file(&trace);
    let d: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["kind"] == "decision")
        .unwrap();
    assert_eq!(d["decision"]["decision"], "refuse", "{text}");
    assert_eq!(d["decision"]["budget_bytes"], 64 * 1024, "{text}");
    // The named budget works.
    let needed = d["decision"]["needed_bytes"].as_u64().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atenia"))
        .args(["generate", "-m"])
        .arg(model_path("SmolLM2-135M-Instruct.Q4_1.gguf"))
        .args([
            "-p",
            "Hi",
            "-n",
            "2",
            "--memory-budget",
            &format!("{needed}B"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn golden(name: &str) -> PathBuf {
    atenia_testkit::golden().join("traces").join(name)
}

/// Simulated pressure mid-run (golden/traces/pressure-sensor.json through
/// the run guard, a reading every 2 decode steps): the guard tightens the
/// budget from none to 20 MiB, leaves pressure, evicts, and restores. Each
/// action re-plans the session's placement before the next pass; the logits
/// of every step stay the same bits as the unbounded run.
fn pressure_mid_run(file: &str) {
    use atenia_engine::guard::policy::Decision;
    use atenia_engine::guard::wiring::{
        read_sensor_script, scripted_sensor, GuardOptions, RunGuard,
    };

    const STEPS: usize = 10;
    let rt = Runtime::new(2, None).unwrap();
    let loaded = load(&model_path(file)).unwrap();
    let ids = loaded
        .tokenizer()
        .unwrap()
        .encode("The capital of France is", true)
        .unwrap();
    let free = run(&loaded, &rt, &ids, STEPS);

    let m = &loaded.model;
    let script = read_sensor_script(&golden("pressure-sensor.json")).unwrap();
    let trace = std::env::temp_dir().join(format!("atenia-pressure-{}.jsonl", std::process::id()));
    let mut guard = RunGuard::start(
        m,
        GuardOptions {
            capacity: ids.len() + STEPS,
            threads: rt.threads(),
            requested: None,
            trace: Some(&trace),
            source: "engine/tests/memory_budget.rs",
            every: 2,
            sensor: Some(scripted_sensor(script)),
            sensor_script: None,
            stream_read: StreamRead::Direct,
        },
    )
    .unwrap();
    assert_eq!(guard.budget(), None);
    let matrices = 2 + 7 * m.config.n_layers;
    let mut s = Session::new(m, &rt, ids.len() + STEPS).unwrap();
    let streamed = |s: &Session| (0..matrices).filter(|&i| s.is_streamed(i)).count();
    assert_eq!(streamed(&s), 0, "no budget: everything mapped");
    let mut all = Vec::new();
    s.forward(&ids, Logits::All, &mut all).unwrap();
    let vocab = m.config.vocab;
    let mut out = all[(ids.len() - 1) * vocab..].to_vec();
    // (decision, matrices streamed during the next pass) per reading.
    let mut seen: Vec<(Decision, usize)> = vec![];
    for step in 1..=STEPS {
        let next = out
            .iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            )
            .0 as u32;
        let d = guard.progress(step as u64).unwrap();
        s.forward(&[next], Logits::Last, &mut out).unwrap();
        if let Some(d) = d {
            seen.push((d, streamed(&s)));
        }
        all.extend_from_slice(&out);
    }
    drop(guard);
    let st = m.memory.stats.to_json(m.memory.budget());
    eprintln!("{file}: {seen:?}\n{st}");
    let kinds: Vec<&str> = seen
        .iter()
        .map(|(d, _)| match d {
            Decision::Tighten { .. } => "tighten",
            Decision::Evict { .. } => "evict",
            Decision::None { .. } => "none",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["tighten", "none", "evict", "none", "none"]);
    // Tightened to half of the 40 MiB free: the session streams part of the weights.
    assert_eq!(m.memory.budget(), Some(20 << 20));
    let (after_tighten, after_evict, after_restore) = (seen[0].1, seen[2].1, seen[3].1);
    assert!(
        after_tighten > 0 && after_tighten < matrices,
        "{after_tighten} of {matrices}"
    );
    // Evicted: every matrix streamed; restored: the 20 MiB plan again.
    assert_eq!(after_evict, matrices);
    assert_eq!(after_restore, after_tighten);
    assert_eq!(st["tightenings"], 1);
    assert_eq!(st["evictions"], 2, "tighten and evict both drop pages");
    assert_eq!(st["replans"], 3, "tighten, evict, restore");
    let text = std::fs::read_to_string(&trace).unwrap();
    let _ = std::fs::remove_file(&trace);
    let actions: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "action")
        .map(|v| v["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["proceed", "tighten", "evict", "restore"]);
    assert_eq!(free.len(), all.len());
    for (i, (a, b)) in free.iter().zip(&all).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{file}: logit {i} differs under pressure: {a} vs {b}"
        );
    }
}

#[test]
fn smollm2_logits_are_bit_identical_through_tighten_and_evict() {
    pressure_mid_run("SmolLM2-135M-Instruct.Q4_1.gguf");
}

#[test]
fn gemma3_logits_are_bit_identical_through_tighten_and_evict() {
    pressure_mid_run("gemma-3-270m-q4_k_m.gguf");
}

fn refuses(args: &[&str], stdin: &str) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_atenia"));
    cmd.args(args)
        .arg("-m")
        .arg(model_path("SmolLM2-135M-Instruct.Q4_1.gguf"))
        .arg("--sensor-script")
        .arg(golden("refuse-sensor.json"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.contains("error[E-RESOURCE]"), "{err}");
    assert!(err.contains("only 1.0 MiB"), "{err}");
}

/// With 1 MiB free (a scripted sensor), generate and chat refuse to start.
#[test]
fn generate_and_chat_refuse_when_even_streaming_cannot_fit() {
    refuses(&["generate", "-p", "Hi", "-n", "2"], "");
    refuses(&["chat", "-n", "2", "-c", "64"], "Hi\n/exit\n");
}

/// `atenia chat --trace`: the guard runs through the conversation; under
/// the scripted pressure the reading at token 16 tightens the budget.
#[test]
fn chat_traces_its_guard() {
    let trace = std::env::temp_dir().join(format!("atenia-chat-{}.jsonl", std::process::id()));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_atenia"));
    cmd.arg("chat")
        .arg("-m")
        .arg(model_path("SmolLM2-135M-Instruct.Q4_1.gguf"))
        .args(["-n", "12", "-c", "256", "--temperature", "0", "-t", "2"])
        .arg("--trace")
        .arg(&trace)
        .arg("--sensor-script")
        .arg(golden("pressure-sensor.json"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Tell me a long story about a dragon.\nAnd another one, please.\n/exit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    let _ = std::fs::remove_file(&trace);
    let ev: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ev[0]["kind"], "config");
    assert!(ev[0]["source"].as_str().unwrap().starts_with("atenia chat"));
    let decisions: Vec<&serde_json::Value> =
        ev.iter().filter(|v| v["kind"] == "decision").collect();
    assert_eq!(decisions[0]["decision"]["decision"], "proceed");
    // The turns' timing lines say how many tokens each reply generated.
    let err = String::from_utf8_lossy(&out.stderr);
    let generated: u64 = err
        .lines()
        .filter_map(|l| {
            l.split(" generated,")
                .next()?
                .rsplit(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(generated >= 16, "{generated} tokens: {err}");
    assert_eq!(decisions[1]["decision"]["decision"], "tighten", "{text}");
    assert!(ev
        .iter()
        .any(|v| v["kind"] == "action" && v["action"] == "tighten"));
}

/// `generate --memory-budget 32MiB` under the scripted pressure: the guard
/// tightens to 20 MiB at token 16 and evicts at token 48; the tokens equal
/// the unbounded run's and the peak RSS stays within the start bound.
#[test]
fn smollm2_generate_under_pressure_keeps_its_tokens_and_bound() {
    let file = "SmolLM2-135M-Instruct.Q4_1.gguf";
    let prompt = "Once upon a time";
    let pressure = [
        "--memory-budget".into(),
        "32MiB".into(),
        "--sensor-script".into(),
        golden("pressure-sensor.json").into_os_string(),
    ];
    let free = generate_json(file, prompt, 50, &[]);
    let v = generate_json(file, prompt, 50, &pressure);
    let m = &v["memory"];
    eprintln!("{m}");
    assert_eq!(m["start_budget_bytes"], 32u64 << 20);
    assert_eq!(m["budget_bytes"], 20u64 << 20);
    assert_eq!(m["tightenings"], 1);
    assert_eq!(m["evictions"], 2);
    assert_eq!(
        m["replans"], 2,
        "tighten and evict (pressure does not end by token 50)"
    );
    assert_eq!(m["tensors_mapped"], 0, "evicted: nothing kept mapped");
    assert_eq!(v["generated_tokens"], 50, "{v}");
    assert_eq!(
        v["token_ids"], free["token_ids"],
        "tokens differ under pressure"
    );
    if m["peak_rss_includes_loading"] == false {
        assert_eq!(m["within_bound"], true, "{m}");
    }
}
