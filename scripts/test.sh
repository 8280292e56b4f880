#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup (m4, real models), then every
# test of the workspace in the optimized test profile.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --locked
# The library builds without the command-line crates (clap, indicatif,
# tracing-subscriber, rustyline): they belong to the binaries' `cli` feature.
cargo check -p atenia-engine --lib --no-default-features --locked
