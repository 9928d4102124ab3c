#!/usr/bin/env bash
# Rebuild the committed seed corpus test/corpus for fuzz_verify (format: see fuzz_verify.c):
# valid policy + manifest pairs, all from testdata/golden (tests/golden's generator; refresh it
# with `go run ./tests/golden/mkgolden` first).
set -euo pipefail
cd "$(dirname "$0")"
out=corpus; rm -rf "$out"; mkdir -p "$out"
G=../../testdata/golden
V=$G/vectors
seed() { # flags policy manifest name
    python3 - "$1" "$2" "$3" "$out/$4" <<'PY'
import sys
flags, pol, man, out = int(sys.argv[1]), open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read(), sys.argv[4]
open(out, "wb").write(bytes([flags]) + len(pol).to_bytes(2, "little") + pol + man)
PY
}
seed 3 "$V/key1.policy" "$V/good.man" good
seed 23 "$V/key12.policy" "$V/key2.man" key2-vars
seed 3 "$V/key1.policy" "$V/layout2.man" layout2
seed 11 "$V/key12.policy" "$V/imgsize.man" imgsize
for p in one-signer three-signers max; do
    for m in a-v5-zero b-v3-pattern version-string-after-nul reserved-last; do
        seed 3 "$G/policy/$p.bin" "$G/manifest/$m.bin" "golden-$p-$m"
    done
done
ls "$out" | wc -l
