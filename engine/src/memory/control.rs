//! A model's memory settings and counters, shared by its sessions.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::memory::stats::MemoryStats;

#[derive(Default, Debug)]
pub struct MemoryControl {
    /// The budget in bytes; 0 = none.
    budget: AtomicU64,
    /// Bumped when the placement must be planned again (a guard tightened
    /// the budget or evicted); sessions compare it before each pass.
    epoch: AtomicU64,
    /// Set by a guard's eviction: plan with nothing kept mapped
    /// ([`crate::memory::placement::PlanInput::stream_all`]) until pressure ends.
    stream_all: std::sync::atomic::AtomicBool,
    pub stats: MemoryStats,
}

impl MemoryControl {
    pub fn budget(&self) -> Option<u64> {
        match self.budget.load(Ordering::Relaxed) {
            0 => None,
            b => Some(b),
        }
    }

    pub fn set_budget(&self, b: Option<u64>) {
        self.budget.store(b.unwrap_or(0), Ordering::Relaxed);
    }

    pub fn stream_all(&self) -> bool {
        self.stream_all.load(Ordering::Relaxed)
    }

    pub fn set_stream_all(&self, on: bool) {
        self.stream_all.store(on, Ordering::Relaxed);
    }

    /// The plan epoch (see [`MemoryControl::replan`]).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Asks every session of the model to plan its placement again before
    /// its next forward pass (under the budget and free memory then).
    pub fn replan(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}
