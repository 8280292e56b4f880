//! Checks of the MPFR references themselves: the exact dequantization against
//! gguf-py's vectors (an implementation this project did not write), the
//! rounding helpers against Rust's correctly rounded casts, and known values.

use atenia_engine::formats::ggml_type::GgmlType;
use atenia_references::mpfr::{self, Float};
use atenia_testkit::{golden, Rng};
use safetensors::{Dtype, SafeTensors};

/// gguf-py's float32 values are the exact block values rounded once (the
/// engine's dequant docs prove the products exact); so the MPFR value, rounded
/// to f32, must reproduce every one of them bit for bit (NaNs: NaN-ness only).
#[test]
fn exact_dequantization_rounds_to_gguf_py_values() {
    let mut checked = 0;
    for ty in GgmlType::ALL {
        let path = golden().join(format!("dequant/{}.safetensors", ty.name()));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let blocks = st.tensor("blocks").unwrap();
        let values = st.tensor("values").unwrap();
        assert_eq!(blocks.dtype(), Dtype::U8);
        assert_eq!(values.dtype(), Dtype::F32);
        let want: Vec<f32> = values
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let exact = mpfr::dequantize(ty, blocks.data());
        assert_eq!(exact.len(), want.len(), "{ty}");
        for (i, (e, &w)) in exact.iter().zip(&want).enumerate() {
            let got = mpfr::round_f32(e);
            if w.is_nan() {
                assert!(got.is_nan(), "{ty} element {i}: exact {e} but gguf-py NaN");
            } else {
                assert_eq!(
                    got.to_bits(),
                    w.to_bits(),
                    "{ty} element {i}: exact {e}, gguf-py {w:e}"
                );
            }
        }
        checked += want.len();
    }
    assert!(checked > 10_000, "only {checked} values");
}

#[test]
fn round_f32_is_correct_rounding() {
    // Rust's f64 -> f32 cast rounds to nearest, ties to even, with subnormals and overflow.
    let mut rng = Rng::new(1);
    let mut specials = vec![
        f64::from(f32::MAX) * (1.0 + 2f64.powi(-25)), // the overflow midpoint: to inf
        f64::from(f32::MAX) * (1.0 + 2f64.powi(-26)),
        2f64.powi(-150),       // half the smallest subnormal: ties to 0
        2f64.powi(-150) * 3.0, // 1.5 subnormal units: ties to 2
        2f64.powi(-126) * (1.0 - 2f64.powi(-25)),
        -2f64.powi(-151),
    ];
    for _ in 0..200_000 {
        let r = rng.next_u64();
        // Exponents around the f32 range.
        let e = (r % 320) as i32 - 170;
        let m = 1.0 + rng.unit();
        specials.push(if r & (1 << 40) != 0 { -m } else { m } * 2f64.powi(e));
    }
    for x in specials {
        let got = mpfr::round_f32(&mpfr::fl(x));
        assert_eq!(got.to_bits(), (x as f32).to_bits(), "{x:e}");
    }
}

#[test]
fn ulps_and_known_values() {
    assert_eq!(mpfr::ulp_f32(&mpfr::fl(1.0)), f32::EPSILON as f64);
    assert_eq!(mpfr::ulp_f32(&mpfr::fl(0.0)), 2f64.powi(-149));
    assert_eq!(mpfr::ulp_f64(&mpfr::fl(1.5)), f64::EPSILON);
    assert_eq!(mpfr::ulp_f64(&mpfr::fl(1e-310)), mpfr::pow2(-1074));
    let e = Float::with_val(mpfr::PREC, 1).exp();
    assert!(mpfr::ulps_f64(std::f64::consts::E, &e) <= 0.5);
    assert!(mpfr::ulps_f64(0.731_058_578_630_004_9, &mpfr::silu(1.0)) <= 1.0);
    // gelu_tanh(1) = 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) = 0.8411919906082768...
    assert!(mpfr::ulps_f64(0.841_191_990_608_276_8, &mpfr::gelu_tanh(1.0)) <= 1.0);
    assert!(mpfr::ulps_f64(30.0 * (100.0f64 / 30.0).tanh(), &mpfr::softcap(100.0, 30.0)) <= 2.0);
    // The exact dot product survives total cancellation of huge terms.
    let a = [1e30f32, 1.0, -1e30, f32::from_bits(1)];
    let b = [1e8f32, 1e-7, 1e8, 1.0];
    let d = mpfr::dot(&a, &b);
    let want = Float::with_val(mpfr::PREC_EXACT, 1.0f32) * 1e-7f32 + f32::from_bits(1);
    assert_eq!(d, want);
    // Softmax sums to one.
    let p = mpfr::softmax(&[1.0, 2.0, -700.0, 3.5]);
    let mut sum = mpfr::fl(0.0);
    for v in &p {
        sum += v;
    }
    assert!((sum - 1.0f64).abs() < 1e-70);
}
