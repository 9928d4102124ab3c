package psp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/sev"
)

// TestRoot is a stand-in for AMD: an ARK and ASK in AMD's certificate format with their
// private keys. Platforms sharing a root behave like chips of one product generation.
type TestRoot struct {
	ARKKey, ASKKey *rsa.PrivateKey
	ARK, ASK       *sev.AMDCert
}

// GenerateTestRoot makes a fresh test root (bits 2048: Naples style, SHA-256; 4096: Rome and
// later, SHA-384).
func GenerateTestRoot(bits int) (*TestRoot, error) {
	ark, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	ask, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	var arkID, askID [16]byte
	rand.Read(arkID[:])
	rand.Read(askID[:])
	r := &TestRoot{ARKKey: ark, ASKKey: ask}
	if r.ARK, err = sev.NewAMDCert(sev.UsageARK, arkID, arkID, &ark.PublicKey); err != nil {
		return nil, err
	}
	if err := r.ARK.SignWith(ark, nil); err != nil {
		return nil, err
	}
	if r.ASK, err = sev.NewAMDCert(sev.UsageASK, askID, arkID, &ask.PublicKey); err != nil {
		return nil, err
	}
	if err := r.ASK.SignWith(ark, nil); err != nil {
		return nil, err
	}
	return r, nil
}

// Root is the public trust anchor of this test root.
func (r *TestRoot) Root() sev.Root {
	return sev.Root{Product: sev.TestRootProduct, ARK: r.ARK, ASK: r.ASK}
}

// Save writes ark.key, ask.key (0600) and ask_ark.cert into dir.
func (r *TestRoot) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := saveKey(filepath.Join(dir, "ark.key"), r.ARKKey); err != nil {
		return err
	}
	if err := saveKey(filepath.Join(dir, "ask.key"), r.ASKKey); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "ask_ark.cert"), sev.MarshalAMDChain(r.ASK, r.ARK), 0o644)
}

// LoadTestRoot reads a root written by Save.
func LoadTestRoot(dir string) (*TestRoot, error) {
	b, err := os.ReadFile(filepath.Join(dir, "ask_ark.cert"))
	if err != nil {
		return nil, err
	}
	r := &TestRoot{}
	if r.ASK, r.ARK, err = sev.ParseAMDChain(b); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "ask_ark.cert"), err)
	}
	if r.ARKKey, err = loadRSAKey(filepath.Join(dir, "ark.key")); err != nil {
		return nil, err
	}
	if r.ASKKey, err = loadRSAKey(filepath.Join(dir, "ask.key")); err != nil {
		return nil, err
	}
	if r.ASKKey.N.Cmp(mustRSA(r.ASK).N) != 0 || r.ARKKey.N.Cmp(mustRSA(r.ARK).N) != 0 {
		return nil, fmt.Errorf("%s: keys do not match ask_ark.cert", dir)
	}
	return r, r.Root().Check()
}

// LoadOrCreateTestRoot loads the root in dir or creates it (4096-bit) if dir has none.
func LoadOrCreateTestRoot(dir string) (*TestRoot, error) {
	r, err := LoadTestRoot(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	if r, err = GenerateTestRoot(4096); err != nil {
		return nil, err
	}
	return r, r.Save(dir)
}

func mustRSA(c *sev.AMDCert) *rsa.PublicKey {
	k, err := c.PublicKey()
	if err != nil {
		return &rsa.PublicKey{}
	}
	return k
}

func saveKey(path string, k crypto.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func loadKey(path string) (crypto.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// loadKeyOf loads the key at path and requires a K for which good holds; want names it.
func loadKeyOf[K any](path, want string, good func(K) bool) (K, error) {
	var zero K
	k, err := loadKey(path)
	if err != nil {
		return zero, err
	}
	x, ok := k.(K)
	if !ok || !good(x) {
		return zero, fmt.Errorf("%s: not %s", path, want)
	}
	return x, nil
}

func loadRSAKey(path string) (*rsa.PrivateKey, error) {
	return loadKeyOf(path, "an RSA key", func(*rsa.PrivateKey) bool { return true })
}

func loadECKey(path string) (*ecdsa.PrivateKey, error) {
	return loadKeyOf(path, "a P-384 key", func(k *ecdsa.PrivateKey) bool { return k.Curve == elliptic.P384() })
}

func newP384() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }

var writeJSON = atomicfile.WriteJSON

func readJSON(path string, v any) error {
	if err := atomicfile.ReadJSON(path, v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		if errors.As(err, &se) || errors.As(err, &te) {
			return fmt.Errorf("%w (state file damaged; remove the state directory to start a new platform)", err)
		}
		return err
	}
	return nil
}
