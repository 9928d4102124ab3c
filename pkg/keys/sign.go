package keys

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
)

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

// IsHighS reports whether s is above n/2 (the shim refuses such a signature as E027).
func IsHighS(s *big.Int) bool { return s.Cmp(p384HalfN) > 0 }

// Sign signs a SHA-384 digest with key (crypto/ecdsa, randomness from rnd) and returns r and
// the low-s form of s.
func Sign(key *ecdsa.PrivateKey, digest []byte, rnd io.Reader) (r, s *big.Int, err error) {
	r, s, err = ecdsa.Sign(rnd, key, digest)
	if err != nil {
		return nil, nil, fmt.Errorf("signing failed: %v", err)
	}
	return r, LowS(s), nil
}

// SignDeterministic signs a SHA-384 digest with key and the RFC 6979 deterministic nonce
// (HMAC-DRBG over SHA-384), so the same key and digest always give the same signature. It is
// tested against RFC 6979 appendix A.2.6 (P-384, SHA-384). Like Sign it returns the low-s form
// (s -> n-s when s > n/2), so r is RFC 6979's r and s is RFC 6979's s or, when that is high, n-s.
//
// Caveat: the final scalar arithmetic (k⁻¹, r·d) uses math/big, which is not constant-time. The
// point multiplication goes through crypto/ecdh (constant-time). This is acceptable for an
// offline signing tool on the signer's own machine, not for a signing service exposed to
// timing measurement; Sign (randomized, all constant-time in crypto/ecdsa) is the default.
func SignDeterministic(key *ecdsa.PrivateKey, digest []byte) (r, s *big.Int, err error) {
	r, s, err = signRFC6979(key, digest)
	if err != nil {
		return nil, nil, err
	}
	return r, LowS(s), nil
}

// signRFC6979 signs a SHA-384 digest with P-384 and the RFC 6979 nonce (qlen = hlen = 384).
func signRFC6979(key *ecdsa.PrivateKey, digest []byte) (r, s *big.Int, err error) {
	if len(digest) != 48 {
		return nil, nil, errors.New("digest must be 48 bytes")
	}
	n := elliptic.P384().Params().N
	d, err := key.Bytes() // 48-byte big-endian private scalar
	if err != nil {
		return nil, nil, err
	}
	dInt := new(big.Int).SetBytes(d)
	e := new(big.Int).SetBytes(digest) // bits2int: qlen == hlen, no shift
	h1 := new(big.Int).Mod(e, n).FillBytes(make([]byte, 48))

	mac := func(k []byte, parts ...[]byte) []byte {
		var m hash.Hash = hmac.New(sha512.New384, k)
		for _, p := range parts {
			m.Write(p)
		}
		return m.Sum(nil)
	}
	V := make([]byte, 48)
	for i := range V {
		V[i] = 0x01
	}
	K := make([]byte, 48)
	K = mac(K, V, []byte{0x00}, d, h1)
	V = mac(K, V)
	K = mac(K, V, []byte{0x01}, d, h1)
	V = mac(K, V)
	for tries := 0; tries < 64; tries++ {
		V = mac(K, V) // hlen == qlen: one block is enough
		k := new(big.Int).SetBytes(V)
		if k.Sign() > 0 && k.Cmp(n) < 0 {
			r, s, ok := signWithNonce(dInt, e, k, n)
			if ok {
				return r, s, nil
			}
		}
		K = mac(K, V, []byte{0x00})
		V = mac(K, V)
	}
	return nil, nil, errors.New("RFC 6979: no usable nonce (cannot happen with a sane key)")
}

func signWithNonce(d, e, k, n *big.Int) (r, s *big.Int, ok bool) {
	kp, err := ecdh.P384().NewPrivateKey(k.FillBytes(make([]byte, 48)))
	if err != nil {
		return nil, nil, false
	}
	R := kp.PublicKey().Bytes() // 0x04 || X || Y
	r = new(big.Int).SetBytes(R[1:49])
	r.Mod(r, n)
	if r.Sign() == 0 {
		return nil, nil, false
	}
	kinv := new(big.Int).ModInverse(k, n)
	s = new(big.Int).Mul(r, d)
	s.Add(s, e)
	s.Mul(s, kinv)
	s.Mod(s, n)
	if s.Sign() == 0 {
		return nil, nil, false
	}
	return r, s, true
}
