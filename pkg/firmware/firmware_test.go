package firmware

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"

	"github.com/sevshim/sevshim/tests/repo"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
)

// The embedded template is a shim template: footer table, sevshim policy entry, empty policy.
func TestEmbeddedIsTemplate(t *testing.T) {
	tpl, err := Template()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shimimage.Info(tpl); err != nil {
		t.Fatalf("embedded template: %v", err)
	}
	if _, _, err := shimimage.ExtractPolicy(tpl); err != shimimage.ErrEmptyPolicy {
		t.Fatalf("embedded template policy: got %v, want %v", err, shimimage.ErrEmptyPolicy)
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

// The embedded copy must be the firmware this commit builds. A change to shim/ without
// `make firmware` fails here.
func TestEmbeddedMatchesBuild(t *testing.T) {
	path, err := repo.ShimTemplate()
	if err != nil {
		t.Fatal(err)
	}
	built, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s not built (make shim): %v", path, err)
	}
	tpl, err := Template()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, tpl) {
		t.Fatalf("pkg/firmware/shim.fd.gz (sha256 %s) is not %s (sha256 %x): run make firmware",
			Digest(), path, sha256.Sum256(built))
	}
}
