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
