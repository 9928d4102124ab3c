package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/builder/inspect"
	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/format/shimimage/shimtest"
)

// Layout ovmf-2m (Debian's OVMF_CODE.fd): sign-bios picks it by the image size or by --layout,
// build takes the embedded ovmf-2m template for a `layout: ovmf-2m` policy, inspect names the
// layout, and the two layouts never mix.
func TestLayout2M(t *testing.T) {
	inEnv(t)
	t.Setenv(TemplateEnv, "") // the embedded templates
	fd := "/usr/share/OVMF/OVMF_CODE.fd"
	if _, err := os.Stat(fd); err != nil {
		t.Skipf("Debian OVMF not installed: %v", err)
	}
	for _, args := range [][]string{
		{"sign-bios", "--key", "signer-a.pem", "--version", "5", "--out", "by-size.bundle", fd},
		{"sign-bios", "--key", "signer-a.pem", "--version", "5", "--layout", "ovmf-2m", "--out", "2m.bundle", fd},
	} {
		out, e, c := run(t, args...)
		if c != 0 || !strings.Contains(out, "ovmf-2m version 5") {
			t.Fatalf("%v: exit %d\n%s%s", args, c, out, e)
		}
		_, img, m, err := manifest.ReadBundle(args[len(args)-2])
		if err != nil || m.Layout != layout.OVMF2M || m.ImageSize != 0x1E0000 || len(img) != 0x1E0000 {
			t.Fatalf("%v: layout %d, image size %#x (%v)", args, m.Layout, m.ImageSize, err)
		}
	}
	// a 4M image under --layout ovmf-2m and the reverse are refused before signing
	if _, e, c := run(t, "sign-bios", "--key", "signer-a.pem", "--version", "5", "--layout", "ovmf-4m", "--out", "x.bundle", fd); c != 1 ||
		!strings.Contains(e, "size is 0x1e0000 bytes, layout ovmf-4m needs exactly 0x37c000") {
		t.Fatalf("2M image as ovmf-4m: exit %d %q", c, e)
	}

	pol, _ := os.ReadFile("policy.yaml")
	p2 := strings.Replace(strings.Replace(string(pol), "layout: ovmf-4m", "layout: ovmf-2m", 1), "secret: require", "secret: optional", 1)
	os.WriteFile("2m.yaml", []byte(p2), 0o644)
	out, e, c := run(t, "build", "--policy", "2m.yaml", "--out", "shim-2m.fd")
	if c != 0 || !strings.Contains(out, "layout ovmf-2m") {
		t.Fatalf("build ovmf-2m: exit %d\n%s%s", c, out, e)
	}
	img, _ := os.ReadFile("shim-2m.fd")
	if in, err := shimimage.Info(img); err != nil || len(img) != 0x1E0000 || in.Layout != layout.OVMF2M {
		t.Fatalf("built ovmf-2m shim: %d bytes, %+v, %v", len(img), in, err)
	}
	var r inspect.Report
	js, e, c := run(t, "inspect", "--json", "shim-2m.fd")
	if err := json.Unmarshal([]byte(js), &r); err != nil || c != 0 || r.Layout != "ovmf-2m" || r.Policy == nil || r.Policy.Layout != "ovmf-2m" {
		t.Fatalf("inspect ovmf-2m shim: exit %d %v\n%s%s", c, err, js, e)
	}
	js, e, c = run(t, "inspect", "--json", "--shim", "shim-2m.fd", "2m.bundle")
	if err := json.Unmarshal([]byte(js), &r); err != nil || c != 0 || r.Manifest == nil ||
		r.Manifest.ShimVerdict != shimerr.OK.String() || r.Layout != "ovmf-2m" || r.Manifest.Layout != "ovmf-2m" {
		t.Fatalf("inspect ovmf-2m shim + bundle: exit %d %v\n%s%s", c, err, js, e)
	}
	// the 4M bundle against the 2M shim: the model says E025, as the firmware does
	if _, e, c := run(t, "sign-bios", "--key", "signer-a.pem", "--version", "5", "--out", "4m.bundle", ovmfCode(t)); c != 0 {
		t.Fatal(e)
	}
	if js, _, c := run(t, "inspect", "--json", "--shim", "shim-2m.fd", "4m.bundle"); c != ExitRefused ||
		json.Unmarshal([]byte(js), &r) != nil || r.Manifest.ShimVerdict != "E025 layout-mismatch" {
		t.Fatalf("4M bundle, 2M shim: exit %d verdict %q", c, r.Manifest.ShimVerdict)
	}
	// a 2M policy into a 4M template is refused
	os.WriteFile("template-4m.fd", shimtest.Template(1), 0o644)
	if _, e, c := run(t, "build", "--policy", "2m.yaml", "--template", "template-4m.fd", "--out", "x.fd"); c != 1 || !strings.Contains(e, "ovmf-2m") {
		t.Fatalf("2M policy, 4M template: exit %d %q", c, e)
	}
}
