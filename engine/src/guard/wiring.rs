//! The memory guard wired into a run: `generate`, `chat`, `atenia-harness
//! validate` and `bench` all go through [`RunGuard`].
//!
//! At start it takes a reading, lets [`Guard::admit`] decide (refuse with
//! `E-RESOURCE`, proceed, or proceed under a tightened budget) and sets the
//! model's budget. During the run the caller reports progress (tokens, or
//! positions) and every [`RunGuard::every`] units the guard takes a reading
//! and acts on [`Guard::step`]'s decision:
//!
//! - **evict**: the cached (kept-mapped) weight pages are dropped from the
//!   process (`MADV_DONTNEED`; they stay in the page cache) and the model's
//!   sessions re-plan before their next pass with nothing kept mapped beyond
//!   the streaming buffer, until the guard leaves pressure (**restore**);
//! - **tighten**: the budget is lowered, the weight pages dropped, and the
//!   sessions re-plan under the new budget before their next pass.
//!
//! Every reading, decision and action goes to the `--trace` file when given.
//! The logits do not depend on the placement, so none of this changes a bit
//! of the output.
//!
//! For tests and golden traces the sensor can be scripted: with
//! `--sensor-script FILE` (a JSON array of [`Reading`]s) the i-th
//! reading of the run is the i-th of the file (the last one repeats); the
//! budget field is filled in with the budget in force, and the trace's
//! config event names the script.

use std::path::Path;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::exec::decoder::{release_weights, set_memory_budget};
use crate::guard::policy::{self as guard, Decision, Guard, GuardConfig, Reading, State};
use crate::guard::trace::{Phase, TraceWriter, Tracer};
use crate::memory;
use crate::memory::placement::format_size;
use crate::memory::stats::MemoryStats;
use crate::model::types::Model;

/// A sensor: (milliseconds since start, budget in force) → a reading.
pub type Sensor = Box<dyn FnMut(u64, Option<u64>) -> Reading>;

/// The real sensor (/proc/meminfo and the cgroup).
pub fn os_sensor() -> Sensor {
    Box::new(Reading::sense)
}

/// A sensor replaying `script` (the last reading repeats); its own `t_ms`
/// are kept, so dwell times are those of the script.
pub fn scripted_sensor(script: Vec<Reading>) -> Sensor {
    let mut i = 0usize;
    Box::new(move |_t, budget| {
        let mut r = script
            .get(i.min(script.len().saturating_sub(1)))
            .cloned()
            .unwrap_or_else(|| Reading::sense(0, budget));
        i += 1;
        r.budget_bytes = budget;
        r
    })
}

/// Reads a sensor script (a JSON array of readings).
pub fn read_sensor_script(path: &Path) -> Result<Vec<Reading>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::argument(
            "--sensor-script",
            format!("{}: not a JSON array of readings: {e}", path.display()),
        )
    })
}

/// What a run tells the guard at start.
pub struct GuardOptions<'a> {
    /// Positions of the largest session the run opens (the KV cache counts).
    pub capacity: usize,
    pub threads: usize,
    /// `--memory-budget`.
    pub requested: Option<u64>,
    /// `--trace FILE`.
    pub trace: Option<&'a Path>,
    /// The command, for the trace's config event.
    pub source: &'a str,
    /// Progress units (tokens, positions) between two readings; 0: none.
    pub every: u64,
    /// The sensor; `None`: the script of `sensor_script` if given, else the OS.
    pub sensor: Option<Sensor>,
    /// `--sensor-script FILE`: readings replayed instead of the OS's.
    pub sensor_script: Option<&'a Path>,
    /// `--stream-read`.
    pub stream_read: crate::memory::control::StreamRead,
}

/// The guard of one run (see the module docs).
pub struct RunGuard<'m> {
    model: &'m Model,
    tracer: Tracer,
    sensor: Sensor,
    started: Instant,
    every: u64,
    next_at: u64,
}

impl<'m> RunGuard<'m> {
    /// The start decision; `Err(E-RESOURCE)` (after tracing it) when the
    /// guard refuses. Sets the model's budget to the one decided.
    pub fn start(model: &'m Model, o: GuardOptions<'_>) -> Result<RunGuard<'m>> {
        let (mut sensor, scripted) = match o.sensor {
            Some(s) => (s, Some("a sensor given by the caller".to_string())),
            None => match o.sensor_script {
                Some(p) => (
                    scripted_sensor(read_sensor_script(p)?),
                    Some(format!("scripted sensor {}", p.display())),
                ),
                None => (os_sensor(), None),
            },
        };
        let config = GuardConfig::default();
        let writer = match o.trace {
            Some(p) => {
                let mut w = TraceWriter::create(p)?;
                let source = match &scripted {
                    Some(s) => format!("{} ({s})", o.source),
                    None => o.source.to_string(),
                };
                w.config(&config, &source)?;
                Some(w)
            }
            None => None,
        };
        let mut tracer = Tracer {
            guard: Guard::new(config),
            writer,
        };
        let needed = guard::needed_bytes(model, o.capacity, o.threads);
        let phase = Phase::Start {
            needed_bytes: needed,
            requested_budget: o.requested,
        };
        let first = sensor(0, o.requested);
        let d = tracer.observe(phase, &first)?;
        if let Some(e) = d.error() {
            tracer.action("refuse", &e.to_string())?;
            return Err(e);
        }
        let budget = tracer.guard.budget();
        match d {
            Decision::Tighten { budget_bytes, .. } => {
                // Never lowered silently: the person asked for something else.
                let free = first.free_bytes().map_or("unknown".into(), format_size);
                let now = format_size(budget_bytes);
                match o.requested {
                    Some(r) if first.free_bytes().is_some_and(|f| r > f) => tracing::warn!(
                        requested_bytes = r,
                        budget_bytes,
                        "--memory-budget {} is more than the {free} of memory available \
                         (MemAvailable and the cgroup limit): running under {now} instead",
                        format_size(r)
                    ),
                    Some(r) => tracing::warn!(
                        requested_bytes = r,
                        budget_bytes,
                        "memory is under pressure ({free} available): running under {now} \
                         instead of --memory-budget {}",
                        format_size(r)
                    ),
                    None => tracing::warn!(
                        budget_bytes,
                        "memory is under pressure ({free} available): running under a budget \
                         of {now} (weights that do not fit are streamed from the file)"
                    ),
                }
                tracer.action(
                    "tighten",
                    &format!(
                        "starting under a budget of {budget_bytes} bytes instead of {:?}",
                        o.requested
                    ),
                )?
            }
            _ => tracer.action("proceed", &format!("budget {budget:?}"))?,
        }
        model.memory.set_stream_read(o.stream_read);
        set_memory_budget(model, budget);
        Ok(RunGuard {
            model,
            tracer,
            sensor,
            started: Instant::now(),
            every: o.every,
            next_at: o.every,
        })
    }

    /// The budget the run is held to now.
    pub fn budget(&self) -> Option<u64> {
        self.tracer.guard.budget()
    }

    pub fn state(&self) -> State {
        self.tracer.guard.state()
    }

    /// Reports progress (`done` units so far, counting from the start of the
    /// run); takes a reading and acts when it crossed the next multiple of
    /// `every`.
    pub fn progress(&mut self, done: u64) -> Result<Option<Decision>> {
        if self.every == 0 || done < self.next_at {
            return Ok(None);
        }
        self.next_at = (done / self.every + 1) * self.every;
        self.check(done).map(Some)
    }

    /// Takes a reading now (`done` units so far, for the trace) and acts on
    /// the decision.
    pub fn check(&mut self, done: u64) -> Result<Decision> {
        let was = self.tracer.guard.state();
        let r = (self.sensor)(
            self.started.elapsed().as_millis() as u64,
            self.tracer.guard.budget(),
        );
        let d = self.tracer.observe(Phase::Step { token: done }, &r)?;
        let mem = &self.model.memory;
        match &d {
            Decision::Evict { .. } => {
                mem.set_stream_all(true);
                let note = self.drop_pages();
                mem.replan();
                self.tracer.action(
                    "evict",
                    &format!("{note}; sessions re-plan with nothing kept mapped beyond the streaming buffer until pressure ends"),
                )?;
            }
            Decision::Tighten { budget_bytes, .. } => {
                let before = mem.budget();
                tracing::warn!(
                    budget_bytes = *budget_bytes,
                    "memory is under pressure: budget lowered from {} to {}",
                    before.map_or("none".to_string(), format_size),
                    format_size(*budget_bytes)
                );
                mem.set_budget(Some(*budget_bytes));
                MemoryStats::add(&mem.stats.tightenings, 1);
                let note = self.drop_pages();
                mem.replan();
                self.tracer.action(
                    "tighten",
                    &format!(
                        "budget {} → {} ({budget_bytes} bytes); {note}; sessions re-plan before their next pass",
                        before.map_or("none".to_string(), format_size),
                        format_size(*budget_bytes)
                    ),
                )?;
            }
            Decision::None {
                state: State::Normal,
            } if was == State::Pressure && mem.stream_all() => {
                mem.set_stream_all(false);
                mem.replan();
                self.tracer.action(
                    "restore",
                    "pressure ended: sessions re-plan and keep mapped what fits the budget again",
                )?;
            }
            _ => {}
        }
        Ok(d)
    }

    /// Records why a generation stopped (the trace's `stop` event; nothing
    /// without `--trace`).
    pub fn stop(
        &mut self,
        reason: crate::exec::generate::StopReason,
        generated_tokens: u64,
    ) -> Result<()> {
        self.tracer.stop(reason, generated_tokens)
    }

    /// Drops the weight pages the process maps; the note says how much RSS fell.
    fn drop_pages(&mut self) -> String {
        let before = memory::os::rss();
        release_weights(self.model);
        let after = memory::os::rss();
        let st = &self.model.memory.stats;
        MemoryStats::add(&st.evictions, 1);
        match (before, after) {
            (Some(b), Some(a)) => {
                MemoryStats::add(&st.evicted_bytes, b.saturating_sub(a));
                format!(
                    "weight pages dropped: RSS {} → {}",
                    format_size(b),
                    format_size(a)
                )
            }
            _ => "weight pages dropped (RSS unknown)".to_string(),
        }
    }
}
