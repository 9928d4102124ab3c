package manifest_test

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/keys"
	"github.com/sevshim/sevshim/tests/golden"
)

const gdir = "../../../testdata/golden/"

func loadCases(t testing.TB) golden.Cases { return golden.LoadCases(t, gdir) }

func read(t testing.TB, p string) []byte { return golden.ReadFile(t, gdir, p) }

func TestLayouts(t *testing.T) {
	l, ok := layout.ByName("ovmf-4m")
	if !ok || l.ID != 1 || l.CodeSize != 0x37C000 || l.CodeBase != 0xFFC84000 || l.VarsSize != 0x84000 || l.VarsBase != 0xFFC00000 {
		t.Fatalf("%+v", l)
	}
	if uint64(l.CodeBase)+uint64(l.CodeSize) != 1<<32 || uint64(l.VarsBase)+uint64(l.VarsSize) != uint64(l.CodeBase) {
		t.Fatal("layout not contiguous below 4 GiB")
	}
	if _, ok := layout.ByID(0); ok {
		t.Fatal("id 0 valid")
	}
}

func TestGoldenManifests(t *testing.T) {
	c := loadCases(t)
	keys := map[string]*manifest.Manifest{}
	_ = keys
	for _, mc := range c.Manifests {
		b := read(t, mc.File)
		if got := manifest.StructureCode(b); got.String() != mc.Structure && !(got == shimerr.OK && mc.Structure == "OK") && got.ID() != mc.Structure {
			t.Errorf("%s: structure %v, want %s", mc.File, got, mc.Structure)
		}
		m, err := manifest.ParseManifest(b)
		if mc.ParseOK != (err == nil) {
			t.Errorf("%s: ParseManifest err=%v, want ok=%v", mc.File, err, mc.ParseOK)
			continue
		}
		var be *manifest.Error
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
	pub, err := keys.ParsePublicKeyPEM(read(t, "keys/"+name+".pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestSignVerifyBundle(t *testing.T) {
	key := keys.DeriveTestKey("sign")
	img := bytes.Repeat([]byte{0x5A}, 0x37C000)
	m, err := manifest.NewManifest(layout.OVMF4M, img, 42, "test 42", &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Sign(key)
	if err != nil || len(b) != manifest.ManifestSize {
		t.Fatal(err)
	}
	m2, err := manifest.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Verify(&key.PublicKey); err != nil {
		t.Fatal(err)
	}
	other := keys.DeriveTestKey("other")
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
	if err := manifest.WriteBundle(p, b, img); err != nil {
		t.Fatal(err)
	}
	mb, ib, m3, err := manifest.ReadBundle(p)
	if err != nil || !bytes.Equal(mb, b) || !bytes.Equal(ib, img) || m3.Version != 42 {
		t.Fatal(err)
	}
	if err := manifest.WriteBundle(p, b, img[1:]); err == nil {
		t.Fatal("bundle with wrong image written")
	}
	whole, _ := os.ReadFile(p)
	os.WriteFile(p, whole[:len(whole)-1], 0o644)
	if _, _, _, err := manifest.ReadBundle(p); !errors.Is(err, manifest.ErrNotBundle) {
		t.Fatalf("truncated bundle: %v", err)
	}
	// NewManifest refusals
	if _, err := manifest.NewManifest(1, img[1:], 1, "", &key.PublicKey); err == nil {
		t.Error("wrong image size accepted")
	}
	if _, err := manifest.NewManifest(1, img, 1, "tab\there", &key.PublicKey); err == nil {
		t.Error("control char in version string accepted")
	}
	if _, err := manifest.NewManifest(7, img, 1, "", &key.PublicKey); err == nil {
		t.Error("unknown layout accepted")
	}
}
