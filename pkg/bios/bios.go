// Package bios implements the BIOS manifest and bundle (docs/formats.md section 3), re-exports
// the layout table (section 1), and holds Check, the Go reference model of every decision the
// shim takes on a BIOS (section 6, steps 2-9). The C shim is tested against Check.
package bios

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
)

// Layout is the flash layout type (one definition, in pkg/format/layout).
type Layout = layout.Layout

// LayoutOVMF4M is the id of the "ovmf-4m" layout.
const LayoutOVMF4M = layout.OVMF4M

// LayoutByID and LayoutByName look a layout up in the single layout table.
func LayoutByID(id uint32) (Layout, bool)     { return layout.ByID(id) }
func LayoutByName(name string) (Layout, bool) { return layout.ByName(name) }

// Manifest format constants.
const (
	ManifestMagic    = "SEVSHMAN"
	ManifestVersion  = 1
	ManifestSize     = 0x160 // 352
	SignedSize       = 0x100 // 256
	SignatureSize    = 96
	VersionStringMax = 63
)

// Manifest is a decoded BIOS manifest.
type Manifest struct {
	Layout        uint32
	ImageSize     uint64
	Version       uint64 // bios_version
	ImageDigest   [48]byte
	SignerKeyID   [48]byte
	VersionString string
	Signature     [SignatureSize]byte // r(48, big-endian) || s(48, big-endian)
}

// Error is a manifest or bundle failure; Field names the offending field.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return "manifest: " + e.Field + ": " + e.Reason }

func errf(field, format string, a ...any) error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// KeyID is SHA-384 of the 97-byte SEC1 uncompressed encoding of pub (zero for a non-P-384 key).
func KeyID(pub *ecdsa.PublicKey) [48]byte {
	id, _ := policy.KeyID(pub)
	return id
}

// ValidVersionString checks the version_string rule: printable ASCII 0x20..0x7E, at most 63.
func ValidVersionString(s string) error {
	if len(s) > VersionStringMax {
		return errf("version_string", "%d characters, at most %d", len(s), VersionStringMax)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return errf("version_string", "byte %d (0x%02x) is not printable ASCII", i, s[i])
		}
	}
	return nil
}

// NewManifest describes image for the given layout id. The signature is left zero; call Sign.
func NewManifest(layoutID uint32, image []byte, version uint64, versionString string, signerPub *ecdsa.PublicKey) (*Manifest, error) {
	l, ok := LayoutByID(layoutID)
	if !ok {
		return nil, errf("layout_id", "unknown layout %d (known: %v)", layoutID, layout.Names())
	}
	if len(image) != int(l.CodeSize) {
		return nil, errf("image_size", "image is %d (0x%x) bytes but layout %s needs exactly 0x%x",
			len(image), len(image), l.Name, l.CodeSize)
	}
	if err := ValidVersionString(versionString); err != nil {
		return nil, err
	}
	id, err := policy.KeyID(signerPub)
	if err != nil {
		return nil, errf("signer_key_id", "signer key: %v", err)
	}
	return &Manifest{
		Layout:        layoutID,
		ImageSize:     uint64(len(image)),
		Version:       version,
		ImageDigest:   sha512.Sum384(image),
		SignerKeyID:   id,
		VersionString: versionString,
	}, nil
}

// MarshalSigned returns the 256 signed bytes [0x000, 0x100).
func (m *Manifest) MarshalSigned() ([]byte, error) {
	if err := ValidVersionString(m.VersionString); err != nil {
		return nil, err
	}
	b := make([]byte, SignedSize)
	le := binary.LittleEndian
	copy(b[0:8], ManifestMagic)
	le.PutUint16(b[0x08:], ManifestVersion)
	le.PutUint16(b[0x0A:], SignedSize)
	le.PutUint32(b[0x0C:], m.Layout)
	le.PutUint64(b[0x10:], m.ImageSize)
	le.PutUint64(b[0x18:], m.Version)
	copy(b[0x20:0x50], m.ImageDigest[:])
	copy(b[0x50:0x80], m.SignerKeyID[:])
	copy(b[0x80:0xC0], m.VersionString)
	return b, nil
}

// Marshal returns the 352-byte manifest with the current Signature.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := m.MarshalSigned()
	if err != nil {
		return nil, err
	}
	return append(b, m.Signature[:]...), nil
}

// Sign signs the manifest with key (P-384 ECDSA over SHA-384 of the signed bytes), stores the
// raw r||s signature in m.Signature and returns the 352-byte manifest. The key id must match.
// Go's ECDSA is randomized, so two signatures of the same manifest differ; use SignWith and a
// deterministic nonce source if byte-identical output is needed.
func (m *Manifest) Sign(key *ecdsa.PrivateKey) ([]byte, error) { return m.SignWith(key, rand.Reader) }

// SignWith is Sign with an explicit randomness source passed to crypto/ecdsa.
func (m *Manifest) SignWith(key *ecdsa.PrivateKey, rnd io.Reader) ([]byte, error) {
	if key == nil {
		return nil, errf("signature", "no signing key")
	}
	id, err := policy.KeyID(&key.PublicKey)
	if err != nil {
		return nil, errf("signature", "signing key: %v", err)
	}
	if id != m.SignerKeyID {
		return nil, errf("signer_key_id", "does not match the signing key")
	}
	tbs, err := m.MarshalSigned()
	if err != nil {
		return nil, err
	}
	h := sha512.Sum384(tbs)
	r, s, err := ecdsa.Sign(rnd, key, h[:])
	if err != nil {
		return nil, errf("signature", "signing failed: %v", err)
	}
	return m.SetSignature(r, LowS(s))
}

// p384HalfN is floor(n/2) for the P-384 group order n.
var p384HalfN = new(big.Int).Rsh(elliptic.P384().Params().N, 1)

// LowS returns s if s <= n/2, else n - s (n = the P-384 group order): the one form of an
// ECDSA signature the shim accepts (docs/formats.md section 3, E027). (r, s) and (r, n-s)
// verify alike, so normalising keeps the signature valid.
func LowS(s *big.Int) *big.Int {
	if s.Cmp(p384HalfN) <= 0 {
		return s
	}
	return new(big.Int).Sub(elliptic.P384().Params().N, s)
}

// HighS reports whether the stored signature's s is above n/2 (refused as E027).
func (m *Manifest) HighS() bool {
	return new(big.Int).SetBytes(m.Signature[48:]).Cmp(p384HalfN) > 0
}

// SetSignature stores r and s as 48-byte big-endian halves and returns the 352-byte manifest.
func (m *Manifest) SetSignature(r, s *big.Int) ([]byte, error) {
	if r.Sign() <= 0 || s.Sign() <= 0 || r.BitLen() > 384 || s.BitLen() > 384 {
		return nil, errf("signature", "r or s out of range")
	}
	r.FillBytes(m.Signature[:48])
	s.FillBytes(m.Signature[48:])
	return m.Marshal()
}

// Verify checks the signature with pub. It also checks that pub's key id is the manifest's.
func (m *Manifest) Verify(pub *ecdsa.PublicKey) error {
	id, err := policy.KeyID(pub)
	if err != nil {
		return errf("signature", "verification key: %v", err)
	}
	if id != m.SignerKeyID {
		return errf("signer_key_id", "manifest was signed by key id %x…, not by this key (%x…)", m.SignerKeyID[:8], id[:8])
	}
	if m.HighS() {
		return errf("signature", "s is above n/2 (not the low-s form; E027)")
	}
	if !m.signatureValid(pub) {
		return errf("signature", "does not verify with the signer's key")
	}
	return nil
}

func (m *Manifest) signatureValid(pub *ecdsa.PublicKey) bool {
	if pub == nil || pub.Curve != elliptic.P384() {
		return false
	}
	tbs, err := m.MarshalSigned()
	if err != nil {
		return false
	}
	h := sha512.Sum384(tbs)
	r := new(big.Int).SetBytes(m.Signature[:48])
	s := new(big.Int).SetBytes(m.Signature[48:])
	return ecdsa.Verify(pub, h[:], r, s)
}

// parseStructure applies the well-formedness rules the shim reports as E022 (magic, version,
// signed_size, reserved bytes, version string). It does not judge layout_id or image_size:
// the shim checks those after the signature (E025, E026).
func parseStructure(b []byte) (*Manifest, error) {
	if len(b) != ManifestSize {
		return nil, errf("size", "%d bytes, want %d", len(b), ManifestSize)
	}
	le := binary.LittleEndian
	if string(b[0:8]) != ManifestMagic {
		return nil, errf("magic", "%q is not %q", b[0:8], ManifestMagic)
	}
	if v := le.Uint16(b[0x08:]); v != ManifestVersion {
		return nil, errf("format_version", "%d is not supported (want %d)", v, ManifestVersion)
	}
	if v := le.Uint16(b[0x0A:]); v != SignedSize {
		return nil, errf("signed_size", "%d, want %d", v, SignedSize)
	}
	vs := b[0x80:0xC0]
	n := bytes.IndexByte(vs, 0)
	if n < 0 {
		return nil, errf("version_string", "not NUL-terminated within 64 bytes")
	}
	for i := n; i < len(vs); i++ {
		if vs[i] != 0 {
			return nil, errf("version_string", "non-zero byte after the terminating NUL")
		}
	}
	if err := ValidVersionString(string(vs[:n])); err != nil {
		return nil, err
	}
	for _, c := range b[0xC0:0x100] {
		if c != 0 {
			return nil, errf("reserved", "bytes 0xc0..0xff are not zero")
		}
	}
	m := &Manifest{
		Layout:        le.Uint32(b[0x0C:]),
		ImageSize:     le.Uint64(b[0x10:]),
		Version:       le.Uint64(b[0x18:]),
		VersionString: string(vs[:n]),
	}
	copy(m.ImageDigest[:], b[0x20:0x50])
	copy(m.SignerKeyID[:], b[0x50:0x80])
	copy(m.Signature[:], b[0x100:0x160])
	return m, nil
}

// ParseManifest parses a 352-byte manifest strictly: every rule of docs/formats.md section 3,
// including a known layout and image_size equal to its code size. It does not verify the
// signature (use Verify).
func ParseManifest(b []byte) (*Manifest, error) {
	m, err := parseStructure(b)
	if err != nil {
		return nil, err
	}
	l, ok := LayoutByID(m.Layout)
	if !ok {
		return nil, errf("layout_id", "unknown layout %d (known: %v)", m.Layout, layout.Names())
	}
	if m.ImageSize != uint64(l.CodeSize) {
		return nil, errf("image_size", "0x%x, but layout %s has code size 0x%x", m.ImageSize, l.Name, l.CodeSize)
	}
	return m, nil
}

// ErrNotBundle is wrapped by ReadBundle/SplitBundle errors about the bundle framing.
var ErrNotBundle = errors.New("not a sevshim BIOS bundle")

// ParseManifestStructure applies only the well-formedness rules (the shim's E021/E022): exact
// size, magic, format version, signed_size, reserved bytes and the version string. Unlike
// ParseManifest it accepts any layout_id and image_size; the shim judges those after the
// signature (E025/E026).
func ParseManifestStructure(b []byte) (*Manifest, error) { return parseStructure(b) }

// StructureCode is the shim's verdict on a present manifest's bytes alone: OK, E021 or E022.
func StructureCode(b []byte) shimerr.Code {
	if len(b) != ManifestSize {
		return shimerr.ManifestSize
	}
	if _, err := parseStructure(b); err != nil {
		return shimerr.ManifestMalformed
	}
	return shimerr.OK
}
