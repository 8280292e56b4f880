#!/usr/bin/env bash
# Regenerates the committed validate reports: builds the harness in release,
# runs `atenia-harness validate` (the ADR-004 gate, with the bfloat16
# comparison) on SmolLM2-135M-Instruct Q4_1 and Gemma 3 270M Q4_K_M, and
# writes reports/validate-{smollm2,gemma3}.{json,html}. Before each report
# is replaced it prints what changed against the committed one (HEAD) with
# `atenia-harness report-diff`. Then it regenerates reports/dashboard.html
# from reports/bench-history.jsonl and those reports (the page has no clock
# in it: harness/tests/bench_record.rs checks that the committed page is
# this regeneration, so commit it with the reports).
#
#   scripts/ci-report.sh [VALIDATE ARGS...]     (e.g. --no-bf16)
#
# Models come from $ATENIA_MODEL_DIR (default ~/.cache/atenia/models);
# scripts/setup.sh fetches them (and m4) when missing. Exits non-zero when
# validate fails (or cannot run) on either model; both models are always run.
set -euo pipefail
cd "$(dirname "$0")/.."

models="${ATENIA_MODEL_DIR:-$HOME/.cache/atenia/models}"
# CI passes --profile test to reuse what `cargo test` just built instead of a
# second full build in release (same optimization level, plus debug assertions).
profile="${ATENIA_PROFILE:-release}"
case "$profile" in
  release) harness=target/release/atenia-harness ;;
  *) harness=target/debug/atenia-harness ;;
esac
start=$SECONDS

scripts/setup.sh
cargo build --profile "$profile" --locked -p atenia-harness
mkdir -p reports
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

status=0
for pair in smollm2:SmolLM2-135M-Instruct.Q4_1.gguf gemma3:gemma-3-270m-q4_k_m.gguf; do
  name="${pair%%:*}"
  file="$models/${pair#*:}"
  echo "== validate $name ($file)"
  code=0
  "$harness" validate "$file" --json-out "$work/$name.json" --html "$work/$name.html" "$@" || code=$?
  if [ "$code" -ne 0 ]; then
    echo "validate failed on $name (exit $code)" >&2
    status=1
  fi
  if [ -f "$work/$name.json" ]; then
    # The committed report, if any (an empty file when HEAD has none).
    git show "HEAD:reports/validate-$name.json" > "$work/$name.old.json" 2>/dev/null || : > "$work/$name.old.json"
    echo "== report-diff $name (committed → new)"
    "$harness" report-diff "$work/$name.old.json" "$work/$name.json" || true
    cp "$work/$name.json" "reports/validate-$name.json"
    cp "$work/$name.html" "reports/validate-$name.html"
    echo "wrote reports/validate-$name.json reports/validate-$name.html"
  fi
done
echo "== dashboard"
"$harness" dashboard --history reports/bench-history.jsonl --out reports/dashboard.html || status=1
git diff --quiet -- reports/dashboard.html 2>/dev/null ||
  echo "reports/dashboard.html changed: commit it with the reports"
echo "ci-report: $((SECONDS - start)) s"
exit "$status"
