#!/usr/bin/env bash
# Boot the sevshim firmware in real QEMU (TCG) and prove the whole chain by hand:
#   A: shim boots from the reset vector to SEVSHIM READY; stop; migrate to a state file; quit.
#   B: a fresh QEMU resumes that state with the fw_cfg bundle, cont, inject-nmi:
#      1. Debian's OVMF_CODE_4M.fd signed with test key 1 -> SEVSHIM HANDOFF, then OVMF boots
#         (BdsDxe / UEFI Interactive Shell on COM1);
#      2. the same BIOS with one bit flipped -> SEVSHIM ERROR E033 digest-mismatch, SEVSHIM HALT;
#      3. no bundle -> E020; 4. pflash0 readonly=on -> E053 (the first write into the erased padding fails);
#      each refusal: the error line exactly once, no FLASHED/HANDOFF (and no VERIFIED before a
#      verification refusal, VERIFIED first for E053), HALT last, and only SEVSHIM lines on COM1
#      (OVMF printed nothing), checked after a 3 s grace;
#      5. fw_cfg without DMA -> the PIO fallback still reaches SEVSHIM HANDOFF.
# The policy and manifest are made with test/mkvectors (fixed TEST keys). Every wait is bounded,
# every QEMU is killed by pid on exit. Usage: test/smoke.sh [BUILD_DIR]  (default ../build/shim)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$HERE/../../build/shim}" && pwd)
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
QEMU=${QEMU:-qemu-system-x86_64}
GO=${GO:-/usr/local/go/bin/go}
T_READY=${T_READY:-60}      # generous: the host is shared
T_BOOT=${T_BOOT:-120}
WORK=$(mktemp -d /tmp/sevshim-smoke.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "smoke: logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() { echo "smoke: FAIL: $*" >&2; for f in "$WORK"/*.dbg "$WORK"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -c 2000 "$f"; }; done >&2; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$(now)"; }

(cd "$HERE/mkvectors" && "$GO" build -o "$WORK/mkvectors" .)
MK="$WORK/mkvectors"
"$MK" policy -out "$WORK/policy.bin" -floor 1
"$MK" embed -image "$BUILD/shim.fd" -policy "$WORK/policy.bin" -out "$WORK/shim.fd"
"$MK" sign -bios "$OVMF_CODE" -version 7 -name "Debian OVMF_CODE_4M" -out "$WORK/ovmf.man"
cp "$OVMF_CODE" "$WORK/bios-flipped.fd"
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(0x200000); b = f.read(1)[0]
f.seek(0x200000); f.write(bytes([b ^ 1]))' "$WORK/bios-flipped.fd"   # flip one bit mid-image
cmp -s "$OVMF_CODE" "$WORK/bios-flipped.fd" && fail "bit flip did not change the BIOS copy"
"$BUILD/host/sevshim-verify" "$WORK/shim.fd" "$WORK/ovmf.man" "$OVMF_CODE" "$OVMF_VARS" >/dev/null ||
    fail "host verifier rejects the good bundle"
[ "$("$BUILD/host/sevshim-verify" "$WORK/shim.fd" "$WORK/ovmf.man" "$WORK/bios-flipped.fd" || true)" = "E033 digest-mismatch" ] ||
    fail "host verifier does not say E033 for the flipped BIOS"

common() { # $1 = tag
    echo -machine q35 -accel tcg -m 512 -nodefaults -display none -monitor none \
        -drive if=pflash,format=raw,unit=0,file="$WORK/shim.fd",readonly=off,snapshot=on \
        -drive if=pflash,format=raw,unit=1,file="$WORK/vars-$1.fd" \
        -serial file:"$WORK/$1.log" \
        -chardev file,id=dbg,path="$WORK/$1.dbg" -device isa-debugcon,iobase=0x402,chardev=dbg \
        -qmp unix:"$WORK/$1.sock",server=on,wait=off
}

# ---- A: boot to READY and save the state ---------------------------------------------------
cp "$OVMF_VARS" "$WORK/vars-a.fd"
t0=$(now)
# shellcheck disable=SC2046
timeout $((T_READY + 30)) $QEMU $(common a) & PIDS+=($!)
python3 "$HERE/qmp.py" wait-line "$WORK/a.dbg" "SEVSHIM READY" "$T_READY" >/dev/null || fail "A: no SEVSHIM READY"
echo "smoke: A: SEVSHIM READY $(since "$t0")s after QEMU start"
grep -q "SEVSHIM ERROR" "$WORK/a.dbg" && fail "A: error before READY"
python3 "$HERE/qmp.py" save "$WORK/a.sock" "$WORK/state.bin" 60 | sed 's/^/smoke: A: /'
wait "${PIDS[0]}" 2>/dev/null || true

run_b() { # $1 = tag, $2 = bios file ("" = no bundle at all), $3 = pflash0 options, rest = extra QEMU args
    local tag=$1 bios=$2 p0opts=$3 t0
    shift 3
    cp "$OVMF_VARS" "$WORK/vars-$tag.fd"
    cp "$OVMF_VARS" "$WORK/vm-vars-$tag.fd"   # the VM's var store, restored through fw_cfg
    local bundle=()
    [ -n "$bios" ] && bundle=(-fw_cfg name=opt/org.sevshim/manifest,file="$WORK/ovmf.man"
        -fw_cfg name=opt/org.sevshim/bios,file="$bios"
        -fw_cfg name=opt/org.sevshim/vars,file="$WORK/vm-vars-$tag.fd")
    t0=$(now)
    # shellcheck disable=SC2046
    timeout $((T_BOOT + 30)) $QEMU $(common "$tag" | sed "s/readonly=off,snapshot=on/$p0opts/") \
        "${bundle[@]}" "$@" -incoming "exec:cat $WORK/state.bin" & PIDS+=($!)
    BPID=$!
    python3 "$HERE/qmp.py" resume "$WORK/$tag.sock" "$WORK/$tag.dbg" 60 | sed "s/^/smoke: B-$tag: /"
    echo "smoke: B-$tag: resume sequence done $(since "$t0")s after QEMU start"
}
expect_refusal() { # $1 = tag, $2 = exact error line, $3 = pre (refused by verification) | post (after VERIFIED)
    local tag=$1 line=$2 when=$3 dbg="$WORK/$1.dbg" ser="$WORK/$1.log"
    python3 "$HERE/qmp.py" wait-line "$dbg" "SEVSHIM HALT" 60 >/dev/null || fail "B-$tag: no SEVSHIM HALT"
    sleep 3   # give a (wrong) flash or hand-off time to show on the consoles
    grep -a "SEVSHIM" "$dbg" | sed "s/^/smoke: B-$tag: dbg: /"
    [ "$(tr -d '\r' <"$dbg" | grep -acx "$line")" = 1 ] || fail "B-$tag: not exactly one '$line' line"
    tr -d '\r' <"$dbg" | grep -aq '^SEVSHIM \(FLASHED\|HANDOFF\)' && fail "B-$tag: FLASHED or HANDOFF in a refused run"
    case $when in
    pre) tr -d '\r' <"$dbg" | grep -aq '^SEVSHIM VERIFIED' && fail "B-$tag: VERIFIED in a run refused by verification" ;;
    post) tr -d '\r' <"$dbg" | grep -a -m1 -B1000 -x "$line" | grep -aq '^SEVSHIM VERIFIED' ||
            fail "B-$tag: no VERIFIED line before '$line'" ;;
    *) fail "expect_refusal: bad kind '$when'" ;;
    esac
    [ "$(tr -d '\r' <"$dbg" | grep -a . | tail -1)" = "SEVSHIM HALT" ] || fail "B-$tag: debugcon continues after SEVSHIM HALT"
    # COM1: the shim's lines only (OVMF printed nothing), the error line among them
    tr -d '\r' <"$ser" | grep -av '^SEVSHIM ' | grep -aq '[^[:space:]]' && fail "B-$tag: non-shim output on COM1 (OVMF ran?)"
    tr -d '\r' <"$ser" | grep -aqx "$line" || fail "B-$tag: COM1 lacks '$line'"
    python3 "$HERE/qmp.py" quit "$WORK/$tag.sock"
    wait "$BPID" 2>/dev/null || true
}
P0=readonly=off,snapshot=on

# ---- B1: good bundle -> hand-off -> OVMF -----------------------------------------------------
run_b good "$OVMF_CODE" "$P0"
grep -q "SEVSHIM HANDOFF" "$WORK/good.dbg" || fail "B-good: no SEVSHIM HANDOFF"
grep -a "SEVSHIM" "$WORK/good.dbg" | sed 's/^/smoke: B-good: dbg: /'
t=$(python3 - "$WORK/good.log" "$T_BOOT" <<'EOF'
import sys, time
t0 = time.monotonic()
while time.monotonic() - t0 < float(sys.argv[2]):
    d = open(sys.argv[1], "rb").read()
    if b"BdsDxe" in d or b"UEFI Interactive Shell" in d:
        print(f"{time.monotonic() - t0:.3f}"); sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
EOF
) || fail "B-good: OVMF did not reach BdsDxe / UEFI Interactive Shell"
echo "smoke: B-good: OVMF BdsDxe/Shell on COM1 ${t}s after SEVSHIM HANDOFF was seen"
grep -a -m1 -o "BdsDxe[^\r]*" "$WORK/good.log" | sed 's/^/smoke: B-good: serial: /' || true
python3 "$HERE/qmp.py" quit "$WORK/good.sock"
wait "$BPID" 2>/dev/null || true

# ---- B2: one flipped bit -> E033, halt, no OVMF ---------------------------------------------
run_b flip "$WORK/bios-flipped.fd" "$P0"
expect_refusal flip "SEVSHIM ERROR E033 digest-mismatch" pre

# ---- B3: no bundle at all -> E020 -------------------------------------------------------------
run_b none "" "$P0"
expect_refusal none "SEVSHIM ERROR E020 manifest-missing" pre

# ---- B4: read-only pflash0 -> the first buffered write fails -> E053 ----------------------
run_b ro "$OVMF_CODE" "readonly=on"
expect_refusal ro "SEVSHIM ERROR E053 flash-program" post

# ---- B5: fw_cfg without DMA -> PIO fallback, still hands off ---------------------------------
run_b pio "$OVMF_CODE" "$P0" -global fw_cfg_io.dma_enabled=off
python3 "$HERE/qmp.py" wait-line "$WORK/pio.dbg" "SEVSHIM HANDOFF" 60 >/dev/null || fail "B-pio: no SEVSHIM HANDOFF"
python3 "$HERE/qmp.py" quit "$WORK/pio.sock"
wait "$BPID" 2>/dev/null || true

echo "smoke: PASS"
