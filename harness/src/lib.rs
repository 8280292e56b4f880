//! Atenia's truth side: runs the engine against float64 and MPFR references,
//! records drift, and writes reports.

pub mod bench;
pub mod compare;
pub mod dashboard;
pub mod engine_run;
pub mod kernel_suite;
pub mod metrics;
pub mod prompts;
pub mod reference_file;
pub mod replay;
pub mod report_diff;
pub mod report_html;
pub mod svg;
pub mod validate;
