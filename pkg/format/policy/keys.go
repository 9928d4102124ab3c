package policy

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

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
	var key any
	var err error
	switch blk.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a public or private key", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("the PEM %q block is damaged or holds a key sevshim cannot read (want ECDSA P-384)", blk.Type)
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
	if pub.Curve != elliptic.P384() {
		return nil, fmt.Errorf("key is on %s, want P-384", pub.Curve.Params().Name)
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
