#!/usr/bin/env bash
# Runs every Go fuzz target of the main module for a bounded time each ($1, default 30s).
set -euo pipefail
time=${1:-30s}
cd "$(dirname "$0")/.."
n=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $target for $time"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" "$pkg"
    n=$((n + 1))
  done
done
if [ "$n" -eq 0 ]; then echo "fuzz: no fuzz targets found" >&2; exit 1; fi
echo "fuzz: $n targets passed"
