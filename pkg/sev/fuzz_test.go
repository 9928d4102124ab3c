package sev

import (
	"bytes"
	"os"
	"testing"
)

func seedFiles(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile("testdata/" + p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// parsed parses b with parse; when it parses, the value must marshal back to exactly b.
func parsed[C interface{ Marshal() []byte }](t *testing.T, b []byte, parse func([]byte) (C, error)) (C, bool) {
	t.Helper()
	c, err := parse(b)
	if err != nil {
		return c, false
	}
	if !bytes.Equal(c.Marshal(), b) {
		t.Fatal("round trip differs")
	}
	return c, true
}

func FuzzParseCert(f *testing.F) {
	seedFiles(f, "naples/pdh.cert", "naples/pek.cert", "naples/cek.uns.cert", "rome/cek.cert", "rome/oca.cert")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := parsed(t, b, ParseCert)
		if !ok {
			return
		}
		if pub, err := c.PublicKey(); err == nil {
			_ = c.VerifySignature(c.Usage, pub)
			_ = c.VerifySignature(UsageOCA, pub)
		}
		_, _ = c.ECDHPublicKey()
	})
}

func FuzzParseAMDCert(f *testing.F) {
	seedFiles(f, "naples/ark.cert", "naples/ask.cert", "naples/ark.cert.bad", "rome/ark.cert")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := parsed(t, b, ParseAMDCert)
		if !ok {
			return
		}
		_ = c.CheckSignedBy(c)
	})
}

func FuzzParseAMDChain(f *testing.F) {
	for _, p := range []string{"naples", "rome"} {
		a, _ := os.ReadFile("testdata/" + p + "/ask.cert")
		r, _ := os.ReadFile("testdata/" + p + "/ark.cert")
		f.Add(append(a, r...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ask, ark, err := ParseAMDChain(b)
		if err != nil {
			return
		}
		if !bytes.Equal(MarshalAMDChain(ask, ark), b) {
			t.Fatal("round trip differs")
		}
		_ = Root{Product: "x", ARK: ark, ASK: ask}.Check()
	})
}

func FuzzParseFullChain(f *testing.F) {
	for _, p := range []string{"naples", "rome"} {
		var b []byte
		for _, n := range []string{"pdh", "pek", "oca", "cek", "ask", "ark"} {
			x, _ := os.ReadFile("testdata/" + p + "/" + n + ".cert")
			b = append(b, x...)
		}
		f.Add(b)
		f.Add(b[:4*CertSize])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseFullChain(b)
		if err != nil {
			_, _, _, _ = ParseCertChain(b)
			return
		}
		if !bytes.Equal(c.Marshal(), b) {
			t.Fatal("round trip differs")
		}
		_, _ = VerifyChain(c, VerifyOptions{AllowUnsignedCEK: true})
	})
}

func FuzzSession(f *testing.F) {
	f.Add(WrapSession(make([]byte, 16), [16]byte{}, [16]byte{}, TransportKeys{}, 0).Marshal(), uint32(0))
	f.Add(make([]byte, 127), uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, policy uint32) {
		s, ok := parsed(t, b, ParseSession)
		if !ok {
			return
		}
		_, _ = s.Unwrap(make([]byte, 48), policy)
		_, _ = DecodeSessionBase64(EncodeBase64(b))
	})
}

func FuzzPacket(f *testing.F) {
	keys := TransportKeys{TEK: [16]byte{1}, TIK: [16]byte{2}}
	tr := NewTransport(keys)
	page := bytes.Repeat([]byte{7}, 4096)
	trans := make([]byte, 4096)
	h, _ := tr.Seal(trans, page, [16]byte{3})
	f.Add(h.Marshal(), trans, 4096)
	f.Add(h.Marshal(), trans[:16], 16)
	f.Fuzz(func(t *testing.T, hdr, data []byte, guestLen int) {
		ph, ok := parsed(t, hdr, ParsePacketHeader)
		if !ok {
			return
		}
		out := make([]byte, len(data))
		_ = NewTransport(keys).Open(out, ph, data, guestLen)
		_, _ = NewTransport(keys).OpenSecret(ph, data, guestLen, [32]byte{}, PlatformVersion{0, 24, 0})
	})
}

func FuzzSecretTable(f *testing.F) {
	t1, _ := (&SecretTable{Entries: []SecretEntry{{GUID: DiskPassphraseID, Data: []byte("MY-LUKS-PASSPHRASE")}}}).Marshal()
	t2, _ := (&SecretTable{Entries: []SecretEntry{{GUID: DiskPassphraseID, Data: nil}, {GUID: SecretTableGUID, Data: []byte{1, 2, 3}}}}).Marshal()
	f.Add(t1)
	f.Add(t2)
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseSecretTable(b)
		if err != nil {
			return
		}
		m, err := st.Marshal()
		if err != nil {
			return // e.g. an entry with the NULL GUID: parseable, not producible
		}
		st2, err := ParseSecretTable(m)
		if err != nil || len(st2.Entries) != len(st.Entries) {
			t.Fatalf("re-parse: %v", err)
		}
		for i := range st.Entries {
			if st.Entries[i].GUID != st2.Entries[i].GUID || !bytes.Equal(st.Entries[i].Data, st2.Entries[i].Data) {
				t.Fatal("entries differ after round trip")
			}
		}
	})
}

func FuzzBase64Files(f *testing.F) {
	pdh, _ := os.ReadFile("testdata/rome/pdh.cert")
	f.Add(EncodeBase64(pdh))
	f.Add([]byte("TLeA7607lZQntLjRY1/i+sbtdSZ+75zxpz4Px9hzpBLwItF5Q2o4prA++3ZZv9ZS\n"))
	f.Add([]byte("AAAAAKxUdO1N0yx9mJ7FI9klWey8FSzeYQ4X8K71VzNKLU/KQsIsQxLjtbhaPUewqshX5Q=="))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeCertBase64(b)
		_, _ = DecodeSessionBase64(b)
		_, _ = DecodePacketHeaderBase64(b)
		if m, err := DecodeMeasurementBase64(b); err == nil && len(m.Marshal()) != MeasurementSize {
			t.Fatal("measurement size")
		}
	})
}
