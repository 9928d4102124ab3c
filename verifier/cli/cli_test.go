package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/shimimage/shimtest"
	"github.com/sevshim/sevshim/pkg/owner"
	"github.com/sevshim/sevshim/pkg/psp"
	"github.com/sevshim/sevshim/pkg/sev"
)

var (
	update   = flag.Bool("update", false, "rewrite the golden outputs in testdata/golden")
	fixtures = flag.Bool("fixtures", false, "regenerate testdata/fixture with a fresh emulated PSP (then run with -update)")
)

const fixtureDir = "testdata/fixture"

var fixtureOnce sync.Once

// makeFixtures makes the committed fixture with the real emulator: a platform (2048-bit test
// root, to keep the file small), its exported chain, an owner session for it, a launch of the
// synthetic shim template through LAUNCH_START/UPDATE_DATA/MEASURE, and the real AMD Naples
// and Rome chains as `hostctl platform export` would lay them out.
func makeFixtures(t *testing.T) {
	os.RemoveAll(fixtureDir)
	tmp := t.TempDir()
	root, err := psp.GenerateTestRoot(2048)
	if err != nil {
		t.Fatal(err)
	}
	e, err := psp.OpenEmulator(filepath.Join(tmp, "state"), &psp.EmulatorOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, err := psp.FullChain(e)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(fixtureDir, "root"), 0o755))
	must(os.WriteFile(filepath.Join(fixtureDir, "provider.chain"), c.Marshal(), 0o644))
	must(os.WriteFile(filepath.Join(fixtureDir, "root", "ask_ark.cert"), sev.MarshalAMDChain(root.ASK, root.ARK), 0o644))
	sess := filepath.Join(fixtureDir, "sess")
	_, err = owner.CreateSession(nil, filepath.Join(fixtureDir, "provider.chain"), owner.Trust{RootPath: filepath.Join(fixtureDir, "root")}, 0x1, "guest", sess, false)
	must(err)
	s, err := owner.LoadSession(sess)
	must(err)
	godh, _ := os.ReadFile(s.Files.GODH)
	ses, _ := os.ReadFile(s.Files.Session)
	dh, err := sev.DecodeCertBase64(godh)
	must(err)
	ss, err := sev.DecodeSessionBase64(ses)
	must(err)
	h, err := e.LaunchStart(psp.LaunchStartRequest{Policy: 0x1, DHCert: dh.Marshal(), Session: ss.Marshal()})
	must(err)
	must(e.LaunchUpdateData(h, shimtest.Template(layout.OVMF4M)))
	m, err := psp.Measure(e, h)
	must(err)
	st, err := e.PlatformStatus()
	must(err)
	js, _ := json.MarshalIndent(map[string]any{"sev-measurement": base64.StdEncoding.EncodeToString(m.Marshal()),
		"sev-api-major": st.APIMajor, "sev-api-minor": st.APIMinor, "sev-build-id": st.Build, "sev-policy": 1}, "", "  ")
	must(os.WriteFile(filepath.Join(fixtureDir, "measurement.json"), append(js, '\n'), 0o644))
	for _, product := range []string{"naples", "rome"} {
		var b []byte
		for _, n := range []string{"pdh", "pek", "oca", "cek"} {
			x, err := os.ReadFile(filepath.Join("..", "..", "pkg", "sev", "testdata", product, n+".cert"))
			must(err)
			b = append(b, x...)
		}
		must(os.WriteFile(filepath.Join(fixtureDir, product+".chain"), b, 0o644))
	}
}

// workdir copies the fixture into a temp dir (git does not keep mode 0600, the verifier
// insists on it for TEK/TIK) and adds the synthetic shim image and a passphrase file.
func workdir(t *testing.T) string {
	t.Helper()
	if *fixtures {
		fixtureOnce.Do(func() { makeFixtures(t) })
	}
	d := t.TempDir()
	err := filepath.WalkDir(fixtureDir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(fixtureDir, p)
		if de.IsDir() {
			return os.MkdirAll(filepath.Join(d, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, "_tek.bin") || strings.HasSuffix(p, "_tik.bin") {
			mode = 0o600
		}
		return os.WriteFile(filepath.Join(d, rel), b, mode)
	})
	if err != nil {
		t.Fatalf("fixture (regenerate with go test ./verifier/cli -fixtures -update): %v", err)
	}
	if err := os.WriteFile(filepath.Join(d, "shim.fd"), shimtest.Template(layout.OVMF4M), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "passphrase.txt"), []byte("demo passphrase"), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

func run(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = Main(context.Background(), args, &o, &e)
	return o.String(), e.String(), code
}

func golden(t *testing.T, name, dir string, args ...string) (string, int) {
	t.Helper()
	o, e, code := run(args...)
	got := fmt.Sprintf("$ verifier %s\nexit: %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, o, e)
	got = strings.ReplaceAll(got, dir, "$W")
	p := filepath.Join("testdata", "golden", name)
	if *update {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden output:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
	return o, code
}

func TestGoldenPlatform(t *testing.T) {
	w := workdir(t)
	j := func(p ...string) string { return filepath.Join(append([]string{w}, p...)...) }
	golden(t, "platform-emu.txt", w, "platform", "--chain", j("provider.chain"), "--root", j("root"))
	out, _ := golden(t, "platform-emu.json", w, "platform", "--chain", j("provider.chain"), "--root", j("root"), "--json")
	var r owner.PlatformReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || !r.Verified || !r.TestRoot {
		t.Fatalf("json: %v %+v", err, r)
	}
	golden(t, "platform-emu-amd-roots.txt", w, "platform", "--chain", j("provider.chain"))
	golden(t, "platform-naples.txt", w, "platform", "--chain", j("naples.chain"))
	golden(t, "platform-rome.json", w, "platform", "--chain", j("rome.chain"), "--json")
	golden(t, "platform-rome-as-naples.txt", w, "platform", "--chain", j("rome.chain"), "--product", "naples")

	// one flipped bit in each certificate's signed body (API minor byte for the platform
	// certificates, the last signature byte for the AMD ones) names its link
	b, _ := os.ReadFile(j("provider.chain"))
	ask, _, err := sev.ParseAMDChain(b[4*sev.CertSize:])
	if err != nil {
		t.Fatal(err)
	}
	askEnd := 4*sev.CertSize + len(ask.Marshal())
	for _, f := range []struct {
		cert string
		off  int
	}{{"pdh", 5}, {"pek", sev.CertSize + 5}, {"oca", 2*sev.CertSize + 5}, {"cek", 3*sev.CertSize + 5},
		{"ask", askEnd - 1}, {"ark", len(b) - 1}} {
		x := append([]byte(nil), b...)
		x[f.off] ^= 0x01
		p := j("flipped-" + f.cert + ".chain")
		os.WriteFile(p, x, 0o644)
		golden(t, "platform-flipped-"+f.cert+".txt", w, "platform", "--chain", p, "--root", j("root"))
	}
	x := append([]byte(nil), b...)
	x[sev.CertSize+5] ^= 0x01
	os.WriteFile(j("flipped.chain"), x, 0o644)
	golden(t, "platform-flipped-pek.json", w, "platform", "--chain", j("flipped.chain"), "--root", j("root"), "--json")
	golden(t, "platform-not-a-chain.txt", w, "platform", "--chain", j("measurement.json"))
}

// TestRootAcceptsStateDir: --root takes the platform's state directory (ask_ark.cert lives in
// its certs/), the root/ parent and the file; a directory without it, and a root that is not
// the chain's, are refused with what to pass instead.
func TestRootAcceptsStateDir(t *testing.T) {
	w := workdir(t)
	j := func(p ...string) string { return filepath.Join(append([]string{w}, p...)...) }
	cert, _ := os.ReadFile(j("root", "ask_ark.cert"))
	os.MkdirAll(j("state", "certs"), 0o755)
	os.WriteFile(j("state", "certs", "ask_ark.cert"), cert, 0o644)
	for _, root := range []string{j("state"), j("state", "certs"), j("state", "certs", "ask_ark.cert"), w, j("root")} {
		if out, e, code := run("platform", "--chain", j("provider.chain"), "--root", root); code != 0 || !strings.Contains(out, "platform OK") {
			t.Errorf("--root %s: exit %d\n%s%s", root, code, out, e)
		}
	}
	golden(t, "platform-root-empty-dir.txt", w, "platform", "--chain", j("provider.chain"), "--root", j("state", "nothing"))
	os.MkdirAll(j("empty"), 0o755)
	golden(t, "platform-root-no-cert.txt", w, "platform", "--chain", j("provider.chain"), "--root", j("empty"))
	// another root (AMD's Rome ASK || ARK given as if it were a test root)
	var other []byte
	for _, n := range []string{"ask", "ark"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "pkg", "sev", "testdata", "rome", n+".cert"))
		if err != nil {
			t.Fatal(err)
		}
		other = append(other, b...)
	}
	os.WriteFile(j("other_ask_ark.cert"), other, 0o644)
	golden(t, "platform-root-other.txt", w, "platform", "--chain", j("provider.chain"), "--root", j("other_ask_ark.cert"))
}

func TestGoldenSessionMeasureSecret(t *testing.T) {
	w := workdir(t)
	j := func(p ...string) string { return filepath.Join(append([]string{w}, p...)...) }
	golden(t, "session.txt", w, "session", "--chain", j("provider.chain"), "--root", j("root"), "--policy", "0x1", "--out", j("new"))
	for _, f := range []string{"guest_tek.bin", "guest_tik.bin"} {
		st, err := os.Stat(j("new", f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, err, st)
		}
	}
	var info owner.SessionInfo
	b, _ := os.ReadFile(j("new", "session.json"))
	if err := json.Unmarshal(b, &info); err != nil || info.Policy != 1 || info.Name != "guest" || len(info.ChainSHA256) != 64 {
		t.Fatalf("session.json %s: %v", b, err)
	}
	golden(t, "session-exists.txt", w, "session", "--chain", j("provider.chain"), "--root", j("root"), "--policy", "0x1", "--out", j("new"))
	golden(t, "session-bad-chain.txt", w, "session", "--chain", j("provider.chain"), "--policy", "0x1", "--out", j("new2"))
	if _, err := os.Stat(j("new2")); err == nil {
		t.Fatal("session directory created for an unverified chain")
	}
	golden(t, "session-bad-policy.txt", w, "session", "--chain", j("provider.chain"), "--root", j("root"), "--policy", "0x40", "--out", j("new3"))
	// ES: refused when the session is made, with the reason; nothing is written
	if _, code := golden(t, "session-es.txt", w, "session", "--chain", j("provider.chain"), "--root", j("root"), "--policy", "0x5", "--out", j("es")); code != 1 {
		t.Errorf("ES policy: exit %d", code)
	}
	if _, err := os.Stat(j("es")); err == nil {
		t.Error("session directory created for an ES policy")
	}
	// NOSEND: made, with a warning that export will be refused
	if out, code := golden(t, "session-nosend.txt", w, "session", "--chain", j("provider.chain"), "--root", j("root"), "--policy", "0x9", "--out", j("nosend")); code != 0 ||
		!strings.Contains(out, "warning:        policy 0x9 sets NOSEND (bit 3): the PSP will refuse SEND_START") {
		t.Errorf("NOSEND policy: exit %d\n%s", code, out)
	}

	margs := []string{"--session", j("sess"), "--measurement", j("measurement.json"), "--image", j("shim.fd")}
	golden(t, "measure-ok.txt", w, append([]string{"measure"}, margs...)...)
	out, _ := golden(t, "measure-ok.json", w, append([]string{"measure", "--json"}, margs...)...)
	var mr owner.MeasureReport
	if err := json.Unmarshal([]byte(out), &mr); err != nil || mr.Verdict != "OK" {
		t.Fatalf("json %v %+v", err, mr)
	}

	// a different image
	img, _ := os.ReadFile(j("shim.fd"))
	img[0x1000] ^= 1
	os.WriteFile(j("other.fd"), img, 0o644)
	golden(t, "measure-wrong-image.txt", w, "measure", "--session", j("sess"), "--measurement", j("measurement.json"), "--image", j("other.fd"))
	// the host reports another policy than the session's
	mj, _ := os.ReadFile(j("measurement.json"))
	os.WriteFile(j("policy3.json"), bytes.Replace(mj, []byte(`"sev-policy": 1`), []byte(`"sev-policy": 3`), 1), 0o644)
	golden(t, "measure-wrong-policy.json", w, "measure", "--json", "--session", j("sess"), "--measurement", j("policy3.json"), "--image", j("shim.fd"))
	// a tampered measured value
	var m map[string]any
	json.Unmarshal(mj, &m)
	raw, _ := base64.StdEncoding.DecodeString(m["sev-measurement"].(string))
	raw[0] ^= 0x80
	m["sev-measurement"] = base64.StdEncoding.EncodeToString(raw)
	bad, _ := json.Marshal(m)
	os.WriteFile(j("bad.json"), bad, 0o644)
	golden(t, "measure-tampered.txt", w, "measure", "--session", j("sess"), "--measurement", j("bad.json"), "--image", j("shim.fd"))

	sarg := "--secret=" + sev.DiskPassphraseID.String() + "=" + j("passphrase.txt")
	golden(t, "secret-ok.txt", w, append([]string{"secret", sarg, "--out", j("secret.json")}, margs...)...)
	var sf owner.SecretFile
	sb, _ := os.ReadFile(j("secret.json"))
	if err := json.Unmarshal(sb, &sf); err != nil || sf.Address != shimtest.SecretBase {
		t.Fatalf("secret.json %s: %v", sb, err)
	}
	if st, _ := os.Stat(j("secret.json")); st.Mode().Perm() != 0o600 {
		t.Fatalf("secret.json mode %v", st.Mode())
	}
	golden(t, "secret-refused.txt", w, "secret", sarg, "--out", j("refused.json"), "--session", j("sess"), "--measurement", j("bad.json"), "--image", j("shim.fd"))
	if _, err := os.Stat(j("refused.json")); err == nil {
		t.Fatal("secret written for a tampered measurement")
	}
	golden(t, "secret-wrong-image.txt", w, "secret", sarg, "--out", j("refused.json"), "--session", j("sess"), "--measurement", j("measurement.json"), "--image", j("other.fd"))
	os.WriteFile(j("big.bin"), make([]byte, 5000), 0o600)
	golden(t, "secret-too-big.txt", w, append([]string{"secret", "--secret", sev.DiskPassphraseID.String() + "=" + j("big.bin"), "--out", j("refused.json")}, margs...)...)
	golden(t, "secret-bad-arg.txt", w, append([]string{"secret", "--secret", "passphrase.txt", "--out", j("refused.json")}, margs...)...)

	os.Chmod(j("sess", "guest_tik.bin"), 0o644)
	golden(t, "measure-loose-key.txt", w, append([]string{"measure"}, margs...)...)
}

// TestHelpIsAccurate checks, for every command, that each flag named in the usage line exists,
// that each flag appears in --help, that required flags are marked and that missing ones fail.
func TestHelpIsAccurate(t *testing.T) {
	flagRE := regexp.MustCompile(`--([a-z][a-z-]*)`)
	root := NewRoot()
	for _, c := range root.Commands() {
		name := c.Name()
		if name == "help" || name == "completion" {
			continue
		}
		for _, m := range flagRE.FindAllStringSubmatch(c.Use, -1) {
			if c.Flags().Lookup(m[1]) == nil {
				t.Errorf("%s: usage names --%s, which is not a flag", name, m[1])
			}
		}
		o, e, code := run(name, "--help")
		if code != 0 || e != "" {
			t.Errorf("%s --help: exit %d, stderr %q", name, code, e)
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(o, "--"+f.Name) {
				t.Errorf("%s --help does not mention --%s", name, f.Name)
			}
			if _, req := f.Annotations[cobra.BashCompOneRequiredFlag]; req && !strings.Contains(c.Use, "--"+f.Name) {
				t.Errorf("%s: required flag --%s is not in the usage line", name, f.Name)
			}
		})
		if _, e, code := run(name); code != 1 || !strings.Contains(e, "required flag") {
			t.Errorf("%s without flags: exit %d, stderr %q", name, code, e)
		}
	}
	o, _, code := run("--help")
	for _, c := range []string{"platform", "session", "measure", "secret", "completion"} {
		if code != 0 || !strings.Contains(o, c) {
			t.Errorf("verifier --help does not list %s", c)
		}
	}
	if o, _, code := run("completion", "bash"); code != 0 || !strings.Contains(o, "verifier") {
		t.Errorf("completion bash: exit %d", code)
	}
	if _, e, code := run("frobnicate"); code != 1 || !strings.HasPrefix(e, "verifier: ") {
		t.Errorf("unknown command: exit %d, %q", code, e)
	}
}
