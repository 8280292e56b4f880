//! float64 and MPFR references.
