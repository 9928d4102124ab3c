// Command mkvectors is the shim engineer's small test helper: it signs manifests and assembles
// policy blocks with two fixed TEST keys (never use them for anything real), embeds a policy
// into a shim template through the footer table, and checks the template's footer table.
//
// It exists so the firmware and its C tests can be exercised before (and independently of) the
// project's real Go packages (bios, policy, shimimage). It implements docs/formats.md directly
// and uses only the standard library.
//
//	mkvectors vectors -dir DIR                 committed C unit-test vectors
//	mkvectors sign -bios F -version N -name S -out M [-key 1|2] [-layout L] [-image-size N]
//	mkvectors policy -out P [-floor N] [-deny-version N] [-deny-digest-of FILE] [-signers 1|2]
//	mkvectors embed -image SHIM -policy P -out OUT
//	mkvectors footer -image SHIM               check the footer table of a template image
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
)

// Test keys (P-384 private scalars). Public, deliberately: they sign test vectors only.
var testKeys = []string{
	"eaa65cb53ba30d56687fe624f0bc60db9bf67399724bcee562235a6bbbb1945edf4226c1b563aff43c8c151dbdbbcafb",
	"1ed5d05ec5f250d09063d7424eb3a2b66259c59c70158e260807fc83f05ccb21c68bc66e02c0ec912383f4a039907588",
}

const (
	codeSize     = 0x37C000
	varsSize     = 0x84000
	manifestSize = 352
	regionSize   = 0x4000
	policyGPA    = 0xFFFD0000
	imageBase    = 0x1_0000_0000 - codeSize
)

var (
	guidFooter = guid(0x96b582de, 0x1fb2, 0x45f7, "baeaa366c55a082d")
	guidReset  = guid(0x00f771de, 0x1a7e, 0x4fcb, "890e68c77e2fb44e")
	guidSecret = guid(0x4c2eb361, 0x7d9b, 0x4cc3, "8081127c90d3d294")
	guidPolicy = guid(0x0ac6472c, 0xd1f2, 0x4ae6, "8da8f00f54648a10")
	guidInfo   = guid(0x138ba441, 0x15dc, 0x4aec, "aaad0397d4fdd549")
)

// guid returns the EFI byte order (first three fields little-endian).
func guid(a uint32, b, c uint16, rest string) []byte {
	g := make([]byte, 16)
	binary.LittleEndian.PutUint32(g[0:], a)
	binary.LittleEndian.PutUint16(g[4:], b)
	binary.LittleEndian.PutUint16(g[6:], c)
	r, _ := hex.DecodeString(rest)
	copy(g[8:], r)
	return g
}

func key(i int) *ecdsa.PrivateKey {
	d, _ := hex.DecodeString(testKeys[i-1])
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), d)
	if err != nil {
		panic(err)
	}
	return k
}

func pub(k *ecdsa.PrivateKey) []byte {
	b, err := k.PublicKey.Bytes()
	if err != nil {
		panic(err)
	}
	return b
}

func keyID(k *ecdsa.PrivateKey) []byte {
	h := sha512.Sum384(pub(k))
	return h[:]
}

type manifestArgs struct {
	key       int
	layout    uint32
	imageSize uint64
	version   uint64
	digest    []byte
	name      string
}

func manifest(a manifestArgs) []byte {
	m := make([]byte, manifestSize)
	copy(m, "SEVSHMAN")
	binary.LittleEndian.PutUint16(m[8:], 1)
	binary.LittleEndian.PutUint16(m[10:], 256)
	binary.LittleEndian.PutUint32(m[12:], a.layout)
	binary.LittleEndian.PutUint64(m[16:], a.imageSize)
	binary.LittleEndian.PutUint64(m[24:], a.version)
	copy(m[0x20:0x50], a.digest)
	k := key(a.key)
	copy(m[0x50:0x80], keyID(k))
	copy(m[0x80:0xBF], a.name)
	h := sha512.Sum384(m[:256])
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		panic(err)
	}
	if n := elliptic.P384().Params().N; s.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		s.Sub(n, s) // low-s, the only form the shim accepts (docs/formats.md section 3)
	}
	r.FillBytes(m[0x100:0x130])
	s.FillBytes(m[0x130:0x160])
	return m
}

type policyArgs struct {
	signers       int
	floor         uint64
	deniedDigests [][]byte
	deniedVers    []uint64
}

func policy(a policyArgs) []byte {
	total := 64 + 160*a.signers + 48*len(a.deniedDigests) + 8*len(a.deniedVers)
	p := make([]byte, total)
	copy(p, "SEVSHPOL")
	binary.LittleEndian.PutUint16(p[8:], 2) // policy format version 2 (docs/formats.md section 2)
	binary.LittleEndian.PutUint16(p[10:], 64)
	binary.LittleEndian.PutUint32(p[12:], uint32(total))
	binary.LittleEndian.PutUint32(p[16:], 1)
	binary.LittleEndian.PutUint16(p[0x18:], uint16(a.signers))
	binary.LittleEndian.PutUint16(p[0x1A:], uint16(len(a.deniedDigests)))
	binary.LittleEndian.PutUint16(p[0x1C:], uint16(len(a.deniedVers)))
	p[0x1E] = 2 // vars_mode any: the smoke test passes the template var store
	off := 64
	for i := 1; i <= a.signers; i++ {
		k := key(i)
		copy(p[off:], keyID(k))
		copy(p[off+48:], pub(k))
		binary.LittleEndian.PutUint64(p[off+152:], a.floor)
		off += 160
	}
	for _, d := range a.deniedDigests {
		copy(p[off:], d)
		off += 48
	}
	for _, v := range a.deniedVers {
		binary.LittleEndian.PutUint64(p[off:], v)
		off += 8
	}
	return p
}

// patternBIOS is the synthetic 0x37C000-byte image the C unit tests rebuild identically.
func patternBIOS() []byte {
	b := make([]byte, codeSize)
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	return b
}

type footerEntry struct {
	guid []byte
	data []byte
}

// footer walks the GUIDed table of docs/formats.md section 4.
func footer(img []byte) ([]footerEntry, error) {
	n := len(img)
	if n < 0x40 || !bytes.Equal(img[n-0x30:n-0x20], guidFooter) {
		return nil, errors.New("footer GUID not found at end-0x30")
	}
	total := int(binary.LittleEndian.Uint16(img[n-0x32:]))
	if total < 18 || total > n-0x20 {
		return nil, fmt.Errorf("footer table length %d out of range", total)
	}
	start := n - 0x20 - total
	pos := n - 0x32 // end of the entries
	var es []footerEntry
	for pos > start {
		if pos-18 < start {
			return nil, errors.New("truncated footer entry")
		}
		g := img[pos-16 : pos]
		l := int(binary.LittleEndian.Uint16(img[pos-18:]))
		if l < 18 || pos-l < start {
			return nil, fmt.Errorf("footer entry length %d out of range", l)
		}
		es = append(es, footerEntry{guid: g, data: img[pos-l : pos-18]})
		pos -= l
	}
	return es, nil
}

func find(es []footerEntry, g []byte) []byte {
	for _, e := range es {
		if bytes.Equal(e.guid, g) {
			return e.data
		}
	}
	return nil
}

func policyRegion(img []byte) (int, error) {
	es, err := footer(img)
	if err != nil {
		return 0, err
	}
	d := find(es, guidPolicy)
	if len(d) != 8 {
		return 0, errors.New("no sevshim policy entry with 8 data bytes")
	}
	gpa := binary.LittleEndian.Uint32(d)
	size := binary.LittleEndian.Uint32(d[4:])
	base := uint32(0x1_0000_0000 - uint64(len(img)))
	if size != regionSize || gpa < base || uint64(gpa-base)+uint64(size) > uint64(len(img)) {
		return 0, fmt.Errorf("policy entry gpa %#x size %#x outside the image", gpa, size)
	}
	return int(gpa - base), nil
}

func checkFooter(img []byte) error {
	if len(img) != codeSize {
		return fmt.Errorf("image is %d bytes, want %d", len(img), codeSize)
	}
	es, err := footer(img)
	if err != nil {
		return err
	}
	if len(es) != 4 {
		return fmt.Errorf("footer has %d entries, want 4", len(es))
	}
	info := find(es, guidInfo)
	if len(info) != 8 || binary.LittleEndian.Uint32(info) != 1 || binary.LittleEndian.Uint32(info[4:]) != 1 {
		return errors.New("sevshim info entry is not (1, 1)")
	}
	sec := find(es, guidSecret)
	if len(sec) != 8 || binary.LittleEndian.Uint32(sec[4:]) == 0 {
		return errors.New("SEV secret block entry missing or empty")
	}
	rst := find(es, guidReset)
	if len(rst) != 4 {
		return errors.New("SEV-ES reset block entry missing")
	}
	off, err := policyRegion(img)
	if err != nil {
		return err
	}
	if off != policyGPA-imageBase {
		return fmt.Errorf("policy region at offset %#x, want %#x", off, policyGPA-imageBase)
	}
	for _, b := range img[off : off+regionSize] {
		if b != 0 {
			return errors.New("template policy region is not all zero")
		}
	}
	fmt.Printf("footer OK: policy offset %#x gpa %#x, secret %#x+%#x, reset block %#x\n", off, policyGPA,
		binary.LittleEndian.Uint32(sec), binary.LittleEndian.Uint32(sec[4:]), binary.LittleEndian.Uint32(rst))
	return nil
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkvectors:", err)
		os.Exit(1)
	}
}

func writeVectors(dir string) {
	must(os.MkdirAll(dir, 0o755))
	bios := patternBIOS()
	d := sha512.Sum384(bios)
	w := func(name string, b []byte) { must(os.WriteFile(filepath.Join(dir, name), b, 0o644)) }
	w("key1.pub", pub(key(1)))
	w("key2.pub", pub(key(2)))
	base := manifestArgs{key: 1, layout: 1, imageSize: codeSize, version: 5, digest: d[:], name: "pattern-bios 5"}
	w("good.man", manifest(base))
	a := base
	a.layout = 2
	w("layout2.man", manifest(a))
	a = base
	a.imageSize = codeSize - 0x1000
	w("imgsize.man", manifest(a))
	a = base
	a.key = 2
	w("key2.man", manifest(a))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mkvectors vectors|sign|policy|embed|footer ...")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", "", "output directory")
	biosPath := fs.String("bios", "", "BIOS image")
	version := fs.Uint64("version", 1, "bios_version")
	name := fs.String("name", "", "version string")
	out := fs.String("out", "", "output file")
	keyN := fs.Int("key", 1, "test key 1 or 2")
	layout := fs.Uint("layout", 1, "layout id")
	imageSize := fs.Uint64("image-size", codeSize, "manifest image_size")
	floor := fs.Uint64("floor", 0, "min_version of every signer")
	denyVer := fs.Int64("deny-version", -1, "deny this version")
	denyDigestOf := fs.String("deny-digest-of", "", "deny the SHA-384 of this file")
	signers := fs.Int("signers", 1, "number of test signers (1 or 2)")
	image := fs.String("image", "", "shim image")
	pol := fs.String("policy", "", "policy block")
	must(fs.Parse(os.Args[2:]))

	switch os.Args[1] {
	case "vectors":
		writeVectors(*dir)
	case "sign":
		b, err := os.ReadFile(*biosPath)
		must(err)
		d := sha512.Sum384(b)
		must(os.WriteFile(*out, manifest(manifestArgs{key: *keyN, layout: uint32(*layout),
			imageSize: *imageSize, version: *version, digest: d[:], name: *name}), 0o644))
	case "policy":
		a := policyArgs{signers: *signers, floor: *floor}
		if *denyVer >= 0 {
			a.deniedVers = append(a.deniedVers, uint64(*denyVer))
		}
		if *denyDigestOf != "" {
			b, err := os.ReadFile(*denyDigestOf)
			must(err)
			d := sha512.Sum384(b)
			a.deniedDigests = append(a.deniedDigests, d[:])
		}
		must(os.WriteFile(*out, policy(a), 0o644))
	case "embed":
		img, err := os.ReadFile(*image)
		must(err)
		p, err := os.ReadFile(*pol)
		must(err)
		off, err := policyRegion(img)
		must(err)
		if len(p) > regionSize {
			must(errors.New("policy larger than the region"))
		}
		copy(img[off:off+regionSize], make([]byte, regionSize))
		copy(img[off:], p)
		must(os.WriteFile(*out, img, 0o644))
	case "footer":
		img, err := os.ReadFile(*image)
		must(err)
		must(checkFooter(img))
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}
