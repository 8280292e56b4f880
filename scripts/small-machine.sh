#!/usr/bin/env bash
# Runs a command as if on a machine with less memory: inside a new memory
# cgroup whose limit counts everything the process touches, page cache
# included (so a model bigger than the limit cannot hide in the page cache).
#
#   scripts/small-machine.sh 6GiB target/release/atenia generate -m MODEL --memory-budget 4GiB ...
#   scripts/small-machine.sh --cold 6GiB ...   # drop the page cache first (a cold start)
#
# Needs root. Works with cgroup v2 (memory.max in the unified hierarchy) and
# with the v1 memory controller (memory.limit_in_bytes; memsw too where swap
# accounting is on). The cgroup is a child of the caller's own, is named
# atenia-small-PID, and is removed when the command ends. The engine reads the
# limit itself (`--memory-budget` above what the cgroup allows is lowered,
# with a warning), as it does on a machine whose container is limited.
set -euo pipefail

cold=0
if [[ "${1:-}" == "--cold" ]]; then
  cold=1
  shift
fi
if [[ $# -lt 2 ]]; then
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
size=$1
shift

bytes=$(python3 - "$size" <<'PY'
import re, sys
m = re.fullmatch(r"([0-9.]+)\s*([KMGT]i?B?|B)?", sys.argv[1].strip(), re.I)
if not m:
    sys.exit(f"error: size {sys.argv[1]!r}: use a number with a unit, e.g. 512MiB or 6GiB")
n = float(m.group(1))
unit = (m.group(2) or "B").upper().rstrip("B").rstrip("I")
print(int(n * 1024 ** " KMGT".index(unit or " ")))
PY
)

if [[ $EUID -ne 0 ]]; then
  echo "error: creating a cgroup needs root" >&2
  echo "help: run this script with sudo, or as root" >&2
  exit 1
fi

name="atenia-small-$$"
make_cgroup() {
  if ! mkdir "$1" 2>/dev/null; then
    echo "error: cannot create a cgroup at $1 (the cgroup file system is read-only or delegated elsewhere)" >&2
    echo "help: run on a machine or container where root may create memory cgroups" >&2
    exit 1
  fi
}
if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
  rel=$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)
  parent="/sys/fs/cgroup${rel%/}"
  dir="$parent/$name"
  make_cgroup "$dir"
  echo "$bytes" > "$dir/memory.max"
  [[ -f "$dir/memory.swap.max" ]] && echo 0 > "$dir/memory.swap.max"
  version=2
else
  rel=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
  parent="/sys/fs/cgroup/memory${rel%/}"
  [[ -d "$parent" ]] || parent=/sys/fs/cgroup/memory
  dir="$parent/$name"
  make_cgroup "$dir"
  echo "$bytes" > "$dir/memory.limit_in_bytes"
  [[ -f "$dir/memory.memsw.limit_in_bytes" ]] && echo "$bytes" > "$dir/memory.memsw.limit_in_bytes"
  version=1
fi
cleanup() { rmdir "$dir" 2>/dev/null || true; }
trap cleanup EXIT

if [[ $cold -eq 1 ]]; then
  sync
  echo 1 > /proc/sys/vm/drop_caches
fi
echo "small machine: cgroup v$version $dir, limit $bytes bytes$([[ $cold -eq 1 ]] && echo ', cold page cache')" >&2
status=0
sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$dir" "$@" || status=$?
exit $status
