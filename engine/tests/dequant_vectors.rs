//! Checks `dequantize_row` bit for bit against the golden vectors in
//! `golden/dequant/<TYPE>.safetensors`, which gguf-py's
//! `gguf.quants.dequantize` (numpy float32) produced from real and random
//! blocks (see `scripts/gen_dequant_vectors.py`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use atenia_engine::formats::dequant::dequantize_row;
use atenia_engine::GgmlType;
use safetensors::{Dtype, SafeTensors};

fn vector_dir() -> PathBuf {
    atenia_testkit::golden().join("dequant")
}

/// Decodes every block of one vector file and compares bit for bit; returns
/// the number of blocks checked, or what differs.
fn check_file(ty: GgmlType, bytes: &[u8]) -> Result<usize, String> {
    let st = SafeTensors::deserialize(bytes).unwrap_or_else(|e| panic!("{ty}: {e}"));
    let blocks = st.tensor("blocks").expect("tensor `blocks`");
    let values = st.tensor("values").expect("tensor `values`");
    assert_eq!(blocks.dtype(), Dtype::U8, "{ty}: blocks dtype");
    assert_eq!(values.dtype(), Dtype::F32, "{ty}: values dtype");
    let (bb, be) = (ty.block_bytes(), ty.block_elems());
    let n = blocks.shape()[0];
    assert!(n > 0, "{ty}: no blocks");
    assert_eq!(blocks.shape(), [n, bb], "{ty}: blocks shape");
    assert_eq!(values.shape(), [n, be], "{ty}: values shape");

    let want: Vec<u32> = values
        .data()
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mut got = vec![0f32; be];
    let mut mismatches = Vec::new();
    for (i, block) in blocks.data().chunks_exact(bb).enumerate() {
        dequantize_row(ty, block, &mut got).unwrap_or_else(|e| panic!("{ty} block {i}: {e}"));
        for (j, g) in got.iter().enumerate() {
            let w = want[i * be + j];
            if g.to_bits() != w {
                mismatches.push(format!(
                    "block {i} elem {j}: got {g:e} ({:#010x}), want {:e} ({w:#010x})",
                    g.to_bits(),
                    f32::from_bits(w)
                ));
            }
        }
    }

    if !mismatches.is_empty() {
        return Err(format!(
            "{ty}: {} of {} values differ from gguf-py, first ones:\n{}",
            mismatches.len(),
            want.len(),
            mismatches[..mismatches.len().min(10)].join("\n")
        ));
    }

    // The same blocks decoded as one row must agree too (row = blocks in order).
    let mut row = vec![0f32; n * be];
    dequantize_row(ty, blocks.data(), &mut row).expect("whole row");
    if !row.iter().map(|x| x.to_bits()).eq(want.iter().copied()) {
        return Err(format!(
            "{ty}: whole-row decode differs from block-by-block decode"
        ));
    }
    Ok(n)
}

#[test]
fn dequant_matches_gguf_py_bit_for_bit() {
    let dir = vector_dir();
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("safetensors") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file name");
        let ty = GgmlType::from_name(stem)
            .unwrap_or_else(|| panic!("{}: not a ggml type name", path.display()));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        match check_file(ty, &bytes) {
            Ok(n) => eprintln!("{ty}: {n} blocks bit-exact"),
            Err(e) => failures.push(e),
        }
        seen.insert(ty.name());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let missing: Vec<&str> = GgmlType::ALL
        .iter()
        .map(|t| t.name())
        .filter(|name| !seen.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "no vector file in {} for {missing:?}; run scripts/gen_dequant_vectors.py",
        dir.display()
    );
}
