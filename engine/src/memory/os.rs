//! What the operating system says about this process (RSS, peak RSS, threads,
//! code not yet resident) and the machine (MemAvailable, cgroup limits).
//! Linux; elsewhere every call is `None`.

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

/// Bytes this process (all its threads) has caused to be read from storage
/// devices so far: `read_bytes` of /proc/self/io. Reads served from the page
/// cache do not count; `O_DIRECT` reads and page faults that go to the disk do.
pub fn io_read_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/io").ok()?;
    parse_io_read_bytes(&s)
}

/// `read_bytes` of a /proc/PID/io text.
pub fn parse_io_read_bytes(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("read_bytes:"))?
        .trim()
        .parse()
        .ok()
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

/// What this process's memory cgroup says: its limit, its usage and the
/// page-cache part of that usage (reclaimable, so counted as free).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupMemory {
    /// 1 or 2 (0 for figures that were recorded, not read: a guard trace).
    pub version: u8,
    /// memory.max (v2) or memory.limit_in_bytes (v1); `None` when unlimited.
    pub limit: Option<u64>,
    /// memory.current (v2) or memory.usage_in_bytes (v1).
    pub current: Option<u64>,
    /// memory.stat `file` (v2) or `total_cache` / `cache` (v1).
    pub file: Option<u64>,
}

/// A v1 limit at or above this is the kernel's "no limit" (PAGE_COUNTER_MAX
/// times the page size, rounded down to a page; 2^63 − 4096 on x86-64).
const V1_UNLIMITED: u64 = 1 << 62;

impl CgroupMemory {
    /// The memory cgroup of this process (v2 unified hierarchy first, then
    /// the v1 `memory` controller); `None` where there is none.
    pub fn read() -> Option<CgroupMemory> {
        let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        CgroupMemory::parse(&cg, |p| std::fs::read_to_string(p).ok())
    }

    /// [`CgroupMemory::read`] over `/proc/self/cgroup`'s text and a file reader.
    pub fn parse(proc_cgroup: &str, read: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let dir = |root: &str, rel: &str| -> String {
            let rel = rel.trim();
            format!("{root}{}", if rel == "/" { "" } else { rel })
        };
        let number = |path: String| -> Option<u64> { read(&path)?.trim().parse().ok() };
        let stat = |path: String, fields: &[&str]| -> Option<u64> {
            let text = read(&path)?;
            fields.iter().find_map(|f| {
                text.lines()
                    .find_map(|l| l.strip_prefix(f)?.strip_prefix(' ')?.trim().parse().ok())
            })
        };
        // A v1 `memory` controller line: "N:memory[,…]:/path".
        let v1 = proc_cgroup.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, rel) = (parts.next()?, parts.next()?, parts.next()?);
            controllers.split(',').any(|c| c == "memory").then_some(rel)
        });
        if let Some(rel) = v1 {
            // Inside a container the path may not be visible under the
            // mount; the mount's root is then this cgroup.
            let mut d = dir("/sys/fs/cgroup/memory", rel);
            if read(&format!("{d}/memory.limit_in_bytes")).is_none() {
                d = "/sys/fs/cgroup/memory".to_string();
            }
            return Some(CgroupMemory {
                version: 1,
                limit: number(format!("{d}/memory.limit_in_bytes")).filter(|&l| l < V1_UNLIMITED),
                current: number(format!("{d}/memory.usage_in_bytes")),
                file: stat(format!("{d}/memory.stat"), &["total_cache", "cache"]),
            });
        }
        let rel = proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
        let d = dir("/sys/fs/cgroup", rel);
        Some(CgroupMemory {
            version: 2,
            // "max" does not parse: no limit.
            limit: number(format!("{d}/memory.max")),
            current: number(format!("{d}/memory.current")),
            file: stat(format!("{d}/memory.stat"), &["file"]),
        })
    }

    /// What the cgroup still allows: limit − (usage − page cache).
    pub fn free(&self) -> Option<u64> {
        let (max, cur) = (self.limit?, self.current?);
        Some(max.saturating_sub(cur.saturating_sub(self.file.unwrap_or(0))))
    }
}

/// Memory this process may still take: MemAvailable, lowered to what the
/// cgroup (v1 or v2) still allows when it is tighter.
pub fn free_memory() -> Option<u64> {
    free_within(mem_available(), &CgroupMemory::read().unwrap_or_default())
}

/// MemAvailable `available`, lowered to what `cgroup` still allows when that
/// is tighter; either alone when the other is unknown. The cgroup's usage
/// counts the page cache, which the kernel reclaims before refusing memory:
/// its file pages count as free ([`CgroupMemory::free`]).
pub fn free_within(available: Option<u64>, cgroup: &CgroupMemory) -> Option<u64> {
    match (available, cgroup.free()) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn reader(files: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |p| m.get(p).cloned()
    }

    #[test]
    fn proc_io_read_bytes_parses() {
        let t = "rchar: 10\nwchar: 2\nsyscr: 1\nread_bytes: 8192\nwrite_bytes: 0\ncancelled_write_bytes: 0\n";
        assert_eq!(parse_io_read_bytes(t), Some(8192));
        assert_eq!(parse_io_read_bytes("rchar: 10\n"), None);
    }

    #[test]
    fn a_v2_cgroup_reads_max_current_and_file() {
        let r = reader(&[
            ("/sys/fs/cgroup/small/memory.max", "6442450944\n"),
            ("/sys/fs/cgroup/small/memory.current", "1000000000\n"),
            (
                "/sys/fs/cgroup/small/memory.stat",
                "anon 5\nfile 400000000\nfile_mapped 3\n",
            ),
        ]);
        let c = CgroupMemory::parse("0::/small\n", r).unwrap();
        assert_eq!(c.version, 2);
        assert_eq!(c.limit, Some(6442450944));
        assert_eq!(c.file, Some(400000000));
        assert_eq!(c.free(), Some(6442450944 - 600000000));
        let unlimited = reader(&[("/sys/fs/cgroup/memory.max", "max\n")]);
        let c = CgroupMemory::parse("0::/\n", unlimited).unwrap();
        assert_eq!((c.limit, c.free()), (None, None));
    }

    #[test]
    fn a_v1_memory_controller_reads_limit_in_bytes() {
        let proc = "12:pids:/user\n4:cpu,cpuacct:/x\n7:memory:/box\n";
        let r = reader(&[
            (
                "/sys/fs/cgroup/memory/box/memory.limit_in_bytes",
                "2147483648\n",
            ),
            (
                "/sys/fs/cgroup/memory/box/memory.usage_in_bytes",
                "1073741824\n",
            ),
            (
                "/sys/fs/cgroup/memory/box/memory.stat",
                "cache 10\nrss 4\ntotal_cache 536870912\n",
            ),
        ]);
        let c = CgroupMemory::parse(proc, r).unwrap();
        assert_eq!(c.version, 1);
        assert_eq!(c.free(), Some(2147483648 - 536870912));
        // No limit is a huge number; a path hidden by the container's
        // namespace falls back to the mount's root.
        let r = reader(&[
            (
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            ("/sys/fs/cgroup/memory/memory.usage_in_bytes", "5\n"),
        ]);
        let c = CgroupMemory::parse("3:memory:/docker/abc\n", r).unwrap();
        assert_eq!((c.version, c.limit, c.current), (1, None, Some(5)));
    }

    #[test]
    fn no_memory_cgroup_is_none() {
        assert_eq!(CgroupMemory::parse("5:cpu:/a\n", reader(&[])), None);
    }
}
