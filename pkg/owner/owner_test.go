package owner

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/shimimage/shimtest"
	"github.com/sevshim/sevshim/pkg/psp"
	"github.com/sevshim/sevshim/pkg/sev"
)

var (
	rootOnce sync.Once
	testRoot *psp.TestRoot
	rootErr  error
)

// sharedRoot is one 2048-bit test root per test binary (4096-bit generation is slow).
func sharedRoot(t testing.TB) *psp.TestRoot {
	rootOnce.Do(func() { testRoot, rootErr = psp.GenerateTestRoot(2048) })
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return testRoot
}

// emuPlatform is an emulated PSP in a temp dir, its chain file (as hostctl platform export
// writes it: psp.FullChain) and the root directory holding the public ask_ark.cert.
type emuPlatform struct {
	psp     *psp.Emulator
	chain   string
	rootDir string
}

func newEmu(t testing.TB) *emuPlatform {
	t.Helper()
	dir := t.TempDir()
	r := sharedRoot(t)
	e, err := psp.OpenEmulator(filepath.Join(dir, "state"), &psp.EmulatorOptions{Root: r})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	c, err := psp.FullChain(e)
	if err != nil {
		t.Fatal(err)
	}
	p := &emuPlatform{psp: e, chain: filepath.Join(dir, "platform.chain"), rootDir: filepath.Join(dir, "root")}
	if err := os.WriteFile(p.chain, c.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(p.rootDir, 0o755)
	if err := os.WriteFile(filepath.Join(p.rootDir, "ask_ark.cert"), sev.MarshalAMDChain(r.ASK, r.ARK), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// realChainBytes is the platform chain file (PDH || PEK || OCA || CEK) of a real product, from
// pkg/sev's test data.
func realChainBytes(t testing.TB, product string) []byte {
	t.Helper()
	var b []byte
	for _, n := range []string{"pdh", "pek", "oca", "cek"} {
		x, err := os.ReadFile(filepath.Join("..", "sev", "testdata", product, n+".cert"))
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, x...)
	}
	return b
}

// realChain writes realChainBytes to a file and returns its path.
func realChain(t testing.TB, product string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), product+".chain")
	if err := os.WriteFile(p, realChainBytes(t, product), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRealChains(t *testing.T) {
	for _, product := range []string{"naples", "rome"} {
		t.Run(product, func(t *testing.T) {
			p := realChain(t, product)
			r, err := VerifyPlatform(p, Trust{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Product != product || r.TestRoot || !r.Verified || len(r.PDHKey) != 64 {
				t.Fatalf("report %+v", r)
			}
			// the right product pins; another product refuses at ASK -> CEK
			if _, err := VerifyPlatform(p, Trust{Product: product}); err != nil {
				t.Fatal(err)
			}
			other := map[string]string{"naples": "rome", "rome": "naples"}[product]
			_, err = VerifyPlatform(p, Trust{Product: other})
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Link != "ASK -> CEK" {
				t.Fatalf("pinned to %s: %v", other, err)
			}
			// an AMD chain is not accepted under the emulator's test root
			e := newEmu(t)
			if _, err := VerifyPlatform(p, Trust{RootPath: e.rootDir}); !errors.As(err, &ce) || ce.Link != "ASK -> CEK" {
				t.Fatalf("real chain under test root: %v", err)
			}
		})
	}
}

func TestEmulatorChainNeedsExplicitRoot(t *testing.T) {
	e := newEmu(t)
	_, err := VerifyPlatform(e.chain, Trust{})
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Link != "ARK" || !strings.Contains(err.Error(), "not one of the trusted roots") {
		t.Fatalf("emulator chain under AMD roots: %v", err)
	}
	r, err := VerifyPlatform(e.chain, Trust{RootPath: e.rootDir})
	if err != nil {
		t.Fatal(err)
	}
	if !r.TestRoot || r.Product != sev.TestRootProduct || r.PDHAPI != "0.24" {
		t.Fatalf("report %+v", r)
	}
	// --root may name the file too
	if _, err := VerifyPlatform(e.chain, Trust{RootPath: filepath.Join(e.rootDir, "ask_ark.cert")}); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyPlatform(e.chain, Trust{RootPath: e.rootDir, Product: "rome"}); err == nil {
		t.Fatal("--root with --product accepted")
	}
	// another emulator root is not this one
	other := newEmuWithOwnRoot(t)
	if _, err := VerifyPlatform(e.chain, Trust{RootPath: other}); !errors.As(err, &ce) || ce.Link != "ARK" {
		t.Fatalf("foreign test root: %v", err)
	}
}

func newEmuWithOwnRoot(t *testing.T) string {
	r, err := psp.GenerateTestRoot(2048)
	if err != nil {
		t.Fatal(err)
	}
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "ask_ark.cert"), sev.MarshalAMDChain(r.ASK, r.ARK), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// certAt names the certificate containing byte off of a chain file.
func certAt(b []byte, off int) string {
	if off < 4*sev.CertSize {
		return chainOrder[off/sev.CertSize]
	}
	ask, _, _ := sev.ParseAMDChain(b[4*sev.CertSize:])
	if off < 4*sev.CertSize+len(ask.Marshal()) {
		return "ASK"
	}
	return "ARK"
}

// TestBitFlipsNameTheCertificate flips one bit at many positions of an emulated chain (with
// ASK || ARK) and of the real Naples chain, and requires every flip to be refused with an
// error that names the certificate holding the bit: as malformed, or as the subject of the
// broken link (the part after "->", or the ARK itself).
func TestBitFlipsNameTheCertificate(t *testing.T) {
	e := newEmu(t)
	cases := []struct {
		name  string
		path  string
		trust Trust
		step  int
	}{
		{"emulator", e.chain, Trust{RootPath: e.rootDir}, 13},
		{"naples", realChain(t, "naples"), Trust{}, 29},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig, _ := os.ReadFile(c.path)
			n := 0
			for off := 0; off < len(orig); off += c.step {
				b := append([]byte(nil), orig...)
				b[off] ^= 1 << (off % 8)
				p := filepath.Join(t.TempDir(), "flipped.chain")
				os.WriteFile(p, b, 0o644)
				r, err := VerifyPlatform(p, c.trust)
				if err == nil {
					t.Fatalf("bit %d of byte 0x%x flipped: chain accepted", off%8, off)
				}
				want := certAt(orig, off)
				var ce *ChainError
				if !errors.As(err, &ce) {
					t.Fatalf("byte 0x%x: not a ChainError: %v", off, err)
				}
				got := ce.Cert
				if ce.Link != "" {
					_, sub, _ := strings.Cut(ce.Link, " -> ")
					if sub == "" {
						sub = strings.Fields(ce.Link)[0]
					}
					got = sub
				}
				amd := want == "ASK" || want == "ARK"
				if got != want && !(amd && got == "ASK || ARK") {
					t.Fatalf("byte 0x%x (in the %s): error names %q: %v", off, want, got, err)
				}
				if r.Verified || (r.BrokenCert == "" && r.BrokenLink == "") {
					t.Fatalf("byte 0x%x: report %+v", off, r)
				}
				n++
			}
			t.Logf("%d flips refused, each naming its certificate", n)
		})
	}
}

func TestChainShapeErrors(t *testing.T) {
	e := newEmu(t)
	b, _ := os.ReadFile(e.chain)
	dir := t.TempDir()
	for name, mut := range map[string][]byte{
		"short":     b[:3*sev.CertSize],
		"swapped":   append(append(append([]byte(nil), b[sev.CertSize:2*sev.CertSize]...), b[:sev.CertSize]...), b[2*sev.CertSize:]...),
		"truncated": b[:len(b)-10],
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, mut, 0o644)
		if _, err := VerifyPlatform(p, Trust{RootPath: e.rootDir}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// an unsigned CEK (PDH_CERT_EXPORT as is) does not bind the platform to any root
	pdh, pek, oca, cek, err := psp.Export(e.psp)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "unsigned")
	os.WriteFile(p, (&sev.Chain{PDH: pdh, PEK: pek, OCA: oca, CEK: cek}).Marshal(), 0o644)
	_, err = VerifyPlatform(p, Trust{RootPath: e.rootDir})
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Link != "ASK -> CEK" {
		t.Fatalf("unsigned CEK: %v", err)
	}
}

// launch drives the emulated PSP like hostctl launch does: LAUNCH_START from the session
// files, LAUNCH_UPDATE_DATA over the image, LAUNCH_MEASURE; it writes measurement.json.
func launch(t testing.TB, e *emuPlatform, sessDir string, image []byte, policy sev.Policy) (psp.Handle, string) {
	t.Helper()
	s, err := LoadSession(sessDir)
	if err != nil {
		t.Fatal(err)
	}
	dh, ss, err := sev.ReadLaunchFiles(s.Files)
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.psp.LaunchStart(psp.LaunchStartRequest{Policy: policy, DHCert: dh.Marshal(), Session: ss.Marshal()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.psp.LaunchUpdateData(h, image); err != nil {
		t.Fatal(err)
	}
	m, err := psp.Measure(e.psp, h)
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.psp.PlatformStatus()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(map[string]any{"sev-measurement": base64.StdEncoding.EncodeToString(m.Marshal()),
		"sev-api-major": st.APIMajor, "sev-api-minor": st.APIMinor, "sev-build-id": st.Build, "sev-policy": uint32(policy)})
	p := filepath.Join(t.TempDir(), "measurement.json")
	if err := os.WriteFile(p, js, 0o644); err != nil {
		t.Fatal(err)
	}
	return h, p
}

// newSession creates a session for e's platform (policy 0x1, name guest) in dir.
func newSession(t testing.TB, e *emuPlatform, dir string) {
	t.Helper()
	if _, err := CreateSession(nil, e.chain, Trust{RootPath: e.rootDir}, 0x1, "guest", dir, false); err != nil {
		t.Fatal(err)
	}
}

// launchTemplate launches the synthetic 4M shim template (policy 0x1) for the session in
// sessDir and returns the image, the guest handle, the session and its measurement.
func launchTemplate(t testing.TB, e *emuPlatform, sessDir string) ([]byte, psp.Handle, *Session, *Measurement) {
	t.Helper()
	img := shimtest.Template(layout.OVMF4M)
	h, mpath := launch(t, e, sessDir, img, 0x1)
	s, err := LoadSession(sessDir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadMeasurementFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	return img, h, s, m
}

// injectSecret has the emulated PSP inject the packet of the secret file out into a guest
// buffer (LAUNCH_SECRET for guest h) and returns the file and the table the guest sees.
func injectSecret(t testing.TB, e *emuPlatform, h psp.Handle, out string) (SecretFile, *sev.SecretTable) {
	t.Helper()
	var sf SecretFile
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &sf); err != nil {
		t.Fatal(err)
	}
	hdr, _ := base64.StdEncoding.DecodeString(sf.Header)
	trans, _ := base64.StdEncoding.DecodeString(sf.Secret)
	guest := make([]byte, len(trans))
	if err := e.psp.LaunchSecret(h, hdr, trans, guest); err != nil {
		t.Fatalf("emulated PSP refused our packet: %v", err)
	}
	tab, err := sev.ParseSecretTable(guest)
	if err != nil {
		t.Fatal(err)
	}
	return sf, tab
}

func TestFlowAgainstEmulator(t *testing.T) {
	e := newEmu(t)
	sessDir := filepath.Join(t.TempDir(), "sess")
	rep, err := CreateSession(nil, e.chain, Trust{RootPath: e.rootDir}, 0x1, "guest", sessDir, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{rep.Files.TEK, rep.Files.TIK} {
		if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", f, st.Mode().Perm())
		}
	}
	if _, err := CreateSession(nil, e.chain, Trust{RootPath: e.rootDir}, 0x1, "guest", sessDir, false); err == nil {
		t.Fatal("overwrote a session")
	}
	img, h, s, m := launchTemplate(t, e, sessDir)
	mr, err := CheckMeasurement(s, m, "shim.fd", img)
	if err != nil || !mr.OK() {
		t.Fatalf("measurement: %v %+v", err, mr)
	}

	// the secret, injected by the emulated PSP into a guest buffer, decrypts to our table
	pass := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pass, []byte("correct horse battery staple"), 0o600)
	out := filepath.Join(t.TempDir(), "secret.json")
	sr, err := BuildSecret(nil, s, m, "shim.fd", img, []SecretArg{{sev.DiskPassphraseID, pass}}, out)
	if err != nil {
		t.Fatal(err)
	}
	if sr.BlockBase != shimtest.SecretBase {
		t.Fatalf("secret block 0x%x", sr.BlockBase)
	}
	sf, tab := injectSecret(t, e, h, out)
	if sf.Address != shimtest.SecretBase {
		t.Fatalf("address 0x%x", sf.Address)
	}
	if d, ok := tab.Lookup(sev.DiskPassphraseID); !ok || string(d) != "correct horse battery staple" {
		t.Fatalf("table %+v", tab)
	}
	if err := e.psp.LaunchFinish(h); err != nil {
		t.Fatal(err)
	}

	// refusals
	other := append([]byte(nil), img...)
	other[100] ^= 1
	if _, err := CheckMeasurement(s, m, "other.fd", other); !errors.Is(err, ErrMismatch) {
		t.Fatalf("other image: %v", err)
	}
	os.Remove(out)
	if _, err := BuildSecret(nil, s, m, "other.fd", other, []SecretArg{{sev.DiskPassphraseID, pass}}, out); !errors.Is(err, ErrMismatch) {
		t.Fatalf("secret for a wrong image: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("secret.json written despite the mismatch")
	}
	bad := *m
	bad.M = &sev.Measurement{Measure: m.M.Measure, MNonce: m.M.MNonce}
	bad.M.Measure[0] ^= 0x80
	if _, err := BuildSecret(nil, s, &bad, "shim.fd", img, []SecretArg{{sev.DiskPassphraseID, pass}}, out); !errors.Is(err, ErrMismatch) {
		t.Fatalf("secret for a wrong measurement: %v", err)
	}
	pol := *m
	pol.Policy = 0x3
	r, err := CheckMeasurement(s, &pol, "shim.fd", img)
	if !errors.Is(err, ErrMismatch) || r.PolicyOK {
		t.Fatalf("wrong policy: %v", err)
	}
	ver := *m
	ver.Version.Build++
	if _, err := CheckMeasurement(s, &ver, "shim.fd", img); !errors.Is(err, ErrMismatch) {
		t.Fatalf("lying build id accepted: %v", err)
	}
	// too big for the block
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, make([]byte, shimtest.SecretSize), 0o600)
	if _, err := BuildSecret(nil, s, m, "shim.fd", img, []SecretArg{{sev.DiskPassphraseID, big}}, out); err == nil || !strings.Contains(err.Error(), "holds only") {
		t.Fatalf("oversized table: %v", err)
	}
}

func TestSessionPolicyAndWrongSessionKey(t *testing.T) {
	e := newEmu(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{a, b} {
		newSession(t, e, d)
	}
	img, _, _, m := launchTemplate(t, e, a)
	sb, err := LoadSession(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckMeasurement(sb, m, "shim.fd", img); !errors.Is(err, ErrMismatch) {
		t.Fatalf("another session's TIK: %v", err)
	}
	// loose key permissions are refused
	os.Chmod(sb.Files.TIK, 0o644)
	if _, err := LoadSession(b); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("0644 TIK: %v", err)
	}
	for _, s := range []string{"", "x", "0x", "0x10000000000", "0x40"} {
		if _, err := ParsePolicy(s); err == nil {
			t.Errorf("policy %q accepted", s)
		}
	}
	if p, err := ParsePolicy("0x00050001"); err != nil || p != 0x50001 {
		t.Errorf("policy: %v %v", p, err)
	}
}

func TestMeasurementFileStrict(t *testing.T) {
	good := `{"sev-measurement":"` + base64.StdEncoding.EncodeToString(make([]byte, 48)) + `","sev-api-major":0,"sev-api-minor":24,"sev-build-id":15,"sev-policy":1}`
	if _, err := ParseMeasurementFile("m", []byte(good)); err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{
		`{}`,
		`{"sev-measurement":"AAAA","sev-api-major":0,"sev-api-minor":24,"sev-build-id":15,"sev-policy":1}`,
		strings.Replace(good, `"sev-build-id":15`, `"sev-build-id":300`, 1),
		strings.Replace(good, `"sev-policy":1`, `"sev-policy":-1`, 1),
		good + `{}`,
		`[]`,
	} {
		if _, err := ParseMeasurementFile("m", []byte(s)); err == nil {
			t.Errorf("case %d accepted: %s", i, s)
		}
	}
}

func TestParseSecretArg(t *testing.T) {
	if a, err := ParseSecretArg(sev.DiskPassphraseID.String() + "=/x/y"); err != nil || a.Path != "/x/y" {
		t.Fatal(a, err)
	}
	for _, s := range []string{"", "abc", "736869e5-84f0-4973-92ec-06879ce3da0b", "736869e5-84f0-4973-92ec-06879ce3da0b=",
		"00000000-0000-0000-0000-000000000000=f", "zz6869e5-84f0-4973-92ec-06879ce3da0b=f"} {
		if _, err := ParseSecretArg(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
