package flow

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/guestpkg"
	"github.com/sevshim/sevshim/pkg/migrate"
)

// TestTamperedPackageRefusedBeforeQEMU flips bits without recomputing the trailer, so it
// shows corruption detection only. The tests here change a package the way someone who can
// write the file would: they edit it and write it again with guestpkg's own Writer, so the
// trailer digest (docs/formats.md section 8) is valid and guestpkg.Verify accepts the file.
// What is left to catch the change is the SEV transport: the packet MAC that the receiving
// PSP checks in RECEIVE_UPDATE_DATA (SEV API 55766, RECEIVE_UPDATE_DATA: HMAC-SHA256 under
// the TIK over the packet header fields and the ciphertext).

// pkgRecord is one record of a package: its entry and, for data pages, its SEV packet.
type pkgRecord struct {
	e migrate.Entry
	p *guestpkg.Packet
}

// parsedPackage is a whole package in memory (the fixture's is about 5.6 MB).
type parsedPackage struct {
	hdr     guestpkg.Header
	stream  *guestpkg.Stream
	recs    []pkgRecord
	devices []byte
}

func parsePackage(t *testing.T, b []byte) *parsedPackage {
	t.Helper()
	r, err := guestpkg.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.ReadStream()
	if err != nil {
		t.Fatal(err)
	}
	pp := &parsedPackage{hdr: *r.Header(), stream: st}
	for {
		p := new(guestpkg.Packet)
		e, has, err := r.Next(p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !has {
			p = nil
		}
		pp.recs = append(pp.recs, pkgRecord{e, p})
	}
	if pp.devices, err = r.Finish(); err != nil {
		t.Fatal(err)
	}
	return pp
}

// encode writes the package again with guestpkg.Writer, which computes the trailer.
func (pp *parsedPackage) encode(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := guestpkg.NewWriter(&buf, &pp.hdr)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteStream(pp.stream); err != nil {
		t.Fatal(err)
	}
	for _, r := range pp.recs {
		if err := w.Record(r.e, r.p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(pp.devices); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dataRecords returns the indexes of the data records of RAM block id, in stream order.
func (pp *parsedPackage) dataRecords(id string) []int {
	var idx []int
	for i, r := range pp.recs {
		if r.p != nil && pp.stream.Blocks[r.e.Block].ID == id {
			idx = append(idx, i)
		}
	}
	return idx
}

// fixturePackage reads the fixture's package and checks that re-encoding it unchanged gives
// the same bytes: the rewriter itself changes nothing.
func fixturePackage(t *testing.T, w *world) *parsedPackage {
	t.Helper()
	orig, err := os.ReadFile(w.pkg)
	if err != nil {
		t.Fatal(err)
	}
	pp := parsePackage(t, orig)
	if again := pp.encode(t); !bytes.Equal(again, orig) {
		t.Fatalf("re-encoding the fixture's package unchanged gives other bytes (%d vs %d)", len(again), len(orig))
	}
	return pp
}

// writeTampered writes b and checks that the package layer has nothing to object to: the
// trailer digest matches and the structure parses.
func writeTampered(t *testing.T, b []byte) string {
	t.Helper()
	if _, err := guestpkg.Verify(bytes.NewReader(b)); err != nil {
		t.Fatalf("the tampered package should pass guestpkg.Verify (valid trailer): %v", err)
	}
	p := filepath.Join(t.TempDir(), "tampered.pkg")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTamperedPacketMACRefused: one changed byte in one page packet (ciphertext, IV or MAC),
// trailer recomputed. RECEIVE_UPDATE_DATA must refuse exactly that record with the
// firmware's BAD_SIGNATURE status, before QEMU B (started early, -incoming defer) got a byte.
func TestTamperedPacketMACRefused(t *testing.T) {
	w := getWorld(t)
	pp := fixturePackage(t, w)
	ram := pp.dataRecords("pc.ram")
	if len(ram) < 2 {
		t.Fatalf("the fixture has %d pc.ram data pages", len(ram))
	}
	target := ram[len(ram)/2]
	e := pp.recs[target].e
	for _, c := range []struct {
		name string
		flip func(p *guestpkg.Packet)
	}{
		{"ciphertext", func(p *guestpkg.Packet) { p.Data[1234] ^= 0x01 }},
		// header: FLAGS u32, IV 16 bytes, MAC 32 bytes (SEV API 55766, SEND_UPDATE_DATA)
		{"iv", func(p *guestpkg.Packet) { p.Header[4+7] ^= 0x80 }},
		{"mac", func(p *guestpkg.Packet) { p.Header[4+16+31] ^= 0x01 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			orig := *pp.recs[target].p
			bad := orig
			c.flip(&bad)
			pp.recs[target].p = &bad
			b := pp.encode(t)
			pp.recs[target].p = &orig
			pkg := writeTampered(t, b)
			wb := track(filepath.Join(t.TempDir(), "B"))
			t.Cleanup(func() { killWork(wb) })
			r := run(t, nil, "hostctl", receiveArgs(w, pkg, w.v6, wb)...)
			want := fmt.Sprintf("record %d (block pc.ram, offset 0x%x): RECEIVE_UPDATE_DATA refused the page: psp: RECEIVE_UPDATE_DATA: firmware status BAD_SIGNATURE (0xa)", target, e.Offset())
			if r.Code != 3 || !strings.Contains(r.Stderr, want) {
				t.Fatalf("want exit 3 and %q: %s", want, r)
			}
			// The PSP refused after RECEIVE_START: QEMU B was started early, fed nothing
			// ("inmigrate" when killed) and is gone.
			if !refusedBeforeVM(t, r.Stderr, wb) {
				t.Fatalf("QEMU B was not started early for a refusal after RECEIVE_START: %s", r)
			}
			if strings.Contains(r.Stdout, "accepted") || strings.Contains(r.Stderr, "package verified") {
				t.Fatalf("the package got past the PSP: %s", r)
			}
			for _, f := range []string{"qemu.pid", "qemu.log", "bios.fd", "flash0.fd", "debugcon.log"} {
				if _, err := os.Stat(filepath.Join(wb, f)); err == nil {
					t.Errorf("%s exists: QEMU B was prepared or started", f)
				}
			}
			t.Logf("%s: %s", c.name, firstLine(r.Stderr))
		})
	}
}

// TestSwappedPagesAccepted: two data pages trade packets (their entries, i.e. the guest
// addresses, stay; the trailer is recomputed). The packet MAC covers FLAGS, IV, lengths and
// ciphertext but not the guest address (SEV API 55766, SEND_UPDATE_DATA / RECEIVE_UPDATE_DATA),
// so the receiving PSP accepts both packets and each page's content lands at the other's
// address. This test pins that limit (docs/formats.md section 8): the receive succeeds, and
// guest memory read back through QMP pmemsave holds the two pages exchanged.
//
// The pages are two of the "isa-bios" RAM block: QEMU copies the last 128 KiB of pflash0 into
// it at start-up (guest-physical 0xE0000..0xFFFFF, read-only to the guest), so their plaintext
// is the tail of the shim image that QEMU A was started with, and neither the shim (which runs
// from 0x100000 and never touches the legacy hole) nor OVMF writes them.
func TestSwappedPagesAccepted(t *testing.T) {
	w := getWorld(t)
	pp := fixturePackage(t, w)
	const isaBase, isaSize = 0xE0000, 0x20000
	blk, ok := pp.stream.Block("isa-bios")
	if !ok || blk.Size != isaSize {
		t.Fatalf("the fixture's stream has no 128 KiB isa-bios block: %+v", pp.stream.Blocks)
	}
	shim, err := os.ReadFile(w.shim)
	if err != nil {
		t.Fatal(err)
	}
	tail := shim[len(shim)-isaSize:]
	page := func(b []byte, n uint32) []byte { return b[int(n)*migrate.PageSize : int(n+1)*migrate.PageSize] }
	// two data pages with different plaintext
	isa := pp.dataRecords("isa-bios")
	i, j := -1, -1
	for a := 0; a < len(isa) && j < 0; a++ {
		for b := a + 1; b < len(isa); b++ {
			if !bytes.Equal(page(tail, pp.recs[isa[a]].e.Page), page(tail, pp.recs[isa[b]].e.Page)) {
				i, j = isa[a], isa[b]
				break
			}
		}
	}
	if j < 0 {
		t.Fatalf("no two isa-bios data pages differ (%d data pages)", len(isa))
	}
	pi, pj := pp.recs[i].e.Page, pp.recs[j].e.Page
	pp.recs[i].p, pp.recs[j].p = pp.recs[j].p, pp.recs[i].p
	pkg := writeTampered(t, pp.encode(t))

	wb := track(filepath.Join(t.TempDir(), "B"))
	t.Cleanup(func() { killWork(wb) })
	r := run(t, nil, "hostctl", receiveArgs(w, pkg, w.v6, wb)...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "accepted: version 6, signer ") {
		t.Fatalf("the swapped package should be received and the shim accept v6 (the SEV packet does not bind the address): %s", r)
	}
	if !pidAlive(wb) {
		t.Fatal("QEMU B should run detached")
	}

	got := guestRAM(t, wb, isaBase, isaSize)
	want := append([]byte(nil), tail...)
	copy(page(want, pi), page(tail, pj))
	copy(page(want, pj), page(tail, pi))
	if !bytes.Equal(page(got, pi), page(tail, pj)) || !bytes.Equal(page(got, pj), page(tail, pi)) {
		t.Fatalf("guest pages 0x%x and 0x%x do not hold each other's content (swap not visible)",
			isaBase+int(pi)*migrate.PageSize, isaBase+int(pj)*migrate.PageSize)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("0xE0000..0xFFFFF differs from the shim image's last 128 KiB with pages %d and %d exchanged", pi, pj)
	}
	t.Logf("packets of isa-bios pages %d and %d swapped: accepted, guest 0x%x and 0x%x hold each other's content",
		pi, pj, isaBase+int(pi)*migrate.PageSize, isaBase+int(pj)*migrate.PageSize)
}
