package guestpkg

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/migrate"
	"github.com/sevshim/sevshim/pkg/sev"
	"github.com/sevshim/sevshim/pkg/sev/sevtest"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// fixture is a package made from a real (trimmed) QEMU 7.2 stream, with real SEV packets
// sealed under fresh transport keys.
type fixture struct {
	stream []byte
	pkg    []byte
	keys   sev.TransportKeys
}

func readStream(t testing.TB, name string) []byte {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "pkg", "migrate", "testdata", "streams", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func makePackage(t testing.TB, stream []byte) *fixture {
	t.Helper()
	snd := sevtest.NewSend(t)
	var out bytes.Buffer
	h := &Header{Policy: 1, PDH: snd.PDH, Session: snd.Session,
		Shape: Shape{Machine: "pc-q35-7.2", RAMSize: 0x20000000, CodeSize: 0x37C000, VarsSize: 0x84000, LayoutID: 1, CPUs: 1}}
	bld := &Builder{Out: &out, Pkg: h, Seal: func(page []byte, p *Packet) error {
		return snd.Seal(p.Header[:], p.Data[:], page)
	}}
	if _, err := migrate.Parse(bytes.NewReader(stream), bld); err != nil {
		t.Fatal(err)
	}
	if bld.Writer().Written() != int64(out.Len()) {
		t.Fatalf("Written %d, buffer %d", bld.Writer().Written(), out.Len())
	}
	return &fixture{stream: stream, pkg: out.Bytes(), keys: snd.Keys}
}

// rebuild reads a package, opens every packet and rebuilds the migration stream.
func rebuild(pkg []byte, keys sev.TransportKeys) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(pkg))
	if err != nil {
		return nil, err
	}
	st, err := r.ReadStream()
	if err != nil {
		return nil, err
	}
	tr := sev.NewTransport(keys)
	sk := migrate.Skeleton{Header: st.Header, RAMSectionID: st.RAMSectionID, Blocks: st.Blocks}
	var pages [][]byte
	var p Packet
	if err := r.Each(&p, func(e migrate.Entry, has bool) error {
		sk.Entries = append(sk.Entries, e)
		if !has {
			return nil
		}
		ph, err := sev.ParsePacketHeader(p.Header[:])
		if err != nil {
			return err
		}
		plain := make([]byte, migrate.PageSize)
		if err := tr.Open(plain, ph, p.Data[:], migrate.PageSize); err != nil {
			return err
		}
		pages = append(pages, plain)
		return nil
	}); err != nil {
		return nil, err
	}
	if sk.Devices, err = r.Finish(); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	i := 0
	err = sk.Replay(migrate.NewWriter(&out), func(int, migrate.Entry) ([]byte, error) {
		i++
		return pages[i-1], nil
	})
	return out.Bytes(), err
}

func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"micro.bin", "tiny.bin", "trim4.bin"} {
		t.Run(name, func(t *testing.T) {
			f := makePackage(t, readStream(t, name))
			got, err := rebuild(f.pkg, f.keys)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, f.stream) {
				t.Fatalf("rebuilt stream differs (%d vs %d bytes)", len(got), len(f.stream))
			}
			sum, err := Verify(bytes.NewReader(f.pkg))
			if err != nil {
				t.Fatal(err)
			}
			if sum.Bytes != int64(len(f.pkg)) || sum.DataPages == 0 || sum.Header.Shape.Machine != "pc-q35-7.2" {
				t.Fatalf("summary %+v", sum)
			}
		})
	}
}

// Every single flipped byte is detected by Verify (structure or digest); flips inside
// packets are also caught by the packet MAC.
func TestEveryFlipRefused(t *testing.T) {
	f := makePackage(t, readStream(t, "micro.bin"))
	for i := range f.pkg {
		b := append([]byte(nil), f.pkg...)
		b[i] ^= 0x01
		if _, err := Verify(bytes.NewReader(b)); err == nil {
			t.Fatalf("flip at byte %d of %d accepted", i, len(b))
		}
	}
}

func TestTruncationsRefused(t *testing.T) {
	f := makePackage(t, readStream(t, "micro.bin"))
	for n := 0; n < len(f.pkg); n++ {
		_, err := Verify(bytes.NewReader(f.pkg[:n]))
		if err == nil {
			t.Fatalf("package cut to %d of %d bytes accepted", n, len(f.pkg))
		}
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut to %d: %v does not match ErrTruncated", n, err)
		}
	}
	if _, err := Verify(bytes.NewReader(append(append([]byte(nil), f.pkg...), 0))); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

// A flipped ciphertext byte with a recomputed trailer (what anyone could do) passes Verify:
// only the packet MAC catches it.
func TestDigestIsNotAnAuthenticator(t *testing.T) {
	f := makePackage(t, readStream(t, "micro.bin"))
	b := append([]byte(nil), f.pkg...)
	// the first data packet's ciphertext starts after header, PDH, session, stream header...
	r, _ := NewReader(bytes.NewReader(b))
	r.ReadStream()
	var p Packet
	for {
		e, has, err := r.Next(&p)
		if err != nil {
			t.Fatal(err)
		}
		_ = e
		if has {
			break
		}
	}
	pos := r.Offset() - 100
	b[pos] ^= 0x80
	d := trailerDigest(FormatVersion, b[:len(b)-DigestSize])
	copy(b[len(b)-DigestSize:], d)
	if _, err := Verify(bytes.NewReader(b)); err != nil {
		t.Fatalf("re-digested package should pass Verify: %v", err)
	}
	if _, err := rebuild(b, f.keys); !errors.Is(err, sev.ErrPacketMAC) {
		t.Fatalf("packet MAC must refuse the changed page, got %v", err)
	}
}

func TestWriterRefusesBadInput(t *testing.T) {
	h := &Header{Policy: 1, PDH: make([]byte, 10), Session: make([]byte, sev.SessionSize),
		Shape: Shape{Machine: "pc-q35-7.2", RAMSize: 1 << 20, CodeSize: 4096, CPUs: 1}}
	if _, err := NewWriter(io.Discard, h); err == nil {
		t.Fatal("short PDH accepted")
	}
	h.PDH = make([]byte, sev.CertSize)
	h.Shape.Machine = "pc q35"
	if _, err := NewWriter(io.Discard, h); err == nil {
		t.Fatal("machine with a space accepted")
	}
	h.Shape.Machine = "pc-q35-7.2"
	w, err := NewWriter(io.Discard, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteStream(&Stream{Header: []byte("QEVM"), Blocks: []migrate.Block{{ID: "pc.ram", Size: 8192}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Record(migrate.Entry{Kind: migrate.EntryZero, Page: 2}, nil); err == nil {
		t.Fatal("page outside its block accepted")
	}
}

func trailerDigest(version uint16, b []byte) []byte {
	h := newDigest(version)
	h.Write(b)
	return h.Sum(nil)
}

// asVersion1 rewrites a package of this build as format version 1 would have written it: the
// version field 1 and a SHA-384 trailer (everything else was the same).
func asVersion1(b []byte) []byte {
	v1 := append([]byte(nil), b[:len(b)-DigestSize]...)
	binary.LittleEndian.PutUint16(v1[0x08:], 1)
	return append(v1, trailerDigest(1, v1)...)
}

// TestReadsVersion1: a version-1 package (SHA-384 trailer) still verifies, gives the same
// summary and rebuilds the same stream; a version-1 header with a SHA-256 trailer, or a
// version-2 one with SHA-384, is refused as a digest mismatch; unknown versions are refused
// by name. The Writer writes version 2 with a SHA-256 trailer.
func TestReadsVersion1(t *testing.T) {
	f := makePackage(t, readStream(t, "micro.bin"))
	b := f.pkg
	if v := binary.LittleEndian.Uint16(b[0x08:]); v != 2 {
		t.Fatalf("the Writer wrote version %d, want 2", v)
	}
	if d := sha256.Sum256(b[:len(b)-sha256.Size]); !bytes.Equal(d[:], b[len(b)-sha256.Size:]) {
		t.Fatal("the version-2 trailer is not the SHA-256 of the bytes before it")
	}
	v1 := asVersion1(b)
	s2, err := Verify(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s1, err := Verify(bytes.NewReader(v1))
	if err != nil {
		t.Fatalf("version 1: %v", err)
	}
	if s1.Records != s2.Records || s1.DataPages != s2.DataPages || s1.Bytes != s2.Bytes+sha512.Size384-sha256.Size {
		t.Fatalf("version 1 summary %+v differs from version 2's %+v beyond the digest size", s1, s2)
	}
	r1, err := rebuild(v1, f.keys)
	if err != nil {
		t.Fatalf("version 1 rebuild: %v", err)
	}
	r2, err := rebuild(b, f.keys)
	if err != nil || !bytes.Equal(r1, r2) {
		t.Fatalf("version 1 and 2 rebuild different streams (%v)", err)
	}
	// and the package the version-1 Writer wrote (the fuzz seed kept from then) verifies
	seed, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzVerify", "valid-micro-v1"))
	if err != nil {
		t.Fatal(err)
	}
	lit, ok := strings.CutPrefix(strings.TrimSpace(string(seed)), "go test fuzz v1\n[]byte(")
	old, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if !ok || err != nil {
		t.Fatalf("valid-micro-v1 is not a []byte fuzz seed: %v", err)
	}
	if v := binary.LittleEndian.Uint16([]byte(old)[0x08:]); v != 1 {
		t.Fatalf("valid-micro-v1 has version %d", v)
	}
	if _, err := Verify(strings.NewReader(old)); err != nil {
		t.Fatalf("the version-1 Writer's package: %v", err)
	}
	mixed := append([]byte(nil), v1...)
	binary.LittleEndian.PutUint16(mixed[0x08:], 2)
	if _, err := Verify(bytes.NewReader(mixed)); err == nil {
		t.Fatal("a version-2 header with a SHA-384 trailer verified")
	}
	mixed = append([]byte(nil), b...)
	binary.LittleEndian.PutUint16(mixed[0x08:], 1)
	if _, err := Verify(bytes.NewReader(mixed)); err == nil {
		t.Fatal("a version-1 header with a SHA-256 trailer verified")
	}
	for _, v := range []uint16{0, 3} {
		bad := append([]byte(nil), b...)
		binary.LittleEndian.PutUint16(bad[0x08:], v)
		if _, err := Verify(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("format version %d is not supported", v)) {
			t.Fatalf("version %d: %v", v, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	if os.Getenv("FZ_SMALL") == "" {
		fx := makePackage(f, readStream(f, "micro.bin"))
		f.Add(fx.pkg)
		f.Add(fx.pkg[:HeaderSize+100])
	} else {
		f.Add([]byte("SEVSHPKG"))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, ok := MachineFromStreamHeader(b); ok && (len(m) == 0 || len(m) > 255) {
			t.Fatalf("machine %q", m)
		}
		sum, err := Verify(bytes.NewReader(b))
		if err == nil && sum.Bytes != int64(len(b)) {
			t.Fatalf("verified %d of %d bytes", sum.Bytes, len(b))
		}
	})
}

// TestWriteSeed refreshes the committed fuzz seed (SEVSHIM_WRITE_SEEDS=1).
func TestWriteSeed(t *testing.T) {
	if os.Getenv("SEVSHIM_WRITE_SEEDS") != "1" {
		t.Skip("set SEVSHIM_WRITE_SEEDS=1 to rewrite testdata/fuzz/FuzzVerify/valid-micro")
	}
	fx := makePackage(t, readStream(t, "micro.bin"))
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n[]byte(")
	b.WriteString(strconvQuote(fx.pkg))
	b.WriteString(")\n")
	if err := os.WriteFile(filepath.Join("testdata", "fuzz", "FuzzVerify", "valid-micro"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func strconvQuote(b []byte) string { return strconv.Quote(string(b)) }

// TestTPMDeviceByte: header byte 0x27 carries the TPM flag; a package without a TPM keeps the
// old encoding (0) and unknown device bits are refused.
func TestTPMDeviceByte(t *testing.T) {
	for _, tpm := range []bool{false, true} {
		h := &Header{Policy: 1, PDH: make([]byte, sev.CertSize), Session: make([]byte, sev.SessionSize),
			Shape: Shape{Machine: "pc-q35-7.2", RAMSize: 1 << 20, CodeSize: 4096, CPUs: 1, TPM: tpm}}
		var buf bytes.Buffer
		w, err := NewWriter(&buf, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.bw.Flush(); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		want := byte(0)
		if tpm {
			want = DeviceTPM
		}
		if b[0x27] != want {
			t.Fatalf("tpm=%v: byte 0x27 = 0x%02x, want 0x%02x", tpm, b[0x27], want)
		}
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if r.Header().Shape.TPM != tpm {
			t.Fatalf("tpm=%v read back as %v", tpm, r.Header().Shape.TPM)
		}
		b[0x27] |= 0x02
		_, err = NewReader(bytes.NewReader(b))
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Offset != 0x27 {
			t.Fatalf("unknown device bit: want a FormatError at 0x27, got %v", err)
		}
	}
}
