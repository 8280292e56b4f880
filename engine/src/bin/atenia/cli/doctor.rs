//! `atenia doctor`: what this machine offers the engine (CPU features and the
//! kernel path chosen, threads, memory and cgroup limits, disk space in the
//! model cache) and whether the real test models are present.

use atenia_engine::memory::os::CgroupMemory;
use std::path::{Path, PathBuf};

use atenia_engine::kernels::Isa;
use atenia_engine::Result;
use serde_json::{json, Value};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    atenia doctor\n  \
    atenia doctor --json\n  \
    ATENIA_MODEL_DIR=/data/models atenia doctor\n\n\
    The model cache is $ATENIA_MODEL_DIR, else ~/.cache/atenia/models.")]
pub struct Args {
    #[command(flatten)]
    pub json: atenia_engine::cli::args::JsonArgs,
}

/// The real models the test suite runs (scripts/fetch-models.sh).
pub const REAL_MODELS: [&str; 2] = [
    "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma-3-270m-q4_k_m.gguf",
];

/// The model cache directory: `$ATENIA_MODEL_DIR`, else `~/.cache/atenia/models`.
pub fn model_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("ATENIA_MODEL_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/atenia/models"))
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn cpu_model() -> Option<String> {
    let info = read("/proc/cpuinfo")?;
    info.lines()
        .find(|l| {
            l.starts_with("model name") || l.starts_with("Model") || l.starts_with("Hardware")
        })
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// CPU features that matter to the kernels, as the running CPU reports them.
fn cpu_features() -> Vec<(&'static str, bool)> {
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! detect {
            ($($f:tt),*) => { vec![$(($f, std::arch::is_x86_feature_detected!($f))),*] };
        }
        detect!(
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avxvnni",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512dq",
            "avx512cd",
            "avx512vnni",
            "avx512bf16",
            "avx512fp16",
            "avx512vbmi"
        )
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! detect {
            ($($f:tt),*) => { vec![$(($f, std::arch::is_aarch64_feature_detected!($f))),*] };
        }
        detect!("neon", "fp16", "dotprod", "i8mm", "bf16", "sve")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        vec![]
    }
}

/// The memory limit of this process's own cgroup, v1 or v2 (`None`: no
/// limit or no cgroup), and where it was read.
fn cgroup_memory() -> (Option<u64>, Option<String>) {
    match CgroupMemory::read() {
        Some(c) => (
            c.limit,
            Some(format!(
                "cgroup v{} {}",
                c.version,
                if c.version == 1 {
                    "memory.limit_in_bytes"
                } else {
                    "memory.max"
                }
            )),
        ),
        None => (None, None),
    }
}

/// The cgroup CPU quota in CPUs (`None`: no quota or no cgroup).
fn cgroup_cpus() -> (Option<f64>, Option<String>) {
    if let Some(s) = read("/sys/fs/cgroup/cpu.max") {
        let s = s.trim().to_string();
        let mut it = s.split_whitespace();
        let quota = it.next().and_then(|q| q.parse::<f64>().ok());
        let period = it.next().and_then(|p| p.parse::<f64>().ok());
        let cpus = match (quota, period) {
            (Some(q), Some(p)) if p > 0.0 => Some(q / p),
            _ => None,
        };
        return (cpus, Some(format!("/sys/fs/cgroup/cpu.max: {s}")));
    }
    let q = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
    let p = read("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
    if let (Some(q), Some(p)) = (q, p) {
        let (q, p) = (q.trim().to_string(), p.trim().to_string());
        let cpus = match (q.parse::<f64>(), p.parse::<f64>()) {
            (Ok(q), Ok(p)) if q > 0.0 && p > 0.0 => Some(q / p),
            _ => None,
        };
        return (
            cpus,
            Some(format!("cpu.cfs_quota_us {q}, cpu.cfs_period_us {p}")),
        );
    }
    (None, None)
}

/// Bytes available to an unprivileged user on the file system holding `path`.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn free_disk(path: &Path) -> Option<u64> {
    use std::ffi::CString;
    use std::os::raw::{c_char, c_int};
    use std::os::unix::ffi::OsStrExt;
    extern "C" {
        // The C library's statvfs(3); std links it already. On 64-bit Linux
        // (glibc and musl) `struct statvfs` is eleven 8-byte fields (f_bsize,
        // f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail,
        // f_fsid, f_flag, f_namemax) and 24 spare bytes: 112 bytes.
        fn statvfs(path: *const c_char, buf: *mut u64) -> c_int;
    }
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // Larger than the 112-byte struct, so that no layout difference can overrun it.
    let mut buf = [0u64; 32];
    // SAFETY: `c` is a NUL-terminated path and `buf` is writable, aligned and
    // larger than `struct statvfs`.
    let rc = unsafe { statvfs(c.as_ptr(), buf.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    let (frsize, bavail) = (buf[1], buf[4]);
    frsize.checked_mul(bavail)
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn free_disk(_: &Path) -> Option<u64> {
    None
}

/// Writes command output to stdout; a closed pipe (`| head`) ends it quietly
/// instead of panicking as `println!` does.
pub fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

/// The path itself if it exists, else its nearest existing ancestor.
fn existing_ancestor(p: &Path) -> Option<&Path> {
    p.ancestors().find(|a| a.exists())
}

/// `bytes` in the largest binary unit that keeps a digit before the point.
pub fn gib(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Everything doctor reports, as JSON.
pub fn collect() -> Value {
    let features: serde_json::Map<String, Value> = cpu_features()
        .into_iter()
        .map(|(f, on)| (f.to_string(), Value::Bool(on)))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mem_limit, mem_source) = cgroup_memory();
    let (cpu_quota, cpu_source) = cgroup_cpus();
    let dir = model_dir();
    let dir_exists = dir.as_ref().is_some_and(|d| d.is_dir());
    let free = dir
        .as_deref()
        .and_then(existing_ancestor)
        .and_then(free_disk);
    let models: Vec<Value> = REAL_MODELS
        .iter()
        .map(|name| {
            let path = dir.as_ref().map(|d| d.join(name));
            let size = path
                .as_ref()
                .and_then(|p| std::fs::metadata(p).ok())
                .filter(|m| m.is_file())
                .map(|m| m.len());
            json!({
                "name": name,
                "path": path.map(|p| p.display().to_string()),
                "present": size.is_some(),
                "bytes": size,
            })
        })
        .collect();
    let total = atenia_engine::guard::policy::mem_total();
    let available = atenia_engine::memory::os::mem_available();
    let isa = Isa::detect();
    let mut notes: Vec<String> = Vec::new();
    if isa == Isa::Scalar {
        notes.push(
            "no AVX2+FMA+F16C: the engine runs its portable scalar kernels, several times slower"
                .into(),
        );
    }
    if let Some(q) = cpu_quota {
        if q < threads as f64 {
            notes.push(format!(
                "the cgroup allows {q:.1} CPUs but {threads} threads are available; pass --threads {}",
                q.floor().max(1.0)
            ));
        }
    }
    let usable = match (available, mem_limit) {
        (Some(a), Some(l)) => Some(a.min(l)),
        (a, l) => a.or(l),
    };
    if usable.is_some_and(|u| u < 1 << 30) {
        notes.push(
            "less than 1 GiB of memory is available: larger models and contexts will not fit"
                .into(),
        );
    }
    if models.iter().any(|m| m["present"] == false) {
        notes.push("some real test models are missing: run scripts/fetch-models.sh".into());
    }
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "cpu": {
            "model": cpu_model(),
            "features": features,
        },
        "kernels": {
            "selected": isa.name(),
            "available": Isa::available().into_iter().map(Isa::name).collect::<Vec<_>>(),
        },
        "threads": {
            "available": threads,
            "cgroup_cpu_quota": cpu_quota,
            "cgroup_cpu_source": cpu_source,
        },
        "memory": {
            "total_bytes": total,
            "available_bytes": available,
            "cgroup_limit_bytes": mem_limit,
            "cgroup_source": mem_source,
        },
        "model_dir": {
            "path": dir.map(|d| d.display().to_string()),
            "exists": dir_exists,
            "free_bytes": free,
        },
        "real_models": models,
        "notes": notes,
    })
}

pub fn run(a: Args) -> Result<()> {
    a.json.check()?;
    let v = collect();
    if a.json.emit(&v)? {
        return Ok(());
    }
    let mut o = String::new();
    let s = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| "unknown".into())
    };
    let bytes = |v: &Value| v.as_u64().map(gib).unwrap_or_else(|| "unknown".into());
    outln!(
        o,
        "atenia {} on {} {}",
        s(&v["version"]),
        s(&v["os"]),
        s(&v["arch"])
    );
    outln!(o, "CPU:       {}", s(&v["cpu"]["model"]));
    let feats = v["cpu"]["features"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let on: Vec<&str> = feats
        .iter()
        .filter(|(_, b)| b == &&Value::Bool(true))
        .map(|(k, _)| k.as_str())
        .collect();
    let off: Vec<&str> = feats
        .iter()
        .filter(|(_, b)| b == &&Value::Bool(false))
        .map(|(k, _)| k.as_str())
        .collect();
    outln!(
        o,
        "Features:  {}",
        if on.is_empty() {
            "-".into()
        } else {
            on.join(" ")
        }
    );
    if !off.is_empty() {
        outln!(o, "Missing:   {}", off.join(" "));
    }
    let avail: Vec<String> = v["kernels"]["available"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    outln!(
        o,
        "Kernels:   {} (available: {})",
        s(&v["kernels"]["selected"]),
        avail.join(", ")
    );
    out!(o, "Threads:   {}", v["threads"]["available"]);
    match v["threads"]["cgroup_cpu_quota"].as_f64() {
        Some(q) => outln!(o, " (cgroup quota {q:.1} CPUs)"),
        None => outln!(o, " (no cgroup CPU quota)"),
    }
    out!(
        o,
        "Memory:    {} total, {} available",
        bytes(&v["memory"]["total_bytes"]),
        bytes(&v["memory"]["available_bytes"])
    );
    match v["memory"]["cgroup_limit_bytes"].as_u64() {
        Some(l) => outln!(o, ", cgroup limit {}", gib(l)),
        None => outln!(o, ", no cgroup memory limit"),
    }
    outln!(
        o,
        "Model dir: {} ({}; {} free)",
        s(&v["model_dir"]["path"]),
        if v["model_dir"]["exists"] == true {
            "exists"
        } else {
            "does not exist yet"
        },
        bytes(&v["model_dir"]["free_bytes"])
    );
    for m in v["real_models"].as_array().into_iter().flatten() {
        outln!(
            o,
            "  {} {}",
            if m["present"] == true {
                "found  "
            } else {
                "missing"
            },
            s(&m["name"])
        );
    }
    for n in v["notes"].as_array().into_iter().flatten() {
        outln!(o, "note: {}", s(n));
    }
    print_stdout(&o);
    Ok(())
}
