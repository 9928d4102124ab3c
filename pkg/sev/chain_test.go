package sev

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTD(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{"testdata"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadCert(t testing.TB, product, name string) *Cert {
	t.Helper()
	c, err := ParseCert(readTD(t, product, name+".cert"))
	if err != nil {
		t.Fatalf("%s/%s: %v", product, name, err)
	}
	return c
}

func loadChain(t testing.TB, product string) *Chain {
	t.Helper()
	ask, err := ParseAMDCert(readTD(t, product, "ask.cert"))
	if err != nil {
		t.Fatal(err)
	}
	ark, err := ParseAMDCert(readTD(t, product, "ark.cert"))
	if err != nil {
		t.Fatal(err)
	}
	return &Chain{PDH: loadCert(t, product, "pdh"), PEK: loadCert(t, product, "pek"),
		OCA: loadCert(t, product, "oca"), CEK: loadCert(t, product, "cek"), ASK: ask, ARK: ark}
}

func TestBuiltinRoots(t *testing.T) {
	want := map[string][2]string{
		"naples": {"1bb987c359494606b174945601c9ea5b", "e139970cfc464377ae61b289e2f9e96e"},
		"rome":   {"e6002122fb58419399d15fee7b131351", "c6cbcf145b3146f498e40ecb4ad4fded"},
		"milan":  {"94c38e4177d0479292a7ae671d083fb6", "73478c05cc174bfeb06e718fa75dc3c8"},
		"genoa":  {"9f9d4a8fe761456599f6946c4c010f3a", "acbb4ad21acc436fb3e932f812cd01b0"},
		"turin":  {"d05c3a8bde484904b49552422ceb3942", "15051693f7304d65a527b4a7f3f7cb77"},
	}
	rs := BuiltinRoots()
	if len(rs) != 5 {
		t.Fatalf("%d roots", len(rs))
	}
	for _, r := range rs {
		w := want[r.Product]
		if r.ARK.KeyIDString() != w[0] || r.ASK.KeyIDString() != w[1] {
			t.Errorf("%s: ark %s ask %s", r.Product, r.ARK.KeyIDString(), r.ASK.KeyIDString())
		}
		wantBits := uint32(4096)
		if r.Product == "naples" {
			wantBits = 2048
		}
		if r.ARK.ModulusBits != wantBits {
			t.Errorf("%s: %d bits", r.Product, r.ARK.ModulusBits)
		}
	}
}

func TestRealChainsVerify(t *testing.T) {
	for _, p := range []string{"naples", "rome"} {
		t.Run(p, func(t *testing.T) {
			c := loadChain(t, p)
			res, err := VerifyChain(c, VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Product != p || !res.AMDBound || res.OCAOnly {
				t.Fatalf("result %+v", res)
			}
			// Without ASK/ARK the product is detected from the embedded roots.
			c.ASK, c.ARK = nil, nil
			res, err = VerifyChain(c, VerifyOptions{})
			if err != nil || res.Product != p {
				t.Fatalf("detect: %v %+v", err, res)
			}
			if _, err := VerifyChain(c, VerifyOptions{Product: p}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// roundTrip parses the test certificate p/n.cert, which must parse and marshal back to itself.
func roundTrip[C interface{ Marshal() []byte }](t *testing.T, p, n string, parse func([]byte) (C, error)) {
	t.Helper()
	raw := readTD(t, p, n+".cert")
	c, err := parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Marshal()) != string(raw) {
		t.Errorf("%s/%s: round trip differs", p, n)
	}
}

func TestCertRoundTrip(t *testing.T) {
	for _, p := range []string{"naples", "rome"} {
		for _, n := range []string{"pdh", "pek", "oca", "cek"} {
			roundTrip(t, p, n, ParseCert)
		}
		for _, n := range []string{"ark", "ask"} {
			roundTrip(t, p, n, ParseAMDCert)
		}
	}
}

// Observed API versions and algorithms of the real chains (notes §2.4).
func TestRealChainFields(t *testing.T) {
	for p, api := range map[string][2]uint8{"naples": {0, 16}, "rome": {0, 22}} {
		c := loadChain(t, p)
		if c.CEK.APIMajor != 0 || c.CEK.APIMinor != 14 {
			t.Errorf("%s CEK api %d.%d", p, c.CEK.APIMajor, c.CEK.APIMinor)
		}
		for _, x := range []*Cert{c.PEK, c.OCA, c.PDH} {
			if x.APIMajor != api[0] || x.APIMinor != api[1] {
				t.Errorf("%s %v api %d.%d", p, x.Usage, x.APIMajor, x.APIMinor)
			}
		}
		if c.PDH.Algo != AlgoECDHSHA256 || c.PEK.Algo != AlgoECDSASHA256 {
			t.Errorf("%s algos %v %v", p, c.PDH.Algo, c.PEK.Algo)
		}
		wantCEKSig := AlgoRSASHA384
		if p == "naples" {
			wantCEKSig = AlgoRSASHA256
		}
		if c.CEK.Sig[0].Usage != UsageASK || c.CEK.Sig[0].Algo != wantCEKSig {
			t.Errorf("%s CEK sig %v %v", p, c.CEK.Sig[0].Usage, c.CEK.Sig[0].Algo)
		}
	}
}

func TestNaplesARKUnrepaired(t *testing.T) {
	_, err := ParseAMDCert(readTD(t, "naples", "ark.cert.bad"))
	if err == nil || !strings.Contains(err.Error(), "signature missing") {
		t.Fatalf("got %v", err)
	}
	repaired := append(readTD(t, "naples", "ark.cert.bad"), readTD(t, "naples", "ark.cert.sig")...)
	ark, err := ParseAMDCert(repaired)
	if err != nil {
		t.Fatal(err)
	}
	if err := ark.CheckSignedBy(ark); err != nil {
		t.Fatal(err)
	}
	if string(repaired) != string(readTD(t, "naples", "ark.cert")) {
		t.Fatal("repaired ARK differs from the builtin file")
	}
}

func TestUnsignedCEK(t *testing.T) {
	c := loadChain(t, "naples")
	uns := loadCert(t, "naples", "cek.uns")
	if uns.Signed() || !uns.SameKey(c.CEK) {
		t.Fatal("cek.uns.cert should be the same key, unsigned")
	}
	c.CEK = uns
	_, err := VerifyChain(c, VerifyOptions{})
	if err == nil || !strings.Contains(err.Error(), "CEK is unsigned") {
		t.Fatalf("got %v", err)
	}
	res, err := VerifyChain(c, VerifyOptions{AllowUnsignedCEK: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OCAOnly || res.AMDBound || res.Product != "" || !strings.Contains(res.String(), "NOT bound to AMD") {
		t.Fatalf("%+v", res)
	}
	if _, err := VerifyChain(c, VerifyOptions{AllowUnsignedCEK: true, TrustedOCA: loadCert(t, "rome", "oca")}); err == nil {
		t.Fatal("pinned wrong OCA accepted")
	}
	if _, err := VerifyChain(c, VerifyOptions{AllowUnsignedCEK: true, TrustedOCA: c.OCA}); err != nil {
		t.Fatal(err)
	}
}

func expectErr(t *testing.T, c *Chain, opts VerifyOptions, want string) {
	t.Helper()
	_, err := VerifyChain(c, opts)
	if err == nil {
		t.Fatalf("chain accepted, want error containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

// Flip one bit in the signed body of each certificate: the link into that certificate must
// be named. (A flip inside the public key may also make the certificate unparsable, which
// is caught by ParseCert; we flip a byte of the key that stays a valid parse or report it.)
func TestChainTamper(t *testing.T) {
	for _, p := range []string{"naples", "rome"} {
		t.Run(p, func(t *testing.T) {
			cases := []struct {
				name, want string
				mut        func(c *Chain)
			}{
				{"pdh-api", "PDH signature by PEK does not verify", func(c *Chain) { c.PDH.APIMinor ^= 1 }},
				{"pdh-sig", "PDH signature by PEK does not verify", func(c *Chain) { c.PDH.Sig[0].Body[3] ^= 0x10 }},
				{"pek-api", "PEK signature by OCA does not verify", func(c *Chain) { c.PEK.APIMinor ^= 1 }},
				{"pek-cek-sig", "PEK signature by CEK does not verify", func(c *Chain) {
					for i := range c.PEK.Sig {
						if c.PEK.Sig[i].Usage == UsageCEK {
							c.PEK.Sig[i].Body[5] ^= 1
						}
					}
				}},
				{"oca-self", "OCA self-signature", func(c *Chain) { c.OCA.APIMajor ^= 0x80 }},
				{"cek-body", "CEK signature by ASK does not verify", func(c *Chain) { c.CEK.APIMinor ^= 2 }},
				{"ask-sig", "ASK signature by ARK does not verify", func(c *Chain) { c.ASK.Signature[10] ^= 1 }},
				{"ask-modulus", "ASK signature by ARK does not verify", func(c *Chain) { c.ASK.Modulus[100] ^= 4 }},
				{"ark-modulus", "not a trusted root", func(c *Chain) { c.ARK.Modulus[7] ^= 1 }},
				{"swap-pek-pdh", "position has usage", func(c *Chain) { c.PEK, c.PDH = c.PDH, c.PEK }},
				{"swap-oca-cek", "position has usage", func(c *Chain) { c.OCA, c.CEK = c.CEK, c.OCA }},
				{"usage-relabel", "position has usage", func(c *Chain) { c.PEK.Usage = UsageOCA }},
				{"sig-usage-wrong", "PDH certificate carries no signature by the PEK", func(c *Chain) { c.PDH.Sig[0].Usage = UsageCEK }},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					c := loadChain(t, p)
					tc.mut(c)
					expectErr(t, c, VerifyOptions{}, tc.want)
				})
			}
		})
	}
}

func TestChainWrongProduct(t *testing.T) {
	c := loadChain(t, "rome")
	expectErr(t, c, VerifyOptions{Product: "naples"}, "not a trusted root")
	c.ASK, c.ARK = nil, nil
	expectErr(t, c, VerifyOptions{Product: "milan"}, "CEK signature by ASK does not verify (milan ASK)")
	// Rome platform certs with Naples AMD certs.
	n := loadChain(t, "naples")
	c.ASK, c.ARK = n.ASK, n.ARK
	expectErr(t, c, VerifyOptions{}, "CEK signature by ASK does not verify (naples ASK)")
	// A CEK from another platform: PEK no longer verifies under it.
	r := loadChain(t, "rome")
	r.CEK = loadCert(t, "naples", "cek")
	expectErr(t, r, VerifyOptions{}, "CEK signature by ASK does not verify (rome ASK)")
	r.CEK = loadCert(t, "naples", "cek.uns")
	expectErr(t, r, VerifyOptions{AllowUnsignedCEK: true}, "PEK signature by CEK does not verify")
	// An OCA from another platform.
	r = loadChain(t, "rome")
	r.OCA = loadCert(t, "naples", "oca")
	expectErr(t, r, VerifyOptions{}, "PEK signature by OCA does not verify")
	// A PDH from another platform.
	r = loadChain(t, "rome")
	r.PDH = loadCert(t, "naples", "pdh")
	expectErr(t, r, VerifyOptions{}, "PDH signature by PEK does not verify")
	// Unknown product name.
	expectErr(t, loadChain(t, "rome"), VerifyOptions{Product: "bergamo"}, "no trusted root")
}

func TestBitFlipEveryByteRegion(t *testing.T) {
	// Flip a bit at many offsets of each raw certificate: either the parse fails or the
	// chain fails; never both succeed.
	for _, name := range []string{"pdh", "pek", "oca", "cek"} {
		raw := readTD(t, "rome", name+".cert")
		for off := 0; off < CertSize; off += 97 {
			b := append([]byte(nil), raw...)
			b[off] ^= 0x01
			cert, err := ParseCert(b)
			if err != nil {
				continue
			}
			c := loadChain(t, "rome")
			switch name {
			case "pdh":
				c.PDH = cert
			case "pek":
				c.PEK = cert
			case "oca":
				c.OCA = cert
			case "cek":
				c.CEK = cert
			}
			if _, err := VerifyChain(c, VerifyOptions{}); err == nil {
				t.Fatalf("%s: bit flip at %#x accepted", name, off)
			}
		}
	}
}

func TestCertChainBlob(t *testing.T) {
	c := loadChain(t, "rome")
	blob := MarshalCertChain(c.PEK, c.OCA, c.CEK)
	pek, oca, cek, err := ParseCertChain(blob)
	if err != nil || !pek.SameKey(c.PEK) || !oca.SameKey(c.OCA) || !cek.SameKey(c.CEK) {
		t.Fatal(err)
	}
	if _, _, _, err := ParseCertChain(MarshalCertChain(c.OCA, c.PEK, c.CEK)); err == nil || !strings.Contains(err.Error(), "certificate 1 has usage OCA") {
		t.Fatalf("got %v", err)
	}
	full, err := ParseFullChain(c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if string(full.Marshal()) != string(c.Marshal()) {
		t.Fatal("full chain round trip")
	}
	if _, err := VerifyChain(full, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	askArk := MarshalAMDChain(c.ASK, c.ARK)
	if _, _, err := ParseAMDChain(append(c.ARK.Marshal(), c.ASK.Marshal()...)); err == nil {
		t.Fatal("ARK||ASK accepted")
	}
	if _, err := NewRoot("rome", askArk); err != nil {
		t.Fatal(err)
	}
}

func TestParseCertStrict(t *testing.T) {
	raw := readTD(t, "rome", "pdh.cert")
	mut := func(f func(b []byte)) []byte { b := append([]byte(nil), raw...); f(b); return b }
	cases := map[string][]byte{
		"short":        raw[:100],
		"long":         append(append([]byte(nil), raw...), 0),
		"version":      mut(func(b []byte) { b[0] = 2 }),
		"reserved":     mut(func(b []byte) { b[6] = 1 }),
		"usage":        mut(func(b []byte) { b[8] = 0x77 }),
		"algo":         mut(func(b []byte) { b[12] = 0x02 }), // PDH with ECDSA algo
		"curve":        mut(func(b []byte) { b[0x10] = 5 }),
		"qx-pad":       mut(func(b []byte) { b[0x14+60] = 1 }),
		"key-pad":      mut(func(b []byte) { b[0x400] = 1 }),
		"not-on-curve": mut(func(b []byte) { b[0x14] ^= 1 }),
		"sig-pad":      mut(func(b []byte) { b[offSig1+8+200] = 1 }),
		"sig-algo":     mut(func(b []byte) { b[offSig1+4] = 3 }),
	}
	for name, b := range cases {
		if _, err := ParseCert(b); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
