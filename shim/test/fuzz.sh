#!/usr/bin/env bash
# Run the C libFuzzer targets for N seconds each and print executions per target.
# Usage: test/fuzz.sh BUILD_DIR SECONDS target:max_len:seed_dir ...
# libFuzzer writes new inputs into the first corpus dir: each target gets a scratch copy,
# the committed seeds stay as they are. Crashes land in BUILD_DIR/fuzz-artifacts/.
set -euo pipefail
build=$1 secs=$2
shift 2
mkdir -p "$build/fuzz-artifacts"
rows=()
status=0
for spec in "$@"; do
    IFS=: read -r name maxlen seeds <<<"$spec"
    corpus="$build/fuzz-corpus-$name" log="$build/fuzz-$name.log"
    rm -rf "$corpus"
    mkdir -p "$corpus"
    echo "== $name (${secs}s, seeds $seeds)"
    rc=0
    "$build/host/$name" -max_total_time="$secs" -max_len="$maxlen" -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-artifacts/" "$corpus" "$seeds" >"$log" 2>&1 || rc=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^==[0-9]+==ERROR|SUMMARY|^artifact_prefix|Test unit written' "$log" || true
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    result=ok
    if [ "$rc" -ne 0 ]; then
        result="FAILED (exit $rc, log $log)"
        tail -40 "$log"
        status=1
    fi
    rows+=("$(printf '%-14s %10s %10s   %s' "$name" "${execs:-?}" "${rate:-?}" "$result")")
done
printf '\n%-14s %10s %10s   %s\n' target execs "execs/s" result
printf '%s\n' "${rows[@]}"
exit $status
