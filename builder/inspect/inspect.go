// Package inspect explains sevshim files: shim images, BIOS bundles, manifests, policy blocks
// and raw UEFI (OVMF) images. It is the logic behind `builder inspect`; the JSON form is
// stable (tests round-trip it) and the text form is for humans.
package inspect

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/keys"
	"github.com/sevshim/sevshim/pkg/ovmf"
	"github.com/sevshim/sevshim/pkg/sev"
	"github.com/sevshim/sevshim/pkg/verifyref"
)

// Kinds of files.
const (
	KindShimImage = "shim-image"
	KindShimTmpl  = "shim-template"
	KindBundle    = "bios-bundle"
	KindManifest  = "bios-manifest"
	KindPolicy    = "policy-block"
	KindUEFI      = "uefi-image"
)

// Digests of a whole file or image.
type Digests struct {
	SHA256 string `json:"sha256"`
	SHA384 string `json:"sha384"`
	// LaunchDigest is the SEV launch digest of a shim image: SHA-256 over the flash as QEMU's
	// LAUNCH_UPDATE_DATA feeds it (the whole pflash0 image; SEV, not SEV-ES: no VMSAs).
	LaunchDigest string `json:"launch_digest,omitempty"`
}

// DigestsOf computes the digests of an image.
func DigestsOf(b []byte, launch bool) Digests {
	s2, s3 := sha256.Sum256(b), sha512.Sum384(b)
	d := Digests{SHA256: hex.EncodeToString(s2[:]), SHA384: hex.EncodeToString(s3[:])}
	if launch {
		ld := sev.LaunchDigest(b)
		d.LaunchDigest = hex.EncodeToString(ld[:])
	}
	return d
}

// Signer in JSON.
type Signer struct {
	KeyID      string `json:"key_id"`
	PublicKey  string `json:"public_key"` // 97-byte SEC1, hex
	MinVersion uint64 `json:"min_version"`
	Name       string `json:"name,omitempty"` // from a policy YAML (names are not encoded)
}

// Policy in JSON.
type Policy struct {
	Digest         string   `json:"digest"`
	TotalSize      int      `json:"total_size"`
	Layout         string   `json:"layout"`
	LayoutID       uint32   `json:"layout_id"`
	Secret         string   `json:"secret"`
	TPM            string   `json:"tpm"`
	TPMPCR         uint8    `json:"tpm_pcr"`
	Signers        []Signer `json:"signers"`
	DeniedDigests  []string `json:"denied_digests"`
	DeniedVersions []uint64 `json:"denied_versions"`
	Vars           string   `json:"vars"`         // none | allow | any
	AllowedVars    []string `json:"allowed_vars"` // SHA-384 of allowed var stores (vars allow)
}

// PolicyOf converts a policy for output.
func PolicyOf(p *policy.Policy) (*Policy, error) {
	enc, err := p.Encode()
	if err != nil {
		return nil, err
	}
	d := sha512.Sum384(enc)
	out := &Policy{Digest: hex.EncodeToString(d[:]), TotalSize: len(enc), Layout: layout.Describe(p.Layout),
		LayoutID: p.Layout, Secret: policy.SecretModeName(p.SecretMode), TPM: policy.TPMModeName(p.TPMMode),
		TPMPCR: p.TPMPCR, DeniedDigests: []string{}, DeniedVersions: []uint64{},
		Vars: policy.VarsModeName(p.VarsMode), AllowedVars: []string{}}
	for _, av := range p.AllowedVars {
		out.AllowedVars = append(out.AllowedVars, hex.EncodeToString(av[:]))
	}
	for _, s := range p.Signers {
		pk, _ := keys.MarshalPublicKey(s.PublicKey)
		id := s.KeyID()
		out.Signers = append(out.Signers, Signer{KeyID: hex.EncodeToString(id[:]), PublicKey: hex.EncodeToString(pk[:]), MinVersion: s.MinVersion})
	}
	for _, dd := range p.DeniedDigests {
		out.DeniedDigests = append(out.DeniedDigests, hex.EncodeToString(dd[:]))
	}
	out.DeniedVersions = append(out.DeniedVersions, p.DeniedVersions...)
	return out, nil
}

// ToPolicy converts the JSON form back (used by the round-trip test and by scripts).
func (jp *Policy) ToPolicy() (*policy.Policy, error) {
	p := &policy.Policy{Layout: jp.LayoutID, TPMPCR: jp.TPMPCR}
	var ok bool
	if p.SecretMode, ok = policy.ParseSecretMode(jp.Secret); !ok {
		return nil, fmt.Errorf("secret %q", jp.Secret)
	}
	if p.TPMMode, ok = policy.ParseTPMMode(jp.TPM); !ok {
		return nil, fmt.Errorf("tpm %q", jp.TPM)
	}
	for _, s := range jp.Signers {
		raw, err := hex.DecodeString(s.PublicKey)
		if err != nil {
			return nil, err
		}
		pub, err := keys.ParsePublicKey(raw)
		if err != nil {
			return nil, err
		}
		p.Signers = append(p.Signers, policy.Signer{PublicKey: pub, MinVersion: s.MinVersion})
	}
	var err error
	if p.DeniedDigests, err = digests("denied digest", jp.DeniedDigests); err != nil {
		return nil, err
	}
	p.DeniedVersions = append(p.DeniedVersions, jp.DeniedVersions...)
	if p.VarsMode, ok = policy.ParseVarsMode(jp.Vars); !ok {
		return nil, fmt.Errorf("vars %q", jp.Vars)
	}
	if p.AllowedVars, err = digests("allowed vars digest", jp.AllowedVars); err != nil {
		return nil, err
	}
	return p, p.Validate()
}

// digests decodes hex SHA-384 digests (nil for none); what names them in the error.
func digests(what string, hexes []string) ([][48]byte, error) {
	var out [][48]byte
	for _, d := range hexes {
		raw, err := hex.DecodeString(d)
		if err != nil || len(raw) != 48 {
			return nil, fmt.Errorf("%s %q", what, d)
		}
		out = append(out, [48]byte(raw))
	}
	return out, nil
}

// Entry is a footer-table entry in JSON.
type Entry struct {
	GUID       string `json:"guid"`
	Name       string `json:"name,omitempty"`
	DataOffset int    `json:"data_offset"`
	Data       string `json:"data"`
}

// Manifest in JSON.
type Manifest struct {
	Layout        string `json:"layout"`
	LayoutID      uint32 `json:"layout_id"`
	ImageSize     uint64 `json:"image_size"`
	BIOSVersion   uint64 `json:"bios_version"`
	VersionString string `json:"version_string"`
	ImageDigest   string `json:"image_digest"`
	SignerKeyID   string `json:"signer_key_id"`
	Signature     string `json:"signature"`
	// SignatureVerified is set when a key (--signer) or a shim policy (--shim) was given.
	SignatureVerified *bool `json:"signature_verified,omitempty"`
	// SignatureCheck says in words what SignatureVerified says: verified, FAILED, or not
	// checked (no key given, or the signer is not one of the shim's).
	SignatureCheck string `json:"signature_check"`
	// ShimVerdict is the shim's decision when a shim image was given: verifyref.Check (steps 2-9)
	// and, for a bundle, the secret hand-off plan (SecretCheck: E060..E062).
	ShimVerdict string `json:"shim_verdict,omitempty"`
	// ShimAdvice is what to do about a refusal (docs/errors.md).
	ShimAdvice string `json:"shim_advice,omitempty"`

	verdict *shimerr.Code
}

// Report is the result of inspecting one file.
type Report struct {
	File     string       `json:"file"`
	Kind     string       `json:"kind"`
	Size     int          `json:"size"`
	Digests  Digests      `json:"digests"`
	Layout   string       `json:"layout,omitempty"`
	Footer   []Entry      `json:"footer_table,omitempty"`
	Secret   *Secret      `json:"secret_block,omitempty"`
	PolicyAt *Region      `json:"policy_region,omitempty"`
	Policy   *Policy      `json:"policy,omitempty"`
	Manifest *Manifest    `json:"manifest,omitempty"`
	Image    *Digests     `json:"image_digests,omitempty"` // the BIOS image inside a bundle
	Volumes  *ovmf.Report `json:"firmware_volumes,omitempty"`
	// About says what the file is for and which command takes it (files other than images).
	About string `json:"about,omitempty"`
	Facts []Fact `json:"facts,omitempty"`
}

// Secret is the SEV secret block declared by an image.
type Secret struct {
	Base   uint32 `json:"base"`
	Size   uint32 `json:"size"`
	Usable bool   `json:"usable"`
}

// Region is where the policy lives in a shim image.
type Region struct {
	GPA    uint32 `json:"gpa"`
	Offset int    `json:"offset"`
	Size   int    `json:"size"`
}

// Options for Inspect.
type Options struct {
	Signer *ecdsa.PublicKey // verify a bundle/manifest signature with this key
	Shim   []byte           // a shim image: verify with its policy and run the shim's decision
}

func footer(entries []shimimage.Entry) []Entry {
	var out []Entry
	for _, e := range entries {
		out = append(out, Entry{e.GUID.String(), e.Name(), e.Offset, hex.EncodeToString(e.Data)})
	}
	return out
}

// Inspect identifies and explains b (the content of file name). Its errors are *Error: they
// name the kind of file found and what is wrong with it.
func Inspect(name string, b []byte, opt Options) (*Report, error) {
	r, err := inspectBytes(name, b, opt)
	if err == nil {
		return r, nil
	}
	var ie *Error
	if errors.As(err, &ie) {
		return nil, err
	}
	kind := KindUnknown
	if r != nil && r.Kind != "" {
		kind = r.Kind
	}
	return nil, &Error{File: name, Kind: kind, Msg: strings.TrimPrefix(err.Error(), name+": ")}
}

func inspectBytes(name string, b []byte, opt Options) (*Report, error) {
	r := &Report{File: name, Size: len(b), Digests: DigestsOf(b, false)}
	switch {
	case len(b) >= 8 && string(b[:8]) == manifest.ManifestMagic && len(b) > manifest.ManifestSize:
		if err := inspectBundle(r, b, opt); err != nil {
			return r, err
		}
		return r, nil
	case len(b) == manifest.ManifestSize && string(b[:8]) == manifest.ManifestMagic:
		r.Kind = KindManifest
		m, err := manifest.ParseManifestStructure(b)
		if err != nil {
			return r, fmt.Errorf("%s: manifest: %v", name, err)
		}
		r.Manifest = manifestOf(m, b, nil, false, opt)
		return r, nil
	case len(b) >= 8 && string(b[:8]) == policy.Magic:
		r.Kind = KindPolicy
		p, err := policy.Decode(b)
		if err != nil {
			return r, fmt.Errorf("%s: %v", name, err)
		}
		r.Policy, err = PolicyOf(p)
		return r, err
	}
	entries, err := shimimage.ParseFooterTable(b)
	if err != nil {
		return identify(r, b)
	}
	r.Footer = footer(entries)
	in, err := shimimage.ParseInfo(b)
	if err != nil {
		return r, fmt.Errorf("%s: %v", name, err)
	}
	if in.HasSecret {
		r.Secret = &Secret{in.SecretBase, in.SecretSize, in.SecretUsable()}
	}
	if in.HasInfo {
		r.Kind = KindShimImage
		if _, err := shimimage.Info(b); err != nil {
			return r, fmt.Errorf("%s: %v", name, err)
		}
		r.Layout = in.LayoutName
		r.PolicyAt = &Region{in.PolicyGPA, in.PolicyOffset, in.PolicySize}
		r.Digests = DigestsOf(b, true)
		_, p, err := shimimage.ExtractPolicy(b)
		if err == shimimage.ErrEmptyPolicy {
			r.Kind = KindShimTmpl
			return r, nil
		}
		if err != nil {
			return r, fmt.Errorf("%s: embedded policy: %v", name, err)
		}
		r.Kind = KindShimImage
		r.Policy, err = PolicyOf(p)
		return r, err
	}
	r.Kind = KindUEFI
	for _, l := range layout.All() {
		if len(b) == int(l.CodeSize) {
			r.Layout = l.Name
		}
	}
	rep, err := ovmf.Scan(b, true)
	if err != nil {
		return r, fmt.Errorf("%s: firmware volumes: %v", name, err)
	}
	r.Volumes = rep
	return r, nil
}

func inspectBundle(r *Report, b []byte, opt Options) error {
	r.Kind = KindBundle
	mb, img, m, err := manifest.SplitBundle(b)
	if err != nil {
		return fmt.Errorf("%s: %v", r.File, err)
	}
	r.Layout = layout.Describe(m.Layout)
	d := DigestsOf(img, false)
	r.Image = &d
	r.Manifest = manifestOf(m, mb, img, true, opt)
	return nil
}

func manifestOf(m *manifest.Manifest, raw, img []byte, imgPresent bool, opt Options) *Manifest {
	out := &Manifest{Layout: layout.Describe(m.Layout), LayoutID: m.Layout, ImageSize: m.ImageSize,
		BIOSVersion: m.Version, VersionString: m.VersionString, ImageDigest: hex.EncodeToString(m.ImageDigest[:]),
		SignerKeyID: hex.EncodeToString(m.SignerKeyID[:]), Signature: hex.EncodeToString(m.Signature[:]),
		SignatureCheck: SigNotChecked}
	setSig := func(ok bool) {
		out.SignatureVerified = &ok
		out.SignatureCheck = SigFailed
		if ok {
			out.SignatureCheck = SigVerified
		}
	}
	if opt.Signer != nil {
		setSig(m.Verify(opt.Signer) == nil)
	}
	if opt.Shim != nil {
		if _, p, err := shimimage.ExtractPolicy(opt.Shim); err == nil {
			if s, found := p.FindSigner(m.SignerKeyID); found {
				setSig(m.Verify(s.PublicKey) == nil)
			} else if opt.Signer == nil {
				out.SignatureCheck = SigUnknownSigner
			}
			// the shim's steps 2-9 (verifyref.Check), then its secret hand-off plan (step 10)
			v := verifyref.Check(p, raw, true, img, imgPresent, nil, false)
			if v == shimerr.OK && imgPresent {
				v = SecretCheck(p.SecretMode, img, 0)
			}
			if !imgPresent && v == shimerr.BIOSMissing {
				// a manifest on its own: every check the manifest alone can pass, passed
				out.ShimVerdict = ManifestOnlyOK
				return out
			}
			out.ShimVerdict = v.String()
			if v != shimerr.OK {
				out.ShimAdvice = v.Help()
			}
			out.verdict = &v
		}
	}
	return out
}

// ManifestOnlyOK is the verdict for a manifest without its image that passes the manifest's checks.
const ManifestOnlyOK = "manifest OK (no image given: the image, deny-list and secret checks were not run)"

// Signature check results (Manifest.SignatureCheck).
const (
	SigVerified      = "verified"
	SigFailed        = "FAILED"
	SigNotChecked    = "not checked (give --signer KEY.pub or --shim SHIM.fd)"
	SigUnknownSigner = "not checked (the signer's key is not one of the shim's signers)"
)

// Refusal says why the shim (or the given signer) rejects the manifest or bundle r explains:
// the shim's verdict when it is not OK, or a signature that failed to verify. "" when neither.
func (r *Report) Refusal() string {
	m := r.Manifest
	if m == nil {
		return ""
	}
	if m.verdict != nil && *m.verdict != shimerr.OK {
		return fmt.Sprintf("the shim would refuse %s: %s: %s", r.File, m.ShimVerdict, m.ShimAdvice)
	}
	if m.SignatureVerified != nil && !*m.SignatureVerified {
		return fmt.Sprintf("%s: the manifest signature does not verify with the given key", r.File)
	}
	return ""
}

// WriteText renders r for humans.
func WriteText(w io.Writer, r *Report) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "file:    %s\nkind:    %s\nsize:    %d (0x%x)\n", r.File, r.Kind, r.Size, r.Size)
	if r.Layout != "" {
		fmt.Fprintf(&b, "layout:  %s\n", r.Layout)
	}
	fmt.Fprintf(&b, "sha256:  %s\nsha384:  %s\n", r.Digests.SHA256, r.Digests.SHA384)
	if r.About != "" {
		fmt.Fprintf(&b, "what:    %s\n", r.About)
	}
	for _, f := range r.Facts {
		fmt.Fprintf(&b, "  %s: %s\n", f.Key, f.Value)
	}
	if r.Digests.LaunchDigest != "" {
		fmt.Fprintf(&b, "SEV launch digest (SHA-256 of the flash, SEV without ES): %s\n", r.Digests.LaunchDigest)
	}
	if r.PolicyAt != nil {
		fmt.Fprintf(&b, "policy region: gpa 0x%08x, offset 0x%x, size 0x%x\n", r.PolicyAt.GPA, r.PolicyAt.Offset, r.PolicyAt.Size)
	}
	if r.Kind == KindShimTmpl {
		b.WriteString("policy:  none (empty region: a template; run `builder build`)\n")
	}
	if p := r.Policy; p != nil {
		fmt.Fprintf(&b, "policy:\n  digest (sha384): %s\n  size: %d bytes\n  layout: %s\n  secret hand-off: %s\n  tpm: %s",
			p.Digest, p.TotalSize, p.Layout, p.Secret, p.TPM)
		if p.TPM != "off" {
			fmt.Fprintf(&b, " (PCR %d)", p.TPMPCR)
		}
		fmt.Fprintf(&b, "\n  signers (%d):\n", len(p.Signers))
		for i, s := range p.Signers {
			fmt.Fprintf(&b, "    [%d] key id %s\n        min version %d\n", i, s.KeyID, s.MinVersion)
			if s.Name != "" {
				fmt.Fprintf(&b, "        name %q\n", s.Name)
			}
		}
		fmt.Fprintf(&b, "  denied digests (%d):\n", len(p.DeniedDigests))
		for _, d := range p.DeniedDigests {
			fmt.Fprintf(&b, "    %s\n", d)
		}
		vs := make([]string, len(p.DeniedVersions))
		for i, v := range p.DeniedVersions {
			vs[i] = fmt.Sprint(v)
		}
		fmt.Fprintf(&b, "  denied versions (%d): %s\n", len(p.DeniedVersions), strings.Join(vs, ", "))
		fmt.Fprintf(&b, "  var store: %s\n", p.Vars)
		for _, d := range p.AllowedVars {
			fmt.Fprintf(&b, "    allowed %s\n", d)
		}
	}
	if m := r.Manifest; m != nil {
		fmt.Fprintf(&b, "manifest:\n  layout: %s\n  image size: 0x%x\n  bios version: %d\n  version string: %q\n  image digest (sha384): %s\n  signer key id: %s\n",
			m.Layout, m.ImageSize, m.BIOSVersion, m.VersionString, m.ImageDigest, m.SignerKeyID)
		fmt.Fprintf(&b, "  signature: %s\n", m.SignatureCheck)
		if m.ShimVerdict != "" {
			fmt.Fprintf(&b, "  shim verdict: %s\n", m.ShimVerdict)
			if m.ShimAdvice != "" {
				fmt.Fprintf(&b, "  what to do: %s\n", m.ShimAdvice)
			}
		}
	}
	if r.Image != nil {
		fmt.Fprintf(&b, "bios image:\n  sha256: %s\n  sha384: %s\n", r.Image.SHA256, r.Image.SHA384)
	}
	if r.Secret != nil {
		fmt.Fprintf(&b, "SEV secret block: base 0x%x size 0x%x", r.Secret.Base, r.Secret.Size)
		if !r.Secret.Usable {
			b.WriteString(" (empty: no usable secret area)")
		}
		b.WriteString("\n")
	}
	if len(r.Footer) > 0 {
		fmt.Fprintf(&b, "footer table (%d entries):\n", len(r.Footer))
		for _, e := range r.Footer {
			n := e.Name
			if n == "" {
				n = "unknown"
			}
			fmt.Fprintf(&b, "  %s  %-20s data@0x%x %s\n", e.GUID, n, e.DataOffset, e.Data)
		}
	}
	if r.Volumes != nil {
		fmt.Fprintf(&b, "firmware volumes (%d top-level, %d files):\n", len(r.Volumes.Volumes), r.Volumes.Files)
		var pr func(vs []ovmf.Volume, ind string)
		pr = func(vs []ovmf.Volume, ind string) {
			for _, v := range vs {
				fmt.Fprintf(&b, "%soffset 0x%x length 0x%x name %s fs %s files %d\n", ind, v.Offset, v.Length, v.Name, v.FileSystem, v.Files)
				pr(v.Nested, ind+"  ")
			}
		}
		pr(r.Volumes.Volumes, "  ")
	}
	w.Write(b.Bytes())
}
