//! References for Atenia, written separately from the engine's kernels:
//! a plain float64 forward pass ([`forward`]) and MPFR (256-bit and exact)
//! references for every kernel ([`mpfr`]).

pub mod forward;
pub mod mpfr;

pub use forward::forward_f64;
