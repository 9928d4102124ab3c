package chain

import (
	"bytes"
	"context"
	"crypto/sha512"
	"debug/elf"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// RAM addresses of shim/include/sevshim/layout.h (docs/shim.md, RAM map).
const (
	ramBounce     = 0x00200000 // fw_cfg DMA bounce page (shared under SEV)
	ramBounceSize = 0x00200000
	ramBIOSBuf    = 0x01000000 // the shim's private copy of opt/org.sevshim/bios
)

// breakAfterVerify is the payload function the shim calls after VERIFIED (and after the
// secret plan and the TPM step) and before its first flash command: the CFI probe.
const breakAfterVerify = "pflash_probe"

// payloadSymbol returns the address of a function of the shim payload under test, from the
// ELF the shim Makefile links next to the template (build/shim/payload.elf; the payload runs
// at its link address, docs/shim.md).
func payloadSymbol(t *testing.T, name string) uint64 {
	t.Helper()
	tpl, err := repo.ShimTemplate()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(filepath.Join(filepath.Dir(tpl), "payload.elf"))
	if err != nil {
		t.Fatalf("%v (run make shim)", err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			return s.Value
		}
	}
	t.Fatalf("no function %s in payload.elf", name)
	return 0
}

// stopAfterVerify starts B with a gdbstub, sets a breakpoint at breakAfterVerify while B is
// still paused after loading the READY state, wakes the shim and waits until it stops there.
// It checks that the shim printed VERIFIED and nothing after it, then calls tamper (the guest
// is stopped), removes the breakpoint and resumes the guest.
func stopAfterVerify(t *testing.T, e *chainEnv, tamper func(g *qemu.GDB)) *bRun {
	t.Helper()
	pc := payloadSymbol(t, breakAfterVerify)
	var g *qemu.GDB
	r := startBWith(t, e, bOpts{manifest: e.manifestV5, bios: e.ovmf, beforeWake: func(sock string) {
		var err error
		if g, err = qemu.DialGDB(sock, nil); err != nil {
			t.Fatal(err)
		}
		if err := g.SetPhysMode(true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		if err := g.InsertBreakpoint(pc); err != nil {
			t.Fatal(err)
		}
	}})
	stop, err := g.WaitStop(shimStepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	dl := r.vm.Debugcon().Lines()
	var verified bool
	for _, l := range dl {
		verified = verified || reVerified.MatchString(l.Text)
		if strings.HasPrefix(l.Text, "SEVSHIM FLASHED") || strings.HasPrefix(l.Text, "SEVSHIM HANDOFF") ||
			strings.HasPrefix(l.Text, "SEVSHIM ERROR") {
			t.Fatalf("at the breakpoint the shim already printed %q", l.Text)
		}
	}
	if !verified {
		t.Fatalf("stopped (%q) at %s before VERIFIED:\n%s", stop, breakAfterVerify, r.vm.Debugcon().Text())
	}
	tamper(g)
	if err := g.RemoveBreakpoint(pc); err != nil {
		t.Fatal(err)
	}
	if err := g.Continue(); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBounceTamperAfterVerify: after VERIFIED the host rewrites everything it can see of the
// shim's fw_cfg DMA (the whole bounce page: descriptor and data). The shim verified and
// flashes its private copy, so the run boots OVMF and pflash0's SHA-384 is the signed digest.
// (Before the bounce page existed, the DMA target was the BIOS buffer itself: there the
// descriptor check below fails, and tampering that target gives a wrong flash.)
func TestBounceTamperAfterVerify(t *testing.T) {
	e := env(t)
	r := stopAfterVerify(t, e, func(g *qemu.GDB) {
		// The last fw_cfg DMA descriptor (FWCfgDmaAccess, big-endian; QEMU docs/specs/
		// fw_cfg.rst) must be in the bounce page and point into it: the DMA went there.
		d, err := g.ReadMemory(ramBounce, 16)
		if err != nil {
			t.Fatal(err)
		}
		ctl, length, addr := binary.BigEndian.Uint32(d[0:]), binary.BigEndian.Uint32(d[4:]), binary.BigEndian.Uint64(d[8:])
		if ctl != 0 || length == 0 || addr < ramBounce || addr+uint64(length) > ramBounce+ramBounceSize {
			t.Errorf("no completed fw_cfg DMA descriptor in the bounce page: control %#x length %#x address %#x", ctl, length, addr)
		}
		junk := bytes.Repeat([]byte{0xA5, 0x5A, 0xFF, 0x00}, ramBounceSize/4)
		if err := g.WriteMemory(ramBounce, junk); err != nil {
			t.Fatal(err)
		}
		back, err := g.ReadMemory(ramBounce+ramBounceSize-4096, 4096)
		if err != nil || !bytes.Equal(back, junk[len(junk)-4096:]) {
			t.Fatalf("bounce page not overwritten (%v)", err)
		}
	})
	assertBoots(t, e, r, e.ovmf, 5, "debian-ovmf-4m")
	m, err := manifest.ParseManifest(mustRead(t, e.manifestV5))
	if err != nil {
		t.Fatal(err)
	}
	if got := sha512.Sum384(readCodeFlash(t, r)); got != m.ImageDigest {
		t.Fatalf("SHA-384 of pflash0 %x is not the signed digest %x", got, m.ImageDigest)
	}
}

// TestPrivateCopyTamperAfterVerify: after VERIFIED the host changes one byte of the shim's
// private BIOS copy (possible under TCG and plain SEV: the host writes guest memory). The
// shim flashes that buffer, the post-flash digest differs from the signed one: E055, no
// FLASHED or HANDOFF line, OVMF never runs.
func TestPrivateCopyTamperAfterVerify(t *testing.T) {
	e := env(t)
	const off = 0x123456 // inside the image body, away from the footer table the shim walked
	r := stopAfterVerify(t, e, func(g *qemu.GDB) {
		b, err := g.ReadMemory(ramBIOSBuf+off, 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := mustRead(t, e.ovmf)[off]; b[0] != want {
			t.Fatalf("BIOS buffer byte %#x = %#x, want the image's %#x", off, b[0], want)
		}
		if err := g.WriteMemory(ramBIOSBuf+off, []byte{b[0] ^ 0x5A}); err != nil {
			t.Fatal(err)
		}
	})
	assertRefused(t, e, r, shimerr.FlashDigestMismatch)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := r.vm.Serial().WaitLine(ctx, reBds, time.Millisecond); err == nil {
		t.Errorf("OVMF ran after E055")
	}
}
