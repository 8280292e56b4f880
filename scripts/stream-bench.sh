#!/usr/bin/env bash
# Decode from a cold cache inside a memory cgroup, as docs/streaming.md measures it: runs `generate`
# in scripts/small-machine.sh with --cold, then prints s/token, device bytes read per token against
# the bytes the plan streams (read amplification), decode's read bandwidth and the I/O hidden fraction.
#
#   scripts/stream-bench.sh MODEL LIMIT BUDGET [ATENIA_BINARY] [TOKENS]
#   scripts/stream-bench.sh ~/.cache/atenia/models/real-shapes/llama-3.2-1b-shape.F16.gguf 1G 512MiB
#
# Needs root (the cgroup; dropping the page cache). The disk itself: atenia-harness bench MODEL
# --memory-budget BUDGET --disk --no-depth --runs 1 (same read size and queue depth, O_DIRECT).
set -euo pipefail
if [[ $# -lt 3 ]]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
model=$1 limit=$2 budget=$3
bin=${4:-target/release/atenia}
tokens=${5:-8}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp --suffix=.json)
trap 'rm -f "$out"' EXIT
"$here/small-machine.sh" --cold "$limit" "$bin" generate -m "$model" -p "The capital of France is" \
  -n "$tokens" -t 2 -c 256 --memory-budget "$budget" --json-out "$out" >/dev/null
python3 - "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = d["memory"]
def f(k, scale=1.0, fmt="{:.3f}"):
    v = m.get(k)
    return "-" if v is None else fmt.format(v / scale)
print(f"decode              {1 / d['decode_tokens_per_s']:.2f} s/token ({d['generated_tokens']} tokens), ttft {d['ttft_ms'] / 1e3:.1f} s")
print(f"plan                {m['mapped_bytes'] / 2**20:.0f} MiB mapped, {m['streamed_bytes_per_pass'] / 1e9:.3f} GB streamed a pass")
print(f"reader              {json.dumps(m.get('stream_reader'))}")
print(f"device read/token   {f('device_read_bytes_per_token', 1e9)} GB (amplification {f('read_amplification')})")
print(f"read bandwidth      {f('read_bandwidth_bytes_per_s', 1e9)} GB/s during decode")
print(f"I/O                 wait {f('io_wait_ms', 1, '{:.0f}')} ms, busy {f('io_busy_ms', 1, '{:.0f}')} ms, hidden {f('io_hidden_fraction')}")
print(f"peak RSS            {m['peak_rss_bytes'] / 2**20:.1f} MiB (bound {(m.get('bound_bytes') or 0) / 2**20:.1f} MiB)")
print(f"tokens              {d['token_ids']}")
PY
