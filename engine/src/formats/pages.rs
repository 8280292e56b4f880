//! Pages of a memory-mapped file (Linux; elsewhere every call is a no-op or
//! `None`): releasing and pre-reading them, asking which are in the page
//! cache, and touching them.
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
