#!/usr/bin/env bash
# The main job: set up (m4, real models), build, and run the ADR-004 gate
# (`atenia-harness validate`) on the default model, SmolLM2-135M-Instruct Q4_1.
# Reports go to reports/validate-smollm2.{json,html}. Extra arguments are
# passed to validate (e.g. --prompts FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
models="${ATENIA_MODEL_DIR:-$HOME/.cache/atenia/models}"
cargo build --release --locked -p atenia-harness
mkdir -p reports
target/release/atenia-harness validate "$models/SmolLM2-135M-Instruct.Q4_1.gguf" \
  --json-out reports/validate-smollm2.json --html reports/validate-smollm2.html "$@"
