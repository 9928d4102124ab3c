package chain

// The second layout end to end (docs/formats.md section 1): Debian's OVMF_CODE.fd (0x1E0000
// bytes) and OVMF_VARS.fd (0x20000) signed with `builder sign-bios`, a shim for ovmf-2m made
// by `builder build` from build/shim/shim-ovmf-2m.fd, the A->B chain to OVMF's shell, and the
// refusals when a BIOS of one layout is offered to a shim of the other (E025: the manifest's
// layout is not the policy's, docs/errors.md).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/builder/cli"
	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/keys"
	"github.com/sevshim/sevshim/pkg/verifyref"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// set2M is the ovmf-2m shim with its READY state and the ovmf-2m bundle's parts.
type set2M struct {
	env      *chainEnv
	manifest string // the manifest of the sign-bios bundle (what hostctl passes via fw_cfg)
	image    string // Debian's OVMF_CODE.fd
}

// once2M: the ovmf-2m fixtures are made once per test binary.
var once2M harness.Once[set2M]

func env2M(t *testing.T) *set2M {
	t.Helper()
	b := getBundles(t)
	return once2M.Get(t, "building the ovmf-2m fixtures", func() (*set2M, error) {
		return make2M(t, b, filepath.Join(b.fx.Dir, "ovmf-2m"))
	})
}

// builder runs the builder CLI in this process (the same code as build/bin/builder).
func builder(args ...string) error {
	var out, errb bytes.Buffer
	if code := cli.Main(context.Background(), args, &out, &errb); code != 0 {
		return fmt.Errorf("builder %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return nil
}

func make2M(t *testing.T, b *bundleSet, dir string) (*set2M, error) {
	lay, _ := layout.ByID(layout.OVMF2M)
	code, vars := filepath.Join(repo.OVMFDir(), lay.CodeFile), filepath.Join(repo.OVMFDir(), lay.VarsFile)
	if err := repo.RequireFiles(code, vars); err != nil {
		return nil, fmt.Errorf("Debian OVMF (ovmf-2m): %v; run scripts/setup.sh", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	j := func(n string) string { return filepath.Join(dir, n) }
	priv, err := keys.MarshalPrivateKeyPEM(b.fx.Key)
	if err != nil {
		return nil, err
	}
	pub, err := keys.MarshalPublicKeyPEM(&b.fx.Key.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := writeFile(j("trusted.pem"), priv); err != nil {
		return nil, err
	}
	if err := writeFile(j("trusted.pub"), pub); err != nil {
		return nil, err
	}
	// sign-bios picks the layout by the image size
	if err := builder("sign-bios", "--key", j("trusted.pem"), "--version", "5", "--version-string", "debian-ovmf-2m",
		"--out", j("v5-2m.bundle"), code); err != nil {
		return nil, err
	}
	mb, img, m, err := manifest.ReadBundle(j("v5-2m.bundle"))
	if err != nil {
		return nil, err
	}
	want, err := os.ReadFile(code)
	if err != nil {
		return nil, err
	}
	if m.Layout != layout.OVMF2M || len(img) != int(lay.CodeSize) || !bytes.Equal(img, want) {
		return nil, fmt.Errorf("sign-bios of %s: layout %d, %d image bytes", code, m.Layout, len(img))
	}
	if err := writeFile(j("v5-2m.manifest"), mb); err != nil {
		return nil, err
	}
	yaml := "layout: ovmf-2m\nsecret: optional\ntpm: off\nsigners:\n  - key: " + j("trusted.pub") +
		"\n    min_version: 5\nvars: any\n"
	if err := writeFile(j("policy-2m.yaml"), []byte(yaml)); err != nil {
		return nil, err
	}
	def, err := repo.ShimTemplate()
	if err != nil {
		return nil, err
	}
	if err := builder("build", "--policy", j("policy-2m.yaml"), "--template", filepath.Join(filepath.Dir(def), lay.ShimFile()),
		"--out", j("shim-2m.fd")); err != nil {
		return nil, err
	}
	pol, err := policy.LoadYAML(j("policy-2m.yaml"))
	if err != nil {
		return nil, err
	}
	b2 := *b
	b2.pol, b2.vars, b2.ovmf, b2.cases = pol, vars, code, nil
	e := makeEnv(t, &b2, pol)
	built, err := os.ReadFile(j("shim-2m.fd"))
	if err != nil {
		return nil, err
	}
	if e.lay.ID != layout.OVMF2M || !bytes.Equal(built, e.shimBytes) {
		return nil, fmt.Errorf("the shim under test (layout %s) is not what builder build wrote", e.lay.Name)
	}
	return &set2M{env: e, manifest: j("v5-2m.manifest"), image: code}, nil
}

// TestLayout2MBootsOVMF: the ovmf-2m shim resumed in B verifies the ovmf-2m bundle, programs
// both 2M-layout flash devices, hands off, and Debian's OVMF_CODE.fd boots to its shell.
func TestLayout2MBootsOVMF(t *testing.T) {
	s := env2M(t)
	r := startB(t, s.env, s.manifest, s.image, "")
	if r.wantVars != 0x20000 || r.lay.CodeSize != 0x1E0000 {
		t.Fatalf("B of layout %s: vars %#x", r.lay.Name, r.wantVars)
	}
	assertBoots(t, s.env, r, s.image, 5, "debian-ovmf-2m")
}

// TestLayout2MRefusals: a BIOS of one layout offered to a shim of the other is refused with
// E025 before anything is flashed (no FLASHED or HANDOFF, pflash0 unchanged, OVMF never
// prints), as the reference model says.
func TestLayout2MRefusals(t *testing.T) {
	s := env2M(t)
	e4 := env(t)
	for _, c := range []struct {
		name           string
		shim           *chainEnv
		manifest, bios string
	}{
		{"4m-bios-to-2m-shim", s.env, e4.manifestV5, e4.ovmf},
		{"2m-bios-to-4m-shim", e4, s.manifest, s.image},
	} {
		t.Run(c.name, func(t *testing.T) {
			man, img, vars := mustRead(t, c.manifest), mustRead(t, c.bios), mustRead(t, c.shim.vars)
			if got := verifyref.Check(c.shim.pol, man, true, img, true, vars, true); got != shimerr.LayoutMismatch {
				t.Fatalf("reference model says %s, want %s", got, shimerr.LayoutMismatch)
			}
			r := startB(t, c.shim, c.manifest, c.bios, "")
			assertRefused(t, c.shim, r, shimerr.LayoutMismatch)
		})
	}
}
