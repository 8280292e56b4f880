//! The memory guard: the pure policy ([`policy`]), its wiring to a running
//! model ([`wiring`]), and recorded traces ([`trace`]). Uses [`crate::exec`]
//! and [`crate::memory`].

pub mod policy;
pub mod trace;
pub mod wiring;
