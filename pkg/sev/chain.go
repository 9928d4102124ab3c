package sev

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// CertChainSize is the size of PDH_CERT_EXPORT's cert_chain blob: PEK || OCA || CEK.
const CertChainSize = 3 * CertSize

// ParseCertChain parses the PDH_CERT_EXPORT chain blob (PEK || OCA || CEK), which is also
// SEND_START's plat_certs.
func ParseCertChain(b []byte) (pek, oca, cek *Cert, err error) {
	if len(b) != CertChainSize {
		return nil, nil, nil, fmt.Errorf("cert chain: %d bytes, want %d (PEK || OCA || CEK)", len(b), CertChainSize)
	}
	var cs [3]*Cert
	for i, want := range []Usage{UsagePEK, UsageOCA, UsageCEK} {
		c, err := ParseCert(b[i*CertSize : (i+1)*CertSize])
		if err != nil {
			return nil, nil, nil, fmt.Errorf("cert chain: certificate %d (%v): %w", i+1, want, err)
		}
		if c.Usage != want {
			return nil, nil, nil, fmt.Errorf("cert chain: certificate %d has usage %v, want %v (order is PEK, OCA, CEK)", i+1, c.Usage, want)
		}
		cs[i] = c
	}
	return cs[0], cs[1], cs[2], nil
}

// MarshalCertChain encodes PEK || OCA || CEK.
func MarshalCertChain(pek, oca, cek *Cert) []byte {
	b := append(pek.Marshal(), oca.Marshal()...)
	return append(b, cek.Marshal()...)
}

// Chain is a platform's full certificate chain. ASK and ARK may be nil: the verifier then
// picks a trusted root whose ASK signed the CEK.
type Chain struct {
	PDH, PEK, OCA, CEK *Cert
	ASK, ARK           *AMDCert
}

// ParseFullChain parses PDH || PEK || OCA || CEK [|| ASK || ARK] (the sevctl / virtee "full
// chain" file; the AMD part is optional).
func ParseFullChain(b []byte) (*Chain, error) {
	if len(b) < 4*CertSize {
		return nil, fmt.Errorf("full chain: %d bytes, want at least %d (PDH || PEK || OCA || CEK)", len(b), 4*CertSize)
	}
	pdh, err := ParseCert(b[:CertSize])
	if err != nil {
		return nil, fmt.Errorf("full chain: PDH: %w", err)
	}
	if pdh.Usage != UsagePDH {
		return nil, fmt.Errorf("full chain: first certificate has usage %v, want PDH", pdh.Usage)
	}
	pek, oca, cek, err := ParseCertChain(b[CertSize : 4*CertSize])
	if err != nil {
		return nil, fmt.Errorf("full chain: %w", err)
	}
	c := &Chain{PDH: pdh, PEK: pek, OCA: oca, CEK: cek}
	if rest := b[4*CertSize:]; len(rest) > 0 {
		c.ASK, c.ARK, err = ParseAMDChain(rest)
		if err != nil {
			return nil, fmt.Errorf("full chain: %w", err)
		}
	}
	return c, nil
}

// Marshal encodes the chain in the full-chain order.
func (c *Chain) Marshal() []byte {
	b := append(c.PDH.Marshal(), MarshalCertChain(c.PEK, c.OCA, c.CEK)...)
	if c.ASK != nil && c.ARK != nil {
		b = append(b, MarshalAMDChain(c.ASK, c.ARK)...)
	}
	return b
}

// VerifyOptions controls VerifyChain.
type VerifyOptions struct {
	// Roots are the trusted AMD roots; nil means BuiltinRoots(). Add the emulator's test root
	// here to accept emulated platforms.
	Roots []Root
	// Product, if set, requires the chain to verify under that product's root.
	Product string
	// AllowUnsignedCEK accepts a CEK as PDH_CERT_EXPORT returns it (no ASK signature). The
	// platform is then not bound to AMD: trust rests on the OCA alone ("OCA-only mode").
	AllowUnsignedCEK bool
	// TrustedOCA, if set, requires the chain's OCA to certify this key (pinning, typically
	// used with AllowUnsignedCEK).
	TrustedOCA *Cert
}

// VerifyResult says what a successful verification established.
type VerifyResult struct {
	Product  string // product whose root signed the CEK; empty in OCA-only mode
	AMDBound bool   // ARK -> ASK -> CEK verified
	OCAOnly  bool   // the CEK is unsigned; trust rests on the OCA
	OCAKey   string // SHA-256 of the OCA public key, hex
	CEKKey   string // SHA-256 of the CEK public key, hex
}

func (r *VerifyResult) String() string {
	if r.OCAOnly {
		return fmt.Sprintf("OCA-only: CEK is unsigned, platform NOT bound to AMD; OCA key %s", r.OCAKey[:16])
	}
	return fmt.Sprintf("AMD %s: ARK -> ASK -> CEK -> PEK -> PDH and OCA -> PEK verify", r.Product)
}

// VerifyChain validates ARK -> ASK -> CEK -> PEK -> PDH and OCA -> PEK. Errors start with
// "chain:" and name the link that broke.
func VerifyChain(c *Chain, opts VerifyOptions) (*VerifyResult, error) {
	if c == nil || c.PDH == nil || c.PEK == nil || c.OCA == nil || c.CEK == nil {
		return nil, errors.New("chain: PDH, PEK, OCA and CEK are all required")
	}
	for _, x := range []struct {
		c    *Cert
		want Usage
	}{{c.PDH, UsagePDH}, {c.PEK, UsagePEK}, {c.OCA, UsageOCA}, {c.CEK, UsageCEK}} {
		if x.c.Usage != x.want {
			return nil, fmt.Errorf("chain: certificate in the %v position has usage %v (%#x), want %v (%#x)", x.want, x.c.Usage, uint32(x.c.Usage), x.want, uint32(x.want))
		}
	}
	if (c.ASK == nil) != (c.ARK == nil) {
		return nil, errors.New("chain: ASK and ARK must be given together")
	}
	roots := opts.Roots
	if roots == nil {
		roots = BuiltinRoots()
	}
	if opts.Product != "" {
		var sel []Root
		for _, r := range roots {
			if strings.EqualFold(r.Product, opts.Product) {
				sel = append(sel, r)
			}
		}
		if len(sel) == 0 {
			return nil, fmt.Errorf("chain: no trusted root for product %q", opts.Product)
		}
		roots = sel
	}
	res := &VerifyResult{OCAKey: keyHex(c.OCA), CEKKey: keyHex(c.CEK)}

	cekSignedByASK := false
	for i := range c.CEK.Sig {
		if !c.CEK.Sig[i].Empty() && c.CEK.Sig[i].Usage == UsageASK {
			cekSignedByASK = true
		}
	}
	switch {
	case cekSignedByASK:
		root, err := pickRoot(c, roots)
		if err != nil {
			return nil, err
		}
		res.Product, res.AMDBound = root.Product, true
	case c.CEK.Signed():
		return nil, fmt.Errorf("chain: CEK is signed by %v, not by an ASK", c.CEK.Sig[0].Usage)
	case !opts.AllowUnsignedCEK:
		return nil, errors.New("chain: CEK is unsigned (as PDH_CERT_EXPORT returns it); get the ASK-signed CEK " +
			"from AMD's key server (https://kdsintf.amd.com/cek/id/<hex of GET_ID>) or explicitly allow OCA-only mode")
	default:
		res.OCAOnly = true
	}

	if opts.TrustedOCA != nil && !opts.TrustedOCA.SameKey(c.OCA) {
		return nil, errors.New("chain: OCA key is not the trusted OCA")
	}
	ocaPub, err := c.OCA.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("chain: OCA: %w", err)
	}
	if err := c.OCA.VerifySignature(UsageOCA, ocaPub); err != nil {
		return nil, fmt.Errorf("chain: OCA self-signature: %w", err)
	}
	if err := c.PEK.VerifySignature(UsageOCA, ocaPub); err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	cekPub, err := c.CEK.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("chain: CEK: %w", err)
	}
	if err := c.PEK.VerifySignature(UsageCEK, cekPub); err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	pekPub, err := c.PEK.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("chain: PEK: %w", err)
	}
	if err := c.PDH.VerifySignature(UsagePEK, pekPub); err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	return res, nil
}

// pickRoot finds the trusted root that vouches for the CEK, checking ARK, ARK->ASK, ASK->CEK.
func pickRoot(c *Chain, roots []Root) (Root, error) {
	if c.ARK != nil {
		var root *Root
		for i := range roots {
			if roots[i].ARK.Equal(c.ARK) {
				root = &roots[i]
				break
			}
		}
		if root == nil {
			return Root{}, fmt.Errorf("chain: ARK (key id %s) is not a trusted root%s", c.ARK.KeyIDString(), productList(roots))
		}
		if c.ARK.KeyID != c.ARK.CertifyingID {
			return Root{}, errors.New("chain: ARK is not self-certified")
		}
		if err := c.ARK.CheckSignedBy(c.ARK); err != nil {
			return Root{}, fmt.Errorf("chain: ARK self-signature: %w", err)
		}
		if c.ASK.Usage != UsageASK {
			return Root{}, fmt.Errorf("chain: ASK certificate has usage %v", c.ASK.Usage)
		}
		if err := c.ASK.CheckSignedBy(c.ARK); err != nil {
			return Root{}, fmt.Errorf("chain: %w", err)
		}
		if err := cekSignedBy(c.CEK, c.ASK); err != nil {
			return Root{}, fmt.Errorf("chain: %w (%s ASK)", err, root.Product)
		}
		return Root{Product: root.Product, ARK: c.ARK, ASK: c.ASK}, nil
	}
	for _, r := range roots {
		if cekSignedBy(c.CEK, r.ASK) == nil {
			if err := r.Check(); err != nil {
				return Root{}, err
			}
			return r, nil
		}
	}
	if len(roots) == 1 {
		return Root{}, fmt.Errorf("chain: CEK signature by ASK does not verify (%s ASK)", roots[0].Product)
	}
	return Root{}, fmt.Errorf("chain: CEK signature by ASK does not verify under any trusted product's ASK%s", productList(roots))
}

func cekSignedBy(cek *Cert, ask *AMDCert) error {
	pub, err := ask.PublicKey()
	if err != nil {
		return err
	}
	return cek.VerifySignature(UsageASK, pub)
}

func productList(roots []Root) string {
	var ps []string
	for _, r := range roots {
		ps = append(ps, r.Product)
	}
	return " (tried " + strings.Join(ps, ", ") + ")"
}

func keyHex(c *Cert) string {
	d := c.KeyDigest()
	return hex.EncodeToString(d[:])
}

// KDSCEKURL is the AMD key-distribution-server URL of the ASK-signed CEK for a chip id (the
// bytes GET_ID returns), uppercase hex as virtee/sevctl sends it.
func KDSCEKURL(chipID []byte) string {
	return "https://kdsintf.amd.com/cek/id/" + strings.ToUpper(hex.EncodeToString(chipID))
}
