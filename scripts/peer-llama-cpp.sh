#!/usr/bin/env bash
# Peer comparison: llama.cpp's llama-bench against `atenia-harness bench` on
# the same GGUF file, the same thread count, 128 prompt tokens and 64
# generated tokens, and prints both figures and their ratio in one table.
#
#   scripts/peer-llama-cpp.sh [MODEL] [--threads N] [--runs R] [--no-history] [--build-only] [-- BENCH ARGS...]
#
#   MODEL          a GGUF file (default: SmolLM2-135M-Instruct.Q4_1.gguf in the model cache)
#   --threads N    threads for both engines (default: 2)
#   --runs R       measured runs for both engines (default: 5)
#   --no-history   do not append atenia's figures to reports/bench-history.jsonl
#   --build-only   build llama-bench (if needed) and stop
#   -- ARGS        passed on to `atenia-harness bench` (e.g. -- --commit abc1234)
#
# $ATENIA_HARNESS names a prebuilt atenia-harness to use instead of building
# this checkout's (cargo build --release -p atenia-harness).
#
# llama.cpp is the copy vendored in the `llama-cpp-python` sdist from PyPI
# (fetched with pip, never committed): it is downloaded, unpacked and built
# (only the llama-bench target, Release, -DGGML_NATIVE=ON -DLLAMA_CURL=OFF)
# once into $ATENIA_PEER_DIR (default ~/.cache/atenia/peer) and reused after.
# Installs cmake with apt-get when missing. The first build takes about
# 10 minutes on 2 cores.
#
# llama-bench reports the mean of its runs; atenia reports the median.
# Both engines time prefill the same way (prompt tokens / prompt time) and
# decode as generated tokens / generation time.
set -euo pipefail
cd "$(dirname "$0")/.."

models="${ATENIA_MODEL_DIR:-$HOME/.cache/atenia/models}"
peer="${ATENIA_PEER_DIR:-$HOME/.cache/atenia/peer}"
model="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
threads=2
runs=5
history=1
build_only=0
prompt=128
gen=64
extra=()

while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --threads=*) threads="${1#*=}"; shift ;;
    --runs) runs="$2"; shift 2 ;;
    --runs=*) runs="${1#*=}"; shift ;;
    --no-history) history=0; shift ;;
    --build-only) build_only=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "peer-llama-cpp: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) model="$1"; shift ;;
  esac
done

if [ "$build_only" = 0 ] && [ ! -f "$model" ]; then
  echo "peer-llama-cpp: model not found: $model (scripts/fetch-models.sh fetches the test models)" >&2
  exit 2
fi

# ---------------------------------------------------------------- llama.cpp
bench_bin="$peer/build/bin/llama-bench"
if [ ! -x "$bench_bin" ]; then
  if ! command -v cmake >/dev/null 2>&1; then
    echo "installing cmake (needed to build llama.cpp)"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq cmake >/dev/null
    else
      sudo apt-get update -qq && sudo apt-get install -y -qq cmake >/dev/null
    fi
  fi
  mkdir -p "$peer/sdist"
  if ! ls "$peer"/sdist/llama_cpp_python-*.tar.gz >/dev/null 2>&1; then
    echo "fetch   llama-cpp-python sdist (PyPI) into $peer/sdist"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
      --no-binary :all: llama-cpp-python -d "$peer/sdist"
  fi
  sdist="$(ls "$peer"/sdist/llama_cpp_python-*.tar.gz | sort -V | tail -n 1)"
  rm -rf "$peer/src"
  mkdir -p "$peer/src"
  echo "unpack  $(basename "$sdist")"
  tar -xzf "$sdist" -C "$peer/src" --strip-components=1
  src="$peer/src/vendor/llama.cpp"
  [ -f "$src/CMakeLists.txt" ] || { echo "peer-llama-cpp: no vendor/llama.cpp in $sdist" >&2; exit 1; }
  echo "build   llama-bench (Release, GGML_NATIVE) in $peer/build"
  cmake -S "$src" -B "$peer/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
  cmake --build "$peer/build" --config Release --target llama-bench -j2
  [ -x "$bench_bin" ] || { echo "peer-llama-cpp: build produced no $bench_bin" >&2; exit 1; }
  basename "$sdist" .tar.gz > "$peer/build/VERSION"
fi
[ "$build_only" = 1 ] && { echo "llama-bench: $bench_bin"; exit 0; }

# ------------------------------------------------------------------- atenia
if [ -n "${ATENIA_HARNESS:-}" ]; then
  harness="$ATENIA_HARNESS"
else
  cargo build --release --quiet -p atenia-harness
  harness=target/release/atenia-harness
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "run     llama-bench -m $(basename "$model") -t $threads -p $prompt -n $gen -r $runs" >&2
"$bench_bin" -m "$model" -t "$threads" -p "$prompt" -n "$gen" -r "$runs" -o json > "$work/llama.json"

echo "run     atenia-harness bench $(basename "$model") --threads $threads" >&2
hist_flag=()
[ "$history" = 0 ] && hist_flag=(--no-history)
"$harness" bench "$model" --threads "$threads" --json --prompt-tokens "$prompt" --gen-tokens "$gen" \
  --runs "$runs" --no-depth "${hist_flag[@]}" "${extra[@]}" > "$work/atenia.json"

python3 - "$work/llama.json" "$work/atenia.json" "$model" "$threads" "$peer/build/VERSION" "$prompt" "$gen" <<'PY'
import json, os, sys
llama = json.load(open(sys.argv[1]))
atenia = json.load(open(sys.argv[2]))
model, threads, version_file = sys.argv[3], sys.argv[4], sys.argv[5]
prompt, gen = int(sys.argv[6]), int(sys.argv[7])
pp = next(r for r in llama if r["n_prompt"] == prompt and r["n_gen"] == 0)
tg = next(r for r in llama if r["n_prompt"] == 0 and r["n_gen"] == gen)
version = open(version_file).read().strip() if os.path.exists(version_file) else "?"
print(f"model    {os.path.basename(model)}")
print(f"cpu      {atenia.get('cpu_model', '?')} ({threads} threads; atenia isa {atenia.get('isa', '?')})")
print(f"atenia   {atenia.get('commit', '?')}    llama.cpp {pp.get('build_commit', '?')} ({version})")
print()
print(f"{'':<14}{'atenia tok/s':>14}{'llama.cpp tok/s':>17}{'atenia/llama':>14}")
rows = [
    (f"prefill {prompt}", atenia["prefill_tokens_per_s"], pp["avg_ts"]),
    (f"decode {gen}", atenia["decode_tokens_per_s"], tg["avg_ts"]),
]
for name, a, l in rows:
    print(f"{name:<14}{a:>14.1f}{l:>17.1f}{a / l:>14.3f}")
print()
print(f"atenia: median of {atenia.get('runs', '?')} runs, ttft {atenia['ttft_ms']:.1f} ms; "
      f"llama.cpp: mean of {len(pp.get('samples_ts', [])) or '?'} runs "
      f"(± {pp['stddev_ts']:.1f} / {tg['stddev_ts']:.1f} tok/s)")
PY
