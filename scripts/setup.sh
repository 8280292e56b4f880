#!/usr/bin/env bash
# Installs what a fresh machine lacks (m4 for rug's GMP build) and fetches the
# real test models into the cache (scripts/fetch-models.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v m4 >/dev/null 2>&1; then
  echo "installing m4 (needed to build GMP for the MPFR references)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq m4 >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq m4 >/dev/null
  fi
fi
scripts/fetch-models.sh
