//! Decision traces: one JSON object a line (JSONL). The first event (`config`)
//! records the guard's thresholds; then `reading` events (the sensor values),
//! each followed by the `decision` the guard made on it, and `action` events
//! saying what the run did about a decision (`proceed`, `refuse`, `tighten`,
//! `evict`, and `restore` when pressure ends after an eviction; see
//! [`crate::guard::wiring`]). Each generation (one in `generate`, one per turn in
//! `chat`) ends with a `stop` event: why it stopped (`stop_reason`, spelled as
//! in `--output json`: `eos`, `max_tokens`, `context_full`, `interrupted`)
//! and how many tokens it generated. Every event carries the run id (time and pid:
//! unique per run, never read by replay) and a sequence number.
//!
//! `atenia-harness replay TRACE` feeds the readings to [`crate::guard::policy::Guard`]
//! again with the recorded configuration and checks every decision.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::exec::generate::StopReason;
use crate::guard::policy::{Decision, Guard, GuardConfig, Reading};

/// A run id from the wall clock and the pid (no randomness).
pub fn run_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{ms:x}-{}", std::process::id())
}

/// Where a reading was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the run: [`Guard::admit`] decides.
    Start {
        needed_bytes: u64,
        requested_budget: Option<u64>,
    },
    /// During the run, after `token` generated tokens: [`Guard::step`] decides.
    Step { token: u64 },
}

/// Writes trace events to a sink.
pub struct TraceWriter {
    out: Box<dyn Write>,
    run_id: String,
    seq: u64,
}

impl TraceWriter {
    /// A writer to `path` (created or truncated), with a fresh run id.
    pub fn create(path: &Path) -> Result<TraceWriter> {
        let f = std::fs::File::create(path).map_err(|e| {
            Error::argument(
                "--trace",
                format!(
                    "cannot write {}: {e}; give a path in a directory you can write to",
                    path.display()
                ),
            )
        })?;
        Ok(TraceWriter::new(
            Box::new(std::io::BufWriter::new(f)),
            run_id(),
        ))
    }

    pub fn new(out: Box<dyn Write>, run_id: String) -> TraceWriter {
        TraceWriter {
            out,
            run_id,
            seq: 0,
        }
    }

    fn event(&mut self, kind: &str, body: Value) -> Result<()> {
        let mut v = json!({ "run_id": self.run_id, "seq": self.seq, "kind": kind });
        if let (Value::Object(m), Value::Object(b)) = (&mut v, body) {
            m.extend(b);
        }
        self.seq += 1;
        let line = serde_json::to_string(&v).map_err(|e| Error::Runtime(e.to_string()))?;
        writeln!(self.out, "{line}")
            .and_then(|_| self.out.flush())
            .map_err(|e| Error::Runtime(format!("writing the trace: {e}")))
    }

    /// The first event: the guard's configuration and what was run.
    pub fn config(&mut self, config: &GuardConfig, source: &str) -> Result<()> {
        self.event("config", json!({ "config": config, "source": source }))
    }

    pub fn reading(&mut self, phase: Phase, r: &Reading) -> Result<()> {
        let p = match phase {
            Phase::Start {
                needed_bytes,
                requested_budget,
            } => {
                json!({ "phase": "start", "needed_bytes": needed_bytes, "requested_budget": requested_budget })
            }
            Phase::Step { token } => json!({ "phase": "step", "token": token }),
        };
        self.event("reading", json!({ "at": p, "reading": r }))
    }

    pub fn decision(&mut self, d: &Decision) -> Result<()> {
        self.event("decision", json!({ "decision": d }))
    }

    /// What was done about a decision; `note` says how (or that it was a no-op).
    pub fn action(&mut self, action: &str, note: &str) -> Result<()> {
        self.event("action", json!({ "action": action, "note": note }))
    }

    /// The end of one generation: why it stopped and after how many tokens.
    pub fn stop(&mut self, reason: StopReason, generated_tokens: u64) -> Result<()> {
        self.event(
            "stop",
            json!({ "stop_reason": reason, "generated_tokens": generated_tokens }),
        )
    }

    /// Takes a reading's decision through `guard` and records both.
    pub fn observe(&mut self, guard: &mut Guard, phase: Phase, r: &Reading) -> Result<Decision> {
        self.reading(phase, r)?;
        let d = match phase {
            Phase::Start {
                needed_bytes,
                requested_budget,
            } => guard.admit(r, needed_bytes, requested_budget),
            Phase::Step { .. } => guard.step(r),
        };
        self.decision(&d)?;
        Ok(d)
    }
}

/// The optional writer of a run: every call is a no-op without `--trace`,
/// but the guard decides either way.
pub struct Tracer {
    pub guard: Guard,
    pub writer: Option<TraceWriter>,
}

impl Tracer {
    pub fn observe(&mut self, phase: Phase, r: &Reading) -> Result<Decision> {
        match &mut self.writer {
            Some(w) => w.observe(&mut self.guard, phase, r),
            None => Ok(match phase {
                Phase::Start {
                    needed_bytes,
                    requested_budget,
                } => self.guard.admit(r, needed_bytes, requested_budget),
                Phase::Step { .. } => self.guard.step(r),
            }),
        }
    }

    pub fn action(&mut self, action: &str, note: &str) -> Result<()> {
        match &mut self.writer {
            Some(w) => w.action(action, note),
            None => Ok(()),
        }
    }

    pub fn stop(&mut self, reason: StopReason, generated_tokens: u64) -> Result<()> {
        match &mut self.writer {
            Some(w) => w.stop(reason, generated_tokens),
            None => Ok(()),
        }
    }
}

/// Records a scripted sequence of readings (the first is the start reading)
/// through the same writer and guard a run uses: how the simulated-pressure
/// golden trace is made. Actions are recorded as "simulated".
pub fn record_script(
    w: &mut TraceWriter,
    config: &GuardConfig,
    needed_bytes: u64,
    requested_budget: Option<u64>,
    readings: &[Reading],
    tokens_per_reading: u64,
) -> Result<Vec<Decision>> {
    w.config(
        config,
        "scripted sensor (crate::guard::trace::record_script)",
    )?;
    let mut g = Guard::new(config.clone());
    let mut out = vec![];
    for (i, r) in readings.iter().enumerate() {
        let phase = if i == 0 {
            Phase::Start {
                needed_bytes,
                requested_budget,
            }
        } else {
            Phase::Step {
                token: i as u64 * tokens_per_reading,
            }
        };
        let d = w.observe(&mut g, phase, r)?;
        match &d {
            Decision::Evict { .. } => w.action("evict", "simulated")?,
            Decision::Tighten { budget_bytes, .. } => w.action(
                "tighten",
                &format!("simulated: budget {budget_bytes} bytes"),
            )?,
            Decision::Refuse { .. } => {
                w.action("refuse", "simulated")?;
                out.push(d);
                break;
            }
            _ => {}
        }
        out.push(d);
    }
    Ok(out)
}
