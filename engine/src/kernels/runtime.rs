//! The execution context handed to every kernel: the SIMD path and the one
//! persistent thread pool. Built once from typed options; nothing is read from
//! the environment.

use crate::error::{Error, Result};
use crate::kernels::Isa;

/// Stack size of each pool thread: Rust's default, set explicitly so that it
/// does not follow `RUST_MIN_STACK` and so that the memory bound of a
/// budgeted run can count it (`decoder::RuntimeAllowance`).
pub const POOL_STACK_BYTES: usize = 2 << 20;

/// Worker threads allowed per available CPU: more than one per core rarely
/// helps a memory-bound decoder, and far more only thrashes.
pub const MAX_THREADS_PER_CPU: usize = 4;

/// CPUs this process may use (affinity and cgroup quota included).
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most worker threads [`Runtime::new`] accepts:
/// [`MAX_THREADS_PER_CPU`] × [`available_cpus`].
pub fn max_threads() -> usize {
    MAX_THREADS_PER_CPU * available_cpus()
}

pub struct Runtime {
    pub isa: Isa,
    pool: rayon::ThreadPool,
}

impl Runtime {
    /// `threads == 0` means one per available core; more than
    /// [`max_threads`] is refused (`E-ARG`); `isa == None` picks the fastest
    /// path the CPU supports.
    pub fn new(threads: usize, isa: Option<Isa>) -> Result<Runtime> {
        let isa = match isa {
            Some(i) if !i.is_supported() => {
                return Err(Error::argument(
                    "--isa",
                    format!("this CPU cannot run the {i} kernels"),
                ))
            }
            Some(i) => i,
            None => Isa::detect(),
        };
        let cpus = available_cpus();
        let threads = if threads == 0 { cpus } else { threads };
        let max = max_threads();
        if threads > max {
            // Refused, not capped: a silent cap would run something other
            // than what was asked, and thousands of threads only thrash.
            return Err(Error::argument(
                "--threads",
                format!(
                    "{threads} threads is more than {max}, the most this machine accepts \
                     ({MAX_THREADS_PER_CPU} per CPU, {cpus} CPUs available to this process); \
                     pass --threads 0 for one per CPU ({cpus}), or a number from 1 to {max}"
                ),
            ));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .stack_size(POOL_STACK_BYTES)
            .thread_name(|i| format!("atenia-{i}"))
            .build()
            .map_err(|e| Error::Resource {
                resource: "threads".into(),
                reason: e.to_string(),
            })?;
        Ok(Runtime { isa, pool })
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `f` inside the pool (parallel iterators in `f` use its threads).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}
