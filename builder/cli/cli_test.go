package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/builder/inspect"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/format/shimimage/shimtest"
	"github.com/sevshim/sevshim/pkg/keys"
	"github.com/sevshim/sevshim/pkg/sev"
	"github.com/sevshim/sevshim/pkg/verifyref"
)

var update = flag.Bool("update", false, "rewrite the golden outputs in testdata/")

var (
	golden, _      = filepath.Abs("../../testdata/golden")
	testdataDir, _ = filepath.Abs("testdata")
)

func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// env: a temp dir with the golden test keys, a synthetic template (deterministic) and a policy.
// inEnv is env made the working directory (for the test's duration); it returns the directory.
func inEnv(t *testing.T) string {
	t.Helper()
	d := env(t)
	t.Chdir(d)
	return d
}

func env(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, n := range []string{"signer-a", "signer-b", "signer-c"} {
		for _, ext := range []string{".pem", ".pub.pem"} {
			b, err := os.ReadFile(filepath.Join(golden, "keys", n+ext))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d, n+ext), b, 0o600)
		}
	}
	os.WriteFile(filepath.Join(d, "template.fd"), shimtest.Template(1), 0o644)
	os.WriteFile(filepath.Join(d, "policy.yaml"), []byte(`layout: ovmf-4m
secret: require
tpm: if-present
tpm_pcr: 15
signers:
  - key: signer-a.pub.pem
    name: provider A
    min_version: 5
  - key: signer-b.pub.pem
    min_version: 3
denied_digests:
  - 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f
denied_versions: [7, 9]
`), 0o644)
	return d
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join(testdataDir, name)
	if *update {
		os.WriteFile(p, []byte(got), 0o644)
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./builder/cli -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden output:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestBuildInspectRoundTrip(t *testing.T) {
	d := env(t)
	// paths in outputs are relative to d, so the golden text does not depend on the temp dir
	t.Chdir(d)
	out, errs, code := run(t, "build", "--policy", "policy.yaml", "--template", "template.fd", "--out", "shim.fd")
	if code != 0 {
		t.Fatalf("build: %s", errs)
	}
	checkGolden(t, "build.txt", out)
	// reproducible
	out2, _, _ := run(t, "build", "--policy", "policy.yaml", "--template", "template.fd", "--out", "shim2.fd")
	a, _ := os.ReadFile("shim.fd")
	b, _ := os.ReadFile("shim2.fd")
	if !bytes.Equal(a, b) || strings.Replace(out2, "shim2.fd", "shim.fd", 1) != out {
		t.Fatal("build is not reproducible")
	}
	text, _, code := run(t, "inspect", "shim.fd")
	if code != 0 {
		t.Fatal("inspect failed")
	}
	checkGolden(t, "inspect-shim.txt", text)
	js, _, code := run(t, "inspect", "--json", "shim.fd")
	if code != 0 {
		t.Fatal("inspect --json failed")
	}
	checkGolden(t, "inspect-shim.json", js)
	var r inspect.Report
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	p, err := r.Policy.ToPolicy()
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := p.Encode()
	emb, _, err := shimimage.ExtractPolicy(a)
	if err != nil || !bytes.Equal(enc, emb) {
		t.Fatal("inspect --json does not round-trip the embedded policy")
	}
	// building again into a built image is refused; --replace works
	if _, e, c := run(t, "build", "--policy", "policy.yaml", "--template", "shim.fd", "--out", "x.fd"); c != 1 || !strings.Contains(e, "not empty") {
		t.Errorf("build into a built image: %d %s", c, e)
	}
	if _, e, c := run(t, "build", "--policy", "policy.yaml", "--template", "shim.fd", "--replace", "--out", "x.fd"); c != 0 {
		t.Errorf("--replace: %s", e)
	}
}

func TestBuildRefusals(t *testing.T) {
	inEnv(t)
	for _, tc := range []struct{ name, yaml, want string }{
		{"no-signers", "layout: ovmf-4m\nsigners: []\n", "bad.yaml:2: signers: empty"},
		{"missing-signers", "layout: ovmf-4m\n", "signers: the policy needs at least one signer"},
		{"unknown-layout", "layout: ovmf-8m\nsigners:\n  - key: signer-a.pub.pem\n", "bad.yaml:1: layout: unknown layout \"ovmf-8m\""},
		{"unreadable-key", "layout: ovmf-4m\nsigners:\n  - key: nope.pub\n", "bad.yaml:3: signers[0].key: cannot read key file"},
		{"not-a-key", "layout: ovmf-4m\nsigners:\n  - key: bad.yaml\n", "bad.yaml:3: signers[0].key"},
		{"duplicate-signer", "layout: ovmf-4m\nsigners:\n  - key: signer-a.pub.pem\n  - key: signer-a.pem\n", "bad.yaml:4: signers[1]: duplicate signer: the same key as the signer on line 3"},
		{"unknown-field", "layout: ovmf-4m\nfoo: 1\nsigners:\n  - key: signer-a.pub.pem\n", "bad.yaml:2: foo: unknown field"},
		{"bad-version", "layout: ovmf-4m\nsigners:\n  - key: signer-a.pub.pem\n    min_version: -1\n", "bad.yaml:4: signers[0].min_version"},
		{"pcr-without-tpm", "layout: ovmf-4m\ntpm_pcr: 3\nsigners:\n  - key: signer-a.pub.pem\n", "bad.yaml:2: tpm_pcr: set, but tpm is off"},
		{"pcr-range", "layout: ovmf-4m\ntpm: required\ntpm_pcr: 24\nsigners:\n  - key: signer-a.pub.pem\n", "bad.yaml:3: tpm_pcr"},
		{"bad-digest", "layout: ovmf-4m\nsigners:\n  - key: signer-a.pub.pem\ndenied_digests: [abc]\n", "bad.yaml:4: denied_digests[0]"},
		{"dup-version", "layout: ovmf-4m\nsigners:\n  - key: signer-a.pub.pem\ndenied_versions:\n  - 3\n  - 3\n", "bad.yaml:6: denied_versions[1]: version 3 is already denied on line 5"},
		{"secret", "layout: ovmf-4m\nsecret: maybe\nsigners:\n  - key: signer-a.pub.pem\n", "bad.yaml:2: secret"},
		{"empty", "", "bad.yaml:1: policy: the file is empty (or only comments): a policy needs at least layout: and signers:"},
		{"second-document", "layout: ovmf-4m\nsigners:\n  - key: signer-a.pub.pem\n---\nsigners: []\n", "bad.yaml:4: policy: a second YAML document (after ---)"},
	} {
		os.WriteFile("bad.yaml", []byte(tc.yaml), 0o644)
		_, e, c := run(t, "build", "--policy", "bad.yaml", "--template", "template.fd", "--out", "o.fd")
		if c != 1 || !strings.Contains(e, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want %q", tc.name, c, e, tc.want)
		}
		if _, err := os.Stat("o.fd"); err == nil {
			t.Errorf("%s: output written despite the error", tc.name)
			os.Remove("o.fd")
		}
	}
	if _, e, c := run(t, "build", "--policy", "policy.yaml", "--template", "missing.fd", "--out", "o.fd"); c != 1 || !strings.Contains(e, "shim template") {
		t.Errorf("missing template: %s", e)
	}
}

// TestBuildWarnsAboutPrivateKey: a private key given as a signer works (its public half is
// used) but is almost certainly a mistake: build says so on stderr, and shows signer names.
func TestBuildWarnsAboutPrivateKey(t *testing.T) {
	inEnv(t)
	os.WriteFile("priv.yaml", []byte("layout: ovmf-4m\nsigners:\n  - key: signer-a.pem\n    name: the provider\n"), 0o644)
	out, e, c := run(t, "build", "--policy", "priv.yaml", "--template", "template.fd", "--out", "o.fd")
	if c != 0 || !hasLine(e, "builder: warning: priv.yaml:3: signers[0].key: signer-a.pem is a PRIVATE key: only its public half goes into the policy, but a signing key does not belong beside a policy; give the public key (builder keygen writes PREFIX.pub)") {
		t.Errorf("exit %d, stderr %q", c, e)
	}
	if !strings.Contains(out, "signer [0] \"the provider\": key id ") {
		t.Errorf("no signer name in\n%s", out)
	}
	if _, e, _ := run(t, "build", "--policy", "policy.yaml", "--template", "template.fd", "--out", "p.fd"); e != "" {
		t.Errorf("a public-key policy warns: %q", e)
	}
}

func ovmfCode(t *testing.T) string {
	p := "/usr/share/OVMF/OVMF_CODE_4M.fd"
	if _, err := os.Stat(p); err != nil {
		t.Skipf("Debian OVMF not installed: %v", err)
	}
	return p
}

func TestSignBiosAndInspect(t *testing.T) {
	inEnv(t)
	fd := ovmfCode(t)
	out, e, c := run(t, "sign-bios", "--key", "signer-a.pem", "--version", "5", "--version-string", "debian 2022.11", "--out", "v5.bundle", fd)
	if c != 0 {
		t.Fatal(e)
	}
	if !strings.Contains(out, "wrote v5.bundle: ovmf-4m version 5") {
		t.Error(out)
	}
	// deterministic
	run(t, "sign-bios", "--key", "signer-a.pem", "--version", "5", "--version-string", "debian 2022.11", "--out", "again.bundle", fd)
	a, _ := os.ReadFile("v5.bundle")
	b, _ := os.ReadFile("again.bundle")
	if !bytes.Equal(a, b) {
		t.Fatal("sign-bios is not deterministic")
	}
	mb, img, m, err := manifest.ReadBundle("v5.bundle")
	if err != nil || m.Version != 5 || len(img) != 0x37C000 || len(mb) != 352 {
		t.Fatal(err)
	}
	run(t, "build", "--policy", "policy.yaml", "--template", "template.fd", "--out", "shim.fd")
	// policy.yaml says secret: require, and Debian's OVMF declares an empty SEV secret block:
	// the real shim refuses it with E060 after VERIFIED, so inspect must say so and exit 3
	js, e, c := run(t, "inspect", "--json", "--shim", "shim.fd", "v5.bundle")
	var r inspect.Report
	if err := json.Unmarshal([]byte(js), &r); err != nil || c != ExitRefused || r.Manifest.ShimVerdict != "E060 secret-block-missing" ||
		!strings.Contains(e, "builder: the shim would refuse v5.bundle: E060 secret-block-missing: the policy requires a secret hand-off") {
		t.Fatalf("secret: require shim and Debian's bundle: exit %d, verdict %q, stderr %q (%v)", c, r.Manifest.ShimVerdict, e, err)
	}
	txt, e, c := run(t, "inspect", "--shim", "shim.fd", "v5.bundle")
	if c != ExitRefused || !hasLine(txt, "  shim verdict: E060 secret-block-missing") || !hasLine(txt, "  signature: verified") ||
		!strings.Contains(txt, "  what to do: the policy requires a secret hand-off") {
		t.Errorf("text: exit %d\n%s%s", c, txt, e)
	}
	// the same policy with secret: optional accepts the bundle
	pol, _ := os.ReadFile("policy.yaml")
	os.WriteFile("optional.yaml", bytes.Replace(pol, []byte("secret: require"), []byte("secret: optional"), 1), 0o644)
	if _, e, c := run(t, "build", "--policy", "optional.yaml", "--template", "template.fd", "--out", "optional.fd"); c != 0 {
		t.Fatal(e)
	}
	js, e, c = run(t, "inspect", "--json", "--shim", "optional.fd", "v5.bundle")
	if c != 0 {
		t.Fatal(e)
	}
	// the golden output pins Debian's OVMF 2022.11-6+deb12u2; another build changes the digests
	if strings.Contains(js, "cbf2304f0089d4778fdebd39e5be887c5bdbb564191c181805a94246675a40ddeed75cadd5f7ad6065c5f91f0a41a8a9") {
		checkGolden(t, "inspect-bundle.json", js)
	} else {
		t.Log("OVMF_CODE_4M.fd is not the Debian build the golden output was made from; skipping that comparison")
	}
	r = inspect.Report{}
	json.Unmarshal([]byte(js), &r)
	if r.Kind != inspect.KindBundle || r.Manifest.ShimVerdict != "OK" || r.Manifest.SignatureVerified == nil || !*r.Manifest.SignatureVerified ||
		r.Manifest.SignatureCheck != "verified" {
		t.Errorf("bundle report %+v", r.Manifest)
	}
	// a manifest alone passes what it can; that is no refusal
	os.WriteFile("v5.manifest", a[:352], 0o644)
	if txt, e, c := run(t, "inspect", "--shim", "optional.fd", "v5.manifest"); c != 0 || !hasLine(txt, "  shim verdict: "+inspect.ManifestOnlyOK) {
		t.Errorf("manifest only: exit %d\n%s%s", c, txt, e)
	}
	// without a key or shim the signature is not checked, and that is no refusal
	if txt, e, c := run(t, "inspect", "v5.bundle"); c != 0 || !hasLine(txt, "  signature: not checked (give --signer KEY.pub or --shim SHIM.fd)") {
		t.Errorf("plain inspect: exit %d\n%s%s", c, txt, e)
	}
	// signed by c, which the policy does not trust: the shim would say E023, and the
	// signature was not checked (there is no key to check it with), not "false"
	run(t, "sign-bios", "--key", "signer-c.pem", "--version", "5", "--out", "c.bundle", fd)
	js, _, c = run(t, "inspect", "--json", "--shim", "optional.fd", "c.bundle")
	r = inspect.Report{}
	json.Unmarshal([]byte(js), &r)
	if c != ExitRefused || r.Manifest.ShimVerdict != "E023 unknown-signer" || r.Manifest.SignatureVerified != nil ||
		r.Manifest.SignatureCheck != "not checked (the signer's key is not one of the shim's signers)" {
		t.Errorf("unknown signer: exit %d, %+v", c, r.Manifest)
	}
	txt, _, _ = run(t, "inspect", "--shim", "optional.fd", "c.bundle")
	if !hasLine(txt, "  signature: not checked (the signer's key is not one of the shim's signers)") || strings.Contains(txt, "false") {
		t.Errorf("unknown signer text:\n%s", txt)
	}
	// a key that did not sign it: the signature fails, exit 3
	if txt, e, c := run(t, "inspect", "--signer", "signer-a.pub.pem", "c.bundle"); c != ExitRefused || !hasLine(txt, "  signature: FAILED") ||
		!strings.Contains(e, "c.bundle: the manifest signature does not verify with the given key") {
		t.Errorf("wrong --signer: exit %d\n%s%s", c, txt, e)
	}
	// a version the policy denies
	run(t, "sign-bios", "--key", "signer-a.pem", "--version", "7", "--out", "v7.bundle", fd)
	js, _, c = run(t, "inspect", "--json", "--shim", "optional.fd", "v7.bundle")
	json.Unmarshal([]byte(js), &r)
	if c != ExitRefused || r.Manifest.ShimVerdict != "E036 version-denied" {
		t.Errorf("verdict %q, exit %d", r.Manifest.ShimVerdict, c)
	}
	// raw OVMF
	txt, e, c = run(t, "inspect", fd)
	if c != 0 || !strings.Contains(txt, "kind:    uefi-image") || !strings.Contains(txt, "firmware volumes (2 top-level") ||
		!strings.Contains(txt, "7255371f-3a3b-4b04-927b-1da6efa8d454  SEV hash table") {
		t.Errorf("inspect OVMF: %s %s", txt, e)
	}
}

// TestSignBiosWritesLowS: every bundle sign-bios writes has s <= n/2, in the RFC 6979 mode and
// with --randomized (the shim refuses a high s as E027). About half of raw ECDSA signatures
// are high, so 24 low ones in a row would happen by chance with probability 2^-24.
func TestSignBiosWritesLowS(t *testing.T) {
	inEnv(t)
	fd := ovmfCode(t)
	for i := 0; i < 24; i++ {
		args := []string{"sign-bios", "--key", "signer-a.pem", "--version", fmt.Sprint(100 + i), "--out", "low.bundle", fd}
		if i%2 == 1 {
			args = append(args, "--randomized")
		}
		if _, e, c := run(t, args...); c != 0 {
			t.Fatal(e)
		}
		mb, _, m, err := manifest.ReadBundle("low.bundle")
		if err != nil {
			t.Fatal(err)
		}
		if m.HighS() {
			t.Fatalf("version %d (%v): sign-bios wrote a high-s signature", 100+i, args)
		}
		pol, err := policy.LoadYAML("policy.yaml")
		if err != nil {
			t.Fatal(err)
		}
		img, _ := os.ReadFile(fd)
		if got := verifyref.Check(pol, mb, true, img, true, nil, false); got != shimerr.OK && got != shimerr.VersionDenied {
			t.Fatalf("version %d: the shim model says %s", 100+i, got)
		}
	}
}

func TestSignBiosRefusals(t *testing.T) {
	inEnv(t)
	fd := ovmfCode(t)
	os.WriteFile("short.fd", make([]byte, 0x1000), 0o644)
	os.WriteFile("zero.fd", make([]byte, 0x37C000), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--key", "signer-a.pem", "--version", "1", "--out", "o", "short.fd"}, "size is 0x1000 bytes, layout ovmf-4m needs exactly 0x37c000"},
		{[]string{"--key", "signer-a.pem", "--version", "1", "--out", "o", "zero.fd"}, "OVMF footer table"},
		{[]string{"--key", "signer-a.pem", "--version", "1", "--out", "o", "template.fd"}, "this is a sevshim image"},
		{[]string{"--key", "signer-a.pub.pem", "--version", "1", "--out", "o", fd}, "signer-a.pub.pem: PEM block \"PUBLIC KEY\" is not a private key"},
		{[]string{"--key", "signer-a.pem", "--out", "o", fd}, "--version is required"},
		{[]string{"--key", "signer-a.pem", "--version", "1", "--version-string", "tab\there", "--out", "o", fd}, "version_string"},
		{[]string{"--key", "signer-a.pem", "--version", "1", "--layout", "ovmf-8m", "--out", "o", fd}, "unknown layout"},
		{[]string{"--key", "signer-a.pem", "--version", "1", "--layout", "ovmf-2m", "--out", "o", fd}, "size is 0x37c000 bytes, layout ovmf-2m needs exactly 0x1e0000"},
		{[]string{"--key", "signer-a.pem", "--version", "1", fd}, `required flag(s) "out" not set`},
	} {
		_, e, c := run(t, append([]string{"sign-bios"}, tc.args...)...)
		if c != 1 || !strings.Contains(e, tc.want) {
			t.Errorf("%v: exit %d %q; want %q", tc.args, c, e, tc.want)
		}
		if _, err := os.Stat("o"); err == nil {
			t.Errorf("%v: output written", tc.args)
			os.Remove("o")
		}
	}
}

func TestKeygen(t *testing.T) {
	d := t.TempDir()
	p := filepath.Join(d, "k")
	out, e, c := run(t, "keygen", "--out", p)
	if c != 0 || !strings.Contains(out, "key id:") {
		t.Fatal(e)
	}
	st, _ := os.Stat(p + ".key")
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", st.Mode())
	}
	kb, _ := os.ReadFile(p + ".key")
	if k, err := keys.ParsePrivateKeyPEM(kb); err != nil || !strings.Contains(string(kb), "BEGIN PRIVATE KEY") {
		t.Fatal(err, k)
	}
	pb, _ := os.ReadFile(p + ".pub")
	if !strings.Contains(string(pb), "BEGIN PUBLIC KEY") {
		t.Fatal("pub format")
	}
	if _, e, c := run(t, "keygen", "--out", p); c != 1 || !strings.Contains(e, "refusing to overwrite") {
		t.Errorf("overwrite: %s", e)
	}
}

func TestMeasure(t *testing.T) {
	inEnv(t)
	run(t, "build", "--policy", "policy.yaml", "--template", "template.fd", "--out", "shim.fd")
	// the launch-measurement test vector of pkg/sev (TIK, API 0.18 build 15, policy 0, MNONCE)
	os.WriteFile("tik.hex", []byte("66320db73158a35a255d051758e95ed4\n"), 0o600)
	out, e, c := run(t, "measure", "--image", "shim.fd", "--tik", "tik.hex", "--api", "0.18", "--build", "15", "--policy", "0", "--mnonce", "4fbe0bedbad6c86ae8f68971d103e554")
	if c != 0 {
		t.Fatal(e)
	}
	checkGolden(t, "measure.txt", out)
	b, _ := os.ReadFile("shim.fd")
	ld := sev.LaunchDigest(b)
	if !strings.Contains(out, "launch digest: "+hexs(ld[:])) {
		t.Error(out)
	}
	if _, e, c := run(t, "measure", "--image", "shim.fd", "--mnonce", "00"); c != 1 || !strings.Contains(e, "--tik is needed") {
		t.Error(e)
	}
}

func hexs(b []byte) string {
	const h = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(h[c>>4])
		s.WriteByte(h[c&15])
	}
	return s.String()
}

// TestHelp checks that every command's --help names its flags, and that the usage line of each
// command lists exactly the required flags.
func TestHelp(t *testing.T) {
	root := NewRoot()
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		out, _, code := run(t, c.Name(), "--help")
		if code != 0 {
			t.Errorf("%s --help failed", c.Name())
		}
		for _, name := range flagNames(c) {
			if !strings.Contains(out, "--"+name) {
				t.Errorf("%s --help does not mention --%s", c.Name(), name)
			}
		}
		for _, req := range requiredFlags(c) {
			if !strings.Contains(c.Use, "--"+req) {
				t.Errorf("%s: required flag --%s missing from the usage line %q", c.Name(), req, c.Use)
			}
		}
		if c.Short == "" || !strings.HasPrefix(c.Use, c.Name()) {
			t.Errorf("%s: bad Use/Short", c.Name())
		}
	}
	out, _, _ := run(t, "--help")
	for _, n := range []string{"keygen", "build", "sign-bios", "inspect", "measure", "completion"} {
		if !strings.Contains(out, n) {
			t.Errorf("root help lacks %s", n)
		}
	}
	if out, _, c := run(t, "completion", "bash"); c != 0 || !strings.Contains(out, "builder") {
		t.Error("bash completion")
	}
	if _, e, c := run(t, "nosuch"); c != 1 || !strings.Contains(e, "unknown command") {
		t.Errorf("unknown command: %d %s", c, e)
	}
}

// hasLine reports whether text holds line as a whole line.
func hasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}
