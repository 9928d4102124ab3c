// Package owner is the guest owner's side of the sevshim flow: it checks a platform's SEV
// certificate chain, prepares the launch session (GODH, session, TEK/TIK), checks the launch
// measurement of a shim image and builds the LAUNCH_SECRET packet. It is the logic behind the
// `verifier` CLI; the byte formats, the cryptography and the expected launch digest of a shim
// image (LaunchDigest) live in package sev, the footer table in shimimage.
// Nothing here talks to a PSP or to QEMU: the owner only ever handles files.
package owner

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sevshim/sevshim/pkg/sev"
)

// Trust says which roots a chain must verify under.
type Trust struct {
	// RootPath, if set, is the emulator's TEST root: the emulated platform's state directory,
	// a directory holding ask_ark.cert (the state directory's root/ or certs/, or the
	// SEVSHIM_EMU_ROOT directory) or that file itself. Only this root is trusted then, not AMD's.
	RootPath string
	// Product restricts the embedded AMD roots to one product (naples, rome, milan, genoa,
	// turin). Empty means any embedded AMD root.
	Product string
}

// Roots resolves the trust anchors. test reports whether they are the emulator's test root.
func (t Trust) Roots() (roots []sev.Root, desc string, test bool, err error) {
	if t.RootPath != "" && t.Product != "" {
		return nil, "", false, errors.New("--root (the emulator's test root) and --product (an AMD product) exclude each other")
	}
	if t.RootPath != "" {
		p, err := testRootFile(t.RootPath)
		if err != nil {
			return nil, "", false, err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, "", false, fmt.Errorf("test root: %w", err)
		}
		r, err := sev.NewRoot(sev.TestRootProduct, b)
		if err != nil {
			return nil, "", false, fmt.Errorf("test root %s: %w", p, err)
		}
		return []sev.Root{r}, "emulator TEST root " + p + " (ARK key id " + r.ARK.KeyIDString() + ")", true, nil
	}
	if t.Product != "" {
		r, err := sev.RootFor(t.Product)
		if err != nil {
			return nil, "", false, err
		}
		return []sev.Root{r}, "embedded AMD " + r.Product + " root", false, nil
	}
	return sev.BuiltinRoots(), "embedded AMD roots (" + strings.Join(sev.Products, ", ") + ")", false, nil
}

// testRootFile finds the emulator's test root for --root P: P itself when it is a file, else
// ask_ark.cert in P, in P/certs (P is a platform's state directory, `hostctl platform init
// --state P`) or in P/root.
func testRootFile(p string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("--root %s: no such file or directory (want the platform's state directory, `hostctl platform init --state DIR`, or its certs/ask_ark.cert)", p)
		}
		return "", fmt.Errorf("--root %s: %w", p, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return p, nil
	}
	for _, c := range []string{p, filepath.Join(p, "certs"), filepath.Join(p, "root")} {
		f := filepath.Join(c, "ask_ark.cert")
		if _, err := os.Stat(f); err == nil {
			return f, nil
		}
	}
	return "", fmt.Errorf("--root %s: no ask_ark.cert in it, nor in its certs/ or root/ (want the platform's state directory, `hostctl platform init --state DIR`, or the ask_ark.cert file)", p)
}

// UntrustedRootError is a chain whose ARK is none of the trusted roots. Hint says how to trust
// the emulator's test root when that is what the chain came from.
type UntrustedRootError struct {
	KeyID string
	Hint  string
}

func (e *UntrustedRootError) Error() string {
	m := fmt.Sprintf("ARK (key id %s) is not one of the trusted roots", e.KeyID)
	if e.Hint != "" {
		m += "; " + e.Hint
	}
	return m
}

// TestRootWarning is printed whenever a chain is checked against the emulator's test root.
const TestRootWarning = "WARNING: trusting the emulator's TEST root, not AMD: a chain that verifies under it proves " +
	"nothing about real AMD hardware; use --root only with emulated PSPs"

// Position names of the certificates of a chain file, in file order.
var chainOrder = []string{"PDH", "PEK", "OCA", "CEK"}

// ChainError says why a chain was refused: Cert names a certificate that does not parse,
// Link a signature link that does not verify ("OCA -> PEK" means the PEK's signature by the
// OCA). One of the two is set when the cause could be located.
type ChainError struct {
	Path string
	Cert string
	Link string
	Err  error
}

func (e *ChainError) Error() string {
	switch {
	case e.Cert != "":
		return fmt.Sprintf("chain %s: the %s certificate is malformed: %v", e.Path, e.Cert, e.Err)
	case e.Link != "":
		return fmt.Sprintf("chain %s: broken link %s: %v", e.Path, e.Link, e.Err)
	}
	return fmt.Sprintf("chain %s: %v", e.Path, e.Err)
}

func (e *ChainError) Unwrap() error { return e.Err }

// ParseChainFile parses a chain file of the PDH_CERT_EXPORT shape `hostctl platform export`
// writes: PDH || PEK || OCA || CEK [|| ASK || ARK] (sev.ParseFullChain). Errors name the
// certificate and its byte range.
func ParseChainFile(path string, b []byte) (*sev.Chain, error) {
	if len(b) < 4*sev.CertSize {
		return nil, &ChainError{Path: path, Err: fmt.Errorf("%d bytes, want at least %d (PDH || PEK || OCA || CEK, 0x824 bytes each, then optionally ASK || ARK); is this a file from `hostctl platform export`?", len(b), 4*sev.CertSize)}
	}
	for i, name := range chainOrder {
		off := i * sev.CertSize
		c, err := sev.ParseCert(b[off : off+sev.CertSize])
		if err != nil {
			return nil, &ChainError{Path: path, Cert: name, Err: fmt.Errorf("bytes 0x%x..0x%x: %w", off, off+sev.CertSize, err)}
		}
		if c.Usage.String() != name {
			return nil, &ChainError{Path: path, Cert: name, Err: fmt.Errorf("bytes 0x%x..0x%x hold a %v certificate; the order must be PDH, PEK, OCA, CEK", off, off+sev.CertSize, c.Usage)}
		}
	}
	if rest := b[4*sev.CertSize:]; len(rest) > 0 {
		if _, _, err := sev.ParseAMDChain(rest); err != nil {
			return nil, &ChainError{Path: path, Cert: "ASK || ARK", Err: fmt.Errorf("bytes 0x%x..0x%x: %w", 4*sev.CertSize, len(b), err)}
		}
	}
	c, err := sev.ParseFullChain(b)
	if err != nil {
		return nil, &ChainError{Path: path, Err: err}
	}
	return c, nil
}

// PlatformReport is what `verifier platform` prints (JSON keys are stable).
type PlatformReport struct {
	Chain        string   `json:"chain"`
	ChainSHA256  string   `json:"chain_sha256"`
	Certificates []string `json:"certificates"`
	Trust        string   `json:"trust"`
	TestRoot     bool     `json:"test_root"`
	Verified     bool     `json:"verified"`
	Product      string   `json:"product,omitempty"`
	PEKAPI       string   `json:"pek_api_version,omitempty"`
	PDHAPI       string   `json:"pdh_api_version,omitempty"`
	PDHKey       string   `json:"pdh_key_sha256,omitempty"`
	OCAKey       string   `json:"oca_key_sha256,omitempty"`
	CEKKey       string   `json:"cek_key_sha256,omitempty"`
	Links        []string `json:"verified_links,omitempty"`
	BrokenCert   string   `json:"malformed_certificate,omitempty"`
	BrokenLink   string   `json:"broken_link,omitempty"`
	Error        string   `json:"error,omitempty"`

	chain *sev.Chain
}

// ParsedChain returns the verified chain (nil unless Verified).
func (r *PlatformReport) ParsedChain() *sev.Chain {
	if !r.Verified {
		return nil
	}
	return r.chain
}

func apiOf(c *sev.Cert) string { return fmt.Sprintf("%d.%d", c.APIMajor, c.APIMinor) }

// VerifyPlatform reads and verifies the chain file at path. It always returns a report; the
// error is non-nil (a *ChainError when the chain itself is at fault) when it does not verify.
func VerifyPlatform(path string, t Trust) (*PlatformReport, error) {
	r := &PlatformReport{Chain: path}
	roots, desc, test, err := t.Roots()
	if err != nil {
		r.Error = err.Error()
		return r, err
	}
	r.Trust, r.TestRoot = desc, test
	b, err := os.ReadFile(path)
	if err != nil {
		r.Error = err.Error()
		return r, err
	}
	sum := sha256.Sum256(b)
	r.ChainSHA256 = hex.EncodeToString(sum[:])
	c, err := ParseChainFile(path, b)
	if err != nil {
		var ce *ChainError
		if errors.As(err, &ce) {
			r.BrokenCert = ce.Cert
		}
		r.Error = err.Error()
		return r, err
	}
	r.Certificates = append([]string(nil), chainOrder...)
	if c.ASK != nil {
		r.Certificates = append(r.Certificates, "ASK", "ARK")
	}
	res, verr := sev.VerifyChain(c, sev.VerifyOptions{Roots: roots})
	if verr != nil {
		link, why := diagnose(c, roots)
		if link == "" {
			why = verr
		}
		var ur *UntrustedRootError
		if errors.As(why, &ur) {
			if test {
				ur.Hint = fmt.Sprintf("the chain is not from the platform whose test root was given (%s): pass the --state directory of the platform that exported it", t.RootPath)
			} else {
				ur.Hint = "if the chain comes from hostctl's emulated PSP, trust its test root with --root DIR, DIR being that platform's --state directory (for tests only: it proves nothing about AMD hardware)"
			}
		}
		ce := &ChainError{Path: path, Link: link, Err: why}
		r.BrokenLink, r.Error = link, ce.Error()
		return r, ce
	}
	r.Verified, r.chain = true, c
	r.Product = res.Product
	r.PEKAPI, r.PDHAPI = apiOf(c.PEK), apiOf(c.PDH)
	pk := c.PDH.KeyDigest()
	r.PDHKey = hex.EncodeToString(pk[:])
	r.OCAKey, r.CEKKey = res.OCAKey, res.CEKKey
	if c.ARK != nil {
		r.Links = append(r.Links, "ARK (trusted, self-signed)", "ARK -> ASK")
	} else {
		r.Links = append(r.Links, "ASK (embedded, signed by its ARK)")
	}
	r.Links = append(r.Links, "ASK -> CEK", "OCA (self-signed)", "OCA -> PEK", "CEK -> PEK", "PEK -> PDH")
	return r, nil
}

// diagnose walks the links in order, root first, and names the first one that fails. It only
// locates the fault for the message: the verdict is sev.VerifyChain's.
func diagnose(c *sev.Chain, roots []sev.Root) (string, error) {
	if c.ARK != nil {
		trusted := false
		for _, r := range roots {
			trusted = trusted || r.ARK.Equal(c.ARK)
		}
		if !trusted {
			return "ARK", &UntrustedRootError{KeyID: c.ARK.KeyIDString()}
		}
		if err := c.ARK.CheckSignedBy(c.ARK); err != nil {
			return "ARK", fmt.Errorf("self-signature: %w", err)
		}
		if err := c.ASK.CheckSignedBy(c.ARK); err != nil {
			return "ARK -> ASK", err
		}
		if err := certSignedByAMD(c.CEK, c.ASK); err != nil {
			return "ASK -> CEK", err
		}
	} else {
		ok := false
		for _, r := range roots {
			ok = ok || certSignedByAMD(c.CEK, r.ASK) == nil
		}
		if !ok {
			return "ASK -> CEK", errors.New("the CEK is not signed by the ASK of any trusted root (an unsigned CEK straight from PDH_CERT_EXPORT needs the ASK-signed one from AMD's key server)")
		}
	}
	oca, err := c.OCA.PublicKey()
	if err != nil {
		return "OCA (self-signed)", err
	}
	if err := c.OCA.VerifySignature(sev.UsageOCA, oca); err != nil {
		return "OCA (self-signed)", err
	}
	if err := c.PEK.VerifySignature(sev.UsageOCA, oca); err != nil {
		return "OCA -> PEK", err
	}
	cek, err := c.CEK.PublicKey()
	if err != nil {
		return "CEK -> PEK", err
	}
	if err := c.PEK.VerifySignature(sev.UsageCEK, cek); err != nil {
		return "CEK -> PEK", err
	}
	pek, err := c.PEK.PublicKey()
	if err != nil {
		return "PEK -> PDH", err
	}
	if err := c.PDH.VerifySignature(sev.UsagePEK, pek); err != nil {
		return "PEK -> PDH", err
	}
	return "", nil
}

func certSignedByAMD(c *sev.Cert, ask *sev.AMDCert) error {
	pub, err := ask.PublicKey()
	if err != nil {
		return err
	}
	return c.VerifySignature(sev.UsageASK, pub)
}
