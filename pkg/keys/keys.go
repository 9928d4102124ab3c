// Package keys holds the P-384 ECDSA keys of sevshim in one place: the 97-byte SEC1 public key
// and its key id (SHA-384 of those bytes, docs/formats.md sections 2 and 3), public and private
// keys in PEM, and signing a SHA-384 digest in the low-s form the shim accepts, randomized or
// with the RFC 6979 deterministic nonce. It knows no sevshim format: the policy and the manifest
// packages build on it.
package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// GenerateKey creates a new P-384 signing key.
func GenerateKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }

// ParsePrivateKeyPEM reads a P-384 private key from a "PRIVATE KEY" (PKCS#8) or
// "EC PRIVATE KEY" (SEC1) PEM block.
func ParsePrivateKeyPEM(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block found")
	}
	key, err := parseBlock(blk, false)
	if err != nil {
		return nil, err
	}
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is %s, want ECDSA P-384", KeyKind(key))
	}
	if err := onP384(k.Curve); err != nil {
		return nil, err
	}
	return k, nil
}

// parseBlock parses a "PRIVATE KEY" (PKCS#8) or "EC PRIVATE KEY" (SEC1) block, and with public
// also a "PUBLIC KEY" (PKIX) block.
func parseBlock(blk *pem.Block, public bool) (key any, err error) {
	switch {
	case blk.Type == "PUBLIC KEY" && public:
		key, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case blk.Type == "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case blk.Type == "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	case public:
		return nil, fmt.Errorf("PEM block %q is not a public or private key", blk.Type)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("the PEM %q block is damaged or holds a key sevshim cannot read (want ECDSA P-384)", blk.Type)
	}
	return key, nil
}

func onP384(c elliptic.Curve) error {
	if c != elliptic.P384() {
		return fmt.Errorf("key is on %s, want P-384", c.Params().Name)
	}
	return nil
}

// MarshalPrivateKeyPEM writes key as a "PRIVATE KEY" (PKCS#8) PEM block.
func MarshalPrivateKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPEMPair returns key as a "PRIVATE KEY" PEM block and its public half as a
// "PUBLIC KEY" PEM block: the two files of a signing key.
func MarshalPEMPair(key *ecdsa.PrivateKey) (priv, pub []byte, err error) {
	if priv, err = MarshalPrivateKeyPEM(key); err != nil {
		return nil, nil, err
	}
	if pub, err = MarshalPublicKeyPEM(&key.PublicKey); err != nil {
		return nil, nil, err
	}
	return priv, pub, nil
}

// DeriveTestKey derives a P-384 key deterministically from a seed string. It exists for test
// fixtures and golden files only: anyone who knows the seed has the key.
func DeriveTestKey(seed string) *ecdsa.PrivateKey {
	n := elliptic.P384().Params().N
	h := sha512.Sum512([]byte("sevshim test key\x00" + seed))
	d := new(big.Int).SetBytes(h[:])
	d.Mod(d, new(big.Int).Sub(n, big.NewInt(1)))
	d.Add(d, big.NewInt(1))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), d.FillBytes(make([]byte, 48)))
	if err != nil {
		panic(err)
	}
	return k
}
