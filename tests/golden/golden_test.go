package golden

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// TestCommittedFilesAreReproducible regenerates every golden file and requires the committed
// tree to be byte-identical (run `go run ./tests/golden/mkgolden` after a deliberate change).
func TestCommittedFilesAreReproducible(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	dir := "../../testdata/golden"
	want := map[string]bool{}
	ignore, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	ignored := map[string]bool{}
	for _, l := range strings.Split(string(ignore), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			ignored[strings.TrimPrefix(l, "/")] = true
		}
	}
	for _, f := range files {
		want[f.Path] = true
		if IsLarge(f) {
			// generated at test time (EnsureLarge), never committed
			if !ignored[f.Path] {
				t.Errorf("%s is %d bytes: list it in testdata/golden/.gitignore (large files are generated, not committed)", f.Path, len(f.Data))
			}
			continue
		}
		if ignored[f.Path] {
			t.Errorf("%s is small and must be committed, but testdata/golden/.gitignore lists it", f.Path)
		}
		got, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Errorf("%s: %v (run go run ./tests/golden/mkgolden)", f.Path, err)
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

// TestCheckTemplate: the footer check of `make -C shim check-image` accepts the templates
// `make shim` built, one per layout, and refuses one with a policy embedded or one byte short.
func TestCheckTemplate(t *testing.T) {
	tplPath, err := repo.ShimTemplate()
	if err != nil {
		t.Fatal(err)
	}
	var tpl []byte
	for _, l := range layout.All() {
		p := filepath.Join(filepath.Dir(tplPath), l.ShimFile())
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (run make shim)", err)
		}
		if s, err := CheckTemplate(b); err != nil {
			t.Fatalf("%s: %v", p, err)
		} else if !strings.Contains(s, "("+l.Name+")") {
			t.Fatalf("%s: summary %q does not name layout %s", p, s, l.Name)
		} else {
			t.Log(s)
		}
		if l.ID == layout.Default {
			tpl = b
		}
	}
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path != "policy/one-signer.bin" {
			continue
		}
		built, err := shimimage.EmbedPolicy(tpl, f.Data)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := CheckTemplate(built); err == nil {
			t.Error("a template with an embedded policy passes the check")
		}
	}
	if _, err := CheckTemplate(tpl[1:]); err == nil {
		t.Error("a template one byte short passes the check")
	}
}
