//! A digest of logits that any two runs can compare: SHA-256 of the
//! little-endian bits of the f32 values, in order. Equal digests mean
//! bit-identical logits (the engine's reduction order makes them independent
//! of the ISA path, the thread count and prefill vs decode).

use sha2::{Digest, Sha256};

/// `sha256:` and the hex digest of `logits`' little-endian bytes.
pub fn logits_sha256(logits: &[f32]) -> String {
    logits_sha256_of([logits])
}

/// The digest of several runs' logits taken as one sequence (their
/// concatenation, in order).
pub fn logits_sha256_of<'a>(parts: impl IntoIterator<Item = &'a [f32]>) -> String {
    let mut h = Sha256::new();
    for part in parts {
        for v in part {
            h.update(v.to_bits().to_le_bytes());
        }
    }
    prefixed_hex(h)
}

/// One digest for several: SHA-256 of the digests' text, in order, each
/// followed by a newline (what a report's summary carries for its prompts).
pub fn combined_sha256<'a>(digests: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for d in digests {
        h.update(d.as_bytes());
        h.update(b"\n");
    }
    prefixed_hex(h)
}

/// `sha256:` and the finished digest in lower-case hex.
fn prefixed_hex(h: Sha256) -> String {
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_sha256_of_the_bits() {
        // SHA-256 of no bytes (FIPS 180-2 test vector).
        assert_eq!(
            logits_sha256(&[]),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // SHA-256 of the 4 bytes 00 00 80 3f (1.0f32, little-endian) as
        // computed by Python's hashlib.
        assert_eq!(
            logits_sha256(&[1.0]),
            "sha256:e00e5eb9444182f352323374ef4e08ebcb784725fdd4fd612d7730540b3e0c8c"
        );
        assert_ne!(logits_sha256(&[0.0]), logits_sha256(&[-0.0]));
        let (a, b) = ([1.5f32, 2.0], [3.0f32]);
        // sha256(b"x\ny\n"), by hashlib.
        assert_eq!(
            combined_sha256(["x", "y"]),
            "sha256:09834d488008f5f1ef589a2d7cedc52425bee9dd23b2212e4c1d673c5cbb54e4"
        );
        assert_eq!(
            logits_sha256_of([&a[..], &b[..]]),
            logits_sha256(&[1.5, 2.0, 3.0])
        );
    }
}
