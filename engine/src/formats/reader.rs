//! The streaming reader: weights read from their file with positioned reads
//! into buffers the engine owns, ahead of the compute that needs them.
//!
//! A [`Ring`] holds a fixed number of 4096-aligned slots, allocated once. Its
//! schedule is a fixed list of byte ranges of one file ([`Segment`]s: the
//! streamed pieces of a forward pass, in the order the pass reads them),
//! repeated pass after pass. I/O threads fill the slots in schedule order
//! (segment `s` of the endless sequence goes to slot `s % slots`), each with
//! large positioned reads, as soon as the consumer has released that slot's
//! previous segment; the consumer takes segments in the same order and waits
//! only when a segment has not arrived yet. Nothing is cached or evicted by
//! use: which bytes sit in which slot follows from the schedule alone.
//!
//! The file is opened a second time with `O_DIRECT` where the file system
//! allows it (checked by a probe read), so reads go from the device into the
//! slots and the page cache, which a memory cgroup counts against the
//! process, does not grow. Offsets and lengths are widened to 4096 for it and
//! the segment's bytes are sliced out of the aligned slot. Elsewhere the
//! reader falls back to buffered `pread` followed by
//! `posix_fadvise(POSIX_FADV_DONTNEED)` on the range, which drops the pages
//! the read left in the page cache. Bindings are declared `extern "C"` as in
//! [`crate::formats::pages`].
//!
//! A caller whose streamed bytes fit easily in the memory left (a small model
//! under a tiny budget, [`RingConfig::direct`] off) reads buffered and keeps
//! the pages ([`ReadMode::Cached`]): every pass after the first is served by
//! the page cache instead of the device.

use std::alloc::Layout;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::formats::storage::{Bytes, Storage};

/// Alignment of `O_DIRECT` offsets, lengths and buffers (the logical block
/// size of every disk this targets is at most 4096).
pub const ALIGN: usize = 4096;

/// Stack of each I/O thread: its loop holds a few words and no buffers.
pub const IO_STACK_BYTES: usize = 64 << 10;

#[cfg(target_os = "linux")]
mod sys {
    extern "C" {
        pub fn posix_fadvise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
    }
    pub const POSIX_FADV_DONTNEED: i32 = 4;
    /// `O_DIRECT` differs by architecture; elsewhere the reader is buffered.
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    pub const O_DIRECT: Option<i32> = Some(0o40000);
    #[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
    pub const O_DIRECT: Option<i32> = Some(0o200000);
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm"
    )))]
    pub const O_DIRECT: Option<i32> = None;
}

/// A zeroed, [`ALIGN`]-aligned byte buffer allocated once.
pub struct AlignedBuf {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer is plain bytes owned by this value; who writes it when
// is governed by its owner (the ring's slot states).
unsafe impl Send for AlignedBuf {}
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// `len` bytes (rounded up to [`ALIGN`]); fails when memory is short.
    pub fn new(len: usize) -> Result<AlignedBuf> {
        let len = len.max(1).div_ceil(ALIGN) * ALIGN;
        let layout = Layout::from_size_align(len, ALIGN)
            .map_err(|e| Error::Runtime(format!("stream buffer of {len} bytes: {e}")))?;
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = std::ptr::NonNull::new(p).ok_or_else(|| Error::Resource {
            resource: "memory".into(),
            reason: format!("cannot allocate a stream buffer of {len} bytes"),
        })?;
        Ok(AlignedBuf { ptr, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes.
    ///
    /// # Safety
    /// No one may write the buffer while the slice lives.
    unsafe fn slice(&self) -> &[u8] {
        std::slice::from_raw_parts(self.ptr.as_ptr(), self.len)
    }

    /// The bytes, for writing.
    ///
    /// # Safety
    /// The caller is the only one reading or writing the buffer while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice_mut(&self) -> &mut [u8] {
        std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len)
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe {
            std::alloc::dealloc(
                self.ptr.as_ptr(),
                Layout::from_size_align_unchecked(self.len, ALIGN),
            )
        }
    }
}

/// How the file is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// `O_DIRECT`: device to buffer, no page cache.
    Direct,
    /// Buffered `pread`, then `POSIX_FADV_DONTNEED` on the range.
    Buffered,
    /// Buffered `pread`, the pages left in the page cache.
    Cached,
}

impl ReadMode {
    pub fn name(self) -> &'static str {
        match self {
            ReadMode::Direct => "direct",
            ReadMode::Buffered => "buffered",
            ReadMode::Cached => "cached",
        }
    }
}

/// A file opened for positioned reads, `O_DIRECT` where it works.
pub struct Source {
    file: File,
    mode: ReadMode,
    len: u64,
    path: PathBuf,
}

impl Source {
    /// Opens `path`, with `O_DIRECT` when `direct` is asked and a probe read
    /// shows the file system takes it (buffered, pages dropped, when it does
    /// not); buffered keeping the pages when `direct` is not asked.
    pub fn open(path: &Path, direct: bool) -> Result<Source> {
        let plain = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = plain.metadata().map_err(|e| Error::io(path, e))?.len();
        let (file, mode) = match direct.then(|| open_direct(path)) {
            Some(Some(f)) => (f, ReadMode::Direct),
            Some(None) => (plain, ReadMode::Buffered),
            None => (plain, ReadMode::Cached),
        };
        Ok(Source {
            file,
            mode,
            len,
            path: path.to_path_buf(),
        })
    }

    pub fn mode(&self) -> ReadMode {
        self.mode
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file range a read of `seg` covers: widened to [`ALIGN`] for `O_DIRECT`.
    pub fn span(&self, seg: Segment) -> (u64, usize) {
        match self.mode {
            ReadMode::Direct => {
                let a = ALIGN as u64;
                let start = seg.offset / a * a;
                let end = (seg.offset + seg.len as u64).div_ceil(a) * a;
                (start, (end - start) as usize)
            }
            ReadMode::Buffered | ReadMode::Cached => (seg.offset, seg.len),
        }
    }

    /// Reads `seg` into `buf` in reads of at most `chunk` bytes; returns
    /// where its bytes begin in `buf` and the bytes requested from the file.
    /// A file that ends before the segment does is an error.
    pub fn read_into(&self, seg: Segment, buf: &mut [u8], chunk: usize) -> Result<(usize, u64)> {
        let (start, span) = self.span(seg);
        let need = seg.offset + seg.len as u64;
        if span > buf.len() {
            return Err(Error::Runtime(format!(
                "stream slot of {} bytes cannot hold {span} bytes at offset {start}",
                buf.len()
            )));
        }
        let chunk = chunk.max(ALIGN) / ALIGN * ALIGN;
        let mut done = 0usize;
        while done < span {
            let n = chunk.min(span - done);
            let pos = start + done as u64;
            match self.file.read_at(&mut buf[done..done + n], pos) {
                Ok(0) => break,
                Ok(k) => done += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        if start + (done as u64) < need {
            return Err(Error::Runtime(format!(
                "{}: the file ends at byte {} but a tensor piece needs bytes {}..{need}: \
                 the file is shorter than its header says (truncated?)",
                self.path.display(),
                start + done as u64,
                seg.offset
            )));
        }
        if self.mode == ReadMode::Buffered {
            drop_cached(&self.file, start, span);
        }
        Ok(((seg.offset - start) as usize, done as u64))
    }
}

/// Opens `path` with `O_DIRECT` and checks with one aligned read that the
/// file system accepts it (some accept the flag and fail the read).
fn open_direct(path: &Path) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flag = sys::O_DIRECT?;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flag)
            .open(path)
            .ok()?;
        let probe = AlignedBuf::new(ALIGN).ok()?;
        // SAFETY: `probe` is local and nothing else sees it.
        f.read_at(unsafe { probe.slice_mut() }, 0).ok()?;
        Some(f)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// Drops the page cache's pages of `len` bytes at `offset` of `file`.
fn drop_cached(file: &File, offset: u64, len: usize) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: advice only; the descriptor is open for the call.
        unsafe {
            sys::posix_fadvise(
                file.as_raw_fd(),
                offset as i64,
                len as i64,
                sys::POSIX_FADV_DONTNEED,
            )
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// A byte range of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub offset: u64,
    pub len: usize,
}

/// The ring's shape: slot count and size, I/O threads, read size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    pub slots: usize,
    pub slot_bytes: usize,
    pub io_threads: usize,
    /// Bytes of one positioned read (a slot is filled by one or more).
    pub read_chunk: usize,
    /// Ask for `O_DIRECT` (the page cache left alone); off, reads keep
    /// their pages in the page cache ([`ReadMode::Cached`]).
    pub direct: bool,
}

/// Counters of a ring since it was made or last [`Ring::take_counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingCounters {
    /// Bytes requested from the file (widened to [`ALIGN`] for `O_DIRECT`).
    pub read_bytes: u64,
    /// Segments read.
    pub segments: u64,
    /// Time the consumer waited for a segment that had not arrived.
    pub wait_ns: u64,
    /// Time at least one read was in flight.
    pub busy_ns: u64,
}

/// What a slot holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SlotState {
    Free,
    /// An I/O thread reads sequence number `seq` into it.
    Filling(u64),
    /// Sequence `seq` is in; its bytes are `start..start + len` of the slot.
    Ready {
        seq: u64,
        start: usize,
        len: usize,
    },
    Failed {
        seq: u64,
        error: String,
    },
    /// The consumer computes on sequence `seq`.
    Held(u64),
}

struct State {
    slot: Vec<SlotState>,
    /// The next sequence number an I/O thread takes.
    next_issue: u64,
    /// The next sequence number the consumer takes.
    next_consume: u64,
    in_flight: usize,
    busy_since: Option<Instant>,
    /// A restart waits for the reads in flight: no new ones meanwhile.
    paused: bool,
    shutdown: bool,
}

struct Shared {
    src: Source,
    schedule: Vec<Segment>,
    slots: Vec<Arc<SlotBuf>>,
    chunk: usize,
    state: Mutex<State>,
    /// Signalled when a slot turns ready or failed, or a read ends.
    arrived: Condvar,
    /// Signalled when a slot is released or the ring restarts or shuts down.
    freed: Condvar,
    read_bytes: AtomicU64,
    segments: AtomicU64,
    wait_ns: AtomicU64,
    busy_ns: AtomicU64,
}

/// One slot's buffer, as [`Storage`] so that a weight matrix can point into it.
struct SlotBuf(AlignedBuf);

impl Storage for SlotBuf {
    fn bytes(&self) -> &[u8] {
        // SAFETY: the ring lends a slot's bytes only while the slot is Held,
        // and no I/O thread writes a slot that is not Filling.
        unsafe { self.0.slice() }
    }
}

/// See the module docs.
pub struct Ring {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// A segment the consumer holds; released (its slot freed for the segment
/// `slots` later) when dropped.
pub struct Piece<'r> {
    ring: &'r Ring,
    slot: usize,
    start: usize,
    len: usize,
    /// Whether it had arrived when asked for (the consumer did not wait).
    pub was_ready: bool,
}

impl Piece<'_> {
    /// The segment's bytes, as a view a weight matrix can hold. Drop it
    /// before the piece: the slot is refilled after.
    pub fn data(&self) -> Result<Bytes> {
        Bytes::new(
            self.ring.shared.slots[self.slot].clone(),
            self.start,
            self.len,
        )
    }

    /// The segment's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.ring.shared.slots[self.slot].bytes()[self.start..self.start + self.len]
    }
}

impl Drop for Piece<'_> {
    fn drop(&mut self) {
        let sh = &self.ring.shared;
        let mut st = lock(&sh.state);
        st.slot[self.slot] = SlotState::Free;
        st.next_consume += 1;
        sh.freed.notify_all();
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking I/O thread cannot leave the state half-changed (every
    // change is one assignment), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ring {
    /// Opens `path` and starts the I/O threads on `schedule`. Fails with a
    /// clear error when a segment lies beyond the end of the file or does
    /// not fit a slot, or the buffers cannot be allocated.
    pub fn new(path: &Path, schedule: Vec<Segment>, cfg: RingConfig) -> Result<Ring> {
        let src = Source::open(path, cfg.direct)?;
        if schedule.is_empty() || cfg.slots == 0 {
            return Err(Error::Runtime(
                "a stream ring needs segments and slots".into(),
            ));
        }
        for seg in &schedule {
            let end = seg.offset.checked_add(seg.len as u64);
            if end.is_none_or(|e| e > src.len()) {
                return Err(Error::Runtime(format!(
                    "{}: {} bytes long, but the plan streams bytes {}..{}: the file is shorter \
                     than its header says (truncated?)",
                    path.display(),
                    src.len(),
                    seg.offset,
                    seg.offset as u128 + seg.len as u128
                )));
            }
            let (_, span) = src.span(*seg);
            if span > cfg.slot_bytes {
                return Err(Error::Runtime(format!(
                    "a stream slot of {} bytes cannot hold a {span}-byte read",
                    cfg.slot_bytes
                )));
            }
        }
        let slots = (0..cfg.slots)
            .map(|_| AlignedBuf::new(cfg.slot_bytes).map(|b| Arc::new(SlotBuf(b))))
            .collect::<Result<Vec<_>>>()?;
        let shared = Arc::new(Shared {
            src,
            schedule,
            slots,
            chunk: cfg.read_chunk,
            state: Mutex::new(State {
                slot: vec![SlotState::Free; cfg.slots],
                next_issue: 0,
                next_consume: 0,
                in_flight: 0,
                busy_since: None,
                paused: false,
                shutdown: false,
            }),
            arrived: Condvar::new(),
            freed: Condvar::new(),
            read_bytes: AtomicU64::new(0),
            segments: AtomicU64::new(0),
            wait_ns: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
        });
        let mut ring = Ring {
            shared,
            threads: Vec::new(),
        };
        for i in 0..cfg.io_threads.max(1) {
            let sh = ring.shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("atenia-io{i}"))
                .stack_size(IO_STACK_BYTES)
                .spawn(move || io_thread(&sh))
                .map_err(|e| Error::Runtime(format!("cannot start an I/O thread: {e}")))?;
            ring.threads.push(t);
        }
        Ok(ring)
    }

    pub fn mode(&self) -> ReadMode {
        self.shared.src.mode()
    }

    /// Segments in the schedule.
    pub fn schedule_len(&self) -> usize {
        self.shared.schedule.len()
    }

    /// Bytes of all slots.
    pub fn buffer_bytes(&self) -> u64 {
        self.shared.slots.iter().map(|s| s.0.len() as u64).sum()
    }

    /// Takes segment `pos` of the schedule, waiting until it is read. The
    /// consumer takes them in schedule order, wrapping; asking for another
    /// one (a pass that stopped half-way) restarts the readers there.
    pub fn acquire(&self, pos: usize) -> Result<Piece<'_>> {
        let sh = &self.shared;
        let n = sh.schedule.len() as u64;
        if pos as u64 >= n {
            return Err(Error::Runtime(format!(
                "stream segment {pos} outside a schedule of {n}"
            )));
        }
        let mut st = lock(&sh.state);
        if st.slot.iter().any(|s| matches!(s, SlotState::Held(_))) {
            return Err(Error::Runtime(
                "a stream piece was taken before the previous one was released".into(),
            ));
        }
        if st.next_consume % n != pos as u64 {
            st = self.restart(st, pos as u64);
        }
        let seq = st.next_consume;
        let k = (seq % sh.slots.len() as u64) as usize;
        let t0 = Instant::now();
        let mut waited = false;
        loop {
            match &st.slot[k] {
                SlotState::Ready { seq: s, start, len } if *s == seq => {
                    let (start, len) = (*start, *len);
                    st.slot[k] = SlotState::Held(seq);
                    if waited {
                        sh.wait_ns
                            .fetch_add(t0.elapsed().as_nanos() as u64, Relaxed);
                    }
                    return Ok(Piece {
                        ring: self,
                        slot: k,
                        start,
                        len,
                        was_ready: !waited,
                    });
                }
                SlotState::Failed { seq: s, error } if *s == seq => {
                    let e = error.clone();
                    st.slot[k] = SlotState::Free;
                    st.next_consume += 1;
                    sh.freed.notify_all();
                    return Err(Error::Runtime(e));
                }
                _ => {
                    waited = true;
                    st = sh.arrived.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }

    /// Waits for the reads in flight, empties every slot and has the readers
    /// go on from schedule position `pos`.
    fn restart<'a>(&'a self, mut st: MutexGuard<'a, State>, pos: u64) -> MutexGuard<'a, State> {
        let sh = &self.shared;
        st.paused = true;
        while st.in_flight > 0 {
            st = sh.arrived.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.paused = false;
        let n = sh.schedule.len() as u64;
        let base = st.next_issue.max(st.next_consume);
        let seq = base + (pos + n - base % n) % n;
        st.slot.iter_mut().for_each(|s| *s = SlotState::Free);
        st.next_issue = seq;
        st.next_consume = seq;
        sh.freed.notify_all();
        st
    }

    /// The counters since the last call (or since the ring was made).
    pub fn take_counters(&self) -> RingCounters {
        let sh = &self.shared;
        {
            let mut st = lock(&sh.state);
            if let Some(t) = st.busy_since {
                let now = Instant::now();
                sh.busy_ns.fetch_add((now - t).as_nanos() as u64, Relaxed);
                st.busy_since = Some(now);
            }
        }
        RingCounters {
            read_bytes: sh.read_bytes.swap(0, Relaxed),
            segments: sh.segments.swap(0, Relaxed),
            wait_ns: sh.wait_ns.swap(0, Relaxed),
            busy_ns: sh.busy_ns.swap(0, Relaxed),
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.shared.state);
            st.shutdown = true;
            self.shared.freed.notify_all();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// An I/O thread: takes the next sequence number whose slot is free, reads
/// its segment into the slot, marks it ready; until the ring shuts down.
fn io_thread(sh: &Shared) {
    let k = sh.slots.len() as u64;
    let n = sh.schedule.len() as u64;
    loop {
        let (seq, slot) = {
            let mut st = lock(&sh.state);
            loop {
                if st.shutdown {
                    return;
                }
                let seq = st.next_issue;
                let slot = (seq % k) as usize;
                if !st.paused && seq < st.next_consume + k && st.slot[slot] == SlotState::Free {
                    st.next_issue += 1;
                    st.slot[slot] = SlotState::Filling(seq);
                    if st.in_flight == 0 {
                        st.busy_since = Some(Instant::now());
                    }
                    st.in_flight += 1;
                    break (seq, slot);
                }
                st = sh.freed.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        let seg = sh.schedule[(seq % n) as usize];
        // SAFETY: the slot is Filling(seq): only this thread touches it until
        // it is marked Ready or Failed below.
        let buf = unsafe { sh.slots[slot].0.slice_mut() };
        let got = sh.src.read_into(seg, buf, sh.chunk);
        let mut st = lock(&sh.state);
        st.in_flight -= 1;
        if st.in_flight == 0 {
            if let Some(t) = st.busy_since.take() {
                sh.busy_ns.fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
            }
        }
        // A restart may have emptied the slot meanwhile: then the read is dropped.
        if st.slot[slot] == SlotState::Filling(seq) {
            st.slot[slot] = match got {
                Ok((start, bytes)) => {
                    sh.read_bytes.fetch_add(bytes, Relaxed);
                    sh.segments.fetch_add(1, Relaxed);
                    SlotState::Ready {
                        seq,
                        start,
                        len: seg.len,
                    }
                }
                Err(e) => SlotState::Failed {
                    seq,
                    error: e.to_string(),
                },
            };
        }
        sh.arrived.notify_all();
    }
}

/// What [`measure_disk`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiskReading {
    pub mode: ReadMode,
    pub read_chunk: usize,
    pub queue_depth: usize,
    pub bytes: u64,
    pub seconds: f64,
}

impl DiskReading {
    pub fn bytes_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Reads `max_bytes` of `path` from byte `from` (wrapping to the start at the
/// end of the file) in `read_chunk`-byte positioned reads, `queue_depth` at a
/// time (one thread each, taking the next chunk in file order), as the
/// streaming ring does; `O_DIRECT` where the file system allows, so the page
/// cache neither helps nor fills.
pub fn measure_disk(
    path: &Path,
    from: u64,
    max_bytes: u64,
    read_chunk: usize,
    queue_depth: usize,
) -> Result<DiskReading> {
    let src = Source::open(path, true)?;
    let chunk = (read_chunk.max(ALIGN) / ALIGN * ALIGN) as u64;
    let chunks = src.len() / chunk;
    if chunks == 0 {
        return Err(Error::argument(
            "--disk",
            format!("{} is smaller than one {chunk}-byte read", path.display()),
        ));
    }
    let count = (max_bytes / chunk).clamp(1, chunks);
    let first = from / chunk;
    let next = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let t0 = Instant::now();
    let errors: Vec<Error> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..queue_depth.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let buf = AlignedBuf::new(chunk as usize)?;
                    loop {
                        let i = next.fetch_add(1, Relaxed);
                        if i >= count {
                            return Ok(());
                        }
                        let offset = (first + i) % chunks * chunk;
                        let seg = Segment {
                            offset,
                            len: chunk as usize,
                        };
                        // SAFETY: `buf` belongs to this thread.
                        let (_, n) =
                            src.read_into(seg, unsafe { buf.slice_mut() }, chunk as usize)?;
                        bytes.fetch_add(n, Relaxed);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| w.join().ok().and_then(|r| r.err()))
            .collect()
    });
    let seconds = t0.elapsed().as_secs_f64();
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    Ok(DiskReading {
        mode: src.mode(),
        read_chunk: chunk as usize,
        queue_depth: queue_depth.max(1),
        bytes: bytes.load(Relaxed),
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `len` pseudo-random bytes, removed when dropped.
    struct TempFile(PathBuf, Vec<u8>);

    impl TempFile {
        fn new(tag: &str, len: usize) -> TempFile {
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ len as u64;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let p = std::env::temp_dir()
                .join(format!("atenia-reader-{tag}-{}.bin", std::process::id()));
            std::fs::write(&p, &data).unwrap();
            TempFile(p, data)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Misaligned segments of every kind: starting and ending off 4096,
    /// shorter than a page, spanning several reads, touching the file's end.
    fn schedule(len: usize) -> Vec<Segment> {
        vec![
            Segment {
                offset: 1,
                len: 5000,
            },
            Segment {
                offset: 4096,
                len: 4096,
            },
            Segment {
                offset: 9000,
                len: 70_001,
            },
            Segment {
                offset: 123_457,
                len: 17,
            },
            Segment {
                offset: (len - 333) as u64,
                len: 333,
            },
            Segment {
                offset: 0,
                len: 40_000,
            },
        ]
    }

    fn check_every_slot(direct: bool) {
        let f = TempFile::new(if direct { "direct" } else { "buffered" }, 200_003);
        let sched = schedule(f.1.len());
        let cfg = RingConfig {
            slots: 3,
            slot_bytes: 80 << 10,
            io_threads: 2,
            read_chunk: 8192,
            direct,
        };
        let ring = Ring::new(&f.0, sched.clone(), cfg).unwrap();
        if !direct {
            assert_eq!(ring.mode(), ReadMode::Cached);
        }
        // Four passes: every segment lands in every slot (6 segments, 3 slots).
        for pass in 0..4 {
            for (i, seg) in sched.iter().enumerate() {
                let p = ring.acquire(i).unwrap();
                let want = &f.1[seg.offset as usize..seg.offset as usize + seg.len];
                assert!(
                    p.bytes() == want,
                    "pass {pass} segment {i} ({:?})",
                    ring.mode()
                );
                assert_eq!(p.data().unwrap().as_slice(), want);
            }
        }
        // Every segment consumed was read; the readers may be up to a ring ahead.
        let c = ring.take_counters();
        let consumed = 4 * sched.len() as u64;
        assert!((consumed..=consumed + 3).contains(&c.segments), "{c:?}");
        let payload: u64 = sched.iter().map(|s| s.len as u64).sum::<u64>() * 4;
        assert!(c.read_bytes >= payload, "{c:?}");
    }

    #[test]
    fn every_slot_holds_the_files_bytes_direct() {
        check_every_slot(true);
    }

    #[test]
    fn every_slot_holds_the_files_bytes_buffered() {
        check_every_slot(false);
    }

    #[test]
    fn asking_out_of_order_restarts_at_that_segment() {
        let f = TempFile::new("restart", 200_003);
        let sched = schedule(f.1.len());
        let cfg = RingConfig {
            slots: 2,
            slot_bytes: 80 << 10,
            io_threads: 1,
            read_chunk: 1 << 20,
            direct: true,
        };
        let ring = Ring::new(&f.0, sched.clone(), cfg).unwrap();
        for &i in &[0, 1, 4, 2, 3, 5, 0, 3] {
            let p = ring.acquire(i).unwrap();
            let s = sched[i];
            assert!(
                p.bytes() == &f.1[s.offset as usize..s.offset as usize + s.len],
                "{i}"
            );
        }
        assert!(ring.acquire(6).is_err());
        // Two pieces at once: refused, and the held one stays good.
        let held = ring.acquire(1).unwrap();
        let e = ring.acquire(2).err().expect("refused").to_string();
        assert!(e.contains("before the previous one was released"), "{e}");
        let s = sched[1];
        assert!(held.bytes() == &f.1[s.offset as usize..s.offset as usize + s.len]);
        drop(held);
        assert!(ring.acquire(2).is_ok());
    }

    #[test]
    fn a_short_file_is_a_clear_error_not_a_panic() {
        let f = TempFile::new("short", 10_000);
        let cfg = RingConfig {
            slots: 2,
            slot_bytes: 64 << 10,
            io_threads: 1,
            read_chunk: 1 << 20,
            direct: true,
        };
        let past_end = vec![Segment {
            offset: 8000,
            len: 4000,
        }];
        let e = Ring::new(&f.0, past_end, cfg)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("shorter than its header says"), "{e}");
        let too_big = vec![Segment {
            offset: 0,
            len: 9000,
        }];
        let small = RingConfig {
            slot_bytes: 4096,
            ..cfg
        };
        let e = Ring::new(&f.0, too_big, small)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("cannot hold"), "{e}");
        // A file cut short after the plan was made: the read says so.
        for direct in [true, false] {
            let src = Source::open(&f.0, direct).unwrap();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&f.0)
                .unwrap()
                .set_len(6000)
                .unwrap();
            let mut buf = AlignedBuf::new(64 << 10).unwrap();
            // SAFETY: `buf` is local.
            let b = unsafe { buf.slice_mut() };
            let e = src
                .read_into(
                    Segment {
                        offset: 5000,
                        len: 3000,
                    },
                    b,
                    1 << 20,
                )
                .unwrap_err()
                .to_string();
            assert!(e.contains("ends at byte 6000"), "{direct}: {e}");
            let _ = &mut buf;
        }
    }

    #[test]
    fn the_disk_measure_reads_what_it_says() {
        let f = TempFile::new("disk", 1 << 20);
        let r = measure_disk(&f.0, 3 * 8192, 40 * 8192, 8192, 3).unwrap();
        assert_eq!(r.bytes, 40 * 8192);
        assert_eq!((r.read_chunk, r.queue_depth), (8192, 3));
        assert!(r.bytes_per_s() > 0.0);
        let tiny = TempFile::new("tiny", 100);
        let e = measure_disk(&tiny.0, 0, 1 << 20, 8192, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("smaller than one"), "{e}");
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let cfg = RingConfig {
            slots: 1,
            slot_bytes: 4096,
            io_threads: 1,
            read_chunk: 4096,
            direct: true,
        };
        let p = std::env::temp_dir().join("atenia-reader-no-such-file.bin");
        assert!(Ring::new(&p, vec![Segment { offset: 0, len: 1 }], cfg).is_err());
    }
}
