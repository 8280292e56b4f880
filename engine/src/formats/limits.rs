//! Upper bounds on sizes a file claims, checked before anything is sized by them.

/// Upper bounds on hyperparameters, so that a lying file cannot make the
/// engine allocate absurd buffers before the weights contradict it.
pub const MAX_LAYERS: usize = 1 << 12;
pub const MAX_DIM: usize = 1 << 20;
pub const MAX_VOCAB: usize = 1 << 24;
