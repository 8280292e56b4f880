#!/usr/bin/env bash
# Real-shape benchmark models (issue 13): Llama-architecture GGUF files at the
# shapes people run, with seeded random weights and SmolLM2's tokenizer, made
# by the project so that speed can be measured at real sizes.
#
#   scripts/make-real-shapes.sh [SHAPE...] [--shapes LIST] [--types LIST] [--hf SHAPE|none]
#                               [--seed N] [--out DIR] [--reserve GIB]
#                               [--drop-f16] [--dry-run]
#
#   SHAPE          a shape to make, as in --shapes (both add to the list)
#   --shapes LIST  comma-separated, from (short names in brackets):
#                    llama-3.2-1b [1b]  hidden 2048, 16 layers, 32 heads, 8 KV heads,
#                                       FFN 8192, rope theta 500000, tied embeddings
#                    llama-3.1-8b [8b]  hidden 4096, 32 layers, 32 heads, 8 KV heads,
#                                       FFN 14336, rope theta 500000
#                    llama-2-13b [13b]  hidden 5120, 40 layers, 40 heads, 40 KV heads,
#                                       FFN 13824, rope theta 10000
#                  (default: 1b,8b)
#   --types LIST   comma-separated from f16,q4_k_m,q8_0,q4_0,q6_k (default: all)
#   --hf SHAPE     also convert SHAPE's F16 file to a Hugging Face bf16 directory
#                  with `atenia convert --dtype bf16` (default: 1b when --shapes has
#                  it, else none; none: skip)
#   --seed N       weight seed (default 0; another seed adds -seedN to the names)
#   --out DIR      where the files go (default: ~/.cache/atenia/models/real-shapes)
#   --reserve GIB  free space to leave on the disk (default 2)
#   --drop-f16     delete each F16 file once its other files are made
#   --dry-run      print what would be made, its sizes and the free space; make nothing
#
# The big F16 files alone (no quantized files, no HF directory), one at a time:
#   scripts/make-real-shapes.sh 8b --types f16     # 14.8 GB
#   scripts/make-real-shapes.sh 13b --types f16    # 26.4 GB, larger than a 24 GiB machine's RAM
#
# Files: DIR/<shape>-shape.F16.gguf, DIR/<shape>-shape.<TYPE>.gguf (TYPE as
# llama-quantize names it: Q4_K_M, Q8_0, Q4_0, Q6_K) and DIR/<shape>-shape.hf-bf16/.
# Nothing here is committed.
#
# How: scripts/real_shapes.py writes the F16 file tensor by tensor (memory
# stays at tens of MB, even for the 26 GB 13B file); its docstring documents
# the seeded generator (numpy PCG64, normal with std 0.02, norms 1.0).
# It uses the `gguf` package from PyPI (gguf-py, the GGUF library of the
# llama.cpp project, pinned to $GGUF_PY below) and numpy, installed with pip
# into a venv at $ATENIA_CACHE/shapes-venv (default ~/.cache/atenia). Every
# tokenizer.* key is copied from SmolLM2-135M-Instruct.Q4_1.gguf (vocab
# 49152; scripts/fetch-models.sh fetches it). The quantized files come from
# llama.cpp's own llama-quantize in the peer build ($ATENIA_PEER_DIR, default
# ~/.cache/atenia/peer; scripts/peer-llama-cpp.sh --build-only builds it when
# missing), and the HF directory from this checkout's release `atenia`
# (cargo build --release -p atenia-engine; $ATENIA_BIN names another).
#
# Idempotent: a file that exists with the right size is skipped (F16: the
# exact size; quantized files: a GGUF within 20% of the size its type
# predicts; HF: model.safetensors at 2 bytes a weight), and every file is
# written under a .part name and renamed when complete, so an interrupted run
# leaves nothing that a later run would take for done. Before making
# anything the script adds up what is missing and refuses, naming the sizes,
# when the disk lacks room for it plus --reserve; the disk is shared, so each
# file is checked again just before it is written (and real_shapes.py checks
# once more before it writes a byte).
#
# The models' text is noise: they are for timing (atenia-harness bench,
# scripts/peer-llama-cpp.sh MODEL), not for quality.
set -euo pipefail
cd "$(dirname "$0")/.."

GGUF_PY=0.19.0
cache="${ATENIA_CACHE:-$HOME/.cache/atenia}"
models="${ATENIA_MODEL_DIR:-$cache/models}"
peer="${ATENIA_PEER_DIR:-$cache/peer}"
out="$models/real-shapes"
tokenizer="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
shapes=""  # 1b,8b when no shape is named
types="f16,q4_k_m,q8_0,q4_0,q6_k"
hf=""  # 1b when --shapes has it
seed=0
reserve=2
drop_f16=0
dry_run=0

die() { echo "make-real-shapes: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --shapes) shapes="$2"; shift 2 ;;
    --shapes=*) shapes="${1#*=}"; shift ;;
    --types) types="$2"; shift 2 ;;
    --types=*) types="${1#*=}"; shift ;;
    --hf) hf="$2"; shift 2 ;;
    --hf=*) hf="${1#*=}"; shift ;;
    --seed) seed="$2"; shift 2 ;;
    --seed=*) seed="${1#*=}"; shift ;;
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    --reserve) reserve="$2"; shift 2 ;;
    --reserve=*) reserve="${1#*=}"; shift ;;
    --drop-f16) drop_f16=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,61p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown argument $1 (see --help)" ;;
    *) shapes="${shapes:+$shapes,}$1"; shift ;;
  esac
done
[ -n "$shapes" ] || shapes="1b,8b"
[[ "$seed" =~ ^[0-9]+$ ]] || die "--seed takes a non-negative integer, not '$seed'"
[[ "$reserve" =~ ^[0-9]+$ ]] || die "--reserve takes whole GiB, not '$reserve'"

long_name() {  # 1b -> llama-3.2-1b
  case "$1" in
    1b|llama-3.2-1b) echo llama-3.2-1b ;;
    8b|llama-3.1-8b) echo llama-3.1-8b ;;
    13b|llama-2-13b) echo llama-2-13b ;;
    *) return 1 ;;
  esac
}
quant_name() {  # q4_k_m -> Q4_K_M (llama-quantize's name); bits per weight, estimated
  case "$1" in
    f16) echo "F16 16" ;;
    q4_k_m) echo "Q4_K_M 4.9" ;;
    q8_0) echo "Q8_0 8.5" ;;
    q4_0) echo "Q4_0 4.5" ;;
    q6_k) echo "Q6_K 6.5625" ;;
    *) return 1 ;;
  esac
}
shape_list=()
for s in ${shapes//,/ }; do
  shape_list+=("$(long_name "$s")") || die "unknown shape '$s' (1b, 8b, 13b or the long names; see --help)"
done
[ ${#shape_list[@]} -gt 0 ] || die "--shapes is empty"
type_list=()
for t in ${types//,/ }; do
  t="${t,,}"
  quant_name "$t" >/dev/null || die "unknown type '$t' (f16, q4_k_m, q8_0, q4_0, q6_k)"
  type_list+=("$t")
done
[ ${#type_list[@]} -gt 0 ] || die "--types is empty"
hf_shape=""
if [ -z "$hf" ]; then
  [[ " ${shape_list[*]} " == *" llama-3.2-1b "* ]] && hf_shape=llama-3.2-1b
elif [ "$hf" != none ]; then
  hf_shape="$(long_name "$hf")" || die "unknown --hf shape '$hf' (1b, 8b, 13b or none)"
  [[ " ${shape_list[*]} " == *" $hf_shape "* ]] ||
    die "--hf $hf names a shape that --shapes does not make ($shapes); add it there or say --hf none"
fi
[ -f "$tokenizer" ] || die "the tokenizer source $tokenizer is missing (scripts/fetch-models.sh fetches it)"
suffix=""
[ "$seed" = 0 ] || suffix="-seed$seed"

# ------------------------------------------------------------ python env
venv="$cache/shapes-venv"
py="$venv/bin/python"
if ! "$py" -c "import importlib.metadata as m, numpy; assert m.version('gguf') == '$GGUF_PY'" 2>/dev/null; then
  echo "setup   venv $venv (pip: gguf==$GGUF_PY, numpy)"
  mkdir -p "$cache"
  python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$py" -m pip install --quiet --disable-pip-version-check "gguf==$GGUF_PY" numpy
fi
helper=(
  "$py" scripts/real_shapes.py
)

# ------------------------------------------------------------------ plan
gb() { awk -v b="$1" 'BEGIN { printf "%.2f GB", b / 1e9 }'; }
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
is_gguf() { [ "$(head -c 4 "$1" 2>/dev/null)" = GGUF ]; }

# The plan: one line per file, "KIND SHAPE TYPE PATH BYTES STATE", each
# shape's F16 file (when needed) before the files made from it.
plan=()
need=0
for shape in "${shape_list[@]}"; do
  rest=()
  params="$("${helper[@]}" params "$shape")"
  f16="$out/$shape-shape$suffix.F16.gguf"
  f16_bytes="$("${helper[@]}" size "$shape" --tokenizer "$tokenizer" --seed "$seed")"
  f16_ok=0
  [ "$(size_of "$f16")" = "$f16_bytes" ] && f16_ok=1
  f16_needed=0
  for t in "${type_list[@]}"; do
    read -r q bpw < <(quant_name "$t")
    # With --drop-f16 the F16 file is only a step: asked for, it is not kept.
    [ "$t" = f16 ] && { [ "$drop_f16" = 1 ] || f16_needed=1; continue; }
    file="$out/$shape-shape$suffix.$q.gguf"
    bytes="$(awk -v p="$params" -v b="$bpw" 'BEGIN { printf "%.0f", p * b / 8 }')"
    have="$(size_of "$file")"
    if is_gguf "$file" && awk -v h="$have" -v b="$bytes" 'BEGIN { exit !(h > 0.8 * b && h < 1.2 * b) }'; then
      rest+=("quant $shape $q $file $have done")
    else
      rest+=("quant $shape $q $file $bytes make"); need=$((need + bytes)); f16_needed=1
    fi
  done
  if [ "$shape" = "$hf_shape" ]; then
    dir="$out/$shape-shape$suffix.hf-bf16"
    bytes=$((params * 2))
    have="$(size_of "$dir/model.safetensors")"
    if [ -f "$dir/config.json" ] && [ "$have" -gt "$bytes" ] && [ "$have" -lt $((bytes + 100000000)) ]; then
      rest+=("hf $shape bf16 $dir $have done")
    else
      rest+=("hf $shape bf16 $dir $bytes make"); need=$((need + bytes)); f16_needed=1
    fi
  fi
  if [ "$f16_ok" = 1 ]; then
    plan+=("f16 $shape F16 $f16 $f16_bytes done")
  elif [ "$f16_needed" = 1 ]; then
    plan+=("f16 $shape F16 $f16 $f16_bytes make"); need=$((need + f16_bytes))
  fi
  plan+=(${rest[@]+"${rest[@]}"})
done

disk="$out"  # the nearest folder that exists: a dry run creates nothing
while [ ! -d "$disk" ]; do disk="$(dirname "$disk")"; done
avail=$(( $(df -Pk "$disk" | awk 'NR == 2 { print $4 }') * 1024 ))
keep=$((reserve * 1024 * 1024 * 1024))
echo "plan    $out (seed $seed; quantized sizes are estimates)"
for line in "${plan[@]}"; do
  read -r kind shape q path bytes state <<<"$line"
  printf '        %-5s %-44s %10s\n' "$state" "$(basename "$path")" "$(gb "$bytes")"
done
echo "disk    to write $(gb "$need"); free $(gb "$avail"), keeping $(gb "$keep") (--reserve $reserve GiB)"
if [ $((need + keep)) -gt "$avail" ]; then
  if [ "$dry_run" = 1 ]; then
    echo "dry run: nothing made; a real run would refuse: not enough disk ($(gb "$need") needed, $(gb $((avail - keep))) usable)"
    exit 0
  fi
  echo "make-real-shapes: not enough disk: these files need $(gb "$need") and only $(gb $((avail - keep))) can be used" >&2
  echo "  on the disk of $out ($(gb "$avail") free, --reserve $reserve GiB kept);" >&2
  echo "  free space, pick fewer --shapes/--types, or use --out on a larger disk" >&2
  exit 3
fi
[ "$dry_run" = 1 ] && { echo "dry run: nothing made"; exit 0; }
mkdir -p "$out"

# ------------------------------------------------------------------ make
quantize="$peer/build/bin/llama-quantize"
atenia="${ATENIA_BIN:-target/release/atenia}"
for line in "${plan[@]}"; do
  read -r kind shape q path bytes state <<<"$line"
  name="$(basename "$path")"
  f16="$out/$shape-shape$suffix.F16.gguf"
  if [ "$state" = done ]; then
    echo "skip    $name (exists, $(gb "$bytes"))"
    continue
  fi
  # The disk is shared: what the plan counted may be gone by now.
  free_now=$(( $(df -Pk "$out" | awk 'NR == 2 { print $4 }') * 1024 ))
  if [ $((bytes + keep)) -gt "$free_now" ]; then
    echo "make-real-shapes: not enough disk for $name now: it needs $(gb "$bytes") and only" >&2
    echo "  $(gb $((free_now - keep))) can be used ($(gb "$free_now") free, --reserve $reserve GiB kept); nothing written" >&2
    exit 3
  fi
  start=$SECONDS
  case "$kind" in
    f16)
      echo "write   $name ($(gb "$bytes"), seed $seed)"
      rm -f "$path.part"
      "${helper[@]}" write "$shape" "$path.part" --tokenizer "$tokenizer" --seed "$seed" \
        --reserve "$keep"
      [ "$(size_of "$path.part")" = "$bytes" ] ||
        { echo "make-real-shapes: $path.part is $(size_of "$path.part") bytes, expected $bytes" >&2; exit 1; }
      mv "$path.part" "$path" ;;
    quant)
      if [ ! -x "$quantize" ]; then
        echo "build   llama-quantize (scripts/peer-llama-cpp.sh --build-only)"
        scripts/peer-llama-cpp.sh --build-only
      fi
      echo "quant   $name (llama-quantize $q, about $(gb "$bytes"))"
      rm -f "$path.part"
      "$quantize" "$f16" "$path.part" "$q" "$(nproc)" > "$path.log" 2>&1 ||
        { tail -n 20 "$path.log" >&2; echo "make-real-shapes: llama-quantize failed (log: $path.log)" >&2; exit 1; }
      grep -E "model size|quant size" "$path.log" | sed 's/^/        /' || true
      rm -f "$path.log"
      mv "$path.part" "$path" ;;
    hf)
      if [ -z "${ATENIA_BIN:-}" ] && [ ! -x "$atenia" ]; then
        echo "build   atenia (cargo build --release -p atenia-engine)"
        cargo build --release --quiet -p atenia-engine
      fi
      echo "convert $name (atenia convert --dtype bf16, about $(gb "$bytes"))"
      rm -rf "$path.part"
      "$atenia" convert "$f16" --out "$path.part" --dtype bf16
      rm -rf "$path"
      mv "$path.part" "$path" ;;
  esac
  echo "        done in $((SECONDS - start)) s"
done

if [ "$drop_f16" = 1 ]; then
  for shape in "${shape_list[@]}"; do
    f16="$out/$shape-shape$suffix.F16.gguf"
    if [ -f "$f16" ]; then echo "drop    $(basename "$f16") (--drop-f16)"; rm -f "$f16"; fi
  done
fi
echo "ready   $out"
ls -l "$out" | sed '1d; s/^/        /'
