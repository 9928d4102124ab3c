package sev

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func h16(t testing.TB, s string) (a [16]byte) { copy(a[:], unhex(t, s)); return }
func h32(t testing.TB, s string) (a [32]byte) { copy(a[:], unhex(t, s)); return }

func eqHex(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if hex.EncodeToString(got) != want {
		t.Errorf("%s = %x, want %s", what, got, want)
	}
}

// §11.2: KDF and session wrapping (virtee/sev session unit tests).
func TestKATKDFSession(t *testing.T) {
	zero16 := make([]byte, 16)
	ms := KDF(zero16, "sev-master-secret", zero16, 128)
	eqHex(t, "MS", ms, "ab4d269fcc62bedb4511d56c386ce706")
	eqHex(t, "KEK", KDF(ms, "sev-kek", nil, 128), "b6abfbfb75ea1ea74ed8750b8afdb973")
	eqHex(t, "KIK", KDF(ms, "sev-kik", nil, 128), "53b524bf5669a363f365c864acba8572")

	s := WrapSession(zero16, [16]byte{}, [16]byte{}, TransportKeys{}, 0)
	eqHex(t, "WRAP_TK", s.WrapTK[:], "2137bc7f9bb8bd7c3e55a576a15d3454b3856b8ba27afadf46dcfee9f02c02c4")
	eqHex(t, "WRAP_MAC", s.WrapMAC[:], "3176c0752738bd9d5e86689534020f528c088f16238826b000b327dee6aeed7d")
	pm := PolicyMAC([16]byte{}, 0)
	eqHex(t, "POLICY_MAC", pm[:], "aa7855e13839dd767cd5da7c1ff5036540c9264b7a803029315e55375287b4af")
	eqHex(t, "session POLICY_MAC", s.PolicyMAC[:], "aa7855e13839dd767cd5da7c1ff5036540c9264b7a803029315e55375287b4af")

	keys, err := s.Unwrap(zero16, 0)
	if err != nil || keys != (TransportKeys{}) {
		t.Fatalf("unwrap: %v %x", err, keys)
	}
	if _, err := s.Unwrap(zero16, 1); err != ErrPolicyMAC {
		t.Fatalf("policy change: %v", err)
	}
	s2 := *s
	s2.WrapTK[0] ^= 1
	if _, err := s2.Unwrap(zero16, 0); err != ErrWrapMAC {
		t.Fatalf("tampered wrap: %v", err)
	}
	p, err := ParseSession(s.Marshal())
	if err != nil || *p != *s {
		t.Fatal("session round trip")
	}
	if _, err := ParseSession(make([]byte, 127)); err == nil {
		t.Fatal("short session accepted")
	}
}

// §11.3: LAUNCH_MEASURE.
func TestKATMeasure(t *testing.T) {
	tikM := [16]byte{}
	copy(tikM[:], readTD(t, "sevctl", "measurement", "tik1.bin"))
	cases := []struct {
		name   string
		tik    [16]byte
		v      PlatformVersion
		policy uint32
		ld     string
		mnonce string
		want   string
		b64    string
	}{
		{"M1", h16(t, "66320db73158a35a255d051758e95ed4"), PlatformVersion{0x00, 0x12, 0x0f}, 0,
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "4fbe0bedbad6c86ae8f68971d103e554",
			"6faab2daae389bcd3405a05d6cafe33c0414f7bedd0bae19ba5f38b7fd1664ea", ""},
		{"M2", tikM, PlatformVersion{1, 40, 40}, 3,
			"c64bd101fc9a4a2ce0a27c408d9200911f139a895469b04a40a6fa2890830d23", "c313fab511c216b1505b1b2ea9903c40",
			"96cc1bc56c48f60724c9ad7a250bdd16da5898d3b86fede29c03e9aac828048e", "lswbxWxI9gckya16JQvdFtpYmNO4b+3inAPpqsgoBI7DE/q1EcIWsVBbGy6pkDxA"},
		{"M3", tikM, PlatformVersion{1, 40, 40}, 3,
			"2f6fc6065f4abc131eb4fb2b5090a542636eae84a94c0db0fdd5f405cb372ff5", "c313fab511c216b1505b1b2ea9903c40",
			"a0c0dec08a2e252a5ba4d4478fb324de9d3c1f674f65076c64c535e2a2329819", "oMDewIouJSpbpNRHj7Mk3p08H2dPZQdsZMU14qIymBnDE/q1EcIWsVBbGy6pkDxA"},
	}
	if hex.EncodeToString(tikM[:]) != "3569cf61a32a602b87185ac6e0f55913" {
		t.Fatalf("tik1.bin = %x", tikM)
	}
	for _, c := range cases {
		ld, mn := h32(t, c.ld), h16(t, c.mnonce)
		got := ComputeMeasure(c.tik, c.v, c.policy, ld, mn)
		eqHex(t, c.name, got[:], c.want)
		m := &Measurement{Measure: got, MNonce: mn}
		if err := VerifyMeasurement(m, c.tik, c.v, c.policy, ld); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if err := VerifyMeasurement(m, c.tik, c.v, c.policy^1, ld); err != ErrMeasurement {
			t.Errorf("%s: wrong policy accepted", c.name)
		}
		if c.b64 != "" {
			if base64.StdEncoding.EncodeToString(m.Marshal()) != c.b64 {
				t.Errorf("%s: base64 %s", c.name, base64.StdEncoding.EncodeToString(m.Marshal()))
			}
			dm, err := DecodeMeasurementBase64([]byte(c.b64 + "\n"))
			if err != nil || *dm != *m {
				t.Errorf("%s: decode %v", c.name, err)
			}
		}
	}
}

// §11.4: LAUNCH_SECRET packaging (sevctl tests/secretbuild.rs).
func TestKATSecret(t *testing.T) {
	tek, err := ReadKeyFile("testdata/sevctl/secret/tek1.bin")
	if err != nil {
		t.Fatal(err)
	}
	tik, err := ReadKeyFile("testdata/sevctl/secret/tik1.bin")
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "TEK", tek[:], "52a869b79ab9c13bb6a92b0561619cb3")
	eqHex(t, "TIK", tik[:], "c6d5a9956133050912b24bbe5c372686")
	m, err := DecodeMeasurementBase64([]byte("TLeA7607lZQntLjRY1/i+sbtdSZ+75zxpz4Px9hzpBLwItF5Q2o4prA++3ZZv9ZS"))
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "MEASURE", m.Measure[:], "4cb780efad3b959427b4b8d1635fe2fac6ed75267eef9cf1a73e0fc7d873a412")

	table := &SecretTable{Entries: []SecretEntry{{GUID: DiskPassphraseID, Data: readTD(t, "sevctl", "secret", "secret1.txt")}}}
	plain, err := table.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "table", plain, "42f5741edd71664d963eef4287ff173b3a000000e5696873f084734992ec06879ce3da0b260000004d592d4c554b532d50415353504852415345000000000000")

	v := PlatformVersion{1, 40, 40} // any version >= 0.17 includes MEASURE
	tr := NewTransport(TransportKeys{TEK: tek, TIK: tik})
	hdr, trans, err := tr.SealSecret(plain, h16(t, "ac5474ed4dd32c7d989ec523d92559ec"), m.Measure, v)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(EncodeBase64(hdr.Marshal())); got != "AAAAAKxUdO1N0yx9mJ7FI9klWey8FSzeYQ4X8K71VzNKLU/KQsIsQxLjtbhaPUewqshX5Q==" {
		t.Errorf("header %s", got)
	}
	if got := string(EncodeBase64(trans)); got != "0U3e5PcXv0UW+H4tSBFKOdCYfKE1+j38Bc2fuO16mYiyI+sWx7INfn+lgYj56GL12yyinDa+lVfCCwD/2w5cPA==" {
		t.Errorf("payload %s", got)
	}
	// Firmware side: opens, and the table parses back.
	ph, err := DecodePacketHeaderBase64(EncodeBase64(hdr.Marshal()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := tr.OpenSecret(ph, trans, len(trans), m.Measure, v)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %v", err)
	}
	pt, err := ParseSecretTable(got)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := pt.Lookup(DiskPassphraseID); !ok || string(d) != "MY-LUKS-PASSPHRASE" {
		t.Fatal("lookup")
	}
	// Wrong measurement: MAC fails.
	bad := m.Measure
	bad[0] ^= 1
	if _, err := tr.OpenSecret(ph, trans, len(trans), bad, v); err != ErrPacketMAC {
		t.Fatalf("wrong measure: %v", err)
	}

	// S3/S4: payload sizes.
	for _, f := range []string{"secret3.txt", "secret4.txt"} {
		tb := &SecretTable{Entries: []SecretEntry{{GUID: DiskPassphraseID, Data: readTD(t, "sevctl", "secret", f)}}}
		p, err := tb.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		_, trans, err := tr.SealSecret(p, [16]byte{}, m.Measure, v)
		if err != nil || len(trans) != 16384 {
			t.Fatalf("%s: %d %v", f, len(trans), err)
		}
	}
	// Too big for one packet.
	tb := &SecretTable{Entries: []SecretEntry{{GUID: DiskPassphraseID, Data: make([]byte, 16345)}}}
	if _, err := tb.Marshal(); err == nil {
		t.Fatal("oversized table accepted")
	}
}

func TestGUIDOrder(t *testing.T) {
	g := MustGUID("1e74f542-71dd-4d66-963e-ef4287ff173b")
	e := [16]byte(g) // a GUID is held in EFI byte order
	eqHex(t, "efi", e[:], "42f5741edd71664d963eef4287ff173b")
	if GUID(e) != g || g.String() != "1e74f542-71dd-4d66-963e-ef4287ff173b" {
		t.Fatal("round trip")
	}
	for _, s := range []string{"", "1e74f542-71dd-4d66-963e-ef4287ff173", "1e74f542x71dd-4d66-963e-ef4287ff173b", "zz74f542-71dd-4d66-963e-ef4287ff173b"} {
		if _, err := ParseGUID(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestTransportPacket(t *testing.T) {
	keys, _ := NewTransportKeys(nil)
	tr := NewTransport(keys)
	page := bytes.Repeat([]byte("sevshim!"), 512)
	trans := make([]byte, len(page))
	iv := h16(t, "000102030405060708090a0b0c0d0e0f")
	hdr, err := tr.Seal(trans, page, iv)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(trans, page) {
		t.Fatal("not encrypted")
	}
	// Context byte 0x02: a LAUNCH_SECRET MAC (0x01) must not verify as a transport packet.
	ph, err := ParsePacketHeader(hdr.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(trans))
	rx := NewTransport(keys)
	if err := rx.Open(out, ph, trans, len(trans)); err != nil || !bytes.Equal(out, page) {
		t.Fatalf("open %v", err)
	}
	for i, mut := range []func(h *PacketHeader, tr []byte){
		func(h *PacketHeader, tr []byte) { tr[100] ^= 1 },
		func(h *PacketHeader, tr []byte) { h.IV[0] ^= 1 },
		func(h *PacketHeader, tr []byte) { h.MAC[31] ^= 1 },
	} {
		h2, tr2 := *ph, append([]byte(nil), trans...)
		mut(&h2, tr2)
		if err := rx.Open(out, &h2, tr2, len(tr2)); err != ErrPacketMAC {
			t.Errorf("mutation %d: %v", i, err)
		}
	}
	h2 := *ph
	h2.Flags = FlagCompressed
	if err := rx.Open(out, &h2, trans, len(trans)); err != ErrPacketCompressed {
		t.Fatal(err)
	}
	if err := rx.Open(out[:10], ph, trans, len(trans)); err == nil {
		t.Fatal("short buffer accepted")
	}
	if _, err := ParsePacketHeader(append([]byte{2, 0, 0, 0}, make([]byte, 48)...)); err == nil {
		t.Fatal("reserved flags accepted")
	}
	// In-place operation.
	buf := append([]byte(nil), page...)
	hdr2, _ := tr.Seal(buf, buf, iv)
	if hdr2 != hdr || !bytes.Equal(buf, trans) {
		t.Fatal("in-place seal differs")
	}
	if err := rx.Open(buf, &hdr2, buf, len(buf)); err != nil || !bytes.Equal(buf, page) {
		t.Fatal("in-place open")
	}
}

func TestOwnerSessionAgainstPDH(t *testing.T) {
	// The owner wraps for a real PDH: unwrapping needs the PDH private key, which we do not
	// have for AMD's chips; here we only check the GODH and the files.
	pdh := loadCert(t, "rome", "pdh")
	os, err := NewOwnerSession(nil, pdh, uint32(NewPolicy(PolicyNoDebug, 0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if os.GODH.Usage != UsagePDH || os.GODH.Algo != AlgoECDHSHA256 || os.GODH.Signed() {
		t.Fatal("godh shape")
	}
	dir := t.TempDir()
	f, err := os.WriteFiles(dir, "vm1")
	if err != nil {
		t.Fatal(err)
	}
	godh, err := DecodeCertBase64(mustRead(t, f.GODH))
	if err != nil || !godh.SameKey(os.GODH) {
		t.Fatal(err)
	}
	sess, err := DecodeSessionBase64(mustRead(t, f.Session))
	if err != nil || *sess != *os.Session {
		t.Fatal(err)
	}
	tik, err := ReadKeyFile(f.TIK)
	if err != nil || tik != os.Keys.TIK {
		t.Fatal(err)
	}
	if _, err := NewOwnerSession(nil, loadCert(t, "rome", "pek"), 0); err == nil {
		t.Fatal("PEK used as PDH")
	}
}

func TestPolicy(t *testing.T) {
	p := NewPolicy(PolicyNoDebug|PolicyNoSend, 0, 17)
	if !p.Has(PolicyNoSend) || p.Has(PolicyES) {
		t.Fatal("bits")
	}
	if maj, min := p.MinAPI(); maj != 0 || min != 17 {
		t.Fatal("api")
	}
	if p.AllowsPlatform(PlatformVersion{0, 16, 0}) || !p.AllowsPlatform(PlatformVersion{0, 17, 0}) || !p.AllowsPlatform(PlatformVersion{1, 0, 0}) {
		t.Fatal("allows")
	}
	if Policy(1<<6).Validate() == nil || p.Validate() != nil {
		t.Fatal("validate")
	}
	if SNPPolicy(0x30000).Validate() != nil || SNPPolicy(0x10000).Validate() == nil || SNPPolicy(1<<40|0x20000).Validate() == nil {
		t.Fatal("snp validate")
	}
	t.Log(p)
}

func TestSecretTableStrict(t *testing.T) {
	tb := &SecretTable{Entries: []SecretEntry{{GUID: DiskPassphraseID, Data: []byte("x")}, {GUID: SecretTableGUID, Data: nil}}}
	b, err := tb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if p, err := ParseSecretTable(b); err != nil || len(p.Entries) != 2 || string(p.Entries[0].Data) != "x" {
		t.Fatal(err)
	}
	mut := func(f func(b []byte)) []byte { c := append([]byte(nil), b...); f(c); return c }
	for name, x := range map[string][]byte{
		"short":      b[:10],
		"guid":       mut(func(c []byte) { c[0] ^= 1 }),
		"total-big":  mut(func(c []byte) { c[16] = 0xff }),
		"total-tiny": mut(func(c []byte) { c[16] = 5 }),
		"entry-len":  mut(func(c []byte) { c[36] = 3 }),
		"pad":        mut(func(c []byte) { c[len(c)-1] = 1 }),
	} {
		if _, err := ParseSecretTable(x); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := (&SecretTable{Entries: []SecretEntry{{}}}).Marshal(); err == nil {
		t.Fatal("null guid accepted")
	}
}
