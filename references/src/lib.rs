//! References for Atenia, written separately from the engine's kernels:
//! a plain float64 forward pass ([`forward`]) and MPFR (256-bit and exact)
//! references for every kernel ([`mpfr`]).

pub mod bf16;
pub mod forward;
pub mod mpfr;
pub mod stream;

pub use bf16::{forward_bf16, forward_bf16_with};
pub use forward::{forward_f64, forward_f64_with};
pub use stream::{Pages, Streaming};
