package sev

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

const amdPreamble = 0x40

// AMDCert is an AMD root (ARK) or signing (ASK) key certificate (AMD SEV API Appendix B.1):
// a 64-byte preamble, then PUB_EXP, MODULUS and SIGNATURE, all little-endian integers.
type AMDCert struct {
	Version      uint32
	KeyID        [16]byte
	CertifyingID [16]byte
	Usage        Usage // ARK (0x00) or ASK (0x13)
	PubExpBits   uint32
	ModulusBits  uint32
	PubExp       []byte // PubExpBits/8 bytes, little-endian
	Modulus      []byte // ModulusBits/8 bytes, little-endian
	Signature    []byte // ModulusBits/8 bytes, little-endian RSA-PSS signature
}

// KeyIDString is KEY_ID in hex.
func (c *AMDCert) KeyIDString() string { return hex.EncodeToString(c.KeyID[:]) }

// ParseAMDCert parses exactly one AMD certificate.
func ParseAMDCert(b []byte) (*AMDCert, error) {
	c, n, err := parseAMDCertPrefix(b)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, fmt.Errorf("amd cert: %d trailing bytes after a %d-byte %v certificate", len(b)-n, n, c.Usage)
	}
	return c, nil
}

func parseAMDCertPrefix(b []byte) (*AMDCert, int, error) {
	if len(b) < amdPreamble {
		return nil, 0, fmt.Errorf("amd cert: %d bytes, shorter than the 64-byte preamble", len(b))
	}
	c := &AMDCert{
		Version:     binary.LittleEndian.Uint32(b[0:]),
		Usage:       Usage(binary.LittleEndian.Uint32(b[0x24:])),
		PubExpBits:  binary.LittleEndian.Uint32(b[0x38:]),
		ModulusBits: binary.LittleEndian.Uint32(b[0x3C:]),
	}
	copy(c.KeyID[:], b[0x04:0x14])
	copy(c.CertifyingID[:], b[0x14:0x24])
	if c.Version != amdCertVerion {
		return nil, 0, fmt.Errorf("amd cert: version %d, want 1", c.Version)
	}
	if c.Usage != UsageARK && c.Usage != UsageASK {
		return nil, 0, fmt.Errorf("amd cert: key usage %#x, want ARK (0x0) or ASK (0x13)", uint32(c.Usage))
	}
	if !allZero(b[0x28:0x38]) {
		return nil, 0, fmt.Errorf("amd cert %v: reserved bytes 0x28..0x37 are not zero", c.Usage)
	}
	if c.ModulusBits != 2048 && c.ModulusBits != 4096 {
		return nil, 0, fmt.Errorf("amd cert %v: modulus size %d bits, want 2048 or 4096", c.Usage, c.ModulusBits)
	}
	if c.PubExpBits != c.ModulusBits {
		return nil, 0, fmt.Errorf("amd cert %v: public exponent size %d bits differs from modulus size %d", c.Usage, c.PubExpBits, c.ModulusBits)
	}
	n := int(c.ModulusBits / 8)
	total := amdPreamble + 3*n
	if len(b) < total {
		what := ""
		if len(b) == amdPreamble+2*n {
			what = " (signature missing: AMD's published Naples ARK needs its signature appended)"
		}
		return nil, 0, fmt.Errorf("amd cert %v: %d bytes, want %d for a %d-bit key%s", c.Usage, len(b), total, c.ModulusBits, what)
	}
	off := amdPreamble
	c.PubExp = append([]byte(nil), b[off:off+n]...)
	c.Modulus = append([]byte(nil), b[off+n:off+2*n]...)
	c.Signature = append([]byte(nil), b[off+2*n:off+3*n]...)
	if _, err := c.PublicKey(); err != nil {
		return nil, 0, err
	}
	return c, total, nil
}

// ParseAMDChain parses the ASK || ARK blob AMD publishes (ask_ark_<product>.cert) and that
// SEND_START takes as amd_certs.
func ParseAMDChain(b []byte) (ask, ark *AMDCert, err error) {
	ask, n, err := parseAMDCertPrefix(b)
	if err != nil {
		return nil, nil, fmt.Errorf("amd chain: first certificate (ASK): %w", err)
	}
	if ask.Usage != UsageASK {
		return nil, nil, fmt.Errorf("amd chain: first certificate has usage %v, want ASK (order is ASK then ARK)", ask.Usage)
	}
	ark, err = ParseAMDCert(b[n:])
	if err != nil {
		return nil, nil, fmt.Errorf("amd chain: second certificate (ARK): %w", err)
	}
	if ark.Usage != UsageARK {
		return nil, nil, fmt.Errorf("amd chain: second certificate has usage %v, want ARK", ark.Usage)
	}
	return ask, ark, nil
}

// MarshalAMDChain encodes ASK || ARK.
func MarshalAMDChain(ask, ark *AMDCert) []byte { return append(ask.Marshal(), ark.Marshal()...) }

// Marshal returns the encoding.
func (c *AMDCert) Marshal() []byte {
	b := c.signedBytes()
	return append(b, c.Signature...)
}

func (c *AMDCert) signedBytes() []byte {
	b := make([]byte, amdPreamble, amdPreamble+len(c.PubExp)+len(c.Modulus)+len(c.Signature))
	binary.LittleEndian.PutUint32(b[0:], c.Version)
	copy(b[0x04:], c.KeyID[:])
	copy(b[0x14:], c.CertifyingID[:])
	binary.LittleEndian.PutUint32(b[0x24:], uint32(c.Usage))
	binary.LittleEndian.PutUint32(b[0x38:], c.PubExpBits)
	binary.LittleEndian.PutUint32(b[0x3C:], c.ModulusBits)
	b = append(b, c.PubExp...)
	return append(b, c.Modulus...)
}

// PublicKey returns the certified RSA key.
func (c *AMDCert) PublicKey() (*rsa.PublicKey, error) {
	k, err := rsaPublic(reverse(c.Modulus), reverse(c.PubExp))
	if err != nil {
		return nil, fmt.Errorf("amd cert %v: %w", c.Usage, err)
	}
	if k.N.BitLen() != int(c.ModulusBits) {
		return nil, fmt.Errorf("amd cert %v: modulus has %d bits, header says %d", c.Usage, k.N.BitLen(), c.ModulusBits)
	}
	return k, nil
}

// Hash is the signature hash for this key size: SHA-256 for 2048-bit (Naples), SHA-384 for
// 4096-bit keys (Rome and later).
func (c *AMDCert) Hash() crypto.Hash {
	if c.ModulusBits == 2048 {
		return crypto.SHA256
	}
	return crypto.SHA384
}

// sigAlgo is the SEV algorithm id a key of this size signs CEKs with.
func (c *AMDCert) sigAlgo() Algo {
	if c.Hash() == crypto.SHA256 {
		return AlgoRSASHA256
	}
	return AlgoRSASHA384
}

// CheckSignedBy verifies c's signature under parent (RSA-PSS, MGF1 with the same hash).
// For an ARK, pass the ARK itself.
func (c *AMDCert) CheckSignedBy(parent *AMDCert) error {
	if c.CertifyingID != parent.KeyID {
		return fmt.Errorf("%v certifying id %x does not name %v key id %x", c.Usage, c.CertifyingID, parent.Usage, parent.KeyID)
	}
	pub, err := parent.PublicKey()
	if err != nil {
		return err
	}
	if len(c.Signature) != pub.Size() {
		return fmt.Errorf("%v signature is %d bytes, %v key needs %d", c.Usage, len(c.Signature), parent.Usage, pub.Size())
	}
	h := parent.Hash()
	sum := digest(h, c.signedBytes())
	if err := rsa.VerifyPSS(pub, h, sum, reverse(c.Signature), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}); err != nil {
		return fmt.Errorf("%v signature by %v does not verify", c.Usage, parent.Usage)
	}
	return nil
}

// NewAMDCert builds an unsigned AMD certificate for pub (2048 or 4096 bits).
func NewAMDCert(usage Usage, keyID, certifyingID [16]byte, pub *rsa.PublicKey) (*AMDCert, error) {
	bits := pub.N.BitLen()
	if bits != 2048 && bits != 4096 {
		return nil, fmt.Errorf("amd cert: %d-bit key, want 2048 or 4096", bits)
	}
	if usage != UsageARK && usage != UsageASK {
		return nil, fmt.Errorf("amd cert: usage %v, want ARK or ASK", usage)
	}
	n := bits / 8
	exp := make([]byte, n)
	e := pub.E
	for i := 0; e > 0; i++ {
		exp[i] = byte(e)
		e >>= 8
	}
	mod := make([]byte, n)
	pub.N.FillBytes(mod)
	return &AMDCert{Version: 1, KeyID: keyID, CertifyingID: certifyingID, Usage: usage,
		PubExpBits: uint32(bits), ModulusBits: uint32(bits), PubExp: exp, Modulus: reverse(mod)}, nil
}

// SignWith signs c with the certifying key (RSA-PSS, salt = hash length).
func (c *AMDCert) SignWith(key *rsa.PrivateKey, rnd io.Reader) error {
	if rnd == nil {
		rnd = rand.Reader
	}
	if key.N.BitLen() != int(c.ModulusBits) {
		return errors.New("amd cert: signing key size differs from the certified key size")
	}
	h := crypto.SHA384
	if key.N.BitLen() == 2048 {
		h = crypto.SHA256
	}
	sig, err := rsa.SignPSS(rnd, key, h, digest(h, c.signedBytes()), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		return err
	}
	c.Signature = reverse(sig)
	return nil
}

// Equal reports byte equality.
func (c *AMDCert) Equal(o *AMDCert) bool { return bytes.Equal(c.Marshal(), o.Marshal()) }

// SignCEK signs a CEK certificate (slot 1) with this ASK's private key.
func SignCEK(cek *Cert, ask *AMDCert, key *rsa.PrivateKey, rnd io.Reader) error {
	return cek.Sign(0, UsageASK, ask.sigAlgo(), key, rnd)
}
