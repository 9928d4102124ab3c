package chain

import (
	"regexp"
	"strings"
	"testing"
)

// QEMU's trace of pflash0 ("system.flash0" on the pc machine): each CFI buffered write start
// with the word count the shim wrote (count+1 data cycles follow), and each block erase.
var reFlashEvent = regexp.MustCompile(`(?m)^pflash_write_block_(start|erase) system\.flash0: block (?:write start: bytes:0x([0-9a-f]+)|erase)`)

// flashEvents starts B with QEMU tracing pflash writes and erases on its stderr, checks that the
// good bundle boots (assertBoots: HANDOFF, BdsDxe, shell, pflash0 = the image) and returns
// pflash0's events in order (as far as the VM keeps its stderr): "3f", "ff" (the count of a
// buffered write) or "erase".
func flashEvents(t *testing.T, extra ...string) []string {
	t.Helper()
	e := env(t)
	args := append([]string{"-trace", "enable=pflash_write_block_start", "-trace", "enable=pflash_write_block_erase"}, extra...)
	r := startBWith(t, e, bOpts{manifest: e.manifestV5, bios: e.ovmf, extra: args})
	assertBoots(t, e, r, e.ovmf, 5, "debian-ovmf-4m")
	var ev []string
	writes := 0
	for _, m := range reFlashEvent.FindAllStringSubmatch(r.vm.Stderr(), -1) {
		if m[1] == "erase" {
			ev = append(ev, "erase")
		} else {
			ev = append(ev, m[2])
			writes++
		}
	}
	if writes < 2 {
		t.Fatalf("trace shows %d buffered writes to pflash0, want the probe and more; stderr: %.600s", writes, r.vm.Stderr())
	}
	return ev
}

// TestWideCyclesProbed: on the pc machine's pflash (bank width 1, little-endian) the probe
// buffer is written with 32-bit cycles (count 0x3f = 64 words for 256 bytes), the read-back
// matches, and every later buffer uses 32-bit cycles too.
func TestWideCyclesProbed(t *testing.T) {
	for i, c := range flashEvents(t) {
		if c != "3f" && c != "erase" {
			t.Fatalf("pflash0 event %d: buffered write with count 0x%s, want 0x3f (32-bit cycles) for all", i, c)
		}
	}
}

// TestByteCyclesFallback: a pflash that stores a 32-bit write in the other byte order
// (big-endian=on) does not hold the probe buffer as written: the shim erases that block again,
// then programs every buffer with byte cycles (count 0xff), and the boot is the same
// (assertBoots: pflash0 holds the image, OVMF reaches BdsDxe and its shell).
func TestByteCyclesFallback(t *testing.T) {
	ev := flashEvents(t, "-global", "driver=cfi.pflash01,property=big-endian,value=on")
	first := 0
	for first < len(ev) && ev[first] == "erase" {
		first++
	}
	if ev[first] != "3f" || first+1 >= len(ev) || ev[first+1] != "erase" {
		t.Fatalf("pflash0 events start %s, want erases, the 32-bit probe (3f), then the erase of its block",
			strings.Join(ev[:min(len(ev), first+4)], " "))
	}
	for i, c := range ev[first+2:] {
		if c != "ff" && c != "erase" {
			t.Fatalf("pflash0 event %d after the failed probe: buffered write with count 0x%s, want 0xff (bytes)", first+2+i, c)
		}
	}
}
