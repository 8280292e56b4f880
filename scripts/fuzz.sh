#!/usr/bin/env bash
# Bounded fuzzing of the engine's untrusted-input readers: the GGUF reader and
# model load, a checkpoint directory's model.safetensors, config.json and
# tokenizer.json (fuzz/fuzz_targets/). Runs on the stable toolchain: libFuzzer
# with sanitizer coverage, no sanitizer (`--sanitizer none`), debug assertions
# and overflow checks on (`-a`), as the tests build the engine.
#
#   scripts/fuzz.sh                      # every target, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh gguf
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
timeout_s=${FUZZ_TIMEOUT:-30}
rss_mb=${FUZZ_RSS_MB:-1024}
all=(gguf safetensors hf_config tokenizer_json)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

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

flags=(--sanitizer none --debug-assertions --release)
cargo fuzz build "${flags[@]}"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "fuzz: $t for ${seconds}s" >&2
  if ! cargo fuzz run "${flags[@]}" "$t" "fuzz/corpus/$t" "$seeds/$t" -- \
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
