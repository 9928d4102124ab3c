package firmware

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// Every layout has an embedded template: footer table, sevshim policy entry, empty policy,
// the info entry naming that layout.
func TestEmbeddedIsTemplate(t *testing.T) {
	for _, l := range layout.All() {
		tpl, err := TemplateFor(l)
		if err != nil {
			t.Fatal(err)
		}
		in, err := shimimage.Info(tpl)
		if err != nil {
			t.Fatalf("embedded template %s: %v", l.Name, err)
		}
		if in.Layout != l.ID {
			t.Fatalf("embedded template %s: info entry names layout %d", l.Name, in.Layout)
		}
		if _, _, err := shimimage.ExtractPolicy(tpl); err != shimimage.ErrEmptyPolicy {
			t.Fatalf("embedded template %s policy: got %v, want %v", l.Name, err, shimimage.ErrEmptyPolicy)
		}
		tpl[0] ^= 1 // callers get copies
		again, _ := TemplateFor(l)
		if bytes.Equal(tpl, again) {
			t.Fatalf("TemplateFor(%s) returned shared memory", l.Name)
		}
	}
	tpl, err := Template()
	if err != nil {
		t.Fatal(err)
	}
	if in, _ := shimimage.Info(tpl); in.Layout != layout.Default {
		t.Fatalf("Template() is layout %d, want the default %d", in.Layout, layout.Default)
	}
	d := sha256.Sum256(tpl)
	if got := Digest(); got != hex.EncodeToString(d[:]) {
		t.Fatalf("Digest() = %s", got)
	}
	tpl[0] ^= 1 // callers get copies
	again, _ := Template()
	if bytes.Equal(tpl, again) {
		t.Fatal("Template returned shared memory")
	}
}

// The embedded copies must be the firmware this commit builds (build/shim/shim.fd and
// shim-NAME.fd). A change to shim/ without `make firmware` fails here.
func TestEmbeddedMatchesBuild(t *testing.T) {
	def, err := repo.ShimTemplate()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layout.All() {
		path := filepath.Join(filepath.Dir(def), l.ShimFile())
		built, err := os.ReadFile(path)
		if err != nil {
			t.Skipf("%s not built (make shim): %v", path, err)
		}
		tpl, err := TemplateFor(l)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built, tpl) {
			t.Fatalf("pkg/firmware/%s.gz (sha256 %x) is not %s (sha256 %x): run make firmware",
				l.ShimFile(), sha256.Sum256(tpl), path, sha256.Sum256(built))
		}
	}
}
