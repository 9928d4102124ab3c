package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sort"

	"github.com/google/go-tpm/tpm2"

	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/format/tpmevent"
)

// The evidence file: what the host (hostctl tpm-quote) collects from the TPM and the owner
// (verifier attest) checks. Binary values are hex; the AK is a PEM SubjectPublicKeyInfo.
type evidenceFile struct {
	Format    string            `json:"format"`
	PCR       uint              `json:"pcr"`
	Banks     map[string]string `json:"banks"`
	Nonce     string            `json:"nonce"`
	Quoted    string            `json:"quoted"`
	SigR      string            `json:"sig_r"`
	SigS      string            `json:"sig_s"`
	AK        string            `json:"ak"`
	QuoteBank string            `json:"quote_bank"`
}

const evidenceFormat = "sevshim-tpm-evidence-1"

var bankNames = map[crypto.Hash]string{crypto.SHA1: "sha1", crypto.SHA256: "sha256", crypto.SHA384: "sha384", crypto.SHA512: "sha512"}

// MarshalJSON writes the evidence file format.
func (ev *Evidence) MarshalJSON() ([]byte, error) {
	if ev.AK == nil {
		return nil, fmt.Errorf("attest: evidence has no attestation key")
	}
	der, err := x509.MarshalPKIXPublicKey(ev.AK)
	if err != nil {
		return nil, err
	}
	f := evidenceFile{
		Format: evidenceFormat, PCR: ev.PCR, Banks: map[string]string{},
		Nonce: hex.EncodeToString(ev.Nonce), Quoted: hex.EncodeToString(ev.Quoted),
		SigR: hex.EncodeToString(ev.SigR), SigS: hex.EncodeToString(ev.SigS),
		AK:        string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		QuoteBank: "sha256",
	}
	if ev.QuoteBank != tpm2.TPMAlgSHA256 {
		return nil, fmt.Errorf("attest: only SHA-256 quotes are supported, got alg %#x", ev.QuoteBank)
	}
	for h, v := range ev.Values {
		name, ok := bankNames[h]
		if !ok {
			return nil, fmt.Errorf("attest: unsupported bank %v", h)
		}
		f.Banks[name] = hex.EncodeToString(v)
	}
	return json.Marshal(f)
}

// UnmarshalJSON reads the evidence file format strictly.
func (ev *Evidence) UnmarshalJSON(b []byte) error {
	var f evidenceFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("attest: evidence: %w", err)
	}
	if f.Format != evidenceFormat {
		return fmt.Errorf("attest: evidence format %q, want %q", f.Format, evidenceFormat)
	}
	if f.PCR > 23 {
		return fmt.Errorf("attest: evidence PCR %d out of range 0..23", f.PCR)
	}
	if f.QuoteBank != "sha256" {
		return fmt.Errorf("attest: evidence quote bank %q, only sha256 is supported", f.QuoteBank)
	}
	out := Evidence{PCR: f.PCR, Values: map[crypto.Hash][]byte{}, QuoteBank: tpm2.TPMAlgSHA256}
	for name, v := range f.Banks {
		var h crypto.Hash
		for k, n := range bankNames {
			if n == name {
				h = k
			}
		}
		if h == 0 {
			return fmt.Errorf("attest: evidence bank %q unknown (want sha1, sha256, sha384 or sha512)", name)
		}
		d, err := hex.DecodeString(v)
		if err != nil || len(d) != h.Size() {
			return fmt.Errorf("attest: evidence bank %s: want %d hex bytes", name, h.Size())
		}
		out.Values[h] = d
	}
	var err error
	dec := func(field, s string) []byte {
		if err != nil {
			return nil
		}
		var d []byte
		if d, err = hex.DecodeString(s); err != nil {
			err = fmt.Errorf("attest: evidence %s: %w", field, err)
		}
		return d
	}
	out.Nonce, out.Quoted, out.SigR, out.SigS = dec("nonce", f.Nonce), dec("quoted", f.Quoted), dec("sig_r", f.SigR), dec("sig_s", f.SigS)
	if err != nil {
		return err
	}
	blk, _ := pem.Decode([]byte(f.AK))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return fmt.Errorf("attest: evidence ak: want a PEM PUBLIC KEY")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return fmt.Errorf("attest: evidence ak: %w", err)
	}
	ak, ok := k.(*ecdsa.PublicKey)
	if !ok || ak.Curve != elliptic.P256() {
		return fmt.Errorf("attest: evidence ak: want an ECDSA P-256 key")
	}
	out.AK = ak
	*ev = out
	return nil
}

// BankNames lists the evidence's banks by name, sorted (for printing).
func (ev *Evidence) BankNames() []string {
	var n []string
	for h := range ev.Values {
		n = append(n, bankNames[h])
	}
	sort.Strings(n)
	return n
}

// Expectation is the event a shim image records when it accepts a bundle.
type Expectation struct {
	Event  []byte // tpmevent encoding
	PCR    uint   // the policy's tpm_pcr
	Mode   uint8  // the policy's tpm_mode (0 = the shim records nothing)
	Fields tpmevent.Event
}

// EventFor computes the event the shim image would record for the bundle, from the shim's
// embedded policy (digest, layout, PCR), the bundle's manifest and the var store the host was
// to program (vars = its SHA-384; nil = no var store). It does not check the bundle's
// signature: whether the shim would accept it is the shim's decision, recorded by the very
// event this checks.
func EventFor(shimImage, bundleManifest []byte, vars *[48]byte) (*Expectation, error) {
	block, pol, err := shimimage.ExtractPolicy(shimImage)
	if err != nil {
		return nil, fmt.Errorf("attest: shim image: %w", err)
	}
	m, err := manifest.ParseManifestStructure(bundleManifest)
	if err != nil {
		return nil, fmt.Errorf("attest: bundle manifest: %w", err)
	}
	e := tpmevent.Event{
		Layout: m.Layout, BIOSVersion: m.Version, SignerKeyID: m.SignerKeyID,
		BIOSDigest: m.ImageDigest, PolicyDigest: PolicyDigest(block),
	}
	if vars != nil {
		e.VarStore, e.VarsDigest = true, *vars
	}
	return &Expectation{Event: e.Marshal(), PCR: uint(pol.TPMPCR), Mode: pol.TPMMode, Fields: e}, nil
}
