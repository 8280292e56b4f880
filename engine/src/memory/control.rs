//! A model's memory settings and counters, shared by its sessions.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

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
    /// How streamed weights are read ([`StreamRead`] as a number).
    stream_read: AtomicU8,
    pub stats: MemoryStats,
}

/// How streamed weights are read from the model file (`--stream-read`). The
/// bytes, and so the logits, are the same either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StreamRead {
    /// `cached` when a pass's streamed bytes fit in a quarter of the memory
    /// left (the page cache can keep them), else `direct`.
    #[default]
    Auto,
    /// `O_DIRECT` reads: the page cache does not grow (a model larger than
    /// memory, a memory cgroup that counts the page cache).
    Direct,
    /// Buffered reads that leave the pages in the page cache: every pass after
    /// the first is served from memory (a small model under a tiny budget).
    Cached,
}

impl StreamRead {
    pub const NAMES: [&'static str; 3] = ["auto", "direct", "cached"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn from_name(s: &str) -> Option<StreamRead> {
        [StreamRead::Auto, StreamRead::Direct, StreamRead::Cached]
            .into_iter()
            .find(|m| m.name() == s)
    }
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

    pub fn stream_read(&self) -> StreamRead {
        match self.stream_read.load(Ordering::Relaxed) {
            1 => StreamRead::Direct,
            2 => StreamRead::Cached,
            _ => StreamRead::Auto,
        }
    }

    /// Takes effect at the next plan (set it before the budget).
    pub fn set_stream_read(&self, m: StreamRead) {
        self.stream_read.store(m as u8, Ordering::Relaxed);
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
