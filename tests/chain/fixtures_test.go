// Package chain holds the integration tests of the firmware chain (docs/shim.md): real QEMU (TCG),
// Debian's OVMF and the real shim built by `make shim`. Nothing is simulated.
//
// Flow under test (the provider side, docs/hostctl.md): QEMU A runs the shim from its reset
// vector to READY once; its state is migrated into a file. Every test then starts a fresh
// QEMU B from that same file with the BIOS bundle as fw_cfg files, sends `cont` and an NMI,
// and watches COM1 and the 0x402 debug console.
//
// The fixtures (keys, bundles, shims, the READY state) and the chain come from tests/harness.
// `make -C shim smoke` runs the chain boot, the refusals and the PIO fw_cfg case against a
// given build. Missing prerequisites (QEMU, Debian OVMF, build/shim/shim.fd) fail the tests
// with what to do; set SEVSHIM_ALLOW_SKIP=1 to skip instead (never in CI).
package chain

import (
	"crypto/ecdsa"
	"crypto/sha512"
	"os"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/tests/harness"
)

// Policy of the shim under test.
const (
	floorVersion  = 5 // the trusted signer's min_version
	deniedVersion = 7 // on the deny list
	belowFloor    = 4
)

func TestMain(m *testing.M) { harness.Main(m) }

// bundleSet is everything that needs no QEMU: keys, the policy and the BIOS bundles, each
// written as separate manifest and image files (what hostctl passes as fw_cfg files).
type bundleSet struct {
	fx       *harness.Fixture
	pol      *policy.Policy
	keyIDHex string

	ovmf, secboot     string // Debian's images (v5 and v6)
	manifestV5        string
	manifestV6        string
	cases             []refusal
	vars              string // Debian's OVMF_VARS_4M.fd
	deniedImageDigest [48]byte
}

// refusal is one negative case: the fw_cfg files B gets and the code the shim must print.
type refusal struct {
	name     string
	manifest string // "" = no opt/org.sevshim/manifest
	bios     string // "" = no opt/org.sevshim/bios
	vars     string // "" = a fresh copy of OVMF_VARS_4M.fd (the normal case)
	want     string // the exact console line, e.g. "SEVSHIM ERROR E024 bad-signature"
	roCode   bool   // pflash0 read-only: a valid bundle, but the flash cannot be erased
	noVars   bool   // no opt/org.sevshim/vars either (with manifest and bios "": no bundle at all)
}

var bundlesOnce harness.Once[bundleSet]

func getBundles(t *testing.T) *bundleSet {
	t.Helper()
	fx := harness.Fixtures(t)
	return bundlesOnce.Get(t, "building bundle fixtures", func() (*bundleSet, error) { return makeBundles(t, fx) })
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

func makeBundles(t *testing.T, fx *harness.Fixture) (*bundleSet, error) {
	v5b, v6b := fx.Bundle(t, "ovmf-v5"), fx.Bundle(t, "ovmf-v6")
	s := &bundleSet{fx: fx, keyIDHex: fx.KeyIDHex, ovmf: v5b.Image, secboot: v6b.Image, vars: fx.Vars,
		manifestV5: v5b.Manifest, manifestV6: v6b.Manifest}
	ovmf, err := os.ReadFile(s.ovmf)
	if err != nil {
		return nil, err
	}
	// A third, never-run image whose digest the owner revoked: OVMF with one byte changed.
	denied := append([]byte(nil), ovmf...)
	denied[len(denied)/2] ^= 0x5A
	s.deniedImageDigest = sha512.Sum384(denied)

	s.pol = fx.Policy()
	s.pol.Signers[0].MinVersion = floorVersion
	s.pol.DeniedDigests = [][48]byte{s.deniedImageDigest}
	s.pol.DeniedVersions = []uint64{deniedVersion}
	// every run passes B's var store (vars: any); TestVarStoreRestored passes a used one

	v5, err := os.ReadFile(s.manifestV5)
	if err != nil {
		return nil, err
	}
	flip := func(b []byte, off int, bit uint) []byte {
		c := append([]byte(nil), b...)
		c[off] ^= 1 << bit
		return c
	}
	var paths = map[string]string{}
	var firstErr error
	must := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	add := func(name string, b []byte) {
		p, err := fx.File(name, b)
		paths[name] = p
		must(err)
	}
	sign := func(name string, key *ecdsa.PrivateKey, image []byte, version uint64, vname string) {
		b, err := fx.Sign(key, image, version, vname)
		must(err)
		add(name, b)
	}

	add("flipped-image.fd", flip(ovmf, 0x123456, 3))
	add("flipped-body.manifest", flip(v5, 0x20+7, 0)) // a bit of image_digest
	add("flipped-sig.manifest", flip(v5, 0x100+20, 5))
	sign("stranger.manifest", fx.Stranger, ovmf, 9, "stranger")
	sign("below-floor.manifest", fx.Key, ovmf, belowFloor, "rollback")
	sign("denied-digest.manifest", fx.Key, denied, 8, "revoked-image")
	add("denied-digest.fd", denied)
	sign("denied-version.manifest", fx.Key, ovmf, deniedVersion, "revoked-version")
	// Layout id 2 does not exist in the layout table, so NewManifest refuses it: build the
	// manifest by hand and sign it with the trusted key. Everything else is valid.
	wrong := &manifest.Manifest{
		Layout: 2, ImageSize: uint64(len(ovmf)), Version: 6,
		ImageDigest: sha512.Sum384(ovmf), SignerKeyID: fx.KeyID, VersionString: "other-layout",
	}
	b, err := wrong.Sign(fx.Key)
	must(err)
	add("wrong-layout.manifest", b)
	add("truncated.fd", ovmf[:len(ovmf)-4096])
	add("oversized.fd", append(append([]byte(nil), ovmf...), make([]byte, 4096)...))
	garbage := make([]byte, manifest.ManifestSize)
	for i := range garbage {
		garbage[i] = byte(i*131 + 7)
	}
	add("garbage.manifest", garbage)
	add("short.manifest", v5[:200])
	vars, err := os.ReadFile(s.vars)
	must(err)
	if err == nil {
		add("short-vars.fd", vars[:len(vars)-4096])
	}
	if firstErr != nil {
		return nil, firstErr
	}

	line := func(code string) string { return "SEVSHIM ERROR " + code }
	s.cases = []refusal{
		{name: "flipped-image-bit", manifest: s.manifestV5, bios: paths["flipped-image.fd"], want: line("E033 digest-mismatch")},
		{name: "flipped-manifest-body-bit", manifest: paths["flipped-body.manifest"], bios: s.ovmf, want: line("E024 bad-signature")},
		{name: "flipped-signature-bit", manifest: paths["flipped-sig.manifest"], bios: s.ovmf, want: line("E024 bad-signature")},
		{name: "unknown-signer", manifest: paths["stranger.manifest"], bios: s.ovmf, want: line("E023 unknown-signer")},
		{name: "version-below-floor", manifest: paths["below-floor.manifest"], bios: s.ovmf, want: line("E034 version-below-floor")},
		{name: "denied-digest", manifest: paths["denied-digest.manifest"], bios: paths["denied-digest.fd"], want: line("E035 digest-denied")},
		{name: "denied-version", manifest: paths["denied-version.manifest"], bios: s.ovmf, want: line("E036 version-denied")},
		{name: "wrong-layout", manifest: paths["wrong-layout.manifest"], bios: s.ovmf, want: line("E025 layout-mismatch")},
		{name: "truncated-image", manifest: s.manifestV5, bios: paths["truncated.fd"], want: line("E031 bios-truncated")},
		{name: "oversized-image", manifest: s.manifestV5, bios: paths["oversized.fd"], want: line("E032 bios-oversized")},
		{name: "missing-manifest", bios: s.ovmf, want: line("E020 manifest-missing")},
		// no fw_cfg file at all: a host that resumed B without the bundle
		{name: "no-bundle", noVars: true, want: line("E020 manifest-missing")},
		{name: "missing-bios", manifest: s.manifestV5, want: line("E030 bios-missing")},
		{name: "garbage-manifest", manifest: paths["garbage.manifest"], bios: s.ovmf, want: line("E022 manifest-malformed")},
		{name: "short-manifest", manifest: paths["short.manifest"], bios: s.ovmf, want: line("E021 manifest-size")},
		{name: "wrong-vars-size", manifest: s.manifestV5, bios: s.ovmf, vars: paths["short-vars.fd"], want: line("E040 vars-size")},
		// A valid bundle, but the host made pflash0 read-only: the erase fails and the shim
		// must halt instead of handing off to whatever the flash holds.
		{name: "readonly-code-flash", manifest: s.manifestV5, bios: s.ovmf, want: line("E053 flash-program"), roCode: true},
	}
	return s, nil
}

// chainEnv is the shim image under test and the READY state saved from QEMU A.
type chainEnv struct {
	*bundleSet
	img       *harness.Shim
	shim      string // the shim image (template + policy) used as pflash0 everywhere
	shimBytes []byte
	shimSHA   [32]byte
	lay       layout.Layout // the policy's layout: the template, pflash sizes, LOADED sizes
	state     string        // A's READY state
	stateSize int64
	aReady    time.Duration // QEMU A start -> READY on debugcon
}

// env builds the shim image and runs QEMU A once per test binary.
func env(t *testing.T) *chainEnv {
	t.Helper()
	b := getBundles(t)
	return makeEnv(t, b, b.pol)
}

// envWith is env for a shim whose policy is the fixture policy changed by edit (its own
// image and READY state, made once per policy).
func envWith(t *testing.T, name string, edit func(p *policy.Policy)) *chainEnv {
	t.Helper()
	b := getBundles(t)
	p := *b.pol
	edit(&p)
	return makeEnv(t, b, &p)
}

func makeEnv(t *testing.T, b *bundleSet, pol *policy.Policy) *chainEnv {
	t.Helper()
	img := b.fx.Shim(t, pol)
	r := b.fx.Ready(t, img)
	return &chainEnv{bundleSet: b, img: img, shim: img.Path, shimBytes: img.Bytes, shimSHA: img.SHA256, lay: img.Layout,
		state: r.Path, stateSize: r.Bytes, aReady: r.AReady}
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeFile(dst, b)
}
