package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/sevshim/sevshim/pkg/format/tpmevent"
)

// makeEvidence builds evidence as a TPM would for event on PCR 15, signing the TPMS_ATTEST
// with a software P-256 key (the TPM path itself is covered by tests/tpm with swtpm).
func makeEvidence(t testing.TB, event []byte, mutate func(*tpm2.TPMSAttest)) (*Evidence, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ev := &Evidence{PCR: 15, Values: map[crypto.Hash][]byte{}, Nonce: []byte("nonce-0123456789"), AK: &key.PublicKey}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384} {
		v, err := tpmevent.Replay(h, nil, event)
		if err != nil {
			t.Fatal(err)
		}
		ev.Values[h] = v
	}
	pd := sha256.Sum256(ev.Values[crypto.SHA256])
	att := tpm2.TPMSAttest{
		Magic:     tpm2.TPMGeneratedValue,
		Type:      tpm2.TPMSTAttestQuote,
		ExtraData: tpm2.TPM2BData{Buffer: ev.Nonce},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
				{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(15)},
			}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: pd[:]},
		}),
	}
	if mutate != nil {
		mutate(&att)
	}
	ev.Quoted = tpm2.Marshal(att)
	sign(t, ev, key)
	return ev, key
}

func sign(t testing.TB, ev *Evidence, key *ecdsa.PrivateKey) {
	d := sha256.Sum256(ev.Quoted)
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	ev.SigR, ev.SigS = r.Bytes(), s.Bytes()
}

func testEvent(v uint64) []byte {
	e := tpmevent.Event{Layout: 1, BIOSVersion: v}
	e.SignerKeyID[0] = 1
	e.BIOSDigest[0] = 2
	e.PolicyDigest[0] = 3
	return e.Marshal()
}

func TestVerify(t *testing.T) {
	event := testEvent(5)
	ev, key := makeEvidence(t, event, nil)
	if err := Verify(ev, event); err != nil {
		t.Fatalf("valid evidence: %v", err)
	}
	if err := Verify(ev, testEvent(6)); err == nil {
		t.Errorf("evidence of v5 verified as v6")
	}
	// every negative case must be refused
	cases := map[string]func() *Evidence{
		"wrong sha384 bank": func() *Evidence {
			e, _ := makeEvidence(t, event, nil)
			e.Values[crypto.SHA384][0] ^= 1
			return e
		},
		"flipped quote byte": func() *Evidence {
			e, _ := makeEvidence(t, event, nil)
			e.Quoted[len(e.Quoted)-1] ^= 1
			return e
		},
		"other AK": func() *Evidence {
			e, _ := makeEvidence(t, event, nil)
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			e.AK = &other.PublicKey
			return e
		},
		"nonce": func() *Evidence {
			return first(makeEvidence(t, event, func(a *tpm2.TPMSAttest) { a.ExtraData.Buffer = []byte("old") }))
		},
		"type": func() *Evidence {
			return first(makeEvidence(t, event, func(a *tpm2.TPMSAttest) {
				a.Type = tpm2.TPMSTAttestCertify
				a.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestCertify, &tpm2.TPMSCertifyInfo{})
			}))
		},
		"pcr digest": func() *Evidence {
			return first(makeEvidence(t, event, func(a *tpm2.TPMSAttest) {
				q, _ := a.Attested.Quote()
				q.PCRDigest.Buffer = bytes.Repeat([]byte{7}, 32)
				a.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, q)
			}))
		},
		"other pcr": func() *Evidence {
			return first(makeEvidence(t, event, func(a *tpm2.TPMSAttest) {
				q, _ := a.Attested.Quote()
				q.PCRSelect.PCRSelections[0].PCRSelect = tpm2.PCClientCompatible.PCRs(14)
				a.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, q)
			}))
		},
		"no AK": func() *Evidence {
			e, _ := makeEvidence(t, event, nil)
			e.AK = nil
			return e
		},
	}
	for name, mk := range cases {
		if err := Verify(mk(), event); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	_ = key
}

func first(e *Evidence, _ *ecdsa.PrivateKey) *Evidence { return e }

func TestReadResponse(t *testing.T) {
	r := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0, 0, 0xAA, 0xBB, 0xCC}
	b, err := ReadResponse(bytes.NewReader(r))
	if err != nil || len(b) != 12 || b[11] != 0xBB {
		t.Fatalf("ReadResponse = %x, %v", b, err)
	}
	for _, bad := range [][]byte{r[:5], r[:11], {0x80, 1, 0, 0, 0, 9, 0, 0, 0, 0}, {0x80, 1, 0xFF, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := ReadResponse(bytes.NewReader(bad)); err == nil {
			t.Errorf("ReadResponse(%x) accepted", bad)
		}
	}
}

func FuzzReadResponse(f *testing.F) {
	f.Add([]byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0})
	f.Add([]byte{0x80, 0x02, 0, 0, 0, 12, 0, 0, 0, 0, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := ReadResponse(bytes.NewReader(b))
		if err == nil {
			if n := binary.BigEndian.Uint32(b[2:]); int(n) != len(out) || !bytes.Equal(out, b[:n]) {
				t.Fatalf("response %x from %x", out, b)
			}
		}
	})
}

// FuzzVerifyQuoted: arbitrary quote bytes never panic and never verify (the signature covers
// the fuzzed bytes, so only the structural checks stand between them and acceptance).
func FuzzVerifyQuoted(f *testing.F) {
	event := testEvent(5)
	ev, _ := makeEvidence(f, event, nil)
	f.Add(ev.Quoted)
	f.Add([]byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x18})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Fuzz(func(t *testing.T, q []byte) {
		e := &Evidence{PCR: 15, Values: ev.Values, Nonce: ev.Nonce, AK: &key.PublicKey, Quoted: q}
		sign(t, e, key)
		if err := Verify(e, event); err == nil && !bytes.Equal(q, ev.Quoted) {
			// acceptable only if it decodes to the same meaning; require a re-marshal match
			att, err := tpm2.Unmarshal[tpm2.TPMSAttest](q)
			if err != nil {
				t.Fatalf("accepted undecodable quote %x", q)
			}
			qi, _ := att.Attested.Quote()
			pd := sha256.Sum256(ev.Values[crypto.SHA256])
			if !bytes.Equal(qi.PCRDigest.Buffer, pd[:]) || !bytes.Equal(att.ExtraData.Buffer, ev.Nonce) {
				t.Fatalf("accepted a quote with other contents: %x", q)
			}
		}
	})
}
