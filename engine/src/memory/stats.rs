//! Memory telemetry: what the plan placed where, what the decoder streamed,
//! whether read-ahead had the pages ready, and how long compute waited on I/O
//! against how long it computed, and what the streaming reader and the disk
//! delivered (bytes read from the device per token against the bytes the
//! plan streams: the read amplification; the read bandwidth). Counters are atomics shared by a model's
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
    /// Pages of streamed pieces ready when compute reached them (read-ahead
    /// hits: read into the ring, or in the page cache for mapped pieces),
    /// and all their pages.
    pub readahead_ready_pages: AtomicU64,
    pub readahead_pages: AtomicU64,
    /// Time compute waited for streamed pieces: for the reader's ring, the
    /// wait for a piece not read yet; for mapped pieces, mapping them (page
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
    /// The streaming ring of the latest plan: 0 none, 1 buffered reads,
    /// 2 `O_DIRECT`; its slots, slot size and I/O threads.
    pub ring_mode: AtomicU64,
    pub ring_slots: AtomicU64,
    pub ring_slot_bytes: AtomicU64,
    pub ring_io_threads: AtomicU64,
    /// Bytes the ring asked of the file (widened to 4096 for `O_DIRECT`).
    pub reader_bytes: AtomicU64,
    /// Time at least one ring read was in flight.
    pub io_busy_ns: AtomicU64,
    /// Forward passes run with some matrices streamed, and their time.
    pub stream_passes: AtomicU64,
    pub stream_ns: AtomicU64,
    /// Bytes read from the storage device during those passes (/proc/self/io
    /// `read_bytes`), and during the first of them (which also faults in
    /// the kept-mapped weights on a cold cache).
    pub device_read_bytes: AtomicU64,
    pub first_pass_device_read_bytes: AtomicU64,
    pub first_pass_ns: AtomicU64,
    /// Whether /proc/self/io could be read.
    pub device_known: AtomicU64,
}

impl MemoryStats {
    pub fn add(c: &AtomicU64, v: u64) {
        c.fetch_add(v, Relaxed);
    }

    pub fn set(c: &AtomicU64, v: u64) {
        c.store(v, Relaxed);
    }

    /// Records one forward pass run with some matrices streamed: its time,
    /// the device bytes read meanwhile (`None`: unknown) and its ring's counters.
    pub fn record_stream_pass(
        &self,
        ns: u64,
        device: Option<u64>,
        ring: Option<crate::formats::reader::RingCounters>,
    ) {
        let first = self.stream_passes.fetch_add(1, Relaxed) == 0;
        Self::add(&self.stream_ns, ns);
        if let Some(d) = device {
            Self::set(&self.device_known, 1);
            Self::add(&self.device_read_bytes, d);
        }
        if first {
            Self::set(&self.first_pass_device_read_bytes, device.unwrap_or(0));
            Self::set(&self.first_pass_ns, ns);
        }
        if let Some(r) = ring {
            Self::add(&self.reader_bytes, r.read_bytes);
            Self::add(&self.io_wait_ns, r.wait_ns);
            Self::add(&self.io_busy_ns, r.busy_ns);
        }
    }

    /// The `disk` part of the `memory` object: what the streaming reader
    /// read, what the device delivered per token (passes after the first:
    /// the first also faults in the kept-mapped weights on a cold cache)
    /// against the bytes the plan streams, and the read bandwidth.
    fn disk_json(&self) -> serde_json::Value {
        let g = |c: &AtomicU64| c.load(Relaxed);
        let passes = g(&self.stream_passes);
        let device = g(&self.device_read_bytes);
        let (steady_bytes, steady_passes, steady_ns) = if passes > 1 {
            (
                device.saturating_sub(g(&self.first_pass_device_read_bytes)),
                passes - 1,
                g(&self.stream_ns).saturating_sub(g(&self.first_pass_ns)),
            )
        } else {
            (device, passes, g(&self.stream_ns))
        };
        let known = g(&self.device_known) == 1 && steady_passes > 0;
        let per_token = known.then(|| steady_bytes as f64 / steady_passes as f64);
        let planned = g(&self.plan_streamed);
        let (wait, busy) = (g(&self.io_wait_ns), g(&self.io_busy_ns));
        let mode = match g(&self.ring_mode) {
            1 => Some("buffered"),
            2 => Some("direct"),
            3 => Some("cached"),
            _ => None,
        };
        serde_json::json!({
            "stream_reader": mode.map(|m| serde_json::json!({
                "mode": m,
                "slots": g(&self.ring_slots),
                "slot_bytes": g(&self.ring_slot_bytes),
                "io_threads": g(&self.ring_io_threads),
                "read_chunk_bytes": crate::memory::placement::RING_READ_CHUNK,
            })),
            "reader_bytes_total": g(&self.reader_bytes),
            "stream_passes": passes,
            "device_read_bytes_total": (g(&self.device_known) == 1).then_some(device),
            "device_read_bytes_first_pass": (g(&self.device_known) == 1)
                .then(|| g(&self.first_pass_device_read_bytes)),
            "device_read_bytes_per_token": per_token,
            "read_amplification": per_token.filter(|_| planned > 0).map(|b| b / planned as f64),
            "read_bandwidth_bytes_per_s": per_token
                .filter(|_| steady_ns > 0)
                .map(|_| steady_bytes as f64 / (steady_ns as f64 / 1e9)),
            "io_busy_ms": busy as f64 / 1e6,
            "io_hidden_fraction": (busy > 0).then(|| (1.0 - wait as f64 / busy as f64).clamp(0.0, 1.0)),
        })
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
        let mut v = serde_json::json!({
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
        });
        if let (Some(o), serde_json::Value::Object(d)) = (v.as_object_mut(), self.disk_json()) {
            o.extend(d);
        }
        v
    }
}
