#!/usr/bin/env bash
# Bit-exactness at every memory budget, as issue 14 asks it of the 8B shape:
# the same model with no budget, with 50% and 25% of its file size, with
# 16 MiB, and with 16 MiB from a cold page cache. For each it prints the
# SHA-256 of the prompt's last-position logits (`atenia-harness bench`'s
# `logits_sha256`, one untimed prefill) and the greedy token ids of
# `atenia generate`; every row must match the first.
#
#   scripts/budget-bits.sh MODEL [TOKENS]     (TOKENS greedy tokens, default 4)
#   scripts/budget-bits.sh ~/.cache/atenia/models/real-shapes/llama-3.1-8b-shape.F16.gguf
#
# Builds nothing: runs target/release/{atenia,atenia-harness}. The cold row
# drops the page cache (root). Exits 1 when any row differs from the first.
set -euo pipefail
if [[ $# -lt 1 ]]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
model=$1
tokens=${2:-4}
cd "$(dirname "$0")/.."
size=$(stat -c %s "$model")
prompt="The capital of France is"
rows=("none" "$((size / 2))B" "$((size / 4))B" "16MiB" "16MiB cold")
first=""
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
printf '%-22s %-71s %s\n' budget logits_sha256 greedy_ids
for row in "${rows[@]}"; do
  budget=${row%% *}
  args=()
  [ "$budget" != none ] && args=(--memory-budget "$budget")
  if [[ "$row" == *cold ]]; then
    sync
    echo 3 > /proc/sys/vm/drop_caches
  fi
  start=$SECONDS
  bench=$(target/release/atenia-harness bench "$model" --prompt-tokens 5 --gen-tokens 1 --runs 1 \
    --no-depth -t 2 --no-history --json "${args[@]}" 2>"$log") || { cat "$log" >&2; exit 1; }
  digest=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["logits_sha256"])' "$bench")
  gen=$(target/release/atenia generate -m "$model" -p "$prompt" -n "$tokens" --temperature 0 -t 2 \
    -c 16 --json "${args[@]}" 2>"$log") || { cat "$log" >&2; exit 1; }
  ids=$(python3 -c 'import json,sys; print(",".join(map(str, json.loads(sys.argv[1])["token_ids"])))' "$gen")
  printf '%-22s %-71s %s  (%d s)\n' "$row" "$digest" "$ids" $((SECONDS - start))
  if [ -z "$first" ]; then
    first="$digest $ids"
  elif [ "$first" != "$digest $ids" ]; then
    echo "  differs from the first row" >&2
    status=1
  fi
done
exit "$status"
