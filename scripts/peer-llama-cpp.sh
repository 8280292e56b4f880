#!/usr/bin/env bash
# Peer comparison: llama.cpp's llama-bench against `atenia-harness bench` on
# the same GGUF file, the same thread count, 128 prompt tokens and 64
# generated tokens, and prints both figures and their ratio in one table.
#
#   scripts/peer-llama-cpp.sh [MODEL] [--threads N] [--runs R] [--record [FILE]]
#                             [--llama-src DIR] [--build-only] [-- BENCH ARGS...]
#
#   MODEL          a GGUF file (default: SmolLM2-135M-Instruct.Q4_1.gguf in the model cache)
#   --threads N    threads for both engines (default: 2)
#   --runs R       measured runs for both engines (default: 5)
#   --record       append the record (atenia's figures, llama.cpp's beside them
#                  under "peer") to reports/bench-history.jsonl, or to FILE
#                  with --record FILE; without it nothing is written
#   --llama-src DIR  build llama.cpp from this source tree (a git checkout
#                  records its exact commit) instead of the PyPI sdist
#   --build-only   build llama-bench (if needed) and stop
#   -- ARGS        passed on to `atenia-harness bench` (e.g. -- --commit abc1234)
#
# $ATENIA_HARNESS names a prebuilt atenia-harness to use instead of building
# this checkout's (cargo build --release -p atenia-harness).
#
# llama.cpp comes, by default, from the copy vendored in the
# llama-cpp-python sdist (version $LLAMA_PY below, fetched with pip, never
# committed); its llama.cpp commit is the one that version's CHANGELOG names.
# It is built once into $ATENIA_PEER_DIR (default ~/.cache/atenia/peer),
# Release, static, targets llama-bench and llama-quantize only, and rebuilt
# when the source or the flags change. Installs cmake with apt-get when
# missing. The first build takes 10-20 minutes on 2 cores.
#
# Build flags: GGML_NATIVE (-march=native) with AMX switched off
# (GGML_AMX_TILE/INT8/BF16=OFF and -mno-amx-tile -mno-amx-int8
# -mno-amx-bf16, which win over -march=native): some VMs report AMX in CPUID
# without enabling its tile state, and llama.cpp's AMX matmul then dies with
# SIGILL. Atenia has no AMX path, so this costs the comparison nothing.
# The llama.cpp commit, the source and the flags go into the record's
# "peer" field, so two records say whether they compare like with like.
#
# llama-bench reports the mean of its runs; atenia reports the median.
# Both engines time prefill the same way (prompt tokens / prompt time) and
# decode as generated tokens / generation time.
set -euo pipefail
cd "$(dirname "$0")/.."

models="${ATENIA_MODEL_DIR:-$HOME/.cache/atenia/models}"
peer="${ATENIA_PEER_DIR:-$HOME/.cache/atenia/peer}"
LLAMA_PY=0.3.36
model="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
threads=2
runs=5
record=()
llama_src=""
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
    --record)
      # An optional FILE: the next word, unless it is an option or a model.
      if [ $# -gt 1 ] && [[ "$2" != -* ]] && [[ "$2" != *.gguf ]]; then
        record=(--record "$2"); shift 2
      else
        record=(--record); shift
      fi ;;
    --record=*) record=(--record "${1#*=}"); shift ;;
    --no-history) record=(); shift ;;  # the default now; kept for old callers
    --llama-src) llama_src="$2"; shift 2 ;;
    --llama-src=*) llama_src="${1#*=}"; shift ;;
    --build-only) build_only=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "peer-llama-cpp: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) model="$1"; shift ;;
  esac
done

if [ "$build_only" = 0 ] && [ ! -f "$model" ]; then
  echo "peer-llama-cpp: model not found: $model (scripts/fetch-models.sh fetches the test models)" >&2
  exit 2
fi

# ---------------------------------------------------------------- llama.cpp
need() {  # need COMMAND PACKAGE: apt-get install PACKAGE when COMMAND is missing
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 (needed to build llama.cpp)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "$2" >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq "$2" >/dev/null
  fi
}

# The source tree and its commit.
if [ -n "$llama_src" ]; then
  src="$(cd "$llama_src" && pwd)"
  [ -f "$src/ggml/CMakeLists.txt" ] || { echo "peer-llama-cpp: $llama_src is not a llama.cpp source tree" >&2; exit 2; }
  commit="$(git -C "$src" rev-parse HEAD 2>/dev/null || echo unknown)"
  source_desc="$src"
else
  src="$peer/src/llama-cpp-python-$LLAMA_PY/vendor/llama.cpp"
  if [ ! -f "$src/CMakeLists.txt" ]; then
    mkdir -p "$peer/sdist"
    sdist="$peer/sdist/llama_cpp_python-$LLAMA_PY.tar.gz"
    if [ ! -f "$sdist" ]; then
      echo "fetch   llama-cpp-python $LLAMA_PY sdist (PyPI) into $peer/sdist"
      # --no-binary names the package only: its build backend (cmake,
      # scikit-build-core) may come as wheels for pip's metadata step.
      python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --no-binary llama-cpp-python "llama-cpp-python==$LLAMA_PY" -d "$peer/sdist"
    fi
    rm -rf "$peer/src/llama-cpp-python-$LLAMA_PY"
    mkdir -p "$peer/src/llama-cpp-python-$LLAMA_PY"
    echo "unpack  $(basename "$sdist")"
    tar -xzf "$sdist" -C "$peer/src/llama-cpp-python-$LLAMA_PY" --strip-components=1
    [ -f "$src/CMakeLists.txt" ] || { echo "peer-llama-cpp: no vendor/llama.cpp in $sdist" >&2; exit 1; }
  fi
  # "## [0.3.36]" then "- feat: update llama.cpp to ggml-org/llama.cpp@0c1e57098".
  commit="$(awk -v v="## [$LLAMA_PY]" '$0 == v {on = 1; next} /^## \[/ {on = 0}
    on && match($0, /llama\.cpp@[0-9a-f]+/) {print substr($0, RSTART + 10, RLENGTH - 10); exit}' \
    "$peer/src/llama-cpp-python-$LLAMA_PY/CHANGELOG.md")"
  commit="${commit:-unknown}"
  source_desc="llama-cpp-python $LLAMA_PY sdist (PyPI), vendor/llama.cpp"
fi

need cmake cmake
cflags=""
# -mno-amx-*: only where the compiler knows them (one that does not cannot emit AMX).
if echo 'int main(void){return 0;}' | ${CC:-cc} -x c -mno-amx-tile -mno-amx-int8 -mno-amx-bf16 -o /dev/null - 2>/dev/null; then
  cflags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
fi
cmake_flags=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
  "-DCMAKE_C_FLAGS=$cflags" "-DCMAKE_CXX_FLAGS=$cflags"
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF
  -DBUILD_SHARED_LIBS=OFF)
flags="${cmake_flags[*]}"
compiler="$(${CC:-cc} --version | head -n 1)"

bench_bin="$peer/build/bin/llama-bench"
stamp="$peer/build/peer-build.txt"
want="$(printf '%s\n' "source $source_desc" "commit $commit" "flags $flags" "compiler $compiler")"
if [ ! -x "$bench_bin" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  rm -rf "$peer/build"
  echo "build   llama-bench, llama-quantize ($commit; $flags) in $peer/build"
  cmake -S "$src" -B "$peer/build" "${cmake_flags[@]}" >/dev/null
  cmake --build "$peer/build" --config Release --target llama-bench llama-quantize -j"$(nproc)"
  [ -x "$bench_bin" ] || { echo "peer-llama-cpp: build produced no $bench_bin" >&2; exit 1; }
  # The point of the flags: no AMX instruction in the binary.
  if command -v objdump >/dev/null 2>&1 &&
     objdump -d --no-show-raw-insn "$bench_bin" | grep -qE '\s(ldtilecfg|tileloadd|tdpb[a-z]*)\s'; then
    echo "peer-llama-cpp: $bench_bin still holds AMX instructions" >&2; exit 1
  fi
  printf '%s\n' "$want" > "$stamp"
fi
[ "$build_only" = 1 ] && { echo "llama-bench: $bench_bin (llama.cpp $commit)"; exit 0; }

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

# llama.cpp's figures, its commit and its build, for the record's "peer" field.
python3 - "$work/llama.json" "$prompt" "$gen" "$commit" "$source_desc" "$flags" "$compiler" > "$work/peer.json" <<'PY'
import json, sys
llama = json.load(open(sys.argv[1]))
prompt, gen = int(sys.argv[2]), int(sys.argv[3])
pp = next(r for r in llama if r["n_prompt"] == prompt and r["n_gen"] == 0)
tg = next(r for r in llama if r["n_prompt"] == 0 and r["n_gen"] == gen)
print(json.dumps({
    "engine": "llama.cpp",
    "commit": sys.argv[4],
    "source": sys.argv[5],
    "build_flags": sys.argv[6],
    "compiler": sys.argv[7],
    "cpu_info": pp.get("cpu_info", ""),
    "threads": pp.get("n_threads"),
    "prompt_tokens": prompt,
    "gen_tokens": gen,
    "runs": len(pp.get("samples_ts", [])),
    "statistic": "mean",
    "prefill_tokens_per_s": pp["avg_ts"],
    "prefill_stddev": pp["stddev_ts"],
    "decode_tokens_per_s": tg["avg_ts"],
    "decode_stddev": tg["stddev_ts"],
}, indent=2))
PY

echo "run     atenia-harness bench $(basename "$model") --threads $threads ${record[*]}" >&2
"$harness" bench "$model" --threads "$threads" --json --prompt-tokens "$prompt" --gen-tokens "$gen" \
  --runs "$runs" --no-depth --peer "$work/peer.json" ${record[@]+"${record[@]}"} \
  ${extra[@]+"${extra[@]}"} > "$work/atenia.json"

python3 - "$work/atenia.json" "$model" "$threads" <<'PY'
import json, os, sys
atenia = json.load(open(sys.argv[1]))
peer = atenia["peer"]
model, threads = sys.argv[2], sys.argv[3]
prompt, gen = peer["prompt_tokens"], peer["gen_tokens"]
print(f"model    {os.path.basename(model)}")
print(f"cpu      {atenia.get('cpu_model', '?')} ({threads} threads; atenia isa {atenia.get('isa', '?')})")
print(f"atenia   {atenia.get('commit', '?')}    llama.cpp {peer['commit']} ({peer['source']})")
print(f"llama.cpp build: {peer['build_flags']}")
print()
print(f"{'':<14}{'atenia tok/s':>14}{'llama.cpp tok/s':>17}{'atenia/llama':>14}")
rows = [
    (f"prefill {prompt}", atenia["prefill_tokens_per_s"], peer["prefill_tokens_per_s"]),
    (f"decode {gen}", atenia["decode_tokens_per_s"], peer["decode_tokens_per_s"]),
]
for name, a, l in rows:
    print(f"{name:<14}{a:>14.1f}{l:>17.1f}{a / l:>14.3f}")
print()
print(f"atenia: median of {atenia.get('runs', '?')} runs, ttft {atenia['ttft_ms']:.1f} ms; "
      f"llama.cpp: mean of {peer['runs'] or '?'} runs "
      f"(± {peer['prefill_stddev']:.1f} / {peer['decode_stddev']:.1f} tok/s)")
PY
