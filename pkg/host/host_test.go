package host

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/guestpkg"
	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/migrate"
)

func shapeFixture() (*guestpkg.Header, *guestpkg.Stream) {
	h := &guestpkg.Header{Shape: guestpkg.Shape{Machine: "pc-q35-7.2", RAMSize: 512 << 20, CodeSize: 0x37C000, VarsSize: 0x84000, LayoutID: 1, CPUs: 1}}
	raw := []byte("QEVM\x00\x00\x00\x03\x07\x00\x00\x00\x0apc-q35-7.2")
	st := &guestpkg.Stream{Header: raw, Blocks: []migrate.Block{{ID: "pc.ram", Size: 512 << 20},
		{ID: "system.flash1", Size: 0x84000}, {ID: "system.flash0", Size: 0x37C000}}}
	return h, st
}

func TestCheckShape(t *testing.T) {
	h, st := shapeFixture()
	if err := checkShape(h, st); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mod  func(*guestpkg.Header, *guestpkg.Stream)
		want string
	}{
		{"machine family", func(h *guestpkg.Header, _ *guestpkg.Stream) { h.Shape.Machine = "pc-i440fx-7.2" }, "not supported"},
		{"stream machine", func(_ *guestpkg.Header, s *guestpkg.Stream) {
			s.Header = bytes.Replace(s.Header, []byte("7.2"), []byte("7.1"), 1)
		}, "differs"},
		{"layout", func(h *guestpkg.Header, _ *guestpkg.Stream) { h.Shape.LayoutID = 9 }, "unknown"},
		{"code size", func(h *guestpkg.Header, _ *guestpkg.Stream) { h.Shape.CodeSize = 0x400000 }, "differ from layout"},
		{"ram too small", func(h *guestpkg.Header, _ *guestpkg.Stream) { h.Shape.RAMSize = 32 << 20 }, "not supported"},
		{"ram not MiB", func(h *guestpkg.Header, _ *guestpkg.Stream) { h.Shape.RAMSize = 512<<20 + 4096 }, "not supported"},
		{"cpus", func(h *guestpkg.Header, _ *guestpkg.Stream) { h.Shape.CPUs = 2 }, "CPUs"},
		{"pc.ram block", func(_ *guestpkg.Header, s *guestpkg.Stream) { s.Blocks[0].Size = 256 << 20 }, "pc.ram"},
		{"flash block", func(_ *guestpkg.Header, s *guestpkg.Stream) { s.Blocks = s.Blocks[:2] }, "system.flash0"},
	} {
		h, st := shapeFixture()
		c.mod(h, st)
		err := checkShape(h, st)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

func TestPageStore(t *testing.T) {
	var s pageStore
	for i := 0; i < 3*slabPages+5; i++ {
		p := s.next()
		p[0], p[4095] = byte(i), byte(i>>8)
	}
	for i := 0; i < 3*slabPages+5; i++ {
		if p := s.get(i); p[0] != byte(i) || p[4095] != byte(i>>8) || len(p) != 4096 {
			t.Fatalf("page %d", i)
		}
	}
	s.wipe()
	if s.slabs != nil {
		t.Fatal("wipe kept slabs")
	}
}

func TestHardwareGuestRefused(t *testing.T) {
	if _, err := openGuestPSP("linux", ""); err == nil || !strings.Contains(err.Error(), "upstream QEMU") {
		t.Fatalf("got %v", err)
	}
}

// The default var store follows the layout (Debian's file name from the layout table);
// $SEVSHIM_OVMF_VARS overrides it for every layout; a store of another size is refused.
func TestDefaultVarsFollowLayout(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvOVMFDir, dir)
	t.Setenv(EnvOVMFVars, "")
	l4, _ := layout.ByID(layout.OVMF4M)
	l2, _ := layout.ByID(layout.OVMF2M)
	if got := DefaultOVMFVars(l4); got != filepath.Join(dir, "OVMF_VARS_4M.fd") {
		t.Errorf("ovmf-4m: %s", got)
	}
	if got := DefaultOVMFVars(l2); got != filepath.Join(dir, "OVMF_VARS.fd") {
		t.Errorf("ovmf-2m: %s", got)
	}
	for _, l := range []layout.Layout{l4, l2} {
		if err := os.WriteFile(filepath.Join(dir, l.VarsFile), make([]byte, l.VarsSize), 0o600); err != nil {
			t.Fatal(err)
		}
		if src, _, b, err := readVars("", l); err != nil || len(b) != int(l.VarsSize) || src != filepath.Join(dir, l.VarsFile) {
			t.Errorf("%s: default %s, %d bytes, %v", l.Name, src, len(b), err)
		}
		if b, err := loadVars("", l); err != nil || len(b) != int(l.VarsSize) {
			t.Errorf("%s: launch's default store: %d bytes, %v", l.Name, len(b), err)
		}
	}
	if b, err := loadVars(filepath.Join(dir, l4.VarsFile), l2); err == nil || !strings.Contains(err.Error(), "layout ovmf-2m needs a var store of exactly 131072 (0x20000) bytes") {
		t.Errorf("launch took a 4M store for ovmf-2m (%d bytes): %v", len(b), err)
	}
	t.Setenv(EnvOVMFVars, filepath.Join(dir, l4.VarsFile))
	if got := DefaultOVMFVars(l2); got != filepath.Join(dir, l4.VarsFile) {
		t.Errorf("$%s does not override: %s", EnvOVMFVars, got)
	}
	if _, err := loadVars("", l2); err == nil || !strings.Contains(err.Error(), "$"+EnvOVMFVars) {
		t.Errorf("launch took $SEVSHIM_OVMF_VARS of the wrong size, or did not name it: %v", err)
	}
	t.Setenv(EnvOVMFVars, "")
	os.Remove(filepath.Join(dir, l2.VarsFile))
	if b, err := loadVars("", l2); err != nil || len(b) != int(l2.VarsSize) || b[0] != 0xFF {
		t.Errorf("launch without Debian's template: %d bytes, %v (want erased flash)", len(b), err)
	}
}
