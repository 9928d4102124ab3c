package host

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/guestpkg"
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
