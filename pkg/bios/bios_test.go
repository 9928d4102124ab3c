package bios_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sevshim/sevshim/pkg/bios"
	"github.com/sevshim/sevshim/tests/golden"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
)

const gdir = "../../testdata/golden/"

func loadCases(t testing.TB) golden.Cases {
	t.Helper()
	b, err := os.ReadFile(gdir + "cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var c golden.Cases
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func read(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(gdir + p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLayouts(t *testing.T) {
	l, ok := bios.LayoutByName("ovmf-4m")
	if !ok || l.ID != 1 || l.CodeSize != 0x37C000 || l.CodeBase != 0xFFC84000 || l.VarsSize != 0x84000 || l.VarsBase != 0xFFC00000 {
		t.Fatalf("%+v", l)
	}
	if uint64(l.CodeBase)+uint64(l.CodeSize) != 1<<32 || uint64(l.VarsBase)+uint64(l.VarsSize) != uint64(l.CodeBase) {
		t.Fatal("layout not contiguous below 4 GiB")
	}
	if _, ok := bios.LayoutByID(0); ok {
		t.Fatal("id 0 valid")
	}
}

func TestGoldenManifests(t *testing.T) {
	c := loadCases(t)
	keys := map[string]*bios.Manifest{}
	_ = keys
	for _, mc := range c.Manifests {
		b := read(t, mc.File)
		if got := bios.StructureCode(b); got.String() != mc.Structure && !(got == shimerr.OK && mc.Structure == "OK") && got.ID() != mc.Structure {
			t.Errorf("%s: structure %v, want %s", mc.File, got, mc.Structure)
		}
		m, err := bios.ParseManifest(b)
		if mc.ParseOK != (err == nil) {
			t.Errorf("%s: ParseManifest err=%v, want ok=%v", mc.File, err, mc.ParseOK)
			continue
		}
		var be *bios.Error
		if err != nil && (!errors.As(err, &be) || be.Field != mc.ErrorField) {
			t.Errorf("%s: error %v, want field %s", mc.File, err, mc.ErrorField)
		}
		if m == nil {
			continue
		}
		if m.Version != mc.BIOSVersion || m.VersionString != mc.VersionString || hex.EncodeToString(m.ImageDigest[:]) != mc.ImageDigest {
			t.Errorf("%s: fields differ from cases.json", mc.File)
		}
		// re-encoding reproduces every byte (signature included, as it is carried over)
		enc, err := m.Marshal()
		if err != nil || !bytes.Equal(enc, b) {
			t.Errorf("%s: re-encoding differs", mc.File)
		}
		// and the signed part is reproduced from the fields alone
		m2 := *m
		m2.Signature = [96]byte{}
		sb, _ := m2.MarshalSigned()
		if !bytes.Equal(sb, b[:256]) {
			t.Errorf("%s: signed bytes differ", mc.File)
		}
		if mc.SignedBy != "" {
			pub := pubKey(t, mc.SignedBy)
			if err := m.Verify(pub); err != nil {
				t.Errorf("%s: %v", mc.File, err)
			}
		}
	}
}

func pubKey(t testing.TB, name string) *ecdsa.PublicKey {
	t.Helper()
	pub, err := policy.ParsePublicKeyPEM(read(t, "keys/"+name+".pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestGoldenChecks runs the reference decision over every check of cases.json.
func TestGoldenChecks(t *testing.T) {
	c := loadCases(t)
	cache := map[string][]byte{}
	get := func(p string) ([]byte, bool) {
		if p == "" {
			return nil, false
		}
		if b, ok := cache[p]; ok {
			return b, true
		}
		b := read(t, p)
		cache[p] = b
		return b, true
	}
	seen := map[shimerr.Code]bool{}
	for _, cc := range c.Checks {
		pb, _ := get(cc.Policy)
		mb, mp := get(cc.Manifest)
		bb, bp := get(cc.BIOS)
		vb, vp := get(cc.Vars)
		got := bios.CheckEncoded(pb, mb, mp, bb, bp, vb, vp)
		seen[got] = true
		if got.String() != cc.Expect {
			t.Errorf("%s: %v, want %s", cc.Name, got, cc.Expect)
		}
	}
	for _, want := range []shimerr.Code{shimerr.OK, shimerr.PolicyInvalid, shimerr.ManifestMissing, shimerr.ManifestSize,
		shimerr.ManifestMalformed, shimerr.UnknownSigner, shimerr.BadSignature, shimerr.LayoutMismatch,
		shimerr.ImageSizeMismatch, shimerr.BIOSMissing, shimerr.BIOSTruncated, shimerr.BIOSOversized,
		shimerr.DigestMismatch, shimerr.VersionBelowFloor, shimerr.DigestDenied, shimerr.VersionDenied, shimerr.VarsSize} {
		if !seen[want] {
			t.Errorf("no golden check produces %v", want)
		}
	}
}

func TestSignVerifyBundle(t *testing.T) {
	key := bios.DeriveTestKey("sign")
	img := bytes.Repeat([]byte{0x5A}, 0x37C000)
	m, err := bios.NewManifest(bios.LayoutOVMF4M, img, 42, "test 42", &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Sign(key)
	if err != nil || len(b) != bios.ManifestSize {
		t.Fatal(err)
	}
	m2, err := bios.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Verify(&key.PublicKey); err != nil {
		t.Fatal(err)
	}
	other := bios.DeriveTestKey("other")
	if err := m2.Verify(&other.PublicKey); err == nil {
		t.Fatal("verified with another key")
	}
	if _, err := m.Sign(other); err == nil {
		t.Fatal("signed with a key that is not the manifest's signer")
	}
	d1, _ := m.SignDeterministic(key)
	d2, _ := m.SignDeterministic(key)
	if !bytes.Equal(d1, d2) {
		t.Fatal("deterministic signatures differ")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "x.bundle")
	if err := bios.WriteBundle(p, b, img); err != nil {
		t.Fatal(err)
	}
	mb, ib, m3, err := bios.ReadBundle(p)
	if err != nil || !bytes.Equal(mb, b) || !bytes.Equal(ib, img) || m3.Version != 42 {
		t.Fatal(err)
	}
	if err := bios.WriteBundle(p, b, img[1:]); err == nil {
		t.Fatal("bundle with wrong image written")
	}
	whole, _ := os.ReadFile(p)
	os.WriteFile(p, whole[:len(whole)-1], 0o644)
	if _, _, _, err := bios.ReadBundle(p); !errors.Is(err, bios.ErrNotBundle) {
		t.Fatalf("truncated bundle: %v", err)
	}
	// NewManifest refusals
	if _, err := bios.NewManifest(1, img[1:], 1, "", &key.PublicKey); err == nil {
		t.Error("wrong image size accepted")
	}
	if _, err := bios.NewManifest(1, img, 1, "tab\there", &key.PublicKey); err == nil {
		t.Error("control char in version string accepted")
	}
	if _, err := bios.NewManifest(7, img, 1, "", &key.PublicKey); err == nil {
		t.Error("unknown layout accepted")
	}
}

// TestCheckOrder pins the first-failure-wins order of docs/formats.md section 6.
func TestCheckOrder(t *testing.T) {
	key := bios.DeriveTestKey("order")
	img := make([]byte, 0x37C000)
	m, _ := bios.NewManifest(1, img, 2, "v2", &key.PublicKey)
	mb, _ := m.Sign(key)
	pol := &policy.Policy{Layout: 1, Signers: []policy.Signer{{PublicKey: &key.PublicKey, MinVersion: 3}},
		DeniedDigests: [][48]byte{m.ImageDigest}, DeniedVersions: []uint64{2}, VarsMode: policy.VarsAny}
	vars := make([]byte, 5)
	// below floor, denied digest, denied version and bad vars at once: floor wins
	if got := bios.Check(pol, mb, true, img, true, vars, true); got != shimerr.VersionBelowFloor {
		t.Fatalf("got %v", got)
	}
	pol.Signers[0].MinVersion = 0
	if got := bios.Check(pol, mb, true, img, true, vars, true); got != shimerr.DigestDenied {
		t.Fatalf("got %v", got)
	}
	pol.DeniedDigests = nil
	if got := bios.Check(pol, mb, true, img, true, vars, true); got != shimerr.VersionDenied {
		t.Fatalf("got %v", got)
	}
	pol.DeniedVersions = nil
	if got := bios.Check(pol, mb, true, img, true, vars, true); got != shimerr.VarsSize {
		t.Fatalf("got %v", got)
	}
	// var-store mode: none refuses any vars file before its size is looked at; allow needs
	// the digest on the list, after the size
	pol.VarsMode = policy.VarsNone
	if got := bios.Check(pol, mb, true, img, true, vars, true); got != shimerr.VarsNotAllowed {
		t.Fatalf("vars none: got %v", got)
	}
	if got := bios.Check(pol, mb, true, img, true, nil, false); got != shimerr.OK {
		t.Fatalf("vars none without vars: got %v", got)
	}
	good := make([]byte, 0x84000)
	other := bytes.Repeat([]byte{1}, 0x84000)
	pol.VarsMode, pol.AllowedVars = policy.VarsAllow, [][48]byte{sha512.Sum384(good)}
	if got := bios.Check(pol, mb, true, img, true, vars, true); got != shimerr.VarsSize {
		t.Fatalf("vars allow, short: got %v", got)
	}
	if got := bios.Check(pol, mb, true, img, true, other, true); got != shimerr.VarsDigestNotAllowed {
		t.Fatalf("vars allow, other digest: got %v", got)
	}
	if got := bios.Check(pol, mb, true, img, true, good, true); got != shimerr.OK {
		t.Fatalf("vars allow, listed digest: got %v", got)
	}
	pol.VarsMode, pol.AllowedVars = policy.VarsAny, nil
	if got := bios.Check(pol, mb, true, img, true, nil, false); got != shimerr.OK {
		t.Fatalf("got %v", got)
	}
	if got := bios.Check(nil, mb, true, img, true, nil, false); got != shimerr.PolicyInvalid {
		t.Fatalf("nil policy: %v", got)
	}
}
