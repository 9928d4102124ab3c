package harness

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/keys"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// Fixture is what the chain tests of one test binary share: a trusted signing key, a key no
// policy lists, the BIOS bundles signed by the trusted key and the shim images made for a
// policy. Everything is made once per test binary and kept in its directory.
type Fixture struct {
	Dir      string
	Key      *ecdsa.PrivateKey // the trusted signer of every bundle
	Stranger *ecdsa.PrivateKey // a valid key that no fixture policy lists
	KeyID    [48]byte          // keys.KeyID of Key
	KeyIDHex string
	Template string   // the shim template of every Shim (build/shim/shim.fd or $SEVSHIM_SHIM_FD)
	Vars     string   // Debian's var store template (OVMF_VARS_4M.fd)
	VarsSHA  [48]byte // its SHA-384: what a chain B programs unless told otherwise

	mu      sync.Mutex
	bundles map[string]*Bundle
	shims   map[[32]byte]*Shim
	ready   map[string]*Ready
}

// Bundle is one signed BIOS: the manifest and image files hostctl passes as fw_cfg files.
type Bundle struct {
	Name          string // the catalogue name ("ovmf-v5", ...)
	Manifest      string
	Image         string
	Version       uint64
	VersionString string
	Digest        [48]byte // SHA-384 of the image
}

// The bundle catalogue: Debian's OVMF 4M code image as versions 4 and 5, its Secure Boot
// build as version 6, and the project's test BIOS as version 7, each signed by Fixture.Key.
var bundleCatalogue = map[string]struct {
	image   func() (string, error)
	version uint64
	name    string
}{
	"ovmf-v4":     {func() (string, error) { return repo.OVMFCode(), nil }, 4, "debian-ovmf-4m"},
	"ovmf-v5":     {func() (string, error) { return repo.OVMFCode(), nil }, 5, "debian-ovmf-4m"},
	"ovmf-v6":     {func() (string, error) { return repo.OVMFCodeSecboot(), nil }, 6, "debian-ovmf-4m-secboot"},
	"testbios-v7": {TestBIOS, 7, "sevshim-testbios"},
}

var fixOnce Once[Fixture]

// Fixtures checks the chain prerequisites (RequireChain with programs) and returns this test
// binary's fixture, made on first use.
func Fixtures(t testing.TB, programs ...string) *Fixture {
	t.Helper()
	RequireChain(t, programs...)
	dir := filepath.Join(WorkDir(t), "fixtures")
	return fixOnce.Get(t, "building the fixtures", func() (*Fixture, error) { return NewFixture(dir) })
}

// NewFixture makes a fixture in dir (fresh keys; bundles and shims follow on demand).
func NewFixture(dir string) (*Fixture, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f := &Fixture{Dir: dir, Vars: repo.OVMFVars(), bundles: map[string]*Bundle{}, shims: map[[32]byte]*Shim{}, ready: map[string]*Ready{}}
	var err error
	if f.Key, err = keys.GenerateKey(); err != nil {
		return nil, err
	}
	if f.Stranger, err = keys.GenerateKey(); err != nil {
		return nil, err
	}
	if f.Template, err = repo.ShimTemplate(); err != nil {
		return nil, err
	}
	f.KeyID = keys.KeyID(&f.Key.PublicKey)
	f.KeyIDHex = hex.EncodeToString(f.KeyID[:])
	vars, err := os.ReadFile(f.Vars)
	if err != nil {
		return nil, fmt.Errorf("Debian OVMF: %v; run scripts/setup.sh", err)
	}
	f.VarsSHA = sha512.Sum384(vars)
	return f, nil
}

// Bundle returns the catalogue bundle name ("ovmf-v4", "ovmf-v5", "ovmf-v6",
// "testbios-v7"), signed on first use.
func (f *Fixture) Bundle(t testing.TB, name string) *Bundle {
	t.Helper()
	b, err := f.MakeBundle(name)
	if err != nil {
		t.Fatalf("bundle %s: %v", name, err)
	}
	return b
}

// MakeBundle is Bundle with an error instead of a test failure.
func (f *Fixture) MakeBundle(name string) (*Bundle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.bundles[name]; ok {
		return b, nil
	}
	c, ok := bundleCatalogue[name]
	if !ok {
		return nil, fmt.Errorf("no bundle %q in the fixture catalogue", name)
	}
	image, err := c.image()
	if err != nil {
		return nil, err
	}
	img, err := os.ReadFile(image)
	if err != nil {
		return nil, err
	}
	man, err := f.Sign(f.Key, img, c.version, c.name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", image, err)
	}
	b := &Bundle{Name: name, Manifest: filepath.Join(f.Dir, name+".manifest"), Image: image, Version: c.version,
		VersionString: c.name, Digest: sha512.Sum384(img)}
	if err := os.WriteFile(b.Manifest, man, 0o600); err != nil {
		return nil, err
	}
	f.bundles[name] = b
	return b, nil
}

// Sign returns the signed manifest (layout ovmf-4m) of image.
func (f *Fixture) Sign(key *ecdsa.PrivateKey, image []byte, version uint64, versionString string) ([]byte, error) {
	m, err := manifest.NewManifest(layout.OVMF4M, image, version, versionString, &key.PublicKey)
	if err != nil {
		return nil, err
	}
	return m.Sign(key)
}

// File writes b as dir/name (mode 0600) and returns the path.
func (f *Fixture) File(name string, b []byte) (string, error) {
	p := filepath.Join(f.Dir, name)
	return p, os.WriteFile(p, b, 0o600)
}

// Policy returns a fresh copy of the fixture policy: layout ovmf-4m, secret optional, TPM off,
// the trusted key with min_version 1, and vars_mode any (every chain B passes its own pflash1
// store as opt/org.sevshim/vars). Tests change their copy and make a shim of it.
func (f *Fixture) Policy() *policy.Policy {
	return &policy.Policy{
		Layout:     layout.OVMF4M,
		SecretMode: policy.SecretOptional,
		TPMMode:    policy.TPMOff,
		Signers:    []policy.Signer{{PublicKey: &f.Key.PublicKey, MinVersion: 1}},
		VarsMode:   policy.VarsAny,
	}
}

// Shim is a shim image: the template `make shim` built with one policy embedded.
type Shim struct {
	Path         string
	Bytes        []byte
	SHA256       [32]byte // of the image file
	Policy       *policy.Policy
	Layout       layout.Layout // the policy's layout: the template it is made from, its var store
	Encoded      []byte        // the policy block
	PolicyDigest [48]byte      // SHA-384 of the policy block
}

// Shim returns the shim image of pol, made once per distinct policy.
func (f *Fixture) Shim(t testing.TB, pol *policy.Policy) *Shim {
	t.Helper()
	s, err := f.MakeShim(pol)
	if err != nil {
		t.Fatalf("shim image: %v", err)
	}
	return s
}

// MakeShim is Shim with an error instead of a test failure.
func (f *Fixture) MakeShim(pol *policy.Policy) (*Shim, error) {
	enc, err := pol.Encode()
	if err != nil {
		return nil, fmt.Errorf("encoding the policy: %w", err)
	}
	key := sha256.Sum256(enc)
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.shims[key]; ok {
		return s, nil
	}
	lay, ok := layout.ByID(pol.Layout)
	if !ok {
		return nil, fmt.Errorf("the policy's layout %d is not in the layout table", pol.Layout)
	}
	tplPath := f.Template // the default layout's; another layout's template lies beside it
	if lay.ID != layout.Default {
		tplPath = filepath.Join(filepath.Dir(f.Template), lay.ShimFile())
	}
	tpl, err := os.ReadFile(tplPath)
	if err != nil {
		return nil, fmt.Errorf("%v: run make shim first", err)
	}
	img, err := shimimage.EmbedPolicy(tpl, enc)
	if err != nil {
		return nil, fmt.Errorf("embedding the policy into %s: %w", tplPath, err)
	}
	cp := *pol
	s := &Shim{Path: filepath.Join(f.Dir, fmt.Sprintf("shim-%x.fd", key[:6])), Bytes: img, SHA256: sha256.Sum256(img),
		Policy: &cp, Layout: lay, Encoded: enc, PolicyDigest: sha512.Sum384(enc)}
	if err := os.WriteFile(s.Path, img, 0o600); err != nil {
		return nil, err
	}
	f.shims[key] = s
	return s, nil
}
