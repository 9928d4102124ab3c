#!/usr/bin/env bash
# Rebuild the committed seed corpus test/corpus for fuzz_verify (format: see fuzz_verify.c):
# valid policy + manifest pairs (mkvectors test keys, and testdata/golden when present).
set -euo pipefail
cd "$(dirname "$0")"
out=corpus; rm -rf "$out"; mkdir -p "$out"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd mkvectors && ${GO:-/usr/local/go/bin/go} build -o "$tmp/mkv" .)
"$tmp/mkv" policy -out "$tmp/p1.bin"
"$tmp/mkv" policy -out "$tmp/p2.bin" -signers 2 -floor 3 -deny-version 9
seed() { # flags policy manifest name
    python3 - "$1" "$2" "$3" "$out/$4" <<'PY'
import sys
flags, pol, man, out = int(sys.argv[1]), open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read(), sys.argv[4]
open(out, "wb").write(bytes([flags]) + len(pol).to_bytes(2, "little") + pol + man)
PY
}
seed 3 "$tmp/p1.bin" vectors/good.man good
seed 23 "$tmp/p2.bin" vectors/key2.man key2-vars
seed 3 "$tmp/p1.bin" vectors/layout2.man layout2
seed 11 "$tmp/p2.bin" vectors/imgsize.man imgsize
G=../../testdata/golden
if [ -d "$G/policy" ]; then
    for p in one-signer three-signers max; do
        for m in a-v5-zero b-v3-pattern version-string-after-nul reserved-last; do
            [ -f "$G/policy/$p.bin" ] && [ -f "$G/manifest/$m.bin" ] && seed 3 "$G/policy/$p.bin" "$G/manifest/$m.bin" "golden-$p-$m"
        done
    done
fi
ls "$out" | wc -l
