//! Family adapter specs: the YAML tables in `engine/specs/` that say how a
//! family names its tensors and which numeric variants it uses (norm style,
//! biases, soft-caps, sliding windows, rope). Uses [`crate::formats`] and the
//! kernel enums of [`crate::kernels`]. [`inventory`] reads what a checkpoint
//! holds and [`draft`] drafts a spec for it (`atenia inspect`).

pub mod draft;
pub mod inventory;
pub mod roles;
pub mod spec;
