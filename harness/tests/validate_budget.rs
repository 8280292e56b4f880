//! validate and compare under a memory budget (issue 14, part 4): the engine
//! streams what does not fit, the float64 and bfloat16 references stream the
//! whole model with each chunk's pages released, and the report is the same,
//! number for number, as without a budget.

use atenia_testkit::{self as tk, run_bounded, text};

use std::time::Duration;

use atenia_engine::exec::decoder::set_memory_budget;
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::open::load;
use atenia_harness::metrics::DEFAULT_BAND;
use atenia_harness::prompts::default_prompts;
use atenia_harness::validate::{reference_streaming, validate, Options};
use atenia_references::{Pages, Streaming};
use serde_json::Value;

const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

#[test]
fn a_budget_changes_no_number_of_the_report() {
    let loaded = load(&tk::model_path(SMOL)).unwrap();
    let rt = Runtime::new(2, None).unwrap();
    let prompts = &default_prompts()[..2];
    let opts = Options {
        gen_tokens: 4,
        band: DEFAULT_BAND,
        bf16: true,
    };
    assert_eq!(reference_streaming(&loaded.model), Streaming::default());
    let free = validate(&loaded, &rt, prompts, &opts, &mut |_, _| {}).unwrap();

    set_memory_budget(&loaded.model, Some(16 << 20));
    assert_eq!(reference_streaming(&loaded.model).pages, Pages::Release);
    let tight = validate(&loaded, &rt, prompts, &opts, &mut |_, _| {}).unwrap();

    assert!(free.passed && tight.passed, "{:?}", tight.failures);
    assert_eq!(tight.prompts.len(), 2);
    for (a, b) in free.prompts.iter().zip(&tight.prompts) {
        let (a, b) = (
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap(),
        );
        assert!(a["bf16"].is_object(), "no bf16 comparison: {a}");
        assert_eq!(a, b, "the report of {} moved under a budget", a["name"]);
    }
    assert_eq!(
        serde_json::to_value(&free.summary).unwrap(),
        serde_json::to_value(&tight.summary).unwrap()
    );
}

fn harness(args: &[&str]) -> std::process::Output {
    run_bounded(
        env!("CARGO_BIN_EXE_atenia-harness"),
        args,
        Duration::from_secs(300),
    )
    .0
}

/// The commands as the README gives them: validate with --max-prompts and
/// --memory-budget, compare with --memory-budget.
#[test]
fn validate_and_compare_take_a_budget_on_the_command_line() {
    let m = tk::model_path(SMOL);
    let m = m.to_str().unwrap();
    let o = harness(&[
        "validate",
        m,
        "--memory-budget",
        "16MiB",
        "--max-prompts",
        "1",
        "--gen-tokens",
        "2",
        "--no-bf16",
        "-t",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["summary"]["prompts"], 1);
    assert_eq!(r["prompts"][0]["name"], default_prompts()[0].name.as_str());
    assert_eq!(r["memory"]["budget_bytes"], 16 << 20, "{}", r["memory"]);

    let reference = tk::golden().join("real/SmolLM2-135M-Instruct.Q4_1/capital.safetensors");
    let o = harness(&[
        "compare",
        m,
        "--reference",
        reference.to_str().unwrap(),
        "--memory-budget",
        "16MiB",
        "-t",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("PASS"), "{}", text(&o.stdout));

    let o = harness(&["validate", m, "--max-prompts", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}
