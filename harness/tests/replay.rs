//! Golden decision traces replay identically; a tampered one does not.
//!
//! Every `golden/traces/*.jsonl` is replayed.
//! `golden/traces/pressure-scripted.jsonl` and `refuse-scripted.jsonl` are
//! written by `atenia_engine::guard::trace::record_script` from the synthetic
//! readings below (regenerate with `ATENIA_BLESS_TRACES=1 cargo test -p
//! atenia-harness --test replay`); `smollm2-generate.jsonl` and
//! `smollm2-refuse-ctx.jsonl` were recorded by `atenia generate --trace`
//! (see golden/traces/README.md).

use std::path::PathBuf;

use atenia_engine::guard::policy::{Decision, GuardConfig, Reading};
use atenia_engine::guard::trace::{record_script, TraceWriter};
use atenia_harness::replay::{replay, Outcome};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn dir() -> PathBuf {
    atenia_testkit::golden().join("traces")
}

fn reading(t_ms: u64, free: u64, budget: Option<u64>) -> Reading {
    Reading {
        t_ms,
        mem_available_bytes: Some(free),
        mem_total_bytes: Some(8 * GIB),
        cgroup_limit_bytes: None,
        cgroup_current_bytes: None,
        cgroup_file_bytes: None,
        budget_bytes: budget,
    }
}

/// Free memory starts at 3 GiB, falls to oscillate around the 10% threshold
/// (0.8 GiB of 8), dips to 0.4 GiB, recovers to 3 GiB (oscillating around
/// 20% on the way), then falls again.
fn pressure_script() -> Vec<Reading> {
    let mut free: Vec<u64> = vec![3 * GIB, 3 * GIB, 2 * GIB, GIB];
    for i in 0..12 {
        free.push(if i % 2 == 0 { 780 * MIB } else { 860 * MIB });
    }
    free.extend([600 * MIB, 400 * MIB, 400 * MIB, GIB, 1700 * MIB]);
    for i in 0..8 {
        free.push(if i % 2 == 0 { 1600 * MIB } else { 1700 * MIB });
    }
    free.extend([3 * GIB, 3 * GIB, 3 * GIB, 700 * MIB, 700 * MIB]);
    free.iter()
        .enumerate()
        .map(|(i, &f)| reading(i as u64 * 400, f, Some(GIB)))
        .collect()
}

fn record(script: &[Reading], needed: u64, budget: Option<u64>) -> (String, Vec<Decision>) {
    let buf = std::rc::Rc::new(std::cell::RefCell::new(Vec::<u8>::new()));
    struct Sink(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = TraceWriter::new(Box::new(Sink(buf.clone())), "scripted".into());
    let ds = record_script(&mut w, &GuardConfig::default(), needed, budget, script, 16).unwrap();
    drop(w);
    let text = String::from_utf8(buf.borrow().clone()).unwrap();
    (text, ds)
}

fn scripted() -> Vec<(&'static str, String, Vec<Decision>)> {
    let (p, pd) = record(&pressure_script(), 40 * MIB, Some(GIB));
    let refuse = vec![reading(0, 12 * MIB, Some(16 * MIB))];
    let (r, rd) = record(&refuse, 40 * MIB, Some(16 * MIB));
    vec![
        ("pressure-scripted.jsonl", p, pd),
        ("refuse-scripted.jsonl", r, rd),
    ]
}

#[test]
fn scripted_traces_match_their_golden_files() {
    let bless = std::env::var_os("ATENIA_BLESS_TRACES").is_some();
    for (name, text, _) in scripted() {
        let path = dir().join(name);
        if bless {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (bless with ATENIA_BLESS_TRACES=1)", path.display())
        });
        assert_eq!(
            golden, text,
            "{name} differs from what the script records now"
        );
    }
}

#[test]
fn the_pressure_script_crosses_the_thresholds() {
    let (_, _, ds) = scripted().remove(0);
    let tighten = ds
        .iter()
        .filter(|d| matches!(d, Decision::Tighten { .. }))
        .count();
    let states: Vec<String> = ds
        .iter()
        .map(|d| serde_json::to_value(d).unwrap()["state"].to_string())
        .collect();
    let transitions = states.windows(2).filter(|w| w[0] != w[1]).count();
    // Enter, leave, enter again: three transitions for all the noise.
    assert_eq!(transitions, 3, "{ds:?}");
    assert!(tighten >= 2, "{ds:?}");
    let (_, _, rd) = scripted().remove(1);
    assert!(matches!(rd[0], Decision::Refuse { .. }));
}

#[test]
fn every_golden_trace_replays_identically() {
    let mut names = vec![];
    for e in std::fs::read_dir(dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            let text = std::fs::read_to_string(&p).unwrap();
            match replay(&text) {
                Ok(Outcome::Identical(n)) => assert!(n > 0, "{}: no decisions", p.display()),
                other => panic!("{}: {other:?}", p.display()),
            }
            names.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    assert!(
        names.iter().any(|n| n == "pressure-scripted.jsonl"),
        "{names:?}"
    );
}

/// Changes the `nth` decision event's JSON with `f`; returns the new text and its 1-based line.
fn tamper(text: &str, nth: usize, f: impl Fn(&mut serde_json::Value)) -> (String, usize) {
    let mut seen = 0;
    let mut at = 0;
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["kind"] == "decision" {
                if seen == nth {
                    f(&mut v["decision"]);
                    at = i + 1;
                }
                seen += 1;
            }
            serde_json::to_string(&v).unwrap()
        })
        .collect();
    (lines.join("\n") + "\n", at)
}

#[test]
fn a_tampered_trace_is_reported_at_its_first_difference() {
    let text = std::fs::read_to_string(dir().join("pressure-scripted.jsonl")).unwrap();
    let ds: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "decision")
        .collect();
    // The first tightening: claim a different budget.
    let k = ds
        .iter()
        .position(|v| v["decision"]["decision"] == "tighten")
        .unwrap();
    let (bad, line) = tamper(&text, k, |d| {
        d["budget_bytes"] = (d["budget_bytes"].as_u64().unwrap() + 1).into()
    });
    match replay(&bad).unwrap() {
        Outcome::Differs { line: l, .. } => assert_eq!(l, line),
        o => panic!("{o:?}"),
    }
    // A quiet step turned into an eviction.
    let k = ds.len() - 1;
    let (bad, line) = tamper(&text, k, |d| d["decision"] = "evict".into());
    match replay(&bad).unwrap() {
        Outcome::Differs {
            line: l, recorded, ..
        } => {
            assert_eq!(l, line);
            assert_eq!(recorded["decision"], "evict");
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn a_trace_without_config_is_malformed() {
    let text = std::fs::read_to_string(dir().join("pressure-scripted.jsonl")).unwrap();
    let rest: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    assert!(replay(&rest).is_err());
}

/// golden/traces/smollm2-pressure-generate.jsonl: a real `atenia generate`
/// run with the sensor scripted (golden/traces/pressure-sensor.json): the
/// guard tightens the budget, later evicts, then restores, and the actions
/// are the ones the run carried out (pages dropped, RSS measured), not
/// simulated notes.
#[test]
fn the_generate_pressure_trace_tightens_evicts_and_restores() {
    let text = std::fs::read_to_string(dir().join("smollm2-pressure-generate.jsonl")).unwrap();
    assert!(matches!(replay(&text), Ok(Outcome::Identical(6))));
    let ev: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(ev[0]["source"]
        .as_str()
        .unwrap()
        .contains("scripted sensor"));
    let ds: Vec<&str> = ev
        .iter()
        .filter(|v| v["kind"] == "decision")
        .map(|v| v["decision"]["decision"].as_str().unwrap())
        .collect();
    assert_eq!(ds, ["proceed", "tighten", "none", "evict", "none", "none"]);
    let acts: Vec<(&str, &str)> = ev
        .iter()
        .filter(|v| v["kind"] == "action")
        .map(|v| (v["action"].as_str().unwrap(), v["note"].as_str().unwrap()))
        .collect();
    let names: Vec<&str> = acts.iter().map(|a| a.0).collect();
    assert_eq!(names, ["proceed", "tighten", "evict", "restore"]);
    for (a, note) in &acts[1..3] {
        assert!(note.contains("weight pages dropped: RSS"), "{a}: {note}");
        assert!(!note.contains("simulated"), "{a}: {note}");
    }
}
