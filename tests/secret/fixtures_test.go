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
// The fixtures (keys, signed bundles, shims) and the A->B chain come from tests/harness.
// Missing prerequisites fail the tests with what to do; SEVSHIM_ALLOW_SKIP=1 skips instead.
package secret

import (
	"crypto/ecdsa"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness"
)

const (
	memMiB    = 256
	secretGPA = 0x80000 // the shim's secret area (its footer entry)
	stepTO    = harness.StepTimeout
	ovmfTO    = harness.OVMFTimeout
)

func TestMain(m *testing.M) { harness.Main(m) }

// fixture: the harness's trusted key and bundles (the test BIOS v7, Debian's OVMF_CODE_4M v5)
// and one shim image per secret mode.
type fixture struct {
	fx                     *harness.Fixture
	key                    *ecdsa.PrivateKey
	tbManifest, tbImage    string                  // the test BIOS, version 7
	ovmfManifest, ovmfCode string                  // Debian's OVMF_CODE_4M, version 5
	shim                   map[uint8]*harness.Shim // by policy secret mode
}

func getFixture(t *testing.T) *fixture {
	t.Helper()
	fx := harness.Fixtures(t)
	tb, ovmf := fx.Bundle(t, "testbios-v7"), fx.Bundle(t, "ovmf-v5")
	f := &fixture{fx: fx, key: fx.Key, tbManifest: tb.Manifest, tbImage: tb.Image, ovmfManifest: ovmf.Manifest,
		ovmfCode: ovmf.Image, shim: map[uint8]*harness.Shim{}}
	for _, mode := range []uint8{policy.SecretOptional, policy.SecretRequire} {
		pol := fx.Policy() // B gets its pflash1 store as opt/org.sevshim/vars (vars: any)
		pol.SecretMode = mode
		f.shim[mode] = fx.Shim(t, pol)
	}
	return f
}

// run describes one A->B chain.
type run struct {
	shim     *harness.Shim
	secret   []byte // placed at secretGPA in A (nil: none)
	manifest string
	image    string
}

// startChain runs A to READY with the secret, migrates A into B over a unix socket, and
// resumes B with the bundle (cont + NMI). It returns B; A is gone.
func startChain(t *testing.T, f *fixture, r run) *qemu.VM {
	t.Helper()
	return f.fx.Chain(t, harness.ChainSpec{Shim: r.shim, Manifest: r.manifest, Image: r.image, MemoryMiB: memMiB,
		ExtraA: harness.SecretLoader(t, r.secret, secretGPA)}).VM
}
