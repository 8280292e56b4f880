//! Memory telemetry: what the plan placed where, what the decoder streamed,
//! whether read-ahead had the pages ready, and how long compute waited on I/O
//! against how long it computed. Counters are atomics shared by a model's
//! sessions; [`MemoryStats::to_json`] is the `memory` object of generate's and
//! validate's JSON.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default, Debug)]
pub struct MemoryStats {
    /// The latest plan (set by each session).
    pub plan_fixed: AtomicU64,
    pub plan_kv_cache: AtomicU64,
    pub plan_scratch: AtomicU64,
    pub plan_resident: AtomicU64,
    pub plan_mapped: AtomicU64,
    pub plan_streamed: AtomicU64,
    pub plan_stream_buffer: AtomicU64,
    pub plan_limit: AtomicU64,
    pub tensors_streamed: AtomicU64,
    pub tensors_mapped: AtomicU64,
    /// Weight bytes mapped, used and released again, summed over passes.
    pub streamed_bytes: AtomicU64,
    /// Pieces streamed (a tensor streamed whole is one piece).
    pub pieces: AtomicU64,
    /// Pages of streamed pieces already in the page cache when compute
    /// reached them (read-ahead hits), and all their pages.
    pub readahead_ready_pages: AtomicU64,
    pub readahead_pages: AtomicU64,
    /// Time spent mapping streamed pieces before computing on them (page
    /// faults, and disk reads when read-ahead had not finished).
    pub io_wait_ns: AtomicU64,
    /// Time of forward passes minus `io_wait_ns`.
    pub forward_ns: AtomicU64,
    pub passes: AtomicU64,
    /// RSS when the budget was set (after loading, weights released) plus
    /// the runtime allowance ([`crate::exec::decoder::RuntimeAllowance`]): the fixed
    /// overhead outside the budget (binary, tokenizer, runtime, metadata).
    pub overhead_bytes: AtomicU64,
    /// The runtime allowance's parts, measured when the budget was set.
    pub allowance_code: AtomicU64,
    pub allowance_stacks: AtomicU64,
    pub allowance_allocator: AtomicU64,
    /// The budget set at start (0: none). A guard only lowers the budget and
    /// the peak is not reset when it does, so the bound is this budget's.
    pub start_budget: AtomicU64,
    /// Peak RSS of loading (before the peak was reset), bytes.
    pub load_peak_rss: AtomicU64,
    /// Whether the peak RSS was reset after loading (else it includes loading).
    pub peak_reset: AtomicU64,
    /// Guard evictions carried out (mapped weight pages dropped).
    pub evictions: AtomicU64,
    /// Weight pages dropped by evictions, bytes (the page span of the
    /// released ranges that `mincore` saw mapped or cached beforehand).
    pub evicted_bytes: AtomicU64,
    /// Budget changes during a run (guard tightenings).
    pub tightenings: AtomicU64,
    /// Placements planned again mid-run by a session (after an eviction or
    /// a tightening).
    pub replans: AtomicU64,
}

impl MemoryStats {
    pub fn add(c: &AtomicU64, v: u64) {
        c.fetch_add(v, Relaxed);
    }

    pub fn set(c: &AtomicU64, v: u64) {
        c.store(v, Relaxed);
    }

    /// The `memory` object of the JSON reports.
    pub fn to_json(&self, budget: Option<u64>) -> serde_json::Value {
        let g = |c: &AtomicU64| c.load(Relaxed);
        let ready = g(&self.readahead_ready_pages);
        let pages = g(&self.readahead_pages);
        let wait = g(&self.io_wait_ns);
        let fwd = g(&self.forward_ns);
        let peak = crate::memory::os::peak_rss();
        let overhead = g(&self.overhead_bytes);
        // The overhead is measured when a budget is set at start; a budget a
        // guard set mid-run (no budget at start) has none, hence no bound.
        // The bound is the start budget's: the peak covers the whole run.
        let known_overhead = budget.filter(|_| overhead > 0).map(|_| overhead);
        let start_budget = match g(&self.start_budget) {
            0 => None,
            b => Some(b),
        };
        let bound = start_budget.zip(known_overhead).map(|(b, o)| b + o);
        serde_json::json!({
            "budget_bytes": budget,
            "start_budget_bytes": start_budget,
            "limit_bytes": match g(&self.plan_limit) { 0 => None, v => Some(v) },
            "fixed_overhead_bytes": known_overhead,
            "runtime_allowance_bytes": known_overhead.map(|_| {
                g(&self.allowance_code) + g(&self.allowance_stacks) + g(&self.allowance_allocator)
            }),
            "runtime_allowance": known_overhead.map(|_| serde_json::json!({
                "code_bytes": g(&self.allowance_code),
                "stack_bytes": g(&self.allowance_stacks),
                "allocator_bytes": g(&self.allowance_allocator),
            })),
            "bound_bytes": bound,
            "peak_rss_bytes": peak,
            "peak_rss_includes_loading": g(&self.peak_reset) == 0,
            "load_peak_rss_bytes": match g(&self.load_peak_rss) { 0 => None, v => Some(v) },
            "within_bound": match (bound, peak) {
                (Some(b), Some(p)) => Some(p <= b),
                _ => None,
            },
            "kv_cache_bytes": g(&self.plan_kv_cache),
            "scratch_bytes": g(&self.plan_scratch),
            "resident_bytes": g(&self.plan_resident),
            "mapped_bytes": g(&self.plan_mapped),
            "streamed_bytes_per_pass": g(&self.plan_streamed),
            "stream_buffer_bytes": g(&self.plan_stream_buffer),
            "tensors_mapped": g(&self.tensors_mapped),
            "tensors_streamed": g(&self.tensors_streamed),
            "streamed_bytes_total": g(&self.streamed_bytes),
            "pieces_streamed": g(&self.pieces),
            "readahead_ready_pages": ready,
            "readahead_pages": pages,
            "readahead_hit_rate": if pages > 0 { Some(ready as f64 / pages as f64) } else { None },
            "io_wait_ms": wait as f64 / 1e6,
            "compute_ms": fwd.saturating_sub(wait) as f64 / 1e6,
            "io_wait_fraction": if fwd > 0 { Some(wait as f64 / fwd as f64) } else { None },
            "passes": g(&self.passes),
            "evictions": g(&self.evictions),
            "evicted_bytes": g(&self.evicted_bytes),
            "tightenings": g(&self.tightenings),
            "replans": g(&self.replans),
        })
    }
}
