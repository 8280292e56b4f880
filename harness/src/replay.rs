//! Replays a decision trace (see `atenia_engine::guard::trace`): the recorded
//! readings go through the guard again, with the configuration of the trace's
//! first event, and every decision must equal the recorded one.

use serde_json::Value;

use atenia_engine::guard::policy::{Guard, GuardConfig, Reading};

/// What a replay found.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Every decision was the same; how many.
    Identical(usize),
    /// The first decision that differs: 1-based line of the recorded decision,
    /// what the trace says and what the guard decides now.
    Differs {
        line: usize,
        recorded: Value,
        replayed: Value,
    },
}

/// A trace that cannot be replayed at all (unparsable, out of order).
#[derive(Debug)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Replays the text of a trace.
pub fn replay(text: &str) -> Result<Outcome, Malformed> {
    let mut guard: Option<Guard> = None;
    // The reading awaiting its decision: (line, phase, reading).
    let mut pending: Option<(usize, Value, Reading)> = None;
    let mut n = 0;
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let ev: Value = serde_json::from_str(l)
            .map_err(|e| Malformed(format!("line {line}: not JSON: {e}")))?;
        let kind = ev["kind"].as_str().unwrap_or("");
        match kind {
            "config" => {
                if guard.is_some() {
                    return Err(Malformed(format!("line {line}: a second config event")));
                }
                let c: GuardConfig = serde_json::from_value(ev["config"].clone())
                    .map_err(|e| Malformed(format!("line {line}: bad config: {e}")))?;
                guard = Some(Guard::new(c));
            }
            _ if guard.is_none() => {
                return Err(Malformed(format!(
                    "line {line}: the first event must be the config (thresholds), found {kind:?}"
                )))
            }
            "reading" => {
                if let Some((l0, _, _)) = &pending {
                    return Err(Malformed(format!(
                        "line {line}: the reading of line {l0} has no decision"
                    )));
                }
                let r: Reading = serde_json::from_value(ev["reading"].clone())
                    .map_err(|e| Malformed(format!("line {line}: bad reading: {e}")))?;
                pending = Some((line, ev["at"].clone(), r));
            }
            "decision" => {
                let Some((l0, at, r)) = pending.take() else {
                    return Err(Malformed(format!(
                        "line {line}: a decision without a reading"
                    )));
                };
                let g = guard.as_mut().expect("checked above");
                let d = match at["phase"].as_str() {
                    Some("start") => {
                        let needed = at["needed_bytes"].as_u64().ok_or_else(|| {
                            Malformed(format!("line {l0}: start reading without needed_bytes"))
                        })?;
                        g.admit(&r, needed, at["requested_budget"].as_u64())
                    }
                    Some("step") => g.step(&r),
                    other => return Err(Malformed(format!("line {l0}: unknown phase {other:?}"))),
                };
                let replayed = serde_json::to_value(&d).expect("decisions serialize");
                let recorded = ev["decision"].clone();
                if replayed != recorded {
                    return Ok(Outcome::Differs {
                        line,
                        recorded,
                        replayed,
                    });
                }
                n += 1;
            }
            "action" => {}
            // Why a generation stopped: only the spelling is checked (traces
            // written before the event existed simply lack it).
            "stop" => {
                let reason = ev["stop_reason"].as_str().unwrap_or("");
                if atenia_engine::exec::generate::StopReason::from_name(reason).is_none() {
                    return Err(Malformed(format!(
                        "line {line}: unknown stop_reason {:?} (eos, max_tokens, context_full or interrupted)",
                        ev["stop_reason"]
                    )));
                }
            }
            other => {
                return Err(Malformed(format!(
                    "line {line}: unknown event kind {other:?}"
                )))
            }
        }
    }
    if let Some((l0, _, _)) = pending {
        return Err(Malformed(format!(
            "line {l0}: the last reading has no decision"
        )));
    }
    if guard.is_none() {
        return Err(Malformed("the trace is empty".into()));
    }
    Ok(Outcome::Identical(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"kind":"config","config":{"enter_free_permille":100,"leave_free_permille":200,"min_dwell_ms":2000,"tighten_permille":500},"source":"test"}"#;

    #[test]
    fn stop_events_are_read_and_their_spelling_checked() {
        for reason in ["eos", "max_tokens", "context_full", "interrupted"] {
            let t = format!(
                "{CONFIG}\n{{\"kind\":\"stop\",\"stop_reason\":\"{reason}\",\"generated_tokens\":3}}\n"
            );
            assert_eq!(replay(&t).unwrap(), Outcome::Identical(0), "{reason}");
        }
        // Old spellings (Debug names, the pre-unification JSON) are not accepted.
        for bad in ["EndOfGeneration", "end_of_generation", "max tokens"] {
            let t = format!("{CONFIG}\n{{\"kind\":\"stop\",\"stop_reason\":\"{bad}\"}}\n");
            let e = replay(&t).unwrap_err().to_string();
            assert!(e.contains("line 2: unknown stop_reason"), "{e}");
        }
        // A trace without stop events (written before they existed) still replays.
        assert_eq!(replay(CONFIG).unwrap(), Outcome::Identical(0));
    }
}
