package sev

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// KDF is the AMD flavour of NIST SP 800-108 KDF in counter mode with HMAC-SHA-256:
// block_i = HMAC(key, LE32(i) || label || 0x00 || context || LE32(bits)), i = 1..n.
func KDF(key []byte, label string, context []byte, bits int) []byte {
	n := (bits + 7) / 8
	out := make([]byte, 0, n+sha256.Size)
	for i := uint32(1); len(out) < n; i++ {
		m := hmac.New(sha256.New, key)
		var c [4]byte
		binary.LittleEndian.PutUint32(c[:], i)
		m.Write(c[:])
		m.Write([]byte(label))
		m.Write([]byte{0})
		m.Write(context)
		binary.LittleEndian.PutUint32(c[:], uint32(bits))
		m.Write(c[:])
		out = m.Sum(out)
	}
	return out[:n]
}

// SharedSecret is Z: the x-coordinate of priv x peer as a big-endian string (48 bytes on
// P-384), exactly what crypto/ecdh returns.
func SharedSecret(priv *ecdh.PrivateKey, peer *ecdh.PublicKey) ([]byte, error) {
	z, err := priv.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("ecdh: %w", err)
	}
	return z, nil
}

// SessionSize is the size of the LAUNCH_START / SEND_START / RECEIVE_START session buffer.
const SessionSize = 0x80

// Session is the 128-byte session buffer.
type Session struct {
	Nonce     [16]byte
	WrapTK    [32]byte // AES-128-CTR(KEK, WrapIV, TEK || TIK)
	WrapIV    [16]byte
	WrapMAC   [32]byte // HMAC-SHA256(KIK, WrapTK)
	PolicyMAC [32]byte // HMAC-SHA256(TIK, LE32(policy))
}

// ParseSession parses exactly 128 bytes.
func ParseSession(b []byte) (*Session, error) {
	if len(b) != SessionSize {
		return nil, fmt.Errorf("session: %d bytes, want %d", len(b), SessionSize)
	}
	s := &Session{}
	copy(s.Nonce[:], b[0x00:])
	copy(s.WrapTK[:], b[0x10:])
	copy(s.WrapIV[:], b[0x30:])
	copy(s.WrapMAC[:], b[0x40:])
	copy(s.PolicyMAC[:], b[0x60:])
	return s, nil
}

// Marshal returns the 128-byte encoding.
func (s *Session) Marshal() []byte {
	b := make([]byte, 0, SessionSize)
	b = append(b, s.Nonce[:]...)
	b = append(b, s.WrapTK[:]...)
	b = append(b, s.WrapIV[:]...)
	b = append(b, s.WrapMAC[:]...)
	return append(b, s.PolicyMAC[:]...)
}

// TransportKeys are the guest's transport encryption and integrity keys.
type TransportKeys struct {
	TEK [16]byte
	TIK [16]byte
}

// Wipe zeroes the keys.
func (k *TransportKeys) Wipe() { *k = TransportKeys{} }

// NewTransportKeys draws fresh random TEK and TIK.
func NewTransportKeys(rnd io.Reader) (TransportKeys, error) {
	var k TransportKeys
	if rnd == nil {
		rnd = rand.Reader
	}
	if _, err := io.ReadFull(rnd, k.TEK[:]); err != nil {
		return k, err
	}
	_, err := io.ReadFull(rnd, k.TIK[:])
	return k, err
}

// MasterSecret derives MS = KDF(Z, "sev-master-secret", nonce, 128).
func MasterSecret(z []byte, nonce [16]byte) []byte {
	return KDF(z, "sev-master-secret", nonce[:], 128)
}

func kekKik(z []byte, nonce [16]byte) (kek, kik []byte) {
	ms := MasterSecret(z, nonce)
	return KDF(ms, "sev-kek", nil, 128), KDF(ms, "sev-kik", nil, 128)
}

func ctr(key, iv []byte, dst, src []byte) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // key is always 16 bytes here
	}
	cipher.NewCTR(blk, iv).XORKeyStream(dst, src)
}

func hmac256(key []byte, parts ...[]byte) [32]byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// PolicyMAC is HMAC-SHA256(TIK, LE32(policy)).
func PolicyMAC(tik [16]byte, policy uint32) [32]byte {
	return hmac256(tik[:], le32(nil, policy))
}

// WrapSession builds a session buffer deterministically from its inputs (KAT-friendly).
func WrapSession(z []byte, nonce, wrapIV [16]byte, keys TransportKeys, policy uint32) *Session {
	kek, kik := kekKik(z, nonce)
	s := &Session{Nonce: nonce, WrapIV: wrapIV}
	plain := append(append([]byte(nil), keys.TEK[:]...), keys.TIK[:]...)
	ctr(kek, wrapIV[:], s.WrapTK[:], plain)
	s.WrapMAC = hmac256(kik, s.WrapTK[:])
	s.PolicyMAC = PolicyMAC(keys.TIK, policy)
	return s
}

// NewSession wraps keys for the holder of the PDH private key that, with ours, gives z.
func NewSession(rnd io.Reader, z []byte, keys TransportKeys, policy uint32) (*Session, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var nonce, iv [16]byte
	if _, err := io.ReadFull(rnd, nonce[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rnd, iv[:]); err != nil {
		return nil, err
	}
	return WrapSession(z, nonce, iv, keys, policy), nil
}

// Errors from Unwrap; the PSP maps them to firmware status codes.
var (
	ErrWrapMAC   = errors.New("session: WRAP_MAC does not verify (wrong PDH, wrong DH key or corrupted session)")
	ErrPolicyMAC = errors.New("session: POLICY_MAC does not verify (policy differs from the one the session was made for)")
)

// Unwrap checks WRAP_MAC, recovers TEK and TIK, then checks POLICY_MAC over policy.
func (s *Session) Unwrap(z []byte, policy uint32) (TransportKeys, error) {
	var k TransportKeys
	kek, kik := kekKik(z, s.Nonce)
	mac := hmac256(kik, s.WrapTK[:])
	if !hmac.Equal(mac[:], s.WrapMAC[:]) {
		return k, ErrWrapMAC
	}
	var plain [32]byte
	ctr(kek, s.WrapIV[:], plain[:], s.WrapTK[:])
	copy(k.TEK[:], plain[:16])
	copy(k.TIK[:], plain[16:])
	pm := PolicyMAC(k.TIK, policy)
	if !hmac.Equal(pm[:], s.PolicyMAC[:]) {
		k.Wipe()
		return k, ErrPolicyMAC
	}
	return k, nil
}

// OwnerSession is what a guest owner keeps from preparing a launch: the GODH certificate and
// session to give the provider (QEMU dh-cert-file / session-file), and the keys to keep.
type OwnerSession struct {
	GODH    *Cert
	Session *Session
	Keys    TransportKeys
	Policy  uint32
}

// NewOwnerSession prepares LAUNCH_START inputs for the platform whose PDH is given: an
// ephemeral P-384 key (GODH), Z with the PDH, fresh TEK/TIK and the wrapped session.
func NewOwnerSession(rnd io.Reader, pdh *Cert, policy uint32) (*OwnerSession, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if pdh.Usage != UsagePDH {
		return nil, fmt.Errorf("session: platform certificate has usage %v, want PDH", pdh.Usage)
	}
	peer, err := pdh.ECDHPublicKey()
	if err != nil {
		return nil, err
	}
	priv, err := peer.Curve().GenerateKey(rnd)
	if err != nil {
		return nil, err
	}
	godh, err := NewECCert(UsagePDH, AlgoECDHSHA256, 0, 0, priv.PublicKey())
	if err != nil {
		return nil, err
	}
	z, err := SharedSecret(priv, peer)
	if err != nil {
		return nil, err
	}
	keys, err := NewTransportKeys(rnd)
	if err != nil {
		return nil, err
	}
	s, err := NewSession(rnd, z, keys, policy)
	if err != nil {
		return nil, err
	}
	return &OwnerSession{GODH: godh, Session: s, Keys: keys, Policy: policy}, nil
}
