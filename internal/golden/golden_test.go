package golden

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedFilesAreReproducible regenerates every golden file and requires the committed
// tree to be byte-identical (run `go run ./internal/cmd/mkgolden` after a deliberate change).
func TestCommittedFilesAreReproducible(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	dir := "../../testdata/golden"
	want := map[string]bool{}
	for _, f := range files {
		want[f.Path] = true
		got, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Errorf("%s: %v (run go run ./internal/cmd/mkgolden)", f.Path, err)
			continue
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s: committed file differs from the generator's output", f.Path)
		}
	}
	// no stale .bin files
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && filepath.Ext(p) == ".bin" {
			rel, _ := filepath.Rel(dir, p)
			if !want[rel] {
				t.Errorf("%s: stale golden file not produced by the generator", rel)
			}
		}
		return nil
	})
}
