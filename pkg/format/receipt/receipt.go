// Package receipt is the one Go definition of the shim's receipt (docs/formats.md section 9):
// after its decision the shim prints `SEVSHIM RECEIPT <hex>`, the 296-byte body below
// followed by HMAC-SHA-384 of the body under the owner's receipt key. The key reaches the
// shim only inside the owner's launch secret (an EFI secret table entry with KeyGUID), so only
// the measured shim can produce a receipt that verifies; the provider cannot.
//
// The C side is shim/src/receipt.c with the layout in shim/include/sevshim/formats.h; both
// are tested against testdata/golden/receipt/.
package receipt

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"

	"github.com/sevshim/sevshim/pkg/format/console"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/sev"
)

// Sizes and constants of format version 1.
const (
	Magic     = "SEVSHRCT"
	Version   = 1
	Size      = 0x128 // the MACed body
	MACSize   = 48    // HMAC-SHA-384
	KeySize   = 48    // the receipt key (data of its secret table entry)
	NonceSize = 32    // opt/org.sevshim/nonce
	// BlobSize is body || MAC, what the console line carries in hex.
	BlobSize = Size + MACSize
)

// KeyGUID names the receipt-key entry of the owner's EFI secret table.
var KeyGUID = sev.MustGUID("faea669a-ae1b-4c39-9b87-e5ae69994482")

// Field offsets (formats.h SEVSHIM_RECEIPT_OFF_*).
const (
	offVersion    = 0x008
	offShimFormat = 0x00A
	offVerdict    = 0x00C
	offFlags      = 0x00E
	offNonce      = 0x010
	offBIOSVer    = 0x030
	offManifest   = 0x038
	offKeyID      = 0x068
	offImage      = 0x098
	offVars       = 0x0C8
	offPolicy     = 0x0F8
)

// Flags say which optional fields are set; every other field is zero.
const (
	FlagNonce    = 0x01
	FlagManifest = 0x02
	FlagImage    = 0x04
	FlagVars     = 0x08
	FlagPolicy   = 0x10
	flagsAll     = 0x1F
)

// Manifest is what the receipt says about the manifest the shim was given: SHA-384 of the 352
// bytes as received, and its version and signer key id fields. For an acceptance these are
// the verified manifest's; for a refusal, what was offered.
type Manifest struct {
	Digest      [48]byte
	BIOSVersion uint64
	SignerKeyID [48]byte
}

// Receipt is the decoded body. A nil pointer is a field the shim did not have.
type Receipt struct {
	ShimFormat uint16
	Verdict    shimerr.Code // shimerr.OK: the shim accepted the BIOS and handed off
	Nonce      *[NonceSize]byte
	Manifest   *Manifest
	Image      *[48]byte // SHA-384 of the BIOS image the shim loaded
	Vars       *[48]byte // SHA-384 of the var store it was given
	Policy     *[48]byte // the shim's policy digest (SHA-384 of its policy block)
}

// Accepted says whether the shim accepted the BIOS.
func (r *Receipt) Accepted() bool { return r.Verdict == shimerr.OK }

// Flags returns the flag bits for the fields that are set.
func (r *Receipt) Flags() uint16 {
	var f uint16
	if r.Nonce != nil {
		f |= FlagNonce
	}
	if r.Manifest != nil {
		f |= FlagManifest
	}
	if r.Image != nil {
		f |= FlagImage
	}
	if r.Vars != nil {
		f |= FlagVars
	}
	if r.Policy != nil {
		f |= FlagPolicy
	}
	return f
}

// Encode returns the 296-byte body.
func (r *Receipt) Encode() ([]byte, error) {
	if !r.Verdict.Known() {
		return nil, fmt.Errorf("receipt: verdict %d is not a shim error code", r.Verdict)
	}
	b := make([]byte, Size)
	copy(b, Magic)
	binary.LittleEndian.PutUint16(b[offVersion:], Version)
	binary.LittleEndian.PutUint16(b[offShimFormat:], r.ShimFormat)
	binary.LittleEndian.PutUint16(b[offVerdict:], uint16(r.Verdict))
	binary.LittleEndian.PutUint16(b[offFlags:], r.Flags())
	if r.Nonce != nil {
		copy(b[offNonce:], r.Nonce[:])
	}
	if m := r.Manifest; m != nil {
		binary.LittleEndian.PutUint64(b[offBIOSVer:], m.BIOSVersion)
		copy(b[offManifest:], m.Digest[:])
		copy(b[offKeyID:], m.SignerKeyID[:])
	}
	if r.Image != nil {
		copy(b[offImage:], r.Image[:])
	}
	if r.Vars != nil {
		copy(b[offVars:], r.Vars[:])
	}
	if r.Policy != nil {
		copy(b[offPolicy:], r.Policy[:])
	}
	return b, nil
}

// Parse decodes a body strictly: magic, version 1, a shim format this package knows, a known
// verdict, only defined flags, and every field whose flag is clear all zero.
func Parse(b []byte) (*Receipt, error) {
	if len(b) != Size {
		return nil, fmt.Errorf("receipt: body is %d bytes, want %d", len(b), Size)
	}
	if !bytes.Equal(b[:8], []byte(Magic)) {
		return nil, fmt.Errorf("receipt: bad magic %q, want %q", b[:8], Magic)
	}
	if v := binary.LittleEndian.Uint16(b[offVersion:]); v != Version {
		return nil, fmt.Errorf("receipt: format version %d, want %d", v, Version)
	}
	r := &Receipt{ShimFormat: binary.LittleEndian.Uint16(b[offShimFormat:]),
		Verdict: shimerr.Code(binary.LittleEndian.Uint16(b[offVerdict:]))}
	if r.ShimFormat != shimimage.FormatVersion {
		return nil, fmt.Errorf("receipt: shim format %d, want %d", r.ShimFormat, shimimage.FormatVersion)
	}
	if !r.Verdict.Known() {
		return nil, fmt.Errorf("receipt: verdict %d is not a shim error code", uint16(r.Verdict))
	}
	f := binary.LittleEndian.Uint16(b[offFlags:])
	if f&^flagsAll != 0 {
		return nil, fmt.Errorf("receipt: undefined flag bits %#x", f&^flagsAll)
	}
	field := func(flag uint16, name string, lo, hi int) ([]byte, error) {
		if f&flag != 0 {
			return b[lo:hi], nil
		}
		for _, c := range b[lo:hi] {
			if c != 0 {
				return nil, fmt.Errorf("receipt: %s is not zero but its flag is clear", name)
			}
		}
		return nil, nil
	}
	d48 := func(p []byte) *[48]byte {
		if p == nil {
			return nil
		}
		var a [48]byte
		copy(a[:], p)
		return &a
	}
	p, err := field(FlagNonce, "nonce", offNonce, offNonce+NonceSize)
	if err != nil {
		return nil, err
	}
	if p != nil {
		var n [NonceSize]byte
		copy(n[:], p)
		r.Nonce = &n
	}
	if p, err = field(FlagManifest, "the manifest fields", offBIOSVer, offImage); err != nil {
		return nil, err
	}
	if p != nil {
		m := &Manifest{BIOSVersion: binary.LittleEndian.Uint64(b[offBIOSVer:])}
		copy(m.Digest[:], b[offManifest:offManifest+48])
		copy(m.SignerKeyID[:], b[offKeyID:offKeyID+48])
		r.Manifest = m
	}
	for _, x := range []struct {
		flag uint16
		name string
		off  int
		dst  **[48]byte
	}{{FlagImage, "image digest", offImage, &r.Image}, {FlagVars, "vars digest", offVars, &r.Vars}, {FlagPolicy, "policy digest", offPolicy, &r.Policy}} {
		if p, err = field(x.flag, x.name, x.off, x.off+48); err != nil {
			return nil, err
		}
		*x.dst = d48(p)
	}
	return r, nil
}

// MAC is HMAC-SHA-384 of body under key.
func MAC(key, body []byte) [MACSize]byte {
	h := hmac.New(sha512.New384, key)
	h.Write(body)
	var out [MACSize]byte
	copy(out[:], h.Sum(nil))
	return out
}

// Seal encodes r and appends its MAC: what the shim prints.
func Seal(key []byte, r *Receipt) ([]byte, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("receipt: key is %d bytes, want %d", len(key), KeySize)
	}
	b, err := r.Encode()
	if err != nil {
		return nil, err
	}
	m := MAC(key, b)
	return append(b, m[:]...), nil
}

// ErrMAC: the MAC does not verify under the key given. The receipt was made with another key
// or a byte of it was changed; nothing in it can be believed.
var ErrMAC = errors.New("the receipt's MAC does not verify under this key: it was made with another key, or a field was modified")

// Open checks the MAC of body || MAC under key (constant time) and only then decodes the body.
func Open(key, blob []byte) (*Receipt, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("receipt: key is %d bytes, want %d", len(key), KeySize)
	}
	if len(blob) != BlobSize {
		return nil, fmt.Errorf("receipt: %d bytes, want %d (body %d + MAC %d)", len(blob), BlobSize, Size, MACSize)
	}
	m := MAC(key, blob[:Size])
	if !hmac.Equal(m[:], blob[Size:]) {
		return nil, ErrMAC
	}
	return Parse(blob[:Size])
}

// The console lines (docs/formats.md section 9; package console defines them), matched as
// whole lines.
const (
	LinePrefix = console.ReceiptPrefix
	NoneLine   = console.ReceiptNone // the shim held no receipt key
)

var (
	reLine = regexp.MustCompile(`^` + regexp.QuoteMeta(LinePrefix) + `(none|[0-9a-f]+)$`)
	reHex  = regexp.MustCompile(`^[0-9a-f]+$`)
)

// ErrNone: the shim printed `SEVSHIM RECEIPT none`: it held no receipt key (the package was
// launched without one, or the key entry was invalid), so there is nothing to verify.
var ErrNone = errors.New("the shim printed \"" + console.ReceiptNone + "\": it held no receipt key (the guest was launched without `verifier secret --receipt-key`), so there is no receipt to verify")

// Line formats body || MAC as the shim prints it.
func Line(blob []byte) string { return LinePrefix + hex.EncodeToString(blob) }

// IsLine says whether s (one whole console line) is a receipt line, `none` included.
func IsLine(s string) bool { return reLine.MatchString(s) }

// LineRegexp matches a whole receipt line, `none` included (for console scanners).
func LineRegexp() *regexp.Regexp { return reLine.Copy() }

// ParseHex decodes a receipt given as the whole console line or as its hex alone. It returns
// ErrNone for `SEVSHIM RECEIPT none` / `none`.
func ParseHex(s string) ([]byte, error) {
	if m := reLine.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	if s == "none" {
		return nil, ErrNone
	}
	if len(s) != 2*BlobSize {
		return nil, fmt.Errorf("receipt: %d hex digits, want %d", len(s), 2*BlobSize)
	}
	if !reHex.MatchString(s) {
		return nil, errors.New("receipt: not lowercase hex (the shim prints 0-9a-f only)")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("receipt: %v", err)
	}
	return b, nil
}

// ManifestInfo returns the receipt's view of a 352-byte manifest: its SHA-384 and its version
// and signer fields (read at their offsets, docs/formats.md section 3).
func ManifestInfo(manifest []byte) (*Manifest, error) {
	if len(manifest) != 352 {
		return nil, fmt.Errorf("receipt: manifest is %d bytes, want 352", len(manifest))
	}
	m := &Manifest{Digest: sha512.Sum384(manifest), BIOSVersion: binary.LittleEndian.Uint64(manifest[0x18:])}
	copy(m.SignerKeyID[:], manifest[0x50:0x80])
	return m, nil
}

// TakeKey returns the receipt key from an EFI secret table and the table without that entry,
// exactly as the shim rewrites its secret area (a table that held only the key becomes nil).
// found is false when the table has no key entry. A key entry that is not KeySize bytes, or
// two of them, is the shim's E065.
func TakeKey(t *sev.SecretTable) (key []byte, rest *sev.SecretTable, found bool, err error) {
	rest = &sev.SecretTable{}
	for _, e := range t.Entries {
		if e.GUID != KeyGUID {
			rest.Entries = append(rest.Entries, e)
			continue
		}
		if found || len(e.Data) != KeySize {
			return nil, nil, false, fmt.Errorf("receipt: %s (the secret table's receipt-key entry must be exactly one entry of %d bytes)", shimerr.ReceiptKeyInvalid, KeySize)
		}
		key, found = bytes.Clone(e.Data), true
	}
	if len(rest.Entries) == 0 {
		rest = nil
	}
	return key, rest, found, nil
}
