package bios_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sevshim/sevshim/bios"
	"github.com/sevshim/sevshim/policy"
	"github.com/sevshim/sevshim/shimerr"
)

func FuzzParseManifest(f *testing.F) {
	files, _ := filepath.Glob("../testdata/golden/manifest/*.bin")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		code := bios.StructureCode(b)
		m, err := bios.ParseManifestStructure(b)
		if (err == nil) != (code == shimerr.OK) {
			t.Fatalf("StructureCode %v disagrees with ParseManifestStructure %v", code, err)
		}
		if err != nil {
			if _, err := bios.ParseManifest(b); err == nil {
				t.Fatal("ParseManifest accepts what the structure check refuses")
			}
			return
		}
		enc, err := m.Marshal()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzCheck mutates the manifest, a small window of the image and the vars size against a
// fixed policy: Check must never panic, must be deterministic, and must only say OK when the
// inputs are exactly the signed ones (the signature covers everything Check relies on).
func FuzzCheck(f *testing.F) {
	key := bios.DeriveTestKey("fuzzcheck")
	img := make([]byte, 0x37C000)
	m, _ := bios.NewManifest(1, img, 5, "fuzz", &key.PublicKey)
	good, _ := m.SignDeterministic(key)
	pol := &policy.Policy{Layout: 1, Signers: []policy.Signer{{PublicKey: &key.PublicKey, MinVersion: 4}}, DeniedVersions: []uint64{9}}
	f.Add(good, []byte{}, uint32(0), int32(0), true, true, false, uint32(0))
	f.Add(good, []byte{1}, uint32(100), int32(0), true, true, true, uint32(0x84000))
	f.Add(good[:300], []byte{}, uint32(0), int32(-1), true, true, false, uint32(0))
	f.Fuzz(func(t *testing.T, man, patch []byte, at uint32, sizeDelta int32, mp, ip, vp bool, varsLen uint32) {
		if len(patch) > 64 || varsLen > 0x100000 || sizeDelta > 4096 || sizeDelta < -4096 {
			return
		}
		image := img
		if len(patch) > 0 || sizeDelta != 0 {
			n := len(img) + int(sizeDelta)
			image = make([]byte, n)
			copy(image[int(at)%n:], patch)
		}
		vars := make([]byte, varsLen)
		c1 := bios.Check(pol, man, mp, image, ip, vars, vp)
		c2 := bios.Check(pol, man, mp, image, ip, vars, vp)
		if c1 != c2 || !c1.Known() {
			t.Fatalf("unstable or unknown verdict %v %v", c1, c2)
		}
		if c1 == shimerr.OK {
			if !mp || !ip || !bytes.Equal(man, good) || !bytes.Equal(image, img) || (vp && varsLen != 0x84000) {
				t.Fatal("OK for inputs that are not the signed ones")
			}
		}
	})
}
