package psp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/sev"
)

// The emulator is a software model of the SEV firmware. What it models: the platform
// identity (chip id, CEK, OCA, PEK, PDH with real signatures) persisted in a state
// directory; a test ARK/ASK in AMD's format that signs the CEK (served like AMD's KDS); the
// platform and guest state machines with the firmware's status codes; LAUNCH_START session
// unwrapping; the running SHA-256 launch digest; LAUNCH_MEASURE; LAUNCH_SECRET; SEND/RECEIVE
// with chain checks, fresh TEK/TIK and MAC'd, encrypted packets; policy enforcement (NODBG,
// NOKS, NOSEND, DOMAIN, SEV, API minimum); the length-query convention.
// What it does not model: memory encryption (QEMU/TCG guests run in plain RAM; the VEK is a
// label), ASIDs beyond numbering, SEV-SNP, compression, DOWNLOAD_FIRMWARE, INIT_EX.
// Status codes for MAC failures are not public: the emulator returns BAD_SIGNATURE for a
// session or transport MAC failure, POLICY_FAILURE for a POLICY_MAC mismatch, and
// BAD_MEASUREMENT for a LAUNCH_SECRET MAC failure (which covers the measurement).

const emuFormat = 1

// EmulatorOptions configure a new emulated platform; they are ignored when the state
// directory already holds one (its persisted values win).
type EmulatorOptions struct {
	APIMajor, APIMinor, Build uint8 // default 0.24 build 15
	ConfigES                  bool
	// Root signs this platform's CEK. If nil, RootDir is used (loaded or created there);
	// if both are empty, a root is created inside the state directory.
	Root    *TestRoot
	RootDir string
}

type emuPlatform struct {
	Format        int    `json:"format"`
	APIMajor      uint8  `json:"api_major"`
	APIMinor      uint8  `json:"api_minor"`
	Build         uint8  `json:"build"`
	ConfigES      bool   `json:"config_es"`
	OwnerExternal bool   `json:"owner_external"`
	ChipID        string `json:"chip_id"`
	NextHandle    uint32 `json:"next_handle"`
	NextASID      uint32 `json:"next_asid"`
}

type emuGuest struct {
	Handle   uint32     `json:"handle"`
	ASID     uint32     `json:"asid"`
	State    GuestState `json:"state"`
	Policy   uint32     `json:"policy"`
	VEK      string     `json:"vek"` // label only: memory is not encrypted
	HasKeys  bool       `json:"has_keys"`
	TEK      []byte     `json:"tek,omitempty"`
	TIK      []byte     `json:"tik,omitempty"`
	LD       []byte     `json:"ld_state,omitempty"` // marshalled SHA-256 state
	Measure  []byte     `json:"measure,omitempty"`
	Secrets  int        `json:"secrets_injected"`
	Received bool       `json:"received"`
}

func (g *emuGuest) keys() sev.TransportKeys {
	var k sev.TransportKeys
	copy(k.TEK[:], g.TEK)
	copy(k.TIK[:], g.TIK)
	return k
}

func (g *emuGuest) setKeys(k sev.TransportKeys) {
	g.TEK, g.TIK, g.HasKeys = append([]byte(nil), k.TEK[:]...), append([]byte(nil), k.TIK[:]...), true
}

func (g *emuGuest) wipe() { g.TEK, g.TIK, g.HasKeys, g.Measure = nil, nil, false, nil }

// Emulator is the software PSP. Safe for concurrent use; several processes may share one
// state directory (commands serialise on a lock file), except that a guest being sent or
// received is assumed to be driven by one process (its keys are cached for speed).
type Emulator struct {
	dir   string
	mu    sync.Mutex
	lockf *os.File
	cache map[Handle]*hotGuest
}

type hotGuest struct {
	g  emuGuest
	tr *sev.Transport
}

// OpenEmulator opens the emulated platform in dir, creating its identity on first use.
func OpenEmulator(dir string, opts *EmulatorOptions) (*Emulator, error) {
	if dir == "" {
		return nil, errors.New("psp emulator: a state directory is required")
	}
	if opts == nil {
		opts = &EmulatorOptions{}
	}
	if err := os.MkdirAll(filepath.Join(dir, "guests"), 0o700); err != nil {
		return nil, fmt.Errorf("psp emulator: state directory %s: %w", dir, err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("psp emulator: state directory %s: %w", dir, err)
	}
	e := &Emulator{dir: dir, lockf: lf, cache: map[Handle]*hotGuest{}}
	if err := e.lock(); err != nil {
		lf.Close()
		return nil, err
	}
	defer e.unlock()
	if _, err := os.Stat(e.path("platform.json")); errors.Is(err, fs.ErrNotExist) {
		if err := e.create(opts); err != nil {
			lf.Close()
			return nil, fmt.Errorf("psp emulator: creating platform in %s: %w", dir, err)
		}
	}
	if _, err := e.loadPlatform(); err != nil {
		lf.Close()
		return nil, err
	}
	return e, nil
}

// Dir is the state directory.
func (e *Emulator) Dir() string { return e.dir }

// Kind implements PSP.
func (e *Emulator) Kind() string { return "emu" }

// Close releases the lock file.
func (e *Emulator) Close() error { return e.lockf.Close() }

func (e *Emulator) path(p ...string) string { return filepath.Join(append([]string{e.dir}, p...)...) }

func (e *Emulator) lock() error {
	e.mu.Lock()
	if err := syscall.Flock(int(e.lockf.Fd()), syscall.LOCK_EX); err != nil {
		e.mu.Unlock()
		return fmt.Errorf("psp emulator: lock %s: %w", e.path("lock"), err)
	}
	return nil
}

func (e *Emulator) unlock() {
	syscall.Flock(int(e.lockf.Fd()), syscall.LOCK_UN)
	e.mu.Unlock()
}

func (e *Emulator) create(o *EmulatorOptions) error {
	p := emuPlatform{Format: emuFormat, APIMajor: o.APIMajor, APIMinor: o.APIMinor, Build: o.Build,
		ConfigES: o.ConfigES, NextHandle: 1, NextASID: 1}
	if p.APIMajor == 0 && p.APIMinor == 0 {
		p.APIMinor, p.Build = 24, 15
	}
	id := make([]byte, 64)
	rand.Read(id)
	p.ChipID = hex.EncodeToString(id)
	root := o.Root
	var err error
	switch {
	case root != nil:
	case o.RootDir != "":
		root, err = LoadOrCreateTestRoot(o.RootDir)
	default:
		root, err = LoadOrCreateTestRoot(e.path("root"))
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(e.path("keys"), 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(e.path("certs"), 0o755); err != nil {
		return err
	}
	cekKey, err := newP384()
	if err != nil {
		return err
	}
	cek, err := sev.NewECCert(sev.UsageCEK, sev.AlgoECDSASHA256, 0, 14, &cekKey.PublicKey)
	if err != nil {
		return err
	}
	signed := *cek
	if err := sev.SignCEK(&signed, root.ASK, root.ASKKey, nil); err != nil {
		return err
	}
	for _, w := range []struct {
		name string
		data []byte
	}{
		{"cek.cert", cek.Marshal()}, {"cek.signed.cert", signed.Marshal()},
		{"ask_ark.cert", sev.MarshalAMDChain(root.ASK, root.ARK)},
	} {
		if err := atomicfile.WriteFile(e.path("certs", w.name), w.data, 0o644); err != nil {
			return err
		}
	}
	if err := saveKey(e.path("keys", "cek.key"), cekKey); err != nil {
		return err
	}
	if err := e.genOwner(&p, cekKey); err != nil {
		return err
	}
	return writeJSON(e.path("platform.json"), &p, 0o600)
}

// genOwner makes a self-owned platform: new OCA (self-signed), PEK (OCA + CEK) and PDH.
func (e *Emulator) genOwner(p *emuPlatform, cekKey *ecdsa.PrivateKey) error {
	ocaKey, oca, err := newCert(p, sev.UsageOCA, sev.AlgoECDSASHA256)
	if err != nil {
		return err
	}
	if err := oca.Sign(0, sev.UsageOCA, sev.AlgoECDSASHA256, ocaKey, nil); err != nil {
		return err
	}
	pekKey, pek, err := newCert(p, sev.UsagePEK, sev.AlgoECDSASHA256)
	if err != nil {
		return err
	}
	if err := pek.Sign(0, sev.UsageOCA, sev.AlgoECDSASHA256, ocaKey, nil); err != nil {
		return err
	}
	if err := pek.Sign(1, sev.UsageCEK, sev.AlgoECDSASHA256, cekKey, nil); err != nil {
		return err
	}
	if err := e.saveKeyCert("oca", ocaKey, oca); err != nil {
		return err
	}
	if err := e.saveKeyCert("pek", pekKey, pek); err != nil {
		return err
	}
	p.OwnerExternal = false
	return e.genPDH(p, pekKey)
}

func (e *Emulator) genPDH(p *emuPlatform, pekKey *ecdsa.PrivateKey) error {
	pdhKey, pdh, err := newCert(p, sev.UsagePDH, sev.AlgoECDHSHA256)
	if err != nil {
		return err
	}
	if err := pdh.Sign(0, sev.UsagePEK, sev.AlgoECDSASHA256, pekKey, nil); err != nil {
		return err
	}
	return e.saveKeyCert("pdh", pdhKey, pdh)
}

// newCert makes a fresh P-384 key and its unsigned certificate of usage and algo at the
// platform's API version.
func newCert(p *emuPlatform, usage sev.Usage, algo sev.Algo) (*ecdsa.PrivateKey, *sev.Cert, error) {
	key, err := newP384()
	if err != nil {
		return nil, nil, err
	}
	c, err := sev.NewECCert(usage, algo, p.APIMajor, p.APIMinor, &key.PublicKey)
	return key, c, err
}

// saveKeyCert writes key to keys/NAME.key and c to certs/NAME.cert.
func (e *Emulator) saveKeyCert(name string, key *ecdsa.PrivateKey, c *sev.Cert) error {
	if err := saveKey(e.path("keys", name+".key"), key); err != nil {
		return err
	}
	return atomicfile.WriteFile(e.path("certs", name+".cert"), c.Marshal(), 0o644)
}

func (e *Emulator) loadPlatform() (*emuPlatform, error) {
	var p emuPlatform
	if err := readJSON(e.path("platform.json"), &p); err != nil {
		return nil, fmt.Errorf("psp emulator: %w", err)
	}
	if p.Format != emuFormat {
		return nil, fmt.Errorf("psp emulator: %s has format %d, this build reads %d", e.path("platform.json"), p.Format, emuFormat)
	}
	return &p, nil
}

func (e *Emulator) savePlatform(p *emuPlatform) error {
	return writeJSON(e.path("platform.json"), p, 0o600)
}

func (e *Emulator) cert(name string) (*sev.Cert, error) {
	b, err := os.ReadFile(e.path("certs", name+".cert"))
	if err != nil {
		return nil, fmt.Errorf("psp emulator: %w", err)
	}
	c, err := sev.ParseCert(b)
	if err != nil {
		return nil, fmt.Errorf("psp emulator: %s: %w", e.path("certs", name+".cert"), err)
	}
	return c, nil
}

func (e *Emulator) guestPath(h Handle) string { return e.path("guests", fmt.Sprintf("%d.json", h)) }

func (e *Emulator) guestHandles() ([]Handle, error) {
	ents, err := os.ReadDir(e.path("guests"))
	if err != nil {
		return nil, err
	}
	var hs []Handle
	for _, d := range ents {
		var h uint32
		if _, err := fmt.Sscanf(d.Name(), "%d.json", &h); err == nil && d.Name() == fmt.Sprintf("%d.json", h) {
			hs = append(hs, Handle(h))
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i] < hs[j] })
	return hs, nil
}

func (e *Emulator) loadGuest(cmd string, h Handle) (*emuGuest, error) {
	var g emuGuest
	if h == 0 {
		return nil, fwErr(cmd, StatusInvalidGuest, "handle 0 names no guest")
	}
	if err := readJSON(e.guestPath(h), &g); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fwErr(cmd, StatusInvalidGuest, "no guest with handle %d", h)
		}
		return nil, err
	}
	return &g, nil
}

func (e *Emulator) saveGuest(g *emuGuest) error {
	delete(e.cache, Handle(g.Handle))
	return writeJSON(e.guestPath(Handle(g.Handle)), g, 0o600)
}

func (e *Emulator) platformState() (PlatformState, uint32, error) {
	hs, err := e.guestHandles()
	if err != nil {
		return 0, 0, err
	}
	if len(hs) > 0 {
		return StateWorking, uint32(len(hs)), nil
	}
	return StateInit, 0, nil
}

// withLock runs f under the state lock.
func (e *Emulator) withLock(f func(p *emuPlatform) error) error {
	if err := e.lock(); err != nil {
		return err
	}
	defer e.unlock()
	p, err := e.loadPlatform()
	if err != nil {
		return err
	}
	return f(p)
}

// ---- platform commands ----

// PlatformStatus implements Platform.
func (e *Emulator) PlatformStatus() (PlatformStatus, error) {
	var st PlatformStatus
	err := e.withLock(func(p *emuPlatform) error {
		s, n, err := e.platformState()
		if err != nil {
			return err
		}
		st = PlatformStatus{APIMajor: p.APIMajor, APIMinor: p.APIMinor, State: s, OwnerExternal: p.OwnerExternal,
			ConfigES: p.ConfigES, Build: p.Build, GuestCount: n}
		return nil
	})
	return st, err
}

func (e *Emulator) requireInit(cmd string) error {
	s, _, err := e.platformState()
	if err != nil {
		return err
	}
	if s != StateInit {
		return fwErr(cmd, StatusInvalidPlatformState, "platform is %v (guests exist); allowed only in INIT", s)
	}
	return nil
}

// FactoryReset implements Platform: new OCA, PEK and PDH; the CEK and chip id stay.
func (e *Emulator) FactoryReset() error { return e.newOwner("FACTORY_RESET") }

// PEKGen implements Platform: new self-signed OCA, PEK and PDH (the platform becomes self-owned).
func (e *Emulator) PEKGen() error { return e.newOwner("PEK_GEN") }

// newOwner is what FACTORY_RESET and PEK_GEN share in the emulator: a new self-signed OCA,
// PEK and PDH under the same CEK.
func (e *Emulator) newOwner(command string) error {
	return e.withLock(func(p *emuPlatform) error {
		if err := e.requireInit(command); err != nil {
			return err
		}
		cek, err := loadECKey(e.path("keys", "cek.key"))
		if err != nil {
			return err
		}
		if err := e.genOwner(p, cek); err != nil {
			return err
		}
		return e.savePlatform(p)
	})
}

// PDHGen implements Platform.
func (e *Emulator) PDHGen() error {
	return e.withLock(func(p *emuPlatform) error {
		pek, err := loadECKey(e.path("keys", "pek.key"))
		if err != nil {
			return err
		}
		return e.genPDH(p, pek)
	})
}

// PEKCSR implements Platform: the PEK certificate with both signature slots empty.
func (e *Emulator) PEKCSR(buf []byte) (int, error) {
	n := sev.CertSize
	err := e.withLock(func(p *emuPlatform) error {
		if err := e.requireInit("PEK_CSR"); err != nil {
			return err
		}
		if len(buf) < n {
			return fwErr("PEK_CSR", StatusInvalidLength, "buffer %d bytes, need %d", len(buf), n)
		}
		pek, err := e.cert("pek")
		if err != nil {
			return err
		}
		csr := *pek
		csr.Sig = [2]sev.Signature{{Usage: sev.UsageInvalid}, {Usage: sev.UsageInvalid}}
		copy(buf, csr.Marshal())
		return nil
	})
	return n, err
}

// PEKCertImport implements Platform: takes an OCA-signed PEK (from PEKCSR) and the OCA; the
// platform becomes externally owned and gets a new PDH.
func (e *Emulator) PEKCertImport(pekB, ocaB []byte) error {
	const cmd = "PEK_CERT_IMPORT"
	return e.withLock(func(p *emuPlatform) error {
		if err := e.requireInit(cmd); err != nil {
			return err
		}
		oca, err := sev.ParseCert(ocaB)
		if err != nil || oca.Usage != sev.UsageOCA {
			return fwErr(cmd, StatusInvalidCertificate, "OCA certificate: %v", errOrUsage(err, oca, sev.UsageOCA))
		}
		pek, err := sev.ParseCert(pekB)
		if err != nil || pek.Usage != sev.UsagePEK {
			return fwErr(cmd, StatusInvalidCertificate, "PEK certificate: %v", errOrUsage(err, pek, sev.UsagePEK))
		}
		ocaPub, err := oca.PublicKey()
		if err != nil {
			return fwErr(cmd, StatusInvalidCertificate, "OCA key: %v", err)
		}
		if err := oca.VerifySignature(sev.UsageOCA, ocaPub); err != nil {
			return fwErr(cmd, StatusBadSignature, "OCA self-signature: %v", err)
		}
		if err := pek.VerifySignature(sev.UsageOCA, ocaPub); err != nil {
			return fwErr(cmd, StatusBadSignature, "%v", err)
		}
		cur, err := e.cert("pek")
		if err != nil {
			return err
		}
		if !cur.SameKey(pek) {
			return fwErr(cmd, StatusInvalidCertificate, "PEK is not this platform's PEK (sign the PEK_CSR output)")
		}
		cekKey, err := loadECKey(e.path("keys", "cek.key"))
		if err != nil {
			return err
		}
		// Keep the OCA signature, re-sign the CEK slot over the (identical) body.
		slot := 1
		if !pek.Sig[0].Empty() && pek.Sig[0].Usage != sev.UsageOCA {
			slot = 0
		}
		if err := pek.Sign(slot, sev.UsageCEK, sev.AlgoECDSASHA256, cekKey, nil); err != nil {
			return err
		}
		pekKey, err := loadECKey(e.path("keys", "pek.key"))
		if err != nil {
			return err
		}
		os.Remove(e.path("keys", "oca.key"))
		if err := atomicfile.WriteFile(e.path("certs", "oca.cert"), oca.Marshal(), 0o644); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(e.path("certs", "pek.cert"), pek.Marshal(), 0o644); err != nil {
			return err
		}
		p.OwnerExternal = true
		if err := e.genPDH(p, pekKey); err != nil {
			return err
		}
		return e.savePlatform(p)
	})
}

func errOrUsage(err error, c *sev.Cert, want sev.Usage) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("usage %v, want %v", c.Usage, want)
}

// PDHCertExport implements Platform: the PDH, and PEK || OCA || CEK with the CEK unsigned as
// real firmware exports it (the signed CEK comes from SignedCEK, the "KDS").
func (e *Emulator) PDHCertExport(pdh, chain []byte) (int, int, error) {
	err := e.withLock(func(p *emuPlatform) error {
		if len(pdh) < sev.CertSize || len(chain) < sev.CertChainSize {
			return fwErr("PDH_CERT_EXPORT", StatusInvalidLength, "buffers %d/%d bytes, need %d/%d", len(pdh), len(chain), sev.CertSize, sev.CertChainSize)
		}
		var cs [4]*sev.Cert
		for i, n := range []string{"pdh", "pek", "oca", "cek"} {
			c, err := e.cert(n)
			if err != nil {
				return err
			}
			cs[i] = c
		}
		copy(pdh, cs[0].Marshal())
		copy(chain, sev.MarshalCertChain(cs[1], cs[2], cs[3]))
		return nil
	})
	return sev.CertSize, sev.CertChainSize, err
}

// GetID implements Platform (64-byte chip id).
func (e *Emulator) GetID(buf []byte) (int, error) {
	n := 64
	err := e.withLock(func(p *emuPlatform) error {
		if len(buf) < n {
			return fwErr("GET_ID", StatusInvalidLength, "buffer %d bytes, need %d", len(buf), n)
		}
		id, err := hex.DecodeString(p.ChipID)
		if err != nil || len(id) != n {
			return fmt.Errorf("psp emulator: %s: chip id damaged", e.path("platform.json"))
		}
		copy(buf, id)
		return nil
	})
	return n, err
}

// SignedCEK implements KeyServer: the ASK-signed CEK for this chip's id.
func (e *Emulator) SignedCEK(chipID []byte) ([]byte, error) {
	id := make([]byte, 64)
	if _, err := e.GetID(id); err != nil {
		return nil, err
	}
	if !bytes.Equal(id, chipID) {
		return nil, fmt.Errorf("psp emulator key server: unknown chip id %x", chipID)
	}
	return os.ReadFile(e.path("certs", "cek.signed.cert"))
}

// AMDChain implements KeyServer: ASK || ARK of the test root.
func (e *Emulator) AMDChain() ([]byte, error) { return os.ReadFile(e.path("certs", "ask_ark.cert")) }

// Root implements KeyServer.
func (e *Emulator) Root() (sev.Root, error) {
	b, err := e.AMDChain()
	if err != nil {
		return sev.Root{}, err
	}
	return sev.NewRoot(sev.TestRootProduct, b)
}

// ---- guest commands ----

func (e *Emulator) version(p *emuPlatform) sev.PlatformVersion {
	return sev.PlatformVersion{APIMajor: p.APIMajor, APIMinor: p.APIMinor, Build: p.Build}
}

func (e *Emulator) checkPolicy(cmd string, p *emuPlatform, pol sev.Policy) error {
	if err := pol.Validate(); err != nil {
		return fwErr(cmd, StatusInvalidParam, "%v", err)
	}
	if !pol.AllowsPlatform(e.version(p)) {
		maj, min := pol.MinAPI()
		return fwErr(cmd, StatusPolicyFailure, "policy requires firmware API %d.%d, platform is %d.%d", maj, min, p.APIMajor, p.APIMinor)
	}
	return nil
}

// shareOrNew handles the HANDLE input of LAUNCH_START / RECEIVE_START.
func (e *Emulator) shareOrNew(cmd string, h Handle, pol sev.Policy) (string, error) {
	if h == 0 {
		v := make([]byte, 8)
		rand.Read(v)
		return hex.EncodeToString(v), nil
	}
	o, err := e.loadGuest(cmd, h)
	if err != nil {
		return "", err
	}
	if sev.Policy(o.Policy).Has(sev.PolicyNoKeySharing) || pol.Has(sev.PolicyNoKeySharing) {
		return "", fwErr(cmd, StatusPolicyFailure, "key sharing with guest %d refused: NOKS set", h)
	}
	if sev.Policy(o.Policy) != pol {
		return "", fwErr(cmd, StatusPolicyFailure, "key sharing needs equal policies (%#x vs %#x)", o.Policy, uint32(pol))
	}
	return o.VEK, nil
}

func (e *Emulator) newGuest(p *emuPlatform, state GuestState, pol sev.Policy, vek string) *emuGuest {
	g := &emuGuest{Handle: p.NextHandle, ASID: p.NextASID, State: state, Policy: uint32(pol), VEK: vek}
	p.NextHandle++
	p.NextASID++
	return g
}

func (e *Emulator) unwrapSession(cmd string, dh, sess []byte, pol sev.Policy) (sev.TransportKeys, error) {
	var k sev.TransportKeys
	c, err := sev.ParseCert(dh)
	if err != nil {
		return k, fwErr(cmd, StatusInvalidCertificate, "DH certificate: %v", err)
	}
	if c.Usage != sev.UsagePDH {
		return k, fwErr(cmd, StatusInvalidCertificate, "DH certificate has usage %v, want PDH", c.Usage)
	}
	peer, err := c.ECDHPublicKey()
	if err != nil {
		return k, fwErr(cmd, StatusInvalidCertificate, "DH certificate: %v", err)
	}
	s, err := sev.ParseSession(sess)
	if err != nil {
		return k, fwErr(cmd, StatusInvalidLength, "%v", err)
	}
	pdhKey, err := loadECKey(e.path("keys", "pdh.key"))
	if err != nil {
		return k, err
	}
	priv, err := pdhKey.ECDH()
	if err != nil {
		return k, err
	}
	if priv.Curve() != peer.Curve() {
		return k, fwErr(cmd, StatusInvalidCertificate, "DH certificate is on another curve than the PDH")
	}
	z, err := sev.SharedSecret(priv, peer)
	if err != nil {
		return k, fwErr(cmd, StatusInvalidCertificate, "%v", err)
	}
	k, err = s.Unwrap(z, uint32(pol))
	switch {
	case errors.Is(err, sev.ErrWrapMAC):
		return k, fwErr(cmd, StatusBadSignature, "%v", err)
	case errors.Is(err, sev.ErrPolicyMAC):
		return k, fwErr(cmd, StatusPolicyFailure, "%v", err)
	}
	return k, err
}

// LaunchStart implements Guest.
func (e *Emulator) LaunchStart(req LaunchStartRequest) (Handle, error) {
	const cmd = "LAUNCH_START"
	var h Handle
	err := e.withLock(func(p *emuPlatform) error {
		if err := e.checkPolicy(cmd, p, req.Policy); err != nil {
			return err
		}
		if req.Policy.Has(sev.PolicyES) && !p.ConfigES {
			return fwErr(cmd, StatusPolicyFailure, "policy requires SEV-ES but the platform is not configured for ES")
		}
		vek, err := e.shareOrNew(cmd, req.Handle, req.Policy)
		if err != nil {
			return err
		}
		var keys sev.TransportKeys
		if req.DHCert != nil {
			if keys, err = e.unwrapSession(cmd, req.DHCert, req.Session, req.Policy); err != nil {
				return err
			}
		} else {
			// No DH cert: firmware-chosen keys; the measurement cannot be verified by anyone.
			if keys, err = sev.NewTransportKeys(nil); err != nil {
				return err
			}
		}
		g := e.newGuest(p, GuestLUpdate, req.Policy, vek)
		g.setKeys(keys)
		if g.LD, err = sha256.New().(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
			return err
		}
		if err := e.savePlatform(p); err != nil {
			return err
		}
		h = Handle(g.Handle)
		return e.saveGuest(g)
	})
	return h, err
}

func (e *Emulator) guestOp(cmd string, h Handle, states []GuestState, f func(p *emuPlatform, g *emuGuest) error) error {
	return e.withLock(func(p *emuPlatform) error {
		g, err := e.loadGuest(cmd, h)
		if err != nil {
			return err
		}
		if states != nil {
			ok := false
			for _, s := range states {
				ok = ok || g.State == s
			}
			if !ok {
				return fwErr(cmd, StatusInvalidGuestState, "guest %d is %v, command needs %v", h, g.State, states)
			}
		}
		return f(p, g)
	})
}

func (e *Emulator) extendLD(g *emuGuest, data []byte) error {
	d := sha256.New()
	if err := d.(encoding.BinaryUnmarshaler).UnmarshalBinary(g.LD); err != nil {
		return fmt.Errorf("psp emulator: guest %d launch digest state damaged: %w", g.Handle, err)
	}
	d.Write(data)
	var err error
	g.LD, err = d.(encoding.BinaryMarshaler).MarshalBinary()
	return err
}

// LaunchUpdateData implements Guest: extends the launch digest with mem (16-byte multiple,
// as KVM requires). The emulator does not encrypt mem.
func (e *Emulator) LaunchUpdateData(h Handle, mem []byte) error {
	const cmd = "LAUNCH_UPDATE_DATA"
	return e.guestOp(cmd, h, []GuestState{GuestLUpdate}, func(p *emuPlatform, g *emuGuest) error {
		if len(mem) == 0 || len(mem)%16 != 0 {
			return fwErr(cmd, StatusInvalidLength, "length %d, want a non-zero multiple of 16", len(mem))
		}
		if err := e.extendLD(g, mem); err != nil {
			return err
		}
		return e.saveGuest(g)
	})
}

// LaunchUpdateVMSA implements Guest (SEV-ES): extends the digest with one 4 KiB VMSA page.
func (e *Emulator) LaunchUpdateVMSA(h Handle, vmsa []byte) error {
	const cmd = "LAUNCH_UPDATE_VMSA"
	return e.guestOp(cmd, h, []GuestState{GuestLUpdate}, func(p *emuPlatform, g *emuGuest) error {
		if !sev.Policy(g.Policy).Has(sev.PolicyES) {
			return fwErr(cmd, StatusPolicyFailure, "guest %d is not an SEV-ES guest", h)
		}
		if len(vmsa) != 4096 {
			return fwErr(cmd, StatusInvalidLength, "VMSA is %d bytes, want 4096", len(vmsa))
		}
		if err := e.extendLD(g, vmsa); err != nil {
			return err
		}
		return e.saveGuest(g)
	})
}

// LaunchMeasure implements Guest. Repeating it in LSECRET returns a fresh MNONCE.
func (e *Emulator) LaunchMeasure(h Handle, buf []byte) (int, error) {
	const cmd = "LAUNCH_MEASURE"
	err := e.guestOp(cmd, h, []GuestState{GuestLUpdate, GuestLSecret}, func(p *emuPlatform, g *emuGuest) error {
		if len(buf) < sev.MeasurementSize {
			return fwErr(cmd, StatusInvalidLength, "buffer %d bytes, need %d", len(buf), sev.MeasurementSize)
		}
		d := sha256.New()
		if err := d.(encoding.BinaryUnmarshaler).UnmarshalBinary(g.LD); err != nil {
			return err
		}
		var ld [32]byte
		d.Sum(ld[:0])
		m := sev.Measurement{}
		rand.Read(m.MNonce[:])
		m.Measure = sev.ComputeMeasure(g.keys().TIK, e.version(p), g.Policy, ld, m.MNonce)
		copy(buf, m.Marshal())
		g.Measure = m.Measure[:]
		g.State = GuestLSecret
		return e.saveGuest(g)
	})
	return sev.MeasurementSize, err
}

// LaunchSecret implements Guest: verifies the packet against TIK and the last MEASURE,
// decrypts with TEK and writes the plaintext to guest (len(guest) == len(trans)).
func (e *Emulator) LaunchSecret(h Handle, hdr, trans, guest []byte) error {
	const cmd = "LAUNCH_UPDATE_SECRET"
	return e.guestOp(cmd, h, []GuestState{GuestLSecret}, func(p *emuPlatform, g *emuGuest) error {
		ph, err := sev.ParsePacketHeader(hdr)
		if err != nil {
			return fwErr(cmd, StatusInvalidParam, "%v", err)
		}
		if len(guest) != len(trans) {
			return fwErr(cmd, StatusInvalidLength, "guest length %d differs from packet length %d", len(guest), len(trans))
		}
		var m [32]byte
		copy(m[:], g.Measure)
		plain, err := sev.NewTransport(g.keys()).OpenSecret(ph, trans, len(guest), m, e.version(p))
		switch {
		case errors.Is(err, sev.ErrPacketMAC):
			return fwErr(cmd, StatusBadMeasurement, "%v", err)
		case errors.Is(err, sev.ErrPacketCompressed):
			return fwErr(cmd, StatusUnsupported, "%v", err)
		case err != nil:
			return fwErr(cmd, StatusInvalidLength, "%v", err)
		}
		copy(guest, plain)
		g.Secrets++
		return e.saveGuest(g)
	})
}

// LaunchFinish implements Guest: LSECRET -> RUNNING, keys and digest wiped.
func (e *Emulator) LaunchFinish(h Handle) error {
	return e.guestOp("LAUNCH_FINISH", h, []GuestState{GuestLSecret}, func(p *emuPlatform, g *emuGuest) error {
		g.wipe()
		g.LD = nil
		g.State = GuestRunning
		return e.saveGuest(g)
	})
}

// GuestStatus implements Guest.
func (e *Emulator) GuestStatus(h Handle) (GuestStatus, error) {
	var st GuestStatus
	err := e.guestOp("GUEST_STATUS", h, nil, func(p *emuPlatform, g *emuGuest) error {
		st = GuestStatus{Handle: h, Policy: sev.Policy(g.Policy), ASID: g.ASID, State: g.State}
		return nil
	})
	return st, err
}

// Decommission implements Guest: the context is destroyed in any state.
func (e *Emulator) Decommission(h Handle) error {
	return e.guestOp("DECOMMISSION", h, nil, func(p *emuPlatform, g *emuGuest) error {
		delete(e.cache, h)
		return os.Remove(e.guestPath(h))
	})
}

// DbgDecrypt implements Guest: refused under NODBG; otherwise a copy (memory is plaintext).
func (e *Emulator) DbgDecrypt(h Handle, guest, out []byte) error {
	return e.dbg("DBG_DECRYPT", h, guest, out)
}

// DbgEncrypt implements Guest.
func (e *Emulator) DbgEncrypt(h Handle, in, guest []byte) error {
	return e.dbg("DBG_ENCRYPT", h, in, guest)
}

func (e *Emulator) dbg(cmd string, h Handle, src, dst []byte) error {
	return e.guestOp(cmd, h, nil, func(p *emuPlatform, g *emuGuest) error {
		if sev.Policy(g.Policy).Has(sev.PolicyNoDebug) {
			return fwErr(cmd, StatusPolicyFailure, "guest %d policy has NODBG", h)
		}
		if len(src) != len(dst) || len(src) == 0 || len(src)%16 != 0 {
			return fwErr(cmd, StatusInvalidLength, "lengths %d/%d, want equal non-zero multiples of 16", len(src), len(dst))
		}
		copy(dst, src)
		return nil
	})
}
