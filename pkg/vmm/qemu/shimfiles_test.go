package qemu

import (
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"testing"
)

// TestShimFilesNames: ShimFiles uses the names the manifest format defines.
func TestShimFilesNames(t *testing.T) {
	fw := ShimFiles("m", "i", "v")
	want := []string{manifest.FwCfgManifest, manifest.FwCfgBIOS, manifest.FwCfgVars}
	if len(fw) != 3 {
		t.Fatalf("ShimFiles: %+v", fw)
	}
	for i, f := range fw {
		if f.Name != want[i] {
			t.Errorf("fw_cfg %d is %q, the manifest format says %q", i, f.Name, want[i])
		}
	}
	if fw := ShimFiles("m", "i", ""); len(fw) != 2 {
		t.Errorf("an empty vars path must leave the vars out: %+v", fw)
	}
}
