// Package sevtest makes the SEV pieces that tests of the guest package need: fresh transport
// keys, a PDH certificate and a launch session for them, and a sealer that encrypts pages as
// SEND_UPDATE_DATA does (SEV API 55766 section 6.12).
package sevtest

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/sevshim/sevshim/pkg/sev"
)

// Send is one sending side: the transport keys, the PDH certificate and session it sends
// under (marshaled), and its transport.
type Send struct {
	Keys    sev.TransportKeys
	PDH     []byte
	Session []byte
	tr      *sev.Transport
}

// NewSend makes fresh transport keys, a P-384 PDH certificate (API 0.24) and a session with
// policy 1 for them; it fails t on any error.
func NewSend(t testing.TB) *Send {
	t.Helper()
	keys, err := sev.NewTransportKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdh.P384().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pdh, err := sev.NewECCert(sev.UsagePDH, sev.AlgoECDHSHA256, 0, 24, priv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	sess, err := sev.NewSession(nil, make([]byte, 48), keys, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &Send{Keys: keys, PDH: pdh.Marshal(), Session: sess.Marshal(), tr: sev.NewTransport(keys)}
}

// Seal encrypts page into trans under a random IV and writes the packet header into hdr.
func (s *Send) Seal(hdr, trans, page []byte) error {
	var iv [16]byte
	rand.Read(iv[:])
	ph, err := s.tr.Seal(trans, page, iv)
	copy(hdr, ph.Marshal())
	return err
}
