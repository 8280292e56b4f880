#!/usr/bin/env bash
# Bounded fuzzing of the engine's untrusted-input readers: the GGUF reader and
# model load, a checkpoint directory's model.safetensors, config.json and
# tokenizer.json (fuzz/fuzz_targets/). Runs on the stable toolchain: libFuzzer
# (libfuzzer-sys) with sanitizer coverage, no sanitizer, debug assertions and
# overflow checks on, as the tests build the engine. The targets are built with
# plain cargo and the coverage flags `cargo fuzz build --sanitizer none -a`
# would pass, so CI needs no cargo-fuzz install (minutes of compiling on a
# fresh machine); `cargo fuzz run TARGET` works on the same targets for anyone
# who has it. Unlike cargo-fuzz we keep cargo's default codegen units: one unit
# per crate made the build several minutes slower for a run of a minute.
#
#   scripts/fuzz.sh                      # every target, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh gguf
#   FUZZ_OPT_LEVEL=1 scripts/fuzz.sh     # a quicker build, fewer runs a second (CI)
#
# Seeds: the hostile corpus (golden/hostile/) and the valid fixtures' files.
# New inputs accumulate in fuzz/corpus/TARGET (ignored by git); a crash, an
# abort, a hang (one input running > FUZZ_TIMEOUT s, default 30) or an input that takes more
# than FUZZ_RSS_MB of memory is saved in fuzz/artifacts/TARGET/ and makes the
# script exit 1 after the other targets ran. To turn a finding into a
# regression test, add the file to scripts/gen_hostile.py's corpus and run
# `cargo test --release -p atenia-engine --test hostile`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
opt_level=${FUZZ_OPT_LEVEL:-3}
timeout_s=${FUZZ_TIMEOUT:-30}
rss_mb=${FUZZ_RSS_MB:-1024}
all=(gguf safetensors hf_config tokenizer_json)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")


# Seeds, one directory per target (flattened names; libFuzzer only reads them).
seeds=fuzz/seeds
rm -rf "$seeds"
mkdir -p "$seeds"/{gguf,safetensors,hf_config,tokenizer_json}
cp golden/hostile/gguf/*.gguf "$seeds/gguf/"
for d in golden/hostile/hf/*/ golden/hf/*/; do
  tag=$(echo "${d%/}" | tr / _)
  [ -f "$d/model.safetensors" ] && [ "$(stat -c %s "$d/model.safetensors")" -le 65536 ] &&
    cp "$d/model.safetensors" "$seeds/safetensors/$tag"
  [ -f "$d/config.json" ] && cp "$d/config.json" "$seeds/hf_config/$tag"
  [ -f "$d/tokenizer.json" ] && cp "$d/tokenizer.json" "$seeds/tokenizer_json/$tag"
done

triple=$(rustc -vV | sed -n 's/^host: //p')
cov=(-Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  -Cllvm-args=-sanitizer-coverage-stack-depth
  -Cllvm-args=-simplifycfg-branch-fold-threshold=0
  --cfg fuzzing -Cdebug-assertions)
# --target keeps these flags away from build scripts and proc macros.
RUSTFLAGS="${cov[*]}" cargo build --manifest-path fuzz/Cargo.toml --target "$triple" \
  --release --bins --locked --config "profile.release.opt-level=$opt_level"
bin=fuzz/target/$triple/release

failed=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "fuzz: $t for ${seconds}s" >&2
  mkdir -p "fuzz/artifacts/$t"
  if ! "$bin/$t" "fuzz/corpus/$t" "$seeds/$t" -artifact_prefix="fuzz/artifacts/$t/" \
      -max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" \
      -print_final_stats=1 2>"fuzz/$t.log"; then
    failed+=("$t")
    tail -40 "fuzz/$t.log" >&2
  else
    grep -E '^stat::(number_of_executed_units|new_units_added)|^Done' "fuzz/$t.log" >&2 || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/*.log)" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: nothing found in ${seconds}s each" >&2
