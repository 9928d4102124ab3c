#!/usr/bin/env bash
# The sevshim story end to end, on defaults, with the real command-line tools only:
#   builder (owner and provider), verifier (owner), hostctl (owner's private host, provider).
# `make demo` runs it after `make setup shim images`. Everything lands in build/demo/.
#
# Limits said plainly: both PSPs are the software emulator (hostctl's "emu" backend) chained to
# a TEST root made on this machine, not AMD's; QEMU runs with TCG, so guest memory is not
# really encrypted. The protocol messages, keys, MACs and the shim's checks are all real.
#
# Environment: DEMO_DIR (default build/demo), DEMO_STEP_TIMEOUT (outer bound per hostctl call in
# seconds, default 600; hostctl bounds each of its own waits: READY 90 s, the shim's verdict
# 120 s, OVMF's shell 240 s). QEMU and swtpm processes are stopped on exit, also on failure or
# Ctrl-C (hostctl stop ends both of a work directory).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="/usr/local/go/bin:$PATH"
BIN=$ROOT/build/bin
IMG=$ROOT/build/images
D=${DEMO_DIR:-$ROOT/build/demo}
STEP_TIMEOUT=${DEMO_STEP_TIMEOUT:-600}
OVMF=/usr/share/OVMF/OVMF_CODE_4M.fd

# ---- presentation ----
step=0
heading() { step=$((step + 1)); printf '\n== %d. %s\n' "$step" "$*"; }
say() { printf '   %s\n' "$*"; }
# show: print the command (paths shortened) and run it
show() {
	local line="$*"
	line=${line//$D\//}
	line=${line//$BIN\//}
	line=${line//$IMG\//build\/images\/}
	printf '   $ %s\n' "$line"
	"$@" 2>&1 | sed 's/^/     /'
	return "${PIPESTATUS[0]}"
}
fail() { printf '\nDEMO FAILED: %s\n' "$*" >&2; exit 1; }
# new_nonce prints 32 random bytes in hex (a receipt or quote nonce).
new_nonce() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
# show_exit N WHAT CMD...: show CMD, which must exit N; else fail with WHAT.
show_exit() {
	local want=$1 what=$2 rc=0
	shift 2
	show "$@" || rc=$?
	[ "$rc" -eq "$want" ] || fail "$what (exit $rc)"
}

# ---- bounded hostctl calls and cleanup ----
WORKS=()
LV_PIDS=() # libvirt daemons this demo started (there is no systemd here)
cleanup() {
	local rc=$?
	for w in "${WORKS[@]}"; do
		[ -d "$w" ] && timeout 30 "$BIN/hostctl" stop --work "$w" >/dev/null 2>&1 || true
	done
	stop_libvirt
	exit "$rc"
}
# pid_of_file FILE PROG: the pid in FILE if that process runs PROG, else nothing
pid_of_file() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 0
	[ -n "$pid" ] && grep -qa "$2" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
	return 0
}
# start_libvirt: virtlogd -d and libvirtd -d unless they run; wait (bounded) for libvirtd's socket
start_libvirt() {
	local d pidfile pid i
	for d in virtlogd libvirtd; do
		pidfile=/run/$d.pid
		[ -n "$(pid_of_file "$pidfile" "$d")" ] && continue
		command -v "$d" >/dev/null || fail "$d not found: run scripts/setup.sh (libvirt-daemon-system)"
		"$d" -d || fail "$d -d failed"
		for i in $(seq 300); do pid=$(pid_of_file "$pidfile" "$d"); [ -n "$pid" ] && break; sleep 0.1; done
		[ -n "$pid" ] || fail "$d wrote no $pidfile"
		LV_PIDS+=("$pid")
	done
	for i in $(seq 600); do [ -S /run/libvirt/libvirt-sock ] && return 0; sleep 0.1; done
	fail "libvirtd does not listen on /run/libvirt/libvirt-sock"
}
# stop_libvirt: SIGTERM to the daemons start_libvirt started (libvirtd first), by pid, bounded
stop_libvirt() {
	local i n pid
	for ((n = ${#LV_PIDS[@]} - 1; n >= 0; n--)); do
		pid=${LV_PIDS[$n]}
		kill "$pid" 2>/dev/null || continue
		for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	done
	LV_PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM
hostctl() { timeout --kill-after=10 "$STEP_TIMEOUT" "$BIN/hostctl" "$@"; }
work() { WORKS+=("$1"); }

# ---- 0: tools and inputs ----
GUEST=build/guest
for f in "$IMG/v5.bundle" "$IMG/v6.bundle" "$IMG/demo-provider.key" "$IMG/demo-policy.yaml" build/shim/shim.fd \
	"$GUEST/vmlinuz" "$GUEST/initramfs.cpio"; do
	[ -e "$f" ] || fail "$f is missing: run 'make shim images' first (make demo does)"
done
mkdir -p "$BIN"
go build -o "$BIN/" ./builder ./verifier ./hostctl || fail "building the tools failed"
rm -rf "$D"
mkdir -p "$D"
# One emulated "AMD" signs both platforms' CEKs, as AMD does for real chips.
export SEVSHIM_EMU_ROOT="$D/emulator-test-root"
T0=$(date +%s)

echo "sevshim demo: an owner measures a tiny shim once; the provider later boots it into"
echo "whatever signed BIOS it ships, and the owner's measurement never changes."
echo "Work directory: $D"

heading "Two platforms: the provider's host and the owner's private launch host"
say "Each gets an emulated AMD Secure Processor with its own identity (CEK, PEK, PDH)."
show hostctl platform init --state "$D/provider-psp"
show hostctl platform init --state "$D/owner-psp"
show hostctl platform export --state "$D/provider-psp" --out "$D/provider.chain"
show hostctl platform export --state "$D/owner-psp" --out "$D/owner.chain"

heading "The owner checks the provider's certificate chain"
say "These PSPs are emulated, so their chain ends in the emulator's TEST root, not AMD's:"
say "the verifier accepts it only because we name that root explicitly with --root."
show "$BIN/verifier" platform --chain "$D/provider.chain" --root "$SEVSHIM_EMU_ROOT" ||
	fail "the provider chain does not verify"

heading "The provider signs two BIOS releases (made by 'make images')"
for v in v5 v6; do
	"$BIN/builder" inspect "$IMG/$v.bundle" | grep -E '^  (bios version|version string|signer key id):' | sed "s/^ /   $v:/"
done

heading "The owner builds the shim: policy = trust the provider's key, versions >= 5, var store = the OVMF template only"
show "$BIN/builder" build --policy "$IMG/demo-policy.yaml" --template build/shim/shim.fd --out "$D/shim.fd"
LD=$("$BIN/builder" measure --image "$D/shim.fd" | sed -n 's/^launch digest: //p')
say "expected launch digest of the shim (SHA-256 of the flash): $LD"

heading "Private launch on the owner's host, and the measurement check"
show "$BIN/verifier" session --chain "$D/owner.chain" --root "$SEVSHIM_EMU_ROOT" --policy 0x1 --out "$D/session" ||
	fail "could not make a session"
work "$D/launch"
say "The VM gets a TPM (--tpm: an swtpm per VM, QEMU's tpm-crb); its state travels with the guest."
show hostctl launch --tpm --state "$D/owner-psp" --image "$D/shim.fd" --session "$D/session" --work "$D/launch" ||
	fail "hostctl launch failed"
show "$BIN/verifier" measure --session "$D/session" --measurement "$D/launch/measurement.json" --image "$D/shim.fd" ||
	fail "the launch measurement does not match the shim"
MEAS=$(sed -n 's/.*"sev-measurement": *"\([^"]*\)".*/\1/p' "$D/launch/measurement.json" |
	base64 -d | od -An -tx1 -v | tr -d ' \n' | cut -c1-64)

heading "The owner releases a secret, and a receipt key, to the measured shim"
say "--new-receipt-key adds a fresh 48-byte key to the secret table (and keeps it in session/,"
say "mode 0600). Only the measured shim will ever hold it: the shim MACs its receipt with it."
umask 077
printf 'demo passphrase: correct horse battery staple' >"$D/passphrase.txt"
umask 022
show "$BIN/verifier" secret --session "$D/session" --measurement "$D/launch/measurement.json" --image "$D/shim.fd" \
	--secret "736869e5-84f0-4973-92ec-06879ce3da0b=$D/passphrase.txt" --new-receipt-key --out "$D/secret.json" ||
	fail "verifier refused to build the secret"
show hostctl launch-finish --work "$D/launch" --secret "$D/secret.json" || fail "launch-finish failed"

heading "Export: the running shim is sent, encrypted, to the provider's PSP"
say "hostctl export checks the provider's chain itself (again against the TEST root, named explicitly)."
show hostctl export --work "$D/launch" --to "$D/provider.chain" --root "$SEVSHIM_EMU_ROOT" --out "$D/guest.pkg" ||
	fail "export failed"
say "package: $(stat -c %s "$D/guest.pkg") bytes, sha256 $(sha256sum "$D/guest.pkg" | cut -c1-16)…"

# receive_ok BUNDLE WORK [keep]: expect the shim to accept the BIOS and OVMF to reach its shell;
# QEMU B is stopped afterwards unless "keep" is given. The guest has a TPM: every receive of it
# needs --tpm (hostctl refuses a device mismatch before QEMU starts).
# RECV_NONCE, if set, is the owner's receipt nonce for the next receive (hostctl receive --nonce).
RECV_NONCE=
nonce_args() { [ -n "$RECV_NONCE" ] && printf -- '--nonce %s' "$RECV_NONCE"; return 0; }
receive_ok() {
	work "$2"
	local stop=--stop
	[ "${3:-}" = keep ] && stop=
	# shellcheck disable=SC2046
	show hostctl receive --tpm --state "$D/provider-psp" --package "$D/guest.pkg" --bios "$1" --work "$2" --wait shell $stop $(nonce_args) \
		>"$2.out" || { cat "$2.out"; fail "receive with $(basename "$1") did not boot"; }
	cat "$2.out"
	grep -q "UEFI Interactive Shell" "$2.out" || fail "OVMF's shell was not reached with $(basename "$1")"
}
# flip_byte FILE OFFSET: xor one byte with 1, in place
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# receive_refused BUNDLE WORK PATTERN: expect a refusal whose message contains PATTERN
receive_refused() {
	work "$2"
	local out rc=0
	# shellcheck disable=SC2046
	out=$(hostctl receive --tpm --state "$D/provider-psp" --package "$D/guest.pkg" --bios "$1" --work "$2" --stop $(nonce_args) 2>&1) || rc=$?
	printf '   $ hostctl receive --tpm --state provider-psp --package guest.pkg --bios %s --work %s --stop %s\n' "${1#"$D"/}" "${2#"$D"/}" "$(nonce_args)"
	printf '%s\n' "$out" | sed 's/^/     /'
	timeout 30 "$BIN/hostctl" stop --work "$2" >/dev/null 2>&1 || true
	[ "$rc" -ne 0 ] || fail "$(basename "$1") was accepted; expected a refusal ($3)"
	printf '%s\n' "$out" | grep -q "$3" || fail "expected a refusal mentioning '$3' for $(basename "$1")"
	say "refused as expected (exit status $rc)"
}

heading "The provider receives the guest and boots it into BIOS v5"
say "The provider's PSP checks and decrypts every page before a fresh QEMU starts; the shim wakes,"
say "checks the bundle against the owner's policy, flashes it and hands off to OVMF."
receive_ok "$IMG/v5.bundle" "$D/receive-v5"

heading "The same package again, now with BIOS v6, booting Linux: no new measurement needed"
say "The owner picks a fresh nonce for this receive and gives it to the provider (--nonce)."
say "This time the provider boots a guest OS after the chain: Debian's cloud kernel and an initramfs"
say "whose /init is the sevshim guest agent (make images), by direct kernel boot (--kernel)."
RECV_NONCE=$(new_nonce)
NONCE_V6=$RECV_NONCE
work "$D/receive-v6"
# shellcheck disable=SC2046
show hostctl receive --tpm --state "$D/provider-psp" --package "$D/guest.pkg" --bios "$IMG/v6.bundle" --work "$D/receive-v6" \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initramfs.cpio" \
	--append "console=ttyS0 quiet nokaslr mitigations=off cryptomgr.notests audit=0 no_timer_check" $(nonce_args) \
	>"$D/receive-v6.out" || { cat "$D/receive-v6.out"; fail "receive with v6.bundle did not hand off"; }
cat "$D/receive-v6.out"
grep -q "accepted: version 6" "$D/receive-v6.out" || fail "the shim did not accept v6"
RECV_NONCE=
say "owner's shim launch digest:  $LD (both receives ran this exact shim)"
say "owner's launch measurement:  $MEAS (checked once, at launch; neither receive changed it)"
say "BIOS v5 image sha384: $("$BIN/builder" inspect "$IMG/v5.bundle" | sed -n 's/^  image digest (sha384): //p' | cut -c1-32)…"
say "BIOS v6 image sha384: $("$BIN/builder" inspect "$IMG/v6.bundle" | sed -n 's/^  image digest (sha384): //p' | cut -c1-32)…"

heading "receipt: what did the owner's shim decide? (the owner's evidence)"
say "The provider hands over receive.json with the shim's receipt line; it has no key, so it can"
say "relay the receipt but not forge or alter it. The owner checks it with its key and nonce:"
show "$BIN/verifier" receipt --key "$D/session/receipt.key" --nonce "$NONCE_V6" --from "$D/receive-v6/receive.json" \
	--bundle "$IMG/v6.bundle" --image "$D/shim.fd" || fail "the v6 receipt does not verify"
say "The same receipt presented for a new nonce (a provider replaying an old receipt):"
NEW_NONCE=$(new_nonce)
show_exit 1 "a replayed receipt was not refused" \
	"$BIN/verifier" receipt --key "$D/session/receipt.key" --nonce "$NEW_NONCE" --from "$D/receive-v6/receive.json"
say "receipt FAILED, as it must (exit 1)"

heading "attest: which BIOS did the shim accept? (asked inside the running Linux guest)"
say "Before the hand-off the shim recorded the accepted bundle in the TPM (PCR 15 of its policy)."
say "The owner sends a fresh nonce; hostctl attest hands it to the guest agent over its virtio-serial"
say "port, and the agent quotes PCR 15 over it inside the guest. The VM keeps running."
NONCE=$(new_nonce)
show hostctl attest --work "$D/receive-v6" --nonce "$NONCE" --out "$D/evidence.json" ||
	fail "hostctl attest failed (the guest's console: $D/receive-v6/serial.log)"
show "$BIN/verifier" attest --evidence "$D/evidence.json" --image "$D/shim.fd" --bundle "$IMG/v6.bundle" --nonce "$NONCE" ||
	fail "the TPM evidence does not show BIOS v6"
show_exit 1 "the v6 evidence also verified as v5" \
	"$BIN/verifier" attest --evidence "$D/evidence.json" --image "$D/shim.fd" --bundle "$IMG/v5.bundle" --nonce "$NONCE"
say "the same evidence checked against BIOS v5: attestation FAILED, as it must (exit 1)"
pid=$(pid_of_file "$D/receive-v6/qemu.pid" qemu-system) || true
[ -n "$pid" ] || fail "QEMU B of the Linux guest did not keep running after attest"
say "the guest still runs (QEMU B pid $pid); its console:"
grep -a "sevshim-agent:" "$D/receive-v6/serial.log" | tr -d '\r' | sed 's/^/     /'
say "What attest proves: that the provider's swtpm holds these values. A provider could put them"
say "into a fresh swtpm without running any shim: it is no proof against the provider. The receipt is."
show hostctl stop --work "$D/receive-v6"

heading "The same package on libvirt (the engine providers' fleets run)"
say "hostctl receive --libvirt runs every check above, unchanged, then has libvirtd restore the guest"
say "as domain sevshim-demo from a save image streamed through a FIFO (no guest RAM on disk),"
say "with libvirt's own swtpm for the TPM; the shim accepts v6 and OVMF boots. --stop destroys it."
start_libvirt
work "$D/receive-libvirt"
show hostctl receive --tpm --libvirt qemu:///system --name demo --state "$D/provider-psp" --package "$D/guest.pkg" \
	--bios "$IMG/v6.bundle" --work "$D/receive-libvirt" --wait shell --stop >"$D/receive-libvirt.out" ||
	{ cat "$D/receive-libvirt.out"; fail "receive on libvirt did not boot"; }
cat "$D/receive-libvirt.out"
grep -q "UEFI Interactive Shell" "$D/receive-libvirt.out" || fail "OVMF's shell was not reached on libvirt"
stop_libvirt

heading "A rolled-back BIOS is refused (signed as version 4, below the floor 5)"
show "$BIN/builder" sign-bios --key "$IMG/demo-provider.key" --version 4 --version-string "demo rollback v4" \
	--out "$D/v4.bundle" "$OVMF"
RECV_NONCE=$(new_nonce)
NONCE_V4=$RECV_NONCE
receive_refused "$D/v4.bundle" "$D/receive-v4" E034
RECV_NONCE=
say "The refusal comes with a receipt too: the owner learns, authentically, that its shim refused v4."
show_exit 2 "the v4 refusal receipt is not an authentic refusal" \
	"$BIN/verifier" receipt --key "$D/session/receipt.key" --nonce "$NONCE_V4" --from "$D/receive-v4/receive.json"
say "authentic refusal (exit 2): never mistaken for an acceptance"

heading "A tampered bundle is refused"
say "(a) one byte of the v6 image changed after signing: hostctl's own bundle check refuses it"
say "    before any QEMU starts (the shim would say E033 digest-mismatch)."
cp "$IMG/v6.bundle" "$D/v6-image-tampered.bundle"
flip_byte "$D/v6-image-tampered.bundle" $((352 + 0x100000))
receive_refused "$D/v6-image-tampered.bundle" "$D/receive-image-tampered" "differs from the manifest"
say "(b) one byte of the manifest's signature changed: the bundle still looks well formed to the"
say "    host, so QEMU B starts and the shim itself refuses it."
cp "$IMG/v6.bundle" "$D/v6-signature-tampered.bundle"
flip_byte "$D/v6-signature-tampered.bundle" 351
receive_refused "$D/v6-signature-tampered.bundle" "$D/receive-signature-tampered" E024

T1=$(date +%s)
printf '\nDemo complete in %d s: one owner measurement, two BIOS releases booted (v6 into Linux, and on libvirt), the v6 boot proven by the shim receipt (and shown by the provider TPM from inside the running guest), a rollback and a tampered BIOS refused.\n' $((T1 - T0))
