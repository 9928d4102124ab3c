package keys

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// PublicKeySize is the size of the SEC1 uncompressed encoding 0x04 || X || Y of a P-384 key.
const PublicKeySize = 97

// MarshalPublicKey returns the 97-byte SEC1 uncompressed encoding 0x04||X||Y of a P-384 key.
func MarshalPublicKey(pub *ecdsa.PublicKey) ([PublicKeySize]byte, error) {
	var out [PublicKeySize]byte
	if pub == nil || pub.Curve != elliptic.P384() || pub.X == nil || pub.Y == nil {
		return out, errors.New("not a P-384 public key")
	}
	k, err := pub.ECDH()
	if err != nil {
		return out, fmt.Errorf("invalid P-384 point: %v", err)
	}
	copy(out[:], k.Bytes())
	return out, nil
}

// ParsePublicKey parses a 97-byte SEC1 uncompressed P-384 point, checking it is on the curve
// (and not the point at infinity).
func ParsePublicKey(b []byte) (*ecdsa.PublicKey, error) {
	if len(b) != PublicKeySize || b[0] != 0x04 {
		return nil, errors.New("not a 97-byte uncompressed P-384 point (0x04||X||Y)")
	}
	if _, err := ecdh.P384().NewPublicKey(b); err != nil {
		return nil, errors.New("point is not on P-384")
	}
	return &ecdsa.PublicKey{
		Curve: elliptic.P384(),
		X:     new(big.Int).SetBytes(b[1:49]),
		Y:     new(big.Int).SetBytes(b[49:97]),
	}, nil
}

// CheckKeyID returns the key id of pub, SHA-384 of its 97-byte SEC1 encoding, or an error if
// pub is not a P-384 key.
func CheckKeyID(pub *ecdsa.PublicKey) ([48]byte, error) {
	enc, err := MarshalPublicKey(pub)
	if err != nil {
		return [48]byte{}, err
	}
	return sha512.Sum384(enc[:]), nil
}

// KeyID is CheckKeyID for a key known to be P-384 (zero for any other key).
func KeyID(pub *ecdsa.PublicKey) [48]byte {
	id, _ := CheckKeyID(pub)
	return id
}

// ParsePublicKeyPEM reads a P-384 public key from PEM: a "PUBLIC KEY" (PKIX) block, or a
// private key block ("PRIVATE KEY" PKCS#8 or "EC PRIVATE KEY" SEC1), whose public half is used.
// It also accepts the 97-byte SEC1 point written as 194 hex digits.
func ParsePublicKeyPEM(b []byte) (*ecdsa.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		h := strings.TrimSpace(string(b))
		if raw, err := hex.DecodeString(h); err == nil && len(raw) == PublicKeySize {
			return ParsePublicKey(raw)
		}
		return nil, errors.New("no PEM block and not a 194-hex-digit SEC1 point")
	}
	key, err := parseBlock(blk, true)
	if err != nil {
		return nil, err
	}
	var pub *ecdsa.PublicKey
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		pub = k
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	default:
		return nil, fmt.Errorf("the key is %s, want ECDSA P-384", KeyKind(key))
	}
	if err := onP384(pub.Curve); err != nil {
		return nil, err
	}
	return pub, nil
}

// KeyKind names the kind of a parsed key in words ("an RSA private key"), for messages.
func KeyKind(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return "an RSA public key"
	case *rsa.PrivateKey:
		return "an RSA private key"
	case ed25519.PublicKey:
		return "an Ed25519 public key"
	case ed25519.PrivateKey:
		return "an Ed25519 private key"
	case *ecdh.PublicKey, *ecdh.PrivateKey:
		return "an X25519/ECDH key (not for signing)"
	case *ecdsa.PublicKey:
		return "an ECDSA public key on " + k.Curve.Params().Name
	case *ecdsa.PrivateKey:
		return "an ECDSA private key on " + k.Curve.Params().Name
	}
	return "a key of an unknown kind"
}

// MarshalPublicKeyPEM writes pub as a "PUBLIC KEY" (PKIX) PEM block.
func MarshalPublicKeyPEM(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
