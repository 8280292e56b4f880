//! Memory: what the OS says about this process and machine ([`os`]), the
//! statistics a model keeps ([`stats`]), the budget and its control
//! ([`control`]), and the pure placement planner ([`placement`]). Uses
//! [`crate::formats`] for pages.

pub mod control;
pub mod os;
pub mod placement;
pub mod stats;
