// Package chain holds the integration tests of the firmware chain (docs/shim.md): real QEMU (TCG),
// Debian's OVMF and the real shim built by `make shim`. Nothing is simulated.
//
// Flow under test (the provider side, docs/hostctl.md): QEMU A runs the shim from its reset
// vector to READY once; its state is migrated into a file. Every test then starts a fresh
// QEMU B from that same file with the BIOS bundle as fw_cfg files, sends `cont` and an NMI,
// and watches COM1 and the 0x402 debug console.
//
// Missing prerequisites (QEMU, Debian OVMF, build/shim/shim.fd) fail the tests with what to
// do; set SEVSHIM_ALLOW_SKIP=1 to skip instead (never in CI).
package chain

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/bios"
	"github.com/sevshim/sevshim/tests/repo"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
)

// Policy of the shim under test.
const (
	floorVersion  = 5 // the trusted signer's min_version
	deniedVersion = 7 // on the deny list
	belowFloor    = 4
)

// workDir holds every fixture of this test binary; TestMain removes it.
var workDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "sevshim-chain-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = d
	code := m.Run()
	if os.Getenv("SEVSHIM_KEEP") == "" {
		os.RemoveAll(workDir)
	} else {
		fmt.Fprintln(os.Stderr, "fixtures kept in", workDir)
	}
	os.Exit(code)
}

// bundleSet is everything that needs no QEMU: keys, the policy and the BIOS bundles, each
// written as separate manifest and image files (what hostctl passes as fw_cfg files).
type bundleSet struct {
	trusted, stranger *ecdsa.PrivateKey
	pol               *policy.Policy
	polEnc            []byte
	keyIDHex          string

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
}

var (
	bundlesOnce sync.Once
	bundlesVal  *bundleSet
	bundlesErr  error
)

func getBundles(t *testing.T) *bundleSet {
	t.Helper()
	bundlesOnce.Do(func() { bundlesVal, bundlesErr = makeBundles(filepath.Join(workDir, "bundles")) })
	if bundlesErr != nil {
		t.Fatalf("building bundle fixtures: %v", bundlesErr)
	}
	return bundlesVal
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

func makeBundles(dir string) (*bundleSet, error) {
	if err := repo.RequireFiles(repo.OVMFCode(), repo.OVMFCodeSecboot(), repo.OVMFVars()); err != nil {
		return nil, fmt.Errorf("Debian OVMF: %v; run scripts/setup.sh", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &bundleSet{ovmf: repo.OVMFCode(), secboot: repo.OVMFCodeSecboot(), vars: repo.OVMFVars()}
	var err error
	if s.trusted, err = bios.GenerateKey(); err != nil {
		return nil, err
	}
	if s.stranger, err = bios.GenerateKey(); err != nil {
		return nil, err
	}
	id := bios.KeyID(&s.trusted.PublicKey)
	s.keyIDHex = hex.EncodeToString(id[:])

	ovmf, err := os.ReadFile(s.ovmf)
	if err != nil {
		return nil, err
	}
	secboot, err := os.ReadFile(s.secboot)
	if err != nil {
		return nil, err
	}
	// A third, never-run image whose digest the owner revoked: OVMF with one byte changed.
	denied := append([]byte(nil), ovmf...)
	denied[len(denied)/2] ^= 0x5A
	s.deniedImageDigest = sha512.Sum384(denied)

	s.pol = &policy.Policy{
		Layout:         bios.LayoutOVMF4M,
		SecretMode:     policy.SecretOptional,
		TPMMode:        policy.TPMOff,
		Signers:        []policy.Signer{{PublicKey: &s.trusted.PublicKey, MinVersion: floorVersion}},
		DeniedDigests:  [][48]byte{s.deniedImageDigest},
		DeniedVersions: []uint64{deniedVersion},
		// every run passes B's var store; TestVarStoreRestored passes a used one
		VarsMode: policy.VarsAny,
	}
	if s.polEnc, err = s.pol.Encode(); err != nil {
		return nil, fmt.Errorf("encoding the policy: %w", err)
	}

	file := func(name string, b []byte) (string, error) {
		p := filepath.Join(dir, name)
		return p, writeFile(p, b)
	}
	sign := func(key *ecdsa.PrivateKey, image []byte, version uint64, name string) ([]byte, error) {
		m, err := bios.NewManifest(bios.LayoutOVMF4M, image, version, name, &key.PublicKey)
		if err != nil {
			return nil, err
		}
		return m.Sign(key)
	}
	signedFile := func(fname string, key *ecdsa.PrivateKey, image []byte, version uint64, name string) (string, error) {
		b, err := sign(key, image, version, name)
		if err != nil {
			return "", err
		}
		return file(fname, b)
	}

	if s.manifestV5, err = signedFile("v5.manifest", s.trusted, ovmf, 5, "debian-ovmf-4m"); err != nil {
		return nil, err
	}
	if s.manifestV6, err = signedFile("v6.manifest", s.trusted, secboot, 6, "debian-ovmf-4m-secboot"); err != nil {
		return nil, err
	}
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
	add := func(name string, b []byte) error {
		p, err := file(name, b)
		paths[name] = p
		return err
	}
	var firstErr error
	must := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}

	must(add("flipped-image.fd", flip(ovmf, 0x123456, 3)))
	must(add("flipped-body.manifest", flip(v5, 0x20+7, 0))) // a bit of image_digest
	must(add("flipped-sig.manifest", flip(v5, 0x100+20, 5)))
	if b, err := sign(s.stranger, ovmf, 9, "stranger"); err == nil {
		must(add("stranger.manifest", b))
	} else {
		must(err)
	}
	if b, err := sign(s.trusted, ovmf, belowFloor, "rollback"); err == nil {
		must(add("below-floor.manifest", b))
	} else {
		must(err)
	}
	if b, err := sign(s.trusted, denied, 8, "revoked-image"); err == nil {
		must(add("denied-digest.manifest", b))
	} else {
		must(err)
	}
	must(add("denied-digest.fd", denied))
	if b, err := sign(s.trusted, ovmf, deniedVersion, "revoked-version"); err == nil {
		must(add("denied-version.manifest", b))
	} else {
		must(err)
	}
	// Layout id 2 (ovmf-2m) with the ovmf-4m image size: NewManifest refuses it, so build the
	// manifest by hand and sign it with the trusted key. Everything else is valid.
	wrong := &bios.Manifest{
		Layout: 2, ImageSize: uint64(len(ovmf)), Version: 6,
		ImageDigest: sha512.Sum384(ovmf), SignerKeyID: id, VersionString: "other-layout",
	}
	if b, err := wrong.Sign(s.trusted); err == nil {
		must(add("wrong-layout.manifest", b))
	} else {
		must(err)
	}
	must(add("truncated.fd", ovmf[:len(ovmf)-4096]))
	must(add("oversized.fd", append(append([]byte(nil), ovmf...), make([]byte, 4096)...)))
	garbage := make([]byte, bios.ManifestSize)
	for i := range garbage {
		garbage[i] = byte(i*131 + 7)
	}
	must(add("garbage.manifest", garbage))
	must(add("short.manifest", v5[:200]))
	vars, err := os.ReadFile(s.vars)
	must(err)
	if err == nil {
		must(add("short-vars.fd", vars[:len(vars)-4096]))
	}
	if firstErr != nil {
		return nil, firstErr
	}

	line := func(code string) string { return "SEVSHIM ERROR " + code }
	s.cases = []refusal{
		{"flipped-image-bit", s.manifestV5, paths["flipped-image.fd"], "", line("E033 digest-mismatch"), false},
		{"flipped-manifest-body-bit", paths["flipped-body.manifest"], s.ovmf, "", line("E024 bad-signature"), false},
		{"flipped-signature-bit", paths["flipped-sig.manifest"], s.ovmf, "", line("E024 bad-signature"), false},
		{"unknown-signer", paths["stranger.manifest"], s.ovmf, "", line("E023 unknown-signer"), false},
		{"version-below-floor", paths["below-floor.manifest"], s.ovmf, "", line("E034 version-below-floor"), false},
		{"denied-digest", paths["denied-digest.manifest"], paths["denied-digest.fd"], "", line("E035 digest-denied"), false},
		{"denied-version", paths["denied-version.manifest"], s.ovmf, "", line("E036 version-denied"), false},
		{"wrong-layout", paths["wrong-layout.manifest"], s.ovmf, "", line("E025 layout-mismatch"), false},
		{"truncated-image", s.manifestV5, paths["truncated.fd"], "", line("E031 bios-truncated"), false},
		{"oversized-image", s.manifestV5, paths["oversized.fd"], "", line("E032 bios-oversized"), false},
		{"missing-manifest", "", s.ovmf, "", line("E020 manifest-missing"), false},
		{"missing-bios", s.manifestV5, "", "", line("E030 bios-missing"), false},
		{"garbage-manifest", paths["garbage.manifest"], s.ovmf, "", line("E022 manifest-malformed"), false},
		{"short-manifest", paths["short.manifest"], s.ovmf, "", line("E021 manifest-size"), false},
		{"wrong-vars-size", s.manifestV5, s.ovmf, paths["short-vars.fd"], line("E040 vars-size"), false},
		// A valid bundle, but the host made pflash0 read-only: the erase fails and the shim
		// must halt instead of handing off to whatever the flash holds.
		{"readonly-code-flash", s.manifestV5, s.ovmf, "", line("E053 flash-program"), true},
	}
	return s, nil
}

// chainEnv is the shim image under test and the READY state saved from QEMU A.
type chainEnv struct {
	*bundleSet
	shim      string // the shim image (template + policy) used as pflash0 everywhere
	shimBytes []byte
	shimSHA   [32]byte
	lay       bios.Layout // the policy's layout: the template, pflash sizes, LOADED sizes
	state     string // A's READY state
	stateSize int64
	aReady    time.Duration // QEMU A start -> READY on debugcon
}

var (
	envOnce sync.Once
	envVal  *chainEnv
	envErr  error
)

// env builds the shim image and runs QEMU A once per test binary.
func env(t *testing.T) *chainEnv {
	t.Helper()
	harness.RequireChain(t)
	b := getBundles(t)
	envOnce.Do(func() { envVal, envErr = makeEnv(b, filepath.Join(workDir, "env"), b.polEnc) })
	if envErr != nil {
		t.Fatalf("building the READY state: %v", envErr)
	}
	return envVal
}

var (
	envsMu sync.Mutex
	envs   = map[string]*chainEnv{}
)

// envWith is env for a shim whose policy is the fixture policy changed by edit (its own
// image and READY state, made once per name).
func envWith(t *testing.T, name string, edit func(p *policy.Policy)) *chainEnv {
	t.Helper()
	harness.RequireChain(t)
	b := getBundles(t)
	envsMu.Lock()
	defer envsMu.Unlock()
	if e, ok := envs[name]; ok {
		return e
	}
	p := *b.pol
	edit(&p)
	enc, err := p.Encode()
	if err != nil {
		t.Fatalf("policy %s: %v", name, err)
	}
	e, err := makeEnv(b, filepath.Join(workDir, "env-"+name), enc)
	if err != nil {
		t.Fatalf("building the READY state of %s: %v", name, err)
	}
	envs[name] = e
	return e
}

func makeEnv(b *bundleSet, dir string, polEnc []byte) (*chainEnv, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	tplPath, err := repo.ShimTemplate()
	if err != nil {
		return nil, err
	}
	p, err := policy.Decode(polEnc)
	if err != nil {
		return nil, err
	}
	lay, _ := bios.LayoutByID(p.Layout) // the template of the policy's layout: build/shim/shim*.fd
	tplPath = filepath.Join(filepath.Dir(tplPath), lay.ShimFile())
	tpl, err := os.ReadFile(tplPath)
	if err != nil {
		return nil, fmt.Errorf("%v: run make shim first", err)
	}
	img, err := shimimage.EmbedPolicy(tpl, polEnc)
	if err != nil {
		return nil, fmt.Errorf("embedding the policy into %s: %w", tplPath, err)
	}
	e := &chainEnv{bundleSet: b, shim: filepath.Join(dir, "shim.fd"), shimBytes: img, shimSHA: sha256.Sum256(img), lay: lay}
	if err := writeFile(e.shim, img); err != nil {
		return nil, err
	}
	e.state = filepath.Join(dir, "ready.state")
	vars := filepath.Join(dir, "vars-a.fd")
	if err := copyFile(b.vars, vars); err != nil {
		return nil, err
	}
	ctx := context.Background()
	// A has no opt/org.sevshim/* files: the shim must wait for the wake-up.
	a, err := qemu.Start(ctx, qemu.Config{
		Pflash: []qemu.Pflash{
			{Unit: 0, File: e.shim, Snapshot: true},
			{Unit: 1, File: vars, Snapshot: true},
		},
		Debugcon:       true,
		RebootShutdown: true,
		SerialLog:      filepath.Join(dir, "serial-a.log"),
		DebugconLog:    filepath.Join(dir, "debugcon-a.log"),
	})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	ready, err := a.Debugcon().WaitString(ctx, "SEVSHIM READY", 60*time.Second)
	if err != nil {
		return nil, fmt.Errorf("QEMU A: %v\ndebugcon:\n%s\nserial:\n%s\nstderr: %s", err,
			a.Debugcon().Text(), a.Serial().Text(), a.StderrSummary())
	}
	e.aReady = ready.Time.Sub(a.Started())
	// READY is printed just before the wait loop; give the shim a moment to reach its hlt
	// so the saved CPU state is the idle loop, not the last instructions before it.
	time.Sleep(300 * time.Millisecond)
	if _, err := a.Debugcon().WaitLine(ctx, reError, time.Millisecond); err == nil {
		return nil, fmt.Errorf("QEMU A printed an error before saving:\n%s", a.Debugcon().Text())
	}
	st, err := a.SaveState(ctx, e.state)
	if err != nil {
		return nil, fmt.Errorf("saving A's READY state: %w", err)
	}
	e.stateSize = st.Bytes
	return e, nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeFile(dst, b)
}
