package sev

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// Sizes of the SEV platform certificate (AMD SEV API Appendix C.1).
const (
	CertSize      = 0x824 // one sev_cert
	certBodySize  = 0x414 // signed range: VERSION .. end of PUB_KEY
	keyUnionSize  = 0x404
	sigBodySize   = 0x200
	ecFieldSize   = 72  // EC coordinate / ECDSA r,s fields, little-endian
	rsaFieldSize  = 512 // RSA exponent / modulus fields, little-endian
	offKey        = 0x010
	offSig1       = 0x414
	offSig2       = 0x61C
	sigSlotSize   = 8 + sigBodySize
	maxRSABits    = 4096
	certVersion   = 1
	amdCertVerion = 1
)

// Signature is one of the two signature slots of an SEV certificate.
type Signature struct {
	Usage Usage // usage of the signing key
	Algo  Algo
	Body  [sigBodySize]byte // RSA: S little-endian; ECDSA: R[72] || S[72] little-endian
}

// Empty reports whether the slot holds no signature. Firmware writes INVALID/NONE and
// zeros; some tools leave the slot all zero (usage 0, algo 0): both count as empty.
func (s *Signature) Empty() bool {
	return s.Algo == AlgoNone && (s.Usage == UsageInvalid || s.Usage == 0) && allZero(s.Body[:])
}

// Cert is an SEV platform certificate (OCA, PEK, PDH, CEK, or a guest owner's DH key), 0x824
// bytes on the wire. The fields are kept raw so that Marshal reproduces the parsed bytes.
type Cert struct {
	Version  uint32
	APIMajor uint8
	APIMinor uint8
	Usage    Usage
	Algo     Algo
	Key      [keyUnionSize]byte // PUB_KEY union, see ECPoint / RSA accessors
	Sig      [2]Signature
}

// ParseCert parses exactly one 0x824-byte SEV certificate, strictly.
func ParseCert(b []byte) (*Cert, error) {
	if len(b) != CertSize {
		return nil, fmt.Errorf("sev cert: %d bytes, want %d (0x824)", len(b), CertSize)
	}
	c := &Cert{
		Version:  binary.LittleEndian.Uint32(b[0:]),
		APIMajor: b[4],
		APIMinor: b[5],
		Usage:    Usage(binary.LittleEndian.Uint32(b[8:])),
		Algo:     Algo(binary.LittleEndian.Uint32(b[12:])),
	}
	copy(c.Key[:], b[offKey:offKey+keyUnionSize])
	for i, off := range []int{offSig1, offSig2} {
		c.Sig[i].Usage = Usage(binary.LittleEndian.Uint32(b[off:]))
		c.Sig[i].Algo = Algo(binary.LittleEndian.Uint32(b[off+4:]))
		copy(c.Sig[i].Body[:], b[off+8:off+8+sigBodySize])
	}
	if c.Version != certVersion {
		return nil, fmt.Errorf("sev cert: version %d, want 1", c.Version)
	}
	if b[6] != 0 || b[7] != 0 {
		return nil, errors.New("sev cert: reserved bytes 6..7 are not zero")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cert) check() error {
	name := c.Usage.String()
	switch c.Usage {
	case UsagePDH:
		if !c.Algo.isECDH() {
			return fmt.Errorf("sev cert %s: key algorithm %v, want ECDH", name, c.Algo)
		}
	case UsageOCA, UsagePEK, UsageCEK:
		if !c.Algo.isECDSA() && !c.Algo.isRSA() {
			return fmt.Errorf("sev cert %s: key algorithm %v, want ECDSA or RSA", name, c.Algo)
		}
	default:
		return fmt.Errorf("sev cert: key usage %v is not a platform certificate usage (OCA, PEK, PDH, CEK)", c.Usage)
	}
	if c.Algo.isRSA() {
		if _, err := c.rsaKey(); err != nil {
			return fmt.Errorf("sev cert %s: %w", name, err)
		}
	} else if _, _, err := c.ecPoint(); err != nil {
		return fmt.Errorf("sev cert %s: %w", name, err)
	}
	for i := range c.Sig {
		s := &c.Sig[i]
		if s.Empty() {
			continue
		}
		switch s.Usage {
		case UsageARK, UsageASK, UsageOCA, UsagePEK, UsageCEK:
		default:
			return fmt.Errorf("sev cert %s: signature %d has signer usage %v", name, i+1, s.Usage)
		}
		switch {
		case s.Algo.isECDSA():
			if !allZero(s.Body[2*ecFieldSize:]) {
				return fmt.Errorf("sev cert %s: signature %d: reserved bytes after R,S are not zero", name, i+1)
			}
		case s.Algo.isRSA():
		default:
			return fmt.Errorf("sev cert %s: signature %d has algorithm %v, want RSA or ECDSA", name, i+1, s.Algo)
		}
	}
	return nil
}

// Marshal returns the 0x824-byte encoding.
func (c *Cert) Marshal() []byte {
	b := make([]byte, CertSize)
	binary.LittleEndian.PutUint32(b[0:], c.Version)
	b[4], b[5] = c.APIMajor, c.APIMinor
	binary.LittleEndian.PutUint32(b[8:], uint32(c.Usage))
	binary.LittleEndian.PutUint32(b[12:], uint32(c.Algo))
	copy(b[offKey:], c.Key[:])
	for i, off := range []int{offSig1, offSig2} {
		binary.LittleEndian.PutUint32(b[off:], uint32(c.Sig[i].Usage))
		binary.LittleEndian.PutUint32(b[off+4:], uint32(c.Sig[i].Algo))
		copy(b[off+8:], c.Sig[i].Body[:])
	}
	return b
}

// Body returns the signed byte range (offsets 0x000..0x413).
func (c *Cert) Body() []byte { return c.Marshal()[:certBodySize] }

// Signed reports whether any signature slot is populated.
func (c *Cert) Signed() bool { return !c.Sig[0].Empty() || !c.Sig[1].Empty() }

func curveSize(cv Curve) (ecdh.Curve, int, bool) {
	switch cv {
	case CurveP256:
		return ecdh.P256(), 32, true
	case CurveP384:
		return ecdh.P384(), 48, true
	}
	return nil, 0, false
}

// ecPoint decodes and validates the EC public key union; it returns the uncompressed point.
func (c *Cert) ecPoint() (Curve, []byte, error) {
	cv := Curve(binary.LittleEndian.Uint32(c.Key[0:]))
	curve, n, ok := curveSize(cv)
	if !ok {
		return cv, nil, fmt.Errorf("public key curve %v, want P-256 or P-384", cv)
	}
	qx := c.Key[4 : 4+ecFieldSize]
	qy := c.Key[4+ecFieldSize : 4+2*ecFieldSize]
	if !allZero(qx[n:]) || !allZero(qy[n:]) {
		return cv, nil, fmt.Errorf("public key: %v coordinate has non-zero bytes beyond %d", cv, n)
	}
	if !allZero(c.Key[4+2*ecFieldSize:]) {
		return cv, nil, errors.New("public key: reserved bytes after QX,QY are not zero")
	}
	pt := append([]byte{4}, reverse(qx[:n])...)
	pt = append(pt, reverse(qy[:n])...)
	if _, err := curve.NewPublicKey(pt); err != nil {
		return cv, nil, fmt.Errorf("public key is not a valid %v point", cv)
	}
	return cv, pt, nil
}

func (c *Cert) rsaKey() (*rsa.PublicKey, error) {
	bits := binary.LittleEndian.Uint32(c.Key[0:])
	if bits < 2048 || bits > maxRSABits || bits%8 != 0 {
		return nil, fmt.Errorf("RSA modulus size %d bits, want 2048..4096", bits)
	}
	n := int(bits / 8)
	exp := c.Key[4 : 4+rsaFieldSize]
	mod := c.Key[4+rsaFieldSize : 4+2*rsaFieldSize]
	if !allZero(exp[n:]) || !allZero(mod[n:]) {
		return nil, fmt.Errorf("RSA key has non-zero bytes beyond %d", n)
	}
	return rsaPublic(reverse(mod[:n]), reverse(exp[:n]))
}

func rsaPublic(modBE, expBE []byte) (*rsa.PublicKey, error) {
	e := new(big.Int).SetBytes(expBE)
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, errors.New("RSA public exponent is not a small odd integer")
	}
	m := new(big.Int).SetBytes(modBE)
	if m.BitLen() < 2048 || m.Bit(0) == 0 {
		return nil, errors.New("RSA modulus is malformed")
	}
	return &rsa.PublicKey{N: m, E: int(e.Int64())}, nil
}

// PublicKey returns the certified key: *ecdsa.PublicKey for EC keys (ECDSA and ECDH usages)
// or *rsa.PublicKey.
func (c *Cert) PublicKey() (crypto.PublicKey, error) {
	if c.Algo.isRSA() {
		return c.rsaKey()
	}
	cv, pt, err := c.ecPoint()
	if err != nil {
		return nil, fmt.Errorf("sev cert %v: %w", c.Usage, err)
	}
	curve := ecdsaCurve(cv)
	return ecdsa.ParseUncompressedPublicKey(curve, pt)
}

// ECDHPublicKey returns the certified EC key for key agreement.
func (c *Cert) ECDHPublicKey() (*ecdh.PublicKey, error) {
	if c.Algo.isRSA() {
		return nil, fmt.Errorf("sev cert %v: RSA key cannot be used for ECDH", c.Usage)
	}
	cv, pt, err := c.ecPoint()
	if err != nil {
		return nil, fmt.Errorf("sev cert %v: %w", c.Usage, err)
	}
	curve, _, _ := curveSize(cv)
	return curve.NewPublicKey(pt)
}

// NewECCert builds an unsigned certificate for an EC public key (P-256 or P-384, given as an
// *ecdsa.PublicKey or *ecdh.PublicKey).
func NewECCert(usage Usage, algo Algo, apiMajor, apiMinor uint8, pub crypto.PublicKey) (*Cert, error) {
	var pt []byte
	var cv Curve
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		b, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		pt = b
		cv = curveOf(k.Curve.Params().BitSize)
	case *ecdh.PublicKey:
		pt = k.Bytes()
		switch k.Curve() {
		case ecdh.P256():
			cv = CurveP256
		case ecdh.P384():
			cv = CurveP384
		}
	default:
		return nil, fmt.Errorf("sev cert: unsupported public key type %T", pub)
	}
	_, n, ok := curveSize(cv)
	if !ok || len(pt) != 1+2*n {
		return nil, errors.New("sev cert: key is not on P-256 or P-384")
	}
	c := &Cert{Version: certVersion, APIMajor: apiMajor, APIMinor: apiMinor, Usage: usage, Algo: algo}
	binary.LittleEndian.PutUint32(c.Key[0:], uint32(cv))
	copy(c.Key[4:], reverse(pt[1:1+n]))
	copy(c.Key[4+ecFieldSize:], reverse(pt[1+n:]))
	for i := range c.Sig {
		c.Sig[i].Usage = UsageInvalid
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

func curveOf(bits int) Curve {
	switch bits {
	case 256:
		return CurveP256
	case 384:
		return CurveP384
	}
	return CurveInvalid
}

func ecdsaCurve(cv Curve) ecdsaCurveT {
	if cv == CurveP256 {
		return p256()
	}
	return p384()
}

func hashFor(a Algo) crypto.Hash {
	if a.sha384() {
		return crypto.SHA384
	}
	return crypto.SHA256
}

func digest(h crypto.Hash, msg []byte) []byte {
	if h == crypto.SHA384 {
		d := sha512.Sum384(msg)
		return d[:]
	}
	d := sha256.Sum256(msg)
	return d[:]
}

// Sign fills signature slot (0 or 1) with a signature over the body by key, which must be
// an *ecdsa.PrivateKey (algo ECDSA_*) or *rsa.PrivateKey (algo RSA_*, PSS with salt = hash
// length). signer is the usage of the signing key. rnd may be nil for crypto/rand.
func (c *Cert) Sign(slot int, signer Usage, algo Algo, key crypto.Signer, rnd io.Reader) error {
	if slot != 0 && slot != 1 {
		return fmt.Errorf("sev cert: signature slot %d, want 0 or 1", slot)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	sum := digest(hashFor(algo), c.Body())
	var body [sigBodySize]byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if !algo.isECDSA() {
			return fmt.Errorf("sev cert: ECDSA key with algorithm %v", algo)
		}
		r, s, err := ecdsa.Sign(rnd, k, sum)
		if err != nil {
			return err
		}
		putLE(body[:ecFieldSize], r)
		putLE(body[ecFieldSize:2*ecFieldSize], s)
	case *rsa.PrivateKey:
		if !algo.isRSA() {
			return fmt.Errorf("sev cert: RSA key with algorithm %v", algo)
		}
		sig, err := rsa.SignPSS(rnd, k, hashFor(algo), sum, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			return err
		}
		copy(body[:], reverse(sig))
	default:
		return fmt.Errorf("sev cert: unsupported signing key %T", key)
	}
	c.Sig[slot] = Signature{Usage: signer, Algo: algo, Body: body}
	return nil
}

func putLE(dst []byte, v *big.Int) {
	be := v.Bytes()
	for i := range be {
		dst[i] = be[len(be)-1-i]
	}
}

// VerifySignature checks that a non-empty slot whose signer usage is signer verifies under
// pub (*ecdsa.PublicKey or *rsa.PublicKey). It returns nil if any such slot verifies.
func (c *Cert) VerifySignature(signer Usage, pub crypto.PublicKey) error {
	body := c.Body()
	found := false
	for i := range c.Sig {
		s := &c.Sig[i]
		if s.Empty() || s.Usage != signer {
			continue
		}
		found = true
		if verifyRaw(pub, s.Algo, body, s.Body[:]) == nil {
			return nil
		}
	}
	if !found {
		return fmt.Errorf("%v certificate carries no signature by the %v", c.Usage, signer)
	}
	return fmt.Errorf("%v signature by %v does not verify", c.Usage, signer)
}

func verifyRaw(pub crypto.PublicKey, algo Algo, msg, sigLE []byte) error {
	h := hashFor(algo)
	sum := digest(h, msg)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !algo.isECDSA() {
			return errors.New("algorithm mismatch")
		}
		r := new(big.Int).SetBytes(reverse(sigLE[:ecFieldSize]))
		s := new(big.Int).SetBytes(reverse(sigLE[ecFieldSize : 2*ecFieldSize]))
		if !ecdsa.Verify(k, sum, r, s) {
			return errors.New("bad ECDSA signature")
		}
		return nil
	case *rsa.PublicKey:
		if !algo.isRSA() {
			return errors.New("algorithm mismatch")
		}
		n := k.Size()
		if n > len(sigLE) || !allZero(sigLE[n:]) {
			return errors.New("RSA signature size does not match the key")
		}
		return rsa.VerifyPSS(k, h, sum, reverse(sigLE[:n]), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	}
	return fmt.Errorf("unsupported key %T", pub)
}

// KeyDigest is the SHA-256 of the PUB_KEY union: a short, stable name for a certified key.
func (c *Cert) KeyDigest() [32]byte { return sha256.Sum256(c.Key[:]) }

// SameKey reports whether two certificates certify the same public key.
func (c *Cert) SameKey(o *Cert) bool { return c.Algo == o.Algo && c.Key == o.Key }
