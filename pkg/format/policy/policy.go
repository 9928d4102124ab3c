// Package policy encodes, decodes and validates the sevshim policy block (docs/formats.md
// section 2): the owner's rules that the shim enforces on every BIOS it is offered. The C
// declaration of the same layout is shim/include/sevshim/formats.h; both sides are tested
// against testdata/golden/policy.
package policy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha512"
	"encoding/binary"
	"fmt"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/keys"
)

// Format constants (docs/formats.md section 2).
const (
	Magic            = "SEVSHPOL"
	FormatVersion    = 2 // 2 added the var-store mode and allow-list; version 1 blocks are refused
	HeaderSize       = 64
	SignerSize       = 160
	DigestSize       = 48
	VersionSize      = 8
	PublicKeySize    = keys.PublicKeySize
	RegionSize       = 0x4000
	MaxSigners       = 16
	MaxDeniedDigests = 64
	MaxDeniedVersion = 64
	MaxAllowedVars   = 16
	MaxPCR           = 23
	// MaxSize is the largest valid encoding (all lists full); it fits the region.
	MaxSize = HeaderSize + SignerSize*MaxSigners + DigestSize*MaxDeniedDigests + VersionSize*MaxDeniedVersion + DigestSize*MaxAllowedVars
)

// Var-store modes (docs/formats.md section 2): what the shim does with opt/org.sevshim/vars.
// The zero value is VarsNone, so a policy that says nothing allows no host var store.
const (
	VarsNone  uint8 = 0 // a vars file is refused (E041)
	VarsAllow uint8 = 1 // only vars files whose SHA-384 is in AllowedVars (else E042)
	VarsAny   uint8 = 2 // any vars file of the layout's size (still measured, docs/formats.md section 7)
)

// Secret hand-off modes.
const (
	SecretOptional uint8 = 0 // wipe the secret and continue when the BIOS has no secret block
	SecretRequire  uint8 = 1 // refuse a BIOS without a secret block
)

// TPM modes.
const (
	TPMOff       uint8 = 0
	TPMIfPresent uint8 = 1
	TPMRequired  uint8 = 2
)

// Signer is a trusted BIOS signing key with its version floor.
type Signer struct {
	PublicKey  *ecdsa.PublicKey // P-384
	MinVersion uint64           // a BIOS signed by this key needs bios_version >= MinVersion
}

// KeyID returns SHA-384 of the signer's 97-byte public key (zero if the key is not P-384).
func (s Signer) KeyID() [48]byte {
	return keys.KeyID(s.PublicKey)
}

// Policy is the decoded policy block.
type Policy struct {
	Layout         uint32 // a layout id (package layout)
	SecretMode     uint8  // SecretOptional or SecretRequire
	TPMMode        uint8  // TPMOff, TPMIfPresent, TPMRequired
	TPMPCR         uint8  // 0..23; 0 when TPMMode is TPMOff
	Signers        []Signer
	DeniedDigests  [][48]byte
	DeniedVersions []uint64
	VarsMode       uint8      // VarsNone (the zero value), VarsAllow or VarsAny
	AllowedVars    [][48]byte // SHA-384 of allowed var stores; only (and at least one) with VarsAllow
}

// Error is a policy encoding or validation failure; Field names the offending field.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return "policy: " + e.Field + ": " + e.Reason }

func errf(field, format string, a ...any) error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// TotalSize is the encoded size of p: 64 + 160*signers + 48*digests + 8*versions.
func (p *Policy) TotalSize() int {
	return HeaderSize + SignerSize*len(p.Signers) + DigestSize*len(p.DeniedDigests) + VersionSize*len(p.DeniedVersions) +
		DigestSize*len(p.AllowedVars)
}

// Validate checks every rule of docs/formats.md section 2 that is not purely about bytes.
func (p *Policy) Validate() error {
	if _, ok := layout.ByID(p.Layout); !ok {
		return errf("layout_id", "unknown layout %d (known: %v)", p.Layout, layout.Names())
	}
	if p.SecretMode > SecretRequire {
		return errf("secret_mode", "%d is not 0 (optional) or 1 (require)", p.SecretMode)
	}
	if p.TPMMode > TPMRequired {
		return errf("tpm_mode", "%d is not 0 (off), 1 (if-present) or 2 (required)", p.TPMMode)
	}
	if p.TPMPCR > MaxPCR {
		return errf("tpm_pcr", "%d is above %d", p.TPMPCR, MaxPCR)
	}
	if p.TPMMode == TPMOff && p.TPMPCR != 0 {
		return errf("tpm_pcr", "must be 0 when tpm_mode is off (got %d)", p.TPMPCR)
	}
	if len(p.Signers) < 1 || len(p.Signers) > MaxSigners {
		return errf("signer_count", "%d signers; need 1..%d", len(p.Signers), MaxSigners)
	}
	if len(p.DeniedDigests) > MaxDeniedDigests {
		return errf("denied_digest_count", "%d denied digests; at most %d", len(p.DeniedDigests), MaxDeniedDigests)
	}
	if len(p.DeniedVersions) > MaxDeniedVersion {
		return errf("denied_version_count", "%d denied versions; at most %d", len(p.DeniedVersions), MaxDeniedVersion)
	}
	if p.VarsMode > VarsAny {
		return errf("vars_mode", "%d is not 0 (none), 1 (allow) or 2 (any)", p.VarsMode)
	}
	if len(p.AllowedVars) > MaxAllowedVars {
		return errf("allowed_vars_count", "%d allowed var stores; at most %d", len(p.AllowedVars), MaxAllowedVars)
	}
	if p.VarsMode == VarsAllow && len(p.AllowedVars) == 0 {
		return errf("allowed_vars_count", "vars mode allow needs at least one digest (use none to allow no var store)")
	}
	if p.VarsMode != VarsAllow && len(p.AllowedVars) != 0 {
		return errf("allowed_vars_count", "%d digests, but vars mode is %s (a list needs allow)", len(p.AllowedVars), VarsModeName(p.VarsMode))
	}
	av := map[[48]byte]int{}
	for i, d := range p.AllowedVars {
		if j, dup := av[d]; dup {
			return errf(fmt.Sprintf("allowed_vars[%d]", i), "duplicate of allowed_vars[%d]", j)
		}
		av[d] = i
	}
	seen := map[[48]byte]int{}
	for i, s := range p.Signers {
		id, err := keys.CheckKeyID(s.PublicKey)
		if err != nil {
			return errf(fmt.Sprintf("signers[%d].public_key", i), "not a valid P-384 public key")
		}
		if j, dup := seen[id]; dup {
			return errf(fmt.Sprintf("signers[%d].key_id", i), "duplicate of signers[%d]", j)
		}
		seen[id] = i
	}
	dd := map[[48]byte]int{}
	for i, d := range p.DeniedDigests {
		if j, dup := dd[d]; dup {
			return errf(fmt.Sprintf("denied_digests[%d]", i), "duplicate of denied_digests[%d]", j)
		}
		dd[d] = i
	}
	dv := map[uint64]int{}
	for i, v := range p.DeniedVersions {
		if j, dup := dv[v]; dup {
			return errf(fmt.Sprintf("denied_versions[%d]", i), "duplicate of denied_versions[%d] (%d)", j, v)
		}
		dv[v] = i
	}
	return nil
}

// Encode returns the policy block, exactly TotalSize() bytes.
func (p *Policy) Encode() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, p.TotalSize())
	le := binary.LittleEndian
	copy(b[0:8], Magic)
	le.PutUint16(b[0x08:], FormatVersion)
	le.PutUint16(b[0x0A:], HeaderSize)
	le.PutUint32(b[0x0C:], uint32(len(b)))
	le.PutUint32(b[0x10:], p.Layout)
	b[0x14] = p.SecretMode
	b[0x15] = p.TPMMode
	b[0x16] = p.TPMPCR
	le.PutUint16(b[0x18:], uint16(len(p.Signers)))
	le.PutUint16(b[0x1A:], uint16(len(p.DeniedDigests)))
	le.PutUint16(b[0x1C:], uint16(len(p.DeniedVersions)))
	b[0x1E] = p.VarsMode
	le.PutUint16(b[0x20:], uint16(len(p.AllowedVars)))
	off := HeaderSize
	for _, s := range p.Signers {
		pk, _ := keys.MarshalPublicKey(s.PublicKey) // validated above
		id := sha512.Sum384(pk[:])
		copy(b[off:], id[:])
		copy(b[off+48:], pk[:])
		le.PutUint64(b[off+152:], s.MinVersion)
		off += SignerSize
	}
	for _, d := range p.DeniedDigests {
		copy(b[off:], d[:])
		off += DigestSize
	}
	for _, v := range p.DeniedVersions {
		le.PutUint64(b[off:], v)
		off += VersionSize
	}
	for _, d := range p.AllowedVars {
		copy(b[off:], d[:])
		off += DigestSize
	}
	return b, nil
}

// Digest returns SHA-384 of the encoding (the policy digest of docs/formats.md section 2).
func (p *Policy) Digest() ([48]byte, error) {
	b, err := p.Encode()
	if err != nil {
		return [48]byte{}, err
	}
	return sha512.Sum384(b), nil
}

func allZero(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }

// Decode parses a policy block that is exactly total_size bytes long, enforcing every rule of
// docs/formats.md section 2.
func Decode(b []byte) (*Policy, error) {
	n, err := headerTotal(b)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, errf("total_size", "header says %d bytes but %d were given", n, len(b))
	}
	return decodeBody(b)
}

// DecodeRegion parses the whole 16 KiB policy region of a shim image: the block at the start,
// and every byte after total_size must be zero.
func DecodeRegion(region []byte) (*Policy, error) {
	if len(region) != RegionSize {
		return nil, errf("region", "is %d bytes, want %d", len(region), RegionSize)
	}
	n, err := headerTotal(region)
	if err != nil {
		return nil, err
	}
	if !allZero(region[n:]) {
		return nil, errf("region", "bytes after total_size (%d) are not zero", n)
	}
	return decodeBody(region[:n])
}

// IsEmptyRegion reports whether a policy region is all zero (a shim template with no policy).
func IsEmptyRegion(region []byte) bool { return allZero(region) }

// headerTotal checks the fixed header fields that decide the length and returns total_size.
func headerTotal(b []byte) (int, error) {
	le := binary.LittleEndian
	if len(b) < HeaderSize {
		return 0, errf("header", "truncated: %d bytes, need at least %d", len(b), HeaderSize)
	}
	if string(b[0:8]) != Magic {
		return 0, errf("magic", "%q is not %q", b[0:8], Magic)
	}
	if v := le.Uint16(b[0x08:]); v != FormatVersion {
		return 0, errf("format_version", "%d is not supported (want %d)", v, FormatVersion)
	}
	if v := le.Uint16(b[0x0A:]); v != HeaderSize {
		return 0, errf("header_size", "%d, want %d", v, HeaderSize)
	}
	ns, nd, nv := int(le.Uint16(b[0x18:])), int(le.Uint16(b[0x1A:])), int(le.Uint16(b[0x1C:]))
	if ns < 1 || ns > MaxSigners {
		return 0, errf("signer_count", "%d; need 1..%d", ns, MaxSigners)
	}
	if nd > MaxDeniedDigests {
		return 0, errf("denied_digest_count", "%d; at most %d", nd, MaxDeniedDigests)
	}
	if nv > MaxDeniedVersion {
		return 0, errf("denied_version_count", "%d; at most %d", nv, MaxDeniedVersion)
	}
	na := int(le.Uint16(b[0x20:]))
	if na > MaxAllowedVars {
		return 0, errf("allowed_vars_count", "%d; at most %d", na, MaxAllowedVars)
	}
	want := HeaderSize + SignerSize*ns + DigestSize*nd + VersionSize*nv + DigestSize*na
	if t := le.Uint32(b[0x0C:]); uint64(t) != uint64(want) {
		return 0, errf("total_size", "%d does not match the counts (want %d)", t, want)
	}
	return want, nil
}

func decodeBody(b []byte) (*Policy, error) {
	le := binary.LittleEndian
	p := &Policy{
		Layout:     le.Uint32(b[0x10:]),
		SecretMode: b[0x14],
		TPMMode:    b[0x15],
		TPMPCR:     b[0x16],
		VarsMode:   b[0x1E],
	}
	if b[0x17] != 0 {
		return nil, errf("reserved(0x17)", "not zero")
	}
	if b[0x1F] != 0 {
		return nil, errf("reserved(0x1f)", "not zero")
	}
	if !allZero(b[0x22:0x40]) {
		return nil, errf("reserved(0x22)", "not zero")
	}
	ns, nd, nv := int(le.Uint16(b[0x18:])), int(le.Uint16(b[0x1A:])), int(le.Uint16(b[0x1C:]))
	off := HeaderSize
	for i := 0; i < ns; i++ {
		e := b[off : off+SignerSize]
		field := fmt.Sprintf("signers[%d]", i)
		pub, err := keys.ParsePublicKey(e[48:145])
		if err != nil {
			return nil, errf(field+".public_key", "%v", err)
		}
		id := sha512.Sum384(e[48:145])
		if !bytes.Equal(id[:], e[0:48]) {
			return nil, errf(field+".key_id", "is not SHA-384 of the public key")
		}
		if !allZero(e[145:152]) {
			return nil, errf(field+".reserved", "not zero")
		}
		p.Signers = append(p.Signers, Signer{PublicKey: pub, MinVersion: le.Uint64(e[152:])})
		off += SignerSize
	}
	for i := 0; i < nd; i++ {
		var d [48]byte
		copy(d[:], b[off:])
		p.DeniedDigests = append(p.DeniedDigests, d)
		off += DigestSize
	}
	for i := 0; i < nv; i++ {
		p.DeniedVersions = append(p.DeniedVersions, le.Uint64(b[off:]))
		off += VersionSize
	}
	for i, na := 0, int(le.Uint16(b[0x20:])); i < na; i++ {
		var d [48]byte
		copy(d[:], b[off:])
		p.AllowedVars = append(p.AllowedVars, d)
		off += DigestSize
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// FindSigner returns the signer whose key id is id.
func (p *Policy) FindSigner(id [48]byte) (Signer, bool) {
	for _, s := range p.Signers {
		if s.KeyID() == id {
			return s, true
		}
	}
	return Signer{}, false
}

// DigestDenied reports whether an image digest is on the deny list.
func (p *Policy) DigestDenied(d [48]byte) bool {
	for _, x := range p.DeniedDigests {
		if x == d {
			return true
		}
	}
	return false
}

// VersionDenied reports whether a BIOS version is on the deny list.
func (p *Policy) VersionDenied(v uint64) bool {
	for _, x := range p.DeniedVersions {
		if x == v {
			return true
		}
	}
	return false
}

// VarsAllowed reports whether a var store with digest d may be programmed (the model of
// docs/formats.md section 6 step 9, after the size check).
func (p *Policy) VarsAllowed(d [48]byte) bool {
	switch p.VarsMode {
	case VarsAny:
		return true
	case VarsAllow:
		for _, a := range p.AllowedVars {
			if a == d {
				return true
			}
		}
	}
	return false
}
