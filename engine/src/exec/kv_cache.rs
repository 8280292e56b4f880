//! The KV cache: one preallocated f32 buffer per layer for keys and one for
//! values, `capacity` rows of `n_kv_heads · head_dim` each, written in place.

use crate::error::{Error, Result};

/// Bytes of one cached element (keys and values are stored as f32).
pub const ELEMENT_BYTES: usize = std::mem::size_of::<f32>();

/// Bytes a cache of `capacity` positions takes: layers × positions × row
/// (`n_kv_heads · head_dim`) × 2 (keys and values) × [`ELEMENT_BYTES`];
/// `None` when that does not fit in a u64.
pub fn checked_bytes(n_layers: usize, capacity: usize, row: usize) -> Option<u64> {
    [capacity, row, 2, ELEMENT_BYTES]
        .into_iter()
        .try_fold(n_layers as u64, |acc, x| acc.checked_mul(x as u64))
}

/// [`checked_bytes`], saturating instead of overflowing, so a huge requested
/// context still gets a number (and a planner refuses it).
pub fn bytes_for(n_layers: usize, capacity: usize, row: usize) -> u64 {
    checked_bytes(n_layers, capacity, row).unwrap_or(u64::MAX)
}

pub struct KvCache {
    pub capacity: usize,
    pub row: usize,
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
}

impl KvCache {
    /// Allocates the whole cache up front; fails cleanly when it cannot.
    pub fn new(n_layers: usize, capacity: usize, row: usize) -> Result<KvCache> {
        let per_layer = capacity.checked_mul(row).ok_or_else(|| Error::Resource {
            resource: "memory".into(),
            reason: format!("a KV cache of {capacity} positions overflows"),
        })?;
        let alloc = |n: usize| -> Result<Vec<f32>> {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| Error::Resource {
                resource: "memory".into(),
                reason: format!(
                    "cannot allocate a KV cache of {capacity} positions ({} MiB per layer)",
                    (n * ELEMENT_BYTES) >> 20
                ),
            })?;
            v.resize(n, 0.0);
            Ok(v)
        };
        let mut keys = Vec::with_capacity(n_layers);
        let mut values = Vec::with_capacity(n_layers);
        for _ in 0..n_layers {
            keys.push(alloc(per_layer)?);
            values.push(alloc(per_layer)?);
        }
        Ok(KvCache {
            capacity,
            row,
            keys,
            values,
        })
    }

    /// Writes rows `pos..pos + n` of layer `layer`.
    pub fn write(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let start = pos * self.row;
        self.keys[layer][start..start + k.len()].copy_from_slice(k);
        self.values[layer][start..start + v.len()].copy_from_slice(v);
    }

    /// Keys and values of layer `layer` for positions `0..len`.
    pub fn layer(&self, layer: usize, len: usize) -> (&[f32], &[f32]) {
        (
            &self.keys[layer][..len * self.row],
            &self.values[layer][..len * self.row],
        )
    }

    pub fn bytes(&self) -> usize {
        self.keys.len() * 2 * self.capacity * self.row * ELEMENT_BYTES
    }
}
