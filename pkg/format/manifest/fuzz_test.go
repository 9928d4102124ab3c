package manifest_test

import (
	"bytes"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/internal/formattest"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
)

func FuzzParseManifest(f *testing.F) {
	formattest.Seed(f, "testdata/golden/manifest/*.bin", nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		code := manifest.StructureCode(b)
		m, err := manifest.ParseManifestStructure(b)
		if (err == nil) != (code == shimerr.OK) {
			t.Fatalf("StructureCode %v disagrees with ParseManifestStructure %v", code, err)
		}
		if err != nil {
			if _, err := manifest.ParseManifest(b); err == nil {
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
