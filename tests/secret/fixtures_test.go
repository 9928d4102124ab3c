// Package secret holds the integration tests of the shim's secret hand-off (docs/formats.md 4a): real
// QEMU (TCG), the real shim (build/shim/shim.fd), Debian's OVMF and the project's test BIOS
// (build/testbios/testbios.fd, `make -C tests/testbios`). Nothing is simulated.
//
// Every case runs the provider flow with a secret: QEMU A boots the shim with an EFI secret
// table placed at the shim's secret area (GPA 0x80000) by `-device loader` reading a memfd
// (never a file on disk), A reaches READY and is migrated straight into QEMU B over a unix
// socket (no state file either), B gets the bundle by fw_cfg, `cont`, NMI. Then the console
// lines and a dump of all guest RAM (QMP pmemsave into a memfd) are checked.
//
// Missing prerequisites fail the tests with what to do; SEVSHIM_ALLOW_SKIP=1 skips instead.
// The fixture code (keys, signing, A->B) is a minimal copy of the pattern in tests/chain.
package secret

import (
	"crypto/ecdsa"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/keys"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/repo"
)

const (
	memMiB    = 256
	secretGPA = 0x80000 // the shim's secret area (its footer entry)
	stepTO    = 90 * time.Second
	ovmfTO    = 180 * time.Second
)

var workDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "sevshim-secret-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = d
	code := m.Run()
	os.RemoveAll(workDir)
	os.Exit(code)
}

// fixture: one trusted key, two signed bundles and one shim image per secret mode.
type fixture struct {
	key                    *ecdsa.PrivateKey
	tbManifest, tbImage    string           // the test BIOS, version 7
	ovmfManifest, ovmfCode string           // Debian's OVMF_CODE_4M, version 5
	shim                   map[uint8]string // by policy secret mode
}

var (
	fixOnce sync.Once
	fixVal  *fixture
	fixErr  error
)

func getFixture(t *testing.T) *fixture {
	t.Helper()
	harness.RequireChain(t)
	fixOnce.Do(func() { fixVal, fixErr = makeFixture(filepath.Join(workDir, "fixture")) })
	if fixErr != nil {
		t.Fatalf("building fixtures: %v", fixErr)
	}
	return fixVal
}

func makeFixture(dir string) (*fixture, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f := &fixture{ovmfCode: repo.OVMFCode(), shim: map[uint8]string{}}
	var err error
	if f.key, err = keys.GenerateKey(); err != nil {
		return nil, err
	}
	if f.tbImage, err = harness.TestBIOS(); err != nil {
		return nil, err
	}
	sign := func(image, name string, version uint64, vname string) (string, error) {
		img, err := os.ReadFile(image)
		if err != nil {
			return "", err
		}
		m, err := manifest.NewManifest(layout.OVMF4M, img, version, vname, &f.key.PublicKey)
		if err != nil {
			return "", fmt.Errorf("%s: %w", image, err)
		}
		b, err := m.Sign(f.key)
		if err != nil {
			return "", err
		}
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, b, 0o600)
	}
	if f.tbManifest, err = sign(f.tbImage, "testbios.manifest", 7, "sevshim-testbios"); err != nil {
		return nil, err
	}
	if f.ovmfManifest, err = sign(f.ovmfCode, "ovmf.manifest", 5, "debian-ovmf-4m"); err != nil {
		return nil, err
	}
	tplPath, err := repo.ShimTemplate()
	if err != nil {
		return nil, err
	}
	tpl, err := os.ReadFile(tplPath)
	if err != nil {
		return nil, err
	}
	for _, mode := range []uint8{policy.SecretOptional, policy.SecretRequire} {
		pol := &policy.Policy{
			Layout:     layout.OVMF4M,
			SecretMode: mode,
			TPMMode:    policy.TPMOff,
			Signers:    []policy.Signer{{PublicKey: &f.key.PublicKey, MinVersion: 1}},
			VarsMode:   policy.VarsAny, // B gets its pflash1 store as opt/org.sevshim/vars
		}
		enc, err := pol.Encode()
		if err != nil {
			return nil, err
		}
		img, err := shimimage.EmbedPolicy(tpl, enc)
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, fmt.Sprintf("shim-secret-%s.fd", policy.SecretModeName(mode)))
		if err := os.WriteFile(p, img, 0o600); err != nil {
			return nil, err
		}
		f.shim[mode] = p
	}
	return f, nil
}

// run describes one A->B chain.
type run struct {
	shim     string
	secret   []byte // placed at secretGPA in A (nil: none)
	manifest string
	image    string
}

// startChain runs A to READY with the secret, migrates A into B over a unix socket, and
// resumes B with the bundle (cont + NMI). It returns B; A is gone.
func startChain(t *testing.T, f *fixture, r run) *qemu.VM {
	t.Helper()
	var extra []string
	if r.secret != nil {
		m := harness.NewMemfd(t, "sevshim-test-secret", r.secret)
		extra = []string{"-device", fmt.Sprintf("loader,file=%s,addr=%#x,force-raw=on", m.Path, secretGPA)}
	}
	return harness.StartChain(t, harness.Chain{Shim: r.shim, Manifest: r.manifest, Image: r.image, MemoryMiB: memMiB, ExtraA: extra})
}
