#!/usr/bin/env bash
# Run every `go test -fuzz` target in the module for N seconds each (default 60), then print
# a table of executions per target.
#
# -fuzzminimizetime=0s: by default `go test -fuzz` minimises every new interesting input for
# up to 60 s inside a worker, and executions made while minimising are not counted, so a
# target with large seeds (guest packages, migration streams, 2 KiB SEV certificates, 12 KiB
# chains) spent a short run almost entirely minimising: 11..27 executions in 10 s before this
# flag, 10^4..10^5 per second with it. New inputs are kept unminimised in the Go fuzz cache
# ($(go env GOCACHE)/fuzz); minimise a crasher by hand with -run and -fuzzminimizetime.
set -euo pipefail
secs=${1:-60}
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
logdir=$(mktemp -d /tmp/sevshim-fuzz-go.XXXXXX)
trap 'rm -rf "$logdir"' EXIT
rows=()
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $f (${secs}s)"
    log="$logdir/${pkg//\//_}.$f.log"
    rc=0
    go test -run '^$' -fuzz "^${f}\$" -fuzztime "${secs}s" -fuzzminimizetime=0s "$pkg" >"$log" 2>&1 || rc=$?
    grep -v '^fuzz: elapsed: ' "$log" || true
    # last progress line: "fuzz: elapsed: 10s, execs: 123456 (12345/sec), new interesting: ..."
    last=$(grep -o 'elapsed: [0-9]*s, execs: [0-9]*' "$log" | tail -1 || true)
    el=$(sed -n 's/^elapsed: \([0-9]*\)s.*/\1/p' <<<"$last")
    ex=$(sed -n 's/.*execs: \([0-9]*\)$/\1/p' <<<"$last")
    rate=?
    [ -n "$ex" ] && [ -n "$el" ] && [ "$el" -gt 0 ] && rate=$((ex / el))
    result=ok
    if [ "$rc" -ne 0 ]; then
      result="FAILED (exit $rc)"
      grep '^fuzz: elapsed: ' "$log" | tail -3
      status=1
    fi
    rows+=("$(printf '%-44s %-26s %12s %10s   %s' "${pkg#github.com/sevshim/sevshim/}" "$f" "${ex:-?}" "$rate" "$result")")
  done
done
printf '\n%-44s %-26s %12s %10s   %s\n' package target execs "execs/s" result
printf '%s\n' "${rows[@]}"
exit $status
