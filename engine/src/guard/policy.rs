//! Memory guards: a pure, deterministic state machine from sensor readings to
//! decisions, plus the (impure) sensor that takes a [`Reading`] from
//! /proc/meminfo and the cgroup.
//!
//! The machine has two states, `normal` and `pressure`. It enters `pressure`
//! when the free fraction of memory drops below `enter_free_permille` and
//! leaves it only when the fraction rises above `leave_free_permille`
//! (greater), and never sooner than `min_dwell_ms` after the previous
//! transition, so a noisy signal around one threshold gives one transition.
//! All arithmetic is on integers: the same readings and configuration always
//! give the same decisions, which is what `atenia-harness replay` checks.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::memory::placement::format_size;

/// One sensor reading. Byte counts; `None` where the OS does not say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// Milliseconds since the run started.
    pub t_ms: u64,
    /// MemAvailable (/proc/meminfo).
    pub mem_available_bytes: Option<u64>,
    /// MemTotal (/proc/meminfo): the base of the free fraction without a cgroup limit.
    pub mem_total_bytes: Option<u64>,
    /// The cgroup's limit: v2 memory.max, v1 memory.limit_in_bytes (none → None).
    pub cgroup_limit_bytes: Option<u64>,
    /// The cgroup's usage: v2 memory.current, v1 memory.usage_in_bytes.
    pub cgroup_current_bytes: Option<u64>,
    /// Page-cache bytes of the cgroup (memory.stat `file`, v1 `total_cache`): reclaimable, counted as free.
    pub cgroup_file_bytes: Option<u64>,
    /// The memory budget in force when the reading was taken.
    pub budget_bytes: Option<u64>,
}

impl Reading {
    /// Memory this process may still take: MemAvailable, lowered to what the
    /// cgroup still allows when that is tighter (as [`crate::memory::os::free_memory`]).
    pub fn free_bytes(&self) -> Option<u64> {
        let cgroup = crate::memory::os::CgroupMemory {
            version: 0,
            limit: self.cgroup_limit_bytes,
            current: self.cgroup_current_bytes,
            file: self.cgroup_file_bytes,
        };
        crate::memory::os::free_within(self.mem_available_bytes, &cgroup)
    }

    /// What the free fraction is a fraction of: the cgroup limit, or MemTotal,
    /// whichever is smaller.
    pub fn capacity_bytes(&self) -> Option<u64> {
        match (self.cgroup_limit_bytes, self.mem_total_bytes) {
            (Some(l), Some(t)) => Some(l.min(t)),
            (l, t) => l.or(t),
        }
    }

    /// Free memory in thousandths of the capacity.
    pub fn free_permille(&self) -> Option<u64> {
        let cap = self.capacity_bytes().filter(|&c| c > 0)?;
        let free = self.free_bytes()?;
        Some(((free as u128 * 1000) / cap as u128).min(1000) as u64)
    }

    /// Reads the sensors now (Linux; elsewhere every field is `None`).
    pub fn sense(t_ms: u64, budget_bytes: Option<u64>) -> Reading {
        use crate::memory::os::{mem_available, CgroupMemory};
        let cg = CgroupMemory::read().unwrap_or_default();
        Reading {
            t_ms,
            mem_available_bytes: mem_available(),
            mem_total_bytes: mem_total(),
            cgroup_limit_bytes: cg.limit,
            cgroup_current_bytes: cg.current,
            cgroup_file_bytes: cg.file,
            budget_bytes,
        }
    }
}

/// MemTotal from /proc/meminfo, bytes.
pub fn mem_total() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let l = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    l.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|k| k * 1024)
}

/// Thresholds; recorded in a trace's first event so replay uses the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardConfig {
    /// Enter pressure when free memory falls below this many thousandths of capacity.
    pub enter_free_permille: u64,
    /// Leave pressure only when free memory rises above this (> enter).
    pub leave_free_permille: u64,
    /// No transition sooner than this after the previous one.
    pub min_dwell_ms: u64,
    /// A tightened budget is this many thousandths of the free memory (never
    /// below the smallest budget that works).
    pub tighten_permille: u64,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            enter_free_permille: 100,
            leave_free_permille: 200,
            min_dwell_ms: 2000,
            tighten_permille: 500,
        }
    }
}

/// The guard's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Normal,
    Pressure,
}

/// What the guard decided about one reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Nothing to do.
    None { state: State },
    /// Start with this budget (the requested one; `None`: no budget).
    Proceed {
        state: State,
        budget_bytes: Option<u64>,
    },
    /// Drop the mapped pages of cached layers (they map again on next use).
    Evict { state: State },
    /// Lower the budget to `budget_bytes` (and evict).
    Tighten { state: State, budget_bytes: u64 },
    /// Do not start: even streaming the weights needs more than is free
    /// (or, with `budget_bytes`, more than the requested budget).
    Refuse {
        needed_bytes: u64,
        available_bytes: u64,
        /// The requested budget, when it is what cannot hold the run
        /// (absent from traces recorded before budgets were checked here).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        budget_bytes: Option<u64>,
    },
}

impl Decision {
    /// The `Error::Resource` for a refusal; `None` for other decisions.
    pub fn error(&self) -> Option<Error> {
        match *self {
            Decision::Refuse {
                needed_bytes,
                budget_bytes: Some(budget),
                ..
            } => Some(Error::Resource {
                resource: "memory".into(),
                reason: format!(
                    "a budget of {} cannot hold the run even streaming the weights: it needs at \
                     least {} (KV cache, scratch, owned tensors and one streamed row); the smallest \
                     budget that works is {} ({needed_bytes} bytes), or lower --ctx-size (the KV cache counts)",
                    format_size(budget),
                    format_size(needed_bytes),
                    format_size(needed_bytes)
                ),
            }),
            Decision::Refuse {
                needed_bytes,
                available_bytes,
                budget_bytes: None,
            } => Some(Error::Resource {
                resource: "memory".into(),
                reason: format!(
                    "the run needs at least {} ({needed_bytes} bytes: KV cache, scratch, owned \
                     tensors and one streamed row) but only {} ({available_bytes} bytes) is \
                     available (MemAvailable and the cgroup limit)",
                    format_size(needed_bytes),
                    format_size(available_bytes)
                ),
            }),
            _ => None,
        }
    }
}

/// The state machine.
#[derive(Clone, Debug)]
pub struct Guard {
    pub config: GuardConfig,
    state: State,
    last_transition_ms: Option<u64>,
    /// The smallest budget that works (from [`Guard::admit`]).
    needed: u64,
    budget: Option<u64>,
}

impl Guard {
    pub fn new(config: GuardConfig) -> Guard {
        Guard {
            config,
            state: State::Normal,
            last_transition_ms: None,
            needed: 0,
            budget: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The budget the guard holds the run to.
    pub fn budget(&self) -> Option<u64> {
        self.budget
    }

    fn dwell_ok(&self, t: u64) -> bool {
        self.last_transition_ms
            .is_none_or(|l| t.saturating_sub(l) >= self.config.min_dwell_ms)
    }

    fn tightened(&self, free: u64) -> u64 {
        let t = (free as u128 * self.config.tighten_permille as u128 / 1000) as u64;
        t.max(self.needed)
    }

    /// The decision at start: refuse when less than `needed` (the smallest
    /// budget that works) is free; tighten when the requested budget exceeds
    /// the free memory or memory is already under pressure; else proceed.
    pub fn admit(&mut self, r: &Reading, needed: u64, requested: Option<u64>) -> Decision {
        self.needed = needed;
        self.budget = requested;
        let Some(free) = r.free_bytes() else {
            return Decision::Proceed {
                state: self.state,
                budget_bytes: requested,
            };
        };
        if free < needed {
            return Decision::Refuse {
                needed_bytes: needed,
                available_bytes: free,
                budget_bytes: None,
            };
        }
        if let Some(b) = requested.filter(|&b| b < needed) {
            return Decision::Refuse {
                needed_bytes: needed,
                available_bytes: free,
                budget_bytes: Some(b),
            };
        }
        if r.free_permille()
            .is_some_and(|p| p < self.config.enter_free_permille)
        {
            self.state = State::Pressure;
            self.last_transition_ms = Some(r.t_ms);
        }
        let over = requested.is_some_and(|b| b > free);
        if over
            || (self.state == State::Pressure && requested.is_none_or(|b| b > self.tightened(free)))
        {
            let b = self.tightened(free);
            self.budget = Some(b);
            return Decision::Tighten {
                state: self.state,
                budget_bytes: b,
            };
        }
        Decision::Proceed {
            state: self.state,
            budget_bytes: requested,
        }
    }

    /// The decision for a reading during the run.
    pub fn step(&mut self, r: &Reading) -> Decision {
        let Some(p) = r.free_permille() else {
            return Decision::None { state: self.state };
        };
        match self.state {
            State::Normal if p < self.config.enter_free_permille && self.dwell_ok(r.t_ms) => {
                self.state = State::Pressure;
                self.last_transition_ms = Some(r.t_ms);
                let free = r.free_bytes().unwrap_or(0);
                let b = self.tightened(free);
                if self.budget.is_none_or(|cur| b < cur) {
                    self.budget = Some(b);
                    Decision::Tighten {
                        state: self.state,
                        budget_bytes: b,
                    }
                } else {
                    Decision::Evict { state: self.state }
                }
            }
            State::Pressure if p > self.config.leave_free_permille && self.dwell_ok(r.t_ms) => {
                self.state = State::Normal;
                self.last_transition_ms = Some(r.t_ms);
                Decision::None { state: self.state }
            }
            _ => Decision::None { state: self.state },
        }
    }
}

/// The smallest budget a run of `model` with `capacity` positions and
/// `threads` workers can work under: KV cache, scratch and owned tensors plus
/// one row of the widest streamed tensor (what [`crate::memory::placement::plan`]
/// names in its error). The start decision refuses below it.
pub fn needed_bytes(model: &crate::model::types::Model, capacity: usize, threads: usize) -> u64 {
    let c = &model.config;
    let kv = 2 * (c.n_layers * capacity * c.kv_dim() * 4) as u64;
    let scratch = crate::exec::decoder::scratch_bytes(model, capacity, threads);
    let tensors = crate::exec::decoder::plan_tensors(model);
    let owned: u64 = tensors.iter().filter(|t| t.owned).map(|t| t.bytes).sum();
    let widest = tensors
        .iter()
        .filter(|t| !t.owned)
        .map(|t| t.row_bytes)
        .max()
        .unwrap_or(0);
    kv + scratch + owned + widest + crate::memory::placement::PIECE_SLACK
}

/// Result form of a start decision: `Err` for a refusal.
pub fn check(d: &Decision) -> Result<()> {
    match d.error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn reading(t_ms: u64, free: u64) -> Reading {
        Reading {
            t_ms,
            mem_available_bytes: Some(free),
            mem_total_bytes: Some(10 * GIB),
            cgroup_limit_bytes: None,
            cgroup_current_bytes: None,
            cgroup_file_bytes: None,
            budget_bytes: None,
        }
    }

    fn transitions(ds: &[Decision]) -> usize {
        let st = |d: &Decision| match d {
            Decision::None { state }
            | Decision::Proceed { state, .. }
            | Decision::Evict { state }
            | Decision::Tighten { state, .. } => *state,
            Decision::Refuse { .. } => State::Normal,
        };
        ds.windows(2).filter(|w| st(&w[0]) != st(&w[1])).count()
    }

    #[test]
    fn hysteresis_one_transition_for_a_noisy_signal() {
        let mut g = Guard::new(GuardConfig::default());
        let mut ds = vec![g.admit(&reading(0, 5 * GIB), 1 << 20, None)];
        // Oscillates around 10% free: 9.5%, 10.5%, ... never above 20%.
        for i in 1..200u64 {
            let free = if i % 2 == 0 { 95 } else { 105 } * GIB / 100;
            ds.push(g.step(&reading(i * 100, free)));
        }
        assert_eq!(transitions(&ds), 1, "{ds:?}");
        assert_eq!(g.state(), State::Pressure);
        // Only one action: the entry.
        let acts = ds
            .iter()
            .filter(|d| !matches!(d, Decision::None { .. } | Decision::Proceed { .. }))
            .count();
        assert_eq!(acts, 1);
    }

    #[test]
    fn dwell_time_delays_leaving() {
        let mut g = Guard::new(GuardConfig::default());
        g.admit(&reading(0, 5 * GIB), 0, None);
        assert!(matches!(
            g.step(&reading(100, GIB / 2)),
            Decision::Tighten { .. }
        ));
        // Back above 20% at once: too soon to leave.
        assert_eq!(
            g.step(&reading(200, 5 * GIB)),
            Decision::None {
                state: State::Pressure
            }
        );
        assert_eq!(
            g.step(&reading(2100, 5 * GIB)),
            Decision::None {
                state: State::Normal
            }
        );
    }

    #[test]
    fn same_readings_same_decisions() {
        let rs: Vec<Reading> = (0..50u64)
            .map(|i| reading(i * 500, (i * 37 % 11) * GIB / 4))
            .collect();
        let run = || {
            let mut g = Guard::new(GuardConfig::default());
            rs.iter().map(|r| g.step(r)).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn refusal_names_needed_and_available() {
        let mut g = Guard::new(GuardConfig::default());
        let d = g.admit(&reading(0, 3 << 20), 20 << 20, Some(16 << 20));
        assert_eq!(
            d,
            Decision::Refuse {
                needed_bytes: 20 << 20,
                available_bytes: 3 << 20,
                budget_bytes: None,
            }
        );
        let e = check(&d).unwrap_err();
        assert_eq!(e.code(), "E-RESOURCE");
        let msg = e.to_string();
        assert!(msg.contains("20.0 MiB") || msg.contains("20 MiB"), "{msg}");
        assert!(msg.contains(&(3u64 << 20).to_string()), "{msg}");
    }

    #[test]
    fn a_budget_below_the_smallest_that_works_is_refused() {
        let mut g = Guard::new(GuardConfig::default());
        let d = g.admit(&reading(0, 5 * GIB), 20 << 20, Some(16 << 20));
        assert_eq!(
            d,
            Decision::Refuse {
                needed_bytes: 20 << 20,
                available_bytes: 5 * GIB,
                budget_bytes: Some(16 << 20),
            }
        );
        let msg = check(&d).unwrap_err().to_string();
        assert!(msg.contains("a budget of 16.0 MiB"), "{msg}");
        assert!(
            msg.contains("smallest budget that works is 20.0 MiB"),
            "{msg}"
        );
        // Exactly the smallest budget proceeds.
        let mut g = Guard::new(GuardConfig::default());
        assert!(matches!(
            g.admit(&reading(0, 5 * GIB), 20 << 20, Some(20 << 20)),
            Decision::Proceed { .. }
        ));
    }

    #[test]
    fn tightening_at_start_and_during_the_run() {
        // Budget larger than what is free: tightened to half the free memory.
        let mut g = Guard::new(GuardConfig::default());
        let d = g.admit(&reading(0, 4 * GIB), GIB / 4, Some(8 * GIB));
        assert_eq!(
            d,
            Decision::Tighten {
                state: State::Normal,
                budget_bytes: 2 * GIB
            }
        );
        // Under pressure during the run: half of 0.8 GiB, above the needed floor.
        let d = g.step(&reading(5000, 8 * GIB / 10));
        assert_eq!(
            d,
            Decision::Tighten {
                state: State::Pressure,
                budget_bytes: 4 * GIB / 10
            }
        );
        // Never below the smallest budget that works.
        let mut g = Guard::new(GuardConfig::default());
        g.admit(&reading(0, 5 * GIB), GIB / 2, None);
        assert_eq!(
            g.step(&reading(10, 6 * GIB / 10)),
            Decision::Tighten {
                state: State::Pressure,
                budget_bytes: GIB / 2
            }
        );
    }

    #[test]
    fn cgroup_limit_is_the_base() {
        let r = Reading {
            t_ms: 0,
            mem_available_bytes: Some(100 * GIB),
            mem_total_bytes: Some(128 * GIB),
            cgroup_limit_bytes: Some(2 * GIB),
            cgroup_current_bytes: Some(GIB + GIB / 2 + GIB / 4),
            cgroup_file_bytes: Some(0),
            budget_bytes: None,
        };
        assert_eq!(r.free_bytes(), Some(GIB / 4));
        assert_eq!(r.free_permille(), Some(125));
    }
}
