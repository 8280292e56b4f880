//! The operating-system side of memory placement (Linux; elsewhere every call
//! is a no-op or `None`): releasing and pre-reading pages of a memory-mapped
//! file, asking which pages are in the page cache, and reading what the OS
//! says about this process (RSS, peak RSS) and the machine (MemAvailable,
//! cgroup limits).
//!
//! The bindings below are declared directly (`extern "C"`, resolved from the
//! C library std already links), so the engine needs no `libc` crate:
//! `madvise(2)`, `mincore(2)` and `sysconf(3)` with `_SC_PAGESIZE`.
//!
//! How the budget holds: weights stay memory-mapped (read-only, shared), so a
//! page of weights is either in this process's page tables (counted in RSS) or
//! only in the page cache (not counted). `MADV_DONTNEED` on a range of such a
//! mapping drops its pages from RSS; the next access maps them again from the
//! page cache (or reads the file). `MADV_WILLNEED` starts the kernel's
//! asynchronous read-ahead into the page cache without mapping anything, which
//! is how the next tensor is fetched while the current one computes.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::telemetry::MemoryStats;

#[cfg(target_os = "linux")]
mod sys {
    use std::ffi::c_void;
    extern "C" {
        pub fn madvise(addr: *mut c_void, len: usize, advice: i32) -> i32;
        pub fn mincore(addr: *mut c_void, len: usize, vec: *mut u8) -> i32;
        pub fn sysconf(name: i32) -> i64;
    }
    pub const MADV_WILLNEED: i32 = 3;
    pub const MADV_DONTNEED: i32 = 4;
    /// Linux 5.14+: map the range's pages now (one call instead of a fault a page).
    pub const MADV_POPULATE_READ: i32 = 22;
    pub const SC_PAGESIZE: i32 = 30;
}

/// The page size (4096 where the OS does not say).
pub fn page_size() -> usize {
    #[cfg(target_os = "linux")]
    {
        use std::sync::OnceLock;
        static P: OnceLock<usize> = OnceLock::new();
        *P.get_or_init(|| {
            // SAFETY: sysconf has no preconditions.
            let p = unsafe { sys::sysconf(sys::SC_PAGESIZE) };
            if p > 0 {
                p as usize
            } else {
                4096
            }
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        4096
    }
}

/// The whole pages covering `s`.
fn span(s: &[u8]) -> (usize, usize) {
    let p = page_size();
    let a = s.as_ptr() as usize;
    let start = a & !(p - 1);
    let end = (a + s.len()).div_ceil(p) * p;
    (start, end - start)
}

/// Linux's fault-around window (`fault_around_bytes`, 64 KiB unless changed
/// in debugfs): a read fault on a file map also maps the pages of the
/// aligned 64 KiB window around it that are already in the page cache. So
/// mapping a streamed piece maps up to 60 KiB of its neighbours too, and
/// releasing only the piece's own pages left those neighbours mapped: on
/// Gemma 3 under a 16 MiB budget that was about 7 MiB of weights resident
/// beyond the plan (one pass's worth of pieces, each leaving part of the
/// window before it), and the peak RSS crossed its bound.
pub const FAULT_AROUND_BYTES: usize = 64 << 10;

/// The fault-around windows covering `s`: what mapping `s` can have mapped.
fn fault_around_span(s: &[u8]) -> (usize, usize) {
    let w = FAULT_AROUND_BYTES.max(page_size());
    let a = s.as_ptr() as usize;
    let start = a & !(w - 1);
    let end = (a + s.len()).div_ceil(w) * w;
    (start, end - start)
}

/// Drops the pages covering `s` from this process's page tables, and with
/// them every page that mapping `s` may have mapped by fault-around (the
/// aligned [`FAULT_AROUND_BYTES`] windows around it, inside the map).
///
/// # Safety
/// `s` must lie inside a read-only memory map of a file (never heap memory:
/// for anonymous memory `MADV_DONTNEED` throws the contents away), and the
/// map must cover the windows around `s` or end inside them: `map_start` and
/// `map_len` are the whole map, so the widened range is clipped to it. Pages
/// dropped from neighbouring tensors of the same map are harmless: they are
/// mapped again on their next use.
pub unsafe fn release(s: &[u8], map: &[u8]) {
    if s.is_empty() {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let (a, n) = fault_around_span(s);
        let (ms, ml) = span(map);
        let start = a.max(ms);
        let end = (a + n).min(ms + ml);
        if end > start {
            sys::madvise(start as *mut _, end - start, sys::MADV_DONTNEED);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = map;
}

/// Starts asynchronous read-ahead of the file pages behind `s` into the page
/// cache; maps nothing (RSS does not grow).
pub fn prefetch(s: &[u8]) {
    if s.is_empty() {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let (a, n) = span(s);
        // SAFETY: WILLNEED only schedules reads; it never changes contents.
        unsafe { sys::madvise(a as *mut _, n, sys::MADV_WILLNEED) };
    }
}

/// (pages of `s` in the page cache or mapped, pages of `s`), from `mincore(2)`;
/// `None` where the OS cannot say.
pub fn cached_pages(s: &[u8]) -> Option<(u64, u64)> {
    if s.is_empty() {
        return Some((0, 0));
    }
    #[cfg(target_os = "linux")]
    {
        let (a, n) = span(s);
        let pages = n / page_size();
        let mut v = vec![0u8; pages];
        // SAFETY: v holds one byte per page of the range, as mincore needs.
        let rc = unsafe { sys::mincore(a as *mut _, n, v.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        Some((
            v.iter().filter(|&&b| b & 1 == 1).count() as u64,
            pages as u64,
        ))
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Reads one byte of every page of `s`, mapping them (page faults happen
/// here, not inside a kernel); returns a value so the reads are not elided.
pub fn touch(s: &[u8]) -> u8 {
    #[cfg(target_os = "linux")]
    if !s.is_empty() {
        let (a, n) = span(s);
        // SAFETY: POPULATE_READ only maps pages for reading; a failure
        // (older kernels: EINVAL) falls back to touching each page.
        if unsafe { sys::madvise(a as *mut _, n, sys::MADV_POPULATE_READ) } == 0 {
            return 0;
        }
    }
    let p = page_size();
    let mut acc = 0u8;
    let mut i = 0;
    while i < s.len() {
        acc ^= unsafe { std::ptr::read_volatile(s.as_ptr().add(i)) };
        i += p;
    }
    if let Some(&last) = s.last() {
        acc ^= last;
    }
    acc
}

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|k| k * 1024)
}

/// Resident set size now (VmRSS), bytes.
pub fn rss() -> Option<u64> {
    status_kib("VmRSS")
}

/// Peak resident set size (VmHWM), bytes: what `getrusage`'s `ru_maxrss` reports.
pub fn peak_rss() -> Option<u64> {
    status_kib("VmHWM")
}

/// Resets the peak RSS to the current RSS (`/proc/self/clear_refs` ← 5);
/// false where the OS refuses.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

/// Bytes of executable file maps (the binary's and the shared libraries'
/// code) not resident now: code a run may still page in, at most. From
/// `/proc/self/smaps` (Size − Rss of each `r-xp` mapping of a file).
pub fn code_not_resident() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut total = 0u64;
    let mut in_code = false;
    let mut size = 0u64;
    for l in s.lines() {
        let mut f = l.split_whitespace();
        let first = f.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping header: range perms offset dev inode [path].
            let perms = f.next().unwrap_or("");
            let path = f.nth(3);
            in_code = perms.starts_with("r-x") && path.is_some_and(|p| p.starts_with('/'));
            size = 0;
        } else if in_code {
            let kib = f.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 1024;
            match first {
                "Size:" => size = kib,
                "Rss:" => total += size.saturating_sub(kib),
                _ => {}
            }
        }
    }
    Some(total)
}

/// Threads of this process now (`Threads:` of /proc/self/status).
pub fn threads() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// MemAvailable from /proc/meminfo, bytes.
pub fn mem_available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let l = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    l.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|k| k * 1024)
}

/// A cgroup v2 file of this process's cgroup holding a number (`max` → None).
pub fn cgroup_value(file: &str) -> Option<u64> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cg.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let path = format!("/sys/fs/cgroup{}/{file}", if rel == "/" { "" } else { rel });
    let v = std::fs::read_to_string(path).ok()?;
    v.trim().parse().ok()
}

/// A field of this cgroup's memory.stat, bytes.
pub fn cgroup_stat(field: &str) -> Option<u64> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cg.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let path = format!(
        "/sys/fs/cgroup{}/memory.stat",
        if rel == "/" { "" } else { rel }
    );
    let s = std::fs::read_to_string(path).ok()?;
    s.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Memory this process may still take: MemAvailable, lowered to what the
/// cgroup still allows (memory.max − memory.current) when it is tighter.
pub fn free_memory() -> Option<u64> {
    let avail = mem_available();
    // memory.current counts the page cache, which the kernel reclaims
    // before refusing memory: count its file pages as free.
    let cg = match (cgroup_value("memory.max"), cgroup_value("memory.current")) {
        (Some(max), Some(cur)) => {
            Some(max.saturating_sub(cur.saturating_sub(cgroup_stat("file").unwrap_or(0))))
        }
        _ => None,
    };
    match (avail, cg) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

/// A model's memory settings and counters, shared by its sessions.
#[derive(Default, Debug)]
pub struct MemoryControl {
    /// The budget in bytes; 0 = none.
    budget: AtomicU64,
    /// Bumped when the placement must be planned again (a guard tightened
    /// the budget or evicted); sessions compare it before each pass.
    epoch: AtomicU64,
    /// Set by a guard's eviction: plan with nothing kept mapped
    /// ([`crate::placement::PlanInput::stream_all`]) until pressure ends.
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
