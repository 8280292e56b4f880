//! The placement planner: a pure function that decides, for every tensor of a
//! forward pass (in the order the pass reads them), whether it is resident (an
//! owned copy in RAM), memory-mapped and kept, or streamed: mapped, used and
//! released again, in row pieces when one tensor alone is larger than the room
//! left for streaming.
//!
//! Nothing here touches memory or the OS; [`crate::memory`] measures the free
//! memory and the decoder carries the plan out.

use crate::error::{Error, Result};

/// Bytes the kernel may map beyond a range we touch: a range that is not
/// page-aligned spans one extra page at each end, and a fault maps up to
/// `fault_around_bytes` (64 KiB by default on Linux) of neighbouring pages that
/// are already in the page cache.
pub const PIECE_SLACK: u64 = 2 * 64 * 1024;

/// One tensor the pass reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorReq {
    pub name: String,
    /// Layer index, `None` for the embedding and the output projection.
    pub layer: Option<usize>,
    /// Stored bytes.
    pub bytes: u64,
    /// Bytes of one row (the smallest piece it can be streamed in); equal to
    /// `bytes` for a tensor that cannot be split.
    pub row_bytes: u64,
    /// Already an owned copy (norm vectors, biases: dequantized at load).
    pub owned: bool,
    /// The index of an earlier tensor holding the same bytes (the output
    /// projection tied to the embedding): its bytes count once and it takes
    /// that tensor's placement.
    pub same_as: Option<usize>,
}

/// Where one tensor lives during the pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// An owned copy in RAM.
    Resident,
    /// Memory-mapped and kept mapped for the whole run.
    Mapped,
    /// Mapped for its use only, then released; read `rows_per_piece` rows at a time.
    Streamed { rows_per_piece: u64 },
}

/// What the planner was told.
#[derive(Clone, Debug)]
pub struct PlanInput {
    pub tensors: Vec<TensorReq>,
    /// The memory budget in bytes (`None`: no budget).
    pub budget: Option<u64>,
    /// Memory actually free (MemAvailable, or what a cgroup still allows).
    pub free: Option<u64>,
    /// Bytes the run holds whatever the placement (KV cache, scratch, logits).
    pub fixed: u64,
    /// Keep nothing mapped beyond the streaming buffer (a guard evicted the
    /// cached layers under memory pressure): every matrix is streamed.
    pub stream_all: bool,
}

/// The planner's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// One per input tensor, same order.
    pub placements: Vec<Placement>,
    /// The limit the plan was made for (min of budget and free), if any.
    pub limit: Option<u64>,
    /// Bytes held whatever the placement (the input's `fixed`).
    pub fixed: u64,
    /// Owned weight bytes.
    pub resident: u64,
    /// Mapped-and-kept weight bytes.
    pub mapped: u64,
    /// Bytes of weights streamed once per pass.
    pub streamed: u64,
    /// The streaming buffer: the most streamed bytes mapped at once,
    /// including [`PIECE_SLACK`].
    pub stream_buffer: u64,
}

impl Plan {
    /// Bytes the plan holds at its peak: fixed + resident + mapped + one streamed piece.
    pub fn peak(&self) -> u64 {
        self.fixed + self.resident + self.mapped + self.stream_buffer
    }
}

/// Decides the placement of every tensor; see the module docs.
///
/// Without a limit (no budget and no free-memory figure) every matrix stays
/// mapped, as an unbudgeted run always did. With one, matrices are kept
/// mapped in access order while they fit beside the streaming buffer; the
/// rest are streamed. The buffer is sized for the largest per-layer matrix
/// (or the room left, if smaller), so layer matrices stream whole and a larger
/// matrix read once a pass (the output projection, the embedding) streams in
/// row pieces of that size: every byte kept mapped is a byte not streamed on
/// every pass, while a bigger buffer would only save per-piece overhead.
/// A tensor tied to an earlier one (`same_as`) counts once and shares its
/// placement. Fails, naming the smallest budget that works, when the fixed
/// bytes and one row of the widest tensor do not fit.
pub fn plan(input: &PlanInput) -> Result<Plan> {
    let limit = match (input.budget, input.free) {
        (Some(b), Some(f)) => Some(b.min(f)),
        (Some(b), None) => Some(b),
        // Free memory alone only matters when the weights would not fit in it.
        (None, Some(f)) => Some(f),
        (None, None) => None,
    };
    // Tensors whose bytes count (not owned, not a second view of earlier bytes).
    let own_bytes = |t: &TensorReq| !t.owned && t.same_as.is_none();
    let resident: u64 = input
        .tensors
        .iter()
        .filter(|t| t.owned)
        .map(|t| t.bytes)
        .sum();
    let matrices: u64 = input
        .tensors
        .iter()
        .filter(|t| own_bytes(t))
        .map(|t| t.bytes)
        .sum();
    let base = input.fixed + resident;
    let all_mapped = |limit| Plan {
        placements: input
            .tensors
            .iter()
            .map(|t| {
                if t.owned {
                    Placement::Resident
                } else {
                    Placement::Mapped
                }
            })
            .collect(),
        limit,
        fixed: input.fixed,
        resident,
        mapped: matrices,
        streamed: 0,
        stream_buffer: 0,
    };
    if !input.stream_all {
        match limit {
            None => return Ok(all_mapped(None)),
            Some(l) if base + matrices <= l => return Ok(all_mapped(Some(l))),
            _ => {}
        }
    }
    check_fits(input, limit, base)?;
    Ok(stream(input, limit, base, resident))
}

/// Refuses a limit below the fixed bytes plus one row of the widest tensor,
/// naming the smallest budget that works.
fn check_fits(input: &PlanInput, limit: Option<u64>, base: u64) -> Result<()> {
    let widest_row = input
        .tensors
        .iter()
        .filter(|t| !t.owned)
        .map(|t| t.row_bytes)
        .max()
        .unwrap_or(0);
    let smallest = base + widest_row + PIECE_SLACK;
    if let Some(limit) = limit.filter(|&l| l < smallest) {
        let what = match (input.budget, input.free) {
            (Some(b), Some(f)) if f < b => format!(
                "only {} is free (budget {})",
                format_size(f),
                format_size(b)
            ),
            (Some(b), _) => format!("a budget of {}", format_size(b)),
            (None, Some(f)) => format!("{} of free memory", format_size(f)),
            (None, None) => unreachable!("limit {limit} comes from a budget or free memory"),
        };
        return Err(Error::Resource {
            resource: "memory".into(),
            reason: format!(
                "{what} cannot hold the run even streaming the weights: it needs {} fixed \
                 (KV cache, scratch, owned norms) plus one row of the widest tensor ({}); \
                 the smallest budget that works is {} ({} bytes), or lower --ctx-size (the KV cache counts)",
                format_size(base),
                format_size(widest_row + PIECE_SLACK),
                format_size(smallest),
                smallest
            ),
        });
    }
    Ok(())
}

/// Keeps mapped what fits beside one stream buffer, in access order, and
/// streams the rest.
fn stream(input: &PlanInput, limit: Option<u64>, base: u64, resident: u64) -> Plan {
    let own_bytes = |t: &TensorReq| !t.owned && t.same_as.is_none();
    let room = limit.map_or(u64::MAX, |l| l - base);
    let streamable = || input.tensors.iter().filter(|t| own_bytes(t));
    let largest_layer = streamable()
        .filter(|t| t.layer.is_some())
        .map(|t| t.bytes)
        .max();
    let target = largest_layer.unwrap_or_else(|| streamable().map(|t| t.bytes).max().unwrap_or(0));
    let buffer = (target + PIECE_SLACK).min(room);
    let mut keep_room = if input.stream_all { 0 } else { room - buffer };
    let mut placements: Vec<Placement> = Vec::with_capacity(input.tensors.len());
    let (mut mapped, mut streamed) = (0u64, 0u64);
    for t in &input.tensors {
        if t.owned {
            placements.push(Placement::Resident);
            continue;
        }
        let rows = (t.bytes / t.row_bytes.max(1)).max(1);
        let per_piece = ((buffer - PIECE_SLACK) / t.row_bytes.max(1)).clamp(1, rows);
        let keep = match t.same_as.and_then(|j| placements.get(j)) {
            Some(p) => *p == Placement::Mapped,
            None if t.bytes <= keep_room => {
                keep_room -= t.bytes;
                mapped += t.bytes;
                true
            }
            None => {
                streamed += t.bytes;
                false
            }
        };
        placements.push(if keep {
            Placement::Mapped
        } else {
            Placement::Streamed {
                rows_per_piece: per_piece,
            }
        });
    }
    Plan {
        placements,
        limit,
        fixed: input.fixed,
        resident,
        mapped,
        streamed,
        stream_buffer: buffer,
    }
}

/// Most slots of the streaming ring.
pub const RING_MAX_SLOTS: usize = 8;
/// Most I/O threads (reads in flight) of the streaming ring.
pub const RING_IO_THREADS: usize = 4;
/// Bytes of one positioned read of the streaming ring.
pub const RING_READ_CHUNK: usize = 4 << 20;

/// How the stream buffer is cut into the streaming ring
/// ([`crate::formats::reader::Ring`]): `slots` buffers of `slot_bytes`, filled
/// by `io_threads` threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingLayout {
    pub slots: usize,
    pub slot_bytes: u64,
    pub io_threads: usize,
}

impl RingLayout {
    /// Rows of a tensor with `row_bytes`-byte rows that one slot holds
    /// (at least 1, at most `rows`): a read widened to 4096 at both ends
    /// must fit.
    pub fn rows_per_piece(&self, row_bytes: u64, rows: u64) -> u64 {
        let a = crate::formats::reader::ALIGN as u64;
        (self.slot_bytes.saturating_sub(2 * a) / row_bytes.max(1)).clamp(1, rows.max(1))
    }

    /// Bytes the ring holds: its slots and its threads' stacks.
    pub fn bytes(&self) -> u64 {
        self.slots as u64 * self.slot_bytes
            + self.io_threads as u64 * crate::formats::reader::IO_STACK_BYTES as u64
    }
}

/// Cuts a stream buffer of `buffer` bytes into the ring: as many slots as
/// hold a row of `widest_row` bytes widened to 4096 at both ends, up to
/// [`RING_MAX_SLOTS`], after the I/O threads' stacks; one I/O thread per slot
/// but the one compute holds, up to [`RING_IO_THREADS`]. A buffer too small
/// even for one slot gets one slot that holds one row (the planner's
/// [`PIECE_SLACK`] covers the difference). Deterministic: the same buffer
/// and row give the same ring.
pub fn ring_layout(buffer: u64, widest_row: u64) -> RingLayout {
    let a = crate::formats::reader::ALIGN as u64;
    let stacks = RING_IO_THREADS as u64 * crate::formats::reader::IO_STACK_BYTES as u64;
    let room = buffer.saturating_sub(stacks);
    let need = widest_row + 2 * a;
    for slots in (1..=RING_MAX_SLOTS).rev() {
        let slot_bytes = room / slots as u64 / a * a;
        if slot_bytes >= need {
            return RingLayout {
                slots,
                slot_bytes,
                io_threads: (slots - 1).clamp(1, RING_IO_THREADS),
            };
        }
    }
    RingLayout {
        slots: 1,
        slot_bytes: need.div_ceil(a) * a,
        io_threads: 1,
    }
}

/// Parses a size: `16MiB`, `1.5GiB`, `512K`, `2GB`, `1048576B` (bytes).
/// Binary (KiB, MiB, GiB, TiB, and bare K, M, G, T) and decimal (kB, MB, GB, TB)
/// units. The unit is required: a bare `16` is refused (16 bytes or 16 MiB?),
/// with `B` for an exact byte count.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        Error::argument(
            "--memory-budget",
            format!("{s:?} is not a size (examples: 16MiB, 1.5GiB, 512KiB, 1048576B)"),
        )
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if unit.trim().is_empty() {
        return Err(Error::argument(
            "--memory-budget",
            format!(
                "{s:?} has no unit: {num}MiB? Sizes need one (16MiB, 1.5GiB, 512KiB, 2GB); \
                 {num}B is {num} bytes"
            ),
        ));
    }
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return Err(bad()),
    };
    let v = n * mult;
    if !v.is_finite() || v < 1.0 {
        return Err(bad());
    }
    Ok(v.round() as u64)
}

/// `16.0 MiB`-style rendering.
pub fn format_size(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, bytes: u64, row: u64) -> TensorReq {
        TensorReq {
            name: name.into(),
            layer: None,
            bytes,
            row_bytes: row,
            owned: false,
            same_as: None,
        }
    }

    fn owned(bytes: u64) -> TensorReq {
        TensorReq {
            owned: true,
            ..m("norm", bytes, bytes)
        }
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn no_limit_maps_everything() {
        let p = plan(&PlanInput {
            tensors: vec![m("a", 10 * MIB, MIB), owned(100)],
            budget: None,
            free: None,
            fixed: 0,
            stream_all: false,
        })
        .unwrap();
        assert_eq!(p.placements, vec![Placement::Mapped, Placement::Resident]);
        assert_eq!(p.streamed, 0);
        assert_eq!(p.mapped, 10 * MIB);
        assert_eq!(p.resident, 100);
    }

    #[test]
    fn fits_in_budget_maps_everything() {
        let p = plan(&PlanInput {
            tensors: vec![m("a", 4 * MIB, MIB), m("b", 4 * MIB, MIB)],
            budget: Some(16 * MIB),
            free: Some(1 << 40),
            fixed: MIB,
            stream_all: false,
        })
        .unwrap();
        assert!(p.placements.iter().all(|&x| x == Placement::Mapped));
        assert!(p.peak() <= 16 * MIB);
    }

    #[test]
    fn streams_what_does_not_fit_and_keeps_the_peak_in_budget() {
        let tensors: Vec<_> = (0..10)
            .map(|i| m(&format!("t{i}"), 3 * MIB, 64 * 1024))
            .collect();
        let p = plan(&PlanInput {
            tensors,
            budget: Some(16 * MIB),
            free: None,
            fixed: 2 * MIB,
            stream_all: false,
        })
        .unwrap();
        assert!(p.peak() <= 16 * MIB, "{p:?}");
        let kept = p
            .placements
            .iter()
            .filter(|&&x| x == Placement::Mapped)
            .count();
        let streamed = p
            .placements
            .iter()
            .filter(|x| matches!(x, Placement::Streamed { .. }))
            .count();
        assert_eq!(kept + streamed, 10);
        assert!(kept >= 2 && streamed >= 1, "{p:?}");
        // Kept tensors come first in access order.
        assert_eq!(p.placements[0], Placement::Mapped);
        assert_eq!(p.streamed + p.mapped, 30 * MIB);
    }

    #[test]
    fn a_tensor_larger_than_the_room_goes_in_row_pieces() {
        let p = plan(&PlanInput {
            tensors: vec![m("big", 100 * MIB, 1000), m("small", 1000, 1000)],
            budget: Some(8 * MIB),
            free: None,
            fixed: MIB,
            stream_all: false,
        })
        .unwrap();
        match p.placements[0] {
            Placement::Streamed { rows_per_piece } => {
                assert!(rows_per_piece * 1000 + PIECE_SLACK <= 7 * MIB);
                assert!(rows_per_piece > 1000);
            }
            other => panic!("{other:?}"),
        }
        assert!(p.peak() <= 8 * MIB);
    }

    #[test]
    fn free_memory_lower_than_budget_wins() {
        let p = plan(&PlanInput {
            tensors: vec![m("a", 10 * MIB, MIB)],
            budget: Some(64 * MIB),
            free: Some(4 * MIB),
            fixed: 0,
            stream_all: false,
        })
        .unwrap();
        assert_eq!(p.limit, Some(4 * MIB));
        assert!(matches!(p.placements[0], Placement::Streamed { .. }));
    }

    #[test]
    fn too_small_names_the_smallest_budget_that_works() {
        let input = PlanInput {
            tensors: vec![m("a", 10 * MIB, MIB), owned(1000)],
            budget: Some(2 * MIB),
            free: None,
            fixed: MIB,
            stream_all: false,
        };
        let e = plan(&input).unwrap_err().to_string();
        let smallest = MIB + 1000 + MIB + PIECE_SLACK;
        assert!(e.contains(&format!("({smallest} bytes)")), "{e}");
        // And that budget does work.
        let ok = plan(&PlanInput {
            budget: Some(smallest),
            ..input
        })
        .unwrap();
        assert_eq!(ok.placements[0], Placement::Streamed { rows_per_piece: 1 });
        assert!(ok.peak() <= smallest);
    }

    fn layer(name: &str, l: usize, bytes: u64, row: u64) -> TensorReq {
        TensorReq {
            layer: Some(l),
            ..m(name, bytes, row)
        }
    }

    /// SmolLM2's shape under 16 MiB: a tied 17 MiB embedding/output and small
    /// layer matrices. The buffer is sized for a layer matrix, not for the
    /// output: the rest of the room keeps layers mapped.
    #[test]
    fn a_large_output_matrix_does_not_take_all_the_room() {
        let mut tensors = vec![m("embed", 17 * MIB, 17 * MIB / 49152)];
        for l in 0..30 {
            for j in 0..7 {
                tensors.push(layer(&format!("l{l}.{j}"), l, 540 * 1024, 360));
            }
        }
        tensors.push(TensorReq {
            same_as: Some(0),
            ..m("output", 17 * MIB, 17 * MIB / 49152)
        });
        let input = PlanInput {
            tensors,
            budget: Some(16 * MIB),
            free: None,
            fixed: 3 * MIB,
            stream_all: false,
        };
        let p = plan(&input).unwrap();
        assert!(p.peak() <= 16 * MIB, "{p:?}");
        assert_eq!(p.stream_buffer, 540 * 1024 + PIECE_SLACK);
        // The embedding does not fit: streamed, and the tied output with it, in pieces.
        assert!(matches!(p.placements[0], Placement::Streamed { .. }));
        let last = *p.placements.last().unwrap();
        assert_eq!(last, p.placements[0]);
        match last {
            Placement::Streamed { rows_per_piece } => {
                assert_eq!(rows_per_piece, 540 * 1024 / (17 * MIB / 49152))
            }
            other => panic!("{other:?}"),
        }
        // 13 MiB of room less the buffer keeps 23 layer matrices mapped.
        let kept = p
            .placements
            .iter()
            .filter(|&&x| x == Placement::Mapped)
            .count();
        assert_eq!(kept as u64, (13 * MIB - p.stream_buffer) / (540 * 1024));
        // The tied bytes count once: what is mapped plus what is streamed is
        // the embedding plus the layers, not the output again.
        assert_eq!(p.mapped + p.streamed, 17 * MIB + 210 * 540 * 1024);
    }

    #[test]
    fn a_tied_output_counts_once_when_everything_fits() {
        let tensors = vec![
            m("embed", 10 * MIB, MIB),
            layer("l0", 0, MIB, 1024),
            TensorReq {
                same_as: Some(0),
                ..m("output", 10 * MIB, MIB)
            },
        ];
        // 11 MiB of matrices (not 21) plus 1 MiB fixed fits in 12 MiB.
        let p = plan(&PlanInput {
            tensors,
            budget: Some(12 * MIB),
            free: None,
            fixed: MIB,
            stream_all: false,
        })
        .unwrap();
        assert!(
            p.placements.iter().all(|&x| x == Placement::Mapped),
            "{p:?}"
        );
        assert_eq!(p.mapped, 11 * MIB);
    }

    #[test]
    fn stream_all_keeps_nothing_mapped_even_without_a_budget() {
        let tensors = vec![
            layer("a", 0, 2 * MIB, 1024),
            layer("b", 0, MIB, 1024),
            owned(100),
        ];
        let p = plan(&PlanInput {
            tensors,
            budget: None,
            free: None,
            fixed: 0,
            stream_all: true,
        })
        .unwrap();
        assert_eq!(p.mapped, 0);
        assert_eq!(p.streamed, 3 * MIB);
        assert_eq!(p.stream_buffer, 2 * MIB + PIECE_SLACK);
        assert_eq!(
            p.placements,
            vec![
                Placement::Streamed {
                    rows_per_piece: 2048
                },
                Placement::Streamed {
                    rows_per_piece: 1024
                },
                Placement::Resident
            ]
        );
    }

    #[test]
    fn the_ring_fits_its_buffer_and_holds_the_widest_row() {
        // The 1B shape's buffer: a 32 MiB layer matrix plus slack.
        let l = ring_layout(32 * MIB + PIECE_SLACK, 16384);
        assert_eq!(l.slots, RING_MAX_SLOTS);
        assert_eq!(l.io_threads, RING_IO_THREADS);
        assert!(l.bytes() <= 32 * MIB + PIECE_SLACK, "{l:?}");
        assert_eq!(l.slot_bytes % 4096, 0);
        // A 16 KiB row fits widened; a 4 KiB-row tensor of 10 000 rows
        // streams in pieces of what a slot holds.
        assert!(l.rows_per_piece(16384, 8192) * 16384 + 8192 <= l.slot_bytes);
        assert_eq!(l.rows_per_piece(4096, 10), 10);
        // SmolLM2 under 16 MiB: 668 KiB; rows of 1152 bytes.
        let s = ring_layout(540 * 1024 + PIECE_SLACK, 1152);
        assert!(
            s.slots > 1 && s.bytes() <= 540 * 1024 + PIECE_SLACK,
            "{s:?}"
        );
        assert_eq!(s.io_threads, (s.slots - 1).min(RING_IO_THREADS));
        // Room for one slot only: no overlap, but it runs.
        let one = ring_layout(PIECE_SLACK + 64 * 1024, 100 * 1024);
        assert_eq!((one.slots, one.io_threads), (1, 1));
        assert!(one.rows_per_piece(100 * 1024, 7) >= 1);
        // Same input, same ring.
        assert_eq!(ring_layout(12345678, 4096), ring_layout(12345678, 4096));
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_size("4096B").unwrap(), 4096);
        assert_eq!(parse_size("4096 b").unwrap(), 4096);
        let e = parse_size("16").unwrap_err().to_string();
        assert!(e.contains("no unit") && e.contains("16MiB?"), "{e}");
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0B").is_err());
        assert!(parse_size("16XB").is_err());
        assert_eq!(format_size(16 << 20), "16.0 MiB");
    }
}
