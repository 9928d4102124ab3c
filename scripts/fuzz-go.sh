#!/usr/bin/env bash
# Run every `go test -fuzz` target in the module for N seconds each (default 60).
set -euo pipefail
secs=${1:-60}
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $f (${secs}s)"
    go test -run '^$' -fuzz "^${f}\$" -fuzztime "${secs}s" "$pkg"
  done
done
